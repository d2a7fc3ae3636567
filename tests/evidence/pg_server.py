"""A throwaway PostgreSQL cluster on loopback for the tests, from Debian's server binaries.

Each pytest process (each xdist worker) starts its own cluster in a fresh folder under /tmp, on a
free port, with its socket in that folder, and stops it at the end of the session; each test then
gets its own database. PostgreSQL refuses to run as root, and CI runs as root, so the server
runs as the ``postgres`` system user then, in a folder that user owns.
"""

from __future__ import annotations

import itertools
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import psycopg

NOT_INSTALLED = "PostgreSQL is not installed: run 'make setup' (as root)"
SERVER_USER = "postgres"
PASSWORD = "bwc-test-" + secrets.token_hex(8)  # scram over TCP, so URLs carry a real password
_START_ATTEMPTS = 3  # another process may take the free port between picking and binding it


class PostgresMissing(RuntimeError):
    pass


def server_bin() -> Path:
    """The newest installed server's bin folder (Debian: /usr/lib/postgresql/<ver>/bin)."""
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    if not found:
        raise PostgresMissing(NOT_INSTALLED)
    return found[-1].parent


@dataclass
class PgCluster:
    root: Path
    port: int
    _bin: Path
    _as_server_user: list[str]
    _names: itertools.count[int]

    @classmethod
    def start(cls) -> PgCluster:
        bindir = server_bin()
        as_root = os.geteuid() == 0
        # /tmp, not pytest's tmp_path: the server user must reach it, and a socket path is short.
        root = Path(tempfile.mkdtemp(prefix="bwc-pg-", dir="/tmp" if as_root else None))
        prefix: list[str] = []
        if as_root:
            user = pwd.getpwnam(SERVER_USER)
            os.chown(root, user.pw_uid, user.pw_gid)
            prefix = ["runuser", "-u", SERVER_USER, "--"]
        cluster = cls(root, 0, bindir, prefix, itertools.count())
        try:
            cluster._init()
            cluster._listen()
        except BaseException:
            cluster.stop()
            raise
        return cluster

    def _run(self, *args: str) -> None:
        done = subprocess.run(
            [*self._as_server_user, *args],
            cwd=self.root,  # the server user may not be allowed into the caller's folder
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"{args[0]} failed: {(done.stderr or done.stdout).strip()}")

    def _init(self) -> None:
        pwfile = self.root / "pw"
        pwfile.write_text(PASSWORD + "\n")
        if self._as_server_user:
            shutil.chown(pwfile, SERVER_USER)
        self._run(
            str(self._bin / "initdb"), "-D", str(self.root / "data"), "-U", SERVER_USER,
            f"--pwfile={pwfile}", "--auth-host=scram-sha-256", "--auth-local=trust",
            "--no-sync", "--no-instructions", "-E", "UTF8", "--locale=C",
        )  # fmt: skip
        pwfile.unlink()

    def _listen(self) -> None:
        for attempt in range(_START_ATTEMPTS):
            self.port = free_port()
            options = f"-h 127.0.0.1 -p {self.port} -k {self.root} -F"  # -F: no fsync, tests only
            try:
                self._run(
                    str(self._bin / "pg_ctl"), "start", "-w", "-t", "60", "-s",
                    "-D", str(self.root / "data"), "-l", str(self.root / "log"), "-o", options,
                )  # fmt: skip
                return
            except RuntimeError:
                if attempt == _START_ATTEMPTS - 1:
                    log = self.root / "log"
                    raise RuntimeError(
                        f"PostgreSQL did not start: {log.read_text()[-2000:]}"
                    ) from None

    def url(self, dbname: str = "postgres", *, password: str | None = PASSWORD) -> str:
        auth = SERVER_USER if password is None else f"{SERVER_USER}:{password}"
        return f"postgresql://{auth}@127.0.0.1:{self.port}/{dbname}"

    def new_database(self) -> str:
        """A fresh, empty database; its URL."""
        name = f"t{next(self._names)}"
        with psycopg.connect(self.url(), autocommit=True) as db:
            db.execute(f'CREATE DATABASE "{name}" TEMPLATE template0 STRATEGY FILE_COPY')
        return self.url(name)

    def stop(self) -> None:
        if (self.root / "data" / "postmaster.pid").exists():
            self._run(
                str(self._bin / "pg_ctl"), "stop", "-s", "-m", "immediate",
                "-D", str(self.root / "data"),
            )  # fmt: skip
        shutil.rmtree(self.root, ignore_errors=True)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port
