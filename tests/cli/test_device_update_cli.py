"""``bwc device run`` takes a firmware bundle while docked, reboots into it and reports it healthy.

A real camera process on sim hardware: a dock session, ``PUT /firmware``, ``POST /reboot``; the
same process comes back (re-exec), docked on the same port, trying the new slot once.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given
from hypothesis import strategies as st

from bwc.commands.device import reboot_argv
from custody.keys import Role, load_signing_key, public_pem, write_key_pair
from device.control import send
from device.firmware import AUDIT_LOG
from hw.sim.storage import SimStorage
from tests.device.camera_toml import sim_camera_toml
from tests.device.offload_rig import PREFIX, open_session
from tests.device.slot_helpers import make_bundle, manager

DEADLINE_S = 30.0
BOOTED = "running; control socket"  # printed once per boot, when the control socket listens
HEALTHY_AFTER_S = 4  # long enough to see "trial" first, short enough for a quick test


@dataclass
class Running:
    """A camera process and the dock's view of it."""

    process: subprocess.Popen[bytes]
    root: Path
    dock_key: Ed25519PrivateKey
    url: str = ""
    token: str = ""

    @property
    def sock(self) -> Path:
        return self.root / "control.sock"

    def stderr(self) -> str:
        return (self.root / "stderr").read_text()

    def boots(self) -> int:
        return self.stderr().count(BOOTED)

    def wait_docked(self, boots: int = 1) -> str:
        """The offload URL once the camera's ``boots``-th boot serves it; a new session on it."""
        deadline = time.monotonic() + DEADLINE_S
        while True:
            assert self.process.poll() is None, self.stderr()
            assert time.monotonic() < deadline, f"not serving docked within {DEADLINE_S} s"
            if self.boots() < boots:
                continue
            try:
                url = send(self.sock, {"cmd": "status"})["offload"]["url"]
            except (FileNotFoundError, ConnectionError):
                continue  # rebooting: the control socket is not back yet
            if url is not None:
                break
        self.url = str(url)
        self.token, _ = open_session(self.url, self.dock_key)
        return self.url

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        headers = {"Authorization": f"Bearer {self.token}"}
        return requests.request(
            method, f"{self.url}{PREFIX}{path}", headers=headers, timeout=DEADLINE_S, **kwargs
        )

    def status(self) -> dict[str, Any]:
        answer = self.request("GET", "/status")
        assert answer.status_code == 200, answer.text
        body: dict[str, Any] = answer.json()
        return body

    def wait_status(self, field: str, value: object) -> dict[str, Any]:
        deadline = time.monotonic() + DEADLINE_S
        while (status := self.status())[field] != value:
            assert time.monotonic() < deadline, f"{field} never became {value!r}: {status}"
        return status

    def reboot(self) -> None:
        boots = self.boots()
        answer = self.request("POST", "/reboot", json={})
        assert (answer.status_code, answer.json()) == (202, {"rebooting": True})
        self.wait_docked(boots + 1)

    def events(self) -> list[str]:
        lines = (self.root / "card" / AUDIT_LOG).read_bytes().splitlines()
        return [json.loads(line)["event"] for line in lines]


@pytest.fixture
def release_key(tmp_path: Path) -> Ed25519PrivateKey:
    """The agency release key, provisioned in the camera's keys folder."""
    key = Ed25519PrivateKey.generate()
    (tmp_path / "keys").mkdir(exist_ok=True)
    (tmp_path / "keys" / "release-agency.pub.pem").write_bytes(public_pem(key))
    return key


def start_camera(root: Path) -> Running:
    dock_key = Ed25519PrivateKey.generate()
    (root / "keys" / "docks").mkdir(parents=True, exist_ok=True)
    (root / "keys" / "docks" / "bay-1.pub.pem").write_bytes(public_pem(dock_key))
    config = root / "camera.toml"
    config.write_text(sim_camera_toml(root, healthy_after_s=HEALTHY_AFTER_S))
    with (root / "stderr").open("wb") as err:
        process = subprocess.Popen(
            [sys.executable, "-m", "bwc", "device", "run", "--config", str(config),
             "--control", str(root / "control.sock"), "--docked"],
            stdout=subprocess.DEVNULL, stderr=err,
        )  # fmt: skip
    return Running(process, root, dock_key)


