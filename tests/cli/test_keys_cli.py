"""``bwc keys``: generate key pairs with safe file modes, and show what a key file holds."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from bwc.cli import main
from custody.keys import key_id, load_public_key


def test_generate_writes_a_0600_private_key_and_prints_its_id(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        main(["keys", "generate", "--role", "device", "--out", str(tmp_path), "--id", "cam-1"]) == 0
    )
    private = tmp_path / "cam-1.key.pem"
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert key_id(load_public_key(tmp_path / "cam-1.pub.pem")) in capsys.readouterr().out


def test_show_names_algorithm_and_key_id(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    main(["keys", "generate", "--role", "agency", "--out", str(tmp_path)])
    capsys.readouterr()
    assert main(["keys", "show", str(tmp_path / "agency.pub.pem")]) == 0
    out = capsys.readouterr().out
    assert "X25519" in out and "public key" in out
    assert key_id(load_public_key(tmp_path / "agency.pub.pem")) in out


def test_generating_over_an_existing_key_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    main(["keys", "generate", "--role", "store", "--out", str(tmp_path)])
    assert main(["keys", "generate", "--role", "store", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("bwc: error: ") and "already exists" in err and err.count("\n") == 1


def test_showing_a_world_readable_private_key_says_to_chmod_600(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    main(["keys", "generate", "--role", "dock", "--out", str(tmp_path)])
    private = tmp_path / "dock.key.pem"
    private.chmod(0o644)
    assert main(["keys", "show", str(private)]) == 2
    assert f"run 'chmod 600 {private}'" in capsys.readouterr().err
