"""``python -m bench.dock_camera CARD KEYS_DIR DEVICE_KEY DEVICE_ID``: one docked camera.

The camera's own offload API (:mod:`device.offload`: session gate, clip store, erase service,
FastAPI app, uvicorn server) over the real storage adapter (:class:`hw.real.storage.FileStorage`)
on a card folder of sealed clips, docked from the start. Each camera is its own process, as
each is its own machine: the dock measured never shares a GIL with a camera.

The recording loop is not running: a docked camera only serves its card, and the firmware's
part in that (:func:`device.offload.attach_offload`) is to hand the API its storage, audit log
and clock, which are built here the same way. It prints its port once it accepts connections
and serves until SIGTERM.
"""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from bwc.logs import configure_logging
from custody.keys import load_signing_key
from device.audit_log import DeviceAuditLog
from device.firmware import AUDIT_LOG, CLIPS_ROOT
from device.offload import OffloadServer, OffloadService
from device.offload.clips import ClipStore
from device.offload.session import Identity, SessionGate
from hw.ports.battery import BatteryReading
from hw.real.clock import SystemClock
from hw.real.storage import FileStorage

if TYPE_CHECKING:
    from fastapi import FastAPI

START_TIMEOUT_S = 30.0


class DockedHost:
    """What a firmware would tell the API: on the dock's charger, nobody assigned yet."""

    def __init__(self) -> None:
        self._officer = "officer-bench"

    def officer_id(self) -> str:
        return self._officer

    def assign_officer(self, officer_id: str) -> None:
        self._officer = officer_id

    def battery(self) -> BatteryReading | None:
        return BatteryReading(percent=80.0, voltage=4.0, charging=True)

    def time_synced(self, device_minus_dock_ns: int) -> None:
        pass  # the bench's dock does not sync time


def serve(card: Path, keys_dir: Path, device_key_file: Path, device_id: str) -> OffloadServer:
    device_key = load_signing_key(device_key_file)
    storage = FileStorage(card)
    clock = SystemClock()
    audit = DeviceAuditLog(storage, AUDIT_LOG, device_key, clock)
    serial = f"SER-{device_id}"  # its USB serial too (bench.dock_rig.serial_of)
    gate = SessionGate(Identity(device_id, serial, "bench"), device_key, keys_dir)
    clips = ClipStore(storage, CLIPS_ROOT)
    service = OffloadService(gate, clips, audit, DockedHost(), clock, keys_dir)

    def app() -> FastAPI:
        from device.offload.api import create_app  # as a camera does: FastAPI loads when docked

        return create_app(service)

    server = OffloadServer(app, gate, "127.0.0.1", 0)
    server.set_docked(True)
    return server


def main(argv: list[str]) -> int:
    if len(argv) != 4:
        usage = "usage: python -m bench.dock_camera CARD KEYS_DIR DEVICE_KEY DEVICE_ID"
        print(usage, file=sys.stderr)
        return 2
    configure_logging()  # warnings only, on stderr: stdout carries the port
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    server = serve(Path(argv[0]), Path(argv[1]), Path(argv[2]), argv[3])
    try:
        if not server.serving.wait(START_TIMEOUT_S) or server.url is None:
            print(f"the offload API did not serve: {server.error}", file=sys.stderr)
            return 1
        print(server.url.rsplit(":", 1)[1], flush=True)
        while not stop.wait(1.0):  # the timeout lets the SIGTERM handler run promptly
            pass
    finally:
        server.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