@pytest.fixture
def camera(tmp_path: Path, release_key: Ed25519PrivateKey) -> Iterator[Running]:
    """A sim camera powered on in the dock, a dock session open on its offload API."""
    running = start_camera(tmp_path)
    try:
        running.wait_docked()
        yield running
    finally:
        stop(running.process, running.sock)


def stop(process: subprocess.Popen[bytes], sock: Path) -> None:
    try:
        send(sock, {"cmd": "shutdown"})
        process.wait(timeout=DEADLINE_S)
    except (OSError, subprocess.TimeoutExpired):
        process.kill()  # a camera that no longer answers: the test already failed
        process.wait()


def test_a_camera_reboots_into_a_new_firmware_and_reports_it_healthy(
    camera: Running, release_key: Ed25519PrivateKey, tmp_path: Path
) -> None:
    before = camera.status()
    assert (before["firmware"], before["firmware_slot"], before["firmware_state"]) == (
        "0.1.0", None, "healthy",
    )  # fmt: skip
    assert before["target"] == "sim"
    bundle = make_bundle(tmp_path, release_key, version="1.2.0")
    answer = camera.request("PUT", "/firmware", data=bundle.read_bytes())
    assert answer.json() == {"slot": "a", "firmware_version": "1.2.0", "applies": "reboot"}
    pid, port = camera.process.pid, camera.url.rsplit(":", 1)[1]
    camera.reboot()
    assert (camera.process.pid, camera.url.rsplit(":", 1)[1]) == (pid, port)
    trial = camera.status()
    assert (trial["firmware"], trial["firmware_slot"], trial["firmware_state"]) == (
        "1.2.0", "a", "trial",
    )  # fmt: skip
    camera.wait_status("firmware_state", "healthy")
    events = camera.events()
    order = ["firmware.installed", "reboot.requested", "firmware.activated"]
    assert [e for e in events if e in order] == order
    assert "firmware 1.2.0 from slot a (trial)" in camera.stderr()


def test_a_slot_that_does_not_verify_at_its_trial_boot_falls_back(
    camera: Running, release_key: Ed25519PrivateKey, tmp_path: Path
) -> None:
    bundle = make_bundle(tmp_path, release_key, version="1.2.0")
    assert camera.request("PUT", "/firmware", data=bundle.read_bytes()).status_code == 200
    (tmp_path / "card" / "firmware" / "a" / "files" / "bwc.bin").write_bytes(b"damaged")
    camera.reboot()
    status = camera.status()
    assert (status["firmware"], status["firmware_slot"], status["firmware_state"]) == (
        "0.1.0", None, "healthy",
    )  # fmt: skip
    assert "firmware.rollback" in camera.events()


def test_an_active_slot_that_does_not_verify_stops_the_boot_with_one_line(
    tmp_path: Path, release_key: Ed25519PrivateKey
) -> None:
    keys = tmp_path / "keys"
    write_key_pair(keys, Role.DEVICE)
    write_key_pair(keys, Role.AGENCY)
    card = SimStorage(tmp_path / "card", capacity_bytes=64 * 1024**2)
    slots = manager(card, release_key, load_signing_key(keys / "device.key.pem"))
    slots.install(make_bundle(tmp_path, release_key, version="1.2.0"))
    slots.boot()
    slots.mark_healthy()
    (card.root / "firmware" / "a" / "files" / "VERSION").write_bytes(b"9.9.9")
    config = tmp_path / "camera.toml"
    config.write_text(sim_camera_toml(tmp_path, healthy_after_s=HEALTHY_AFTER_S))
    done = subprocess.run(
        [sys.executable, "-m", "bwc", "device", "run", "--config", str(config),
         "--control", str(tmp_path / "control.sock"), "--docked"],
        capture_output=True, timeout=DEADLINE_S, check=False,
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.decode().strip().splitlines()[-1] == (
        "bwc: error: the camera cannot boot: firmware slot a does not verify: reflash the camera"
    )
    assert "Traceback" not in done.stderr.decode()


REBOOT_WORDS = ["device", "run", "--docked", "--offload-port", "8080", "--offload-port=9", "--sim"]


@given(st.lists(st.sampled_from(REBOOT_WORDS)), st.integers(0, 65535))
def test_each_reboot_keeps_one_docked_flag_and_one_port(words: list[str], port: int) -> None:
    once = reboot_argv(["python", "-m", "bwc", *words], port, docked=True)
    assert reboot_argv(once, port, docked=True) == once
    assert once[-3:] == ["--offload-port", str(port), "--docked"]
    assert once.count("--docked") == 1
