"""``bwc evidence serve|purge --config FILE``: the ``[evidence]`` table, with flags winning over it.

The same settings reach every API worker through one environment variable, validated again
by the same model there.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from bwc.commands.evidence_serve import load_store_settings
from bwc.config import DEFAULT_EVIDENCE_DIR, load_config
from bwc.errors import CliError
from evidence.app_factory import CONFIG_ENV, config_from_env, worker_environment
from evidence.errors import StoreSetupError
from tests.cli.conftest import Run
from tests.cli.test_config_errors import single_error_line

NO_FLAGS: dict[str, object] = {"data_dir": None, "host": None, "port": None}


@pytest.fixture
def evidence_toml(tmp_path: Path) -> Callable[[str], Path]:
    def write(body: str) -> Path:
        path = tmp_path / "bwc.toml"
        path.write_text(body)
        return path

    return write


def test_the_evidence_table_configures_the_store(
    evidence_toml: Callable[[str], Path], tmp_path: Path
) -> None:
    path = evidence_toml(
        f'[evidence]\ndata_dir = "{tmp_path / "s"}"\nhost = "0.0.0.0"\nport = 9000\n'
        "[evidence.retention]\ndays = { routine = 30 }\ndefault_category = 'routine'\n"
    )
    cfg = load_store_settings(path, NO_FLAGS).config
    assert (cfg.data_dir, cfg.host, cfg.port) == (tmp_path / "s", "0.0.0.0", 9000)
    assert cfg.retention.days == {"routine": 30}


def test_flags_win_over_the_file(evidence_toml: Callable[[str], Path], tmp_path: Path) -> None:
    path = evidence_toml('[evidence]\ndata_dir = "from-file"\nport = 9000\n')
    cfg = load_store_settings(path, {**NO_FLAGS, "port": 9001, "data_dir": tmp_path}).config
    assert (cfg.port, cfg.data_dir) == (9001, tmp_path)


def test_without_file_or_flag_the_store_lives_in_the_default_folder() -> None:
    assert load_store_settings(None, NO_FLAGS).config.data_dir == DEFAULT_EVIDENCE_DIR


def test_a_bad_value_in_the_evidence_table_is_one_line_naming_the_key(
    evidence_toml: Callable[[str], Path],
) -> None:
    path = evidence_toml("[evidence]\nport = 70000\n")
    with pytest.raises(CliError, match=r"bwc\.toml: \[evidence\] port: .*65535.*70000"):
        load_store_settings(path, NO_FLAGS)


def test_an_unknown_key_in_the_evidence_table_is_refused(
    bwc: Callable[..., Run], evidence_toml: Callable[[str], Path]
) -> None:
    run = bwc("evidence", "serve", "--config", str(evidence_toml("[evidence]\nworkers = 4\n")))
    assert run.code == 2
    assert "[evidence] workers" in single_error_line(run)


def test_the_one_config_file_holds_the_evidence_table_beside_the_others(
    config_file: Callable[[str], Path],
) -> None:
    config = load_config(config_file("[camera]\nfps = 25\n[evidence]\nport = 9000\n"))
    assert (config.hw.camera.fps, config.evidence.port) == (25, 9000)
    assert config.evidence.data_dir == DEFAULT_EVIDENCE_DIR


def test_purge_uses_the_data_folder_the_config_names(
    bwc: Callable[..., Run], evidence_toml: Callable[[str], Path], tmp_path: Path
) -> None:
    missing = tmp_path / "no-store"
    run = bwc(
        "evidence", "purge", "--config", str(evidence_toml(f'[evidence]\ndata_dir = "{missing}"\n'))
    )
    assert run.code == 2
    assert f"no evidence store in {missing}" in single_error_line(run)


@pytest.mark.parametrize("workers", ["0", "65", "two"])
def test_a_bad_number_of_workers_is_refused(bwc: Callable[..., Run], workers: str) -> None:
    with pytest.raises(SystemExit) as exited:
        bwc("evidence", "serve", "--workers", workers)
    assert exited.value.code == 2


def test_workers_get_exactly_the_settings_the_parent_validated(
    evidence_toml: Callable[[str], Path], tmp_path: Path
) -> None:
    # The raw table travels, not a dump of the model: a dump would mask the secret as "****".
    path = evidence_toml(
        f'[evidence]\ndata_dir = "{tmp_path}"\nmax_body_bytes = 4096\n'
        "[evidence.retention]\ndays = { routine = 30, investigation = 548 }\n"
        '[evidence.s3]\nbucket = "evidence"\naccess_key_id = "AK"\nsecret_access_key = "SK"\n'
    )
    settings = load_store_settings(path, {**NO_FLAGS, "port": 9001})
    assert config_from_env(worker_environment(settings.table)) == settings.config


def test_a_worker_started_without_the_settings_says_how_to_start_it() -> None:
    with pytest.raises(StoreSetupError, match="bwc evidence serve --workers N"):
        config_from_env({})


def test_a_worker_given_bad_settings_names_the_key() -> None:
    with pytest.raises(StoreSetupError, match=f"{CONFIG_ENV}: port"):
        config_from_env({CONFIG_ENV: '{"data_dir": "x", "port": -1}'})
