"""SimGnss: an officer walking a looped track at a steady pace, fixes stamped by the clock."""

from __future__ import annotations

import math
import threading
from itertools import accumulate, pairwise

from hw.errors import DeviceClosed
from hw.ports.clock import Clock
from hw.ports.gnss import GnssConfig, GnssFix, Waypoint

EARTH_RADIUS_M = 6_371_008.8


def distance_m(a: Waypoint, b: Waypoint) -> float:
    """Great-circle (haversine) distance."""
    lat1, lat2 = math.radians(a.latitude), math.radians(b.latitude)
    dlat = lat2 - lat1
    dlon = math.radians(_wrap(b.longitude - a.longitude))
    h = math.sin(dlat / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin(dlon / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))


def _wrap(degrees: float) -> float:
    """Into -180..180, so a leg across the antimeridian goes the short way."""
    return (degrees + 180.0) % 360.0 - 180.0


class Track:
    """A closed loop through the waypoints (the last leads back to the first)."""

    def __init__(self, waypoints: tuple[Waypoint, ...]) -> None:
        self._points = waypoints
        self._legs = list(pairwise((*waypoints, waypoints[0])))
        self._starts = [0.0, *accumulate(distance_m(a, b) for a, b in self._legs)]
        self.length_m = self._starts[-1]

    def position(self, travelled_m: float) -> tuple[float, float]:
        """(latitude, longitude) after ``travelled_m`` metres from the first waypoint, looping."""
        if self.length_m == 0:
            return self._points[0].latitude, self._points[0].longitude
        along = travelled_m % self.length_m
        for (a, b), start, end in zip(self._legs, self._starts[:-1], self._starts[1:], strict=True):
            if along < end or end == self.length_m:
                fraction = 0.0 if end == start else (along - start) / (end - start)
                # equirectangular interpolation: within a few hundred metres it is the great circle
                latitude = a.latitude + fraction * (b.latitude - a.latitude)
                longitude = _wrap(a.longitude + fraction * _wrap(b.longitude - a.longitude))
                return latitude, longitude
        raise AssertionError("unreachable: the last leg ends at the track length")


class SimGnss:
    """Fixes from the moment it opens: walking starts at the first waypoint at ``open``."""

    def __init__(self, cfg: GnssConfig, clock: Clock) -> None:
        self._clock = clock
        self._track = Track(cfg.track)
        self._speed = cfg.speed_mps if self._track.length_m > 0 else 0.0
        self._lock = threading.Lock()
        self._opened_ns: int | None = None

    @property
    def track(self) -> Track:
        return self._track

    def open(self) -> None:
        with self._lock:
            self._opened_ns = self._clock.monotonic_ns()

    def fix(self) -> GnssFix | None:
        with self._lock:
            if self._opened_ns is None:
                raise DeviceClosed("the sim GNSS was read while closed: call open() first")
            seconds = (self._clock.monotonic_ns() - self._opened_ns) / 1e9
        latitude, longitude = self._track.position(self._speed * seconds)
        return GnssFix(
            latitude=latitude,
            longitude=longitude,
            altitude_m=None,  # the track is flat: no altitude is better than an invented one
            speed_mps=self._speed,
            # slow, bounded wander like a real sky: street canyons cost a satellite or two
            hdop=round(0.9 + 0.3 * (1 + math.sin(seconds / 60)), 2),
            satellites=9 + round(2 * math.sin(seconds / 97)),
            wall_ns=self._clock.wall_ns(),
        )

    def close(self) -> None:
        with self._lock:
            self._opened_ns = None
