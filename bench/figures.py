"""A benchmark figure next to its peer, and the results file and table that hold them all.

Every figure is measured in the same run as its peer, on the same bytes, and reported as a ratio
``value / peer_value``. ``better`` says which way is good for *our* value, so a reader knows
whether a ratio above 1.0 is a win or a loss. A peer that could not run (its tool is not
installed) leaves ``peer_value`` and ``ratio`` null and says why in ``note``: the figure is still
reported, never invented. A figure whose own side could not run (the scaled evidence store
without PostgreSQL) leaves ``value`` null too, and its note says why.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from rich.console import Console
from rich.table import Table

Better = Literal["lower", "higher"]


@dataclass(frozen=True)
class Figure:
    name: str
    value: float | None  #: None when our side could not run (PostgreSQL missing); ``note`` says why
    unit: str  #: the unit of ``value`` and ``peer_value`` alike
    peer: str  #: what we compare with, in words a user knows ("encoded bitrate", "ffmpeg ...")
    peer_value: float | None  #: None when the peer could not run; ``note`` says why
    better: Better  #: which way is good for ``value``
    note: str = ""  #: how it was measured: scenario, sizes, anything that qualifies it

    @property
    def ratio(self) -> float | None:
        """``value / peer_value``; None without a peer value (or a zero one)."""
        if self.value is None or self.peer_value is None or self.peer_value == 0:
            return None
        return self.value / self.peer_value

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "value": self.value,
            "unit": self.unit,
            "peer": self.peer,
            "peer_value": self.peer_value,
            "ratio": self.ratio,
            "better": self.better,
            "note": self.note,
        }


def results_json(
    machine: Mapping[str, Any], figures: Sequence[Figure], **extra: Any
) -> dict[str, Any]:
    """The results document: the machine, the figures, and run details (mode, date)."""
    return {**extra, "machine": dict(machine), "figures": [f.to_json() for f in figures]}


def write_results(path: Path, document: Mapping[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")


def machine_line(machine: Mapping[str, Any]) -> str:
    """One line naming the machine, for the table's caption and docs/bench.md."""
    memory_gib = machine.get("memory_bytes", 0) / 1024**3
    return (
        f"{machine.get('cpu')}, {machine.get('cores')} cores, {memory_gib:.1f} GiB, "
        f"Linux {machine.get('kernel')}, Python {machine.get('python')}, "
        f"PyAV {machine.get('pyav')} (FFmpeg {machine.get('pyav_ffmpeg')}), "
        f"ffmpeg CLI {machine.get('ffmpeg_cli') or 'absent'}"
    )


def _number(value: float | None, digits: int = 4) -> str:
    if value is None:
        return "-"
    return f"{value:.{digits}g}" if abs(value) < 1000 else f"{value:,.0f}"


def render_table(
    machine: Mapping[str, Any], figures: Sequence[Figure], console: Console, *, title: str
) -> None:
    table = Table(title=title, caption=machine_line(machine), caption_justify="left")
    table.add_column("figure")
    table.add_column("value", justify="right")
    table.add_column("unit")
    table.add_column("peer")
    table.add_column("peer value", justify="right")
    table.add_column("ratio", justify="right")
    table.add_column("better")
    for figure in figures:
        table.add_row(
            figure.name,
            _number(figure.value),
            figure.unit,
            figure.peer,
            _number(figure.peer_value),
            _number(figure.ratio, 3),
            figure.better,
        )
    console.print(table)
    for figure in figures:
        if figure.note:
            console.print(f"[dim]{figure.name}: {figure.note}[/dim]")
