"""Test vectors for docs/formats/vectors/: fixed keys, nonces and inputs, and our outputs.

Run ``python -m custody.vectors docs/formats/vectors`` to regenerate. The tests check that the
files equal what this module builds and that each vector verifies, so another implementation
can be checked against the same files. Every secret here is public: never use these keys.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from custody import audit, envelope, file_receipt, manifest, receipt, segment, trigger
from custody.canonical import b64e, canonical_bytes, sha256_hex
from custody.clipid import clip_id_bytes
from custody.keys import key_id, private_pem, public_pem, raw_public
from custody.manifest import ClipHeader, ClipInfo, EventRecord, SegmentRecord
from custody.manifest_writer import ManifestWriter, seal_message
from custody.vectors_release import firmware_vectors, profile_vectors

DEVICE_SEED = bytes(range(0, 32))
AGENCY_SEED = bytes(range(32, 64))
STORE_SEED = bytes(range(64, 96))
DOCK_SEED = bytes(range(96, 128))
EPHEMERAL_SEED = bytes(range(128, 160))
DATA_KEY = bytes(range(160, 192))
WRAP_NONCE = bytes.fromhex("f0f1f2f3f4f5f6f7f8f9fafb")
CLIP_ID = "00112233-4455-4677-8899-aabbccddeeff"
PLAINTEXTS = [b"segment 0: first GOP", b"segment 1: second GOP", b""]
INFO = ClipInfo(
    device_id="cam-0042",
    device_serial="BWC1-000042",
    officer_id="officer-1187",
    firmware_version="0.1.0",
    start_wall_ns=1_700_000_000_000_000_000,
    start_monotonic_ns=12_000_000_000,
    time_sync_offset_ns=-3_500_000,
    triggers=({"kind": "holster", "source": "a1b2c3d4", "counter": 17},),
    pre_event_ns=30_000_000_000,
)
TRIGGER_AGENCY_SECRET = bytes(range(192, 224))
TRIGGER_SOURCES = {  # source id: secret
    0x1A2B3C4D: bytes(range(224, 256)),  # a holster sensor
    0x00C0FFEE: bytes(range(255, 223, -1)),  # a peer camera
}
TRIGGER_CASES = [  # (event, salt)
    (trigger.TriggerEvent(0x1A2B3C4D, trigger.EventType.HOLSTER, 17), bytes.fromhex("5a17e3")),
    (trigger.TriggerEvent(0x1A2B3C4D, trigger.EventType.HOLSTER, 18), bytes.fromhex("0b99c4")),
    (
        trigger.TriggerEvent(
            0x00C0FFEE, trigger.EventType.PEER_RECORDING, 4_000_000_001, incident=0xA1B2C3, hop=1
        ),
        bytes.fromhex("000000"),
    ),
    (
        trigger.TriggerEvent(
            0x00C0FFEE, trigger.EventType.TEST, 2**32 - 1, incident=2**24 - 1, hop=7
        ),
        bytes.fromhex("ffffff"),
    ),
]
EVENTS = {
    1: EventRecord("gnss", 1_700_000_000_500_000_000, 12_500_000_000,
                   {"lat_e7": 515_007_592, "lon_e7": -1_246_354, "accuracy_mm": 4_500}),
    2: EventRecord("marker", 1_700_000_001_200_000_000, 13_200_000_000,
                   {"gesture": "single-press"}),
}  # fmt: skip


def segment_nonce(index: int) -> bytes:
    return bytes([0xA0 + index]) * segment.NONCE_SIZE


def device() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(DEVICE_SEED)


def agency() -> X25519PrivateKey:
    return X25519PrivateKey.from_private_bytes(AGENCY_SEED)


def store() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(STORE_SEED)


def keys_vectors() -> dict[str, Any]:
    seeds = {"device": DEVICE_SEED, "agency": AGENCY_SEED, "store": STORE_SEED, "dock": DOCK_SEED}
    result: dict[str, Any] = {}
    for role, seed in seeds.items():
        key: Ed25519PrivateKey | X25519PrivateKey = (
            X25519PrivateKey.from_private_bytes(seed)
            if role == "agency"
            else Ed25519PrivateKey.from_private_bytes(seed)
        )
        result[role] = {
            "algorithm": "X25519" if role == "agency" else "Ed25519",
            "private_seed_hex": seed.hex(),
            "public_raw_b64url": b64e(raw_public(key)),
            "key_id": key_id(key),
            "private_pem": private_pem(key).decode(),
            "public_pem": public_pem(key).decode(),
        }
    return result


def canonical_vectors() -> dict[str, Any]:
    valid = [
        {"b": 2, "a": 1},
        {"z": [3, {"y": None, "x": True}], "officer": "Zoë", "n": -9223372036854775808},
        {"quote": 'say "hi"\n', "tab": "\t", "ctl": "\u0001", "emoji": "\U0001f4f9"},
    ]
    return {
        "valid": [
            {"input": json.dumps(v, ensure_ascii=True), "canonical": canonical_bytes(v).decode()}
            for v in valid
        ],
        "invalid": [
            {"input": '{"lat":51.5}', "reason": "float"},
            {"input": '{"t":1e9}', "reason": "float (exponent form)"},
            {"input": '{"n":9223372036854775808}', "reason": "integer beyond signed 64 bits"},
            {"input": '{"a":1,"a":2}', "reason": "duplicate key"},
            {"input": '{"a":NaN}', "reason": "NaN"},
        ],
    }


def segment_vectors() -> dict[str, Any]:
    cases = []
    for index, plaintext in enumerate(PLAINTEXTS):
        blob = segment.seal_segment(DATA_KEY, CLIP_ID, index, plaintext, nonce=segment_nonce(index))
        cases.append({
            "index": index,
            "nonce_hex": segment_nonce(index).hex(),
            "plaintext_hex": plaintext.hex(),
            "aad_hex": (blob[: segment.HEADER_SIZE] + clip_id_bytes(CLIP_ID)).hex(),
            "segment_hex": blob.hex(),
            "plain_sha256": sha256_hex(plaintext),
            "cipher_sha256": sha256_hex(blob),
        })  # fmt: skip
    return {"data_key_hex": DATA_KEY.hex(), "clip_id": CLIP_ID, "cases": cases}


def keywrap_vectors() -> dict[str, Any]:
    ephemeral = X25519PrivateKey.from_private_bytes(EPHEMERAL_SEED)
    recipient = agency()
    shared = ephemeral.exchange(recipient.public_key())
    epk, rpk = raw_public(ephemeral), raw_public(recipient)
    wrapped = envelope.wrap_data_key(
        DATA_KEY, recipient.public_key(), CLIP_ID, ephemeral_key=ephemeral, nonce=WRAP_NONCE
    )
    return {
        "agency_private_seed_hex": AGENCY_SEED.hex(),
        "ephemeral_private_seed_hex": EPHEMERAL_SEED.hex(),
        "clip_id": CLIP_ID,
        "data_key_hex": DATA_KEY.hex(),
        "nonce_hex": WRAP_NONCE.hex(),
        "shared_secret_hex": shared.hex(),
        "hkdf_salt_hex": (epk + rpk).hex(),
        "hkdf_info_hex": (envelope.INFO_LABEL + clip_id_bytes(CLIP_ID)).hex(),
        "kek_hex": envelope.derive_kek(shared, epk, rpk, CLIP_ID).hex(),
        "aad_hex": clip_id_bytes(CLIP_ID).hex(),
        "wrapped": wrapped.to_json(),
    }


def build_manifest() -> tuple[bytes, dict[int, bytes]]:
    ephemeral = X25519PrivateKey.from_private_bytes(EPHEMERAL_SEED)
    wrapped = envelope.wrap_data_key(
        DATA_KEY, agency().public_key(), CLIP_ID, ephemeral_key=ephemeral, nonce=WRAP_NONCE
    )
    lines: list[bytes] = []
    writer = ManifestWriter.start(
        lines.append, ClipHeader(CLIP_ID, raw_public(device()), wrapped, INFO)
    )
    segments: dict[int, bytes] = {}
    for index, plaintext in enumerate(PLAINTEXTS):
        if index in EVENTS:
            writer.add_event(EVENTS[index])
        blob = segment.seal_segment(DATA_KEY, CLIP_ID, index, plaintext, nonce=segment_nonce(index))
        segments[index] = blob
        writer.add_segment(SegmentRecord(
            index, index * 1_000_000_000, (index + 1) * 1_000_000_000,
            sha256_hex(plaintext), sha256_hex(blob), len(blob),
        ))  # fmt: skip
    writer.seal(device(), end_wall_ns=1_700_000_003_000_000_000, end_monotonic_ns=15_000_000_000)
    return b"".join(lines), segments


def manifest_vectors() -> dict[str, Any]:
    data, segments = build_manifest()
    parsed = manifest.parse_manifest(data)
    assert parsed.seal is not None
    digest = manifest.manifest_digest(data)
    return {
        "device_private_seed_hex": DEVICE_SEED.hex(),
        "agency_private_seed_hex": AGENCY_SEED.hex(),
        "manifest_lines": _lines(data),
        "manifest_sha256": digest.manifest_sha256,
        "chain_head": digest.chain_head,
        "body_sha256": parsed.seal.body_sha256,
        "seal_signed_message_hex": seal_message(parsed.seal).hex(),
        "seal_signature_b64url": b64e(parsed.seal.signature),
        "byte_count": digest.byte_count,
        "segments": {f"seg-{i:06d}.bwcs": blob.hex() for i, blob in segments.items()},
        "line_hashes": [sha256_hex(line) for line in parsed.lines],
    }


def receipt_vectors() -> dict[str, Any]:
    data, _ = build_manifest()
    issued = receipt.issue_receipt(
        store(), data, evidence_id="EV-2024-000123", stored_at_ns=1_700_000_900_000_000_000
    )
    return {
        "store_private_seed_hex": STORE_SEED.hex(),
        "manifest_sha256": sha256_hex(data),
        "signed_message_hex": issued.signed_message().hex(),
        "receipt": issued.to_bytes().decode(),
    }


def file_receipt_vectors() -> dict[str, Any]:
    data = b"\x00\x00\x00\x18ftypmp42 another maker's export"
    issued = file_receipt.issue_file_receipt(
        store(),
        evidence_id="FILE-2024-000007",
        sha256=sha256_hex(data),
        size=len(data),
        name="MOV_0001.MP4",
        submitted_by="dock:dock-01",
        stored_at_ns=1_700_000_950_000_000_000,
    )
    return {
        "store_private_seed_hex": STORE_SEED.hex(),
        "file_hex": data.hex(),
        "signed_message_hex": issued.signed_message().hex(),
        "receipt": issued.to_bytes().decode(),
    }


def audit_vectors() -> dict[str, Any]:
    lines: list[bytes] = []
    writer = audit.AuditWriter.start(
        lines.append, device(), actor="device:cam-0042", wall_ns=1_700_000_000_000_000_000,
        monotonic_ns=1_000, checkpoint_every=3,
    )  # fmt: skip
    events = ["state.buffering", "button.double-press", "state.recording", "clip.sealed"]
    for n, event in enumerate(events):
        wall = 1_700_000_000_000_000_000 + n
        writer.append("device:cam-0042", event, {"n": n}, wall_ns=wall, monotonic_ns=2_000 + n)
    writer.checkpoint(
        actor="device:cam-0042", wall_ns=1_700_000_000_100_000_000, monotonic_ns=9_000
    )
    return {
        "signer_private_seed_hex": DEVICE_SEED.hex(),
        "log_lines": _lines(b"".join(lines)),
        "checkpoints": [3, 6],
    }


def trigger_vectors() -> dict[str, Any]:
    encryption_key = trigger.derive_encryption_key(TRIGGER_AGENCY_SECRET)
    cases: list[dict[str, Any]] = []
    for event, salt in TRIGGER_CASES:
        secret = TRIGGER_SOURCES[event.source_id]
        body = trigger.encode_body(event)
        mac = trigger.compute_mac(trigger.derive_mac_key(secret), trigger.VERSION, salt, body)
        payload = trigger.seal_trigger(
            event, source_secret=secret, agency_secret=TRIGGER_AGENCY_SECRET, salt=salt
        )
        cases.append({
            "source_id": event.source_id,
            "event_type": event.event_type.name.lower(),
            "event_type_code": int(event.event_type),
            "hop": event.hop,
            "counter": event.counter,
            "incident": event.incident,
            "salt_hex": salt.hex(),
            "body_hex": body.hex(),
            "mac_input_hex": trigger.mac_input(trigger.VERSION, salt, body).hex(),
            "mac_hex": mac.hex(),
            "chacha20_nonce_hex": trigger.chacha_nonce(trigger.VERSION, salt, mac)[4:].hex(),
            "payload_hex": payload.hex(),
            "manufacturer_ad_hex": _manufacturer_ad(payload).hex(),
        })  # fmt: skip
    valid = bytes.fromhex(cases[0]["payload_hex"])
    other_agency = trigger.seal_trigger(
        TRIGGER_CASES[0][0], source_secret=TRIGGER_SOURCES[0x1A2B3C4D],
        agency_secret=bytes(32), salt=TRIGGER_CASES[0][1],
    )  # fmt: skip
    wrong_source_key = trigger.seal_trigger(
        TRIGGER_CASES[0][0], source_secret=TRIGGER_SOURCES[0x00C0FFEE],
        agency_secret=TRIGGER_AGENCY_SECRET, salt=TRIGGER_CASES[0][1],
    )  # fmt: skip
    unknown_type = _sealed_body(bytes.fromhex("1a2b3c4d06000000ff000000"), b"\x00\x00\x06")

    def flip(offset: int) -> str:
        return (valid[:offset] + bytes([valid[offset] ^ 0x01]) + valid[offset + 1 :]).hex()

    return {
        "company_id": trigger.COMPANY_ID,
        "agency_secret_hex": TRIGGER_AGENCY_SECRET.hex(),
        "encryption_key_hex": encryption_key.hex(),
        "sources": {
            f"{source_id:#010x}": {
                "secret_hex": secret.hex(),
                "mac_key_hex": trigger.derive_mac_key(secret).hex(),
            }
            for source_id, secret in TRIGGER_SOURCES.items()
        },
        "cases": cases,
        "invalid": [
            {"payload_hex": valid[:-1].hex(), "reason": "malformed"},
            {"payload_hex": (valid + b"\x00").hex(), "reason": "malformed"},
            {"payload_hex": (b"\x02" + valid[1:]).hex(), "reason": "version"},
            {"payload_hex": other_agency.hex(), "reason": "unknown_source"},
            {"payload_hex": flip(4), "reason": "unknown_source"},  # a bit of the source id
            {"payload_hex": flip(9), "reason": "bad_mac"},  # a bit of the counter
            {"payload_hex": flip(23), "reason": "unknown_source"},  # the MAC, so the nonce
            {"payload_hex": wrong_source_key.hex(), "reason": "bad_mac"},
            {"payload_hex": unknown_type.hex(), "reason": "malformed"},
        ],
    }


def _sealed_body(body: bytes, salt: bytes) -> bytes:
    """A payload sealed from raw body bytes: how an event type this version lacks would look."""
    mac_key = trigger.derive_mac_key(TRIGGER_SOURCES[0x1A2B3C4D])
    mac = trigger.compute_mac(mac_key, trigger.VERSION, salt, body)
    nonce = trigger.chacha_nonce(trigger.VERSION, salt, mac)
    encryption_key = trigger.derive_encryption_key(TRIGGER_AGENCY_SECRET)
    return (
        bytes([trigger.VERSION]) + salt + trigger.keystream_xor(encryption_key, nonce, body) + mac
    )


def _manufacturer_ad(payload: bytes) -> bytes:
    """The AD structure: length, type 0xFF, company id (little-endian), payload."""
    return bytes([3 + len(payload), 0xFF]) + trigger.COMPANY_ID.to_bytes(2, "little") + payload


def _lines(data: bytes) -> list[str]:
    """A JSON Lines file as its lines (the file is each line followed by LF)."""
    return [line.decode() for line in data.split(b"\n")[:-1]]


def joined(lines: list[str]) -> bytes:
    """The file bytes of ``manifest_lines`` / ``log_lines``."""
    return "".join(line + "\n" for line in lines).encode()


BUILDERS: dict[str, Callable[[], dict[str, Any]]] = {
    "canonical": canonical_vectors,
    "keys": keys_vectors,
    "segment": segment_vectors,
    "keywrap": keywrap_vectors,
    "manifest": manifest_vectors,
    "receipt": receipt_vectors,
    "file-receipt": file_receipt_vectors,
    "audit": audit_vectors,
    "trigger": trigger_vectors,
    "firmware-bundle": firmware_vectors,
    "profile": profile_vectors,
}


def render(vectors: dict[str, Any]) -> str:
    return json.dumps(vectors, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def write_all(folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, build in BUILDERS.items():
        path = folder / f"{name}.json"
        path.write_text(render(build()), encoding="utf-8")
        written.append(path)
    return written


if __name__ == "__main__":
    for path in write_all(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/formats/vectors")):
        print(path)
