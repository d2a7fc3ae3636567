"""``bwc dock run``: a bad dock configuration is one line and exit 2, before anything starts.

The running dock itself (progress lines, the summary table, a clean stop on SIGTERM) is shown by
tests/dock/test_dock_sigkill.py, whose last dock is ``python -m bwc dock run --sim``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.cli.conftest import Run
from tests.cli.test_config_errors import single_error_line


@pytest.mark.parametrize(
    ("table", "expected"),
    [
        ('[dock.cameras]\n"BWC1-1" = "cam/1"\n', "[dock] cameras: camera BWC1-1: 'cam/1' is not"),
        ('[dock.links]\n"BWC1-1" = "http://127.0.0.1:8080"\n', "camera BWC1-1 is not in cameras"),
        ('[dock.cameras]\n"BWC1-1" = "cam-1"\n[dock.links]\n"BWC1-1" = "ftp://x"\n',
         "is not http://host:port"),
        ("[dock]\npoll_s = 0\n", "[dock] poll_s"),
    ],
)  # fmt: skip
def test_a_bad_dock_table_is_one_line_naming_the_key(
    bwc: Callable[..., Run], config_file: Callable[[str], Path], table: str, expected: str
) -> None:
    run = bwc("dock", "run", "--sim", "--config", str(config_file(table)))
    assert run.code == 2
    assert expected in single_error_line(run)


def test_sim_needs_an_enrolled_camera(
    bwc: Callable[..., Run], config_file: Callable[[str], Path], tmp_path: Path
) -> None:
    config = config_file(f'[dock]\ndata_dir = "{tmp_path / "dock"}"\n')
    run = bwc("dock", "run", "--sim", "--config", str(config))
    assert run.code == 2
    assert "enrol at least one" in single_error_line(run)


def test_sim_needs_a_url_for_every_camera(
    bwc: Callable[..., Run], config_file: Callable[[str], Path], tmp_path: Path
) -> None:
    config = config_file(
        f'[dock]\ndata_dir = "{tmp_path / "dock"}"\n[dock.cameras]\n"BWC1-1" = "cam-1"\n'
    )
    run = bwc("dock", "run", "--sim", "--config", str(config))
    assert run.code == 2
    assert "camera BWC1-1 has no URL: add it to [dock.links]" in single_error_line(run)


def test_a_dock_without_its_key_says_how_to_make_one(
    bwc: Callable[..., Run], config_file: Callable[[str], Path], tmp_path: Path
) -> None:
    config = config_file(
        f'[dock]\ndata_dir = "{tmp_path / "dock"}"\n[dock.cameras]\n"BWC1-1" = "cam-1"\n'
        '[dock.links]\n"BWC1-1" = "http://127.0.0.1:9"\n'
    )
    run = bwc("dock", "run", "--sim", "--config", str(config))
    assert run.code == 2
    assert "bwc keys generate --role dock" in single_error_line(run)
