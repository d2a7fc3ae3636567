"""``bwc device run`` for the update kill test, started ahead of its turn and able to reboot.

Like tests/device/device_entry.py it imports the whole command, then waits for one line on stdin
before it touches the card, so a power-on in the test costs the boot, not the imports. A camera
reboots by exec'ing its own command line (``POST /offload/v1/reboot``), which runs this module
again: the wait is asked for in the environment and the variable is dropped before the camera
runs, so the rebooted process boots at once, as a real camera would. An empty stdin (the test
went away) exits without touching anything.
"""

from __future__ import annotations

import os
import sys

import bwc.commands.device  # noqa: F401  (the import cost this module exists to pay early)
import device.offload.api  # noqa: F401  (FastAPI: a camera powered on in the dock serves at once)
from bwc.cli import main

WAIT = "BWC_TEST_WAIT_FOR_GO"

if __name__ == "__main__":
    if os.environ.pop(WAIT, None) and not sys.stdin.readline():
        sys.exit(1)
    sys.exit(main(sys.argv[1:]))
