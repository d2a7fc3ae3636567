"""Firmware bundles: one file the dock hands to a camera, signed by the agency's release key.

A bundle is a header line (canonical JSON and one LF) followed by the payload files' bytes,
concatenated in the header's order (docs/formats/firmware-bundle.md). The header names every file
with its size and SHA-256, so a reader knows where each file starts, never trusts a path from the
payload, and can hash a payload of any size in chunks. The Ed25519 signature covers
"bwc-firmware-v1" NUL followed by the canonical header without ``signature``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
import secrets
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from custody.canonical import b64d, b64e, canonical_bytes, check_hex, parse_json
from custody.errors import FormatError, UnsupportedVersionError
from custody.keys import key_id
from custody.release import SIGNATURE_SIZE, check_release_signature
from custody.report import Report
from custody.schema import require_fields

FORMAT = "bwc-firmware"
VERSION = 1
DOMAIN = b"bwc-firmware-v1\x00"
MAX_HEADER_BYTES = 1024 * 1024
MAX_FILES = 4096
MAX_FILE_BYTES = 2**40
MAX_NOTES_CHARS = 64 * 1024
CHUNK = 1024 * 1024
_VERSION_RE = re.compile(r"(0|[1-9][0-9]{0,8})\.(0|[1-9][0-9]{0,8})\.(0|[1-9][0-9]{0,8})")
_TARGET_RE = re.compile(r"[a-z0-9][a-z0-9-]{0,31}")
_PATH_RE = re.compile(r"[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*")

_SPEC: dict[str, type] = {
    "format": str, "version": int, "firmware_version": str, "target": str, "min_version": str,
    "notes": str, "created_at_ns": int, "files": list, "release_key_id": str, "signature": str,
}  # fmt: skip
_FILE_SPEC: dict[str, type] = {"path": str, "size": int, "sha256": str}


def parse_version(text: object, *, what: str = "version") -> tuple[int, int, int]:
    """MAJOR.MINOR.PATCH as numbers, so 1.10.0 is newer than 1.9.0."""
    match = _VERSION_RE.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        raise FormatError(f"{what}: {text!r} is not a version MAJOR.MINOR.PATCH (e.g. 1.4.0)")
    major, minor, patch = (int(part) for part in match.groups())
    return major, minor, patch


def check_path(path: str) -> str:
    """A relative path inside the bundle: no absolute path, no '..', no empty component."""
    parts = path.split("/")
    if len(path) > 255 or not _PATH_RE.fullmatch(path) or any(p in (".", "..") for p in parts):
        raise FormatError(
            f"firmware bundle: file path {path!r} is not a plain relative path "
            "(letters, digits, '.', '_', '-', '/' between names; no '..')"
        )
    return path


@dataclass(frozen=True)
class FileEntry:
    path: str
    size: int
    sha256: str

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "size": self.size, "sha256": self.sha256}


@dataclass(frozen=True)
class BundleHeader:
    firmware_version: str
    target: str
    min_version: str
    notes: str
    created_at_ns: int
    files: tuple[FileEntry, ...]
    release_key_id: str = ""
    signature: bytes = b""

    @property
    def payload_size(self) -> int:
        return sum(entry.size for entry in self.files)

    def unsigned_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": VERSION,
            "firmware_version": self.firmware_version,
            "target": self.target,
            "min_version": self.min_version,
            "notes": self.notes,
            "created_at_ns": self.created_at_ns,
            "files": [entry.to_json() for entry in self.files],
            "release_key_id": self.release_key_id,
        }

    def signed_message(self) -> bytes:
        return DOMAIN + canonical_bytes(self.unsigned_json(), what="firmware bundle header")

    def to_line(self) -> bytes:
        signature = b64e(self.signature) if self.signature else ""
        return canonical_bytes({**self.unsigned_json(), "signature": signature}) + b"\n"


def make_header(
    files: Iterable[FileEntry], *, firmware_version: str, target: str, min_version: str,
    notes: str, created_at_ns: int,
) -> BundleHeader:  # fmt: skip
    """An unsigned header, checked exactly as a reader will check it."""
    header = BundleHeader(
        firmware_version, target, min_version, notes, created_at_ns,
        tuple(sorted(files, key=lambda entry: entry.path)),
    )  # fmt: skip
    return parse_header(header.to_line()[:-1])


def parse_header(line: bytes) -> BundleHeader:
    """The header from its canonical JSON bytes (without the LF); every field is checked."""
    obj = parse_json(line, what="firmware bundle header")
    if obj.get("format") != FORMAT:
        raise FormatError(f"not a firmware bundle (format {FORMAT!r})")
    if obj.get("version") != VERSION:
        raise UnsupportedVersionError(
            f"firmware bundle format version {obj.get('version')!r} is not supported "
            f"(this bwc reads version {VERSION}): upgrade bwc"
        )
    require_fields(obj, _SPEC, "firmware bundle header")
    version = parse_version(obj["firmware_version"], what="firmware_version")
    if parse_version(obj["min_version"], what="min_version") > version:
        raise FormatError("firmware bundle: min_version is newer than firmware_version")
    if not _TARGET_RE.fullmatch(obj["target"]):
        raise FormatError(f"firmware bundle: target {obj['target']!r} is not a hardware name")
    if len(obj["notes"]) > MAX_NOTES_CHARS or obj["created_at_ns"] < 0:
        raise FormatError("firmware bundle: notes too long or created_at_ns negative")
    signed = bool(obj["signature"]) or bool(obj["release_key_id"])
    return BundleHeader(
        firmware_version=obj["firmware_version"],
        target=obj["target"],
        min_version=obj["min_version"],
        notes=obj["notes"],
        created_at_ns=obj["created_at_ns"],
        files=_parse_files(obj["files"]),
        release_key_id=check_hex(obj["release_key_id"], what="release_key_id", chars=16)
        if signed
        else "",
        signature=b64d(obj["signature"], what="signature", size=SIGNATURE_SIZE) if signed else b"",
    )


def _parse_files(items: list[Any]) -> tuple[FileEntry, ...]:
    if len(items) > MAX_FILES:
        raise FormatError(f"firmware bundle: {len(items)} files, more than {MAX_FILES} allowed")
    entries: list[FileEntry] = []
    for n, item in enumerate(items):
        if not isinstance(item, dict):
            raise FormatError(f"firmware bundle: files[{n}] must be an object")
        require_fields(item, _FILE_SPEC, f"firmware bundle files[{n}]")
        if not 0 <= item["size"] <= MAX_FILE_BYTES:
            raise FormatError(f"firmware bundle: files[{n}].size is out of range")
        entries.append(FileEntry(
            check_path(item["path"]), item["size"],
            check_hex(item["sha256"], what=f"files[{n}].sha256", chars=64),
        ))  # fmt: skip
    paths = [entry.path for entry in entries]
    if paths != sorted(set(paths)):
        raise FormatError("firmware bundle: file paths must be unique and sorted")
    names = set(paths)
    for path in paths:
        parents = ["/".join(path.split("/")[:i]) for i in range(1, path.count("/") + 1)]
        if any(parent in names for parent in parents):
            raise FormatError(f"firmware bundle: {path} lies under a file of the same bundle")
    return tuple(entries)


def read_header(stream: IO[bytes]) -> tuple[BundleHeader, int]:
    """The header and its length in bytes (where the payload starts); reads no further."""
    line = stream.readline(MAX_HEADER_BYTES + 1)
    if not line.endswith(b"\n"):
        raise FormatError(
            "firmware bundle: header line is truncated or longer than "
            f"{MAX_HEADER_BYTES} bytes: the file is cut short or not a bundle"
        )
    return parse_header(line[:-1]), len(line)


def _chunks(stream: IO[bytes], size: int) -> Iterator[bytes]:
    left = size
    while left > 0:
        chunk = stream.read(min(CHUNK, left))
        if not chunk:
            return
        left -= len(chunk)
        yield chunk


def hash_file(path: Path) -> FileEntry:
    digest, size = hashlib.sha256(), 0
    with path.open("rb") as stream:
        while chunk := stream.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return FileEntry("", size, digest.hexdigest())


def _folder_files(folder: Path) -> list[tuple[str, Path]]:
    if not folder.is_dir():
        raise FormatError(f"{folder} is not a folder: give the folder of payload files")
    found: list[tuple[str, Path]] = []
    for path in sorted(folder.rglob("*")):
        if path.is_symlink() or not (path.is_file() or path.is_dir()):
            raise FormatError(f"{path} is a link or special file: bundles hold regular files only")
        if path.is_file():
            found.append((check_path(path.relative_to(folder).as_posix()), path))
    if not found:
        raise FormatError(f"{folder} holds no files: nothing to bundle")
    return found


def build_bundle(
    folder: Path, out: Path, *, firmware_version: str, target: str, min_version: str,
    notes: str, created_at_ns: int,
) -> BundleHeader:  # fmt: skip
    """Write an unsigned bundle of every regular file under ``folder`` to ``out``."""
    files = _folder_files(folder)
    entries = [dataclasses.replace(hash_file(path), path=name) for name, path in files]
    header = make_header(
        entries, firmware_version=firmware_version, target=target, min_version=min_version,
        notes=notes, created_at_ns=created_at_ns,
    )  # fmt: skip
    sources = dict(files)
    _write_atomic(out, header, (sources[entry.path] for entry in header.files))
    return header


def sign_bundle(path: Path, key: Ed25519PrivateKey) -> BundleHeader:
    """Sign the bundle at ``path`` in place (the file is replaced atomically)."""
    try:
        with path.open("rb") as stream:
            header, _ = read_header(stream)
            unsigned = dataclasses.replace(header, release_key_id=key_id(key), signature=b"")
            signed = dataclasses.replace(unsigned, signature=key.sign(unsigned.signed_message()))
            _write_atomic(path, signed, [stream], overwrite=True)
    except OSError as exc:
        raise FormatError(f"cannot read {path}: {exc.strerror}") from exc
    return signed


def _write_atomic(
    out: Path, header: BundleHeader, sources: Iterable[Path | IO[bytes]], *, overwrite: bool = False
) -> None:
    if out.exists() and not overwrite:
        raise FormatError(f"{out} already exists: move it away or choose another --out")
    tmp = out.with_name(f".{out.name}.{secrets.token_hex(4)}.tmp")
    try:
        with tmp.open("xb") as dest:
            dest.write(header.to_line())
            for source in sources:
                if isinstance(source, Path):
                    with source.open("rb") as stream:
                        _copy(stream, dest)
                else:
                    _copy(source, dest)
            dest.flush()
            os.fsync(dest.fileno())
        tmp.replace(out)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise FormatError(f"cannot write {out}: {exc.strerror}; check the folder") from exc


def _copy(source: IO[bytes], dest: IO[bytes]) -> None:
    while chunk := source.read(CHUNK):
        dest.write(chunk)


def verify_bundle(
    path: Path, trusted: Iterable[Ed25519PublicKey], *, target: str | None = None,
    current_version: str | None = None,
) -> Report:  # fmt: skip
    """Every check a camera runs before installing: format, signer, signature, payload size and
    hashes, and, when given, target hardware and the version it would replace."""
    report = Report(f"firmware bundle {path.name}")
    try:
        with path.open("rb") as stream:
            try:
                header, start = read_header(stream)
            except FormatError as exc:
                report.failed("format", str(exc))
                return report
            report.passed("format", f"firmware {header.firmware_version} for {header.target}")
            check_release_signature(
                report, what="firmware bundle", signer_key_id=header.release_key_id,
                signature=header.signature, message=header.signed_message(), trusted=trusted,
            )  # fmt: skip
            if _check_size(report, header, os.fstat(stream.fileno()).st_size - start):
                _check_hashes(report, header, stream)
    except OSError as exc:
        raise FormatError(f"cannot read firmware bundle {path}: {exc.strerror}") from exc
    _check_install(report, header, target, current_version)
    return report


def _check_size(report: Report, header: BundleHeader, actual: int) -> bool:
    expected = header.payload_size
    if actual < expected:
        report.failed("payload size", f"truncated: {expected - actual} of {expected} bytes missing")
    elif actual > expected:
        report.failed("payload size", f"{actual - expected} bytes after the last payload file")
    else:
        report.passed("payload size", f"{len(header.files)} files, {expected} bytes")
    return actual == expected


def _check_hashes(report: Report, header: BundleHeader, stream: IO[bytes]) -> None:
    for entry in header.files:
        digest = hashlib.sha256()
        for chunk in _chunks(stream, entry.size):
            digest.update(chunk)
        if digest.hexdigest() != entry.sha256:
            report.failed("payload hashes", f"{entry.path}: SHA-256 differs: tampered or damaged")
            return
    report.passed("payload hashes", f"SHA-256 of all {len(header.files)} files match")


def _check_install(
    report: Report, header: BundleHeader, target: str | None, current: str | None
) -> None:
    if target is not None:
        if header.target == target:
            report.passed("target", f"built for {target}")
        else:
            report.failed("target", f"built for {header.target}, this hardware is {target}")
    if current is None:
        return
    now = parse_version(current, what="current version")
    if now < parse_version(header.min_version):
        report.failed(
            "minimum", f"replaces {header.min_version} or newer; this camera runs {current}"
        )
    else:
        report.passed("minimum", f"{current} is at least {header.min_version}")
    if parse_version(header.firmware_version) < now:
        report.failed("downgrade", f"{header.firmware_version} is older than the running {current}")
    else:
        report.passed("downgrade", f"{header.firmware_version} is not older than {current}")
