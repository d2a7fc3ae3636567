"""What is particular to the PostgreSQL backend: how it is chosen and how it fails to open."""

from __future__ import annotations

import pytest

from evidence.config import EvidenceConfig
from evidence.errors import StoreSetupError
from evidence.postgres_store import PostgresMetadataStore
from evidence.store import open_metadata
from tests.evidence.pg_server import PASSWORD, PgCluster, free_port

SECRET = "s3cret-Pa55word"


def setup_error(url: str) -> str:
    with pytest.raises(StoreSetupError) as caught:
        PostgresMetadataStore(url)
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_a_configured_database_url_opens_postgresql(cfg: EvidenceConfig, pg_url: str) -> None:
    store = open_metadata(cfg.model_copy(update={"database_url": pg_url}))
    try:
        assert isinstance(store, PostgresMetadataStore)
    finally:
        store.close()


def test_an_unreachable_server_is_one_line_without_the_password() -> None:
    port = free_port()
    message = setup_error(f"postgresql://bwc:{SECRET}@127.0.0.1:{port}/evidence")
    assert f"postgresql://bwc:***@127.0.0.1:{port}/evidence" in message
    assert "check database_url and that the server is running" in message
    assert SECRET not in message


def test_a_malformed_url_is_one_line_without_the_password() -> None:
    message = setup_error(f"postgresql://bwc:{SECRET}@127.0.0.1:notaport/evidence")
    assert "port" in message
    assert SECRET not in message


def test_a_wrong_password_is_refused_without_showing_it(pg_cluster: PgCluster) -> None:
    message = setup_error(pg_cluster.url(password=SECRET))
    assert "password authentication failed" in message
    assert SECRET not in message


def test_the_password_may_come_from_pgpassword(
    pg_cluster: PgCluster, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PGPASSWORD", PASSWORD)
    dbname = pg_url.rsplit("/", 1)[1]
    store = PostgresMetadataStore(pg_cluster.url(dbname, password=None))
    try:
        assert store.audit_log() == b""
    finally:
        store.close()
