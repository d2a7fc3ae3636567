"""The folder blob store's own behaviour; the blob contract is in test_blob_contract.py."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from evidence.errors import VerificationFailed
from evidence.folder_blobs import FolderBlobStore

SHA = "ab" * 32
OTHER = "cd" * 32
KEY = f"{SHA}/seg-000000.bwcs"


@pytest.fixture
def blobs(tmp_path: Path) -> FolderBlobStore:
    return FolderBlobStore(tmp_path / "blobs")


def test_a_blob_whose_sha256_does_not_match_is_not_written(blobs: FolderBlobStore) -> None:
    with pytest.raises(VerificationFailed, match="does not match its sha256"):
        blobs.put(KEY, b"segment", hashlib.sha256(b"other").hexdigest())
    assert not blobs.exists(KEY)
    assert list(blobs.root.rglob("*")) == []


def test_a_put_leaves_no_temporary_file(blobs: FolderBlobStore) -> None:
    blobs.put(KEY, b"x" * 100_000, hashlib.sha256(b"x" * 100_000).hexdigest())
    assert [p.name for p in blobs.root.rglob("*") if p.is_file()] == ["seg-000000.bwcs"]


def test_the_folder_lists_no_temporary_files(blobs: FolderBlobStore) -> None:
    blobs.put(KEY, b"x", hashlib.sha256(b"x").hexdigest())
    (blobs.root / SHA / ".seg-000002.bwcs.0a0b.tmp").write_bytes(b"partial")
    (blobs.root / OTHER).mkdir()
    (blobs.root / OTHER / ".seg-000000.bwcs.0c0d.tmp").write_bytes(b"partial")
    assert blobs.manifests() == [SHA]
    assert blobs.keys(SHA) == [KEY]


def put(blobs: FolderBlobStore, key: str, data: bytes = b"blob") -> None:
    blobs.put(key, data, hashlib.sha256(data).hexdigest())


def test_deleting_the_last_blob_of_a_clip_removes_its_folder(blobs: FolderBlobStore) -> None:
    put(blobs, KEY)
    put(blobs, f"{SHA}/manifest.jsonl")
    put(blobs, f"{OTHER}/manifest.jsonl")
    blobs.delete(KEY)
    blobs.delete(f"{SHA}/manifest.jsonl")
    assert sorted(p.name for p in blobs.root.iterdir()) == [OTHER]


def test_deleting_one_of_a_clips_blobs_keeps_its_folder(blobs: FolderBlobStore) -> None:
    put(blobs, KEY)
    put(blobs, f"{SHA}/manifest.jsonl")
    blobs.delete(KEY)
    assert blobs.keys(SHA) == [f"{SHA}/manifest.jsonl"]


def test_a_put_under_way_keeps_the_clip_folder(blobs: FolderBlobStore) -> None:
    put(blobs, KEY)
    partial = blobs.root / SHA / ".seg-000001.bwcs.0a0b.tmp"
    partial.write_bytes(b"partial")
    blobs.delete(KEY)
    assert partial.read_bytes() == b"partial"


def test_deleting_a_missing_blob_changes_nothing(blobs: FolderBlobStore) -> None:
    put(blobs, KEY)
    blobs.delete(f"{SHA}/seg-000001.bwcs")
    blobs.delete(f"{OTHER}/manifest.jsonl")
    assert blobs.keys(SHA) == [KEY]
    assert sorted(p.name for p in blobs.root.iterdir()) == [SHA]


def test_a_clip_whose_folder_went_is_stored_again(blobs: FolderBlobStore) -> None:
    put(blobs, KEY)
    blobs.delete(KEY)
    put(blobs, KEY, b"again")
    assert blobs.get(KEY) == b"again"
