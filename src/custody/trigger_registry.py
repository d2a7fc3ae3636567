"""The trigger registry: which BLE sources this camera trusts, with their secrets.

The dock provisions one JSON file (docs/formats/trigger.md, "Registry file"): the agency's trigger
secret and every source the camera should accept, the camera itself included (kind "peer"), so
its own recording beacon can be sealed here and authenticated by the other cameras of the agency.
The file holds secrets, so it is refused when group or world can read it, like a private key.
Keys are derived once, at load, so a receiver never runs HKDF per advertisement.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from custody import trigger
from custody.canonical import b64d, b64e, canonical_bytes, parse_json
from custody.errors import CustodyError
from custody.keys import write_atomic

FORMAT = "bwc-trigger-registry"
VERSION = 1
MAX_FILE_BYTES = 4 * 1024**2  # ~20,000 sources: far more than one agency's registry
KINDS = frozenset({"holster", "lightbar", "siren", "door", "peer", "test"})
_FIELDS = {"format", "version", "agency_secret", "self_source_id", "sources"}
_SOURCE_FIELDS = {"id", "name", "kind", "secret", "rssi_min_dbm", "enabled"}


class TriggerRegistryError(CustodyError):
    """The trigger registry file is missing, unreadable, invalid or not private enough."""


@dataclass(frozen=True, slots=True)
class TriggerSource:
    """A registered trigger source: a holster sensor, a light bar, a door, or a peer camera."""

    source_id: int  #: u32, the id its payloads carry
    name: str  #: what the manifest and status name it by, e.g. "holster-1187" or "cam-0042"
    kind: str  #: one of :data:`KINDS`
    secret: bytes = field(repr=False)  #: 32 bytes; its MAC key is derived from it
    rssi_min_dbm: int = -90  #: weaker advertisements are ignored (a car across the car park)
    enabled: bool = True

    def __post_init__(self) -> None:
        if not 0 <= self.source_id <= 2**32 - 1:
            raise TriggerRegistryError(f"trigger source id {self.source_id} is not a u32")
        if not self.name:
            raise TriggerRegistryError(f"trigger source {self.source_id:#010x} has no name")
        if self.kind not in KINDS:
            raise TriggerRegistryError(
                f"trigger source {self.name!r}: kind {self.kind!r} is not one of {sorted(KINDS)}"
            )
        if len(self.secret) != trigger.SECRET_SIZE:
            raise TriggerRegistryError(
                f"trigger source {self.name!r}: secret must be {trigger.SECRET_SIZE} bytes"
            )
        if not -127 <= self.rssi_min_dbm <= 20:
            raise TriggerRegistryError(
                f"trigger source {self.name!r}: rssi_min_dbm {self.rssi_min_dbm} is outside "
                "BLE's -127..20 dBm"
            )


class TriggerRegistry:
    """The agency secret and the registered sources, with their derived keys. Read-only."""

    def __init__(
        self,
        agency_secret: bytes,
        sources: Iterable[TriggerSource],
        *,
        self_source_id: int | None = None,
    ) -> None:
        if len(agency_secret) != trigger.SECRET_SIZE:
            raise TriggerRegistryError(
                f"the agency trigger secret must be {trigger.SECRET_SIZE} bytes"
            )
        self._agency_secret = agency_secret
        self.encryption_key = trigger.derive_encryption_key(agency_secret)
        self._sources: dict[int, TriggerSource] = {}
        self._mac_keys: dict[int, bytes] = {}
        names: set[str] = set()
        for source in sources:
            if source.source_id in self._sources:
                raise TriggerRegistryError(f"trigger source id {source.source_id:#010x} twice")
            if source.name in names:
                raise TriggerRegistryError(f"trigger source name {source.name!r} twice")
            names.add(source.name)
            self._sources[source.source_id] = source
            self._mac_keys[source.source_id] = trigger.derive_mac_key(source.secret)
        if self_source_id is not None and self_source_id not in self._sources:
            raise TriggerRegistryError(
                f"self_source_id {self_source_id:#010x} is not among the registered sources"
            )
        self.self_source_id = self_source_id

    def __repr__(self) -> str:
        return f"TriggerRegistry({len(self._sources)} sources, self={self.self_source_id})"

    def __len__(self) -> int:
        return len(self._sources)

    def __iter__(self) -> Iterator[TriggerSource]:
        return iter(self._sources.values())

    @property
    def agency_secret(self) -> bytes:
        return self._agency_secret

    def get(self, source_id: int) -> TriggerSource | None:
        return self._sources.get(source_id)

    def mac_key(self, source_id: int) -> bytes:
        return self._mac_keys[source_id]

    def by_name(self, name: str) -> TriggerSource | None:
        return next((s for s in self._sources.values() if s.name == name), None)

    # ---- the file ---------------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": VERSION,
            "agency_secret": b64e(self._agency_secret),
            "self_source_id": self.self_source_id,
            "sources": [
                {
                    "id": s.source_id,
                    "name": s.name,
                    "kind": s.kind,
                    "secret": b64e(s.secret),
                    "rssi_min_dbm": s.rssi_min_dbm,
                    "enabled": s.enabled,
                }
                for s in sorted(self._sources.values(), key=lambda s: s.source_id)
            ],
        }

    def fleet_sha256(self) -> str:
        """SHA-256 of the registry as the agency issues it to every camera: the canonical JSON
        with ``self_source_id`` null, so one profile can name the registry of a whole fleet."""
        fleet = {**self.to_json(), "self_source_id": None}
        return hashlib.sha256(canonical_bytes(fleet)).hexdigest()

    def save(self, path: Path) -> None:
        """Write the registry file, mode 0600, atomically (what the dock does when provisioning)."""
        try:
            write_atomic(path, canonical_bytes(self.to_json()) + b"\n", mode=0o600, overwrite=True)
        except CustodyError as exc:
            raise TriggerRegistryError(str(exc)) from exc

    @classmethod
    def from_json(cls, obj: object, *, what: str = "trigger registry") -> TriggerRegistry:
        doc = _object(obj, _FIELDS, what)
        if doc["format"] != FORMAT:
            raise TriggerRegistryError(f"{what}: format is {doc['format']!r}, not {FORMAT!r}")
        if doc["version"] != VERSION:
            raise TriggerRegistryError(
                f"{what}: version {doc['version']!r} is not supported (this reads {VERSION}): "
                "update the camera's firmware at the dock"
            )
        sources = doc["sources"]
        if not isinstance(sources, list):
            raise TriggerRegistryError(f"{what}: sources must be a list")
        self_id = doc["self_source_id"]
        if self_id is not None and not _is_int(self_id):
            raise TriggerRegistryError(f"{what}: self_source_id must be an integer or null")
        return cls(
            _secret(doc["agency_secret"], f"{what}.agency_secret"),
            [_source(item, f"{what}.sources[{i}]") for i, item in enumerate(sources)],
            self_source_id=self_id,
        )

    @classmethod
    def load(cls, path: Path) -> TriggerRegistry:
        """Read and check the file the dock provisioned; refused if group or others can read it."""
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        except FileNotFoundError as exc:
            raise TriggerRegistryError(
                f"trigger registry {path} does not exist: provision the camera at a dock"
            ) from exc
        except OSError as exc:
            raise TriggerRegistryError(
                f"cannot open trigger registry {path}: {exc.strerror}"
            ) from exc
        with os.fdopen(fd, "rb") as f:
            mode = os.fstat(f.fileno()).st_mode
            if mode & (stat.S_IRWXG | stat.S_IRWXO):
                raise TriggerRegistryError(
                    f"trigger registry {path} is readable by group or others "
                    f"(mode {stat.S_IMODE(mode):04o}): run 'chmod 600 {path}'"
                )
            data = f.read(MAX_FILE_BYTES + 1)
        if len(data) > MAX_FILE_BYTES:
            raise TriggerRegistryError(f"trigger registry {path} is over {MAX_FILE_BYTES} bytes")
        try:
            doc = parse_json(data.rstrip(b"\n"), what=str(path), canonical=False)
        except CustodyError as exc:
            raise TriggerRegistryError(str(exc)) from exc
        return cls.from_json(doc, what=str(path))


def _object(obj: object, fields: set[str], what: str) -> dict[str, Any]:
    if not isinstance(obj, dict):
        raise TriggerRegistryError(f"{what}: expected a JSON object")
    if set(obj) != fields:
        missing, unknown = sorted(fields - set(obj)), sorted(set(obj) - fields)
        raise TriggerRegistryError(f"{what}: missing fields {missing}, unknown fields {unknown}")
    return obj


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _secret(value: object, what: str) -> bytes:
    try:
        return b64d(value, what=what, size=trigger.SECRET_SIZE)
    except CustodyError as exc:
        raise TriggerRegistryError(str(exc)) from exc


def _source(obj: object, what: str) -> TriggerSource:
    doc = _object(obj, _SOURCE_FIELDS, what)
    for name in ("id", "rssi_min_dbm"):
        if not _is_int(doc[name]):
            raise TriggerRegistryError(f"{what}.{name} must be an integer")
    for name in ("name", "kind"):
        if not isinstance(doc[name], str):
            raise TriggerRegistryError(f"{what}.{name} must be a string")
    if not isinstance(doc["enabled"], bool):
        raise TriggerRegistryError(f"{what}.enabled must be true or false")
    return TriggerSource(
        doc["id"], doc["name"], doc["kind"], _secret(doc["secret"], f"{what}.secret"),
        doc["rssi_min_dbm"], doc["enabled"],
    )  # fmt: skip
