"""Where the dock puts verified clips: an evidence sink, and its client for the evidence store.

:class:`EvidenceSink` is the interface the pipeline uploads through, shaped so that an
S3-compatible object store can sit behind it too: open an upload for a sealed manifest, put
segment files (from the spool, streamed), ask what is already acknowledged (to resume after a
crash or a cut), and complete for the store's signed receipt. Foreign files from the ingest
folder go up whole, with the SHA-256 the dock computed, for a signed file receipt.

:class:`HttpEvidenceSink` speaks the evidence store's ``/v1`` API. Connection faults, timeouts and
5xx answers are :class:`StoreUnavailable` (retry later); a 4xx is :class:`StoreRefused` carrying
the store's own one-line error.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Protocol
from urllib.parse import quote

import requests

from custody.file_receipt import MAX_FILE_RECEIPT_BYTES
from custody.receipt import MAX_RECEIPT_BYTES
from dock import progress
from dock.errors import StoreRefused, StoreUnavailable
from dock.spool import storage_error
from dock.throttle import Throttle

MAX_STATUS_BYTES = 16 * 1024 * 1024  # an upload of a long clip lists many thousand segments


@dataclass(frozen=True)
class UploadState:
    upload_id: str
    stored: bool  # the store holds the whole clip (complete returns its receipt again)
    segment_count: int
    acknowledged: frozenset[int]
    evidence_id: str | None

    @property
    def missing(self) -> list[int]:
        return [i for i in range(self.segment_count) if i not in self.acknowledged]


class EvidenceSink(Protocol):
    def create_upload(self, manifest: Path) -> UploadState:
        """Open an upload for the sealed manifest in this file (or find the one already open)."""
        ...

    def put_segment(self, upload_id: str, index: int, segment: Path) -> None:
        """Send one segment file, streamed; sending an acknowledged one again is harmless."""
        ...

    def status(self, upload_id: str) -> UploadState:
        """What the sink has acknowledged so far: resume by sending the rest."""
        ...

    def complete(self, upload_id: str) -> bytes:
        """Finish the upload; the sink's signed receipt (docs/formats/receipt.md) as bytes."""
        ...

    def put_file(self, path: Path, sha256: str, name: str) -> bytes:
        """Store a foreign file, streamed; the sink's signed file receipt as bytes.

        ``sha256`` is what the dock computed (the sink refuses other bytes) and ``name`` the
        file's original name (docs/formats/file-receipt.md). Sending stored bytes again is
        harmless: the receipt comes back again.
        """
        ...


class _FileBody:
    """A spool file as a request body: read in chunks, paced by the shared throttle."""

    def __init__(self, f: IO[bytes], size: int, throttle: Throttle | None) -> None:
        self._f, self._size, self._throttle = f, size, throttle

    def __len__(self) -> int:
        return self._size

    def read(self, count: int = -1) -> bytes:
        chunk = self._f.read(count)
        if self._throttle is not None:
            self._throttle.take(len(chunk))
        progress.moved(len(chunk))  # handed to the connection: counts as sent
        return chunk

    def __iter__(self) -> Any:
        return iter(lambda: self.read(64 * 1024), b"")


