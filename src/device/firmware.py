"""The camera firmware: ports, controller, ring, recorder and feedback wired together.

Everything happens in :meth:`Firmware.step`, one camera frame at a time, on one thread: inputs
from other threads (button edges, BLE triggers, the dock, the control socket) only enter a queue.
So the firmware is deterministic under a virtual clock and a test drives it frame by frame.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass
from typing import Any, Protocol

import structlog

from device.audit_log import DeviceAuditLog
from device.ble_link import BleLink
from device.config import DeviceConfig
from device.controller import Controller, trigger_reason
from device.errors import AuditWriteError, ClipWriteError, StorageFullError
from device.events import (
    Action,
    AddMarker,
    Audit,
    Feedback,
    Input,
    NoteEvent,
    PowerInput,
    SetMuted,
    SetStealth,
    Shutdown,
    StartClip,
    State,
    StopClip,
    WriterFaultInput,
)
from device.feedback import OfficerFeedback
from device.gestures import GestureDetector
from device.input_queue import InputQueue
from device.levels import LevelMonitor
from device.media import AudioEncoder
from device.recorder import DeviceKeys, Recorder, StartRequest
from device.recovery import RecoveryReport, recover_clips
from device.ring import PreEventRing
from hw.ports.battery import BatteryGauge, BatteryReading
from hw.ports.camera import Camera
from hw.ports.clock import Clock
from hw.ports.gnss import Gnss
from hw.ports.io import OfficerIo
from hw.ports.microphone import Microphone
from hw.ports.storage import Storage

log = structlog.get_logger(__name__)

CLIPS_ROOT = "clips"
AUDIT_LOG = "audit/device.jsonl"
SECOND = 1_000_000_000
GNSS_EVERY_NS = 10 * SECOND
#: states in which a clip may be open: recording, and buffering during a post-event tail
_MAY_RECORD = (State.RECORDING, State.BUFFERING)


@dataclass(frozen=True)
class DevicePorts:
    clock: Clock
    camera: Camera
    io: OfficerIo
    battery: BatteryGauge
    storage: Storage
    microphone: Microphone | None = None
    gnss: Gnss | None = None


class DockListener(Protocol):
    """Told when the camera enters or leaves the dock (the offload API); must return at once."""

    def set_docked(self, docked: bool) -> None: ...

    def describe(self) -> dict[str, object]: ...


class Firmware:
    def __init__(
        self, config: DeviceConfig, ports: DevicePorts, keys: DeviceKeys,
        audit: DeviceAuditLog | None = None,
    ) -> None:  # fmt: skip
        # ``audit``: a log the composition root opened already (the boot choice of a firmware
        # slot is audited before the firmware boots); else boot opens it
        self.config = config
        self.ports = ports
        self._keys = keys
        self.controller = Controller()
        self._inputs = InputQueue(GestureDetector.from_config(config))
        self._levels = LevelMonitor(config, ports.storage, ports.battery)
        # An input lands between frames and is handled at the next one, when the newest buffered
        # frame may end up to one frame after it: buffer one frame more than the pre-event time.
        frame_s = float(1 / ports.camera.info.fps)
        self.ring = PreEventRing(
            config.pre_event_s + frame_s,
            config.pre_event_max_bytes,
            keep_audio=config.pre_event_audio,
            fps=ports.camera.info.fps,
        )
        self.feedback = OfficerFeedback(
            ports.io, reminder_interval_s=config.reminder_interval_s, cues=config.feedback
        )
        self._pending: deque[Input] = deque()  # inputs raised by actions, handled after them
        self._handling = False
        self._audio = (
            AudioEncoder(ports.microphone.sample_rate, ports.microphone.channels)
            if ports.microphone is not None
            else None
        )
        self._audio_next_ns = 0
        self._muted = False
        self.recorder: Recorder | None = None
        self.ble: BleLink | None = None  #: triggers and the peer beacon, when the camera has BLE
        self.dock_listener: DockListener | None = None  #: the offload API, served while docked
        self.sealed: list[str] = []  #: clip ids sealed since boot, oldest first
        self.audit: DeviceAuditLog | None = audit
        self.time_sync_offset_ns = 0
        self._next_gnss_ns = 0
        self.running = False
        self.stopped = threading.Event()

    # -- life cycle -----------------------------------------------------------------------------

    def boot(self) -> RecoveryReport:
        """Recover unsealed clips, open the hardware and power on into buffering."""
        p = self.ports
        if self.audit is None:
            self.audit = DeviceAuditLog(p.storage, AUDIT_LOG, self._keys.identity, p.clock)
        report = recover_clips(p.storage, CLIPS_ROOT, self._keys.identity, self.audit)
        p.camera.open()
        if p.microphone is not None:
            p.microphone.open()
        if p.gnss is not None:
            p.gnss.open()
        self._inputs.listen(p.io)
        self.running = True
        if self.ble is not None:
            self.ble.start()
        self._handle(PowerInput(on=True, at_ns=p.clock.monotonic_ns()))
        return report

    def attach_ble(self, link: BleLink) -> None:
        """Hear triggers and announce recordings to peers (before :meth:`boot`)."""
        self.ble = link

    @property
    def battery_reading(self) -> BatteryReading | None:
        """The latest battery reading, for the dock's status."""
        return self._levels.battery_reading

    def submit(self, event: Input) -> None:
        """Queue an input from any thread; it takes effect at the next frame."""
        self._inputs.put(event)

    def run(self, stop: threading.Event | None = None) -> None:
        """Record until shut down (an input) or until ``stop`` is set."""
        try:
            while self.running and not (stop is not None and stop.is_set()):
                self.step()
        finally:
            self.close()

    def close(self) -> None:
        """Seal any open clip and release the hardware; safe to call twice."""
        if self.stopped.is_set():
            return
        now = self.ports.clock.monotonic_ns()
        self._finish_clip(now)
        if self.ble is not None:
            self.ble.close()
        for part in (self.ports.camera, self.ports.microphone, self.ports.gnss):
            if part is not None:
                part.close()
        self._inputs.stop_listening(self.ports.io)
        if self.audit is not None:
            try:
                self.audit.close()
            except AuditWriteError as exc:  # release the hardware anyway; boot resumes the log
                log.error("audit close failed", error=str(exc))
        self.running = False
        self.stopped.set()

    # -- one frame ------------------------------------------------------------------------------

    def step(self) -> None:
        packet = self.ports.camera.read()
        now = packet.monotonic_ns
        self._take_inputs(now)
        self._monitor(now)
        if not self.running:
            return
        self._take_audio(now)
        self.ring.push_video(packet)
        if self.recorder is not None:
            self._guard(lambda r: r.push_video(packet), now)
            tail = self.recorder
            if tail is not None and tail.stop_at_ns is not None and now >= tail.stop_at_ns:
                self._finish_clip(now)
        self.feedback.tick(now)

    def _take_inputs(self, now: int) -> None:
        for event in self._inputs.take(now):
            self._handle(event)

    def _take_audio(self, now: int) -> None:
        mic, encoder = self.ports.microphone, self._audio
        if mic is None or encoder is None:
            return
        while self._audio_next_ns <= now:
            chunk = mic.read()
            self._audio_next_ns = chunk.monotonic_ns + chunk.samples * SECOND // chunk.sample_rate
            if self._muted:
                continue  # muted audio is never encoded, buffered or stored
            for packet in encoder.encode(chunk):
                self.ring.push_audio(packet)
                if self.recorder is not None:
                    self._guard(lambda r, p=packet: r.push_audio(p), now)

    # -- monitors -------------------------------------------------------------------------------

    def _monitor(self, now: int) -> None:
        for event in self._levels.poll(now):
            self._handle(event)
        if self.recorder is not None and self.ports.gnss is not None and now >= self._next_gnss_ns:
            self._next_gnss_ns = now + GNSS_EVERY_NS
            fix = self.ports.gnss.fix()
            if fix is not None:
                self._guard(lambda r: r.writer.add_gnss_fix(fix, monotonic_ns=now), now)

    # -- actions --------------------------------------------------------------------------------

    def _handle(self, event: Input) -> None:
        # An input raised while acting on another (a clip write failing) waits until that one's
        # actions are done: otherwise they would finish after it, and the officer would see
        # "recording" from a start whose clip had already faulted.
        self._pending.append(event)
        if self._handling:
            return
        self._handling = True
        try:
            while self._pending:
                event = self._pending.popleft()
                was_docked = self.controller.state is State.DOCKED
                for action in self.controller.handle(event):
                    self._do(action, event.at_ns)
                if self.recorder is not None and self.controller.state not in _MAY_RECORD:
                    # a post-event tail ends at once when the camera docks or faults, as a clip
                    # being recorded does
                    self._finish_clip(event.at_ns)
                docked = self.controller.state is State.DOCKED
                if docked != was_docked and self.dock_listener is not None:
                    self.dock_listener.set_docked(docked)  # after the open clip is sealed
        finally:
            self._handling = False

    def _do(self, action: Action, now: int) -> None:
        match action:
            case StartClip():
                self._start_clip(action)
            case StopClip(immediate=immediate):
                self._stop_clip(now, immediate=immediate)
            case AddMarker(at_ns=at):
                self._guard(lambda r: r.writer.add_marker(at), now)
            case NoteEvent(kind=kind, detail=detail, at_ns=at):
                self._guard(lambda r: r.writer.add_event(kind, detail, monotonic_ns=at), now)
            case SetMuted(muted=muted):
                self._muted = muted
            case SetStealth(stealth=stealth):
                self.feedback.set_stealth(stealth)
            case Feedback(pattern=pattern):
                self._show(pattern, now)
            case Audit(event=event, detail=detail):
                self._audit(event, detail)
            case Shutdown():
                self._finish_clip(now)
                self.running = False

    def _start_clip(self, action: StartClip) -> None:
        self._finish_clip(action.at_ns)  # a post-event tail ends when a new clip starts
        trigger = action.trigger
        triggers: list[dict[str, str | int]] = (
            [{"kind": "button"}]
            if trigger is None
            else [{"kind": trigger.kind, "source_id": trigger.source_id, **trigger.detail}]
        )
        request = StartRequest(triggers, action.at_ns, self.time_sync_offset_ns)
        snapshot = self.ring.snapshot()
        try:
            self.recorder = Recorder.start(
                snapshot, request, storage=self.ports.storage, clips_root=CLIPS_ROOT,
                config=self.config, keys=self._keys, clock=self.ports.clock,
                info=self.ports.camera.info,
                audio=self._audio.format if self._audio is not None else None,
            )  # fmt: skip
        except ClipWriteError as exc:
            self._writer_failed(exc, action.at_ns)
            return
        log.info("clip started", clip_id=self.recorder.clip_id, reason=action.reason)
        if self.ble is not None:
            self.ble.clip_started(action.trigger)
        # written once the clip is open, so a full card seals it as the firmware's own clip
        self._guard(lambda r: r.push_snapshot(snapshot), action.at_ns)

    def _stop_clip(self, now: int, *, immediate: bool) -> None:
        if self.recorder is None:
            return
        if immediate or self.config.post_event_s == 0:
            self._finish_clip(now)
        else:
            self.recorder.stop_at_ns = now + round(self.config.post_event_s * SECOND)

    def _finish_clip(self, now: int) -> None:
        recorder, self.recorder = self.recorder, None
        if recorder is None:
            return
        try:
            recorder.stop(end_monotonic_ns=now)
        except ClipWriteError as exc:
            if recorder.writer.sealed is not None:  # sealed over what was durable before the fault
                self.sealed.append(recorder.clip_id)
            self._writer_failed(exc, now)
            return
        self.sealed.append(recorder.clip_id)
        log.info("clip sealed", clip_id=recorder.clip_id, segments=recorder.writer.segment_count)

    def _guard(self, write: Any, now: int) -> None:
        """Run a write on the open clip; a storage failure ends the clip and faults the camera."""
        recorder = self.recorder
        if recorder is None:
            return
        try:
            write(recorder)
        except ClipWriteError as exc:
            self.recorder = None
            if recorder.writer.sealed is not None:
                self.sealed.append(recorder.clip_id)
            self._writer_failed(exc, now)

    def _writer_failed(self, exc: ClipWriteError, now: int) -> None:
        log.error("clip write failed", error=str(exc))
        if isinstance(exc, StorageFullError):
            self._handle(self._levels.storage_full(now))
        else:
            self._handle(WriterFaultInput(str(exc), now))

    def _show(self, pattern: str, now: int) -> None:
        if pattern.startswith("state:"):
            self.feedback.show_state(State(pattern.removeprefix("state:")), now)
        else:
            self.feedback.cue(pattern)

    def _audit(self, event: str, detail: dict[str, str]) -> None:
        if self.audit is None:
            return
        try:
            self.audit.append(event, dict(detail))
        except AuditWriteError as exc:  # the audit log reports its own write failures; never crash
            log.error("audit append failed", audit_event=event, error=str(exc))

    # -- status ---------------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        c = self.controller
        return {
            "state": c.state.value,
            "muted": c.muted,
            "stealth": c.stealth,
            "fault": c.fault,
            "clip": self.recorder.clip_id if self.recorder is not None else None,
            "segments": self.recorder.writer.segment_count if self.recorder is not None else 0,
            "sealed": list(self.sealed),
            "ring_s": round(self.ring.buffered_s, 3),
            "ring_bytes": self.ring.bytes,
            "ignored": {f"{s}/{k}": n for (s, k), n in c.ignored.items()},
            "feedback": self.feedback.shown[-10:],
            "triggers": self.ble.engine.stats() if self.ble is not None else None,
            "offload": self.dock_listener.describe() if self.dock_listener is not None else None,
        }


__all__ = ["DeviceKeys", "DevicePorts", "DockListener", "Firmware", "trigger_reason"]
