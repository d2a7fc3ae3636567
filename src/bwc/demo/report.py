"""The shift's summary: one row per stored clip, as a rich table or one JSON object."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import JustifyMethod
from rich.table import Table

from bwc.demo.measure import StoredClip


@dataclass(frozen=True)
class ShiftSummary:
    out: Path
    pre_event_configured_s: float
    clips: list[StoredClip]
    run_s: float
    frame_s: float  #: one camera frame: how far a clip's start may sit from a pre-event boundary

    @property
    def ok(self) -> bool:
        """Every clip verified, receipted, erased and at least as long before its start as set."""
        floor = self.pre_event_configured_s - self.frame_s
        return bool(self.clips) and all(
            c.verified and c.receipt_verified and c.erased and c.pre_event_s >= floor
            for c in self.clips
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "out": str(self.out),
            "run_s": round(self.run_s, 1),
            "pre_event_configured_s": self.pre_event_configured_s,
            "clips": [clip_json(c, self.pre_event_configured_s) for c in self.clips],
        }


def clip_json(clip: StoredClip, configured_s: float) -> dict[str, Any]:
    header = clip.manifest.header
    return {
        "clip_id": clip.clip_id,
        "evidence_id": clip.evidence_id,
        "camera": clip.camera,
        "device_id": clip.device_id,
        "officer": clip.officer,
        "duration_s": round(clip.media.duration_s, 3),
        "frames": clip.media.frames,
        "pre_event_s": round(clip.pre_event_s, 3),
        "pre_event_configured_s": configured_s,
        "start_input_wall_ns": clip.start_input_wall_ns,
        "buffered_s": None if clip.buffered_s is None else round(clip.buffered_s, 3),
        "trigger": clip.trigger,
        "triggers": [dict(t) for t in header.info.triggers],
        "markers": clip.markers,
        "segments": len(clip.manifest.segments),
        "bytes": clip.bytes,
        "verified": clip.verified,
        "verify_problem": clip.verify_problem,
        "receipt": clip.evidence_id if clip.receipt_verified else None,
        "receipt_verified": clip.receipt_verified,
        "erased": clip.erased,
        "export": str(clip.export),
    }


def table(summary: ShiftSummary) -> Table:
    title = (
        f"simulated shift: {len(summary.clips)} clips; pre-event set to "
        f"{summary.pre_event_configured_s:g} s; the shift ran in {summary.run_s:.0f} s"
    )
    out = Table(title=title, title_justify="left")
    for name, justify in _COLUMNS:
        out.add_column(name, justify=justify, no_wrap=True)
    for clip in summary.clips:
        out.add_row(
            clip.clip_id[:8], clip.camera, clip.officer, f"{clip.media.duration_s:.1f} s",
            f"{clip.pre_event_s:.2f} s",
            "" if clip.buffered_s is None else f"{clip.buffered_s:.2f} s",
            clip.trigger + (f" +{clip.markers} marker" if clip.markers else ""),
            f"{clip.bytes:,}", _yes(clip.verified),
            clip.evidence_id[:8] if clip.receipt_verified else "[bold red]invalid[/]",
            _yes(clip.erased), clip.export.name,
        )  # fmt: skip
    return out


_COLUMNS: tuple[tuple[str, JustifyMethod], ...] = (
    ("clip", "left"), ("camera", "left"), ("officer", "left"), ("duration", "right"),
    ("pre-event", "right"), ("buffered", "right"), ("trigger", "left"), ("bytes", "right"),
    ("verified", "center"), ("receipt", "left"), ("erased", "center"), ("export", "left"),
)  # fmt: skip


def _yes(flag: bool) -> str:
    return "[green]yes[/]" if flag else "[bold red]NO[/]"
