"""Agency key providers: the agency private key from a file, or a key service over HTTP."""

from __future__ import annotations

import base64
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from pydantic import ValidationError

from custody.clipid import new_clip_id
from custody.envelope import WrappedKey, wrap_data_key
from custody.keys import private_pem, write_atomic
from custody.segment import new_data_key
from evidence.agency_keys import AgencyKey, FileAgencyKey, HttpAgencyKey, open_agency_key
from evidence.config import EvidenceConfig, KmsSettings
from evidence.errors import AgencyKeyUnavailable, StoreSetupError
from tests.evidence.key_service import KeyService, key_service

TOKEN = "kms-token-0123456789abcdef"


def write_private(path: Path, key: X25519PrivateKey | Ed25519PrivateKey, mode: int = 0o600) -> Path:
    write_atomic(path, private_pem(key), mode=mode)
    return path


@pytest.fixture
def token_file(tmp_path: Path) -> Path:
    path = tmp_path / "kms.token"
    write_atomic(path, f"{TOKEN}\n".encode(), mode=0o600)
    return path


@pytest.fixture
def kms(agency_key: X25519PrivateKey) -> Iterator[KeyService]:
    with key_service(agency_key, TOKEN) as service:
        yield service


@pytest.fixture(params=["file", "http"])
def provider(
    request: pytest.FixtureRequest, tmp_path: Path, agency_key: X25519PrivateKey
) -> AgencyKey:
    """Every provider, holding (or reaching) the same agency key."""
    if request.param == "file":
        return FileAgencyKey(write_private(tmp_path / "agency.key.pem", agency_key))
    service: KeyService = request.getfixturevalue("kms")
    return HttpAgencyKey(
        KmsSettings(url=service.url, token_file=request.getfixturevalue("token_file"))
    )


def wrapped_for(key: X25519PrivateKey, data_key: bytes, clip_id: str) -> WrappedKey:
    return wrap_data_key(data_key, key.public_key(), clip_id)


# Contract: every provider answers the same.


def test_a_provider_unwraps_the_data_key_a_clip_was_sealed_with(
    provider: AgencyKey, agency_key: X25519PrivateKey
) -> None:
    data_key, clip_id = new_data_key(), new_clip_id()
    assert provider.unwrap(wrapped_for(agency_key, data_key, clip_id), clip_id) == data_key


def test_a_clip_for_another_agency_key_is_refused_naming_the_key_it_needs(
    provider: AgencyKey,
) -> None:
    clip_id = new_clip_id()
    wrapped = wrapped_for(X25519PrivateKey.generate(), new_data_key(), clip_id)
    with pytest.raises(AgencyKeyUnavailable, match=wrapped.recipient) as refused:
        provider.unwrap(wrapped, clip_id)
    assert "\n" not in str(refused.value)


def test_a_data_key_wrapped_for_another_clip_is_refused(
    provider: AgencyKey, agency_key: X25519PrivateKey
) -> None:
    wrapped = wrapped_for(agency_key, new_data_key(), new_clip_id())
    with pytest.raises(AgencyKeyUnavailable):
        provider.unwrap(wrapped, new_clip_id())


# The key file.


def test_a_key_file_readable_by_its_group_is_refused(
    tmp_path: Path, agency_key: X25519PrivateKey
) -> None:
    path = write_private(tmp_path / "agency.key.pem", agency_key, mode=0o640)
    with pytest.raises(StoreSetupError, match="chmod 600"):
        FileAgencyKey(path)


def test_a_signing_key_is_refused_as_the_agency_key(tmp_path: Path) -> None:
    path = write_private(tmp_path / "store.key.pem", Ed25519PrivateKey.generate())
    with pytest.raises(StoreSetupError, match="agency X25519 private key"):
        FileAgencyKey(path)


# The key service.


def test_the_key_service_gets_the_wrapped_key_and_never_the_store_a_private_key(
    kms: KeyService, token_file: Path, agency_key: X25519PrivateKey
) -> None:
    provider = HttpAgencyKey(KmsSettings(url=kms.url, token_file=token_file))
    data_key, clip_id = new_data_key(), new_clip_id()
    assert provider.unwrap(wrapped_for(agency_key, data_key, clip_id), clip_id) == data_key
    assert kms.calls == [clip_id]
    assert not any(isinstance(v, X25519PrivateKey) for v in vars(provider).values())


