"""The benchmark harness runs end to end and writes the documented results file.

Benchmarks are not tests: nothing here judges a figure. These tests run ``python -m bench.run
--smoke`` (three seconds of small video) the way ``make bench`` runs it, and check the JSON
shape that docs/bench.md and issue 10 promise, so the harness cannot rot unnoticed.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
FIGURE_KEYS = {"name", "value", "unit", "peer", "peer_value", "ratio", "better", "note"}
MACHINE_KEYS = {"cpu", "cores", "memory_bytes", "kernel", "python", "pyav", "pyav_ffmpeg"}


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], str]:
    """The results document and the printed output of one smoke run."""
    out = tmp_path_factory.mktemp("bench") / "results.json"
    done = subprocess.run(
        [sys.executable, "-m", "bench.run", "--smoke", "--out", str(out)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(out.read_text(encoding="utf-8")), done.stdout


@pytest.fixture(scope="module")
def results(smoke_run: tuple[dict[str, Any], str]) -> dict[str, Any]:
    return smoke_run[0]


def figure(results: dict[str, Any], prefix: str) -> dict[str, Any]:
    matches: list[dict[str, Any]] = [f for f in results["figures"] if f["name"].startswith(prefix)]
    assert len(matches) == 1, [f["name"] for f in results["figures"]]
    return matches[0]


def is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def test_results_describe_the_machine(results: dict[str, Any]) -> None:
    assert results["machine"].keys() >= MACHINE_KEYS
    assert results["machine"]["cores"] >= 1
    assert results["mode"] == "smoke"


def test_every_figure_has_the_documented_fields(results: dict[str, Any]) -> None:
    for fig in results["figures"]:
        assert set(fig) == FIGURE_KEYS
        assert is_number(fig["value"])
        assert fig["better"] in ("lower", "higher")
        assert fig["peer"]


def test_ratio_is_value_over_peer_value(results: dict[str, Any]) -> None:
    for fig in results["figures"]:
        if fig["peer_value"] is None:
            assert fig["ratio"] is None
            assert "peer not measured" in fig["note"]
        else:
            assert is_number(fig["peer_value"]) and fig["peer_value"] > 0
            assert fig["ratio"] == pytest.approx(fig["value"] / fig["peer_value"], rel=1e-12)


def test_ring_memory_is_compared_with_the_encoded_bitrate(results: dict[str, Any]) -> None:
    ring = figure(results, "pre-event ring: resident memory per buffered second")
    assert ring["unit"] == "bytes/s"
    assert ring["better"] == "lower"
    assert ring["peer_value"] > 0  # the bitrate is always measurable: it is our own stream


def test_recording_cpu_is_reported_per_minute_of_video(results: dict[str, Any]) -> None:
    cpu = figure(results, "recording path: firmware CPU per minute of")
    assert cpu["unit"] == "CPU s/min"
    assert cpu["better"] == "lower"
    assert cpu["value"] > 0
    assert "verified" in cpu["note"]  # the clip the firmware wrote was checked


def test_ffmpeg_segmenting_the_same_packets_is_the_recording_peer(
    results: dict[str, Any],
) -> None:
    cpu = figure(results, "recording path: firmware CPU per minute of")
    assert cpu["peer"] == "ffmpeg -c copy -f segment -segment_time 1"


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg is not installed")
def test_the_peer_is_measured_when_ffmpeg_is_installed(results: dict[str, Any]) -> None:
    cpu = figure(results, "recording path: firmware CPU per minute of")
    assert is_number(cpu["peer_value"]) and cpu["peer_value"] > 0


@pytest.mark.skipif(shutil.which("ffmpeg") is not None, reason="ffmpeg is installed")
def test_without_ffmpeg_the_peer_is_empty_and_says_why(results: dict[str, Any]) -> None:
    cpu = figure(results, "recording path: firmware CPU per minute of")
    assert cpu["peer_value"] is None
    assert "ffmpeg is not installed" in cpu["note"]


@pytest.mark.parametrize("q", [50, 99])
def test_trigger_latency_is_reported_against_the_double_press(
    results: dict[str, Any], q: int
) -> None:
    latency = figure(results, f"trigger latency p{q}: BLE holster draw to recording")
    assert latency["unit"] == "ms"
    assert latency["better"] == "lower"
    assert latency["value"] > 0
    assert latency["peer"] == f"officer's double press, same start (p{q})"
    assert is_number(latency["peer_value"]) and latency["peer_value"] > 0


def test_trigger_latency_says_how_many_triggers_and_whether_the_target_is_met(
    results: dict[str, Any],
) -> None:
    p99 = figure(results, "trigger latency p99")
    assert p99["note"].startswith("20 holster draws and 20 double presses")  # smoke: 20 of each
    verdict = "met" if p99["value"] < 50 else "NOT met"
    assert f"target p99 under 50 ms: {verdict};" in p99["note"]


def test_the_table_is_printed(smoke_run: tuple[dict[str, Any], str]) -> None:
    results, printed = smoke_run
    for fig in results["figures"]:
        assert fig["name"] in printed
    assert "wrote" in printed


INGEST_PEER = "curl -T of the same files to a plain HTTP sink (/dev/null)"


@pytest.mark.parametrize(
    ("prefix", "unit"),
    [
        ("evidence-store ingest: MB/s over loopback HTTP, embedded backend, 1 process", "MB/s"),
        ("evidence-store ingest: clips per second, embedded backend, 1 process", "clips/s"),
    ],
)
def test_evidence_ingest_is_reported_against_curl_to_a_plain_sink(
    results: dict[str, Any], prefix: str, unit: str
) -> None:
    ingest = figure(results, prefix)
    assert ingest["unit"] == unit
    assert ingest["better"] == "higher"
    assert ingest["value"] > 0
    assert ingest["peer"] == INGEST_PEER
    assert ingest["note"].startswith("2 clips x 2 segments of 0.064 MB")  # smoke size


def test_evidence_ingest_verifies_every_receipt_from_one_api_process(
    results: dict[str, Any],
) -> None:
    note = figure(results, "evidence-store ingest: MB/s")["note"]
    assert "every receipt verified" in note
    assert "1 API process" in note


def test_clips_per_second_and_megabytes_per_second_come_from_one_run(
    results: dict[str, Any],
) -> None:
    mbps = figure(results, "evidence-store ingest: MB/s")
    clips = figure(results, "evidence-store ingest: clips per second")
    # The same wall time divides both: their ratios to curl are the same number.
    if mbps["ratio"] is not None:
        assert clips["ratio"] == pytest.approx(mbps["ratio"], rel=1e-9)


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_the_ingest_peer_is_measured_when_curl_is_installed(results: dict[str, Any]) -> None:
    ingest = figure(results, "evidence-store ingest: MB/s")
    assert is_number(ingest["peer_value"]) and ingest["peer_value"] > 0
    assert "bench.sink_server" in ingest["note"]


@pytest.mark.skipif(shutil.which("curl") is not None, reason="curl is installed")
def test_without_curl_the_ingest_peer_is_empty_and_says_why(results: dict[str, Any]) -> None:
    ingest = figure(results, "evidence-store ingest: MB/s")
    assert ingest["peer_value"] is None
    assert "curl is not installed" in ingest["note"]
