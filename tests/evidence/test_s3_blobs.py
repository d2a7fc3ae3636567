"""The S3 blob store against SeaweedFS: checksums, versions, Object Lock, and its failures.

What SeaweedFS (4.48) does, as these tests pin down: a put whose ``ChecksumSHA256`` does not
match the body is refused with ``BadDigest``; in a bucket with Object Lock (hence versioned) a
plain DELETE only adds a delete marker and keeps the data, while deleting a locked *version* is
refused with AccessDenied, a GOVERNANCE retention can be shortened only with
``BypassGovernanceRetention``, and a COMPLIANCE one not at all.
"""

from __future__ import annotations

import base64
import hashlib
import socket
import time

import pytest
from botocore.exceptions import ClientError
from pydantic import SecretStr, ValidationError

from evidence.config import NS_PER_DAY, EvidenceConfig, S3Settings
from evidence.errors import BlobLocked, StoreSetupError, VerificationFailed
from evidence.s3_blobs import INDEFINITE_NS, MIN_LOCK_NS, LockingS3BlobStore, S3BlobStore
from evidence.s3_errors import error_code, s3_error
from evidence.storage import LockingBlobStore
from evidence.store import open_blobs
from tests.evidence.s3_server import SeaweedS3

SHA = "ab" * 32
KEY = f"{SHA}/seg-000000.bwcs"
DATA = b"segment bytes"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def b64_sha256(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


@pytest.fixture
def store(seaweedfs: SeaweedS3, s3_settings: S3Settings) -> LockingS3BlobStore:
    opened = seaweedfs.open(s3_settings)
    assert isinstance(opened, LockingS3BlobStore)
    return opened


@pytest.fixture
def stored(store: LockingS3BlobStore) -> LockingS3BlobStore:
    """The store with ``DATA`` at ``KEY``."""
    store.put(KEY, DATA, sha256(DATA))
    return store


def retained_until_s(seaweedfs: SeaweedS3, store: S3BlobStore, key: str = KEY) -> int:
    """The retention date of the current version, as the server reports it, in seconds."""
    answer = seaweedfs.client().get_object_retention(Bucket=store.bucket, Key=key)
    return int(answer["Retention"]["RetainUntilDate"].timestamp())


def now_s() -> int:
    return time.time_ns() // 10**9


def bad_digest_error(seaweedfs: SeaweedS3, bucket: str) -> ClientError:
    """What SeaweedFS answers a put whose ChecksumSHA256 belongs to other bytes."""
    try:
        seaweedfs.client().put_object(
            Bucket=bucket,
            Key=KEY,
            Body=DATA,
            ChecksumAlgorithm="SHA256",
            ChecksumSHA256=b64_sha256(b"other bytes"),
        )
    except ClientError as exc:
        return exc
    pytest.fail("SeaweedFS stored a body whose ChecksumSHA256 does not match")


# Checksums


def test_seaweedfs_itself_refuses_a_body_whose_checksum_sha256_is_wrong(
    seaweedfs: SeaweedS3, store: LockingS3BlobStore
) -> None:
    assert error_code(bad_digest_error(seaweedfs, store.bucket)) == "BadDigest"
    assert not store.exists(KEY)


def test_the_servers_bad_digest_answer_becomes_verification_failed(
    seaweedfs: SeaweedS3, store: LockingS3BlobStore
) -> None:
    error = s3_error(bad_digest_error(seaweedfs, store.bucket), store.where, f"store {KEY}")
    assert isinstance(error, VerificationFailed)
    assert "does not match its sha256" in str(error)


def test_every_put_sends_the_sha256_that_the_server_keeps(
    seaweedfs: SeaweedS3, stored: LockingS3BlobStore
) -> None:
    head = seaweedfs.client().head_object(Bucket=stored.bucket, Key=KEY, ChecksumMode="ENABLED")
    assert head["ChecksumSHA256"] == b64_sha256(DATA)


# Versions and deletes


def test_a_plain_s3_delete_of_a_retained_object_succeeds_but_only_hides_the_data(
    seaweedfs: SeaweedS3, stored: LockingS3BlobStore
) -> None:
    stored.retain(KEY, time.time_ns() + NS_PER_DAY)
    client = seaweedfs.client()
    assert client.delete_object(Bucket=stored.bucket, Key=KEY)["DeleteMarker"] is True
    versions = client.list_object_versions(Bucket=stored.bucket, Prefix=KEY)
    assert stored.get(KEY) is None
    assert len(versions.get("Versions", [])) == 1  # the bytes are all still there


def test_a_delete_removes_every_version_and_delete_marker(
    seaweedfs: SeaweedS3, stored: LockingS3BlobStore
) -> None:
    stored.put(KEY, b"again", sha256(b"again"))
    seaweedfs.client().delete_object(Bucket=stored.bucket, Key=KEY)  # a marker on top
    stored.delete(KEY)
    versions = seaweedfs.client().list_object_versions(Bucket=stored.bucket, Prefix=KEY)
    assert (versions.get("Versions", []), versions.get("DeleteMarkers", [])) == ([], [])


def test_a_bucket_without_object_lock_opens_as_a_store_without_locks(
    seaweedfs: SeaweedS3,
) -> None:
    plain = seaweedfs.open(seaweedfs.settings(seaweedfs.new_bucket(object_lock=False)))
    assert not isinstance(plain, LockingBlobStore)
    plain.put(KEY, DATA, sha256(DATA))
    plain.delete(KEY)
    assert (plain.exists(KEY), plain.manifests()) == (False, [])


# Object Lock retention


def test_a_bucket_with_object_lock_opens_as_a_locking_store(store: LockingS3BlobStore) -> None:
    assert isinstance(store, LockingBlobStore)
    assert store.mode == "GOVERNANCE"


def test_a_blob_retained_until_a_future_time_cannot_be_deleted(
    stored: LockingS3BlobStore,
) -> None:
    stored.retain(KEY, time.time_ns() + NS_PER_DAY)
    with pytest.raises(BlobLocked, match=r"is retained \(GOVERNANCE\) until .*after that"):
        stored.delete(KEY)
    assert stored.get(KEY) == DATA  # nothing was deleted, not even hidden by a marker


def test_a_retention_is_set_to_the_second_the_store_asks_for(
    seaweedfs: SeaweedS3, stored: LockingS3BlobStore
) -> None:
    until_ns = time.time_ns() + 3 * NS_PER_DAY + 123_456_789
    stored.retain(KEY, until_ns)
    assert retained_until_s(seaweedfs, stored) == -(-until_ns // 10**9)  # rounded up


def test_a_governance_retention_is_shortened_when_the_category_is(
    seaweedfs: SeaweedS3, stored: LockingS3BlobStore
) -> None:
    stored.retain(KEY, time.time_ns() + 30 * NS_PER_DAY)
    shorter_ns = time.time_ns() + 2 * NS_PER_DAY
    stored.retain(KEY, shorter_ns)
    assert retained_until_s(seaweedfs, stored) == -(-shorter_ns // 10**9)


def test_a_compliance_retention_cannot_be_shortened(
    seaweedfs: SeaweedS3, s3_settings: S3Settings
) -> None:
    store = seaweedfs.open(s3_settings.model_copy(update={"lock_mode": "COMPLIANCE"}))
    assert isinstance(store, LockingS3BlobStore)
    store.put(KEY, DATA, sha256(DATA))
    longer_ns = time.time_ns() + 30 * NS_PER_DAY
    store.retain(KEY, longer_ns)
    with pytest.raises(BlobLocked, match=r"COMPLIANCE mode until .* no one can shorten"):
        store.retain(KEY, time.time_ns() + 2 * NS_PER_DAY)
    assert retained_until_s(seaweedfs, store) == -(-longer_ns // 10**9)


def test_an_expiry_already_past_cuts_a_longer_lock_to_a_minute(
    seaweedfs: SeaweedS3, stored: LockingS3BlobStore
) -> None:
    stored.retain(KEY, time.time_ns() + 30 * NS_PER_DAY)
    before = now_s()
    stored.retain(KEY, time.time_ns() - NS_PER_DAY)
    assert before < retained_until_s(seaweedfs, stored) <= now_s() + MIN_LOCK_NS // 10**9 + 1


def test_an_expiry_already_past_puts_no_lock_on_an_unlocked_blob(
    stored: LockingS3BlobStore,
) -> None:
    stored.retain(KEY, time.time_ns() - NS_PER_DAY)
    stored.delete(KEY)
    assert not stored.exists(KEY)


def test_an_indefinite_retention_locks_the_blob_for_a_century(
    seaweedfs: SeaweedS3, stored: LockingS3BlobStore
) -> None:
    before = now_s()
    stored.retain(KEY, None)
    century_s = INDEFINITE_NS // 10**9
    assert before + century_s <= retained_until_s(seaweedfs, stored) <= now_s() + century_s + 1


# Legal holds


def test_a_legal_hold_blocks_delete_until_it_is_lifted(stored: LockingS3BlobStore) -> None:
    stored.legal_hold(KEY, True)
    with pytest.raises(BlobLocked, match="is under a legal hold"):
        stored.delete(KEY)
    assert stored.get(KEY) == DATA
    stored.legal_hold(KEY, False)
    stored.delete(KEY)
    assert (stored.exists(KEY), stored.keys(SHA)) == (False, [])


def test_not_even_the_governance_bypass_deletes_a_blob_under_a_legal_hold(
    seaweedfs: SeaweedS3, stored: LockingS3BlobStore
) -> None:
    stored.legal_hold(KEY, True)
    client = seaweedfs.client()
    hold = client.get_object_legal_hold(Bucket=stored.bucket, Key=KEY)
    assert hold["LegalHold"]["Status"] == "ON"
    version = client.head_object(Bucket=stored.bucket, Key=KEY)["VersionId"]
    with pytest.raises(ClientError) as refused:
        client.delete_object(
            Bucket=stored.bucket, Key=KEY, VersionId=version, BypassGovernanceRetention=True
        )
    assert error_code(refused.value) == "AccessDenied"


# Opening, configuration and failures


def test_the_configuration_opens_s3_blobs_instead_of_the_folder(
    tmp_path_factory: pytest.TempPathFactory, s3_settings: S3Settings
) -> None:
    data_dir = tmp_path_factory.mktemp("store")
    blobs = open_blobs(EvidenceConfig(data_dir=data_dir, s3=s3_settings))
    assert isinstance(blobs, LockingS3BlobStore)
    assert not (data_dir / "blobs").exists()


def test_a_key_id_without_its_secret_is_refused_in_the_configuration() -> None:
    with pytest.raises(ValidationError, match="set both access_key_id and secret_access_key"):
        S3Settings(bucket="evidence", access_key_id="AKIA-only-half")


def test_credentials_come_from_the_standard_aws_variables_when_not_configured(
    seaweedfs: SeaweedS3, s3_settings: S3Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", seaweedfs.admin.access_key_id)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", seaweedfs.admin.secret_access_key)
    settings = s3_settings.model_copy(update={"access_key_id": None, "secret_access_key": None})
    store = open_blobs(EvidenceConfig(data_dir=seaweedfs.run / "unused", s3=settings))
    store.put(KEY, DATA, sha256(DATA))
    assert store.get(KEY) == DATA


def test_an_unreachable_endpoint_is_a_setup_error(seaweedfs: SeaweedS3) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        nobody = f"http://127.0.0.1:{sock.getsockname()[1]}"  # bound, never listening
        settings = seaweedfs.settings("any-bucket").model_copy(update={"endpoint_url": nobody})
        with pytest.raises(StoreSetupError, match=r"cannot reach .* check s3.endpoint_url"):
            seaweedfs.open(settings)


def test_a_missing_bucket_is_a_setup_error(seaweedfs: SeaweedS3) -> None:
    with pytest.raises(StoreSetupError, match=r"'no-such-bucket' .* does not exist: create it"):
        seaweedfs.open(seaweedfs.settings("no-such-bucket"))


def test_a_wrong_secret_is_a_setup_error(seaweedfs: SeaweedS3, s3_settings: S3Settings) -> None:
    wrong = s3_settings.model_copy(update={"secret_access_key": SecretStr("not-the-secret")})
    with pytest.raises(StoreSetupError, match=r"denied access .*SignatureDoesNotMatch"):
        seaweedfs.open(wrong)


def test_credentials_that_may_only_read_are_refused_at_open(
    seaweedfs: SeaweedS3, s3_settings: S3Settings
) -> None:
    reader = seaweedfs.settings(s3_settings.bucket, identity=seaweedfs.reader)
    with pytest.raises(StoreSetupError, match=r"denied access .*AccessDenied.*credentials"):
        seaweedfs.open(reader)


def test_an_error_message_is_one_line(seaweedfs: SeaweedS3) -> None:
    with pytest.raises(StoreSetupError) as failed:
        seaweedfs.open(seaweedfs.settings("no-such-bucket"))
    assert "\n" not in str(failed.value)