def test_a_token_the_key_service_refuses_is_a_one_line_error(
    kms: KeyService, tmp_path: Path, agency_key: X25519PrivateKey
) -> None:
    wrong = tmp_path / "wrong.token"
    write_atomic(wrong, b"not-the-token-at-all", mode=0o600)
    provider = HttpAgencyKey(KmsSettings(url=kms.url, token_file=wrong))
    clip_id = new_clip_id()
    with pytest.raises(AgencyKeyUnavailable, match="refused the token") as refused:
        provider.unwrap(wrapped_for(agency_key, new_data_key(), clip_id), clip_id)
    assert "\n" not in str(refused.value)
    assert kms.calls == []


def test_an_unreachable_key_service_is_a_one_line_error_naming_it(
    token_file: Path, agency_key: X25519PrivateKey
) -> None:
    with socket.socket() as free:  # a port nothing listens on once this closes
        free.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{free.getsockname()[1]}/decrypt"
    provider = HttpAgencyKey(KmsSettings(url=url, token_file=token_file, timeout_s=2))
    clip_id = new_clip_id()
    with pytest.raises(AgencyKeyUnavailable, match="unreachable") as refused:
        provider.unwrap(wrapped_for(agency_key, new_data_key(), clip_id), clip_id)
    assert url in str(refused.value)
    assert "\n" not in str(refused.value)


@pytest.mark.parametrize(
    "answer",
    [
        {"data": {"plaintext": base64.b64encode(b"short key").decode()}},
        {"data": {"plaintext": "not base64!"}},
        {"plaintext": base64.b64encode(bytes(32)).decode()},
    ],
    ids=["short", "not-base64", "no-data"],
)
def test_an_answer_that_is_not_a_data_key_is_refused(
    kms: KeyService, token_file: Path, agency_key: X25519PrivateKey, answer: dict[str, object]
) -> None:
    kms.answer = answer
    provider = HttpAgencyKey(KmsSettings(url=kms.url, token_file=token_file))
    clip_id = new_clip_id()
    with pytest.raises(AgencyKeyUnavailable, match="32-byte data key"):
        provider.unwrap(wrapped_for(agency_key, new_data_key(), clip_id), clip_id)


def test_a_token_file_readable_by_others_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "kms.token"
    write_atomic(path, TOKEN.encode(), mode=0o604)
    with pytest.raises(StoreSetupError, match="chmod 600"):
        HttpAgencyKey(KmsSettings(url="https://kms.example/decrypt", token_file=path))


# Configuration.


def test_plain_http_is_refused_for_a_key_service_off_this_host(token_file: Path) -> None:
    with pytest.raises(ValidationError, match="use https"):
        KmsSettings(url="http://kms.agency.example/decrypt", token_file=token_file)


def test_a_key_file_and_a_key_service_together_are_refused(
    tmp_path: Path, token_file: Path
) -> None:
    kms = KmsSettings(url="https://kms.agency.example/decrypt", token_file=token_file)
    with pytest.raises(ValidationError, match="not both"):
        EvidenceConfig(data_dir=tmp_path, agency_key=tmp_path / "a.key.pem", agency_kms=kms)


def test_the_configuration_names_the_provider_or_none(
    tmp_path: Path, token_file: Path, agency_key: X25519PrivateKey
) -> None:
    key = write_private(tmp_path / "agency.key.pem", agency_key)
    kms = KmsSettings(url="https://kms.agency.example/decrypt", token_file=token_file)
    assert open_agency_key(EvidenceConfig(data_dir=tmp_path)) is None
    assert isinstance(
        open_agency_key(EvidenceConfig(data_dir=tmp_path, agency_key=key)), FileAgencyKey
    )
    assert isinstance(
        open_agency_key(EvidenceConfig(data_dir=tmp_path, agency_kms=kms)), HttpAgencyKey
    )
