"""``bwc dock run --sim --config FILE`` for the kill test, started ahead of its turn.

It runs the same :func:`bwc.dock_process.run_dock_process` as the CLI, but imports only what the
dock needs and then waits for one line on stdin before it touches anything (ledger, spool,
cameras, store). The kill test starts the next docks while the current one works, so a round
costs the pipeline's time, not a second of imports. An empty stdin (the test went away) exits.
"""

from __future__ import annotations

import sys
from pathlib import Path

from bwc.config import load_config
from bwc.dock_process import run_dock_process
from bwc.logs import configure_logging


def main(argv: list[str]) -> int:
    configure_logging()  # as bwc.cli does: warnings and errors on stderr
    config = load_config(Path(argv[0]))
    if not sys.stdin.readline():
        return 1
    return run_dock_process(config, sim=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
