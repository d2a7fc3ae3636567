"""Boot-time recovery: unsealed clips are sealed over their intact segments, drops are audited."""

from __future__ import annotations

import contextlib
import json
import shutil
import uuid
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from custody.audit import verify_audit
from custody.clip import MANIFEST_NAME
from device.audit_log import DeviceAuditLog
from device.clip_writer import ClipWriter, staging_name
from device.config import DeviceConfig
from device.durable import write_all
from device.errors import RecoveryError
from device.recovery import RecoveryReport, recover_clips
from hw.errors import PowerLost
from hw.ports.storage import write_durable
from hw.sim.clock import SimClock
from hw.sim.storage import SimStorage
from tests.device.clip_helpers import (
    AUDIT,
    CLIPS,
    PowerCutStorage,
    add_segments,
    payload,
    plaintexts,
    read_manifest,
    start_clip,
    verify,
)


@pytest.fixture
def switch(sim_storage: SimStorage) -> PowerCutStorage:
    return PowerCutStorage(sim_storage)


@pytest.fixture
def writer(
    switch: PowerCutStorage,
    device_config: DeviceConfig,
    device_key: Ed25519PrivateKey,
    agency_key: X25519PrivateKey,
    virtual_clock: SimClock,
) -> ClipWriter:
    return start_clip(switch, device_config, device_key, agency_key, virtual_clock)


class Boot:
    """Restart the card and run recovery as the firmware does at boot."""

    def __init__(self, sim: SimStorage, key: Ed25519PrivateKey, clock: SimClock) -> None:
        self.sim, self.key, self.clock = sim, key, clock

    def __call__(self, storage: PowerCutStorage | SimStorage | None = None) -> RecoveryReport:
        self.sim.restart()
        target = storage or self.sim
        audit = DeviceAuditLog(target, AUDIT, self.key, self.clock)
        return recover_clips(target, CLIPS, self.key, audit)

    def audit_events(self) -> list[dict[str, Any]]:
        data = self.sim.read_bytes(AUDIT)
        assert verify_audit(data, [self.key.public_key()], require_checkpoint=False).ok
        return [json.loads(line) for line in data.splitlines()]


@pytest.fixture
def boot(sim_storage: SimStorage, device_key: Ed25519PrivateKey, virtual_clock: SimClock) -> Boot:
    return Boot(sim_storage, device_key, virtual_clock)


def cut_before_append_of_record(switch: PowerCutStorage) -> None:
    switch.cut_when(lambda op, path: op == "open_append" and path.endswith(MANIFEST_NAME))


@pytest.mark.parametrize("acknowledged", [0, 1, 4])
def test_a_power_cut_loses_at_most_the_segment_in_flight(
    acknowledged: int,
    writer: ClipWriter,
    switch: PowerCutStorage,
    virtual_clock: SimClock,
    boot: Boot,
    sim_storage: SimStorage,
    device_key: Ed25519PrivateKey,
    agency_key: X25519PrivateKey,
) -> None:
    add_segments(writer, virtual_clock, acknowledged)
    switch.cut_after(7)  # part way through the next segment
    with pytest.raises(PowerLost):
        add_segments(writer, virtual_clock, 1, first=acknowledged)
    report = boot()
    assert [(c.clip_id, c.segment_count) for c in report.recovered] == [
        (writer.clip_id, acknowledged)
    ]
    seal = read_manifest(sim_storage, writer.clip_id).seal
    assert seal is not None and seal.recovered
    check = verify(sim_storage, writer.clip_id, device_key, agency_key)
    assert check.ok, check.first_failure
    assert plaintexts(sim_storage, writer.clip_id, agency_key) == [
        payload(i) for i in range(acknowledged)
    ]


def test_a_recovered_clip_ends_where_its_last_segment_ends(
    writer: ClipWriter, virtual_clock: SimClock, boot: Boot, sim_storage: SimStorage
) -> None:
    add_segments(writer, virtual_clock, 3)
    sim_storage.power_cut()
    boot()
    manifest = read_manifest(sim_storage, writer.clip_id)
    info, seal = manifest.header.info, manifest.seal
    assert seal is not None
    assert seal.end_monotonic_ns == info.start_monotonic_ns + manifest.segments[-1].pts_end_ns
    assert seal.end_wall_ns - info.start_wall_ns == seal.end_monotonic_ns - info.start_monotonic_ns


def test_an_orphan_segment_is_dropped_and_audited(
    writer: ClipWriter, switch: PowerCutStorage, virtual_clock: SimClock, boot: Boot
) -> None:
    add_segments(writer, virtual_clock, 2)
    cut_before_append_of_record(switch)  # seg-000002.bwcs is durable, its record is not
    with pytest.raises(PowerLost):
        add_segments(writer, virtual_clock, 1, first=2)
    report = boot()
    assert [(d.name, d.reason) for d in report.dropped] == [
        (
            "seg-000002.bwcs",
            "not recorded: the power was lost before its manifest record was durable",
        )
    ]
    dropped = [e for e in boot.audit_events() if e["event"] == "clip.file_dropped"]
    assert [(e["data"]["file"], e["data"]["clip_id"]) for e in dropped] == [
        ("seg-000002.bwcs", writer.clip_id)
    ]
    assert report.recovered[0].segment_count == 2


