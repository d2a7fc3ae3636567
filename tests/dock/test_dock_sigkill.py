"""SIGKILL the dock process again and again while it offloads three cameras: nothing is lost.

Each round lets a real dock process (``bwc dock run --sim``, see tests/dock/dock_entry.py) make
a random number of clip state changes, 0 to 3 (0: kill as soon as a camera proved who it is),
counted from its progress lines, each printed after the ledger committed the change, and kills it
with SIGKILL at once, so the kill lands wherever the three bays happen to be: in a download, an
upload, between a receipt and its ledger commit, between an erase and its record. After 50 kills
the real ``python -m bwc dock run --sim`` finishes the work and stops on SIGTERM.

In the end every clip is in the store exactly once with a receipt that verifies, every camera is
empty, and each camera's signed audit log shows every erase after the store had issued that
clip's receipt (same evidence id and manifest hash, later in time: the cameras' clocks follow the
host's, like the store's).
"""

from __future__ import annotations

import os
import queue
import random
import re
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from custody.audit import verify_audit
from dock.config import DockConfig
from dock.ledger import ClipState, Ledger
from tests.dock.conftest import FleetFactory, Server, Store
from tests.dock.fleet import FleetCamera, check_stored_once, dock_toml

ROUNDS = 50
CAMERAS = 3
CLIPS = 8  # per camera: 24 clips, 6 state changes each, more than 50 rounds make
CLI = ["bwc", "dock", "run", "--sim", "--config"]
AHEAD = 1  # the next dock process, started (imports done) while the current one works
WAIT_S = 30.0
ROOT = Path(__file__).parents[2]
CHANGE = re.compile(r"^cam-\d+  clip \S+  \w+")
IDENTIFIED = re.compile(r"^bay \S+: cam-\d+ identified")
FINISHED = re.compile(r"^bay \S+: cam-\d+ done, ")


class DockProcess:
    """A dock process whose stdout lines arrive on a queue, read by a thread as they come."""

    def __init__(self, argv: list[str], log: IO[bytes], *, ahead: bool) -> None:
        self.proc = subprocess.Popen(
            argv, cwd=ROOT, stdin=subprocess.PIPE if ahead else subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=log, env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )  # fmt: skip
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            self.lines.put(raw.decode(errors="replace").rstrip("\n"))
        self.lines.put(None)

    def go(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(b"go\n")
        self.proc.stdin.flush()

    def wait_for(self, pattern: re.Pattern[str], count: int) -> None:
        """Until ``count`` more lines match ``pattern``."""
        deadline = time.monotonic() + WAIT_S
        while count > 0:
            try:
                line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"no {pattern.pattern!r} line within {WAIT_S} s") from None
            if line is None:
                raise AssertionError(f"the dock exited ({self.proc.wait()}) early: {self.seen}")
            self.seen.append(line)
            count -= bool(pattern.search(line))

    def kill(self) -> None:
        self.proc.kill()
        self.close()
        assert self.proc.returncode == -signal.SIGKILL

    def close(self) -> None:
        """Kill it if it still runs, and close its pipes."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(WAIT_S)
        self._reader.join(WAIT_S)
        for pipe in (self.proc.stdin, self.proc.stdout):
            if pipe is not None:
                pipe.close()

    def changes(self) -> int:
        """Clip state changes it printed (once it has ended)."""
        self.close()
        while not self.lines.empty():
            line = self.lines.get_nowait()
            if line is not None:
                self.seen.append(line)
        return sum(bool(CHANGE.search(line)) for line in self.seen)


@pytest.fixture
def fleet(make_fleet: FleetFactory) -> list[FleetCamera]:
    return make_fleet(CAMERAS, clips=CLIPS)


@pytest.fixture
def docks(tmp_path: Path, cfg: DockConfig) -> Iterator[Callable[[bool], DockProcess]]:
    """Starts dock processes on the same config; every one still running at the end is killed."""
    config = tmp_path / "dock.toml"
    config.write_text(dock_toml(cfg))
    started: list[DockProcess] = []
    with (tmp_path / "dock.log").open("ab") as log:

        def start(cli: bool) -> DockProcess:
            entry = CLI if cli else ["tests.dock.dock_entry"]
            argv = [sys.executable, "-m", *entry, str(config)]
            started.append(DockProcess(argv, log, ahead=not cli))
            return started[-1]

        yield start
        for dock in started:
            dock.close()


def test_a_dock_killed_50_times_stores_every_clip_once_and_no_camera_erases_early(
    cfg: DockConfig,
    live_store: Server,
    store: Store,
    fleet: list[FleetCamera],
    dock_key: Ed25519PrivateKey,
    docks: Callable[[bool], DockProcess],
) -> None:
    rng = random.Random(20261123)
    waiting = deque(docks(False) for _ in range(AHEAD))
    for _ in range(ROUNDS):
        dock = waiting.popleft()
        waiting.append(docks(False))
        dock.go()
        changes = rng.randint(0, 3)
        if changes:
            dock.wait_for(CHANGE, changes)
        else:
            dock.wait_for(IDENTIFIED, 1)
        dock.kill()

    final = docks(True)
    final.wait_for(FINISHED, CAMERAS)
    final.proc.send_signal(signal.SIGTERM)
    assert final.proc.wait(WAIT_S) == 0, "a dock stops cleanly on SIGTERM"
    assert final.changes() > 0, "the work was not finished before the last kill"
    assert any("dock ledger" in line for line in final.seen), "a summary table at exit"

    stored = check_stored_once(live_store.url, store, fleet)
    for camera in fleet:
        assert camera.listed(dock_key) == []
        assert camera.clips_on_card() == []
        assert verify_audit(camera.audit_log(), [camera.device_key.public_key()]).ok
        erased = camera.audit_records("clip.erased")
        assert sorted(r["data"]["clip_id"] for r in erased) == sorted(camera.manifests)
        for record in erased:
            receipt = stored[record["data"]["clip_id"]]
            assert record["data"]["evidence_id"] == receipt.evidence_id
            assert record["data"]["manifest_sha256"] == receipt.manifest_sha256
            assert record["wall_ns"] > receipt.stored_at_ns, "erased before the receipt existed"
    ledger = Ledger(cfg.ledger_path, wall_ns=time.time_ns)
    try:
        assert {row.state for row in ledger.rows()} == {ClipState.DONE}
        assert len(ledger.rows()) == CAMERAS * CLIPS
    finally:
        ledger.close()
    assert [p for p in cfg.spool_path.rglob("*") if p.is_file()] == []
