"""A/B firmware slots (issue 11): refuse bad bundles, try a new slot once, survive power cuts."""

from __future__ import annotations

import errno
import random
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from custody.audit import verify_audit
from custody.keys import private_pem, public_pem
from device.config import DeviceConfig
from device.errors import FirmwareUpdateError
from device.slots import SlotManager
from hw.errors import PowerLost
from hw.real.storage import FileStorage
from hw.sim.storage import SimStorage
from tests.device.firmware_rig import build_camera
from tests.device.slot_helpers import (
    AUDIT,
    audit_records,
    boot,
    make_bundle,
    manager,
    slot_files,
)

KILLS = 30


@pytest.fixture
def release_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture
def bundles(tmp_path: Path) -> Path:
    folder = tmp_path / "bundles"
    folder.mkdir()
    return folder


@pytest.fixture
def card(tmp_path: Path) -> SimStorage:
    return SimStorage(tmp_path / "card", capacity_bytes=4 * 1024**2)


@pytest.fixture
def running(
    card: SimStorage, bundles: Path, release_key: Ed25519PrivateKey, device_key: Ed25519PrivateKey
) -> SlotManager:
    """A camera running firmware 1.0.0 from slot a, marked healthy."""
    slots = manager(card, release_key, device_key)
    slots.install(make_bundle(bundles, release_key, version="1.0.0"))
    slots.boot()
    slots.mark_healthy()
    return slots


def refused(bundles: Path, release_key: Ed25519PrivateKey, kind: str) -> tuple[Path, str]:
    """A bad bundle of each kind and the check its refusal must name."""
    if kind == "unsigned":
        return make_bundle(bundles, None, version="2.0.0"), "signer"
    if kind == "wrong key":
        return make_bundle(bundles, Ed25519PrivateKey.generate(), version="2.0.0"), "signer"
    if kind == "wrong target":
        return make_bundle(bundles, release_key, version="2.0.0", target="rpi-zero2w"), "target"
    if kind == "downgrade":
        return make_bundle(bundles, release_key, version="0.9.0"), "downgrade"
    good = make_bundle(bundles, release_key, version="2.0.0")
    data = bytearray(good.read_bytes())
    if kind == "tampered":
        data[-1000] ^= 0x01
        good.write_bytes(bytes(data))
        return good, "payload hashes"
    if kind == "truncated payload":
        good.write_bytes(bytes(data[:-100]))
        return good, "payload size"
    assert kind == "truncated header"
    good.write_bytes(bytes(data[:200]))
    return good, "format"


@pytest.mark.parametrize(
    "kind",
    ["unsigned", "wrong key", "tampered", "wrong target", "downgrade", "truncated payload",
     "truncated header"],
)  # fmt: skip
def test_a_bad_bundle_is_refused_with_its_reason_and_the_active_slot_untouched(
    running: SlotManager, card: SimStorage, bundles: Path, release_key: Ed25519PrivateKey,
    kind: str,
) -> None:  # fmt: skip
    bundle, check = refused(bundles, release_key, kind)
    before, state = slot_files(card, "a"), running.state()
    with pytest.raises(FirmwareUpdateError, match=f"refused: {check}: "):
        running.install(bundle)
    last = audit_records(card)[-1]
    assert last["event"] == "firmware.refused"
    assert last["data"]["reason"].startswith(f"{check}: ")
    assert running.state() == state
    assert slot_files(card, "a") == before
    assert boot(running).slot == "a"


def test_a_bundle_larger_than_the_free_space_is_refused(
    running: SlotManager, card: SimStorage, bundles: Path, release_key: Ed25519PrivateKey
) -> None:
    bundle = make_bundle(bundles, release_key, version="2.0.0")
    with card.open_write("filler.bin") as f:  # leave less room than the bundle needs
        f.write(bytes(card.free_bytes() - bundle.stat().st_size + 1))
    before, state = slot_files(card, "a"), running.state()
    with pytest.raises(FirmwareUpdateError, match="refused: free space: needs"):
        running.install(bundle)
    assert audit_records(card)[-1]["data"]["reason"].startswith("free space: ")
    assert (running.state(), slot_files(card, "a")) == (state, before)


