"""The armorer commands' client of a running dock's local API (docs/dock-api.md), over requests.

Where the dock is: ``--url``, else ``[dock] ui_host``:``ui_port`` of the configuration. The
armorer's token: ``--token-file`` (one line), else the first token of the data folder's
``armorers.json`` (on the dock's own machine). Viewing on loopback needs no token, so a status
without one still works there; every action needs one.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

import requests

from bwc.errors import CliError
from dock.armorers import first_token
from dock.config import DockConfig
from dock.errors import DockSetupError

TIMEOUT_S = 10.0
MAX_ANSWER_BYTES = 8 * 1024 * 1024
#: bytes per second the dock is assumed to hash a staged bundle at least, to size the wait
VERIFY_BYTES_PER_S = 20 * 1024 * 1024
UPLOAD_BLOCK = 256 * 1024


class DockRefused(CliError):
    """The dock answered with an error status; ``status`` tells which."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


def dock_url(cfg: DockConfig, url: str | None) -> str:
    """The dock's base URL: ``url`` as given, else from its configuration."""
    if url is not None:
        parts = urlsplit(url)
        if parts.scheme not in {"http", "https"} or not parts.hostname:
            raise CliError(f"--url {url!r} is not an http:// URL (e.g. http://127.0.0.1:8450)")
        return url.rstrip("/")
    if cfg.ui_port == 0:
        raise CliError(
            "the dock picks a free port at start ([dock] ui_port = 0): pass --url as "
            "'bwc dock run' printed it"
        )
    host = cfg.ui_host
    if host in {"0.0.0.0", "::"}:  # listening everywhere: loopback reaches it
        host = "127.0.0.1"
    return f"http://[{host}]:{cfg.ui_port}" if ":" in host else f"http://{host}:{cfg.ui_port}"


def read_token(cfg: DockConfig, token_file: Path | None, *, required: bool) -> str | None:
    """The armorer's token, or None when not ``required`` and there is none to be found."""
    if token_file is not None:
        try:
            text = token_file.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise CliError(f"cannot read --token-file {token_file}: {exc}") from exc
        if not text or any(c.isspace() for c in text):
            raise CliError(f"--token-file {token_file} must hold one token on one line")
        return text
    if not required and not cfg.armorers_path.exists():
        return None
    try:
        return first_token(cfg.armorers_path)
    except DockSetupError as exc:
        raise CliError(str(exc)) from exc


class DockClient:
    def __init__(self, url: str, token: str | None) -> None:
        self.url = url
        self._http = requests.Session()
        if token is not None:
            self._http.headers["Authorization"] = f"Bearer {token}"

    def close(self) -> None:
        self._http.close()

    def bays(self) -> dict[str, Any]:
        answer = self._call("GET", "/api/v1/bays")
        if not isinstance(answer, dict) or not isinstance(answer.get("bays"), list):
            raise CliError(f"the answer at {self.url} is not a dock's bay list: check --url")
        return answer

    def quarantine(self) -> list[dict[str, Any]]:
        answer = self._call("GET", "/api/v1/quarantine")
        if not isinstance(answer, list):
            raise CliError(f"the answer at {self.url} is not a dock's quarantine list")
        return answer

    def act(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        answer = self._call("POST", path, json=body)
        if not isinstance(answer, dict):
            raise CliError(f"the dock at {self.url} answered {path} with something unexpected")
        return answer

    def put_file(
        self, path: str, file: IO[bytes], size: int, progress: Callable[[int], None]
    ) -> dict[str, Any]:
        """PUT ``size`` bytes of ``file`` streamed (never whole in memory), with its length
        declared so the dock can refuse a file over its limit before a byte is sent;
        ``progress`` hears every block sent."""
        body = _Upload(file, size, progress)
        headers = {"Content-Type": "application/octet-stream"}
        # after the last byte the dock checks the whole file before it answers
        wait = (TIMEOUT_S, TIMEOUT_S + size / VERIFY_BYTES_PER_S)
        answer = self._call("PUT", path, data=body, headers=headers, timeout=wait)
        if not isinstance(answer, dict):
            raise CliError(f"the dock at {self.url} answered {path} with something unexpected")
        return answer

    def put_bytes(self, path: str, data: bytes) -> dict[str, Any]:
        headers = {"Content-Type": "application/octet-stream"}
        answer = self._call("PUT", path, data=data, headers=headers)
        if not isinstance(answer, dict):
            raise CliError(f"the dock at {self.url} answered {path} with something unexpected")
        return answer

    def get(self, path: str) -> dict[str, Any]:
        answer = self._call("GET", path)
        if not isinstance(answer, dict):
            raise CliError(
                f"the answer at {self.url}{path} is not what a dock answers: check --url"
            )
        return answer

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            kwargs.setdefault("timeout", TIMEOUT_S)
            answer = self._http.request(method, self.url + path, allow_redirects=False, **kwargs)
        except requests.ConnectionError as exc:
            raise CliError(f"no dock answers at {self.url}: start it with 'bwc dock run'") from exc
        except requests.RequestException as exc:
            raise CliError(f"the dock at {self.url} did not answer ({type(exc).__name__})") from exc
        with answer:
            body = answer.content[:MAX_ANSWER_BYTES]
        try:
            parsed = json.loads(body)
        except ValueError:
            parsed = None
        if answer.status_code >= 400:
            error = parsed.get("error") if isinstance(parsed, dict) else None
            text = " ".join(str(error or f"HTTP {answer.status_code}").split())[:300]
            hint = (
                " (give an armorer's token with --token-file)" if answer.status_code == 401 else ""
            )
            raise DockRefused(
                f"the dock refused ({answer.status_code}): {text}{hint}", answer.status_code
            )
        if parsed is None:
            raise CliError(f"the answer at {self.url}{path} is not JSON: is --url a dock?")
        return parsed


class _Upload:
    """A file as a request body of known length: requests declares it and reads it in blocks."""

    def __init__(self, file: IO[bytes], size: int, progress: Callable[[int], None]) -> None:
        self._file, self._size, self._progress = file, size, progress

    def __len__(self) -> int:
        return self._size

    def read(self, size: int = -1) -> bytes:
        block = self._file.read(UPLOAD_BLOCK if size < 0 else min(size, UPLOAD_BLOCK))
        if block:
            self._progress(len(block))
        return block
