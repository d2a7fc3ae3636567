"""Errors of the command line itself (bad configuration file, unknown table)."""

from __future__ import annotations


class CliError(Exception):
    """A problem with how ``bwc`` was invoked; the message is one actionable line."""

    exit_code = 2
