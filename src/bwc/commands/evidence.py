"""``bwc evidence serve`` and ``purge``: the reference evidence store on the embedded backends."""

from __future__ import annotations

import argparse
import getpass
from pathlib import Path

from rich.console import Console

from bwc.errors import CliError
from evidence.config import DEFAULT_PORT, EvidenceConfig
from evidence.errors import EvidenceError

DEFAULT_DATA_DIR = Path("bwc-evidence")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("evidence", help="the reference evidence store: serve, purge")
    evidence_sub = parser.add_subparsers(dest="evidence_command", metavar="COMMAND", required=True)
    serve = evidence_sub.add_parser(
        "serve",
        help="serve the store's HTTP API (SQLite and a local folder, no setup)",
        description="On first run in a fresh data folder this creates the receipt signing key "
        "(keys/store.key.pem), a development token file (tokens.json: one bearer token per "
        "role, mode 0600) and the folder for enrolled device keys "
        '(devices/DEVICE_ID.pub.pem), and says where. Tokens: {"tokens": [{"name": '
        '"bay-1", "role": "dock", "token": "..."}]}; roles: dock (ingest), '
        "records (list and download evidence, categories, legal holds), supervisor "
        "(categories, legal holds), auditor (read retention), admin (purge), officer.",
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on")
    serve.add_argument("--port", type=_port, default=DEFAULT_PORT, help="TCP port")
    serve.add_argument(
        "--data-dir", type=Path, default=DEFAULT_DATA_DIR, metavar="DIR",
        help=f"where the store keeps its data and keys (default: ./{DEFAULT_DATA_DIR})",
    )  # fmt: skip
    serve.add_argument(
        "--purge-every", type=_hours, default=24.0, metavar="HOURS",
        help="purge expired, unheld evidence at start and then every HOURS (0: never; "
        "default: 24)",
    )  # fmt: skip
    serve.set_defaults(handler=run_serve)
    purge = evidence_sub.add_parser(
        "purge",
        help="delete expired evidence that no legal hold protects, keeping tombstones",
        description="Deletes every clip whose retention period has passed and that has no "
        "active legal hold (segments, manifest and metadata), records a tombstone and an audit "
        "record for each, and lists what it purged. Run it daily, e.g. from cron.",
    )
    purge.add_argument(
        "--data-dir", type=Path, default=DEFAULT_DATA_DIR, metavar="DIR",
        help=f"the store's data folder (default: ./{DEFAULT_DATA_DIR})",
    )  # fmt: skip
    purge.set_defaults(handler=run_purge)


def _port(text: str) -> int:
    if not text.isdigit() or not 0 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a TCP port (0..65535)")
    return int(text)


def _hours(text: str) -> float:
    try:
        hours = float(text)
    except ValueError:
        hours = -1.0
    if not 0 <= hours <= 24 * 365:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of hours (0..8760)")
    return hours


def run_serve(args: argparse.Namespace) -> int:
    # Imported here so that other commands do not pay for loading the web stack.
    import uvicorn

    from evidence.api import create_app
    from evidence.retention import PurgeSchedule, RetentionService
    from evidence.store import bootstrap, load_tokens, open_service

    cfg = EvidenceConfig(data_dir=args.data_dir, host=args.host, port=args.port)
    console = Console(highlight=False, soft_wrap=True)
    try:
        done = bootstrap(cfg)
        service = open_service(cfg)
        app = create_app(service, load_tokens(cfg), max_body_bytes=cfg.max_body_bytes)
    except EvidenceError as exc:
        raise CliError(str(exc)) from exc
    for what, path in done.created:
        console.print(f"created {what}: {path}")
    console.print(
        f"enrol a camera by copying its public key to {cfg.devices_path}/DEVICE_ID.pub.pem"
    )
    console.print(f"bearer tokens: {cfg.tokens_path}")
    schedule = None
    if args.purge_every > 0:
        schedule = PurgeSchedule(RetentionService.beside(service), args.purge_every * 3600)
        console.print(f"purging expired evidence every {args.purge_every:g} h")
    console.print(f"serving on http://{cfg.host}:{cfg.port}/v1/ (OpenAPI at /openapi.json)")
    try:
        if schedule is not None:
            schedule.start()
        uvicorn.run(app, host=cfg.host, port=cfg.port, log_level="info")
    finally:
        if schedule is not None:
            schedule.stop()
        service.metadata.close()
    return 0


def run_purge(args: argparse.Namespace) -> int:
    from evidence.retention import RetentionService
    from evidence.store import open_service

    cfg = EvidenceConfig(data_dir=args.data_dir)
    console = Console(highlight=False, soft_wrap=True)
    if not cfg.database_path.is_file():
        raise CliError(
            f"no evidence store in {cfg.data_dir}: "
            "pass the --data-dir that 'bwc evidence serve' uses"
        )
    try:
        service = open_service(cfg)
        try:
            purged = RetentionService.beside(service).purge(f"admin:{_os_user()}")
        finally:
            service.metadata.close()
    except EvidenceError as exc:
        raise CliError(str(exc)) from exc
    for t in purged:
        console.print(f"purged {t.evidence_id} (clip {t.clip_id}, {t.category}): {t.rule}")
    console.print(f"purged {len(purged)} clip(s); tombstones and audit records kept")
    return 0


def _os_user() -> str:
    # The audit log names who ran the purge; a container may have no passwd entry for the uid.
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"
