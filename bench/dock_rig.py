"""One offload, set up fresh and checked: store, docked cameras and the dock, each its own process.

A :class:`DockRig` starts the cameras (:mod:`bench.dock_camera`) once, with one dock key and
one store receipt key for all its runs: a camera process costs a second or more of CPU to
start, and the 1, 3 and 8-camera figures would otherwise start twelve. For every run: a fresh
evidence store (``bwc evidence serve`` on an empty data folder holding that receipt key, every
camera enrolled), fresh cards (:func:`bench.dock_clips.fill_card`: the cameras erased the last
run's clips), a fresh dock data folder (its key, the cameras it enrols, the store's receipt key
and dock token), then :mod:`bench.dock_probe` offloads the run's cameras. Afterwards the
run must be whole: every clip ``done`` in the dock's ledger, listed by the store, gone from its
card. A broken path cannot pass for a fast one.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bench.device import REPO_ROOT, BenchError
from bench.dock_clips import BenchCamera, clips_left, fill_card, write_camera_keys
from bench.servers import Store, process_cpu_s, running_store
from custody.keys import private_pem, public_pem, write_atomic
from device.firmware import CLIPS_ROOT
from dock.config import DockConfig
from evidence.config import EvidenceConfig
from evidence.store import bootstrap

PROBE_TIMEOUT_S = 1800.0  #: a 2 GB clip on a slow disk takes minutes; a hang must still end
STOP_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class Offload:
    """One measured offload of every clip of every camera."""

    cameras: int
    clips: int
    bytes: int  #: sealed bytes moved: manifests and segments
    wall_s: float  #: the dock's, from its first request to its last clip done
    dock_cpu_s: float
    camera_cpu_s: float  #: every camera process together
    store_cpu_s: float
    retries: int  #: failed attempts the dock retried (zero on a sound run)
    rss_start_bytes: int  #: the dock process before the offload (interpreter, imports, dock)
    rss_peak_bytes: int  #: and its peak (VmHWM) at the end
    runner: str  #: what ran the dock

    @property
    def mbps(self) -> float:
        return self.bytes / 1e6 / self.wall_s


@dataclass(frozen=True)
class _Camera:
    process: subprocess.Popen[bytes]
    url: str
    card: Path


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    if process.stdout is not None:
        process.stdout.close()


def _start_camera(camera: BenchCamera, folder: Path, dock_key: Ed25519PrivateKey,
                  store_public: bytes) -> subprocess.Popen[bytes]:  # fmt: skip
    device_key_file = write_camera_keys(
        folder / "keys", camera.device_key, public_pem(dock_key), store_public
    )
    command = [sys.executable, "-m", "bench.dock_camera", str(folder / "card"),
               str(folder / "keys"), str(device_key_file), camera.device_id]  # fmt: skip
    return subprocess.Popen(command, stdout=subprocess.PIPE, cwd=REPO_ROOT)


def _camera_url(process: subprocess.Popen[bytes], device_id: str) -> str:
    assert process.stdout is not None  # stdout=PIPE
    first = process.stdout.readline().strip()  # its port, once it serves; b"" if it died
    if not first.isdigit():
        raise BenchError(
            f"camera {device_id} did not serve its offload API (exit {process.wait()})"
        )
    return f"http://127.0.0.1:{int(first)}"


def _dock_folder(folder: Path, dock_key: Ed25519PrivateKey, store: Store,
                 cameras: list[BenchCamera]) -> DockConfig:  # fmt: skip
    cfg = DockConfig(data_dir=folder, store_url=store.url)
    (folder / "keys").mkdir(parents=True)
    cfg.devices_path.mkdir()
    write_atomic(cfg.dock_key_path, private_pem(dock_key), mode=0o600)
    write_atomic(cfg.store_key_path, public_pem(store.receipt_key), mode=0o644)
    for camera in cameras:
        key_file = cfg.devices_path / f"{camera.device_id}.pub.pem"
        write_atomic(key_file, public_pem(camera.device_key), mode=0o644)
    token = store.dock["Authorization"].removeprefix("Bearer ")
    write_atomic(cfg.store_token_path, token.encode() + b"\n", mode=0o600)
    return cfg


def _probe(spec_file: Path) -> dict[str, Any]:
    command = [sys.executable, "-m", "bench.dock_probe", str(spec_file)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, cwd=REPO_ROOT,
                              timeout=PROBE_TIMEOUT_S, check=False)  # fmt: skip
    except subprocess.TimeoutExpired as exc:
        raise BenchError(f"the dock did not finish within {PROBE_TIMEOUT_S:.0f} s") from exc
    if done.returncode != 0:
        tail = done.stderr.strip()[-800:]
        raise BenchError(f"the dock failed with exit status {done.returncode}: {tail}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def serial_of(device_id: str) -> str:
    """The camera's USB serial (what its bay reports), as its ``hello`` answers it."""
    return f"SER-{device_id}"


