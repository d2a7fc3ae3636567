"""A camera under a flood of 10,000 advertisements a second, as a public trigger-spoofing tool
would send: only valid triggers start it, every forged or replayed advertisement is counted by
reason and none is audited, and the officer's buttons keep working throughout.

The camera runs on a real-time clock with its firmware stepping in its own thread, as ``bwc device
run`` does, while one thread floods the sim radio and the test, as the officer, presses the record
button with real timing (a hold lasts until the camera stops, as an officer would hold it).
"""

from __future__ import annotations

import itertools
import json
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from custody import trigger
from custody.trigger import COMPANY_ID
from custody.trigger_registry import TriggerRegistry
from device.ble_link import BleLink
from device.config import DeviceConfig
from device.events import State
from device.firmware import AUDIT_LOG
from device.triggers import CounterStore, TriggerEngine
from hw.ports.ble import Advertisement
from hw.sim.ble import SimBleAdvertiser, SimBleScanner, SimRadio
from hw.sim.clock import SimClock
from tests.device.firmware_rig import Camera, build_camera
from tests.device.trigger_helpers import (
    DOOR,
    HOLSTER,
    LIGHTBAR,
    OTHER_AGENCY_SECRET,
    UNREGISTERED,
    agency_registry,
    payload,
)
from tests.hw.polling import poll

FLOOD_PER_S = 10_000
NEAR_DBM = -50  #: the officer's own belt
FAR_DBM = -100  #: beyond every source's threshold
VARIANTS = 64  #: distinct advertisements of each kind the flood cycles through
HOLD_S = 1.0  #: the stop gesture, shortened so the test stays short
DOUBLE_PRESS_WINDOW_S = 0.4  #: DeviceConfig's default: a single press is known once it passes
#: how long past its own timing a gesture or trigger may take to show: 10 frames at 10 fps
RESPONSIVE_S = 1.0

# ---- what the flood sends ---------------------------------------------------------------------


@dataclass(frozen=True)
class Kind:
    """One kind of unwanted advertisement, and the engine counter that must count it."""

    name: str
    counted_as: str  #: "ignored", or the rejection reason
    make: Callable[[random.Random], tuple[Advertisement, int]]


def _ours(data: bytes, rssi: int = NEAR_DBM) -> tuple[Advertisement, int]:
    return Advertisement({COMPANY_ID: data}), rssi


def _other_company(rng: random.Random) -> tuple[Advertisement, int]:
    company = rng.choice([0x004C, 0x0006, 0x0075, 0x00E0])  # phones, laptops, earbuds
    return Advertisement({company: rng.randbytes(rng.randrange(25))}), rng.randrange(-90, -30)


def _unregistered_source(data: bytes, registry: TriggerRegistry) -> bool:
    """Whether ``data`` decrypts, under this agency's key, to a source it does not register."""
    body = trigger.decrypt_trigger(data, registry.encryption_key)
    return registry.get(body.source_id) is None


def flood_kinds(registry: TriggerRegistry) -> list[Kind]:
    def keyless(make: Callable[[], bytes]) -> tuple[Advertisement, int]:
        # sealed without this agency's key, they name a random source: draw until unregistered
        while not _unregistered_source(data := make(), registry):
            pass
        return _ours(data)

    def counter(rng: random.Random) -> int:
        return rng.randrange(1000, 2**32)

    return [
        Kind("other company", "ignored", _other_company),
        Kind("short garbage", "ignored", lambda r: _ours(r.randbytes(r.randrange(24)))),
        Kind("other version", "version",
             lambda r: _ours(bytes([r.choice([0, *range(2, 256)])]) + r.randbytes(23))),
        Kind("random bytes", "unknown_source",
             lambda r: keyless(lambda: b"\x01" + r.randbytes(23))),
        Kind("other agency", "unknown_source", lambda r: keyless(
            lambda: payload(LIGHTBAR, counter(r), agency_secret=OTHER_AGENCY_SECRET))),
        Kind("unregistered source", "unknown_source",
             lambda r: _ours(payload(UNREGISTERED, counter(r)))),
        Kind("forged MAC", "bad_mac",
             lambda r: _ours(payload(HOLSTER, counter(r), source_secret=UNREGISTERED.secret))),
        Kind("disabled source", "disabled", lambda r: _ours(payload(DOOR, counter(r)))),
        Kind("too far", "rssi", lambda r: _ours(payload(HOLSTER, counter(r)), FAR_DBM)),
    ]  # fmt: skip


