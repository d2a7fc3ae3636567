"""PyAudioMicrophone: a sound card's input through PyAudio (PortAudio).

``read`` blocks in PortAudio until a chunk of ``chunk_ms`` is recorded. A chunk is stamped with
the time of its first sample, estimated as "now" minus the chunk's duration when the read returns;
its pts counts samples since ``open``, so it stays continuous even if the clock is set.
"""

from __future__ import annotations

import threading
from typing import Any

from hw.errors import AdapterUnavailable, DeviceClosed, DeviceError
from hw.ports.clock import Clock
from hw.ports.microphone import AudioChunk, MicrophoneConfig

_NS = 1_000_000_000


def _chunk_frames(sample_rate: int, chunk_ms: int) -> int:
    """Sample frames in one chunk of ``chunk_ms`` milliseconds (rounded, at least one)."""
    return max(1, round(sample_rate * chunk_ms / 1000))


class PyAudioMicrophone:
    def __init__(self, cfg: MicrophoneConfig, clock: Clock) -> None:
        try:
            import pyaudio
        except ImportError as exc:
            raise AdapterUnavailable(
                f"pyaudio is not installed ({exc}): run 'pip install bwc[pi]' "
                "(it needs PortAudio: 'sudo apt install portaudio19-dev')"
            ) from exc
        self._pyaudio: Any = pyaudio
        self._cfg = cfg
        self._clock = clock
        self._frames = _chunk_frames(cfg.sample_rate, cfg.chunk_ms)
        self._lock = threading.Lock()
        self._audio: Any = None
        self._stream: Any = None
        self._next_sample = 0

    @property
    def sample_rate(self) -> int:
        return self._cfg.sample_rate

    @property
    def channels(self) -> int:
        return self._cfg.channels

    def open(self) -> None:
        with self._lock:
            if self._stream is not None:
                return
            audio = self._pyaudio.PyAudio()
            try:
                self._stream = self._open_stream(audio)
            except BaseException:
                audio.terminate()
                raise
            self._audio = audio
            self._next_sample = 0

    def read(self) -> AudioChunk:
        with self._lock:
            stream = self._stream
            if stream is None:
                raise DeviceClosed("the microphone is not open: call open() before read()")
            try:
                # An overflow means we were late; the samples that came are still good audio.
                pcm: bytes = stream.read(self._frames, exception_on_overflow=False)
            except OSError as exc:
                raise DeviceError(
                    f"the microphone stopped ({exc}): check that it is still plugged in"
                ) from exc
            duration_ns = self._frames * _NS // self._cfg.sample_rate
            start = self._next_sample
            self._next_sample += self._frames
            return AudioChunk(
                pcm=pcm,
                sample_rate=self._cfg.sample_rate,
                channels=self._cfg.channels,
                pts=start,
                monotonic_ns=self._clock.monotonic_ns() - duration_ns,
                wall_ns=self._clock.wall_ns() - duration_ns,
            )

    def close(self) -> None:
        with self._lock:
            stream, audio = self._stream, self._audio
            self._stream = self._audio = None
            if stream is None:
                return
            try:
                stream.stop_stream()
                stream.close()
            except OSError as exc:
                raise DeviceError(f"the microphone did not close cleanly: {exc}") from exc
            finally:
                audio.terminate()

    def _open_stream(self, audio: Any) -> Any:
        cfg = self._cfg
        index = self._input_device(audio)
        try:
            return audio.open(
                format=self._pyaudio.paInt16,
                channels=cfg.channels,
                rate=cfg.sample_rate,
                input=True,
                input_device_index=index,
                frames_per_buffer=self._frames,
            )
        except (OSError, ValueError) as exc:
            raise DeviceError(
                f"the microphone refused {cfg.sample_rate} Hz, {cfg.channels} channel(s) ({exc}): "
                "set [microphone] sample_rate and channels to what it supports"
            ) from exc

    def _input_device(self, audio: Any) -> int:
        wanted = self._cfg.device_index
        what = "no default input" if wanted is None else f"device {wanted} is not an input"
        try:
            if wanted is None:
                info = audio.get_default_input_device_info()
            else:
                info = audio.get_device_info_by_index(wanted)
        except (OSError, ValueError) as exc:
            raise AdapterUnavailable(
                f"no audio input device: {what} ({exc}); plug in a microphone or set "
                "[microphone] device_index to one that 'arecord -l' lists"
            ) from exc
        if int(info["maxInputChannels"]) < 1:
            raise AdapterUnavailable(
                f"no audio input device: {what}; set [microphone] device_index to one that "
                "'arecord -l' lists"
            )
        return int(info["index"])