def test_install_boot_and_mark_healthy_switch_to_the_new_slot(
    running: SlotManager, card: SimStorage, bundles: Path, release_key: Ed25519PrivateKey,
    device_key: Ed25519PrivateKey,
) -> None:  # fmt: skip
    assert running.install(make_bundle(bundles, release_key, version="2.0.0")) == "b"
    booted = boot(running)
    assert (booted.slot, booted.version, booted.trial) == ("b", "2.0.0", True)
    running.mark_healthy()
    after_reboot = boot(manager(card, release_key, device_key))
    assert (after_reboot.slot, after_reboot.version, after_reboot.trial) == ("b", "2.0.0", False)
    assert slot_files(card, "b")["files/VERSION"] == b"2.0.0"
    assert audit_records(card)[-1]["event"] == "firmware.activated"


def test_a_tried_slot_not_marked_healthy_falls_back_at_the_next_boot(
    running: SlotManager, card: SimStorage, bundles: Path, release_key: Ed25519PrivateKey,
    device_key: Ed25519PrivateKey,
) -> None:  # fmt: skip
    running.install(make_bundle(bundles, release_key, version="2.0.0"))
    assert boot(running).slot == "b"
    rebooted = boot(manager(card, release_key, device_key))  # no mark_healthy: it hung
    assert (rebooted.slot, rebooted.version) == ("a", "1.0.0")
    rollback = audit_records(card)[-1]
    assert (rollback["event"], rollback["data"]["slot"]) == ("firmware.rollback", "b")


def test_a_tried_slot_whose_files_were_damaged_is_never_booted(
    running: SlotManager, card: SimStorage, bundles: Path, release_key: Ed25519PrivateKey
) -> None:
    running.install(make_bundle(bundles, release_key, version="2.0.0"))
    (card.root / "firmware/b/files/bwc.bin").write_bytes(b"not the signed bytes")
    booted = boot(running)
    assert (booted.slot, booted.version) == ("a", "1.0.0")
    assert audit_records(card)[-1]["data"]["reason"] == "its files do not verify"


def test_no_bundle_is_installed_over_the_slot_on_trial(
    running: SlotManager, card: SimStorage, bundles: Path, release_key: Ed25519PrivateKey
) -> None:
    running.install(make_bundle(bundles, release_key, version="2.0.0"))
    running.boot()  # running slot b on trial: b is also the inactive slot
    before = slot_files(card, "b")
    with pytest.raises(FirmwareUpdateError, match="refused: on trial: "):
        running.install(make_bundle(bundles, release_key, version="3.0.0"))
    assert audit_records(card)[-1]["event"] == "firmware.refused"
    assert slot_files(card, "b") == before


def test_a_card_error_while_writing_the_slot_keeps_the_running_firmware(
    running: SlotManager, card: SimStorage, bundles: Path, release_key: Ed25519PrivateKey,
    device_key: Ed25519PrivateKey,
) -> None:  # fmt: skip
    def fail_next_fsync(step: str) -> None:
        if step == "wiped":  # the first payload file's fsync fails
            card.fail_fsync(errno.EIO, count=1)

    before = slot_files(card, "a")
    slots = manager(card, release_key, device_key, progress=fail_next_fsync)
    with pytest.raises(
        FirmwareUpdateError, match=r"writing slot b failed: .* keeps firmware 1\.0\.0"
    ):
        slots.install(make_bundle(bundles, release_key, version="2.0.0"))
    assert audit_records(card)[-1]["event"] == "firmware.failed"
    assert (boot(slots).version, slot_files(card, "a")) == ("1.0.0", before)


