"""Test vectors for the release-signed formats: firmware bundles and configuration profiles.

Part of ``python -m custody.vectors`` (see :mod:`custody.vectors`). The release key here is
public: never use it for anything.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from custody import firmware_bundle, profile
from custody.canonical import b64e, canonical_bytes, sha256_hex
from custody.keys import key_id

RELEASE_SEED = bytes(range(31, -1, -1))
OTHER_SEED = bytes(32)  #: a key nobody trusts, for the "wrong key" case
PAYLOAD = {
    "bin/bwc-firmware": b"#!/bin/sh\nexec python3 -m device.firmware\n",
    "lib/device.tar": b"\x00" * 40 + b"device code",
    "VERSION": b"1.2.0\n",
}
SETTINGS: dict[str, Any] = {
    "pre_event_ms": 30_000,
    "pre_event_audio": False,
    "video_width": 1920,
    "video_height": 1080,
    "video_fps": 30,
    "trigger_kinds": ["holster", "lightbar", "peer"],
    "trigger_registry_sha256": sha256_hex(b"trigger registry file"),
    "feedback": {"reminder": {"haptic_ms": [200], "buzzer_ms": [80, 120, 80]}},
    "storage_low_bytes": 2 * 1024**3,
    "storage_reserve_bytes": 16 * 1024**2,
    "officer_id": "officer-1187",
}


def release() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(RELEASE_SEED)


def bundle_bytes(key: Ed25519PrivateKey | None, **changes: Any) -> bytes:
    entries = [
        firmware_bundle.FileEntry(path, len(data), sha256_hex(data))
        for path, data in PAYLOAD.items()
    ]
    fields: dict[str, Any] = {
        "firmware_version": "1.2.0", "target": "sim", "min_version": "1.0.0",
        "notes": "Fixes the reminder tone.\n", "created_at_ns": 1_700_100_000_000_000_000,
    }  # fmt: skip
    header = firmware_bundle.make_header(entries, **{**fields, **changes})
    if key is not None:
        unsigned = dataclasses.replace(header, release_key_id=key_id(key))
        header = dataclasses.replace(unsigned, signature=key.sign(unsigned.signed_message()))
    return header.to_line() + b"".join(PAYLOAD[entry.path] for entry in header.files)


def firmware_vectors() -> dict[str, Any]:
    valid = bundle_bytes(release())
    header_line = valid.split(b"\n", 1)[0]
    header = firmware_bundle.parse_header(header_line)
    tampered = valid[:-1] + bytes([valid[-1] ^ 0x01])
    return {
        "release_private_seed_hex": RELEASE_SEED.hex(),
        "release_key_id": key_id(release()),
        "payload_hex": {path: data.hex() for path, data in PAYLOAD.items()},
        "header_line": header_line.decode(),
        "signed_message_hex": header.signed_message().hex(),
        "signature_b64url": b64e(header.signature),
        "bundle_hex": valid.hex(),
        "bundle_sha256": sha256_hex(valid),
        "invalid": [
            {"case": "unsigned", "bundle_hex": bundle_bytes(None).hex(), "check": "signer"},
            {"case": "wrong key", "check": "signer",
             "bundle_hex": bundle_bytes(Ed25519PrivateKey.from_private_bytes(OTHER_SEED)).hex()},
            {"case": "tampered payload", "bundle_hex": tampered.hex(), "check": "payload hashes"},
            {"case": "truncated payload", "bundle_hex": valid[:-3].hex(), "check": "payload size"},
            {"case": "truncated header", "bundle_hex": valid[:100].hex(), "check": "format"},
            {"case": "wrong target", "bundle_hex": valid.hex(), "target": "rpi-zero2w",
             "check": "target"},
            {"case": "below minimum", "bundle_hex": valid.hex(), "current_version": "0.9.9",
             "check": "minimum"},
            {"case": "downgrade", "bundle_hex": valid.hex(), "current_version": "1.10.0",
             "check": "downgrade"},
        ],
    }  # fmt: skip


def profile_bytes(key: Ed25519PrivateKey, settings: dict[str, Any]) -> bytes:
    draft = canonical_bytes({"name": "patrol", "profile_version": 3, "settings": settings})
    return profile.sign_profile(draft, key, created_at_ns=1_700_100_000_000_000_000).to_bytes()


def _resigned(changed: dict[str, Any]) -> bytes:
    """A profile whose settings a validating signer would refuse, signed by the release key."""
    valid = profile.parse_profile(profile_bytes(release(), SETTINGS))
    unsigned = dataclasses.replace(valid, settings=changed, signature=b"")
    signature = release().sign(unsigned.signed_message())
    return dataclasses.replace(unsigned, signature=signature).to_bytes()


def profile_vectors() -> dict[str, Any]:
    data = profile_bytes(release(), SETTINGS)
    parsed = profile.parse_profile(data)
    unsigned = dataclasses.replace(parsed, release_key_id="", signature=b"").to_bytes()
    other = Ed25519PrivateKey.from_private_bytes(OTHER_SEED)
    return {
        "release_private_seed_hex": RELEASE_SEED.hex(),
        "profile": data.decode(),
        "signed_message_hex": parsed.signed_message().hex(),
        "profile_id": parsed.profile_id,
        "invalid": [
            {"case": "unsigned", "profile": unsigned.decode(), "check": "signer"},
            {"case": "wrong key", "profile": profile_bytes(other, SETTINGS).decode(),
             "check": "signer"},
            {"case": "tampered", "check": "signature",
             "profile": data.decode().replace('"officer-1187"', '"officer-1188"')},
            {"case": "unknown key", "check": "settings",
             "profile": _resigned({**SETTINGS, "wifi": True}).decode()},
            {"case": "out of range", "check": "settings",
             "profile": _resigned({**SETTINGS, "pre_event_ms": 121_000}).decode()},
            {"case": "truncated", "profile": data[:-2].decode(), "check": "format"},
        ],
    }  # fmt: skip
