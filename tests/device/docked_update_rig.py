"""Updates on the in-process docked camera: its release key, raw uploads, and a reboot in the dock.

``reboot_in_dock`` powers the docked camera (tests/device/offload_rig.py) off and on again the
way ``bwc device run`` does: the same card and keys, the kept profile's device settings applied,
the audit log opened once, the firmware slot chosen before the firmware boots, then docked and a
new session opened.
"""

from __future__ import annotations

import http.client
import json
import socket
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from device.audit_log import DeviceAuditLog
from device.events import DockInput
from device.firmware import AUDIT_LOG, Firmware
from device.offload import attach_offload
from device.profile import device_settings, load_active_profile
from device.recorder import DeviceKeys
from device.updates import FirmwareSlots
from hw.sim.clock import SimClock
from tests.device.firmware_rig import build_camera
from tests.device.offload_rig import PREFIX, WAIT_S, DockedCamera, wait


@dataclass
class Rebooted:
    docked: DockedCamera
    slots: FirmwareSlots
    reboot_asked: threading.Event  #: set when the camera's reboot handler ran


def reboot_in_dock(docked: DockedCamera, *, healthy_after_s: float = 1.0) -> Rebooted:
    old = docked.camera
    docked.server.close()
    old.firmware.close()
    old.io.close()
    config = old.firmware.config.model_copy(update={"healthy_after_s": healthy_after_s})
    clock = SimClock(virtual=True, start_wall_ns=old.clock.wall_ns())
    cam = build_camera(
        old.storage.root, old.device_key, old.agency_key, config, audio=False, clock=clock
    )
    profile = load_active_profile(cam.storage, docked.keys_dir)
    if profile is not None:  # as bwc device run applies it at boot (camera settings aside)
        config = device_settings(config, profile)
    audit = DeviceAuditLog(cam.storage, AUDIT_LOG, old.device_key, clock)
    slots = FirmwareSlots(
        cam.storage, docked.keys_dir, audit, target=config.hardware_target,
        factory_version=config.firmware_version, healthy_after_s=healthy_after_s,
    )  # fmt: skip
    running = config.model_copy(update={"firmware_version": slots.boot().version})
    keys = DeviceKeys(old.device_key, old.agency_key.public_key())
    cam.firmware = Firmware(running, cam.firmware.ports, keys, audit=audit)
    cam.firmware.boot()
    asked = threading.Event()
    server = attach_offload(cam.firmware, old.device_key, slots=slots, reboot=asked.set)
    cam.submit(DockInput(docked=True, at_ns=cam.now()))
    cam.firmware.step()
    wait(server.serving, "the offload API serves once docked again")
    again = DockedCamera(
        cam, server, docked.keys_dir, docked.dock_key, docked.store_key,
        sealed=docked.sealed, open_clip=docked.open_clip,
    )  # fmt: skip
    again.login()
    return Rebooted(again, slots, asked)


def close(docked: DockedCamera) -> None:
    docked.server.close()
    docked.camera.firmware.close()
    docked.camera.io.close()


def put_headers_only(docked: DockedCamera, length: int) -> tuple[int, dict[str, Any]]:
    """``PUT /firmware`` announcing ``length`` bytes and sending none: what the camera answers
    before it reads a byte."""
    parts = urlsplit(docked.url)
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=WAIT_S)
    try:
        conn.putrequest("PUT", f"{PREFIX}/firmware")
        conn.putheader("Authorization", f"Bearer {docked.token}")
        conn.putheader("Content-Length", str(length))
        conn.endheaders()
        answer = conn.getresponse()
        return answer.status, json.loads(answer.read())
    finally:
        conn.close()


def put_truncated(docked: DockedCamera, bundle: Path, sent: int) -> None:
    """A dock that hangs up after ``sent`` bytes of the bundle it announced in full."""
    data = bundle.read_bytes()
    parts = urlsplit(docked.url)
    head = (
        f"PUT {PREFIX}/firmware HTTP/1.1\r\nHost: {parts.netloc}\r\n"
        f"Authorization: Bearer {docked.token}\r\nContent-Length: {len(data)}\r\n\r\n"
    )
    with socket.create_connection((parts.hostname or "", parts.port or 80), WAIT_S) as sock:
        sock.sendall(head.encode() + data[:sent])
        sock.shutdown(socket.SHUT_WR)
        while sock.recv(4096):  # whatever the camera answers, until it closes
            pass


def release_key_provisioned(docked: DockedCamera) -> Ed25519PrivateKey:
    """An agency release key, provisioned to the camera the way a dock does it."""
    from custody.keys import public_pem

    key = Ed25519PrivateKey.generate()
    answer = docked.request("PUT", "/keys/release-agency", data=public_pem(key))
    assert answer.status_code == 200, answer.text
    return key
