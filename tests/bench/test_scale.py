"""``python -m bench.scale``: the scale model computed from a results file, as markdown.

The results file here is fixed and small, with round figures, so every number the model prints
can be checked by hand.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from bench.scale import (
    BITRATE,
    DOCK,
    STORE_CLIPS,
    STORE_MBPS,
    Assumptions,
    measured_from,
    model,
)

REPO_ROOT = Path(__file__).resolve().parents[2]


def fig(name: str, value: float, peer_value: float | None = None) -> dict[str, Any]:
    return {"name": name, "value": value, "unit": "", "peer": "", "peer_value": peer_value,
            "ratio": None, "better": "higher", "note": ""}  # fmt: skip


#: 1 MB/s of video (8 Mbit/s); a full 8-bay dock at 40 MB/s; one store process at 50 MB/s.
RESULTS: dict[str, Any] = {
    "mode": "full",
    "date": "2026-11-23T12:00:00+00:00",
    "machine": {"cpu": "test"},
    "figures": [
        fig(BITRATE, 1_050_000.0, peer_value=1_000_000.0),
        fig(DOCK.format(n=8), 40.0),
        fig(DOCK.format(n=3), 30.0),
        fig(STORE_MBPS, 50.0),
        fig(STORE_CLIPS, 5.0),
    ],
}


@pytest.fixture
def results_file(tmp_path: Path) -> Path:
    path = tmp_path / "results.json"
    path.write_text(json.dumps(RESULTS), encoding="utf-8")
    return path


def run_scale(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bench.scale", *args],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def test_the_bitrate_is_the_ring_figures_peer_and_the_dock_the_one_with_every_bay_busy() -> None:
    measured = measured_from(RESULTS, bays=8)
    assert measured.bitrate_bps == 1_000_000.0
    assert measured.dock_mbps == 40.0
    assert measured_from(RESULTS, bays=3).dock_mbps == 30.0


def test_docks_are_set_by_bays_when_their_throughput_has_room() -> None:
    result = model(Assumptions(), measured_from(RESULTS, bays=8))
    # 1,150 cameras over 3 shift changes: 384 dock at once, 8 bays a dock.
    assert result.cameras_at_change == 384
    assert result.docks_for_bays == 48
    # 2 h at 1 MB/s = 7.2 GB a camera, 2.76 TB a change, in 1 h at 40 MB/s a dock: 19.2 docks.
    assert result.shift_bytes == pytest.approx(7.2e9)
    assert result.docks_for_throughput == 20
    assert result.headroom["dock offload MB/s"] == pytest.approx(48 * 40 / 768)


def test_the_store_needs_the_shift_changes_bytes_within_the_window() -> None:
    result = model(Assumptions(), measured_from(RESULTS, bays=8))
    assert result.need_mbps == pytest.approx(768.0)
    assert result.store_processes == 16  # 768 / 50 MB/s, rounded up
    assert result.clips_at_change == 384 * 12  # 2 h in 10 min clips
    assert result.need_clips_s == pytest.approx(384 * 12 / 3600)


def test_storage_is_a_years_footage_and_the_retention_periods_worth() -> None:
    result = model(Assumptions(), measured_from(RESULTS, bays=8))
    assert result.yearly_bytes == pytest.approx(1150 * 365 * 7.2e9)
    assert result.held_bytes == pytest.approx(1.5 * 1150 * 365 * 7.2e9)


def test_the_figure_with_the_least_headroom_limits_first() -> None:
    assert model(Assumptions(), measured_from(RESULTS, 8)).limit == "store ingest MB/s (1 process)"
    slow_docks = Assumptions(bays=3)  # 128 docks at 30 MB/s: plenty; the store still limits
    assert model(slow_docks, measured_from(RESULTS, 3)).limit == "store ingest MB/s (1 process)"
    few_clips = Assumptions(clip_minutes=0.01)  # 12,000 clips a camera: clips/s runs out first
    assert model(few_clips, measured_from(RESULTS, 8)).limit == "store ingest clips/s (1 process)"


def test_the_command_prints_the_tables_and_names_the_run(results_file: Path) -> None:
    done = run_scale("--results", str(results_file))
    assert done.returncode == 0, done.stderr
    assert "`python -m bench.run`, full mode, 2026-11-23T12:00:00+00:00" in done.stdout
    assert "| cameras | 1,150 |" in done.stdout
    assert "| **docks needed** | **48** |" in done.stdout
    assert "| **store API processes at the measured MB/s** | **16** |" in done.stdout
    assert "| **held at 18 months' retention** | **4.5 PB** |" in done.stdout
    assert "Limits first: **store ingest MB/s (1 process)**" in done.stdout


def test_assumptions_are_options(results_file: Path) -> None:
    done = run_scale("--results", str(results_file), "--cameras", "750", "--bays", "3")
    assert done.returncode == 0, done.stderr
    assert "| cameras | 750 |" in done.stdout
    assert "| bays per dock | 3 |" in done.stdout


def test_a_results_file_without_a_figure_is_one_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "results.json"
    path.write_text(json.dumps({**RESULTS, "figures": RESULTS["figures"][:1]}), encoding="utf-8")
    done = run_scale("--results", str(path))
    assert done.returncode == 1
    assert "has no figure" in done.stderr
    assert "rerun 'python -m bench.run'" in done.stderr
