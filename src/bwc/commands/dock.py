"""``bwc dock run``: the dock sync agent until SIGTERM or Ctrl-C (bwc/dock_process.py).

``status``, ``assign``, ``retry`` and ``quarantine`` ask the running dock through its local API
(bwc/commands/dock_armorer.py); ``firmware`` and ``config`` stage updates there
(bwc/commands/dock_updates.py).
"""

from __future__ import annotations

import argparse

from bwc.commands.dock_armorer import add_armorer_commands
from bwc.commands.dock_updates import add_update_commands
from bwc.commands.options import add_config_option
from bwc.config import load_config


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("dock", help="the dock sync agent: offload docked cameras")
    dock_sub = parser.add_subparsers(dest="dock_command", metavar="COMMAND", required=True)
    run = dock_sub.add_parser(
        "run",
        help="offload every docked camera into the evidence store until stopped",
        description="Watches the dock's bays; each enrolled camera that docks is verified, its "
        "clips are downloaded, checked, uploaded to the evidence store and erased on the camera "
        "only once the store's signed receipt verifies. Stops cleanly on SIGTERM or Ctrl-C; a "
        "dock stopped any other way resumes from its ledger. Settings: the [dock] table of "
        "--config FILE (data_dir, store_url, cameras = serial -> device id, links, ...).",
    )
    add_config_option(run)
    run.add_argument(
        "--sim", action="store_true",
        help="simulated USB bus: the cameras of [dock.cameras] are docked, one bay each, and "
        "reached at their [dock.links] URLs",
    )  # fmt: skip
    run.set_defaults(handler=run_dock)
    add_armorer_commands(dock_sub)
    add_update_commands(dock_sub)


def run_dock(args: argparse.Namespace) -> int:
    # Imported here: the dock's HTTP and USB stack costs every other command ~0.1 s to load.
    from bwc.dock_process import run_dock_process

    return run_dock_process(load_config(args.config), sim=args.sim)
