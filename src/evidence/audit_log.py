"""The store's audit log: custody's hash-chained writer, appending to the metadata store.

Checkpoints are signed with the store key every ``checkpoint_every`` records and after every
stored clip, so a receipt is always covered by a signed checkpoint soon after.

Several API processes may share one metadata store, so the chain head is never kept here: each
append builds its record from the tail the store reads under its write lock (see
``MetadataStore.append_audit``), and the processes' records interleave into one chain.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from custody.audit import CHECKPOINT, AuditWriter, verify_audit
from custody.canonical import parse_json
from custody.errors import FormatError
from evidence.errors import StoreSetupError
from evidence.storage import AuditLine, AuditTail, MetadataStore

STORE_ACTOR = "store"

#: One append through a writer: (writer, wall_ns, monotonic_ns) -> seq of the record written.
_Step = Callable[[AuditWriter, int, int], int]


class StoreAudit:
    def __init__(
        self,
        metadata: MetadataStore,
        key: Ed25519PrivateKey,
        *,
        wall_ns: Callable[[], int] = time.time_ns,
        checkpoint_every: int = 100,
    ) -> None:
        self._metadata, self._key = metadata, key
        self._wall_ns, self._every = wall_ns, checkpoint_every
        if checkpoint_every < 1:
            raise ValueError("checkpoint_every must be at least 1")
        existing = metadata.audit_log()
        report = verify_audit(existing, [key.public_key()], require_checkpoint=False)
        if existing and not report.ok:
            raise StoreSetupError(
                "the audit log in the metadata store does not verify with the store key: "
                f"{report.first_failure_text()}"
            )
        self._append(None)  # audit.start, unless another process started the log already

    def record(self, actor: str, event: str, data: dict[str, Any]) -> int:
        """Append one record (and the checkpoint it may bring); return its seq."""
        return self._append(
            lambda writer, wall, mono: writer.append(
                actor, event, data, wall_ns=wall, monotonic_ns=mono
            )
        )

    def checkpoint(self) -> int:
        """Sign everything so far; return the checkpoint's seq."""
        return self._append(
            lambda writer, wall, mono: writer.checkpoint(
                actor=STORE_ACTOR, wall_ns=wall, monotonic_ns=mono
            )
        )

    def _append(self, step: _Step | None) -> int:
        """Run ``step`` on a writer continuing from the stored tail, inside the store's lock.

        With no step, only start the log when it is empty. Returns the seq ``step`` returned.
        """
        seqs: list[int] = []

        def build(tail: AuditTail | None) -> list[AuditLine]:
            seqs.clear()  # should a backend ever retry its transaction, build afresh
            lines: list[bytes] = []
            wall, mono = self._wall_ns(), time.monotonic_ns()
            if tail is None:
                writer = AuditWriter.start(
                    lines.append, self._key, actor=STORE_ACTOR, wall_ns=wall, monotonic_ns=mono,
                    checkpoint_every=self._every,
                )  # fmt: skip
            elif step is None:
                return []
            else:
                writer = self._follow(tail, lines.append)
            if step is not None:
                seqs.append(step(writer, wall, mono))
            return [AuditLine(line, _is_checkpoint(line)) for line in lines]

        self._metadata.append_audit(build)
        return seqs[0] if seqs else 0

    def _follow(self, tail: AuditTail, write: Callable[[bytes], object]) -> AuditWriter:
        try:
            return AuditWriter.after(
                tail.line, write, self._key, since_checkpoint=tail.since_checkpoint,
                checkpoint_every=self._every,
            )  # fmt: skip
        except FormatError as exc:
            raise StoreSetupError(
                f"the newest record of the audit log in the metadata store is damaged: {exc}"
            ) from exc


def _is_checkpoint(line: bytes) -> bool:
    return parse_json(line.rstrip(b"\n"), what="audit record").get("event") == CHECKPOINT
