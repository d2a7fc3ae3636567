"""The clip writer: sealed clips verify, every record is durable, faults end in a sealed clip."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from custody.canonical import b64e
from custody.envelope import unwrap_data_key
from custody.errors import FormatError
from custody.segment import OVERHEAD
from device.audit_log import DeviceAuditLog
from device.clip_writer import RECORD_BUDGET, ClipWriter
from device.config import DeviceConfig
from device.errors import ClipExistsError, ClipWriteError, StorageFullError
from device.recovery import recover_clips
from hw.ports.gnss import GnssFix
from hw.sim.clock import SimClock
from hw.sim.storage import SimStorage
from tests.device.clip_helpers import (
    AUDIT,
    CLIPS,
    SECOND,
    add_segments,
    clip_folder,
    payload,
    plaintexts,
    read_manifest,
    start_clip,
    verify,
)

SEGMENT_FILE = len(payload(0)) + OVERHEAD


@pytest.fixture
def writer(
    sim_storage: SimStorage,
    device_config: DeviceConfig,
    device_key: Ed25519PrivateKey,
    agency_key: X25519PrivateKey,
    virtual_clock: SimClock,
) -> ClipWriter:
    return start_clip(sim_storage, device_config, device_key, agency_key, virtual_clock)


def small_card(tmp_path: Path, segments_that_fit: float) -> SimStorage:
    """A card with room for the clip's manifest and about ``segments_that_fit`` segments."""
    room = 4096 + 2048 + int(segments_that_fit * (SEGMENT_FILE + RECORD_BUDGET))
    return SimStorage(tmp_path / "small-card", capacity_bytes=room)


def test_a_sealed_clip_verifies_and_decrypts_with_the_agency_key(
    writer: ClipWriter,
    sim_storage: SimStorage,
    virtual_clock: SimClock,
    device_key: Ed25519PrivateKey,
    agency_key: X25519PrivateKey,
) -> None:
    add_segments(writer, virtual_clock, 3)
    seal = writer.seal()
    report = verify(sim_storage, writer.clip_id, device_key, agency_key)
    assert report.ok, report.first_failure
    assert (seal.segment_count, seal.recovered) == (3, False)
    assert plaintexts(sim_storage, writer.clip_id, agency_key) == [payload(i) for i in range(3)]


def test_the_clip_folder_is_named_by_clip_id_and_holds_the_manifest_and_segments(
    writer: ClipWriter, sim_storage: SimStorage, virtual_clock: SimClock
) -> None:
    add_segments(writer, virtual_clock, 2)
    writer.seal()
    assert sim_storage.listdir(CLIPS) == [writer.clip_id]
    assert sim_storage.listdir(writer.folder) == [
        "manifest.jsonl",
        "seg-000000.bwcs",
        "seg-000001.bwcs",
    ]


def test_the_header_records_who_what_when_why_and_the_pre_event_time(
    writer: ClipWriter, sim_storage: SimStorage, virtual_clock: SimClock
) -> None:
    writer.seal()
    manifest = read_manifest(sim_storage, writer.clip_id)
    info = manifest.header.info
    assert (info.device_id, info.device_serial) == ("cam-0042", "BWC1-000042")
    assert (info.officer_id, info.firmware_version) == ("officer-1187", "0.1.0")
    assert info.start_monotonic_ns == virtual_clock.monotonic_ns() - 30 * SECOND
    assert info.start_wall_ns == virtual_clock.wall_ns() - 30 * SECOND
    assert info.time_sync_offset_ns == -2_500_000
    assert info.triggers == ({"kind": "button", "gesture": "double_press"},)
    assert (info.pre_event_ns, info.pre_event_audio) == (30 * SECOND, False)
    pre_event = manifest.events[0]
    assert pre_event.kind == "pre_event"
    assert pre_event.data == {
        "configured_ns": 30 * SECOND,
        "actual_ns": 30 * SECOND,
        "audio": False,
    }


def test_markers_gnss_fixes_and_triggers_are_recorded_in_order(
    writer: ClipWriter, sim_storage: SimStorage, virtual_clock: SimClock
) -> None:
    add_segments(writer, virtual_clock, 1)
    writer.add_marker(virtual_clock.monotonic_ns())
    fix = GnssFix(61.2176, -149.8997, 30.5, None, None, None, virtual_clock.wall_ns())
    writer.add_gnss_fix(fix)
    writer.add_trigger("holster", "holster-17", monotonic_ns=virtual_clock.monotonic_ns())
    writer.seal()
    events = read_manifest(sim_storage, writer.clip_id).events[1:]
    assert [(e.kind, e.data) for e in events] == [
        ("marker", {}),
        ("gnss", {"lat_e7": 612_176_000, "lon_e7": -1_498_997_000, "alt_mm": 30_500}),
        ("trigger", {"kind": "holster", "source_id": "holster-17"}),
    ]
    assert events[1].wall_ns == fix.wall_ns


