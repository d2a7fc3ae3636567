"""Bearer tokens and the roles they carry, read from a JSON file.

The file (``tokens.json`` in the data folder by default, mode 0600)::

    {"tokens": [{"name": "bay-1", "role": "dock", "token": "<random>"},
                {"name": "j.smith", "role": "records", "token": "<random>"}]}

``dock`` may ingest (create uploads, send segments, complete, read its receipts); ``records`` may
list evidence, read receipts, download stored clips, change a clip's retention category and
place or release legal holds; ``supervisor`` may change categories and place or release holds;
``auditor`` may read retention, holds and tombstones; ``admin`` may run the purge. ``officer`` is
reserved for playback of one's own clips. The name is who the audit log names.
"""

from __future__ import annotations

import hmac
import json
import secrets
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from custody.errors import KeyFileError
from custody.keys import write_atomic
from evidence.errors import StoreSetupError, Unauthenticated


class Role(StrEnum):
    DOCK = "dock"
    OFFICER = "officer"
    SUPERVISOR = "supervisor"
    RECORDS = "records"
    AUDITOR = "auditor"
    ADMIN = "admin"


class _TokenEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
    role: Role
    token: str = Field(min_length=16)


class _TokenFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    tokens: list[_TokenEntry]


@dataclass(frozen=True)
class Principal:
    name: str
    role: Role

    @property
    def actor(self) -> str:
        """How the audit log names this caller: ``dock:bay-1``, ``records:j.smith``."""
        return f"{self.role.value}:{self.name}"


class TokenTable:
    def __init__(self, entries: dict[str, Principal]) -> None:
        self._entries = entries

    @classmethod
    def load(cls, path: Path) -> TokenTable:
        try:
            parsed = _TokenFile.model_validate_json(path.read_bytes())
        except OSError as exc:
            raise StoreSetupError(f"cannot read the token file {path}: {exc.strerror}") from exc
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise StoreSetupError(f"token file {path}: {where}: {first['msg']}") from exc
        return cls({e.token: Principal(e.name, e.role) for e in parsed.tokens})

    def authenticate(self, token: str) -> Principal:
        # Compare against every token in constant time, so timing reveals nothing of them.
        found: Principal | None = None
        for known, principal in self._entries.items():
            if hmac.compare_digest(known.encode(), token.encode()):
                found = principal
        if found is None:
            raise Unauthenticated("the bearer token is not known to this store: check tokens.json")
        return found


def write_dev_tokens(path: Path) -> None:
    """A first-run token file: one random token per role, named ``dev-<role>``, mode 0600."""
    body = {
        "tokens": [
            {"name": f"dev-{role.value}", "role": role.value, "token": secrets.token_urlsafe(32)}
            for role in Role
        ]
    }
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, (json.dumps(body, indent=2) + "\n").encode(), mode=0o600)
    except (OSError, KeyFileError) as exc:
        raise StoreSetupError(f"cannot write the token file {path}: {exc}") from exc
