"""The blob store contract: the same assertions against the folder and against S3 (SeaweedFS)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from evidence.errors import BadRequest, VerificationFailed
from evidence.folder_blobs import FolderBlobStore
from evidence.storage import BlobStore
from tests.evidence.s3_server import SeaweedS3

SHA = "ab" * 32
OTHER = "cd" * 32
KEY = f"{SHA}/seg-000000.bwcs"
MANIFEST = f"{SHA}/manifest.jsonl"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture(params=["folder", "s3"])
def blobs(request: pytest.FixtureRequest, tmp_path: Path) -> BlobStore:
    if request.param == "folder":
        return FolderBlobStore(tmp_path / "blobs")
    # Only the s3 cases ask for a bucket, so folder-only runs never start SeaweedFS.
    server: SeaweedS3 = request.getfixturevalue("seaweedfs")
    return server.open(request.getfixturevalue("s3_settings"))


def test_a_blob_put_is_read_back_and_deleted(blobs: BlobStore) -> None:
    blobs.put(KEY, b"segment", sha256(b"segment"))
    assert (blobs.exists(KEY), blobs.get(KEY)) == (True, b"segment")
    blobs.delete(KEY)
    assert (blobs.exists(KEY), blobs.get(KEY)) == (False, None)


def test_a_blob_whose_sha256_does_not_match_is_not_stored(blobs: BlobStore) -> None:
    with pytest.raises(VerificationFailed, match="does not match its sha256"):
        blobs.put(KEY, b"segment", sha256(b"other"))
    assert not blobs.exists(KEY)
    assert blobs.manifests() == []


@pytest.mark.parametrize(
    "key",
    [
        "../escape",
        f"{SHA}/../../escape",
        f"{SHA}/receipt.json",
        "/etc/passwd",
        "",
        "files/../escape",
        f"files/{SHA}/x",
        "files/MOV_0001.MP4",
    ],
)
def test_a_key_outside_the_blob_layout_is_refused(blobs: BlobStore, key: str) -> None:
    for attempt in (
        lambda: blobs.put(key, b"", sha256(b"")),
        lambda: blobs.put_stream(key, iter([b""]), sha256(b"")),
        lambda: blobs.get(key),
        lambda: blobs.exists(key),
        lambda: blobs.delete(key),
    ):
        with pytest.raises(BadRequest, match="is not a manifest or segment key"):
            attempt()


def test_a_key_stored_again_reads_back_its_newest_data(blobs: BlobStore) -> None:
    blobs.put(KEY, b"first", sha256(b"first"))
    blobs.put(KEY, b"second", sha256(b"second"))
    assert blobs.get(KEY) == b"second"


def test_a_missing_blob_reads_as_none_and_deleting_it_is_harmless(blobs: BlobStore) -> None:
    assert (blobs.exists(KEY), blobs.get(KEY)) == (False, None)
    blobs.delete(KEY)
    assert blobs.manifests() == []


def test_the_store_lists_each_clip_and_its_keys(blobs: BlobStore) -> None:
    for key in (KEY, MANIFEST, f"{OTHER}/seg-000001.bwcs"):
        blobs.put(key, b"x", sha256(b"x"))
    assert blobs.manifests() == [SHA, OTHER]
    assert blobs.keys(SHA) == [MANIFEST, KEY]
    assert blobs.keys("ef" * 32) == []


def test_a_clip_whose_blobs_are_all_deleted_is_no_longer_listed(blobs: BlobStore) -> None:
    for key in (KEY, MANIFEST, f"{OTHER}/seg-000001.bwcs"):
        blobs.put(key, b"x", sha256(b"x"))
    blobs.delete(KEY)
    blobs.delete(MANIFEST)
    assert blobs.manifests() == [OTHER]
    assert blobs.keys(SHA) == []


def test_listing_the_keys_of_something_not_a_manifest_sha256_is_refused(
    blobs: BlobStore,
) -> None:
    with pytest.raises(BadRequest, match="is not a manifest sha256"):
        blobs.keys("../" + SHA[3:])


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.binary(max_size=70_000))
def test_any_bytes_are_read_back_exactly(blobs: BlobStore, data: bytes) -> None:
    blobs.put(KEY, data, sha256(data))
    assert blobs.get(KEY) == data


FILE = f"files/{sha256(b'an export')}"


def test_a_file_streamed_in_chunks_is_read_back_and_counted(blobs: BlobStore) -> None:
    size = blobs.put_stream(FILE, iter([b"an ", b"", b"export"]), sha256(b"an export"))
    assert (size, blobs.get(FILE)) == (len(b"an export"), b"an export")
    assert blobs.manifests() == []  # a file is not a clip


def test_a_stream_whose_sha256_does_not_match_is_not_stored(blobs: BlobStore) -> None:
    with pytest.raises(VerificationFailed, match="does not match its sha256"):
        blobs.put_stream(FILE, iter([b"an ", b"exp0rt"]), sha256(b"an export"))
    assert not blobs.exists(FILE)


def test_a_stream_that_fails_midway_leaves_nothing(blobs: BlobStore) -> None:
    def broken() -> Iterator[bytes]:
        yield b"an "
        raise VerificationFailed("cut")

    with pytest.raises(VerificationFailed, match="cut"):
        blobs.put_stream(FILE, broken(), sha256(b"an export"))
    assert not blobs.exists(FILE)
