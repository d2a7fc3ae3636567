"""A camera's own network: a Linux network namespace joined to the host by a veth pair.

Only root can build one. The camera side gets 10.a.b.c+2/30, the host side +1; the offload API's
supervisor thread is started while the starting thread is inside the namespace (``inside``), so
it binds there, and the dock reaches it across the veth link as it would across the USB one.
A network namespace belongs to a thread, not a process: ``setns`` moves only the calling thread,
and threads it starts inherit its namespace.
"""

from __future__ import annotations

import ctypes
import functools
import ipaddress
import itertools
import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

CLONE_NEWNET = 0x40000000
BASE = ipaddress.IPv4Address("10.64.0.0")
SUBNETS = 1 << 20  # /30 subnets from 10.64.0.0 up
_numbers = itertools.count()
#: the network of a sim rig whose cameras each get a namespace (the summary shows it)
NETNS = "a network namespace per camera, veth pair to the dock"


class NetnsUnavailable(Exception):
    """This host cannot build namespaces here (not root, no iproute2, no CAP_NET_ADMIN)."""


def _ip(*args: str) -> None:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=10, check=False)
    if done.returncode != 0:
        raise NetnsUnavailable(f"ip {' '.join(args)}: {done.stderr.strip() or done.returncode}")


@functools.cache
def sim_network() -> str:
    """What the sim rig's cameras use: their own namespaces, or else loopback and why."""
    why = why_not()
    if why is None:
        return NETNS
    return f"loopback ports ({why}: no network namespace per camera)"


def why_not() -> str | None:
    """None if namespaces can be built here, else the reason for the summary."""
    if os.geteuid() != 0:
        return "not root"
    if shutil.which("ip") is None:
        return "no iproute2 'ip' command"
    try:
        probe = CameraNetwork.create()
    except NetnsUnavailable as exc:
        return f"cannot build a network namespace ({exc})"
    probe.close()
    return None


class CameraNetwork:
    def __init__(self, name: str, host_ip: str, camera_ip: str) -> None:
        self.name = name
        self.host_ip = host_ip
        self.camera_ip = camera_ip

    @classmethod
    def create(cls) -> CameraNetwork:
        number = next(_numbers)
        tag = f"{os.getpid() % 100_000}x{number % 1000}"
        name, host_if, cam_if = f"bwc-cam-{tag}", f"bh{tag}", f"bc{tag}"
        subnet = (os.getpid() * 7919 + number) % SUBNETS
        host_ip, camera_ip = str(BASE + 4 * subnet + 1), str(BASE + 4 * subnet + 2)
        _ip("netns", "add", name)
        try:
            _ip("link", "add", host_if, "type", "veth", "peer", "name", cam_if)
            _ip("link", "set", cam_if, "netns", name)
            _ip("addr", "add", f"{host_ip}/30", "dev", host_if)
            _ip("link", "set", host_if, "up")
            _ip("-n", name, "addr", "add", f"{camera_ip}/30", "dev", cam_if)
            _ip("-n", name, "link", "set", cam_if, "up")
            _ip("-n", name, "link", "set", "lo", "up")
        except NetnsUnavailable:
            cls(name, host_ip, camera_ip).close()
            raise
        return cls(name, host_ip, camera_ip)

    @contextmanager
    def inside(self) -> Iterator[None]:
        """Run the block, and every thread it starts, in the camera's namespace."""
        own = Path("/proc/thread-self/ns/net").open("rb")  # noqa: SIM115 - closed below
        target = (Path("/run/netns") / self.name).open("rb")
        try:
            _setns(target.fileno())
            try:
                yield
            finally:
                _setns(own.fileno())
        finally:
            own.close()
            target.close()

    def close(self) -> None:
        """Delete the namespace; its veth end goes with it, and the host end with its peer."""
        subprocess.run(["ip", "netns", "del", self.name], capture_output=True, timeout=10,
                       check=False)  # fmt: skip


def _setns(fd: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.setns(fd, CLONE_NEWNET) != 0:
        errno = ctypes.get_errno()
        raise NetnsUnavailable(f"setns failed: {os.strerror(errno)}")
