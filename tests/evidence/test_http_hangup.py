"""A dock that hangs up mid-upload (killed, unplugged) costs the store one log line, no more."""

from __future__ import annotations

import logging
import socket
import time
from urllib.parse import urlsplit

import pytest
import requests

from custody.clip import SealedClip
from tests.evidence.conftest import Live

TIMEOUT = 10.0
HUNG_UP = "client hung up"


def test_a_dock_hanging_up_mid_segment_is_one_log_line_and_stores_nothing(
    live: Live, clip: SealedClip, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="evidence.api.state")
    created = requests.post(
        f"{live.url}/v1/uploads", data=clip.manifest, headers=live.dock, timeout=TIMEOUT
    )
    upload_id = created.json()["upload_id"]
    url = urlsplit(live.url)
    assert url.hostname is not None and url.port is not None
    segment = clip.segments[0]
    with socket.create_connection((url.hostname, url.port), timeout=TIMEOUT) as dock:
        head = (
            f"PUT /v1/uploads/{upload_id}/segments/0 HTTP/1.1\r\nHost: store\r\n"
            f"Authorization: {live.dock['Authorization']}\r\n"
            f"Content-Length: {len(segment)}\r\n\r\n"
        )
        dock.sendall(
            head.encode() + segment[: len(segment) // 2]
        )  # ...and the dock is gone before the rest of the segment
    deadline = time.monotonic() + TIMEOUT
    while HUNG_UP not in caplog.text:
        assert time.monotonic() < deadline, f"no {HUNG_UP!r} line within {TIMEOUT} s"
        time.sleep(0.01)  # polling with a deadline: the server logs on its own thread

    assert "Exception in ASGI application" not in caplog.text
    status = requests.get(f"{live.url}/v1/uploads/{upload_id}", headers=live.dock, timeout=TIMEOUT)
    assert status.json()["acknowledged"] == []
