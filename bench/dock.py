"""Dock offload: MB/s from docked cameras to the evidence store, and the dock's memory.

Everything real on loopback, each part its own process (:mod:`bench.dock_rig`): the cameras'
own offload API (:mod:`bench.dock_camera`) on cards of clips sealed once before timing
(:mod:`bench.dock_clips`), the evidence store as shipped (``bwc evidence serve``, as
:mod:`bench.evidence` runs it), and the dock's pipeline (:mod:`bench.dock_probe`): session,
manifest verified, segments spooled with hashing and fsync, clip verified, uploaded, receipt
checked, camera erased, spool cleaned.

Throughput, for 1 camera and for :data:`CAMERAS` cameras at once (each with the same clips),
against this machine's own limits on the same bytes, measured in the same run:

- ``sha256sum`` of one file holding a camera's sealed bytes (one per camera, all at once);
- ``curl`` uploading the same files to :mod:`bench.sink_server` (one transfer per camera at
  once), as :mod:`bench.evidence` does.

Memory: the dock's peak resident set (``VmHWM`` of the process that runs the pipeline) while
it offloads one large clip (2 GB in the full run), next to the same for a clip 10x smaller: if
the dock streams, the two peaks are the same and the ratio is 1.0.
"""

from __future__ import annotations

import re
import resource
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import requests
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from bench.dock_clips import BenchCamera, ClipSize, make_camera, write_concatenated
from bench.dock_rig import Offload, offload_once
from bench.figures import Figure
from bench.peers import NoPeer
from bench.servers import Sink, process_cpu_s, running_sink
from bench.stream import Scenario

CAMERAS = 3  #: docked at once in the multi-camera figures (a dock's bays)
_SHA256_LINE = re.compile(rb"^[0-9a-f]{64}  ", re.MULTILINE)


@dataclass(frozen=True)
class DockSizes:
    per_camera: ClipSize  #: every camera holds these clips in the throughput figures
    large_segments: int  #: the memory figure's one large clip; its peer has a tenth of these
    segment_bytes: int  #: of the memory figure's clips
    repeats: int  #: runs of each throughput measurement (median); memory runs once each


#: Segments are one second of the camera's 8.5 Mbit/s 1080p30 stream: about 1 MB.
SIZES = {
    "full": DockSizes(ClipSize(10, 10, 1_000_000), 2000, 1_000_000, repeats=3),
    # Each run starts a store and a process per camera (seconds): 1 run keeps quick mode short.
    "quick": DockSizes(ClipSize(4, 5, 1_000_000), 100, 1_000_000, repeats=1),
    "smoke": DockSizes(ClipSize(2, 2, 64_000), 20, 64_000, repeats=1),
}


@dataclass(frozen=True)
class PeerRun:
    wall_s: float
    cpu_s: float  #: the peer processes' own (RUSAGE_CHILDREN)
    server_cpu_s: float = 0.0  #: the sink's, for the upload peer


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


Done = subprocess.CompletedProcess[bytes]


def _run_all(commands: list[list[str]]) -> tuple[list[Done], float, float]:
    """Run ``commands`` at once to the end; returns them, their CPU seconds and the wall time.

    CPU is ``RUSAGE_CHILDREN`` before and after, as :func:`bench.peers.run_child` counts it: no
    other child runs meanwhile.
    """
    cpu0, wall0 = _children_cpu_s(), time.perf_counter()
    running = [
        subprocess.Popen(c, stdout=subprocess.PIPE, stderr=subprocess.PIPE) for c in commands
    ]
    done = []
    for process, command in zip(running, commands, strict=True):
        out, err = process.communicate()
        done.append(subprocess.CompletedProcess(command, process.returncode, out, err))
    return done, _children_cpu_s() - cpu0, time.perf_counter() - wall0


def sha256sum(files: list[Path]) -> PeerRun | NoPeer:
    """One ``sha256sum`` per file, all at once."""
    exe = shutil.which("sha256sum")
    if exe is None:
        return NoPeer("sha256sum is not installed: run 'apt-get install coreutils' as root")
    done, cpu_s, wall_s = _run_all([[exe, str(f)] for f in files])
    for run in done:
        if run.returncode != 0 or not _SHA256_LINE.match(run.stdout):
            last = (run.stderr.decode(errors="replace").strip().splitlines() or ["no output"])[-1]
            return NoPeer(f"sha256sum failed with exit status {run.returncode}: {last}")
    return PeerRun(wall_s, cpu_s)


def curl_upload(cameras: list[BenchCamera], work: Path) -> PeerRun | NoPeer:
    """curl ``PUT``s every camera's files to a fresh sink, one transfer per camera at once."""
    exe = shutil.which("curl")
    if exe is None:
        return NoPeer("curl is not installed: run 'apt-get install curl' as root")
    with running_sink() as sink:
        return _curl(exe, cameras, sink, work / "curl.conf")


def _curl(exe: str, cameras: list[BenchCamera], sink: Sink, config: Path) -> PeerRun | NoPeer:
    lines = []
    for camera in cameras:
        for path in camera.files():
            lines.append(f'upload-file = "{path}"')
            lines.append(f'url = "{sink.url}/{camera.device_id}/{path.parent.name}/{path.name}"')
    config.write_text("\n".join(lines) + "\n", encoding="utf-8")
    # -H "Expect:": no 100-continue wait per body (see bench.evidence)
    command = [exe, "--silent", "--show-error", "--fail", "-H", "Expect:", "-K", str(config)]
    if len(cameras) > 1:
        command[1:1] = ["--parallel", "--parallel-max", str(len(cameras))]
    sink0 = process_cpu_s(sink.pid)
    done, cpu_s, wall_s = _run_all([command])
    if done[0].returncode != 0:
        last = done[0].stderr.decode(errors="replace").strip().splitlines() or ["no message"]
        return NoPeer(f"curl failed with exit status {done[0].returncode}: {last[-1]}")
    sink_s = process_cpu_s(sink.pid) - sink0
    files = sum(len(c.files()) for c in cameras)
    total = sum(c.total_bytes for c in cameras)
    got = requests.get(f"{sink.url}/stats", timeout=10).json()
    if got != {"requests": files, "bytes": total}:
        return NoPeer(f"the sink received {got}, not {files} uploads of the clips' bytes")
    return PeerRun(wall_s, cpu_s, sink_s)


