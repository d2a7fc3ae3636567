"""Firmware install: MB/s of a signed bundle into a docked camera's inactive slot.

Ours: the camera's whole install over its real offload API. A camera is the firmware on sim
hardware (a small :class:`~hw.sim.camera.SimCamera`, a virtual clock) with its card a real
folder (:class:`hw.real.storage.FileStorage`) in the work folder, composed as ``bwc device run``
does it (audit log opened once, slots chosen before boot, :func:`device.offload.attach_offload`)
and docked. This process opens a session as a dock does and ``PUT``s the bundle from its file on
one connection; the camera streams it to the card and fsyncs it, verifies it (signature, every
file's SHA-256), writes each file to the inactive slot while hashing it again, fsyncs, records
the slot in its state file and answers. The clock runs from the first byte sent to the answer.
Afterwards the slot must verify, so a broken path cannot pass for a fast one.

Peer, in the same run on the same bundle and disk: the standard tools doing the same steps,
one shell script (:data:`PEER_SCRIPT`): ``cat`` into an incoming file and ``sync`` it,
``sha256sum --check`` it, ``cp`` it into a slot folder and ``sync`` that, remove the incoming file.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, TypeVar
from urllib.parse import urlsplit

import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from bench.device import BenchError
from bench.figures import Figure
from bench.peers import NoPeer, PeerRun, run_child
from bench.stream import START_WALL_NS, Scenario
from custody.canonical import b64d, b64e
from custody.firmware_bundle import build_bundle, sign_bundle
from custody.keys import key_id, public_pem
from device.audit_log import DeviceAuditLog
from device.config import DeviceConfig
from device.events import DockInput
from device.firmware import AUDIT_LOG, DevicePorts, Firmware
from device.offload import attach_offload, session_message
from device.recorder import DeviceKeys
from device.slots import SlotManager
from device.updates import INCOMING, FirmwareSlots
from hw.ports.battery import BatteryConfig
from hw.ports.camera import CameraConfig
from hw.ports.io import IoConfig
from hw.real.storage import FileStorage
from hw.sim.battery import SimBattery
from hw.sim.camera import SimCamera
from hw.sim.clock import SimClock
from hw.sim.io import open_sim_io

#: payload bytes of the bundle (1 MB = 10^6 bytes): a Pi image's order of magnitude in full mode
SIZES = {"full": 256_000_000, "quick": 64_000_000, "smoke": 4_000_000}
#: the payload's files and their shares of it, as a Pi release would ship them
LAYOUT = (
    ("boot/initramfs8", 0.125), ("boot/kernel8.img", 0.125), ("opt/bwc/bwc.pyz", 0.125),
    ("rootfs.squashfs", 0.625),
)  # fmt: skip
VERSION = "1.0.0"  #: newer than the factory image's 0.1.0: never a downgrade
PREFIX = "/offload/v1"
SEND_BLOCK = 1024 * 1024  #: the client reads the bundle and sends it a MiB at a time
TIMEOUT_S = 300.0  #: per socket operation; the answer comes after the verify and the slot write
NAME = "firmware install: MB/s of a signed bundle into the camera's inactive slot"
PEER = "cat + sync, sha256sum --check, cp + sync of the same bundle"

#: The peer: $1 bundle, $2 folder (the peer's card), $3 the expected hash in sha256sum's format.
PEER_SCRIPT = """set -e
cat "$1" > "$2/incoming.bundle"
sync "$2/incoming.bundle"
cd "$2"
sha256sum --check --status "$3"
mkdir slot
cp incoming.bundle slot/bundle
sync slot/bundle slot
rm incoming.bundle
sync .
"""
PEER_TOOLS = ("sh", "cat", "sync", "sha256sum", "mkdir", "cp", "rm")
T = TypeVar("T", bound="Timed")


def make_bundle(total: int, work: Path, release: Ed25519PrivateKey) -> Path:
    """A signed bundle of :data:`LAYOUT` holding ``total`` random payload bytes (not timed)."""
    payload = work / "payload"
    left = total
    for n, (name, share) in enumerate(LAYOUT):
        size = left if n == len(LAYOUT) - 1 else int(total * share)
        left -= size
        path = payload / name
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as out:  # a MiB at a time: 256 MB never sits in memory
            for start in range(0, size, SEND_BLOCK):
                out.write(os.urandom(min(SEND_BLOCK, size - start)))
    bundle = work / f"bwc-{VERSION}-sim.fw"
    build_bundle(payload, bundle, firmware_version=VERSION, target=DeviceConfig().hardware_target,
                 min_version="0.1.0", notes="bench", created_at_ns=START_WALL_NS)  # fmt: skip
    sign_bundle(bundle, release)
    shutil.rmtree(payload)
    return bundle


@dataclass(frozen=True)
class Install:
    wall_s: float  #: first byte sent to the answer read
    cpu_s: float  #: this process's CPU over that time: the camera and the sending client
    verified_s: float  #: from the first byte to the end of the verification (slot write starts)
    slot_s: float  #: the slot write: files hashed again, written, fsynced, state recorded


class Steps:
    """The first time each install step was reached (the slot manager's progress callback)."""

    def __init__(self) -> None:
        self.at: dict[str, float] = {}

    def __call__(self, step: str) -> None:
        self.at.setdefault(step, time.perf_counter())


@dataclass
class DockedCamera:
    firmware: Firmware
    url: str
    token: str
    audit: DeviceAuditLog
    steps: Steps
    card: Path


@contextmanager
def docked_camera(card: Path, release: Ed25519PrivateKey) -> Iterator[DockedCamera]:
    """A booted camera on a fresh card in ``card``, docked, its API serving, a session open."""
    keys_dir = card.parent / f"{card.name}-keys"
    dock_key = Ed25519PrivateKey.generate()
    _provision(keys_dir, dock_key, release)
    card.mkdir()
    config = DeviceConfig(device_id="bench-cam", serial="BWC-BENCH-0001", keys_dir=keys_dir,
                          offload_port=0)  # fmt: skip
    clock = SimClock(virtual=True, start_wall_ns=START_WALL_NS)
    io, battery = open_sim_io(IoConfig(), clock), SimBattery(BatteryConfig(), clock)
    camera = SimCamera(CameraConfig(width=160, height=120, fps=10, keyframe_interval=10), clock)
    storage = FileStorage(card)
    device_key = Ed25519PrivateKey.generate()
    audit = DeviceAuditLog(storage, AUDIT_LOG, device_key, clock)
    steps = Steps()
    slots = FirmwareSlots(
        storage, keys_dir, audit, target=config.hardware_target,
        factory_version=config.firmware_version, healthy_after_s=config.healthy_after_s,
        progress=steps,
    )  # fmt: skip
    running = config.model_copy(update={"firmware_version": slots.boot().version})
    keys = DeviceKeys(device_key, X25519PrivateKey.generate().public_key())
    ports = DevicePorts(clock, camera, io, battery, storage)
    firmware = Firmware(running, ports, keys, audit=audit)
    try:
        firmware.boot()
        server = attach_offload(firmware, device_key, slots=slots)
        try:
            firmware.submit(DockInput(docked=True, at_ns=clock.monotonic_ns()))
            firmware.step()
            if not server.serving.wait(30.0) or server.url is None:
                raise BenchError(f"the camera's offload API did not serve: {server.error}")
            token = _open_session(server.url, dock_key)
            yield DockedCamera(firmware, server.url, token, audit, steps, card)
        finally:
            server.close()
    finally:
        firmware.close()
        io.close()
        battery.close()
        shutil.rmtree(keys_dir)


def _provision(keys_dir: Path, dock_key: Ed25519PrivateKey, release: Ed25519PrivateKey) -> None:
    """What the armory gives a camera: the dock's key and the agency's release key."""
    (keys_dir / "docks").mkdir(parents=True)
    (keys_dir / "docks" / "bench-dock.pub.pem").write_bytes(public_pem(dock_key))
    (keys_dir / "release-agency.pub.pem").write_bytes(public_pem(release))


def _open_session(url: str, dock_key: Ed25519PrivateKey) -> str:
    """The dock's half of the challenge and response; the bearer token."""
    hello = requests.get(f"{url}{PREFIX}/hello", timeout=TIMEOUT_S).json()
    nonce = b64d(hello["nonce"], what="nonce", size=32)
    signature = dock_key.sign(session_message(nonce, hello["device_id"]))
    body = {"dock_key_id": key_id(dock_key), "dock_nonce": b64e(os.urandom(32)),
            "signature": b64e(signature)}  # fmt: skip
    answer = requests.post(f"{url}{PREFIX}/session", json=body, timeout=TIMEOUT_S)
    if answer.status_code != 200:
        raise BenchError(f"the camera refused the bench's dock session: {answer.text[:200]}")
    return str(answer.json()["token"])


def install(camera: DockedCamera, bundle: Path, release: Ed25519PrivateKey) -> Install:
    """``PUT /firmware`` the bundle, timed from the first byte to the answer; then checked."""
    parts = urlsplit(camera.url)
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=TIMEOUT_S,
                                      blocksize=SEND_BLOCK)  # fmt: skip
    headers = {"Authorization": f"Bearer {camera.token}",
               "Content-Length": str(bundle.stat().st_size)}  # fmt: skip
    try:
        conn.connect()  # the TCP handshake is not the install's
        with bundle.open("rb") as body:
            cpu0, wall0 = time.process_time(), time.perf_counter()
            conn.request("PUT", f"{PREFIX}/firmware", body=body, headers=headers)
            answer = conn.getresponse()
            text = answer.read()
            cpu_s, wall_s = time.process_time() - cpu0, time.perf_counter() - wall0
    finally:
        conn.close()
    expected = {"slot": "a", "firmware_version": VERSION, "applies": "reboot"}
    if answer.status != 200 or json.loads(text) != expected:
        raise BenchError(f"the camera answered {answer.status} to the bundle: {text[:300]!r}")
    _check_slot(camera, release)
    at = camera.steps.at
    return Install(wall_s, cpu_s, at["forget"] - wall0, at["trying"] - at["forget"])


