"""The dock's own audit log: custody's hash-chained format, ``audit/dock.jsonl``, dock-signed.

Every armorer action (assign, retry, release) and what the dock did about it is one record, made
durable (written, fsynced) before the action is answered, and followed by a checkpoint signed
with the dock key, so each action is signed as soon as it is recorded. Anyone holding the dock's
public key checks the log with ``custody.audit.verify_audit`` (or ``bwc verify``).

A dock restarted continues the chain. A log whose last line was cut by a crash is continued after
its intact prefix (the cut bytes are kept aside, and the cut is the first record written); a log
that does not verify anywhere else is never appended to: the dock refuses to start and says so.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from custody.audit import AuditWriter, verify_audit
from custody.canonical import sha256_hex
from custody.errors import CustodyError
from custody.keys import key_id
from dock.errors import DockSetupError
from hw.ports.clock import Clock


class DockAuditLog:
    """Appends the dock's audit records durably; thread-safe (the API serves several at once)."""

    def __init__(self, path: Path, key: Ed25519PrivateKey, clock: Clock) -> None:
        self.path = path
        self._key, self._clock = key, clock
        self._actor = f"dock:{key_id(key)}"
        self._lock = threading.Lock()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._file = path.open("ab")
        except OSError as exc:
            raise DockSetupError(f"cannot open the dock's audit log {path}: {exc}") from exc
        try:
            self._writer = self._open()
        except BaseException:
            self._file.close()
            raise

    def append(self, event: str, data: dict[str, Any], *, actor: str | None = None) -> int:
        """Record one event and sign a checkpoint over it; returns the event's seq."""
        with self._lock:
            wall, mono = self._clock.wall_ns(), self._clock.monotonic_ns()
            try:
                seq = self._writer.append(
                    actor or self._actor, event, data, wall_ns=wall, monotonic_ns=mono
                )
                self._writer.checkpoint(actor=self._actor, wall_ns=wall, monotonic_ns=mono)
            except (OSError, CustodyError) as exc:
                raise DockSetupError(
                    f"cannot write the dock's audit log {self.path}: {exc}; check the disk"
                ) from exc
            return seq

    def close(self) -> None:
        with self._lock:
            self._file.close()

    def _write(self, line: bytes) -> None:
        self._file.write(line)
        self._file.flush()
        os.fsync(self._file.fileno())

    def _open(self) -> AuditWriter:
        data = self.path.read_bytes()
        wall, mono = self._clock.wall_ns(), self._clock.monotonic_ns()
        if not data:
            return AuditWriter.start(
                self._write, self._key, actor=self._actor, wall_ns=wall, monotonic_ns=mono
            )
        intact = data[: data.rfind(b"\n") + 1]
        report = verify_audit(intact, [self._key.public_key()], require_checkpoint=False)
        if not intact or not report.ok:
            raise DockSetupError(
                f"the dock's audit log {self.path} does not verify "
                f"({report.first_failure_text()}): move it aside for investigation and start again"
            )
        writer = AuditWriter.resume(intact, self._write, self._key)
        if len(intact) < len(data):
            self._drop_torn_tail(data, intact)
            writer.append(
                self._actor, "log.tail_dropped",
                {"bytes": len(data) - len(intact), "sha256": sha256_hex(data[len(intact):]),
                 "reason": "torn last line"},
                wall_ns=wall, monotonic_ns=mono,
            )  # fmt: skip
        return writer

    def _drop_torn_tail(self, data: bytes, intact: bytes) -> None:
        aside = self.path.with_name(self.path.name + ".torn")
        aside.write_bytes(data[len(intact) :])
        os.truncate(self.path, len(intact))
