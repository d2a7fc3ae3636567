"""SimGnss: walks its track at a steady pace in clock time, looping."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hw.ports.gnss import GnssConfig, GnssFix, Waypoint
from hw.sim.clock import SimClock
from hw.sim.gnss import SimGnss, Track, distance_m

START_WALL_NS = 1_714_564_800 * 10**9  # 2024-05-01T12:00:00Z

# three corners about 300-500 m apart, as in the default downtown loop
A = Waypoint(latitude=61.2176, longitude=-149.8997)
B = Waypoint(latitude=61.2181, longitude=-149.8931)
C = Waypoint(latitude=61.2157, longitude=-149.8925)


@pytest.fixture
def clock() -> SimClock:
    return SimClock(virtual=True, start_wall_ns=START_WALL_NS)


def walker(clock: SimClock, *track: Waypoint, speed_mps: float = 1.4) -> SimGnss:
    gnss = SimGnss(GnssConfig(track=track or (A, B, C), speed_mps=speed_mps), clock)
    gnss.open()
    return gnss


def here(gnss: SimGnss) -> Waypoint:
    fix = gnss.fix()
    assert fix is not None
    return Waypoint(latitude=fix.latitude, longitude=fix.longitude)


def fix_of(gnss: SimGnss) -> GnssFix:
    fix = gnss.fix()
    assert fix is not None
    return fix


def test_the_walk_starts_at_the_first_waypoint(clock: SimClock) -> None:
    assert distance_m(here(walker(clock)), A) < 0.01


def test_position_moves_along_the_first_leg_at_walking_speed(clock: SimClock) -> None:
    gnss = walker(clock, speed_mps=1.5)
    clock.advance(60)
    position = here(gnss)
    assert distance_m(A, position) == pytest.approx(90, abs=0.5)
    assert distance_m(A, position) + distance_m(position, B) == pytest.approx(
        distance_m(A, B), abs=0.5
    )


def test_the_walker_reaches_the_second_waypoint_after_the_first_leg(clock: SimClock) -> None:
    gnss = walker(clock, speed_mps=2.0)
    clock.advance(distance_m(A, B) / 2.0)
    assert distance_m(here(gnss), B) < 0.5


def test_the_track_loops_back_to_the_start(clock: SimClock) -> None:
    gnss = walker(clock, speed_mps=2.0)
    clock.advance(gnss.track.length_m / 2.0)
    assert distance_m(here(gnss), A) < 0.5


def test_a_single_waypoint_track_stands_still(clock: SimClock) -> None:
    gnss = walker(clock, B)
    clock.advance(600)
    fix = fix_of(gnss)
    assert (fix.latitude, fix.longitude, fix.speed_mps) == (B.latitude, B.longitude, 0.0)


def test_fixes_are_stamped_with_the_clocks_wall_time(clock: SimClock) -> None:
    gnss = walker(clock)
    clock.advance(12.5)
    assert fix_of(gnss).wall_ns == START_WALL_NS + 12_500_000_000


def test_fixes_report_the_walking_speed(clock: SimClock) -> None:
    assert fix_of(walker(clock, speed_mps=1.2)).speed_mps == 1.2


def test_a_leg_across_the_antimeridian_goes_the_short_way() -> None:
    east = Waypoint(latitude=-17.0, longitude=179.999)
    west = Waypoint(latitude=-17.0, longitude=-179.999)
    track = Track((east, west))
    _, longitude = track.position(track.length_m / 4)
    assert abs(longitude) > 179.999


@given(
    start_s=st.floats(min_value=0, max_value=100_000),
    step_s=st.floats(min_value=0, max_value=600),
)
def test_the_walker_never_covers_more_ground_than_its_speed_allows(
    start_s: float, step_s: float
) -> None:
    clock = SimClock(virtual=True)
    gnss = walker(clock, speed_mps=1.4)
    clock.advance(start_s)
    before = here(gnss)
    clock.advance(step_s)
    # a straight line is never longer than the path walked (1 % for the flat-earth interpolation)
    assert distance_m(before, here(gnss)) <= 1.4 * step_s * 1.01 + 0.01


@given(travelled_m=st.floats(min_value=0, max_value=1e7))
def test_every_position_stays_within_the_tracks_bounds(travelled_m: float) -> None:
    latitude, longitude = Track((A, B, C)).position(travelled_m)
    assert min(p.latitude for p in (A, B, C)) - 1e-9 <= latitude
    assert latitude <= max(p.latitude for p in (A, B, C)) + 1e-9
    assert min(p.longitude for p in (A, B, C)) - 1e-9 <= longitude
    assert longitude <= max(p.longitude for p in (A, B, C)) + 1e-9
