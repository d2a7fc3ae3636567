"""A real ``bwc device run`` camera updated over its offload API, for the update kill test.

The camera is a separate process (started ahead of its turn through tests/device/update_entry.py,
so a power-on costs its boot, not its imports), driven as a dock and an officer would: the
offload API with a provisioned dock key for updates, the control socket for buttons and the dock
bay. The test reads the card directly (``firmware/state.json``, the slot folders) to choose its
kill points and to check what the camera booted.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from custody.audit import AuditReport, verify_audit
from custody.keys import key_id, load_agency_private_key, load_verify_key, public_pem
from custody.report import Report
from custody.verify import verify_clip_folder
from device.control import send
from device.firmware import AUDIT_LOG, CLIPS_ROOT
from device.slots import ROOT, STATE, SlotManager, SlotState
from hw.real.storage import FileStorage
from tests.device.camera_toml import sim_camera_toml
from tests.device.offload_rig import open_session
from tests.device.update_entry import WAIT

PREFIX = "/offload/v1"
TARGET = "sim"  # the camera's [device] hardware_target, the bundles' target
FACTORY = "0.1.0"  # [device] firmware_version: what runs before any slot was activated
WAIT_S = 30.0
UPLOAD_CHUNK = 64 * 1024

T = TypeVar("T")


def poll(condition: Callable[[], T | None], what: str, timeout_s: float = WAIT_S) -> T:
    """The first truthy value of ``condition``; TimeoutError naming ``what`` after the deadline."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.005)  # the poll's interval: spares the camera a flood of status requests
    raise TimeoutError(f"{what} within {timeout_s} s")


class ReadOnlyAudit:
    """The audit sink of the test's own SlotManager: verifying a slot must never record."""

    def append(self, event: str, data: dict[str, Any]) -> int:
        raise AssertionError(f"the test's slot check tried to audit {event} {data}")


@dataclass
class Card:
    """The camera's card and keys as the test reads them (it never writes them)."""

    root: Path
    keys_dir: Path
    release: Ed25519PrivateKey

    def state(self) -> SlotState:
        path = self.root / STATE
        return SlotState.from_bytes(path.read_bytes()) if path.exists() else SlotState()

    def verify_slot(self, slot: str) -> Report:
        slots = SlotManager(FileStorage(self.root), [self.release.public_key()], target=TARGET,
                            audit=ReadOnlyAudit())  # fmt: skip
        return slots.verify_slot(slot)

    def fresh_slot_bytes(self, slot: str, paths: list[str], since_ns: int) -> int:
        """Bytes of the slot's payload ``paths`` written since ``since_ns``: this install's, not
        those of a folder an earlier cut left behind (the camera wipes it before it writes)."""
        files, total = self.root / ROOT / slot / "files", 0
        for path in paths:
            try:
                st = (files / path).stat()
            except FileNotFoundError:
                continue  # not written yet, or wiped while we looked
            if st.st_mtime_ns >= since_ns:
                total += st.st_size
        return total

    def verify_audit(self) -> AuditReport:
        device_key = load_verify_key(self.keys_dir / "device.pub.pem")
        return verify_audit((self.root / AUDIT_LOG).read_bytes(), [device_key])

    def verify_clip(self, clip_id: str) -> Report:
        device_key = load_verify_key(self.keys_dir / "device.pub.pem")
        agency_key = load_agency_private_key(self.keys_dir / "agency.key.pem")
        return verify_clip_folder(self.root / CLIPS_ROOT / clip_id, device_key, agency_key)


def write_config(root: Path, release: Ed25519PrivateKey, dock: Ed25519PrivateKey) -> Path:
    """The camera's config, with the dock key and the release key provisioned in its keys_dir."""
    keys = root / "keys"
    (keys / "docks").mkdir(parents=True)
    (keys / "docks" / "test-dock.pub.pem").write_bytes(public_pem(dock))
    (keys / f"release-{key_id(release)}.pub.pem").write_bytes(public_pem(release))
    config = root / "camera.toml"
    config.write_text(sim_camera_toml(
        root, camera={"keyframe_interval": 5, "bitrate": 200_000}, hold_s=0.5,
        hardware_target=TARGET, healthy_after_s=1.0,
    ))  # fmt: skip
    return config


@dataclass
class Launcher:
    """Starts ``bwc device run --sim --docked`` processes, each imported before its turn."""

    config: Path
    sock: Path
    logs: Path
    started: list[subprocess.Popen[bytes]] = field(default_factory=list)
    running: subprocess.Popen[bytes] | None = None  #: the camera powered on last
    _waiting: subprocess.Popen[bytes] | None = None

    def _prepare(self) -> subprocess.Popen[bytes]:
        log = (self.logs / f"camera-{len(self.started)}.log").open("wb")
        camera = subprocess.Popen(
            [sys.executable, "-m", "tests.device.update_entry", "device", "run", "--sim",
             "--config", str(self.config), "--control", str(self.sock), "--docked"],
            stdin=subprocess.PIPE, stdout=log, stderr=subprocess.STDOUT,
            env={**os.environ, WAIT: "1"},
        )  # fmt: skip
        log.close()  # the child holds its own descriptor
        self.started.append(camera)
        return camera

    def boot(self) -> subprocess.Popen[bytes]:
        """Power the camera on: the waiting process boots, the next one starts importing."""
        camera = self._waiting or self._prepare()
        self._waiting = self._prepare()
        self.sock.unlink(missing_ok=True)
        assert camera.stdin is not None
        camera.stdin.write(b"go\n")
        camera.stdin.close()
        self.running = camera
        return camera

    def shut_down(self, control: ControlSocket) -> None:
        """Power the running camera off with its switch: it must stop cleanly."""
        camera = self.running
        assert camera is not None, "no camera was powered on"
        control.send({"cmd": "shutdown"})
        assert camera.wait(timeout=WAIT_S) == 0, "the camera did not power off cleanly"

    def log_tail(self, camera: subprocess.Popen[bytes], chars: int = 3000) -> str:
        path = self.logs / f"camera-{self.started.index(camera)}.log"
        return path.read_text(errors="replace")[-chars:]

    def close(self) -> None:
        for camera in self.started:
            if camera.poll() is None:
                camera.kill()
            camera.wait()
            if camera.stdin is not None and not camera.stdin.closed:
                camera.stdin.close()