class Flood:
    """Plays advertisements into the radio at ``per_s`` a second from its own thread.

    It cycles through the kinds, each from a pool made beforehand (sealing costs more than
    sending), from random addresses, and replays every valid trigger handed to :meth:`replay`
    (heard after the original, which was injected first). Paced on the host clock: behind
    schedule it catches up at once.
    """

    def __init__(self, radio: SimRadio, kinds: list[Kind], per_s: int, seed: int = 1187) -> None:
        rng = random.Random(seed)
        self._radio = radio
        self._pools = {kind.name: [kind.make(rng) for _ in range(VARIANTS)] for kind in kinds}
        self._addresses = [_address(rng) for _ in range(256)]
        self._per_s = per_s
        self._replays: list[Advertisement] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="flood", daemon=True)
        self.sent: Counter[str] = Counter()  #: per kind name, "replay" for replays
        self.seconds = 0.0

    def __enter__(self) -> Flood:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def replay(self, advertisement: Advertisement) -> None:
        self._replays = [*self._replays, advertisement]

    def _run(self) -> None:
        names = itertools.cycle([*self._pools, "replay"])
        rng = random.Random(7)
        began = time.perf_counter()
        sent = 0
        while not self._stop.wait(0.002):  # the pace between bursts, and the stop signal
            due = round((time.perf_counter() - began) * self._per_s)
            for _ in range(due - sent):
                name = next(names)
                if name == "replay":
                    if not self._replays:
                        name = next(names)
                    else:
                        self._send("replay", rng.choice(self._replays), NEAR_DBM, rng)
                        continue
                self._send(name, *rng.choice(self._pools[name]), rng)
            sent = max(sent, due)
        self.seconds = time.perf_counter() - began

    def _send(self, name: str, adv: Advertisement, rssi: int, rng: random.Random) -> None:
        if self._radio.inject(adv, rng.choice(self._addresses), rssi) != 1:
            raise AssertionError("the camera's scanner is not on the radio")
        self.sent[name] += 1


def _address(rng: random.Random) -> str:
    return ":".join(f"{b:02X}" for b in rng.randbytes(6))


# ---- the camera, the officer, and the run ----------------------------------------------------


@dataclass
class LiveCamera:
    """A camera on a real-time clock, its firmware stepping in its own thread."""

    camera: Camera
    radio: SimRadio
    scanner: SimBleScanner
    engine: TriggerEngine
    stop: threading.Event
    thread: threading.Thread

    @property
    def state(self) -> State:
        return self.camera.firmware.controller.state

    def handled(self) -> int:
        """Advertisements the engine has decided on so far."""
        e = self.engine
        return e.accepted + e.ignored + sum(e.rejected.values())

    def markers_shown(self) -> int:
        return self.camera.firmware.feedback.shown.count("marker")

    def shut_down(self) -> None:
        """Stop the firmware, which seals the open clip and stops the radio."""
        self.stop.set()
        self.thread.join(timeout=10)
        assert not self.thread.is_alive()


