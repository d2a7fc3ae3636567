"""The whole camera under random sequences of gestures, triggers, dock, battery and storage events.

Each example builds a fresh camera on sim hardware with a virtual clock (``firmware_rig``) and a
drawn variant: pre-event time, post-event time, and a roomy or a small card that fills up while
recording. Rules press the sim buttons' pins, submit BLE triggers, dock, set the battery, fail an
fsync, and run the camera. After every rule:

- at most one open clip: ``recorder`` is set only while recording or in a post-event tail, and no
  clip folder but the open clip's lacks a seal;
- every sealed clip verifies (device signature, chain, and decryption with the agency key);
- every clip starts on a key frame: its first segment's first video packet is one, and decodes;
- pre-event coverage: ``pre_event_ns >= min(pre_event_s, start input - boot)`` (see below);
- a trigger never stops a recording;
- what the officer sees is the controller's state;
- the firmware never raises. Once it powers off, only a check rule runs.

The pre-event bound, exactly. Gestures here press and release between frames while the camera
keeps running, as on a real camera, so every frame is captured on schedule: frame ``i`` at
``boot + i * 100 ms``, with pts ``i / 10 s``, and the sim's first frame is a key frame. An input
made after frame ``k`` is stamped ``at >= t_k`` (``t_k`` itself without a microphone; 50 ms later
with one, whose chunk moved the virtual clock) and handled at frame ``k + 1``, when the ring holds
frames up to ``k``. The ring evicts a GOP only if the rest still covers ``pre_event_s`` plus one
frame, measured as newest pts plus one frame minus the first key frame's pts, and once it has
evicted that holds for ever after. So either nothing was evicted and the clip starts at frame 0
(``pre_event_ns = at - boot``), or ``t_k - first >= pre_event_s``. Both give ``pre_event_ns >=
min(pre_event_s, at - boot)`` with no GOP of slack (a camera whose first frame is not a key frame
would lose up to one GOP more, which the sim camera cannot show). Without a microphone the bound
is met with equality when a start lands on the one frame of the GOP where the ring has just
evicted, so start inputs are aligned to every frame of a GOP (``PHASES``): a ring one frame short
fails here. The ring's byte cap (64 MiB by default) may evict below the target by design; at this
bitrate it never comes near.
"""

from __future__ import annotations

import contextlib
import errno
import io
import json
import shutil
import tempfile
from pathlib import Path
from typing import Literal

import av
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from hypothesis import Phase, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from custody.clip import FolderSegments, decrypt_segments
from custody.keys import Role, generate_private_key
from device.config import DeviceConfig
from device.events import BatteryInput, DockInput, State, StorageInput, TriggerInput
from hw.ports.io import Button
from tests.device.firmware_rig import GOP, Camera, build_camera

SECOND = 10**9
HOLD_FRAMES = 32  # 3.2 s: past the 3 s hold time
SMALL_CARD = 384 * 1024  # fills up after about 9 s of recording (35 kB/s)
TRIGGER_KINDS = ["holster", "lightbar", "door", "peer"]
GESTURES = ["double_press", "single_press", "hold"]
#: the frame of its GOP at which a start input is handled: the pre-event bound is tight at one
#: of them (which one depends on pre_event_s), so starts must land at every one
PHASES = st.integers(0, GOP - 1)
#: causes that may end a recording in the same frame as a trigger (none of them is the trigger)
INDEPENDENT_STOPS = {"storage_full", "writer_fault", "battery_critical"}


def first_video_packet_is_key_frame(fmp4: bytes) -> bool:
    """The segment's first video packet is a key frame that decodes on its own."""
    with av.open(io.BytesIO(fmp4), "r", format="mp4") as container:
        stream = container.streams.video[0]
        first = next(p for p in container.demux(stream) if p.size)
        if not first.is_keyframe:
            return False
        frames = stream.codec_context.decode(first)
        frames += stream.codec_context.decode(None)  # flush: a lone packet yields its frame
        return bool(frames) and frames[0].key_frame


