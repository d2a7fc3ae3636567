"""The dock's memory does not grow with clip size: its peak RSS for a large clip and a small one.

A dock streams: segments go from the camera to the spool a chunk at a time (hashed as they
come), are verified one segment at a time, and go to the store from the spool file a chunk at a
time. Its memory should be the same for a 300 MB clip as for a 30 MB one, or 2 GB and 200 MB
(the ratio of the sizes is what shows it, not the gigabytes: 2 GB took most of the run's five
minutes). This measures it: one camera holding one large clip (300 segments of 1 MB in the full
run), offloaded end to end by the dock in its own process (:mod:`bench.dock_probe`), whose
peak resident set (``VmHWM``) is the figure; the peer is the same offload of a clip with a
tenth of the segments. Ratio 1.0 is flat; what a long clip does add is its manifest (a few
hundred bytes per segment), parsed.

The large clip is sealed and written once, segment by segment (random plaintext, custody's own
sealing), before anything is timed; the note says how long that took.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from bench.dock import SIZES
from bench.dock_clips import BenchCamera, ClipSize, make_camera
from bench.dock_rig import DockRig, Offload
from bench.figures import Figure
from bench.stream import Scenario

SMALLER = 10  #: the peer clip has this many times fewer segments


def _mb(n: float) -> str:
    return f"{n / 1e6:.1f} MB"


def _describe(camera: BenchCamera, run: Offload) -> str:
    return (
        f"{camera.segments} segments, {_mb(camera.total_bytes)} sealed in {camera.seal_s:.1f} s; "
        f"dock VmRSS {_mb(run.rss_start_bytes)} before the offload, peak VmHWM "
        f"{_mb(run.rss_peak_bytes)} (+{_mb(run.rss_peak_bytes - run.rss_start_bytes)}); "
        f"offloaded at {run.mbps:.1f} MB/s ({run.wall_s:.1f} s wall, dock {run.dock_cpu_s:.1f} "
        f"CPU s, store {run.store_cpu_s:.1f} CPU s, {run.retries} retried steps)"
    )


def dock_memory(scenario: Scenario, work: Path) -> list[Figure]:
    """Peak RSS of the dock offloading one large clip, against a clip ten times smaller."""
    sizes = SIZES[scenario.mode]
    agency = X25519PrivateKey.generate().public_key()
    large_size = ClipSize(1, sizes.large_segments, sizes.segment_bytes)
    small_size = ClipSize(1, max(1, sizes.large_segments // SMALLER), sizes.segment_bytes)
    large = make_camera("bench-cam-large", large_size, work / "sealed-large", agency)
    small = make_camera("bench-cam-small", small_size, work / "sealed-small", agency)
    with DockRig([large, small], work / "rig") as rig:  # each camera serves one of the runs
        large_run = rig.offload([large])
        small_run = rig.offload([small])
    shutil.rmtree(work)  # gigabytes in the full run
    note = (
        f"one camera, one clip of random plaintext in {sizes.segment_bytes / 1e6:g} MB "
        f"segments, sealed and written segment by segment before timing; fresh store and "
        "dock per run, both cameras started once; peak resident set of the dock's own process "
        "(bench.dock_probe). "
        f"Large clip: {_describe(large, large_run)}. Small clip: {_describe(small, small_run)}"
    )
    return [
        Figure(
            name="dock offload: peak resident memory of the dock, one large clip",
            value=large_run.rss_peak_bytes / 1e6,
            unit="MB",
            peer=f"the same offload of a clip {SMALLER}x smaller",
            peer_value=small_run.rss_peak_bytes / 1e6,
            better="lower",
            note=note,
        )
    ]
