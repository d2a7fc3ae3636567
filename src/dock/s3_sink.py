"""``S3EvidenceSink``: clips into the agency's own S3-compatible bucket, with Object Lock.

**Who signs the receipt.** A camera erases a clip only for a receipt signed by a key it trusts
(docs/formats/offload.md, Erase). A bare bucket signs nothing, so in this mode the dock issues the
receipt itself (``custody.receipt.issue_receipt``), with an *ingest key* of custody role
``store`` (``dock.s3.ingest_key``); cameras are provisioned with its public half as their store
key. It does so only after the bucket has confirmed it holds every byte: each object's stored
SHA-256, read back with ``ChecksumMode=ENABLED``, equals the signed manifest's, and each object
is locked for the configured retention. The trade-off, plainly: the dock now holds a receipt key,
so a compromised dock could forge receipts and have footage erased that the bucket never got.
What protects footage in this mode is Object Lock on the bucket (required: a bucket without it is
refused), not the receipt: once the dock has issued a receipt, nobody, dock included, can
delete or overwrite the locked versions before their retention ends.

**Layout** (the evidence store's own S3 layout, evidence/s3_blobs.py): ``<manifest sha256>/
manifest.jsonl``, ``<sha>/seg-NNNNNN.bwcs`` and the receipt at ``<sha>/receipt.json``; a foreign
file from the ingest folder at ``files/<its sha256>``, its file receipt beside it. The
upload id is the manifest's SHA-256, so everything about an upload can be found in the bucket
again after a restart.

**Checks.** Single puts carry the SHA-256 of the manifest's record, so the bucket refuses other
bytes. Segments bigger than ``part_bytes`` go up in parts, each with its own SHA-256; the whole
file's SHA-256 is checked against the manifest before the upload is completed. S3 keeps only a
*composite* checksum for such objects (a hash of the part hashes), which says nothing about the
whole file on its own, so at completion those are read back and hashed. An object already held
with the right checksum is never sent again; a duplicate upload of a stored clip returns the
receipt already in the bucket (checked against the ingest key and the manifest), writing nothing.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from pathlib import Path

import boto3
from botocore.config import Config
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from custody.clip import MANIFEST_NAME, read_limited, segment_name
from custody.errors import CustodyError
from custody.file_receipt import (
    MAX_FILE_RECEIPT_BYTES,
    issue_file_receipt,
    require_valid_file_receipt,
)
from custody.keys import key_id
from custody.manifest import MAX_MANIFEST_BYTES, Manifest, SegmentRecord, parse_manifest
from custody.receipt import MAX_RECEIPT_BYTES, issue_receipt, require_valid_receipt
from dock.config import S3SinkSettings
from dock.errors import DockSetupError, ReceiptRejected, StoreRefused, StoreUnavailable
from dock.s3_objects import Bucket, Held, Lock, b64_sha256
from dock.store_client import UploadState
from dock.throttle import Throttle

RECEIPT_NAME = "receipt.json"
FILE_RECEIPT_SUFFIX = ".receipt.json"  # a foreign file's receipt, beside files/<sha256>
_SHA256_RE = re.compile(r"[0-9a-f]{64}")


def open_s3_sink(
    settings: S3SinkSettings,
    ingest_key: Ed25519PrivateKey,
    *,
    wall_ns: Callable[[], int],
    timeout_s: float = 30.0,
    throttle: Throttle | None = None,
    session: boto3.session.Session | None = None,
) -> S3EvidenceSink:
    """The sink over ``settings.bucket``; nothing is asked of the bucket until the first upload."""
    secret = settings.secret_access_key
    client = (session or boto3.session.Session()).client(
        "s3",
        endpoint_url=settings.endpoint_url,
        region_name=settings.region,
        aws_access_key_id=settings.access_key_id,
        aws_secret_access_key=secret.get_secret_value() if secret else None,
        config=Config(
            # Path-style URLs: S3-compatible servers rarely have a DNS name per bucket.
            s3={"addressing_style": "path" if settings.endpoint_url else "auto"},
            # One try: the dock's own retrier backs off and records every failure.
            retries={"mode": "standard", "total_max_attempts": 1},
            connect_timeout=timeout_s,
            read_timeout=timeout_s,
        ),
    )
    where = f"S3 bucket {settings.bucket!r} at {settings.endpoint_url or settings.region}"
    bucket = Bucket(client, settings.bucket, where, settings.part_bytes, throttle)
    lock = Lock(settings.lock_mode, settings.retention_days * 86_400, settings.legal_hold)
    return S3EvidenceSink(bucket, lock, ingest_key, wall_ns=wall_ns)


class S3EvidenceSink:
    def __init__(
        self,
        bucket: Bucket,
        lock: Lock,
        ingest_key: Ed25519PrivateKey,
        *,
        wall_ns: Callable[[], int],
    ) -> None:
        """``wall_ns`` dates receipts; Object Lock dates follow the real clock, as S3 does."""
        self.bucket, self._lock = bucket, lock
        self._ingest_key, self._wall_ns = ingest_key, wall_ns
        self._manifests: dict[str, tuple[Manifest, bytes]] = {}
        self._lock_checked = False

    def close(self) -> None:
        self.bucket.close()

    def create_upload(self, manifest: Path) -> UploadState:
        try:
            data = read_limited(manifest, MAX_MANIFEST_BYTES)
            parsed = parse_manifest(data)
        except CustodyError as exc:
            raise DockSetupError(f"the spooled manifest cannot be uploaded: {exc}") from exc
        self._require_object_lock()
        sha = hashlib.sha256(data).hexdigest()
        key = f"{sha}/{MANIFEST_NAME}"
        if not _matches(self.bucket.head(key), sha, len(data)):
            self.bucket.put_bytes(key, data, self._lock)
        self._manifests[sha] = (parsed, data)
        return self.status(sha)

    def put_segment(self, upload_id: str, index: int, segment: Path) -> None:
        record = self._record(upload_id, index)
        key = f"{upload_id}/{segment_name(index)}"
        if not _matches(self.bucket.head(key), record.cipher_sha256, record.size):
            self.bucket.put_file(key, segment, record.cipher_sha256, self._lock)

    def status(self, upload_id: str) -> UploadState:
        manifest, data = self._manifest(upload_id)
        acknowledged = frozenset(
            r.index
            for r in manifest.segments
            if _matches(
                self.bucket.head(f"{upload_id}/{segment_name(r.index)}"), r.cipher_sha256, r.size
            )
        )
        stored = self._stored_receipt(upload_id, data) is not None
        return UploadState(
            upload_id=upload_id,
            stored=stored,
            segment_count=len(manifest.segments),
            acknowledged=acknowledged,
            evidence_id=self._evidence_id(upload_id) if stored else None,
        )

    def complete(self, upload_id: str) -> bytes:
        """The receipt, issued once the bucket holds every object locked and checksummed."""
        manifest, data = self._manifest(upload_id)
        self._confirm_held(
            f"{upload_id}/{MANIFEST_NAME}", hashlib.sha256(data).hexdigest(), len(data)
        )
        for record in manifest.segments:
            key = f"{upload_id}/{segment_name(record.index)}"
            self._confirm_held(key, record.cipher_sha256, record.size)
        receipt = self._stored_receipt(upload_id, data) or self._issue(upload_id, data)
        self._manifests.pop(upload_id, None)  # done: the cache stays small on a busy dock
        return receipt

    def put_file(self, path: Path, sha256: str, name: str) -> bytes:
        """A foreign file at ``files/<sha256>``, locked; its file receipt by the ingest key.

        The receipt is issued, as for clips, only once the bucket confirms it holds the bytes
        (checksum read back) under lock, and kept beside them at ``files/<sha256>.receipt.json``;
        the same bytes sent again get that receipt back.
        """
        self._require_object_lock()
        if not _SHA256_RE.fullmatch(sha256):
            raise StoreRefused(f"{sha256!r} is not a SHA-256", 400)
        try:
            size = path.stat().st_size
        except OSError as exc:
            raise StoreRefused(f"cannot read {path}: {exc.strerror}", 400) from exc
        key, receipt_key = f"files/{sha256}", f"files/{sha256}{FILE_RECEIPT_SUFFIX}"
        stored = self._stored_file_receipt(receipt_key, sha256, size)
        if stored is not None:
            return stored
        if not _matches(self.bucket.head(key), sha256, size):
            self.bucket.put_file(key, path, sha256, self._lock)
        self._confirm_held(key, sha256, size)
        try:
            receipt = issue_file_receipt(
                self._ingest_key, evidence_id=f"s3://{self.bucket.name}/{key}", sha256=sha256,
                size=size, name=name, submitted_by=f"dock:ingest-key-{key_id(self._ingest_key)}",
                stored_at_ns=self._wall_ns(),
            ).to_bytes()  # fmt: skip
        except CustodyError as exc:  # a name that is no plain file name
            raise StoreRefused(f"no receipt for {name!r}: {exc}", 400) from exc
        if self.bucket.put_bytes(receipt_key, receipt, self._lock, if_absent=True):
            return receipt
        raced = self._stored_file_receipt(receipt_key, sha256, size)
        if raced is None:
            raise StoreUnavailable(f"{self.bucket.where} lost the receipt at {receipt_key}: retry")
        return raced

    def _stored_file_receipt(self, key: str, sha256: str, size: int) -> bytes | None:
        receipt = self.bucket.get(key, MAX_FILE_RECEIPT_BYTES)
        if receipt is None:
            return None
        try:
            require_valid_file_receipt(
                receipt, self._ingest_key.public_key(), sha256=sha256, size=size
            )
        except CustodyError as exc:
            raise ReceiptRejected(
                f"the receipt in {self.bucket.where} at {key} does not verify with this dock's "
                f"ingest key ({exc}): restore the ingest key"
            ) from exc
        return receipt

    def _issue(self, upload_id: str, data: bytes) -> bytes:
        """Sign the receipt and store it, unless another dock's got there first (then that)."""
        try:
            receipt = issue_receipt(
                self._ingest_key, data, evidence_id=self._evidence_id(upload_id),
                stored_at_ns=self._wall_ns(),
            ).to_bytes()  # fmt: skip
        except CustodyError as exc:  # an unsealed manifest: the pipeline never sends one
            raise StoreRefused(f"no receipt for manifest {upload_id}: {exc}", 400) from exc
        key = f"{upload_id}/{RECEIPT_NAME}"
        if self.bucket.put_bytes(key, receipt, self._lock, if_absent=True):
            return receipt
        raced = self._stored_receipt(upload_id, data)
        if raced is None:
            raise StoreUnavailable(f"{self.bucket.where} lost the receipt at {key}: retry")
        return raced

    def _require_object_lock(self) -> None:
        if self._lock_checked:
            return
        if not self.bucket.object_lock_enabled():
            raise DockSetupError(
                f"{self.bucket.where} has no Object Lock: the dock signs receipts for footage "
                "only in a bucket that cannot delete it; create the bucket with Object Lock"
            )
        self._lock_checked = True

    def _manifest(self, upload_id: str) -> tuple[Manifest, bytes]:
        """The manifest of an upload, from this process or from the bucket (checked by hash)."""
        self._require_object_lock()
        if upload_id in self._manifests:
            return self._manifests[upload_id]
        if not _SHA256_RE.fullmatch(upload_id):
            raise StoreRefused(f"{upload_id!r} is not an upload of the S3 sink", 404)
        data = self.bucket.get(f"{upload_id}/{MANIFEST_NAME}", MAX_MANIFEST_BYTES)
        if data is None:
            raise StoreRefused(f"{self.bucket.where} holds no manifest {upload_id}", 404)
        if hashlib.sha256(data).hexdigest() != upload_id:
            raise StoreRefused(
                f"the manifest {upload_id} in {self.bucket.where} has other bytes: the dock "
                "opens the upload again",
                404,
            )
        try:
            parsed = parse_manifest(data)
        except CustodyError as exc:  # its hash matched: only a manifest the dock sent is here
            raise StoreRefused(f"the manifest {upload_id} is not valid: {exc}", 409) from exc
        self._manifests[upload_id] = (parsed, data)
        return parsed, data

    def _record(self, upload_id: str, index: int) -> SegmentRecord:
        manifest, _ = self._manifest(upload_id)
        for record in manifest.segments:
            if record.index == index:
                return record
        raise StoreRefused(f"clip {manifest.header.clip_id} has no segment {index}", 400)

    def _confirm_held(self, key: str, sha256: str, size: int) -> None:
        """The bucket holds exactly these bytes under ``key``, locked; else StoreRefused."""
        held = self.bucket.head(key)
        if held is None or held.size != size:
            found = "nothing" if held is None else f"{held.size} bytes"
            raise StoreRefused(
                f"{self.bucket.where} holds {found} at {key}, not the {size} signed bytes: "
                "no receipt; the dock sends it again",
                409,
            )
        if held.composite:
            actual = self.bucket.sha256_of(key)  # only part hashes are stored: hash it all
            good = actual == sha256
        else:
            good = held.checksum == b64_sha256(sha256)
        if not good:
            raise StoreRefused(
                f"{self.bucket.where} holds other bytes at {key} than the signed sha256 "
                f"{sha256[:16]}...: no receipt; the dock sends it again",
                409,
            )
        if not self._locked(held):
            self.bucket.retain(key, self._lock)

    def _locked(self, held: Held) -> bool:
        if held.retain_until is None or (self._lock.legal_hold and not held.legal_hold):
            return False
        # An hour's slack: the dock dated the lock by its clock, the bucket the object by its own.
        needed = held.last_modified.timestamp() + self._lock.retention_s - 3600
        return held.retain_until.timestamp() >= needed

    def _stored_receipt(self, upload_id: str, manifest: bytes) -> bytes | None:
        receipt = self.bucket.get(f"{upload_id}/{RECEIPT_NAME}", MAX_RECEIPT_BYTES)
        if receipt is None:
            return None
        try:
            require_valid_receipt(receipt, self._ingest_key.public_key(), manifest)
        except CustodyError as exc:
            raise ReceiptRejected(
                f"the receipt in {self.bucket.where} at {upload_id}/{RECEIPT_NAME} does not "
                f"verify with this dock's ingest key ({exc}): restore the ingest key"
            ) from exc
        return receipt

    def _evidence_id(self, upload_id: str) -> str:
        return f"s3://{self.bucket.name}/{upload_id}"


def _matches(held: Held | None, sha256: str, size: int) -> bool:
    """The bucket holds an object of this size and SHA-256 (multipart: as the dock wrote it).

    A multipart object's own checksum covers only its parts, so resuming trusts the SHA-256 the
    dock wrote beside it; completion reads it back before any receipt.
    """
    if held is None or held.size != size:
        return False
    if held.composite:
        return held.whole_sha256 == sha256
    return held.checksum == b64_sha256(sha256)
