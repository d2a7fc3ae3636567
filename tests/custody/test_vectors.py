"""The published test vectors in docs/formats/vectors/ are reproduced and verified by our code."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from custody import vectors
from custody.audit import verify_audit
from custody.canonical import b64d, b64e, canonical_bytes, parse_json, sha256_hex
from custody.clip import MemorySegments
from custody.envelope import WrappedKey, derive_kek, unwrap_data_key
from custody.errors import FormatError
from custody.file_receipt import verify_file_receipt
from custody.keys import key_id, raw_public
from custody.manifest import manifest_digest
from custody.receipt import verify_receipt
from custody.segment import open_segment, seal_segment
from custody.verify import verify_clip

FOLDER = Path(__file__).resolve().parents[2] / "docs" / "formats" / "vectors"


def load(name: str) -> dict[str, Any]:
    result: dict[str, Any] = json.loads((FOLDER / f"{name}.json").read_text(encoding="utf-8"))
    return result


def _seed(hex_seed: str) -> bytes:
    return bytes.fromhex(hex_seed)


@pytest.mark.parametrize("name", sorted(vectors.BUILDERS))
def test_the_vector_file_is_exactly_what_our_implementation_produces(name: str) -> None:
    expected = (FOLDER / f"{name}.json").read_text(encoding="utf-8")
    assert vectors.render(vectors.BUILDERS[name]()) == expected, (
        f"{name}.json differs: run 'python -m custody.vectors docs/formats/vectors' only if the "
        "format changed on purpose (and bump its version)"
    )


def test_canonical_vectors() -> None:
    doc = load("canonical")
    for case in doc["valid"]:
        assert canonical_bytes(json.loads(case["input"])).decode() == case["canonical"]
    for case in doc["invalid"]:
        with pytest.raises(FormatError):
            parse_json(case["input"].encode(), what=case["reason"], canonical=False)


def test_key_vectors() -> None:
    for role, case in load("keys").items():
        seed = _seed(case["private_seed_hex"])
        key = (
            X25519PrivateKey.from_private_bytes(seed)
            if case["algorithm"] == "X25519"
            else Ed25519PrivateKey.from_private_bytes(seed)
        )
        assert b64e(raw_public(key)) == case["public_raw_b64url"], role
        assert key_id(key) == case["key_id"], role
        loaded = serialization.load_pem_private_key(case["private_pem"].encode(), password=None)
        assert isinstance(loaded, Ed25519PrivateKey | X25519PrivateKey)
        assert raw_public(loaded) == raw_public(key)


def test_segment_vectors() -> None:
    doc = load("segment")
    key = bytes.fromhex(doc["data_key_hex"])
    for case in doc["cases"]:
        plaintext, blob = bytes.fromhex(case["plaintext_hex"]), bytes.fromhex(case["segment_hex"])
        nonce = bytes.fromhex(case["nonce_hex"])
        assert seal_segment(key, doc["clip_id"], case["index"], plaintext, nonce=nonce) == blob
        assert open_segment(key, doc["clip_id"], case["index"], blob) == plaintext
        assert sha256_hex(blob) == case["cipher_sha256"]


def test_keywrap_vectors() -> None:
    doc = load("keywrap")
    agency = X25519PrivateKey.from_private_bytes(_seed(doc["agency_private_seed_hex"]))
    wrapped = WrappedKey.from_json(doc["wrapped"])
    assert unwrap_data_key(wrapped, agency, doc["clip_id"]).hex() == doc["data_key_hex"]
    kek = derive_kek(
        bytes.fromhex(doc["shared_secret_hex"]),
        wrapped.ephemeral_public_key,
        raw_public(agency),
        doc["clip_id"],
    )
    assert kek.hex() == doc["kek_hex"]


def test_manifest_vectors_verify_as_a_clip() -> None:
    doc = load("manifest")
    data = vectors.joined(doc["manifest_lines"])
    device = Ed25519PrivateKey.from_private_bytes(_seed(doc["device_private_seed_hex"]))
    agency = X25519PrivateKey.from_private_bytes(_seed(doc["agency_private_seed_hex"]))
    segments = {int(name[4:10]): bytes.fromhex(blob) for name, blob in doc["segments"].items()}
    report = verify_clip(MemorySegments(segments), data, device.public_key(), agency)
    assert report.ok, report.first_failure
    digest = manifest_digest(data)
    assert (digest.manifest_sha256, digest.chain_head, digest.byte_count) == (
        doc["manifest_sha256"],
        doc["chain_head"],
        doc["byte_count"],
    )
    message = bytes.fromhex(doc["seal_signed_message_hex"])
    assert message.startswith(b"bwc-manifest-seal-v1\x00")
    device.public_key().verify(b64d(doc["seal_signature_b64url"], what="signature"), message)


def test_receipt_vectors_verify_against_the_manifest() -> None:
    doc, manifest = load("receipt"), load("manifest")
    store = Ed25519PrivateKey.from_private_bytes(_seed(doc["store_private_seed_hex"]))
    data = vectors.joined(manifest["manifest_lines"])
    report = verify_receipt(doc["receipt"].encode(), store.public_key(), data)
    assert report.ok, report.first_failure
    signature = parse_json(doc["receipt"].encode().strip(), what="receipt")["signature"]
    assert b64e(store.sign(bytes.fromhex(doc["signed_message_hex"]))) == signature


def test_audit_vectors_verify() -> None:
    doc = load("audit")
    signer = Ed25519PrivateKey.from_private_bytes(_seed(doc["signer_private_seed_hex"]))
    report = verify_audit(vectors.joined(doc["log_lines"]), [signer.public_key()])
    assert report.ok, report.first_failure
    assert report.checkpoints == doc["checkpoints"]


def test_file_receipt_vectors_verify_against_the_file() -> None:
    doc = load("file-receipt")
    store = Ed25519PrivateKey.from_private_bytes(_seed(doc["store_private_seed_hex"]))
    data = bytes.fromhex(doc["file_hex"])
    report = verify_file_receipt(
        doc["receipt"].encode(), store.public_key(), sha256=sha256_hex(data), size=len(data)
    )
    assert report.ok, report.first_failure
    signature = parse_json(doc["receipt"].encode().strip(), what="file receipt")["signature"]
    assert b64e(store.sign(bytes.fromhex(doc["signed_message_hex"]))) == signature
