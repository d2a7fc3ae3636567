"""Configuration of the evidence store, validated once at the entry point and passed down."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

DEFAULT_PORT = 8440
DEFAULT_MAX_BODY_BYTES = 64 * 1024 * 1024  # a manifest is at most 32 MiB, a segment ~1 s


class EvidenceConfig(BaseModel):
    """Where the store keeps its data and keys, and how it listens.

    Paths left unset live in ``data_dir``: ``keys/store.key.pem`` (receipt signing key),
    ``tokens.json`` (bearer tokens) and ``devices/`` (enrolled device public keys).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    data_dir: Path
    host: str = "127.0.0.1"
    port: int = Field(default=DEFAULT_PORT, ge=0, le=65535)
    receipt_key: Path | None = None
    tokens_file: Path | None = None
    devices_dir: Path | None = None
    max_body_bytes: int = Field(default=DEFAULT_MAX_BODY_BYTES, gt=0)

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
