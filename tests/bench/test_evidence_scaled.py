"""The scaled-backend ingest figure's parts: its store configuration, PostgreSQL, no-value figures.

The figure itself is run by the smoke test (``test_bench_quick``); these check what it is built
on, quickly, and the path that ``make bench`` takes on a machine without PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from bench.evidence import SIZES, WORKERS
from bench.evidence_scaled import BACKEND, store_toml, unmeasured
from bench.pg_target import PgTarget, running_postgres

from bwc.config import load_config


@pytest.fixture(scope="module")
def postgres() -> Iterator[PgTarget]:
    with running_postgres() as target:
        if not isinstance(target, PgTarget):
            pytest.skip(f"no PostgreSQL: {target.reason}")
        yield target


def test_the_run_config_puts_metadata_in_postgres_and_blobs_in_the_bucket(tmp_path: Path) -> None:
    url = "postgresql://postgres@127.0.0.1:5999/r0_1"
    path = tmp_path / "run.toml"
    path.write_text(store_toml(url, "http://127.0.0.1:8333", "bench-r0-1"), encoding="utf-8")

    evidence = load_config(path).evidence

    assert evidence.database_url == url
    assert evidence.s3 is not None
    assert (evidence.s3.endpoint_url, evidence.s3.bucket) == ("http://127.0.0.1:8333", "bench-r0-1")
    assert evidence.s3.access_key_id is not None and evidence.s3.secret_access_key is not None


def test_each_new_database_is_empty_and_takes_connections(postgres: PgTarget) -> None:
    first, second = postgres.new_database("a1"), postgres.new_database("a2")
    with psycopg.connect(first, autocommit=True) as db:
        db.execute("CREATE TABLE t (n INTEGER)")
    with psycopg.connect(second) as db:
        tables = db.execute("SELECT count(*) FROM pg_tables WHERE tablename = 't'").fetchone()
    assert first != second
    assert tables == (0,)


def test_the_cluster_reports_the_cpu_its_backends_spend(postgres: PgTarget) -> None:
    before = postgres.cpu_s()
    with psycopg.connect(postgres.url()) as db:
        db.execute("SELECT count(*) FROM generate_series(1, 3000000)").fetchone()
    assert postgres.cpu_s() > before


def test_without_postgres_every_scaled_figure_is_reported_with_no_value_and_why() -> None:
    figures = unmeasured(SIZES["smoke"], "PostgreSQL is not installed: run 'make setup' (as root)")

    assert [f.name.rsplit(", ", 1)[1] for f in figures] == [
        "1 process", "1 process", f"{WORKERS} processes", f"{WORKERS} processes"
    ]  # fmt: skip
    for figure in figures:
        assert BACKEND in figure.name
        assert (figure.value, figure.peer_value, figure.ratio) == (None, None, None)
        assert "peer not measured" in figure.note
    assert "PostgreSQL is not installed: run 'make setup'" in figures[0].note
