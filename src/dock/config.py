"""Configuration of the dock agent, validated once at the entry point and passed down.

Paths left unset live in ``data_dir``: ``ledger.sqlite3`` (progress of every clip), ``spool/``
(clips being offloaded), ``quarantine/`` (clips that failed a check, with why),
``updates/`` (firmware and profile staged by an armorer), ``keys/release*.pub.pem`` (the agency
release keys staged updates must be signed by), ``keys/dock.key.pem`` (the dock's Ed25519
credential, custody role ``dock``), ``devices/``
(enrolled camera public keys, ``<device_id>.pub.pem``), ``keys/store.pub.pem`` (the evidence
store's receipt key) and ``store.token`` (the dock's bearer token for the store).

Which camera is which: ``cameras`` maps the USB serial of every camera enrolled at this dock to
its device id (``[dock.cameras] "BWC1-000042" = "cam-0042"``). The bay monitor reports a serial
that is not in the table as unknown and never offloads it, and the offload session must then prove
the camera holds the key enrolled for *that* device id, so a camera cannot borrow another's serial.
The table lives in the config rather than beside the keys because the serial is a USB property
the enrolment key files do not carry; an armorer enrols a camera by adding its line here and its
key to ``devices/``. ``links`` maps serials to offload URLs for simulation and lab benches
(loopback ports); without it the dock finds each camera's USB network link in sysfs.

Where clips go: ``store = "http"`` (the default) uploads to the evidence store at ``store_url``;
``store = "s3"`` puts them in the agency's own S3 bucket described by ``[dock.s3]``
(:class:`S3SinkSettings`, dock/s3_sink.py explains how receipts work there).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from dock.errors import DockSetupError
from dock.ids import DEVICE_ID_RE

DEFAULT_STORE_URL = "http://127.0.0.1:8440"
MIN_PART_BYTES = 5 * 1024 * 1024  # S3's smallest part but the last (SeaweedFS enforces it too)


class RetryPolicy(BaseModel):
    """Capped exponential backoff with full jitter: attempt n waits up to min(cap, base * 2**n)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    base_s: float = Field(default=0.5, gt=0, le=60)
    cap_s: float = Field(default=30.0, gt=0, le=3600)
    #: tries of one step before the clip is left for the next docking (the ledger keeps its state)
    attempts: int = Field(default=8, ge=1, le=100)

    @model_validator(mode="after")
    def _cap_not_below_base(self) -> RetryPolicy:
        if self.cap_s < self.base_s:
            raise ValueError(f"cap_s ({self.cap_s}) must be at least base_s ({self.base_s})")
        return self


