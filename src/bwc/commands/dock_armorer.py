"""``bwc dock status|assign|retry|quarantine``: the armorer's commands, against a running dock.

Each talks to the dock's local API (docs/dock-api.md) through :mod:`bwc.dock_client`; a dock that
is not running is one line and exit 2. ``status --watch`` redraws the table every second until
Ctrl-C.
"""

from __future__ import annotations

import argparse
import json
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from bwc.commands.options import add_config_option
from bwc.config import load_config

if TYPE_CHECKING:
    from bwc.dock_client import DockClient

WATCH_EVERY_S = 1.0
WIDE = 200  # columns of the table when stdout is not a terminal
SHORT_ERROR = 40  # characters of an update's error in the table; --json has the whole line

_STATE_STYLE = {
    "done": "green",
    "offloading": "cyan",
    "updating": "cyan",
    "identifying": "yellow",
    "needs_attention": "bold red",
    "left": "dim",
}


def add_armorer_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    status = armorer_command(sub, "status", "every bay: camera, officer, battery, clips, progress")
    status.add_argument("--watch", action="store_true", help="redraw every second until Ctrl-C")
    status.add_argument("--json", action="store_true", help="print GET /api/v1/bays as JSON")
    status.set_defaults(handler=run_status)

    assign = armorer_command(
        sub, "assign", "assign a camera to an officer (now if docked, else later)"
    )
    assign.add_argument("serial", metavar="SERIAL", help="the camera's USB serial")
    assign.add_argument("officer", metavar="OFFICER", help="the officer's id")
    assign.set_defaults(handler=run_assign)

    retry = armorer_command(sub, "retry", "clips waiting for a retry try again now")
    retry.add_argument("serial", metavar="SERIAL", nargs="?", help="one camera (default: all)")
    retry.set_defaults(handler=run_retry)

    quarantine = armorer_command(sub, "quarantine", "clips that failed a check (never erased)")
    q_sub = quarantine.add_subparsers(dest="quarantine_command", metavar="COMMAND", required=True)
    listing = armorer_command(q_sub, "list", "list quarantined clips with why")
    listing.add_argument("--json", action="store_true", help="print the list as JSON")
    listing.set_defaults(handler=run_quarantine_list)
    release = armorer_command(q_sub, "release", "fetch a quarantined clip again; every check again")
    release.add_argument("id", metavar="ID", type=int, help="the id 'quarantine list' shows")
    release.add_argument("--reason", required=True, help="why (kept in the dock's audit log)")
    release.set_defaults(handler=run_quarantine_release)


def armorer_command(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], name: str, summary: str
) -> argparse.ArgumentParser:
    parser = sub.add_parser(name, help=summary, description=summary)
    add_config_option(parser)
    parser.add_argument("--url", help="the dock's web address (default: from [dock] ui_host/port)")
    parser.add_argument(
        "--token-file", type=Path, metavar="FILE",
        help="an armorer's token, one line (default: the first in the data folder's armorers.json)",
    )  # fmt: skip
    return parser


def _client(args: argparse.Namespace, *, acting: bool) -> DockClient:
    # Imported here: requests and the dock's settings cost every other command time to load.
    from bwc.dock_client import DockClient, dock_url, read_token

    cfg = load_config(getattr(args, "config", None)).dock
    token = read_token(cfg, args.token_file, required=acting)
    return DockClient(dock_url(cfg, args.url), token)


def with_client(args: argparse.Namespace, acting: bool, work: Callable[[DockClient], int]) -> int:
    client = _client(args, acting=acting)
    try:
        return work(client)
    finally:
        client.close()


def run_status(args: argparse.Namespace) -> int:
    console = Console(highlight=False)
    if not console.is_terminal:  # a pipe or a file: one line per bay, never folded to 80
        console = Console(highlight=False, width=WIDE)

    def show(client: DockClient) -> int:
        if args.json:
            print(json.dumps(client.bays(), indent=2))
            return 0
        if not args.watch:
            console.print(bay_table(client.bays()))
            return 0
        pause = threading.Event()  # never set: the wait between two redraws
        try:
            with Live(bay_table(client.bays()), console=console, auto_refresh=False) as live:
                while not pause.wait(WATCH_EVERY_S):
                    live.update(bay_table(client.bays()), refresh=True)
        except KeyboardInterrupt:
            pass  # Ctrl-C ends watching: not an error
        return 0

    return with_client(args, False, show)


def run_assign(args: argparse.Namespace) -> int:
    def assign(client: DockClient) -> int:
        path = f"/api/v1/cameras/{args.serial}/officer"
        done = client.act(path, {"officer_id": args.officer})
        if done.get("outcome") == "sent":
            print(f"camera {args.serial} is assigned to {args.officer} (sent to the camera)")
        else:
            print(f"camera {args.serial} will be assigned to {args.officer} when it docks next")
        return 0

    return with_client(args, True, assign)


def run_retry(args: argparse.Namespace) -> int:
    def retry(client: DockClient) -> int:
        bays = client.act("/api/v1/retry", {"serial": args.serial})["bays"]
        which = f"camera {args.serial}" if args.serial else "any camera"
        if bays:
            print(f"trying again now in bay(s) {', '.join(map(str, bays))}")
        else:
            print(f"nothing to retry: {which} is not docked")
        return 0

    return with_client(args, True, retry)


