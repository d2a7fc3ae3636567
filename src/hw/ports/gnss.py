"""GNSS port: the latest position fix, for clip manifests."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol, runtime_checkable

from pydantic import Field, field_validator

from hw.ports.base import PortConfig
from hw.ports.clock import Clock


@dataclass(frozen=True, slots=True)
class GnssFix:
    latitude: float
    longitude: float
    altitude_m: float | None
    speed_mps: float | None
    hdop: float | None
    satellites: int | None
    wall_ns: int  #: time of the fix (UTC ns since the epoch)


@runtime_checkable
class Gnss(Protocol):
    def open(self) -> None: ...

    def fix(self) -> GnssFix | None:
        """The latest fix, or None while the receiver has none."""
        ...

    def close(self) -> None: ...


class Waypoint(PortConfig):
    latitude: float = Field(ge=-90, le=90)
    longitude: float = Field(ge=-180, le=180)


class GnssConfig(PortConfig):
    adapter: Literal["sim", "gpsd", "nmea"] = "sim"
    #: gpsd only
    host: str = "127.0.0.1"
    port: int = Field(default=2947, gt=0, lt=65536)
    #: nmea only: serial device and baud rate
    device: Path = Path("/dev/serial0")
    baud: int = Field(default=9600, gt=0)
    #: sim only: a walking track looped at ``speed_mps`` (default: a loop in downtown Anchorage)
    track: tuple[Waypoint, ...] = (
        Waypoint(latitude=61.2176, longitude=-149.8997),
        Waypoint(latitude=61.2181, longitude=-149.8931),
        Waypoint(latitude=61.2157, longitude=-149.8925),
    )
    speed_mps: float = Field(default=1.4, ge=0)

    @field_validator("track")
    @classmethod
    def _track_not_empty(cls, value: tuple[Waypoint, ...]) -> tuple[Waypoint, ...]:
        if not value:
            raise ValueError("track needs at least one waypoint")
        return value


def open_gnss(cfg: GnssConfig, clock: Clock) -> Gnss:
    if cfg.adapter == "sim":
        from hw.sim.gnss import SimGnss

        return SimGnss(cfg, clock)
    if cfg.adapter == "gpsd":
        from hw.real.gnss import GpsdGnss

        return GpsdGnss(cfg, clock)
    from hw.real.gnss import NmeaSerialGnss

    return NmeaSerialGnss(cfg, clock)