class S3SinkSettings(BaseModel):
    """The agency's S3-compatible bucket, with Object Lock, that clips go to in ``s3`` mode.

    Credentials set here win; left unset, boto3 reads them the standard way
    (``AWS_ACCESS_KEY_ID`` and ``AWS_SECRET_ACCESS_KEY``, or a profile). ``ingest_key`` is the
    Ed25519 key (custody role ``store``) the dock signs receipts with in this mode; cameras are
    provisioned with its public half as their store key.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    bucket: str = Field(pattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
    endpoint_url: str | None = Field(default=None, pattern=r"^https?://[^\s/]+(/\S*)?$")
    region: str = "us-east-1"
    access_key_id: str | None = None
    secret_access_key: SecretStr | None = None
    #: days the bucket must refuse to delete or overwrite each object (Object Lock retention)
    retention_days: int = Field(ge=1, le=36_500)
    lock_mode: Literal["GOVERNANCE", "COMPLIANCE"] = "GOVERNANCE"
    #: also place an S3 legal hold on every object (lifted only by hand)
    legal_hold: bool = False
    ingest_key: Path | None = None
    #: segments bigger than this go up in parts of this size (memory per bay is one part)
    part_bytes: int = Field(default=16 * 1024 * 1024, ge=MIN_PART_BYTES, le=5 * 1024**3)

    @model_validator(mode="after")
    def _both_keys_or_neither(self) -> S3SinkSettings:
        if (self.access_key_id is None) != (self.secret_access_key is None):
            raise ValueError("s3: set both access_key_id and secret_access_key, or neither")
        return self


class DockConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    data_dir: Path
    dock_key: Path | None = None
    devices_dir: Path | None = None
    store_url: str = DEFAULT_STORE_URL
    store_token_file: Path | None = None
    store_key: Path | None = None
    #: where clips go: the evidence store's HTTP API, or the S3 bucket of ``[dock.s3]``
    store: Literal["http", "s3"] = "http"
    s3: S3SinkSettings | None = None
    retry: RetryPolicy = Field(default_factory=RetryPolicy)
    #: upload rate to the evidence store shared by every bay, bytes per second; 0: no cap
    upload_bytes_per_s: int = Field(default=0, ge=0)
    #: seconds a request may wait for a connection or for the next bytes of an answer
    timeout_s: float = Field(default=30.0, gt=0, le=600)
    #: bytes read or written at a time while streaming; memory stays at about this per bay
    chunk_bytes: int = Field(default=256 * 1024, ge=4096, le=64 * 1024 * 1024)
    #: bytes the spool's disk keeps free: a clip that would eat into them waits (SpoolFull)
    spool_reserve_bytes: int = Field(default=64 * 1024 * 1024, ge=0)
    #: USB serial -> device id of each camera enrolled at this dock (see the module doc)
    cameras: dict[str, str] = Field(default_factory=dict)
    #: USB serial -> offload URL (sim and lab benches); empty: the camera's USB link in sysfs
    links: dict[str, str] = Field(default_factory=dict)
    #: seconds between two looks at the USB bus
    poll_s: float = Field(default=1.0, gt=0, le=60)
    #: a folder watched for footage dropped by hand (dock/ingest_folder.py); unset: none
    ingest_dir: Path | None = None
    #: seconds between two full scans of the ingest folder (items unchanged over two are taken)
    ingest_rescan_s: float = Field(default=30.0, gt=0, le=3600)
    #: where the armorer's web page and local API listen (docs/dock-api.md); port 0: a free one
    ui_host: str = Field(default="127.0.0.1", min_length=1)
    ui_port: int = Field(default=8450, ge=0, le=65535)
    #: the largest firmware bundle an armorer may stage (docs/dock-api.md "Updates")
    max_bundle_bytes: int = Field(default=2 * 1024**3, ge=1024, le=2**40)
    #: seconds the dock follows a rebooted camera until its new firmware reports healthy
    update_confirm_s: float = Field(default=300.0, gt=0, le=3600)

    @field_validator("cameras")
    @classmethod
    def _enrolled_ids(cls, cameras: dict[str, str]) -> dict[str, str]:
        for serial, device_id in cameras.items():
            if not serial.strip() or len(serial) > 128:
                raise ValueError(f"camera serial {serial!r} must be 1 to 128 characters")
            if not DEVICE_ID_RE.fullmatch(device_id) or ".." in device_id:
                raise ValueError(
                    f"camera {serial}: {device_id!r} is not a device id (letters, digits, "
                    "'.', '_', '-')"
                )
        seen: dict[str, str] = {}
        for serial, device_id in cameras.items():
            if device_id in seen:
                raise ValueError(
                    f"serials {seen[device_id]} and {serial} are both device {device_id}: "
                    "each camera has its own device id"
                )
            seen[device_id] = serial
        return cameras

    @model_validator(mode="after")
    def _links_of_enrolled_cameras(self) -> DockConfig:
        for serial, url in self.links.items():
            if serial not in self.cameras:
                raise ValueError(f"links: camera {serial} is not in cameras: enrol it first")
            parts = urlsplit(url)
            if parts.scheme != "http" or not parts.hostname or parts.path.strip("/"):
                raise ValueError(f"links: {url!r} of camera {serial} is not http://host:port")
        return self

    @model_validator(mode="after")
    def _s3_table_for_s3_store(self) -> DockConfig:
        if self.store == "s3" and self.s3 is None:
            raise ValueError('store = "s3" needs a [dock.s3] table (bucket, retention_days, ...)')
        if self.store == "http" and self.s3 is not None:
            raise ValueError('[dock.s3] is set but store is "http": set store = "s3" to use it')
        return self

    @field_validator("store_url")
    @classmethod
    def _http_url(cls, url: str) -> str:
        parts = urlsplit(url)
        if parts.scheme not in {"http", "https"} or not parts.hostname:
            raise ValueError(f"store_url {url!r} must be an http:// or https:// URL with a host")
        return url.rstrip("/")

    @property
    def ledger_path(self) -> Path:
        return self.data_dir / "ledger.sqlite3"

    @property
    def spool_path(self) -> Path:
        return self.data_dir / "spool"

    @property
    def quarantine_path(self) -> Path:
        return self.data_dir / "quarantine"

    @property
    def dock_key_path(self) -> Path:
        return self.dock_key or self.data_dir / "keys" / "dock.key.pem"

    @property
    def devices_path(self) -> Path:
        return self.devices_dir or self.data_dir / "devices"

    @property
    def store_key_path(self) -> Path:
        return self.store_key or self.data_dir / "keys" / "store.pub.pem"

    @property
    def ingest_key_path(self) -> Path:
        """The receipt key of ``s3`` mode (see :class:`S3SinkSettings`)."""
        chosen = self.s3.ingest_key if self.s3 is not None else None
        return chosen or self.data_dir / "keys" / "ingest.key.pem"

    @property
    def armorers_path(self) -> Path:
        """Armorer tokens for the local API's actions (dock/armorers.py)."""
        return self.data_dir / "armorers.json"

    @property
    def audit_path(self) -> Path:
        """The dock's own audit log (dock/audit_log.py)."""
        return self.data_dir / "audit" / "dock.jsonl"

    @property
    def updates_dir(self) -> Path:
        """Staged firmware bundles and profile (dock/updates.py)."""
        return self.data_dir / "updates"

    @property
    def release_keys_dir(self) -> Path:
        """The agency release public keys the dock trusts: ``release*.pub.pem``."""
        return self.data_dir / "keys"

    @property
    def store_token_path(self) -> Path:
        return self.store_token_file or self.data_dir / "store.token"


def read_token(path: Path) -> str:
    """The bearer token in ``path`` (one line); refuses a missing, empty or shared file."""
    try:
        text = path.read_text(encoding="utf-8").strip()
        mode = path.stat().st_mode
    except FileNotFoundError as exc:
        raise DockSetupError(
            f"store token file {path} does not exist: put the dock's token from the store's "
            "tokens.json in it (mode 0600)"
        ) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise DockSetupError(f"cannot read store token file {path}: {exc}") from exc
    if mode & 0o077:
        raise DockSetupError(
            f"store token file {path} is readable by group or others: run 'chmod 600 {path}'"
        )
    if not text or any(c.isspace() for c in text):
        raise DockSetupError(f"store token file {path} must hold one token on one line")
    return text
