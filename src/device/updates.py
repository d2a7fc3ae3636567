"""Which firmware runs and whether it is healthy: the A/B slots as the running camera uses them.

The composition root chooses the slot before the firmware boots (:meth:`FirmwareSlots.boot`),
so every manifest records the version that really runs: the booted slot's, or the factory
image's while no slot was ever made active. A slot on its one trial boot becomes the active slot
once it has run ``healthy_after_s`` of camera time without a break in health: frames reaching
the pre-event ring, no fault, and an audit log that writes (:func:`firmware_healthy`). Until then
it is not promoted, so a hang or a power cut brings the previous slot back at the next boot.

The offload API installs uploaded bundles from its thread pool while the firmware thread checks
health: one lock keeps the two from interleaving on ``firmware/state.json``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog

from device.errors import FirmwareError
from device.events import State
from device.profile import release_keys
from device.slots import ROOT, AuditSink, SlotManager
from hw.ports.storage import Storage

if TYPE_CHECKING:
    from device.firmware import Firmware

log = structlog.get_logger(__name__)

SECOND = 1_000_000_000
#: where the offload API receives a bundle before it is installed (removed whatever happens)
INCOMING = f"{ROOT}/incoming.bundle"


@dataclass(frozen=True)
class BootChoice:
    """The firmware this boot runs."""

    version: str
    slot: str | None  #: None: the factory image
    trial: bool  #: a newly installed slot on its one boot, not yet healthy

    def describe(self) -> str:
        if self.slot is None:
            return f"factory firmware {self.version}"
        return f"firmware {self.version} from slot {self.slot}{' (trial)' if self.trial else ''}"


def firmware_healthy(firmware: Firmware) -> bool:
    """Frames reach the pre-event ring, the camera is not faulted and its audit log writes."""
    audit = firmware.audit
    return (
        firmware.running
        and firmware.ring.bytes > 0
        and firmware.controller.state is not State.FAULT
        and audit is not None
        and audit.writing
    )


class FirmwareSlots:
    """The camera's firmware slots: boot choice, health, installs and what status reports."""

    def __init__(
        self, storage: Storage, keys_dir: Path, audit: AuditSink, *, target: str,
        factory_version: str, healthy_after_s: float,
        progress: Callable[[str], None] | None = None,
    ) -> None:  # fmt: skip
        self._storage = storage
        self._keys_dir = keys_dir
        self._slots = SlotManager(
            storage, release_keys(keys_dir), target=target, audit=audit,
            factory_version=factory_version, progress=progress,
        )  # fmt: skip
        self.target = target
        self._factory = factory_version
        self._healthy_after_ns = round(healthy_after_s * SECOND)
        self._lock = threading.Lock()
        self._choice: BootChoice | None = None
        self._healthy_since_ns: int | None = None
        self._gave_up = False

    @property
    def choice(self) -> BootChoice:
        if self._choice is None:
            raise FirmwareError("no firmware was chosen yet: call FirmwareSlots.boot() first")
        return self._choice

    @property
    def on_trial(self) -> bool:
        return self._choice is not None and self._choice.trial

    def boot(self) -> BootChoice:
        """Choose what runs; a rollback is audited. Raises FirmwareUpdateError if the active
        slot does not verify (the camera must be reflashed)."""
        with self._lock:
            if self._storage.exists(INCOMING):  # a bundle cut off by a power cut: never installed
                self._storage.remove(INCOMING)
                self._storage.fsync_dir(ROOT)
            booted = self._slots.boot()
            if booted is None:
                self._choice = BootChoice(self._factory, None, False)
            else:
                self._choice = BootChoice(booted.version, booted.slot, booted.trial)
            return self._choice

    def check_health(self, now_ns: int, healthy: bool) -> bool:
        """Called every frame; True the one time the slot on trial is promoted to active.

        ``healthy`` must hold for ``healthy_after_s`` in a row; any break starts the count again.
        """
        if not self.on_trial or self._gave_up:
            return False
        if not healthy:
            self._healthy_since_ns = None
            return False
        if self._healthy_since_ns is None:
            self._healthy_since_ns = now_ns
        if now_ns - self._healthy_since_ns < self._healthy_after_ns:
            return False
        with self._lock:
            try:
                self._slots.mark_healthy()
            except (FirmwareError, OSError) as exc:
                # left on trial: the next boot falls back to the previous slot, as after a hang
                self._gave_up = True
                log.error("firmware slot not promoted", error=str(exc))
                return False
            self._choice = BootChoice(self.choice.version, self.choice.slot, False)
        return True

    def install(self, bundle: Path) -> tuple[str, str]:
        """Verify and write ``bundle`` to the inactive slot; ``(slot, version)`` to be tried.

        Release keys are read again first: a dock may have provisioned one since boot.
        Raises BundleRefused (audited) or FirmwareUpdateError.
        """
        with self._lock:
            self._slots.trusted = release_keys(self._keys_dir)
            slot = self._slots.install(bundle)
            version = self._slots.state().versions[slot]
        assert version is not None  # install names the slot only once its version is durable
        return slot, version

    def status(self) -> dict[str, Any]:
        """The firmware fields of the offload API's status (docs/formats/offload.md)."""
        choice = self.choice
        return {
            "firmware": choice.version,
            "target": self.target,
            "firmware_slot": choice.slot,
            "firmware_state": "trial" if choice.trial else "healthy",
        }
