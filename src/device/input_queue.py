"""The firmware's input queue: other threads put inputs in, the firmware's thread takes them out.

Button edges, BLE triggers, the dock and the control socket arrive on their own threads; here they
only enter a queue, and :meth:`InputQueue.take` hands them to the firmware at its next frame. Button
edges become gestures on the way out, so the gesture detector runs on the firmware's thread only.
"""

from __future__ import annotations

import queue
from collections.abc import Iterator
from dataclasses import dataclass

from device.events import Input
from device.gestures import Button, GestureDetector
from hw.ports.io import OfficerIo


@dataclass(frozen=True)
class _Edge:
    button: Button
    pressed: bool
    at_ns: int


class InputQueue:
    """Inputs from any thread, taken one frame at a time on the firmware's thread."""

    def __init__(self, gestures: GestureDetector) -> None:
        self._gestures = gestures
        self._queue: queue.SimpleQueue[Input | _Edge] = queue.SimpleQueue()

    def put(self, event: Input) -> None:
        """Queue an input from any thread."""
        self._queue.put(event)

    def listen(self, io: OfficerIo) -> None:
        """Queue the edges of the officer's two buttons."""
        io.record_button.on_change(lambda down, at: self._queue.put(_Edge("record", down, at)))
        io.function_button.on_change(lambda down, at: self._queue.put(_Edge("function", down, at)))

    def stop_listening(self, io: OfficerIo) -> None:
        io.record_button.on_change(None)
        io.function_button.on_change(None)

    def take(self, now: int) -> Iterator[Input]:
        """Every queued input, then the gestures whose time came by ``now``.

        Lazy: the caller handles each input before the next one is taken off the queue.
        """
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if isinstance(item, _Edge):
                yield from self._gestures.edge(item.button, item.pressed, item.at_ns)
            else:
                yield item
        yield from self._gestures.tick(now)
