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

The ratio is what verification, durable writes, the audit log and receipts cost over moving the
same bytes through loopback HTTP.
"""

from __future__ import annotations

import os
import shutil
import time
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
    server_cpu_s: float
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


def ingest(store: Store, clips: Clips) -> Ingest:
    """Every clip through the store, timed; then every receipt and the listing checked."""
    receipts: list[bytes] = []
    with requests.Session() as session:
        session.headers.update(store.dock)
        cpu0, client0, wall0 = process_cpu_s(store.pid), time.process_time(), time.perf_counter()
        try:
            receipts = [_send(session, store.url, clip) for clip in clips.sealed]
        except requests.RequestException as exc:
            raise BenchError(f"ingest over HTTP failed: {exc}") from exc
        wall_s, cpu_s = time.perf_counter() - wall0, process_cpu_s(store.pid) - cpu0
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


def curl_upload(clips: Clips, sink: Sink, work: Path) -> Ingest | NoPeer:
    """The same files, uploaded by one curl process to the sink; checked by the sink's count."""
    exe = shutil.which("curl")
    if exe is None:
        return NoPeer("curl is not installed: run 'apt-get install curl' as root")
    config = work / "curl.conf"
    _curl_config(clips, sink, config)
    # -H "Expect:": curl would otherwise wait for "100 Continue" on each large body; the store's
    # client (requests) sends no Expect either.
    command = [exe, "--silent", "--show-error", "--fail", "-H", "Expect:", "-K", str(config)]
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


def _store_run(clips: Clips, data_dir: Path) -> Ingest:
    """One ingest into a fresh store (fresh process, empty data folder), then its data removed."""
    with running_store(data_dir, DEVICE_ID, clips.device_key) as store:
        run = ingest(store, clips)
    shutil.rmtree(data_dir)
    return run


def _peer_run(clips: Clips, work: Path) -> Ingest | NoPeer:
    with running_sink() as sink:  # a fresh sink, so its counts are this run's alone
        return curl_upload(clips, sink, work)


def _median(runs: list[Ingest]) -> Ingest:
    return sorted(runs, key=lambda r: r.wall_s)[len(runs) // 2]


def _median_peer(runs: list[Ingest | NoPeer]) -> Ingest | NoPeer:
    """The median run; the first failure if any failed (a flaky peer gives no figure)."""
    missing = [r for r in runs if isinstance(r, NoPeer)]
    return missing[0] if missing else _median([r for r in runs if isinstance(r, Ingest)])


def _describe(
    size: IngestSize, clips: Clips, repeats: int, ours: Ingest, peer: Ingest | NoPeer
) -> str:
    note = (
        f"{size.describe()} ({clips.total_bytes / 1e6:.1f} MB sealed, random plaintext), "
        f"sealed once before timing; median of {repeats} runs each; store: 'bwc evidence "
        "serve', 1 API process (uvicorn), embedded backend (SQLite WAL synchronous=FULL, "
        "fsynced blob folder in the work folder), a fresh one per run, fed by requests "
        f"(create, PUT each segment, complete): {ours.wall_s:.2f} s wall, server "
        f"{ours.server_cpu_s:.2f} CPU s, client {ours.client_cpu_s:.2f} CPU s, every receipt "
        "verified; 4 API processes come with the scaled backend (PostgreSQL + S3), not "
        "measured yet"
    )
    if isinstance(peer, NoPeer):
        return note
    return note + (
        f"; curl: one process, PUT of the same {clips.requests} files on one keep-alive "
        "connection to a Python http.server sink writing to /dev/null (bench.sink_server): "
        f"{peer.wall_s:.2f} s wall, sink {peer.server_cpu_s:.2f} CPU s, "
        f"curl {peer.client_cpu_s:.2f} CPU s"
    )


def evidence_ingest(scenario: Scenario, work: Path) -> list[Figure]:
    """Ingest MB/s and clips per second of the store, each against curl to a plain sink."""
    size = SIZES[scenario.mode]
    work.mkdir(parents=True, exist_ok=True)
    clips = make_clips(size, work / "clips")
    ours = _median([_store_run(clips, work / f"store-{n}") for n in range(scenario.repeats)])
    peer = _median_peer([_peer_run(clips, work) for _ in range(scenario.repeats)])
    megabytes = clips.total_bytes / 1e6
    note = _describe(size, clips, scenario.repeats, ours, peer)
    missing = f"; peer not measured: {peer.reason}" if isinstance(peer, NoPeer) else ""
    peer_name = "curl -T of the same files to a plain HTTP sink (/dev/null)"
    return [
        Figure(
            name="evidence-store ingest: MB/s over loopback HTTP, embedded backend, 1 process",
            value=megabytes / ours.wall_s,
            unit="MB/s",
            peer=peer_name,
            peer_value=None if isinstance(peer, NoPeer) else megabytes / peer.wall_s,
            better="higher",
            note=note + missing,
        ),
        Figure(
            name="evidence-store ingest: clips per second, embedded backend, 1 process",
            value=size.clips / ours.wall_s,
            unit="clips/s",
            peer=peer_name,
            peer_value=None if isinstance(peer, NoPeer) else size.clips / peer.wall_s,
            better="higher",
            note=f"{size.describe()}; measured as the MB/s figure above{missing}",
        ),
    ]