def _check_slot(camera: DockedCamera, release: Ed25519PrivateKey) -> None:
    """The installed slot verifies (signature, every file's SHA-256) and nothing is left over."""
    storage = FileStorage(camera.card)
    slots = SlotManager(storage, [release.public_key()], target=DeviceConfig().hardware_target,
                        audit=camera.audit)  # fmt: skip
    report = slots.verify_slot("a")
    if not report.ok or storage.exists(INCOMING):
        raise BenchError(f"the installed slot does not verify: {report.first_failure}")


def peer_install(bundle: Path, folder: Path) -> PeerRun | NoPeer:
    """:data:`PEER_SCRIPT` on ``bundle`` into ``folder``, the peer's card on the same disk."""
    missing = [tool for tool in PEER_TOOLS if shutil.which(tool) is None]
    if missing:
        return NoPeer(f"{', '.join(missing)} not installed: install coreutils (apt-get)")
    folder.mkdir()
    sums = folder.parent / f"{folder.name}.sha256"  # outside the card: not part of the copy
    sums.write_text(f"{_sha256(bundle)}  incoming.bundle\n", encoding="ascii")
    command = ["sh", "-c", PEER_SCRIPT, "peer", str(bundle), str(folder), str(sums)]
    done, cpu_s, wall_s = run_child(command)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no message"])[-1]
        return NoPeer(f"the shell pipeline failed with exit status {done.returncode}: {last}")
    copied = folder / "slot" / "bundle"
    if not copied.is_file() or copied.stat().st_size != bundle.stat().st_size:
        return NoPeer("the shell pipeline exited 0 but did not copy the whole bundle")
    return PeerRun(cpu_s, wall_s, outputs=1)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(SEND_BLOCK):
            digest.update(chunk)
    return digest.hexdigest()


