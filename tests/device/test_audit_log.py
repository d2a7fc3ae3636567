"""The device audit log: durable records, signed checkpoints, and a chain that survives reboots."""

from __future__ import annotations

import errno
import json
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from custody.audit import verify_audit
from device.audit_log import DeviceAuditLog
from device.errors import AuditWriteError
from hw.sim.clock import SimClock
from hw.sim.storage import SimStorage
from tests.device.clip_helpers import AUDIT


@pytest.fixture
def open_log(
    sim_storage: SimStorage, device_key: Ed25519PrivateKey, virtual_clock: SimClock
) -> Any:
    def opener(every: int = 100) -> DeviceAuditLog:
        return DeviceAuditLog(
            sim_storage, AUDIT, device_key, virtual_clock, actor="device:cam-0042",
            checkpoint_every=every,
        )  # fmt: skip

    return opener


def records(storage: SimStorage) -> list[dict[str, Any]]:
    return [json.loads(line) for line in storage.read_bytes(AUDIT).splitlines()]


def chain_ok(storage: SimStorage, key: Ed25519PrivateKey, *, signed: bool = False) -> bool:
    data = storage.read_bytes(AUDIT)
    return verify_audit(data, [key.public_key()], require_checkpoint=signed).ok


def test_every_record_survives_a_power_cut_once_append_returns(
    open_log: Any, sim_storage: SimStorage, device_key: Ed25519PrivateKey
) -> None:
    log = open_log()
    log.append("state.recording", {"reason": "button"})
    sim_storage.power_cut()
    sim_storage.restart()
    assert [r["event"] for r in records(sim_storage)] == ["audit.start", "state.recording"]
    assert chain_ok(sim_storage, device_key)


def test_a_signed_checkpoint_follows_every_n_records_and_close(
    open_log: Any, sim_storage: SimStorage, device_key: Ed25519PrivateKey
) -> None:
    log = open_log(every=3)
    for n in range(4):
        log.append("trigger.ignored", {"n": n})
    log.close()
    events = [r["event"] for r in records(sim_storage)]
    assert events.count("audit.checkpoint") == 2
    assert events[-1] == "audit.checkpoint"
    assert chain_ok(sim_storage, device_key, signed=True)


def test_the_chain_resumes_after_a_reboot(
    open_log: Any, sim_storage: SimStorage, device_key: Ed25519PrivateKey
) -> None:
    open_log().append("state.buffering", {})
    sim_storage.power_cut()
    sim_storage.restart()
    log = open_log()
    log.append("state.recording", {})
    assert [r["seq"] for r in records(sim_storage)] == [0, 1, 2]
    assert chain_ok(sim_storage, device_key)


def test_a_torn_last_line_is_dropped_and_the_drop_is_audited(
    open_log: Any, sim_storage: SimStorage, device_key: Ed25519PrivateKey
) -> None:
    open_log().append("state.buffering", {})
    torn = b'{"actor":"device:cam-0042","da'
    with sim_storage.open_write(AUDIT, append=True) as f:
        f.write(torn)
        f.fsync()
    sim_storage.power_cut()
    sim_storage.restart()
    open_log()
    last = records(sim_storage)[-1]
    assert last["event"] == "log.tail_dropped"
    assert last["data"]["bytes"] == len(torn)
    assert chain_ok(sim_storage, device_key)


def test_a_log_damaged_in_the_middle_is_set_aside_not_rewritten(
    open_log: Any, sim_storage: SimStorage, device_key: Ed25519PrivateKey
) -> None:
    log = open_log()
    log.append("state.buffering", {})
    log.append("state.recording", {})
    damaged = sim_storage.read_bytes(AUDIT).replace(b"buffering", b"recording")
    with sim_storage.open_write(AUDIT) as f:
        f.write(damaged)
        f.fsync()
    open_log()
    assert sim_storage.read_bytes(f"{AUDIT}.damaged-1") == damaged
    set_aside = records(sim_storage)[1]
    assert set_aside["event"] == "log.set_aside"
    assert set_aside["data"]["file"] == f"{AUDIT}.damaged-1"
    assert chain_ok(sim_storage, device_key)


def test_a_failed_write_raises_and_the_next_append_cuts_the_torn_bytes_and_says_so(
    open_log: Any, sim_storage: SimStorage, device_key: Ed25519PrivateKey
) -> None:
    log = open_log()
    sim_storage.fail_writes(errno.ENOSPC, after_bytes=25)
    with pytest.raises(AuditWriteError, match="offload the camera"):
        log.append("state.recording", {})
    sim_storage.clear_faults()
    log.append("state.recording", {})
    events = [r["event"] for r in records(sim_storage)]
    assert events == ["audit.start", "log.tail_dropped", "state.recording"]
    assert records(sim_storage)[1]["data"]["bytes"] == 25
    assert chain_ok(sim_storage, device_key)


def test_nothing_is_appended_after_close(open_log: Any) -> None:
    log = open_log()
    log.close()
    with pytest.raises(AuditWriteError, match="closed"):
        log.append("state.off", {})


def test_a_log_created_but_cut_before_its_first_line_was_durable_starts_afresh(
    open_log: Any, sim_storage: SimStorage, device_key: Ed25519PrivateKey
) -> None:
    sim_storage.mkdir("audit")
    with sim_storage.open_write(AUDIT) as f:
        f.fsync()
    open_log().append("state.buffering", {})
    assert [r["event"] for r in records(sim_storage)] == ["audit.start", "state.buffering"]
    assert not sim_storage.exists(f"{AUDIT}.damaged-1")
    assert chain_ok(sim_storage, device_key)
