"""The crash model behind SimStorage: what is under root now, and what a power cut would leave.

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
* Everything present under root when the model is built, or after a power cut, is durable.

The model also counts the bytes in use (a removed file still open counts until closed). It is not
thread-safe: its owner, SimStorage, calls it under its own lock and keeps it in step with every
change it makes on disk.
"""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from hw.errors import DeviceError


@dataclass(eq=False)
class Inode:
    id: int
    is_dir: bool
    parent: Inode | None = None  # current folder; None for the root and once unlinked
    name: str = ""
    entries: dict[str, Inode] = field(default_factory=dict)  # folder: current names
    durable_entries: dict[str, Inode] = field(default_factory=dict)  # as of the last fsync_dir
    size: int = 0  # file: current length
    durable_len: int = 0  # file: length at the last successful fsync
    # The durable content, kept once the file on disk no longer holds it as a prefix (truncated,
    # overwritten in place, or unlinked); None while it does.
    snapshot: bytes | None = None
    open_count: int = 0


class CrashModel:
    """The inode tree under ``root``, its durable state, and the rebuild after a power cut."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.used = 0  # bytes of all files under root, plus removed ones still open
        self._next_id = 0
        self.tree = self._scan()

    # Lookups.

    def folder(self, parts: Sequence[str], path: str) -> Inode:
        node = self.tree
        for name in parts:
            node = child(node, name, path)
            if not node.is_dir:
                raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), path)
        return node

    def is_named(self, node: Inode) -> bool:
        return node is self.tree or node.parent is not None

    def host_path(self, node: Inode) -> Path:
        names: list[str] = []
        while node.parent is not None:
            names.append(node.name)
            node = node.parent
        if node is not self.tree:
            raise RuntimeError(f"SimStorage model error: inode {node.id} has no name under root")
        return self.root.joinpath(*reversed(names))

    # Changes that SimStorage has just made (or is about to make) on disk.

    def new_inode(self, *, is_dir: bool) -> Inode:
        self._next_id += 1
        return Inode(self._next_id, is_dir)

    def link(self, folder: Inode, name: str, node: Inode) -> None:
        folder.entries[name] = node
        node.parent, node.name = folder, name

    def unlink(self, node: Inode) -> None:
        assert node.parent is not None
        del node.parent.entries[node.name]
        node.parent = None
        if node.open_count == 0:
            self.used -= node.size

    def resize(self, node: Inode, size: int) -> None:
        self.used += size - node.size
        node.size = size

    def opened(self, node: Inode) -> None:
        node.open_count += 1

    def closed(self, node: Inode) -> None:
        node.open_count -= 1
        if node.open_count == 0 and not self.is_named(node):
            self.used -= node.size

    def preserve(self, node: Inode, *, fd: int | None = None) -> None:
        """Keep a file's durable content before its bytes on disk are truncated or lost."""
        if node.snapshot is not None or node.durable_len == 0:
            return
        if fd is not None:
            node.snapshot = read_prefix(fd, node.durable_len)
            return
        read_fd = os.open(self.host_path(node), os.O_RDONLY | os.O_CLOEXEC)
        try:
            node.snapshot = read_prefix(read_fd, node.durable_len)
        finally:
            os.close(read_fd)

    # Durability.

    def sync_file(self, node: Inode, fd: int) -> None:
        """A successful fsync through ``fd``: the file's current content is durable."""
        node.durable_len = node.size
        # An unlinked file's durable content matters while a folder's durable entry names it.
        node.snapshot = None if self.is_named(node) else read_prefix(fd, node.size)

    def sync_dir(self, folder: Inode) -> None:
        """A successful fsync_dir: the folder's current entries are durable."""
        folder.durable_entries = dict(folder.entries)

    def power_cut(self) -> None:
        """Rewrite root to the durable state, then model what is there as durable."""
        self._rebuild()
        self.tree = self._scan()

    def _scan(self) -> Inode:
        """Model the tree on disk as durable: at start-up and after a power cut."""
        self.used = 0
        top = self.new_inode(is_dir=True)
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
                node = self.new_inode(is_dir=entry.is_dir())
                if node.is_dir:
                    pending.append((node, Path(entry.path)))
                else:
                    node.size = node.durable_len = entry.stat().st_size
                    self.used += node.size
                self.link(folder, entry.name, node)
            folder.durable_entries = dict(folder.entries)
        return top

    def _durable_tree(self) -> tuple[list[tuple[str, ...]], list[tuple[tuple[str, ...], Inode]]]:
        """Folders (parents first) and files that the durable entries reach from the root."""
        folders: list[tuple[str, ...]] = []
        files: list[tuple[tuple[str, ...], Inode]] = []
        top = self.tree
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
                self.host_path(node).rename(spot)
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


def child(folder: Inode, name: str, path: str) -> Inode:
    """The entry ``name`` of ``folder``; FileNotFoundError naming ``path`` when there is none."""
    node = folder.entries.get(name)
    if node is None:
        raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), path)
    return node


def read_prefix(fd: int, length: int) -> bytes:
    chunks: list[bytes] = []
    done = 0
    while done < length:
        chunk = os.pread(fd, min(length - done, 1 << 20), done)
        if not chunk:
            break
        chunks.append(chunk)
        done += len(chunk)
    return b"".join(chunks)
