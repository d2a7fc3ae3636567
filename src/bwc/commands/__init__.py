"""Subcommand registry: each module adds its parsers and sets ``handler`` on them."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from bwc.commands import (
    demo,
    device,
    dock,
    evidence,
    firmware,
    hw,
    keys,
    pending,
    trigger,
    verify,
)

Register = Callable[["argparse._SubParsersAction[argparse.ArgumentParser]"], None]

COMMANDS: list[Register] = [
    hw.register,
    demo.register,
    device.register,
    keys.register,
    verify.register,
    trigger.register,
    evidence.register,
    dock.register,
    pending.register,
    firmware.register,
]
