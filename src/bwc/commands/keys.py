"""``bwc keys``: generate and inspect custody key files (docs/formats/keys.md)."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console
from rich.table import Table

from custody.keys import ROLE_ALGORITHM, Role, describe_key_file, write_key_pair


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("keys", help="generate and inspect custody keys")
    keys_sub = parser.add_subparsers(dest="keys_command", metavar="COMMAND", required=True)
    generate = keys_sub.add_parser(
        "generate",
        help="create a key pair: NAME.key.pem (private, 0600) and NAME.pub.pem",
        description="Roles: device (Ed25519 identity, signs manifests), agency (X25519 "
        "recording key: clips are encrypted to it), store (Ed25519, signs receipts), "
        "dock (Ed25519 dock credential), release (Ed25519 agency release key: signs firmware "
        "bundles and configuration profiles).",
    )
    generate.add_argument("--role", required=True, choices=[r.value for r in Role])
    generate.add_argument("--out", required=True, type=Path, metavar="DIR", help="folder to write")
    generate.add_argument("--id", dest="name", metavar="NAME", help="file name (default: ROLE)")
    generate.set_defaults(handler=run_generate)
    show = keys_sub.add_parser("show", help="show a key file's algorithm, key id and public key")
    show.add_argument("file", type=Path, metavar="FILE")
    show.set_defaults(handler=run_show)


def run_generate(args: argparse.Namespace) -> int:
    role = Role(args.role)
    files = write_key_pair(args.out, role, args.name)
    console = Console(highlight=False, soft_wrap=True)
    console.print(f"{role.value} key ({ROLE_ALGORITHM[role]}), key id {files.key_id}")
    console.print(f"private key: {files.private} (mode 0600: keep it secret)")
    console.print(f"public key:  {files.public}")
    return 0


def run_show(args: argparse.Namespace) -> int:
    info = describe_key_file(args.file)
    table = Table(show_header=False, box=None)
    table.add_row("file", str(info.path))
    table.add_row("kind", "private key" if info.private else "public key")
    table.add_row("algorithm", info.algorithm)
    table.add_row("roles", ", ".join(info.roles))
    table.add_row("key id", info.key_id)
    table.add_row("public key", info.public_b64)
    Console(highlight=False, soft_wrap=True).print(table)
    return 0
