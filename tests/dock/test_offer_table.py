"""What the dock keeps of its update offers in its SQLite file, and what a new run makes of it.

Each test writes through one UpdateTracker and reads through another on the same file, as a dock
restarted on the same data folder would (dock/offer_table.py, dock/update_offer.py).
"""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from dock.errors import LedgerError
from dock.offer_table import OfferOutcome, OfferTable
from dock.update_offer import Awaited, Step, UpdateTracker, UpdateView
from hw.sim.clock import SimClock

DEVICE = "cam-0042"
PROFILE_ID = "c" * 64
Opener = Callable[[], OfferTable]
#: a dock process that records a reboot it is about to ask for, says so, and waits to be killed
KILLED_WRITER = """
import sys, time
from pathlib import Path
from dock.offer_table import OfferTable
table = OfferTable(Path(sys.argv[1]), wall_ns=time.time_ns)
table.offered("cam-0042", "firmware", "1.1.0", version="1.1.0", previous="1.0.0")
table.reboot_asked("cam-0042", [("firmware", "1.1.0")])
print("recorded", flush=True)
sys.stdin.readline()
"""


@pytest.fixture
def clock() -> SimClock:
    return SimClock(virtual=True)


@pytest.fixture
def open_table(tmp_path: Path, clock: SimClock) -> Iterator[Opener]:
    """Opens the dock's file again, as each dock run does; every table is closed at the end."""
    opened: list[OfferTable] = []

    def open_() -> OfferTable:
        opened.append(OfferTable(tmp_path / "ledger.sqlite3", wall_ns=clock.wall_ns))
        return opened[-1]

    yield open_
    for table in opened:
        table.close()


def offer_firmware(tracker: UpdateTracker, version: str = "1.1.0") -> None:
    view = UpdateView("firmware", version, Step.SENDING)
    tracker.offer(DEVICE, "firmware", version, view, previous="1.0.0")


def rebooted(firmware: str | None, profile_id: str | None, since_ns: int, session: int) -> Awaited:
    return Awaited(firmware, "1.0.0" if firmware else "", profile_id,
                   2 if profile_id else 0, session=session, since_ns=since_ns)  # fmt: skip


@pytest.mark.parametrize(
    ("outcome", "offered_again"),
    [(OfferOutcome.FAILED, False), (OfferOutcome.CONFIRMED, False), (OfferOutcome.WITHDRAWN, True)],
)
def test_a_new_run_offers_again_only_what_never_reached_the_camera(
    open_table: Opener, outcome: OfferOutcome, offered_again: bool
) -> None:
    offer_firmware(before := UpdateTracker(offers=open_table()))
    before.conclude(DEVICE, "firmware", "1.1.0", outcome, "why")

    assert UpdateTracker(offers=open_table()).offered(DEVICE, "firmware", "1.1.0") is not (
        offered_again
    )


def test_an_offer_a_stopped_dock_cut_short_may_be_offered_again(open_table: Opener) -> None:
    offer_firmware(UpdateTracker(offers=open_table()))  # no outcome, no reboot: it stopped

    assert not UpdateTracker(offers=open_table()).offered(DEVICE, "firmware", "1.1.0")


def test_a_refusal_is_kept_per_camera_and_version(open_table: Opener) -> None:
    offer_firmware(before := UpdateTracker(offers=open_table()))
    before.conclude(DEVICE, "firmware", "1.1.0", OfferOutcome.FAILED, "422: not trusted")

    after = UpdateTracker(offers=open_table())
    assert not after.offered("cam-0043", "firmware", "1.1.0")
    assert not after.offered(DEVICE, "firmware", "1.2.0")


def test_the_outcome_is_kept_with_its_reason_and_when(open_table: Opener, clock: SimClock) -> None:
    offer_firmware(UpdateTracker(offers=(table := open_table())))
    clock.advance(5)
    table.conclude(DEVICE, "firmware", "1.1.0", OfferOutcome.FAILED, "rolled back: " + "x" * 600)

    record = open_table().get(DEVICE, "firmware", "1.1.0")
    assert record is not None
    assert (record.outcome, record.previous, record.at_ns) == (
        OfferOutcome.FAILED, "1.0.0", clock.wall_ns(),
    )  # fmt: skip
    assert record.reason is not None and record.reason.startswith("rolled back: ")
    assert len(record.reason) == 500


