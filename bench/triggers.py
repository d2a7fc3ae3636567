"""Trigger latency: a holster's advertisement entering the radio to a recording with its footage.

One whole camera runs on sim hardware and the sim radio (:mod:`bench.trigger_camera`), its
firmware stepping in its own thread as ``bwc device run`` does, while this thread plays holster
draws into the radio one at a time, each with a fresh counter. A start is timed with the host's
``perf_counter_ns`` from ``SimRadio.inject`` to the moment the firmware has the clip open: the
controller is in ``recording`` and ``Recorder.start`` has returned with the ring's pre-event
footage (the moment the firmware tells its BLE link that a clip started). Then the officer's hold
stops the clip and the next start waits until the camera is buffering again.

The peer is the officer's double press, submitted straight to the firmware's input queue and timed
the same way, interleaved with the triggers in the same run: the same start without the radio and
the trigger engine, so ``ratio`` is what the BLE path costs on top of the firmware's own frame.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.device import BenchError
from bench.figures import Figure
from bench.stream import Scenario
from bench.trigger_camera import FPS, PRE_EVENT_S, BenchCamera, FirmwareLoop, running_camera
from bwc.logs import configure_logging
from custody import trigger
from custody.trigger import EventType, TriggerEvent
from device.events import Gesture, GestureInput, State
from device.firmware import Firmware
from hw.ports.ble import Advertisement

#: holster draws timed per mode; as many double presses are timed beside them
TRIGGERS = {"full": 1000, "quick": 100, "smoke": 20}
TARGET_P99_MS = 50.0
HOLSTER_RSSI_DBM = -50  #: on the officer's belt, well above the source's -80 dBm floor


@dataclass(frozen=True)
class Start:
    """One timed start, in nanoseconds from the input entering the camera."""

    open_ns: int  #: the clip open with its pre-event footage, controller recording
    queued_ns: int  #: the input in the firmware's queue (a trigger: through radio and engine)
    frame_ns: int  #: the end of the frame that opened it (pre-event segments written, LEDs on)


# ---- one start ----------------------------------------------------------------------------------


def holster_draw(camera: BenchCamera, counter: int) -> Callable[[], None]:
    """Plays the holster's advertisement of its event number ``counter`` into the radio.

    Sealed before the clock starts; from a fresh private address, as a source rotates its own.
    """
    event = TriggerEvent(camera.holster.source_id, EventType.HOLSTER, counter, 0, 0)
    payload = trigger.seal_trigger(
        event, source_secret=camera.holster.secret, agency_secret=camera.agency_secret
    )
    advertisement = Advertisement({trigger.COMPANY_ID: payload})
    raw = bytearray(os.urandom(6))
    raw[0] &= 0x3F  # a non-resolvable private address
    address = ":".join(f"{b:02X}" for b in raw)

    def inject() -> None:
        if camera.radio.inject(advertisement, address, HOLSTER_RSSI_DBM) != 1:
            raise BenchError("the camera's scanner is not on the sim radio")

    return inject


def double_press(camera: BenchCamera) -> Callable[[], None]:
    submit, clock = camera.submit, camera.clock
    return lambda: submit(GestureInput(Gesture.RECORD_DOUBLE_PRESS, clock.monotonic_ns()))


def _recording(firmware: Firmware) -> bool:
    return firmware.recorder is not None


def _buffering(firmware: Firmware) -> bool:
    return firmware.recorder is None and firmware.controller.state is State.BUFFERING


def time_start(camera: BenchCamera, loop: FirmwareLoop, enter: Callable[[], None]) -> Start:
    """Time one start from ``enter()``, check its clip, stop it and wait until buffering again."""
    camera.stamps.clear()
    loop.arm(_recording)
    began = time.perf_counter_ns()
    enter()
    frame_end = loop.wait("a clip start")
    opened, queued = camera.stamps.get("opened"), camera.stamps.get("queued")
    recorder = camera.firmware.recorder
    if opened is None or queued is None or recorder is None:
        raise BenchError(f"a clip opened without passing the firmware's queue: {camera.stamps}")
    if recorder.pre_event_ns < PRE_EVENT_S * 1e9:
        raise BenchError(
            f"a clip started with {recorder.pre_event_ns / 1e9:.2f} s of pre-event footage, "
            f"not {PRE_EVENT_S:g} s"
        )
    loop.arm(_buffering)
    camera.firmware.submit(GestureInput(Gesture.RECORD_HOLD, camera.clock.monotonic_ns()))
    loop.wait("the stop of a clip")
    return Start(opened - began, queued - began, frame_end - began)


def _next_phase(real_time: bool) -> None:
    """On a real-time clock, let the next input come at a random point of a frame, as in use.

    Without it every input would land just after the frame that ended the last stop, so each
    would wait a whole frame: the worst case, not the distribution.
    """
    if real_time:
        threading.Event().wait(random.uniform(0, 1 / FPS))


# ---- the run ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    triggers: list[Start]
    presses: list[Start]
    wall_s: float
    real_time: bool


def measure(triggers: int, work: Path, *, real_time: bool = False) -> Run:
    """Time ``triggers`` holster draws and as many double presses, interleaved, on one camera."""
    timed: dict[str, list[Start]] = {"trigger": [], "press": []}
    wall0 = time.perf_counter()
    with running_camera(work / "card", real_time=real_time) as (camera, loop):
        # a second more than the ring holds: every start has its full pre-event footage
        warm_ns = round((PRE_EVENT_S + 1) * 1e9)
        loop.arm(lambda fw: fw.ports.clock.monotonic_ns() >= warm_ns)
        loop.wait("a full pre-event ring")
        for counter in range(1, triggers + 1):
            accepted = camera.engine.accepted
            _next_phase(real_time)
            timed["trigger"].append(time_start(camera, loop, holster_draw(camera, counter)))
            if camera.engine.accepted != accepted + 1:
                raise BenchError(
                    f"holster event {counter} was not accepted: {camera.engine.stats()}"
                )
            _next_phase(real_time)
            timed["press"].append(time_start(camera, loop, double_press(camera)))
        sealed = len(camera.firmware.sealed)
    if sealed != 2 * triggers:
        raise BenchError(f"the camera sealed {sealed} clips for {2 * triggers} starts")
    return Run(timed["trigger"], timed["press"], time.perf_counter() - wall0, real_time)


def percentile_ms(values_ns: Sequence[int], q: int) -> float:
    """The ``q``-th percentile in milliseconds (linear between the closest ranks)."""
    return statistics.quantiles(values_ns, n=100, method="inclusive")[q - 1] / 1e6


def _spread(values_ns: Sequence[int]) -> str:
    return f"p50 {percentile_ms(values_ns, 50):.2f}, p99 {percentile_ms(values_ns, 99):.2f} ms"


def describe(run: Run) -> str:
    """How the figures were obtained, with the parts of a trigger's latency."""
    opened = [s.open_ns for s in run.triggers]
    p99 = percentile_ms(opened, 99)
    verdict = "met" if p99 < TARGET_P99_MS else "NOT met"
    clock = "real-time" if run.real_time else "virtual (no wait for frame capture)"
    queued = _spread([s.queued_ns for s in run.triggers])
    frame = _spread([s.frame_ns for s in run.triggers])
    return (
        f"{len(run.triggers)} holster draws and {len(run.presses)} double presses, interleaved, "
        f"on one sim camera (160x120 at {FPS} fps, {PRE_EVENT_S:g} s pre-event, {clock} clock, "
        f"firmware stepping in its own thread), {run.wall_s:.1f} s; target p99 under "
        f"{TARGET_P99_MS:g} ms: {verdict}; advertisement to accepted trigger in the firmware's "
        f"queue {queued}; to the end of the starting frame (pre-event segments written, LEDs "
        f"and tone on) {frame}"
    )


