"""The tools users would reach for instead, run as child processes on the same bytes.

A peer's CPU time is the child's own user and system time, from ``RUSAGE_CHILDREN`` before and
after it ran (so nothing of this process is counted, and no other child either: they run one at
a time). A peer whose tool is not installed is reported as missing with the reason, never as a
number.
"""

from __future__ import annotations

import resource
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from bench.stream import EncodedStream


@dataclass(frozen=True)
class PeerRun:
    cpu_s: float  #: user + system time of the child
    wall_s: float
    outputs: int  #: files it wrote (segments, copies...), to check it did the work


@dataclass(frozen=True)
class NoPeer:
    """The peer gave no figure: its tool is missing or it failed."""

    reason: str  #: one line: why (not installed, failed) and what to do


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_child(command: list[str]) -> tuple[subprocess.CompletedProcess[str], float, float]:
    """Run ``command`` to the end; returns it with its CPU seconds and wall seconds."""
    cpu0, wall0 = _children_cpu_s(), time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    return done, _children_cpu_s() - cpu0, time.perf_counter() - wall0


def ffmpeg_segment(stream: EncodedStream, out: Path) -> PeerRun | NoPeer:
    """``ffmpeg -c copy -f segment -segment_time 1``: the stream's packets in 1 s MP4 segments.

    It reads ``stream.h264``, the very packets the firmware was fed, and writes each segment as a
    plain MP4 (its default; ffmpeg neither encrypts, hashes nor fsyncs).
    """
    exe = shutil.which("ffmpeg")
    if exe is None:
        return NoPeer("ffmpeg is not installed: run 'make bench-deps' as root (apt-get)")
    out.mkdir(parents=True, exist_ok=True)
    command = [
        exe, "-hide_banner", "-nostdin", "-loglevel", "error", "-y",
        "-f", "h264", "-framerate", str(stream.info.fps), "-i", str(stream.data_path),
        "-c", "copy", "-f", "segment", "-segment_time", "1", "-segment_format", "mp4",
        str(out / "seg%06d.mp4"),
    ]  # fmt: skip
    done, cpu_s, wall_s = run_child(command)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no message"])[-1]
        return NoPeer(f"ffmpeg failed with exit status {done.returncode}: {last}")
    segments = len(list(out.glob("seg*.mp4")))
    if segments == 0:
        return NoPeer("ffmpeg exited 0 but wrote no segments: check its version")
    return PeerRun(cpu_s, wall_s, outputs=segments)
