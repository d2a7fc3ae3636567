"""What the offload API does, without HTTP: status, time sync and the erase that needs a receipt.

Erase is the one request that destroys footage, so it trusts nothing the dock says: the receipt
is checked by ``custody.receipt.verify_receipt`` against the camera's own manifest and its own
provisioned store key. Only then is ``clip.erased`` appended to the audit log and signed (a
checkpoint), and only after that are the segments, then the manifest (with the wrapped data key)
deleted. A clip whose erase is recorded is never offered again, even if a power cut interrupted
the deletion; asking again finishes it.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any, Protocol

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from custody.errors import CustodyError, FormatError
from custody.keys import load_verify_key
from custody.receipt import Receipt, parse_receipt, verify_receipt
from custody.schema import require_fields
from device.audit_log import DeviceAuditLog
from device.errors import OffloadBadRequest, OffloadConflict, OffloadNotFound, OffloadRejected
from device.offload.clips import ClipStore, SealedClip, check_path_clip_id
from device.offload.provision import OfficerHolder, Provisioner
from device.offload.session import SessionGate
from device.offload.updates import CameraUpdates
from hw.ports.battery import BatteryReading
from hw.ports.clock import Clock

ERASED = "clip.erased"
STORE_KEY = "store.pub.pem"


class Host(OfficerHolder, Protocol):
    """What the running firmware tells and takes from the offload API."""

    def battery(self) -> BatteryReading | None: ...

    def time_synced(self, device_minus_dock_ns: int) -> None: ...


class OffloadService:
    def __init__(
        self,
        gate: SessionGate,
        clips: ClipStore,
        audit: DeviceAuditLog,
        host: Host,
        clock: Clock,
        keys_dir: Path,
    ) -> None:
        self.gate = gate
        self.clips = clips
        self.audit = audit
        self.provision = Provisioner(clips.storage, keys_dir, audit, host)
        self._host = host
        self._clock = clock
        self._keys_dir = keys_dir
        self._erase_lock = threading.Lock()
        self._erased = erased_clips(audit.read())
        #: firmware, profile and reboot (device.offload.updates); None: this camera takes none
        self.updates: CameraUpdates | None = None

    # Reading.

    def erased(self) -> frozenset[str]:
        return frozenset(self._erased)

    def listing(self) -> list[dict[str, object]]:
        return [clip.to_json() for clip in self.clips.sealed(excluding=self.erased())]

    def status(self) -> dict[str, Any]:
        ident, battery = self.gate.identity, self._host.battery()
        return {
            "device_id": ident.device_id,
            "serial": ident.serial,
            "officer_id": self._host.officer_id(),
            "firmware": ident.firmware,
            "battery_percent": None if battery is None else round(battery.percent, 1),
            "charging": None if battery is None else battery.charging,
            "free_bytes": self.clips.storage.free_bytes(),
            "wall_ns": self._clock.wall_ns(),
            "clips_pending": len(self.clips.sealed(excluding=self.erased())),
            **(self.updates.status() if self.updates is not None else {}),
        }

    def require_listed(self, clip_id: str) -> None:
        if check_path_clip_id(clip_id) in self._erased:
            raise OffloadNotFound(f"clip {clip_id} was erased after a verified receipt")

    # Time sync.

    def sync_time(self, body: dict[str, Any]) -> dict[str, int]:
        try:
            require_fields(body, {"dock_wall_ns": int}, "time request")
        except FormatError as exc:
            raise OffloadBadRequest(str(exc)) from exc
        dock = body["dock_wall_ns"]
        if dock < 0:
            raise OffloadBadRequest("dock_wall_ns must not be negative: send the dock's UTC ns")
        device = self._clock.wall_ns()
        offset = dock - device
        # Recorded, never applied: the camera's clock is not stepped, least of all under a clip.
        # Manifests keep the opposite sign (camera wall clock minus dock time).
        self._host.time_synced(-offset)
        detail = {"dock_wall_ns": dock, "device_wall_ns": device, "offset_ns": offset}
        self.audit.append("time.synced", detail)
        return {"device_wall_ns": device, "offset_ns": offset}

    # Erase.

    def erase(self, clip_id: str, body: bytes) -> dict[str, Any]:
        check_path_clip_id(clip_id)
        store_key = self._store_key()
        with self._erase_lock:
            previous = self._erased.get(clip_id)
            clip = self._sealed(clip_id)
            if clip is None:
                if previous is None:
                    raise OffloadNotFound(f"no clip {clip_id} on this camera: see GET /clips")
                receipt = self._repeat(clip_id, body, previous, store_key)
            else:
                receipt = self._verified(body, store_key, self.clips.manifest_bytes(clip_id))
                if previous is None:
                    self._record(receipt)
            self.clips.delete(clip_id, clip.segment_count if clip is not None else 0)
        return {"clip_id": clip_id, "erased": True, "evidence_id": receipt.evidence_id}

    def _store_key(self) -> Ed25519PublicKey:
        path = self._keys_dir / STORE_KEY
        if not path.exists():
            raise OffloadConflict(
                "no evidence-store key is provisioned: nothing can be erased until the dock "
                "provisions one (PUT /offload/v1/keys/store)"
            )
        try:
            return load_verify_key(path)
        except CustodyError as exc:
            raise OffloadConflict(f"the provisioned store key does not load ({exc})") from exc

    def _sealed(self, clip_id: str) -> SealedClip | None:
        try:
            return self.clips.get(clip_id)
        except OffloadNotFound:
            return None

    @staticmethod
    def _verified(body: bytes, store_key: Ed25519PublicKey, manifest: bytes) -> Receipt:
        report = verify_receipt(body, store_key, manifest)
        failure = report.first_failure
        if failure is not None or not report.ok:
            shown = failure.describe() if failure is not None else "nothing was checked"
            raise OffloadRejected(f"receipt refused, nothing erased: {shown}")
        return parse_receipt(body)

    def _repeat(
        self, clip_id: str, body: bytes, previous: dict[str, Any], store_key: Ed25519PublicKey
    ) -> Receipt:
        """An erase asked again: its receipt must be the store's and match the audit record."""
        report = verify_receipt(body, store_key)
        failure = report.first_failure
        if failure is not None:
            raise OffloadRejected(f"receipt refused: {failure.describe()}")
        receipt = parse_receipt(body)
        if (receipt.clip_id, receipt.manifest_sha256) != (clip_id, previous["manifest_sha256"]):
            raise OffloadRejected(
                f"receipt refused: clip {clip_id} was erased for manifest "
                f"{previous['manifest_sha256']}, this receipt is for {receipt.clip_id} "
                f"manifest {receipt.manifest_sha256}"
            )
        return receipt

    def _record(self, receipt: Receipt) -> None:
        detail = {
            "clip_id": receipt.clip_id,
            "evidence_id": receipt.evidence_id,
            "manifest_sha256": receipt.manifest_sha256,
            "store_key_id": receipt.store_key_id,
        }
        self.audit.append(ERASED, detail)
        self.audit.checkpoint()  # signed before a single byte of footage goes
        self._erased[receipt.clip_id] = detail


def erased_clips(log: bytes) -> dict[str, dict[str, Any]]:
    """``clip.erased`` records of the device audit log, by clip id (the log is the camera's)."""
    found: dict[str, dict[str, Any]] = {}
    for line in log.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        data = record.get("data") if isinstance(record, dict) else None
        if record.get("event") == ERASED and isinstance(data, dict):
            clip_id = data.get("clip_id")
            if isinstance(clip_id, str) and isinstance(data.get("manifest_sha256"), str):
                found[clip_id] = data
    return found
