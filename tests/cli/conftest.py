from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from bwc.cli import main
from tests.dock import conftest as dock_fixtures

# the dock tests' fixtures, for the commands that talk to a running dock: a live evidence store,
# the dock's key, docked sim cameras and a dock configured for them
store = dock_fixtures.store
store_sock = dock_fixtures.store_sock
live_store = dock_fixtures.live_store
dock_key = dock_fixtures.dock_key
make_fleet = dock_fixtures.make_fleet
make_dock_cfg = dock_fixtures.make_dock_cfg


@dataclass(frozen=True)
class Run:
    code: int
    out: str
    err: str


@pytest.fixture
def bwc(capsys: pytest.CaptureFixture[str]) -> Callable[..., Run]:
    """Run ``bwc`` in-process with the given arguments and capture what it printed."""

    def run(*argv: str) -> Run:
        code = main(list(argv))
        captured = capsys.readouterr()
        return Run(code, captured.out, captured.err)

    return run


@pytest.fixture
def config_file(tmp_path: Path) -> Callable[[str], Path]:
    """Write a TOML configuration; storage goes under tmp_path so tests leave nothing behind."""

    def write(body: str) -> Path:
        path = tmp_path / "bwc.toml"
        if "[storage]" not in body:
            body += f'\n[storage]\nroot = "{tmp_path / "storage"}"\n'
        path.write_text(body)
        return path

    return write
