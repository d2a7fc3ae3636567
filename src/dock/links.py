"""Where a docked camera's offload API answers (docs/formats/offload.md).

On a real dock the camera is a USB network gadget (CDC-NCM): the kernel gives it a network
interface under the camera's USB device in sysfs, and the camera answers on a fixed IPv6
link-local address on that link, so the URL names the interface as the address's zone
(RFC 6874: ``http://[fe80::1%25usb0]:8080``). In simulation and in the lab, a table from the dock
config maps each serial to a URL (loopback ports).

requests 2.x cannot connect to a URL with a zone id by itself (psf/requests#6735, open: the
``%25`` reaches getaddrinfo undecoded, "Name or service not known"): a client mounts
:class:`LinkLocalAdapter` on its session (:func:`mount_link_local`) to reach a real camera.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Mapping
from ipaddress import IPv6Address
from pathlib import Path
from typing import Protocol
from urllib.parse import unquote, urlsplit

import requests
import requests.adapters
import urllib3
import urllib3.connection

from dock.errors import DockSetupError, LinkUnresolved
from hw.ports.usb import UsbDeviceInfo

#: the camera's address on its USB link, the same on every camera: each link is its own zone
CAMERA_LINK_ADDRESS = IPv6Address("fe80::1")
OFFLOAD_PORT = 8080

# Linux allows almost any byte in an interface name (at most 15); only these characters go into
# a URL's zone unquoted (RFC 6874), and the kernel and udev name USB links with them
_IFNAME_RE = re.compile(r"[A-Za-z0-9_.-]{1,15}")
_DOWN = frozenset({"down", "lowerlayerdown", "notpresent"})


class LinkResolver(Protocol):
    def resolve(self, device: UsbDeviceInfo) -> str:
        """The base URL of ``device``'s offload API, without a trailing slash.

        Raises LinkUnresolved (retryable: the link may still be coming up) naming the bay and
        what to check.
        """
        ...


class SysfsLinkResolver:
    """Finds the camera's network interface under its USB device in sysfs.

    ``/sys/bus/usb/devices/<bay>`` is the camera (its ``serial`` file must match, so a camera
    replugged into the bay since the poll is not mistaken for another), and the interface is
    ``<bay>/<bay>:<config>.<interface>/net/<ifname>``. Links inside sysfs are the kernel's own
    and are followed; nothing outside ``sysfs`` is read.
    """

    def __init__(
        self,
        sysfs: Path = Path("/sys"),
        *,
        address: IPv6Address = CAMERA_LINK_ADDRESS,
        port: int = OFFLOAD_PORT,
    ) -> None:
        if not address.is_link_local:
            raise ValueError(f"{address} is not an IPv6 link-local address")
        if not 0 < port < 65536:
            raise ValueError(f"port {port} is not 1-65535")
        self._devices = sysfs / "bus" / "usb" / "devices"
        self._address = address
        self._port = port

    def resolve(self, device: UsbDeviceInfo) -> str:
        ifname = self.interface(device)
        return f"http://[{self._address}%25{ifname}]:{self._port}"

    def interface(self, device: UsbDeviceInfo) -> str:
        """The name of the network interface of the camera in ``device.bay``."""
        folder = self._devices / device.bay
        self._check_serial(folder, device)
        net = self._only_interface(folder, device)
        state = _read(net / "operstate")
        if state in _DOWN:
            raise LinkUnresolved(
                f"bay {device.bay}: interface {net.name} of camera {device.serial} is {state}: "
                f"check that the dock brings USB links up ('ip link set {net.name} up')"
            )
        return net.name

    @staticmethod
    def _check_serial(folder: Path, device: UsbDeviceInfo) -> None:
        serial = _read(folder / "serial")
        if serial is None:
            raise LinkUnresolved(
                f"bay {device.bay}: no USB device at {folder}: check that the camera is docked"
            )
        if serial != device.serial:
            raise LinkUnresolved(
                f"bay {device.bay} now holds serial {serial!r}, not camera {device.serial}: "
                "it was replugged; wait for the next bay poll"
            )

    @staticmethod
    def _only_interface(folder: Path, device: UsbDeviceInfo) -> Path:
        found = sorted(folder.glob(f"{device.bay}:*/net/*"))
        if not found:
            raise LinkUnresolved(
                f"bay {device.bay}: camera {device.serial} has no network interface yet: check "
                "that the cdc_ncm kernel module is loaded and the camera's USB gadget is up"
            )
        if len(found) > 1:
            raise LinkUnresolved(
                f"bay {device.bay}: camera {device.serial} has several network interfaces "
                f"({', '.join(p.name for p in found)}): check the camera's USB gadget"
            )
        if not _IFNAME_RE.fullmatch(found[0].name):
            raise LinkUnresolved(
                f"bay {device.bay}: interface name {found[0].name!r} cannot go in a URL: rename "
                "it with a udev rule (letters, digits, '.', '_', '-')"
            )
        return found[0]


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8", errors="replace").strip()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise LinkUnresolved(
            f"cannot read {path} ({exc.strerror}): check the dock's sysfs"
        ) from exc


class StaticLinkResolver:
    """A table serial -> URL from the dock config: sim cameras and lab benches on loopback."""

    def __init__(self, links: Mapping[str, str]) -> None:
        self._links = {serial: _check_url(serial, url) for serial, url in links.items()}

    def resolve(self, device: UsbDeviceInfo) -> str:
        url = self._links.get(device.serial)
        if url is None:
            raise LinkUnresolved(
                f"bay {device.bay}: no offload URL for camera {device.serial}: add it to the "
                "dock config's links table (serial = URL)"
            )
        return url


def _check_url(serial: str, url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname or parts.path.strip("/"):
        raise DockSetupError(
            f"link of camera {serial}: {url!r} is not an http://host:port URL without a path"
        )
    return url.rstrip("/")


class _ZoneConnection(urllib3.connection.HTTPConnection):
    def _new_conn(self) -> socket.socket:
        # the URL carries the zone quoted ('fe80::1%25usb0'); getaddrinfo wants 'fe80::1%usb0'
        self._dns_host = unquote(self._dns_host)
        return super()._new_conn()


class _ZonePool(urllib3.HTTPConnectionPool):
    ConnectionCls = _ZoneConnection


class LinkLocalAdapter(requests.adapters.HTTPAdapter):
    """A requests transport for http:// that also reaches ``[fe80::1%25<ifname>]`` URLs."""

    def init_poolmanager(
        self, connections: int, maxsize: int, block: bool = False, **pool_kwargs: object
    ) -> None:
        super().init_poolmanager(connections, maxsize, block, **pool_kwargs)
        self.poolmanager.pool_classes_by_scheme = {
            **self.poolmanager.pool_classes_by_scheme,
            "http": _ZonePool,
        }


def mount_link_local(session: requests.Session) -> requests.Session:
    """Let ``session`` reach cameras by link-local URL (plain http:// URLs work as before)."""
    session.mount("http://", LinkLocalAdapter())
    return session
