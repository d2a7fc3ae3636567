"""The offload client against a docked test camera: resumable, bounded, trusting nothing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from custody.canonical import sha256_hex
from custody.clip import SealedClip
from custody.manifest import MAX_MANIFEST_BYTES, parse_manifest
from dock.camera_client import CameraClient
from dock.errors import CameraMisbehaved, CameraRefused, CameraUnavailable
from tests.dock.camera_server import TestCamera
from tests.dock.conftest import (
    DEVICE_ID,
    DockFactory,
    Store,
    reserve_port,
    seal,
    serving,
    url_of,
)


@pytest.fixture
def clip(
    camera: TestCamera, device_key: Ed25519PrivateKey, agency_key: X25519PrivateKey
) -> SealedClip:
    sealed = seal(device_key, agency_key, segments=2)
    camera.add(sealed)
    return sealed


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """Where downloads go in these tests (tmp_path also holds the dock and the store)."""
    made = tmp_path / "downloads"
    made.mkdir()
    return made


@pytest.fixture
def client(make_dock: DockFactory, camera_url: str) -> Iterator[CameraClient]:
    opened = make_dock().camera(camera_url)
    yield opened
    opened.close()


def test_a_session_proves_the_camera_is_the_enrolled_device(client: CameraClient) -> None:
    identity = client.connect()
    assert (identity.device_id, identity.serial) == (DEVICE_ID, f"SER-{DEVICE_ID}")


def test_the_listing_matches_the_sealed_clips(client: CameraClient, clip: SealedClip) -> None:
    (listed,) = client.clips()
    assert (listed.clip_id, listed.segment_count) == (clip.clip_id, 2)
    assert listed.manifest_sha256 == sha256_hex(clip.manifest)


def test_a_cut_segment_download_resumes_with_a_range_request(
    client: CameraClient, camera: TestCamera, clip: SealedClip, folder: Path
) -> None:
    record = parse_manifest(clip.manifest).segments[1]
    dest = folder / "seg-000001.bwcs"
    half = record.size // 2
    (folder / "seg-000001.bwcs.part").write_bytes(clip.segments[1][:half])

    client.fetch_segment(clip.clip_id, record, dest)

    assert dest.read_bytes() == clip.segments[1]
    assert camera.range_requests == [f"bytes={half}-"]
    assert not (folder / "seg-000001.bwcs.part").exists()


def test_a_torn_part_file_is_fetched_again_from_the_start(
    client: CameraClient, camera: TestCamera, clip: SealedClip, folder: Path
) -> None:
    record = parse_manifest(clip.manifest).segments[0]
    dest = folder / "seg-000000.bwcs"
    (folder / "seg-000000.bwcs.part").write_bytes(b"\0" * 10)  # a power cut left zeros

    client.fetch_segment(clip.clip_id, record, dest)

    assert camera.range_requests == ["bytes=10-"]  # tried to resume, then started over
    assert dest.read_bytes() == clip.segments[0]


def test_a_segment_longer_than_the_manifest_says_is_refused_and_not_kept(
    client: CameraClient, camera: TestCamera, clip: SealedClip, folder: Path
) -> None:
    record = parse_manifest(clip.manifest).segments[0]
    camera.pad_segment(clip.clip_id, 0, b"x" * 1000)
    dest = folder / "seg-000000.bwcs"

    with pytest.raises(CameraMisbehaved, match="at most"):
        client.fetch_segment(clip.clip_id, record, dest)

    assert list(folder.iterdir()) == []


def test_an_altered_segment_is_refused_and_not_kept(
    client: CameraClient, camera: TestCamera, clip: SealedClip, folder: Path
) -> None:
    record = parse_manifest(clip.manifest).segments[1]
    camera.corrupt_segment(clip.clip_id, 1)

    with pytest.raises(CameraMisbehaved, match="sha256"):
        client.fetch_segment(clip.clip_id, record, folder / "seg-000001.bwcs")

    assert list(folder.iterdir()) == []


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("clip_id", "../../etc"),
        ("clip_id", "a/b"),
        ("manifest_bytes", MAX_MANIFEST_BYTES + 1),
        ("segment_count", -1),
        ("manifest_sha256", "not-hex"),
        ("recovered", "yes"),
    ],
)
def test_a_listing_entry_outside_the_contract_is_refused(
    client: CameraClient, camera: TestCamera, field: str, value: object
) -> None:
    entry = {"clip_id": "clip-1", "segment_count": 1, "total_bytes": 10, "manifest_bytes": 10,
             "manifest_sha256": "ab" * 32, "recovered": False}  # fmt: skip
    camera.listing_extra.append({**entry, field: value})
    with pytest.raises(CameraMisbehaved, match=field):
        client.clips()


def test_a_clip_id_that_would_escape_the_spool_is_refused_before_any_request(
    client: CameraClient, camera: TestCamera, clip: SealedClip, folder: Path
) -> None:
    record = parse_manifest(clip.manifest).segments[0]
    with pytest.raises(CameraMisbehaved, match="not a valid clip id"):
        client.fetch_segment("../escape", record, folder / "x")
    assert camera.range_requests == []


def test_a_camera_that_does_not_know_the_dock_key_refuses_the_session(
    make_dock: DockFactory, device_key: Ed25519PrivateKey, store: Store
) -> None:
    stranger = TestCamera(DEVICE_ID, device_key, store.public, [])
    with serving(stranger.app()) as server:
        client = make_dock().camera(server.url)
        with pytest.raises(CameraRefused, match="provision the dock key"):
            client.connect()
        client.close()


def test_a_camera_that_went_away_is_unavailable_not_misbehaving(make_dock: DockFactory) -> None:
    sock = reserve_port()
    client = make_dock().camera(url_of(sock))
    with pytest.raises(CameraUnavailable, match="does not answer"):
        client.connect()
    client.close()
    sock.close()


def test_an_undocked_session_is_opened_again_on_the_next_request(
    client: CameraClient, camera: TestCamera, clip: SealedClip
) -> None:
    client.connect()
    camera.undock()
    with pytest.raises(CameraUnavailable, match="ended the session"):
        client.clips()
    assert [c.clip_id for c in client.clips()] == [clip.clip_id]
