"""Segmenter and mux_fmp4: one GOP per segment, each a fragmented MP4 that plays on its own.

The packets are real: H.264 from the sim camera (its frames carry a machine-readable frame
counter, read back after decoding) and AAC from the sim microphone's tone.
"""

from __future__ import annotations

import io
import itertools
from dataclasses import replace
from fractions import Fraction
from pathlib import Path

import av
import pytest

from custody.export import export_mp4
from device.errors import MediaError
from device.media import NAL_PPS, NAL_SPS, EncodedAudio, nal_units
from device.ring import PreEventRing
from device.segmenter import Segmenter, SegmentMedia, mux_fmp4
from hw.ports.camera import VideoPacket
from tests.device.media_helpers import (
    Recording,
    box_types,
    decode_audio,
    decode_video,
    frame_counter,
    record,
    time_of,
)

FPS, GOP = 30, 15  # two segments a second keeps the tests short


@pytest.fixture(scope="module")
def recording() -> Recording:
    """10 s of video and audio, as the firmware receives them."""
    return record(300, fps=FPS, gop=GOP, audio=True)


def segment(recording: Recording, *, audio: bool = True) -> list[SegmentMedia]:
    """Run a whole recording through a segmenter, as one clip from its first frame."""
    segmenter = Segmenter(recording.info, recording.audio_format if audio else None)
    segments: list[SegmentMedia] = []
    for event in recording.events:
        if isinstance(event, VideoPacket):
            if (done := segmenter.push_video(event)) is not None:
                segments.append(done)
        else:
            segmenter.push_audio(event)
    return segments + segmenter.flush()


@pytest.fixture(scope="module")
def segments(recording: Recording) -> list[SegmentMedia]:
    return segment(recording)


@pytest.fixture(scope="module")
def files(recording: Recording, segments: list[SegmentMedia]) -> list[bytes]:
    return [mux_fmp4(s, recording.info, recording.audio_format) for s in segments]


def at(packet: VideoPacket | EncodedAudio) -> Fraction:
    return packet.pts * packet.time_base


# ---- cutting -------------------------------------------------------------------------------


