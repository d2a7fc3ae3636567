"""The parts behind the armorer's view: release from quarantine, retry wake-ups, byte progress,
waiting officer assignments, armorer tokens and the dock's audit log across restarts."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from itertools import count
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from custody.audit import verify_audit
from dock.armorers import Armorers, ensure_armorers
from dock.audit_log import DockAuditLog
from dock.bay_worker import BayClock
from dock.errors import BayChanged, DockSetupError, LedgerError
from dock.ledger import ClipState, Ledger
from dock.officers import OfficerTable
from dock.progress import Transfer
from hw.sim.clock import SimClock
from tests.dock.camera_server import TestCamera
from tests.dock.conftest import DockFactory, Server, seal

SHA = "ab" * 32


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    ticks = count(1_000)
    opened = Ledger(tmp_path / "ledger.sqlite3", wall_ns=lambda: next(ticks))
    yield opened
    opened.close()


def quarantined(ledger: Ledger, clip_id: str = "clip-1") -> int:
    ledger.note_listed("cam-1", clip_id, manifest_bytes=100, manifest_sha256=SHA)
    ledger.advance("cam-1", clip_id, ClipState.MANIFEST_VERIFIED)
    ledger.advance("cam-1", clip_id, ClipState.QUARANTINED, error="segment 1 altered")
    ((row_id, _),) = [q for q in ledger.quarantined() if q[1].clip_id == clip_id]
    return row_id


# release: the ledger's one way back


def test_a_released_clip_is_listed_again_with_its_attempts_reset(ledger: Ledger) -> None:
    row_id = quarantined(ledger)
    assert ledger.by_id(row_id) == ledger.get("cam-1", "clip-1")
    row = ledger.release("cam-1", "clip-1", reason="card checked")
    assert (row.state, row.attempts, row.upload_id) == (ClipState.LISTED, 0, None)
    assert row.last_error == "released from quarantine: card checked"
    assert ledger.quarantined() == []


def test_only_a_quarantined_clip_can_be_released(ledger: Ledger) -> None:
    ledger.note_listed("cam-1", "clip-1", manifest_bytes=100, manifest_sha256=SHA)
    with pytest.raises(LedgerError, match="not quarantined"):
        ledger.release("cam-1", "clip-1", reason="by mistake")


def test_a_released_clip_moves_forward_one_step_at_a_time_again(ledger: Ledger) -> None:
    quarantined(ledger)
    ledger.release("cam-1", "clip-1", reason="card checked")
    with pytest.raises(LedgerError, match="one step at a time"):
        ledger.advance("cam-1", "clip-1", ClipState.SPOOLED)
    assert ledger.advance("cam-1", "clip-1", ClipState.MANIFEST_VERIFIED).state is (
        ClipState.MANIFEST_VERIFIED
    )


# retry: a bay's backoff wait ends early


def sleeping(bay_clock: BayClock, seconds: float) -> tuple[threading.Thread, list[object]]:
    outcome: list[object] = []

    def sleep() -> None:
        try:
            bay_clock.sleep(seconds)
            outcome.append("woke")
        except BayChanged as exc:
            outcome.append(exc)

    thread = threading.Thread(target=sleep)
    thread.start()
    return thread, outcome


def test_waking_a_bay_ends_its_backoff_wait_without_stopping_it() -> None:
    bay_clock = BayClock(SimClock(), threading.Event(), "1")
    thread, outcome = sleeping(bay_clock, 600)
    started = time.monotonic()
    bay_clock.wake()
    thread.join(10)
    assert outcome == ["woke"] and time.monotonic() - started < 10


def test_a_wake_before_the_wait_ends_the_next_wait_at_once() -> None:
    bay_clock = BayClock(SimClock(), threading.Event(), "1")
    bay_clock.wake()
    thread, outcome = sleeping(bay_clock, 600)
    thread.join(10)
    assert outcome == ["woke"]


def test_a_wake_during_the_last_pass_keeps_the_worker_for_another_pass() -> None:
    bay_clock = BayClock(SimClock(), threading.Event(), "1")
    assert bay_clock.wake() is True  # e.g. a quarantined clip released while the pass ran
    assert bay_clock.settle() is False  # so the worker looks again instead of ending
    assert bay_clock.settle() is True


def test_a_settled_worker_refuses_a_wake_so_the_dock_starts_a_new_one() -> None:
    bay_clock = BayClock(SimClock(), threading.Event(), "1")
    assert bay_clock.settle() is True
    assert bay_clock.wake() is False


def test_a_closed_worker_refuses_a_wake_whatever_ended_it() -> None:
    bay_clock = BayClock(SimClock(), threading.Event(), "1")
    bay_clock.close()
    assert bay_clock.wake() is False


def test_halting_a_bay_ends_its_wait_with_bay_changed() -> None:
    stop = threading.Event()
    bay_clock = BayClock(SimClock(), stop, "1")
    thread, outcome = sleeping(bay_clock, 600)
    bay_clock.halt()
    thread.join(10)
    assert stop.is_set() and isinstance(outcome[0], BayChanged)


# progress: the bytes of each transfer as they stream


def test_downloads_and_uploads_report_their_bytes_up_to_the_clip_size(
    live_store: Server,
    camera: TestCamera,
    camera_url: str,
    device_key: Ed25519PrivateKey,
    agency_key: X25519PrivateKey,
    make_dock: DockFactory,
) -> None:
    clip = seal(device_key, agency_key, segments=3, segment_bytes=10_000)
    camera.add(clip)
    size = sum(len(blob) for blob in clip.segments.values())
    seen: list[Transfer] = []
    dock = make_dock()
    offloader = dock.bay_offloader(SimClock(), on_progress=seen.append)
    (row,) = offloader.offload(dock.camera(camera_url))
    assert row.state is ClipState.DONE
    for step in ("downloading", "uploading"):
        figures = [t.bytes_done for t in seen if t.step == step]
        assert len(figures) > 3, step  # several chunks each (CHUNK is 4 KiB)
        assert figures == sorted(figures) and figures[-1] == size, step
        assert {t.bytes_total for t in seen if t.step == step} == {size}
        assert {t.clip_id for t in seen} == {clip.clip_id}


# officer assignments waiting for their camera


def test_a_waiting_assignment_survives_a_restart_and_a_newer_one_replaces_it(
    tmp_path: Path,
) -> None:
    path = tmp_path / "ledger.sqlite3"
    table = OfficerTable(path)
    table.keep("BWC1-1", "o-1", armorer="armorer:a", at_ns=1)
    table.keep("BWC1-1", "o-2", armorer="armorer:b", at_ns=2)
    table.close()
    table = OfficerTable(path)
    waiting = table.pending("BWC1-1")
    assert waiting is not None and (waiting.officer_id, waiting.armorer) == ("o-2", "armorer:b")
    table.sent(waiting)
    assert table.pending("BWC1-1") is None
    table.close()


def test_a_sent_assignment_does_not_remove_a_newer_one(tmp_path: Path) -> None:
    table = OfficerTable(tmp_path / "ledger.sqlite3")
    table.keep("BWC1-1", "o-1", armorer="armorer:a", at_ns=1)
    first = table.pending("BWC1-1")
    assert first is not None
    table.keep("BWC1-1", "o-2", armorer="armorer:a", at_ns=2)
    table.sent(first)
    newer = table.pending("BWC1-1")
    assert newer is not None and newer.officer_id == "o-2"
    table.close()


# armorer tokens


def test_a_token_file_readable_by_others_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "armorers.json"
    assert ensure_armorers(path) and not ensure_armorers(path)
    path.chmod(0o644)
    with pytest.raises(DockSetupError, match="chmod 600"):
        Armorers.load(path)


# the dock's audit log


def test_the_audit_log_continues_its_chain_after_a_restart(tmp_path: Path) -> None:
    key, path = Ed25519PrivateKey.generate(), tmp_path / "audit" / "dock.jsonl"
    log = DockAuditLog(path, key, SimClock())
    log.append("retry", {"serial": None}, actor="armorer:a")
    log.close()
    log = DockAuditLog(path, key, SimClock())
    assert log.append("retry", {"serial": "BWC1-1"}, actor="armorer:a") == 3
    log.close()
    report = verify_audit(path.read_bytes(), [key.public_key()])
    assert report.ok and report.records == 5


def test_a_torn_last_line_is_set_aside_and_recorded(tmp_path: Path) -> None:
    key, path = Ed25519PrivateKey.generate(), tmp_path / "dock.jsonl"
    DockAuditLog(path, key, SimClock()).close()
    with path.open("ab") as f:
        f.write(b'{"seq": 1, "cut')
    log = DockAuditLog(path, key, SimClock())
    log.append("retry", {"serial": None}, actor="armorer:a")
    log.close()
    assert verify_audit(path.read_bytes(), [key.public_key()]).ok
    assert b"log.tail_dropped" in path.read_bytes()
    assert path.with_name("dock.jsonl.torn").read_bytes() == b'{"seq": 1, "cut'


def test_an_audit_log_altered_in_the_middle_stops_the_dock(tmp_path: Path) -> None:
    key, path = Ed25519PrivateKey.generate(), tmp_path / "dock.jsonl"
    log = DockAuditLog(path, key, SimClock())
    log.append("retry", {"serial": None}, actor="armorer:a")
    log.close()
    path.write_bytes(path.read_bytes().replace(b"armorer:a", b"armorer:b"))
    with pytest.raises(DockSetupError, match="move it aside"):
        DockAuditLog(path, key, SimClock())
