"""Choosing the S3 sink in the dock's configuration, and what the dock needs for it."""

from __future__ import annotations

import random
import tomllib
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import ValidationError

from bwc.config import parse_config
from bwc.errors import CliError
from custody.keys import key_id, private_pem, write_atomic
from dock.agent import Dock
from dock.config import DockConfig, S3SinkSettings
from dock.errors import DockSetupError
from dock.s3_sink import S3EvidenceSink
from hw.sim.clock import SimClock

S3_TOML = """
[dock]
data_dir = "var/dock"
store = "s3"

[dock.s3]
endpoint_url = "http://127.0.0.1:8333"
bucket = "agency-evidence"
retention_days = 1095
lock_mode = "COMPLIANCE"
"""


def test_a_dock_s3_table_chooses_the_s3_sink_with_its_retention_and_lock_mode() -> None:
    dock = parse_config(tomllib.loads(S3_TOML)).dock

    assert dock.store == "s3" and dock.s3 is not None
    assert (dock.s3.bucket, dock.s3.retention_days) == ("agency-evidence", 1095)
    assert dock.s3.lock_mode == "COMPLIANCE"
    assert dock.ingest_key_path == Path("var/dock/keys/ingest.key.pem")


def test_store_s3_without_its_table_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match=r"needs a \[dock.s3\] table"):
        DockConfig(data_dir=tmp_path, store="s3")


def test_an_s3_table_while_the_store_is_http_is_refused() -> None:
    with pytest.raises(CliError, match='set store = "s3"'):
        parse_config(tomllib.loads(S3_TOML.replace('store = "s3"', "")))


def test_a_part_size_below_what_s3_accepts_is_refused() -> None:
    with pytest.raises(ValidationError, match="part_bytes"):
        S3SinkSettings(bucket="agency-evidence", retention_days=30, part_bytes=1024 * 1024)


def s3_dock(tmp_path: Path) -> DockConfig:
    cfg = DockConfig(
        data_dir=tmp_path,
        store="s3",
        s3=S3SinkSettings(bucket="agency-evidence", retention_days=30),
    )
    (tmp_path / "keys").mkdir()
    write_atomic(cfg.dock_key_path, private_pem(Ed25519PrivateKey.generate()), mode=0o600)
    return cfg


def test_an_s3_dock_without_its_ingest_key_says_how_to_create_one(tmp_path: Path) -> None:
    with pytest.raises(DockSetupError, match="bwc keys generate --role store --id ingest"):
        Dock(s3_dock(tmp_path), SimClock(virtual=True), rng=random.Random(1))


def test_an_s3_dock_checks_receipts_with_its_own_ingest_key(tmp_path: Path) -> None:
    cfg = s3_dock(tmp_path)
    ingest = Ed25519PrivateKey.generate()
    write_atomic(cfg.ingest_key_path, private_pem(ingest), mode=0o600)

    dock = Dock(cfg, SimClock(virtual=True), rng=random.Random(1))

    assert isinstance(dock.sink, S3EvidenceSink)
    assert key_id(dock.store_key) == key_id(ingest)
    dock.close()
