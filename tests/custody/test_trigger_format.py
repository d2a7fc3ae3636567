"""The BLE trigger advertisement format: vectors, round trip, and every kind of bad payload."""

from __future__ import annotations

import hmac
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms
from hypothesis import given, settings
from hypothesis import strategies as st

from custody import trigger
from custody.errors import (
    TriggerError,
    TriggerFormatError,
    TriggerMacError,
    TriggerVersionError,
    UnknownTriggerSourceError,
)
from custody.trigger import EventType, TriggerEvent, open_trigger, seal_trigger

VECTORS = Path(__file__).resolve().parents[2] / "docs" / "formats" / "vectors" / "trigger.json"
AGENCY = bytes.fromhex("a5" * 32)
HOLSTER_ID = 0x1A2B3C4D
HOLSTER_SECRET = bytes.fromhex("3c" * 32)
OTHER_SECRET = bytes.fromhex("7e" * 32)
EVENT = TriggerEvent(HOLSTER_ID, EventType.HOLSTER, counter=41, incident=0x0ABCDE, hop=0)


def registered(source_id: int) -> bytes | None:
    return HOLSTER_SECRET if source_id == HOLSTER_ID else None


@pytest.fixture(scope="module")
def vectors() -> dict[str, Any]:
    result: dict[str, Any] = json.loads(VECTORS.read_text(encoding="utf-8"))
    return result


def vector_lookup(vectors: dict[str, Any]) -> Callable[[int], bytes | None]:
    secrets = {int(k, 16): bytes.fromhex(v["secret_hex"]) for k, v in vectors["sources"].items()}
    return secrets.get


def sealed(event: TriggerEvent = EVENT, *, salt: bytes | None = None) -> bytes:
    return seal_trigger(event, source_secret=HOLSTER_SECRET, agency_secret=AGENCY, salt=salt)


# ---- vectors ---------------------------------------------------------------------------------


def test_vector_cases_are_reproduced_byte_for_byte(vectors: dict[str, Any]) -> None:
    agency = bytes.fromhex(vectors["agency_secret_hex"])
    assert trigger.derive_encryption_key(agency).hex() == vectors["encryption_key_hex"]
    lookup = vector_lookup(vectors)
    for case in vectors["cases"]:
        event = TriggerEvent(
            case["source_id"], EventType(case["event_type_code"]), case["counter"],
            case["incident"], case["hop"],
        )  # fmt: skip
        secret = lookup(case["source_id"])
        assert secret is not None
        salt = bytes.fromhex(case["salt_hex"])
        body = trigger.encode_body(event)
        assert body.hex() == case["body_hex"]
        assert trigger.mac_input(1, salt, body).hex() == case["mac_input_hex"]
        assert (
            trigger.compute_mac(trigger.derive_mac_key(secret), 1, salt, body).hex()
            == (case["mac_hex"])
        )
        payload = seal_trigger(event, source_secret=secret, agency_secret=agency, salt=salt)
        assert payload.hex() == case["payload_hex"]
        assert case["manufacturer_ad_hex"] == "1bffffff" + case["payload_hex"]


def _hkdf_sha256(secret: bytes, info: bytes) -> bytes:
    """RFC 5869 with no salt and 32 bytes out, written from the RFC for an independent check."""
    prk = hmac.digest(bytes(32), secret, "sha256")
    return hmac.digest(prk, info + b"\x01", "sha256")


