"""A dock that hangs up mid-request (killed, unplugged) costs the camera one log line, no more."""

from __future__ import annotations

import socket
import time
from urllib.parse import urlsplit

import pytest
from structlog.testing import capture_logs

from device.firmware import CLIPS_ROOT
from tests.device.offload_rig import PREFIX, WAIT_S, DockedCamera, footage_digest

HUNG_UP = "offload.dock_hung_up"


def test_a_dock_hanging_up_mid_erase_is_one_log_line_and_erases_nothing(
    docked: DockedCamera, caplog: pytest.LogCaptureFixture
) -> None:
    clip_id = docked.sealed[0]
    before = footage_digest(docked.storage.root / CLIPS_ROOT)
    url = urlsplit(docked.url)
    assert url.hostname is not None and url.port is not None
    path = f"{PREFIX}/clips/{clip_id}/erase"
    partial = b'{"receipt": '
    with capture_logs() as logs:
        with socket.create_connection((url.hostname, url.port), timeout=WAIT_S) as dock:
            dock.sendall(
                f"POST {path} HTTP/1.1\r\nHost: camera\r\nAuthorization: Bearer {docked.token}\r\n"
                "Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n".encode()
                + partial
            )  # ...and the dock is gone before the rest of its receipt
        deadline = time.monotonic() + WAIT_S
        while not any(entry["event"] == HUNG_UP for entry in logs):
            assert time.monotonic() < deadline, f"no {HUNG_UP} line within {WAIT_S} s"
            time.sleep(0.01)  # polling with a deadline: the server logs on its own thread

    (line,) = [entry for entry in logs if entry["event"] == HUNG_UP]
    assert line["path"] == path and line["received"] <= len(partial)
    assert "Exception in ASGI application" not in caplog.text
    assert footage_digest(docked.storage.root / CLIPS_ROOT) == before
    assert clip_id in [c["clip_id"] for c in docked.get("/clips").json()]
