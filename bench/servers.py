"""The HTTP servers the evidence-ingest figures talk to, each in its own process on loopback.

- :func:`running_store`: the real evidence store, ``python -m bwc evidence serve`` on a fresh
  data folder (embedded backend: SQLite in WAL mode and a blob folder), one uvicorn process or
  ``--workers N`` API processes under one supervising process;
- :func:`running_sink`: :mod:`bench.sink_server`, the peer's plain HTTP sink.

Both are separate processes, so the client measured here never shares a GIL with a server.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from bench.device import REPO_ROOT, BenchError
from custody.errors import KeyFileError
from custody.keys import load_signing_key, public_pem, write_atomic
from evidence.config import EvidenceConfig
from evidence.errors import EvidenceError
from evidence.store import bootstrap

START_TIMEOUT_S = 30.0  #: uvicorn and FastAPI import in a second or two; a slow CI box, more
#: and more per API worker: each is a fresh interpreter importing the same, all at once
WORKER_START_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 10.0
#: what each uvicorn worker logs once its app is built and it is about to accept connections
WORKER_READY = b"Application startup complete."


@dataclass(frozen=True)
class Store:
    url: str  #: ``http://127.0.0.1:PORT``
    pid: int
    dock: dict[str, str]  #: headers with the dock's bearer token
    records: dict[str, str]  #: and with the records token
    receipt_key: Ed25519PublicKey  #: verifies the store's receipts
    data_dir: Path
    workers: tuple[int, ...] = ()  #: the API worker processes' pids with ``--workers N > 1``

    def cpu_s(self) -> float:
        """CPU seconds so far of the server: its process and every API worker."""
        return sum(process_cpu_s(pid) for pid in (self.pid, *self.workers))


@dataclass(frozen=True)
class Sink:
    url: str
    pid: int


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a running process so far, from ``/proc/PID/stat``."""
    stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii")
    fields = stat.rsplit(")", 1)[1].split()  # the name in parentheses may hold spaces
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def child_pids(parent: int) -> tuple[int, ...]:
    """The pids of ``parent``'s children that multiprocessing spawned (uvicorn's workers)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            spawned = b"multiprocessing.spawn" in (entry / "cmdline").read_bytes()
        except (OSError, IndexError, ValueError):
            continue  # it ended meanwhile
        if ppid == parent and spawned:
            found.append(int(entry.name))
    return tuple(sorted(found))


def _free_port() -> int:
    # `bwc evidence serve` takes a port number, so one is picked here; the window between
    # closing this socket and uvicorn binding the port is a few hundred milliseconds.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _token_headers(tokens: Path, role: str) -> dict[str, str]:
    entries = json.loads(tokens.read_text(encoding="utf-8"))["tokens"]
    token = next(e["token"] for e in entries if e["role"] == role)
    return {"Authorization": f"Bearer {token}"}


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()  # uvicorn shuts down gracefully and the store closes SQLite
        try:
            process.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_until_serving(
    url: str, process: subprocess.Popen[bytes], log: Path, workers: int
) -> None:
    """Until the store answers and, with several workers, every one of them is ready.

    One answering worker is not enough: a timed run must not start while others still import.
    """
    timeout_s = START_TIMEOUT_S + (WORKER_START_TIMEOUT_S * workers if workers > 1 else 0)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log.read_text(encoding="utf-8", errors="replace").strip()[-600:]
            raise BenchError(f"'bwc evidence serve' exited {process.returncode}: {tail}")
        try:
            answers = requests.get(f"{url}/openapi.json", timeout=1).status_code == 200
        except (requests.ConnectionError, requests.Timeout):
            # With workers the port is bound before any of them accepts: the request waits.
            answers = False
        if answers and (workers == 1 or log.read_bytes().count(WORKER_READY) >= workers):
            return
        time.sleep(0.05)  # polling with a deadline: the server offers no readiness signal
    ready = f" with {workers} API processes ready" if workers > 1 else ""
    raise BenchError(f"'bwc evidence serve' did not answer on {url}{ready} within {timeout_s} s")


@contextmanager
def running_store(
    data_dir: Path,
    device_id: str,
    device_key: Ed25519PrivateKey,
    *,
    workers: int = 1,
    config: Path | None = None,
) -> Iterator[Store]:
    """The store on a fresh data folder with ``device_id`` enrolled, serving until the end.

    ``workers`` > 1 runs ``bwc evidence serve --workers N``: N API processes on one port.
    ``config`` is a TOML file whose ``[evidence]`` table picks another backend (the scaled
    one: ``database_url`` and ``[evidence.s3]``); the keys and tokens stay in ``data_dir``.
    """
    cfg = EvidenceConfig(data_dir=data_dir)
    try:
        bootstrap(cfg)  # the server's own first run would do the same; the keys are needed here
        key_file = cfg.devices_path / f"{device_id}.pub.pem"
        write_atomic(key_file, public_pem(device_key), mode=0o644)
        receipt_key = load_signing_key(cfg.receipt_key_path).public_key()
    except (EvidenceError, KeyFileError, OSError) as exc:
        raise BenchError(f"cannot set up the store's data folder {data_dir}: {exc}") from exc
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log = data_dir.parent / f"{data_dir.name}.log"
    command = [sys.executable, "-m", "bwc", "evidence", "serve", "--host", "127.0.0.1",
               "--port", str(port), "--data-dir", str(data_dir),
               "--workers", str(workers)]  # fmt: skip
    if config is not None:
        command += ["--config", str(config)]
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, cwd=REPO_ROOT)
    try:
        _wait_until_serving(url, process, log, workers)
        spawned = child_pids(process.pid) if workers > 1 else ()
        if workers > 1 and len(spawned) != workers:
            raise BenchError(
                f"'bwc evidence serve --workers {workers}' runs {len(spawned)} API processes"
            )
        yield Store(
            url,
            process.pid,
            _token_headers(cfg.tokens_path, "dock"),
            _token_headers(cfg.tokens_path, "records"),
            receipt_key,
            data_dir,
            spawned,
        )
    finally:
        _stop(process)


@contextmanager
def running_sink() -> Iterator[Sink]:
    """:mod:`bench.sink_server` on an ephemeral loopback port, serving until the end."""
    command = [sys.executable, "-m", "bench.sink_server"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, cwd=REPO_ROOT)
    try:
        assert process.stdout is not None  # stdout=PIPE
        first = process.stdout.readline().strip()  # its port, once it listens; b"" if it died
        if not first.isdigit():
            raise BenchError(f"the HTTP sink did not start (exit {process.wait()})")
        yield Sink(f"http://127.0.0.1:{int(first)}", process.pid)
    finally:
        _stop(process)
        if process.stdout is not None:
            process.stdout.close()
