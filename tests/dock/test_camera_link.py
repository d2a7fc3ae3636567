"""The dock's camera client reaches a camera at its link-local URL (``[fe80::1%25<ifname>]``).

requests alone cannot (psf/requests#6735); the client mounts dock.links' adapter. Run inside a
fresh network namespace where loopback gets the camera's link-local address, as in test_links.
"""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

_CAMERA_ON_A_LINK = """
import http.server, json, socket, subprocess, sys, threading

subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
subprocess.run(["ip", "-6", "addr", "add", "fe80::1/64", "dev", "lo"], check=True)
import tempfile
from pathlib import Path
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from dock.camera_client import CameraClient
from dock.enrolment import EnrolledDevices
from dock.errors import CameraRefused

class Server(http.server.HTTPServer):
    address_family = socket.AF_INET6

class Hello(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        hello = {"device_id": "cam-0042", "serial": "BWC1-000042", "firmware": "0.1.0",
                 "nonce": "A" * 43}
        body = json.dumps(hello).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass

server = Server(("fe80::1", 8080, 0, socket.if_nametoindex("lo")), Hello)
threading.Thread(target=server.serve_forever, daemon=True).start()
client = CameraClient(sys.argv[1], Ed25519PrivateKey.generate(),
                      EnrolledDevices(Path(tempfile.mkdtemp())))
try:
    client.connect()
except CameraRefused as exc:  # the hello came through; this dock has not enrolled cam-0042
    print(type(exc).__name__, exc)
"""


def test_the_camera_client_reaches_a_camera_on_its_usb_link() -> None:
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        pytest.skip("no network namespace: unshare or ip (util-linux, iproute2) is not installed")

    run = subprocess.run(
        ["unshare", "--net", sys.executable, "-c", _CAMERA_ON_A_LINK, "http://[fe80::1%25lo]:8080"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    if run.returncode != 0 and "unshare failed" in run.stderr:
        pytest.skip(f"no network namespace here: {run.stderr.strip()}")
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("CameraRefused camera cam-0042 is not enrolled"), run.stdout
