"""``bwc firmware`` and ``bwc profile``: the release side builds, signs and verifies updates."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from custody import vectors_release
from custody.keys import public_pem
from tests.cli.conftest import Run

RUN_TIMEOUT_S = 60


@pytest.fixture
def keys(bwc: Callable[..., Run], tmp_path: Path) -> Path:
    folder = tmp_path / "keys"
    assert bwc("keys", "generate", "--role", "release", "--out", str(folder)).code == 0
    return folder


@pytest.fixture
def payload(tmp_path: Path) -> Path:
    folder = tmp_path / "payload"
    (folder / "bin").mkdir(parents=True)
    (folder / "bin" / "bwc-firmware").write_bytes(b"#!/bin/sh\nexec true\n" * 100)
    (tmp_path / "notes.txt").write_text("Fixes the reminder tone.\n", encoding="utf-8")
    return folder


def _bwc(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bwc", *argv],
        capture_output=True, text=True, timeout=RUN_TIMEOUT_S, check=False,
    )  # fmt: skip


def _build_and_sign(keys: Path, payload: Path, bundle: Path) -> None:
    notes = payload.parent / "notes.txt"
    for argv in (
        ["firmware", "build", "--version", "1.2.0", "--target", "sim", "--min-version", "1.0.0",
         "--notes", str(notes), "--out", str(bundle), str(payload)],
        ["firmware", "sign", "--key", str(keys / "release.key.pem"), str(bundle)],
    ):  # fmt: skip
        done = _bwc(*argv)
        assert done.returncode == 0, done.stderr


def test_a_built_and_signed_bundle_verifies_in_a_real_process(
    keys: Path, payload: Path, tmp_path: Path
) -> None:
    bundle = tmp_path / "fw.bwcfw"
    _build_and_sign(keys, payload, bundle)
    done = _bwc(
        "firmware", "verify", "--key", str(keys / "release.pub.pem"), "--target", "sim",
        "--current", "1.1.0", str(bundle),
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "every check holds" in done.stdout
    assert "payload hashes" in done.stdout


def test_a_tampered_bundle_fails_naming_the_check_in_a_real_process(
    keys: Path, payload: Path, tmp_path: Path
) -> None:
    bundle = tmp_path / "fw.bwcfw"
    _build_and_sign(keys, payload, bundle)
    data = bytearray(bundle.read_bytes())
    data[-5] ^= 0x01
    bundle.write_bytes(bytes(data))
    done = _bwc("firmware", "verify", "--key", str(keys / "release.pub.pem"), str(bundle))
    assert done.returncode == 1
    assert "FAILED: firmware bundle fw.bwcfw: payload hashes: bin/bwc-firmware" in done.stdout


def test_verify_against_another_release_key_fails_signer(
    bwc: Callable[..., Run], keys: Path, tmp_path: Path
) -> None:
    bundle = tmp_path / "vector.bwcfw"
    bundle.write_bytes(vectors_release.bundle_bytes(vectors_release.release()))
    run = bwc("firmware", "verify", "--key", str(keys / "release.pub.pem"), str(bundle))
    assert run.code == 1
    assert "FAILED: firmware bundle vector.bwcfw: signer" in run.out


def test_a_bundle_for_other_hardware_fails_target(bwc: Callable[..., Run], tmp_path: Path) -> None:
    bundle = tmp_path / "vector.bwcfw"
    bundle.write_bytes(vectors_release.bundle_bytes(vectors_release.release()))
    pub = tmp_path / "release.pub.pem"
    pub.write_bytes(public_pem(vectors_release.release()))
    run = bwc("firmware", "verify", "--key", str(pub), "--target", "rpi-zero2w", str(bundle))
    assert run.code == 1
    assert "FAILED: firmware bundle vector.bwcfw: target" in run.out


def test_a_missing_bundle_is_one_line_and_exit_2(
    bwc: Callable[..., Run], keys: Path, tmp_path: Path
) -> None:
    run = bwc("firmware", "verify", "--key", str(keys / "release.pub.pem"), str(tmp_path / "no"))
    assert run.code == 2
    assert run.err.count("\n") == 1 and run.err.startswith("bwc: error: cannot read")


def test_a_bad_version_is_one_line_and_exit_2(
    bwc: Callable[..., Run], payload: Path, tmp_path: Path
) -> None:
    run = bwc(
        "firmware", "build", "--version", "1.2", "--target", "sim", "--min-version", "1.0.0",
        "--notes", str(tmp_path / "notes.txt"), "--out", str(tmp_path / "fw"), str(payload),
    )  # fmt: skip
    assert run.code == 2
    assert run.err.count("\n") == 1 and "MAJOR.MINOR.PATCH" in run.err
    assert not (tmp_path / "fw").exists()


def test_a_missing_required_option_is_a_usage_error_exit_2(
    bwc: Callable[..., Run], payload: Path
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        bwc("firmware", "build", "--target", "sim", str(payload))
    assert exit_info.value.code == 2


def test_signing_with_an_agency_key_is_refused(bwc: Callable[..., Run], tmp_path: Path) -> None:
    bwc("keys", "generate", "--role", "agency", "--out", str(tmp_path))
    bundle = tmp_path / "fw.bwcfw"
    bundle.write_bytes(vectors_release.bundle_bytes(None))
    run = bwc("firmware", "sign", "--key", str(tmp_path / "agency.key.pem"), str(bundle))
    assert run.code == 2
    assert "signing (Ed25519) key is needed" in run.err


def _draft(tmp_path: Path, **changes: object) -> Path:
    path = tmp_path / "patrol.json"
    settings = {**vectors_release.SETTINGS, **changes}
    draft = {"name": "patrol", "profile_version": 1, "settings": settings}
    path.write_text(json.dumps(draft, indent=2), encoding="utf-8")
    return path


def test_a_signed_profile_verifies(bwc: Callable[..., Run], keys: Path, tmp_path: Path) -> None:
    profile = _draft(tmp_path)
    signed = bwc("profile", "sign", "--key", str(keys / "release.key.pem"), str(profile))
    assert signed.code == 0, signed.err
    run = bwc("profile", "verify", "--key", str(keys / "release.pub.pem"), str(profile))
    assert run.code == 0
    assert "every check holds" in run.out


def test_a_profile_with_an_out_of_range_value_is_not_signed(
    bwc: Callable[..., Run], keys: Path, tmp_path: Path
) -> None:
    profile = _draft(tmp_path, video_fps=240)
    before = profile.read_bytes()
    run = bwc("profile", "sign", "--key", str(keys / "release.key.pem"), str(profile))
    assert run.code == 2
    assert run.err.count("\n") == 1 and "video_fps = 240 is out of range" in run.err
    assert profile.read_bytes() == before


def test_an_edited_signed_profile_fails_signature(
    bwc: Callable[..., Run], keys: Path, tmp_path: Path
) -> None:
    profile = _draft(tmp_path)
    bwc("profile", "sign", "--key", str(keys / "release.key.pem"), str(profile))
    text = profile.read_text(encoding="utf-8").replace('"video_fps":30', '"video_fps":60')
    profile.write_text(text, encoding="utf-8")
    run = bwc("profile", "verify", "--key", str(keys / "release.pub.pem"), str(profile))
    assert run.code == 1
    assert "FAILED: profile: signature" in run.out
