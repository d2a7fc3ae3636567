"""The store's audit log: custody's hash-chained writer, appending to the metadata store.

Checkpoints are signed with the store key every ``checkpoint_every`` records and after every
stored clip, so a receipt is always covered by a signed checkpoint soon after.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from custody.audit import AuditWriter
from custody.errors import FormatError
from evidence.errors import StoreSetupError
from evidence.storage import MetadataStore

STORE_ACTOR = "store"


class StoreAudit:
    def __init__(
        self,
        metadata: MetadataStore,
        key: Ed25519PrivateKey,
        *,
        wall_ns: Callable[[], int] = time.time_ns,
        checkpoint_every: int = 100,
    ) -> None:
        self._wall_ns = wall_ns
        self._lock = threading.Lock()
        existing = metadata.audit_log()
        try:
            if existing:
                self._writer = AuditWriter.resume(
                    existing, metadata.append_audit, key, checkpoint_every=checkpoint_every
                )
            else:
                self._writer = AuditWriter.start(
                    metadata.append_audit, key, actor=STORE_ACTOR, wall_ns=wall_ns(),
                    monotonic_ns=time.monotonic_ns(), checkpoint_every=checkpoint_every,
                )  # fmt: skip
        except FormatError as exc:
            raise StoreSetupError(
                f"the audit log in the metadata store does not verify with the store key: {exc}"
            ) from exc

    def record(self, actor: str, event: str, data: dict[str, Any]) -> int:
        with self._lock:
            return self._writer.append(
                actor, event, data, wall_ns=self._wall_ns(), monotonic_ns=time.monotonic_ns()
            )

    def checkpoint(self) -> int:
        with self._lock:
            return self._writer.checkpoint(
                actor=STORE_ACTOR, wall_ns=self._wall_ns(), monotonic_ns=time.monotonic_ns()
            )
