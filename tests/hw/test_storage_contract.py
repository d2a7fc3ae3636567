"""Storage port contract, run against the real filesystem adapter and the sim."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from hw.errors import AdapterUnavailable, StoragePathError
from hw.ports.storage import Storage, StorageConfig, open_storage, write_durable
from hw.real.storage import FileStorage


@pytest.fixture
def root(tmp_path: Path) -> Path:
    card = tmp_path / "card"
    card.mkdir()
    return card


@pytest.fixture(params=["filesystem", "sim"])
def storage(request: pytest.FixtureRequest, root: Path) -> Storage:
    return open_storage(StorageConfig(adapter=request.param, root=root))


def write(storage: Storage, path: str, data: bytes, *, append: bool = False) -> None:
    with storage.open_write(path, append=append) as f:
        assert f.write(data) == len(data)


def test_storage_satisfies_the_port(storage: Storage) -> None:
    assert isinstance(storage, Storage)


def test_root_is_the_configured_folder(storage: Storage, root: Path) -> None:
    assert storage.root == root.resolve()


def test_written_bytes_read_back_and_land_on_disk(storage: Storage, root: Path) -> None:
    write(storage, "seg.bin", b"\x00payload\xff")
    assert storage.read_bytes("seg.bin") == b"\x00payload\xff"
    assert (root / "seg.bin").read_bytes() == b"\x00payload\xff"
    with storage.open_read("seg.bin") as f:
        assert f.read() == b"\x00payload\xff"


def test_append_extends_a_file(storage: Storage) -> None:
    write(storage, "log", b"one,")
    write(storage, "log", b"two", append=True)
    assert storage.read_bytes("log") == b"one,two"


def test_open_write_truncates_an_existing_file(storage: Storage) -> None:
    write(storage, "f", b"long old content")
    write(storage, "f", b"new")
    assert storage.read_bytes("f") == b"new"


def test_size_and_exists_follow_the_file(storage: Storage) -> None:
    assert not storage.exists("f")
    write(storage, "f", b"12345")
    assert storage.exists("f")
    assert storage.size("f") == 5


def test_fsync_and_fsync_dir_succeed(storage: Storage) -> None:
    storage.mkdir("clips")
    with storage.open_write("clips/a") as f:
        f.write(b"data")
        f.fsync()
    storage.fsync_dir("clips")
    storage.fsync_dir("")
    assert storage.read_bytes("clips/a") == b"data"


def test_rename_moves_a_file_over_an_existing_one(storage: Storage) -> None:
    write(storage, "new", b"new")
    write(storage, "old", b"old")
    storage.rename("new", "old")
    assert storage.read_bytes("old") == b"new"
    assert not storage.exists("new")


def test_rename_moves_a_folder(storage: Storage) -> None:
    storage.mkdir("clip.tmp")
    write(storage, "clip.tmp/seg", b"s")
    storage.rename("clip.tmp", "clip")
    assert storage.read_bytes("clip/seg") == b"s"
    assert storage.listdir("") == ["clip"]


def test_listdir_is_sorted(storage: Storage) -> None:
    for name in ["b", "C", "a", "10", "9"]:
        write(storage, name, b"")
    assert storage.listdir("") == sorted(["b", "C", "a", "10", "9"])


def test_mkdir_creates_parents_and_accepts_existing_folders(storage: Storage) -> None:
    storage.mkdir("a/b/c")
    storage.mkdir("a/b")
    storage.mkdir("a/b/c")
    assert storage.listdir("a") == ["b"]
    assert storage.listdir("a/b/c") == []


def test_mkdir_over_a_file_fails(storage: Storage) -> None:
    write(storage, "f", b"")
    with pytest.raises(FileExistsError):
        storage.mkdir("f")


def test_remove_deletes_a_file(storage: Storage) -> None:
    write(storage, "f", b"x")
    storage.remove("f")
    assert not storage.exists("f")


def test_remove_of_a_missing_file_raises_file_not_found(storage: Storage) -> None:
    with pytest.raises(FileNotFoundError):
        storage.remove("missing")


def test_open_write_in_a_missing_folder_raises_file_not_found(storage: Storage) -> None:
    with pytest.raises(FileNotFoundError):
        storage.open_write("no/such/file")


def test_rmdir_removes_an_empty_folder_only(storage: Storage) -> None:
    storage.mkdir("full")
    storage.mkdir("empty")
    write(storage, "full/f", b"")
    storage.rmdir("empty")
    assert not storage.exists("empty")
    with pytest.raises(OSError) as caught:
        storage.rmdir("full")
    assert caught.value.errno == errno.ENOTEMPTY


def test_write_after_close_is_refused(storage: Storage) -> None:
    f = storage.open_write("f")
    f.close()
    with pytest.raises(ValueError, match="closed file"):
        f.write(b"late")


@pytest.mark.parametrize("path", ["/etc/passwd", "../outside", "a/../../outside", "a/../.."])
def test_paths_that_leave_the_root_are_refused(storage: Storage, path: str) -> None:
    storage.mkdir("a")
    with pytest.raises(StoragePathError, match="leaves the storage root"):
        storage.open_write(path)
    with pytest.raises(StoragePathError):
        storage.exists(path)


def test_a_symlinked_folder_out_of_the_root_is_refused(
    storage: Storage, root: Path, tmp_path: Path
) -> None:
    (tmp_path / "outside").mkdir()
    (root / "escape").symlink_to(tmp_path / "outside")
    with pytest.raises(StoragePathError, match="symlink"):
        storage.open_write("escape/f")
    assert list((tmp_path / "outside").iterdir()) == []


def test_a_symlinked_file_out_of_the_root_is_refused(
    storage: Storage, root: Path, tmp_path: Path
) -> None:
    (tmp_path / "secret").write_bytes(b"secret")
    (root / "link").symlink_to(tmp_path / "secret")
    with pytest.raises(StoragePathError, match="symlink"):
        storage.read_bytes("link")
    with pytest.raises(StoragePathError, match="symlink"):
        storage.open_write("link")
    assert (tmp_path / "secret").read_bytes() == b"secret"


def test_a_symlink_loop_raises_eloop(storage: Storage, root: Path) -> None:
    (root / "loop").symlink_to(root / "loop")
    with pytest.raises(OSError) as caught:
        storage.open_write("loop/f")
    assert caught.value.errno == errno.ELOOP


def test_a_path_error_is_also_a_value_error(storage: Storage) -> None:
    with pytest.raises(ValueError):
        storage.read_bytes("../x")


@pytest.mark.parametrize("path", ["", "."])
def test_the_root_itself_cannot_be_removed_or_opened(storage: Storage, path: str) -> None:
    with pytest.raises(StoragePathError, match="names the storage root"):
        storage.rmdir(path)
    with pytest.raises(StoragePathError, match="names the storage root"):
        storage.open_write(path)
    assert storage.exists(path)


def test_write_durable_writes_then_replaces_a_file(storage: Storage) -> None:
    storage.mkdir("cfg")
    write_durable(storage, "cfg/device.json", b'{"v": 1}')
    write_durable(storage, "cfg/device.json", b'{"v": 2}')
    assert storage.read_bytes("cfg/device.json") == b'{"v": 2}'
    assert storage.listdir("cfg") == ["device.json"]


def test_write_durable_works_at_the_top_level(storage: Storage) -> None:
    write_durable(storage, "top", b"t")
    assert storage.listdir("") == ["top"]


def test_free_and_total_bytes_are_sane(storage: Storage) -> None:
    total = storage.total_bytes()
    free = storage.free_bytes()
    assert 0 < free <= total


def test_file_storage_refuses_a_missing_root(tmp_path: Path) -> None:
    with pytest.raises(AdapterUnavailable, match="mount the card"):
        FileStorage(tmp_path / "unmounted")
