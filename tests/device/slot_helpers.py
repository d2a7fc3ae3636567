"""Signed firmware bundles and a slot manager on a card, for the A/B slot tests."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from custody.firmware_bundle import build_bundle, sign_bundle
from device.audit_log import DeviceAuditLog
from device.slots import ROOT, BootedSlot, SlotManager
from hw.ports.storage import Storage
from hw.sim.clock import SimClock

AUDIT = "audit/device.jsonl"
TARGET = "sim"
START_WALL_NS = 1_700_000_000_000_000_000


def make_bundle(
    folder: Path, key: Ed25519PrivateKey | None, *, version: str, target: str = TARGET,
    min_version: str = "0.1.0", size: int = 150_000,
) -> Path:  # fmt: skip
    """A bundle of three files (one nested) whose bytes depend on the version; signed by key."""
    rng = random.Random(version)
    payload = folder / f"payload-{version}-{target}"
    (payload / "boot").mkdir(parents=True)
    (payload / "boot" / "kernel.img").write_bytes(rng.randbytes(size))
    (payload / "bwc.bin").write_bytes(rng.randbytes(size // 3))
    (payload / "VERSION").write_text(version)
    out = folder / f"bwc-{version}-{target}-{'signed' if key else 'unsigned'}.fw"
    build_bundle(payload, out, firmware_version=version, target=target, min_version=min_version,
                 notes=f"release {version}", created_at_ns=START_WALL_NS)  # fmt: skip
    if key is not None:
        sign_bundle(out, key)
    return out


def open_audit(storage: Storage, device_key: Ed25519PrivateKey) -> DeviceAuditLog:
    clock = SimClock(virtual=True, start_wall_ns=START_WALL_NS)
    return DeviceAuditLog(storage, AUDIT, device_key, clock, actor="device:cam-0042")


def audit_records(storage: Storage) -> list[dict[str, Any]]:
    return [json.loads(line) for line in storage.read_bytes(AUDIT).splitlines()]


def slot_files(storage: Storage, slot: str) -> dict[str, bytes]:
    """Every file of a slot, by path, read straight from the card."""
    folder = storage.root / ROOT / slot
    return {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()
    }


def manager(
    storage: Storage, release: Ed25519PrivateKey, device_key: Ed25519PrivateKey, **kw: Any
) -> SlotManager:
    audit = open_audit(storage, device_key)
    return SlotManager(storage, [release.public_key()], target=TARGET, audit=audit, **kw)


def boot(slots: SlotManager) -> BootedSlot:
    """Boot a card that has an installed slot (None would mean the factory image runs)."""
    booted = slots.boot()
    assert booted is not None, "a firmware slot boots"
    return booted
