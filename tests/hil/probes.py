"""Before a bench run: is every resource the rig file names really there?

Each probe opens its resource with the real adapter (or looks for it where the kernel lists it)
and returns nothing, or raises an ``HwError`` whose message says what to plug in or install. All
probes run, so the user sees every missing resource at once, one line each.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from hw.errors import AdapterUnavailable, HwError
from hw.real.clock import SystemClock
from tests.hil.rig_file import RigFile

SYSFS_BLUETOOTH = Path("/sys/class/bluetooth")


def missing_resources(rig: RigFile) -> list[str]:
    """One line per resource that is not there: ``resource: what to do``."""
    probes: list[tuple[str, Callable[[], None]]] = [
        ("camera", lambda: _camera(rig)),
        ("storage", lambda: _storage(rig.storage.root)),
    ]
    if rig.microphone is not None:
        probes.append(("microphone", lambda: _microphone(rig)))
    if rig.buttons is not None or rig.io.adapter == "gpiozero":
        probes.append(("buttons", _gpio))
    if rig.ble is not None:
        ble = rig.ble
        probes.append(("ble camera", lambda: _hci(ble.camera, "the camera's BLE adapter")))
        dongle = "the trigger-source BLE dongle"
        probes.append(("trigger source", lambda: _hci(ble.trigger_source, dongle)))
    if rig.dock is not None:
        probes.append(("dock", lambda: _dock(rig)))
    if rig.power is not None:
        power = rig.power
        probes.append(("power", lambda: _commands([power.off[0], power.on[0]])))
    return [line for name, probe in probes if (line := _run(name, probe)) is not None]


def _run(name: str, probe: Callable[[], None]) -> str | None:
    try:
        probe()
    except HwError as exc:
        return f"{name}: {exc}"
    except Exception as exc:  # a pre-flight check reports every failure as a line, bugs included
        return f"{name}: {type(exc).__name__}: {exc}"
    return None


def _camera(rig: RigFile) -> None:
    from hw.real.camera import Picamera2Camera

    Picamera2Camera(rig.camera, SystemClock())


def _microphone(rig: RigFile) -> None:
    from hw.real.microphone import PyAudioMicrophone

    assert rig.microphone is not None
    mic = PyAudioMicrophone(rig.microphone, SystemClock())
    with _quiet_stderr():  # PortAudio prints each ALSA/JACK device it tries: the error says it all
        mic.open()
    mic.close()


@contextmanager
def _quiet_stderr() -> Iterator[None]:
    saved = os.dup(2)
    try:
        with Path(os.devnull).open("wb") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _gpio() -> None:
    from hw.real.io import default_pin_factory

    default_pin_factory()


def _hci(name: str, what: str) -> None:
    if not (SYSFS_BLUETOOTH / name).exists():
        raise AdapterUnavailable(f"no Bluetooth adapter {name}: plug in {what} ('hciconfig -a')")


def _dock(rig: RigFile) -> None:
    from hw.real.usb import LibusbUsbBus

    assert rig.dock is not None
    bus = LibusbUsbBus(rig.dock.usb)
    try:
        bays = {device.bay for device in bus.devices()}
    finally:
        bus.close()
    if rig.dock.bay not in bays:
        raise AdapterUnavailable(
            f"no camera in dock bay {rig.dock.bay}: plug the camera's USB cable into that port "
            f"(cameras seen: {', '.join(sorted(bays)) or 'none'})"
        )


def _commands(argv0: list[str]) -> None:
    for command in dict.fromkeys(argv0):
        if shutil.which(command) is None:
            raise AdapterUnavailable(f"power switch command {command!r} not found: install it")


def _storage(root: Path) -> None:
    if not root.is_dir():
        raise AdapterUnavailable(f"no card at {root}: mount the camera's storage there")