class HttpEvidenceSink:
    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        timeout_s: float = 30.0,
        throttle: Throttle | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._timeout, self._throttle = timeout_s, throttle
        self._http = requests.Session()
        self._http.headers["Authorization"] = f"Bearer {token}"

    def close(self) -> None:
        self._http.close()

    def create_upload(self, manifest: Path) -> UploadState:
        answer = self._send_file("POST", "/v1/uploads", manifest, "application/x-ndjson")
        return _upload_state(self._json(answer, (200, 201), MAX_STATUS_BYTES))

    def put_segment(self, upload_id: str, index: int, segment: Path) -> None:
        path = f"/v1/uploads/{upload_id}/segments/{index}"
        answer = self._send_file("PUT", path, segment, "application/octet-stream")
        ack = self._json(answer, (200,), 4096)
        if ack.get("acknowledged") is not True or ack.get("index") != index:
            raise StoreUnavailable(f"the store did not acknowledge segment {index}: retry")

    def status(self, upload_id: str) -> UploadState:
        answer = self._request("GET", f"/v1/uploads/{upload_id}")
        return _upload_state(self._json(answer, (200,), MAX_STATUS_BYTES))

    def complete(self, upload_id: str) -> bytes:
        answer = self._request("POST", f"/v1/uploads/{upload_id}/complete")
        self._check(answer, (200,))
        return _read_bounded(answer, MAX_RECEIPT_BYTES, "the receipt")

    def put_file(self, path: Path, sha256: str, name: str) -> bytes:
        headers = {"X-Content-SHA256": sha256, "X-File-Name": quote(name, safe="")}
        answer = self._send_file("PUT", "/v1/files", path, "application/octet-stream", headers)
        self._check(answer, (200, 201))
        return _read_bounded(answer, MAX_FILE_RECEIPT_BYTES, "the file receipt")

    def _send_file(
        self,
        method: str,
        path: str,
        file: Path,
        content_type: str,
        headers: dict[str, str] | None = None,
    ) -> requests.Response:
        try:
            f = file.open("rb")
            size = file.stat().st_size
        except OSError as exc:
            raise storage_error(exc, str(file)) from exc
        with f:
            body = _FileBody(f, size, self._throttle)
            sent = {"Content-Type": content_type, **(headers or {})}
            return self._request(method, path, data=body, headers=sent)

    def _request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        try:
            return self._http.request(
                method, self.base_url + path, timeout=self._timeout, stream=True,
                allow_redirects=False, **kwargs,
            )  # fmt: skip
        except requests.RequestException as exc:
            raise StoreUnavailable(
                f"the evidence store at {self.base_url} does not answer ({type(exc).__name__}): "
                "the dock retries; check the store and the network"
            ) from exc

    def _check(self, answer: requests.Response, ok: tuple[int, ...]) -> None:
        if answer.status_code in ok:
            return
        text = _error_text(answer)
        where = f"{answer.request.method} {answer.request.path_url}"
        if answer.status_code >= 500 or answer.status_code == 429:
            raise StoreUnavailable(f"the evidence store failed ({answer.status_code}): {text}")
        raise StoreRefused(
            f"the evidence store refused {where} ({answer.status_code}): {text}",
            answer.status_code,
        )

    def _json(self, answer: requests.Response, ok: tuple[int, ...], limit: int) -> dict[str, Any]:
        self._check(answer, ok)
        body = _read_bounded(answer, limit, "the answer")
        try:
            parsed = json.loads(body)
        except ValueError as exc:
            raise StoreUnavailable("the evidence store's answer is not JSON: retry") from exc
        if not isinstance(parsed, dict):
            raise StoreUnavailable("the evidence store's answer is not a JSON object: retry")
        return parsed


def _upload_state(body: dict[str, Any]) -> UploadState:
    try:
        acknowledged = body["acknowledged"]
        if not isinstance(acknowledged, list) or not all(isinstance(i, int) for i in acknowledged):
            raise TypeError("acknowledged is not a list of integers")
        return UploadState(
            upload_id=str(body["upload_id"]),
            stored=body["state"] == "stored",
            segment_count=int(body["segment_count"]),
            acknowledged=frozenset(acknowledged),
            evidence_id=None if body.get("evidence_id") is None else str(body["evidence_id"]),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise StoreUnavailable(f"the evidence store's upload status is malformed ({exc})") from exc


def _read_bounded(answer: requests.Response, limit: int, what: str) -> bytes:
    body = bytearray()
    try:
        for chunk in answer.iter_content(64 * 1024):
            body += chunk
            if len(body) > limit:
                raise StoreUnavailable(f"{what} from the evidence store is over {limit} bytes")
    except requests.RequestException as exc:
        raise StoreUnavailable(f"{what} from the evidence store was cut: retry") from exc
    finally:
        answer.close()
    return bytes(body)


def _error_text(answer: requests.Response) -> str:
    try:
        text = str(json.loads(_read_bounded(answer, 4096, "the error")).get("error", ""))
    except (ValueError, AttributeError, StoreUnavailable):
        text = ""
    return " ".join(text.split())[:300] or f"HTTP {answer.status_code}"
