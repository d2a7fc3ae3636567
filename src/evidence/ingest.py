"""The ingest service: verified uploads in, signed receipts out. No HTTP here.

A dock creates an upload for a sealed manifest (verified against the enrolled device key), sends
the segments it lists (each checked against the manifest before it is stored), then completes:
the store verifies the whole clip again with :mod:`custody` and only then signs a receipt. Every
step, and every refusal, is an audit record.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from custody.canonical import sha256_hex
from custody.clip import MANIFEST_NAME, segment_name
from custody.errors import FormatError
from custody.manifest import MAX_MANIFEST_BYTES, parse_manifest
from custody.receipt import Receipt, issue_receipt, parse_receipt
from custody.verify import verify_clip, verify_manifest
from evidence.audit_log import StoreAudit
from evidence.blob_locks import retain_clip
from evidence.config import RetentionPolicy
from evidence.enrolment import DeviceRegistry
from evidence.errors import (
    BadRequest,
    Conflict,
    EvidenceError,
    NotFound,
    PayloadTooLarge,
    StoreSetupError,
    VerificationFailed,
)
from evidence.storage import (
    BlobStore,
    Evidence,
    ExpectedSegment,
    MetadataStore,
    Retention,
    Upload,
)

_MAX_REASON = 500  # characters of a refusal kept in the audit record


def manifest_key(manifest_sha256: str) -> str:
    return f"{manifest_sha256}/{MANIFEST_NAME}"


def segment_key(manifest_sha256: str, index: int) -> str:
    return f"{manifest_sha256}/{segment_name(index)}"


@dataclass(frozen=True)
class UploadStatus:
    upload: Upload
    segments: list[ExpectedSegment]
    acknowledged: list[int]

    @property
    def missing(self) -> list[int]:
        done = set(self.acknowledged)
        return [s.index for s in self.segments if s.index not in done]

    @property
    def state(self) -> str:
        return "stored" if self.upload.evidence_id is not None else "open"


class BlobSegments:
    """A clip's segments in the blob store, as the custody verifier reads them."""

    def __init__(self, blobs: BlobStore, manifest_sha256: str, expected: Sequence[int]) -> None:
        self._blobs, self._sha, self._expected = blobs, manifest_sha256, list(expected)

    def indices(self) -> list[int]:
        # Only indices the manifest lists are ever stored, so these are all that can be present.
        return [i for i in self._expected if self._blobs.exists(segment_key(self._sha, i))]

    def read(self, index: int, limit: int) -> bytes | None:
        blob = self._blobs.get(segment_key(self._sha, index))
        return None if blob is None else blob[:limit]

    def name(self, index: int) -> str:
        return segment_name(index)


