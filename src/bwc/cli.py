"""``bwc``: the one entry point. Each role's subcommands live in :mod:`bwc.commands`.

Every failure a user can cause ends as one line on stderr and a non-zero exit: 2 for bad input
(configuration, arguments, files), 1 when a check ran and found a problem. Tracebacks are for bugs.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from bwc.commands import COMMANDS
from bwc.errors import CliError
from bwc.logs import configure_logging
from custody.errors import CustodyError
from hw.errors import HwError

USER_ERRORS: tuple[type[Exception], ...] = (CliError, HwError, CustodyError)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bwc", description="Open body-worn camera platform: camera, dock, evidence store."
    )
    parser.add_argument("--config", type=Path, metavar="FILE", help="TOML configuration file")
    parser.add_argument(
        "--log-format", choices=["console", "json"], default="console", help="log output format"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="show debug logs")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for register in COMMANDS:
        register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging(fmt=args.log_format, verbose=args.verbose)
    try:
        code: int = args.handler(args)
    except USER_ERRORS as exc:
        print(f"bwc: error: {exc}", file=sys.stderr)
        return getattr(exc, "exit_code", 2)
    except KeyboardInterrupt:
        print("bwc: interrupted", file=sys.stderr)
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
