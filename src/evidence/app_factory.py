"""The API built from a configuration, in-process or as uvicorn's import string for workers.

``bwc evidence serve --workers N`` validates the configuration, bootstraps the data folder and
opens the store once in its own process, then hands uvicorn
``evidence.app_factory:create_app_from_env``. Every worker process calls that factory, which
reads the ``[evidence]`` settings the parent put in :data:`CONFIG_ENV` (the file's table with
the command-line flags applied, as JSON) and validates them with the same model: every worker
serves exactly what the parent checked, even one uvicorn restarts after the file was edited.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI
from pydantic import ValidationError

from evidence.agency_keys import open_agency_key
from evidence.api import create_app
from evidence.config import EvidenceConfig
from evidence.errors import StoreSetupError
from evidence.ingest import IngestService
from evidence.playback import PlaybackService
from evidence.store import load_tokens, open_service

#: the environment variable that carries the workers' settings
CONFIG_ENV = "BWC_EVIDENCE_CONFIG"
#: what uvicorn imports in each worker process
FACTORY = "evidence.app_factory:create_app_from_env"


def build_app(cfg: EvidenceConfig) -> tuple[FastAPI, IngestService]:
    """The API over the store ``cfg`` names, and the service under it (close its metadata)."""
    service = open_service(cfg)
    try:
        playback = PlaybackService.beside(service, open_agency_key(cfg))
        app = create_app(
            service, load_tokens(cfg), max_body_bytes=cfg.max_body_bytes, playback=playback,
            denied_per_minute=cfg.denied_per_minute,
        )  # fmt: skip
    except BaseException:
        service.metadata.close()
        raise
    return app, service


def worker_environment(settings: Mapping[str, Any]) -> dict[str, str]:
    """The environment entry that passes ``settings`` (a raw ``[evidence]`` table) to workers."""
    # default=str: paths given on the command line are Path objects; the model reads strings.
    return {CONFIG_ENV: json.dumps(dict(settings), default=str)}


def config_from_env(environ: Mapping[str, str] = os.environ) -> EvidenceConfig:
    """The configuration the parent process put in :data:`CONFIG_ENV`, validated."""
    text = environ.get(CONFIG_ENV)
    if text is None:
        raise StoreSetupError(
            f"{CONFIG_ENV} is not set: start the API workers with 'bwc evidence serve --workers N'"
        )
    try:
        return EvidenceConfig.model_validate_json(text)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(part) for part in first["loc"]) or "settings"
        raise StoreSetupError(
            f"{CONFIG_ENV}: {where}: {first['msg']}: start the workers with 'bwc evidence serve'"
        ) from exc


def create_app_from_env() -> FastAPI:
    """uvicorn's app factory in each worker: the API over the store :data:`CONFIG_ENV` names.

    The worker's SQLite connection is released when the worker process exits; every committed
    transaction is already durable in the write-ahead log by then.
    """
    app, _service = build_app(config_from_env())
    return app
