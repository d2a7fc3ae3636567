"""SimStorage against an independent model of durability, under random operations and power cuts.

The model keeps, per folder, the current names and the names as of the folder's last fsync, each
pointing at a file object that holds its current bytes and its bytes as of its last fsync. After
every power cut the tree on disk must equal the durable names with their durable bytes.
"""

from __future__ import annotations

import errno
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from hw.errors import PowerLost
from hw.ports.storage import StorageFile
from hw.sim.storage import SimStorage

CAPACITY = 120
FOLDERS = ("", "d")
paths = st.sampled_from([f"{folder}/{name}".lstrip("/") for folder in FOLDERS for name in "xyz"])
payloads = st.binary(max_size=30)


@dataclass(eq=False)
class ModelFile:
    data: bytes
    durable: bytes
    open: int = 0


@dataclass
class ModelHandle:
    real: StorageFile
    file: ModelFile
    append: bool
    pos: int = 0


def split(path: str) -> tuple[str, str]:
    folder, _, name = path.rpartition("/")
    return folder, name


class StorageCrashMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.tmp = Path(tempfile.mkdtemp(prefix="crash-model-"))
        card = self.tmp / "card"
        (card / "d").mkdir(parents=True)
        (card / "d" / "x").write_bytes(b"from before")
        self.sim = SimStorage(card, capacity_bytes=CAPACITY)
        before = ModelFile(b"from before", b"from before")
        self.names: dict[str, dict[str, ModelFile]] = {"": {}, "d": {"x": before}}
        self.durable_names = {folder: dict(entries) for folder, entries in self.names.items()}
        self.handles: list[ModelHandle] = []

    def teardown(self) -> None:
        for handle in self.handles:
            handle.real.close()
        shutil.rmtree(self.tmp)

    def lookup(self, path: str) -> ModelFile | None:
        folder, name = split(path)
        return self.names[folder].get(name)

    def used(self) -> int:
        named = {id(f): f for entries in self.names.values() for f in entries.values()}
        held = {id(h.file): h.file for h in self.handles}
        return sum(len(f.data) for f in {**named, **held}.values())

    # Operations.

    @precondition(lambda self: len(self.handles) < 3)
    @rule(path=paths, append=st.booleans())
    def open(self, path: str, append: bool) -> None:
        real = self.sim.open_write(path, append=append)
        file = self.lookup(path)
        if file is None:
            file = ModelFile(b"", b"")
            folder, name = split(path)
            self.names[folder][name] = file
        elif not append:
            file.data = b""
        file.open += 1
        self.handles.append(ModelHandle(real, file, append))

    @precondition(lambda self: self.handles)
    @rule(index=st.integers(0, 2), payload=payloads)
    def write(self, index: int, payload: bytes) -> None:
        handle = self.handles[index % len(self.handles)]
        file = handle.file
        offset = len(file.data) if handle.append else handle.pos
        room = max(0, len(file.data) + CAPACITY - self.used() - offset)
        n = min(len(payload), room)
        if n < len(payload):
            with pytest.raises(OSError) as caught:
                handle.real.write(payload)
            assert caught.value.errno == errno.ENOSPC
        else:
            assert handle.real.write(payload) == n
        if n:
            padded = file.data.ljust(offset, b"\0")
            file.data = padded[:offset] + payload[:n] + padded[offset + n :]
        handle.pos = offset + n

    @precondition(lambda self: self.handles)
    @rule(index=st.integers(0, 2), fails=st.booleans())
    def fsync(self, index: int, fails: bool) -> None:
        handle = self.handles[index % len(self.handles)]
        if fails:
            self.sim.fail_fsync(count=1)
            with pytest.raises(OSError):
                handle.real.fsync()
        else:
            handle.real.fsync()
            handle.file.durable = handle.file.data

    @precondition(lambda self: self.handles)
    @rule(index=st.integers(0, 2))
    def close(self, index: int) -> None:
        handle = self.handles.pop(index % len(self.handles))
        handle.real.close()
        handle.file.open -= 1

    @rule(path=paths, payload=payloads, sync=st.booleans())
    def write_whole_file(self, path: str, payload: bytes, sync: bool) -> None:
        self.open(path, append=False)
        self.write(len(self.handles) - 1, payload)
        if sync:
            self.fsync(len(self.handles) - 1, fails=False)
        self.close(len(self.handles) - 1)

    @rule(src=paths, dst=paths)
    def rename(self, src: str, dst: str) -> None:
        file = self.lookup(src)
        if file is None:
            with pytest.raises(FileNotFoundError):
                self.sim.rename(src, dst)
            return
        self.sim.rename(src, dst)
        (src_folder, src_name), (dst_folder, dst_name) = split(src), split(dst)
        del self.names[src_folder][src_name]
        self.names[dst_folder][dst_name] = file

    @rule(folder=st.sampled_from(FOLDERS))
    def fsync_dir(self, folder: str) -> None:
        self.sim.fsync_dir(folder)
        self.durable_names[folder] = dict(self.names[folder])

    @rule(path=paths)
    def remove(self, path: str) -> None:
        if self.lookup(path) is None:
            with pytest.raises(FileNotFoundError):
                self.sim.remove(path)
            return
        self.sim.remove(path)
        folder, name = split(path)
        del self.names[folder][name]

    @rule()
    def power_cut(self) -> None:
        self.sim.power_cut()
        for handle in self.handles:
            with pytest.raises(PowerLost):
                handle.real.write(b"lost")
        with pytest.raises(PowerLost):
            self.sim.listdir("")
        self.sim.restart()
        expected: dict[str, bytes | None] = {"d": None}
        for folder, entries in self.durable_names.items():
            for name, file in entries.items():
                expected[f"{folder}/{name}".lstrip("/")] = file.durable
        assert disk_tree(self.sim.root) == expected
        self.names = {
            folder: {name: ModelFile(f.durable, f.durable) for name, f in entries.items()}
            for folder, entries in self.durable_names.items()
        }
        self.durable_names = {folder: dict(entries) for folder, entries in self.names.items()}
        self.handles = []

    # What must hold after every step.

    @invariant()
    def files_read_back_as_the_model_says(self) -> None:
        for folder, entries in self.names.items():
            assert self.sim.listdir(folder) == sorted([*entries, *(["d"] if folder == "" else [])])
            for name, file in entries.items():
                assert self.sim.read_bytes(f"{folder}/{name}".lstrip("/")) == file.data

    @invariant()
    def free_bytes_is_capacity_minus_live_files(self) -> None:
        assert self.sim.free_bytes() == max(0, CAPACITY - self.used())


def disk_tree(root: Path) -> dict[str, bytes | None]:
    return {
        p.relative_to(root).as_posix(): None if p.is_dir() else p.read_bytes()
        for p in root.rglob("*")
    }


StorageCrashMachine.TestCase.settings = settings(
    max_examples=60, stateful_step_count=30, deadline=None
)
test_sim_storage_matches_the_durability_model = StorageCrashMachine.TestCase
