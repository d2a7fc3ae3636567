"""Resumable downloads into the spool, hashed while they stream, bounded by the expected size.

A file arrives as ``<name>.part``; a cut transfer leaves the part, and the next try asks for the
rest with ``Range: bytes=N-``. Only a file whose size and SHA-256 are exactly what was expected
is fsynced and renamed to its final name, so a final name in the spool always means "verified".
Memory stays at one chunk whatever the file size.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path

import requests

from dock import progress
from dock.errors import CameraMisbehaved, CameraUnavailable
from dock.spool import fsync_dir, storage_error

_CONTENT_RANGE_RE = re.compile(r"bytes (\d+)-(\d+)/(\d+)")


@dataclass(frozen=True)
class Expected:
    what: str  # for messages: "segment 3 of clip X"
    size: int
    sha256: str


#: opens a GET for the bytes from ``offset`` on (a Range request when offset > 0)
Opener = Callable[[int], AbstractContextManager[requests.Response]]


def fetch(dest: Path, expected: Expected, opener: Opener, chunk_bytes: int) -> None:
    """Make ``dest`` hold exactly the expected bytes, resuming a part file if there is one.

    Raises CameraUnavailable when the transfer is cut (the part is kept for the next try) and
    CameraMisbehaved when the camera sends more, fewer or other bytes than expected.
    """
    if dest.is_file() and file_matches(dest, expected, chunk_bytes):
        return
    part = dest.with_name(dest.name + ".part")
    offset = part.stat().st_size if part.is_file() else 0
    if offset > expected.size:
        _unlink(part)
        offset = 0
    try:
        _fetch_part(part, expected, opener, chunk_bytes, offset)
    except CameraMisbehaved:
        _unlink(part)
        if offset == 0:
            raise
        # The kept part may be what went wrong (a torn write before a crash): one fresh try.
        _fetch_part(part, expected, opener, chunk_bytes, 0)
    try:
        part.replace(dest)
        fsync_dir(dest.parent)
    except OSError as exc:
        raise storage_error(exc, str(dest)) from exc


def file_matches(path: Path, expected: Expected, chunk_bytes: int) -> bool:
    if path.stat().st_size != expected.size:
        return False
    digest = hashlib.sha256()
    for chunk in _read_chunks(path, chunk_bytes):
        digest.update(chunk)
    return digest.hexdigest() == expected.sha256


def _fetch_part(
    part: Path, expected: Expected, opener: Opener, chunk_bytes: int, offset: int
) -> None:
    if offset < expected.size:
        try:
            with opener(offset) as response:
                start = _start(response, expected, offset)
                digest = _hash_prefix(part, start, chunk_bytes)
                _receive(part, response, expected, digest, start, chunk_bytes)
        except requests.RequestException as exc:
            raise CameraUnavailable(
                f"the transfer of {expected.what} was cut ({type(exc).__name__}): it resumes "
                "when the camera is back"
            ) from exc
    else:
        digest = _hash_prefix(part, offset, chunk_bytes)
    size = part.stat().st_size if part.exists() else 0
    if size != expected.size:
        raise CameraMisbehaved(
            f"the camera sent {size} bytes of {expected.what}, {expected.size} were expected"
        )
    if digest.hexdigest() != expected.sha256:
        raise CameraMisbehaved(
            f"{expected.what} does not match its sha256: the camera sent altered data"
        )


def _hash_prefix(part: Path, length: int, chunk_bytes: int) -> hashlib._Hash:
    """SHA-256 state after the first ``length`` bytes already in the part file."""
    digest = hashlib.sha256()
    if length:
        for chunk in _read_chunks(part, chunk_bytes):
            digest.update(chunk[:length])
            length -= len(chunk)
            if length <= 0:
                break
    return digest


def _start(response: requests.Response, expected: Expected, offset: int) -> int:
    """Where the answer's bytes start; refuses an answer that cannot be what was asked."""
    if response.status_code == 200:
        start = 0  # the camera ignored the range and sends the whole file: start over
    elif response.status_code == 206 and offset > 0:
        found = _CONTENT_RANGE_RE.fullmatch(response.headers.get("Content-Range", ""))
        if found is None or int(found.group(1)) != offset:
            raise CameraMisbehaved(f"the camera answered a range of {expected.what} wrongly")
        if int(found.group(3)) != expected.size:
            raise CameraMisbehaved(
                f"the camera says {expected.what} is {found.group(3)} bytes, "
                f"{expected.size} were expected"
            )
        start = offset
    else:
        raise CameraMisbehaved(
            f"the camera answered {response.status_code} for {expected.what}, "
            "which it listed as ready"
        )
    declared = response.headers.get("Content-Length", "")
    if not declared.isdigit() or int(declared) > expected.size - start:
        raise CameraMisbehaved(
            f"the camera declares {declared or 'no'} bytes for {expected.what}; "
            f"at most {expected.size - start} are expected"
        )
    return start


def _receive(
    part: Path,
    response: requests.Response,
    expected: Expected,
    digest: hashlib._Hash,
    start: int,
    chunk_bytes: int,
) -> None:
    written = start
    try:
        with part.open("r+b" if start else "wb") as out:
            out.truncate(start)
            out.seek(start)
            for chunk in response.iter_content(chunk_bytes):
                written += len(chunk)
                if written > expected.size:
                    raise CameraMisbehaved(
                        f"the camera sent more than the {expected.size} bytes of {expected.what}"
                    )
                out.write(chunk)
                digest.update(chunk)
                progress.moved(len(chunk))
            out.flush()
            os.fsync(out.fileno())
    except requests.RequestException:
        raise  # a cut transfer (requests' errors are OSErrors too): the caller resumes it
    except OSError as exc:
        raise storage_error(exc, str(part)) from exc


def _read_chunks(path: Path, chunk_bytes: int) -> Iterator[bytes]:
    try:
        with path.open("rb") as f:
            while chunk := f.read(chunk_bytes):
                yield chunk
    except OSError as exc:
        raise storage_error(exc, str(path)) from exc


def _unlink(path: Path) -> None:
    try:
        path.unlink(missing_ok=True)
    except OSError as exc:
        raise storage_error(exc, str(path)) from exc
