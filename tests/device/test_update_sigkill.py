"""Cut a docked camera's power (SIGKILL) at random points of firmware updates, again and again.

A real ``bwc device run --sim --docked`` process is updated over its offload API, as a dock
would (docs/formats/offload.md "Updates: firmware and reboot"), and killed in a phase chosen at
random each round: mid-upload (after a random number of body bytes), while it writes the slot
(at a random number of payload bytes seen on the card), after the install answer, during the
trial boot (its attempt counted in ``firmware/state.json``, not yet healthy) or after it
reported healthy. After every kill the camera is powered on again with the same card and
config and must (a) run the slot the card says it must (docs/device.md "Firmware slots"), a
slot whose files verify against the release key, or the factory image while no slot was ever
activated, and (b) record a clip that verifies. Then the update goes on where it stopped, so
the camera moves forward through 1.0.1, 1.0.2, ... and ends healthy on the last version.

The phase that really got cut is read from the card after each kill (not assumed from the plan),
and every phase must have been cut at least once per test.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from custody.firmware_bundle import read_header
from device.slots import MAX_ATTEMPTS, SlotState, other
from tests.device.slot_helpers import make_bundle
from tests.device.update_kill_rig import (
    FACTORY,
    TARGET,
    Card,
    ControlSocket,
    Dock,
    Launcher,
    Upload,
    bundle_chunks,
    cut_power,
    poll,
    write_config,
)

SEEDS = (20261123, 20261124, 20261125)  # one test each, so xdist spreads them over the cores
PHASES = ("upload", "writing", "installed", "trial", "healthy")
PER_PHASE = 2  # kills planned per phase and test: ten kills, in a random order
MORE = 4  # extra kills at most for a phase the plan missed (a write may end between two looks)
PAYLOAD = 3_000_000  # make_bundle: three files, 4 MB, so writing a slot takes a while
MTIME_SLACK_NS = 100_000_000  # file times come from a coarse clock; stale files are seconds old
TRIAL_CUT_S = 0.4  # the cut falls this long at most after the trial boot counted its attempt
WRITE_WATCH_S = 30.0


def version(n: int) -> str:
    return f"1.0.{n}"


@dataclass
class Update:
    """One camera under test and what the test knows of it from one kill to the next."""

    seed: int
    rng: random.Random
    launcher: Launcher
    control: ControlSocket
    card: Card
    dock_key: Ed25519PrivateKey
    bundles: Path
    target: int = 1  #: the update under way installs version(target)
    reached: list[str] = field(default_factory=list)  #: versions confirmed healthy, in order
    cut: list[str] = field(default_factory=list)  #: the phase each kill really fell in
    _built: dict[str, Path] = field(default_factory=dict)

    def bundle(self) -> Path:
        wanted = version(self.target)
        if wanted not in self._built:
            self._built[wanted] = make_bundle(self.bundles, self.card.release, version=wanted,
                                              size=PAYLOAD)  # fmt: skip
        return self._built[wanted]

    def alive(self) -> None:
        camera = self.launcher.running
        assert camera is not None and camera.poll() is None, (
            f"the camera exited by itself (code {camera and camera.returncode})"
        )


@pytest.fixture
def update(tmp_path: Path, seed: int) -> Iterator[Update]:
    """A fresh camera per seed: its card, its keys, a dock key and a release key it trusts."""
    release, dock = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    config = write_config(tmp_path, release, dock)
    sock = tmp_path / "control.sock"
    launcher = Launcher(config, sock, tmp_path)
    (tmp_path / "bundles").mkdir()
    card = Card(tmp_path / "card", tmp_path / "keys", release)
    yield Update(seed, random.Random(seed), launcher, ControlSocket(sock), card, dock,
                 tmp_path / "bundles")  # fmt: skip
    launcher.close()


@contextmanager
def round_of(u: Update, n: int, planned: str) -> Iterator[None]:
    """Any failure names the seed, the round and the camera's last words."""
    try:
        yield
    except (AssertionError, TimeoutError) as exc:
        camera = u.launcher.running
        tail = u.launcher.log_tail(camera) if camera is not None else ""
        raise AssertionError(
            f"seed {u.seed}, round {n} (kill planned {planned}, cut so far {u.cut}): {exc}\n"
            f"--- camera log ---\n{tail}"
        ) from exc


