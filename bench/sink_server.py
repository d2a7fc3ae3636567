"""``python -m bench.sink_server``: the evidence-ingest peer's target, a plain HTTP sink.

It accepts ``PUT``/``POST`` of any path over HTTP/1.1 keep-alive, writes each body to
``/dev/null`` and answers ``200`` with an empty body: no parsing, no hashing, no fsync. It is
what a plain upload costs on loopback, so ``curl`` uploading to it is the floor for an ingest.
``GET /stats`` returns ``{"requests": N, "bytes": B}`` so the bench can check every byte arrived.

One thread per connection (``ThreadingHTTPServer``): a client that keeps its connection open
does not hold up the next one. It binds an ephemeral loopback port itself and prints that port
as its first line of output, so no other process can take the port between choice and bind.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

CHUNK = 1 << 20  # read bodies a MiB at a time, as a real receiver would stream them


class SinkHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: curl reuses one connection, as requests does
    totals: ClassVar[dict[str, int]] = {"requests": 0, "bytes": 0}
    lock: ClassVar[threading.Lock] = threading.Lock()
    devnull: ClassVar[int] = -1

    def _receive(self) -> None:
        remaining = int(self.headers.get("Content-Length") or 0)
        received = 0
        while remaining > 0:
            chunk = self.rfile.read(min(CHUNK, remaining))
            if not chunk:
                break  # the client went away mid-body: count what came
            os.write(self.devnull, chunk)
            received += len(chunk)
            remaining -= len(chunk)
        with self.lock:
            self.totals["requests"] += 1
            self.totals["bytes"] += received
        self._reply(b"")

    def do_PUT(self) -> None:
        self._receive()

    def do_POST(self) -> None:
        self._receive()

    def do_GET(self) -> None:
        with self.lock:
            body = json.dumps(self.totals).encode()
        self._reply(body)

    def _reply(self, body: bytes) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass  # one line per request on stderr would be the sink's main cost


def main() -> int:
    SinkHandler.devnull = os.open(os.devnull, os.O_WRONLY)
    server = ThreadingHTTPServer(("127.0.0.1", 0), SinkHandler)
    print(server.server_address[1], flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