def _median(runs: list[Offload]) -> Offload:
    return sorted(runs, key=lambda r: r.wall_s)[len(runs) // 2]


def _median_peer(runs: list[PeerRun | NoPeer]) -> PeerRun | NoPeer:
    missing = [r for r in runs if isinstance(r, NoPeer)]
    if missing:
        return missing[0]
    found = sorted((r for r in runs if isinstance(r, PeerRun)), key=lambda r: r.wall_s)
    return found[len(found) // 2]


def _label(cameras: int) -> str:
    return "1 camera" if cameras == 1 else f"{cameras} cameras at once"


def _offload_note(run: Offload) -> str:
    return (
        f"dock {run.wall_s:.2f} s wall, {run.dock_cpu_s:.2f} CPU s; cameras "
        f"{run.camera_cpu_s:.2f} CPU s; store {run.store_cpu_s:.2f} CPU s; "
        f"{run.retries} retried steps; every clip done, stored and erased"
    )


def _peer_note(name: str, peer: PeerRun | NoPeer, total: int) -> str:
    if isinstance(peer, NoPeer):
        return f"; peer not measured: {peer.reason}"
    sink = f", sink {peer.server_cpu_s:.2f} CPU s" if peer.server_cpu_s else ""
    return (
        f"; {name}: {total / 1e6 / peer.wall_s:.1f} MB/s ({peer.wall_s:.3f} s wall, "
        f"{peer.cpu_s:.2f} CPU s{sink})"
    )


def _throughput_figures(
    cameras: list[BenchCamera], ours: Offload, hashed: PeerRun | NoPeer,
    uploaded: PeerRun | NoPeer, common: str,
) -> list[Figure]:  # fmt: skip
    n = len(cameras)
    total = sum(c.total_bytes for c in cameras)
    label = _label(n)
    hash_peer = "sha256sum of the same bytes (one file per camera)"
    upload_peer = "curl -T of the same files to a plain HTTP sink (/dev/null)"
    if n > 1:
        hash_peer = f"{n} sha256sum at once on the same bytes (one file per camera)"
        upload_peer = f"curl --parallel ({n} transfers) of the same files to a plain HTTP sink"
    runner = f"; the dock: {ours.runner}, {n} {'bay' if n == 1 else 'bays at once'}"
    note = (
        f"{common}{_offload_note(ours)}{runner}{_peer_note('sha256sum', hashed, total)}"
        f"{_peer_note('curl to bench.sink_server', uploaded, total)}"
    )

    def mbps(peer: PeerRun | NoPeer) -> float | None:
        return None if isinstance(peer, NoPeer) else total / 1e6 / peer.wall_s

    name = f"dock offload: MB/s from camera to evidence store, {label}"
    return [
        Figure(
            f"{name}, against hashing", ours.mbps, "MB/s", hash_peer, mbps(hashed), "higher", note
        ),
        Figure(
            f"{name}, against uploading",
            ours.mbps,
            "MB/s",
            upload_peer,
            mbps(uploaded),
            "higher",
            note,
        ),
    ]


def dock_throughput(scenario: Scenario, work: Path) -> list[Figure]:
    """Offload MB/s of 1 camera and of :data:`CAMERAS` at once, against sha256sum and curl."""
    sizes = SIZES[scenario.mode]
    agency = X25519PrivateKey.generate().public_key()
    cameras = [
        make_camera(f"bench-cam-{n}", sizes.per_camera, work / "sealed" / str(n), agency)
        for n in range(CAMERAS)
    ]
    peer_files = [work / "peer" / f"{c.device_id}.bin" for c in cameras]
    peer_files[0].parent.mkdir(parents=True)
    for camera, file in zip(cameras, peer_files, strict=True):
        write_concatenated(camera.files(), file)
    single, many = [], []
    for n in range(sizes.repeats):  # alternating, so a machine slowing down slows both
        single.append(offload_once(cameras[:1], work / f"run-{n}-1"))
        many.append(offload_once(cameras, work / f"run-{n}-{CAMERAS}"))
    figures = []
    repeats = "1 run" if sizes.repeats == 1 else f"median of {sizes.repeats} runs"
    for group, runs in ((cameras[:1], single), (cameras, many)):
        files = peer_files[: len(group)]
        hashed = _median_peer([sha256sum(files) for _ in range(sizes.repeats)])
        uploaded = _median_peer([curl_upload(group, work) for _ in range(sizes.repeats)])
        total = sum(c.total_bytes for c in group)
        common = (
            f"{len(group)} x {sizes.per_camera.describe()} ({total / 1e6:.1f} MB sealed, random "
            f"plaintext), sealed once before timing; {repeats}, each with a fresh store "
            "('bwc evidence serve', 1 API process), cameras and dock, each its own process; "
        )
        figures += _throughput_figures(group, _median(runs), hashed, uploaded, common)
    shutil.rmtree(work)  # hundreds of MB: leave the disk to the next benchmark
    return figures
