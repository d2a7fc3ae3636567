"""SimStorage: real files under a root, plus a full card, failing writes and fsyncs, and power cuts.

It works on real files, so other processes and tools can read them, and it keeps a model of what
a power cut would leave. ``power_cut()`` rewrites the folder tree under root to exactly that state
and then refuses every operation with :class:`hw.errors.PowerLost` until ``restart()``.

Crash model
-----------
:mod:`hw.sim.storage_model` keeps it, and its docstring says exactly what survives. In short, it
keeps only what ``fsync`` and ``fsync_dir`` guarantee: a file's content as of its last fsync, and a
folder's names as of its last ``fsync_dir``. Everything present under root when the SimStorage
opens, or after a power cut, is durable.

Other behaviour
---------------
* Capacity is the sum of file sizes under root (a removed file still open counts until closed,
  as on a real disk); folders are free. A write that does not fit writes the bytes that fit and
  then raises ``OSError(ENOSPC)``, so the file keeps a torn tail, as on a full card. Files that come
  back after a power cut may leave the card over capacity; ``free_bytes`` is then 0.
* ``fail_writes`` lets ``after_bytes`` more bytes through (counted over all files) and then fails
  every write the same way, with its errno. ``fail_fsync`` fails file and folder fsyncs alike; a
  failed fsync makes nothing durable. Faults stay until ``clear_faults``, across power cuts.
* Open write handles die with the power: afterwards they raise ``PowerLost`` (``close`` is quiet).
  Handles from ``open_read`` are plain files and are not cut.
* The model decides durability, so no real fsync is issued and tests stay fast. SimStorage must
  be the only writer under root, which must hold no symlinks.
"""

from __future__ import annotations

import errno
import functools
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Concatenate, ParamSpec, TypeVar

from hw.errors import PowerLost
from hw.ports.storage import StorageFile
from hw.real.storage import FileStorage
from hw.sim.storage_model import CrashModel, Inode, child

P = ParamSpec("P")
R = TypeVar("R")


@dataclass
class _Fault:
    errno: int
    budget: int | None  # writes: bytes still allowed; fsyncs: failures left (None: all)


def _needs_power(
    method: Callable[Concatenate[SimStorage, P], R],
) -> Callable[Concatenate[SimStorage, P], R]:
    """Run a SimStorage operation under its lock; refuse it with PowerLost while power is off."""

    @functools.wraps(method)
    def guarded(self: SimStorage, /, *args: P.args, **kwargs: P.kwargs) -> R:
        with self._lock:
            self._check_power()
            return method(self, *args, **kwargs)

    return guarded


