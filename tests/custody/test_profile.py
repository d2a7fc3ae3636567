"""Configuration profiles: signed by the release key, validated as a whole, refused by name."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from custody import vectors_release
from custody.canonical import canonical_bytes, sha256_hex
from custody.errors import FormatError
from custody.profile import (
    INT_RANGES,
    Profile,
    parse_profile,
    sign_profile,
    validate_settings,
    verify_profile,
)

VECTORS = Path(__file__).resolve().parents[2] / "docs" / "formats" / "vectors"
SETTINGS = vectors_release.SETTINGS


@pytest.fixture
def release_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def _draft(settings: dict[str, Any]) -> bytes:
    return json.dumps({"name": "patrol", "profile_version": 2, "settings": settings}).encode()


@pytest.fixture
def signed(release_key: Ed25519PrivateKey) -> Profile:
    return sign_profile(_draft(SETTINGS), release_key, created_at_ns=5)


def _failed(data: bytes, key: Ed25519PrivateKey) -> str | None:
    first = verify_profile(data, [key.public_key()]).first_failure
    return None if first is None else first.name


def test_a_signed_profile_round_trips_and_verifies(
    signed: Profile, release_key: Ed25519PrivateKey
) -> None:
    assert parse_profile(signed.to_bytes()) == signed
    report = verify_profile(signed.to_bytes(), [release_key.public_key()])
    assert report.ok
    assert [check.name for check in report.checks] == ["format", "signer", "signature", "settings"]


def test_the_profile_id_is_the_hash_of_the_profile_without_its_signature(signed: Profile) -> None:
    expected = sha256_hex(canonical_bytes(signed.unsigned_json()))
    assert signed.profile_id == expected
    assert parse_profile(signed.to_bytes()).profile_id == expected


def test_an_unsigned_profile_fails_signer(signed: Profile, release_key: Ed25519PrivateKey) -> None:
    unsigned = Profile(signed.name, signed.profile_version, 5, signed.settings)
    assert _failed(unsigned.to_bytes(), release_key) == "signer"


def test_a_profile_signed_by_another_key_fails_signer(signed: Profile) -> None:
    assert _failed(signed.to_bytes(), Ed25519PrivateKey.generate()) == "signer"


def test_a_changed_setting_fails_signature(signed: Profile, release_key: Ed25519PrivateKey) -> None:
    data = signed.to_bytes().replace(b'"pre_event_ms":30000', b'"pre_event_ms":60000')
    assert _failed(data, release_key) == "signature"


def test_a_truncated_profile_fails_format(signed: Profile, release_key: Ed25519PrivateKey) -> None:
    assert _failed(signed.to_bytes()[:-10], release_key) == "format"


def test_an_unknown_key_is_refused_naming_it(release_key: Ed25519PrivateKey) -> None:
    with pytest.raises(FormatError, match=r"unknown field.*wifi_ssid"):
        sign_profile(_draft({**SETTINGS, "wifi_ssid": "x"}), release_key, created_at_ns=5)


def test_a_missing_key_is_refused_naming_it() -> None:
    settings = {name: value for name, value in SETTINGS.items() if name != "officer_id"}
    with pytest.raises(FormatError, match=r"missing field.*officer_id"):
        validate_settings(settings)


@pytest.mark.parametrize(
    ("name", "value"),
    [(name, low - 1) for name, (low, _, _) in INT_RANGES.items()]
    + [(name, high + 1) for name, (_, high, _) in INT_RANGES.items() if high < 2**63 - 1]
    + [("video_width", 1921)],
)
def test_an_out_of_range_value_is_refused_naming_it(name: str, value: int) -> None:
    with pytest.raises(FormatError, match=f"{name} = {value} is out of range"):
        validate_settings({**SETTINGS, name: value})


def test_a_string_where_a_number_belongs_is_refused_naming_it() -> None:
    with pytest.raises(FormatError, match="video_fps must be an integer"):
        validate_settings({**SETTINGS, "video_fps": "30"})


def test_an_unknown_feedback_cue_is_refused_naming_it() -> None:
    feedback = {"disco": {"haptic_ms": [], "buzzer_ms": []}}
    with pytest.raises(FormatError, match=r"feedback\.disco is not a cue"):
        validate_settings({**SETTINGS, "feedback": feedback})


def test_an_overlong_feedback_step_is_refused_naming_it() -> None:
    feedback = {"reminder": {"haptic_ms": [60_000], "buzzer_ms": []}}
    with pytest.raises(FormatError, match=r"feedback\.reminder\.haptic_ms"):
        validate_settings({**SETTINGS, "feedback": feedback})


def test_an_unknown_trigger_kind_is_refused() -> None:
    with pytest.raises(FormatError, match="trigger_kinds"):
        validate_settings({**SETTINGS, "trigger_kinds": ["holster", "telepathy"]})


def test_a_signed_profile_with_a_bad_setting_fails_settings(
    release_key: Ed25519PrivateKey,
) -> None:
    good = sign_profile(_draft(SETTINGS), release_key, created_at_ns=5)
    bad = Profile(good.name, 2, 5, {**SETTINGS, "video_fps": 500}, good.release_key_id)
    bad = Profile(
        bad.name, 2, 5, bad.settings, bad.release_key_id, release_key.sign(bad.signed_message())
    )
    report = verify_profile(bad.to_bytes(), [release_key.public_key()])
    assert report.first_failure is not None
    assert report.first_failure.name == "settings"
    assert "video_fps" in report.first_failure.detail


def test_the_published_vectors_verify_and_fail_where_they_say() -> None:
    doc = json.loads((VECTORS / "profile.json").read_text(encoding="utf-8"))
    key = vectors_release.release()
    assert _failed(doc["profile"].encode(), key) is None
    assert parse_profile(doc["profile"].encode()).profile_id == doc["profile_id"]
    for case in doc["invalid"]:
        assert _failed(case["profile"].encode(), key) == case["check"], case["case"]


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_any_bit_flip_in_a_signed_profile_is_detected(data: st.DataObject) -> None:
    key = vectors_release.release()
    valid = vectors_release.profile_bytes(key, SETTINGS)
    bit = data.draw(st.integers(0, len(valid) * 8 - 1))
    flipped = bytearray(valid)
    flipped[bit // 8] ^= 1 << (bit % 8)
    assert not verify_profile(bytes(flipped), [key.public_key()]).ok
