"""File receipts: the evidence store's signed statement that it holds a foreign file, byte for byte.

A foreign file (an export of another maker's mass-storage camera) has no manifest, so a clip
receipt cannot describe it. A file receipt binds what the store re-hashed (SHA-256 and size) to
the file's original name, the dock that submitted it and the time it was stored. It is one JSON
object (docs/formats/file-receipt.md), signed with the store key under its own domain label
"bwc-file-receipt-v1" NUL, so it can never pass for a clip receipt (or the other way round).
"""

from __future__ import annotations

import dataclasses
import unicodedata
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from custody.canonical import b64d, b64e, canonical_bytes, check_hex, parse_json
from custody.errors import FormatError, UnsupportedVersionError
from custody.keys import key_id
from custody.receipt import check_store_signature
from custody.report import Report
from custody.schema import require_fields, require_non_negative

FORMAT = "bwc-file-receipt"
VERSION = 1
DOMAIN = b"bwc-file-receipt-v1\x00"
MAX_FILE_RECEIPT_BYTES = 16 * 1024
MAX_NAME_BYTES = 255  # a file name on every file system the store's exports come from

_SPEC: dict[str, type] = {
    "format": str, "version": int, "evidence_id": str, "sha256": str, "size": int, "name": str,
    "submitted_by": str, "stored_at_ns": int, "store_key_id": str, "signature": str,
}  # fmt: skip


def check_file_name(name: object, *, what: str = "file name") -> str:
    """A file's original name: one path component, printable, at most 255 UTF-8 bytes.

    The name is metadata only (never a path anywhere), but it is refused unless it could be a
    plain file name, so that nobody downstream is tempted into a path escape.
    """
    if not isinstance(name, str) or not name:
        raise FormatError(f"{what}: expected a non-empty string")
    if len(name.encode("utf-8", "surrogatepass")) > MAX_NAME_BYTES:
        raise FormatError(f"{what}: more than {MAX_NAME_BYTES} bytes")
    if name in (".", "..") or "/" in name or "\\" in name:
        raise FormatError(f"{what}: {name!r} is not a plain file name (no folders, no . or ..)")
    if any(unicodedata.category(c) in ("Cc", "Cs") for c in name):
        raise FormatError(f"{what}: {name!r} holds control characters")
    return name


@dataclass(frozen=True)
class FileReceipt:
    evidence_id: str
    sha256: str
    size: int
    name: str
    submitted_by: str
    stored_at_ns: int
    store_key_id: str
    signature: bytes = b""

    def unsigned_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": VERSION,
            "evidence_id": self.evidence_id,
            "sha256": self.sha256,
            "size": self.size,
            "name": self.name,
            "submitted_by": self.submitted_by,
            "stored_at_ns": self.stored_at_ns,
            "store_key_id": self.store_key_id,
        }

    def to_json(self) -> dict[str, Any]:
        return {**self.unsigned_json(), "signature": b64e(self.signature)}

    def to_bytes(self) -> bytes:
        """The receipt file: canonical JSON and a LF."""
        return canonical_bytes(self.to_json()) + b"\n"

    def signed_message(self) -> bytes:
        return DOMAIN + canonical_bytes(self.unsigned_json(), what="file receipt")


def parse_file_receipt(data: bytes) -> FileReceipt:
    """A file receipt from its bytes; whitespace is tolerated, types and fields are not."""
    if len(data) > MAX_FILE_RECEIPT_BYTES:
        raise FormatError(
            f"file receipt: {len(data)} bytes is more than the {MAX_FILE_RECEIPT_BYTES} allowed"
        )
    obj = parse_json(data.strip(), what="file receipt", canonical=False)
    if obj.get("format") != FORMAT:
        raise FormatError(f"file receipt: not a bwc file receipt (format {FORMAT!r})")
    if obj.get("version") != VERSION:
        raise UnsupportedVersionError(
            f"file receipt format version {obj.get('version')!r} is not supported "
            f"(this bwc reads version {VERSION}): upgrade bwc"
        )
    require_fields(obj, _SPEC, "file receipt")
    require_non_negative(obj, ("size", "stored_at_ns"), "file receipt")
    for field in ("evidence_id", "submitted_by"):
        if not obj[field]:
            raise FormatError(f"file receipt: field {field} must not be empty")
    return FileReceipt(
        evidence_id=obj["evidence_id"],
        sha256=check_hex(obj["sha256"], what="file receipt.sha256", chars=64),
        size=obj["size"],
        name=check_file_name(obj["name"], what="file receipt.name"),
        submitted_by=obj["submitted_by"],
        stored_at_ns=obj["stored_at_ns"],
        store_key_id=check_hex(obj["store_key_id"], what="file receipt.store_key_id", chars=16),
        signature=b64d(obj["signature"], what="file receipt.signature", size=64),
    )


def issue_file_receipt(
    store_key: Ed25519PrivateKey,
    *,
    evidence_id: str,
    sha256: str,
    size: int,
    name: str,
    submitted_by: str,
    stored_at_ns: int,
) -> FileReceipt:
    """The store's receipt for a file it re-hashed and stored."""
    unsigned = FileReceipt(
        evidence_id=evidence_id,
        sha256=check_hex(sha256, what="sha256", chars=64),
        size=size,
        name=check_file_name(name),
        submitted_by=submitted_by,
        stored_at_ns=stored_at_ns,
        store_key_id=key_id(store_key),
    )
    return dataclasses.replace(unsigned, signature=store_key.sign(unsigned.signed_message()))


def verify_file_receipt(
    receipt: FileReceipt | bytes,
    store_key: Ed25519PublicKey,
    *,
    sha256: str | None = None,
    size: int | None = None,
) -> Report:
    """Check the store's signature and, given them, that the receipt is for this hash and size."""
    report = Report("file receipt")
    if isinstance(receipt, bytes):
        try:
            receipt = parse_file_receipt(receipt)
        except FormatError as exc:
            report.failed("format", str(exc))
            return report
        report.passed("format", f"file receipt version {VERSION} for {receipt.evidence_id}")
    check_store_signature(
        report, receipt.store_key_id, receipt.signature, receipt.signed_message(), store_key
    )
    if sha256 is not None or size is not None:
        wrong = [
            f"{field} {got} but the file has {want}"
            for field, got, want in (
                ("sha256", receipt.sha256, sha256),
                ("size", receipt.size, size),
            )
            if want is not None and got != want
        ]
        if wrong:
            report.failed("matches file", f"the receipt is for other data: {'; '.join(wrong)}")
        else:
            report.passed("matches file", f"sha256 {receipt.sha256}, {receipt.size} bytes")
    return report


def require_valid_file_receipt(
    receipt: FileReceipt | bytes, store_key: Ed25519PublicKey, *, sha256: str, size: int
) -> FileReceipt:
    """The parsed receipt if it is signed by ``store_key`` for these bytes; else raise."""
    verify_file_receipt(receipt, store_key, sha256=sha256, size=size).raise_for_failure()
    return receipt if isinstance(receipt, FileReceipt) else parse_file_receipt(receipt)
