"""Drivers for the bench's actuators: the power switch and the button presser.

Each is a small protocol with a sim driver and a real one (labgrid's shape: tests ask for what a
driver can do, never for its class). Sim drivers act on the sim adapters' test controls; real ones
on the bench's wiring.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any, Protocol

from hw.errors import AdapterUnavailable, DeviceError
from hw.ports.clock import Clock
from hw.real.io import default_pin_factory
from hw.sim.io import SimOfficerIo
from hw.sim.storage import SimStorage
from tests.hil.rig_file import ButtonLines, PowerSwitch

BETWEEN_PRESSES_S = 0.1  # finger up between the two presses of a double press
COMMAND_TIMEOUT_S = 30.0


class Power(Protocol):
    """The camera's storage supply."""

    def off(self) -> None: ...

    def on(self) -> None:
        """Restore power and return once the storage can be written again."""
        ...


class Presser(Protocol):
    """A finger on the camera's record button."""

    def down(self) -> None: ...

    def up(self) -> None: ...

    def close(self) -> None: ...


def press(presser: Presser, clock: Clock, times: int, press_s: float) -> None:
    """``times`` presses in quick succession; the clock paces them (virtual time in sim)."""
    for n in range(times):
        presser.down()
        clock.sleep(press_s)
        presser.up()
        if n + 1 < times:
            clock.sleep(BETWEEN_PRESSES_S)


class SimPower:
    """The sim card's power cut: whatever was not durable is lost."""

    def __init__(self, storage: SimStorage) -> None:
        self._storage = storage

    def off(self) -> None:
        self._storage.power_cut()

    def on(self) -> None:
        self._storage.restart()


class CommandPower:
    """A USB relay or ``uhubctl``: the rig file's argv for off and on, then wait for the card."""

    def __init__(self, cfg: PowerSwitch, storage_root: Path, clock: Clock) -> None:
        self._cfg = cfg
        self._root = storage_root
        self._clock = clock

    def off(self) -> None:
        self._run(self._cfg.off)

    def on(self) -> None:
        self._run(self._cfg.on)
        deadline = self._clock.monotonic_ns() + round(self._cfg.settle_s * 1e9)
        while not _writable(self._root):  # polled: the automounter sends no event we can await
            if self._clock.monotonic_ns() > deadline:
                raise DeviceError(
                    f"storage {self._root} not back {self._cfg.settle_s} s after power on: "
                    "check the automount of the card reader"
                )
            self._clock.sleep(0.2)

    def _run(self, argv: list[str]) -> None:
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S)
        except FileNotFoundError as exc:
            raise AdapterUnavailable(
                f"power switch command {argv[0]!r} not found: install it"
            ) from exc
        except subprocess.TimeoutExpired as exc:
            raise DeviceError(f"power switch command {' '.join(argv)} hung") from exc
        if done.returncode != 0:
            detail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
            raise DeviceError(f"power switch command {' '.join(argv)} failed: {detail[0]}")


def _writable(root: Path) -> bool:
    probe = root / ".hil-power-probe"
    try:
        probe.write_bytes(b"")
        probe.unlink()
    except OSError:
        return False
    return True


class SimPresser:
    """Presses the sim record button: the same gpiozero mock pin the firmware listens to."""

    def __init__(self, io: SimOfficerIo) -> None:
        self._io = io

    def down(self) -> None:
        self._io.press(self._io.record_button)

    def up(self) -> None:
        self._io.release(self._io.record_button)

    def close(self) -> None:
        """The sim I/O is closed with the camera's."""


class GpioPresser:
    """A GPIO output wired across the record button (an opto-coupler closes the contact)."""

    def __init__(self, cfg: ButtonLines) -> None:
        from gpiozero import DigitalOutputDevice

        self._line: Any = DigitalOutputDevice(cfg.record, pin_factory=default_pin_factory())

    def down(self) -> None:
        self._line.on()

    def up(self) -> None:
        self._line.off()

    def close(self) -> None:
        self._line.close()
