"""``python -m bench.scale [--results FILE] [--cameras N] ...``: the scale model, as markdown.

From the figures a benchmark run measured (``bench/results.json``, written by ``python -m
bench.run``) and a few stated assumptions, how much of what a whole agency needs: docks,
the evidence store's ingest at shift change, storage at the retention period, and which
measured figure runs out first. docs/scale.md holds its output for the 1,150-camera agency of
the source documents; rerun this after a new benchmark run to regenerate it.

Every number in the model is either an assumption (printed with the output, each a command-line
option) or a figure read from the results file by its name; nothing else goes in.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from bench.device import BenchError
from bench.figures import machine_line

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_RESULTS = REPO_ROOT / "bench" / "results.json"

#: The figures the model reads, by name (bench.run writes them).
BITRATE = "pre-event ring: resident memory per buffered second"  #: its peer: the stream bitrate
DOCK = "dock offload: MB/s from camera to evidence store, {n} cameras at once, against hashing"
STORE_MBPS = "evidence-store ingest: MB/s over loopback HTTP, embedded backend, 1 process"
STORE_CLIPS = "evidence-store ingest: clips per second, embedded backend, 1 process"


@dataclass(frozen=True)
class Assumptions:
    cameras: int = 1150  #: Calgary's front-line deployment (seeds/002)
    shift_changes: int = 3  #: per day; an equal share of the cameras docks at each
    recorded_hours: float = 2.0  #: video recorded per camera per shift
    clip_minutes: float = 10.0  #: average clip length (clips per shift = recorded / this)
    window_h: float = 1.0  #: a shift's footage must be in the store this long after it ends
    bays: int = 8  #: per dock (the largest dock the benchmark measured)
    shifts_per_year: int = 365  #: per camera: one shift a day, every day (an upper bound)
    retention_months: float = 18.0  #: Sacramento's retention (seeds/003)


@dataclass(frozen=True)
class Measured:
    bitrate_bps: float  #: bytes per second of video
    dock_mbps: float  #: one dock with every bay busy, MB/s
    store_mbps: float  #: one API process
    store_clips_s: float


@dataclass(frozen=True)
class Model:
    assumptions: Assumptions
    measured: Measured
    shift_bytes: float  #: one camera's footage of one shift
    cameras_at_change: int
    change_bytes: float  #: every camera docking at one shift change
    clips_at_change: int
    offload_h: float  #: one camera's shift on a dock with every bay busy
    docks_for_bays: int
    docks_for_throughput: int
    need_mbps: float  #: the store's ingest to meet the window
    need_clips_s: float
    store_processes: int  #: at the measured per-process MB/s
    yearly_bytes: float
    held_bytes: float  #: at the retention period, steady state
    limit: str  #: the measured figure with the least headroom
    headroom: dict[str, float]  #: capacity / need, for each measured figure


def figure_value(results: Mapping[str, Any], name: str, key: str = "value") -> float:
    for figure in results.get("figures", []):
        if figure.get("name") == name and isinstance(figure.get(key), int | float):
            return float(figure[key])
    raise BenchError(
        f"the results file has no figure {name!r} with a {key}: rerun 'python -m bench.run'"
    )


def measured_from(results: Mapping[str, Any], bays: int) -> Measured:
    return Measured(
        bitrate_bps=figure_value(results, BITRATE, "peer_value"),
        dock_mbps=figure_value(results, DOCK.format(n=bays)),
        store_mbps=figure_value(results, STORE_MBPS),
        store_clips_s=figure_value(results, STORE_CLIPS),
    )


def model(a: Assumptions, m: Measured) -> Model:
    shift_bytes = m.bitrate_bps * a.recorded_hours * 3600
    at_change = math.ceil(a.cameras / a.shift_changes)
    change_bytes = at_change * shift_bytes
    clips = at_change * math.ceil(a.recorded_hours * 60 / a.clip_minutes)
    window_s = a.window_h * 3600
    docks_for_bays = math.ceil(at_change / a.bays)  # each docked camera holds a bay
    docks_for_throughput = math.ceil(change_bytes / (m.dock_mbps * 1e6 * window_s))
    docks = max(docks_for_bays, docks_for_throughput)
    need_mbps = change_bytes / 1e6 / window_s
    need_clips_s = clips / window_s
    headroom = {
        "dock offload MB/s": docks * m.dock_mbps / need_mbps,
        "store ingest MB/s (1 process)": m.store_mbps / need_mbps,
        "store ingest clips/s (1 process)": m.store_clips_s / need_clips_s,
    }
    yearly = a.cameras * a.shifts_per_year * shift_bytes
    return Model(
        assumptions=a,
        measured=m,
        shift_bytes=shift_bytes,
        cameras_at_change=at_change,
        change_bytes=change_bytes,
        clips_at_change=clips,
        offload_h=shift_bytes / (m.dock_mbps / a.bays * 1e6) / 3600,
        docks_for_bays=docks_for_bays,
        docks_for_throughput=docks_for_throughput,
        need_mbps=need_mbps,
        need_clips_s=need_clips_s,
        store_processes=math.ceil(need_mbps / m.store_mbps),
        yearly_bytes=yearly,
        held_bytes=yearly * a.retention_months / 12,
        limit=min(headroom, key=lambda k: headroom[k]),
        headroom=headroom,
    )


def _size(n: float) -> str:
    for unit, scale in (("PB", 1e15), ("TB", 1e12), ("GB", 1e9)):
        if n >= scale:
            return f"{n / scale:,.1f} {unit}"
    return f"{n / 1e6:,.1f} MB"


def render(result: Model, source: str) -> str:
    a, m = result.assumptions, result.measured
    r = result
    lines = [
        f"Measured figures: {source}.",
        "",
        "| assumption | value |",
        "| --- | ---: |",
        f"| cameras | {a.cameras:,} |",
        f"| shift changes a day (an equal share of cameras docks at each) | {a.shift_changes} |",
        f"| video recorded per camera per shift | {a.recorded_hours:g} h |",
        f"| average clip | {a.clip_minutes:g} min |",
        f"| a shift's footage in the store within | {a.window_h:g} h of the shift's end |",
        f"| bays per dock | {a.bays} |",
        f"| shifts per camera per year | {a.shifts_per_year} |",
        f"| retention | {a.retention_months:g} months |",
        "",
        "| measured (results file) | value |",
        "| --- | ---: |",
        f"| stream bitrate, 1080p30 | {m.bitrate_bps * 8 / 1e6:.2f} Mbit/s |",
        f"| one dock, {a.bays} bays busy | {m.dock_mbps:.1f} MB/s "
        f"({m.dock_mbps / a.bays:.2f} MB/s per bay) |",
        f"| evidence store, 1 API process | {m.store_mbps:.1f} MB/s, "
        f"{m.store_clips_s:.2f} clips/s |",
        "",
        "| result | value |",
        "| --- | ---: |",
        f"| footage per camera per shift | {_size(r.shift_bytes)} |",
        f"| cameras docking at one shift change | {r.cameras_at_change:,} |",
        f"| footage at one shift change | {_size(r.change_bytes)}, {r.clips_at_change:,} clips |",
        f"| one camera's shift on a full dock | {r.offload_h * 60:.0f} min |",
        f"| docks for the bays (a docked camera holds one) | {r.docks_for_bays:,} |",
        f"| docks for the offload MB/s within the window | {r.docks_for_throughput:,} |",
        f"| **docks needed** | **{max(r.docks_for_bays, r.docks_for_throughput):,}** |",
        f"| store ingest at shift change | {r.need_mbps:,.0f} MB/s, {r.need_clips_s:.2f} clips/s |",
        f"| **store API processes at the measured MB/s** | **{r.store_processes:,}** |",
        f"| footage a year | {_size(r.yearly_bytes)} |",
        f"| **held at {a.retention_months:g} months' retention** | **{_size(r.held_bytes)}** |",
        "",
        "| measured figure | capacity / need |",
        "| --- | ---: |",
        *(f"| {name} | {value:.2f} |" for name, value in r.headroom.items()),
        "",
        f"Limits first: **{r.limit}** (the least headroom).",
    ]
    return "\n".join(lines) + "\n"


def describe_source(results: Mapping[str, Any], path: Path) -> str:
    """Which run: the file, the command that wrote it, its date, the machine and its load."""
    mode = str(results.get("mode", "?"))
    command = "python -m bench.run" + ("" if mode == "full" else f" --{mode}")
    try:
        shown = path.resolve().relative_to(REPO_ROOT)
    except ValueError:
        shown = Path(path.name)
    load = results.get("load_average")
    busy = f"; load average at its end {', '.join(map(str, load))}" if load else ""
    return (
        f"`{shown}` of `{command}`, {mode} mode, {results.get('date', '?')}, "
        f"{results.get('elapsed_s', '?')} s; {machine_line(results.get('machine', {}))}{busy}"
    )


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.scale", description="The scale model from a benchmark run."
    )
    parser.add_argument("--results", type=Path, default=DEFAULT_RESULTS)
    for field in fields(Assumptions):
        kind = int if isinstance(field.default, int) else float
        option = "--" + field.name.replace("_", "-")
        parser.add_argument(
            option, type=kind, default=field.default, help=f"(default {field.default})"
        )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    assumptions = Assumptions(**{f.name: getattr(args, f.name) for f in fields(Assumptions)})
    try:
        results = json.loads(args.results.read_text(encoding="utf-8"))
        measured = measured_from(results, assumptions.bays)
    except (OSError, ValueError, BenchError) as exc:
        print(f"cannot build the scale model from {args.results}: {exc}", file=sys.stderr)
        return 1
    sys.stdout.write(render(model(assumptions, measured), describe_source(results, args.results)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
