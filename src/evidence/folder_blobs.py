"""``FolderBlobStore``: the embedded blob backend, one file per key under a folder.

Each put writes a temporary file, fsyncs it, renames it into place and fsyncs the folder, so a
crash leaves either the whole blob or none; the SHA-256 is checked before anything is written.
A clip's blobs share one folder, named by its manifest SHA-256, which goes with its last blob.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import secrets
from collections.abc import Iterable
from pathlib import Path

from evidence.errors import BadRequest, StoreSetupError, VerificationFailed
from evidence.storage import BLOB_KEY_RE, check_blob_key

_SHA256_RE = re.compile(r"[0-9a-f]{64}")


class FolderBlobStore:
    def __init__(self, root: Path) -> None:
        try:
            root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreSetupError(f"cannot create the blob folder {root}: {exc.strerror}") from exc
        self.root = root

    def _path(self, key: str) -> Path:
        # Keys are validated against a fixed pattern, so no key can leave the root.
        return self.root / check_blob_key(key)

    def put(self, key: str, data: bytes, sha256: str) -> None:
        if hashlib.sha256(data).hexdigest() != sha256:
            raise VerificationFailed(f"{key}: the data does not match its sha256; send it again")
        path = self._path(key)
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
        try:
            fd = _create(tmp)
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
                os.fsync(fd)
            finally:
                os.close(fd)
            tmp.replace(path)
            _fsync_folder(path.parent)
        except OSError as exc:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise StoreSetupError(f"cannot write {path}: {exc.strerror}; check the disk") from exc

    def put_stream(self, key: str, chunks: Iterable[bytes], sha256: str) -> int:
        """Written to a temporary file while hashing; renamed into place only if it matches."""
        path = self._path(key)
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
        digest, size = hashlib.sha256(), 0
        try:
            fd = _create(tmp)
            try:
                for chunk in chunks:
                    digest.update(chunk)
                    size += len(chunk)
                    view = memoryview(chunk)
                    while view:
                        view = view[os.write(fd, view) :]
                if digest.hexdigest() != sha256:
                    raise VerificationFailed(
                        f"{key}: the data does not match its sha256; send it again"
                    )
                os.fsync(fd)
            finally:
                os.close(fd)
            tmp.replace(path)
            _fsync_folder(path.parent)
        except OSError as exc:
            raise StoreSetupError(f"cannot write {path}: {exc.strerror}; check the disk") from exc
        finally:
            with contextlib.suppress(OSError):
                tmp.unlink()  # already renamed when it matched: then there is nothing to remove
        return size

    def get(self, key: str) -> bytes | None:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            return None

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def delete(self, key: str) -> None:
        path = self._path(key)
        try:
            with contextlib.suppress(FileNotFoundError):  # gone already: another delete was first
                path.unlink()
                _fsync_folder(path.parent)
            _remove_if_empty(path.parent)
        except OSError as exc:
            raise StoreSetupError(f"cannot delete {path}: {exc.strerror}; check the disk") from exc

    def manifests(self) -> list[str]:
        # A clip's folder can outlive its blobs (a crash leaves temporary files, and stores
        # written before delete removed empty folders kept them): only folders that still hold a
        # blob name a stored clip.
        return sorted(
            p.name
            for p in self.root.iterdir()
            if p.is_dir() and _SHA256_RE.fullmatch(p.name) and self.keys(p.name)
        )

    def keys(self, manifest_sha256: str) -> list[str]:
        if not _SHA256_RE.fullmatch(manifest_sha256):
            raise BadRequest(f"{manifest_sha256!r} is not a manifest sha256")
        folder = self.root / manifest_sha256
        if not folder.is_dir():
            return []
        found = (f"{manifest_sha256}/{p.name}" for p in folder.iterdir())
        return sorted(k for k in found if BLOB_KEY_RE.fullmatch(k))


def _create(tmp: Path) -> int:
    """Create the temporary file, and its clip folder when there is none.

    A delete of the clip's last blob removes the folder, and may do so between the mkdir and the
    open; the folder is then made again. It cannot go once the file is in it.
    """
    attempts = 3
    while True:
        tmp.parent.mkdir(exist_ok=True)
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
        except FileNotFoundError:
            attempts -= 1
            if attempts == 0:
                raise


def _remove_if_empty(folder: Path) -> None:
    """Remove a clip folder whose last blob went, durably; one that holds any file stays."""
    try:
        folder.rmdir()
    except FileNotFoundError:  # another delete removed it first
        return
    except OSError as exc:
        if exc.errno in (errno.ENOTEMPTY, errno.EEXIST):  # a blob, or a put under way
            return
        raise
    _fsync_folder(folder.parent)


def _fsync_folder(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
