"""Power cuts at random points while recording: every clip verifies, at most one segment is lost.

One simulated card lives through every round, so clips pile up as on a camera over a shift.
Each round boots (restart, audit log resume, recovery), records one clip with the storage's power
cut just before a randomly chosen write-side operation, and sometimes cuts recovery too. After
each boot every clip on the card must verify with the device key and decrypt with the agency key,
hold every segment the writer acknowledged, and have lost at most the one in flight; recovery
leaves the clips of earlier rounds exactly as they were.
"""

from __future__ import annotations

import contextlib
import random
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from custody.audit import verify_audit
from custody.clipid import new_clip_id
from device.audit_log import DeviceAuditLog
from device.config import DeviceConfig
from device.recovery import recover_clips
from hw.errors import PowerLost
from hw.sim.clock import SimClock
from hw.sim.storage import SimStorage
from tests.device.clip_helpers import (
    AUDIT,
    CLIPS,
    SECOND,
    PowerCutStorage,
    plaintexts,
    read_manifest,
    start_clip,
    verify,
)

SEED = 20_240_611
ROUNDS = 64
SEGMENTS = 5


@dataclass
class Attempt:
    """What the writer was asked to do and what it acknowledged, as the firmware would know it."""

    clip_id: str
    created: bool = False
    sent: list[bytes] = field(default_factory=list)  # every add_segment started
    acknowledged: int = 0  # add_segment calls that returned
    markers: int = 0  # add_marker calls that returned
    sealed: bool = False


def record_clip(
    storage: PowerCutStorage,
    attempt: Attempt,
    rng: random.Random,
    keys: tuple[Ed25519PrivateKey, X25519PrivateKey],
    clock: SimClock,
    audit: DeviceAuditLog,
) -> None:
    """The firmware's writes for one clip: audit, create, segments with markers, seal, audit."""
    device_key, agency_key = keys
    audit.append("state.recording", {"clip_id": attempt.clip_id})
    writer = start_clip(
        storage, DeviceConfig(storage_reserve_bytes=0), device_key, agency_key, clock,
        clip_id=attempt.clip_id,
    )  # fmt: skip
    attempt.created = True
    for index in range(SEGMENTS):
        clock.advance(1)
        attempt.sent.append(rng.randbytes(rng.randrange(200, 3000)))
        writer.add_segment(attempt.sent[-1], index * SECOND, (index + 1) * SECOND)
        attempt.acknowledged += 1
        if index % 2:
            writer.add_marker(clock.monotonic_ns())
            attempt.markers += 1
    writer.seal()
    attempt.sealed = True
    audit.append("clip.sealed", {"clip_id": attempt.clip_id})


def boot(
    sim: SimStorage, storage: PowerCutStorage, key: Ed25519PrivateKey, clock: SimClock
) -> DeviceAuditLog:
    sim.restart()
    audit = DeviceAuditLog(storage, AUDIT, key, clock, checkpoint_every=10)
    recover_clips(storage, CLIPS, key, audit)
    return audit


def check_clip(
    sim: SimStorage, attempt: Attempt, device_key: Ed25519PrivateKey, agency_key: X25519PrivateKey
) -> None:
    if attempt.clip_id not in sim.listdir(CLIPS):
        assert not attempt.created, f"clip {attempt.clip_id} was created and then lost"
        return
    report = verify(sim, attempt.clip_id, device_key, agency_key)
    assert report.ok, f"clip {attempt.clip_id}: {report.first_failure}"
    manifest = read_manifest(sim, attempt.clip_id)
    kept = len(manifest.segments)
    assert attempt.acknowledged <= kept <= len(attempt.sent)
    assert len(attempt.sent) - kept <= 1, "more than the segment in flight was lost"
    assert plaintexts(sim, attempt.clip_id, agency_key) == attempt.sent[:kept]
    assert sum(e.kind == "marker" for e in manifest.events) >= attempt.markers
    seal = manifest.seal
    assert seal is not None and seal.recovered == (not attempt.sealed)


def manifests(sim: SimStorage, attempts: list[Attempt]) -> dict[str, bytes]:
    on_card = set(sim.listdir(CLIPS))
    return {
        a.clip_id: sim.read_bytes(f"{CLIPS}/{a.clip_id}/manifest.jsonl")
        for a in attempts
        if a.clip_id in on_card
    }


def operations_per_clip(
    tmp_path: Path, keys: tuple[Ed25519PrivateKey, X25519PrivateKey], clock: SimClock
) -> int:
    """How many write-side operations an uninterrupted clip takes, so cuts land anywhere in it."""
    sim = SimStorage(tmp_path / "calibration")
    storage = PowerCutStorage(sim)
    audit = boot(sim, storage, keys[0], clock)
    record_clip(storage, Attempt(new_clip_id()), random.Random(0), keys, clock, audit)
    before = storage.ops  # the first clip also made the clips folder: count the second
    record_clip(storage, Attempt(new_clip_id()), random.Random(0), keys, clock, audit)
    return storage.ops - before


def test_random_power_cuts_while_recording_lose_at_most_the_segment_in_flight(
    tmp_path: Path,
    device_key: Ed25519PrivateKey,
    agency_key: X25519PrivateKey,
    virtual_clock: SimClock,
) -> None:
    keys = (device_key, agency_key)
    span = operations_per_clip(tmp_path, keys, virtual_clock)
    rng = random.Random(SEED)
    sim = SimStorage(tmp_path / "card", capacity_bytes=256 * 1024**2)
    storage = PowerCutStorage(sim)
    attempts: list[Attempt] = []
    checked: dict[str, bytes] = {}
    audit = boot(sim, storage, device_key, virtual_clock)
    for _ in range(ROUNDS):
        attempt = Attempt(new_clip_id())
        attempts.append(attempt)
        cuts = storage.cuts
        storage.cut_after(rng.randint(1, span))
        with contextlib.suppress(PowerLost):  # a cut at the last close raises nothing
            record_clip(storage, attempt, rng, keys, virtual_clock, audit)
        if storage.cuts == cuts:  # the clip ended before the chosen operation: reboot anyway
            storage.disarm()
            sim.power_cut()
        if rng.random() < 0.3:  # and sometimes the power fails again during recovery
            storage.cut_after(rng.randint(1, 40))
            with contextlib.suppress(PowerLost):
                boot(sim, storage, device_key, virtual_clock)
            storage.disarm()
            sim.power_cut()
        audit = boot(sim, storage, device_key, virtual_clock)
        check_clip(sim, attempt, device_key, agency_key)
        # Recovery leaves clips of earlier rounds byte for byte as they were.
        assert manifests(sim, attempts[:-1]) == checked
        checked = manifests(sim, attempts)
    for attempt in attempts:
        check_clip(sim, attempt, device_key, agency_key)
    audit.close()
    data = sim.read_bytes(AUDIT)
    assert verify_audit(data, [device_key.public_key()]).ok
    assert sum(not a.sealed for a in attempts) >= 50  # cuts that landed while recording
    assert sum(a.acknowledged > 0 and not a.sealed for a in attempts) > ROUNDS // 3
