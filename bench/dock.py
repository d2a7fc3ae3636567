"""Dock offload: MB/s from docked cameras to the evidence store, and the dock's memory.

Everything real on loopback, each part its own process (:mod:`bench.dock_rig`): the cameras'
own offload API (:mod:`bench.dock_camera`) on cards of clips sealed once before timing
(:mod:`bench.dock_clips`), the evidence store as shipped (``bwc evidence serve``, as
:mod:`bench.evidence` runs it), and the dock's pipeline (:mod:`bench.dock_probe`): session,
manifest verified, segments spooled with hashing and fsync, clip verified, uploaded, receipt
checked, camera erased, spool cleaned.

Throughput, for each of :data:`CAMERAS` (1, 3 and 8 cameras docked at once, each with the same
clips), against what one would use instead on the same bytes, measured in the same run
(:mod:`bench.dock_peers`):

- ``sha256sum`` of one file holding a camera's sealed bytes (one per camera, all at once);
- ``curl`` uploading the same files to :mod:`bench.sink_server` (one transfer per camera at
  once), as :mod:`bench.evidence` does;
- ``rclone copy --checksum`` of each camera's clip folders to an S3 endpoint on loopback
  (SeaweedFS, :mod:`bench.s3_target`), one rclone per camera at once.

Memory: the dock's peak resident set (``VmHWM`` of the process that runs the pipeline) while
it offloads one large clip, next to the same for a clip 10x smaller (:mod:`bench.dock_memory`).
"""

from __future__ import annotations

import shutil
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from bench.dock_clips import BenchCamera, ClipSize, make_camera, split_loads
from bench.dock_peers import PeerRun, Rclone, curl_upload, rclone_copy, sha256sum, start_rclone
from bench.dock_rig import DockRig, Offload
from bench.figures import Figure
from bench.peers import NoPeer
from bench.stream import Scenario

CAMERAS = (1, 3, 8)  #: docked at once in each figure: one bay, and a dock's 3 or 8 bays


Runs = dict[int, list[BenchCamera]]  #: one repeat's cameras (with their clips), by camera count


@dataclass(frozen=True)
class DockSizes:
    per_camera: ClipSize  #: every camera holds these clips in the throughput figures
    large_segments: int  #: the memory figure's one large clip; its peer has a tenth of these
    segment_bytes: int  #: of the memory figure's clips
    repeats: int  #: runs of each throughput measurement (median); memory runs once each


#: Segments are one second of the camera's 8.5 Mbit/s 1080p30 stream: about 1 MB. Sizes keep
#: the whole run under 5 minutes (1 in quick mode): every run starts a store and a process per
#: camera, and the dock's time goes per segment (requests, fsyncs) more than per byte.
SIZES = {
    # One run of each: three runs of 1, 3 and 8 cameras were two minutes of process starts.
    "full": DockSizes(ClipSize(5, 10, 1_000_000), 300, 1_000_000, repeats=1),
    "quick": DockSizes(ClipSize(2, 5, 1_000_000), 50, 1_000_000, repeats=1),
    "smoke": DockSizes(ClipSize(2, 2, 64_000), 20, 64_000, repeats=1),
}


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
        f"dock {run.wall_s:.2f} s wall, {run.dock_cpu_s:.2f} CPU s, peak RSS "
        f"{run.rss_peak_bytes / 1e6:.1f} MB; cameras {run.camera_cpu_s:.2f} CPU s; store "
        f"{run.store_cpu_s:.2f} CPU s; {run.retries} retried steps; every clip done, stored "
        "and erased"
    )


@dataclass(frozen=True)
class _Peer:
    against: str  #: the figure's name ends "against <this>"
    what: str  #: the peer's name in the note
    peer: str  #: the figure's peer, in words
    run: PeerRun | NoPeer


def _peer_note(peer: _Peer, total: int) -> str:
    if isinstance(peer.run, NoPeer):
        return f"; {peer.what}: peer not measured: {peer.run.reason}"
    run = peer.run
    server = f", server {run.server_cpu_s:.2f} CPU s" if run.server_cpu_s else ""
    return (
        f"; {peer.what}: {total / 1e6 / run.wall_s:.1f} MB/s ({run.wall_s:.3f} s wall, "
        f"{run.cpu_s:.2f} CPU s{server})"
    )


def _peers(n: int, hashed: PeerRun | NoPeer, uploaded: PeerRun | NoPeer,
           copied: PeerRun | NoPeer) -> list[_Peer]:  # fmt: skip
    if n == 1:
        hash_peer = "sha256sum of the same bytes (one file per camera)"
        upload_peer = "curl -T of the same files to a plain HTTP sink (/dev/null)"
        copy_peer = "rclone copy --checksum of the same files to S3 on loopback (SeaweedFS)"
    else:
        hash_peer = f"{n} sha256sum at once on the same bytes (one file per camera)"
        upload_peer = f"curl --parallel ({n} transfers) of the same files to a plain HTTP sink"
        copy_peer = f"{n} rclone copy --checksum at once of the same files to S3 on loopback"
    return [
        _Peer("hashing", "sha256sum", hash_peer, hashed),
        _Peer("uploading", "curl to bench.sink_server", upload_peer, uploaded),
        _Peer("rclone", "rclone to SeaweedFS S3", copy_peer, copied),
    ]