def test_the_vectors_follow_from_the_spec_alone(vectors: dict[str, Any]) -> None:
    """Seal each case step by step as docs/formats/trigger.md says, without custody.trigger."""
    agency = bytes.fromhex(vectors["agency_secret_hex"])
    encryption_key = _hkdf_sha256(agency, b"bwc-trigger-v1 encryption")
    assert encryption_key.hex() == vectors["encryption_key_hex"]
    for case in vectors["cases"]:
        secret = bytes.fromhex(vectors["sources"][f"{case['source_id']:#010x}"]["secret_hex"])
        salt = bytes.fromhex(case["salt_hex"])
        body = (
            case["source_id"].to_bytes(4, "big")
            + bytes([case["hop"] << 5 | case["event_type_code"]])
            + case["counter"].to_bytes(4, "big")
            + case["incident"].to_bytes(3, "big")
        )
        mac_key = _hkdf_sha256(secret, b"bwc-trigger-v1 mac")
        mac = hmac.digest(mac_key, b"bwc-trigger-v1\x00\x01" + salt + body, "sha256")[:8]
        nonce = bytes(4) + b"\x01" + salt + mac
        encryptor = Cipher(algorithms.ChaCha20(encryption_key, nonce), mode=None).encryptor()
        payload = b"\x01" + salt + encryptor.update(body) + mac
        assert payload.hex() == case["payload_hex"]
        assert (b"\x1b\xff\xff\xff" + payload).hex() == case["manufacturer_ad_hex"]


def test_vector_payloads_open_to_their_events(vectors: dict[str, Any]) -> None:
    agency = bytes.fromhex(vectors["agency_secret_hex"])
    for case in vectors["cases"]:
        event = open_trigger(
            bytes.fromhex(case["payload_hex"]), agency_secret=agency, lookup=vector_lookup(vectors)
        )
        assert (event.source_id, event.counter, event.incident, event.hop) == (
            case["source_id"], case["counter"], case["incident"], case["hop"],
        )  # fmt: skip
        assert event.event_type.name.lower() == case["event_type"]


def test_invalid_vectors_are_rejected_with_their_stated_reason(vectors: dict[str, Any]) -> None:
    agency = bytes.fromhex(vectors["agency_secret_hex"])
    for case in vectors["invalid"]:
        with pytest.raises(TriggerError) as caught:
            open_trigger(
                bytes.fromhex(case["payload_hex"]), agency_secret=agency,
                lookup=vector_lookup(vectors),
            )  # fmt: skip
        assert caught.value.reason == case["reason"], case


# ---- sealing and opening ---------------------------------------------------------------------


@given(
    source_id=st.integers(0, 2**32 - 1),
    event_type=st.sampled_from(EventType),
    counter=st.integers(0, 2**32 - 1),
    incident=st.integers(0, 2**24 - 1),
    hop=st.integers(0, 7),
)
def test_any_event_round_trips(
    source_id: int, event_type: EventType, counter: int, incident: int, hop: int
) -> None:
    event = TriggerEvent(source_id, event_type, counter, incident, hop)
    payload = seal_trigger(event, source_secret=OTHER_SECRET, agency_secret=AGENCY)
    assert len(payload) == trigger.PAYLOAD_SIZE == 24
    assert open_trigger(payload, agency_secret=AGENCY, lookup=lambda _: OTHER_SECRET) == event


def test_each_seal_draws_a_new_salt() -> None:
    assert sealed() != sealed()


def test_payloads_of_one_source_share_nothing_but_the_version_byte() -> None:
    payloads = [sealed(TriggerEvent(HOLSTER_ID, EventType.HOLSTER, n)) for n in range(200)]
    assert {p[0] for p in payloads} == {trigger.VERSION}
    for offset in range(1, trigger.PAYLOAD_SIZE):
        distinct = len({p[offset] for p in payloads})
        # 200 uniform bytes take about 139 distinct values; a fixed or counting byte far fewer
        assert distinct > 100, f"byte {offset} takes only {distinct} values over 200 events"


def test_the_same_body_and_salt_give_the_same_payload() -> None:
    salt = bytes.fromhex("010203")
    assert sealed(salt=salt) == sealed(salt=salt)


@pytest.mark.parametrize(
    "fields",
    [
        {"hop": 8},
        {"counter": 2**32},
        {"counter": -1},
        {"incident": 2**24},
        {"source_id": 2**32},
        {"event_type": 6},
        {"counter": True},
        {"event_type": True},
    ],
)
def test_an_event_out_of_range_is_refused(fields: dict[str, Any]) -> None:
    args: dict[str, Any] = {
        "source_id": 1, "event_type": EventType.DOOR, "counter": 1, "incident": 0, "hop": 0,
    }  # fmt: skip
    with pytest.raises(ValueError):
        TriggerEvent(**(args | fields))


