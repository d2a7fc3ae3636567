"""What the figures were measured on: CPU, cores, memory, kernel, Python, PyAV/FFmpeg, ffmpeg CLI.

Figures from different machines are not comparable, so every results file carries this block.
The temporary folder's filesystem is included because the recording path fsyncs every segment:
tmpfs and an SD card give very different numbers.
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import av


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            key, _, value = line.partition(":")
            # x86 says "model name"; Raspberry Pi kernels say "Model" (the board) or "Hardware".
            if key.strip() in ("model name", "Model", "Hardware") and value.strip():
                return value.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_bytes() -> int:
    try:
        for line in Path("/proc/meminfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def ffmpeg_cli_version() -> str | None:
    """The ``ffmpeg`` on PATH as ``ffmpeg -version`` names it, or None when it is absent."""
    exe = shutil.which("ffmpeg")
    if exe is None:
        return None
    done = subprocess.run(
        [exe, "-hide_banner", "-version"], capture_output=True, text=True, check=False
    )
    first = done.stdout.splitlines()[0] if done.stdout else ""
    # "ffmpeg version 5.1.6-0+deb12u1 Copyright ..." -> "5.1.6-0+deb12u1"
    parts = first.split()
    return parts[2] if len(parts) > 2 and parts[1] == "version" else first or "unknown"


def _filesystem(path: Path) -> str:
    """The type of the filesystem ``path`` lives on (longest mount point that holds it)."""
    best, kind = "", "unknown"
    try:
        mounts = Path("/proc/mounts").read_text(encoding="utf-8").splitlines()
    except OSError:
        return kind
    resolved = str(path.resolve())
    for line in mounts:
        fields = line.split()
        if len(fields) < 3:
            continue
        point = fields[1]
        inside = resolved == point or resolved.startswith(point.rstrip("/") + "/")
        if inside and len(point) > len(best):
            best, kind = point, fields[2]
    return kind


def describe_machine(work_dir: Path) -> dict[str, Any]:
    affinity = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    return {
        "cpu": _cpu_model(),
        "arch": platform.machine(),
        "cores": os.cpu_count(),
        "cores_usable": len(affinity) if affinity is not None else os.cpu_count(),
        "memory_bytes": _memory_bytes(),
        "kernel": platform.release(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "python_implementation": sys.implementation.name,
        "pyav": av.__version__,
        "pyav_ffmpeg": av.ffmpeg_version_info,
        "ffmpeg_cli": ffmpeg_cli_version(),
        "work_dir_fs": _filesystem(work_dir),
    }
