"""The ingest peer's HTTP sink takes any upload and counts exactly what it received."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import requests
from bench.servers import Sink, running_sink

TIMEOUT = 10


@pytest.fixture(scope="module")
def sink() -> Iterator[Sink]:
    with running_sink() as running:
        yield running


def stats(sink: Sink) -> dict[str, int]:
    counted: dict[str, int] = requests.get(f"{sink.url}/stats", timeout=TIMEOUT).json()
    return counted


def test_the_sink_counts_every_uploaded_byte_over_one_connection(sink: Sink) -> None:
    before = stats(sink)
    bodies = [os.urandom(n) for n in (0, 1, 1 << 20, 3 * (1 << 20) + 7)]
    with requests.Session() as session:
        for n, body in enumerate(bodies):
            method = session.put if n % 2 else session.post
            answer = method(f"{sink.url}/clip/{n}", data=body, timeout=TIMEOUT)
            assert answer.status_code == 200
            assert answer.content == b""
    after = stats(sink)
    assert after["requests"] - before["requests"] == len(bodies)
    assert after["bytes"] - before["bytes"] == sum(map(len, bodies))
