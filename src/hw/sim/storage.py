"""SimStorage: real files under a root, plus a full card, failing writes and fsyncs, and power cuts.

It works on real files, so other processes and tools can read them, and it keeps a model of what
a power cut would leave. ``power_cut()`` rewrites the folder tree under root to exactly that state
and then refuses every operation with :class:`hw.errors.PowerLost` until ``restart()``.

Crash model
-----------
It keeps only what ``fsync`` and ``fsync_dir`` guarantee, so it is *pessimistic*: ext4 with
``data=ordered`` in practice also commits a new file's name when the file is fsynced, and often
keeps more; this model never does.

* Data belongs to a file (an inode, tracked with this module's own ids), not to a name. A file's
  content is durable as of its last successful ``fsync``: bytes written after it are lost, an
  in-place truncation (``open_write`` without ``append``) is undone, and a file never fsynced comes
  back empty if its name survives.
* Names are entries of their folder. Creating, renaming or removing a file or folder (``mkdir``
  too) becomes durable only when that folder is fsynced with ``fsync_dir``. Until then the folder's
  last durable entries come back: a new name disappears, a removed name reappears with its file's
  durable content, and a renamed-over target names its old file again, with that file's durable
  content. A rename made durable in its target folder but not in its source folder leaves the file
  under both names (as two copies); a folder that would come back inside itself is dropped there.
* Everything present under root when the SimStorage opens, or after a power cut, is durable.

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
import shutil
import tempfile
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Concatenate, ParamSpec, TypeVar

from hw.errors import DeviceError, PowerLost
from hw.ports.storage import StorageFile
from hw.real.storage import FileStorage

P = ParamSpec("P")
R = TypeVar("R")


@dataclass(eq=False)
class _Inode:
    id: int
    is_dir: bool
    parent: _Inode | None = None  # current folder; None for the root and once unlinked
    name: str = ""
    entries: dict[str, _Inode] = field(default_factory=dict)  # folder: current names
    durable_entries: dict[str, _Inode] = field(default_factory=dict)  # as of the last fsync_dir
    size: int = 0  # file: current length
    durable_len: int = 0  # file: length at the last successful fsync
    # The durable content, kept once the file on disk no longer holds it as a prefix (truncated,
    # overwritten in place, or unlinked); None while it does.
    snapshot: bytes | None = None
    open_count: int = 0


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

    def __init__(self, storage: SimStorage, inode: _Inode, fd: int, path: Path, append: bool):
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
        self._next_id = 0
        self._used = 0
        self._tree = self._scan()

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
            self._rebuild()
            self._tree = self._scan()

    def restart(self) -> None:
        with self._lock:
            self._powered = True

    # The port: operations that change the tree keep the model in step.

    @_needs_power
    def open_write(self, path: str, *, append: bool = False) -> StorageFile:
        host = self._locate(path)
        *folder_parts, name = self._relative_parts(host)
        folder = self._folder(folder_parts, path)
        node = folder.entries.get(name)
        if node is not None and not node.is_dir and not append:
            self._preserve(node)
        flags = os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | (os.O_APPEND if append else os.O_TRUNC)
        fd = os.open(host, flags, 0o666)
        if node is None:
            node = self._new_inode(is_dir=False)
            self._link(folder, name, node)
        elif not append:
            self._resize(node, 0)
        node.open_count += 1
        handle = SimFile(self, node, fd, host, append)
        self._open_files.add(handle)
        return handle

    @_needs_power
    def rename(self, src: str, dst: str) -> None:
        src_host, dst_host = self._locate(src), self._locate(dst)
        *src_parts, src_name = self._relative_parts(src_host)
        *dst_parts, dst_name = self._relative_parts(dst_host)
        src_folder = self._folder(src_parts, src)
        dst_folder = self._folder(dst_parts, dst)
        node = self._child(src_folder, src_name, src)
        target = dst_folder.entries.get(dst_name)
        if target is not None and target is not node and not target.is_dir:
            self._preserve(target)
        src_host.replace(dst_host)
        if target is node:
            return
        if target is not None:
            self._unlink(target)
        del src_folder.entries[src_name]
        self._link(dst_folder, dst_name, node)

    @_needs_power
    def fsync_dir(self, path: str) -> None:
        parts = self._relative_parts(self._locate(path, allow_root=True))
        folder = self._folder(parts, path)
        self._take_fsync_fault(path)
        folder.durable_entries = dict(folder.entries)

    @_needs_power
    def mkdir(self, path: str) -> None:
        parts = self._relative_parts(self._locate(path, allow_root=True))
        folder = self._tree
        for depth, name in enumerate(parts, start=1):
            child = folder.entries.get(name)
            if child is None:
                self.root.joinpath(*parts[:depth]).mkdir()
                child = self._new_inode(is_dir=True)
                self._link(folder, name, child)
            elif not child.is_dir:
                code = errno.EEXIST if depth == len(parts) else errno.ENOTDIR
                raise OSError(code, os.strerror(code), path)
            folder = child

    @_needs_power
    def remove(self, path: str) -> None:
        host = self._locate(path)
        *folder_parts, name = self._relative_parts(host)
        node = self._child(self._folder(folder_parts, path), name, path)
        if not node.is_dir:
            self._preserve(node)
        host.unlink()
        self._unlink(node)

    @_needs_power
    def rmdir(self, path: str) -> None:
        host = self._locate(path)
        *folder_parts, name = self._relative_parts(host)
        node = self._child(self._folder(folder_parts, path), name, path)
        host.rmdir()
        self._unlink(node)

    # Reading needs power too; the sim's files are real, so FileStorage reads them.
    open_read = _needs_power(FileStorage.open_read)
    read_bytes = _needs_power(FileStorage.read_bytes)
    listdir = _needs_power(FileStorage.listdir)
    exists = _needs_power(FileStorage.exists)
    size = _needs_power(FileStorage.size)

    @_needs_power
    def free_bytes(self) -> int:
        return max(0, self._capacity - self._used)

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
                self._preserve(node, fd=f.fd)
            limit, code = len(data), 0
            room = max(0, node.size + self._capacity - self._used - offset)
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
            self._resize(node, os.fstat(f.fd).st_size)
            if code:
                raise OSError(code, f"{os.strerror(code)} (simulated)", str(f.path))
            return limit

    def _file_fsync(self, f: SimFile) -> None:
        with self._lock:
            self._check_handle(f)
            self._take_fsync_fault(str(f.path))
            node = f.inode
            node.durable_len = node.size
            # An unlinked file's durable content matters while a folder's durable entry names it.
            node.snapshot = None if self._is_named(node) else _read_prefix(f.fd, node.size)

    def _file_close(self, f: SimFile) -> None:
        with self._lock:
            if f.closed or f.lost:
                return
            os.close(f.fd)
            f.closed = True
            self._open_files.discard(f)
            node = f.inode
            node.open_count -= 1
            if node.open_count == 0 and not self._is_named(node):
                self._used -= node.size

    # The model.

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

    def _new_inode(self, *, is_dir: bool) -> _Inode:
        self._next_id += 1
        return _Inode(self._next_id, is_dir)

    def _folder(self, parts: Sequence[str], path: str) -> _Inode:
        node = self._tree
        for name in parts:
            node = self._child(node, name, path)
            if not node.is_dir:
                raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), path)
        return node

    @staticmethod
    def _child(folder: _Inode, name: str, path: str) -> _Inode:
        node = folder.entries.get(name)
        if node is None:
            raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), path)
        return node

    def _is_named(self, node: _Inode) -> bool:
        return node is self._tree or node.parent is not None

    def _host_path(self, node: _Inode) -> Path:
        names: list[str] = []
        while node.parent is not None:
            names.append(node.name)
            node = node.parent
        if node is not self._tree:
            raise RuntimeError(f"SimStorage model error: inode {node.id} has no name under root")
        return self.root.joinpath(*reversed(names))

    def _link(self, folder: _Inode, name: str, node: _Inode) -> None:
        folder.entries[name] = node
        node.parent, node.name = folder, name

    def _unlink(self, node: _Inode) -> None:
        assert node.parent is not None
        del node.parent.entries[node.name]
        node.parent = None
        if node.open_count == 0:
            self._used -= node.size

    def _resize(self, node: _Inode, size: int) -> None:
        self._used += size - node.size
        node.size = size

    def _preserve(self, node: _Inode, *, fd: int | None = None) -> None:
        """Keep a file's durable content before its bytes on disk are truncated or lost."""
        if node.snapshot is not None or node.durable_len == 0:
            return
        if fd is not None:
            node.snapshot = _read_prefix(fd, node.durable_len)
            return
        read_fd = os.open(self._host_path(node), os.O_RDONLY | os.O_CLOEXEC)
        try:
            node.snapshot = _read_prefix(read_fd, node.durable_len)
        finally:
            os.close(read_fd)

    def _scan(self) -> _Inode:
        """Model the tree on disk as durable: at start-up and after a power cut."""
        self._used = 0
        top = self._new_inode(is_dir=True)
        pending = [(top, self.root)]
        while pending:
            folder, host = pending.pop()
            with os.scandir(host) as entries:
                listing = list(entries)
            for entry in listing:
                if entry.is_symlink():
                    raise DeviceError(
                        f"{entry.path} is a symlink, which SimStorage does not model: remove it"
                    )
                node = self._new_inode(is_dir=entry.is_dir())
                if node.is_dir:
                    pending.append((node, Path(entry.path)))
                else:
                    node.size = node.durable_len = entry.stat().st_size
                    self._used += node.size
                self._link(folder, entry.name, node)
            folder.durable_entries = dict(folder.entries)
        return top

    def _durable_tree(self) -> tuple[list[tuple[str, ...]], list[tuple[tuple[str, ...], _Inode]]]:
        """Folders (parents first) and files that the durable entries reach from the root."""
        folders: list[tuple[str, ...]] = []
        files: list[tuple[tuple[str, ...], _Inode]] = []
        top = self._tree
        no_parts: tuple[str, ...] = ()
        pending = [(top, no_parts, frozenset({top.id}))]
        while pending:
            folder, parts, ancestors = pending.pop()
            for name, node in sorted(folder.durable_entries.items()):
                if not node.is_dir:
                    files.append(((*parts, name), node))
                elif node.id not in ancestors:  # else a folder renamed into its own subtree
                    folders.append((*parts, name))
                    pending.append((node, (*parts, name), ancestors | {node.id}))
        return folders, files

    def _rebuild(self) -> None:
        """Rewrite the tree under root to the durable state, moving (not copying) surviving data."""
        folders, files = self._durable_tree()
        staging = Path(tempfile.mkdtemp(prefix=".sim-power-cut-", dir=self.root))
        staged: dict[int, Path] = {}
        for _, node in files:
            if node.snapshot is None and node.durable_len > 0 and node.id not in staged:
                # Invariant: such a file is still named; its bytes on disk start with its content.
                spot = staging / str(node.id)
                self._host_path(node).rename(spot)
                os.truncate(spot, node.durable_len)
                staged[node.id] = spot
        with os.scandir(self.root) as entries:
            listing = list(entries)
        for entry in listing:
            if entry.path == str(staging):
                continue
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path)
            else:
                Path(entry.path).unlink()
        for parts in folders:
            self.root.joinpath(*parts).mkdir()
        placed: dict[int, Path] = {}
        for parts, node in files:
            target = self.root.joinpath(*parts)
            if node.id in placed:
                shutil.copyfile(placed[node.id], target)
            elif node.id in staged:
                staged[node.id].rename(target)
            else:
                target.write_bytes(node.snapshot or b"")
            placed[node.id] = target
        staging.rmdir()


def _read_prefix(fd: int, length: int) -> bytes:
    chunks: list[bytes] = []
    done = 0
    while done < length:
        chunk = os.pread(fd, min(length - done, 1 << 20), done)
        if not chunk:
            break
        chunks.append(chunk)
        done += len(chunk)
    return b"".join(chunks)
