"""``bwc demo`` records from the sim camera and proves the result plays."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import av

from tests.cli.conftest import Run

VIRTUAL_TIME = "[clock]\nvirtual = true\n[camera]\nfps = 30\nkeyframe_interval = 15\n"


def test_demo_reports_frames_key_frames_and_bytes(
    bwc: Callable[..., Run], config_file: Callable[[str], Path], tmp_path: Path
) -> None:
    out = tmp_path / "demo"
    run = bwc(
        "demo", "--config", str(config_file(VIRTUAL_TIME)), "--seconds", "2", "--out", str(out)
    )
    assert run.code == 0, run.err
    text = " ".join(run.out.replace("│", " ").split())
    assert "frames 60" in text
    assert "key frames 4 (every 15 frames)" in text
    assert "60 frames decoded back from the MP4" in text


def test_demo_mp4_plays_every_recorded_frame(
    bwc: Callable[..., Run], config_file: Callable[[str], Path], tmp_path: Path
) -> None:
    out = tmp_path / "demo"
    bwc("demo", "--config", str(config_file(VIRTUAL_TIME)), "--seconds", "1", "--out", str(out))
    with av.open(str(out / "camera.mp4")) as container:
        stream = container.streams.video[0]
        frames = list(container.decode(stream))
    assert len(frames) == 30
    assert (frames[0].width, frames[0].height) == (640, 360)
    assert stream.duration is not None
    assert abs(float(stream.duration * stream.time_base) - 1.0) < 0.05


def test_demo_refuses_a_nonsense_duration(bwc: Callable[..., Run]) -> None:
    run = bwc("demo", "--seconds", "-1")
    assert run.code == 2
    assert run.err.strip() == "bwc: error: --seconds must be between 0 and 600 (got -1)"
