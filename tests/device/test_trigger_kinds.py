"""The trigger engine obeys only the source kinds it is given; the others are refused by name."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from custody.trigger import EventType
from custody.trigger_registry import KINDS, TriggerSource
from device.events import TriggerInput
from device.triggers import KIND_NOT_OBEYED, CounterStore, TriggerEngine
from hw.sim.clock import SimClock
from hw.sim.storage import SimStorage
from tests.device.trigger_helpers import (
    HOLSTER,
    LIGHTBAR,
    PEER_CAMERA,
    agency_registry,
    heard,
    payload,
)

ENABLED = {HOLSTER.kind: HOLSTER, LIGHTBAR.kind: LIGHTBAR, PEER_CAMERA.kind: PEER_CAMERA}
EVENTS = {"holster": EventType.HOLSTER, "lightbar": EventType.LIGHTBAR,
          "peer": EventType.PEER_RECORDING}  # fmt: skip


def judge(obeyed: frozenset[str] | None, source: TriggerSource) -> tuple[str, list[TriggerInput]]:
    """The reason a fresh engine gives for one authentic advertisement, and what it delivered."""
    delivered: list[TriggerInput] = []
    with tempfile.TemporaryDirectory() as card:
        engine = TriggerEngine(
            agency_registry(), CounterStore(SimStorage(Path(card))), SimClock(virtual=True),
            sink=delivered.append, obeyed_kinds=obeyed,
        )  # fmt: skip
        h = heard(payload(source, 1, EVENTS[source.kind]))
        reason = engine.handle(h.device, h.data).reason
        if reason == KIND_NOT_OBEYED:
            assert engine.stats()["rejected"] == {KIND_NOT_OBEYED: 1}
    return reason, delivered


@given(obeyed=st.frozensets(st.sampled_from(sorted(KINDS))), kind=st.sampled_from(sorted(ENABLED)))
def test_a_source_is_obeyed_exactly_when_its_kind_is_listed(
    obeyed: frozenset[str], kind: str
) -> None:
    reason, delivered = judge(obeyed, ENABLED[kind])
    if kind in obeyed:
        assert reason == "accepted" and [d.kind for d in delivered] == [kind]
    else:
        assert reason == KIND_NOT_OBEYED and delivered == []


@given(kind=st.sampled_from(sorted(ENABLED)))
def test_without_a_list_every_kind_is_obeyed(kind: str) -> None:
    assert judge(None, ENABLED[kind])[0] == "accepted"
