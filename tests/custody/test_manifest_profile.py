"""A clip header records the configuration profile it was made under (manifest version 2)."""

from __future__ import annotations

import dataclasses

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from custody.canonical import canonical_bytes, parse_json
from custody.clip import SealedClip, seal_clip
from custody.errors import FormatError
from custody.manifest import ClipInfo, parse_manifest
from custody.verify import verify_manifest

PROFILE_ID = "ab" * 32


@pytest.fixture
def profiled(
    plaintexts: list[bytes],
    device_key: Ed25519PrivateKey,
    agency_key: X25519PrivateKey,
    info: ClipInfo,
) -> SealedClip:
    return seal_clip(
        plaintexts,
        device_key=device_key,
        agency_public=agency_key.public_key(),
        info=dataclasses.replace(info, profile_id=PROFILE_ID),
    )


def _header(clip: SealedClip) -> dict[str, object]:
    return parse_json(clip.manifest.split(b"\n")[0], what="header")


def test_a_manifest_without_a_profile_stays_version_1_with_no_profile_field(
    clip: SealedClip, device_key: Ed25519PrivateKey
) -> None:
    header = _header(clip)
    assert header["version"] == 1
    assert "profile_id" not in header
    assert parse_manifest(clip.manifest).header.info.profile_id == ""
    assert verify_manifest(clip.manifest, device_key.public_key()).ok


def test_a_profile_id_round_trips_in_a_version_2_header_that_verifies(
    profiled: SealedClip, device_key: Ed25519PrivateKey
) -> None:
    header = _header(profiled)
    assert (header["version"], header["profile_id"]) == (2, PROFILE_ID)
    assert parse_manifest(profiled.manifest).header.info.profile_id == PROFILE_ID
    assert verify_manifest(profiled.manifest, device_key.public_key()).ok


def test_the_signed_seal_covers_the_profile_id(
    profiled: SealedClip, device_key: Ed25519PrivateKey
) -> None:
    forged = profiled.manifest.replace(PROFILE_ID.encode(), b"cd" * 32, 1)
    report = verify_manifest(forged, device_key.public_key())
    assert not report.ok
    assert report.has_failed("chain") or report.has_failed("seal")


@pytest.mark.parametrize(
    ("version", "change", "message"),
    [
        (1, {"profile_id": PROFILE_ID}, r"unknown field\(s\) profile_id"),
        (2, {}, r"missing field\(s\) profile_id"),
        (2, {"profile_id": "AB" * 32}, "profile_id: expected 64 lowercase hex"),
        (2, {"profile_id": "ab" * 31}, "profile_id: expected 64 lowercase hex"),
    ],
    ids=["v1 with a profile", "v2 without one", "uppercase", "short"],
)
def test_a_header_whose_profile_field_does_not_match_its_version_is_refused(
    clip: SealedClip, version: int, change: dict[str, str], message: str
) -> None:
    header = {**_header(clip), "version": version, **change}
    with pytest.raises(FormatError, match=message):
        parse_manifest(canonical_bytes(header) + b"\n")
