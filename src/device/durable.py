"""Durable files and folders on the Storage port: paths, temporary names and fsynced writes.

The clip writer, the audit log, recovery, the trigger counters, firmware slots and the offload
API all write this way, so that a power cut never takes back what a call reported written.
"""

from __future__ import annotations

import errno

from hw.ports.storage import Storage

TEMP_SUFFIX = ".tmp"


def join(folder: str, name: str) -> str:
    return f"{folder}/{name}" if folder else name


def parent_of(path: str) -> str:
    return path.rpartition("/")[0]


def temp_name(name: str) -> str:
    """The temporary name a file is written under before its rename (as ``write_durable``)."""
    return f".{name}{TEMP_SUFFIX}"


def is_temp_name(name: str) -> bool:
    return name.startswith(".") and name.endswith(TEMP_SUFFIX)


def write_all(storage: Storage, path: str, data: bytes, *, append: bool) -> None:
    """Write ``data`` and fsync it; returns only once the bytes are durable."""
    with storage.open_write(path, append=append) as f:
        view = memoryview(data)
        while view:
            written = f.write(bytes(view))
            if written <= 0:
                raise OSError(errno.EIO, "write made no progress", path)
            view = view[written:]
        f.fsync()


def ensure_durable_folder(storage: Storage, path: str) -> None:
    """Create ``path`` (and its parents) so that a power cut cannot take it away again."""
    if not path or storage.exists(path):
        return
    ensure_durable_folder(storage, parent_of(path))
    storage.mkdir(path)
    storage.fsync_dir(parent_of(path))
