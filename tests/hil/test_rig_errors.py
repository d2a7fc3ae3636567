"""A bench rig file on a machine without the bench: one clear line per missing resource.

Each test runs pytest in a subprocess, as a QA tester would, and reads what the tester reads.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "docs" / "bench-rig.example.toml"
USAGE_ERROR = 4
FAST_S = 30.0
#: what the example names -> what no host has
ABSENT = {
    "/media/bwc-card": "{folder}/no-card",
    '"1-1.2"': '"9-9.9"',
    '"hci0"': '"hci97"',
    '"hci1"': '"hci98"',
    '"uhubctl"': '"bwc-no-such-relay"',
}


def run_pytest(*args: str) -> subprocess.CompletedProcess[str]:
    # only the plugins the project's pytest configuration needs: the others cost seconds to load
    env = {**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "pytest_timeout", "-q",
         *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


@pytest.fixture(scope="module")
def bench_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The documented example, pointed at resources no machine has: absent on any host."""
    folder = tmp_path_factory.mktemp("rig")
    text = EXAMPLE.read_text()
    for documented, absent in ABSENT.items():
        assert documented in text, documented
        text = text.replace(documented, absent.format(folder=folder))
    path = folder / "bench.toml"
    path.write_text(text)
    return path


@pytest.fixture(scope="module")
def bench_run_here(bench_file: Path) -> tuple[subprocess.CompletedProcess[str], float]:
    started = time.perf_counter()
    done = run_pytest("tests/hil", "--rig", str(bench_file))
    return done, time.perf_counter() - started


def test_a_bench_rig_without_its_hardware_is_a_usage_error_not_a_traceback(
    bench_run_here: tuple[subprocess.CompletedProcess[str], float],
) -> None:
    done, took_s = bench_run_here
    assert done.returncode == USAGE_ERROR, done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    assert took_s < FAST_S, f"failing took {took_s:.1f} s"
    assert "passed" not in done.stdout and "failed" not in done.stdout  # no test ran


def test_each_missing_resource_is_one_line_saying_what_to_do(
    bench_run_here: tuple[subprocess.CompletedProcess[str], float], bench_file: Path
) -> None:
    done, _ = bench_run_here
    lines = [line.strip() for line in done.stderr.splitlines() if line.strip()]
    heading = next(line for line in lines if "resource(s) missing" in line)
    assert heading.startswith(f"ERROR: rig {bench_file} (bench-1):")
    count = int(heading.split(": ")[-1].split(" ")[0])
    listed = lines[lines.index(heading) + 1 : lines.index(heading) + 1 + count]
    by_name = dict(line.split(": ", 1) for line in listed)
    assert len(by_name) == count, listed
    assert {"storage", "ble camera", "trigger source", "dock", "power"} <= set(by_name), listed
    assert (
        by_name["storage"]
        == f"no card at {bench_file.parent / 'no-card'}: mount the camera's storage there"
    )
    assert "plug in the trigger-source BLE dongle" in by_name["trigger source"]
    assert "no camera in dock bay 9-9.9" in by_name["dock"]
    assert by_name["power"] == "power switch command 'bwc-no-such-relay' not found: install it"


def test_a_rig_file_with_mistakes_lists_each_one(tmp_path: Path) -> None:
    rig = tmp_path / "typo.toml"
    rig.write_text('kind = "real"\n[camera]\nwidht = 640\n[power]\noff = []\non = ["uhubctl"]\n')
    done = run_pytest("tests/hil", "--rig", str(rig))
    assert done.returncode == USAGE_ERROR
    assert "Traceback" not in done.stderr
    assert f"rig file {rig} is not usable" in done.stderr
    assert f"{rig}: [camera.widht] Extra inputs are not permitted" in done.stderr
    assert f"{rig}: [power.off] List should have at least 1 item" in done.stderr


def test_a_rig_without_a_power_switch_skips_the_power_cut_test_and_says_why(
    tmp_path: Path,
) -> None:
    rig = tmp_path / "no-power.toml"
    rig.write_text('name = "desk"\nkind = "sim"\n[camera]\nadapter = "sim"\n[io]\nadapter = "sim"\n'
                   "[buttons]\nrecord = 17\n")  # fmt: skip
    done = run_pytest(
        "tests/hil/test_acceptance.py::test_power_cut_while_recording_loses_at_most_one_segment",
        "--rig", str(rig), "-rs",
    )  # fmt: skip
    assert done.returncode == pytest.ExitCode.OK, done.stdout + done.stderr
    assert "1 skipped" in done.stdout
    assert f"rig '{rig}' lacks power" in done.stdout
    assert "HIL rig" in done.stdout and "skipped" in done.stdout
