"""What the BLE tests share: running async tests, collecting what a scanner hears, a test bus."""

from __future__ import annotations

import asyncio
import functools
import shutil
import threading
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ParamSpec

import pytest
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData

from tests.hw.fake_bluez import private_bus

P = ParamSpec("P")

#: Bluetooth SIG company id reserved for tests; nothing on real air should use it.
TEST_COMPANY_ID = 0xFFFF


def run_async(test: Callable[P, Coroutine[Any, Any, None]]) -> Callable[P, None]:
    """Run an ``async def`` test in its own event loop (pytest-asyncio is not a dependency)."""

    @functools.wraps(test)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> None:
        asyncio.run(test(*args, **kwargs))

    return wrapper


@dataclass
class Heard:
    """A scanner callback that records each advertisement with the loop and thread it ran on."""

    items: list[tuple[BLEDevice, AdvertisementData]] = field(default_factory=list)
    loops: set[asyncio.AbstractEventLoop] = field(default_factory=set)
    threads: set[int] = field(default_factory=set)
    _arrived: asyncio.Event | None = None

    def __call__(self, device: BLEDevice, data: AdvertisementData) -> None:
        loop = asyncio.get_running_loop()
        self.loops.add(loop)
        self.threads.add(threading.get_ident())
        self.items.append((device, data))
        if self._arrived is not None:
            self._arrived.set()

    def carrying(self, payload: bytes) -> list[tuple[BLEDevice, AdvertisementData]]:
        return [
            (d, a) for d, a in self.items if a.manufacturer_data.get(TEST_COMPANY_ID) == payload
        ]

    async def first_carrying(
        self, payload: bytes, timeout: float
    ) -> tuple[BLEDevice, AdvertisementData]:
        """The first advertisement with this test payload; fails the test after ``timeout``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        self._arrived = asyncio.Event()
        while not (found := self.carrying(payload)):
            remaining = deadline - loop.time()
            if remaining <= 0:
                pytest.fail(f"nothing carrying {payload.hex()} heard within {timeout} s")
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), remaining)
            except TimeoutError:
                continue
        return found[0]


def private_bus_or_skip(folder: Path) -> Iterator[str]:
    """Yield the address of a private dbus-daemon, or skip when the daemon is not installed."""
    if shutil.which("dbus-daemon") is None:
        pytest.skip("no dbus-daemon: 'apt-get install dbus' to test the BlueZ adapters")
    with private_bus(folder) as address:
        yield address
