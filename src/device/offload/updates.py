"""Updates over the offload API (docs/formats/offload.md "Updates"): what runs, a bundle, a reboot.

A bundle is streamed to the card (``firmware/incoming.bundle``) through the Storage port a chunk
at a time, never whole in memory, and fsynced; only then does the slot manager verify it and
write it to the inactive slot, in the thread pool. The incoming file is removed whatever the
outcome. Every refusal is audited ``firmware.refused`` once: the ones decided here (length,
space, truncation, trial, busy) by this module, the bundle's own checks by the slot manager.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, Protocol

import structlog

from device.audit_log import DeviceAuditLog
from device.durable import ensure_durable_folder
from device.errors import (
    BundleRefused,
    OffloadBadRequest,
    OffloadConflict,
    OffloadError,
    OffloadInsufficientStorage,
    OffloadLengthRequired,
    OffloadRejected,
)
from device.profile import PROFILE_FILE, check_profile
from device.slots import ROOT
from device.updates import INCOMING
from hw.ports.storage import Storage, StorageFile

if TYPE_CHECKING:
    from starlette.requests import Request

INCOMING_NAME = INCOMING.rpartition("/")[2]
log = structlog.get_logger(__name__)


class Slots(Protocol):
    """The camera's firmware slots (device.updates.FirmwareSlots)."""

    @property
    def on_trial(self) -> bool: ...

    def install(self, bundle: Path) -> tuple[str, str]: ...

    def status(self) -> dict[str, Any]: ...


class CameraUpdates:
    """The update half of the offload API, without HTTP routing."""

    def __init__(
        self, storage: Storage, keys_dir: Path, audit: DeviceAuditLog, slots: Slots, *,
        reserve_bytes: Callable[[], int], running_profile: tuple[str, int],
        reboot: Callable[[], None] | None,
    ) -> None:  # fmt: skip
        self._storage = storage
        self._keys_dir = keys_dir
        self._audit = audit
        self._slots = slots
        self._reserve = reserve_bytes
        self._running_profile = running_profile
        self._reboot = reboot
        self._receiving = threading.Lock()  # one bundle at a time: they share the incoming file

    # Status.

    def status(self) -> dict[str, Any]:
        profile_id, version = self._running_profile
        return {
            **self._slots.status(),
            "profile_id": profile_id,
            "profile_version": version,
            "profile_pending": self._pending_profile(),
        }

    def _pending_profile(self) -> dict[str, Any] | None:
        if not self._storage.exists(PROFILE_FILE):
            return None
        _, kept = check_profile(self._storage.read_bytes(PROFILE_FILE), self._keys_dir)
        if kept is None or kept.profile_id == self._running_profile[0]:
            return None
        return {"profile_id": kept.profile_id, "profile_version": kept.profile_version}

    # Firmware.

    async def receive(self, request: Request) -> dict[str, str]:
        """Take the bundle in ``request``'s body and install it; the contract's answer."""
        from starlette.concurrency import (
            run_in_threadpool,
        )  # loaded at the first dock, with FastAPI

        if not self._receiving.acquire(blocking=False):
            self._refuse(
                OffloadConflict,
                "busy: another bundle is being received; send it again once that one is answered",
            )
        try:
            length = self._admit(request.headers.get("content-length"))
            try:
                await self._stream(request, length)
                return await run_in_threadpool(self._install)
            finally:
                await run_in_threadpool(self._discard)
        finally:
            self._receiving.release()

    def _admit(self, header: str | None) -> int:
        """Everything that can be refused before a byte of the body is read."""
        if header is None:
            self._refuse(
                OffloadLengthRequired,
                "length required: send the bundle with a Content-Length header, not chunked",
            )
        if not header.isdigit() or len(header) > 15:
            self._refuse(OffloadBadRequest, f"Content-Length {header[:20]!r} is not a byte count")
        length = int(header)
        if self._slots.on_trial:
            self._refuse(
                OffloadConflict,
                "on trial: the running firmware is itself on trial; reboot, or wait until it "
                "reports healthy, then send the bundle again",
            )
        room = self._storage.free_bytes() - self._reserve()
        if length > room:
            self._refuse(
                OffloadInsufficientStorage,
                f"free space: the bundle is {length} bytes, the card has {max(room, 0)} free "
                "above its reserve: offload and erase clips first",
            )
        return length

    async def _stream(self, request: Request, length: int) -> None:
        from starlette.concurrency import run_in_threadpool
        from starlette.requests import ClientDisconnect

        out = await run_in_threadpool(self._open_incoming)
        got = 0
        try:
            async for chunk in request.stream():
                got += len(chunk)
                if got > length:
                    self._refuse(
                        OffloadBadRequest,
                        f"overlong: the body ran past its Content-Length of {length} bytes",
                    )
                if chunk:
                    await run_in_threadpool(out.write, chunk)
            if got < length:
                raise ClientDisconnect()
            await run_in_threadpool(out.fsync)
        except ClientDisconnect as exc:
            log.info("offload.bundle_truncated", received=got, length=length)
            reason = f"truncated: the body ended after {got} of {length} bytes (the dock hung up)"
            self._refuse(OffloadBadRequest, f"{reason}; send the bundle again", cause=exc)
        finally:
            await run_in_threadpool(out.close)

    def _open_incoming(self) -> StorageFile:
        ensure_durable_folder(self._storage, ROOT)
        return self._storage.open_write(INCOMING)

    def _install(self) -> dict[str, str]:
        try:
            slot, version = self._slots.install(self._storage.root / INCOMING)
        except BundleRefused as exc:  # audited by the slot manager
            status = OffloadConflict if exc.check == "on trial" else OffloadRejected
            raise status(str(exc)) from exc
        return {"slot": slot, "firmware_version": version, "applies": "reboot"}

    def _discard(self) -> None:
        if self._storage.exists(INCOMING):
            self._storage.remove(INCOMING)
            self._storage.fsync_dir(ROOT)

    def _refuse(
        self, kind: type[OffloadError], reason: str, cause: BaseException | None = None
    ) -> NoReturn:
        self._audit.append("firmware.refused", {"bundle": INCOMING_NAME, "reason": reason})
        raise kind(reason) from cause

    # Reboot.

    def reboot_handler(self) -> Callable[[], None]:
        """What to run once the answer is sent; refuses if this camera cannot reboot."""
        reboot = self._reboot
        if reboot is None:
            raise OffloadConflict(
                "this camera cannot reboot on request (no reboot handler): power-cycle it"
            )
        self._audit.append("reboot.requested", {})
        return reboot
