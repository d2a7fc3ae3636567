"""Options every subcommand shares."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_config_option(
    parser: argparse.ArgumentParser,
    help_text: str = "TOML configuration file (default: every port simulated)",
) -> None:
    """``--config FILE`` after the subcommand too (``bwc hw check --config rig.toml``).

    SUPPRESS keeps a value given before the subcommand (``bwc --config rig.toml hw check``).
    """
    parser.add_argument(
        "--config", type=Path, metavar="FILE", default=argparse.SUPPRESS, help=help_text
    )
