"""A camera that installs a firmware bundle, for the kill test (tests/device/test_slots.py).

Started ahead of its turn, it imports everything, then waits for "go" on stdin. It then installs
the bundle, boots the tried slot and marks it healthy, printing each durable step it reaches and
waiting for a line on stdin before it goes on: the test SIGKILLs it at a step of its choice.
Arguments: CARD BUNDLE RELEASE_PUB_PEM DEVICE_KEY_PEM.
"""

from __future__ import annotations

import sys
from pathlib import Path

from custody.keys import load_signing_key, load_verify_key
from device.audit_log import DeviceAuditLog
from device.slots import SlotManager
from hw.real.storage import FileStorage
from hw.sim.clock import SimClock

START_WALL_NS = 1_700_000_000_000_000_000


def step(name: str) -> None:
    print(name, flush=True)
    if not sys.stdin.readline():
        sys.exit(1)  # the test went away


def main(card: str, bundle: str, release_pub: str, device_key: str) -> int:
    storage = FileStorage(Path(card))
    clock = SimClock(virtual=True, start_wall_ns=START_WALL_NS)
    audit = DeviceAuditLog(storage, "audit/device.jsonl", load_signing_key(Path(device_key)), clock)
    slots = SlotManager(
        storage, [load_verify_key(Path(release_pub))], target="sim", audit=audit, progress=step
    )
    slots.install(Path(bundle))
    slots.boot()
    slots.mark_healthy()
    print("done", flush=True)
    return 0


if __name__ == "__main__":
    if sys.stdin.readline() != "go\n":
        sys.exit(1)
    sys.exit(main(*sys.argv[1:5]))
