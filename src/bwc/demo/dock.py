"""The dock at the end of the shift: the real DockAgent over a simulated USB bus.

The dock is configured as an armorer would (its key, the store's receipt key and token, both
cameras enrolled by serial and device id), reaches each camera's offload API on loopback through
static links, and runs until every bay reports its camera finished.
"""

from __future__ import annotations

import queue
from collections.abc import Callable

from bwc.demo.errors import ShiftError
from bwc.demo.site import Site, enrol
from custody.keys import write_atomic
from dock.agent import Dock
from dock.bay_worker import BayReport
from dock.config import DockConfig, RetryPolicy
from dock.ledger import ClipRow
from dock.links import StaticLinkResolver
from dock.runner import DockAgent
from hw.ports.usb import UsbConfig
from hw.sim.clock import SimClock
from hw.sim.usb import SimUsbBus

BAY_TIMEOUT_S = 60.0
RETRY = RetryPolicy(base_s=0.1, cap_s=1.0, attempts=5)


def dock_config(site: Site, store_url: str, links: dict[str, str]) -> DockConfig:
    cfg = DockConfig(
        data_dir=site.dock_dir,
        dock_key=site.dock.private,
        store_key=site.store.public,
        store_url=store_url,
        retry=RETRY,
        poll_s=0.1,
        cameras={c.officer.serial: c.officer.device_id for c in site.cameras},
        links=links,
    )
    enrol(cfg.devices_path, site.cameras)
    return cfg


def install_token(cfg: DockConfig, token: str) -> None:
    cfg.data_dir.mkdir(parents=True, exist_ok=True)
    write_atomic(cfg.store_token_path, token.encode() + b"\n", mode=0o600, overwrite=True)


def offload(
    cfg: DockConfig,
    serials: list[str],
    *,
    on_clip: Callable[[ClipRow], None],
    on_bay: Callable[[BayReport], None],
) -> list[BayReport]:
    """Plug each camera into its bay and run the dock until every bay is done with its camera."""
    clock = SimClock()  # the dock waits in real time: the cameras serve from their own threads
    bus = SimUsbBus(UsbConfig())
    dock = Dock(cfg, clock, on_change=on_clip)
    inbox: queue.Queue[BayReport] = queue.Queue()
    agent = DockAgent(dock, bus, StaticLinkResolver(cfg.links), clock, on_bay_done=inbox.put)
    try:
        agent.start()
        for bay, serial in enumerate(serials, start=1):
            bus.plug(serial, port_path=(bay,))
        reports = []
        for _ in serials:
            try:
                report = inbox.get(timeout=BAY_TIMEOUT_S)
            except queue.Empty:
                raise ShiftError(
                    f"the dock did not finish a bay within {BAY_TIMEOUT_S:g} s: see {cfg.data_dir}"
                ) from None
            on_bay(report)
            reports.append(report)
        return reports
    finally:
        agent.stop()
        dock.close()
        bus.close()