class FirmwareMachine(RuleBasedStateMachine):
    """One camera per example; the rules are what the officer, the car and the card do to it."""

    def __init__(self) -> None:
        super().__init__()
        self.folder = Path(tempfile.mkdtemp(prefix="bwc-firmware-"))
        self.camera: Camera | None = None
        self.pre_event_ns = 0
        self.boot_ns = 0
        self.next_frame = 0  #: index of the next frame the camera captures (0: a key frame)
        self.clips: set[str] = set()  #: clip folders seen so far
        self.sealed: set[str] = set()  #: clips seen sealed; each was verified once
        self.visited: set[str] = set()  #: states and faults seen, for the statistics

    @property
    def cam(self) -> Camera:
        assert self.camera is not None
        return self.camera

    def running(self) -> bool:
        return self.camera is not None and self.camera.firmware.running

    # ---- set-up ---------------------------------------------------------------------------

    @initialize(
        pre_event_s=st.sampled_from([0.0, 2.0, 2.5]),
        post_event_s=st.sampled_from([0.0, 4.0]),
        small_card=st.booleans(),
        audio=st.booleans(),
        buffered_frames=st.integers(0, 60),
        recording=st.booleans(),
    )
    def boot(
        self, pre_event_s: float, post_event_s: float, small_card: bool, audio: bool,
        buffered_frames: int, recording: bool,
    ) -> None:  # fmt: skip
        """Boot a fresh camera, let it buffer a while, and maybe start recording at once."""
        config = DeviceConfig(
            device_id="cam-0042", serial="BWC1-000042", officer_id="officer-1187",
            pre_event_s=pre_event_s, post_event_s=post_event_s, reminder_interval_s=5,
            storage_reserve_bytes=64 * 1024, storage_low_bytes=256 * 1024,
        )  # fmt: skip
        device_key, agency_key = (
            generate_private_key(Role.DEVICE),
            generate_private_key(Role.AGENCY),
        )
        assert isinstance(device_key, Ed25519PrivateKey)
        assert isinstance(agency_key, X25519PrivateKey)
        self.camera = build_camera(
            self.folder / "card", device_key, agency_key, config, audio=audio,
            capacity_bytes=SMALL_CARD if small_card else 256 * 1024**2,
        )  # fmt: skip
        self.pre_event_ns = round(pre_event_s * SECOND)
        self.camera.firmware.boot()
        self.boot_ns = self.camera.now()
        self.frames(buffered_frames)
        if recording:
            self.record_button("double_press", 0)

    def teardown(self) -> None:
        with contextlib.ExitStack() as cleanup:
            cleanup.callback(shutil.rmtree, self.folder, ignore_errors=True)
            if self.camera is None:
                return
            cleanup.callback(self.camera.battery.close)
            cleanup.callback(self.camera.io.close)  # stops gpiozero's blink threads
            # powering down seals the open clip: afterwards every clip is sealed and verifies
            firmware = self.camera.firmware
            event(f"ended {firmware.controller.state.value}")
            event(f"clips: {min(len(self.clips), 3)}")
            for seen in sorted(self.visited):
                event(f"visited {seen}")
            firmware.close()
            self.check_clips()
            assert self.clips == self.sealed

    # ---- driving the camera ---------------------------------------------------------------

    def frames(self, count: int) -> None:
        """Run ``count`` frames, stopping where ``Firmware.run`` would: at shutdown."""
        firmware = self.cam.firmware
        for _ in range(count):
            if not firmware.running:
                break
            firmware.step()
            self.next_frame += 1
        if not firmware.running:
            firmware.close()

    def align(self, phase: int, *, ahead: int = 0) -> None:
        """Run until the frame ``ahead`` frames from now is number ``phase`` of its GOP."""
        self.frames((phase - self.next_frame - ahead) % GOP)

    def gesture(self, button: Button, gesture: str) -> int:
        """Do a gesture a frame at a time while the camera runs; returns its last press's time."""
        pins, at = self.cam.io, self.cam.now()
        if gesture == "hold":
            self.hold(HOLD_FRAMES, button)
            return at
        for press in range(2 if gesture == "double_press" else 1):
            if press:
                self.frames(1)
            at = self.cam.now()
            pins.press(button)
            self.frames(1)
            pins.release(button)
        self.frames(5)  # past the double-press window: a single press is known by now
        return at

    def hold(self, frames: int, *buttons: Button) -> None:
        for button in buttons:
            self.cam.io.press(button)
        self.frames(frames)
        for button in buttons:
            self.cam.io.release(button)
        self.frames(1)

    def settle(self, start_at: int | None = None) -> None:
        """Note the clip a rule started, if any: only a start input may start one, and one."""
        new = set(self.clip_ids()) - self.clips
        self.clips |= new
        assert len(new) <= 1, f"one input started several clips: {sorted(new)}"
        for clip_id in new:
            assert start_at is not None, f"clip {clip_id} started without a start input"
            self.check_pre_event(clip_id, start_at)

    # ---- rules ----------------------------------------------------------------------------

    @precondition(running)
    @rule(frames=st.integers(1, 30))
    def run(self, frames: int) -> None:
        self.frames(frames)
        self.settle()

    @precondition(running)
    @rule(gesture=st.sampled_from(GESTURES), phase=PHASES)
    def record_button(self, gesture: str, phase: int) -> None:
        """Double press starts, single press marks, hold stops (ignored where they mean nothing)."""
        self.align(phase, ahead=2 if gesture == "double_press" else 0)
        at = self.gesture(self.cam.io.record_button, gesture)
        self.settle(at if gesture == "double_press" else None)

    @precondition(running)
    @rule(gesture=st.sampled_from(GESTURES))
    def function_button(self, gesture: str) -> None:
        """Double press mutes or unmutes, hold toggles stealth, a single press does nothing."""
        self.gesture(self.cam.io.function_button, gesture)
        self.settle()

    @precondition(running)
    @rule(frames=st.sampled_from([5, 15, 25, HOLD_FRAMES]))
    def both_buttons(self, frames: int) -> None:
        """Both buttons held: power off after 3 s; a shorter chord does nothing at all."""
        pins = self.cam.io
        self.hold(frames, pins.record_button, pins.function_button)
        self.settle()

    @precondition(running)
    @rule(
        kind=st.sampled_from(TRIGGER_KINDS),
        source=st.sampled_from(["SRC-7", "CAM-0099"]),
        phase=PHASES,
    )
    def trigger(self, kind: str, source: str, phase: int) -> None:
        self.align(phase)
        firmware = self.cam.firmware
        recording = firmware.controller.state is State.RECORDING
        clip = firmware.recorder.clip_id if firmware.recorder is not None else None
        sealed = list(firmware.sealed)
        seq = self.audit_seq()
        at = self.cam.now()
        firmware.submit(TriggerInput(source, kind, at))
        self.frames(1)
        self.settle(at)
        if not recording:
            return
        # In that one frame only the card or the battery may end the clip, never the trigger
        left = [r for r in self.state_changes_since(seq) if r["from"] == "recording"]
        assert all(r["cause"] in INDEPENDENT_STOPS for r in left), f"a trigger stopped: {left}"
        assert firmware.controller.state in (State.RECORDING, State.FAULT, State.OFF)
        if firmware.controller.state is State.RECORDING:
            assert firmware.recorder is not None and firmware.recorder.clip_id == clip
            assert firmware.sealed == sealed, "a trigger sealed a clip"

    @precondition(running)
    @rule(docked=st.booleans())
    def dock(self, docked: bool) -> None:
        self.cam.battery.set_charging(docked)  # what the dock's charger does
        self.cam.submit(DockInput(docked, self.cam.now()))
        self.frames(1)
        self.settle()

    @precondition(running)
    @rule(percent=st.sampled_from([90.0, 60.0, 12.0, 2.0]), from_gauge=st.booleans())
    def battery(self, percent: float, from_gauge: bool) -> None:
        """A battery event, or the gauge's charge, which the camera reads every 10 s."""
        level: Literal["ok", "low", "critical"] = (
            "critical" if percent <= 3 else "low" if percent <= 15 else "ok"
        )
        if from_gauge:
            self.cam.battery.set_percent(percent)
        else:
            self.cam.submit(BatteryInput(level, percent, self.cam.now()))
        self.frames(1)
        self.settle()

    @precondition(running)
    @rule(level=st.sampled_from(["ok", "low", "full", None]))
    def storage(self, level: Literal["ok", "low", "full"] | None) -> None:
        """A storage event, or (None) the card's next fsync (segment, manifest, audit) failing."""
        if level is None:
            self.cam.storage.fail_fsync(errno.EIO, count=1)
        else:
            self.cam.submit(StorageInput(level, self.cam.storage.free_bytes(), self.cam.now()))
        self.frames(1)
        self.settle()

    @precondition(lambda self: self.camera is not None and not self.camera.firmware.running)
    @rule()
    def powered_off(self) -> None:
        """Once off, the camera stays off with nothing open, whatever the buttons do."""
        firmware, pins = self.cam.firmware, self.cam.io
        for _ in range(2):
            pins.press(pins.record_button)
            pins.release(pins.record_button)
        self.settle()
        assert firmware.stopped.is_set()
        assert firmware.controller.state is State.OFF
        assert firmware.recorder is None

    # ---- invariants -----------------------------------------------------------------------

    @precondition(lambda self: self.camera is not None)
    @invariant()
    def a_clip_is_open_only_while_recording(self) -> None:
        firmware = self.cam.firmware
        state, recorder = firmware.controller.state, firmware.recorder
        if state is State.RECORDING:
            assert recorder is not None, "recording without an open clip"
        elif recorder is not None:
            assert state is State.BUFFERING, f"clip {recorder.clip_id} is open in {state.value}"
            assert recorder.stop_at_ns is not None, "an open clip in buffering is not a tail"

    @precondition(lambda self: self.camera is not None)
    @invariant()
    def every_clip_but_the_open_one_is_sealed_and_verifies(self) -> None:
        self.check_clips()

    @precondition(lambda self: self.camera is not None)
    @invariant()
    def the_officer_sees_the_state(self) -> None:
        firmware = self.cam.firmware
        shown = [s for s in firmware.feedback.shown if s.startswith("state:")]
        # what the examples reached, reported by --hypothesis-show-statistics
        self.visited.add(f"{firmware.controller.state.value} {firmware.controller.fault or ''}")
        if firmware.recorder is not None and firmware.recorder.stop_at_ns is not None:
            self.visited.add("post-event tail")
        assert shown[-1] == f"state:{firmware.controller.state.value}", shown[-3:]

    @precondition(lambda self: self.camera is not None)
    @invariant()
    def an_off_camera_has_stopped(self) -> None:
        firmware = self.cam.firmware
        assert (firmware.controller.state is State.OFF) == (not firmware.running)

    # ---- checks ---------------------------------------------------------------------------

    def clip_ids(self) -> list[str]:
        root = self.cam.clip_folder("x").parent
        if not root.exists():
            return []
        return sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))

    def check_clips(self) -> None:
        recorder = self.cam.firmware.recorder
        open_clip = recorder.clip_id if recorder is not None else None
        on_card = set(self.clip_ids())
        assert on_card == self.clips, "a clip folder appeared or vanished outside a rule"
        for clip_id in sorted(on_card - self.sealed):
            if self.cam.manifest(clip_id).seal is None:
                assert clip_id == open_clip, f"clip {clip_id} is neither open nor sealed"
                continue
            self.check_sealed(clip_id)
            self.sealed.add(clip_id)
        assert set(self.cam.firmware.sealed) == self.sealed, "the firmware lost count of a seal"

    def check_sealed(self, clip_id: str) -> None:
        report = self.cam.verify(clip_id)
        assert report.ok, f"clip {clip_id}: {report.first_failure}"
        manifest = self.cam.manifest(clip_id)
        folder = self.cam.clip_folder(clip_id)
        first = next(decrypt_segments(FolderSegments(folder), manifest, self.cam.agency_key), None)
        if first is not None:
            assert first_video_packet_is_key_frame(first), f"clip {clip_id} starts off a key frame"

    def check_pre_event(self, clip_id: str, at_ns: int) -> None:
        info = self.cam.manifest(clip_id).header.info
        assert info.pre_event_ns == at_ns - info.start_monotonic_ns
        expected = min(self.pre_event_ns, at_ns - self.boot_ns)
        assert info.pre_event_ns >= expected, (
            f"clip {clip_id} has {info.pre_event_ns} ns of pre-event, not {expected}"
        )

    def audit_records(self) -> list[dict[str, object]]:
        path = self.cam.storage.root / "audit" / "device.jsonl"
        return [json.loads(line) for line in path.read_bytes().splitlines() if line]

    def audit_seq(self) -> int:
        return max((int(str(r["seq"])) for r in self.audit_records()), default=-1)

    def state_changes_since(self, seq: int) -> list[dict[str, str]]:
        changes: list[dict[str, str]] = []
        for record in self.audit_records():
            data = record["data"]
            if record["event"] == "state" and int(str(record["seq"])) > seq:
                assert isinstance(data, dict)
                changes.append({str(k): str(v) for k, v in data.items()})
        return changes


FirmwareMachine.TestCase.settings = settings(
    max_examples=40,
    stateful_step_count=30,
    deadline=None,
    # no explain phase: tracing every line makes a failure take minutes to report
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink],
)
TestFirmwareMachine = FirmwareMachine.TestCase
