"""Receipts: the evidence store's signed statement that it holds a clip, byte for byte.

A receipt is one JSON object (docs/formats/receipt.md). Its Ed25519 signature covers
"bwc-receipt-v1" NUL followed by the canonical encoding of every field except ``signature``. The
device erases a clip only for a receipt that verifies with the store key it trusts and whose
hashes match its own manifest.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from custody.canonical import b64d, b64e, canonical_bytes, check_hex, parse_json
from custody.clipid import check_clip_id
from custody.errors import FormatError, UnsupportedVersionError
from custody.keys import key_id
from custody.manifest import manifest_digest
from custody.report import Report
from custody.schema import require_fields, require_non_negative

FORMAT = "bwc-receipt"
VERSION = 1
DOMAIN = b"bwc-receipt-v1\x00"
MAX_RECEIPT_BYTES = 16 * 1024

_SPEC: dict[str, type] = {
    "format": str, "version": int, "evidence_id": str, "clip_id": str, "device_id": str,
    "manifest_sha256": str, "chain_head": str, "byte_count": int, "stored_at_ns": int,
    "store_key_id": str, "signature": str,
}  # fmt: skip


@dataclass(frozen=True)
class Receipt:
    evidence_id: str
    clip_id: str
    device_id: str
    manifest_sha256: str
    chain_head: str
    byte_count: int
    stored_at_ns: int
    store_key_id: str
    signature: bytes = b""

    def unsigned_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": VERSION,
            "evidence_id": self.evidence_id,
            "clip_id": self.clip_id,
            "device_id": self.device_id,
            "manifest_sha256": self.manifest_sha256,
            "chain_head": self.chain_head,
            "byte_count": self.byte_count,
            "stored_at_ns": self.stored_at_ns,
            "store_key_id": self.store_key_id,
        }

    def to_json(self) -> dict[str, Any]:
        return {**self.unsigned_json(), "signature": b64e(self.signature)}

    def to_bytes(self) -> bytes:
        """The receipt file: canonical JSON and a LF."""
        return canonical_bytes(self.to_json()) + b"\n"

    def signed_message(self) -> bytes:
        return DOMAIN + canonical_bytes(self.unsigned_json(), what="receipt")


def is_receipt(obj: dict[str, Any]) -> bool:
    return obj.get("format") == FORMAT


def parse_receipt(data: bytes) -> Receipt:
    """A receipt from its file bytes; whitespace is tolerated, types and fields are not."""
    if len(data) > MAX_RECEIPT_BYTES:
        raise FormatError(
            f"receipt: {len(data)} bytes is more than the {MAX_RECEIPT_BYTES} allowed"
        )
    obj = parse_json(data.strip(), what="receipt", canonical=False)
    if not is_receipt(obj):
        raise FormatError(f"receipt: not a bwc receipt (format {FORMAT!r})")
    if obj.get("version") != VERSION:
        raise UnsupportedVersionError(
            f"receipt format version {obj.get('version')!r} is not supported "
            f"(this bwc reads version {VERSION}): upgrade bwc"
        )
    require_fields(obj, _SPEC, "receipt")
    require_non_negative(obj, ("byte_count", "stored_at_ns"), "receipt")
    return Receipt(
        evidence_id=obj["evidence_id"],
        clip_id=check_clip_id(obj["clip_id"], what="receipt.clip_id"),
        device_id=obj["device_id"],
        manifest_sha256=check_hex(obj["manifest_sha256"], what="receipt.manifest_sha256", chars=64),
        chain_head=check_hex(obj["chain_head"], what="receipt.chain_head", chars=64),
        byte_count=obj["byte_count"],
        stored_at_ns=obj["stored_at_ns"],
        store_key_id=check_hex(obj["store_key_id"], what="receipt.store_key_id", chars=16),
        signature=b64d(obj["signature"], what="receipt.signature", size=64),
    )


def issue_receipt(
    store_key: Ed25519PrivateKey, manifest: bytes, *, evidence_id: str, stored_at_ns: int
) -> Receipt:
    """The store's receipt for a sealed manifest (and the segments it lists)."""
    digest = manifest_digest(manifest)
    unsigned = Receipt(
        evidence_id=evidence_id,
        clip_id=digest.clip_id,
        device_id=digest.device_id,
        manifest_sha256=digest.manifest_sha256,
        chain_head=digest.chain_head,
        byte_count=digest.byte_count,
        stored_at_ns=stored_at_ns,
        store_key_id=key_id(store_key),
    )
    return dataclasses.replace(unsigned, signature=store_key.sign(unsigned.signed_message()))


def verify_receipt(
    receipt: Receipt | bytes, store_key: Ed25519PublicKey, manifest: bytes | None = None
) -> Report:
    """Check the store's signature and, given the manifest, that the receipt is for it."""
    report = Report("receipt")
    if isinstance(receipt, bytes):
        try:
            receipt = parse_receipt(receipt)
        except FormatError as exc:
            report.failed("format", str(exc))
            return report
        report.passed("format", f"receipt version {VERSION} for evidence {receipt.evidence_id}")
    check_store_signature(
        report, receipt.store_key_id, receipt.signature, receipt.signed_message(), store_key
    )
    if manifest is not None:
        _check_matches(report, receipt, manifest)
    return report


def check_store_signature(
    report: Report,
    signer_key_id: str,
    signature: bytes,
    message: bytes,
    store_key: Ed25519PublicKey,
) -> None:
    """Add the ``signer`` and ``signature`` checks of a document signed by the store key."""
    trusted = key_id(store_key)
    if signer_key_id != trusted:
        report.failed(
            "signer",
            f"signed by an unknown key: the receipt names store key {signer_key_id}, "
            f"the trusted store key is {trusted}",
        )
    else:
        report.passed("signer", f"store key {trusted}")
    try:
        store_key.verify(signature, message)
    except InvalidSignature:
        report.failed(
            "signature", "the receipt's Ed25519 signature does not verify: forged or altered"
        )
    else:
        report.passed("signature", f"Ed25519 by store key {trusted}")


def _check_matches(report: Report, receipt: Receipt, manifest: bytes) -> None:
    try:
        digest = manifest_digest(manifest)
    except FormatError as exc:
        report.failed("manifest", f"cannot compare: {exc}")
        return
    fields = ("clip_id", "device_id", "manifest_sha256", "chain_head", "byte_count")
    wrong = [f for f in fields if getattr(receipt, f) != getattr(digest, f)]
    if wrong:
        shown = "; ".join(
            f"{f} {getattr(receipt, f)} but manifest has {getattr(digest, f)}" for f in wrong
        )
        report.failed("matches manifest", f"the receipt is for other data: {shown}")
    else:
        report.passed("matches manifest", f"clip {digest.clip_id}, {digest.byte_count} bytes")


def require_valid_receipt(
    receipt: Receipt | bytes, store_key: Ed25519PublicKey, manifest: bytes
) -> Receipt:
    """The parsed receipt if it is signed by ``store_key`` and matches ``manifest``; else raise."""
    verify_receipt(receipt, store_key, manifest).raise_for_failure()
    return receipt if isinstance(receipt, Receipt) else parse_receipt(receipt)
