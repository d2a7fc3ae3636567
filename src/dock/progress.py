"""Bytes moved by the transfer in progress on this thread, for the armorer's progress bars.

The code that streams bytes (dock/transfer.py downloads, the evidence sink's request bodies) calls
:func:`moved` with each chunk's length; whoever wants to count them wraps the transfer in
:func:`reporting`. A context variable carries the counter, so each bay's thread counts its own
transfer through the one shared sink without any interface changing, and a transfer nobody
watches costs one lookup per chunk.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

_counter: ContextVar[Callable[[int], None] | None] = ContextVar("bwc_dock_progress", default=None)


def moved(count: int) -> None:
    """``count`` more bytes of the current transfer went through (downloaded or sent)."""
    counter = _counter.get()
    if counter is not None and count:
        counter(count)


@contextmanager
def reporting(counter: Callable[[int], None]) -> Iterator[None]:
    """Within the block, every :func:`moved` on this thread goes to ``counter``."""
    token = _counter.set(counter)
    try:
        yield
    finally:
        _counter.reset(token)


@dataclass(frozen=True)
class Transfer:
    """Where one clip's transfer is: ``step`` is ``downloading`` or ``uploading``."""

    device_id: str
    clip_id: str
    step: str
    bytes_done: int
    bytes_total: int


class Tracker:
    """Counts one clip's transfer, file by file, and hands each new figure to ``report``.

    Each file starts from the bytes of the files before it, so a file sent again (a retry)
    does not count twice; the figure never passes the total.
    """

    def __init__(
        self, device_id: str, clip_id: str, step: str, total: int,
        report: Callable[[Transfer], None],
    ) -> None:  # fmt: skip
        self._what = (device_id, clip_id, step)
        self._total, self._report = total, report
        self._base = self._file = 0
        self._lock = threading.Lock()

    def file(self, before: int) -> None:
        """A file starts; ``before`` bytes of the clip's transfer are done already."""
        with self._lock:
            self._base, self._file = before, 0
        self._emit()

    def moved(self, count: int) -> None:
        with self._lock:
            self._file += count
        self._emit()

    def _emit(self) -> None:
        with self._lock:
            done = min(self._total, self._base + self._file)
        self._report(Transfer(*self._what, done, self._total))
