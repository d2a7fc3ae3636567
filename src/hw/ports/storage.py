"""Storage port: the only way the firmware writes files.

Paths are relative POSIX paths under the storage root; one that escapes the root is refused.
Durability is explicit, as on a real filesystem: data is durable after ``StorageFile.fsync``, a new
or renamed name after ``fsync_dir`` of its folder. The sim adapter's power cut discards everything
that was not made durable, so crash tests check real durability.
"""

from __future__ import annotations

from pathlib import Path
from typing import BinaryIO, Literal, Protocol, runtime_checkable

from pydantic import Field

from hw.ports.base import PortConfig


@runtime_checkable
class StorageFile(Protocol):
    def write(self, data: bytes) -> int: ...

    def fsync(self) -> None:
        """Flush and make the file's data durable."""
        ...

    def close(self) -> None: ...

    def __enter__(self) -> StorageFile: ...

    def __exit__(self, *exc: object) -> None: ...


@runtime_checkable
class Storage(Protocol):
    @property
    def root(self) -> Path: ...

    def open_write(self, path: str, *, append: bool = False) -> StorageFile:
        """Create (or truncate, or with ``append`` extend) a file for writing."""
        ...

    def open_read(self, path: str) -> BinaryIO: ...

    def read_bytes(self, path: str) -> bytes: ...

    def rename(self, src: str, dst: str) -> None:
        """Atomically move ``src`` over ``dst``; durable after ``fsync_dir`` of dst's folder."""
        ...

    def fsync_dir(self, path: str) -> None: ...

    def mkdir(self, path: str) -> None:
        """Create a folder and its parents; existing folders are fine."""
        ...

    def remove(self, path: str) -> None: ...

    def rmdir(self, path: str) -> None: ...

    def listdir(self, path: str) -> list[str]:
        """Names in a folder, sorted."""
        ...

    def exists(self, path: str) -> bool: ...

    def size(self, path: str) -> int: ...

    def free_bytes(self) -> int: ...

    def total_bytes(self) -> int: ...


def write_durable(storage: Storage, path: str, data: bytes) -> None:
    """Write a whole file so that a power cut leaves either the old or the new content.

    Write to a temporary name, fsync it, rename it over the target, fsync the folder.
    """
    folder, _, name = path.rpartition("/")
    tmp = f"{folder}/.{name}.tmp" if folder else f".{name}.tmp"
    with storage.open_write(tmp) as f:
        f.write(data)
        f.fsync()
    storage.rename(tmp, path)
    storage.fsync_dir(folder)


class StorageConfig(PortConfig):
    adapter: Literal["sim", "filesystem"] = "sim"
    root: Path = Path("var/bwc")
    #: sim only: capacity of the simulated card; writes past it fail with ENOSPC
    capacity_bytes: int = Field(default=8 * 1024**3, gt=0)


def open_storage(cfg: StorageConfig) -> Storage:
    if cfg.adapter == "sim":
        from hw.sim.storage import SimStorage

        return SimStorage(cfg.root, capacity_bytes=cfg.capacity_bytes)
    from hw.real.storage import FileStorage

    return FileStorage(cfg.root)
