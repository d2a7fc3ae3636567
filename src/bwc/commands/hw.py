"""``bwc hw check``: one row per hardware port, exit 0 only when every port works."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table

from bwc.commands.options import add_config_option
from bwc.config import load_config

if TYPE_CHECKING:
    from hw.check import PortCheck


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("hw", help="inspect the hardware layer")
    hw_sub = parser.add_subparsers(dest="hw_command", metavar="COMMAND", required=True)
    check = hw_sub.add_parser(
        "check", help="open every port with its configured adapter and show whether it works"
    )
    add_config_option(check)
    check.set_defaults(handler=run_check)


def run_check(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    from hw.check import check_all  # imports every adapter: only once the config is valid

    console = Console(highlight=False)
    with console.status("checking hardware ports..."):
        results = check_all(config.hw)
    console.print(render(results))
    failed = [r.port for r in results if not r.ok]
    if failed:
        console.print(f"[red]{len(failed)} port(s) not working:[/red] {', '.join(failed)}")
        return 1
    console.print(f"[green]all {len(results)} ports work[/green]")
    return 0


def render(results: list[PortCheck]) -> Table:
    table = Table(title="hardware ports")
    table.add_column("port")
    table.add_column("adapter")
    table.add_column("status")
    table.add_column("detail", overflow="fold")
    for r in results:
        status = "[green]ok[/green]" if r.ok else "[red]FAILED[/red]"
        table.add_row(r.port, r.adapter, status, r.detail)
    return table
