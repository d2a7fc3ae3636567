"""Firmware bundles and the configuration profile an armorer staged at this dock.

The staged files live in ``updates/`` of the data folder: at most one bundle per hardware target
(``firmware-<target>.bundle``) and one profile (``profile.json``). Staging streams the upload to
a temporary file, fsyncs it, verifies it against the release keys the dock trusts
(``keys/release*.pub.pem``: format, signer, signature, payload size and hashes, settings), and
only then renames it into place and fsyncs the folder, so a refused or interrupted upload leaves
nothing behind and what was staged before stays as it was. Target and version checks are the
camera's (it knows its hardware and what it runs); the camera also verifies everything again.

Nothing is cached: :meth:`StagedUpdates.firmware_for` reads the bundle's header line from disk on
every call, so a stage is seen at once by bay workers already running. The staging time is the
file's modification time, set before the rename, so it survives a dock restart.
"""

from __future__ import annotations

import io
import logging
import os
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from custody.errors import CustodyError
from custody.firmware_bundle import BundleHeader, read_header, verify_bundle
from custody.keys import load_verify_key
from custody.profile import MAX_PROFILE_BYTES, Profile, parse_profile, verify_profile
from custody.report import Report
from dock.errors import DockSetupError, UpdateRefused, UpdateTooLarge

log = logging.getLogger(__name__)

CHUNK = 1024 * 1024
PROFILE_NAME = "profile.json"
_TMP_PREFIX = ".staging-"
# the hardware names custody.firmware_bundle accepts: a camera's status cannot name another file
_TARGET_RE = re.compile(r"[a-z0-9][a-z0-9-]{0,31}")


@dataclass(frozen=True)
class StagedFirmware:
    path: Path  # updates/firmware-<target>.bundle, complete and fsynced
    header: BundleHeader  # verified at staging
    size: int
    staged_at_ns: int

    def to_json(self) -> dict[str, Any]:
        return {
            "firmware_version": self.header.firmware_version,
            "target": self.header.target,
            "min_version": self.header.min_version,
            "size": self.size,
            "staged_at_ns": self.staged_at_ns,
        }


@dataclass(frozen=True)
class StagedProfile:
    data: bytes  # the signed profile file, as staged
    profile: Profile  # verified at staging
    staged_at_ns: int

    def to_json(self) -> dict[str, Any]:
        return {
            "profile_id": self.profile.profile_id,
            "profile_version": self.profile.profile_version,
            "name": self.profile.name,
            "staged_at_ns": self.staged_at_ns,
        }


def bundle_name(target: str) -> str:
    return f"firmware-{target}.bundle"


