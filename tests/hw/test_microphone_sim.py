"""The sim microphone's own behaviour: the signals it records, its pacing, WAV files."""

from __future__ import annotations

import wave
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hw.errors import ConfigError
from hw.ports.microphone import AudioChunk, MicrophoneConfig
from hw.sim.clock import SimClock
from hw.sim.microphone import SimMicrophone

MakeMic = Callable[..., SimMicrophone]


@pytest.fixture
def make_sim_microphone() -> Iterator[MakeMic]:
    """Build and open sim microphones on a virtual clock; all closed afterwards."""
    mics: list[SimMicrophone] = []

    def make(clock: SimClock | None = None, seed: int = 0, **cfg: Any) -> SimMicrophone:
        mic = SimMicrophone(
            MicrophoneConfig.model_validate(cfg), clock or SimClock(virtual=True), seed=seed
        )
        mics.append(mic)
        mic.open()
        return mic

    yield make
    for mic in mics:
        mic.close()


def _record(mic: SimMicrophone, seconds: float) -> npt.NDArray[np.int16]:
    """Read whole chunks covering ``seconds``; samples shaped (frames, channels)."""
    chunks: list[AudioChunk] = []
    while sum(c.samples for c in chunks) < seconds * mic.sample_rate:
        chunks.append(mic.read())
    pcm = b"".join(c.pcm for c in chunks)
    return np.frombuffer(pcm, dtype="<i2").reshape(-1, mic.channels).astype(np.int16)


def _write_wav(path: Path, samples: npt.NDArray[np.int16], rate: int, width: int = 2) -> Path:
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(samples.shape[1])
        wav.setsampwidth(width)
        wav.setframerate(rate)
        wav.writeframes(samples.astype("<i2").tobytes() if width == 2 else samples.tobytes())
    return path


def _dominant_hz(signal: npt.NDArray[np.int16], rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(signal.astype(np.float64)))
    frequencies = np.fft.rfftfreq(len(signal), d=1 / rate)
    return float(frequencies[int(np.argmax(spectrum))])


@settings(max_examples=20, deadline=None)
@given(tone_hz=st.integers(50, 7_000), rate=st.sampled_from([16_000, 44_100, 48_000]))
def test_tone_peaks_at_tone_hz(tone_hz: int, rate: int) -> None:
    mic = SimMicrophone(MicrophoneConfig(sample_rate=rate, tone_hz=tone_hz), SimClock(virtual=True))
    mic.open()
    one_second = _record(mic, 1.0)[:rate, 0]  # 1 s of samples: FFT bins are 1 Hz apart
    mic.close()
    assert _dominant_hz(one_second, rate) == tone_hz


def test_tone_is_continuous_across_chunk_boundaries(make_sim_microphone: MakeMic) -> None:
    mic = make_sim_microphone(sample_rate=48_000, tone_hz=440, chunk_ms=10)
    samples = _record(mic, 0.2)[:, 0].astype(np.int64)
    # The steepest step of a 440 Hz sine at half scale is about 940 per sample; a phase jump at
    # a chunk boundary would be far bigger.
    assert np.abs(np.diff(samples)).max() < 1_000


def test_tone_is_the_same_on_every_channel(make_sim_microphone: MakeMic) -> None:
    samples = _record(make_sim_microphone(channels=2), 0.1)
    assert np.array_equal(samples[:, 0], samples[:, 1])
    assert np.abs(samples).max() > 10_000


def test_noise_is_repeatable_for_a_seed(make_sim_microphone: MakeMic) -> None:
    first = _record(make_sim_microphone(signal="noise", seed=3), 0.1)
    again = _record(make_sim_microphone(signal="noise", seed=3), 0.1)
    other = _record(make_sim_microphone(signal="noise", seed=4), 0.1)
    assert np.array_equal(first, again)
    assert not np.array_equal(first, other)


def test_noise_has_no_dominant_tone(make_sim_microphone: MakeMic) -> None:
    samples = _record(make_sim_microphone(signal="noise"), 1.0)[:48_000, 0].astype(np.float64)
    spectrum = np.abs(np.fft.rfft(samples))[1:]
    assert spectrum.max() < 10 * spectrum.mean()


