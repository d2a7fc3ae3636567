"""Link resolution: a docked camera's offload URL, from sysfs on a real dock or a table in sim."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from ipaddress import IPv6Address
from pathlib import Path

import pytest
from urllib3.util import parse_url

from dock.errors import DockSetupError, LinkUnresolved
from dock.links import LinkResolver, StaticLinkResolver, SysfsLinkResolver
from hw.ports.usb import CAMERA_PRODUCT_ID, CAMERA_VENDOR_ID, UsbDeviceInfo


def camera(serial: str, *ports: int) -> UsbDeviceInfo:
    return UsbDeviceInfo(CAMERA_VENDOR_ID, CAMERA_PRODUCT_ID, serial, 1, 7, tuple(ports))


class FakeSysfs:
    """The part of /sys a dock reads, laid out as the kernel does it (links and all)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.hub = root / "devices" / "platform" / "xhci-hcd.0" / "usb1"
        self.bus_devices = root / "bus" / "usb" / "devices"
        self.bus_devices.mkdir(parents=True)

    def dock(
        self, device: UsbDeviceInfo, *, ifname: str | None = "usb0", state: str = "up"
    ) -> None:
        """A camera in its bay: the USB device, its two NCM interfaces, and the network one."""
        folder = self.hub
        chain = [str(p) for p in device.port_path]
        for depth in range(1, len(chain) + 1):  # a bay behind a hub sits inside the hub's folder
            folder = folder / f"{device.bus}-{'.'.join(chain[:depth])}"
        (folder).mkdir(parents=True)
        (folder / "serial").write_text(device.serial + "\n")
        self._link(device.bay, folder)
        for number in (0, 1):
            interface = folder / f"{device.bay}:1.{number}"
            interface.mkdir()
            self._link(interface.name, interface)
        if ifname is not None:
            net = folder / f"{device.bay}:1.0" / "net" / ifname
            net.mkdir(parents=True)
            (net / "operstate").write_text(state + "\n")

    def _link(self, name: str, target: Path) -> None:
        (self.bus_devices / name).symlink_to(os.path.relpath(target, self.bus_devices))


@pytest.fixture
def sysfs(tmp_path: Path) -> FakeSysfs:
    return FakeSysfs(tmp_path / "sys")


@pytest.fixture
def resolver(sysfs: FakeSysfs) -> SysfsLinkResolver:
    return SysfsLinkResolver(sysfs.root)


def test_a_docked_camera_resolves_to_its_link_local_address_on_its_interface(
    sysfs: FakeSysfs, resolver: SysfsLinkResolver
) -> None:
    sysfs.dock(camera("BWC-0001", 2))

    url = resolver.resolve(camera("BWC-0001", 2))

    assert url == "http://[fe80::1%25usb0]:8080"
    parsed = parse_url(url)  # the HTTP stack's own parser keeps the zone
    assert (parsed.host, parsed.port) == ("[fe80::1%usb0]", 8080)


def test_two_cameras_in_two_bays_resolve_to_their_own_links(
    sysfs: FakeSysfs, resolver: SysfsLinkResolver
) -> None:
    sysfs.dock(camera("BWC-0001", 2), ifname="usb0")
    sysfs.dock(camera("BWC-0002", 3), ifname="usb1")

    assert resolver.resolve(camera("BWC-0001", 2)) == "http://[fe80::1%25usb0]:8080"
    assert resolver.resolve(camera("BWC-0002", 3)) == "http://[fe80::1%25usb1]:8080"


def test_a_camera_behind_a_hub_is_found_in_its_bay(sysfs: FakeSysfs) -> None:
    sysfs.dock(camera("BWC-0003", 1, 4), ifname="enx02000000beef")
    resolver = SysfsLinkResolver(sysfs.root, address=IPv6Address("fe80::2"), port=8443)

    assert resolver.interface(camera("BWC-0003", 1, 4)) == "enx02000000beef"
    assert resolver.resolve(camera("BWC-0003", 1, 4)) == "http://[fe80::2%25enx02000000beef]:8443"


def test_a_camera_without_a_network_interface_yet_is_unresolved_and_retryable(
    sysfs: FakeSysfs, resolver: SysfsLinkResolver
) -> None:
    sysfs.dock(camera("BWC-0001", 2), ifname=None)

    with pytest.raises(LinkUnresolved, match="bay 1-2: camera BWC-0001 has no network") as caught:
        resolver.resolve(camera("BWC-0001", 2))
    assert "cdc_ncm" in str(caught.value)
    assert caught.value.retryable


