"""The HTTP servers the evidence-ingest figures talk to, each in its own process on loopback.

- :func:`running_store`: the real evidence store, ``python -m bwc evidence serve`` on a fresh
  data folder (embedded backend: SQLite in WAL mode and a blob folder), one uvicorn process;
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
STOP_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class Store:
    url: str  #: ``http://127.0.0.1:PORT``
    pid: int
    dock: dict[str, str]  #: headers with the dock's bearer token
    records: dict[str, str]  #: and with the records token
    receipt_key: Ed25519PublicKey  #: verifies the store's receipts
    data_dir: Path


@dataclass(frozen=True)
class Sink:
    url: str
    pid: int


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a running process so far, from ``/proc/PID/stat``."""
    stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii")
    fields = stat.rsplit(")", 1)[1].split()  # the name in parentheses may hold spaces
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


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


def _wait_until_serving(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log.read_text(encoding="utf-8", errors="replace").strip()[-600:]
            raise BenchError(f"'bwc evidence serve' exited {process.returncode}: {tail}")
        try:
            if requests.get(f"{url}/openapi.json", timeout=1).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.05)  # polling with a deadline: the server offers no readiness signal
    raise BenchError(f"'bwc evidence serve' did not answer on {url} within {START_TIMEOUT_S} s")


@contextmanager
def running_store(data_dir: Path, device_id: str, device_key: Ed25519PrivateKey) -> Iterator[Store]:
    """The store on a fresh data folder with ``device_id`` enrolled, serving until the end."""
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
               "--port", str(port), "--data-dir", str(data_dir)]  # fmt: skip
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, cwd=REPO_ROOT)
    try:
        _wait_until_serving(url, process, log)
        yield Store(
            url,
            process.pid,
            _token_headers(cfg.tokens_path, "dock"),
            _token_headers(cfg.tokens_path, "records"),
            receipt_key,
            data_dir,
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
