"""The camera's own audit log: custody's hash-chained, checkpoint-signed log on the Storage port.

Every record is appended and fsynced before ``append`` returns; a signed checkpoint follows every
``checkpoint_every`` records and ``close``. After a reboot the log resumes from its intact prefix:

* a torn last line (cut while being written) is dropped, and the drop is the first record written;
* a log that is damaged anywhere else, or signed by another key, is never rewritten: it is renamed
  aside (``<name>.damaged-N``) for investigation and a new log starts by naming it.

The Storage port has no truncate, so dropping bytes rewrites the kept prefix under a temporary
name and renames it over the log (``write_durable``): a cut leaves the old or the new file.

The firmware thread and the offload API's thread both append (state changes, ``clip.erased``):
one lock serialises every append, checkpoint and read, so records never interleave.
"""

from __future__ import annotations

import errno
import threading
from collections.abc import Callable
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from custody.audit import AuditWriter, verify_audit
from custody.canonical import sha256_hex
from custody.keys import key_id
from device.durable import ensure_durable_folder, join, parent_of, temp_name, write_all
from device.errors import AuditWriteError
from hw.ports.clock import Clock
from hw.ports.storage import Storage, write_durable


class DeviceAuditLog:
    """Appends the device's audit records durably; resumes its chain across reboots."""

    def __init__(
        self,
        storage: Storage,
        path: str,
        device_key: Ed25519PrivateKey,
        clock: Clock,
        *,
        actor: str | None = None,
        checkpoint_every: int = 100,
    ) -> None:
        self._storage = storage
        self._path = path
        self._key = device_key
        self._clock = clock
        self._actor = actor or f"device:{key_id(device_key)}"
        self._every = checkpoint_every
        self._good_size = 0  # bytes of the log known durable
        self._named = False  # the log's name is durable in its folder
        self._failed_write: str | None = None  # why the last append failed, until repaired
        self._closed = False
        self._lock = threading.RLock()
        try:
            notes = self._open()
        except OSError as exc:
            raise AuditWriteError(
                f"cannot open the audit log {path}: {exc.strerror or exc}; check the card"
            ) from exc
        for event, data in notes:
            self.append(event, data)

    @property
    def path(self) -> str:
        return self._path

    @property
    def writing(self) -> bool:
        """Open, and its last append did not fail (a firmware slot on trial needs this)."""
        return not self._closed and self._failed_write is None

    @property
    def next_seq(self) -> int:
        return self._writer.next_seq

    def append(self, event: str, data: dict[str, Any], *, actor: str | None = None) -> int:
        """Record one event durably; returns its seq. Raises AuditWriteError if it cannot."""
        with self._lock:
            self._check_open()
            self._repair()
            mono, wall = self._clock.monotonic_ns(), self._clock.wall_ns()
            return self._guard(
                lambda: self._writer.append(
                    actor or self._actor, event, data, wall_ns=wall, monotonic_ns=mono
                )
            )

    def checkpoint(self) -> int:
        """Sign everything so far (before shutdown, before offload)."""
        with self._lock:
            self._check_open()
            self._repair()
            mono, wall = self._clock.monotonic_ns(), self._clock.wall_ns()
            return self._guard(
                lambda: self._writer.checkpoint(actor=self._actor, wall_ns=wall, monotonic_ns=mono)
            )

    def close(self) -> None:
        """Sign a final checkpoint; the log is closed even if that fails."""
        with self._lock:
            if self._closed:
                return
            try:
                self.checkpoint()
            finally:
                self._closed = True

    def read(self) -> bytes:
        """The log's durable records, never a line another thread is still writing."""
        with self._lock:
            try:
                return self._storage.read_bytes(self._path)[: self._good_size]
            except OSError as exc:
                raise self._error(exc) from exc

    # Opening and resuming.

    def _open(self) -> list[tuple[str, dict[str, Any]]]:
        """Start or resume the log; returns the records that explain what opening had to do."""
        folder = parent_of(self._path)
        ensure_durable_folder(self._storage, folder)
        stale = join(folder, temp_name(self._path.rpartition("/")[2]))
        if self._storage.exists(stale):  # a rewrite cut short; the log itself is intact
            self._storage.remove(stale)
            self._storage.fsync_dir(folder)
        if not self._storage.exists(self._path):
            self._start_new()
            return []
        data = self._storage.read_bytes(self._path)
        keep = self._intact_size(data)
        if keep is None:
            aside = self._set_aside()
            self._start_new()
            reason = "damaged or signed by another key: kept for investigation"
            return [("log.set_aside", {"file": aside, "bytes": len(data), "reason": reason})]
        dropped = data[keep:]
        if keep == 0:
            self._start_new(replace=True)
        else:
            if dropped:
                write_durable(self._storage, self._path, data[:keep])
            self._good_size = keep
            self._named = True
            self._writer = AuditWriter.resume(
                data[:keep], self._append_line, self._key, checkpoint_every=self._every
            )
        if not dropped:
            return []
        detail = {"bytes": len(dropped), "sha256": sha256_hex(dropped), "reason": "torn last line"}
        return [("log.tail_dropped", detail)]

    def _intact_size(self, data: bytes) -> int | None:
        """Bytes to keep: all, or all but a torn last line; None when damaged elsewhere."""
        if not data:  # created, but cut before its first line was durable
            return 0
        report = verify_audit(data, [self._key.public_key()], require_checkpoint=False)
        if report.ok:
            return len(data)
        # Only a last line without its LF is a torn write; a complete line that does not hold is
        # damage, which is kept as found.
        torn_tail_only = (
            not data.endswith(b"\n")
            and report.broken_seq == data.count(b"\n")
            and len(report.failures) == 1
            and report.failures[0].name == "chain"
        )
        return data.rfind(b"\n") + 1 if torn_tail_only else None

    def _set_aside(self) -> str:
        number = 1
        while self._storage.exists(f"{self._path}.damaged-{number}"):
            number += 1
        aside = f"{self._path}.damaged-{number}"
        self._storage.rename(self._path, aside)
        self._storage.fsync_dir(parent_of(self._path))
        return aside

    def _start_new(self, *, replace: bool = False) -> None:
        lines: list[bytes] = []
        mono, wall = self._clock.monotonic_ns(), self._clock.wall_ns()
        AuditWriter.start(
            lines.append, self._key, actor=self._actor, wall_ns=wall, monotonic_ns=mono
        )
        head = b"".join(lines)
        if replace:
            write_durable(self._storage, self._path, head)
            self._named = True
        else:
            self._named = False
            self._good_size = 0
            self._append_line(head)
        self._good_size = len(head)
        self._writer = AuditWriter.resume(
            head, self._append_line, self._key, checkpoint_every=self._every
        )

    # Appending.

    def _append_line(self, line: bytes) -> None:
        try:
            write_all(self._storage, self._path, line, append=True)
            if not self._named:
                self._storage.fsync_dir(parent_of(self._path))
                self._named = True
        except OSError as exc:
            self._failed_write = exc.strerror or str(exc)
            raise
        self._good_size += len(line)

    def _guard(self, action: Callable[[], int]) -> int:
        try:
            seq = action()
        except OSError as exc:
            raise self._error(exc) from exc
        return seq

    def _repair(self) -> None:
        """After a failed append, cut the log back to its durable prefix and say so in it."""
        if self._failed_write is None:
            return
        try:
            size = self._storage.size(self._path)
            if size != self._good_size:
                kept = self._storage.read_bytes(self._path)[: self._good_size]
                write_durable(self._storage, self._path, kept)
        except OSError as exc:
            raise self._error(exc) from exc
        reason, self._failed_write = self._failed_write, None
        mono, wall = self._clock.monotonic_ns(), self._clock.wall_ns()
        data = {"bytes": max(0, size - self._good_size), "reason": f"write failed: {reason}"}
        self._guard(
            lambda: self._writer.append(
                self._actor, "log.tail_dropped", data, wall_ns=wall, monotonic_ns=mono
            )
        )

    def _error(self, exc: OSError) -> AuditWriteError:
        full = exc.errno == errno.ENOSPC
        advice = "offload the camera at a dock" if full else "replace the card"
        return AuditWriteError(
            f"cannot write the audit log {self._path}: {exc.strerror or exc}; {advice}"
        )

    def _check_open(self) -> None:
        if self._closed:
            raise AuditWriteError(f"the audit log {self._path} is closed: open it again")
