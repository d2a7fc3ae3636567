"""Microphone port: signed 16-bit little-endian PCM in fixed-size chunks."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol, runtime_checkable

from pydantic import Field, field_validator

from hw.ports.base import PortConfig
from hw.ports.clock import Clock


@dataclass(frozen=True, slots=True)
class AudioChunk:
    pcm: bytes  #: interleaved s16le samples
    sample_rate: int
    channels: int
    pts: int  #: index of the first sample since the microphone opened
    monotonic_ns: int
    wall_ns: int

    @property
    def samples(self) -> int:
        return len(self.pcm) // (2 * self.channels)


@runtime_checkable
class Microphone(Protocol):
    @property
    def sample_rate(self) -> int: ...

    @property
    def channels(self) -> int: ...

    def open(self) -> None: ...

    def read(self) -> AudioChunk: ...

    def close(self) -> None: ...


class MicrophoneConfig(PortConfig):
    adapter: Literal["sim", "pyaudio"] = "sim"
    sample_rate: int = Field(default=48_000, gt=0, le=192_000)
    channels: int = Field(default=1, ge=1, le=2)
    chunk_ms: int = Field(default=20, gt=0, le=1000)
    #: sim only
    signal: Literal["tone", "noise", "wav"] = "tone"
    tone_hz: float = Field(default=440.0, gt=0)
    wav: Path | None = None
    #: pyaudio only: input device index; None picks the default input
    device_index: int | None = None

    @field_validator("wav")
    @classmethod
    def _wav_exists(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError(f"WAV file {str(value)!r} does not exist")
        return value


def open_microphone(cfg: MicrophoneConfig, clock: Clock) -> Microphone:
    if cfg.adapter == "sim":
        from hw.sim.microphone import SimMicrophone

        return SimMicrophone(cfg, clock)
    from hw.real.microphone import PyAudioMicrophone

    return PyAudioMicrophone(cfg, clock)
