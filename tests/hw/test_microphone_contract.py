"""Microphone port contract, run against every adapter: what the clip writer relies on."""

from __future__ import annotations

import itertools
import wave
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from hw.errors import AdapterUnavailable, DeviceClosed
from hw.ports.clock import Clock
from hw.ports.microphone import AudioChunk, Microphone, MicrophoneConfig, open_microphone
from hw.real.clock import SystemClock
from hw.sim.clock import SimClock

RATE, CHANNELS, CHUNK_MS = 16_000, 2, 20
CHUNK_SAMPLES = RATE * CHUNK_MS // 1000
CHUNKS = 10


@pytest.fixture(scope="module")
def microphone_wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Half a second of seeded noise, mono, so the adapter must loop it and copy the channel."""
    path = tmp_path_factory.mktemp("wav") / "noise.wav"
    samples = np.random.default_rng(7).integers(-9000, 9000, RATE // 2, dtype=np.int16)
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(RATE)
        wav.writeframes(samples.astype("<i2").tobytes())
    return path


def _config(adapter: str, wav: Path) -> MicrophoneConfig:
    settings: dict[str, object] = {"sample_rate": RATE, "channels": CHANNELS, "chunk_ms": CHUNK_MS}
    if adapter == "pyaudio":
        return MicrophoneConfig.model_validate({**settings, "adapter": "pyaudio"})
    signal = adapter.removeprefix("sim-")
    wav_file = wav if signal == "wav" else None
    return MicrophoneConfig.model_validate({**settings, "signal": signal, "wav": wav_file})


@pytest.fixture(
    params=["sim-tone", "sim-noise", "sim-wav", pytest.param("pyaudio", marks=pytest.mark.real)]
)
def microphone(request: pytest.FixtureRequest, microphone_wav: Path) -> Iterator[Microphone]:
    """An unopened microphone of each adapter (the real one skips without an input device)."""
    clock: Clock = SystemClock() if request.param == "pyaudio" else SimClock(virtual=True)
    mic = open_microphone(_config(request.param, microphone_wav), clock)
    try:
        mic.open()
    except AdapterUnavailable as exc:
        pytest.skip(f"no microphone: {exc}")
    mic.close()
    yield mic
    mic.close()


@pytest.fixture
def microphone_chunks(microphone: Microphone) -> list[AudioChunk]:
    microphone.open()
    return [microphone.read() for _ in range(CHUNKS)]


def test_microphone_satisfies_the_port(microphone: Microphone) -> None:
    assert isinstance(microphone, Microphone)
    assert (microphone.sample_rate, microphone.channels) == (RATE, CHANNELS)


def test_chunks_hold_chunk_ms_of_interleaved_s16_samples(
    microphone_chunks: list[AudioChunk],
) -> None:
    for chunk in microphone_chunks:
        assert (chunk.sample_rate, chunk.channels) == (RATE, CHANNELS)
        assert chunk.samples == CHUNK_SAMPLES
        assert len(chunk.pcm) == CHUNK_SAMPLES * CHANNELS * 2


def test_pts_counts_samples_without_gaps(microphone_chunks: list[AudioChunk]) -> None:
    assert microphone_chunks[0].pts == 0
    for before, after in itertools.pairwise(microphone_chunks):
        assert after.pts == before.pts + before.samples


def test_capture_times_rise_by_one_chunk(microphone_chunks: list[AudioChunk]) -> None:
    chunk_ns = CHUNK_MS * 1_000_000
    for before, after in itertools.pairwise(microphone_chunks):
        # A sound card's reads return with some jitter; the sim's are exact.
        assert abs((after.monotonic_ns - before.monotonic_ns) - chunk_ns) < chunk_ns / 2
        assert abs((after.wall_ns - before.wall_ns) - chunk_ns) < chunk_ns / 2


def test_read_before_open_raises_device_closed(microphone: Microphone) -> None:
    with pytest.raises(DeviceClosed, match="open"):
        microphone.read()


def test_read_after_close_raises_device_closed(microphone: Microphone) -> None:
    microphone.open()
    microphone.read()
    microphone.close()
    with pytest.raises(DeviceClosed):
        microphone.read()


def test_reopened_microphone_counts_samples_from_zero_again(microphone: Microphone) -> None:
    microphone.open()
    microphone.read()
    microphone.close()
    microphone.open()
    assert microphone.read().pts == 0


@pytest.mark.real
def test_pyaudio_without_an_input_device_says_to_plug_one_in() -> None:
    pyaudio = pytest.importorskip("pyaudio", reason="pyaudio is not installed")
    audio = pyaudio.PyAudio()
    try:
        inputs = [
            i
            for i in range(audio.get_device_count())
            if audio.get_device_info_by_index(i)["maxInputChannels"] > 0
        ]
    finally:
        audio.terminate()
    if inputs:
        pytest.skip("this machine has an audio input device")
    mic = open_microphone(MicrophoneConfig(adapter="pyaudio"), SystemClock())
    with pytest.raises(AdapterUnavailable, match=r"no audio input device: .*plug in a microphone"):
        mic.open()
