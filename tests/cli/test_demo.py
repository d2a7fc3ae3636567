"""``bwc demo``: a whole simulated shift, run as a real subprocess, checked from its outputs.

One run with ``--json`` and one with the table are shared by the tests below (each takes about
ten seconds). What the demo reports is checked against the files it leaves: the MP4 exports are
decoded here with PyAV and their burned-in stamps read, and the cameras' cards are listed.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest

from hw.sim.testcard import read_stamp
from tests.cli.conftest import Run

FPS = 15  # the demo's cameras (bwc.demo.cameras.Video)
FRAME_S = 1 / FPS
RUN_TIMEOUT_S = 120  # the demo must finish in under two minutes


@dataclass(frozen=True)
class Shift:
    out: Path
    code: int
    stdout: str
    stderr: str

    @property
    def report(self) -> dict[str, Any]:
        doc: dict[str, Any] = json.loads(self.stdout)
        return doc

    @property
    def clips(self) -> list[dict[str, Any]]:
        clips: list[dict[str, Any]] = self.report["clips"]
        return clips


def run_demo(out: Path, *flags: str) -> Shift:
    done = subprocess.run(
        [sys.executable, "-m", "bwc", "demo", "--out", str(out), *flags],
        capture_output=True, text=True, timeout=RUN_TIMEOUT_S, check=False,
    )  # fmt: skip
    return Shift(out, done.returncode, done.stdout, done.stderr)


@pytest.fixture(scope="module")
def shift(tmp_path_factory: pytest.TempPathFactory) -> Shift:
    return run_demo(tmp_path_factory.mktemp("demo") / "shift", "--json")


@pytest.fixture(scope="module")
def table_shift(tmp_path_factory: pytest.TempPathFactory) -> Shift:
    return run_demo(tmp_path_factory.mktemp("demo") / "shift")


def test_the_shift_exits_0_with_every_clip_verified_receipted_and_erased(shift: Shift) -> None:
    assert shift.code == 0, shift.stderr
    assert shift.report["ok"] is True
    for clip in shift.clips:
        assert clip["verified"] is True, clip["verify_problem"]
        assert clip["receipt"] == clip["evidence_id"]
        assert clip["erased"] is True


def test_two_clips_of_incident_one_and_one_of_incident_two_name_their_triggers(
    shift: Shift,
) -> None:
    started = Counter((clip["officer"], clip["trigger"]) for clip in shift.clips)
    assert started == {
        ("officer-4127", "holster"): 1,
        ("officer-5310", "peer beacon of cam-0101"): 1,
        ("officer-4127", "double press"): 1,
    }
    kinds = {clip["trigger"]: clip["triggers"][0]["kind"] for clip in shift.clips}
    assert kinds == {
        "holster": "holster", "peer beacon of cam-0101": "peer", "double press": "button",
    }  # fmt: skip
    holster = next(c for c in shift.clips if c["trigger"] == "holster")
    assert holster["markers"] == 1


def test_every_clip_holds_at_least_the_configured_pre_event_time(shift: Shift) -> None:
    for clip in shift.clips:
        assert clip["pre_event_configured_s"] == 5.0
        assert clip["pre_event_s"] >= clip["pre_event_configured_s"] - FRAME_S, clip
        # the clip begins with what the ring held, give or take the frame the input fell in
        assert abs(clip["pre_event_s"] - clip["buffered_s"]) <= 2 * FRAME_S, clip


def test_each_export_plays_and_starts_the_reported_pre_event_time_before_its_start_input(
    shift: Shift,
) -> None:
    for clip in shift.clips:
        export = Path(clip["export"])
        assert export.parent == shift.out / "exports"
        with av.open(str(export)) as container:
            frames = list(container.decode(video=0))
        assert len(frames) == clip["frames"]
        assert abs(len(frames) * FRAME_S - clip["duration_s"]) < FRAME_S
        stamp = read_stamp(np.asarray(frames[0].to_ndarray(format="gray"), dtype=np.uint8))
        assert stamp is not None, "the first frame carries the sim camera's time stamp"
        before_start_s = (clip["start_input_wall_ns"] / 1e6 - stamp.wall_ms) / 1000
        assert before_start_s == pytest.approx(clip["pre_event_s"], abs=0.002)


def test_the_cameras_cards_hold_no_clip_after_the_dock(shift: Shift) -> None:
    cameras = {clip["camera"] for clip in shift.clips}
    assert cameras == {"BWC1-000101", "BWC1-000102"}
    for serial in cameras:
        clips = shift.out / serial / "card" / "clips"
        assert [p.name for p in clips.iterdir() if not p.name.startswith(".")] == []


def test_the_table_shows_each_clip_and_where_the_exports_are(table_shift: Shift) -> None:
    assert table_shift.code == 0, table_shift.stderr
    exports = sorted(p.name for p in (table_shift.out / "exports").iterdir())
    assert len(exports) == 3
    rows = [line for line in table_shift.stdout.splitlines() if "BWC1-" in line]
    assert len(rows) == 3
    for row in rows:
        cells = [cell.strip() for cell in row.strip("│ ").split("│")]
        assert cells[8] == "yes" and cells[10] == "yes"  # verified, erased
        assert cells[11] in exports
    assert "pre-event set to 5 s" in table_shift.stdout
    assert f"playable MP4 exports in {table_shift.out / 'exports'}" in table_shift.stdout


def test_progress_goes_to_stderr_step_by_step(table_shift: Shift) -> None:
    for step in ("starting the evidence store", "incident one", "incident two", "docking"):
        assert step in table_shift.stderr


def test_demo_refuses_a_folder_that_is_not_empty(bwc: Callable[..., Run], tmp_path: Path) -> None:
    (tmp_path / "something").write_text("")
    run = bwc("demo", "--out", str(tmp_path))
    assert run.code == 2
    assert (
        run.err.strip()
        == f"bwc: error: --out {tmp_path} is not an empty folder: name a new or empty one"
    )


def test_demo_refuses_a_nonsense_pre_event_time(bwc: Callable[..., Run]) -> None:
    run = bwc("demo", "--pre-event", "0")
    assert run.code == 2
    assert run.err.strip() == "bwc: error: --pre-event must be between 1 and 30 seconds (got 0)"
