"""SimMicrophone: s16le PCM of a sine tone, seeded white noise or a looped WAV file.

Chunks are ``chunk_ms`` long and paced on the injected clock like a sound card's buffer: chunk
``n`` is returned once its last sample has been "recorded", at ``open time + (n + 1) * chunk``,
and is stamped with the time of its first sample. The schedule counts from ``open`` so it never
drifts; with a virtual :class:`~hw.sim.clock.SimClock` the waits return at once.
"""

from __future__ import annotations

import threading
import wave
from pathlib import Path
from typing import Protocol

import numpy as np
import numpy.typing as npt

from hw.errors import ConfigError, DeviceClosed
from hw.ports.clock import Clock
from hw.ports.microphone import AudioChunk, MicrophoneConfig

_NS = 1_000_000_000
_AMPLITUDE = 0.5  # of full scale: loud enough to measure, far from clipping
Samples = npt.NDArray[np.int16]  # shape (frames, channels)


def _chunk_frames(sample_rate: int, chunk_ms: int) -> int:
    """Sample frames in one chunk of ``chunk_ms`` milliseconds (rounded, at least one)."""
    return max(1, round(sample_rate * chunk_ms / 1000))


class _Signal(Protocol):
    def samples(self, start: int, count: int) -> Samples: ...

    def close(self) -> None: ...


class _Tone:
    def __init__(self, hz: float, sample_rate: int, channels: int) -> None:
        self._hz, self._rate, self._channels = hz, sample_rate, channels

    def samples(self, start: int, count: int) -> Samples:
        # Phase from the absolute sample index keeps the sine continuous across chunks.
        index = np.arange(start, start + count, dtype=np.float64)
        wave_ = np.sin(2 * np.pi * self._hz * index / self._rate) * _AMPLITUDE * 32767
        mono = np.round(wave_).astype(np.int16)
        return np.repeat(mono[:, None], self._channels, axis=1)

    def close(self) -> None:
        pass


class _Noise:
    def __init__(self, seed: int, channels: int) -> None:
        self._rng = np.random.default_rng(seed)
        self._channels = channels

    def samples(self, start: int, count: int) -> Samples:
        limit = int(_AMPLITUDE * 32767)
        return self._rng.integers(-limit, limit, size=(count, self._channels), dtype=np.int16)

    def close(self) -> None:
        pass


class _WavLoop:
    """A 16-bit WAV file, read whole at open and played in a loop, in the configured channels."""

    def __init__(self, path: Path, sample_rate: int, channels: int) -> None:
        try:
            with wave.open(str(path), "rb") as wav:
                rate, width = wav.getframerate(), wav.getsampwidth()
                file_channels = wav.getnchannels()
                raw = wav.readframes(wav.getnframes())
        except (wave.Error, EOFError, OSError) as exc:
            raise ConfigError(f"cannot read WAV file {str(path)!r}: {exc}") from exc
        if width != 2:
            raise ConfigError(
                f"WAV file {str(path)!r} has {8 * width}-bit samples: convert it to 16-bit PCM"
            )
        if rate != sample_rate:
            raise ConfigError(
                f"WAV file {str(path)!r} is {rate} Hz but the microphone is set to {sample_rate} "
                f"Hz: set [microphone] sample_rate = {rate} or resample the file"
            )
        block = np.frombuffer(raw, dtype="<i2").reshape(-1, file_channels)
        if block.shape[0] == 0:
            raise ConfigError(f"WAV file {str(path)!r} has no samples: pick another file")
        self._pcm = _to_channels(block.astype(np.int16), channels)

    def samples(self, start: int, count: int) -> Samples:
        index = np.arange(start, start + count) % self._pcm.shape[0]
        looped: Samples = self._pcm[index]
        return looped

    def close(self) -> None:
        pass


def _to_channels(block: Samples, channels: int) -> Samples:
    """Mix down to mono, and copy mono to every channel, when the file's layout differs."""
    if block.shape[1] == channels:
        return block
    mono = block.mean(axis=1, dtype=np.float64).round().astype(np.int16)
    return np.repeat(mono[:, None], channels, axis=1)


class SimMicrophone:
    """A microphone that records a synthetic signal or a file, paced by a clock."""

    def __init__(self, cfg: MicrophoneConfig, clock: Clock, *, seed: int = 0) -> None:
        if cfg.signal == "wav" and cfg.wav is None:
            raise ConfigError("signal = 'wav' needs a file: set [microphone] wav = 'path.wav'")
        if cfg.signal == "tone" and cfg.tone_hz >= cfg.sample_rate / 2:
            raise ConfigError(
                f"a {cfg.tone_hz:g} Hz tone cannot be sampled at {cfg.sample_rate} Hz: "
                f"set [microphone] tone_hz below {cfg.sample_rate / 2:g}"
            )
        self._cfg = cfg
        self._clock = clock
        self._seed = seed
        self._frames = _chunk_frames(cfg.sample_rate, cfg.chunk_ms)
        self._lock = threading.Lock()
        self._signal: _Signal | None = None
        self._next_sample = 0
        self._start_ns = 0
        self.chunks_read = 0  #: test control: chunks returned since open

    @property
    def sample_rate(self) -> int:
        return self._cfg.sample_rate

    @property
    def channels(self) -> int:
        return self._cfg.channels

    def open(self) -> None:
        with self._lock:
            if self._signal is not None:
                return
            self._signal = self._make_signal()
            self._next_sample = 0
            self.chunks_read = 0
            self._start_ns = self._clock.monotonic_ns()

    def read(self) -> AudioChunk:
        """The next chunk, returned once its last sample is due on the clock."""
        with self._lock:
            signal = self._signal
            if signal is None:
                raise DeviceClosed("the microphone is not open: call open() before read()")
            start = self._next_sample
            first_ns = self._sample_time(start)
            self._wait_until(self._sample_time(start + self._frames))
            lag_ns = self._clock.monotonic_ns() - first_ns
            pcm = signal.samples(start, self._frames).astype("<i2").tobytes()
            self._next_sample += self._frames
            self.chunks_read += 1
            return AudioChunk(
                pcm=pcm,
                sample_rate=self._cfg.sample_rate,
                channels=self._cfg.channels,
                pts=start,
                monotonic_ns=first_ns,
                wall_ns=self._clock.wall_ns() - lag_ns,
            )

    def close(self) -> None:
        with self._lock:
            if self._signal is not None:
                self._signal.close()
                self._signal = None

    def _make_signal(self) -> _Signal:
        cfg = self._cfg
        if cfg.signal == "tone":
            return _Tone(cfg.tone_hz, cfg.sample_rate, cfg.channels)
        if cfg.signal == "noise":
            return _Noise(self._seed, cfg.channels)
        assert cfg.wav is not None  # checked in __init__
        return _WavLoop(cfg.wav, cfg.sample_rate, cfg.channels)

    def _sample_time(self, sample: int) -> int:
        return self._start_ns + sample * _NS // self._cfg.sample_rate

    def _wait_until(self, due_ns: int) -> None:
        # Loop because a sleep may end a little early (float rounding, signals).
        while (remaining := due_ns - self._clock.monotonic_ns()) > 0:
            self._clock.sleep(remaining / _NS)
