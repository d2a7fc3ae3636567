"""Random sequences of every input in every state: the controller's invariants always hold."""

from __future__ import annotations

from typing import Literal

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from device.controller import Controller, input_kind
from device.events import (
    Action,
    Audit,
    BatteryInput,
    DockInput,
    Feedback,
    Gesture,
    GestureInput,
    Input,
    PowerInput,
    Shutdown,
    StartClip,
    State,
    StopClip,
    StorageInput,
    TriggerInput,
    WriterFaultInput,
)

TRIGGER_KINDS = ["holster", "lightbar", "door", "peer"]


class ControllerMachine(RuleBasedStateMachine):
    """Feeds inputs one at a time and checks each step's actions against the state change."""

    def __init__(self) -> None:
        super().__init__()
        self.controller = Controller()
        self.now = 0
        self.clip_open = False  # what StartClip and StopClip said so far

    def next_ns(self) -> int:
        self.now += 250_000_000
        return self.now

    # ---- inputs -------------------------------------------------------------------------

    @rule(g=st.sampled_from(Gesture))
    def gesture(self, g: Gesture) -> None:
        self.feed(GestureInput(g, self.next_ns()))

    @rule(kind=st.sampled_from(TRIGGER_KINDS), source=st.sampled_from(["SRC-1", "CAM-2"]))
    def trigger(self, kind: str, source: str) -> None:
        before = self.controller.state
        actions = self.feed(TriggerInput(source, kind, self.next_ns()))
        assert not any(isinstance(a, StopClip) for a in actions)
        if before is State.RECORDING or any(isinstance(a, StartClip) for a in actions):
            assert self.controller.state is State.RECORDING

    @rule(docked=st.booleans())
    def dock(self, docked: bool) -> None:
        self.feed(DockInput(docked, self.next_ns()))

    @rule(level=st.sampled_from(["ok", "low", "critical"]))
    def battery(self, level: Literal["ok", "low", "critical"]) -> None:
        self.feed(
            BatteryInput(level, {"ok": 80.0, "low": 12.0, "critical": 2.0}[level], self.next_ns())
        )

    @rule(level=st.sampled_from(["ok", "low", "full"]))
    def storage(self, level: Literal["ok", "low", "full"]) -> None:
        self.feed(
            StorageInput(level, {"ok": 10**10, "low": 10**8, "full": 0}[level], self.next_ns())
        )

    @rule()
    def writer_fault(self) -> None:
        self.feed(WriterFaultInput("fsync failed: EIO", self.next_ns()))

    @rule(on=st.booleans())
    def power(self, on: bool) -> None:
        self.feed(PowerInput(on, self.next_ns()))

    # ---- per-step checks ----------------------------------------------------------------

    def feed(self, event: Input) -> list[Action]:
        before = self.controller.state
        writer_fault = self.controller.fault == "writer"
        key = (before.value, input_kind(event))
        ignored_before = self.controller.ignored[key]
        ignored_total = self.controller.ignored.total()

        actions = self.controller.handle(event)
        after = self.controller.state

        self.check_clips(actions)
        if writer_fault and after is not State.FAULT:
            # the storage can no longer be trusted: only a dock or a power-off ends the fault
            assert after in (State.DOCKED, State.OFF)
        self.check_transition(before, after, event, actions)
        assert all(getattr(a, "at_ns", event.at_ns) == event.at_ns for a in actions)
        if actions:
            assert self.controller.ignored.total() == ignored_total
        else:
            assert after is before
            assert self.controller.ignored[key] == ignored_before + 1
        return actions

    def check_clips(self, actions: list[Action]) -> None:
        for action in actions:
            if isinstance(action, StartClip):
                assert not self.clip_open, "a clip was started while one was open"
                self.clip_open = True
            elif isinstance(action, StopClip):
                assert self.clip_open, "a clip was stopped while none was open"
                self.clip_open = False

    def check_transition(
        self, before: State, after: State, event: Input, actions: list[Action]
    ) -> None:
        audits = [a for a in actions if isinstance(a, Audit) and a.event == "state"]
        shutdowns = [a for a in actions if isinstance(a, Shutdown)]
        if after is before:
            assert audits == []
            assert shutdowns == []
            return
        assert len(audits) == 1
        assert (audits[0].detail["from"], audits[0].detail["to"]) == (before.value, after.value)
        assert Feedback(f"state:{after.value}") in actions
        assert len(shutdowns) == (after is State.OFF)
        if shutdowns:
            assert actions[-1] is shutdowns[0], "nothing may follow the shutdown"

    # ---- invariants after every step ----------------------------------------------------

    @invariant()
    def a_clip_is_open_exactly_while_recording(self) -> None:
        recording = self.controller.state is State.RECORDING
        assert self.controller.clip_open == self.clip_open == recording

    @invariant()
    def an_off_camera_is_unmuted_and_visible(self) -> None:
        if self.controller.state is State.OFF:
            assert not self.controller.muted
            assert not self.controller.stealth

    @invariant()
    def only_a_fault_has_a_fault_reason(self) -> None:
        assert (self.controller.fault is not None) == (self.controller.state is State.FAULT)


ControllerMachine.TestCase.settings = settings(
    max_examples=300, stateful_step_count=40, deadline=None
)
TestControllerMachine = ControllerMachine.TestCase