def _check(result: dict[str, Any], store: Store, cards: list[Path], clips: int) -> None:
    if result["states"] != {"done": clips}:
        errors = "; ".join(result["errors"]) or "no error reported"
        raise BenchError(
            f"the dock ended with clips {result['states']}, not {clips} done, and bays "
            f"{result['outcomes']}: {errors}"
        )
    try:
        listed = requests.get(
            f"{store.url}/v1/evidence", params={"limit": 1000}, headers=store.records, timeout=30
        ).json()
    except (requests.RequestException, ValueError) as exc:
        raise BenchError(f"cannot list the stored evidence: {exc}") from exc
    if len(listed) != clips:
        raise BenchError(f"the store lists {len(listed)} clips after offloading {clips}")
    left = sum(clips_left(card) for card in cards)
    if left:
        raise BenchError(f"{left} clips are still on the cameras after the offload")


class DockRig:
    """Cameras serving their cards until :meth:`close`, and fresh offloads of some of them.

    Each offload's clips must be new to its cameras (:func:`bench.dock_clips.split_loads`).
    """

    def __init__(self, cameras: list[BenchCamera], work: Path) -> None:
        self.cameras, self.work = cameras, work
        self.dock_key = Ed25519PrivateKey.generate()
        self.receipt_key = Ed25519PrivateKey.generate()  # every run's store signs with it
        self.runs = 0
        self._processes: list[subprocess.Popen[bytes]] = []
        store_public = public_pem(self.receipt_key.public_key())
        try:
            for camera in cameras:  # all start at once: each imports FastAPI and uvicorn
                (work / camera.device_id / "card" / CLIPS_ROOT).mkdir(parents=True)
                self._processes.append(
                    _start_camera(camera, work / camera.device_id, self.dock_key, store_public)
                )
            self.docked = [
                _Camera(
                    process,
                    _camera_url(process, camera.device_id),
                    work / camera.device_id / "card",
                )
                for process, camera in zip(self._processes, cameras, strict=True)
            ]
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        for process in self._processes:  # all at once: each takes a moment to shut down
            if process.poll() is None:
                process.terminate()
        for process in self._processes:
            _stop(process)

    def __enter__(self) -> DockRig:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _store_folder(self, data_dir: Path, cameras: list[BenchCamera]) -> None:
        """A fresh store's data folder: the rig's receipt key, every camera of the run enrolled."""
        cfg = EvidenceConfig(data_dir=data_dir)
        cfg.receipt_key_path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(cfg.receipt_key_path, private_pem(self.receipt_key), mode=0o600)
        bootstrap(cfg)  # keeps that key; running_store does it again and enrols the first
        for camera in cameras[1:]:
            key_file = cfg.devices_path / f"{camera.device_id}.pub.pem"
            write_atomic(key_file, public_pem(camera.device_key), mode=0o644)

    def offload(self, cameras: list[BenchCamera]) -> Offload:
        """Every clip of ``cameras`` (the rig's, by device id) through a fresh store and dock."""
        serving = {c.device_id: d for c, d in zip(self.cameras, self.docked, strict=True)}
        docked = [serving[c.device_id] for c in cameras]
        self.runs += 1
        work = self.work / f"run-{self.runs}"
        work.mkdir(parents=True)
        for camera, card in zip(cameras, docked, strict=True):
            fill_card(camera, card.card)
        self._store_folder(work / "store", cameras)
        clips = sum(len(c.clips) for c in cameras)
        first = cameras[0]
        with running_store(work / "store", first.device_id, first.device_key) as store:
            cfg = _dock_folder(work / "dock", self.dock_key, store, cameras)
            spec = work / "dock.json"
            cams = [
                {"serial": serial_of(c.device_id), "device_id": c.device_id, "url": d.url}
                for c, d in zip(cameras, docked, strict=True)
            ]
            spec.write_text(
                json.dumps({"data_dir": str(cfg.data_dir), "store_url": store.url, "cameras": cams})
            )
            pids = [c.process.pid for c in docked]
            store0, cams0 = store.cpu_s(), sum(map(process_cpu_s, pids))
            result = _probe(spec)
            store_s, cams_s = store.cpu_s() - store0, sum(map(process_cpu_s, pids)) - cams0
            _check(result, store, [c.card for c in docked], clips)
        shutil.rmtree(work)
        return Offload(
            cameras=len(cameras),
            clips=clips,
            bytes=sum(c.total_bytes for c in cameras),
            wall_s=result["wall_s"],
            dock_cpu_s=result["cpu_s"],
            camera_cpu_s=cams_s,
            store_cpu_s=store_s,
            retries=result["failures"],
            rss_start_bytes=result["rss_start_bytes"],
            rss_peak_bytes=result["rss_peak_bytes"],
            runner=result["runner"],
        )
