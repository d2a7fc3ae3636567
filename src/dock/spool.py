"""The spool: clip folders being offloaded, and the quarantine for clips that failed a check.

Layout: ``spool/<device_id>/<clip_id>/`` holds ``manifest.jsonl`` and ``seg-NNNNNN.bwcs`` as
custody's clip folder (a download in progress is ``<name>.part``). A quarantined clip moves to
``quarantine/<device_id>/<clip_id>-<wall_ns>/`` with ``why.json`` beside its files. Ids are
checked again here, so no path is ever built from an unchecked camera string.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
from pathlib import Path

from custody.errors import KeyFileError
from custody.keys import write_atomic
from dock.errors import DockSetupError, SpoolFull
from dock.ids import check_clip_id, check_device_id

WHY_NAME = "why.json"


def storage_error(exc: OSError, what: str) -> Exception:
    """The dock error for a failed spool write: SpoolFull when the disk is full."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return SpoolFull(f"the spool is full while writing {what}: free space in the data folder")
    return DockSetupError(f"cannot write {what}: {exc.strerror}; check the data folder")


def fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Spool:
    def __init__(self, spool: Path, quarantine: Path, *, reserve_bytes: int = 0) -> None:
        """``reserve_bytes`` stay free whatever is spooled (the ledger and logs need room too)."""
        self.root, self.quarantine_root = spool, quarantine
        self.reserve_bytes = reserve_bytes

    def require_room(self, device_id: str, clip_id: str, needed: int) -> None:
        """SpoolFull unless the clip's folder has ``needed`` bytes free on top of the reserve.

        Checked before a clip is spooled, so the dock never starts a clip it cannot hold; a disk
        filled by someone else meanwhile still ends a write with SpoolFull (``storage_error``).
        """
        folder = self.clip_folder(device_id, clip_id)
        try:
            stat = os.statvfs(folder)
        except OSError as exc:
            raise storage_error(exc, str(folder)) from exc
        free = stat.f_bavail * stat.f_frsize
        if free < needed + self.reserve_bytes:
            raise SpoolFull(
                f"the spool folder {self.root} has {free} bytes free; clip {clip_id} needs "
                f"{needed} bytes plus the {self.reserve_bytes}-byte reserve "
                f"(spool_reserve_bytes): free space there; the clip waits on its camera"
            )

    def clip_folder(self, device_id: str, clip_id: str) -> Path:
        return self.root / check_device_id(device_id) / check_clip_id(clip_id)

    def prepare(self, device_id: str, clip_id: str) -> Path:
        folder = self.clip_folder(device_id, clip_id)
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise storage_error(exc, str(folder)) from exc
        if folder.is_symlink() or not folder.is_dir():
            raise DockSetupError(f"{folder} is not a plain folder: remove it and retry")
        return folder

    def remove(self, device_id: str, clip_id: str) -> None:
        """Delete a clip's spool folder (after its erase is recorded); a missing one is fine."""
        folder = self.clip_folder(device_id, clip_id)
        try:
            shutil.rmtree(folder)
        except FileNotFoundError:
            return
        except OSError as exc:
            raise DockSetupError(f"cannot clean {folder}: {exc.strerror}") from exc

    def quarantine(self, device_id: str, clip_id: str, why: str, *, wall_ns: int) -> Path:
        """Move the clip's files out of the spool and write why; returns the quarantine folder."""
        source = self.clip_folder(device_id, clip_id)
        target = self.quarantine_root / check_device_id(device_id) / f"{clip_id}-{wall_ns}"
        record = {"device_id": device_id, "clip_id": clip_id, "why": why, "wall_ns": wall_ns}
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            if source.is_dir():
                source.rename(target)
            else:
                target.mkdir()
            write_atomic(
                target / WHY_NAME,
                (json.dumps(record, indent=2) + "\n").encode(),
                mode=0o644,
                overwrite=True,
            )
            fsync_dir(target.parent)
        except OSError as exc:
            raise storage_error(exc, f"the quarantine record {target}") from exc
        except KeyFileError as exc:  # write_atomic's own wording of an OSError
            raise DockSetupError(f"quarantine record: {exc}") from exc
        return target