def test_a_torn_manifest_line_is_cut_off_and_audited(
    writer: ClipWriter,
    virtual_clock: SimClock,
    boot: Boot,
    sim_storage: SimStorage,
    device_key: Ed25519PrivateKey,
    agency_key: X25519PrivateKey,
) -> None:
    add_segments(writer, virtual_clock, 2)
    # What a real card can keep of an append cut short: the start of a line, without its LF.
    write_all(sim_storage, f"{writer.folder}/{MANIFEST_NAME}", b'{"cipher_sha256":"ab', append=True)
    sim_storage.power_cut()
    report = boot()
    assert [(d.name, d.size) for d in report.dropped] == [("manifest.jsonl tail", 20)]
    truncated = [e for e in boot.audit_events() if e["event"] == "clip.manifest_truncated"]
    assert [e["data"]["dropped_bytes"] for e in truncated] == [20]
    assert report.recovered[0].segment_count == 2
    check = verify(sim_storage, writer.clip_id, device_key, agency_key)
    assert check.ok, check.first_failure


def test_a_torn_temp_segment_file_is_dropped(
    writer: ClipWriter,
    virtual_clock: SimClock,
    boot: Boot,
    sim_storage: SimStorage,
    device_key: Ed25519PrivateKey,
    agency_key: X25519PrivateKey,
) -> None:
    add_segments(writer, virtual_clock, 2)
    # A card that kept the temp file's name and half its data (ext4 often does; the sim does not).
    write_all(sim_storage, f"{writer.folder}/.seg-000002.bwcs.tmp", b"BWCS\x01half", append=False)
    sim_storage.fsync_dir(writer.folder)
    sim_storage.power_cut()
    report = boot()
    assert [(d.name, d.reason) for d in report.dropped] == [
        (".seg-000002.bwcs.tmp", "temporary file of a write cut short")
    ]
    assert sim_storage.listdir(writer.folder) == [
        MANIFEST_NAME,
        "seg-000000.bwcs",
        "seg-000001.bwcs",
    ]
    check = verify(sim_storage, writer.clip_id, device_key, agency_key)
    assert check.ok, check.first_failure


def test_a_segment_that_does_not_match_its_record_is_dropped_with_its_record(
    writer: ClipWriter,
    virtual_clock: SimClock,
    boot: Boot,
    sim_storage: SimStorage,
    device_key: Ed25519PrivateKey,
    agency_key: X25519PrivateKey,
) -> None:
    add_segments(writer, virtual_clock, 3)
    last = f"{writer.folder}/seg-000002.bwcs"
    write_durable(sim_storage, last, sim_storage.read_bytes(last)[:100])
    sim_storage.power_cut()
    report = boot()
    assert [d.name for d in report.dropped] == ["manifest.jsonl tail", "seg-000002.bwcs"]
    assert "segment 2: its file is 100 bytes" in report.dropped[0].reason
    assert report.recovered[0].segment_count == 2
    check = verify(sim_storage, writer.clip_id, device_key, agency_key)
    assert check.ok, check.first_failure


def test_a_clip_with_a_header_and_no_segments_is_sealed_not_lost(
    writer: ClipWriter,
    boot: Boot,
    sim_storage: SimStorage,
    device_key: Ed25519PrivateKey,
    agency_key: X25519PrivateKey,
) -> None:
    sim_storage.power_cut()
    report = boot()
    assert [(c.clip_id, c.segment_count) for c in report.recovered] == [(writer.clip_id, 0)]
    check = verify(sim_storage, writer.clip_id, device_key, agency_key)
    assert check.ok, check.first_failure


def test_a_clip_whose_folder_was_still_being_created_is_completed_and_sealed(
    writer: ClipWriter,
    boot: Boot,
    sim_storage: SimStorage,
    device_key: Ed25519PrivateKey,
    agency_key: X25519PrivateKey,
) -> None:
    # A card that kept the staging folder's name (the sim never does): its header is durable.
    staging = f"{CLIPS}/{staging_name(writer.clip_id)}"
    sim_storage.rename(writer.folder, staging)
    sim_storage.fsync_dir(CLIPS)
    sim_storage.power_cut()
    report = boot()
    assert [c.clip_id for c in report.recovered] == [writer.clip_id]
    assert sim_storage.listdir(CLIPS) == [writer.clip_id]
    check = verify(sim_storage, writer.clip_id, device_key, agency_key)
    assert check.ok, check.first_failure


