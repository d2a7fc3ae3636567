"""``bwc evidence serve``: the reference evidence store on the embedded backends."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console

from bwc.errors import CliError
from evidence.config import DEFAULT_PORT, EvidenceConfig
from evidence.errors import EvidenceError

DEFAULT_DATA_DIR = Path("bwc-evidence")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("evidence", help="serve the reference evidence store")
    evidence_sub = parser.add_subparsers(dest="evidence_command", metavar="COMMAND", required=True)
    serve = evidence_sub.add_parser(
        "serve",
        help="serve the store's HTTP API (SQLite and a local folder, no setup)",
        description="On first run in a fresh data folder this creates the receipt signing key "
        "(keys/store.key.pem), a development token file (tokens.json: one 'dock' and one "
        "'records' bearer token, mode 0600) and the folder for enrolled device keys "
        '(devices/DEVICE_ID.pub.pem), and says where. Tokens: {"tokens": [{"name": '
        '"bay-1", "role": "dock", "token": "..."}]}; roles: dock (ingest), '
        "records (list and download evidence).",
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on")
    serve.add_argument("--port", type=_port, default=DEFAULT_PORT, help="TCP port")
    serve.add_argument(
        "--data-dir", type=Path, default=DEFAULT_DATA_DIR, metavar="DIR",
        help=f"where the store keeps its data and keys (default: ./{DEFAULT_DATA_DIR})",
    )  # fmt: skip
    serve.set_defaults(handler=run_serve)


def _port(text: str) -> int:
    if not text.isdigit() or not 0 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a TCP port (0..65535)")
    return int(text)


def run_serve(args: argparse.Namespace) -> int:
    # Imported here so that other commands do not pay for loading the web stack.
    import uvicorn

    from evidence.api import create_app
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
    console.print(f"serving on http://{cfg.host}:{cfg.port}/v1/ (OpenAPI at /openapi.json)")
    try:
        uvicorn.run(app, host=cfg.host, port=cfg.port, log_level="info")
    finally:
        service.metadata.close()
    return 0