def test_a_bay_with_no_usb_device_in_sysfs_is_unresolved(resolver: SysfsLinkResolver) -> None:
    with pytest.raises(LinkUnresolved, match=r"bay 1-5: no USB device at .*check that the camera"):
        resolver.resolve(camera("BWC-0001", 5))


def test_a_bay_that_now_holds_another_camera_is_not_mistaken_for_it(
    sysfs: FakeSysfs, resolver: SysfsLinkResolver
) -> None:
    sysfs.dock(camera("BWC-0002", 2))

    with pytest.raises(LinkUnresolved, match="bay 1-2 now holds serial 'BWC-0002'"):
        resolver.resolve(camera("BWC-0001", 2))


def test_an_interface_that_is_down_is_unresolved_with_the_command_to_bring_it_up(
    sysfs: FakeSysfs, resolver: SysfsLinkResolver
) -> None:
    sysfs.dock(camera("BWC-0001", 2), state="down")

    with pytest.raises(LinkUnresolved, match=r"interface usb0 .* is down.*ip link set usb0 up"):
        resolver.resolve(camera("BWC-0001", 2))


def test_an_interface_name_that_cannot_go_in_a_url_is_refused(
    sysfs: FakeSysfs, resolver: SysfsLinkResolver
) -> None:
    sysfs.dock(camera("BWC-0001", 2), ifname="usb%0")

    with pytest.raises(LinkUnresolved, match="cannot go in a URL"):
        resolver.resolve(camera("BWC-0001", 2))


def test_a_sysfs_resolver_needs_a_link_local_address(sysfs: FakeSysfs) -> None:
    with pytest.raises(ValueError, match="not an IPv6 link-local"):
        SysfsLinkResolver(sysfs.root, address=IPv6Address("2001:db8::1"))


def test_the_static_table_gives_each_sim_camera_its_loopback_url() -> None:
    resolver: LinkResolver = StaticLinkResolver(
        {"BWC-0001": "http://127.0.0.1:18001/", "BWC-0002": "http://127.0.0.1:18002"}
    )

    assert resolver.resolve(camera("BWC-0001", 1)) == "http://127.0.0.1:18001"
    assert resolver.resolve(camera("BWC-0002", 2)) == "http://127.0.0.1:18002"


def test_a_camera_missing_from_the_static_table_names_its_bay_and_the_fix() -> None:
    resolver = StaticLinkResolver({"BWC-0001": "http://127.0.0.1:18001"})

    with pytest.raises(LinkUnresolved, match="bay 1-3: no offload URL for camera BWC-0009: add"):
        resolver.resolve(camera("BWC-0009", 3))


@pytest.mark.parametrize("url", ["ftp://127.0.0.1:21", "http://", "http://127.0.0.1:1/offload"])
def test_a_static_table_with_a_bad_url_is_a_setup_error(url: str) -> None:
    with pytest.raises(DockSetupError, match="link of camera BWC-0001"):
        StaticLinkResolver({"BWC-0001": url})


# Run inside a fresh network namespace, where the test may give loopback a link-local address
# and a camera-like server can listen on it: the resolver's URL must reach it over real sockets.
_CAMERA_ON_A_LINK = """
import http.server, socket, subprocess, sys, threading

subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
subprocess.run(["ip", "-6", "addr", "add", "fe80::1/64", "dev", "lo"], check=True)
# only now: urllib3 decides at import whether the host has IPv6
import requests
from dock.links import mount_link_local

class Server(http.server.HTTPServer):
    address_family = socket.AF_INET6

class Hello(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"camera at " + self.path.encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass

server = Server(("fe80::1", 8080, 0, socket.if_nametoindex("lo")), Hello)
threading.Thread(target=server.serve_forever, daemon=True).start()
with mount_link_local(requests.Session()) as session:
    print(session.get(sys.argv[1] + "/offload/v1/hello", timeout=5).text)
"""


def test_the_resolved_url_reaches_a_camera_listening_on_its_link(
    sysfs: FakeSysfs, resolver: SysfsLinkResolver
) -> None:
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        pytest.skip("no network namespace: unshare or ip (util-linux, iproute2) is not installed")
    sysfs.dock(camera("BWC-0001", 2), ifname="lo")  # the namespace's only link
    url = resolver.resolve(camera("BWC-0001", 2))

    run = subprocess.run(
        ["unshare", "--net", sys.executable, "-c", _CAMERA_ON_A_LINK, url],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    if run.returncode != 0 and "unshare failed" in run.stderr:
        pytest.skip(f"no network namespace here: {run.stderr.strip()}")
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "camera at /offload/v1/hello"
