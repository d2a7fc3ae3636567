"""The embedded storage backends: what the ingest service relies on from each port."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from evidence.errors import BadRequest, Conflict, VerificationFailed
from evidence.folder_blobs import FolderBlobStore
from evidence.sqlite_store import SqliteMetadataStore
from evidence.storage import Evidence, ExpectedSegment, Upload

SHA = "ab" * 32
KEY = f"{SHA}/seg-000000.bwcs"


@pytest.fixture
def blobs(tmp_path: Path) -> FolderBlobStore:
    return FolderBlobStore(tmp_path / "blobs")


def test_a_blob_put_is_read_back_and_deleted(blobs: FolderBlobStore) -> None:
    blobs.put(KEY, b"segment", hashlib.sha256(b"segment").hexdigest())
    assert (blobs.exists(KEY), blobs.get(KEY)) == (True, b"segment")
    blobs.delete(KEY)
    assert (blobs.exists(KEY), blobs.get(KEY)) == (False, None)


def test_a_blob_whose_sha256_does_not_match_is_not_written(blobs: FolderBlobStore) -> None:
    with pytest.raises(VerificationFailed, match="does not match its sha256"):
        blobs.put(KEY, b"segment", hashlib.sha256(b"other").hexdigest())
    assert not blobs.exists(KEY)
    assert list(blobs.root.rglob("*")) == []


def test_a_put_leaves_no_temporary_file(blobs: FolderBlobStore) -> None:
    blobs.put(KEY, b"x" * 100_000, hashlib.sha256(b"x" * 100_000).hexdigest())
    assert [p.name for p in blobs.root.rglob("*") if p.is_file()] == ["seg-000000.bwcs"]


@pytest.mark.parametrize(
    "key", ["../escape", f"{SHA}/../../escape", f"{SHA}/receipt.json", "/etc/passwd", ""]
)
def test_a_key_outside_the_blob_layout_is_refused(blobs: FolderBlobStore, key: str) -> None:
    with pytest.raises(BadRequest, match="is not a manifest or segment key"):
        blobs.put(key, b"", hashlib.sha256(b"").hexdigest())


def _upload(upload_id: str = "u1") -> Upload:
    return Upload(upload_id, SHA, "clip", "cam-0042", 2, "dock:bay-1", 1)


def _evidence(evidence_id: str = "e1") -> Evidence:
    return Evidence(evidence_id, SHA, "clip", "cam-0042", "officer-1", 2, 100, 5)


def test_metadata_survives_reopening(tmp_path: Path) -> None:
    store = SqliteMetadataStore(tmp_path / "m.sqlite3")
    store.add_upload(_upload(), [ExpectedSegment(0, 10, SHA), ExpectedSegment(1, 20, SHA)])
    store.acknowledge("u1", 1)
    store.append_audit(b"line\n")
    store.close()
    reopened = SqliteMetadataStore(tmp_path / "m.sqlite3")
    assert reopened.upload_for_manifest(SHA) == _upload()
    assert reopened.acknowledged("u1") == [1]
    assert reopened.audit_log() == b"line\n"
    reopened.close()


def test_storing_evidence_closes_its_upload(tmp_path: Path) -> None:
    store = SqliteMetadataStore(tmp_path / "m.sqlite3")
    store.add_upload(_upload(), [])
    store.add_evidence(_evidence(), b"receipt", "u1")
    upload = store.upload("u1")
    assert upload is not None and upload.evidence_id == "e1"
    assert (store.evidence_for_manifest(SHA), store.receipt("e1")) == (_evidence(), b"receipt")
    store.close()


def test_a_second_evidence_record_for_one_manifest_changes_nothing(tmp_path: Path) -> None:
    store = SqliteMetadataStore(tmp_path / "m.sqlite3")
    store.add_upload(_upload("u1"), [])
    store.add_upload(_upload("u2"), [])
    store.add_evidence(_evidence("e1"), b"receipt", "u1")
    with pytest.raises(Conflict, match="already stored"):
        store.add_evidence(_evidence("e2"), b"other", "u2")
    upload = store.upload("u2")
    assert upload is not None and upload.evidence_id is None
    assert [e.id for e in store.list_evidence(limit=10, offset=0)] == ["e1"]
    store.close()


def test_the_folder_lists_each_clip_and_its_keys_but_no_temporary_files(
    blobs: FolderBlobStore,
) -> None:
    other = "cd" * 32
    for key in (KEY, f"{SHA}/manifest.jsonl", f"{other}/seg-000001.bwcs"):
        blobs.put(key, b"x", hashlib.sha256(b"x").hexdigest())
    (blobs.root / SHA / ".seg-000002.bwcs.0a0b.tmp").write_bytes(b"partial")
    assert blobs.manifests() == [SHA, other]
    assert blobs.keys(SHA) == [f"{SHA}/manifest.jsonl", KEY]
    assert blobs.keys("ef" * 32) == []
