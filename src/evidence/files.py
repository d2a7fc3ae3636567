"""Foreign files: exports of other makers' cameras, stored byte for byte with a signed receipt.

A dock sends a file's bytes with the SHA-256 and size it computed and the file's original name.
The store re-hashes the bytes while it streams them to the blob store (``files/<sha256>``) and
refuses a mismatch before anything is kept; it then records the file and signs a file receipt
(docs/formats/file-receipt.md). The same bytes sent again get the first receipt back. Files get no
retention category: they are kept indefinitely, never purged by the retention sweep, and on an
Object Lock bucket their blob is locked indefinitely too (docs/evidence.md, "Foreign files").
"""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from custody.canonical import check_hex
from custody.errors import FormatError
from custody.file_receipt import FileReceipt, check_file_name, issue_file_receipt
from custody.file_receipt import parse_file_receipt as parse_receipt
from evidence.audit_log import StoreAudit
from evidence.errors import (
    BadRequest,
    EvidenceError,
    PayloadTooLarge,
    StoreSetupError,
    VerificationFailed,
)
from evidence.ingest import IngestService
from evidence.storage import BlobStore, LockingBlobStore, MetadataStore, StoredFile, file_key

MAX_FILE_BYTES = 64 * 1024**3  # a day of another maker's 4K footage, with room to spare
_MAX_REASON = 500  # characters of a refusal kept in the audit record


class FileService:
    def __init__(
        self,
        metadata: MetadataStore,
        blobs: BlobStore,
        store_key: Ed25519PrivateKey,
        audit: StoreAudit,
        *,
        wall_ns: Callable[[], int] = time.time_ns,
        new_id: Callable[[], str] = lambda: str(uuid.uuid4()),
    ) -> None:
        self.metadata, self.blobs = metadata, blobs
        self._key, self._audit = store_key, audit
        self._wall_ns, self._new_id = wall_ns, new_id

    @classmethod
    def beside(cls, service: IngestService) -> FileService:
        """The file service over the ingest service's stores, key, audit log and clock."""
        return cls(
            service.metadata, service.blobs, service.store_key, service.audit,
            wall_ns=service.wall_ns,
        )  # fmt: skip

    @contextmanager
    def _refusals(self, actor: str) -> Iterator[None]:
        try:
            yield
        except EvidenceError as exc:
            reason = str(exc)[:_MAX_REASON]
            self._audit.record(actor, "file.refused", {"reason": reason})
            raise

    def store(
        self, chunks: Iterable[bytes], *, sha256: str, size: int, name: str, actor: str
    ) -> tuple[FileReceipt, bool]:
        """Store the file whose bytes ``chunks`` yields, or find it stored.

        Its receipt, and whether this call stored it (False: the same bytes were stored before).
        """
        with self._refusals(actor):
            _check_declared(sha256, size, name)
            body = _exactly(chunks, size)
            existing = self.metadata.file_for_sha256(sha256)
            if existing is not None:
                if _sha256_of(body) != sha256:
                    raise VerificationFailed(_MISMATCH)
                return self._again(existing, actor), False
            key = file_key(sha256)
            self.blobs.put_stream(key, body, sha256)  # refuses a mismatch, keeping nothing
            if isinstance(self.blobs, LockingBlobStore):
                self.blobs.retain(key, None)  # files are kept indefinitely (module docstring)
            receipt = issue_file_receipt(
                self._key, evidence_id=self._new_id(), sha256=sha256, size=size, name=name,
                submitted_by=actor, stored_at_ns=self._wall_ns(),
            )  # fmt: skip
            kept = self.metadata.add_file(_record(receipt), receipt.to_bytes())
            if kept.evidence_id != receipt.evidence_id:  # another request stored it first
                return self._again(kept, actor), False
        self._audit.record(
            actor, "file.stored",
            {"evidence_id": kept.evidence_id, "sha256": sha256, "size": size, "name": name},
        )  # fmt: skip
        self._audit.checkpoint()  # a receipt is a custody hand-over: sign the log up to it
        return receipt, True

    def _again(self, stored: StoredFile, actor: str) -> FileReceipt:
        data = self.metadata.file_receipt(stored.evidence_id)
        if data is None:
            raise StoreSetupError(f"the receipt of file {stored.evidence_id} is missing")
        self._audit.record(actor, "file.receipt_reissued", {"evidence_id": stored.evidence_id})
        return parse_receipt(data)

    def list_files(self, actor: str, *, limit: int = 100, offset: int = 0) -> list[StoredFile]:
        found = self.metadata.list_files(limit=limit, offset=offset)
        self._audit.record(actor, "files.listed", {"count": len(found), "offset": offset})
        return found


_MISMATCH = "the file's bytes do not match the declared SHA-256: nothing was stored; send it again"


def _check_declared(sha256: str, size: int, name: str) -> None:
    try:
        check_hex(sha256, what="the declared SHA-256", chars=64)
        check_file_name(name, what="the file name")
    except FormatError as exc:
        raise BadRequest(str(exc)) from exc
    if size < 0:
        raise BadRequest(f"the declared size {size} is negative")
    if size > MAX_FILE_BYTES:
        raise PayloadTooLarge(f"the file is {size} bytes, more than the {MAX_FILE_BYTES} allowed")


def _exactly(chunks: Iterable[bytes], size: int) -> Iterator[bytes]:
    """The chunks, refused as soon as they pass ``size`` bytes, or at the end if short of it."""
    seen = 0
    for chunk in chunks:
        seen += len(chunk)
        if seen > size:
            raise VerificationFailed(f"the file is longer than the declared {size} bytes")
        yield chunk
    if seen != size:
        raise VerificationFailed(f"the file is {seen} bytes, not the declared {size}")


def _sha256_of(chunks: Iterable[bytes]) -> str:
    digest = hashlib.sha256()
    for chunk in chunks:
        digest.update(chunk)
    return digest.hexdigest()


def _record(receipt: FileReceipt) -> StoredFile:
    return StoredFile(
        receipt.evidence_id, receipt.sha256, receipt.size, receipt.name, receipt.submitted_by,
        receipt.stored_at_ns,
    )  # fmt: skip
