"""Erase: only for a store receipt the camera verifies itself; otherwise not one byte goes."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from custody.audit import verify_audit
from custody.receipt import Receipt
from device.firmware import CLIPS_ROOT
from tests.device.offload_rig import DockedCamera, footage_digest


def erase(docked: DockedCamera, clip_id: str, body: bytes) -> tuple[int, dict[str, object]]:
    answer = docked.request("POST", f"/clips/{clip_id}/erase", data=body)
    return answer.status_code, answer.json()


def audit_records(docked: DockedCamera, event: str) -> list[dict[str, object]]:
    lines = docked.audit_bytes().splitlines()
    return [r for r in map(json.loads, lines) if r["event"] == event]


def test_a_verified_receipt_erases_the_clip_and_leaves_a_signed_audit_record(
    docked: DockedCamera,
) -> None:
    clip_id = docked.sealed[0]
    receipt = docked.receipt(clip_id)
    status, body = erase(docked, clip_id, receipt.to_bytes())
    assert status == 200
    assert body == {"clip_id": clip_id, "erased": True, "evidence_id": receipt.evidence_id}
    assert not docked.folder(clip_id).exists()
    assert clip_id not in [c["clip_id"] for c in docked.get("/clips").json()]
    [record] = audit_records(docked, "clip.erased")
    assert record["data"] == {
        "clip_id": clip_id,
        "evidence_id": receipt.evidence_id,
        "manifest_sha256": receipt.manifest_sha256,
        "store_key_id": receipt.store_key_id,
    }
    report = verify_audit(docked.audit_bytes(), [docked.camera.device_key.public_key()])
    assert report.ok, report.first_failure_text()
    assert report.checkpoints[-1] > int(str(record["seq"]))  # a signature covers the record


def test_erase_leaves_the_other_clips_untouched(docked: DockedCamera) -> None:
    erased, *kept = docked.sealed
    before = {c: footage_digest(docked.folder(c)) for c in kept}
    assert erase(docked, erased, docked.receipt(erased).to_bytes())[0] == 200
    assert sorted(c["clip_id"] for c in docked.get("/clips").json()) == sorted(kept)
    assert {c: footage_digest(docked.folder(c)) for c in kept} == before
    assert docked.camera.verify(kept[-1]).ok  # the clip the firmware recorded


def test_asking_again_after_an_erase_is_answered_from_the_audit_record(
    docked: DockedCamera,
) -> None:
    clip_id = docked.sealed[0]
    receipt = docked.receipt(clip_id).to_bytes()
    first = erase(docked, clip_id, receipt)
    assert erase(docked, clip_id, receipt) == first
    assert len(audit_records(docked, "clip.erased")) == 1


def test_asking_again_with_a_receipt_for_other_data_is_refused(docked: DockedCamera) -> None:
    clip_id, other = docked.sealed[0], docked.sealed[1]
    assert erase(docked, clip_id, docked.receipt(clip_id).to_bytes())[0] == 200
    status, body = erase(docked, clip_id, docked.receipt(other).to_bytes())
    assert status == 422
    assert "receipt refused" in str(body["error"])


def test_an_unknown_clip_is_not_found(docked: DockedCamera) -> None:
    status, body = erase(docked, "0f8c0000-0000-4000-8000-000000000000", b"{}")
    assert status == 404
    assert "no clip" in str(body["error"])


def forged(docked: DockedCamera, clip_id: str) -> bytes:
    receipt = docked.receipt(clip_id)
    signature = bytes([receipt.signature[0] ^ 1]) + receipt.signature[1:]
    return dataclasses.replace(receipt, signature=signature).to_bytes()


def altered(docked: DockedCamera, clip_id: str) -> bytes:
    """The store's genuine receipt with a smaller byte count: the signature no longer holds."""
    receipt = docked.receipt(clip_id)
    return dataclasses.replace(receipt, byte_count=receipt.byte_count - 1).to_bytes()


def for_another_clip(docked: DockedCamera, clip_id: str) -> bytes:
    return docked.receipt(docked.sealed[1]).to_bytes()


def by_an_untrusted_key(docked: DockedCamera, clip_id: str) -> bytes:
    return docked.receipt(clip_id, key=Ed25519PrivateKey.generate()).to_bytes()


def for_other_bytes(docked: DockedCamera, clip_id: str) -> bytes:
    """Genuinely signed by the store, for a manifest that is not the camera's copy."""
    receipt: Receipt = docked.receipt(clip_id)
    unsigned = dataclasses.replace(receipt, manifest_sha256="0" * 64, signature=b"")
    signature = docked.store_key.sign(unsigned.signed_message())
    return dataclasses.replace(unsigned, signature=signature).to_bytes()


REFUSALS: dict[str, tuple[Callable[[DockedCamera, str], bytes], str]] = {
    "no receipt": (lambda d, c: b"", "format"),
    "not json": (lambda d, c: b"erase it, trust me", "format"),
    "forged signature": (forged, "signature"),
    "altered after signing": (altered, "signature"),
    "receipt for another clip": (for_another_clip, "matches manifest"),
    "signed by an untrusted key": (by_an_untrusted_key, "signer"),
    "signed for other bytes": (for_other_bytes, "matches manifest"),
}


@pytest.mark.parametrize("case", REFUSALS, ids=list(REFUSALS))
def test_erase_without_a_valid_receipt_is_refused_and_every_footage_byte_stays(
    docked: DockedCamera, case: str
) -> None:
    make, check = REFUSALS[case]
    clip_id = docked.sealed[0]
    before = footage_digest(docked.storage.root / CLIPS_ROOT)
    status, body = erase(docked, clip_id, make(docked, clip_id))
    assert status == 422
    assert f"{check}:" in str(body["error"])
    assert footage_digest(docked.storage.root / CLIPS_ROOT) == before
    assert clip_id in [c["clip_id"] for c in docked.get("/clips").json()]
    assert audit_records(docked, "clip.erased") == []


def test_erase_before_a_store_key_is_provisioned_is_a_conflict(docked: DockedCamera) -> None:
    (docked.keys_dir / "store.pub.pem").unlink()
    clip_id = docked.sealed[0]
    before = footage_digest(docked.storage.root / CLIPS_ROOT)
    status, body = erase(docked, clip_id, docked.receipt(clip_id).to_bytes())
    assert status == 409
    assert "no evidence-store key" in str(body["error"])
    assert footage_digest(docked.storage.root / CLIPS_ROOT) == before


def test_the_open_clip_is_never_erased(docked: DockedCamera) -> None:
    before = footage_digest(docked.folder(docked.open_clip))
    status, _ = erase(docked, docked.open_clip, b"{}")
    assert status == 404
    assert footage_digest(docked.folder(docked.open_clip)) == before


def test_when_the_audit_record_cannot_be_made_durable_nothing_is_erased(
    docked: DockedCamera,
) -> None:
    clip_id = docked.sealed[0]
    before = footage_digest(docked.storage.root / CLIPS_ROOT)
    docked.camera.storage.fail_fsync(count=1)
    status, body = erase(docked, clip_id, docked.receipt(clip_id).to_bytes())
    assert status == 500
    assert "audit log" in str(body["error"])
    assert footage_digest(docked.storage.root / CLIPS_ROOT) == before
    # the card recovers: the dock's retry erases, with the record this time
    assert erase(docked, clip_id, docked.receipt(clip_id).to_bytes())[0] == 200
    assert [r["data"]["clip_id"] for r in audit_records(docked, "clip.erased")] == [clip_id]
