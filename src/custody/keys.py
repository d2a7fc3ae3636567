"""Key roles, key ids and key files.

Private keys are PKCS#8 PEM (unencrypted, mode 0600), public keys SubjectPublicKeyInfo PEM. A key
id is the first 16 hex characters of SHA-256 over the raw 32-byte public key. Files are written
atomically (temporary file, fsync, rename, fsync of the folder) so a crash never leaves half a key.
See docs/formats/keys.md.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import stat
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

from custody.canonical import b64e
from custody.errors import KeyFileError

PrivateKey = Ed25519PrivateKey | X25519PrivateKey
PublicKey = Ed25519PublicKey | X25519PublicKey
AnyKey = PrivateKey | PublicKey


class Role(StrEnum):
    DEVICE = "device"  # signs manifests and the device audit log
    AGENCY = "agency"  # recording key pair: data keys are wrapped to its public half
    STORE = "store"  # evidence store: signs receipts
    DOCK = "dock"  # dock credential: signs the dock's audit log and authenticates to cameras
    RELEASE = "release"  # agency release key: signs firmware bundles and configuration profiles


ROLE_ALGORITHM: dict[Role, str] = {
    Role.DEVICE: "Ed25519",
    Role.AGENCY: "X25519",
    Role.STORE: "Ed25519",
    Role.DOCK: "Ed25519",
    Role.RELEASE: "Ed25519",
}


def generate_private_key(role: Role) -> PrivateKey:
    if ROLE_ALGORITHM[role] == "X25519":
        return X25519PrivateKey.generate()
    return Ed25519PrivateKey.generate()


def public_key_of(key: AnyKey) -> PublicKey:
    if isinstance(key, Ed25519PrivateKey | X25519PrivateKey):
        return key.public_key()
    return key


def raw_public(key: AnyKey) -> bytes:
    """The 32 raw bytes of the public key (of a private key: of its public half)."""
    return public_key_of(key).public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )


def raw_private(key: PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.Raw,
        serialization.PrivateFormat.Raw,
        serialization.NoEncryption(),
    )


def key_id(key: AnyKey | bytes) -> str:
    raw = key if isinstance(key, bytes) else raw_public(key)
    return hashlib.sha256(raw).hexdigest()[:16]


def algorithm_of(key: AnyKey) -> str:
    return "Ed25519" if isinstance(key, Ed25519PrivateKey | Ed25519PublicKey) else "X25519"


def private_pem(key: PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def public_pem(key: AnyKey) -> bytes:
    return public_key_of(key).public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def write_atomic(path: Path, data: bytes, *, mode: int, overwrite: bool = False) -> None:
    """Write ``data`` so that ``path`` holds either nothing (or its old content) or all of it."""
    if path.exists() and not overwrite:
        raise KeyFileError(f"{path} already exists: move it away or choose another --out/--id")
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        try:
            os.fchmod(fd, mode)  # the umask may have removed bits; set exactly what we mean
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        tmp.replace(path)
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise KeyFileError(f"cannot write {path}: {exc.strerror}; check the folder") from exc


@dataclass(frozen=True)
class KeyPairFiles:
    private: Path
    public: Path
    key_id: str


def write_key_pair(folder: Path, role: Role, name: str | None = None) -> KeyPairFiles:
    """Generate a key for ``role`` and write NAME.key.pem (0600) and NAME.pub.pem (0644)."""
    stem = name or role.value
    if not stem or "/" in stem or stem.startswith("."):
        raise KeyFileError(f"key name {stem!r} is not a plain file name: choose another --id")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise KeyFileError(f"cannot create {folder}: {exc.strerror}") from exc
    key = generate_private_key(role)
    files = KeyPairFiles(folder / f"{stem}.key.pem", folder / f"{stem}.pub.pem", key_id(key))
    for path in (files.private, files.public):
        if path.exists():
            raise KeyFileError(f"{path} already exists: move it away or choose another --id")
    write_atomic(files.private, private_pem(key), mode=0o600)
    write_atomic(files.public, public_pem(key), mode=0o644)
    return files


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError as exc:
        raise KeyFileError(f"key file {path} does not exist") from exc
    except OSError as exc:
        raise KeyFileError(f"cannot read key file {path}: {exc.strerror}") from exc


def _check_private_mode(path: Path) -> None:
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeyFileError(
            f"private key {path} is readable by group or others "
            f"(mode {stat.S_IMODE(mode):04o}): run 'chmod 600 {path}'"
        )


def load_private_key(path: Path) -> PrivateKey:
    data = _read(path)
    _check_private_mode(path)
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except TypeError as exc:
        raise KeyFileError(f"{path} is password-protected: store it unencrypted (0600)") from exc
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise KeyFileError(f"{path} is not a PKCS#8 PEM private key") from exc
    if not isinstance(key, Ed25519PrivateKey | X25519PrivateKey):
        raise KeyFileError(f"{path} holds a {type(key).__name__}; expected Ed25519 or X25519")
    return key


def load_public_key(path: Path) -> PublicKey:
    """A public key file; given a private key file, its public half (after the mode check)."""
    data = _read(path)
    if b"PRIVATE KEY" in data:
        return public_key_of(load_private_key(path))
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise KeyFileError(f"{path} is not a SubjectPublicKeyInfo PEM public key") from exc
    if not isinstance(key, Ed25519PublicKey | X25519PublicKey):
        raise KeyFileError(f"{path} holds a {type(key).__name__}; expected Ed25519 or X25519")
    return key


def load_signing_key(path: Path) -> Ed25519PrivateKey:
    key = load_private_key(path)
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyFileError(f"{path} is an X25519 key; a signing (Ed25519) key is needed here")
    return key


def load_verify_key(path: Path) -> Ed25519PublicKey:
    key = load_public_key(path)
    if not isinstance(key, Ed25519PublicKey):
        raise KeyFileError(f"{path} is an X25519 key; a device/store/dock Ed25519 key is needed")
    return key


def load_agency_private_key(path: Path) -> X25519PrivateKey:
    key = load_private_key(path)
    if not isinstance(key, X25519PrivateKey):
        raise KeyFileError(f"{path} is an Ed25519 key; the agency X25519 private key is needed")
    return key


def load_agency_public_key(path: Path) -> X25519PublicKey:
    key = load_public_key(path)
    if not isinstance(key, X25519PublicKey):
        raise KeyFileError(f"{path} is an Ed25519 key; the agency X25519 public key is needed")
    return key


@dataclass(frozen=True)
class KeyInfo:
    path: Path
    private: bool
    algorithm: str
    key_id: str
    public_b64: str

    @property
    def roles(self) -> list[str]:
        return [role.value for role, alg in ROLE_ALGORITHM.items() if alg == self.algorithm]


def describe_key_file(path: Path) -> KeyInfo:
    data = _read(path)
    key: AnyKey = load_private_key(path) if b"PRIVATE KEY" in data else load_public_key(path)
    private = isinstance(key, Ed25519PrivateKey | X25519PrivateKey)
    return KeyInfo(path, private, algorithm_of(key), key_id(key), b64e(raw_public(key)))
