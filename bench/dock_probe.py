"""``python -m bench.dock_probe SPEC.json``: the running dock, in its own process, until done.

The spec names the dock's data folder (keys, enrolled cameras, store token: set up by
:mod:`bench.dock_rig`), the evidence store's URL and each docked camera's USB serial, device id
and offload URL. The dock runs as ``bwc dock run --sim`` runs it: :class:`dock.agent.Dock` from
a :class:`~dock.config.DockConfig`, and :class:`dock.runner.DockAgent` watching a simulated USB
bus (the hardware edge: every camera in its own bay from the start) with each serial's URL from
the config's ``links``. One worker thread per bay drives the offload pipeline
(:class:`dock.pipeline.Offloader`): session, listing, manifest verified with the enrolled key,
segments spooled (hashed while they stream, fsynced), the spooled clip verified with custody,
uploaded through the dock's one store client, the receipt checked, the camera asked to erase,
the spool cleaned.

It prints one JSON object: wall and CPU seconds from the agent's start to the last bay's report,
every clip's final state, and the process's resident memory (``VmRSS`` before the agent
started, the peak ``VmHWM`` after it). In its own interpreter, that memory is the dock's alone.
"""

from __future__ import annotations

import json
import queue
import resource
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from bwc.logs import configure_logging
from dock.agent import Dock
from dock.bay_worker import BayReport
from dock.config import DockConfig
from dock.links import StaticLinkResolver
from dock.runner import DockAgent
from hw.ports.usb import SimUsbCamera, UsbConfig, open_usb
from hw.real.clock import SystemClock

RUNNER = "dock.runner.DockAgent, one worker thread per bay, sim USB bus"
#: seconds to wait for a bay's report; a 2 GB clip on a slow disk takes minutes
REPORT_TIMEOUT_S = 1800.0


def status_kib(field: str) -> int:
    """A ``kB`` field of ``/proc/self/status`` (``VmRSS``, ``VmHWM``), in KiB."""
    for line in Path("/proc/self/status").read_text(encoding="utf-8").splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise SystemExit(f"/proc/self/status has no {field} line: the dock benchmark needs Linux")


def run_agent(dock: Dock, clock: SystemClock) -> list[BayReport]:
    """Every enrolled camera docked at once; returns when every bay has reported."""
    cfg = dock.cfg
    docked = tuple(
        SimUsbCamera(serial=serial, port_path=(bay,))
        for bay, serial in enumerate(cfg.cameras, start=1)
    )
    bus = open_usb(UsbConfig(adapter="sim", cameras=docked))
    inbox: queue.Queue[BayReport] = queue.Queue()
    agent = DockAgent(dock, bus, StaticLinkResolver(cfg.links), clock, on_bay_done=inbox.put)
    agent.start()
    try:
        return [inbox.get(timeout=REPORT_TIMEOUT_S) for _ in docked]
    except queue.Empty:
        raise SystemExit(f"a bay did not report within {REPORT_TIMEOUT_S:.0f} s") from None
    finally:
        agent.stop()
        bus.close()


def probe(spec: dict[str, Any]) -> dict[str, Any]:
    cameras = spec["cameras"]
    cfg = DockConfig(
        data_dir=Path(spec["data_dir"]),
        store_url=spec["store_url"],
        cameras={c["serial"]: c["device_id"] for c in cameras},
        links={c["serial"]: c["url"] for c in cameras},
    )
    clock = SystemClock()
    dock = Dock(cfg, clock)
    try:
        rss_start = status_kib("VmRSS")
        cpu0, wall0 = time.process_time(), time.perf_counter()
        reports = run_agent(dock, clock)
        wall_s, cpu_s = time.perf_counter() - wall0, time.process_time() - cpu0
        rows = dock.ledger.rows()
    finally:
        dock.close()
    return {
        "runner": RUNNER,
        "wall_s": wall_s,
        "cpu_s": cpu_s,
        "outcomes": dict(Counter(r.outcome.value for r in reports)),
        "errors": [r.error for r in reports if r.error],
        "states": dict(Counter(row.state.value for row in rows)),
        "failures": sum(row.attempts for row in rows),  # retried steps: zero on a sound run
        "rss_start_bytes": rss_start * 1024,
        "rss_peak_bytes": status_kib("VmHWM") * 1024,
        "maxrss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
    }


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m bench.dock_probe SPEC.json", file=sys.stderr)
        return 2
    configure_logging()  # warnings only, on stderr: stdout carries the result
    spec = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
    print(json.dumps(probe(spec)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