def test_the_data_key_is_kept_only_wrapped_to_the_agency_key(
    writer: ClipWriter,
    sim_storage: SimStorage,
    virtual_clock: SimClock,
    agency_key: X25519PrivateKey,
) -> None:
    add_segments(writer, virtual_clock, 2)
    writer.seal()
    data_key = unwrap_data_key(writer.header.data_key, agency_key, writer.clip_id)
    on_card = b"".join(p.read_bytes() for p in clip_folder(sim_storage, writer.clip_id).iterdir())
    assert data_key not in on_card
    assert b64e(data_key).encode() not in on_card


def test_each_segment_and_event_is_durable_when_the_call_returns(
    writer: ClipWriter, sim_storage: SimStorage, virtual_clock: SimClock
) -> None:
    add_segments(writer, virtual_clock, 2)
    writer.add_marker(virtual_clock.monotonic_ns())
    sim_storage.power_cut()
    sim_storage.restart()
    manifest = read_manifest(sim_storage, writer.clip_id)
    assert [s.index for s in manifest.segments] == [0, 1]
    assert manifest.events[-1].kind == "marker"
    assert sim_storage.listdir(writer.folder)[1:] == ["seg-000000.bwcs", "seg-000001.bwcs"]


def test_an_existing_clip_folder_is_refused_and_left_as_it_was(
    writer: ClipWriter,
    sim_storage: SimStorage,
    device_config: DeviceConfig,
    device_key: Ed25519PrivateKey,
    agency_key: X25519PrivateKey,
    virtual_clock: SimClock,
) -> None:
    add_segments(writer, virtual_clock, 1)
    writer.seal()
    before = sim_storage.read_bytes(f"{writer.folder}/manifest.jsonl")
    with pytest.raises(ClipExistsError, match="never overwritten"):
        start_clip(
            sim_storage, device_config, device_key, agency_key, virtual_clock,
            clip_id=writer.clip_id,
        )  # fmt: skip
    assert sim_storage.read_bytes(f"{writer.folder}/manifest.jsonl") == before


def test_segment_times_running_backwards_are_refused(
    writer: ClipWriter, virtual_clock: SimClock
) -> None:
    add_segments(writer, virtual_clock, 2)
    with pytest.raises(ValueError, match="backwards"):
        writer.add_segment(payload(2), 0, SECOND)


def test_no_clip_starts_when_the_card_is_already_below_the_reserve(
    tmp_path: Path,
    device_config: DeviceConfig,
    device_key: Ed25519PrivateKey,
    agency_key: X25519PrivateKey,
    virtual_clock: SimClock,
) -> None:
    card = SimStorage(tmp_path / "full-card", capacity_bytes=device_config.storage_reserve_bytes)
    with pytest.raises(StorageFullError, match="no clip was started"):
        start_clip(card, device_config, device_key, agency_key, virtual_clock)
    assert not card.exists(CLIPS) or card.listdir(CLIPS) == []


def test_space_running_below_the_reserve_seals_the_clip_and_raises_storage_full(
    tmp_path: Path,
    device_config: DeviceConfig,
    device_key: Ed25519PrivateKey,
    agency_key: X25519PrivateKey,
    virtual_clock: SimClock,
) -> None:
    card = small_card(tmp_path, segments_that_fit=3.5)
    writer = start_clip(card, device_config, device_key, agency_key, virtual_clock)
    durable = 0
    with pytest.raises(StorageFullError, match="sealed"):
        for index in range(10):
            writer.add_segment(payload(index), index * SECOND, (index + 1) * SECOND)
            durable += 1
    assert durable >= 2
    assert writer.sealed is not None and writer.sealed.segment_count == durable
    assert card.free_bytes() < device_config.storage_reserve_bytes + SEGMENT_FILE + RECORD_BUDGET
    report = verify(card, writer.clip_id, device_key, agency_key)
    assert report.ok, report.first_failure