def test_a_bundle_replaced_after_verification_is_not_installed(
    card: SimStorage, bundles: Path, release_key: Ed25519PrivateKey, device_key: Ed25519PrivateKey,
    running: SlotManager,
) -> None:  # fmt: skip
    bundle = make_bundle(bundles, release_key, version="2.0.0")
    other = make_bundle(bundles, Ed25519PrivateKey.generate(), version="3.0.0")

    def swap(step: str) -> None:
        if step == "forget":  # verified already: now an untrusted bundle takes its place
            other.replace(bundle)

    slots = manager(card, release_key, device_key, progress=swap)
    with pytest.raises(FirmwareUpdateError, match="replaced after it was verified"):
        slots.install(bundle)
    assert boot(slots).version == "1.0.0"


def steps_of_update(folder: Path, bundle: Path, release: Ed25519PrivateKey) -> list[str]:
    """Every durable step of install, boot and mark_healthy, counted on a card of its own."""
    steps: list[str] = []
    storage = SimStorage(folder, capacity_bytes=4 * 1024**2)
    first = manager(storage, release, Ed25519PrivateKey.generate())
    first.install(make_bundle(folder.parent, release, version="1.0.0"))
    first.boot()
    first.mark_healthy()
    slots = manager(storage, release, Ed25519PrivateKey.generate(), progress=steps.append)
    slots.install(bundle)
    slots.boot()
    slots.mark_healthy()
    return steps


def test_a_power_cut_after_any_step_of_an_update_leaves_a_verified_slot(
    running: SlotManager, card: SimStorage, bundles: Path, release_key: Ed25519PrivateKey,
    device_key: Ed25519PrivateKey, tmp_path: Path,
) -> None:  # fmt: skip
    bundle = make_bundle(bundles, release_key, version="2.0.0")
    steps = steps_of_update(tmp_path / "count", bundle, release_key)
    for cut_at in range(len(steps)):
        seen: list[str] = []

        def cut(step: str, at: int = cut_at, seen: list[str] = seen) -> None:
            seen.append(step)
            if len(seen) > at:
                card.power_cut()  # everything not yet durable is lost

        slots = manager(card, release_key, device_key, progress=cut)
        try:
            slots.install(bundle)
            slots.boot()
            slots.mark_healthy()
        except PowerLost:
            pass
        else:  # the cut came after the last durable step: nothing was left to lose
            assert cut_at == len(steps) - 1, f"the update outlived a cut after {steps[cut_at]}"
        card.restart()
        booted = boot(manager(card, release_key, device_key))
        assert booted.version in {"1.0.0", "2.0.0"}, steps[cut_at]
        assert manager(card, release_key, device_key).verify_slot(booted.slot).ok, steps[cut_at]


Installer = Callable[[Path, Path, Path], "subprocess.Popen[bytes]"]


@pytest.fixture
def installers() -> Iterator[Installer]:
    """Starts installer processes (tests/device/slot_install_entry.py); ends all it started."""
    started: list[subprocess.Popen[bytes]] = []

    def start(card: Path, bundle: Path, keys: Path) -> subprocess.Popen[bytes]:
        args = [str(card), str(bundle), str(keys / "release.pub.pem"), str(keys / "device.key.pem")]
        camera = subprocess.Popen(
            [sys.executable, "-m", "tests.device.slot_install_entry", *args],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        )  # fmt: skip
        started.append(camera)
        return camera

    yield start
    for camera in started:
        if camera.poll() is None:
            camera.kill()
        camera.wait()
        for stream in (camera.stdin, camera.stdout):
            if stream is not None:
                stream.close()


def run_until(camera: subprocess.Popen[bytes], kill_at: int) -> str:
    """Let the camera take ``kill_at`` steps, then SIGKILL it while it stands at the last one."""
    assert camera.stdin is not None and camera.stdout is not None
    camera.stdin.write(b"go\n")
    camera.stdin.flush()
    step = ""
    for n in range(1, kill_at + 1):
        step = camera.stdout.readline().decode().strip()
        assert step and step != "done", f"the update ended before step {kill_at}"
        if n < kill_at:
            camera.stdin.write(b"\n")
            camera.stdin.flush()
    camera.send_signal(signal.SIGKILL)
    camera.wait()
    return step


