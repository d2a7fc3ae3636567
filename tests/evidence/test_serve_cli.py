"""``bwc evidence serve``: one command starts the store; a first run says what it created."""

from __future__ import annotations

import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from bwc.cli import main
from custody.keys import Role, write_key_pair


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, Path, list[str]]]:
    """``bwc evidence serve`` in a fresh data folder: (base url, data folder, its first lines)."""
    port, data = free_port(), tmp_path / "store"
    command = [
        sys.executable, "-m", "bwc", "evidence", "serve",
        "--port", str(port), "--data-dir", str(data),
    ]  # fmt: skip
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    lines: list[str] = []
    while not lines or not lines[-1].startswith("serving on"):
        line = proc.stdout.readline()
        if not line:
            pytest.fail(f"bwc evidence serve exited: {proc.wait()} {proc.stderr}")
        lines.append(line.strip())
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 10
    try:
        while True:  # the banner comes just before uvicorn binds: poll until it answers
            try:
                requests.get(f"{url}/openapi.json", timeout=1)
                break
            except requests.ConnectionError:
                if time.monotonic() > deadline:
                    pytest.fail("bwc evidence serve did not answer within 10 s")
                time.sleep(0.02)
        yield url, data, lines
    finally:
        proc.terminate()
        proc.wait(10)
        proc.stdout.close()
        if proc.stderr is not None:
            proc.stderr.close()


def test_first_run_creates_the_receipt_key_and_tokens_and_says_where(
    served: tuple[str, Path, list[str]],
) -> None:
    url, data, lines = served
    key = data / "keys" / "store.key.pem"
    assert f"created receipt signing key: {key}" in lines
    assert f"created development token file: {data / 'tokens.json'}" in lines
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert stat.S_IMODE((data / "tokens.json").stat().st_mode) == 0o600
    spec = requests.get(f"{url}/openapi.json", timeout=10).json()
    assert "/v1/uploads" in spec["paths"]


def test_the_served_store_refuses_requests_without_a_token(
    served: tuple[str, Path, list[str]],
) -> None:
    response = requests.get(f"{served[0]}/v1/evidence", timeout=10)
    assert response.status_code == 401
    assert "Bearer" in response.json()["error"]


def test_a_receipt_key_readable_by_others_is_one_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    files = write_key_pair(tmp_path / "store" / "keys", Role.STORE)
    files.private.chmod(0o644)
    code = main(["evidence", "serve", "--data-dir", str(tmp_path / "store")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and err[0].startswith("bwc: error: receipt key:")
    assert "chmod 600" in err[0]
