"""``python -m bench.run [--quick | --smoke] [--out FILE] [--work DIR]``: every figure, one file.

Encodes the benchmark video once, runs each benchmark in :data:`BENCHMARKS` on it, writes
``{"machine": {...}, "figures": [...]}`` (plus the mode, date and scenario) to ``--out`` and
prints the table. A new benchmark is one more :class:`Benchmark` line here and a function that
returns its :class:`~bench.figures.Figure` objects. docs/bench.md explains each figure.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console

from bench.device import BenchError, recording_cpu, ring_memory
from bench.dock import dock_throughput
from bench.dock_memory import dock_memory
from bench.evidence import evidence_ingest
from bench.evidence_scaled import scaled_ingest
from bench.figures import Figure, render_table, results_json, write_results
from bench.machine import describe_machine
from bench.stream import EncodedStream, Scenario, encode_stream
from bench.triggers import trigger_latency
from bench.update import firmware_install
from bwc.logs import configure_logging

DEFAULT_OUT = Path(__file__).resolve().parent / "results.json"

SCENARIOS = {
    # 1080p30 at 8 Mbit/s: a body camera's usual setting. The stream outlasts the 30 s ring
    # (the firmware's default) so that the ring has wrapped, and makes one minute of recording.
    "full": Scenario("full", 1920, 1080, 30, 8_000_000, seconds=60, ring_s=30),
    # Same picture, fewer seconds, one run of each: under a minute even where encoding 1080p is
    # slow (every evidence-store run starts its server: 3 runs of 3 kinds were half a minute).
    "quick": Scenario("quick", 1920, 1080, 30, 8_000_000, seconds=15, ring_s=10, repeats=1),
    # Seconds of small video: proves the harness runs end to end (tests/bench), nothing more.
    "smoke": Scenario("smoke", 320, 240, 30, 1_000_000, seconds=3, ring_s=1, repeats=1),
}


@dataclass(frozen=True)
class RunContext:
    """What every benchmark gets: the scenario, the encoded stream and a private work folder."""

    scenario: Scenario
    stream: EncodedStream
    work: Path


@dataclass(frozen=True)
class Benchmark:
    title: str  #: shown while it runs
    run: Callable[[RunContext], Sequence[Figure]]  #: one figure or several from one measurement


BENCHMARKS: tuple[Benchmark, ...] = (
    Benchmark("pre-event ring memory", lambda c: [ring_memory(c.stream, c.scenario)]),
    Benchmark(
        "recording path CPU", lambda c: [recording_cpu(c.stream, c.scenario, c.work / "rec")]
    ),
    # 1,000 triggers in full mode, 100 quick, 20 smoke (bench.triggers.TRIGGERS)
    Benchmark("trigger latency", lambda c: trigger_latency(c.scenario, c.work / "triggers")),
    # 20 clips x 10 segments of 1 MB in full mode, 6 x 5 quick, 2 x 2 of 64 kB smoke
    # (bench.evidence.SIZES); 1 API process, then 4 (`--workers 4`) fed by 4 clients at once
    Benchmark("evidence-store ingest", lambda c: evidence_ingest(c.scenario, c.work / "evidence")),
    # the same clips and clients on PostgreSQL + SeaweedFS S3, against rclone to that S3
    # (bench.evidence_scaled); no value, and why, where PostgreSQL or weed cannot run
    Benchmark(
        "scaled evidence-store ingest", lambda c: scaled_ingest(c.scenario, c.work / "scaled")
    ),
    # 1 camera, 3 and 8 at once, 5 clips x 10 segments of 1 MB each in full mode, 2 x 5 quick,
    # 2 x 2 of 64 kB smoke (bench.dock.SIZES); against sha256sum, curl and rclone, same bytes
    Benchmark("dock offload throughput", lambda c: dock_throughput(c.scenario, c.work / "dock")),
    # one clip of 300 segments of 1 MB in full mode, 50 quick, 20 of 64 kB smoke, against one
    # with a tenth of the segments (10x the bytes is what shows flatness, not gigabytes)
    Benchmark("dock memory, large clip", lambda c: dock_memory(c.scenario, c.work / "dock-mem")),
    # a signed bundle of 256 MB in full mode, 64 quick, 4 smoke (bench.update.SIZES) PUT to a
    # docked camera's offload API, against cat + sync, sha256sum --check, cp + sync
    Benchmark("firmware install", lambda c: firmware_install(c.scenario, c.work / "firmware")),
)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.run",
        description="Benchmark the camera firmware against the tools people use instead.",
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="fewer seconds of video: under 1 min")
    mode.add_argument(
        "--smoke", action="store_true", help="seconds of small video: checks the harness only"
    )
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help=f"results file (default {DEFAULT_OUT})"
    )
    parser.add_argument(
        "--work",
        type=Path,
        default=None,
        help="folder for the run's temporary files, e.g. on the card to measure (default: TMPDIR)",
    )
    parser.add_argument(
        "--only",
        metavar="TEXT",
        default=None,
        help="run only the benchmarks whose title contains TEXT (e.g. 'dock', 'trigger')",
    )
    args = parser.parse_args(argv)
    if args.only is not None and not select(args.only):
        titles = ", ".join(repr(b.title) for b in BENCHMARKS)
        parser.error(f"--only {args.only!r} matches no benchmark; titles: {titles}")
    return args


def select(only: str | None) -> list[Benchmark]:
    return [b for b in BENCHMARKS if only is None or only.lower() in b.title.lower()]


def run(
    scenario: Scenario, work: Path, console: Console, benchmarks: Sequence[Benchmark] = BENCHMARKS
) -> tuple[dict[str, object], list[Figure], dict[str, float]]:
    """The machine, every figure, and the wall seconds each step took (to keep the run short)."""
    machine = describe_machine(work)
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    with console.status(f"encoding the benchmark video ({scenario.describe()})"):
        stream = encode_stream(scenario, work / "stream")
    seconds["encoding the benchmark video"] = round(time.perf_counter() - started, 1)
    context = RunContext(scenario, stream, work)
    figures: list[Figure] = []
    for benchmark in benchmarks:
        started = time.perf_counter()
        with console.status(f"measuring {benchmark.title}"):
            figures.extend(benchmark.run(context))
        seconds[benchmark.title] = round(time.perf_counter() - started, 1)
    return machine, figures, seconds


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    configure_logging()  # warnings only: the firmware's info lines would bury the table
    scenario = SCENARIOS["quick" if args.quick else "smoke" if args.smoke else "full"]
    # Off a terminal (make, CI logs) rich would wrap the table at 80 columns.
    console = Console(width=None if sys.stdout.isatty() else 150)
    if args.work is not None and not args.work.is_dir():
        console.print(f"[red]--work {args.work} is not a folder: create it or pick another[/red]")
        return 2
    started = time.perf_counter()
    try:
        with tempfile.TemporaryDirectory(prefix="bwc-bench-", dir=args.work) as tmp:
            machine, figures, seconds = run(scenario, Path(tmp), console, select(args.only))
    except BenchError as exc:
        console.print(f"[red]benchmark failed: {exc}[/red]")
        return 1
    elapsed_s = round(time.perf_counter() - started, 1)
    document = results_json(
        machine,
        figures,
        mode=scenario.mode,
        date=datetime.now(UTC).isoformat(timespec="seconds"),
        elapsed_s=elapsed_s,
        seconds=seconds,
        load_average=[round(x, 2) for x in os.getloadavg()],  # a shared machine slows figures
        scenario=asdict(scenario),
    )
    write_results(args.out, document)
    render_table(machine, figures, console, title=f"bwc benchmarks ({scenario.mode} mode)")
    steps = ", ".join(f"{title} {s:.0f} s" for title, s in seconds.items())
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    console.print(f"{elapsed_s:.0f} s in all ({steps}); load average at the end {load}")
    console.print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
