"""FileStorage: the storage port over the real filesystem (the camera's SD card or the dock's disk).

Paths are relative POSIX paths under ``root``. A path that is absolute, climbs out with ``..`` or
reaches outside through a symlink raises :class:`hw.errors.StoragePathError` (an ``HwError`` and a
``ValueError``), and so does an attempt to open, rename or remove the root itself. That is the only
translation done here: every ``OSError`` the kernel raises (``ENOSPC`` when the card is full,
``EIO`` from a failing card, ``FileNotFoundError``, ``FileExistsError``, ``ENOTEMPTY``) propagates
unchanged, so that the firmware can tell a full card from a dying one by ``errno``.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from hw.errors import AdapterUnavailable, StoragePathError
from hw.ports.storage import StorageFile


class FsFile:
    """A file open for writing; ``fsync`` flushes Python's buffer and then the kernel's."""

    def __init__(self, path: Path, *, append: bool) -> None:
        self._file = path.open("ab" if append else "wb")

    def write(self, data: bytes) -> int:
        return self._file.write(data)

    def fsync(self) -> None:
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> FsFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class FileStorage:
    """Files under ``root``, which must exist: on a camera it is the mounted card, not made here."""

    def __init__(self, root: Path) -> None:
        if not root.is_dir():
            raise AdapterUnavailable(
                f"storage root {root} is not a folder: insert and mount the card there, "
                "or create the folder"
            )
        self._root = root.resolve()

    @property
    def root(self) -> Path:
        return self._root

    # Path checking: the one place that turns a caller's path into a host path.

    def _locate(self, path: str, *, allow_root: bool = False) -> Path:
        """The host path for ``path``; its folder is resolved, its last component is not followed.

        Keeping the last component lets ``remove`` and ``rename`` act on a symlink itself, while a
        symlink there is still checked to point inside the root, since opening it would follow it.
        """
        if "\0" in path:
            raise StoragePathError(f"storage path {path!r} contains a NUL byte: remove it")
        pure = PurePosixPath(path)
        if pure.is_absolute() or ".." in pure.parts:
            raise StoragePathError(
                f"storage path {path!r} leaves the storage root: use a relative path without '..'"
            )
        if not pure.parts:
            if allow_root:
                return self._root
            raise StoragePathError(f"storage path {path!r} names the storage root: name a file")
        folder = _resolve(self._root.joinpath(*pure.parts[:-1]))
        located = folder / pure.parts[-1]
        if not folder.is_relative_to(self._root) or (
            located.is_symlink() and not _resolve(located).is_relative_to(self._root)
        ):
            raise StoragePathError(
                f"storage path {path!r} follows a symlink out of {self._root}: remove the symlink"
            )
        return located

    def _relative_parts(self, located: Path) -> tuple[str, ...]:
        return located.relative_to(self._root).parts

    # The port.

    def open_write(self, path: str, *, append: bool = False) -> StorageFile:
        return FsFile(self._locate(path), append=append)

    def open_read(self, path: str) -> BinaryIO:
        return self._locate(path).open("rb")

    def read_bytes(self, path: str) -> bytes:
        return self._locate(path).read_bytes()

    def rename(self, src: str, dst: str) -> None:
        self._locate(src).replace(self._locate(dst))

    def fsync_dir(self, path: str) -> None:
        fd = os.open(self._locate(path, allow_root=True), os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def mkdir(self, path: str) -> None:
        self._locate(path, allow_root=True).mkdir(parents=True, exist_ok=True)

    def remove(self, path: str) -> None:
        self._locate(path).unlink()

    def rmdir(self, path: str) -> None:
        self._locate(path).rmdir()

    def listdir(self, path: str) -> list[str]:
        return sorted(entry.name for entry in self._locate(path, allow_root=True).iterdir())

    def exists(self, path: str) -> bool:
        return self._locate(path, allow_root=True).exists()

    def size(self, path: str) -> int:
        return self._locate(path).stat().st_size

    def free_bytes(self) -> int:
        st = os.statvfs(self._root)
        return st.f_bavail * st.f_frsize

    def total_bytes(self) -> int:
        st = os.statvfs(self._root)
        return st.f_blocks * st.f_frsize


def _resolve(path: Path) -> Path:
    try:
        return path.resolve()
    except RuntimeError as exc:  # how Python before 3.13 reports a symlink loop
        raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), str(path)) from exc