# -- power on, check, record ------------------------------------------------------------------


def booted_slot(state: SlotState) -> str | None:
    """The slot docs/device.md says boots: a tried slot on its one attempt, else the active one
    (None: the factory image)."""
    if state.trying is not None and state.attempts < MAX_ATTEMPTS:
        return state.trying
    return state.active


def power_on(u: Update) -> Dock:
    """(a) The camera boots into the slot the card names, and that slot verifies."""
    before = u.card.state()
    u.launcher.boot()
    dock = Dock(u.control.offload_url(u.alive), u.dock_key)
    status = dock.status()
    slot = booted_slot(before)
    assert status["target"] == TARGET
    assert status["firmware_slot"] == slot, f"booted {status} with the card at {before}"
    if slot is None:
        assert status["firmware"] == FACTORY, f"no slot was ever activated, yet runs {status}"
        return dock
    assert status["firmware"] == before.versions[slot], f"booted {status} with {before}"
    report = u.card.verify_slot(slot)
    assert report.ok, f"it booted slot {slot}, which does not verify: {report.first_failure}"
    return dock


def can_record(u: Update) -> Dock:
    """(b) Undocked, the camera records a clip that verifies; then it goes back to the dock."""
    u.control.records_a_clip(u.card)
    return Dock(u.control.offload_url(u.alive), u.dock_key)


def settle(u: Update, dock: Dock) -> None:
    """Wait out a trial boot; a camera healthy on the version under way moves to the next."""
    status = poll(lambda: (s := dock.status())["firmware_state"] == "healthy" and s,
                  "the camera reports healthy firmware")  # fmt: skip
    if status["firmware"] == version(u.target):
        u.reached.append(version(u.target))
        u.target += 1


# -- the update, cut in each phase ------------------------------------------------------------


def install(u: Update, dock: Dock) -> str:
    """Send the bundle of the update under way; the camera answers with the slot it wrote."""
    bundle = u.bundle()
    slot = other(u.card.state().active)
    code, answer = dock.put_firmware(bundle_chunks(bundle), bundle.stat().st_size)
    assert code == 200, answer
    assert answer == {"slot": slot, "firmware_version": version(u.target), "applies": "reboot"}
    return slot


def phase_after_cut(u: Update, slot: str, wrote: bool) -> str:
    """Which phase the kill fell in, read from the card it left behind."""
    after, wanted = u.card.state(), version(u.target)
    if after.versions[slot] == wanted and after.active == slot and after.trying is None:
        return "healthy"
    if after.versions[slot] == wanted and after.trying == slot:
        return "trial" if after.attempts >= MAX_ATTEMPTS else "installed"
    return "writing" if wrote else "verifying"


def cut_mid_upload(u: Update, dock: Dock) -> str:
    bundle, before = u.bundle(), u.card.state()
    size = bundle.stat().st_size
    stop = u.rng.randint(1, size - 1)
    with pytest.raises(OSError):  # the camera died under the upload: no answer comes
        dock.put_firmware(bundle_chunks(bundle, stop, lambda: cut_power(u.launcher)), size)
    assert u.card.state() == before, f"a bundle cut after {stop} of {size} bytes changed slots"
    return "upload"


def cut_while_writing(u: Update, dock: Dock) -> str:
    bundle = u.bundle()
    with bundle.open("rb") as stream:
        header = read_header(stream)[0]
    paths, payload = [entry.path for entry in header.files], header.payload_size
    slot = other(u.card.state().active)
    since = time.time_ns() - MTIME_SLACK_NS
    at = u.rng.randint(1, payload - 1)
    upload = Upload(dock, bundle)
    seen, deadline = 0, time.monotonic() + WRITE_WATCH_S
    while seen < at and not upload.done.is_set():  # no pause: the write lasts milliseconds
        seen = u.card.fresh_slot_bytes(slot, paths, since)
        assert time.monotonic() < deadline, f"slot {slot} got {seen} bytes of {at}"
    cut_power(u.launcher)
    upload.join()
    return phase_after_cut(u, slot, wrote=seen > 0)


