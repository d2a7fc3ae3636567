"""``bwc device run`` for the SIGKILL test, started ahead of its turn.

It imports the whole command (the firmware, PyAV, numpy) and then waits for one line on stdin
before it touches the card: the kill test starts the next camera while the current one records,
so a round costs the firmware's boot and recording, not a second of imports. Only then does it
run the same ``bwc`` entry point with the arguments it was given. An empty stdin (the test went
away) exits without touching anything.
"""

from __future__ import annotations

import sys

import bwc.commands.device  # noqa: F401  (the import cost this module exists to pay early)
from bwc.cli import main

if __name__ == "__main__":
    if not sys.stdin.readline():
        sys.exit(1)
    sys.exit(main(sys.argv[1:]))
