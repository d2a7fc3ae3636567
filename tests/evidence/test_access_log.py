"""The per-address limit on refusal records: nothing is lost, nothing is recorded past the limit."""

from __future__ import annotations

import json
import tempfile
from collections import Counter
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from evidence.access_log import WINDOW_NS, Denial, DeniedAccessLog
from evidence.audit_log import StoreAudit
from evidence.sqlite_store import SqliteMetadataStore
from tests.evidence.test_retention import ManualClock

CLIENTS = ("192.0.2.1", "192.0.2.2", "2001:db8::7")

# One refusal: which client, 401 or 403, and how many seconds pass before it.
refusals = st.lists(
    st.tuples(st.sampled_from(CLIENTS), st.sampled_from((401, 403)), st.integers(0, 45)),
    max_size=40,
)


def denial(client: str, status: int) -> Denial:
    actor = "anonymous" if status == 401 else "dock:bay-1"
    return Denial(status, actor, client, "GET", "/v1/evidence", "test")


@settings(max_examples=40, deadline=None)
@given(limit=st.integers(1, 4), events=refusals)
def test_every_refusal_is_recorded_or_counted_once_and_never_past_the_limit(
    limit: int, events: list[tuple[str, int, int]]
) -> None:
    with tempfile.TemporaryDirectory() as folder:
        metadata = SqliteMetadataStore(Path(folder) / "metadata.sqlite3")
        try:
            clock = ManualClock()
            denials = DeniedAccessLog(
                StoreAudit(metadata, Ed25519PrivateKey.generate(), wall_ns=clock),
                per_minute=limit,
                wall_ns=clock,
            )
            for client, status, wait_s in events:
                clock.now_ns += wait_s * 10**9
                denials.record(denial(client, status))
            denials.flush_all()
            log = [json.loads(line) for line in metadata.audit_log().splitlines()]
        finally:
            metadata.close()

    sent = Counter((client, status) for client, status, _ in events)
    recorded = Counter(
        (r["data"]["client"], r["data"]["status"]) for r in log if r["event"] == "access.denied"
    )
    suppressed: Counter[tuple[str, int]] = Counter()
    for r in log:
        if r["event"] == "access.denied.suppressed":
            for status, count in r["data"]["by_status"].items():
                suppressed[(r["data"]["client"], int(status))] += count
    assert recorded + suppressed == sent

    for client in CLIENTS:
        times = [
            r["wall_ns"]
            for r in log
            if r["event"] == "access.denied" and r["data"]["client"] == client
        ]
        # An address's first refusals are always recorded: it is seen at least once a minute.
        assert len(times) >= min(limit, sum(n for (c, _), n in sent.items() if c == client))
        # Windows are fixed, so any 60 s spans at most two of them: at most 2 * limit records.
        for i, start in enumerate(times):
            assert sum(1 for t in times[i:] if t < start + WINDOW_NS) <= 2 * limit
    # A window that suppressed anything had recorded exactly ``limit`` first.
    for r in log:
        if r["event"] == "access.denied.suppressed":
            since, client = r["data"]["since_ns"], r["data"]["client"]
            assert r["data"]["recorded"] == limit
            in_window = [
                d
                for d in log
                if d["event"] == "access.denied" and d["data"]["client"] == client
                if since <= d["wall_ns"] < since + WINDOW_NS
            ]
            assert len(in_window) == limit


def test_a_path_with_control_characters_is_kept_printable() -> None:
    record = Denial(401, "anonymous", "192.0.2.1", "GET", "/v1/\x00\x1b[2J\udc80", "x").data()
    assert record["path"] == "/v1/\\x00\\x1b[2J\\udc80"
