"""The sim storage's own controls: a full card, failing writes and fsyncs, and power cuts."""

from __future__ import annotations

import contextlib
import errno
from collections.abc import Callable
from pathlib import Path

import pytest

from hw.errors import PowerLost
from hw.ports.storage import Storage, StorageFile, write_durable
from hw.sim.storage import SimStorage


@pytest.fixture
def sim(tmp_path: Path) -> SimStorage:
    return SimStorage(tmp_path / "card", capacity_bytes=1000)


def write(
    storage: Storage, path: str, data: bytes, *, append: bool = False, sync: bool = False
) -> None:
    with storage.open_write(path, append=append) as f:
        f.write(data)
        if sync:
            f.fsync()


def cut(sim: SimStorage) -> None:
    sim.power_cut()
    sim.restart()


def tree(root: Path) -> dict[str, bytes | None]:
    """Everything on disk under root: files with their bytes, folders as None."""
    return {
        p.relative_to(root).as_posix(): None if p.is_dir() else p.read_bytes()
        for p in sorted(root.rglob("*"))
    }


# A full card.


def test_a_write_past_capacity_fails_with_enospc_and_stops_at_the_limit(sim: SimStorage) -> None:
    write(sim, "big", b"a" * 900)
    with sim.open_write("more") as f, pytest.raises(OSError) as caught:
        f.write(b"b" * 150)
    assert caught.value.errno == errno.ENOSPC
    assert sim.size("more") == 100
    assert sim.free_bytes() == 0


def test_free_bytes_is_capacity_minus_the_files(sim: SimStorage) -> None:
    assert sim.total_bytes() == 1000
    write(sim, "a", b"x" * 300)
    write(sim, "b", b"y" * 200)
    assert sim.free_bytes() == 500
    sim.remove("a")
    write(sim, "b", b"y" * 50)
    assert sim.free_bytes() == 950


def test_removing_a_file_makes_room_for_a_write(sim: SimStorage) -> None:
    write(sim, "old", b"o" * 1000)
    sim.remove("old")
    write(sim, "new", b"n" * 1000)
    assert sim.size("new") == 1000


def test_a_removed_file_still_open_keeps_its_space_until_closed(sim: SimStorage) -> None:
    f = sim.open_write("f")
    f.write(b"x" * 400)
    sim.remove("f")
    assert sim.free_bytes() == 600
    f.close()
    assert sim.free_bytes() == 1000


def test_files_present_at_start_count_against_capacity(tmp_path: Path) -> None:
    (tmp_path / "card").mkdir()
    (tmp_path / "card" / "old").write_bytes(b"z" * 250)
    assert SimStorage(tmp_path / "card", capacity_bytes=1000).free_bytes() == 750


# Injected faults.


def test_failing_writes_pass_the_allowed_bytes_then_raise(sim: SimStorage) -> None:
    sim.fail_writes(errno.EIO, after_bytes=10)
    with sim.open_write("f") as f, pytest.raises(OSError) as caught:
        f.write(b"0123456789abcdef")
    assert caught.value.errno == errno.EIO
    assert sim.read_bytes("f") == b"0123456789"


def test_failing_writes_default_to_enospc_at_once(sim: SimStorage) -> None:
    sim.fail_writes()
    with sim.open_write("f") as f, pytest.raises(OSError) as caught:
        f.write(b"x")
    assert caught.value.errno == errno.ENOSPC
    assert sim.size("f") == 0


def test_clear_faults_lets_writes_through_again(sim: SimStorage) -> None:
    sim.fail_writes(errno.EIO)
    sim.clear_faults()
    write(sim, "f", b"ok")
    assert sim.read_bytes("f") == b"ok"


def test_failing_fsync_raises_eio(sim: SimStorage) -> None:
    sim.fail_fsync()
    with sim.open_write("f") as f:
        f.write(b"data")
        with pytest.raises(OSError) as caught:
            f.fsync()
    assert caught.value.errno == errno.EIO


def test_failing_fsync_fails_folder_fsyncs_too(sim: SimStorage) -> None:
    sim.fail_fsync()
    with pytest.raises(OSError) as caught:
        sim.fsync_dir("")
    assert caught.value.errno == errno.EIO


def test_a_failed_fsync_makes_nothing_durable(sim: SimStorage) -> None:
    write_durable(sim, "f", b"old")
    sim.fail_fsync()
    with sim.open_write("f", append=True) as f:
        f.write(b"+new")
        with pytest.raises(OSError):
            f.fsync()
    cut(sim)
    assert sim.read_bytes("f") == b"old"


def test_fsync_fault_with_a_count_fails_only_that_many(sim: SimStorage) -> None:
    sim.fail_fsync(count=1)
    with pytest.raises(OSError):
        sim.fsync_dir("")
    sim.fsync_dir("")


# The power-cut model.


def test_data_written_after_the_last_fsync_is_lost(sim: SimStorage) -> None:
    write_durable(sim, "log", b"synced")
    write(sim, "log", b"+unsynced", append=True)
    cut(sim)
    assert sim.read_bytes("log") == b"synced"


