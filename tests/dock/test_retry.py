"""Backoff: capped, exponential, jittered, on the injected clock; only retryable errors retry."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dock.config import RetryPolicy
from dock.errors import CameraMisbehaved, DockError, StoreUnavailable
from dock.retry import Retrier
from hw.sim.clock import SimClock
from tests.dock.conftest import HookClock


@given(
    base=st.floats(0.01, 10),
    factor=st.floats(1, 100),
    attempt=st.integers(0, 200),
    seed=st.integers(0, 2**32),
)
def test_each_wait_is_within_the_capped_exponential_ceiling(
    base: float, factor: float, attempt: int, seed: int
) -> None:
    policy = RetryPolicy(base_s=base, cap_s=min(base * factor, 3600))
    retrier = Retrier(policy, SimClock(virtual=True), random.Random(seed))
    delay = retrier.delay(attempt)
    assert 0 <= delay <= min(policy.cap_s, policy.base_s * 2**attempt)


def test_waits_are_jittered_so_bays_that_failed_together_do_not_retry_together() -> None:
    retrier = Retrier(RetryPolicy(base_s=1, cap_s=60), SimClock(virtual=True), random.Random(1))
    assert len({round(retrier.delay(5), 6) for _ in range(20)}) > 10


def test_a_retryable_failure_is_tried_again_until_it_succeeds() -> None:
    clock = HookClock()
    failures: list[DockError] = []
    outcomes: list[Exception | str] = [StoreUnavailable("down"), StoreUnavailable("down"), "ok"]

    def step() -> str:
        outcome = outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    retrier = Retrier(RetryPolicy(base_s=1, cap_s=8, attempts=5), clock, random.Random(3))
    assert retrier.call(step, on_failure=failures.append) == "ok"
    assert len(failures) == 2 and len(clock.sleeps) == 2
    assert clock.sleeps[0] <= 1 and clock.sleeps[1] <= 2


def test_the_last_retryable_failure_is_raised_after_the_allowed_attempts() -> None:
    clock = HookClock()
    calls: list[int] = []

    def step() -> None:
        calls.append(1)
        raise StoreUnavailable(f"down {len(calls)}")

    retrier = Retrier(RetryPolicy(attempts=4), clock, random.Random(0))
    with pytest.raises(StoreUnavailable, match="down 4"):
        retrier.call(step)
    assert len(calls) == 4 and len(clock.sleeps) == 3


def test_a_failure_that_waiting_cannot_fix_is_raised_at_once() -> None:
    clock = HookClock()

    def step() -> None:
        raise CameraMisbehaved("altered segment")

    with pytest.raises(CameraMisbehaved):
        Retrier(RetryPolicy(), clock).call(step)
    assert clock.sleeps == []


def test_a_cap_below_the_base_is_refused() -> None:
    with pytest.raises(ValueError, match="cap_s"):
        RetryPolicy(base_s=10, cap_s=1)
