"""Exporting decrypted segments as one standard, playable MP4 (remux only, no re-encoding).

Each segment's plaintext is a self-contained fragmented MP4. Packets are copied into one MP4 with
the first segment's stream parameters; each segment is placed right after the previous one on
the timeline, so segments whose timestamps restart at zero still play in order.
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
    cursor = Fraction(0)  # seconds: where the next segment starts in the export
    count = packets = 0
    for index, data in enumerate(plaintexts):
        try:
            with av.open(io.BytesIO(data), "r", format="mp4") as segment:
                if not streams:
                    streams = {s.index: output.add_stream_from_template(s) for s in segment.streams}
                elif len(segment.streams) != len(streams):
                    raise FormatError(f"segment {index}: its streams differ from segment 0")
                cursor, n = _copy_segment(segment, output, streams, cursor)
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
    cursor: Fraction,
) -> tuple[Fraction, int]:
    demuxed = [p for p in segment.demux() if p.dts is not None and p.time_base is not None]
    if not demuxed:
        return cursor, 0
    # place the segment by presentation time: its first frame shows where the last one ended
    start = min(Fraction(_pts(p)) * _tb(p) for p in demuxed)
    end = start
    for packet in demuxed:
        tb, pts = _tb(packet), _pts(packet)
        shift = round((cursor - start) / tb)
        end = max(end, Fraction(pts + max(packet.duration or 0, 0)) * tb)
        packet.dts = _dts(packet) + shift
        packet.pts = pts + shift
        packet.stream = streams[packet.stream.index]
        output.mux(packet)
    return cursor + (end - start), len(demuxed)


def _tb(packet: av.Packet[av.stream.Stream]) -> Fraction:
    assert packet.time_base is not None  # demuxed packets always carry their stream's
    return packet.time_base


def _dts(packet: av.Packet[av.stream.Stream]) -> int:
    assert packet.dts is not None  # filtered out before
    return packet.dts


def _pts(packet: av.Packet[av.stream.Stream]) -> int:
    return packet.pts if packet.pts is not None else _dts(packet)
