"""One offload, set up fresh and checked: store, docked cameras and the dock, each its own process.

For every run: a fresh evidence store (``bwc evidence serve`` on an empty data folder, every
camera enrolled), a fresh card per camera (:func:`bench.dock_clips.fill_card`) served by
:mod:`bench.dock_camera`, a fresh dock data folder (its key, the cameras it enrols, the store's
receipt key and dock token), then :mod:`bench.dock_probe` offloads every camera. Afterwards the
run must be whole: every clip ``done`` in the dock's ledger, listed by the store, gone from its
card. A broken path cannot pass for a fast one.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bench.device import REPO_ROOT, BenchError
from bench.dock_clips import BenchCamera, clips_left, fill_card, write_camera_keys
from bench.servers import Store, process_cpu_s, running_store
from custody.keys import load_signing_key, private_pem, public_pem, write_atomic
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
    card = folder / "card"
    fill_card(camera, card)
    device_key_file = write_camera_keys(
        folder / "keys", camera.device_key, public_pem(dock_key), store_public
    )
    command = [sys.executable, "-m", "bench.dock_camera", str(card), str(folder / "keys"),
               str(device_key_file), camera.device_id]  # fmt: skip
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


def _enrol(data_dir: Path, cameras: list[BenchCamera]) -> bytes:
    """Bootstrap the store's data folder with every camera enrolled; its receipt key, as PEM."""
    cfg = EvidenceConfig(data_dir=data_dir)
    bootstrap(cfg)  # running_store does it again (it is idempotent) and enrols the first camera
    for camera in cameras[1:]:
        key_file = cfg.devices_path / f"{camera.device_id}.pub.pem"
        write_atomic(key_file, public_pem(camera.device_key), mode=0o644)
    return public_pem(load_signing_key(cfg.receipt_key_path).public_key())


@contextmanager
def _serving_cameras(
    cameras: list[BenchCamera], work: Path, dock_key: Ed25519PrivateKey, store_public: bytes
) -> Iterator[list[_Camera]]:
    processes: list[subprocess.Popen[bytes]] = []
    try:
        for camera in cameras:  # all start at once: each imports FastAPI and uvicorn
            processes.append(_start_camera(camera, work / camera.device_id, dock_key, store_public))
        yield [
            _Camera(
                process, _camera_url(process, camera.device_id), work / camera.device_id / "card"
            )
            for process, camera in zip(processes, cameras, strict=True)
        ]
    finally:
        for process in processes:
            _stop(process)


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


def offload_once(cameras: list[BenchCamera], work: Path) -> Offload:
    """Every clip of ``cameras`` through a fresh store, cameras and dock; checked; cleaned up."""
    work.mkdir(parents=True)
    dock_key = Ed25519PrivateKey.generate()
    store_public = _enrol(work / "store", cameras)
    clips = sum(len(c.clips) for c in cameras)
    with ExitStack() as stack:
        docked = stack.enter_context(_serving_cameras(cameras, work, dock_key, store_public))
        first = cameras[0]
        store = stack.enter_context(
            running_store(work / "store", first.device_id, first.device_key)
        )
        cfg = _dock_folder(work / "dock", dock_key, store, cameras)
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
