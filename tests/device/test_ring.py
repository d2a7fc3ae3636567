"""PreEventRing: whole GOPs, at least pre_event_s of coverage, a hard byte cap.

Examples run on real H.264 from the sim camera; the coverage property runs on synthetic packets
(the ring reads only timestamps, key-frame flags and sizes) so hypothesis can try thousands of
frame rates and GOP lengths quickly.
"""

from __future__ import annotations

import itertools
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from device.media import EncodedAudio
from device.ring import PreEventRing
from hw.ports.camera import VideoPacket
from tests.device.media_helpers import Recording, record

BIG = 1 << 40  # a byte cap that never bites


@pytest.fixture(scope="module")
def thirty_fps() -> Recording:
    """12 s of 30 fps video with a key frame every second, and its audio."""
    return record(360, fps=30, gop=30, audio=True)


def fill(ring: PreEventRing, recording: Recording, frames: int | None = None) -> None:
    video = 0
    for event in recording.events:
        if isinstance(event, VideoPacket):
            if frames is not None and video == frames:
                return
            ring.push_video(event)
            video += 1
        else:
            ring.push_audio(event)


def synthetic(frames: int, *, fps: int, gop: int, size: int = 100) -> list[VideoPacket]:
    tb = Fraction(1, fps)
    return [
        VideoPacket(b"\0" * size, n, tb, n % gop == 0, monotonic_ns=n, wall_ns=n)
        for n in range(frames)
    ]


# ---- coverage ------------------------------------------------------------------------------


def test_a_clip_starts_on_a_key_frame(thirty_fps: Recording) -> None:
    ring = PreEventRing(5.0, BIG, keep_audio=False)
    fill(ring, thirty_fps, frames=250)
    assert ring.snapshot().video[0].keyframe


def test_a_nine_second_ring_yields_at_least_nine_seconds(thirty_fps: Recording) -> None:
    # A ring sized in frames (9 s x 30 fps / GOP rounding) gave 8.1 s elsewhere.
    ring = PreEventRing(9.0, BIG, keep_audio=False)
    fill(ring, thirty_fps)
    snapshot = ring.snapshot()
    assert snapshot.covered_s >= 9.0
    assert (snapshot.video[-1].pts + 1 - snapshot.video[0].pts) / 30 >= 9.0


def test_the_ring_holds_less_than_one_gop_beyond_the_target(thirty_fps: Recording) -> None:
    ring = PreEventRing(9.0, BIG, keep_audio=False)
    fill(ring, thirty_fps)
    assert ring.buffered_s < 9.0 + 1.0 + 1 / 30


def test_coverage_never_drops_below_the_target_while_waiting_for_a_key_frame(
    thirty_fps: Recording,
) -> None:
    ring = PreEventRing(4.0, BIG, keep_audio=False)
    lowest = float("inf")
    for index, packet in enumerate(thirty_fps.video):
        ring.push_video(packet)
        if index >= 4 * 30:  # once four seconds have been recorded
            lowest = min(lowest, ring.snapshot().covered_s)
    assert lowest >= 4.0
    assert ring.evicted_gops > 0


def test_a_clip_started_just_after_a_key_frame_still_has_its_pre_roll(
    thirty_fps: Recording,
) -> None:
    # A trigger (holster, light bar, peer) can arrive at any frame, including right after a
    # key frame: the clip must not start at that key frame with no pre-roll.
    ring = PreEventRing(3.0, BIG, keep_audio=False)
    fill(ring, thirty_fps, frames=8 * 30 + 1)  # the last packet is a key frame
    assert ring.snapshot().video[-1].keyframe
    assert ring.snapshot().covered_s >= 3.0


def test_with_less_recorded_than_the_target_the_clip_has_everything(
    thirty_fps: Recording,
) -> None:
    ring = PreEventRing(30.0, BIG, keep_audio=False)
    fill(ring, thirty_fps, frames=100)
    snapshot = ring.snapshot()
    assert snapshot.video == tuple(thirty_fps.video[:100])
    assert snapshot.covered_s == pytest.approx(100 / 30)


def test_a_zero_second_ring_gives_the_current_gop(thirty_fps: Recording) -> None:
    ring = PreEventRing(0.0, BIG, keep_audio=False)
    fill(ring, thirty_fps, frames=75)
    assert ring.snapshot().video == tuple(thirty_fps.video[60:75])
    assert ring.gops == 1


def test_packets_before_the_first_key_frame_are_dropped(thirty_fps: Recording) -> None:
    ring = PreEventRing(30.0, BIG, keep_audio=False)
    for packet in thirty_fps.video[10:70]:
        ring.push_video(packet)
    assert ring.snapshot().video[0] is thirty_fps.video[30]
    assert ring.dropped_video == 20


def test_a_camera_restart_starts_the_ring_over() -> None:
    ring = PreEventRing(30.0, BIG, keep_audio=False)
    for packet in synthetic(90, fps=30, gop=30) + synthetic(45, fps=30, gop=30):
        ring.push_video(packet)
    assert [p.pts for p in ring.snapshot().video] == list(range(45))


def test_a_dropped_frame_does_not_make_the_ring_evict_too_early() -> None:
    ring = PreEventRing(1.0, BIG, keep_audio=False)  # frame duration measured, not given
    packets = synthetic(14, fps=10, gop=5)
    for packet in packets[:12] + packets[13:]:  # frame 12 was never encoded
        ring.push_video(packet)
    video = ring.snapshot().video
    assert Fraction(video[-1].pts + 1 - video[0].pts, 10) >= 1


