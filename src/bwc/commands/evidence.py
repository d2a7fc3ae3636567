"""``bwc evidence serve`` and ``purge``: the reference evidence store on the embedded backends."""

from __future__ import annotations

import argparse
import getpass
from pathlib import Path

from rich.console import Console

from bwc.commands import evidence_report
from bwc.commands.evidence_serve import load_store_settings, serve
from bwc.commands.options import add_config_option
from bwc.config import DEFAULT_EVIDENCE_DIR
from bwc.errors import CliError
from evidence.config import DEFAULT_PORT
from evidence.errors import EvidenceError

DEFAULT_DATA_DIR = DEFAULT_EVIDENCE_DIR
MAX_WORKERS = 64
CONFIG_HELP = "TOML configuration file; its [evidence] table configures the store"


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("evidence", help="the reference evidence store: serve, purge, report")
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
        "(categories, legal holds), auditor (read retention), admin (purge), officer. "
        "Settings come from the [evidence] table of --config FILE; the flags below win over it.",
    )
    add_config_option(serve, CONFIG_HELP)
    serve.add_argument(
        "--host", help="address to listen on (default: [evidence] host, else 127.0.0.1)"
    )
    serve.add_argument(
        "--port", type=_port, help=f"TCP port (default: [evidence] port, else {DEFAULT_PORT})"
    )
    serve.add_argument(
        "--data-dir", type=Path, metavar="DIR",
        help="where the store keeps its data and keys "
        f"(default: [evidence] data_dir, else ./{DEFAULT_DATA_DIR})",
    )  # fmt: skip
    serve.add_argument(
        "--workers", type=_workers, default=1, metavar="N",
        help="API processes sharing the one store (default: 1); the scheduled purge runs in "
        "the supervising process only",
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
    add_config_option(purge, CONFIG_HELP)
    purge.add_argument(
        "--data-dir", type=Path, metavar="DIR",
        help=f"the store's data folder (default: [evidence] data_dir, else ./{DEFAULT_DATA_DIR})",
    )  # fmt: skip
    purge.set_defaults(handler=run_purge)
    evidence_report.add_parser(evidence_sub, DEFAULT_DATA_DIR)


def _port(text: str) -> int:
    if not text.isdigit() or not 0 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a TCP port (0..65535)")
    return int(text)


def _workers(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= MAX_WORKERS:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a number of processes (1..{MAX_WORKERS})"
        )
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
    flags = {"data_dir": args.data_dir, "host": args.host, "port": args.port}
    settings = load_store_settings(getattr(args, "config", None), flags)
    return serve(settings, workers=args.workers, purge_every_h=args.purge_every)


def run_purge(args: argparse.Namespace) -> int:
    from evidence.retention import RetentionService
    from evidence.store import open_service

    cfg = load_store_settings(getattr(args, "config", None), {"data_dir": args.data_dir}).config
    console = Console(highlight=False, soft_wrap=True)
    if not cfg.has_local_store:
        raise CliError(
            f"no evidence store in {cfg.data_dir}: "
            "pass the --data-dir that 'bwc evidence serve' uses"
        )
    try:
        service = open_service(cfg)
        try:
            retention = RetentionService.beside(service)
            purged = retention.purge(f"admin:{_os_user()}")
        finally:
            service.metadata.close()
    except EvidenceError as exc:
        raise CliError(str(exc)) from exc
    for t in purged:
        console.print(f"purged {t.evidence_id} (clip {t.clip_id}, {t.category}): {t.rule}")
    console.print(f"purged {len(purged)} clip(s); tombstones and audit records kept")
    sweep = retention.last_sweep
    if sweep is not None and sweep.failed:
        # The purge itself succeeded: what is left are bytes no record points at any more.
        console.print(
            f"{len(sweep.failed)} blob(s) of purged clips could not be deleted yet (first: "
            f"{sweep.failed[0].key}: {sweep.failed[0].reason}); the next purge retries them"
        )
    return 0


def _os_user() -> str:
    # The audit log names who ran the purge; a container may have no passwd entry for the uid.
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"
