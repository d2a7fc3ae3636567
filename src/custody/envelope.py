"""Wrapping a clip's data key to the agency's X25519 recording key.

An ephemeral X25519 key pair is made per clip; the shared secret with the agency public key goes
through HKDF-SHA256 (salt = ephemeral public key || agency public key, info = "bwc-keywrap-v1" ||
the 16 clip id bytes) to a key-encryption key, which seals the data key with AES-256-GCM (the 16
clip id bytes as associated data). Only the agency private key can unwrap it; the device keeps only
the wrapped form. See docs/formats/keywrap.md.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from custody.canonical import b64d, b64e, check_hex
from custody.clipid import clip_id_bytes
from custody.errors import FormatError, IntegrityError, KeyMismatchError, UnsupportedVersionError
from custody.keys import key_id, raw_public
from custody.segment import DATA_KEY_SIZE, NONCE_SIZE

VERSION = 1
INFO_LABEL = b"bwc-keywrap-v1"
WRAPPED_SIZE = DATA_KEY_SIZE + 16


@dataclass(frozen=True)
class WrappedKey:
    version: int
    recipient: str  # key id of the agency public key
    ephemeral_public_key: bytes
    nonce: bytes
    ciphertext: bytes

    def to_json(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "recipient": self.recipient,
            "ephemeral_public_key": b64e(self.ephemeral_public_key),
            "nonce": b64e(self.nonce),
            "ciphertext": b64e(self.ciphertext),
        }

    @classmethod
    def from_json(cls, obj: object, *, what: str = "wrapped data key") -> WrappedKey:
        if not isinstance(obj, dict):
            raise FormatError(f"{what}: expected a JSON object")
        expected = {"version", "recipient", "ephemeral_public_key", "nonce", "ciphertext"}
        if set(obj) != expected:
            raise FormatError(f"{what}: expected fields {sorted(expected)}, found {sorted(obj)}")
        if obj["version"] != VERSION:
            raise UnsupportedVersionError(
                f"{what}: key wrap version {obj['version']!r} is not supported (this reads 1)"
            )
        return cls(
            version=VERSION,
            recipient=check_hex(obj["recipient"], what=f"{what}.recipient", chars=16),
            ephemeral_public_key=b64d(
                obj["ephemeral_public_key"], what=f"{what}.ephemeral_public_key", size=32
            ),
            nonce=b64d(obj["nonce"], what=f"{what}.nonce", size=NONCE_SIZE),
            ciphertext=b64d(obj["ciphertext"], what=f"{what}.ciphertext", size=WRAPPED_SIZE),
        )


def derive_kek(
    shared: bytes, ephemeral_public: bytes, recipient_public: bytes, clip_id: str
) -> bytes:
    return HKDF(
        algorithm=hashes.SHA256(),
        length=32,
        salt=ephemeral_public + recipient_public,
        info=INFO_LABEL + clip_id_bytes(clip_id),
    ).derive(shared)


def wrap_data_key(
    data_key: bytes,
    agency_public: X25519PublicKey,
    clip_id: str,
    *,
    ephemeral_key: X25519PrivateKey | None = None,
    nonce: bytes | None = None,
) -> WrappedKey:
    """Wrap ``data_key`` so only the agency private key opens it.

    ``ephemeral_key`` and ``nonce`` are for test vectors only; in use both are fresh and random.
    """
    if len(data_key) != DATA_KEY_SIZE:
        raise FormatError(f"data key must be {DATA_KEY_SIZE} bytes, not {len(data_key)}")
    ephemeral = ephemeral_key or X25519PrivateKey.generate()
    nonce = os.urandom(NONCE_SIZE) if nonce is None else nonce
    epk = raw_public(ephemeral)
    recipient = raw_public(agency_public)
    try:
        shared = ephemeral.exchange(agency_public)
    except ValueError as exc:
        raise IntegrityError("agency public key is a low-order point: it cannot be used") from exc
    kek = derive_kek(shared, epk, recipient, clip_id)
    ciphertext = AESGCM(kek).encrypt(nonce, data_key, clip_id_bytes(clip_id))
    return WrappedKey(VERSION, key_id(recipient), epk, nonce, ciphertext)


def unwrap_data_key(wrapped: WrappedKey, agency_private: X25519PrivateKey, clip_id: str) -> bytes:
    """The clip's data key; refuses another agency key, another clip, or an altered envelope."""
    ours = key_id(agency_private)
    if wrapped.recipient != ours:
        raise KeyMismatchError(
            f"data key is wrapped to agency key {wrapped.recipient}, but the key given is {ours}: "
            f"use the agency private key with id {wrapped.recipient}"
        )
    recipient = raw_public(agency_private)
    try:
        shared = agency_private.exchange(
            X25519PublicKey.from_public_bytes(wrapped.ephemeral_public_key)
        )
    except ValueError as exc:
        raise IntegrityError("wrapped data key: the ephemeral key is invalid") from exc
    kek = derive_kek(shared, wrapped.ephemeral_public_key, recipient, clip_id)
    try:
        return AESGCM(kek).decrypt(wrapped.nonce, wrapped.ciphertext, clip_id_bytes(clip_id))
    except InvalidTag as exc:
        raise IntegrityError(
            "wrapped data key does not open: it was altered or belongs to another clip"
        ) from exc
