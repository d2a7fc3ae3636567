"""A/B firmware slots: a signed bundle goes into the inactive slot, is tried once, then kept.

Layout on the Storage port (``firmware/``): two slot folders ``a/`` and ``b/``, each holding the
bundle's signed header line (``header.line``) and its payload under ``files/``, and ``state.json``:
the active slot, the version in each slot, and the slot being tried with its boot attempts.
``state.json`` is only ever replaced whole (write_durable: fsync, rename, fsync folder), and a slot
is named in it only after every one of its files and folders is durable, so a power cut at any
point leaves the old state (old slot boots) or the new one (new slot is tried, and re-verified).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO, Any, NoReturn, Protocol

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from custody.errors import FormatError
from custody.firmware_bundle import (
    CHUNK,
    BundleHeader,
    check_path,
    parse_header,
    read_header,
    verify_bundle,
)
from custody.release import check_release_signature
from custody.report import Report
from device.durable import ensure_durable_folder
from device.errors import BundleRefused, FirmwareUpdateError
from hw.ports.storage import Storage, write_durable

ROOT = "firmware"
STATE = f"{ROOT}/state.json"
SLOTS = ("a", "b")
HEADER = "header.line"
MAX_ATTEMPTS = 1  # tryboot: the new slot gets exactly one boot to report healthy
WRITE_CHUNK = 64 * 1024


class AuditSink(Protocol):
    """Where install and boot decisions are recorded (DeviceAuditLog in the firmware)."""

    def append(self, event: str, data: dict[str, Any]) -> int: ...


@dataclass(frozen=True)
class SlotState:
    active: str | None = None
    versions: dict[str, str | None] = field(default_factory=lambda: dict.fromkeys(SLOTS))
    trying: str | None = None
    attempts: int = 0

    def to_bytes(self) -> bytes:
        obj = {"active": self.active, "versions": self.versions, "trying": self.trying,
               "attempts": self.attempts}  # fmt: skip
        return json.dumps(obj, sort_keys=True).encode() + b"\n"

    @staticmethod
    def from_bytes(data: bytes) -> SlotState:
        obj = json.loads(data)
        return SlotState(obj["active"], dict(obj["versions"]), obj["trying"], int(obj["attempts"]))


@dataclass(frozen=True)
class BootedSlot:
    slot: str
    version: str
    header: BundleHeader
    trial: bool  # True while the slot must still call mark_healthy


def other(slot: str | None) -> str:
    return "b" if slot == "a" else "a"


class SlotManager:
    """Installs verified bundles into the inactive slot and chooses the slot at boot."""

    def __init__(
        self, storage: Storage, trusted: Iterable[Ed25519PublicKey], *, target: str,
        audit: AuditSink, progress: Callable[[str], None] | None = None,
        factory_version: str | None = None,
    ) -> None:  # fmt: skip
        self._storage = storage
        #: the release keys bundles and slots must be signed by; the owner may replace the list
        #: when keys are provisioned (device.updates reloads it before each install)
        self.trusted = list(trusted)
        self._target = target
        #: the version the factory image runs while no slot is active; downgrades count from it
        self.factory_version = factory_version
        self._audit = audit
        # called after each durable step; the kill test cuts power there
        self._progress = progress or (lambda step: None)
        self.booted: BootedSlot | None = None

    # State

    def state(self) -> SlotState:
        if not self._storage.exists(STATE):
            return SlotState()
        try:
            return SlotState.from_bytes(self._storage.read_bytes(STATE))
        except (ValueError, KeyError, TypeError) as exc:
            raise FirmwareUpdateError(
                f"{STATE} is damaged ({exc}): reflash the camera's firmware card"
            ) from exc

    def _save(self, state: SlotState, step: str) -> None:
        ensure_durable_folder(self._storage, ROOT)
        write_durable(self._storage, STATE, state.to_bytes())
        self._progress(step)

    # Install

    def install(self, bundle: Path) -> str:
        """Verify ``bundle``, write it to the inactive slot and mark that slot to be tried once."""
        if self.booted is not None and self.booted.trial:
            # the inactive slot is the one running: never overwrite the firmware in use
            self._refuse(bundle, "on trial", "the running firmware is being tried; mark it "
                         "healthy or reboot before installing another bundle")  # fmt: skip
        state = self.state()
        current = state.versions[state.active] if state.active else self.factory_version
        report = self._verify(bundle, current)
        if not report.ok:
            first = report.first_failure
            assert first is not None
            self._refuse(bundle, first.name, first.detail)
        verified = _header_of(bundle)
        slot = other(state.active)
        # forget the slot before touching it: from here a cut boots the active slot
        self._save(replace(state, versions={**state.versions, slot: None}, trying=None,
                           attempts=0), "forget")  # fmt: skip
        try:
            version = self._extract(bundle, slot, verified)
        except (OSError, FormatError, FirmwareUpdateError) as exc:
            reason = f"writing slot {slot} failed: {exc}"
            self._audit.append("firmware.failed", {"bundle": bundle.name, "reason": reason})
            raise FirmwareUpdateError(
                f"firmware bundle {bundle.name}: {reason}; the camera keeps firmware {current}"
            ) from exc
        state = self.state()
        self._save(replace(state, versions={**state.versions, slot: version}, trying=slot,
                           attempts=0), "trying")  # fmt: skip
        self._audit.append("firmware.installed", {"slot": slot, "version": version,
                                                  "bundle": bundle.name})  # fmt: skip
        return slot

    def _verify(self, bundle: Path, current: str | None) -> Report:
        try:
            report = verify_bundle(bundle, self.trusted, target=self._target,
                                   current_version=current)  # fmt: skip
        except FormatError as exc:
            self._refuse(bundle, "read", str(exc))
        if report.ok:
            need = bundle.stat().st_size
            free = self._storage.free_bytes()
            if need > free:
                report.failed("free space", f"needs {need} bytes, {free} free on the card")
        return report

    def _refuse(self, bundle: Path, check: str, detail: str) -> NoReturn:
        reason = f"{check}: {detail}"
        self._audit.append("firmware.refused", {"bundle": bundle.name, "reason": reason})
        raise BundleRefused(f"firmware bundle {bundle.name} refused: {reason}", check)

    def _extract(self, bundle: Path, slot: str, verified: BundleHeader) -> str:
        folder = f"{ROOT}/{slot}"
        self._wipe(folder)
        self._storage.mkdir(f"{folder}/files")
        self._storage.fsync_dir(ROOT)
        self._progress("wiped")
        with bundle.open("rb") as stream:
            header, _ = read_header(stream)
            if header != verified:
                raise FirmwareUpdateError("the bundle was replaced after it was verified")
            for entry in header.files:
                self._write_file(stream, f"{folder}/files/{check_path(entry.path)}", entry.sha256,
                                 entry.size)  # fmt: skip
        self._sync_folders(f"{folder}/files", header)
        write_durable(self._storage, f"{folder}/{HEADER}", header.to_line())
        self._storage.fsync_dir(ROOT)
        self._progress("header")
        return header.firmware_version

    def _write_file(self, stream: IO[bytes], path: str, sha256: str, size: int) -> None:
        # hashed again while copying: the bundle may have changed since it was verified
        parent = path.rpartition("/")[0]
        self._storage.mkdir(parent)
        digest, left = hashlib.sha256(), size
        with self._storage.open_write(path) as out:
            while left > 0:
                chunk = stream.read(min(WRITE_CHUNK, left))
                if not chunk:
                    break
                digest.update(chunk)
                out.write(chunk)
                left -= len(chunk)
                self._progress(f"write {path}")
            out.fsync()
        if left or digest.hexdigest() != sha256:
            raise FirmwareUpdateError(f"{path} changed after the bundle was verified")
        self._progress(f"synced {path}")

    def _sync_folders(self, files_root: str, header: BundleHeader) -> None:
        folders = {files_root}
        for entry in header.files:
            parts = entry.path.split("/")[:-1]
            folders.update(f"{files_root}/{'/'.join(parts[:i])}" for i in range(1, len(parts) + 1))
        for folder in sorted(folders, key=len, reverse=True):
            self._storage.fsync_dir(folder)
        self._storage.fsync_dir(files_root.rpartition("/")[0])

    def _wipe(self, path: str) -> None:
        if not self._storage.exists(path):
            return
        # the port has no is_dir; the slot area is read through the port's own root
        if (self._storage.root / path).is_dir():
            for name in self._storage.listdir(path):
                self._wipe(f"{path}/{name}")
            self._storage.rmdir(path)
        else:
            self._storage.remove(path)

    # Boot

    def boot(self) -> BootedSlot | None:
        """The slot to run: the tried slot on its one attempt, else the active one, verified;
        None when no slot was ever made active (the factory image runs)."""
        state = self.state()
        if state.trying is not None:
            if state.attempts < MAX_ATTEMPTS:
                self._save(replace(state, attempts=state.attempts + 1), "attempt")
                tried = self._verified(state.trying, state.versions[state.trying])
                if tried is not None:
                    self.booted = BootedSlot(state.trying, tried.firmware_version, tried, True)
                    return self.booted
                reason = "its files do not verify"
            else:
                reason = "it did not report healthy before the next boot"
            self._save(replace(state, trying=None, attempts=0), "fallback")
            self._audit.append("firmware.rollback", {"slot": state.trying, "reason": reason})
            state = self.state()
        if state.active is None:
            self.booted = None
            return None
        header = self._verified(state.active, state.versions[state.active])
        if header is None:
            raise FirmwareUpdateError(
                f"firmware slot {state.active} does not verify: reflash the camera"
            )
        self.booted = BootedSlot(state.active, header.firmware_version, header, False)
        return self.booted

    def mark_healthy(self) -> None:
        """The tried slot runs well: it becomes the active slot."""
        booted = self.booted
        if booted is None or not booted.trial:
            return
        state = self.state()
        if state.trying != booted.slot:
            raise FirmwareUpdateError(f"slot {booted.slot} is no longer being tried: reboot")
        # recorded before it is done: a power cut in between leaves a record followed by the
        # rollback of the next boot, never an active slot the log does not mention
        self._audit.append("firmware.activated", {"slot": booted.slot, "version": booted.version})
        self._save(replace(state, active=booted.slot, trying=None, attempts=0), "healthy")
        self.booted = replace(booted, trial=False)

    def verify_slot(self, slot: str) -> Report:
        """Signature of the slot's kept header, then every file against its size and SHA-256."""
        report = Report(f"firmware slot {slot}")
        folder = f"{ROOT}/{slot}"
        try:
            header = parse_header(self._storage.read_bytes(f"{folder}/{HEADER}").rstrip(b"\n"))
        except (OSError, FormatError) as exc:
            report.failed("header", f"no readable signed header: {exc}")
            return report
        check_release_signature(
            report, what="firmware bundle", signer_key_id=header.release_key_id,
            signature=header.signature, message=header.signed_message(), trusted=self.trusted,
        )  # fmt: skip
        for entry in header.files:
            path = f"{folder}/files/{entry.path}"
            if not self._storage.exists(path) or _hash(self._storage, path) != entry.sha256:
                report.failed("files", f"{entry.path} is missing or damaged")
                return report
        report.passed("files", f"all {len(header.files)} files match the signed header")
        return report

    def _verified(self, slot: str, version: str | None) -> BundleHeader | None:
        if version is None or not self.verify_slot(slot).ok:
            return None
        header = parse_header(self._storage.read_bytes(f"{ROOT}/{slot}/{HEADER}").rstrip(b"\n"))
        return header if header.firmware_version == version else None


def _hash(storage: Storage, path: str) -> str:
    digest = hashlib.sha256()
    with storage.open_read(path) as stream:
        while chunk := stream.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _header_of(bundle: Path) -> BundleHeader:
    with bundle.open("rb") as stream:
        return read_header(stream)[0]
