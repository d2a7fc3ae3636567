"""Battery gauge port: state of charge, voltage and whether the dock is charging it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

from pydantic import Field

from hw.ports.base import PortConfig
from hw.ports.clock import Clock


@dataclass(frozen=True, slots=True)
class BatteryReading:
    percent: float
    voltage: float
    charging: bool


@runtime_checkable
class BatteryGauge(Protocol):
    def read(self) -> BatteryReading: ...

    def close(self) -> None: ...


class BatteryConfig(PortConfig):
    adapter: Literal["sim", "max17048"] = "sim"
    #: max17048 only
    i2c_bus: int = Field(default=1, ge=0)
    i2c_address: int = Field(default=0x36, ge=0x03, le=0x77)
    #: sim only
    start_percent: float = Field(default=100.0, ge=0, le=100)
    drain_percent_per_hour: float = Field(default=8.0, ge=0)
    charge_percent_per_hour: float = Field(default=40.0, ge=0)


def open_battery(cfg: BatteryConfig, clock: Clock) -> BatteryGauge:
    if cfg.adapter == "sim":
        from hw.sim.battery import SimBattery

        return SimBattery(cfg, clock)
    from hw.real.battery import Max17048Battery

    return Max17048Battery(cfg)