def test_a_card_full_mid_segment_raises_storage_full_and_recovery_seals_the_clip(
    sim_storage: SimStorage,
    writer: ClipWriter,
    virtual_clock: SimClock,
    device_key: Ed25519PrivateKey,
    agency_key: X25519PrivateKey,
) -> None:
    add_segments(writer, virtual_clock, 3)
    # The card runs out half way through a segment although free_bytes said it would fit (a real
    # filesystem's block and metadata overhead), and stays full: not even the seal fits.
    sim_storage.fail_writes(errno.ENOSPC, after_bytes=SEGMENT_FILE // 2)
    with pytest.raises(StorageFullError, match="unsealed for recovery"):
        add_segments(writer, virtual_clock, 1, first=3)
    assert [d.reason for d in writer.dropped] == ["in flight at a fault: torn temp file"]
    sim_storage.clear_faults()  # offloaded at a dock, then rebooted
    audit = DeviceAuditLog(sim_storage, AUDIT, device_key, virtual_clock)
    recovered = recover_clips(sim_storage, CLIPS, device_key, audit).recovered
    assert [c.segment_count for c in recovered] == [3]
    report = verify(sim_storage, writer.clip_id, device_key, agency_key)
    assert report.ok, report.first_failure


def test_a_failed_fsync_raises_clip_write_error_and_seals_the_durable_segments(
    writer: ClipWriter,
    sim_storage: SimStorage,
    virtual_clock: SimClock,
    device_key: Ed25519PrivateKey,
    agency_key: X25519PrivateKey,
) -> None:
    add_segments(writer, virtual_clock, 2)
    sim_storage.fail_fsync(errno.EIO, count=1)
    with pytest.raises(ClipWriteError, match="sealed") as caught:
        add_segments(writer, virtual_clock, 1, first=2)
    assert not isinstance(caught.value, StorageFullError)
    assert writer.sealed is not None and writer.sealed.segment_count == 2
    report = verify(sim_storage, writer.clip_id, device_key, agency_key)
    assert report.ok, report.first_failure


def test_a_card_whose_fsync_keeps_failing_leaves_a_clip_that_recovery_seals(
    writer: ClipWriter,
    sim_storage: SimStorage,
    virtual_clock: SimClock,
    device_key: Ed25519PrivateKey,
    agency_key: X25519PrivateKey,
) -> None:
    add_segments(writer, virtual_clock, 2)
    sim_storage.fail_fsync(errno.EIO)
    with pytest.raises(ClipWriteError, match="unsealed for recovery"):
        add_segments(writer, virtual_clock, 1, first=2)
    assert writer.sealed is None
    sim_storage.power_cut()
    sim_storage.clear_faults()
    sim_storage.restart()
    audit = DeviceAuditLog(sim_storage, AUDIT, device_key, virtual_clock)
    recovered = recover_clips(sim_storage, CLIPS, device_key, audit).recovered
    assert [(c.clip_id, c.segment_count) for c in recovered] == [(writer.clip_id, 2)]
    report = verify(sim_storage, writer.clip_id, device_key, agency_key)
    assert report.ok, report.first_failure


def test_a_write_error_in_the_manifest_leaves_a_torn_line_that_recovery_cuts(
    writer: ClipWriter,
    sim_storage: SimStorage,
    virtual_clock: SimClock,
    device_key: Ed25519PrivateKey,
    agency_key: X25519PrivateKey,
) -> None:
    add_segments(writer, virtual_clock, 2)
    # The segment file goes through; its manifest record breaks off after 40 bytes, and the
    # writer cannot rewrite the manifest without that torn line either.
    sim_storage.fail_writes(errno.EIO, after_bytes=SEGMENT_FILE + 40)
    with pytest.raises(ClipWriteError, match="unsealed for recovery"):
        add_segments(writer, virtual_clock, 1, first=2)
    sim_storage.clear_faults()  # the next boot
    audit = DeviceAuditLog(sim_storage, AUDIT, device_key, virtual_clock)
    assert [d.name for d in writer.dropped] == ["seg-000002.bwcs"]
    report = recover_clips(sim_storage, CLIPS, device_key, audit)
    assert [c.segment_count for c in report.recovered] == [2]
    assert [d.name for d in report.dropped] == ["manifest.jsonl tail"]
    check = verify(sim_storage, writer.clip_id, device_key, agency_key)
    assert check.ok, check.first_failure


def test_nothing_more_is_added_to_a_sealed_clip(
    writer: ClipWriter, virtual_clock: SimClock
) -> None:
    writer.seal()
    with pytest.raises(ClipWriteError, match="is sealed: start a new clip"):
        add_segments(writer, virtual_clock, 1)


def test_an_event_with_a_float_is_refused_and_the_clip_goes_on(
    writer: ClipWriter,
    sim_storage: SimStorage,
    virtual_clock: SimClock,
    device_key: Ed25519PrivateKey,
    agency_key: X25519PrivateKey,
) -> None:
    with pytest.raises(FormatError, match="float"):
        writer.add_event("note", {"speed": 1.5})
    add_segments(writer, virtual_clock, 1)
    writer.seal()
    report = verify(sim_storage, writer.clip_id, device_key, agency_key)
    assert report.ok, report.first_failure