def test_a_file_never_fsynced_comes_back_empty_when_its_name_survives(sim: SimStorage) -> None:
    write(sim, "f", b"never synced")
    sim.fsync_dir("")
    cut(sim)
    assert sim.read_bytes("f") == b""


def test_a_new_name_disappears_until_its_folder_is_fsynced(sim: SimStorage) -> None:
    write(sim, "f", b"synced data", sync=True)
    cut(sim)
    assert not sim.exists("f")


def test_a_new_folder_disappears_until_its_parent_is_fsynced(sim: SimStorage) -> None:
    sim.mkdir("kept")
    sim.fsync_dir("")
    sim.mkdir("kept/lost")
    cut(sim)
    assert sim.listdir("") == ["kept"]
    assert sim.listdir("kept") == []


def test_a_rename_over_a_file_reverts_until_the_folder_is_fsynced(sim: SimStorage) -> None:
    write_durable(sim, "clip", b"old")
    write(sim, "clip.tmp", b"new", sync=True)
    sim.rename("clip.tmp", "clip")
    cut(sim)
    assert sim.read_bytes("clip") == b"old"
    assert sim.listdir("") == ["clip"]


def test_a_rename_over_a_file_is_durable_once_the_folder_is_fsynced(sim: SimStorage) -> None:
    write_durable(sim, "clip", b"old")
    write(sim, "clip.tmp", b"new", sync=True)
    sim.rename("clip.tmp", "clip")
    sim.fsync_dir("")
    cut(sim)
    assert sim.read_bytes("clip") == b"new"
    assert sim.listdir("") == ["clip"]


def test_a_removed_file_reappears_until_its_folder_is_fsynced(sim: SimStorage) -> None:
    write_durable(sim, "seg", b"footage")
    sim.remove("seg")
    cut(sim)
    assert sim.read_bytes("seg") == b"footage"
    sim.remove("seg")
    sim.fsync_dir("")
    cut(sim)
    assert not sim.exists("seg")


def test_an_in_place_truncation_is_undone(sim: SimStorage) -> None:
    write_durable(sim, "f", b"durable content")
    write(sim, "f", b"short")
    cut(sim)
    assert sim.read_bytes("f") == b"durable content"


def test_overwriting_durable_bytes_in_place_is_undone(sim: SimStorage) -> None:
    writer = sim.open_write("f")
    writer.write(b"ab")
    with sim.open_write("f", append=True) as appender:
        appender.write(b"cdef")
        appender.fsync()
    writer.write(b"ZZ")  # lands over the durable "cd", at the writer's own offset
    writer.close()
    sim.fsync_dir("")
    assert sim.read_bytes("f") == b"abZZef"
    cut(sim)
    assert sim.read_bytes("f") == b"abcdef"


def test_a_file_removed_while_open_comes_back_with_what_was_fsynced_after(sim: SimStorage) -> None:
    f = sim.open_write("f")
    sim.fsync_dir("")
    sim.remove("f")
    f.write(b"written after the remove")
    f.fsync()
    f.close()
    cut(sim)
    assert sim.read_bytes("f") == b"written after the remove"


def test_content_follows_the_file_through_a_rename(sim: SimStorage) -> None:
    sim.mkdir("a")
    sim.mkdir("b")
    sim.fsync_dir("")
    f = sim.open_write("a/f")
    f.write(b"moved")
    sim.rename("a/f", "b/f")
    f.fsync()
    f.close()
    sim.fsync_dir("a")
    sim.fsync_dir("b")
    cut(sim)
    assert sim.listdir("a") == []
    assert sim.read_bytes("b/f") == b"moved"


def test_a_rename_durable_only_in_its_target_folder_leaves_two_copies(sim: SimStorage) -> None:
    sim.mkdir("a")
    sim.mkdir("b")
    sim.fsync_dir("")
    write(sim, "a/f", b"both", sync=True)
    sim.fsync_dir("a")
    sim.rename("a/f", "b/f")
    sim.fsync_dir("b")
    cut(sim)
    assert sim.read_bytes("a/f") == b"both"
    assert sim.read_bytes("b/f") == b"both"


def test_files_present_at_start_are_durable(tmp_path: Path) -> None:
    card = tmp_path / "card"
    (card / "clips").mkdir(parents=True)
    (card / "clips" / "seg0").write_bytes(b"from before")
    sim = SimStorage(card)
    write(sim, "clips/seg1", b"new")
    cut(sim)
    assert tree(card) == {"clips": None, "clips/seg0": b"from before"}


def test_a_power_cut_leaves_exactly_the_durable_tree_on_disk(sim: SimStorage) -> None:
    sim.mkdir("clips")
    sim.fsync_dir("")
    write_durable(sim, "clips/manifest", b"m")
    write(sim, "clips/seg0", b"lost", sync=True)
    write(sim, "stray", b"lost")
    cut(sim)
    assert tree(sim.root) == {"clips": None, "clips/manifest": b"m"}


