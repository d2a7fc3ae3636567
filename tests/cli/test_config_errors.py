"""A bad configuration file is one clear line on stderr and exit 2, never a traceback."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tests.cli.conftest import Run


def single_error_line(run: Run) -> str:
    lines = run.err.strip().splitlines()
    assert len(lines) == 1, run.err
    assert lines[0].startswith("bwc: error: ")
    assert "Traceback" not in run.err
    return lines[0]


def test_unknown_adapter_names_the_table_key_and_choices(
    bwc: Callable[..., Run], config_file: Callable[[str], Path]
) -> None:
    run = bwc("hw", "check", "--config", str(config_file('[camera]\nadapter = "nonsense"\n')))
    assert run.code == 2
    line = single_error_line(run)
    assert "[camera] adapter" in line
    assert "'sim'" in line and "'picamera2'" in line
    assert "nonsense" in line


def test_negative_frame_rate_is_refused(
    bwc: Callable[..., Run], config_file: Callable[[str], Path]
) -> None:
    run = bwc("hw", "check", "--config", str(config_file("[camera]\nfps = -5\n")))
    assert run.code == 2
    line = single_error_line(run)
    assert "[camera] fps" in line and "greater than 0" in line and "-5" in line


def test_missing_replay_file_is_refused(
    bwc: Callable[..., Run], config_file: Callable[[str], Path], tmp_path: Path
) -> None:
    missing = tmp_path / "no-such.mp4"
    run = bwc("hw", "check", "--config", str(config_file(f'[camera]\nreplay = "{missing}"\n')))
    assert run.code == 2
    line = single_error_line(run)
    assert "[camera] replay" in line and "does not exist" in line and str(missing) in line


def test_unknown_table_is_refused_with_the_known_ones(
    bwc: Callable[..., Run], config_file: Callable[[str], Path]
) -> None:
    run = bwc("hw", "check", "--config", str(config_file("[camra]\nfps = 30\n")))
    assert run.code == 2
    line = single_error_line(run)
    assert "[camra]" in line and "camera" in line


def test_unknown_key_is_refused(
    bwc: Callable[..., Run], config_file: Callable[[str], Path]
) -> None:
    run = bwc("hw", "check", "--config", str(config_file("[camera]\nframerate = 30\n")))
    assert run.code == 2
    assert "[camera] framerate" in single_error_line(run)


def test_invalid_toml_is_refused(bwc: Callable[..., Run], tmp_path: Path) -> None:
    path = tmp_path / "broken.toml"
    path.write_text("[camera\nfps = 30\n")
    run = bwc("hw", "check", "--config", str(path))
    assert run.code == 2
    assert "not valid TOML" in single_error_line(run)


def test_missing_config_file_is_refused(bwc: Callable[..., Run], tmp_path: Path) -> None:
    run = bwc("hw", "check", "--config", str(tmp_path / "absent.toml"))
    assert run.code == 2
    assert "does not exist" in single_error_line(run)


def test_config_may_come_before_the_subcommand(
    bwc: Callable[..., Run], config_file: Callable[[str], Path]
) -> None:
    run = bwc("--config", str(config_file("[camera]\nfps = 0\n")), "hw", "check")
    assert run.code == 2
    assert "[camera] fps" in single_error_line(run)


def test_commented_example_config_is_valid() -> None:
    import tomllib

    from bwc.config import parse_config

    example = Path(__file__).parents[2] / "docs" / "config.example.toml"
    config = parse_config(tomllib.loads(example.read_text()))
    assert config.hw.camera.adapter == "sim"
    assert len(config.hw.usb.cameras) == 2