def cut_power(launcher: Launcher) -> None:
    """SIGKILL the running camera: it gets no chance to flush, close or say goodbye."""
    camera = launcher.running
    assert camera is not None, "no camera was powered on"
    os.kill(camera.pid, signal.SIGKILL)
    camera.wait(timeout=WAIT_S)
    assert camera.returncode == -signal.SIGKILL, (
        f"the camera had exited by itself (code {camera.returncode}) before its power was cut"
    )


class ControlSocket:
    """The officer's buttons and the dock bay, through ``bwc device run``'s control socket."""

    def __init__(self, sock: Path) -> None:
        self.sock = sock

    def status(self) -> dict[str, Any] | None:
        try:
            return send(self.sock, {"cmd": "status"}, timeout_s=5)
        except OSError:
            return None  # not listening yet, or rebooting

    def send(self, request: dict[str, Any]) -> None:
        reply = send(self.sock, request, timeout_s=10)
        assert reply.get("ok"), f"{request} refused: {reply.get('error')}"

    def offload_url(self, alive: Callable[[], None]) -> str:
        """The URL of the offload API once the camera serves it (``alive`` fails fast if the
        camera died meanwhile)."""

        def url() -> str | None:
            alive()
            s = self.status()
            return s["offload"]["url"] if s and s.get("offload") else None

        return poll(url, "the docked camera serves its offload API")

    def records_a_clip(self, card: Card) -> str:
        """Undocked, a double press records, a hold stops; the sealed clip must verify."""
        self.send({"cmd": "undock"})
        poll(lambda: (s := self.status()) and s["state"] == "buffering", "buffering after undock")
        self.send({"cmd": "press", "button": "record", "gesture": "double"})
        recording = poll(lambda: (s := self.status()) and s["segments"] >= 1 and s,
                         "a recorded segment after a double press")  # fmt: skip
        clip = str(recording["clip"])
        self.send({"cmd": "press", "button": "record", "gesture": "hold"})
        poll(lambda: (s := self.status()) and clip in s["sealed"] and s["state"] == "buffering",
             f"clip {clip} sealed after a hold")  # fmt: skip
        report = card.verify_clip(clip)
        assert report.ok, f"clip {clip} does not verify: {report.first_failure}"
        self.send({"cmd": "dock"})
        return clip


class Dock:
    """The dock's side of one docking session: status, firmware upload, reboot."""

    def __init__(self, url: str, dock_key: Ed25519PrivateKey) -> None:
        self.url = url
        self.token, _ = open_session(url, dock_key)

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def status(self) -> dict[str, Any]:
        answer = requests.get(f"{self.url}{PREFIX}/status", headers=self.auth, timeout=10)
        assert answer.status_code == 200, answer.text
        body: dict[str, Any] = answer.json()
        return body

    def reboot(self) -> None:
        answer = requests.post(f"{self.url}{PREFIX}/reboot", json={}, headers=self.auth,
                               timeout=10)  # fmt: skip
        assert answer.status_code == 202, answer.text
        assert answer.json() == {"rebooting": True}

    def put_firmware(self, body: Iterator[bytes], size: int) -> tuple[int, dict[str, Any]]:
        """Stream a bundle with its Content-Length (what requests cannot do for a generator)."""
        parts = urlsplit(self.url)
        conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=WAIT_S)
        try:
            conn.request("PUT", f"{PREFIX}/firmware", body=body, headers={
                **self.auth, "Content-Type": "application/octet-stream",
                "Content-Length": str(size),
            })  # fmt: skip
            answer = conn.getresponse()
            return answer.status, json.loads(answer.read())
        finally:
            conn.close()


def bundle_chunks(bundle: Path, stop_after: int | None = None,
                  at_stop: Callable[[], None] = lambda: None) -> Iterator[bytes]:  # fmt: skip
    """The bundle's bytes; with ``stop_after``, only that many, then ``at_stop`` (the kill)."""
    sent = 0
    with bundle.open("rb") as stream:
        while chunk := stream.read(UPLOAD_CHUNK):
            if stop_after is not None and sent + len(chunk) >= stop_after:
                yield chunk[: stop_after - sent]
                at_stop()
                return
            sent += len(chunk)
            yield chunk


class Upload:
    """A whole bundle sent in the background, so the test can watch the card meanwhile."""

    def __init__(self, dock: Dock, bundle: Path) -> None:
        self.answer: tuple[int, dict[str, Any]] | None = None
        self.error: Exception | None = None
        self.done = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(dock, bundle), daemon=True)
        self._thread.start()

    def _run(self, dock: Dock, bundle: Path) -> None:
        try:
            self.answer = dock.put_firmware(bundle_chunks(bundle), bundle.stat().st_size)
        except (OSError, http.client.HTTPException, ValueError) as exc:
            self.error = exc  # the camera died under the upload: expected when it was killed
        finally:
            self.done.set()

    def join(self) -> None:
        self._thread.join(WAIT_S)
        assert not self._thread.is_alive(), "the upload did not end after the camera was killed"
