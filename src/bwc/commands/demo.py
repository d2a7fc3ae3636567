"""``bwc demo``: a simulated shift end to end, with no set-up (the shift itself is bwc.demo).

Progress goes to stderr; the summary (a table, or one JSON object with ``--json``) to stdout.
Everything the shift makes (keys, the cameras' cards, the store, the dock, the MP4 exports) stays
in one folder: ``--out``, or a new temporary one, named at the end.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from bwc.errors import CliError

DEFAULT_PRE_EVENT_S = 5.0
WIDE = 200  # columns of the summary when stdout is not a terminal


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "demo",
        help="simulate a shift: two cameras, triggers, the dock, the evidence store",
        description="Simulate a shift end to end on the embedded evidence store: two officers' "
        "cameras, a holster trigger and a peer beacon, a marker, a stop, a second incident by "
        "double press, then the dock offloads, verifies and erases. Ends with what was stored.",
    )
    parser.add_argument(
        "--out", type=Path, metavar="DIR",
        help="an empty or new folder for everything (default: a temporary one)",
    )  # fmt: skip
    parser.add_argument("--pre-event", type=float, default=DEFAULT_PRE_EVENT_S, metavar="S",
                        help=f"pre-event seconds (default {DEFAULT_PRE_EVENT_S:g})")  # fmt: skip
    parser.add_argument("--json", action="store_true", help="print one JSON object, not a table")
    parser.set_defaults(handler=run_demo)


def run_demo(args: argparse.Namespace) -> int:
    if not 1 <= args.pre_event <= 30:
        raise CliError(f"--pre-event must be between 1 and 30 seconds (got {args.pre_event:g})")
    out = _out_folder(args.out)
    from bwc.demo import STEPS, Video, run_shift, table  # the whole stack loads only here

    errors = Console(stderr=True, highlight=False, soft_wrap=True)
    columns = (TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn())
    with Progress(*columns, console=errors, transient=True) as progress:
        task = progress.add_task("simulated shift", total=STEPS)
        summary = run_shift(
            out, pre_event_s=args.pre_event, video=Video(), say=_Narrator(progress, task)
        )
    if args.json:
        print(json.dumps(summary.to_json(), indent=2))
    else:
        console = Console(highlight=False)
        if not console.is_terminal:  # a pipe or a file: as wide as the table, never folded
            console = Console(highlight=False, width=WIDE)
        console.print(table(summary))
        console.print(f"playable MP4 exports in {out / 'exports'}; everything else in {out}")
        if not summary.ok:
            console.print("[bold red]some clips were not verified, receipted and erased[/]")
    return 0 if summary.ok else 1


def _out_folder(out: Path | None) -> Path:
    if out is None:
        return Path(tempfile.mkdtemp(prefix="bwc-demo-"))
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise CliError(f"--out {out} is not an empty folder: name a new or empty one")
    out.mkdir(parents=True, exist_ok=True)
    return out.resolve()


class _Narrator:
    """Each step advances the bar; each note is a line above it."""

    def __init__(self, progress: Progress, task: TaskID) -> None:
        self._progress = progress
        self._task = task
        self._steps = 0

    def step(self, text: str) -> None:
        if self._steps:
            self._progress.advance(self._task)
        self._steps += 1
        self._progress.update(self._task, description=text)
        self._progress.console.print(f"[bold]{text}[/]")

    def note(self, text: str) -> None:
        self._progress.console.print(f"  {text}")