class SimFile:
    """A file open for writing on a SimStorage; raw, so every byte written reaches the model."""

    def __init__(self, storage: SimStorage, inode: Inode, fd: int, path: Path, append: bool):
        self._storage = storage
        self.inode = inode
        self.fd = fd
        self.path = path
        self.append = append
        self.closed = False
        self.lost = False

    def write(self, data: bytes) -> int:
        return self._storage._file_write(self, data)

    def fsync(self) -> None:
        self._storage._file_fsync(self)

    def close(self) -> None:
        self._storage._file_close(self)

    def __enter__(self) -> SimFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class SimStorage(FileStorage):
    """Storage on real files with a modelled card: capacity, faults and a faithful power cut."""

    def __init__(self, root: Path, *, capacity_bytes: int = 8 * 1024**3) -> None:
        if capacity_bytes <= 0:
            raise ValueError(f"capacity_bytes must be positive, got {capacity_bytes}")
        root.mkdir(parents=True, exist_ok=True)
        super().__init__(root)
        self._capacity = capacity_bytes
        self._lock = threading.RLock()
        self._powered = True
        self._write_fault: _Fault | None = None
        self._fsync_fault: _Fault | None = None
        self._open_files: set[SimFile] = set()
        self._model = CrashModel(self.root)

    # Test controls.

    def fail_writes(self, errno_: int = errno.ENOSPC, after_bytes: int = 0) -> None:
        """Let ``after_bytes`` more bytes be written, then fail every write with ``errno_``."""
        with self._lock:
            self._write_fault = _Fault(errno_, after_bytes)

    def fail_fsync(self, errno_: int = errno.EIO, *, count: int | None = None) -> None:
        """Fail the next ``count`` fsyncs (files and folders), or all of them when None."""
        with self._lock:
            self._fsync_fault = _Fault(errno_, count)

    def clear_faults(self) -> None:
        with self._lock:
            self._write_fault = None
            self._fsync_fault = None

    def power_cut(self) -> None:
        """Lose all that is not durable, rewrite root to match, refuse everything until restart."""
        with self._lock:
            if not self._powered:
                return
            self._powered = False
            for f in self._open_files:
                os.close(f.fd)
                f.lost = True
            self._open_files.clear()
            self._model.power_cut()

    def restart(self) -> None:
        with self._lock:
            self._powered = True

    # The port: operations that change the tree keep the model in step.

    @_needs_power
    def open_write(self, path: str, *, append: bool = False) -> StorageFile:
        host = self._locate(path)
        *folder_parts, name = self._relative_parts(host)
        model = self._model
        folder = model.folder(folder_parts, path)
        node = folder.entries.get(name)
        if node is not None and not node.is_dir and not append:
            model.preserve(node)
        flags = os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | (os.O_APPEND if append else os.O_TRUNC)
        fd = os.open(host, flags, 0o666)
        if node is None:
            node = model.new_inode(is_dir=False)
            model.link(folder, name, node)
        elif not append:
            model.resize(node, 0)
        model.opened(node)
        handle = SimFile(self, node, fd, host, append)
        self._open_files.add(handle)
        return handle

    @_needs_power
    def rename(self, src: str, dst: str) -> None:
        src_host, dst_host = self._locate(src), self._locate(dst)
        *src_parts, src_name = self._relative_parts(src_host)
        *dst_parts, dst_name = self._relative_parts(dst_host)
        model = self._model
        src_folder = model.folder(src_parts, src)
        dst_folder = model.folder(dst_parts, dst)
        node = child(src_folder, src_name, src)
        target = dst_folder.entries.get(dst_name)
        if target is not None and target is not node and not target.is_dir:
            model.preserve(target)
        src_host.replace(dst_host)
        if target is node:
            return
        if target is not None:
            model.unlink(target)
        del src_folder.entries[src_name]
        model.link(dst_folder, dst_name, node)

    @_needs_power
    def fsync_dir(self, path: str) -> None:
        parts = self._relative_parts(self._locate(path, allow_root=True))
        folder = self._model.folder(parts, path)
        self._take_fsync_fault(path)
        self._model.sync_dir(folder)

    @_needs_power
    def mkdir(self, path: str) -> None:
        parts = self._relative_parts(self._locate(path, allow_root=True))
        model = self._model
        folder = model.tree
        for depth, name in enumerate(parts, start=1):
            node = folder.entries.get(name)
            if node is None:
                self.root.joinpath(*parts[:depth]).mkdir()
                node = model.new_inode(is_dir=True)
                model.link(folder, name, node)
            elif not node.is_dir:
                code = errno.EEXIST if depth == len(parts) else errno.ENOTDIR
                raise OSError(code, os.strerror(code), path)
            folder = node

    @_needs_power
    def remove(self, path: str) -> None:
        host = self._locate(path)
        *folder_parts, name = self._relative_parts(host)
        node = child(self._model.folder(folder_parts, path), name, path)
        if not node.is_dir:
            self._model.preserve(node)
        host.unlink()
        self._model.unlink(node)

    @_needs_power
    def rmdir(self, path: str) -> None:
        host = self._locate(path)
        *folder_parts, name = self._relative_parts(host)
        node = child(self._model.folder(folder_parts, path), name, path)
        host.rmdir()
        self._model.unlink(node)

    # Reading needs power too; the sim's files are real, so FileStorage reads them.
    open_read = _needs_power(FileStorage.open_read)
    read_bytes = _needs_power(FileStorage.read_bytes)
    listdir = _needs_power(FileStorage.listdir)
    exists = _needs_power(FileStorage.exists)
    size = _needs_power(FileStorage.size)

    @_needs_power
    def free_bytes(self) -> int:
        return max(0, self._capacity - self._model.used)

    @_needs_power
    def total_bytes(self) -> int:
        return self._capacity

    # What SimFile delegates to, under the storage's lock.

    def _file_write(self, f: SimFile, data: bytes) -> int:
        with self._lock:
            self._check_handle(f)
            node = f.inode
            offset = node.size if f.append else os.lseek(f.fd, 0, os.SEEK_CUR)
            if offset < node.durable_len:
                self._model.preserve(node, fd=f.fd)
            limit, code = len(data), 0
            room = max(0, node.size + self._capacity - self._model.used - offset)
            if room < limit:
                limit, code = room, errno.ENOSPC
            fault = self._write_fault
            if fault is not None and fault.budget is not None and fault.budget < limit:
                limit, code = fault.budget, fault.errno
            view = memoryview(data)[:limit]
            while view:
                view = view[os.write(f.fd, view) :]
            if fault is not None and fault.budget is not None:
                fault.budget -= limit
            self._model.resize(node, os.fstat(f.fd).st_size)
            if code:
                raise OSError(code, f"{os.strerror(code)} (simulated)", str(f.path))
            return limit

    def _file_fsync(self, f: SimFile) -> None:
        with self._lock:
            self._check_handle(f)
            self._take_fsync_fault(str(f.path))
            self._model.sync_file(f.inode, f.fd)

    def _file_close(self, f: SimFile) -> None:
        with self._lock:
            if f.closed or f.lost:
                return
            os.close(f.fd)
            f.closed = True
            self._open_files.discard(f)
            self._model.closed(f.inode)

    # Checks.

    def _check_power(self) -> None:
        if not self._powered:
            raise PowerLost(
                f"storage at {self.root} lost power (simulated): call restart() before using it"
            )

    def _check_handle(self, f: SimFile) -> None:
        self._check_power()
        if f.lost:
            raise PowerLost(f"{f.path} was open when the power was cut: open it again")
        if f.closed:
            raise ValueError(f"I/O operation on closed file {f.path}")

    def _take_fsync_fault(self, where: str) -> None:
        fault = self._fsync_fault
        if fault is None:
            return
        if fault.budget is not None:
            fault.budget -= 1
            if fault.budget <= 0:
                self._fsync_fault = None
        raise OSError(fault.errno, f"{os.strerror(fault.errno)} (simulated)", where)