def run_quarantine_list(args: argparse.Namespace) -> int:
    def listing(client: DockClient) -> int:
        entries = client.quarantine()
        if args.json:
            print(json.dumps(entries, indent=2))
        elif not entries:
            print("no clip is quarantined")
        else:
            Console(highlight=False).print(quarantine_table(entries))
        return 0

    return with_client(args, False, listing)


def run_quarantine_release(args: argparse.Namespace) -> int:
    def release(client: DockClient) -> int:
        done = client.act(f"/api/v1/quarantine/{args.id}/release", {"reason": args.reason})
        print(
            f"clip {done['clip_id']} of {done['device_id']} is released: it is fetched and "
            "checked again"
        )
        return 0

    return with_client(args, True, release)


def bay_table(snapshot: dict[str, Any]) -> Table:
    dock = snapshot.get("dock", {})
    title = f"dock {dock.get('name', '')}: clips to {dock.get('store', '')}"
    table = Table(title=title, caption=_caption(snapshot))
    for column in ("bay", "serial", "officer", "battery", "pending"):
        table.add_column(column, no_wrap=True)  # never cut: an armorer reads these off the label
    table.add_column("transfer")
    table.add_column("firmware")
    table.add_column("profile")
    table.add_column("state", no_wrap=True)
    table.add_column("last error", ratio=1)
    for bay in snapshot["bays"]:
        state = str(bay.get("state", ""))
        table.add_row(
            str(bay.get("bay", "")), str(bay.get("serial", "")), bay.get("officer_id") or "",
            _battery(bay), str(bay.get("clips_pending", "")), _transfer(bay.get("transfer")),
            firmware_cell(bay), profile_cell(bay),
            Text(state, style=_STATE_STYLE.get(state, "")), bay.get("last_error") or "",
        )  # fmt: skip
    return table


def firmware_cell(bay: dict[str, Any]) -> Text:
    """``1.2.0``, ``1.2.0 (trial)``, ``1.1.0 -> 1.2.0 42%`` while updating, ``failed: why``."""
    running = str(bay.get("firmware") or "")
    update = bay.get("update")
    if isinstance(update, dict) and update.get("kind") == "firmware":
        step = str(update.get("step", ""))
        if step == "failed":
            return Text(f"failed: {_short(update.get('error'))}", style="red")
        if step != "done":
            return Text(f"{running} -> {update.get('version', '')} {_step(update)}", style="cyan")
    if running and bay.get("firmware_state") == "trial":
        return Text(f"{running} (trial)", style="yellow")
    return Text(running)


def profile_cell(bay: dict[str, Any]) -> Text:
    """The profile's version and short id (``v3 1a2b3c4d``), or the push under way or failed."""
    version, profile_id = bay.get("profile_version") or 0, str(bay.get("profile_id") or "")
    running = f"v{version} {profile_id[:8]}" if profile_id else ""
    update = bay.get("update")
    if isinstance(update, dict) and update.get("kind") == "profile":
        step = str(update.get("step", ""))
        if step == "failed":
            return Text(f"failed: {_short(update.get('error'))}", style="red")
        if step != "done":
            target = f"v{update.get('version', '')}"
            return Text(f"{running or 'none'} -> {target} {_step(update)}", style="cyan")
    return Text(running)


def _step(update: dict[str, Any]) -> str:
    """While sending: the percentage sent; after: the step (installing, rebooting, ...)."""
    total, done = int(update.get("bytes_total") or 0), int(update.get("bytes_done") or 0)
    if update.get("step") == "sending" and total > 0:
        return f"{100 * done // total}%"
    return str(update.get("step", ""))


def _short(error: Any, width: int = SHORT_ERROR) -> str:
    text = " ".join(str(error or "no reason given").split())
    return text if len(text) <= width else text[: width - 1] + "…"


def quarantine_table(entries: list[dict[str, Any]]) -> Table:
    table = Table(title="quarantined clips (release with: bwc dock quarantine release ID)")
    for column in ("id", "camera", "clip", "since", "why"):
        table.add_column(column)
    for e in entries:
        since = datetime.fromtimestamp(int(e["at_ns"]) / 1e9, UTC).strftime("%Y-%m-%d %H:%M:%S")
        table.add_row(str(e["id"]), e["device_id"], e["clip_id"], since, e.get("why") or "")
    return table


def _caption(snapshot: dict[str, Any]) -> str:
    parts = []
    if snapshot.get("quarantined"):
        parts.append(f"{snapshot['quarantined']} clip(s) quarantined: bwc dock quarantine list")
    if snapshot.get("unfinished_elsewhere"):
        parts.append(f"{snapshot['unfinished_elsewhere']} clip(s) wait for their camera to dock")
    if not snapshot["bays"]:
        parts.append("no camera has docked yet")
    return "; ".join(parts)


def _battery(bay: dict[str, Any]) -> str:
    percent = bay.get("battery_percent")
    if percent is None:
        return ""
    return f"{percent:.0f}%" + (" charging" if bay.get("charging") else "")


def _transfer(transfer: dict[str, Any] | None) -> RenderableType:
    if not transfer:
        return ""
    total, done = int(transfer.get("bytes_total") or 0), int(transfer.get("bytes_done") or 0)
    label = f"{transfer.get('step', '')} {transfer.get('clip_id', '')}"
    if total <= 0:
        return label
    bar = ProgressBar(total=total, completed=done, width=20)
    return Group(Text(f"{label} {100 * done // total}%"), bar)
