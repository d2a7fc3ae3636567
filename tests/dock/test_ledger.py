"""The ledger: durable, forward-only progress of every clip, kept across restarts."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from itertools import count, pairwise
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dock.errors import LedgerError
from dock.ledger import ClipState, Ledger

SHA = "ab" * 32
RECEIPT = b'{"format":"bwc-receipt"}\n'
FORWARD: list[ClipState] = [s for s in ClipState if s != ClipState.QUARANTINED]
_EXAMPLES = count()


def open_ledger(path: Path) -> Ledger:
    ticks = count(1_000)
    return Ledger(path, wall_ns=lambda: next(ticks))


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    opened = open_ledger(tmp_path / "ledger.sqlite3")
    yield opened
    opened.close()


def listed(ledger: Ledger, clip_id: str = "clip-1") -> None:
    ledger.note_listed("cam-1", clip_id, manifest_bytes=100, manifest_sha256=SHA)


def advance_to(ledger: Ledger, state: ClipState, clip_id: str = "clip-1") -> None:
    for step in FORWARD[1 : FORWARD.index(state) + 1]:
        receipt = RECEIPT if step == ClipState.STORED else None
        ledger.advance("cam-1", clip_id, step, receipt=receipt)


def test_the_ledger_runs_in_wal_mode_with_full_synchronous_commits(ledger: Ledger) -> None:
    assert ledger.durability() == ("wal", 2)  # 2 is synchronous=FULL


def test_a_listed_clip_walks_every_state_to_done(ledger: Ledger) -> None:
    listed(ledger)
    advance_to(ledger, ClipState.DONE)
    row = ledger.get("cam-1", "clip-1")
    assert row.state == ClipState.DONE and row.receipt == RECEIPT
    assert ledger.pending("cam-1") == []


def test_listing_a_known_clip_again_keeps_its_progress(ledger: Ledger) -> None:
    listed(ledger)
    advance_to(ledger, ClipState.SPOOLED)
    listed(ledger)
    assert ledger.get("cam-1", "clip-1").state == ClipState.SPOOLED


@pytest.mark.parametrize("state", FORWARD[1:])
def test_a_clip_never_moves_back_or_repeats_a_state(ledger: Ledger, state: ClipState) -> None:
    listed(ledger)
    advance_to(ledger, state)
    for earlier in FORWARD[: FORWARD.index(state) + 1]:
        with pytest.raises(LedgerError, match=r"forward|already"):
            ledger.advance("cam-1", "clip-1", earlier, receipt=RECEIPT)
    assert ledger.get("cam-1", "clip-1").state == state


def test_a_clip_cannot_skip_a_step(ledger: Ledger) -> None:
    listed(ledger)
    with pytest.raises(LedgerError, match="past the steps"):
        ledger.advance("cam-1", "clip-1", ClipState.UPLOADING)


def test_stored_needs_the_receipt(ledger: Ledger) -> None:
    listed(ledger)
    advance_to(ledger, ClipState.UPLOADING)
    with pytest.raises(LedgerError, match="receipt"):
        ledger.advance("cam-1", "clip-1", ClipState.STORED)
    assert ledger.get("cam-1", "clip-1").state == ClipState.UPLOADING


@pytest.mark.parametrize("state", [ClipState.STORED, ClipState.ERASED, ClipState.DONE])
def test_a_clip_the_store_holds_cannot_be_quarantined(ledger: Ledger, state: ClipState) -> None:
    listed(ledger)
    advance_to(ledger, state)
    with pytest.raises(LedgerError):
        ledger.advance("cam-1", "clip-1", ClipState.QUARANTINED, error="bad")


def test_a_quarantined_clip_stays_quarantined(ledger: Ledger) -> None:
    listed(ledger)
    ledger.advance("cam-1", "clip-1", ClipState.QUARANTINED, error="segment 2 altered")
    with pytest.raises(LedgerError, match="already quarantined"):
        ledger.advance("cam-1", "clip-1", ClipState.MANIFEST_VERIFIED)
    row = ledger.get("cam-1", "clip-1")
    assert row.state == ClipState.QUARANTINED and row.last_error == "segment 2 altered"


def test_failures_are_counted_and_the_state_kept(ledger: Ledger) -> None:
    listed(ledger)
    ledger.record_failure("cam-1", "clip-1", "store down")
    row = ledger.record_failure("cam-1", "clip-1", "store still down")
    assert (row.state, row.attempts, row.last_error) == (ClipState.LISTED, 2, "store still down")
    assert ledger.advance("cam-1", "clip-1", ClipState.MANIFEST_VERIFIED).last_error is None


def test_a_reopened_ledger_holds_every_row_as_it_was_committed(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    first = open_ledger(path)
    listed(first, "clip-1")
    listed(first, "clip-2")
    advance_to(first, ClipState.STORED, "clip-1")
    first.record_failure("cam-1", "clip-2", "camera unplugged")
    before = first.rows()
    first.close()

    again = open_ledger(path)
    assert again.rows() == before
    assert again.get("cam-1", "clip-1").receipt == RECEIPT
    assert [r.clip_id for r in again.pending("cam-1")] == ["clip-1", "clip-2"]
    assert again.durability() == ("wal", 2)
    again.close()


def test_a_ledger_written_by_a_newer_dock_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA user_version=99")
    db.close()
    with pytest.raises(LedgerError, match="upgrade bwc"):
        open_ledger(path)


@settings(max_examples=40)  # every transition is an fsync: keep the run short
@given(asks=st.lists(st.sampled_from(list(ClipState)), max_size=16))
def test_whatever_is_asked_the_state_only_moves_forward(
    tmp_path_factory: pytest.TempPathFactory, asks: list[ClipState]
) -> None:
    ledger = open_ledger(tmp_path_factory.getbasetemp() / "forward.sqlite3")
    clip_id = f"clip-{next(_EXAMPLES)}"  # one fresh row per example in one file
    listed(ledger, clip_id)
    seen = [ClipState.LISTED]
    for ask in asks:
        with contextlib.suppress(LedgerError):
            ledger.advance("cam-1", clip_id, ask, receipt=RECEIPT, error="why")
        seen.append(ledger.get("cam-1", clip_id).state)
    ledger.close()
    ranks = [s.rank for s in seen]
    assert ranks == sorted(ranks)
    for before, after in pairwise(seen):
        assert after == before or after.rank == before.rank + 1 or after == ClipState.QUARANTINED
        if after == ClipState.QUARANTINED and before != after:
            assert before.rank < ClipState.STORED.rank
