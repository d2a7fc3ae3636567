"""Reading what an armorer drops in the ingest folder without trusting its names.

Every path is taken relative to the ingest folder and walked one component at a time from an open
descriptor of the folder, with ``O_NOFOLLOW``: a symbolic link anywhere is refused, never
followed, and no name can climb out (``..`` is refused outright, even inside a longer name).
Moves go through the same descriptors, so a folder swapped for a link between check and use
cannot redirect them either.
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import PurePath, PurePosixPath

from dock.errors import IngestRefused

DONE_FOLDER = "done"
_CHUNK = 1024 * 1024
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


def relative_name(root: str, path: str) -> PurePosixPath | None:
    """``path`` relative to ``root``; None for what the dock ignores; IngestRefused for a bad name.

    Ignored: the folder itself, ``done/`` (the dock's own output) and hidden names (a copier's
    temporary file such as rsync's ``.name.XXXXXX``, which is renamed into place when complete).
    """
    relative = os.path.relpath(path, root)
    if relative == ".":
        return None
    parts = PurePath(relative).parts
    for part in parts:
        if ".." in part:
            raise IngestRefused(
                f"{relative!r}: a name with '..' is refused: rename it and drop it again"
            )
        if any(unicodedata.category(c).startswith("C") for c in part) or "\\" in part:
            raise IngestRefused(
                f"{relative!r}: a name with control characters or '\\' is refused: rename it"
            )
    if parts[0] == DONE_FOLDER or any(part.startswith(".") for part in parts):
        return None
    return PurePosixPath(*parts)


def _refused_link(name: PurePosixPath, exc: OSError) -> IngestRefused:
    return IngestRefused(
        f"{name}: it or a folder above it is a symbolic link or not a plain file "
        f"({exc.strerror}): copy the file itself into the ingest folder"
    )


@contextmanager
def opened_dir(root_fd: int, parts: tuple[str, ...], name: PurePosixPath) -> Iterator[int]:
    """A descriptor of the folder ``parts`` below the root, walked without following links."""
    fd = os.dup(root_fd)
    try:
        for part in parts:
            try:
                child = os.open(part, _DIR_FLAGS, dir_fd=fd)
            except OSError as exc:
                if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                    raise _refused_link(name, exc) from exc
                raise
            os.close(fd)
            fd = child
        yield fd
    finally:
        os.close(fd)


@contextmanager
def opened_file(root_fd: int, name: PurePosixPath) -> Iterator[int]:
    """A read descriptor of the plain file ``name``; IngestRefused for a link or a special file."""
    with opened_dir(root_fd, name.parts[:-1], name) as parent:
        try:
            fd = os.open(name.parts[-1], _FILE_FLAGS, dir_fd=parent)
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.ENOTDIR, errno.ENXIO):
                raise _refused_link(name, exc) from exc
            raise
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise IngestRefused(f"{name}: not a plain file (a device, pipe or socket): remove it")
        yield fd
    finally:
        os.close(fd)


def file_stat(root_fd: int, name: PurePosixPath) -> os.stat_result:
    """``lstat`` of ``name`` through its (link-free) parent folders."""
    with opened_dir(root_fd, name.parts[:-1], name) as parent:
        return os.stat(name.parts[-1], dir_fd=parent, follow_symlinks=False)


def sha256_of(fd: int) -> tuple[str, int]:
    """(SHA-256 hex, size) of everything readable from ``fd``, one chunk in memory at a time."""
    digest, size = hashlib.sha256(), 0
    while chunk := os.read(fd, _CHUNK):
        digest.update(chunk)
        size += len(chunk)
    return digest.hexdigest(), size


def move_to_done(root_fd: int, name: PurePosixPath, suffix: str) -> PurePosixPath:
    """Move ``name`` to ``done/<name>`` (``-<suffix>`` added if that is taken); fsync both."""
    target = PurePosixPath(DONE_FOLDER, *name.parts)
    with opened_dir(root_fd, name.parts[:-1], name) as source:
        _make_dirs(root_fd, target.parts[:-1], name)
        with opened_dir(root_fd, target.parts[:-1], name) as dest:
            leaf = target.name
            if _exists(dest, leaf):
                leaf = f"{target.name}-{suffix}"
            os.rename(name.parts[-1], leaf, src_dir_fd=source, dst_dir_fd=dest)
            os.fsync(dest)
            os.fsync(source)
    return target.with_name(leaf)


def _make_dirs(root_fd: int, parts: tuple[str, ...], name: PurePosixPath) -> None:
    for depth in range(1, len(parts) + 1):
        with opened_dir(root_fd, parts[: depth - 1], name) as parent, suppress(FileExistsError):
            os.mkdir(parts[depth - 1], 0o750, dir_fd=parent)


def _exists(dir_fd: int, leaf: str) -> bool:
    try:
        os.stat(leaf, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return False
    return True
