"""The audit chain: every record links to the one before; checkpoints sign what came before."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from custody.audit import AuditWriter, verify_audit
from custody.canonical import canonical_bytes, parse_json
from custody.errors import FormatError

ACTOR = "device:cam-0042"


@pytest.fixture
def signer() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def _log(signer: Ed25519PrivateKey, events: int = 10, every: int = 4) -> bytes:
    lines: list[bytes] = []
    writer = AuditWriter.start(
        lines.append, signer, actor=ACTOR, wall_ns=1, monotonic_ns=1, checkpoint_every=every
    )
    for n in range(events):
        writer.append(ACTOR, "button.press", {"n": n}, wall_ns=10 + n, monotonic_ns=10 + n)
    return b"".join(lines)


def _edit(log: bytes, seq: int, **changes: object) -> bytes:
    lines = log.split(b"\n")
    record = parse_json(lines[seq], what="record")
    record.update(changes)
    lines[seq] = canonical_bytes(record)
    return b"\n".join(lines)


def test_checkpoints_are_written_every_n_records_and_verify(signer: Ed25519PrivateKey) -> None:
    report = verify_audit(_log(signer), [signer.public_key()])
    assert report.ok, report.first_failure
    # seq 0 is audit.start; every 4th record after it is followed by a checkpoint
    assert report.checkpoints == [4, 9]
    assert report.records == 13


def test_a_broken_link_is_reported_at_its_seq(signer: Ed25519PrivateKey) -> None:
    report = verify_audit(_edit(_log(signer), 6, data={"n": 99}), [signer.public_key()])
    assert not report.ok
    assert report.broken_seq == 7
    assert report.first_failure is not None
    assert "first broken link at seq 7: prev does not match" in report.first_failure.detail
    assert report.checkpoints == [4]


def test_a_removed_record_is_reported(signer: Ed25519PrivateKey) -> None:
    lines = _log(signer).split(b"\n")
    del lines[3]
    report = verify_audit(b"\n".join(lines), [signer.public_key()])
    assert report.broken_seq == 3
    assert report.first_failure is not None and "says seq 4" in report.first_failure.detail


def test_a_checkpoint_by_an_unknown_key_is_named(signer: Ed25519PrivateKey) -> None:
    report = verify_audit(_log(signer), [Ed25519PrivateKey.generate().public_key()])
    assert report.first_failure is not None
    assert report.first_failure.name == "checkpoint signer"
    assert "seq 4: signed by an unknown key" in report.first_failure.detail


def test_a_torn_last_line_is_reported_as_truncated(signer: Ed25519PrivateKey) -> None:
    log = _log(signer)
    report = verify_audit(log[:-5], [signer.public_key()])
    assert report.broken_seq == 12
    assert report.first_failure is not None and "truncated" in report.first_failure.detail


def test_a_log_without_a_signed_checkpoint_does_not_verify(signer: Ed25519PrivateKey) -> None:
    report = verify_audit(_log(signer, events=2, every=10), [signer.public_key()])
    assert report.first_failure is not None and report.first_failure.name == "checkpoints"


def test_a_resumed_log_continues_the_chain(signer: Ed25519PrivateKey) -> None:
    log = _log(signer, events=6)
    more: list[bytes] = []
    writer = AuditWriter.resume(log, more.append, signer, checkpoint_every=4)
    assert writer.next_seq == 8
    writer.append(ACTOR, "dock.connect", {}, wall_ns=50, monotonic_ns=50)
    writer.checkpoint(actor=ACTOR, wall_ns=51, monotonic_ns=51)
    report = verify_audit(log + b"".join(more), [signer.public_key()])
    assert report.ok, report.first_failure
    # seq 8 is the 4th record since the checkpoint at 4, so 9 follows; 10 is the one on demand
    assert report.checkpoints == [4, 9, 10]


def test_reserved_event_names_are_refused(signer: Ed25519PrivateKey) -> None:
    writer = AuditWriter.start(lambda _: None, signer, actor=ACTOR, wall_ns=1, monotonic_ns=1)
    with pytest.raises(FormatError, match="reserved"):
        writer.append(ACTOR, "audit.checkpoint", {}, wall_ns=1, monotonic_ns=1)


def test_a_writer_continued_after_the_last_line_writes_what_a_resumed_one_writes(
    signer: Ed25519PrivateKey,
) -> None:
    log = _log(signer, events=6)  # checkpoint at 4, then seqs 5..7 unsigned
    resumed: list[bytes] = []
    followed: list[bytes] = []
    last = log.rstrip(b"\n").rsplit(b"\n", 1)[-1] + b"\n"
    for writer in (
        AuditWriter.resume(log, resumed.append, signer, checkpoint_every=4),
        AuditWriter.after(last, followed.append, signer, since_checkpoint=3, checkpoint_every=4),
    ):
        writer.append(ACTOR, "dock.connect", {}, wall_ns=50, monotonic_ns=50)
    # Ed25519 signatures are deterministic, so both writers produce the same bytes.
    assert followed == resumed
    assert len(followed) == 2  # the 4th record since the checkpoint brings the next one
    assert verify_audit(log + b"".join(followed), [signer.public_key()]).ok


def test_a_writer_cannot_continue_after_a_line_without_a_seq(signer: Ed25519PrivateKey) -> None:
    with pytest.raises(FormatError, match="no valid seq"):
        AuditWriter.after(b'{"seq":-1}\n', lambda _: None, signer, since_checkpoint=0)
