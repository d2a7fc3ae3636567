"""The GNSS hardware edge for tests: a tiny gpsd on loopback and a receiver on a pseudo-terminal."""

from __future__ import annotations

import json
import os
import socket
import threading
import tty
from collections.abc import Mapping, Sequence
from functools import reduce
from types import TracebackType
from typing import Self

Report = Mapping[str, object] | str  # a str goes on the wire as it is (for malformed lines)


def nmea(body: str) -> str:
    """``$body*HH`` with the NMEA 0183 checksum (XOR of the characters between ``$`` and ``*``)."""
    checksum = reduce(lambda acc, char: acc ^ ord(char), body, 0)
    return f"${body}*{checksum:02X}"


class _Streamer:
    """Repeats the current list of lines every ``interval_s`` on a thread, like a receiver does."""

    def __init__(self, lines: Sequence[bytes], interval_s: float) -> None:
        self._lines = list(lines)
        self._interval_s = interval_s
        self._lock = threading.Lock()
        self.stopping = threading.Event()

    def replace(self, lines: Sequence[bytes]) -> None:
        with self._lock:
            self._lines = list(lines)

    def cycles(self) -> list[bytes] | None:
        """The lines of the next cycle, or None once stopped (after waiting one interval)."""
        if self.stopping.wait(self._interval_s):
            return None
        with self._lock:
            return list(self._lines)


def _gpsd_line(report: Report) -> bytes:
    text = report if isinstance(report, str) else json.dumps(report, separators=(",", ":"))
    return text.encode() + b"\r\n"


class GpsdServer:
    """Speaks gpsd's side of the protocol on 127.0.0.1.

    It greets with VERSION as gpsd does, records the client's ``?WATCH`` command, answers with
    DEVICES and WATCH, then streams ``reports`` over and over until the client leaves.
    """

    def __init__(self, reports: Sequence[Report], interval_s: float = 0.02) -> None:
        self._streamer = _Streamer([_gpsd_line(r) for r in reports], interval_s)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.05)
        self.host, self.port = self._listener.getsockname()[:2]
        self.commands: list[str] = []
        self._hang_up = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="test gpsd", daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._streamer.stopping.set()
        self._thread.join(timeout=5)
        self._listener.close()

    def stream(self, reports: Sequence[Report]) -> None:
        """From the next cycle on, stream these reports instead."""
        self._streamer.replace([_gpsd_line(r) for r in reports])

    def hang_up(self) -> None:
        """Drop the connected client, as gpsd does when it is stopped."""
        self._hang_up.set()

    def _serve(self) -> None:
        while not self._streamer.stopping.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            with client:
                self._talk(client)

    def _talk(self, client: socket.socket) -> None:
        client.settimeout(5)
        try:
            client.sendall(_gpsd_line({"class": "VERSION", "release": "3.22", "proto_major": 3}))
            command = client.makefile("rb").readline().decode().strip()
            self.commands.append(command)
            client.sendall(_gpsd_line({"class": "DEVICES", "devices": [{"path": "/dev/ttyS0"}]}))
            client.sendall(_gpsd_line({"class": "WATCH", "enable": True, "json": True}))
            while not self._hang_up.is_set() and (lines := self._streamer.cycles()) is not None:
                client.sendall(b"".join(lines))
        except OSError:
            return  # the client left


class NmeaPty:
    """A pseudo-terminal standing in for a receiver's UART.

    The adapter opens ``path`` (the slave side, which pyserial configures like a real tty); a
    thread writes ``sentences`` into the master side over and over, as a receiver does at 1 Hz
    and more. ``unplug`` closes the master, as pulling the USB receiver does.
    """

    def __init__(self, sentences: Sequence[str], interval_s: float = 0.02) -> None:
        self._streamer = _Streamer([_nmea_line(s) for s in sentences], interval_s)
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)  # no echo or line editing before the adapter opens it
        os.set_blocking(self._master, False)  # nobody reading yet must not stall the writer
        self.path = os.ttyname(self._slave)
        self._unplugged = threading.Event()
        self._thread = threading.Thread(target=self._write, name="test nmea", daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._streamer.stopping.set()
        self._thread.join(timeout=5)
        if not self._unplugged.is_set():
            os.close(self._master)
        os.close(self._slave)

    def stream(self, sentences: Sequence[str]) -> None:
        self._streamer.replace([_nmea_line(s) for s in sentences])

    def unplug(self) -> None:
        self._streamer.stopping.set()
        self._thread.join(timeout=5)
        self._unplugged.set()
        os.close(self._master)

    def _write(self) -> None:
        while (lines := self._streamer.cycles()) is not None:
            try:
                os.write(self._master, b"".join(lines))
            except BlockingIOError:
                continue  # the tty buffer is full until the adapter opens and reads


def _nmea_line(sentence: str) -> bytes:
    return sentence.encode("ascii") + b"\r\n"
