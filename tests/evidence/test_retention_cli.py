"""``bwc evidence purge --data-dir D``: the purge job from the command line, on the real clock."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from bwc.cli import main
from evidence.config import NS_PER_DAY, EvidenceConfig
from evidence.retention import RetentionService
from evidence.store import bootstrap, open_service
from tests.evidence.test_retention import SUPERVISOR, ManualClock, audit_records, store_clip


def test_the_purge_command_deletes_expired_clips_and_keeps_recent_and_held_ones(
    cfg: EvidenceConfig,
    device_key: Ed25519PrivateKey,
    agency_key: X25519PrivateKey,
    capsys: pytest.CaptureFixture[str],
) -> None:
    clock = ManualClock(time.time_ns() - 20 * NS_PER_DAY)  # routine clips are kept 14 days
    service = open_service(cfg, wall_ns=clock)
    old, held = (store_clip(service, device_key, agency_key) for _ in range(2))
    RetentionService.beside(service).place_hold(held, "2026-CR-0113", "robbery", SUPERVISOR)
    clock.now_ns = time.time_ns()
    recent = store_clip(service, device_key, agency_key)
    service.metadata.close()

    code = main(["evidence", "purge", "--data-dir", str(cfg.data_dir)])
    out = capsys.readouterr().out
    assert code == 0
    assert f"purged {old} " in out and "purged 1 clip(s)" in out
    after = open_service(cfg)
    try:
        assert after.metadata.evidence(old) is None
        assert [after.metadata.evidence(i) is not None for i in (held, recent)] == [True, True]
        [purge] = audit_records(after, "evidence.purged")
        assert purge["data"]["evidence_id"] == old and purge["actor"].startswith("admin:")
    finally:
        after.metadata.close()


def test_the_purge_command_on_a_folder_without_a_store_is_one_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["evidence", "purge", "--data-dir", str(tmp_path / "nothing")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and err[0].startswith("bwc: error: no evidence store in")


def test_the_purge_command_runs_on_a_postgresql_store_whose_data_folder_has_no_database_file(
    tmp_path: Path, pg_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    data_dir = tmp_path / "store"
    (tmp_path / "bwc.toml").write_text(
        f'[evidence]\ndata_dir = "{data_dir}"\ndatabase_url = "{pg_url}"\n'
    )
    bootstrap(EvidenceConfig(data_dir=data_dir, database_url=pg_url))

    code = main(["evidence", "purge", "--config", str(tmp_path / "bwc.toml")])
    assert code == 0, capsys.readouterr().err
    assert "purged 0 clip(s)" in capsys.readouterr().out
    assert not (data_dir / "metadata.sqlite3").exists()
