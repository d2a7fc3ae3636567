"""Cutting a clip's packets into GOP segments, and muxing each into a self-contained fMP4.

A clip is a run of segments of one GOP each (about a second). :class:`Segmenter` takes the ring's
snapshot and then live packets, and cuts a segment each time a key frame arrives after video
(with audio, it hands the segment out once the audio of its span is in): a power cut then loses
at most the segment being filled. :func:`mux_fmp4` turns one segment into
the bytes of a fragmented MP4 that plays on its own (``ftyp`` + ``moov`` + ``moof``/``mdat``):
the header is written first and describes the streams from the segment's own key frame, so a
segment never depends on another one, nor on an index written at the end of a file.

Packets are copied, never re-encoded, and keep their original timestamps: each fragment's
``tfdt`` holds its real decode time (no edit list, no shift to zero), so the segments of a clip
line up into one continuous timeline when joined.

Audio packets go to the segment whose video time span ``[first_pts, end_pts)`` contains their
presentation time, compared in seconds. Both timelines are assumed to share an origin (camera and
microphone opened together). Audio earlier than the clip's first key frame is dropped; audio that
arrives after its segment was handed out goes into the next segment rather than being lost.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import av
import av.container
import av.error

from device.errors import MediaError
from device.media import AudioFormat, EncodedAudio, parameter_sets
from device.ring import RingSnapshot
from hw.ports.camera import CameraInfo, VideoPacket

#: fragmented MP4, one fragment per key frame, moov first and sample-free. ``frag_discont`` with
#: no edit list puts each track's first decode time in its ``tfdt``; ``make_non_negative``
#: stops FFmpeg from shifting the segment to start at zero.
CONTAINER_OPTIONS = {
    "movflags": "frag_keyframe+empty_moov+default_base_moof+frag_discont",
    "use_editlist": "0",
    "avoid_negative_ts": "make_non_negative",
}


@dataclass(frozen=True, slots=True)
class SegmentMedia:
    """One GOP of video, and the audio of its time span, ready to mux."""

    index: int  #: 0 for the clip's first segment
    first_pts: int  #: the key frame's pts, in ``time_base``
    end_pts: int  #: exclusive: the next key frame's pts (or last frame + one frame)
    time_base: Fraction  #: the camera's
    video: tuple[VideoPacket, ...]
    audio: tuple[EncodedAudio, ...]

    @property
    def start_s(self) -> Fraction:
        return self.first_pts * self.time_base

    @property
    def end_s(self) -> Fraction:
        return self.end_pts * self.time_base

    @property
    def duration_s(self) -> Fraction:
        return self.end_s - self.start_s

    @property
    def media_bytes(self) -> int:
        return sum(len(p.data) for p in self.video) + sum(len(p.data) for p in self.audio)


def frame_ticks(info: CameraInfo) -> int:
    """One frame's duration in the camera's time base."""
    return max(1, round(1 / (info.fps * info.time_base)))


def _audio_at(packet: EncodedAudio) -> Fraction:
    return packet.pts * packet.time_base


@dataclass(frozen=True, slots=True)
class _Cut:
    """A segment whose video is complete, waiting for the audio of its span."""

    index: int
    video: tuple[VideoPacket, ...]
    end_pts: int
    end_s: Fraction


class Segmenter:
    """Video and audio packets in, one :class:`SegmentMedia` per GOP out.

    Feed the ring's snapshot first (:meth:`push_snapshot`), then live packets in arrival order,
    then call :meth:`flush` when the clip stops. A clip that starts again needs a new segmenter.

    Audio reaches the firmware later than the video of the same instant (microphone buffers, the
    AAC encoder's one-frame delay), so with audio a segment cut at a key frame is handed out by a
    later :meth:`push_video` call: the first one after an audio packet at or past the segment's
    end has arrived, or after video has run ``max_audio_lag_s`` past it (the microphone stalled,
    audio was muted), or at the next key frame. Audio that comes even later goes into the next
    segment rather than being lost. :meth:`push_audio` never hands out a segment.
    """

    def __init__(
        self, info: CameraInfo, audio: AudioFormat | None, *, max_audio_lag_s: float = 0.5
    ) -> None:
        self._info = info
        self._audio_format = audio
        self._ticks = frame_ticks(info)
        self._max_lag = Fraction(max_audio_lag_s).limit_denominator(1_000_000)
        self._video: list[VideoPacket] = []
        self._cut: _Cut | None = None
        self._pending_audio: list[EncodedAudio] = []
        self._audio_until: Fraction | None = None  # time of the latest audio packet
        self._last_pts: int | None = None
        self._next_index = 0
        self.dropped_video = 0  #: packets before the clip's first key frame
        self.dropped_audio = 0  #: audio before the clip's start, after its end, or not configured

    @property
    def info(self) -> CameraInfo:
        return self._info

    @property
    def audio_format(self) -> AudioFormat | None:
        return self._audio_format

    @property
    def segments_closed(self) -> int:
        """Segments handed out so far; the next one has this index."""
        return self._next_index

    def push_video(self, packet: VideoPacket) -> SegmentMedia | None:
        """Add one packet; returns a finished segment when one is ready."""
        self._check(packet)
        if not self._video and not packet.keyframe:
            self.dropped_video += 1
            return None
        self._last_pts = packet.pts
        at = packet.pts * packet.time_base
        ready = self._release() if packet.keyframe or self._audio_done(at) else None
        if packet.keyframe and self._video:
            self._cut = self._cut_video(packet.pts)
            if ready is None and self._audio_done(at):
                ready = self._release()
        self._video.append(packet)
        return ready

    def push_audio(self, packet: EncodedAudio) -> None:
        """Add one audio packet; it joins the segment whose span holds its time."""
        if self._audio_format is None:
            self.dropped_audio += 1
            return
        self._pending_audio.append(packet)
        at = _audio_at(packet)
        if self._audio_until is None or at > self._audio_until:
            self._audio_until = at

    def push_snapshot(self, snapshot: RingSnapshot) -> list[SegmentMedia]:
        """Feed the ring's packets in time order; returns the segments that are ready."""
        timed: list[tuple[Fraction, int, VideoPacket | EncodedAudio]] = [
            (p.pts * p.time_base, 1, p) for p in snapshot.video
        ]
        timed += [(_audio_at(a), 0, a) for a in snapshot.audio]
        timed.sort(key=lambda item: (item[0], item[1]))
        ready: list[SegmentMedia] = []
        for _at, _kind, packet in timed:
            if isinstance(packet, EncodedAudio):
                self.push_audio(packet)
            elif (segment := self.push_video(packet)) is not None:
                ready.append(segment)
        return ready

    def flush(self) -> list[SegmentMedia]:
        """Hand out every segment still open or waiting; this ends the clip."""
        ready = [self._release()]
        if self._video:
            self._cut = self._cut_video(self._video[-1].pts + self._ticks)
            ready.append(self._release())
        self.dropped_audio += len(self._pending_audio)
        self._pending_audio.clear()
        return [segment for segment in ready if segment is not None]

    def _check(self, packet: VideoPacket) -> None:
        if packet.time_base != self._info.time_base:
            raise MediaError(
                f"video packet time base {packet.time_base} differs from the camera's "
                f"{self._info.time_base}: restart the recording"
            )
        if self._last_pts is not None and packet.pts <= self._last_pts:
            raise MediaError(
                f"video pts went from {self._last_pts} to {packet.pts}: the camera restarted; "
                "seal this clip and start a new one"
            )

    def _audio_done(self, now: Fraction) -> bool:
        """Whether the waiting segment (if any) has all the audio it will get."""
        cut = self._cut
        if cut is None:
            return False
        if self._audio_format is None:
            return True
        arrived = self._audio_until is not None and self._audio_until >= cut.end_s
        return arrived or now - cut.end_s >= self._max_lag

    def _cut_video(self, end_pts: int) -> _Cut:
        cut = _Cut(
            index=self._next_index,
            video=tuple(self._video),
            end_pts=end_pts,
            end_s=end_pts * self._info.time_base,
        )
        self._video = []
        return cut

    def _release(self) -> SegmentMedia | None:
        """Finish the waiting segment (if any) with the audio of its span that has arrived."""
        cut = self._cut
        if cut is None:
            return None
        start = cut.video[0].pts * self._info.time_base
        audio: list[EncodedAudio] = []
        later: list[EncodedAudio] = []
        for packet in self._pending_audio:
            at = _audio_at(packet)
            if at >= cut.end_s:
                later.append(packet)
            elif at < start and cut.index == 0:
                self.dropped_audio += 1  # before the clip's first frame
            else:
                audio.append(packet)  # in its span, or late for the previous segment
        audio.sort(key=_audio_at)
        self._pending_audio = later
        self._cut = None
        self._next_index = cut.index + 1
        return SegmentMedia(
            index=cut.index,
            first_pts=cut.video[0].pts,
            end_pts=cut.end_pts,
            time_base=self._info.time_base,
            video=cut.video,
            audio=tuple(audio),
        )


# ---- muxing ---------------------------------------------------------------------------------


def mux_fmp4(segment: SegmentMedia, info: CameraInfo, audio_format: AudioFormat | None) -> bytes:
    """The segment as a self-contained fragmented MP4; stream copy, original timestamps.

    With ``audio_format`` the file always has an audio track, even when this segment holds no
    audio packets (pre-event footage without audio), so every segment of a clip has the same
    streams and they join without re-muxing surprises.
    """
    if not segment.video or not segment.video[0].keyframe:
        raise MediaError(f"segment {segment.index} does not start with a key frame: cannot mux it")
    if segment.audio and audio_format is None:
        raise MediaError(f"segment {segment.index} holds audio but no audio format was given")
    extradata = parameter_sets(segment.video[0].data)
    buffer = io.BytesIO()
    try:
        with av.open(buffer, "w", format="mp4", container_options=CONTAINER_OPTIONS) as out:
            video, audio = _add_streams(out, info, extradata, audio_format)
            for packet in _interleaved(segment, video, audio, frame_ticks(info)):
                out.mux(packet)
    except av.error.FFmpegError as exc:
        raise MediaError(f"cannot mux segment {segment.index} into MP4: {exc}") from exc
    return buffer.getvalue()


def _add_streams(
    out: av.container.OutputContainer,
    info: CameraInfo,
    video_extradata: bytes,
    audio_format: AudioFormat | None,
) -> tuple[av.stream.Stream, av.stream.Stream | None]:
    # PyAV opens the codec of every stream it creates by name when the header is written (an
    # H.264 *encoder* here), except for streams copied from a template, whose parameters are
    # used as set. So the streams are described on templates in a scratch container that is
    # never written, and the stream's own extradata (SPS/PPS from this segment's key frame,
    # the AAC AudioSpecificConfig) is set on the copies.
    with av.open(io.BytesIO(), "w", format="mp4") as scratch:
        video_template = scratch.add_stream(
            "h264", rate=info.fps, width=info.width, height=info.height, time_base=info.time_base
        )
        video = out.add_stream_from_template(video_template, opaque=True)
        video.codec_context.extradata = video_extradata
        if audio_format is None:
            return video, None
        audio_template = scratch.add_stream(
            "aac",
            rate=audio_format.sample_rate,
            layout=audio_format.layout,
            time_base=audio_format.time_base,
        )
        audio = out.add_stream_from_template(audio_template, opaque=True)
        audio.codec_context.extradata = audio_format.extradata
        return video, audio


def _interleaved(
    segment: SegmentMedia,
    video: av.stream.Stream,
    audio: av.stream.Stream | None,
    ticks: int,
) -> list[av.Packet[Any]]:
    """The segment's packets as PyAV packets, in presentation order across both streams."""
    timed: list[tuple[Fraction, int, av.Packet[Any]]] = []
    for vp in segment.video:
        # No B-frames (the cameras are set up without them), so decode order is pts order.
        packet = _packet(vp.data, vp.pts, vp.time_base, ticks, video)
        packet.is_keyframe = vp.keyframe
        timed.append((vp.pts * vp.time_base, 1, packet))
    if audio is not None:
        for ap in segment.audio:
            packet = _packet(ap.data, ap.pts, ap.time_base, ap.duration, audio)
            timed.append((_audio_at(ap), 0, packet))
    timed.sort(key=lambda item: (item[0], item[1]))
    return [packet for _at, _kind, packet in timed]


def _packet(
    data: bytes, pts: int, time_base: Fraction, duration: int, stream: av.stream.Stream
) -> av.Packet[Any]:
    packet: av.Packet[Any] = av.Packet(data)
    packet.pts = packet.dts = pts
    packet.time_base = time_base
    packet.duration = duration
    packet.stream = stream
    return packet
