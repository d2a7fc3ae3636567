"""The dock agent as a process: built from the configuration, run until SIGTERM or SIGINT.

``--sim`` docks the cameras of ``[dock.cameras]`` on a simulated USB bus (hw SimUsbBus, one bay
each, in table order) and reaches each at its ``[dock.links]`` URL; without it the bus is the
``[usb]`` port and links come from ``[dock.links]`` when given, else from sysfs (the camera's USB
network interface). The clock is the ``[clock]`` port; the dock's waits are in real time.

Progress is one line per bay change and per clip state change (rich); at exit, a table per
camera. The armorer's view (docs/dock-api.md: the web page, the local API that ``bwc dock
status`` reads, and Prometheus metrics) is served on ``[dock] ui_host``:``ui_port`` by uvicorn on
a thread of this process; the command prints its URL. Kept apart from :mod:`bwc.commands` so
that a process running only the dock does not load every other command.
"""

from __future__ import annotations

import signal
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

from rich.console import Console
from rich.table import Table

from bwc.config import Config
from bwc.errors import CliError
from dock.agent import Dock, load_dock_key
from dock.armorers import Armorers, ensure_armorers
from dock.audit_log import DockAuditLog
from dock.bay_worker import BayReport, Outcome
from dock.bays import BayEvent, BayState
from dock.config import DockConfig
from dock.errors import DockError
from dock.ledger import ClipRow, ClipState, Ledger
from dock.links import LinkResolver, StaticLinkResolver, SysfsLinkResolver
from dock.runner import DockAgent
from dock.ui.app import create_ui_app
from dock.ui.server import UiServer
from hw.ports.clock import Clock, open_clock
from hw.ports.usb import SimUsbCamera, UsbBus, UsbConfig, open_usb

_STATE_STYLE = {
    ClipState.DONE: "green",
    ClipState.STORED: "cyan",
    ClipState.ERASED: "cyan",
    ClipState.QUARANTINED: "bold red",
}


def run_dock_process(config: Config, *, sim: bool) -> int:
    """Run the dock agent until SIGTERM or SIGINT; 0 after a clean stop."""
    console = Console(highlight=False, soft_wrap=True)
    clock = open_clock(config.hw.clock)
    bus, links = _bus_and_links(config, sim=sim)
    try:
        _run(config.dock, bus, links, clock, console)
    except DockError as exc:
        raise CliError(str(exc)) from exc
    finally:
        bus.close()
    return 0


def _run(cfg: DockConfig, bus: UsbBus, links: LinkResolver, clock: Clock, console: Console) -> None:
    progress = Progress(console)
    dock = Dock(cfg, clock, on_change=progress.clip)
    audit: DockAuditLog | None = None
    try:
        audit = DockAuditLog(cfg.audit_path, load_dock_key(cfg), clock)
        agent = DockAgent(dock, bus, links, clock, on_bay_done=progress.bay_done, audit=audit)
        agent.monitor.subscribe(progress.bay)
        ui = UiServer(
            create_ui_app(agent, armorers=_armorers(cfg, console), audit=audit),
            cfg.ui_host, cfg.ui_port,
        )  # fmt: skip
        _announce(console, cfg, agent)
        stop = threading.Event()
        with _stopped_by_signals(stop):
            ui.start()
            console.print(f"armorer's view: {ui.url}/  (bwc dock status --url {ui.url})")
            agent.start()
            try:
                stop.wait()
            finally:
                console.print("stopping: every bay finishes its current step")
                ui.stop()
                agent.stop()
        console.print(summary(dock.ledger))
    finally:
        if audit is not None:
            audit.close()
        dock.close()


def _armorers(cfg: DockConfig, console: Console) -> Armorers:
    if ensure_armorers(cfg.armorers_path):
        console.print(
            f"created {cfg.armorers_path} with one development armorer token (mode 0600): "
            "replace it with your armorers' own before going live"
        )
    return Armorers.load(cfg.armorers_path)


