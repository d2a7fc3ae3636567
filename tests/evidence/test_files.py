"""The file service without HTTP: declared size and hash are what is stored, or nothing is."""

from __future__ import annotations

import hashlib

import pytest

from evidence.errors import BadRequest, VerificationFailed
from evidence.files import FileService
from evidence.ingest import IngestService
from evidence.storage import file_key

DATA = b"an export from another maker's camera"
SHA = hashlib.sha256(DATA).hexdigest()


@pytest.fixture
def files(service: IngestService) -> FileService:
    return FileService.beside(service)


def _store(files: FileService, chunks: list[bytes], size: int = len(DATA)) -> object:
    return files.store(iter(chunks), sha256=SHA, size=size, name="a.mp4", actor="dock:bay-1")


@pytest.mark.parametrize("size", [len(DATA) - 1, len(DATA) + 1])
def test_bytes_of_another_length_than_declared_are_refused_and_not_stored(
    files: FileService, size: int
) -> None:
    with pytest.raises(VerificationFailed, match="declared"):
        _store(files, [DATA[:10], DATA[10:]], size)
    assert not files.blobs.exists(file_key(SHA))
    assert files.metadata.file_for_sha256(SHA) is None


def test_a_file_sent_in_chunks_is_stored_once_and_found_again(files: FileService) -> None:
    first, created = files.store(
        iter([DATA[:7], DATA[7:]]), sha256=SHA, size=len(DATA), name="a.mp4", actor="dock:bay-1"
    )
    again, created_again = files.store(
        iter([DATA]), sha256=SHA, size=len(DATA), name="b.mp4", actor="dock:bay-2"
    )
    assert (created, created_again) == (True, False)
    assert again == first and first.submitted_by == "dock:bay-1"
    assert files.blobs.get(file_key(SHA)) == DATA


def test_a_negative_size_is_a_bad_request(files: FileService) -> None:
    with pytest.raises(BadRequest):
        _store(files, [DATA], -1)
