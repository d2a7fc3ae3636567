"""Exporting decrypted segments as one standard, playable MP4 (remux only, no re-encoding).

Each segment's plaintext is a self-contained fragmented MP4. Packets are copied into one MP4 with
the first segment's stream parameters. Segments that carry one continuous timeline (as the
camera writes them) keep it, shifted as a whole to start at zero, so audio and video stay in sync
across segment boundaries; a segment whose timestamps jump back (restart at zero) is placed right
after the previous one instead.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import av.container

from custody.errors import CustodyError, FormatError


@dataclass(frozen=True)
class ExportResult:
    path: Path
    segments: int
    packets: int
    duration_s: float


def export_mp4(plaintexts: Iterable[bytes], out: Path) -> ExportResult:
    """Write ``out`` (atomically) from segment plaintexts in clip order."""
    tmp = out.with_name(f".{out.name}.part")
    try:
        with av.open(str(tmp), "w", format="mp4") as output:
            segments, packets, cursor = _remux(plaintexts, output)
        tmp.replace(out)
    except CustodyError:
        tmp.unlink(missing_ok=True)
        raise
    except (av.FFmpegError, OSError) as exc:
        tmp.unlink(missing_ok=True)
        raise FormatError(f"cannot export to {out}: {exc}") from exc
    return ExportResult(out, segments, packets, float(cursor))


def _remux(
    plaintexts: Iterable[bytes], output: av.container.OutputContainer
) -> tuple[int, int, Fraction]:
    streams: dict[int, av.stream.Stream] = {}
    cursor = Fraction(0)  # seconds: the end of what was exported so far
    placed: tuple[Fraction, Fraction] | None = None  # previous segment: (offset, start) in s
    count = packets = 0
    for index, data in enumerate(plaintexts):
        try:
            with av.open(io.BytesIO(data), "r", format="mp4") as segment:
                if not streams:
                    streams = {s.index: output.add_stream_from_template(s) for s in segment.streams}
                elif len(segment.streams) != len(streams):
                    raise FormatError(f"segment {index}: its streams differ from segment 0")
                placed, cursor, n = _copy_segment(segment, output, streams, placed, cursor)
        except av.FFmpegError as exc:
            raise FormatError(f"segment {index}: not a playable MP4 fragment ({exc})") from exc
        count, packets = count + 1, packets + n
    if not count:
        raise FormatError("the clip has no segments: there is nothing to export")
    return count, packets, cursor


def _copy_segment(
    segment: av.container.InputContainer,
    output: av.container.OutputContainer,
    streams: dict[int, av.stream.Stream],
    placed: tuple[Fraction, Fraction] | None,
    cursor: Fraction,
) -> tuple[tuple[Fraction, Fraction] | None, Fraction, int]:
    """Copy one segment; ``placed`` is (offset, exported start) of the previous segment."""
    demuxed = [p for p in segment.demux() if p.dts is not None and p.time_base is not None]
    if not demuxed:
        return placed, cursor, 0
    start = min(Fraction(_pts(p)) * _tb(p) for p in demuxed)
    offset = cursor - start if placed is None else placed[0]
    if placed is not None and start + offset <= placed[1]:
        offset = cursor - start  # the timeline restarted: play it after what came before
    end = cursor
    for packet in demuxed:
        tb, pts = _tb(packet), _pts(packet)
        shift = round(offset / tb)
        end = max(end, Fraction(pts + max(packet.duration or 0, 0)) * tb + offset)
        packet.dts = _dts(packet) + shift
        packet.pts = pts + shift
        packet.stream = streams[packet.stream.index]
        output.mux(packet)
    return (offset, start + offset), end, len(demuxed)


def _tb(packet: av.Packet[av.stream.Stream]) -> Fraction:
    assert packet.time_base is not None  # demuxed packets always carry their stream's
    return packet.time_base


def _dts(packet: av.Packet[av.stream.Stream]) -> int:
    assert packet.dts is not None  # filtered out before
    return packet.dts


def _pts(packet: av.Packet[av.stream.Stream]) -> int:
    return packet.pts if packet.pts is not None else _dts(packet)
