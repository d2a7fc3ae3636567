"""A throwaway PostgreSQL cluster on loopback: the metadata of the scaled-backend ingest figure.

From Debian's server binaries (``/usr/lib/postgresql/<version>/bin``, the ``postgresql``
package that ``make setup`` installs). PostgreSQL refuses to run as root, so as root the cluster
runs as the ``postgres`` system user in a folder under /tmp that user owns (the bench's work
folder is private to root); otherwise it runs as the caller. Unlike the tests' cluster it keeps
PostgreSQL's durable defaults (``fsync`` and ``synchronous_commit`` on): the figure is compared
with an embedded store that fsyncs every commit. Authentication is ``trust`` on loopback: a
cluster that lives for one benchmark, on a port nobody else is told.

Why not ``tests/evidence/pg_server.py``: bench/ must not import from tests/.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg

from bench.peers import NoPeer

SERVER_USER = "postgres"
START_TIMEOUT_S = 60


@dataclass(frozen=True)
class PgTarget:
    port: int
    pid: int  #: the postmaster; its backends are its children

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql://{SERVER_USER}@127.0.0.1:{self.port}/{dbname}"

    def new_database(self, name: str) -> str:
        """A fresh, empty database ``name``; its URL."""
        with psycopg.connect(self.url(), autocommit=True) as db:
            db.execute(f'CREATE DATABASE "{name}" TEMPLATE template0')
        return self.url(name)

    def cpu_s(self) -> float:
        """CPU seconds so far of the postmaster and its backends (``/proc``)."""
        return sum(_cpu_s(pid) for pid in (self.pid, *_children(self.pid)))


class PgUnavailable(Exception):
    """PostgreSQL cannot run here; the message says why and what to do."""


def server_bin() -> Path:
    """The newest installed server's bin folder (Debian: /usr/lib/postgresql/<ver>/bin)."""
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    if not found:
        raise PgUnavailable("PostgreSQL is not installed: run 'make setup' (as root)")
    return found[-1].parent


def _as_server_user() -> list[str]:
    if os.geteuid() != 0:
        return []
    try:
        pwd.getpwnam(SERVER_USER)
    except KeyError:
        raise PgUnavailable(
            f"PostgreSQL will not run as root and there is no {SERVER_USER!r} user: "
            "run 'make setup' (as root), which installs Debian's postgresql"
        ) from None
    if shutil.which("runuser") is None:
        raise PgUnavailable("runuser is not installed: run 'apt-get install util-linux' as root")
    return ["runuser", "-u", SERVER_USER, "--"]


def why_unavailable() -> str | None:
    """Why no cluster can start here (no server binaries, root without the user), else None."""
    try:
        server_bin()
        _as_server_user()
    except PgUnavailable as exc:
        return str(exc)
    return None


def _run(prefix: list[str], root: Path, *args: str) -> None:
    done = subprocess.run(
        [*prefix, *args], cwd=root, capture_output=True, text=True, check=False
    )  # fmt: skip
    if done.returncode != 0:
        message = (done.stderr or done.stdout).strip().splitlines() or ["no message"]
        raise PgUnavailable(f"{Path(args[0]).name} failed: {message[-1]}")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def running_postgres() -> Iterator[PgTarget | NoPeer]:
    """A fresh cluster serving until the end, or a :class:`NoPeer` saying why there is none."""
    try:
        bindir, prefix = server_bin(), _as_server_user()
    except PgUnavailable as exc:
        yield NoPeer(str(exc))
        return
    # /tmp as root: the server user must reach its folder; a socket path must be short too.
    root = Path(tempfile.mkdtemp(prefix="bwc-bench-pg-", dir="/tmp" if prefix else None))
    data = root / "data"
    try:
        target: PgTarget | NoPeer
        try:
            if prefix:
                shutil.chown(root, SERVER_USER, SERVER_USER)
            target = _start(bindir, prefix, root, data)
        except PgUnavailable as exc:
            target = NoPeer(str(exc))
        yield target
    finally:
        if (data / "postmaster.pid").exists():
            stop = [str(bindir / "pg_ctl"), "stop", "-s", "-m", "immediate", "-D", str(data)]
            subprocess.run([*prefix, *stop], cwd=root, capture_output=True, check=False)
        shutil.rmtree(root, ignore_errors=True)


def _start(bindir: Path, prefix: list[str], root: Path, data: Path) -> PgTarget:
    _run(prefix, root, str(bindir / "initdb"), "-D", str(data), "-U", SERVER_USER,
         "--auth=trust", "--no-instructions", "-E", "UTF8", "--locale=C")  # fmt: skip
    port = _free_port()
    options = f"-h 127.0.0.1 -p {port} -k {root}"
    _run(prefix, root, str(bindir / "pg_ctl"), "start", "-w", "-t", str(START_TIMEOUT_S), "-s",
         "-D", str(data), "-l", str(root / "log"), "-o", options)  # fmt: skip
    pid = int((data / "postmaster.pid").read_text(encoding="ascii").split()[0])
    return PgTarget(port, pid)


def _cpu_s(pid: int) -> float:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii")
    except OSError:
        return 0.0  # a backend that ended meanwhile: its time went to no one we can read
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12]) + int(fields[13]) + int(fields[14])) / os.sysconf(
        "SC_CLK_TCK"
    )


def _children(parent: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        if ppid == parent:
            found.append(int(entry.name))
    return found