def test_chunks_are_paced_on_the_clock(make_sim_microphone: MakeMic) -> None:
    clock = SimClock(virtual=True, start_wall_ns=10**18)
    mic = make_sim_microphone(clock, chunk_ms=20)
    chunks = [mic.read() for _ in range(50)]
    # Chunk n is stamped with its first sample and returned once its last sample is due.
    assert [c.monotonic_ns for c in chunks] == [n * 20_000_000 for n in range(50)]
    assert [c.wall_ns for c in chunks] == [10**18 + n * 20_000_000 for n in range(50)]
    assert clock.monotonic_ns() == 50 * 20_000_000


def test_wav_file_plays_back_sample_for_sample_in_a_loop(
    make_sim_microphone: MakeMic, tmp_path: Path
) -> None:
    source = np.random.default_rng(1).integers(-30_000, 30_000, (1_500, 2), dtype=np.int16)
    wav = _write_wav(tmp_path / "stereo.wav", source, 16_000)
    mic = make_sim_microphone(signal="wav", wav=wav, sample_rate=16_000, channels=2)
    recorded = _record(mic, 0.5)  # 8000 frames: the 1500-frame file five times and more
    assert np.array_equal(recorded, np.resize(source, recorded.shape))


def test_mono_wav_is_copied_to_both_channels(make_sim_microphone: MakeMic, tmp_path: Path) -> None:
    source = np.arange(-500, 500, dtype=np.int16).reshape(-1, 1)
    wav = _write_wav(tmp_path / "mono.wav", source, 8_000)
    recorded = _record(
        make_sim_microphone(signal="wav", wav=wav, sample_rate=8_000, channels=2), 0.2
    )
    assert np.array_equal(recorded[:, 0], recorded[:, 1])
    assert np.array_equal(recorded[:1000, 0], source[:, 0])


def test_stereo_wav_is_mixed_down_for_a_mono_microphone(
    make_sim_microphone: MakeMic, tmp_path: Path
) -> None:
    source = np.array([[100, 300], [-200, -400]] * 400, dtype=np.int16)
    wav = _write_wav(tmp_path / "stereo.wav", source, 8_000)
    recorded = _record(make_sim_microphone(signal="wav", wav=wav, sample_rate=8_000), 0.1)
    assert set(recorded[:, 0].tolist()) == {200, -300}


def test_wav_at_another_sample_rate_is_refused_naming_the_setting(
    make_sim_microphone: MakeMic, tmp_path: Path
) -> None:
    wav = _write_wav(tmp_path / "cd.wav", np.zeros((100, 1), dtype=np.int16), 44_100)
    with pytest.raises(ConfigError, match=r"44100 Hz.*sample_rate = 44100"):
        make_sim_microphone(signal="wav", wav=wav, sample_rate=48_000)


def test_8_bit_wav_is_refused(make_sim_microphone: MakeMic, tmp_path: Path) -> None:
    wav = _write_wav(tmp_path / "old.wav", np.zeros((100, 1), dtype=np.uint8), 48_000, width=1)
    with pytest.raises(ConfigError, match="8-bit samples: convert it to 16-bit"):
        make_sim_microphone(signal="wav", wav=wav)


def test_a_file_that_is_not_wav_is_refused(make_sim_microphone: MakeMic, tmp_path: Path) -> None:
    not_wav = tmp_path / "song.wav"
    not_wav.write_bytes(b"ID3 definitely an mp3")
    with pytest.raises(ConfigError, match=r"cannot read WAV file .*song\.wav"):
        make_sim_microphone(signal="wav", wav=not_wav)


def test_wav_signal_without_a_file_is_refused() -> None:
    with pytest.raises(ConfigError, match="wav = "):
        SimMicrophone(MicrophoneConfig(signal="wav"), SimClock(virtual=True))


def test_tone_above_nyquist_is_refused() -> None:
    with pytest.raises(ConfigError, match="tone_hz below 4000"):
        SimMicrophone(MicrophoneConfig(sample_rate=8_000, tone_hz=5_000), SimClock(virtual=True))
