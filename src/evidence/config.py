"""Configuration of the evidence store, validated once at the entry point and passed down."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

DEFAULT_PORT = 8440
DEFAULT_MAX_BODY_BYTES = 64 * 1024 * 1024  # a manifest is at most 32 MiB, a segment ~1 s
#: refused requests (401/403) recorded per client address per minute; the rest are summarised
DEFAULT_DENIED_PER_MINUTE = 60
NS_PER_DAY = 86_400 * 10**9

#: Retention periods in days by category; None keeps the evidence until someone deletes it
#: (TOML has no null: a config file writes "indefinite").
#: "routine" (the category every clip gets at ingest) follows the seed policy's 14 days: purged
#: automatically unless it is re-categorised or a legal hold ties it to an investigation.
DEFAULT_RETENTION_DAYS: dict[str, int | None] = {
    "routine": 14,
    "traffic-stop": 14,
    "investigation": 548,  # 18 months
    "homicide": None,
}
DEFAULT_CATEGORY = "routine"
INDEFINITE = "indefinite"  # the period of a category kept until someone deletes it, in TOML
CATEGORY_PATTERN = r"^[a-z0-9][a-z0-9-]{0,63}$"


class RetentionPolicy(BaseModel):
    """Retention categories and their periods, and the category a clip gets when it is stored.

    A clip's expiry is computed when its category is assigned (at ingest or by a later change)
    and stored with it, so the audit record of the assignment states the date that applies.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    days: dict[str, int | None] = Field(default_factory=lambda: dict(DEFAULT_RETENTION_DAYS))
    default_category: str = DEFAULT_CATEGORY

    @field_validator("days", mode="before")
    @classmethod
    def _indefinite_is_none(cls, days: object) -> object:
        if isinstance(days, dict):
            return {name: None if p == INDEFINITE else p for name, p in days.items()}
        return days

    @model_validator(mode="after")
    def _check(self) -> RetentionPolicy:
        for name, period in self.days.items():
            if not re.fullmatch(CATEGORY_PATTERN, name):
                raise ValueError(f"category {name!r}: use lower-case letters, digits and '-'")
            if period is not None and period < 1:
                raise ValueError(
                    f"category {name!r}: the period must be at least 1 day, or {INDEFINITE!r}"
                )
        if self.default_category not in self.days:
            raise ValueError(f"default category {self.default_category!r} is not in days")
        return self

    def expires_at_ns(self, category: str, stored_at_ns: int) -> int | None:
        """When evidence stored at ``stored_at_ns`` expires in ``category`` (None: never)."""
        period = self.days[category]
        return None if period is None else stored_at_ns + period * NS_PER_DAY


class KmsSettings(BaseModel):
    """An agency key service that unwraps clip data keys, so the store never holds the key.

    The store POSTs each clip's wrapped data key to ``url`` with ``Authorization: Bearer`` and
    the token read from ``token_file`` (mode 0600); see docs/evidence.md, "Agency key". Plain
    ``http`` is accepted only on loopback: the answer is a clip's data key.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str = Field(pattern=r"^https?://[^\s/]+(/\S*)?$")
    token_file: Path
    timeout_s: float = Field(default=10.0, gt=0, le=300)
    ca_file: Path | None = None  # the agency's CA bundle, when its TLS certificate is private

    @model_validator(mode="after")
    def _check(self) -> KmsSettings:
        host = urlsplit(self.url).hostname or ""
        if self.url.startswith("http://") and host not in {"127.0.0.1", "::1", "localhost"}:
            raise ValueError(f"agency_kms.url {self.url!r}: use https (http only on loopback)")
        return self


#: Object Lock modes: GOVERNANCE can be overridden by a granted right, COMPLIANCE by no one.
LockMode = Literal["GOVERNANCE", "COMPLIANCE"]


class S3Settings(BaseModel):
    """Segments and manifests in an S3-compatible bucket instead of the data folder.

    ``endpoint_url`` is the object store's URL (None: AWS itself, in ``region``). Credentials
    set here win; left unset, boto3 reads them the standard way (``AWS_ACCESS_KEY_ID`` and
    ``AWS_SECRET_ACCESS_KEY``, or a profile). ``lock_mode`` is the Object Lock mode of the
    retention the store puts on each blob when the bucket has Object Lock enabled: see
    :mod:`evidence.s3_blobs` for why GOVERNANCE is the default.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    bucket: str = Field(pattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
    endpoint_url: str | None = Field(default=None, pattern=r"^https?://[^\s/]+(/\S*)?$")
    region: str = "us-east-1"
    access_key_id: str | None = None
    secret_access_key: SecretStr | None = None
    lock_mode: LockMode = "GOVERNANCE"

    @model_validator(mode="after")
    def _both_keys_or_neither(self) -> S3Settings:
        if (self.access_key_id is None) != (self.secret_access_key is None):
            raise ValueError("s3: set both access_key_id and secret_access_key, or neither")
        return self


class EvidenceConfig(BaseModel):
    """Where the store keeps its data and keys, and how it listens.

    Paths left unset live in ``data_dir``: ``keys/store.key.pem`` (receipt signing key),
    ``tokens.json`` (bearer tokens) and ``devices/`` (enrolled device public keys). ``retention``
    defaults to :data:`DEFAULT_RETENTION_DAYS` with every new clip in ``routine``.

    ``database_url`` (``postgresql://user@host:5432/dbname``) keeps the metadata in PostgreSQL
    instead of SQLite in ``data_dir``, so several API processes can share one deployment. Leave
    the password out of it: libpq reads it from ``PGPASSWORD`` or ``~/.pgpass``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    data_dir: Path
    host: str = "127.0.0.1"
    port: int = Field(default=DEFAULT_PORT, ge=0, le=65535)
    receipt_key: Path | None = None
    tokens_file: Path | None = None
    devices_dir: Path | None = None
    max_body_bytes: int = Field(default=DEFAULT_MAX_BODY_BYTES, gt=0)
    # At most this many access.denied records per client address a minute (evidence.access_log).
    denied_per_minute: int = Field(default=DEFAULT_DENIED_PER_MINUTE, ge=1, le=100_000)
    retention: RetentionPolicy = Field(default_factory=RetentionPolicy)
    database_url: str | None = None  # PostgreSQL instead of SQLite: see the class doc
    # The agency private key, for playback: a PEM file (0600) or a key service; never the DB.
    agency_key: Path | None = None
    agency_kms: KmsSettings | None = None
    s3: S3Settings | None = None  # blobs in S3 instead of data_dir/blobs

    @model_validator(mode="after")
    def _one_agency_key(self) -> EvidenceConfig:
        if self.agency_key is not None and self.agency_kms is not None:
            raise ValueError("set agency_key or agency_kms, not both")
        return self

    @property
    def receipt_key_path(self) -> Path:
        return self.receipt_key or self.data_dir / "keys" / "store.key.pem"

    @property
    def tokens_path(self) -> Path:
        return self.tokens_file or self.data_dir / "tokens.json"

    @property
    def devices_path(self) -> Path:
        return self.devices_dir or self.data_dir / "devices"

    @property
    def has_local_store(self) -> bool:
        """False when the data folder holds no store yet, so a typo'd --data-dir is caught.

        With PostgreSQL the metadata is elsewhere; opening it tells whether it is there.
        """
        return self.database_url is not None or self.database_path.is_file()

    @property
    def database_path(self) -> Path:
        return self.data_dir / "metadata.sqlite3"

    @property
    def blobs_path(self) -> Path:
        return self.data_dir / "blobs"
