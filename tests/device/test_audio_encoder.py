"""AudioEncoder: microphone PCM chunks in, AAC packets out (FFmpeg's native encoder via PyAV)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from fractions import Fraction

import av
import numpy as np
import pytest

from device.errors import MediaError
from device.media import AAC_FRAME, AudioEncoder, EncodedAudio
from hw.ports.microphone import AudioChunk, MicrophoneConfig
from hw.sim.clock import SimClock
from hw.sim.microphone import SimMicrophone

RATE = 48_000
CHUNK_SAMPLES = 960  # 20 ms at 48 kHz: not a multiple of the AAC frame


def microphone(channels: int = 1, tone_hz: float = 440.0) -> Iterator[AudioChunk]:
    cfg = MicrophoneConfig(sample_rate=RATE, channels=channels, chunk_ms=20, tone_hz=tone_hz)
    mic = SimMicrophone(cfg, SimClock(virtual=True))
    mic.open()
    try:
        while True:
            yield mic.read()
    finally:
        mic.close()


def encode_all(encoder: AudioEncoder, chunks: list[AudioChunk]) -> list[EncodedAudio]:
    packets = [p for chunk in chunks for p in encoder.encode(chunk)]
    return packets + encoder.close()


def decode(encoder: AudioEncoder, packets: list[EncodedAudio]) -> np.ndarray:
    """Decode with a fresh FFmpeg AAC decoder; returns samples shaped (channels, n)."""
    decoder = av.CodecContext.create("aac", "r")
    decoder.extradata = encoder.format.extradata
    planes = []
    for packet in packets:
        planes += [f.to_ndarray() for f in decoder.decode(av.Packet(packet.data))]
    planes += [f.to_ndarray() for f in decoder.decode(None)]
    return np.concatenate(planes, axis=1)


@pytest.fixture
def one_second() -> list[AudioChunk]:
    chunks = microphone()
    return [next(chunks) for _ in range(50)]


def test_packets_are_whole_aac_frames_in_sample_time(one_second: list[AudioChunk]) -> None:
    packets = encode_all(AudioEncoder(RATE, 1), one_second)
    assert {p.time_base for p in packets} == {Fraction(1, RATE)}
    assert {p.duration for p in packets[:-1]} == {AAC_FRAME}
    assert [b.pts - a.pts for a, b in itertools.pairwise(packets)] == [AAC_FRAME] * (
        len(packets) - 1
    )


def test_the_first_packet_is_the_encoders_priming_frame(one_second: list[AudioChunk]) -> None:
    packets = encode_all(AudioEncoder(RATE, 1), one_second)
    assert packets[0].pts == -AAC_FRAME


def test_a_chunk_shorter_than_a_frame_is_buffered(one_second: list[AudioChunk]) -> None:
    encoder = AudioEncoder(RATE, 1)
    assert encoder.encode(one_second[0]) == []
    assert encoder.close() != []


def test_close_encodes_every_sample_including_the_partial_frame(
    one_second: list[AudioChunk],
) -> None:
    encoder = AudioEncoder(RATE, 1)
    packets = encode_all(encoder, one_second)
    samples = 50 * CHUNK_SAMPLES
    end = packets[-1].pts + packets[-1].duration
    assert end >= samples
    assert decode(encoder, packets).shape[1] >= samples


def test_the_packets_decode_to_the_microphones_tone() -> None:
    chunks = microphone(tone_hz=1000.0)
    encoder = AudioEncoder(RATE, 1)
    samples = decode(encoder, encode_all(encoder, [next(chunks) for _ in range(50)]))[0]
    steady = samples[4 * AAC_FRAME : 4 * AAC_FRAME + RATE // 2]
    spectrum = np.abs(np.fft.rfft(steady))
    peak_hz = np.argmax(spectrum) * RATE / len(steady)
    assert peak_hz == pytest.approx(1000.0, abs=4)
    assert 0.3 < np.max(np.abs(steady)) < 0.7  # the sim's half-scale tone, not silence


def test_stereo_is_encoded_as_two_channels() -> None:
    chunks = microphone(channels=2)
    encoder = AudioEncoder(RATE, 2)
    assert encoder.format.channels == 2
    assert decode(encoder, encode_all(encoder, [next(chunks) for _ in range(10)])).shape[0] == 2


def test_the_format_carries_the_audio_specific_config() -> None:
    fmt = AudioEncoder(RATE, 1).format
    assert (fmt.codec, fmt.sample_rate, fmt.channels, fmt.time_base) == (
        "aac",
        RATE,
        1,
        Fraction(1, RATE),
    )
    object_type, rate_index = (
        fmt.extradata[0] >> 3,
        ((fmt.extradata[0] & 7) << 1) | (fmt.extradata[1] >> 7),
    )
    assert (object_type, rate_index) == (2, 3)  # AAC-LC, 48 kHz


def test_packets_carry_the_capture_time_of_their_first_sample(
    one_second: list[AudioChunk],
) -> None:
    packets = encode_all(AudioEncoder(RATE, 1), one_second)
    start_ns = one_second[0].monotonic_ns
    for packet in packets:
        assert packet.monotonic_ns == pytest.approx(
            start_ns + packet.pts * 1_000_000_000 / RATE, abs=1
        )


def test_a_lost_chunk_is_filled_with_silence_so_time_stays_continuous(
    one_second: list[AudioChunk],
) -> None:
    with_gap = one_second[:10] + one_second[11:]
    encoder = AudioEncoder(RATE, 1)
    packets = encode_all(encoder, with_gap)
    assert [b.pts - a.pts for a, b in itertools.pairwise(packets)] == [AAC_FRAME] * (
        len(packets) - 1
    )
    assert packets[-1].pts + packets[-1].duration >= 50 * CHUNK_SAMPLES


def test_a_long_pause_restarts_the_timeline_at_the_new_chunk(
    one_second: list[AudioChunk],
) -> None:
    chunk = one_second[0]
    later = AudioChunk(chunk.pcm, RATE, 1, pts=5 * RATE, monotonic_ns=5_000_000_000, wall_ns=0)
    encoder = AudioEncoder(RATE, 1)
    packets = encode_all(encoder, [*one_second[:3], later])
    steps = [b.pts - a.pts for a, b in itertools.pairwise(packets)]
    assert max(steps) > RATE  # one jump over the pause, not seconds of encoded silence
    assert len(packets) < 10
    assert max(p.pts for p in packets) >= 5 * RATE - AAC_FRAME


def test_a_chunk_that_overlaps_encoded_samples_is_refused(
    one_second: list[AudioChunk],
) -> None:
    encoder = AudioEncoder(RATE, 1)
    encoder.encode(one_second[1])
    with pytest.raises(MediaError, match="overlaps"):
        encoder.encode(one_second[0])


def test_a_chunk_in_another_format_is_refused(one_second: list[AudioChunk]) -> None:
    encoder = AudioEncoder(44_100, 1)
    with pytest.raises(MediaError, match="48000 Hz"):
        encoder.encode(one_second[0])


def test_a_torn_chunk_is_refused() -> None:
    encoder = AudioEncoder(RATE, 2)
    torn = AudioChunk(b"\x00" * 6, RATE, 2, pts=0, monotonic_ns=0, wall_ns=0)
    with pytest.raises(MediaError, match="whole 16-bit frames"):
        encoder.encode(torn)


def test_encoding_after_close_is_refused(one_second: list[AudioChunk]) -> None:
    encoder = AudioEncoder(RATE, 1)
    encoder.close()
    assert encoder.close() == []
    with pytest.raises(MediaError, match="closed"):
        encoder.encode(one_second[0])


@pytest.mark.parametrize(("rate", "channels"), [(12_345, 1), (RATE, 3)])
def test_an_unencodable_format_is_refused_at_construction(rate: int, channels: int) -> None:
    with pytest.raises(MediaError):
        AudioEncoder(rate, channels)