def test_a_reboot_asked_before_a_restart_is_followed_by_the_next_run_not_resent(
    open_table: Opener,
) -> None:
    before = UpdateTracker(offers=open_table())
    offer_firmware(before)
    before.offer(DEVICE, "profile", PROFILE_ID, UpdateView("profile", "2", Step.SENDING))
    before.await_reboot(DEVICE, rebooted("1.1.0", PROFILE_ID, since_ns=5, session=7))

    after = UpdateTracker(offers=open_table())
    assert after.awaited(DEVICE) is None  # until a worker of this run takes it up
    assert after.resume(DEVICE, since_ns=99) == rebooted("1.1.0", PROFILE_ID, 99, session=0)
    assert after.offered(DEVICE, "firmware", "1.1.0")
    assert after.offered(DEVICE, "profile", PROFILE_ID)
    assert after.view(DEVICE) == UpdateView("firmware", "1.1.0", Step.REBOOTING)


def test_a_profile_only_reboot_is_followed_as_a_profile(open_table: Opener) -> None:
    before = UpdateTracker(offers=open_table())
    before.offer(DEVICE, "profile", PROFILE_ID, UpdateView("profile", "2", Step.SENDING))
    before.await_reboot(DEVICE, rebooted(None, PROFILE_ID, since_ns=5, session=7))

    after = UpdateTracker(offers=open_table())
    assert after.resume(DEVICE, since_ns=1) == rebooted(None, PROFILE_ID, 1, session=0)
    assert after.view(DEVICE) == UpdateView("profile", "2", Step.REBOOTING)


def test_a_reboot_whose_outcome_was_recorded_is_not_followed_again(open_table: Opener) -> None:
    before = UpdateTracker(offers=open_table())
    offer_firmware(before)
    before.await_reboot(DEVICE, rebooted("1.1.0", None, since_ns=5, session=7))
    before.conclude(DEVICE, "firmware", "1.1.0", OfferOutcome.CONFIRMED)

    assert UpdateTracker(offers=open_table()).resume(DEVICE, since_ns=1) is None


def test_a_reboot_is_taken_up_once_per_run(open_table: Opener) -> None:
    before = UpdateTracker(offers=open_table())
    offer_firmware(before)
    before.await_reboot(DEVICE, rebooted("1.1.0", None, since_ns=5, session=7))

    after = UpdateTracker(offers=open_table())
    assert after.resume(DEVICE, since_ns=1) is not None
    after.settled(DEVICE)  # e.g. a failure this run could not record
    assert after.resume(DEVICE, since_ns=2) is None


def test_a_tracker_without_a_table_remembers_this_run_only(open_table: Opener) -> None:
    offer_firmware(tracker := UpdateTracker())
    tracker.conclude(DEVICE, "firmware", "1.1.0", OfferOutcome.FAILED, "refused")

    assert tracker.offered(DEVICE, "firmware", "1.1.0")
    assert open_table().get(DEVICE, "firmware", "1.1.0") is None


def test_an_offer_file_that_cannot_be_opened_is_a_ledger_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(LedgerError, match="cannot open the update offers in"):
        OfferTable(tmp_path, wall_ns=SimClock().wall_ns)  # a folder, not a file


def test_a_reboot_recorded_by_a_dock_process_killed_with_sigkill_is_followed_after(
    tmp_path: Path, open_table: Opener
) -> None:
    argv = [sys.executable, "-c", KILLED_WRITER, str(tmp_path / "ledger.sqlite3")]
    with subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE) as dock:
        assert dock.stdout is not None
        assert dock.stdout.readline() == b"recorded\n"
        dock.send_signal(signal.SIGKILL)  # no close, no checkpoint: only what was committed
        assert dock.wait(timeout=30) == -signal.SIGKILL

    awaited = UpdateTracker(offers=open_table()).resume(DEVICE, since_ns=3)
    assert awaited == Awaited("1.1.0", "1.0.0", None, 0, session=0, since_ns=3)
