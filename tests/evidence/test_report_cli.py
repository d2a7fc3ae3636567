"""``bwc evidence report --year Y``: run as a real process over a store with a known history."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bwc.cli import main
from evidence.config import EvidenceConfig
from tests.evidence.test_audit_chain import edit_record
from tests.evidence.test_report import History, copy_of, store_with_history


def bwc(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bwc", *args], capture_output=True, text=True, timeout=60
    )


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[EvidenceConfig, History]:
    return store_with_history(tmp_path_factory.mktemp("history"))


@pytest.fixture
def cfg(built: tuple[EvidenceConfig, History], tmp_path: Path) -> EvidenceConfig:
    return copy_of(built[0], tmp_path)


@pytest.fixture
def history(built: tuple[EvidenceConfig, History]) -> History:
    return built[1]


def test_the_json_report_parses_and_carries_the_counts(
    cfg: EvidenceConfig, history: History
) -> None:
    run = bwc("evidence", "report", "--year", "2026", "--data-dir", str(cfg.data_dir), "--json")
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    h = history
    assert (report["year"], report["timezone"]) == (2026, "UTC")
    assert report["stored"] == {"clips": 3, "bytes": sum(h.sizes[i] for i in (h.c, h.d, h.e))}
    assert report["stored_by_month"]["2026-02"]["clips"] == 1
    assert report["purged"]["clips"] == 1
    assert [p["rule"] for p in report["purged_by_rule"]] == ["14 days after storing"]
    holds = [report[k] for k in ("holds_placed", "holds_released", "holds_active_at_year_end")]
    assert holds == [2, 2, 1]
    assert {a["kind"]: a["requests"] for a in report["accesses"]}["downloaded"] == 2
    assert report["refused_by_action"] == {"create upload": 1, "put segment": 1}
    assert report["generated_by"].startswith("admin:")


def test_the_table_report_says_utc_and_how_far_the_chain_verified(
    cfg: EvidenceConfig, history: History
) -> None:
    run = bwc("evidence", "report", "--year", "2025", "--data-dir", str(cfg.data_dir))
    assert run.returncode == 0, run.stderr
    assert "2025-01-01T00:00:00Z to 2026-01-01T00:00:00Z (UTC" in run.stdout
    assert "audit log verified: records 0.." in run.stdout
    for title in ("clips stored by month", "clips purged", "legal holds", "accesses by user"):
        assert title in run.stdout


def test_a_tampered_audit_line_exits_1_with_one_line_naming_the_record(
    cfg: EvidenceConfig, history: History
) -> None:
    seq = edit_record(cfg, "evidence.downloaded", "part", "segment 7")
    run = bwc("evidence", "report", "--year", "2026", "--data-dir", str(cfg.data_dir), "--json")
    assert run.returncode == 1
    assert run.stdout == ""
    [line] = run.stderr.strip().splitlines()
    assert line.startswith("bwc: error: the audit log does not verify")
    assert f"first broken link at seq {seq + 1}" in line


def test_a_folder_without_a_store_is_one_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["evidence", "report", "--year", "2026", "--data-dir", str(tmp_path / "none")])
    [line] = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert line.startswith("bwc: error: no evidence store in")


@pytest.mark.parametrize("year", ["26", "twenty", "1969", "-2026", "10000"])
def test_a_bad_year_is_one_clear_error(
    cfg: EvidenceConfig, capsys: pytest.CaptureFixture[str], year: str
) -> None:
    code = main(["evidence", "report", "--year", year, "--data-dir", str(cfg.data_dir)])
    [line] = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert line.startswith(f"bwc: error: --year {year!r} is not a year")