def _bus_and_links(config: Config, *, sim: bool) -> tuple[UsbBus, LinkResolver]:
    cfg = config.dock
    if not sim:
        links: LinkResolver = StaticLinkResolver(cfg.links) if cfg.links else SysfsLinkResolver()
        return open_usb(config.hw.usb), links
    if not cfg.cameras:
        raise CliError("--sim docks the cameras of [dock.cameras]: enrol at least one there")
    missing = [serial for serial in cfg.cameras if serial not in cfg.links]
    if missing:
        raise CliError(
            f"--sim: camera {missing[0]} has no URL: add it to [dock.links] (serial = URL)"
        )
    cameras = tuple(
        SimUsbCamera(serial=serial, port_path=(bay,))
        for bay, serial in enumerate(cfg.cameras, start=1)
    )
    usb = UsbConfig(adapter="sim", vendor_id=config.hw.usb.vendor_id,
                    product_id=config.hw.usb.product_id, cameras=cameras)  # fmt: skip
    return open_usb(usb), StaticLinkResolver(cfg.links)


def _announce(console: Console, cfg: DockConfig, agent: DockAgent) -> None:
    console.print(f"dock: data in {cfg.data_dir}, evidence store at {cfg.store_url}")
    waiting = Counter(row.device_id for row in agent.unfinished())
    for device_id, count in sorted(waiting.items()):
        console.print(f"resuming {count} unfinished clip(s) of {device_id} when it is docked")
    if cfg.ingest_dir is not None:
        console.print(f"watching the ingest folder {cfg.ingest_dir}")
    console.print("waiting for cameras (stop with Ctrl-C or SIGTERM)")


@contextmanager
def _stopped_by_signals(stop: threading.Event) -> Iterator[None]:
    """SIGTERM and SIGINT set ``stop`` (a clean stop), instead of raising in a random place."""

    def handler(signum: int, frame: FrameType | None) -> None:
        stop.set()

    before = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, previous in before.items():
            signal.signal(sig, previous)


class Progress:
    """One line per change, printed from whichever thread made it (rich serialises them)."""

    def __init__(self, console: Console) -> None:
        self._console = console

    def clip(self, row: ClipRow) -> None:
        style = _STATE_STYLE.get(row.state, "")
        state = f"[{style}]{row.state.value}[/]" if style else row.state.value
        why = f"  {row.last_error}" if row.state is ClipState.QUARANTINED else ""
        self._console.print(f"{row.device_id}  clip {row.clip_id}  {state}{why}")

    def bay(self, event: BayEvent) -> None:
        bay = event.bay
        if bay.state is BayState.UNKNOWN:
            self._console.print(f"[bold red]bay {bay.name}: not offloaded[/]: {bay.reason}")
        else:
            who = bay.device_id or bay.serial
            self._console.print(f"bay {bay.name}: {who} {bay.state.value}")

    def bay_done(self, report: BayReport) -> None:
        done = sum(r.state is ClipState.DONE for r in report.rows)
        who = report.device_id or report.serial
        text = f"bay {report.bay}: {who} {report.outcome.value}, {done}/{len(report.rows)} done"
        if report.error and report.outcome is not Outcome.DONE:
            text += f" ({report.error})"
        self._console.print(text)


def summary(ledger: Ledger) -> Table:
    """Per camera: clips done, quarantined, still waiting, and the last error seen."""
    table = Table(title="dock ledger")
    for column in ("camera", "done", "quarantined", "waiting", "last error"):
        table.add_column(column)
    by_device: dict[str, list[ClipRow]] = {}
    for row in ledger.rows():
        by_device.setdefault(row.device_id, []).append(row)
    for device_id, rows in sorted(by_device.items()):
        states = Counter(r.state for r in rows)
        waiting = [r for r in rows if not r.state.terminal]
        errors = [r.last_error for r in waiting if r.last_error]
        table.add_row(
            device_id, str(states[ClipState.DONE]), str(states[ClipState.QUARANTINED]),
            str(len(waiting)), errors[-1] if errors else "",
        )  # fmt: skip
    return table
