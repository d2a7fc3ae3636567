"""One open clip: the ring's pre-event footage first, then live packets, cut into GOP segments.

The recorder owns a :class:`ClipWriter` and a :class:`Segmenter`. Every segment is muxed into a
self-contained fragmented MP4, encrypted and made durable before the next one starts, so a power
cut loses at most the segment being filled (about one GOP).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey

from custody.manifest import SealRecord
from device.clip_head import ClipStart
from device.clip_writer import ClipWriter
from device.config import DeviceConfig
from device.media import AudioFormat, EncodedAudio
from device.ring import RingSnapshot
from device.segmenter import Segmenter, SegmentMedia, mux_fmp4
from hw.ports.camera import CameraInfo, VideoPacket
from hw.ports.clock import Clock
from hw.ports.storage import Storage


@dataclass(frozen=True)
class DeviceKeys:
    """What the camera holds: its own identity, and the agency's public recording key."""

    identity: Ed25519PrivateKey
    agency: X25519PublicKey


@dataclass(frozen=True)
class StartRequest:
    """Everything a new clip needs to know about why and when it starts."""

    triggers: Sequence[Mapping[str, str | int]]
    at_ns: int  #: monotonic time of the start input
    time_sync_offset_ns: int = 0


class Recorder:
    """Feeds one clip: :meth:`start` opens it for a ring snapshot, :meth:`push_snapshot` writes
    that snapshot, live packets follow, and :meth:`stop` seals it."""

    def __init__(self, writer: ClipWriter, segmenter: Segmenter, *, pre_event_ns: int) -> None:
        self.writer = writer
        self._segmenter = segmenter
        self._origin_s: Fraction | None = None  #: the first segment's start: 0 on the clip timeline
        self.pre_event_ns = pre_event_ns
        self.stop_at_ns: int | None = None  #: post-event deadline once a stop was asked for

    @classmethod
    def start(
        cls,
        snapshot: RingSnapshot,
        request: StartRequest,
        *,
        storage: Storage,
        clips_root: str,
        config: DeviceConfig,
        keys: DeviceKeys,
        clock: Clock,
        info: CameraInfo,
        audio: AudioFormat | None,
    ) -> Recorder:
        first_ns = snapshot.video[0].monotonic_ns if snapshot.video else request.at_ns
        pre_event_ns = max(0, request.at_ns - first_ns)
        start = ClipStart(
            triggers=request.triggers,
            first_frame_monotonic_ns=first_ns,
            pre_event_ns=pre_event_ns,
            time_sync_offset_ns=request.time_sync_offset_ns,
        )
        writer = ClipWriter.create(
            storage, clips_root, config=config, device_key=keys.identity,
            agency_public=keys.agency, clock=clock, start=start,
        )  # fmt: skip
        return cls(writer, Segmenter(info, audio), pre_event_ns=pre_event_ns)

    @property
    def clip_id(self) -> str:
        return self.writer.clip_id

    def push_snapshot(self, snapshot: RingSnapshot) -> None:
        """Write the pre-event footage the clip was started for, before any live packet."""
        for segment in self._segmenter.push_snapshot(snapshot):
            self._write(segment)

    def push_video(self, packet: VideoPacket) -> None:
        segment = self._segmenter.push_video(packet)
        if segment is not None:
            self._write(segment)

    def push_audio(self, packet: EncodedAudio) -> None:
        self._segmenter.push_audio(packet)

    def stop(self, *, end_monotonic_ns: int) -> SealRecord:
        """Write the last partial segment and seal the clip."""
        for segment in self._segmenter.flush():
            self._write(segment)
        return self.writer.seal(end_monotonic_ns=end_monotonic_ns)

    def _write(self, segment: SegmentMedia) -> None:
        plaintext = mux_fmp4(segment, self._segmenter.info, self._segmenter.audio_format)
        if self._origin_s is None:
            self._origin_s = segment.start_s
        start_ns = round((segment.start_s - self._origin_s) * 1_000_000_000)
        end_ns = round((segment.end_s - self._origin_s) * 1_000_000_000)
        self.writer.add_segment(plaintext, start_ns, end_ns)
