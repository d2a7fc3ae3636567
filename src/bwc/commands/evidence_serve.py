"""``bwc evidence serve``: the store's HTTP API, in one process or in several sharing one store.

One process (the default) serves the app built here. With ``--workers N`` uvicorn binds the port
once and starts N worker processes that each build the app from
:data:`evidence.app_factory.FACTORY`; this process supervises them. Either way this process
validates the configuration, bootstraps the data folder and opens the store before any request
is served, so a bad key or token file is one line here rather than one traceback per worker, and
the audit log's first record is written once, not raced by N workers.

The scheduled purge runs in this process only, in a thread. It is the one process that lives as
long as the deployment on this host and serves no requests; a purge in every worker would run N
times per interval, and uvicorn restarts a dead worker, which would restart its schedule too.
Two purges at once would still be safe (each deletion re-checks expiry and holds in one
transaction), only wasteful, so hosts that share a database may all run it or pass
``--purge-every 0`` on all but one.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console

from bwc.config import parse_config, read_config, with_overrides
from bwc.errors import CliError
from evidence.config import EvidenceConfig
from evidence.errors import EvidenceError


@dataclass(frozen=True)
class StoreSettings:
    config: EvidenceConfig  #: validated
    table: dict[str, Any]  #: the ``[evidence]`` table with the flags applied: what workers read


def load_store_settings(path: Path | None, flags: Mapping[str, object]) -> StoreSettings:
    """The ``[evidence]`` table of ``path`` (if any), with every flag that was given winning."""
    given = {key: value for key, value in flags.items() if value is not None}
    raw = with_overrides(read_config(path), {"evidence": given})
    config = parse_config(raw, source=str(path) if path is not None else "command line").evidence
    # The default data folder is filled in by parse_config; the workers must get it too.
    table = {**raw.get("evidence", {}), "data_dir": config.data_dir}
    return StoreSettings(config, table)


def serve(settings: StoreSettings, *, workers: int, purge_every_h: float) -> int:
    # Imported here so that other commands do not pay for loading the web stack.
    import uvicorn

    from evidence.app_factory import FACTORY, build_app, worker_environment
    from evidence.metrics import multiprocess_environment
    from evidence.retention import PurgeSchedule, RetentionService
    from evidence.store import bootstrap
    from evidence.sweep import SWEEP_ACTOR

    cfg = settings.config
    console = Console(highlight=False, soft_wrap=True)
    try:
        done = bootstrap(cfg)
        # With workers, each counts into one metrics folder and a scrape sums them all.
        metrics_env = multiprocess_environment(cfg.data_dir) if workers > 1 else {}
        # Built even when workers serve: each worker builds the same, so it fails here first.
        app, service = build_app(cfg)
    except EvidenceError as exc:
        raise CliError(str(exc)) from exc
    try:
        # Blobs that a crashed or refused purge left go before anything is served (once, here
        # in the supervising process, not in every worker); see evidence.sweep.
        RetentionService.beside(service).sweep(SWEEP_ACTOR)
        schedule = None
        if purge_every_h > 0:
            schedule = PurgeSchedule(RetentionService.beside(service), purge_every_h * 3600)
        _print_banner(console, cfg, done.created, workers, purge_every_h)
        try:
            if schedule is not None:
                schedule.start()
            if workers == 1:
                uvicorn.run(app, host=cfg.host, port=cfg.port, log_level="info")
            else:
                with _environment({**worker_environment(settings.table), **metrics_env}):
                    uvicorn.run(
                        FACTORY, factory=True, workers=workers, host=cfg.host, port=cfg.port,
                        log_level="info",
                    )  # fmt: skip
        finally:
            if schedule is not None:
                schedule.stop()
    finally:
        service.metadata.close()
    return 0


def _print_banner(
    console: Console,
    cfg: EvidenceConfig,
    created: list[tuple[str, Path]],
    workers: int,
    purge_every_h: float,
) -> None:
    for what, path in created:
        console.print(f"created {what}: {path}")
    console.print(
        f"enrol a camera by copying its public key to {cfg.devices_path}/DEVICE_ID.pub.pem"
    )
    console.print(f"bearer tokens: {cfg.tokens_path}")
    if purge_every_h > 0:
        where = " (in this supervising process)" if workers > 1 else ""
        console.print(f"purging expired evidence every {purge_every_h:g} h{where}")
    processes = f" with {workers} API processes" if workers > 1 else ""
    console.print(
        f"serving on http://{cfg.host}:{cfg.port}/v1/{processes} (OpenAPI at /openapi.json)"
    )


@contextmanager
def _environment(values: Mapping[str, str]) -> Iterator[None]:
    """``values`` in this process's environment (which the workers inherit) until the end."""
    before = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, old in before.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old
