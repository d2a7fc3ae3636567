"""The pre-event ring: the last ``pre_event_s`` seconds of encoded footage, in whole GOPs.

The camera is always buffering. When a clip starts, for whatever reason (button, trigger, peer),
it begins with :meth:`PreEventRing.snapshot`: packets from a key frame that covers at least the
configured time, or everything since the first key frame if less was recorded.

Rules, each a lesson from rings that got it wrong:

- The ring is sized in *time*, measured from timestamps, never in frames: a frame-count ring
  gives fewer seconds than asked when the frame rate or GOP differs from what it assumed.
- It evicts a whole GOP only when the GOPs after it still cover ``pre_event_s``. Coverage is the
  end of the newest packet (its pts plus one frame) minus the first key frame's pts. So the ring
  holds at least ``pre_event_s``, plus less than one GOP, at every instant: it never shrinks below
  the target while it waits for the next key frame.
- The GOP being filled is never evicted for time, so with ``pre_event_s = 0`` a clip still starts
  on a key frame (the current GOP's).
- ``max_bytes`` is a hard memory cap: over it, the oldest GOPs go even if coverage drops, and
  :attr:`PreEventRing.evicted_for_bytes` counts it so the firmware can report it. If the GOP being
  filled alone exceeds the cap, it is dropped too and the ring waits for the next key frame.
- Packets before the first key frame cannot be decoded and are dropped.

Memory is counted as the packets' payload bytes. The ring is pure: no threads, no clock, no I/O;
the caller serialises access.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from fractions import Fraction

from device.media import EncodedAudio
from hw.ports.camera import VideoPacket


@dataclass(frozen=True, slots=True)
class RingSnapshot:
    """What a clip starts with: video from a key frame, and the audio of the same span if kept."""

    video: tuple[VideoPacket, ...]
    audio: tuple[EncodedAudio, ...]
    covered_s: float  #: end of the newest packet minus the first key frame's time
    buffered_bytes: int

    @property
    def empty(self) -> bool:
        return not self.video


@dataclass(slots=True)
class _Gop:
    start: Fraction  #: seconds: the key frame's presentation time
    packets: list[VideoPacket] = field(default_factory=list)
    nbytes: int = 0


def _at(pts: int, time_base: Fraction) -> Fraction:
    return pts * time_base


class PreEventRing:
    """Encoded packets of the last ``pre_event_s`` seconds, evicted a whole GOP at a time."""

    def __init__(
        self,
        pre_event_s: float,
        max_bytes: int,
        keep_audio: bool,
        *,
        fps: Fraction | None = None,
    ) -> None:
        """``fps``, when given, sets one frame's duration; otherwise it is the shortest step
        between packets seen so far (a dropped frame must not make the newest one look longer).
        """
        if not 0 <= pre_event_s < float("inf"):
            raise ValueError(f"pre_event_s must be a finite number >= 0, not {pre_event_s}")
        if max_bytes <= 0:
            raise ValueError(f"max_bytes must be > 0, not {max_bytes}")
        self._target = Fraction(pre_event_s)
        self._max_bytes = max_bytes
        self._keep_audio = keep_audio
        self._gops: deque[_Gop] = deque()
        self._audio: deque[EncodedAudio] = deque()
        self._video_bytes = self._audio_bytes = 0
        self._newest: Fraction | None = None  # seconds: time of the newest video packet
        self._fixed_frame = Fraction(1) / fps if fps else None
        self._frame = self._fixed_frame or Fraction(0)  # seconds: one frame's duration
        self.evicted_gops = 0  #: GOPs evicted, for time or for bytes
        self.evicted_for_bytes = 0  #: GOPs evicted by the byte cap (coverage may be short)
        self.dropped_video = 0  #: packets dropped while no key frame had started a GOP
        self.dropped_audio = 0  #: audio packets not kept (audio off, or before the first GOP)

    # ---- stats ---------------------------------------------------------------------------

    @property
    def pre_event_s(self) -> float:
        return float(self._target)

    @property
    def keep_audio(self) -> bool:
        return self._keep_audio

    @property
    def buffered_s(self) -> float:
        return float(self._coverage())

    @property
    def bytes(self) -> int:
        return self._video_bytes + self._audio_bytes

    @property
    def gops(self) -> int:
        return len(self._gops)

    # ---- input ---------------------------------------------------------------------------

    def push_video(self, packet: VideoPacket) -> None:
        at = _at(packet.pts, packet.time_base)
        if self._newest is not None and at < self._newest:
            # Time went backwards: the camera restarted and its pts began again at zero. Old
            # and new packets cannot share a clip timeline, so start over.
            self.clear()
        elif self._newest is not None and self._fixed_frame is None and at > self._newest:
            step = at - self._newest
            self._frame = step if not self._frame else min(self._frame, step)
        self._newest = at
        if packet.keyframe:
            self._gops.append(_Gop(start=at))
        elif not self._gops:
            self.dropped_video += 1
            return
        gop = self._gops[-1]
        gop.packets.append(packet)
        gop.nbytes += len(packet.data)
        self._video_bytes += len(packet.data)
        self._evict_for_time()
        self._evict_for_bytes()

    def push_audio(self, packet: EncodedAudio) -> None:
        if not self._keep_audio or not self._gops:
            self.dropped_audio += 1
            return
        if _at(packet.pts, packet.time_base) < self._gops[0].start:
            self.dropped_audio += 1
            return
        self._audio.append(packet)
        self._audio_bytes += len(packet.data)
        self._evict_for_bytes()

    # ---- output --------------------------------------------------------------------------

    def snapshot(self) -> RingSnapshot:
        """The buffered footage, from its first key frame; the ring keeps buffering after it."""
        video = tuple(p for gop in self._gops for p in gop.packets)
        audio = tuple(self._audio)
        return RingSnapshot(
            video=video,
            audio=audio,
            covered_s=float(self._coverage()),
            buffered_bytes=self.bytes,
        )

    def clear(self) -> None:
        """Forget everything buffered (counters are kept)."""
        self._gops.clear()
        self._audio.clear()
        self._video_bytes = self._audio_bytes = 0
        self._newest = None
        self._frame = self._fixed_frame or Fraction(0)

    # ---- eviction ------------------------------------------------------------------------

    def _coverage(self) -> Fraction:
        if not self._gops or self._newest is None:
            return Fraction(0)
        return self._newest + self._frame - self._gops[0].start

    def _evict_for_time(self) -> None:
        if self._newest is None:
            return
        end = self._newest + self._frame
        # Evict the oldest GOP only if the rest still covers the target; never the last one.
        while len(self._gops) > 1 and end - self._gops[1].start >= self._target:
            self._evict_oldest()

    def _evict_for_bytes(self) -> None:
        while self.bytes > self._max_bytes and self._gops:
            self._evict_oldest()
            self.evicted_for_bytes += 1

    def _evict_oldest(self) -> None:
        gop = self._gops.popleft()
        self._video_bytes -= gop.nbytes
        self.evicted_gops += 1
        self._drop_audio_before(self._gops[0].start if self._gops else None)

    def _drop_audio_before(self, start: Fraction | None) -> None:
        """Drop audio before ``start`` (all of it when no GOP is left)."""
        audio = self._audio
        while audio and (start is None or _at(audio[0].pts, audio[0].time_base) < start):
            self._audio_bytes -= len(audio.popleft().data)
