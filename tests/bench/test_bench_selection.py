"""``python -m bench.run --only TEXT``: rerun one benchmark without the whole suite."""

from __future__ import annotations

import pytest
from bench.run import BENCHMARKS, parse_args, select


def test_only_selects_the_benchmarks_whose_title_contains_the_text() -> None:
    assert [b.title for b in select("DOCK")] == [b.title for b in BENCHMARKS if "dock" in b.title]
    assert len(select("dock")) == 2


def test_without_only_every_benchmark_runs() -> None:
    assert select(None) == list(BENCHMARKS)


def test_an_only_that_matches_nothing_is_one_clear_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exit_:
        parse_args(["--only", "warp drive"])
    assert exit_.value.code == 2
    assert "--only 'warp drive' matches no benchmark; titles:" in capsys.readouterr().err


def test_only_firmware_selects_the_firmware_install() -> None:
    assert [b.title for b in select("firmware")] == ["firmware install"]