def camera_records_a_clip(
    card: Path, device_key: Ed25519PrivateKey, agency_key: X25519PrivateKey
) -> bool:
    """Boot the sim camera (tests/device/firmware_rig.py) on this card, record, verify the clip."""
    config = DeviceConfig(device_id="cam-0042", pre_event_s=1, storage_reserve_bytes=64 * 1024)
    camera = build_camera(card, device_key, agency_key, config)
    camera.firmware.boot()
    try:
        camera.run(2)
        camera.tap(2)
        camera.run(2)
        camera.hold_record()
        camera.run(1)
        return [camera.verify(clip).ok for clip in camera.firmware.sealed] == [True]
    finally:
        camera.firmware.close()
        camera.io.close()


def test_sigkill_at_random_points_of_an_update_always_boots_a_verified_slot(
    tmp_path: Path, bundles: Path, release_key: Ed25519PrivateKey, device_key: Ed25519PrivateKey,
    agency_key: X25519PrivateKey, installers: Installer,
) -> None:  # fmt: skip
    keys = tmp_path / "keys"
    keys.mkdir()
    (keys / "release.pub.pem").write_bytes(public_pem(release_key))
    (keys / "device.key.pem").write_bytes(private_pem(device_key))
    (keys / "device.key.pem").chmod(0o600)
    (tmp_path / "fs").mkdir()
    storage = FileStorage(tmp_path / "fs")
    slots: Callable[[], SlotManager] = lambda: manager(storage, release_key, device_key)  # noqa: E731
    first = slots()
    first.install(make_bundle(bundles, release_key, version="1.0.0"))
    first.boot()
    first.mark_healthy()
    bundle = make_bundle(bundles, release_key, version="2.0.0")
    steps = steps_of_update(tmp_path / "count", bundle, release_key)
    rng = random.Random(11)
    kill_points = [rng.randint(1, len(steps)) for _ in range(KILLS)]
    assert min(kill_points) <= steps.index("trying") < max(kill_points)
    waiting = installers(storage.root, bundle, keys)
    for kill_at in kill_points:
        camera, waiting = waiting, installers(storage.root, bundle, keys)
        step = run_until(camera, kill_at)
        booted = boot(slots())
        assert booted.version in {"1.0.0", "2.0.0"}, f"killed after {step}"
        assert slots().verify_slot(booted.slot).ok, f"killed after {step}"
        audit = verify_audit(storage.read_bytes(AUDIT), [device_key.public_key()])
        assert not audit.has_failed("chain"), f"killed after {step}"
    assert camera_records_a_clip(storage.root, device_key, agency_key)


def test_a_card_never_updated_boots_the_factory_image(
    card: SimStorage, release_key: Ed25519PrivateKey, device_key: Ed25519PrivateKey
) -> None:
    assert manager(card, release_key, device_key, factory_version="1.0.0").boot() is None


def test_a_bundle_older_than_the_factory_image_is_a_downgrade(
    card: SimStorage, bundles: Path, release_key: Ed25519PrivateKey, device_key: Ed25519PrivateKey
) -> None:
    slots = manager(card, release_key, device_key, factory_version="1.0.0")
    old = make_bundle(bundles, release_key, version="0.9.0", min_version="0.1.0")
    with pytest.raises(FirmwareUpdateError, match=r"refused: downgrade: 0\.9\.0 is older"):
        slots.install(old)
    assert slots.state().versions == {"a": None, "b": None}


def test_a_first_slot_that_fails_its_trial_falls_back_to_the_factory_image(
    card: SimStorage, bundles: Path, release_key: Ed25519PrivateKey, device_key: Ed25519PrivateKey
) -> None:
    slots = manager(card, release_key, device_key, factory_version="1.0.0")
    slots.install(make_bundle(bundles, release_key, version="1.1.0"))
    (card.root / "firmware/a/files/bwc.bin").write_bytes(b"not the signed bytes")
    assert slots.boot() is None
    assert audit_records(card)[-1]["event"] == "firmware.rollback"
