"""Evidence-store ingest throughput on loopback, embedded backend, against ``curl``.

The clips are sealed once, before anything is timed, with :mod:`custody` (random plaintext: the
store verifies ciphertext hashes, the chain and the signatures, never the media), and written to
files for the peer. Then, each side on the same bytes:

- **ours**: the real store (``bwc evidence serve``, one uvicorn process, SQLite in WAL mode and a
  blob folder, every blob and commit fsynced) is fed over HTTP with ``requests`` as a dock does:
  create the upload from the manifest, ``PUT`` each segment, complete. Every receipt is then
  verified with :func:`custody.receipt.verify_receipt` and the store must list every clip;
- **peer**: one ``curl`` process uploads the same manifest and segment files (``PUT``, one
  keep-alive connection) to :mod:`bench.sink_server`, which writes each body to ``/dev/null``.

Then the same clips, in the same run, through :data:`WORKERS` API processes
(``bwc evidence serve --workers 4``) fed by as many client threads at once (docks uploading
together), against ``curl --parallel`` with as many transfers; the same clients against one
process are measured too, so the note can tell what the processes add from what concurrency does.

The ratio is what verification, durable writes, the audit log and receipts cost over moving the
same bytes through loopback HTTP.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from bench.device import BenchError
from bench.figures import Figure
from bench.peers import NoPeer, run_child
from bench.servers import Sink, Store, process_cpu_s, running_sink, running_store
from bench.stream import Scenario
from custody.clip import MANIFEST_NAME, SealedClip, seal_clip, segment_name
from custody.manifest import ClipInfo
from custody.receipt import verify_receipt

DEVICE_ID = "bench-cam"
TIMEOUT_S = 60.0  #: one request; a 1 MB segment takes milliseconds
#: API processes of the scaled-out figures, and client threads (docks) feeding them at once
WORKERS = 4


@dataclass(frozen=True)
class IngestSize:
    clips: int
    segments: int  #: per clip
    segment_bytes: int  #: plaintext per segment; the ciphertext adds the AES-GCM tag

    def describe(self) -> str:
        return f"{self.clips} clips x {self.segments} segments of {self.segment_bytes / 1e6:g} MB"


#: A segment is one second of the camera's 8.5 Mbit/s 1080p30 stream: about 1 MB.
SIZES = {
    "full": IngestSize(clips=20, segments=10, segment_bytes=1_000_000),
    "quick": IngestSize(clips=6, segments=5, segment_bytes=1_000_000),
    "smoke": IngestSize(clips=2, segments=2, segment_bytes=64_000),
}


@dataclass(frozen=True)
class Clips:
    sealed: list[SealedClip]
    folder: Path  #: one subfolder per clip, as a camera's card holds it (the peer's input)
    device_key: Ed25519PrivateKey

    @property
    def total_bytes(self) -> int:
        return sum(len(c.manifest) + sum(map(len, c.segments.values())) for c in self.sealed)

    @property
    def requests(self) -> int:
        return sum(1 + len(c.segments) for c in self.sealed)  # the manifest and each segment


@dataclass(frozen=True)
class Ingest:
    wall_s: float
    server_cpu_s: float  #: every process of the server (with workers, the supervisor too)
    client_cpu_s: float  #: requests in this process, or the curl child


def make_clips(size: IngestSize, folder: Path) -> Clips:
    """Seal ``size.clips`` clips of random plaintext with one device key, and write them out."""
    device_key = Ed25519PrivateKey.generate()
    agency = X25519PrivateKey.generate().public_key()
    sealed = []
    for n in range(size.clips):
        info = ClipInfo(DEVICE_ID, "BWC-BENCH-0001", "officer-bench", "bench",
                        1_700_000_000 * 10**9 + n * 10**10, n * 10**10)  # fmt: skip
        plaintexts = [os.urandom(size.segment_bytes) for _ in range(size.segments)]
        clip = seal_clip(plaintexts, device_key=device_key, agency_public=agency, info=info)
        clip.write_to(folder / clip.clip_id)
        sealed.append(clip)
    return Clips(sealed, folder, device_key)


def _checked(response: requests.Response, expected: int, what: str) -> requests.Response:
    if response.status_code != expected:
        raise BenchError(f"the store refused {what}: HTTP {response.status_code} {response.text}")
    return response


def _send(session: requests.Session, url: str, clip: SealedClip) -> bytes:
    """One clip as a dock sends it; returns the receipt."""
    created = session.post(f"{url}/v1/uploads", data=clip.manifest, timeout=TIMEOUT_S)
    upload = f"{url}/v1/uploads/{_checked(created, 201, 'the upload').json()['upload_id']}"
    for index, blob in sorted(clip.segments.items()):
        put = session.put(f"{upload}/segments/{index}", data=blob, timeout=TIMEOUT_S)
        _checked(put, 200, f"segment {index}")
    completed = session.post(f"{upload}/complete", timeout=TIMEOUT_S)
    return _checked(completed, 200, "completing the upload").content


def _send_all(store: Store, clips: Sequence[SealedClip], clients: int) -> list[bytes]:
    """Every clip, by ``clients`` threads at once (each its own session, as a dock), in order."""
    local = threading.local()
    sessions: list[requests.Session] = []

    def send(clip: SealedClip) -> bytes:
        if not hasattr(local, "session"):
            local.session = requests.Session()
            local.session.headers.update(store.dock)
            sessions.append(local.session)
        receipt: bytes = _send(local.session, store.url, clip)
        return receipt

    try:
        with ThreadPoolExecutor(clients) as pool:
            return list(pool.map(send, clips))
    finally:
        for session in sessions:
            session.close()


def ingest(store: Store, clips: Clips, clients: int = 1) -> Ingest:
    """Every clip through the store, timed; then every receipt and the listing checked."""
    cpu0, client0, wall0 = store.cpu_s(), time.process_time(), time.perf_counter()
    try:
        receipts = _send_all(store, clips.sealed, clients)
    except requests.RequestException as exc:
        raise BenchError(f"ingest over HTTP failed: {exc}") from exc
    wall_s, cpu_s = time.perf_counter() - wall0, store.cpu_s() - cpu0
    client_s = time.process_time() - client0
    for clip, receipt in zip(clips.sealed, receipts, strict=True):
        report = verify_receipt(receipt, store.receipt_key, clip.manifest)
        if not report.ok:
            raise BenchError(f"the receipt for clip {clip.clip_id} does not verify: {report}")
    try:
        listed = requests.get(
            f"{store.url}/v1/evidence", params={"limit": 1000}, headers=store.records, timeout=10
        ).json()
    except (requests.RequestException, ValueError) as exc:
        raise BenchError(f"cannot list the stored evidence: {exc}") from exc
    if len(listed) != len(clips.sealed):
        raise BenchError(f"the store lists {len(listed)} clips after {len(clips.sealed)} ingests")
    return Ingest(wall_s, cpu_s, client_s)


def _curl_config(clips: Clips, sink: Sink, path: Path) -> None:
    # One config file, not argv: hundreds of uploads; nth upload-file goes to the nth url.
    lines = []
    for clip in clips.sealed:
        names = [MANIFEST_NAME] + [segment_name(i) for i in sorted(clip.segments)]
        for name in names:
            lines.append(f'upload-file = "{clips.folder / clip.clip_id / name}"')
            lines.append(f'url = "{sink.url}/{clip.clip_id}/{name}"')
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def curl_upload(clips: Clips, sink: Sink, work: Path, parallel: int = 1) -> Ingest | NoPeer:
    """The same files, uploaded by one curl process to the sink; checked by the sink's count.

    ``parallel`` > 1 runs that many transfers at once (``--parallel``), each on its connection.
    """
    exe = shutil.which("curl")
    if exe is None:
        return NoPeer("curl is not installed: run 'apt-get install curl' as root")
    config = work / "curl.conf"
    _curl_config(clips, sink, config)
    # -H "Expect:": curl would otherwise wait for "100 Continue" on each large body; the store's
    # client (requests) sends no Expect either.
    command = [exe, "--silent", "--show-error", "--fail", "-H", "Expect:", "-K", str(config)]
    if parallel > 1:
        command[1:1] = ["--parallel", "--parallel-max", str(parallel)]
    cpu0 = process_cpu_s(sink.pid)
    done, curl_cpu_s, wall_s = run_child(command)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no message"])[-1]
        return NoPeer(f"curl failed with exit status {done.returncode}: {last}")
    cpu_s = process_cpu_s(sink.pid) - cpu0
    got = requests.get(f"{sink.url}/stats", timeout=10).json()
    if got != {"requests": clips.requests, "bytes": clips.total_bytes}:
        return NoPeer(f"the sink received {got}, not {clips.requests} uploads of the clips' bytes")
    return Ingest(wall_s, cpu_s, curl_cpu_s)


def _store_run(clips: Clips, data_dir: Path, *, workers: int = 1, clients: int = 1) -> Ingest:
    """One ingest into a fresh store (fresh process, empty data folder), then its data removed."""
    with running_store(data_dir, DEVICE_ID, clips.device_key, workers=workers) as store:
        run = ingest(store, clips, clients)
    shutil.rmtree(data_dir)
    return run


def _peer_run(clips: Clips, work: Path, parallel: int = 1) -> Ingest | NoPeer:
    with running_sink() as sink:  # a fresh sink, so its counts are this run's alone
        return curl_upload(clips, sink, work, parallel)


def _median(runs: list[Ingest]) -> Ingest:
    return sorted(runs, key=lambda r: r.wall_s)[len(runs) // 2]


def _median_peer(runs: list[Ingest | NoPeer]) -> Ingest | NoPeer:
    """The median run; the first failure if any failed (a flaky peer gives no figure)."""
    missing = [r for r in runs if isinstance(r, NoPeer)]
    return missing[0] if missing else _median([r for r in runs if isinstance(r, Ingest)])


_STORE = (
    "embedded backend (SQLite WAL synchronous=FULL, fsynced blob folder in the work folder), "
    "a fresh one per run"
)


def _store_note(ours: Ingest) -> str:
    return (
        f"{ours.wall_s:.2f} s wall, server {ours.server_cpu_s:.2f} CPU s, "
        f"client {ours.client_cpu_s:.2f} CPU s, every receipt verified"
    )


def _curl_note(clips: Clips, peer: Ingest | NoPeer, parallel: int) -> str:
    if isinstance(peer, NoPeer):
        return f"; peer not measured: {peer.reason}"
    how = (
        "one keep-alive connection"
        if parallel == 1
        else f"{parallel} transfers at once (--parallel), each on its own connection"
    )
    return (
        f"; curl: one process, PUT of the same {clips.requests} files on {how} to a Python "
        "http.server sink writing to /dev/null (bench.sink_server): "
        f"{peer.wall_s:.2f} s wall, sink {peer.server_cpu_s:.2f} CPU s, "
        f"curl {peer.client_cpu_s:.2f} CPU s"
    )


def _mbps(clips: Clips, run: Ingest) -> float:
    return clips.total_bytes / 1e6 / run.wall_s


def _figures(
    size: IngestSize, clips: Clips, processes: int, ours: Ingest, peer: Ingest | NoPeer,
    note: str,
) -> list[Figure]:  # fmt: skip
    """The MB/s and clips-per-second figures of one measurement against its curl peer."""
    label = "1 process" if processes == 1 else f"{processes} processes"
    peer_name = "curl -T of the same files to a plain HTTP sink (/dev/null)"
    if processes > 1:
        peer_name = (
            f"curl --parallel ({processes} transfers) of the same files to a plain HTTP sink"
        )
    peer_mbps = peer_clips = None
    missing = f"; peer not measured: {peer.reason}" if isinstance(peer, NoPeer) else ""
    if not isinstance(peer, NoPeer):
        peer_mbps, peer_clips = _mbps(clips, peer), size.clips / peer.wall_s
    return [
        Figure(
            name=f"evidence-store ingest: MB/s over loopback HTTP, embedded backend, {label}",
            value=_mbps(clips, ours),
            unit="MB/s",
            peer=peer_name,
            peer_value=peer_mbps,
            better="higher",
            note=note,
        ),
        Figure(
            name=f"evidence-store ingest: clips per second, embedded backend, {label}",
            value=size.clips / ours.wall_s,
            unit="clips/s",
            peer=peer_name,
            peer_value=peer_clips,
            better="higher",
            note=f"{size.describe()}; measured as the MB/s figure above{missing}",
        ),
    ]


def evidence_ingest(scenario: Scenario, work: Path) -> list[Figure]:
    """Ingest MB/s and clips per second with 1 and with :data:`WORKERS` API processes.

    Each against curl to a plain sink, with as many transfers at once as clients feed the store.
    The runs of each kind alternate, so a machine that slows down mid-run slows all of them.
    """
    size = SIZES[scenario.mode]
    work.mkdir(parents=True, exist_ok=True)
    clips = make_clips(size, work / "clips")
    single, scaled, control = [], [], []  # 1 process 1 client; N and N; 1 process N clients
    for n in range(scenario.repeats):
        single.append(_store_run(clips, work / f"store-{n}"))
        scaled.append(_store_run(clips, work / f"store-{n}", workers=WORKERS, clients=WORKERS))
        control.append(_store_run(clips, work / f"store-{n}", clients=WORKERS))
    peer = _median_peer([_peer_run(clips, work) for _ in range(scenario.repeats)])
    peers = _median_peer([_peer_run(clips, work, WORKERS) for _ in range(scenario.repeats)])
    ours, many, alone = _median(single), _median(scaled), _median(control)
    common = (
        f"{size.describe()} ({clips.total_bytes / 1e6:.1f} MB sealed, random plaintext), "
        f"sealed once before timing; median of {scenario.repeats} runs each; "
    )
    one_note = (
        f"{common}store: 'bwc evidence serve', 1 API process (uvicorn), {_STORE}, fed by "
        f"requests (create, PUT each segment, complete), one clip after another: "
        f"{_store_note(ours)}{_curl_note(clips, peer, 1)}"
    )
    many_note = (
        f"{common}store: 'bwc evidence serve --workers {WORKERS}', {WORKERS} API processes "
        f"(uvicorn workers; the supervising process is counted in the server CPU) sharing one "
        f"{_STORE}, fed by {WORKERS} client threads at once, one requests session each: "
        f"{_store_note(many)}; the same {WORKERS} clients against 1 API process: "
        f"{_mbps(clips, alone):.1f} MB/s ({alone.wall_s:.2f} s wall, server "
        f"{alone.server_cpu_s:.2f} CPU s), so {WORKERS} processes give "
        f"{alone.wall_s / many.wall_s:.2f}x that and {ours.wall_s / many.wall_s:.2f}x the "
        f"1-process figure{_curl_note(clips, peers, WORKERS)}"
    )
    return [
        *_figures(size, clips, 1, ours, peer, one_note),
        *_figures(size, clips, WORKERS, many, peers, many_note),
    ]