def test_a_staging_folder_without_a_header_holds_no_footage_and_is_cleared(
    boot: Boot, sim_storage: SimStorage
) -> None:
    staging = f"{CLIPS}/{staging_name(str(uuid.uuid4()))}"
    sim_storage.mkdir(staging)
    write_all(sim_storage, f"{staging}/{MANIFEST_NAME}", b'{"type":"hea', append=False)
    sim_storage.fsync_dir(staging)
    sim_storage.fsync_dir(CLIPS)
    report = boot()
    assert sim_storage.listdir(CLIPS) == []
    assert report.recovered == [] and report.unrecovered == []
    assert "clip.creation_dropped" in [e["event"] for e in boot.audit_events()]


def test_a_folder_without_a_readable_header_is_left_untouched_and_reported(
    boot: Boot, sim_storage: SimStorage
) -> None:
    folder = sim_storage.root / CLIPS / str(uuid.uuid4())
    folder.mkdir(parents=True)
    (folder / MANIFEST_NAME).write_bytes(b"not a manifest\n")
    (folder / "seg-000000.bwcs").write_bytes(b"BWCS-something")
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    report = boot()
    assert [type(e) for e in report.unrecovered] == [RecoveryError]
    assert "no readable header" in str(report.unrecovered[0])
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
    reported = [e for e in boot.audit_events() if e["event"] == "clip.unrecoverable"]
    assert [e["data"]["folder"] for e in reported] == [f"{CLIPS}/{folder.name}"]


def test_a_clip_of_another_device_is_left_unsealed_and_reported(
    writer: ClipWriter,
    virtual_clock: SimClock,
    sim_storage: SimStorage,
    agency_key: X25519PrivateKey,
) -> None:
    add_segments(writer, virtual_clock, 1)
    sim_storage.power_cut()
    other = Boot(sim_storage, Ed25519PrivateKey.generate(), virtual_clock)
    report = other()
    assert "another device key" in str(report.unrecovered[0])
    assert read_manifest(sim_storage, writer.clip_id).seal is None


def test_sealed_clips_are_left_as_they_are(
    writer: ClipWriter, virtual_clock: SimClock, boot: Boot, sim_storage: SimStorage
) -> None:
    add_segments(writer, virtual_clock, 2)
    writer.seal()
    folder = sim_storage.root / writer.folder
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    report = boot()
    assert report.intact == [writer.clip_id]
    assert report.recovered == [] and report.dropped == []
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before


def messy_card(
    root: Path, device_key: Ed25519PrivateKey, agency_key: X25519PrivateKey
) -> SimStorage:
    """A card cut off mid-clip with an orphan segment, a torn temp file and a torn record."""
    card = SimStorage(root, capacity_bytes=16 * 1024**2)
    clock = SimClock(virtual=True)
    clock.advance(60)
    config = DeviceConfig(storage_reserve_bytes=0)
    switch = PowerCutStorage(card)
    writer = start_clip(switch, config, device_key, agency_key, clock)
    add_segments(writer, clock, 3)
    cut_before_append_of_record(switch)
    with pytest.raises(PowerLost):
        add_segments(writer, clock, 1, first=3)
    card.restart()
    folder = writer.folder
    write_all(card, f"{folder}/{MANIFEST_NAME}", b'{"type":"segm', append=True)
    write_all(card, f"{folder}/.seg-000004.bwcs.tmp", b"BWCS", append=False)
    card.fsync_dir(folder)
    return card


def test_a_power_cut_during_recovery_then_recovery_again_ends_in_the_same_good_state(
    tmp_path: Path,
    device_key: Ed25519PrivateKey,
    agency_key: X25519PrivateKey,
    virtual_clock: SimClock,
) -> None:
    reference = messy_card(tmp_path / "reference", device_key, agency_key)
    counter = PowerCutStorage(reference)
    Boot(reference, device_key, virtual_clock)(counter)
    (clip_id,) = reference.listdir(CLIPS)
    expected = sorted(reference.listdir(f"{CLIPS}/{clip_id}"))
    recovery_ops = counter.ops
    assert recovery_ops > 10
    for cut in range(1, recovery_ops + 1):
        card = messy_card(tmp_path / f"cut-{cut}", device_key, agency_key)
        boot = Boot(card, device_key, virtual_clock)
        switch = PowerCutStorage(card)
        switch.cut_after(cut)
        with contextlib.suppress(PowerLost):  # a cut at the last close loses nothing: no error
            boot(switch)
        assert switch.cuts == 1
        boot()
        (recovered_id,) = card.listdir(CLIPS)
        check = verify(card, recovered_id, device_key, agency_key)
        assert check.ok, (cut, check.first_failure)
        seal = read_manifest(card, recovered_id).seal
        assert seal is not None and seal.segment_count == 3
        assert sorted(card.listdir(f"{CLIPS}/{recovered_id}")) == expected
        shutil.rmtree(card.root)
