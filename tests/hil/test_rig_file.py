"""The rig description: the documented bench example parses, and the sim rig runs every test."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.hil import test_acceptance
from tests.hil.report import ResultRow, write_markdown
from tests.hil.rig_file import CAPABILITIES, Rig, RigError, load_rig_file, sim_rig_file

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "bench-rig.example.toml"


def test_the_documented_bench_example_describes_every_capability_on_real_hardware() -> None:
    rig = load_rig_file(EXAMPLE)
    assert rig.kind == "real"
    assert rig.capabilities() == frozenset(CAPABILITIES)
    assert rig.camera.adapter == "picamera2" and rig.io.adapter == "gpiozero"
    assert rig.dock is not None and rig.dock.link == "http://[fe80::1%25usb0]:8080"
    assert rig.power is not None and rig.power.off[0] == "uhubctl"


def test_every_table_of_the_example_is_explained_by_a_comment() -> None:
    lines = EXAMPLE.read_text().splitlines()
    tables = [n for n, line in enumerate(lines) if line.startswith("[")]
    for n in tables:
        explained = "#" in lines[n] or lines[n - 1].lstrip().startswith("#") or "." in lines[n]
        assert explained, f"table {lines[n]} has no comment"


def test_the_sim_rig_offers_every_capability_an_acceptance_test_needs() -> None:
    offered = sim_rig_file().capabilities()
    for name in dir(test_acceptance):
        marks = getattr(getattr(test_acceptance, name), "pytestmark", [])
        for mark in marks:
            if mark.name == "needs":
                assert set(mark.args) <= offered, f"{name} would be skipped in CI"


def test_a_rig_file_that_is_not_toml_is_one_line(tmp_path: Path) -> None:
    broken = tmp_path / "broken.toml"
    broken.write_text("[camera\n")
    with pytest.raises(RigError) as caught:
        load_rig_file(broken)
    assert len(caught.value.problems) == 1
    assert caught.value.problems[0].startswith(f"rig file {broken} is not valid TOML")


def test_a_missing_rig_file_says_what_to_pass(tmp_path: Path) -> None:
    with pytest.raises(RigError, match="does not exist: pass --rig sim or a bench file"):
        load_rig_file(tmp_path / "bench.toml")


def test_the_report_lists_rig_outcomes_figures_and_links_to_clips(tmp_path: Path) -> None:
    clip = tmp_path / "card" / "clips" / "c1"
    rows = [
        ResultRow(
            "t.py::test_a", "passed", 0.5, properties={"latency_ms": "12.0", "clip": str(clip)}
        ),
        ResultRow("t.py::test_b", "skipped", 0.0, reason="rig 'x' lacks power"),
    ]
    out = tmp_path / "report.md"
    write_markdown(out, Rig("sim", sim_rig_file(), link="loopback ports"), rows)
    text = out.read_text()
    assert "| network | loopback ports |" in text
    assert f"| test_a | passed | 0.50 | latency_ms=12.0 | [c1]({clip.as_uri()}) |" in text
    assert "| test_b | skipped | 0.00 | rig 'x' lacks power |  |" in text
    assert "1 of 2 passed." in text
