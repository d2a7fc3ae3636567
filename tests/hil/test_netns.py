"""The sim rig's network boundary: a camera's namespace is reachable only across its veth pair."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from tests.hil import netns
from tests.hil.netns import CameraNetwork


@pytest.fixture
def network() -> Iterator[CameraNetwork]:
    why = netns.why_not()
    if why is not None:
        pytest.skip(f"no network namespace here: {why}")
    built = CameraNetwork.create()
    yield built
    built.close()


def listen(host: str) -> socket.socket:
    return socket.create_server((host, 0))


def test_a_server_started_inside_listens_in_the_cameras_namespace_only(
    network: CameraNetwork,
) -> None:
    with network.inside():
        private = listen("127.0.0.1")  # the camera's own loopback, not the host's
        on_link = listen(network.camera_ip)
    with private, on_link:
        port = private.getsockname()[1]
        with (
            pytest.raises(ConnectionRefusedError),
            socket.create_connection(("127.0.0.1", port), 2),
        ):
            pass
        with socket.create_connection((network.camera_ip, on_link.getsockname()[1]), 2) as conn:
            assert conn.getsockname()[0] == network.host_ip  # across the veth pair


def test_the_calling_thread_returns_to_the_hosts_namespace(network: CameraNetwork) -> None:
    with network.inside():
        listen(network.camera_ip).close()
    with pytest.raises(OSError):
        listen(network.camera_ip)  # the camera's address exists only inside its namespace