class StagedUpdates:
    """The ``updates/`` folder: stage into it (the local API), read from it (the bay workers)."""

    def __init__(self, folder: Path, release_keys_dir: Path, wall_ns: Callable[[], int]) -> None:
        self.folder = folder
        self.release_keys_dir = release_keys_dir
        self._wall_ns = wall_ns
        self._remove_torn_uploads()

    # -- staging ---------------------------------------------------------------------------

    def stage_firmware(self, stream: BinaryIO, *, limit: int) -> StagedFirmware:
        """Stage the bundle read from ``stream`` (at most ``limit`` bytes) for its target."""
        keys = self._release_keys()
        tmp = self._receive(stream, limit=limit, what="firmware bundle")
        try:
            report = verify_bundle(tmp, keys)
            _refuse_unless_ok(report, "firmware bundle refused")
            with tmp.open("rb") as file:
                header, _ = read_header(file)
            staged_at_ns = self._wall_ns()
            os.utime(tmp, ns=(staged_at_ns, staged_at_ns))
            path = self.folder / bundle_name(header.target)
            size = tmp.stat().st_size
            self._commit(tmp, path)
        except CustodyError as exc:
            raise UpdateRefused(f"firmware bundle refused: {exc}") from exc
        except OSError as exc:
            raise DockSetupError(
                f"cannot stage the bundle in {self.folder}: {exc.strerror}; check the disk"
            ) from exc
        finally:
            tmp.unlink(missing_ok=True)
        return StagedFirmware(path, header, size, staged_at_ns)

    def stage_profile(self, data: bytes) -> StagedProfile:
        """Stage a signed profile (docs/formats/profile.md); it replaces the staged one."""
        if len(data) > MAX_PROFILE_BYTES:
            raise UpdateTooLarge(
                f"profile refused: {len(data)} bytes is more than the {MAX_PROFILE_BYTES} allowed"
            )
        keys = self._release_keys()
        _refuse_unless_ok(verify_profile(data, keys), "profile refused")
        try:
            profile = parse_profile(data)
        except CustodyError as exc:
            raise UpdateRefused(f"profile refused: {exc}") from exc
        staged_at_ns = self._wall_ns()
        tmp = self._receive(io.BytesIO(data), limit=MAX_PROFILE_BYTES, what="profile")
        try:
            os.utime(tmp, ns=(staged_at_ns, staged_at_ns))
            self._commit(tmp, self.folder / PROFILE_NAME)
        except OSError as exc:
            raise DockSetupError(
                f"cannot stage the profile in {self.folder}: {exc.strerror}; check the disk"
            ) from exc
        finally:
            tmp.unlink(missing_ok=True)
        return StagedProfile(data, profile, staged_at_ns)

    # -- reading ---------------------------------------------------------------------------

    def firmware_for(self, target: str) -> StagedFirmware | None:
        """The bundle staged for ``target``, read from disk now; None when there is none."""
        if not _TARGET_RE.fullmatch(target):
            return None
        return self._read_firmware(self.folder / bundle_name(target))

    def profile(self) -> StagedProfile | None:
        path = self.folder / PROFILE_NAME
        try:
            data = path.read_bytes()
            staged_at_ns = path.stat().st_mtime_ns
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise DockSetupError(f"cannot read the staged profile {path}: {exc.strerror}") from exc
        try:
            profile = parse_profile(data)
        except CustodyError as exc:
            log.warning("staged profile %s is damaged (%s): stage it again", path, exc)
            return None
        return StagedProfile(data, profile, staged_at_ns)

    def listing(self) -> dict[str, Any]:
        """The answer of ``GET /api/v1/updates``."""
        firmware = []
        if self.folder.is_dir():
            for path in sorted(self.folder.glob("firmware-*.bundle")):
                staged = self._read_firmware(path)
                if staged is not None:
                    firmware.append(staged.to_json())
        profile = self.profile()
        return {"firmware": firmware, "profile": None if profile is None else profile.to_json()}

    # -- on disk ---------------------------------------------------------------------------

    def _read_firmware(self, path: Path) -> StagedFirmware | None:
        try:
            with path.open("rb") as file:
                header, _ = read_header(file)
                stat = os.fstat(file.fileno())
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise DockSetupError(f"cannot read the staged bundle {path}: {exc.strerror}") from exc
        except CustodyError as exc:
            # only a damaged disk gets here (staging renames verified files into place)
            log.warning("staged bundle %s is damaged (%s): stage it again", path, exc)
            return None
        if path.name != bundle_name(header.target):
            log.warning("%s holds a bundle for %s: ignored", path, header.target)
            return None
        return StagedFirmware(path, header, stat.st_size, stat.st_mtime_ns)

    def _release_keys(self) -> list[Ed25519PublicKey]:
        paths = sorted(self.release_keys_dir.glob("release*.pub.pem"))
        if not paths:
            raise UpdateRefused(
                "no release key: put the agency's release public key in "
                f"{self.release_keys_dir}/release-<id>.pub.pem"
            )
        try:
            return [load_verify_key(path) for path in paths]
        except CustodyError as exc:
            raise DockSetupError(
                f"{exc}: replace it with the agency's release public key (release-<id>.pub.pem)"
            ) from exc

    def _receive(self, stream: BinaryIO, *, limit: int, what: str) -> Path:
        """Copy ``stream`` to a new temporary file in the folder, durably; refuse past ``limit``."""
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            tmp = self.folder / f"{_TMP_PREFIX}{secrets.token_hex(8)}"
            with tmp.open("xb") as out:
                try:
                    _copy_bounded(stream, out, limit=limit, what=what)
                    out.flush()
                    os.fsync(out.fileno())
                except BaseException:
                    tmp.unlink(missing_ok=True)
                    raise
        except OSError as exc:
            raise DockSetupError(
                f"cannot write the {what} to {self.folder}: {exc.strerror}; free space or "
                "check the data folder"
            ) from exc
        return tmp

    def _commit(self, tmp: Path, path: Path) -> None:
        _fsync(tmp, os.O_RDONLY)  # the staging time set on it since it was written
        tmp.replace(path)
        _fsync(self.folder, os.O_RDONLY | os.O_DIRECTORY)

    def _remove_torn_uploads(self) -> None:
        # uploads cut short by a dock that stopped mid-way: never staged, never read
        if self.folder.is_dir():
            for path in self.folder.glob(f"{_TMP_PREFIX}*"):
                path.unlink(missing_ok=True)


def _fsync(path: Path, flags: int) -> None:
    fd = os.open(path, flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _copy_bounded(stream: BinaryIO, out: BinaryIO, *, limit: int, what: str) -> None:
    total = 0
    while chunk := stream.read(CHUNK):
        total += len(chunk)
        if total > limit:
            raise UpdateTooLarge(
                f"{what} refused: more than {limit} bytes (the dock's max_bundle_bytes): "
                "raise [dock] max_bundle_bytes or check the file"
            )
        out.write(chunk)


def _refuse_unless_ok(report: Report, what: str) -> None:
    first = report.first_failure
    if first is not None:
        raise UpdateRefused(f"{what}: {first.describe()}")
    if not report.ok:
        raise UpdateRefused(f"{what}: nothing was checked")