def test_clear_empties_the_ring(thirty_fps: Recording) -> None:
    ring = PreEventRing(5.0, BIG, keep_audio=True)
    fill(ring, thirty_fps, frames=200)
    ring.clear()
    assert (ring.snapshot().video, ring.snapshot().audio, ring.bytes, ring.gops) == ((), (), 0, 0)


@settings(max_examples=300, deadline=None)
@given(
    fps=st.integers(1, 120),
    gop=st.integers(1, 300),
    pre_event_s=st.one_of(st.just(0.0), st.floats(0.0, 120.0), st.integers(0, 120).map(float)),
    frames=st.integers(1, 3000),
)
def test_coverage_holds_for_any_frame_rate_and_gop(
    fps: int, gop: int, pre_event_s: float, frames: int
) -> None:
    ring = PreEventRing(pre_event_s, BIG, keep_audio=False, fps=Fraction(fps))
    for packet in synthetic(frames, fps=fps, gop=gop):
        ring.push_video(packet)
    snapshot = ring.snapshot()
    recorded = Fraction(frames, fps)  # everything since the first key frame (frame 0)
    frame, gop_s = Fraction(1, fps), Fraction(gop, fps)
    covered = (snapshot.video[-1].pts + 1 - snapshot.video[0].pts) * frame
    assert snapshot.video[0].keyframe
    assert float(covered) == pytest.approx(snapshot.covered_s)
    assert covered >= min(Fraction(pre_event_s), recorded)
    assert covered < Fraction(pre_event_s) + gop_s + frame
    assert ring.evicted_for_bytes == 0


# ---- byte cap ------------------------------------------------------------------------------


def test_the_byte_cap_evicts_whole_gops_even_below_the_target() -> None:
    ring = PreEventRing(30.0, max_bytes=10 * 30 * 100, keep_audio=False)  # room for 10 GOPs
    for packet in synthetic(20 * 30, fps=30, gop=30):
        ring.push_video(packet)
    assert ring.bytes <= 10 * 30 * 100
    assert ring.evicted_for_bytes == 10
    assert ring.snapshot().video[0].keyframe
    assert ring.snapshot().covered_s == pytest.approx(10.0)


def test_the_byte_cap_is_never_exceeded(thirty_fps: Recording) -> None:
    cap = 40_000
    ring = PreEventRing(30.0, max_bytes=cap, keep_audio=True)
    peak = 0
    for event in thirty_fps.events:
        if isinstance(event, VideoPacket):
            ring.push_video(event)
        else:
            ring.push_audio(event)
        peak = max(peak, ring.bytes)
    assert 0 < peak <= cap
    assert ring.evicted_for_bytes > 0


def test_a_gop_bigger_than_the_cap_is_dropped_until_the_next_key_frame() -> None:
    ring = PreEventRing(30.0, max_bytes=20 * 100, keep_audio=False)  # less than one 30-frame GOP
    for packet in synthetic(45, fps=30, gop=30):
        ring.push_video(packet)
    assert ring.bytes <= 20 * 100
    assert ring.snapshot().video[0].pts == 30  # the second GOP, not a torn first one
    assert ring.evicted_for_bytes == 1
    assert ring.dropped_video == 9  # frames 21-29: frame 20 overflowed the cap with its GOP


# ---- audio ---------------------------------------------------------------------------------


def test_audio_is_dropped_unless_kept(thirty_fps: Recording) -> None:
    ring = PreEventRing(5.0, BIG, keep_audio=False)
    fill(ring, thirty_fps)
    assert ring.snapshot().audio == ()
    assert ring.dropped_audio == len(thirty_fps.audio)


def test_kept_audio_covers_the_same_span_as_the_video(thirty_fps: Recording) -> None:
    ring = PreEventRing(5.0, BIG, keep_audio=True)
    fill(ring, thirty_fps)
    snapshot = ring.snapshot()
    start = snapshot.video[0].pts * snapshot.video[0].time_base
    times = [a.pts * a.time_base for a in snapshot.audio]
    assert min(times) >= start
    assert min(times) - start < Fraction(1024, 48_000)  # nothing missing at the start
    assert times == sorted(times)
    assert all(b - a == Fraction(1024, 48_000) for a, b in itertools.pairwise(times))
    assert max(times) > snapshot.video[-1].pts * snapshot.video[-1].time_base - Fraction(1, 10)


def test_audio_counts_toward_the_byte_cap(thirty_fps: Recording) -> None:
    with_audio = PreEventRing(5.0, BIG, keep_audio=True)
    without = PreEventRing(5.0, BIG, keep_audio=False)
    fill(with_audio, thirty_fps)
    fill(without, thirty_fps)
    audio_bytes = sum(len(a.data) for a in with_audio.snapshot().audio)
    assert with_audio.bytes == without.bytes + audio_bytes > without.bytes


def test_audio_before_the_first_key_frame_is_dropped() -> None:
    ring = PreEventRing(5.0, BIG, keep_audio=True)
    tb = Fraction(1, 48_000)
    ring.push_audio(EncodedAudio(b"a" * 10, 0, tb, 1024, 0))
    for packet in synthetic(10, fps=30, gop=30):
        ring.push_video(packet)
    ring.push_audio(EncodedAudio(b"a" * 10, 1024, tb, 1024, 0))
    assert [a.pts for a in ring.snapshot().audio] == [1024]
    assert ring.dropped_audio == 1


@pytest.mark.parametrize(("pre_event_s", "max_bytes"), [(-1.0, 10), (float("nan"), 10), (1, 0)])
def test_bad_sizes_are_refused(pre_event_s: float, max_bytes: int) -> None:
    with pytest.raises(ValueError, match="must be"):
        PreEventRing(pre_event_s, max_bytes, keep_audio=False)
