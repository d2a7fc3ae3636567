"""Configuration of the evidence store, validated once at the entry point and passed down."""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator

DEFAULT_PORT = 8440
DEFAULT_MAX_BODY_BYTES = 64 * 1024 * 1024  # a manifest is at most 32 MiB, a segment ~1 s
NS_PER_DAY = 86_400 * 10**9

#: Retention periods in days by category; None keeps the evidence until someone deletes it.
#: "routine" (the category every clip gets at ingest) follows the seed policy's 14 days: purged
#: automatically unless it is re-categorised or a legal hold ties it to an investigation.
DEFAULT_RETENTION_DAYS: dict[str, int | None] = {
    "routine": 14,
    "traffic-stop": 14,
    "investigation": 548,  # 18 months
    "homicide": None,
}
DEFAULT_CATEGORY = "routine"
CATEGORY_PATTERN = r"^[a-z0-9][a-z0-9-]{0,63}$"


class RetentionPolicy(BaseModel):
    """Retention categories and their periods, and the category a clip gets when it is stored.

    A clip's expiry is computed when its category is assigned (at ingest or by a later change)
    and stored with it, so the audit record of the assignment states the date that applies.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    days: dict[str, int | None] = Field(default_factory=lambda: dict(DEFAULT_RETENTION_DAYS))
    default_category: str = DEFAULT_CATEGORY

    @model_validator(mode="after")
    def _check(self) -> RetentionPolicy:
        for name, period in self.days.items():
            if not re.fullmatch(CATEGORY_PATTERN, name):
                raise ValueError(f"category {name!r}: use lower-case letters, digits and '-'")
            if period is not None and period < 1:
                raise ValueError(f"category {name!r}: the period must be at least 1 day or null")
        if self.default_category not in self.days:
            raise ValueError(f"default category {self.default_category!r} is not in days")
        return self

    def expires_at_ns(self, category: str, stored_at_ns: int) -> int | None:
        """When evidence stored at ``stored_at_ns`` expires in ``category`` (None: never)."""
        period = self.days[category]
        return None if period is None else stored_at_ns + period * NS_PER_DAY


class EvidenceConfig(BaseModel):
    """Where the store keeps its data and keys, and how it listens.

    Paths left unset live in ``data_dir``: ``keys/store.key.pem`` (receipt signing key),
    ``tokens.json`` (bearer tokens) and ``devices/`` (enrolled device public keys). ``retention``
    defaults to :data:`DEFAULT_RETENTION_DAYS` with every new clip in ``routine``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    data_dir: Path
    host: str = "127.0.0.1"
    port: int = Field(default=DEFAULT_PORT, ge=0, le=65535)
    receipt_key: Path | None = None
    tokens_file: Path | None = None
    devices_dir: Path | None = None
    max_body_bytes: int = Field(default=DEFAULT_MAX_BODY_BYTES, gt=0)
    retention: RetentionPolicy = Field(default_factory=RetentionPolicy)

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
    def database_path(self) -> Path:
        return self.data_dir / "metadata.sqlite3"

    @property
    def blobs_path(self) -> Path:
        return self.data_dir / "blobs"
