"""Encoded media the firmware handles besides camera packets: AAC audio, and H.264 parameter sets.

:class:`AudioEncoder` turns the microphone's PCM chunks into AAC packets with FFmpeg's native
``aac`` encoder (through PyAV). AAC needs exactly 1024 samples per frame while microphones deliver
chunks of any size (20 ms at 48 kHz is 960), so samples are buffered across chunks and each frame
is stamped with the index of its first sample. Packet timestamps are in ``1/sample_rate`` on the
microphone's sample timeline, as FFmpeg reports them: the first packet starts 1024 samples early
(the encoder's priming delay), which is what an MP4 muxer and any AAC decoder expect.

:func:`parameter_sets` pulls SPS and PPS out of a key frame so the segment muxer can describe the
stream in the MP4 header without waiting for the encoder to repeat anything.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import av
import av.error
import numpy as np
import numpy.typing as npt

from device.errors import MediaError
from hw.ports.microphone import AudioChunk

AAC_FRAME = 1024  #: samples per AAC-LC frame
_NS = 1_000_000_000
_LAYOUTS = {1: "mono", 2: "stereo"}
#: a gap in the microphone's samples up to this long is filled with silence so the audio timeline
#: stays continuous; a longer one (the microphone was stopped) restarts it at the new chunk
MAX_SILENCE_FILL_S = 1.0

Samples = npt.NDArray[np.float32]  # shape (channels, samples), planar, -1..1


@dataclass(frozen=True, slots=True)
class AudioFormat:
    """What a muxer needs to describe an AAC stream: rate, channels, AudioSpecificConfig."""

    sample_rate: int
    channels: int
    extradata: bytes  #: the AudioSpecificConfig, as FFmpeg's encoder wrote it
    codec: str = "aac"

    @property
    def time_base(self) -> Fraction:
        return Fraction(1, self.sample_rate)

    @property
    def layout(self) -> str:
        return _LAYOUTS[self.channels]


@dataclass(frozen=True, slots=True)
class EncodedAudio:
    """One AAC packet (raw, no ADTS header) on the microphone's sample timeline."""

    data: bytes
    pts: int  #: in ``time_base`` units (samples); may be negative for the priming packet
    time_base: Fraction
    duration: int  #: in ``time_base`` units
    monotonic_ns: int  #: capture time of the packet's first sample on the device's clock

    @property
    def pts_seconds(self) -> float:
        return float(self.pts * self.time_base)


