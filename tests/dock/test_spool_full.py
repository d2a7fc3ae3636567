"""A full spool disk: the dock never starts a clip it cannot hold, and a disk that fills anyway
mid-write is SpoolFull, not a crash; either way the clip waits, nothing is erased, and it goes
through once there is room.
"""

from __future__ import annotations

import errno
import os
import random
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from custody.clip import SealedClip, segment_name
from dock.agent import Dock
from dock.config import DockConfig
from dock.errors import SpoolFull
from dock.ledger import ClipState
from tests.dock.camera_server import TestCamera
from tests.dock.conftest import CHUNK, DEVICE_ID, RETRY, HookClock, Server, Store, seal

OpenDock = Callable[[DockConfig], Dock]


@pytest.fixture
def clip(
    camera: TestCamera, device_key: Ed25519PrivateKey, agency_key: X25519PrivateKey
) -> SealedClip:
    sealed = seal(device_key, agency_key, segments=2, segment_bytes=5 * CHUNK)
    camera.add(sealed)
    return sealed


@pytest.fixture
def open_dock(clock: HookClock) -> Iterator[OpenDock]:
    """Opens docks on explicit configurations; closes them at the end."""
    opened: list[Dock] = []

    def make(cfg: DockConfig) -> Dock:
        dock = Dock(cfg, clock, rng=random.Random(7))
        opened.append(dock)
        return dock

    yield make
    for dock in opened:
        dock.close()


def spooled_segments(dock: Dock) -> list[Path]:
    return [p for p in dock.cfg.spool_path.rglob("seg-*") if p.is_file()]


def assert_waiting_untouched(dock: Dock, store: Store, camera: TestCamera, clip_id: str) -> None:
    row = dock.ledger.get(DEVICE_ID, clip_id)
    assert not row.state.terminal and row.state.rank < ClipState.STORED.rank
    assert camera.erase_requests == [] and clip_id in camera.clips
    assert store.clip_ids() == []


def test_a_clip_that_would_eat_into_the_reserve_is_not_started_and_waits(
    live_store: Server,
    store: Store,
    camera: TestCamera,
    camera_url: str,
    clip: SealedClip,
    dock_cfg: DockConfig,
    open_dock: OpenDock,
) -> None:
    disk = shutil.disk_usage(dock_cfg.data_dir).total
    tight = open_dock(dock_cfg.model_copy(update={"spool_reserve_bytes": 2 * disk}))

    with pytest.raises(SpoolFull, match=f"spool folder {dock_cfg.spool_path} has .* bytes free"):
        tight.offloader.offload(tight.camera(camera_url))

    assert_waiting_untouched(tight, store, camera, clip.clip_id)
    assert "spool_reserve_bytes" in (tight.ledger.get(DEVICE_ID, clip.clip_id).last_error or "")
    assert spooled_segments(tight) == []  # not one segment byte was fetched


def test_a_clip_that_waited_for_room_goes_through_once_the_reserve_allows_it(
    live_store: Server,
    store: Store,
    camera: TestCamera,
    camera_url: str,
    clip: SealedClip,
    dock_cfg: DockConfig,
    open_dock: OpenDock,
) -> None:
    disk = shutil.disk_usage(dock_cfg.data_dir).total
    tight = open_dock(dock_cfg.model_copy(update={"spool_reserve_bytes": 2 * disk}))
    with pytest.raises(SpoolFull):
        tight.offloader.offload(tight.camera(camera_url))
    tight.close()

    relaxed = open_dock(dock_cfg.model_copy(update={"spool_reserve_bytes": 0}))
    (row,) = relaxed.offloader.offload(relaxed.camera(camera_url))

    assert row.state == ClipState.DONE
    assert store.clip_ids() == [clip.clip_id] and camera.erase_requests == [clip.clip_id]


@pytest.fixture
def tiny_spool(dock_cfg: DockConfig) -> Iterator[Path]:
    """The dock's spool folder on a 256 KiB tmpfs of its own (needs root and mount rights)."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("a disk-full spool needs a tmpfs: run as root with mount(8) available")
    spool = dock_cfg.spool_path
    spool.mkdir(parents=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=256k,mode=0700", "tmpfs", str(spool)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs for the spool here: {mounted.stderr.strip()}")
    yield spool
    subprocess.run(["umount", "-l", str(spool)], check=True)


def fill(disk: Path) -> Path:
    """Take every free byte of ``disk`` with one file, as another program filling it would."""
    filler = disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        while True:
            os.write(fd, bytes(64 * 1024))
    except OSError as exc:
        assert exc.errno == errno.ENOSPC
    finally:
        os.close(fd)
    return filler


def test_a_disk_that_fills_up_mid_segment_is_spool_full_and_the_clip_resumes_after(
    live_store: Server,
    store: Store,
    camera: TestCamera,
    camera_url: str,
    clip: SealedClip,
    dock_cfg: DockConfig,
    open_dock: OpenDock,
    tiny_spool: Path,
    clock: HookClock,
) -> None:
    # The free-space check passes; the camera is cut off mid-segment, and while the dock waits
    # to resume, something else fills the disk: the resumed write meets a real ENOSPC.
    camera.cut_segment_once(clip.clip_id, 1, after=3 * CHUNK)
    fillers: list[Path] = []
    clock.on_first_sleep = lambda: fillers.append(fill(tiny_spool))
    dock = open_dock(dock_cfg.model_copy(update={"spool_reserve_bytes": 0}))

    with pytest.raises(
        SpoolFull, match=r"the spool is full while writing .*seg-000001\.bwcs\.part"
    ):
        dock.offloader.offload(dock.camera(camera_url))

    assert_waiting_untouched(dock, store, camera, clip.clip_id)
    assert dock.ledger.get(DEVICE_ID, clip.clip_id).attempts == RETRY.attempts
    assert (dock.spool.clip_folder(DEVICE_ID, clip.clip_id) / segment_name(0)).is_file()

    fillers[0].unlink()  # room again
    (row,) = dock.offloader.offload(dock.camera(camera_url))

    assert row.state == ClipState.DONE
    assert store.clip_ids() == [clip.clip_id] and camera.erase_requests == [clip.clip_id]
