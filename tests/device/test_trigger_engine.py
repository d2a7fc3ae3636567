"""The trigger engine accepts only fresh, authentic, near enough triggers of registered sources."""

from __future__ import annotations

import errno
import itertools
import logging
import random
import threading
from collections.abc import Iterator, MutableMapping
from pathlib import Path
from typing import Any

import pytest
import structlog
from hypothesis import given, settings
from hypothesis import strategies as st
from structlog.testing import capture_logs

from custody.trigger import COMPANY_ID, EventType
from device.events import TriggerInput
from device.triggers import COUNTERS_PATH, CounterStore, TriggerEngine, TriggerStateError
from hw.ports.ble import Advertisement
from hw.sim.ble import SimBleAdvertiser, SimBleScanner, SimRadio
from hw.sim.clock import SimClock
from hw.sim.storage import SimStorage
from tests.device.trigger_helpers import (
    DOOR,
    HOLSTER,
    LIGHTBAR,
    OTHER_AGENCY_SECRET,
    PEER_CAMERA,
    THIS_CAMERA,
    UNREGISTERED,
    Heard,
    agency_registry,
    heard,
    payload,
)
from tests.hw.ble_helpers import run_async


class Sink(list[TriggerInput]):
    """Collects what the engine hands to the firmware; thread-safe like Firmware.submit."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()

    def __call__(self, item: TriggerInput) -> None:
        with self._lock:
            self.append(item)


@pytest.fixture
def sink() -> Sink:
    return Sink()


@pytest.fixture
def engine(sim_storage: SimStorage, virtual_clock: SimClock, sink: Sink) -> TriggerEngine:
    return TriggerEngine(
        agency_registry(), CounterStore(sim_storage), virtual_clock, debounce_s=2.0, sink=sink
    )


def hear(engine: TriggerEngine, h: Heard) -> str:
    return engine.handle(h.device, h.data).reason


# ---- acceptance ------------------------------------------------------------------------------


def test_a_valid_holster_trigger_becomes_a_start_input_naming_its_source(
    engine: TriggerEngine, sink: Sink, virtual_clock: SimClock
) -> None:
    h = heard(payload(HOLSTER, 17, incident=0x00ABCD), rssi=-62)
    decision = engine.handle(h.device, h.data)
    assert decision.accepted and decision.outcome == "accepted"
    assert sink == [
        TriggerInput(
            source_id="holster-1187",
            kind="holster",
            at_ns=virtual_clock.monotonic_ns(),
            detail={
                "event": "holster",
                "counter": "17",
                "rssi": "-62",
                "incident": "00abcd",
                "hop": "0",
            },
        )
    ]
    assert engine.accepted == 1


def test_a_peer_camera_beacon_is_a_peer_input_with_its_hop(
    engine: TriggerEngine, sink: Sink
) -> None:
    beacon = payload(PEER_CAMERA, 3, EventType.PEER_RECORDING, incident=0xA1B2C3, hop=1)
    assert hear(engine, heard(beacon)) == "accepted"
    assert (sink[0].source_id, sink[0].kind, sink[0].detail["hop"]) == ("cam-0043", "peer", "1")
    assert sink[0].detail["incident"] == "a1b2c3"


def test_decide_tells_what_would_happen_without_consuming_anything(
    engine: TriggerEngine, sink: Sink
) -> None:
    h = heard(payload(HOLSTER, 1))
    assert engine.decide(h.device, h.data).reason == "accepted"
    assert engine.decide(h.device, h.data).reason == "accepted"
    assert sink == [] and engine.accepted == 0 and engine.stats()["rejected_total"] == 0
    assert hear(engine, h) == "accepted"
    assert engine.decide(h.device, h.data).reason == "duplicate"


# ---- what is not ours, or not authentic ------------------------------------------------------


@pytest.mark.parametrize(
    "h",
    [
        heard(payload(HOLSTER, 1), company_id=0x004C),
        heard(payload(HOLSTER, 1)[:-1]),
        heard(payload(HOLSTER, 1) + b"\x00"),
        heard(b""),
    ],
    ids=["other-company", "short", "long", "empty"],
)
def test_other_devices_traffic_is_ignored_not_rejected(
    engine: TriggerEngine, sink: Sink, h: Heard
) -> None:
    assert hear(engine, h) == "not_ours"
    assert engine.ignored == 1 and not engine.rejected and sink == []


def test_a_payload_of_another_version_is_rejected(engine: TriggerEngine) -> None:
    assert hear(engine, heard(b"\x02" + payload(HOLSTER, 1)[1:])) == "version"


def test_an_unregistered_source_is_rejected(engine: TriggerEngine, sink: Sink) -> None:
    assert hear(engine, heard(payload(UNREGISTERED, 1))) == "unknown_source"
    assert sink == []


def test_another_agencys_trigger_is_rejected_as_an_unknown_source(engine: TriggerEngine) -> None:
    h = heard(payload(HOLSTER, 1, agency_secret=OTHER_AGENCY_SECRET))
    assert hear(engine, h) == "unknown_source"


def test_a_trigger_sealed_with_the_wrong_source_key_is_rejected(
    engine: TriggerEngine, sink: Sink
) -> None:
    forged = payload(HOLSTER, 1, source_secret=LIGHTBAR.secret)
    assert hear(engine, heard(forged)) == "bad_mac"
    assert sink == []


def test_a_disabled_source_is_rejected(engine: TriggerEngine, sink: Sink) -> None:
    assert hear(engine, heard(payload(DOOR, 1, EventType.DOOR))) == "disabled"
    assert sink == []


def test_this_cameras_own_beacon_heard_back_is_rejected_as_self(engine: TriggerEngine) -> None:
    assert hear(engine, heard(payload(THIS_CAMERA, 1, EventType.PEER_RECORDING))) == "self"


# ---- distance, repetition, replay, bursts ----------------------------------------------------


def test_a_trigger_weaker_than_its_sources_threshold_is_rejected_but_not_consumed(
    engine: TriggerEngine, sink: Sink
) -> None:
    beacon = payload(HOLSTER, 1)  # HOLSTER's threshold is -80 dBm
    assert hear(engine, heard(beacon, rssi=-81)) == "rssi"
    assert hear(engine, heard(beacon, rssi=-80)) == "accepted"
    assert len(sink) == 1


def test_the_same_advertisement_heard_again_is_a_duplicate(
    engine: TriggerEngine, sink: Sink, virtual_clock: SimClock
) -> None:
    h = heard(payload(HOLSTER, 5))
    assert hear(engine, h) == "accepted"
    virtual_clock.advance(60)
    assert [hear(engine, h) for _ in range(3)] == ["duplicate"] * 3
    assert len(sink) == 1


def test_an_older_advertisement_replayed_after_a_newer_one_is_a_replay(
    engine: TriggerEngine, sink: Sink, virtual_clock: SimClock
) -> None:
    captured = heard(payload(HOLSTER, 5))
    assert hear(engine, captured) == "accepted"
    virtual_clock.advance(10)
    assert hear(engine, heard(payload(HOLSTER, 6))) == "accepted"
    virtual_clock.advance(10)
    assert hear(engine, captured) == "replay"
    assert [t.detail["counter"] for t in sink] == ["5", "6"]


def test_a_source_whose_counter_rolled_back_is_rejected_until_it_passes_the_last(
    engine: TriggerEngine, virtual_clock: SimClock
) -> None:
    assert hear(engine, heard(payload(LIGHTBAR, 1000, EventType.LIGHTBAR))) == "accepted"
    virtual_clock.advance(10)
    assert hear(engine, heard(payload(LIGHTBAR, 0, EventType.LIGHTBAR))) == "replay"
    assert hear(engine, heard(payload(LIGHTBAR, 999, EventType.LIGHTBAR))) == "replay"
    assert hear(engine, heard(payload(LIGHTBAR, 1001, EventType.LIGHTBAR))) == "accepted"


def test_a_burst_from_one_source_starts_one_input_per_debounce_window(
    engine: TriggerEngine, sink: Sink, virtual_clock: SimClock
) -> None:
    reasons = []
    for counter in range(1, 6):  # five events 0.5 s apart
        reasons.append(hear(engine, heard(payload(HOLSTER, counter))))
        virtual_clock.advance(0.5)
    assert reasons == ["accepted", "debounced", "debounced", "debounced", "accepted"]
    assert [t.detail["counter"] for t in sink] == ["1", "5"]


def test_debouncing_one_source_does_not_hold_back_another(
    engine: TriggerEngine, sink: Sink
) -> None:
    assert hear(engine, heard(payload(HOLSTER, 1))) == "accepted"
    assert hear(engine, heard(payload(LIGHTBAR, 1, EventType.LIGHTBAR))) == "accepted"
    assert [t.kind for t in sink] == ["holster", "lightbar"]


def test_a_debounced_event_cannot_be_replayed_once_the_window_has_passed(
    engine: TriggerEngine, virtual_clock: SimClock
) -> None:
    assert hear(engine, heard(payload(HOLSTER, 1))) == "accepted"
    debounced = heard(payload(HOLSTER, 2))
    assert hear(engine, debounced) == "debounced"
    virtual_clock.advance(30)
    assert hear(engine, debounced) == "duplicate"


def test_the_same_advertisement_from_many_threads_is_accepted_once(
    engine: TriggerEngine, sink: Sink
) -> None:
    h = heard(payload(HOLSTER, 9))
    barrier = threading.Barrier(8)

    def deliver() -> None:
        barrier.wait()
        for _ in range(50):
            engine.on_advertisement(h.device, h.data)

    threads = [threading.Thread(target=deliver) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(sink) == 1
    assert engine.stats()["rejected"] == {"duplicate": 399}


@settings(max_examples=60, deadline=None)
@given(events=st.lists(st.tuples(st.integers(0, 40), st.integers(0, 4000)), max_size=40))
def test_whatever_a_source_sends_inputs_have_rising_counters_and_are_debounced(
    tmp_path_factory: pytest.TempPathFactory, events: list[tuple[int, int]]
) -> None:
    clock = SimClock(virtual=True)
    sink = Sink()
    storage = SimStorage(tmp_path_factory.mktemp("card"))
    engine = TriggerEngine(agency_registry(), CounterStore(storage), clock, sink=sink)
    for counter, gap_ms in events:
        clock.advance(gap_ms / 1000)
        hear(engine, heard(payload(HOLSTER, counter)))
    counters = [int(t.detail["counter"]) for t in sink]
    assert counters == sorted(set(counters))
    assert all(b.at_ns - a.at_ns >= 2_000_000_000 for a, b in itertools.pairwise(sink))
    assert set(engine.rejected) <= {"duplicate", "replay", "debounced"}
    if events:  # the first event from a source is always accepted
        assert counters[:1] == [events[0][0]]


# ---- counting and logging --------------------------------------------------------------------


def test_every_rejection_is_counted_by_reason_in_stats(engine: TriggerEngine) -> None:
    for h in [
        heard(payload(UNREGISTERED, 1)),
        heard(payload(UNREGISTERED, 2)),
        heard(payload(HOLSTER, 1, source_secret=LIGHTBAR.secret)),
        heard(payload(HOLSTER, 1), rssi=-100),
        heard(b"x", company_id=0x0006),
        heard(payload(HOLSTER, 1)),
    ]:
        hear(engine, h)
    assert engine.stats() == {
        "accepted": 1,
        "ignored": 1,
        "rejected_total": 4,
        "rejected": {"bad_mac": 1, "rssi": 1, "unknown_source": 2},
        "counter_write_errors": 0,
        "sources": 5,
    }


@pytest.fixture
def debug_logs() -> Iterator[list[MutableMapping[str, Any]]]:
    """Every log event, debug included, whatever level an earlier test configured."""
    saved = structlog.get_config()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG))
    try:
        with capture_logs() as logs:
            yield logs
    finally:
        structlog.configure(**saved)


def test_rejections_are_logged_at_most_once_a_second_per_reason(
    engine: TriggerEngine, virtual_clock: SimClock, debug_logs: list[MutableMapping[str, Any]]
) -> None:
    forged = heard(payload(HOLSTER, 1, source_secret=LIGHTBAR.secret))
    for _ in range(100):
        hear(engine, forged)
    hear(engine, heard(payload(UNREGISTERED, 1)))
    virtual_clock.advance(1)
    hear(engine, forged)
    rejected = [
        (e["reason"], e["suppressed"]) for e in debug_logs if e["event"] == "trigger rejected"
    ]
    assert rejected == [("bad_mac", 0), ("unknown_source", 0), ("bad_mac", 99)]


# ---- durability ------------------------------------------------------------------------------


def test_counters_survive_a_power_cut_and_a_restart(
    sim_storage: SimStorage, virtual_clock: SimClock, sink: Sink
) -> None:
    before = TriggerEngine(agency_registry(), CounterStore(sim_storage), virtual_clock, sink=sink)
    captured = heard(payload(HOLSTER, 7))
    older = heard(payload(HOLSTER, 6))
    assert hear(before, captured) == "accepted"

    sim_storage.power_cut()  # the battery is swapped
    sim_storage.restart()
    after = TriggerEngine(agency_registry(), CounterStore(sim_storage), virtual_clock, sink=sink)

    assert hear(after, captured) == "duplicate"
    assert hear(after, older) == "replay"
    assert hear(after, heard(payload(HOLSTER, 8))) == "accepted"


def test_a_debounced_counter_is_durable_too(
    sim_storage: SimStorage, virtual_clock: SimClock, engine: TriggerEngine
) -> None:
    hear(engine, heard(payload(HOLSTER, 1)))
    assert hear(engine, heard(payload(HOLSTER, 2))) == "debounced"
    sim_storage.power_cut()
    sim_storage.restart()
    assert CounterStore(sim_storage).last(HOLSTER.source_id) == 2


def test_a_trigger_is_delivered_even_when_its_counter_cannot_be_written(
    sim_storage: SimStorage, virtual_clock: SimClock, engine: TriggerEngine, sink: Sink
) -> None:
    sim_storage.fail_fsync(errno.EIO)
    assert hear(engine, heard(payload(HOLSTER, 3))) == "accepted"
    assert len(sink) == 1 and engine.stats()["counter_write_errors"] == 1
    assert hear(engine, heard(payload(HOLSTER, 3))) == "duplicate"  # still known in memory

    sim_storage.clear_faults()
    virtual_clock.advance(5)
    assert hear(engine, heard(payload(LIGHTBAR, 1, EventType.LIGHTBAR))) == "accepted"
    sim_storage.power_cut()
    sim_storage.restart()
    # the next successful write carried the counter the failed one could not
    assert CounterStore(sim_storage).last(HOLSTER.source_id) == 3


def test_an_unreadable_counter_file_is_refused_with_what_to_do(sim_storage: SimStorage) -> None:
    sim_storage.mkdir("triggers")
    with sim_storage.open_write(COUNTERS_PATH) as f:
        f.write(b'{"counters":{"1":"x"}}')
    with pytest.raises(TriggerStateError, match="re-provision"):
        CounterStore(sim_storage)


def test_a_fresh_card_has_no_counters(tmp_path: Path) -> None:
    store = CounterStore(SimStorage(tmp_path / "card"))
    assert store.snapshot() == {} and store.last(HOLSTER.source_id) is None


# ---- a flood ---------------------------------------------------------------------------------


def test_a_flood_of_10000_advertisements_accepts_exactly_the_valid_ones(
    engine: TriggerEngine, sink: Sink, virtual_clock: SimClock
) -> None:
    rng = random.Random(1187)
    captured = payload(HOLSTER, 1)
    assert hear(engine, heard(captured)) == "accepted"  # before the flood, then replayed in it
    virtual_clock.advance(3)
    forgeries = [
        lambda: heard(rng.randbytes(rng.randrange(40)), company_id=rng.randrange(0x10000)),
        lambda: heard(rng.randbytes(rng.randrange(30))),
        lambda: heard(b"\x01" + rng.randbytes(23)),
        lambda: heard(payload(HOLSTER, rng.randrange(2**32), source_secret=UNREGISTERED.secret)),
        lambda: heard(payload(UNREGISTERED, rng.randrange(2**32))),
        lambda: heard(payload(LIGHTBAR, rng.randrange(2**32), agency_secret=OTHER_AGENCY_SECRET)),
        lambda: heard(captured),  # replayed, again and again
    ]
    valid_at = set(rng.sample(range(10_000), 5))
    valid_counter = 1
    for n in range(10_000):
        if n in valid_at:
            valid_counter += 1
            hear(engine, heard(payload(HOLSTER, valid_counter)))
            virtual_clock.advance(3)  # beyond the debounce: each valid one starts an input
        else:
            hear(engine, rng.choice(forgeries)())
    assert [t.detail["counter"] for t in sink] == [str(c) for c in range(1, 7)]
    assert engine.accepted == 6
    assert {"version", "unknown_source", "bad_mac", "replay"} <= set(engine.rejected)
    assert engine.ignored + sum(engine.rejected.values()) == 10_000 - 5


# ---- on the simulated radio ------------------------------------------------------------------


@run_async
async def test_the_engine_is_a_scanner_callback_on_the_sim_radio(
    sim_storage: SimStorage, virtual_clock: SimClock
) -> None:
    radio = SimRadio()
    inputs = Sink()
    engine = TriggerEngine(agency_registry(), CounterStore(sim_storage), virtual_clock, sink=inputs)
    scanner = SimBleScanner(radio)
    await scanner.start(engine.on_advertisement)
    near = SimBleAdvertiser(radio, x_m=2.0)  # the officer's own holster
    far = SimBleAdvertiser(radio, x_m=25.0)  # another officer's car across the car park
    try:
        await near.start(Advertisement({COMPANY_ID: payload(HOLSTER, 1)}, interval_ms=10_000))
        await far.start(
            Advertisement(
                {COMPANY_ID: payload(LIGHTBAR, 1, EventType.LIGHTBAR)}, interval_ms=10_000
            )
        )
        assert await scanner.wait_heard(2)
    finally:
        await near.stop()
        await far.stop()
        await scanner.stop()
    assert [t.source_id for t in inputs] == ["holster-1187"]
    assert engine.stats()["rejected"] == {"rssi": 1}
