"""``bwc verify``: prints each check; exit 0 all hold, 1 a check failed, 2 unusable input."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from custody.audit import AuditWriter
from custody.clip import RECEIPT_NAME, seal_clip, segment_name
from custody.keys import (
    KeyPairFiles,
    Role,
    load_agency_public_key,
    load_signing_key,
    write_key_pair,
)
from custody.manifest import ClipInfo
from custody.receipt import issue_receipt
from tests.cli.conftest import Run

INFO = ClipInfo("cam-0042", "BWC1-000042", "officer-1187", "0.1.0", 1_700_000_000_000_000_000, 0)


@dataclass(frozen=True)
class Keys:
    device: KeyPairFiles
    agency: KeyPairFiles
    store: KeyPairFiles

    def args(self, *, agency: bool = False) -> list[str]:
        extra = ["--agency-key", str(self.agency.private)] if agency else []
        return ["--device-key", str(self.device.public), *extra]


@pytest.fixture
def keys(tmp_path: Path) -> Keys:
    folder = tmp_path / "keys"
    return Keys(
        write_key_pair(folder, Role.DEVICE),
        write_key_pair(folder, Role.AGENCY),
        write_key_pair(folder, Role.STORE),
    )


@pytest.fixture
def clip_folder(tmp_path: Path, keys: Keys) -> Path:
    clip = seal_clip(
        [bytes([n]) * 300 for n in range(4)],
        device_key=load_signing_key(keys.device.private),
        agency_public=load_agency_public_key(keys.agency.public),
        info=INFO,
    )
    folder = tmp_path / "clip"
    clip.write_to(folder)
    return folder


def _flip_byte(path: Path, offset: int = 40) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


def test_an_intact_clip_prints_its_checks_and_exits_0(
    bwc: Callable[..., Run], clip_folder: Path, keys: Keys
) -> None:
    run = bwc("verify", str(clip_folder), *keys.args(agency=True))
    assert run.code == 0, run.out
    for check in ("signature", "chain", "segment files", "plaintext"):
        assert check in run.out
    assert "OK:" in run.out


def test_a_tampered_segment_names_the_segment_and_check_and_exits_1(
    bwc: Callable[..., Run], clip_folder: Path, keys: Keys
) -> None:
    _flip_byte(clip_folder / segment_name(2))
    run = bwc("verify", str(clip_folder), *keys.args())
    assert run.code == 1
    assert "FAILED: clip: segment 2: ciphertext sha256" in run.out


def test_the_wrong_agency_key_is_a_failed_data_key_check(
    bwc: Callable[..., Run], clip_folder: Path, keys: Keys, tmp_path: Path
) -> None:
    other = write_key_pair(tmp_path / "other", Role.AGENCY)
    run = bwc("verify", str(clip_folder), *keys.args(), "--agency-key", str(other.private))
    assert run.code == 1
    assert "FAILED: clip: data key: data key is wrapped to agency key" in run.out


def test_a_clip_signed_by_an_unknown_device_key_exits_1(
    bwc: Callable[..., Run], clip_folder: Path, tmp_path: Path
) -> None:
    stranger = write_key_pair(tmp_path / "stranger", Role.DEVICE)
    run = bwc("verify", str(clip_folder), "--device-key", str(stranger.public))
    assert run.code == 1
    assert "signer: signed by an unknown key" in run.out


def test_a_folder_of_trusted_device_keys_finds_the_signer(
    bwc: Callable[..., Run], clip_folder: Path, keys: Keys, tmp_path: Path
) -> None:
    write_key_pair(tmp_path / "keys", Role.DEVICE, "another-camera")
    run = bwc("verify", str(clip_folder), "--device-key", str(tmp_path / "keys"))
    assert run.code == 0, run.out


def test_a_clip_without_a_device_key_is_unusable_input(
    bwc: Callable[..., Run], clip_folder: Path
) -> None:
    run = bwc("verify", str(clip_folder))
    assert run.code == 2
    assert "pass --device-key FILE" in run.err


def test_a_missing_path_exits_2(bwc: Callable[..., Run], tmp_path: Path) -> None:
    run = bwc("verify", str(tmp_path / "nothing"))
    assert (run.code, run.err.strip()) == (2, f"bwc: error: {tmp_path / 'nothing'} does not exist")


def test_an_unrecognisable_file_exits_2(bwc: Callable[..., Run], tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("hello\n")
    run = bwc("verify", str(path))
    assert run.code == 2
    assert "not a clip folder, manifest, receipt or audit log" in run.err


def test_a_manifest_alone_verifies(bwc: Callable[..., Run], clip_folder: Path, keys: Keys) -> None:
    run = bwc("verify", str(clip_folder / "manifest.jsonl"), *keys.args())
    assert run.code == 0, run.out


def test_a_truncated_manifest_is_a_failed_format_check(
    bwc: Callable[..., Run], clip_folder: Path, keys: Keys
) -> None:
    manifest = clip_folder / "manifest.jsonl"
    manifest.write_bytes(manifest.read_bytes()[:-40])
    run = bwc("verify", str(clip_folder), *keys.args())
    assert run.code == 1
    assert "format: manifest: line 6 is truncated" in run.out


def test_a_receipt_is_checked_against_its_manifest(
    bwc: Callable[..., Run], clip_folder: Path, keys: Keys
) -> None:
    manifest = (clip_folder / "manifest.jsonl").read_bytes()
    receipt = issue_receipt(
        load_signing_key(keys.store.private), manifest, evidence_id="EV-1", stored_at_ns=1
    )
    (clip_folder / RECEIPT_NAME).write_bytes(receipt.to_bytes())
    args = [
        "--store-key",
        str(keys.store.public),
        "--manifest",
        str(clip_folder / "manifest.jsonl"),
    ]
    assert bwc("verify", str(clip_folder / RECEIPT_NAME), *args).code == 0
    assert (
        bwc("verify", str(clip_folder), *keys.args(), "--store-key", str(keys.store.public)).code
        == 0
    )


def test_a_forged_receipt_exits_1(
    bwc: Callable[..., Run], clip_folder: Path, keys: Keys, tmp_path: Path
) -> None:
    forger = write_key_pair(tmp_path / "forger", Role.STORE)
    manifest = (clip_folder / "manifest.jsonl").read_bytes()
    receipt = issue_receipt(
        load_signing_key(forger.private), manifest, evidence_id="EV-1", stored_at_ns=1
    )
    path = tmp_path / "receipt.json"
    path.write_bytes(receipt.to_bytes())
    run = bwc("verify", str(path), "--store-key", str(keys.store.public))
    assert run.code == 1
    assert "FAILED: receipt: signer: signed by an unknown key" in run.out


def test_an_audit_log_with_a_broken_link_names_its_seq(
    bwc: Callable[..., Run], keys: Keys, tmp_path: Path
) -> None:
    lines: list[bytes] = []
    writer = AuditWriter.start(
        lines.append, load_signing_key(keys.device.private), actor="cam", wall_ns=1, monotonic_ns=1,
        checkpoint_every=3,
    )  # fmt: skip
    for n in range(7):
        writer.append("cam", "button.press", {"n": n}, wall_ns=n, monotonic_ns=n)
    log = tmp_path / "audit.jsonl"
    log.write_bytes(b"".join(lines))
    assert bwc("verify", str(log), "--device-key", str(keys.device.public)).code == 0
    lines[5] = lines[5].replace(b'"data":{"n":', b'"data":{"n":1')
    log.write_bytes(b"".join(lines))
    run = bwc("verify", str(log), "--device-key", str(keys.device.public))
    assert run.code == 1
    assert "first broken link at seq 6" in run.out


def test_the_real_command_names_the_tampered_segment_and_exits_1(
    clip_folder: Path, keys: Keys
) -> None:
    _flip_byte(clip_folder / segment_name(1))
    bwc_path = Path(sys.executable).parent / "bwc"
    result = subprocess.run(
        [str(bwc_path), "verify", str(clip_folder), *keys.args()],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    assert "segment 1: ciphertext sha256" in result.stdout
    assert "Traceback" not in result.stderr


def test_a_pretty_printed_receipt_is_recognised_and_verifies(
    bwc: Callable[..., Run], clip_folder: Path, keys: Keys, tmp_path: Path
) -> None:
    manifest = (clip_folder / "manifest.jsonl").read_bytes()
    receipt = issue_receipt(
        load_signing_key(keys.store.private), manifest, evidence_id="EV-7", stored_at_ns=5
    )
    path = tmp_path / "from-the-api.json"
    path.write_text(json.dumps(receipt.to_json(), indent=2))
    run = bwc("verify", str(path), "--store-key", str(keys.store.public))
    assert run.code == 0, run.out