def start_camera(card: Path) -> LiveCamera:
    config = DeviceConfig(
        device_id="cam-0042", serial="cam-0042", pre_event_s=1, hold_s=HOLD_S,
        double_press_window_s=DOUBLE_PRESS_WINDOW_S,
    )  # fmt: skip
    device_key, agency_key = Ed25519PrivateKey.generate(), X25519PrivateKey.generate()
    clock = SimClock(virtual=False)
    camera = build_camera(card, device_key, agency_key, config, audio=False, clock=clock)
    registry = agency_registry()
    counters = CounterStore(camera.storage)
    engine = TriggerEngine(registry, counters, clock, sink=camera.firmware.submit)
    radio = SimRadio()
    scanner = SimBleScanner(radio)
    link = BleLink(scanner, SimBleAdvertiser(radio), engine, registry, counters, beacon_s=30)
    camera.firmware.attach_ble(link)
    camera.firmware.boot()
    stop = threading.Event()
    thread = threading.Thread(target=camera.firmware.run, args=(stop,), name="firmware")
    thread.start()
    return LiveCamera(camera, radio, scanner, engine, stop, thread)


@dataclass
class FloodRun:
    """What happened while the flood ran; the tests below judge it."""

    live: LiveCamera
    flood: Flood
    kinds: list[Kind]
    took: dict[str, float]  #: seconds each of the officer's actions took to show, by name
    states: dict[str, State]  #: the camera's state when the flood alone had run a while


class Officer:
    """Presses the record button with real timing and notes how long each press took to show."""

    def __init__(self, live: LiveCamera, flood: Flood) -> None:
        self._live = live
        self._flood = flood
        self._io = live.camera.io
        self.took: dict[str, float] = {}

    def _act(self, name: str, act: Callable[[], None], shown: Callable[[], bool]) -> None:
        began = time.perf_counter()
        act()
        poll(shown, name, timeout=10)
        self.took[name] = time.perf_counter() - began

    def press(self) -> None:
        self._io.press(self._io.record_button)
        self._io.release(self._io.record_button)

    def double_press(self, name: str) -> None:
        def twice() -> None:
            self.press()
            self.press()

        self._act(name, twice, lambda: self._live.state is State.RECORDING)

    def single_press(self, name: str) -> None:
        markers = self._live.markers_shown()
        self._act(name, self.press, lambda: self._live.markers_shown() > markers)

    def hold(self, name: str) -> None:
        """Hold the button until the camera stops, as an officer would."""
        try:
            self._act(name, lambda: self._io.press(self._io.record_button),
                      lambda: self._live.state is State.BUFFERING)  # fmt: skip
        finally:
            self._io.release(self._io.record_button)

    def draw(self, name: str, counter: int) -> None:
        """The officer's holster announces a draw; the flood replays it, as an attacker would."""
        adv = Advertisement({COMPANY_ID: payload(HOLSTER, counter)})

        def announce() -> None:
            assert self._live.radio.inject(adv, "C4:11:22:33:44:55", NEAR_DBM) == 1
            self._flood.replay(adv)

        self._act(name, announce, lambda: self._live.state is State.RECORDING)


def flood_for(live: LiveCamera, advertisements: int) -> State:
    """Let the camera work through this many more of the flood; the state it is then in."""
    target = live.handled() + advertisements
    poll(lambda: live.handled() >= target, f"{advertisements} more advertisements handled")
    return live.state


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FloodRun]:
    """About six seconds of flood, while the officer and the holster do their part."""
    live = start_camera(tmp_path_factory.mktemp("flood") / "card")
    try:
        poll(lambda: live.camera.firmware.ring.buffered_s >= 1, "a full pre-event ring")
        kinds = flood_kinds(agency_registry())
        states: dict[str, State] = {}
        with Flood(live.radio, kinds, FLOOD_PER_S) as flood:
            officer = Officer(live, flood)
            states["before any trigger"] = flood_for(live, 5_000)
            officer.draw("holster draw 1", counter=1)
            officer.single_press("marker in the triggered clip")
            officer.hold("stop of the triggered clip")
            states["with the draw replayed"] = flood_for(live, 3_000)
            officer.double_press("double press")
            officer.single_press("marker in the officer's clip")
            officer.hold("stop of the officer's clip")
            officer.draw("holster draw 2", counter=2)
            officer.hold("stop of the second triggered clip")
            states["after the last stop"] = flood_for(live, 3_000)
        poll(lambda: counted(live.engine) >= expected(kinds, flood), "the whole flood handled")
        live.shut_down()  # seals, and stops the radio: every count is final
        yield FloodRun(live, flood, kinds, officer.took, states)
    finally:
        live.shut_down()
        live.camera.io.close()