def test_each_segment_is_one_whole_gop(segments: list[SegmentMedia]) -> None:
    assert [s.index for s in segments] == list(range(300 // GOP))
    for s in segments:
        assert [p.keyframe for p in s.video] == [True] + [False] * (GOP - 1)
        assert (s.first_pts, s.end_pts) == (s.video[0].pts, s.video[0].pts + GOP)


def test_segments_follow_each_other_without_gaps(segments: list[SegmentMedia]) -> None:
    assert all(a.end_pts == b.first_pts for a, b in itertools.pairwise(segments))


def test_audio_goes_to_the_segment_whose_span_holds_it(segments: list[SegmentMedia]) -> None:
    for s in segments:
        assert s.audio, f"segment {s.index} has no audio"
        assert all(s.start_s <= at(a) < s.end_s for a in s.audio)


def test_every_audio_packet_of_the_clip_is_kept_once_in_order(
    recording: Recording, segments: list[SegmentMedia]
) -> None:
    kept = [a for s in segments for a in s.audio]
    in_clip = [a for a in recording.audio if 0 <= at(a) < segments[-1].end_s]
    assert kept == in_clip


def test_a_segment_waits_for_audio_that_arrives_after_its_key_frame(
    recording: Recording,
) -> None:
    segmenter = Segmenter(recording.info, recording.audio_format)
    video, audio = recording.video, recording.audio
    for packet in video[: GOP + 1]:  # a whole GOP, then the next key frame
        assert segmenter.push_video(packet) is None
    tail = [a for a in audio if at(a) < Fraction(GOP, FPS)]
    for late in tail:
        segmenter.push_audio(late)
    assert segmenter.push_video(video[GOP + 1]) is None  # audio has not reached the cut yet
    segmenter.push_audio(next(a for a in audio if at(a) >= Fraction(GOP, FPS)))  # caught up
    done = segmenter.push_video(video[GOP + 2])
    assert done is not None
    assert done.audio == tuple(a for a in tail if at(a) >= 0)


def test_a_silent_microphone_delays_a_segment_by_at_most_the_audio_lag(
    recording: Recording,
) -> None:
    segmenter = Segmenter(recording.info, recording.audio_format, max_audio_lag_s=0.2)
    released = [segmenter.push_video(p) is not None for p in recording.video[: 2 * GOP]]
    assert released.index(True) == GOP + 6  # 0.2 s at 30 fps after the cut at frame 15


def test_without_an_audio_format_segments_are_handed_out_at_the_key_frame(
    recording: Recording,
) -> None:
    segmenter = Segmenter(recording.info, None)
    released = [segmenter.push_video(p) is not None for p in recording.video[: 2 * GOP]]
    assert released.index(True) == GOP
    segmenter.push_audio(recording.audio[0])
    assert segmenter.dropped_audio == 1


def test_flush_closes_the_last_partial_segment(recording: Recording) -> None:
    segmenter = Segmenter(recording.info, recording.audio_format)
    for packet in recording.video[: 2 * GOP + 10]:
        segmenter.push_video(packet)
    last = segmenter.flush()[-1]
    assert (last.first_pts, last.end_pts, len(last.video)) == (2 * GOP, 2 * GOP + 10, 10)
    assert segmenter.flush() == []


def test_video_before_the_first_key_frame_is_dropped(recording: Recording) -> None:
    segmenter = Segmenter(recording.info, None)
    for packet in recording.video[5 : GOP + 3]:
        segmenter.push_video(packet)
    (only,) = segmenter.flush()
    assert only.first_pts == GOP
    assert segmenter.dropped_video == GOP - 5


def test_video_going_back_in_time_is_refused(recording: Recording) -> None:
    segmenter = Segmenter(recording.info, None)
    segmenter.push_video(recording.video[0])
    segmenter.push_video(recording.video[1])
    with pytest.raises(MediaError, match="camera restarted"):
        segmenter.push_video(recording.video[0])


# ---- muxing: each segment alone ------------------------------------------------------------


def test_a_segment_is_a_fragmented_mp4_with_its_header_first(files: list[bytes]) -> None:
    for data in files:
        assert box_types(data)[:4] == ["ftyp", "moov", "moof", "mdat"]


def test_the_header_describes_the_streams_from_the_segments_own_key_frame(
    recording: Recording, segments: list[SegmentMedia], files: list[bytes]
) -> None:
    sps, pps = nal_units(segments[3].video[0].data)[:2]
    with av.open(io.BytesIO(files[3]), "r", format="mp4") as container:
        video, audio = container.streams.video[0], container.streams.audio[0]
        avcc = video.codec_context.extradata
        assert avcc is not None and avcc[0] == 1  # an avcC record, as MP4 requires
        assert sps in avcc and pps in avcc
        assert recording.audio_format is not None
        assert audio.codec_context.extradata == recording.audio_format.extradata


def test_every_segment_decodes_alone(
    recording: Recording, segments: list[SegmentMedia], files: list[bytes]
) -> None:
    for s, data in zip(segments, files, strict=True):
        frames = decode_video(data)
        assert len(frames) == len(s.video)
        assert {(f.width, f.height) for f in frames} == {(160, 120)}
        assert [frame_counter(f) for f in frames] == [p.pts for p in s.video]


def test_a_segment_keeps_the_original_timestamps(
    segments: list[SegmentMedia], files: list[bytes]
) -> None:
    for s, data in zip(segments, files, strict=True):
        frames = decode_video(data)
        assert [time_of(f) for f in frames] == [at(p) for p in s.video]


def test_audio_is_in_every_segment_and_decodes(
    segments: list[SegmentMedia], files: list[bytes]
) -> None:
    for s, data in zip(segments, files, strict=True):
        frames = decode_audio(data)
        assert sum(f.samples for f in frames) == 1024 * len(s.audio)
        assert frames[0].sample_rate == 48_000
        assert time_of(frames[0]) == at(s.audio[0])


def test_a_segment_weighs_about_one_gop(segments: list[SegmentMedia], files: list[bytes]) -> None:
    for s, data in zip(segments, files, strict=True):
        assert s.media_bytes < len(data) < s.media_bytes + 4096


def test_the_first_segment_after_the_ring_wrapped_many_times_decodes_alone(
    recording: Recording,
) -> None:
    ring = PreEventRing(1.0, 1 << 30, keep_audio=False)
    for packet in recording.video[:277]:
        ring.push_video(packet)
    assert ring.evicted_gops > 10
    segmenter = Segmenter(recording.info, recording.audio_format)
    first = (segmenter.push_snapshot(ring.snapshot()) + segmenter.flush())[0]
    frames = decode_video(mux_fmp4(first, recording.info, recording.audio_format))
    assert first.first_pts == ring.snapshot().video[0].pts > 200
    assert [frame_counter(f) for f in frames] == [p.pts for p in first.video]


def test_pre_event_segments_without_audio_still_carry_the_audio_track(
    recording: Recording,
) -> None:
    ring = PreEventRing(1.0, 1 << 30, keep_audio=False)
    for packet in recording.video[:100]:
        ring.push_video(packet)
    segmenter = Segmenter(recording.info, recording.audio_format)
    first = (segmenter.push_snapshot(ring.snapshot()) + segmenter.flush())[0]
    data = mux_fmp4(first, recording.info, recording.audio_format)
    with av.open(io.BytesIO(data), "r", format="mp4") as container:
        assert [s.type for s in container.streams] == ["video", "audio"]
    assert first.audio == ()
    assert len(decode_video(data)) == len(first.video)


def test_a_key_frame_without_parameter_sets_cannot_be_muxed(
    recording: Recording, segments: list[SegmentMedia]
) -> None:
    key = segments[1].video[0]
    slices = [u for u in nal_units(key.data) if u[0] & 0x1F not in (NAL_SPS, NAL_PPS)]
    bare = replace(key, data=b"".join(b"\0\0\0\1" + u for u in slices))
    torn = replace(segments[1], video=(bare, *segments[1].video[1:]))
    with pytest.raises(MediaError, match="SPS/PPS"):
        mux_fmp4(torn, recording.info, recording.audio_format)


def test_a_segment_not_starting_on_a_key_frame_cannot_be_muxed(
    recording: Recording, segments: list[SegmentMedia]
) -> None:
    headless = replace(segments[1], video=segments[1].video[1:])
    with pytest.raises(MediaError, match="key frame"):
        mux_fmp4(headless, recording.info, recording.audio_format)


# ---- a clip: segments joined ---------------------------------------------------------------


def test_the_segments_decode_to_every_frame_once_in_order(
    recording: Recording, files: list[bytes]
) -> None:
    frames = [f for data in files for f in decode_video(data)]
    assert [frame_counter(f) for f in frames] == list(range(300))
    times = [time_of(f) for f in frames]
    assert times == [Fraction(n, FPS) for n in range(300)]


def join(files: list[bytes], out: Path) -> None:
    """Stream-copy every segment's packets, timestamps untouched, into one plain MP4."""
    with av.open(str(out), "w", format="mp4") as joined:
        streams: dict[int, av.stream.Stream] = {}
        for data in files:
            with av.open(io.BytesIO(data), "r", format="mp4") as part:
                if not streams:
                    streams = {
                        s.index: joined.add_stream_from_template(s, opaque=True)
                        for s in part.streams
                    }
                for packet in part.demux():
                    if packet.dts is not None:
                        packet.stream = streams[packet.stream.index]
                        joined.mux(packet)


def test_joined_segments_play_every_frame_and_the_audio(
    segments: list[SegmentMedia], files: list[bytes], tmp_path: Path
) -> None:
    out = tmp_path / "clip.mp4"
    join(files, out)
    with av.open(str(out)) as container:
        frames = list(container.decode(video=0))
    assert [frame_counter(f) for f in frames] == list(range(300))
    assert [time_of(f) for f in frames] == [Fraction(n, FPS) for n in range(300)]
    audio = decode_audio(out.read_bytes())
    starts = [time_of(f) for f in audio]
    assert all(b - a == Fraction(1024, 48_000) for a, b in itertools.pairwise(starts))
    assert sum(f.samples for f in audio) == 1024 * sum(len(s.audio) for s in segments)


def test_custodys_exporter_turns_the_segments_into_a_playable_mp4(
    segments: list[SegmentMedia], files: list[bytes], tmp_path: Path
) -> None:
    result = export_mp4(files, tmp_path / "export.mp4")
    with av.open(str(result.path)) as container:
        frames = list(container.decode(video=0))
    assert [frame_counter(f) for f in frames] == list(range(300))
    assert result.packets == sum(len(s.video) + len(s.audio) for s in segments)
