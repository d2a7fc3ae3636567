"""Key files: standard PEM encodings, private keys 0600, key ids from the raw public key."""

from __future__ import annotations

import hashlib
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from custody.errors import KeyFileError
from custody.keys import (
    Role,
    describe_key_file,
    key_id,
    load_agency_private_key,
    load_private_key,
    load_public_key,
    load_verify_key,
    raw_public,
    write_key_pair,
)


@pytest.mark.parametrize("role", list(Role))
def test_private_key_files_are_created_0600(tmp_path: Path, role: Role) -> None:
    files = write_key_pair(tmp_path, role)
    assert stat.S_IMODE(files.private.stat().st_mode) == 0o600
    assert stat.S_IMODE(files.public.stat().st_mode) == 0o644


def test_key_pair_files_hold_one_key_pair(tmp_path: Path) -> None:
    files = write_key_pair(tmp_path, Role.DEVICE, "cam-0042")
    private = load_private_key(files.private)
    public = load_public_key(files.public)
    assert raw_public(private) == raw_public(public)
    assert files.private.name == "cam-0042.key.pem"
    assert files.public.read_bytes().startswith(b"-----BEGIN PUBLIC KEY-----")


def test_agency_keys_are_x25519_and_the_others_ed25519(tmp_path: Path) -> None:
    assert isinstance(
        load_private_key(write_key_pair(tmp_path, Role.AGENCY).private), X25519PrivateKey
    )
    assert isinstance(
        load_private_key(write_key_pair(tmp_path, Role.STORE).private), Ed25519PrivateKey
    )


def test_key_id_is_the_first_16_hex_of_sha256_of_the_raw_public_key() -> None:
    key = Ed25519PrivateKey.generate()
    assert key_id(key) == hashlib.sha256(raw_public(key)).hexdigest()[:16]


def test_a_group_readable_private_key_is_refused_with_the_chmod_to_run(tmp_path: Path) -> None:
    files = write_key_pair(tmp_path, Role.DEVICE)
    files.private.chmod(0o640)
    with pytest.raises(KeyFileError, match=f"run 'chmod 600 {files.private}'"):
        load_private_key(files.private)


def test_existing_key_files_are_never_overwritten(tmp_path: Path) -> None:
    write_key_pair(tmp_path, Role.STORE)
    with pytest.raises(KeyFileError, match="already exists"):
        write_key_pair(tmp_path, Role.STORE)


def test_a_missing_key_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError, match=r"nope\.pem does not exist"):
        load_public_key(tmp_path / "nope.pem")


def test_a_file_that_is_not_pem_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "junk.pem"
    path.write_bytes(b"hello")
    with pytest.raises(KeyFileError, match="not a SubjectPublicKeyInfo PEM"):
        load_public_key(path)


def test_a_key_of_the_wrong_algorithm_for_its_use_is_refused(tmp_path: Path) -> None:
    files = write_key_pair(tmp_path, Role.AGENCY)
    with pytest.raises(KeyFileError, match="Ed25519 key is needed"):
        load_verify_key(files.public)
    device = write_key_pair(tmp_path, Role.DEVICE)
    with pytest.raises(KeyFileError, match="agency X25519 private key is needed"):
        load_agency_private_key(device.private)


def test_describe_names_algorithm_roles_and_key_id(tmp_path: Path) -> None:
    files = write_key_pair(tmp_path, Role.AGENCY)
    info = describe_key_file(files.public)
    assert (info.private, info.algorithm, info.key_id) == (False, "X25519", files.key_id)
    assert info.roles == ["agency"]
