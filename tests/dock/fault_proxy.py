"""A TCP proxy in front of a real server on loopback, misbehaving on the requests it is told to.

The dock's clients speak HTTP/1.1, one request at a time per connection, with ``Content-Length``
bodies. The proxy reads each request off the client's socket and, when an injected rule matches
its method and path, does what a broken network or a failing server does:

``FAIL_503``     answers 503 itself; the server behind never sees the request
``CUT_REQUEST``  forwards the head and the first ``after`` bytes of the body, then drops both
``STALL``        forwards the request and holds the server's answer until the client gives up
                 (its timeout closes the socket), then drops it: the server did the work, late
``CUT_ANSWER``   relays the answer's head and the first ``after`` bytes of its body, then drops

Everything else passes through unchanged. ``seen`` lists every request with what was done to it.
"""

from __future__ import annotations

import contextlib
import re
import socket
import threading
from dataclasses import dataclass
from enum import StrEnum
from types import TracebackType
from typing import BinaryIO
from urllib.parse import urlsplit

WAIT_S = 10.0  # the longest the proxy waits for a peer; a test never gets near it


class Fault(StrEnum):
    PASS = "pass"
    FAIL_503 = "503"
    CUT_REQUEST = "cut-request"
    STALL = "stall"
    CUT_ANSWER = "cut-answer"


@dataclass
class _Rule:
    method: str
    path: re.Pattern[str]
    fault: Fault
    times: int
    after: int


@dataclass(frozen=True)
class Seen:
    method: str
    path: str
    fault: Fault


_503 = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
    b'Content-Length: 37\r\nConnection: keep-alive\r\n\r\n{"error": "the store is overloaded."}'
)


class FaultProxy:
    """Listens on a free loopback port and forwards to ``upstream`` (an http:// URL)."""

    def __init__(self, upstream: str) -> None:
        parts = urlsplit(upstream)
        assert parts.hostname is not None and parts.port is not None
        self._upstream = (parts.hostname, parts.port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self._lock = threading.Lock()
        self._rules: list[_Rule] = []
        self._sockets: list[socket.socket] = []
        self.seen: list[Seen] = []

    def inject(
        self, method: str, path: str, fault: Fault, *, times: int = 1, after: int = 0
    ) -> None:
        """The next ``times`` requests of ``method`` on a path matching ``path`` get ``fault``."""
        with self._lock:
            self._rules.append(_Rule(method, re.compile(path), fault, times, after))

    def requests(self, method: str, path: str) -> list[Fault]:
        """What was done to each request of ``method`` on a path matching ``path``, in order."""
        pattern = re.compile(path)
        with self._lock:
            return [s.fault for s in self.seen if s.method == method and pattern.fullmatch(s.path)]

    def __enter__(self) -> FaultProxy:
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._listener.close()
        with self._lock:
            for sock in self._sockets:
                _drop(sock)

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return  # closed
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _take(self, method: str, path: str) -> tuple[Fault, int]:
        with self._lock:
            for rule in self._rules:
                if rule.times > 0 and rule.method == method and rule.path.fullmatch(path):
                    rule.times -= 1
                    self.seen.append(Seen(method, path, rule.fault))
                    return rule.fault, rule.after
            self.seen.append(Seen(method, path, Fault.PASS))
            return Fault.PASS, 0

    def _serve(self, client: socket.socket) -> None:
        upstream = socket.create_connection(self._upstream, timeout=WAIT_S)
        client.settimeout(WAIT_S)
        with self._lock:
            self._sockets += [client, upstream]
        relay = _Relay(upstream, client)
        reader = client.makefile("rb")
        try:
            while (request := _read_request_head(reader)) is not None:
                head, method, path, length = request
                fault, after = self._take(method, path)
                if fault is Fault.CUT_REQUEST:
                    upstream.sendall(head + reader.read(min(after, length)))
                    return
                body = reader.read(length)
                if fault is Fault.FAIL_503:
                    client.sendall(_503)
                    continue
                relay.expect(fault, after)
                upstream.sendall(head + body)
                if fault is Fault.STALL:
                    relay.answered.wait(WAIT_S)  # the server has done the work...
                    reader.read(1)  # ...and the client gave up waiting for it (EOF)
                    return
        except OSError:
            return  # either side hung up
        finally:
            _drop(client)
            _drop(upstream)


class _Relay:
    """Copies the server's answers to the client, unless told to hold or cut the next one."""

    def __init__(self, upstream: socket.socket, client: socket.socket) -> None:
        self._upstream, self._client = upstream, client
        self._fault, self._after = Fault.PASS, 0
        self.answered = threading.Event()
        threading.Thread(target=self._run, daemon=True).start()

    def expect(self, fault: Fault, after: int) -> None:
        """Set before the request is forwarded: its answer is the next bytes from the server."""
        self._fault, self._after = fault, after
        self.answered.clear()

    def _run(self) -> None:
        pending = b""
        try:
            while data := self._upstream.recv(64 * 1024):
                self.answered.set()
                if self._fault is Fault.STALL:
                    continue  # held back: the client never gets it
                if self._fault is Fault.CUT_ANSWER:
                    pending += data
                    end = pending.find(b"\r\n\r\n")
                    if end < 0 or len(pending) < end + 4 + self._after:
                        continue  # the head and the bytes to let through are not all here yet
                    self._client.sendall(pending[: end + 4 + self._after])
                    return
                self._client.sendall(data)
        except OSError:
            return
        finally:
            _drop(self._client)
            _drop(self._upstream)


def _read_request_head(reader: BinaryIO) -> tuple[bytes, str, str, int] | None:
    """The raw head, method, path and body length of the next request; None at end of stream."""
    head = reader.readline()
    if not head:
        return None
    method, path, _ = head.decode("latin-1").split(" ", 2)
    length = 0
    while (line := reader.readline()) not in (b"\r\n", b""):
        head += line
        name, _, value = line.decode("latin-1").partition(":")
        if name.strip().lower() == "content-length":
            length = int(value)
        assert name.strip().lower() != "transfer-encoding", "the proxy only relays sized bodies"
    return head + b"\r\n", method, path.split("?")[0], length


def _drop(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):  # already shut down by the other side
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()
