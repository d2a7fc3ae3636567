"""The demo's one error: a step of the simulated shift did not happen (exit status 1)."""

from __future__ import annotations

from bwc.errors import CliError


class ShiftError(CliError):
    """A step of the shift failed; the message says which and what to look at."""

    exit_code = 1