class AudioEncoder:
    """PCM chunks in, AAC packets out. Call :meth:`close` to flush the last partial frame."""

    def __init__(self, sample_rate: int, channels: int, *, bit_rate: int = 64_000) -> None:
        if channels not in _LAYOUTS:
            raise MediaError(f"AAC recording supports 1 or 2 channels, not {channels}")
        self._rate, self._channels = sample_rate, channels
        self._time_base = Fraction(1, sample_rate)
        self._codec = _open_aac(sample_rate, channels, bit_rate)
        extradata = self._codec.extradata
        if not extradata:
            raise MediaError("the AAC encoder gave no AudioSpecificConfig: reinstall PyAV")
        self._format = AudioFormat(sample_rate, channels, bytes(extradata))
        self._pending: Samples = np.zeros((channels, 0), dtype=np.float32)
        self._pending_pts: int | None = None  # sample index of the first pending sample
        self._anchor: tuple[int, int] = (0, 0)  # (sample index, monotonic ns) of the last chunk
        self._closed = False

    @property
    def format(self) -> AudioFormat:
        return self._format

    def encode(self, chunk: AudioChunk) -> list[EncodedAudio]:
        """Buffer ``chunk`` and return the packets of every AAC frame it completes."""
        if self._closed:
            raise MediaError("the audio encoder is closed: create a new one for a new recording")
        samples = self._samples_of(chunk)
        packets = self._bridge_gap(chunk.pts)
        self._anchor = (chunk.pts, chunk.monotonic_ns)
        if self._pending_pts is None:
            self._pending_pts = chunk.pts
        self._pending = np.concatenate([self._pending, samples], axis=1)
        while self._pending.shape[1] >= AAC_FRAME:
            packets += self._encode_frame(self._pending[:, :AAC_FRAME])
            self._pending = self._pending[:, AAC_FRAME:]
        return packets

    def close(self) -> list[EncodedAudio]:
        """Encode the buffered partial frame and drain the encoder; idempotent."""
        if self._closed:
            return []
        packets: list[EncodedAudio] = []
        if self._pending.shape[1]:
            # The AAC encoder accepts one short frame, and only as the last one.
            packets += self._encode_frame(self._pending)
            self._pending = self._pending[:, :0]
        packets += self._drain(None)
        self._closed = True
        return packets

    def _samples_of(self, chunk: AudioChunk) -> Samples:
        if chunk.sample_rate != self._rate or chunk.channels != self._channels:
            raise MediaError(
                f"audio chunk is {chunk.sample_rate} Hz x{chunk.channels} but the encoder was "
                f"opened for {self._rate} Hz x{self._channels}: restart the recording"
            )
        if len(chunk.pcm) % (2 * self._channels):
            raise MediaError(
                f"audio chunk at sample {chunk.pts} has {len(chunk.pcm)} bytes, not whole "
                f"16-bit frames of {self._channels} channel(s): the microphone driver is broken"
            )
        interleaved = np.frombuffer(chunk.pcm, dtype="<i2").reshape(-1, self._channels)
        planar: Samples = (interleaved.T / np.float32(32768)).astype(np.float32)
        return planar

    def _bridge_gap(self, pts: int) -> list[EncodedAudio]:
        """Keep the sample timeline continuous when chunks were lost (or the mic restarted)."""
        if self._pending_pts is None:
            return []
        expected = self._pending_pts + self._pending.shape[1]
        gap = pts - expected
        if gap == 0:
            return []
        if gap < 0:
            raise MediaError(
                f"audio chunk at sample {pts} overlaps samples already encoded (up to "
                f"{expected}): the microphone restarted; start a new audio encoder"
            )
        if gap <= MAX_SILENCE_FILL_S * self._rate:
            silence = np.zeros((self._channels, gap), dtype=np.float32)
            self._pending = np.concatenate([self._pending, silence], axis=1)
            return []
        # Long gap: finish the partial frame with silence and restart the timeline at ``pts``.
        packets: list[EncodedAudio] = []
        if self._pending.shape[1]:
            pad = AAC_FRAME - self._pending.shape[1]
            frame = np.pad(self._pending, ((0, 0), (0, pad)))
            packets = self._encode_frame(frame)
        self._pending = self._pending[:, :0]
        self._pending_pts = pts
        return packets

    def _encode_frame(self, samples: Samples) -> list[EncodedAudio]:
        assert self._pending_pts is not None  # set by the first chunk
        frame = av.AudioFrame.from_ndarray(
            np.ascontiguousarray(samples), format="fltp", layout=_LAYOUTS[self._channels]
        )
        frame.sample_rate = self._rate
        frame.pts = self._pending_pts
        frame.time_base = self._time_base
        self._pending_pts += samples.shape[1]
        return self._drain(frame)

    def _drain(self, frame: av.AudioFrame | None) -> list[EncodedAudio]:
        try:
            packets = self._codec.encode(frame)
        except av.error.FFmpegError as exc:
            raise MediaError(f"the AAC encoder failed: {exc}") from exc
        return [self._wrap(packet) for packet in packets]

    def _wrap(self, packet: av.Packet[Any]) -> EncodedAudio:
        if packet.pts is None:
            raise MediaError("the AAC encoder produced a packet without a timestamp")
        anchor_pts, anchor_ns = self._anchor
        return EncodedAudio(
            data=bytes(packet),
            pts=packet.pts,
            time_base=self._time_base,
            duration=packet.duration or AAC_FRAME,
            monotonic_ns=anchor_ns + (packet.pts - anchor_pts) * _NS // self._rate,
        )


def _open_aac(sample_rate: int, channels: int, bit_rate: int) -> av.AudioCodecContext:
    codec = av.CodecContext.create("aac", "w")
    rates = codec.codec.audio_rates
    if rates and sample_rate not in rates:
        raise MediaError(
            f"AAC cannot encode {sample_rate} Hz: set [microphone] sample_rate to one of "
            f"{', '.join(str(r) for r in sorted(rates))}"
        )
    codec.sample_rate = sample_rate
    codec.layout = _LAYOUTS[channels]
    codec.format = "fltp"
    codec.time_base = Fraction(1, sample_rate)
    codec.bit_rate = bit_rate
    try:
        codec.open()
    except av.error.FFmpegError as exc:
        raise MediaError(f"cannot open the AAC encoder: {exc}") from exc
    return codec


# ---- H.264 parameter sets -------------------------------------------------------------------

NAL_SPS, NAL_PPS = 7, 8
_START = b"\x00\x00\x01"


def nal_units(annex_b: bytes) -> list[bytes]:
    """The NAL units of an Annex B byte stream, without start codes."""
    units: list[bytes] = []
    start = annex_b.find(_START)
    while start >= 0:
        begin = start + len(_START)
        end = annex_b.find(_START, begin)
        unit = annex_b[begin : len(annex_b) if end < 0 else end]
        # Zero bytes before a start code belong to it (4-byte start codes, trailing_zero_8bits).
        units.append(unit.rstrip(b"\x00") if end >= 0 else unit)
        start = end
    return [unit for unit in units if unit]


def parameter_sets(key_frame: bytes) -> bytes:
    """SPS and PPS of an Annex B key frame, as Annex B extradata for a muxer."""
    units = [u for u in nal_units(key_frame) if u[0] & 0x1F in (NAL_SPS, NAL_PPS)]
    kinds = {u[0] & 0x1F for u in units}
    if kinds != {NAL_SPS, NAL_PPS}:
        raise MediaError(
            "key frame carries no SPS/PPS: set the encoder to repeat parameter sets on every "
            "key frame (x264 repeat-headers=1, picamera2 repeat=True)"
        )
    return b"".join(b"\x00\x00\x00\x01" + unit for unit in units)
