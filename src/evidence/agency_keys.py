"""Where the store gets a clip's data key from: the agency private key, never the database.

Decryption needs one thing of the agency key: to unwrap a clip's data key (custody.envelope).
:class:`AgencyKey` is that one operation, so a provider backed by a key service hands the store
only each clip's data key and the private key never enters the store process.

- :class:`FileAgencyKey`: the X25519 PKCS#8 PEM file (mode 0600), unwrapped in process.
- :class:`HttpAgencyKey`: an agency key service, asked over HTTPS in the shape of a Vault transit
  or cloud KMS "decrypt" call::

      POST <url>   Authorization: Bearer <token>
      {"ciphertext": b64(wrapped key JSON), "context": b64(16 clip id bytes)}
      -> 200 {"data": {"plaintext": b64(32-byte data key)}}

  b64 is standard base64 with padding, as those APIs spell it. The wrapped key JSON is the
  manifest header's ``data_key`` (docs/formats/keywrap.md); its ``recipient`` names the agency
  key that opens it.
"""

from __future__ import annotations

import base64
import binascii
import json
import stat
from pathlib import Path
from typing import Any, Protocol

import requests

from custody.canonical import canonical_bytes
from custody.clipid import clip_id_bytes
from custody.envelope import WrappedKey, unwrap_data_key
from custody.errors import IntegrityError, KeyFileError, KeyMismatchError
from custody.keys import key_id, load_agency_private_key
from custody.segment import DATA_KEY_SIZE
from evidence.config import EvidenceConfig, KmsSettings
from evidence.errors import AgencyKeyUnavailable, StoreSetupError


class AgencyKey(Protocol):
    """Unwraps clip data keys with the agency private key, wherever that key is kept."""

    @property
    def description(self) -> str:
        """Where the key is, for messages: "agency key file /etc/bwc/agency.key.pem"."""
        ...

    def unwrap(self, wrapped: WrappedKey, clip_id: str) -> bytes:
        """The clip's 32-byte data key; raises :class:`AgencyKeyUnavailable` when it cannot."""
        ...


class FileAgencyKey:
    """The agency X25519 private key from a PEM file, refused unless only its owner can read it."""

    def __init__(self, path: Path) -> None:
        try:
            self._key = load_agency_private_key(path)
        except KeyFileError as exc:
            raise StoreSetupError(f"agency key: {exc}") from exc
        self.description = f"agency key file {path}"
        self.key_id = key_id(self._key)

    def unwrap(self, wrapped: WrappedKey, clip_id: str) -> bytes:
        try:
            return unwrap_data_key(wrapped, self._key, clip_id)
        except KeyMismatchError as exc:
            raise AgencyKeyUnavailable(
                f"clip {clip_id} is for agency key {wrapped.recipient}, but the {self.description}"
                f" holds key {self.key_id}: configure the agency key with id {wrapped.recipient}"
            ) from exc
        except IntegrityError as exc:
            raise AgencyKeyUnavailable(
                f"the data key of clip {clip_id} does not open with the {self.description}: {exc}"
            ) from exc


class HttpAgencyKey:
    """An agency key service that unwraps each data key; the store sees only data keys."""

    def __init__(self, settings: KmsSettings) -> None:
        self._settings = settings
        self._token = _read_token(settings.token_file)
        self.description = f"agency key service {settings.url}"

    def unwrap(self, wrapped: WrappedKey, clip_id: str) -> bytes:
        body = {
            "ciphertext": _b64(canonical_bytes(wrapped.to_json(), what="wrapped data key")),
            "context": _b64(clip_id_bytes(clip_id)),
        }
        answer = self._post(body, clip_id, wrapped.recipient)
        plaintext = _plaintext(answer)
        if plaintext is None or len(plaintext) != DATA_KEY_SIZE:
            raise AgencyKeyUnavailable(
                f"the {self.description} did not answer with a {DATA_KEY_SIZE}-byte data key "
                'in {"data": {"plaintext": base64}}: check that it is a bwc key service'
            )
        return plaintext

    def _post(self, body: dict[str, str], clip_id: str, recipient: str) -> object:
        verify: str | bool = str(self._settings.ca_file) if self._settings.ca_file else True
        try:
            # One call per playback: no pooled connection to keep open between them.
            response = requests.post(
                self._settings.url, json=body, timeout=self._settings.timeout_s, verify=verify,
                headers={"Authorization": f"Bearer {self._token}"},
            )  # fmt: skip
        except requests.RequestException as exc:
            raise AgencyKeyUnavailable(
                f"the {self.description} is unreachable ({type(exc).__name__}): "
                "check agency_kms.url and that the service is running"
            ) from exc
        if response.status_code in (401, 403):
            raise AgencyKeyUnavailable(
                f"the {self.description} refused the token from {self._settings.token_file} "
                f"(HTTP {response.status_code}): give the store a token allowed to decrypt"
            )
        if response.status_code != 200:
            raise AgencyKeyUnavailable(
                f"the {self.description} could not unwrap the data key of clip {clip_id} "
                f"(HTTP {response.status_code}: {_reason(response)}): check that it holds "
                f"agency key {recipient}"
            )
        try:
            return response.json()
        except requests.JSONDecodeError as exc:
            raise AgencyKeyUnavailable(
                f"the {self.description} answered with something that is not JSON: "
                "check agency_kms.url"
            ) from exc


def _b64(data: bytes) -> str:
    # Standard base64 with padding, as Vault and cloud KMS APIs spell it (not custody's base64url).
    return base64.b64encode(data).decode("ascii")


def _plaintext(answer: object) -> bytes | None:
    data = answer.get("data") if isinstance(answer, dict) else None
    text = data.get("plaintext") if isinstance(data, dict) else None
    if not isinstance(text, str):
        return None
    try:
        return base64.b64decode(text, validate=True)
    except binascii.Error:
        return None


def _reason(response: requests.Response) -> str:
    """The service's own words, one line: Vault answers {"errors": [...]}, others vary."""
    try:
        body: Any = response.json()
    except requests.JSONDecodeError:
        return response.reason or "no reason given"
    errors = body.get("errors") if isinstance(body, dict) else None
    text = "; ".join(map(str, errors)) if isinstance(errors, list) else json.dumps(body)
    return " ".join(text.split())[:200]


def _read_token(path: Path) -> str:
    try:
        mode = path.stat().st_mode
        token = path.read_text().strip()
    except OSError as exc:
        raise StoreSetupError(
            f"cannot read the agency key service token {path}: {exc.strerror}"
        ) from exc
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise StoreSetupError(
            f"the agency key service token {path} is readable by group or others "
            f"(mode {stat.S_IMODE(mode):04o}): run 'chmod 600 {path}'"
        )
    if not token or any(c.isspace() for c in token):
        raise StoreSetupError(f"the agency key service token {path} is empty or not one token")
    return token


def open_agency_key(cfg: EvidenceConfig) -> AgencyKey | None:
    """The provider the configuration names, or None when playback is not set up."""
    if cfg.agency_key is not None:
        return FileAgencyKey(cfg.agency_key)
    if cfg.agency_kms is not None:
        return HttpAgencyKey(cfg.agency_kms)
    return None
