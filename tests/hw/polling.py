"""Waiting on another thread: poll with a deadline, never a fixed sleep."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Literal, TypeVar

T = TypeVar("T")


def poll(probe: Callable[[], T | Literal[False] | None], what: str, timeout: float = 5.0) -> T:
    """Call ``probe`` until it returns neither None nor False and return that, or fail the test."""
    deadline = time.monotonic() + timeout
    tick = threading.Event()  # never set: wait() is the pause between polls
    while True:
        value = probe()
        if value is not None and value is not False:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"no {what} within {timeout} s (last: {value!r})")
        tick.wait(0.005)