def cut_after_install(u: Update, dock: Dock) -> str:
    slot = install(u, dock)
    cut_power(u.launcher)
    return phase_after_cut(u, slot, wrote=True)


def cut_in_trial(u: Update, dock: Dock) -> str:
    slot = install(u, dock)
    dock.reboot()
    poll(lambda: (s := u.card.state()).trying == slot and s.attempts >= MAX_ATTEMPTS,
         f"the rebooted camera counts its attempt of slot {slot}")  # fmt: skip
    time.sleep(u.rng.uniform(0, TRIAL_CUT_S))  # a random instant of the trial, not a wait
    cut_power(u.launcher)
    return phase_after_cut(u, slot, wrote=True)


def cut_when_healthy(u: Update, dock: Dock) -> str:
    slot = install(u, dock)
    dock.reboot()
    healthy_after_reboot(u, slot)
    cut_power(u.launcher)
    return phase_after_cut(u, slot, wrote=True)


def healthy_after_reboot(u: Update, slot: str) -> Dock:
    """The rebooted camera promotes the slot on the card, then reports it running healthy."""
    poll(lambda: (s := u.card.state()).active == slot and s.trying is None,
         f"the rebooted camera makes slot {slot} active")  # fmt: skip
    dock = Dock(u.control.offload_url(u.alive), u.dock_key)
    status = dock.status()
    running = (status["firmware"], status["firmware_slot"], status["firmware_state"])
    assert running == (version(u.target), slot, "healthy"), status
    return dock


CUTS: dict[str, Callable[[Update, Dock], str]] = {
    "upload": cut_mid_upload,
    "writing": cut_while_writing,
    "installed": cut_after_install,
    "trial": cut_in_trial,
    "healthy": cut_when_healthy,
}


def finish(u: Update, dock: Dock) -> None:
    """The last update, uncut: the camera comes back healthy on it, then powers off cleanly
    with an audit log whose chain survived every kill."""
    slot = install(u, dock)
    dock.reboot()
    healthy_after_reboot(u, slot)
    assert u.card.verify_slot(slot).ok
    u.reached.append(version(u.target))
    u.launcher.shut_down(u.control)
    audit = u.card.verify_audit()  # every kill's torn tail was repaired at the next boot
    assert not audit.has_failed("chain"), audit.first_failure_text()


def kill_plan(u: Update) -> Iterator[str]:
    """Every phase PER_PHASE times in a random order, then again any phase no kill fell in."""
    plan = list(PHASES) * PER_PHASE
    u.rng.shuffle(plan)
    yield from plan
    for _ in range(MORE):
        missed = [phase for phase in PHASES if phase not in u.cut]
        if not missed:
            return
        yield u.rng.choice(missed)


@pytest.mark.timeout(300)  # about 40 s alone; more on a machine that runs other suites too
@pytest.mark.parametrize("seed", SEEDS)
def test_a_power_cut_anywhere_in_an_update_boots_a_verified_slot_that_records(
    update: Update, seed: int
) -> None:
    u = update
    with round_of(u, 0, "none"):
        dock = power_on(u)
    for n, planned in enumerate(kill_plan(u), start=1):
        with round_of(u, n, planned):
            dock = can_record(u)
            settle(u, dock)
            u.cut.append(CUTS[planned](u, dock))
            dock = power_on(u)
    with round_of(u, len(u.cut) + 1, "none"):
        dock = can_record(u)
        settle(u, dock)
        finish(u, dock)

    assert len(u.cut) >= len(PHASES) * PER_PHASE
    missed = set(PHASES) - set(u.cut)
    assert not missed, f"seed {seed}: no kill fell in {missed}; cut {Counter(u.cut)}"
    assert u.reached == [version(n) for n in range(1, u.target + 1)], f"seed {seed}: {u.reached}"
    # an update cut once its slot was durable went through; one cut earlier, or in its trial, not
    went_through = u.cut.count("installed") + u.cut.count("healthy") + 1  # + the last, uncut
    assert len(u.reached) == went_through, f"seed {seed}: reached {u.reached}, cut {u.cut}"