def trigger_latency(scenario: Scenario, work: Path) -> list[Figure]:
    """Trigger latency p50 and p99 against the officer's double press in the same run."""
    run = measure(TRIGGERS[scenario.mode], work)
    opened = [s.open_ns for s in run.triggers]
    pressed = [s.open_ns for s in run.presses]
    note = describe(run)
    return [
        Figure(
            name=f"trigger latency p{q}: BLE holster draw to recording with pre-event footage",
            value=percentile_ms(opened, q),
            unit="ms",
            peer=f"officer's double press, same start (p{q})",
            peer_value=percentile_ms(pressed, q),
            better="lower",
            note=note,
        )
        for q in (50, 99)
    ]


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m bench.triggers [--triggers N] [--real-time]``: the figures' numbers, printed."""
    parser = argparse.ArgumentParser(prog="python -m bench.triggers", description=__doc__)
    parser.add_argument("--triggers", type=int, default=TRIGGERS["quick"])
    parser.add_argument(
        "--real-time", action="store_true", help="the camera on the host's clock: 30 real fps"
    )
    args = parser.parse_args(argv)
    configure_logging()
    with tempfile.TemporaryDirectory(prefix="bwc-bench-") as tmp:
        run = measure(args.triggers, Path(tmp), real_time=args.real_time)
    print(f"trigger: {_spread([s.open_ns for s in run.triggers])}")
    print(f"double press: {_spread([s.open_ns for s in run.presses])}")
    print(describe(run))
    return 0


if __name__ == "__main__":
    sys.exit(main())