def counted(engine: TriggerEngine) -> Counter[str]:
    """The engine's counters as status shows them, replays and duplicates together."""
    stats = engine.stats()
    assert isinstance(stats["ignored"], int) and isinstance(stats["rejected"], dict)
    got = Counter({"ignored": stats["ignored"], **stats["rejected"]})
    got["replayed"] = got.pop("duplicate", 0) + got.pop("replay", 0)
    got.pop("self", None)  # the camera's own recording beacon, heard back
    return got


def expected(kinds: list[Kind], flood: Flood) -> Counter[str]:
    """What the engine must have counted for what the flood sent."""
    want: Counter[str] = Counter(replayed=flood.sent["replay"])
    for kind in kinds:
        want[kind.counted_as] += flood.sent[kind.name]
    return want


# ---- what must hold -----------------------------------------------------------------------------


def test_the_flood_ran_at_ten_thousand_advertisements_a_second(run: FloodRun) -> None:
    assert run.flood.seconds > 3
    assert sum(run.flood.sent.values()) >= 0.95 * FLOOD_PER_S * run.flood.seconds


def test_the_flood_alone_never_starts_a_recording(run: FloodRun) -> None:
    assert set(run.states.values()) == {State.BUFFERING}


def test_recording_starts_only_for_the_valid_holster_draws_and_the_officer(run: FloodRun) -> None:
    camera = run.live.camera
    clips = [camera.manifest(clip_id) for clip_id in camera.firmware.sealed]
    starts = [(c.header.info.triggers[0]["kind"], c.header.info.triggers[0].get("counter"))
              for c in clips]  # fmt: skip
    assert starts == [("holster", "1"), ("button", None), ("holster", "2")]
    assert run.live.engine.accepted == 2


def test_a_valid_trigger_gets_through_the_flood_within_a_second(run: FloodRun) -> None:
    assert run.took["holster draw 1"] < RESPONSIVE_S
    assert run.took["holster draw 2"] < RESPONSIVE_S


def test_every_button_gesture_takes_effect_on_time_during_the_flood(run: FloodRun) -> None:
    took = run.took
    assert took["double press"] < RESPONSIVE_S
    for marker in ("marker in the triggered clip", "marker in the officer's clip"):
        assert took[marker] < DOUBLE_PRESS_WINDOW_S + RESPONSIVE_S
    for stop in ("stop of the triggered clip", "stop of the officer's clip",
                 "stop of the second triggered clip"):  # fmt: skip
        assert HOLD_S <= took[stop] < HOLD_S + RESPONSIVE_S


def test_each_marker_lands_in_the_clip_it_was_pressed_in(run: FloodRun) -> None:
    camera = run.live.camera
    clips = [camera.manifest(clip_id) for clip_id in camera.firmware.sealed]
    assert [[e.kind for e in c.events].count("marker") for c in clips] == [1, 1, 0]


def test_every_forged_or_replayed_advertisement_is_counted_by_its_reason(run: FloodRun) -> None:
    assert counted(run.live.engine) == expected(run.kinds, run.flood)


def test_every_advertisement_heard_is_decided_exactly_once(run: FloodRun) -> None:
    engine = run.live.engine
    decided = engine.accepted + engine.ignored + sum(engine.rejected.values())
    assert decided == run.live.scanner.heard


def test_nothing_is_audited_per_advertisement(run: FloodRun) -> None:
    log = run.live.camera.storage.root / AUDIT_LOG
    audit = [json.loads(line) for line in log.read_text().splitlines()]
    assert {r["event"] for r in audit} <= {"audit.start", "state", "audit.checkpoint"}
    causes = [r["data"]["cause"] for r in audit if r["event"] == "state"]
    assert causes == ["power_on", "trigger:holster", "record_hold", "record_double_press",
                      "record_hold", "trigger:holster", "record_hold"]  # fmt: skip
