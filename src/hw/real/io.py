"""Officer I/O on the camera's own GPIO lines, through gpiozero's default pin factory."""

from __future__ import annotations

import logging
import time
import warnings

from gpiozero import Device
from gpiozero.exc import NativePinFactoryFallback, PinWarning
from gpiozero.pins import Factory

from hw.errors import AdapterUnavailable
from hw.ports.clock import Clock
from hw.ports.io import IoConfig, OfficerIo
from hw.real.gpio_devices import open_devices

_log = logging.getLogger(__name__)


def open_gpiozero_io(cfg: IoConfig, clock: Clock | None = None) -> OfficerIo:
    monotonic_ns = clock.monotonic_ns if clock is not None else time.monotonic_ns
    return open_devices(
        cfg, pin_factory=default_pin_factory(), monotonic_ns=monotonic_ns
    ).officer_io()


def default_pin_factory() -> Factory:
    """gpiozero's default factory (lgpio on a Pi, or $GPIOZERO_PIN_FACTORY), or AdapterUnavailable.

    gpiozero reports each factory it could not load as a ``PinFactoryFallback`` warning; they are
    gathered here into the one error a user reads, rather than escaping as warnings.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", PinWarning)
        try:
            Device.ensure_pin_factory()
        # gpiozero itself treats any exception from a factory's constructor as "cannot load it"
        except Exception as exc:
            tried = "; ".join(
                str(w.message).removeprefix("Falling back from ")
                for w in caught
                if issubclass(w.category, PinWarning)
            )
            raise AdapterUnavailable(
                f"no GPIO: gpiozero could not load a pin factory ({tried or exc}): run on a "
                "Raspberry Pi with 'pip install bwc[pi]', or use adapter = \"sim\" in [io]"
            ) from exc
    for w in caught:
        if issubclass(w.category, NativePinFactoryFallback):
            _log.warning("gpiozero: %s", w.message)
        elif not issubclass(w.category, PinWarning):
            # not ours to swallow: hand it back to the warnings machinery
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    factory: Factory = Device.pin_factory
    return factory