def test_a_known_event_code_given_as_an_int_becomes_its_event_type() -> None:
    assert TriggerEvent(1, 4, 1).event_type is EventType.DOOR  # type: ignore[arg-type]


# ---- bad payloads ----------------------------------------------------------------------------


def test_a_wrong_agency_secret_reads_an_unregistered_source() -> None:
    with pytest.raises(UnknownTriggerSourceError) as caught:
        open_trigger(sealed(), agency_secret=bytes(32), lookup=registered)
    assert caught.value.reason == "unknown_source"


def test_a_payload_sealed_with_another_source_key_fails_the_mac() -> None:
    forged = seal_trigger(EVENT, source_secret=OTHER_SECRET, agency_secret=AGENCY)
    with pytest.raises(TriggerMacError) as caught:
        open_trigger(forged, agency_secret=AGENCY, lookup=registered)
    assert caught.value.reason == "bad_mac"


def test_another_version_is_refused_as_a_version_error() -> None:
    payload = bytes([2]) + sealed()[1:]
    with pytest.raises(TriggerVersionError) as caught:
        open_trigger(payload, agency_secret=AGENCY, lookup=registered)
    assert caught.value.reason == "version"


def test_garbage_is_refused_before_any_key_is_derived_or_source_looked_up() -> None:
    looked_up: list[int] = []

    def lookup(source_id: int) -> bytes | None:
        looked_up.append(source_id)
        return None

    for payload in (b"", b"\x01" * 23, b"\x01" * 25, b"\x02" + bytes(23)):
        # b"" is no valid secret: deriving a key from it would raise ValueError
        with pytest.raises((TriggerFormatError, TriggerVersionError)):
            open_trigger(payload, agency_secret=b"", lookup=lookup)
    assert looked_up == []


def test_every_single_bit_flip_of_a_valid_payload_is_rejected() -> None:
    payload = sealed(salt=bytes.fromhex("c0ffee"))
    reasons = set()
    for bit in range(len(payload) * 8):
        flipped = bytearray(payload)
        flipped[bit // 8] ^= 1 << (bit % 8)
        with pytest.raises(TriggerError) as caught:
            open_trigger(bytes(flipped), agency_secret=AGENCY, lookup=lambda _: HOLSTER_SECRET)
        reasons.add(caught.value.reason)
    assert reasons == {"version", "bad_mac"}


def _even_ids_known(source_id: int) -> bytes | None:
    # Half of the random source ids reach the MAC check, half stop at the lookup.
    return HOLSTER_SECRET if source_id % 2 == 0 or source_id == HOLSTER_ID else None


_VALID = sealed()
_fuzz_payloads = st.one_of(
    st.binary(max_size=48),
    st.binary(min_size=23, max_size=23).map(lambda tail: b"\x01" + tail),
    st.integers(0, 48).map(lambda n: (_VALID * 2)[:n]),
    st.tuples(st.integers(0, 23), st.integers(0, 255)).map(
        lambda c: _VALID[: c[0]] + bytes([c[1]]) + _VALID[c[0] + 1 :]
    ),
)


@settings(max_examples=10_000, deadline=None)
@given(payload=_fuzz_payloads)
def test_random_and_truncated_payloads_raise_only_trigger_errors(payload: bytes) -> None:
    if payload == _VALID:
        assert open_trigger(payload, agency_secret=AGENCY, lookup=_even_ids_known) == EVENT
        return
    with pytest.raises(TriggerError):
        open_trigger(payload, agency_secret=AGENCY, lookup=_even_ids_known)


@pytest.mark.parametrize("payload", [None, "01" * 24, 24, [1] * 24])
def test_a_payload_that_is_not_bytes_is_malformed(payload: object) -> None:
    with pytest.raises(TriggerFormatError):
        open_trigger(payload, agency_secret=AGENCY, lookup=registered)  # type: ignore[arg-type]
