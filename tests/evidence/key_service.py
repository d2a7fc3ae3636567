"""An agency key service for tests: real HTTP on loopback, holding the agency private key.

It answers the call :class:`evidence.agency_keys.HttpAgencyKey` makes, in the shape of a Vault
transit "decrypt" (``{"data": {"plaintext": ...}}``, errors as ``{"errors": [...]}``), and counts
the calls so tests can see the store asked it.
"""

from __future__ import annotations

import base64
import json
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from custody.canonical import parse_json
from custody.envelope import WrappedKey, unwrap_data_key
from custody.errors import CustodyError


@dataclass
class KeyService:
    url: str
    token: str
    calls: list[str] = field(default_factory=list)  # clip ids it was asked about
    answer: dict[str, Any] | None = None  # set to answer this instead of unwrapping


def _handler(key: X25519PrivateKey, service: KeyService) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            if self.headers.get("Authorization") != f"Bearer {service.token}":
                self._send(403, {"errors": ["permission denied"]})
                return
            try:
                request = json.loads(body)
                clip_id = str(uuid.UUID(bytes=base64.b64decode(request["context"])))
                wrapped = WrappedKey.from_json(
                    parse_json(base64.b64decode(request["ciphertext"]), what="wrapped key")
                )
                service.calls.append(clip_id)
                plaintext = unwrap_data_key(wrapped, key, clip_id)
            except (CustodyError, KeyError, ValueError) as exc:
                self._send(400, {"errors": [f"cannot decrypt: {exc}"]})
                return
            plain = base64.b64encode(plaintext).decode()
            self._send(200, service.answer or {"data": {"plaintext": plain}})

        def _send(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # keep the test output to the tests' own

    return Handler


@contextmanager
def key_service(key: X25519PrivateKey, token: str) -> Iterator[KeyService]:
    """A key service holding ``key`` on a free loopback port, for the ``with`` block."""
    service = KeyService("", token)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(key, service))
    service.url = f"http://127.0.0.1:{server.server_address[1]}/v1/transit/decrypt/agency"
    # A short poll interval: shutdown() waits for the loop to notice it.
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield service
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)
