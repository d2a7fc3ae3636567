"""Capped exponential backoff with full jitter, for steps whose failure is retryable.

Full jitter (a random wait between 0 and the capped exponential delay) keeps several bays that
failed together from retrying together. Time comes from the injected clock, so tests never wait.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import TypeVar

from dock.config import RetryPolicy
from dock.errors import DockError
from hw.ports.clock import Clock

T = TypeVar("T")


class Retrier:
    def __init__(
        self,
        policy: RetryPolicy,
        clock: Clock,
        rng: random.Random | None = None,
        *,
        on_retry: Callable[[DockError], None] | None = None,
    ) -> None:
        """``on_retry`` sees each retryable failure that is tried again (metrics)."""
        self.policy, self._clock = policy, clock
        self._rng = rng or random.Random()
        self._on_retry = on_retry

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt ``attempt`` (0 is the first)."""
        ceiling = min(self.policy.cap_s, self.policy.base_s * 2 ** min(attempt, 60))
        return self._rng.uniform(0, ceiling)

    def call(
        self,
        step: Callable[[], T],
        *,
        on_failure: Callable[[DockError], None] = lambda _: None,
    ) -> T:
        """``step()``, tried up to ``policy.attempts`` times while it fails retryably.

        ``on_failure`` sees every retryable failure (to count it); the last one is raised.
        """
        for attempt in range(self.policy.attempts):
            try:
                return step()
            except DockError as exc:
                if not exc.retryable:
                    raise
                on_failure(exc)
                if attempt + 1 == self.policy.attempts:
                    raise
                if self._on_retry is not None:
                    self._on_retry(exc)
                self._clock.sleep(self.delay(attempt))
        raise AssertionError("unreachable: the loop returns or raises")  # pragma: no cover
