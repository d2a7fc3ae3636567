"""Armorers allowed to act on the dock, by bearer token, read from ``armorers.json``.

The file lives in the dock's data folder, mode 0600, in the shape of the evidence store's
``tokens.json``::

    {"tokens": [{"name": "a.jones", "role": "armorer", "token": "<random>"}]}

The first ``bwc dock run`` in a fresh data folder writes one development token
(:func:`ensure_armorers`). The name is who the dock's audit log names (``armorer:a.jones``).
"""

from __future__ import annotations

import hmac
import json
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from custody.errors import KeyFileError
from custody.keys import write_atomic
from dock.errors import DockSetupError

ARMORERS_NAME = "armorers.json"
DEV_NAME = "dev-armorer"


class _Entry(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
    role: Literal["armorer"]
    token: str = Field(min_length=16)


class _File(BaseModel):
    model_config = ConfigDict(extra="forbid")
    tokens: list[_Entry]


@dataclass(frozen=True)
class Armorer:
    name: str

    @property
    def actor(self) -> str:
        """How the audit log names this armorer."""
        return f"armorer:{self.name}"


class Armorers:
    """The token table; :meth:`authenticate` compares in constant time."""

    def __init__(self, entries: dict[str, Armorer]) -> None:
        self._entries = entries

    @classmethod
    def load(cls, path: Path) -> Armorers:
        try:
            if path.stat().st_mode & 0o077:
                raise DockSetupError(
                    f"the armorer token file {path} is readable by group or others: "
                    f"run 'chmod 600 {path}'"
                )
            parsed = _File.model_validate_json(path.read_bytes())
        except OSError as exc:
            raise DockSetupError(
                f"cannot read the armorer token file {path}: {exc.strerror}"
            ) from exc
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise DockSetupError(f"armorer token file {path}: {where}: {first['msg']}") from exc
        return cls({e.token: Armorer(e.name) for e in parsed.tokens})

    def authenticate(self, token: str) -> Armorer | None:
        """The armorer holding ``token``, or None; every entry is compared, in constant time."""
        found: Armorer | None = None
        for known, armorer in self._entries.items():
            if hmac.compare_digest(known.encode(), token.encode()):
                found = armorer
        return found


def ensure_armorers(path: Path) -> bool:
    """Write a first-run file with one development token unless one exists; True if written."""
    if path.exists():
        return False
    body = {"tokens": [{"name": DEV_NAME, "role": "armorer", "token": secrets.token_urlsafe(32)}]}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, (json.dumps(body, indent=2) + "\n").encode(), mode=0o600)
    except (OSError, KeyFileError) as exc:
        raise DockSetupError(f"cannot write the armorer token file {path}: {exc}") from exc
    return True


def first_token(path: Path) -> str:
    """The first token in the file (what ``bwc dock`` commands use when given none)."""
    try:
        entries = _File.model_validate_json(path.read_bytes()).tokens
    except OSError as exc:
        raise DockSetupError(
            f"cannot read the armorer token file {path}: {exc.strerror}; pass --token-file"
        ) from exc
    except ValidationError as exc:
        raise DockSetupError(f"armorer token file {path} is malformed: pass --token-file") from exc
    if not entries:
        raise DockSetupError(f"armorer token file {path} lists no token: pass --token-file")
    return entries[0].token
