"""Commands whose issue has not landed yet: they say so and exit 2, never pretend to work."""

from __future__ import annotations

import argparse
import sys

#: command -> (subcommands, what it will do)
PENDING: dict[str, tuple[tuple[str, ...], str]] = {}


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    for name, (subcommands, summary) in PENDING.items():
        parser = sub.add_parser(name, help=f"{summary} (not built yet)")
        parser.add_argument("subcommand", nargs="?", choices=subcommands)
        parser.add_argument("rest", nargs=argparse.REMAINDER)
        parser.set_defaults(handler=not_built, pending=name)


def add_pending(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], name: str, summary: str, *, of: str
) -> None:
    """A subcommand ``of`` a built command that is itself not built yet (``bwc dock status``)."""
    parser = sub.add_parser(name, help=f"{summary} (not built yet)")
    parser.add_argument("rest", nargs=argparse.REMAINDER)
    parser.set_defaults(handler=not_built, pending=f"{of} {name}")


def not_built(args: argparse.Namespace) -> int:
    what = " ".join(filter(None, [args.pending, getattr(args, "subcommand", None)]))
    print(
        f"bwc: error: 'bwc {what}' is not built yet: see the project's open issues", file=sys.stderr
    )
    return 2