class IngestService:
    def __init__(
        self,
        metadata: MetadataStore,
        blobs: BlobStore,
        devices: DeviceRegistry,
        store_key: Ed25519PrivateKey,
        audit: StoreAudit,
        *,
        wall_ns: Callable[[], int] = time.time_ns,
        new_id: Callable[[], str] = lambda: str(uuid.uuid4()),
        policy: RetentionPolicy | None = None,
    ) -> None:
        self.metadata, self.blobs, self.devices = metadata, blobs, devices
        self._key, self._audit = store_key, audit
        self._wall_ns, self._new_id = wall_ns, new_id
        self.policy = policy or RetentionPolicy()
        # Creating and completing check-then-write. The database keeps one upload and one
        # evidence record per manifest across processes; this lock only spares the work of a race.
        self._lock = threading.Lock()

    @contextmanager
    def _refusals(self, actor: str, action: str) -> Iterator[None]:
        """Record every refused request in the audit log, then let the error through."""
        try:
            yield
        except EvidenceError as exc:
            reason = str(exc)[:_MAX_REASON]
            self._audit.record(actor, "ingest.refused", {"action": action, "reason": reason})
            raise

    def create_upload(self, manifest_bytes: bytes, actor: str) -> UploadStatus:
        """Verify a sealed manifest and open an upload for it (or return the existing one)."""
        with self._refusals(actor, "create upload"):
            return self._create_upload(manifest_bytes, actor)

    def _create_upload(self, manifest_bytes: bytes, actor: str) -> UploadStatus:
        if len(manifest_bytes) > MAX_MANIFEST_BYTES:
            raise PayloadTooLarge(
                f"the manifest is {len(manifest_bytes)} bytes, more than {MAX_MANIFEST_BYTES}"
            )
        try:
            manifest = parse_manifest(manifest_bytes)
        except FormatError as exc:
            raise BadRequest(f"the manifest is malformed: {exc}") from exc
        info = manifest.header.info
        report = verify_manifest(manifest_bytes, self.devices.key_for(info.device_id))
        if not report.ok:
            first = report.first_failure
            shown = first.describe() if first else "nothing was checked"
            raise VerificationFailed(f"the manifest does not verify: {shown}")
        sha = sha256_hex(manifest_bytes)
        with self._lock:
            purged = self.metadata.tombstone_for_manifest(sha)
            if purged is not None:
                # Storing it again would undo the purge that retention promised.
                raise Conflict(
                    f"clip {purged.clip_id} was stored as {purged.evidence_id} and purged at the "
                    f"end of its retention ({purged.category}): delete it from the dock"
                )
            existing = self.metadata.upload_for_manifest(sha)
            if existing is not None:
                self._audit.record(actor, "upload.resumed", {"upload_id": existing.id})
                return self.status(existing.id)
            self.blobs.put(manifest_key(sha), manifest_bytes, sha)
            opened = Upload(
                self._new_id(), sha, manifest.header.clip_id, info.device_id,
                len(manifest.segments), actor, self._wall_ns(),
            )  # fmt: skip
            expected = [
                ExpectedSegment(s.index, s.size, s.cipher_sha256) for s in manifest.segments
            ]
            upload = self.metadata.add_upload(opened, expected)
            if upload.id != opened.id:  # another API process opened it first
                self._audit.record(actor, "upload.resumed", {"upload_id": upload.id})
                return self.status(upload.id)
            self._audit.record(
                actor, "upload.created",
                {"upload_id": upload.id, "clip_id": upload.clip_id, "device_id": info.device_id,
                 "manifest_sha256": sha, "segment_count": upload.segment_count},
            )  # fmt: skip
        return self.status(upload.id)

    def status(self, upload_id: str) -> UploadStatus:
        upload = self._upload(upload_id)
        return UploadStatus(
            upload,
            self.metadata.expected_segments(upload_id),
            self.metadata.acknowledged(upload_id),
        )

    def _upload(self, upload_id: str) -> Upload:
        upload = self.metadata.upload(upload_id)
        if upload is None:
            raise NotFound(f"upload {upload_id} does not exist: create it with POST /v1/uploads")
        return upload

    def put_segment(self, upload_id: str, index: int, data: bytes, actor: str) -> None:
        """Store one segment if it is exactly what the signed manifest lists; repeats are fine."""
        with self._refusals(actor, f"put segment {index}"):
            upload = self._upload(upload_id)
            expected = self._expected(upload, index)
            if len(data) != expected.size:
                raise VerificationFailed(
                    f"segment {index} is {len(data)} bytes, the signed manifest says "
                    f"{expected.size}: send the file exactly as it is in the clip folder"
                )
            sha = sha256_hex(data)
            if sha != expected.cipher_sha256:
                raise VerificationFailed(
                    f"segment {index} does not match the sha256 in the signed manifest: "
                    "it was altered; send the original file"
                )
            key = segment_key(upload.manifest_sha256, index)
            repeat = self.metadata.is_acknowledged(upload_id, index) and self.blobs.exists(key)
            if not repeat:
                self.blobs.put(key, data, sha)
                self.metadata.acknowledge(upload_id, index)
            self._audit.record(
                actor, "segment.received",
                {"upload_id": upload_id, "index": index, "sha256": sha, "repeat": repeat},
            )  # fmt: skip

    def _expected(self, upload: Upload, index: int) -> ExpectedSegment:
        segment = self.metadata.expected_segment(upload.id, index)
        if segment is not None:
            return segment
        listed = f"segments 0..{upload.segment_count - 1}" if upload.segment_count else "none"
        raise BadRequest(
            f"segment {index} is out of range: the manifest of upload {upload.id} lists {listed}"
        )

    def complete(self, upload_id: str, actor: str) -> Receipt:
        """Verify the whole clip again and return the store's signed receipt for it."""
        with self._refusals(actor, "complete"), self._lock:
            return self._complete(self._upload(upload_id), actor)

    def _complete(self, upload: Upload, actor: str) -> Receipt:
        if upload.evidence_id is not None:
            self._audit.record(actor, "receipt.reissued", {"evidence_id": upload.evidence_id})
            return self._stored_receipt(upload.evidence_id)
        status = self.status(upload.id)
        if status.missing:
            shown = ", ".join(map(str, status.missing[:10]))
            more = f" and {len(status.missing) - 10} more" if len(status.missing) > 10 else ""
            raise Conflict(
                f"upload {upload.id} is missing segments {shown}{more}: send them, then complete"
            )
        manifest_bytes = self._manifest(upload.manifest_sha256)
        source = BlobSegments(
            self.blobs, upload.manifest_sha256, [s.index for s in status.segments]
        )
        report = verify_clip(source, manifest_bytes, self.devices.key_for(upload.device_id))
        if not report.ok:
            first = report.first_failure
            shown = first.describe() if first else "nothing was checked"
            raise VerificationFailed(f"the stored clip does not verify: {shown}; upload it again")
        existing = self.metadata.evidence_for_manifest(upload.manifest_sha256)
        if existing is not None:
            self.metadata.finish_upload(upload.id, existing.id)
            return self._stored_receipt(existing.id)
        return self._store(upload, manifest_bytes, actor)

    def _store(self, upload: Upload, manifest_bytes: bytes, actor: str) -> Receipt:
        receipt = issue_receipt(
            self._key, manifest_bytes, evidence_id=self._new_id(), stored_at_ns=self._wall_ns()
        )
        header = parse_manifest(manifest_bytes).header
        evidence = Evidence(
            receipt.evidence_id, upload.manifest_sha256, upload.clip_id, upload.device_id,
            header.info.officer_id, upload.segment_count, receipt.byte_count, receipt.stored_at_ns,
        )  # fmt: skip
        category = self.policy.default_category
        retention = Retention(
            evidence.id, category, self.policy.expires_at_ns(category, evidence.stored_at_ns),
            actor, evidence.stored_at_ns,
        )  # fmt: skip
        # Locked before it is recorded, so stored evidence never lacks its object lock.
        retain_clip(self.blobs, upload.manifest_sha256, retention.expires_at_ns)
        try:
            self.metadata.add_evidence(evidence, receipt.to_bytes(), upload.id, retention)
        except Conflict:
            # Another API process stored this manifest since we looked: its receipt stands.
            winner = self.metadata.evidence_for_manifest(upload.manifest_sha256)
            if winner is None:
                raise
            self._audit.record(actor, "receipt.reissued", {"evidence_id": winner.id})
            return self._stored_receipt(winner.id)
        self._audit.record(
            actor, "evidence.stored",
            {"evidence_id": evidence.id, "upload_id": upload.id, "clip_id": evidence.clip_id,
             "manifest_sha256": evidence.manifest_sha256, "byte_count": evidence.byte_count,
             "category": category, "expires_at_ns": retention.expires_at_ns},
        )  # fmt: skip
        self._audit.checkpoint()  # a receipt is a custody hand-over: sign the log up to it
        return receipt

    @property
    def audit(self) -> StoreAudit:
        return self._audit

    @property
    def store_key(self) -> Ed25519PrivateKey:
        """The receipt signing key (file receipts are signed with it too)."""
        return self._key

    @property
    def wall_ns(self) -> Callable[[], int]:
        return self._wall_ns

    def _manifest(self, manifest_sha256: str) -> bytes:
        data = self.blobs.get(manifest_key(manifest_sha256))
        if data is None:
            raise StoreSetupError(f"the stored manifest {manifest_sha256} is missing from blobs")
        return data

    def _stored_receipt(self, evidence_id: str) -> Receipt:
        data = self.metadata.receipt(evidence_id)
        if data is None:
            raise NotFound(f"evidence {evidence_id} does not exist")
        return parse_receipt(data)

    # Reading stored evidence: every access is an audit record naming who.

    def list_evidence(self, actor: str, *, limit: int = 100, offset: int = 0) -> list[Evidence]:
        found = self.metadata.list_evidence(limit=limit, offset=offset)
        self._audit.record(actor, "evidence.listed", {"count": len(found), "offset": offset})
        return found

    def _evidence(self, evidence_id: str) -> Evidence:
        evidence = self.metadata.evidence(evidence_id)
        if evidence is None:
            raise NotFound(f"evidence {evidence_id} does not exist: list it with GET /v1/evidence")
        return evidence

    def receipt(self, evidence_id: str, actor: str) -> Receipt:
        self._evidence(evidence_id)
        self._audit.record(actor, "receipt.viewed", {"evidence_id": evidence_id})
        return self._stored_receipt(evidence_id)

    def manifest(self, evidence_id: str, actor: str) -> bytes:
        evidence = self._evidence(evidence_id)
        self._audit.record(
            actor, "evidence.downloaded", {"evidence_id": evidence_id, "part": "manifest"}
        )
        return self._manifest(evidence.manifest_sha256)

    def segment(self, evidence_id: str, index: int, actor: str) -> bytes:
        evidence = self._evidence(evidence_id)
        if not 0 <= index < evidence.segment_count:
            raise NotFound(f"evidence {evidence_id} has no segment {index}")
        data = self.blobs.get(segment_key(evidence.manifest_sha256, index))
        if data is None:
            raise StoreSetupError(
                f"segment {index} of evidence {evidence_id} is missing from blobs"
            )
        self._audit.record(
            actor, "evidence.downloaded", {"evidence_id": evidence_id, "part": f"segment {index}"}
        )
        return data