# write_durable and power cuts.


def test_write_durable_survives_a_power_cut_right_after_it_returns(sim: SimStorage) -> None:
    write_durable(sim, "cfg", b"old")
    write_durable(sim, "cfg", b"new")
    cut(sim)
    assert sim.read_bytes("cfg") == b"new"
    assert sim.listdir("") == ["cfg"]


class CutAfterSteps(SimStorage):
    """A SimStorage whose power fails after a given number of primitive operations."""

    def __init__(self, root: Path, *, steps: int) -> None:
        super().__init__(root)
        self.steps_left = steps

    def step(self) -> None:
        self.steps_left -= 1
        if self.steps_left == 0:
            self.power_cut()

    def open_write(self, path: str, *, append: bool = False) -> StorageFile:
        f = CountingFile(self, super().open_write(path, append=append))
        self.step()
        return f

    def rename(self, src: str, dst: str) -> None:
        super().rename(src, dst)
        self.step()

    def fsync_dir(self, path: str) -> None:
        super().fsync_dir(path)
        self.step()


class CountingFile:
    """A file whose every operation counts as a step of its CutAfterSteps storage."""

    def __init__(self, storage: CutAfterSteps, inner: StorageFile) -> None:
        self._counter = storage
        self._inner = inner

    def write(self, data: bytes) -> int:
        n = self._inner.write(data)
        self._counter.step()
        return n

    def fsync(self) -> None:
        self._inner.fsync()
        self._counter.step()

    def close(self) -> None:
        self._inner.close()
        self._counter.step()

    def __enter__(self) -> CountingFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


WRITE_DURABLE_STEPS = 6  # open, write, fsync, close, rename, fsync_dir


@pytest.mark.parametrize("steps", range(1, WRITE_DURABLE_STEPS + 1))
def test_write_durable_cut_at_any_step_leaves_old_or_new_never_torn(
    tmp_path: Path, steps: int
) -> None:
    card = tmp_path / "card"
    (card / "cfg").mkdir(parents=True)
    (card / "cfg" / "device.json").write_bytes(b"old content")
    sim = CutAfterSteps(card, steps=steps)
    with contextlib.suppress(PowerLost):
        write_durable(sim, "cfg/device.json", b"new and longer content")
    assert sim.steps_left <= 0, "the power cut never happened"
    sim.restart()
    content = sim.read_bytes("cfg/device.json")
    assert content == (
        b"new and longer content" if steps == WRITE_DURABLE_STEPS else b"old content"
    )
    assert sim.listdir("cfg") == ["device.json"]


def test_write_durable_torn_by_a_failing_card_keeps_the_old_content(sim: SimStorage) -> None:
    write_durable(sim, "cfg", b"old content")
    sim.fail_writes(errno.EIO, after_bytes=3)
    with pytest.raises(OSError):
        write_durable(sim, "cfg", b"new content")
    sim.clear_faults()
    cut(sim)
    assert sim.read_bytes("cfg") == b"old content"


# Without power.


OPERATIONS: dict[str, Callable[[SimStorage], object]] = {
    "open_write": lambda s: s.open_write("f").close(),
    "open_read": lambda s: s.open_read("f").close(),
    "read_bytes": lambda s: s.read_bytes("f"),
    "rename": lambda s: s.rename("f", "g"),
    "fsync_dir": lambda s: s.fsync_dir(""),
    "mkdir": lambda s: s.mkdir("d"),
    "remove": lambda s: s.remove("f"),
    "rmdir": lambda s: s.rmdir("d"),
    "listdir": lambda s: s.listdir(""),
    "exists": lambda s: s.exists("f"),
    "size": lambda s: s.size("f"),
    "free_bytes": lambda s: s.free_bytes(),
    "total_bytes": lambda s: s.total_bytes(),
}


@pytest.mark.parametrize("operation", OPERATIONS)
def test_every_operation_raises_power_lost_until_restart(sim: SimStorage, operation: str) -> None:
    write_durable(sim, "f", b"x")
    sim.mkdir("d")
    sim.fsync_dir("")
    sim.power_cut()
    with pytest.raises(PowerLost, match="restart"):
        OPERATIONS[operation](sim)
    sim.restart()
    OPERATIONS[operation](sim)


def test_a_file_open_at_the_power_cut_stays_dead_after_restart(sim: SimStorage) -> None:
    f = sim.open_write("f")
    sim.power_cut()
    with pytest.raises(PowerLost):
        f.write(b"x")
    sim.restart()
    with pytest.raises(PowerLost, match="open it again"):
        f.fsync()
    f.close()  # quiet, so that a `with` block unwinds with the PowerLost that stopped it


def test_faults_stay_across_a_power_cut(sim: SimStorage) -> None:
    sim.fail_fsync()
    cut(sim)
    with pytest.raises(OSError):
        sim.fsync_dir("")
