"""BLE trigger advertisements: an encrypted, authenticated event in 24 bytes of manufacturer data.

Layout of the payload (docs/formats/trigger.md)::

    offset  size  field
    0       1     format version (1)
    1       3     salt, random per event
    4       12    ChaCha20 ciphertext of the body, under the agency key
    16      8     MAC: HMAC-SHA256 under the source's key, truncated

    body:   source_id (u32 BE) | event (type in the low 5 bits, hop count in the high 3)
            | counter (u32 BE) | incident (u24 BE)

The MAC covers the version, the salt and the plaintext body. The ChaCha20 nonce is ``version ||
salt || mac`` (a synthetic IV), so two different bodies never share a keystream and a passive
listener sees only random-looking bytes: no source id, no counter, nothing stable to track.

A receiver decrypts once with the agency key, whatever the number of sources, reads the source id,
looks the source's key up and checks the MAC in constant time. Length and version are checked before
any cryptography, so rejecting garbage is cheap. :func:`open_trigger` raises only
:class:`~custody.errors.TriggerError` subclasses, whatever the bytes.
"""

from __future__ import annotations

import hmac as std_hmac
import os
import struct
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum

from cryptography.hazmat.primitives import hashes, hmac
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from custody.errors import (
    TriggerFormatError,
    TriggerMacError,
    TriggerVersionError,
    UnknownTriggerSourceError,
)

#: The Bluetooth SIG's test company id, until one is allocated. It names the system, never a device.
COMPANY_ID = 0xFFFF
VERSION = 1
SALT_SIZE = 3
BODY_SIZE = 12
MAC_SIZE = 8
PAYLOAD_SIZE = 1 + SALT_SIZE + BODY_SIZE + MAC_SIZE  # 24: what legacy advertising leaves us
SECRET_SIZE = 32
MAC_LABEL = b"bwc-trigger-v1\x00"
ENCRYPTION_INFO = b"bwc-trigger-v1 encryption"
MAC_INFO = b"bwc-trigger-v1 mac"

_BODY = struct.Struct(">IBI3s")
_CIPHERTEXT = slice(1 + SALT_SIZE, 1 + SALT_SIZE + BODY_SIZE)
_MAC = slice(PAYLOAD_SIZE - MAC_SIZE, PAYLOAD_SIZE)
_U32_MAX = 2**32 - 1
_U24_MAX = 2**24 - 1
_HOP_MAX = 7
_ZERO_BLOCK_COUNTER = bytes(4)


class EventType(IntEnum):
    """What happened at the source: the low 5 bits of the body's event byte."""

    HOLSTER = 1
    LIGHTBAR = 2
    SIREN = 3
    DOOR = 4
    PEER_RECORDING = 5
    TEST = 31


_EVENT_TYPES = {int(t): t for t in EventType}


@dataclass(frozen=True, slots=True)
class TriggerEvent:
    """One event a source advertises; the fields of the plaintext body."""

    source_id: int  #: u32, the source's id in the agency's registry
    event_type: EventType
    counter: int  #: u32, advanced by the source for every new event, never reused
    incident: int = 0  #: u24, shared by every trigger and peer beacon of one incident
    hop: int = 0  #: 0..7: how many peer cameras relayed the incident before this one

    def __post_init__(self) -> None:
        _check_range("source_id", self.source_id, _U32_MAX)
        _check_range("counter", self.counter, _U32_MAX)
        _check_range("incident", self.incident, _U24_MAX)
        _check_range("hop", self.hop, _HOP_MAX)
        code: object = self.event_type  # an int code is stored as its EventType; a bool is none
        event_type = None
        if isinstance(code, int) and not isinstance(code, bool):
            event_type = _EVENT_TYPES.get(code)
        if event_type is None:
            raise ValueError(f"event_type {self.event_type!r} is not one of {list(EventType)}")
        object.__setattr__(self, "event_type", event_type)


