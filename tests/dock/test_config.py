"""Dock configuration: where things live, and refusing what would be unsafe to use."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from pydantic import ValidationError

from dock.agent import Dock
from dock.config import DockConfig, read_token
from dock.errors import DockSetupError
from hw.sim.clock import SimClock


def test_paths_default_to_the_data_folder(tmp_path: Path) -> None:
    cfg = DockConfig(data_dir=tmp_path)
    assert cfg.ledger_path == tmp_path / "ledger.sqlite3"
    assert (cfg.spool_path, cfg.quarantine_path) == (tmp_path / "spool", tmp_path / "quarantine")
    assert cfg.dock_key_path == tmp_path / "keys" / "dock.key.pem"
    assert cfg.devices_path == tmp_path / "devices"


@pytest.mark.parametrize("url", ["ftp://store", "store:8440", "http://"])
def test_a_store_url_that_is_not_http_is_refused(tmp_path: Path, url: str) -> None:
    with pytest.raises(ValidationError, match="store_url"):
        DockConfig(data_dir=tmp_path, store_url=url)


def test_a_token_file_readable_by_others_is_refused(tmp_path: Path) -> None:
    token = tmp_path / "store.token"
    token.write_text("secret-token-value\n")
    token.chmod(0o644)
    with pytest.raises(DockSetupError, match="chmod 600"):
        read_token(token)
    token.chmod(0o600)
    assert read_token(token) == "secret-token-value"


def test_a_missing_token_file_says_what_to_put_there(tmp_path: Path) -> None:
    with pytest.raises(DockSetupError, match="does not exist"):
        read_token(tmp_path / "store.token")


def test_a_dock_without_its_key_says_how_to_create_one(tmp_path: Path) -> None:
    with pytest.raises(DockSetupError, match="bwc keys generate --role dock"):
        Dock(DockConfig(data_dir=tmp_path), SimClock(virtual=True), rng=random.Random(0))