class Timed(Protocol):
    @property
    def wall_s(self) -> float: ...


def _median(runs: list[T]) -> T:
    return sorted(runs, key=lambda r: r.wall_s)[len(runs) // 2]


def firmware_install(scenario: Scenario, work: Path) -> list[Figure]:
    """MB/s of the camera's install of a signed bundle, against the shell tools' same steps."""
    work.mkdir(parents=True)
    release = Ed25519PrivateKey.generate()
    bundle = make_bundle(SIZES[scenario.mode], work, release)
    ours: list[Install] = []
    peers: list[PeerRun | NoPeer] = []
    for n in range(scenario.repeats):  # taking turns, so a machine slowing down slows both
        with docked_camera(work / f"card-{n}", release) as camera:
            ours.append(install(camera, bundle, release))
        shutil.rmtree(work / f"card-{n}")
        peers.append(peer_install(bundle, work / f"peer-{n}"))
        shutil.rmtree(work / f"peer-{n}", ignore_errors=True)
    size = bundle.stat().st_size
    shutil.rmtree(work)  # the bundle: up to 256 MB, leave the disk to the next benchmark
    missing = [p for p in peers if isinstance(p, NoPeer)]
    found = [p for p in peers if isinstance(p, PeerRun)]
    peer: PeerRun | NoPeer = missing[0] if missing else _median(found)
    median = _median(ours)
    return [
        Figure(
            name=NAME,
            value=size / 1e6 / median.wall_s,
            unit="MB/s",
            peer=PEER,
            peer_value=None if isinstance(peer, NoPeer) else size / 1e6 / peer.wall_s,
            better="higher",
            note=_note(size, scenario.repeats, median, peer),
        )
    ]


def _note(size: int, repeats: int, ours: Install, peer: PeerRun | NoPeer) -> str:
    repeated = "1 run" if repeats == 1 else f"median of {repeats} runs"
    note = (
        f"a {size / 1e6:.1f} MB bundle ({len(LAYOUT)} files of random bytes, signed); "
        f"{repeated}, each on a fresh docked camera and card (FileStorage in the work folder); "
        f"camera: {ours.wall_s:.2f} s wall from the first byte sent to the answer "
        f"({ours.verified_s:.2f} s to stream, fsync and verify it, {ours.slot_s:.2f} s to write "
        f"the slot: hashed again, fsynced), {ours.cpu_s:.2f} CPU s of the process (camera and "
        "client); the slot verified afterwards"
    )
    if isinstance(peer, NoPeer):
        return f"{note}; peer not measured: {peer.reason}"
    return (
        f"{note}; peer: {peer.wall_s:.2f} s wall, {peer.cpu_s:.2f} CPU s (sh and its tools), "
        "one SHA-256 pass where the camera makes two and no signature"
    )
