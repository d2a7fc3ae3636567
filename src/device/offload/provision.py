"""Provisioning from the dock: the officer who wears the camera, its trigger registry, its keys
and its configuration profile.

Each write is checked in full before it replaces anything (a registry that does not parse, a PEM
of the wrong algorithm: 422, nothing changed), written durably (temporary name, fsync, rename,
fsync of the folder) and then audited. The officer assignment lives on the card, through the
Storage port: ``PUT /officer`` or accepting a profile that names an officer makes it, the most
recent wins, and every later boot keeps it. Key files and the registry live in ``keys_dir``,
beside the device key, where the composition root loads them at boot, and are written with
custody's atomic key-file writer, which also sets the registry's private mode.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Protocol

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey

from custody.canonical import canonical_bytes, parse_json, sha256_hex
from custody.errors import CustodyError, FormatError
from custody.keys import PublicKey, key_id, load_public_key, public_pem, write_atomic
from custody.schema import require_fields
from custody.trigger_registry import MAX_FILE_BYTES, TriggerRegistry, TriggerRegistryError
from device.audit_log import DeviceAuditLog
from device.durable import ensure_durable_folder, parent_of
from device.errors import OffloadBadRequest, OffloadConflict, OffloadRejected
from device.offload.session import DOCKS_FOLDER
from device.profile import PROFILE_FILE, check_profile, load_active_profile
from hw.ports.storage import Storage, write_durable

OFFICER_FILE = "config/officer.json"
REGISTRY_NAME = "triggers.json"
OFFICER_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
DOCK_NAME_RE = re.compile(r"dock-([A-Za-z0-9][A-Za-z0-9._-]{0,63})")
RELEASE_NAME_RE = re.compile(r"release-([A-Za-z0-9][A-Za-z0-9._-]{0,63})")
MAX_PEM_BYTES = 8 * 1024


class OfficerHolder(Protocol):
    """Where the running firmware takes the officer that later clips carry."""

    def officer_id(self) -> str: ...

    def assign_officer(self, officer_id: str) -> None: ...


def load_officer(storage: Storage) -> str | None:
    """The officer a dock assigned (read at boot by the composition root), if any."""
    if not storage.exists(OFFICER_FILE):
        return None
    try:
        doc = parse_json(storage.read_bytes(OFFICER_FILE).rstrip(b"\n"), what=OFFICER_FILE)
        require_fields(doc, {"officer_id": str}, OFFICER_FILE)
    except FormatError:
        return None  # written only whole (write_durable); a damaged file assigns nobody
    officer = doc["officer_id"]
    return officer if isinstance(officer, str) and OFFICER_RE.fullmatch(officer) else None


class Provisioner:
    def __init__(
        self, storage: Storage, keys_dir: Path, audit: DeviceAuditLog, holder: OfficerHolder
    ) -> None:
        self._storage = storage
        self._keys_dir = keys_dir
        self._audit = audit
        self._holder = holder

    def officer(self, body: dict[str, Any]) -> dict[str, str]:
        try:
            require_fields(body, {"officer_id": str}, "officer request")
        except FormatError as exc:
            raise OffloadBadRequest(str(exc)) from exc
        officer = body["officer_id"]
        if not OFFICER_RE.fullmatch(officer):
            raise OffloadRejected(
                f"officer id {officer[:80]!r} does not match {OFFICER_RE.pattern}: "
                "use the agency's officer id"
            )
        self._assign(officer, {})
        return {"officer_id": officer}

    def _assign(self, officer: str, why: dict[str, str]) -> None:
        """Assign the camera now and for every later boot: the most recent assignment wins."""
        previous = self._holder.officer_id()
        ensure_durable_folder(self._storage, parent_of(OFFICER_FILE))
        doc = canonical_bytes({"officer_id": officer}) + b"\n"
        write_durable(self._storage, OFFICER_FILE, doc)
        self._holder.assign_officer(officer)
        detail = {"officer_id": officer, "previous": previous, **why}
        self._audit.append("officer.assigned", detail)

    def triggers(self, body: bytes) -> dict[str, Any]:
        if len(body) > MAX_FILE_BYTES:
            raise OffloadRejected(f"trigger registry over {MAX_FILE_BYTES} bytes: split it")
        try:
            doc = parse_json(body.strip(), what="trigger registry", canonical=False)
            registry = TriggerRegistry.from_json(doc)
        except (FormatError, TriggerRegistryError) as exc:
            raise OffloadRejected(f"{exc}: nothing was changed") from exc
        path = self._keys_dir / REGISTRY_NAME
        registry.save(path)  # 0600, atomic and durable: it holds the sources' secrets
        detail = {
            "sources": len(registry),
            "self_source_id": registry.self_source_id,
            "sha256": sha256_hex(path.read_bytes()),
        }
        self._audit.append("triggers.provisioned", detail)
        return {"sources": len(registry)}

    def profile(self, body: bytes) -> dict[str, Any]:
        """Keep a verified, newer profile as the active one; it applies at the next boot, but
        the officer it names (if any) is assigned now, as ``PUT /officer`` would."""
        report, profile = check_profile(body, self._keys_dir)
        failure = report.first_failure
        reason = failure.describe() if failure is not None else "nothing was checked"
        officer = "" if profile is None else profile.settings["officer_id"]
        if officer and not OFFICER_RE.fullmatch(officer):
            reason = f"settings: officer_id {officer!r} does not match {OFFICER_RE.pattern}"
            profile = None
        if profile is None:
            self._audit.append("profile.refused", {"reason": reason})
            raise OffloadRejected(f"profile refused, nothing was changed: {reason}")
        active = load_active_profile(self._storage, self._keys_dir)
        if active is not None and profile.profile_version <= active.profile_version:
            reason = (
                f"version {profile.profile_version} is not newer than the active "
                f"{active.name!r} version {active.profile_version}"
            )
            self._audit.append("profile.refused", {"reason": reason})
            raise OffloadConflict(
                f"profile refused, nothing was changed: {reason}: raise profile_version and sign"
            )
        if officer:  # first: a power cut before the profile is written leaves a profile to resend
            self._assign(officer, {"by": "profile", "profile_id": profile.profile_id})
        ensure_durable_folder(self._storage, parent_of(PROFILE_FILE))
        write_durable(self._storage, PROFILE_FILE, body)
        detail = {
            "profile_id": profile.profile_id,
            "version": profile.profile_version,
            "name": profile.name,
            "previous_profile_id": None if active is None else active.profile_id,
        }
        self._audit.append("profile.applied", detail)
        return {
            "profile_id": profile.profile_id,
            "profile_version": profile.profile_version,
            "applies": "next boot",
        }

    def key(self, name: str, body: bytes) -> dict[str, str]:
        path, wanted = self._key_target(name)
        key = _parse_public_pem(body, name)
        if not isinstance(key, wanted):
            algorithm = "X25519" if wanted is X25519PublicKey else "Ed25519"
            raise OffloadRejected(
                f"key {name} must be an {algorithm} public key; this PEM holds another kind: "
                "nothing was changed"
            )
        previous = _key_id_of(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, public_pem(key), mode=0o644, overwrite=True)
        kid = key_id(key)
        detail = {"name": name, "key_id": kid, "previous_key_id": previous}
        self._audit.append("keys.provisioned", detail)
        return {"name": name, "key_id": kid}

    def _key_target(self, name: str) -> tuple[Path, type]:
        if name == "agency":
            return self._keys_dir / "agency.pub.pem", X25519PublicKey
        if name == "store":
            return self._keys_dir / "store.pub.pem", Ed25519PublicKey
        dock = DOCK_NAME_RE.fullmatch(name)
        if dock is not None:
            return self._keys_dir / DOCKS_FOLDER / f"{dock.group(1)}.pub.pem", Ed25519PublicKey
        if RELEASE_NAME_RE.fullmatch(name):  # what profiles are verified against
            return self._keys_dir / f"{name}.pub.pem", Ed25519PublicKey
        raise OffloadBadRequest(
            f"key name {name[:80]!r} is not agency, store, dock-<id> ({DOCK_NAME_RE.pattern}) "
            f"or release-<id>"
        )


def _parse_public_pem(body: bytes, name: str) -> PublicKey:
    if len(body) > MAX_PEM_BYTES:
        raise OffloadRejected(f"key {name}: over {MAX_PEM_BYTES} bytes is not a public key PEM")
    if b"PRIVATE KEY" in body:
        raise OffloadRejected(
            f"key {name}: this is a private key; send only the public half (*.pub.pem)"
        )
    try:
        key = serialization.load_pem_public_key(body)
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise OffloadRejected(
            f"key {name}: not a SubjectPublicKeyInfo PEM public key: nothing was changed"
        ) from exc
    if not isinstance(key, Ed25519PublicKey | X25519PublicKey):
        raise OffloadRejected(f"key {name}: a {type(key).__name__}; expected Ed25519 or X25519")
    return key


def _key_id_of(path: Path) -> str | None:
    if not path.exists():
        return None
    try:
        return key_id(load_public_key(path))
    except CustodyError:
        return None
