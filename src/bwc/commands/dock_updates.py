"""``bwc dock firmware stage|list`` and ``bwc dock config push``: updates staged at a running dock.

The dock verifies what it is sent against the agency's release keys, keeps it, and offers it to
each camera after that camera's offload (docs/dock-api.md "Updates"). A bundle is streamed from
the file with a progress bar on stderr; a file the dock refuses is one line naming the check and
exit 1.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table

from bwc.commands.dock_armorer import armorer_command, with_client
from bwc.errors import CliError

if TYPE_CHECKING:
    from bwc.dock_client import DockClient

#: a profile is a few KiB; custody.profile.MAX_PROFILE_BYTES, without loading custody here
MAX_PROFILE_BYTES = 64 * 1024
AFTER = "cameras get it after their next offload"


class Refused(CliError):
    """The dock checked the file and refused it: a check ran and failed."""

    exit_code = 1


def add_update_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    firmware = sub.add_parser("firmware", help="firmware bundles staged at the dock")
    fw_sub = firmware.add_subparsers(dest="firmware_command", metavar="COMMAND", required=True)
    stage = armorer_command(fw_sub, "stage", "send a signed firmware bundle to the dock")
    stage.add_argument("bundle", metavar="BUNDLE", type=Path, help="the signed .fw bundle")
    stage.set_defaults(handler=run_firmware_stage)
    listing = armorer_command(fw_sub, "list", "the firmware and profile staged at the dock")
    listing.add_argument("--json", action="store_true", help="print GET /api/v1/updates as JSON")
    listing.set_defaults(handler=run_firmware_list)

    config = sub.add_parser("config", help="the configuration profile staged at the dock")
    cfg_sub = config.add_subparsers(dest="config_command", metavar="COMMAND", required=True)
    push = armorer_command(cfg_sub, "push", "send a signed configuration profile to the dock")
    push.add_argument("profile", metavar="PROFILE", type=Path, help="the signed profile file")
    push.set_defaults(handler=run_config_push)


def run_firmware_stage(args: argparse.Namespace) -> int:
    bundle: Path = args.bundle
    file, size = _open(bundle, "bundle")

    def stage(client: DockClient) -> int:
        staged = _refusable(lambda: _upload(client, file, size, bundle.name))
        print(
            f"staged firmware {staged['firmware_version']} for {staged['target']} "
            f"({staged['size']} bytes): {AFTER}"
        )
        return 0

    with file:
        return with_client(args, True, stage)


def run_config_push(args: argparse.Namespace) -> int:
    path: Path = args.profile
    file, size = _open(path, "profile")
    with file:
        if size > MAX_PROFILE_BYTES:
            raise Refused(
                f"{path} is {size} bytes, more than the {MAX_PROFILE_BYTES} a profile may have: "
                "is it a signed profile ('bwc profile sign')?"
            )
        data = file.read()

    def push(client: DockClient) -> int:
        staged = _refusable(lambda: client.put_bytes("/api/v1/updates/profile", data))
        print(
            f"staged profile {staged['name']!r} version {staged['profile_version']} "
            f"(id {str(staged['profile_id'])[:12]}): {AFTER}"
        )
        return 0

    return with_client(args, True, push)


def run_firmware_list(args: argparse.Namespace) -> int:
    def listing(client: DockClient) -> int:
        staged = client.get("/api/v1/updates")
        if args.json:
            print(json.dumps(staged, indent=2))
        elif not staged.get("firmware") and not staged.get("profile"):
            print("nothing is staged: 'bwc dock firmware stage' or 'bwc dock config push'")
        else:
            Console(highlight=False).print(updates_table(staged))
        return 0

    return with_client(args, False, listing)


def updates_table(staged: dict[str, Any]) -> Table:
    table = Table(title="staged at the dock (offered to each camera after its offload)")
    for column in ("kind", "for", "version", "size / id", "staged"):
        table.add_column(column)
    for fw in staged.get("firmware") or []:
        table.add_row(
            "firmware", str(fw.get("target", "")), str(fw.get("firmware_version", "")),
            f"{fw.get('size', '')} bytes", _when(fw.get("staged_at_ns")),
        )  # fmt: skip
    profile = staged.get("profile")
    if profile:
        table.add_row(
            "profile", str(profile.get("name", "")), str(profile.get("profile_version", "")),
            str(profile.get("profile_id", ""))[:12], _when(profile.get("staged_at_ns")),
        )  # fmt: skip
    return table


def _open(path: Path, what: str) -> tuple[IO[bytes], int]:
    try:
        file = path.open("rb")
    except OSError as exc:
        raise CliError(f"cannot read the {what} {path}: {exc.strerror}") from exc
    size = path.stat().st_size
    if not path.is_file():
        file.close()
        raise CliError(f"{path} is not a file: give the {what} file")
    return file, size


def _upload(client: DockClient, file: IO[bytes], size: int, name: str) -> dict[str, Any]:
    errors = Console(stderr=True, highlight=False)
    columns = (
        TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
        TimeRemainingColumn(),
    )  # fmt: skip
    with Progress(*columns, console=errors, transient=True) as progress:
        task = progress.add_task(f"sending {name}", total=size)
        return client.put_file(
            "/api/v1/updates/firmware", file, size, lambda n: progress.advance(task, n)
        )


def _refusable(send: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """What ``send()`` answered; a file the dock checked and refused exits 1, not 2."""
    from bwc.dock_client import DockRefused

    try:
        return send()
    except DockRefused as exc:
        if exc.status in {413, 422}:
            raise Refused(str(exc)) from exc
        raise


def _when(at_ns: Any) -> str:
    if not isinstance(at_ns, int):
        return ""
    return datetime.fromtimestamp(at_ns / 1e9, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
