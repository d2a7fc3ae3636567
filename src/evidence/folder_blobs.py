"""``FolderBlobStore``: the embedded blob backend, one file per key under a folder.

Each put writes a temporary file, fsyncs it, renames it into place and fsyncs the folder, so a
crash leaves either the whole blob or none; the SHA-256 is checked before anything is written.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
from pathlib import Path

from evidence.errors import StoreSetupError, VerificationFailed
from evidence.storage import check_blob_key


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
        path.parent.mkdir(exist_ok=True)
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
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

    def get(self, key: str) -> bytes | None:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            return None

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def delete(self, key: str) -> None:
        path = self._path(key)
        if path.exists():
            path.unlink()
            _fsync_folder(path.parent)


def _fsync_folder(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