def _check_range(name: str, value: int, maximum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= maximum:
        raise ValueError(f"{name} must be an integer in 0..{maximum}, not {value!r}")


@dataclass(frozen=True, slots=True)
class UnverifiedTrigger:
    """A payload decrypted with the agency key whose MAC has not been checked yet.

    Nothing in it may be trusted except to find the key to check it with: :func:`verify_trigger`.
    """

    version: int
    salt: bytes
    body: bytes
    mac: bytes

    @property
    def source_id(self) -> int:
        return int.from_bytes(self.body[:4], "big")


# ---- keys -----------------------------------------------------------------------------------


def _derive(secret: bytes, info: bytes, what: str) -> bytes:
    if not isinstance(secret, bytes) or len(secret) != SECRET_SIZE:
        size = len(secret) if isinstance(secret, bytes) else type(secret).__name__
        raise ValueError(f"{what} must be {SECRET_SIZE} bytes, not {size}")
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(secret)


def derive_encryption_key(agency_secret: bytes) -> bytes:
    """The ChaCha20 key every camera and source of the agency shares (HKDF-SHA256)."""
    return _derive(agency_secret, ENCRYPTION_INFO, "agency trigger secret")


def derive_mac_key(source_secret: bytes) -> bytes:
    """The HMAC-SHA256 key of one source (HKDF-SHA256 of its secret)."""
    return _derive(source_secret, MAC_INFO, "source trigger secret")


# ---- pieces, exposed for the spec's vectors and for receivers with many sources --------------


def encode_body(event: TriggerEvent) -> bytes:
    event_byte = (event.hop << 5) | int(event.event_type)
    return _BODY.pack(event.source_id, event_byte, event.counter, event.incident.to_bytes(3, "big"))


def decode_body(body: bytes) -> TriggerEvent:
    source_id, event_byte, counter, incident = _BODY.unpack(body)
    code = event_byte & 0x1F
    event_type = _EVENT_TYPES.get(code)
    if event_type is None:
        raise TriggerFormatError(
            f"trigger from source {source_id:#010x}: event type {code} is unknown to this version"
        )
    return TriggerEvent(
        source_id, event_type, counter, int.from_bytes(incident, "big"), event_byte >> 5
    )


def mac_input(version: int, salt: bytes, body: bytes) -> bytes:
    return MAC_LABEL + bytes([version]) + salt + body


def compute_mac(mac_key: bytes, version: int, salt: bytes, body: bytes) -> bytes:
    h = hmac.HMAC(mac_key, hashes.SHA256())
    h.update(mac_input(version, salt, body))
    return h.finalize()[:MAC_SIZE]


def chacha_nonce(version: int, salt: bytes, mac: bytes) -> bytes:
    """The 16-byte nonce of ``cryptography``'s ChaCha20: block counter 0 (4 bytes LE), then the
    96-bit RFC 8439 nonce ``version || salt || mac``."""
    return _ZERO_BLOCK_COUNTER + bytes([version]) + salt + mac


def keystream_xor(encryption_key: bytes, nonce: bytes, data: bytes) -> bytes:
    """ChaCha20 encryption, which is also decryption: ``data`` XOR the keystream of ``nonce``."""
    return Cipher(algorithms.ChaCha20(encryption_key, nonce), mode=None).encryptor().update(data)


# ---- sealing ----------------------------------------------------------------------------------


def seal_with_keys(
    event: TriggerEvent, *, mac_key: bytes, encryption_key: bytes, salt: bytes | None = None
) -> bytes:
    """As :func:`seal_trigger`, with keys already derived (a source that seals often)."""
    salt = os.urandom(SALT_SIZE) if salt is None else salt
    if len(salt) != SALT_SIZE:
        raise ValueError(f"trigger salt must be {SALT_SIZE} bytes, not {len(salt)}")
    body = encode_body(event)
    mac = compute_mac(mac_key, VERSION, salt, body)
    ciphertext = keystream_xor(encryption_key, chacha_nonce(VERSION, salt, mac), body)
    return bytes([VERSION]) + salt + ciphertext + mac


def seal_trigger(
    event: TriggerEvent, *, source_secret: bytes, agency_secret: bytes, salt: bytes | None = None
) -> bytes:
    """The 24-byte manufacturer data for ``event``, to advertise under :data:`COMPANY_ID`.

    ``salt`` is for test vectors only: in use leave it out so a fresh random one is drawn for each
    event (the same salt and body give the same bytes, which a listener could link).
    """
    return seal_with_keys(
        event,
        mac_key=derive_mac_key(source_secret),
        encryption_key=derive_encryption_key(agency_secret),
        salt=salt,
    )


# ---- opening ----------------------------------------------------------------------------------


def check_payload(payload: object) -> bytes:
    """The payload as bytes, if its type, size and version are right: no cryptography, cheap."""
    if not isinstance(payload, bytes | bytearray | memoryview):
        raise TriggerFormatError(f"trigger payload must be bytes, not {type(payload).__name__}")
    data = bytes(payload)
    if len(data) != PAYLOAD_SIZE:
        raise TriggerFormatError(
            f"trigger payload is {len(data)} bytes; version {VERSION} is {PAYLOAD_SIZE}"
        )
    if data[0] != VERSION:
        raise TriggerVersionError(
            f"trigger format version {data[0]} is not supported (this reads {VERSION})"
        )
    return data


def decrypt_trigger(payload: object, encryption_key: bytes) -> UnverifiedTrigger:
    """Check the payload (:func:`check_payload`), then decrypt the body. Not authenticated yet."""
    data = check_payload(payload)
    version, salt, mac = data[0], data[1 : 1 + SALT_SIZE], data[_MAC]
    body = keystream_xor(encryption_key, chacha_nonce(version, salt, mac), data[_CIPHERTEXT])
    return UnverifiedTrigger(version, salt, body, mac)


def verify_trigger(unverified: UnverifiedTrigger, mac_key: bytes) -> TriggerEvent:
    """Check the MAC with the named source's key, then parse the body."""
    expected = compute_mac(mac_key, unverified.version, unverified.salt, unverified.body)
    if not std_hmac.compare_digest(expected, unverified.mac):
        raise TriggerMacError(
            f"trigger claiming source {unverified.source_id:#010x}: the MAC does not verify "
            "(forged, altered, or that source's key is not the one registered)"
        )
    return decode_body(unverified.body)


def open_trigger(
    payload: bytes, *, agency_secret: bytes, lookup: Callable[[int], bytes | None]
) -> TriggerEvent:
    """Decrypt, authenticate and parse one payload; ``lookup`` maps a source id to its secret.

    Raises only :class:`~custody.errors.TriggerError` subclasses for any payload (the secrets are
    the caller's and must be 32 bytes).
    """
    data = check_payload(payload)  # before deriving anything: garbage is rejected cheaply
    unverified = decrypt_trigger(data, derive_encryption_key(agency_secret))
    secret = lookup(unverified.source_id)
    if secret is None:
        raise UnknownTriggerSourceError(
            f"trigger names source {unverified.source_id:#010x}, which is not registered "
            "(or it was sealed for another agency)"
        )
    return verify_trigger(unverified, derive_mac_key(secret))
