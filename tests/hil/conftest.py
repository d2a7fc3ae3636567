"""The HIL fixtures: ``rig``, ``bench``, ``camera``, ``trigger_source``, ``dock``, ``power``.

The hooks (``--rig``, the ``needs`` marker, the summary) are in tests/hil/plugin.py, registered
for the whole suite by tests/conftest.py; these fixtures reach only the tests in this folder.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest

from hw.sim.clock import SimClock
from tests.hil.air import TriggerSource
from tests.hil.bench import Bench
from tests.hil.camera_dut import CameraUnderTest
from tests.hil.dock_station import DockStation, dock_station
from tests.hil.drivers import Power
from tests.hil.plugin import RIG_KEY
from tests.hil.rig_file import Rig


@pytest.fixture(scope="session")
def rig(pytestconfig: pytest.Config) -> Rig:
    return pytestconfig.stash[RIG_KEY]


@pytest.fixture(scope="session")
def run_id() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")


@pytest.fixture
def bench(rig: Rig, tmp_path: Path, run_id: str) -> Iterator[Bench]:
    """This test's parts, opened from the rig; everything is released after the test."""
    opened = Bench(rig, tmp_path, run_id)
    yield opened
    opened.close()


@pytest.fixture
def camera(bench: Bench) -> CameraUnderTest:
    """The camera under test, booted and buffering (pre-event 1 s, no low-storage warning)."""
    return bench.boot_camera(bench.device_config())


@pytest.fixture
def trigger_source(bench: Bench) -> TriggerSource:
    return bench.trigger_source()


@pytest.fixture
def power(bench: Bench) -> Power:
    return bench.power()


@pytest.fixture
def dock(bench: Bench, tmp_path: Path) -> Iterator[DockStation]:
    """A dock and a live evidence store; the camera trusts both (provisioned keys)."""
    clock = SimClock() if bench.rig.kind == "sim" else bench.clock  # real time: polls really wait
    with dock_station(tmp_path / "station", clock) as station:
        bench.trust_dock(station.dock_key, station.store.public)
        yield station
