"""The per-run Markdown report: the rig, versions, each test's outcome, figures and clips."""

from __future__ import annotations

import datetime as dt
import platform
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tests.hil.rig_file import Rig

#: packages whose versions a reader of the report needs to reproduce the run
VERSIONS = ("bwc", "av", "bleak", "gpiozero", "pyusb", "pytest")


@dataclass
class ResultRow:
    nodeid: str
    outcome: str = "passed"
    duration_s: float = 0.0
    reason: str = ""
    properties: dict[str, str] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.nodeid.rpartition("::")[2]

    def figures(self) -> str:
        """Every recorded figure but clip paths, as ``name=value``."""
        shown = [f"{k}={v}" for k, v in sorted(self.properties.items()) if not k.startswith("clip")]
        return " ".join(shown) or self.reason

    def clips(self) -> list[str]:
        return [v for k, v in sorted(self.properties.items()) if k.startswith("clip")]


def versions() -> list[tuple[str, str]]:
    found = [("python", platform.python_version())]
    for name in VERSIONS:
        try:
            found.append((name, metadata.version(name)))
        except metadata.PackageNotFoundError:
            found.append((name, "not installed"))
    return found


def write_markdown(path: Path, rig: Rig, rows: list[ResultRow]) -> None:
    now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    lines = [f"# HIL run on rig {rig.source} ({rig.kind}), {now}", "", "## Rig", "",
             "| resource | played by |", "| --- | --- |"]  # fmt: skip
    lines += [f"| {resource} | {by} |" for resource, by in rig.resources()]
    lines += ["", "## Versions", "", " ".join(f"{n} {v};" for n, v in versions()).rstrip(";")]
    lines += ["", "## Tests", "", "| test | outcome | seconds | figures | clips |",
              "| --- | --- | --- | --- | --- |"]  # fmt: skip
    for row in sorted(rows, key=lambda r: r.nodeid):
        clips = "<br>".join(f"[{Path(c).name}]({Path(c).as_uri()})" for c in row.clips())
        lines.append(f"| {row.name} | {row.outcome} | {row.duration_s:.2f} | "
                     f"{row.figures()} | {clips} |")  # fmt: skip
    passed = sum(r.outcome == "passed" for r in rows)
    lines += ["", f"{passed} of {len(rows)} passed."]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
