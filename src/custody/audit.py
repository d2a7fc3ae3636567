"""The audit chain: an append-only JSON Lines log whose records each hash the one before.

Record fields: seq, wall_ns, monotonic_ns, actor, event, data, prev (docs/formats/audit.md). The
first record (seq 0) is ``audit.start`` naming the format and version; ``audit.checkpoint``
records add an Ed25519 ``signature`` over "bwc-audit-checkpoint-v1" NUL plus the canonical record
without it, which through ``prev`` covers every record before it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from custody.canonical import b64d, b64e, canonical_bytes, check_hex, parse_json, sha256_hex
from custody.errors import FormatError, UnsupportedVersionError
from custody.keys import key_id
from custody.manifest import ZERO_HASH
from custody.report import Report
from custody.schema import require_fields

FORMAT = "bwc-audit"
VERSION = 1
DOMAIN = b"bwc-audit-checkpoint-v1\x00"
START = "audit.start"
CHECKPOINT = "audit.checkpoint"
MAX_LINE_BYTES = 64 * 1024

_SPEC: dict[str, type] = {
    "seq": int, "wall_ns": int, "monotonic_ns": int, "actor": str, "event": str, "data": dict,
    "prev": str,
}  # fmt: skip

Write = Callable[[bytes], object]


def checkpoint_message(record: dict[str, Any]) -> bytes:
    unsigned = {k: v for k, v in record.items() if k != "signature"}
    return DOMAIN + canonical_bytes(unsigned, what="audit checkpoint")


class AuditWriter:
    """Appends audit records through ``write`` (one call per line) and signs checkpoints."""

    def __init__(
        self, write: Write, key: Ed25519PrivateKey, *, checkpoint_every: int = 100
    ) -> None:
        if checkpoint_every < 1:
            raise ValueError("checkpoint_every must be at least 1")
        self._write = write
        self._key = key
        self._every = checkpoint_every
        self._seq = 0
        self._prev = ZERO_HASH
        self._since_checkpoint = 0

    @classmethod
    def start(
        cls, write: Write, key: Ed25519PrivateKey, *, actor: str, wall_ns: int, monotonic_ns: int,
        checkpoint_every: int = 100,
    ) -> AuditWriter:  # fmt: skip
        writer = cls(write, key, checkpoint_every=checkpoint_every)
        writer._append(actor, START, {"format": FORMAT, "version": VERSION}, wall_ns, monotonic_ns)
        return writer

    @classmethod
    def resume(
        cls, data: bytes, write: Write, key: Ed25519PrivateKey, *, checkpoint_every: int = 100
    ) -> AuditWriter:
        """Continue a log whose complete, verified lines are ``data``."""
        report = verify_audit(data, [key.public_key()], require_checkpoint=False)
        if not report.ok:
            raise FormatError(f"cannot resume the audit log: {report.first_failure_text()}")
        writer = cls(write, key, checkpoint_every=checkpoint_every)
        last = data.rstrip(b"\n").rsplit(b"\n", 1)[-1]
        writer._seq, writer._prev = report.records, sha256_hex(last)
        writer._since_checkpoint = report.records - 1 - (report.checkpoints or [-1])[-1]
        return writer

    @classmethod
    def after(
        cls, last_line: bytes, write: Write, key: Ed25519PrivateKey, *, since_checkpoint: int,
        checkpoint_every: int = 100,
    ) -> AuditWriter:  # fmt: skip
        """Continue right after ``last_line``, the newest record of a log already trusted.

        For a log kept in a database that several processes append to under its lock: each
        append starts from the stored tail (and the count of records after the last checkpoint)
        instead of re-reading the whole log. ``last_line`` is parsed, not verified.
        """
        record = parse_json(last_line.rstrip(b"\n"), what="last audit record")
        seq = record.get("seq")
        if type(seq) is not int or seq < 0 or since_checkpoint < 0:
            raise FormatError("cannot continue the audit log: its last record has no valid seq")
        writer = cls(write, key, checkpoint_every=checkpoint_every)
        writer._seq, writer._prev = seq + 1, sha256_hex(last_line.rstrip(b"\n"))
        writer._since_checkpoint = since_checkpoint
        return writer

    @property
    def next_seq(self) -> int:
        return self._seq

    def append(
        self, actor: str, event: str, data: dict[str, Any], *, wall_ns: int, monotonic_ns: int
    ) -> int:
        """Record one event; every ``checkpoint_every`` records a signed checkpoint follows."""
        if event.startswith("audit."):
            raise FormatError(f"audit event name {event!r}: names starting 'audit.' are reserved")
        seq = self._append(actor, event, data, wall_ns, monotonic_ns)
        if self._since_checkpoint >= self._every:
            self.checkpoint(actor=actor, wall_ns=wall_ns, monotonic_ns=monotonic_ns)
        return seq

    def checkpoint(self, *, actor: str, wall_ns: int, monotonic_ns: int) -> int:
        """Sign everything so far (on demand, e.g. before shutdown or offload)."""
        return self._append(actor, CHECKPOINT, {"key_id": key_id(self._key)}, wall_ns, monotonic_ns)

    def _append(
        self, actor: str, event: str, data: dict[str, Any], wall_ns: int, monotonic_ns: int
    ) -> int:
        record: dict[str, Any] = {
            "seq": self._seq, "wall_ns": wall_ns, "monotonic_ns": monotonic_ns, "actor": actor,
            "event": event, "data": data, "prev": self._prev,
        }  # fmt: skip
        if event == CHECKPOINT:
            record["signature"] = b64e(self._key.sign(checkpoint_message(record)))
        line = canonical_bytes(record, what="audit record")
        if len(line) > MAX_LINE_BYTES:
            raise FormatError(f"audit record of {len(line)} bytes exceeds {MAX_LINE_BYTES}")
        self._write(line + b"\n")
        seq = self._seq
        self._seq, self._prev = seq + 1, sha256_hex(line)
        self._since_checkpoint = 0 if event == CHECKPOINT else self._since_checkpoint + 1
        return seq


@dataclass
class AuditReport(Report):
    records: int = 0  # records read up to the first broken link
    broken_seq: int | None = None  # seq of the first record that does not hold
    checkpoints: list[int] = field(default_factory=list)  # seqs of verified checkpoints

    def first_failure_text(self) -> str:
        first = self.first_failure
        return first.describe() if first is not None else "no records"


def verify_audit(
    data: bytes | Iterable[bytes],
    keys: Sequence[Ed25519PublicKey],
    *,
    require_checkpoint: bool = True,
) -> AuditReport:
    """Follow the chain to its first broken link and verify each checkpoint on the way.

    ``data`` is the whole log or its lines (each with its LF). ``keys`` are the trusted signers.
    """
    lines = _split_keeping_lf(data) if isinstance(data, bytes) else data
    trusted = {key_id(k): k for k in keys}
    report = AuditReport("audit log")
    prev = ZERO_HASH
    for seq, raw in enumerate(lines):
        reason = _link_problem(raw, seq, prev, trusted, report)
        if reason is not None:
            report.broken_seq = seq
            report.failed("chain", f"first broken link at seq {seq}: {reason}")
            return report
        prev = sha256_hex(raw[:-1])
        report.records = seq + 1
    if report.records == 0:
        report.failed("format", "the audit log is empty")
        return report
    report.passed("chain", f"{report.records} records linked (seq 0..{report.records - 1})")
    _summarise_checkpoints(report, require_checkpoint)
    return report


def _split_keeping_lf(data: bytes) -> list[bytes]:
    parts = data.split(b"\n")
    tail = parts.pop()
    return [part + b"\n" for part in parts] + ([tail] if tail else [])


def _link_problem(
    raw: bytes, seq: int, prev: str, trusted: dict[str, Ed25519PublicKey], report: AuditReport
) -> str | None:
    """Why the record at ``seq`` breaks the chain, or None; checkpoints are verified here."""
    if len(raw) > MAX_LINE_BYTES + 1:
        return f"the line is {len(raw)} bytes, more than the {MAX_LINE_BYTES} allowed"
    if not raw.endswith(b"\n"):
        return "the last line is truncated (no line end): the log was cut off while being written"
    try:
        record = _parse_record(raw[:-1], seq)
    except FormatError as exc:
        return str(exc)
    if record["seq"] != seq:
        return f"the record says seq {record['seq']}: records were removed, inserted or reordered"
    if record["prev"] != prev:
        return "prev does not match the hash of the record before: a record was altered or removed"
    if record["event"] == CHECKPOINT:
        _check_checkpoint(record, trusted, report)
    return None


def _parse_record(line: bytes, seq: int) -> dict[str, Any]:
    what = f"audit record {seq}"
    record = parse_json(line, what=what)
    is_checkpoint = record.get("event") == CHECKPOINT
    require_fields(record, _SPEC | ({"signature": str} if is_checkpoint else {}), what)
    check_hex(record["prev"], what=f"{what}.prev", chars=64)
    if seq == 0:
        if record["event"] != START or record["data"].get("format") != FORMAT:
            raise FormatError(f"{what}: not a bwc audit log (first event {START!r})")
        if record["data"].get("version") != VERSION:
            raise UnsupportedVersionError(
                f"audit format version {record['data'].get('version')!r} is not supported "
                f"(this bwc reads version {VERSION}): upgrade bwc"
            )
    return record


def _check_checkpoint(
    record: dict[str, Any], trusted: dict[str, Ed25519PublicKey], report: AuditReport
) -> None:
    seq, named = record["seq"], record["data"].get("key_id")
    try:
        signature = b64d(record["signature"], what="signature", size=64)
    except FormatError as exc:
        report.failed("checkpoint signature", f"checkpoint at seq {seq}: {exc}")
        return
    key = trusted.get(named) if isinstance(named, str) else None
    if key is None:
        report.failed(
            "checkpoint signer", f"checkpoint at seq {seq}: signed by an unknown key {named}"
        )
        return None
    try:
        key.verify(signature, checkpoint_message(record))
    except InvalidSignature:
        report.failed("checkpoint signature", f"checkpoint at seq {seq} does not verify: altered")
        return
    report.checkpoints.append(seq)


def _summarise_checkpoints(report: AuditReport, require_checkpoint: bool) -> None:
    if report.checkpoints:
        shown = ", ".join(map(str, report.checkpoints[-5:]))
        more = "… " if len(report.checkpoints) > 5 else ""
        report.passed(
            "checkpoints",
            f"{len(report.checkpoints)} signed checkpoints verified (seq {more}{shown})",
        )
        unsigned = report.records - 1 - report.checkpoints[-1]
        if unsigned:
            report.passed("coverage", f"the last {unsigned} records are chained but not yet signed")
    elif require_checkpoint and not report.failures:
        report.failed("checkpoints", "no signed checkpoint: nothing in this log is signed yet")