#: Why this target: docs/bench.md, figure 6, says it at length.
RCLONE_NOTE = (
    "; rclone: 'rclone copy --checksum --transfers 1', one per camera at once (one file at a "
    "time, as a bay), into a fresh prefix of a SeaweedFS S3 bucket on loopback: one HTTP PUT "
    "per file stored on this disk by another process, the store's kind of target, and the one "
    "where --checksum checks each upload (rclone's MD5 against the server's ETag)"
)


def _throughput_figures(cameras: list[BenchCamera], ours: Offload, peers: list[_Peer],
                        common: str) -> list[Figure]:  # fmt: skip
    n = len(cameras)
    total = sum(c.total_bytes for c in cameras)
    runner = f"; the dock: {ours.runner}, {n} {'bay' if n == 1 else 'bays at once'}"
    measured = "".join(_peer_note(p, total) for p in peers)
    note = f"{common}{_offload_note(ours)}{runner}{measured}{RCLONE_NOTE}"

    def mbps(peer: PeerRun | NoPeer) -> float | None:
        return None if isinstance(peer, NoPeer) else total / 1e6 / peer.wall_s

    name = f"dock offload: MB/s from camera to evidence store, {_label(n)}"
    return [
        Figure(
            f"{name}, against {p.against}", ours.mbps, "MB/s", p.peer, mbps(p.run), "higher", note
        )
        for p in peers
    ]


def _sealed_runs(sizes: DockSizes, work: Path) -> tuple[list[BenchCamera], list[Runs]]:
    """The rig's cameras, and per repeat each run's cameras, each with clips of its own.

    Camera k docks in every run of more than k cameras, with new clips each time (a camera
    never offers an erased clip again); every run's clips have the same sizes.
    """
    agency = X25519PrivateKey.generate().public_key()
    cameras, loads = [], []
    for k in range(max(CAMERAS)):
        uses = sizes.repeats * sum(1 for n in CAMERAS if n > k)
        each = sizes.per_camera
        size = ClipSize(each.clips * uses, each.segments, each.segment_bytes)
        camera = make_camera(f"bench-cam-{k}", size, work / "sealed" / str(k), agency)
        cameras.append(camera)
        loads.append(split_loads(camera, uses))
    repeats = [
        {n: [loads[k].pop() for k in range(n)] for n in CAMERAS} for _ in range(sizes.repeats)
    ]
    return cameras, repeats


def _copy(rclone: Rclone | NoPeer, group: list[BenchCamera], run: str) -> PeerRun | NoPeer:
    return rclone if isinstance(rclone, NoPeer) else rclone_copy(rclone, group, run)


def dock_throughput(scenario: Scenario, work: Path) -> list[Figure]:
    """Offload MB/s of each of :data:`CAMERAS`, against sha256sum, curl and rclone."""
    sizes = SIZES[scenario.mode]
    cameras, repeats = _sealed_runs(sizes, work)
    runs: dict[int, list[Offload]] = {n: [] for n in CAMERAS}
    with DockRig(cameras, work / "rig") as rig:
        for loads in repeats:  # taking turns, so a machine slowing down slows all
            for n in CAMERAS:
                runs[n].append(rig.offload(loads[n]))
    figures = []
    repeated = "1 run" if sizes.repeats == 1 else f"median of {sizes.repeats} runs"
    with ExitStack() as stack:
        rclone = start_rclone(stack, work / "rclone")
        for n in CAMERAS:
            group = repeats[0][n]  # the very files the dock moved in its first run
            hashed = _median_peer([sha256sum(group) for _ in range(sizes.repeats)])
            uploaded = _median_peer([curl_upload(group, work) for _ in range(sizes.repeats)])
            copied = _median_peer([_copy(rclone, group, f"{n}-{r}") for r in range(sizes.repeats)])
            total = sum(c.total_bytes for c in group)
            common = (
                f"{n} x {sizes.per_camera.describe()} ({total / 1e6:.1f} MB sealed, random "
                f"plaintext), sealed once before timing; {repeated}, each with a fresh store "
                "('bwc evidence serve', 1 API process), dock and cards, and the camera "
                "processes started once for every run; "
            )
            peers = _peers(n, hashed, uploaded, copied)
            figures += _throughput_figures(group, _median(runs[n]), peers, common)
    shutil.rmtree(work)  # hundreds of MB: leave the disk to the next benchmark
    return figures
