"""``bwc trigger send`` plays a trigger sensor; ``bwc trigger scan`` shows what a camera makes of
what it hears. Both are for QA testers and armorers checking a car's sensors and a camera.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from bwc.errors import CliError
from custody import trigger
from custody.trigger import EventType, TriggerEvent
from custody.trigger_registry import TriggerRegistry, TriggerSource

EVENTS = {e.name.lower(): e for e in EventType}


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("trigger", help="emulate BLE trigger sources and inspect triggers")
    tsub = parser.add_subparsers(dest="trigger_command", metavar="COMMAND", required=True)

    send = tsub.add_parser(
        "send", help="send one authenticated trigger event from a registered source",
        description="Seal an event under the source's key and send it through a BlueZ adapter "
        "(--adapter) or into a simulated camera's radio (--control).",
    )  # fmt: skip
    send.add_argument("--registry", type=Path, required=True, metavar="FILE",
                      help="the agency's trigger registry (triggers.json)")  # fmt: skip
    send.add_argument("--source", required=True, metavar="NAME", help="registered source name")
    send.add_argument("--event", choices=sorted(EVENTS), help="event type (default: by kind)")
    send.add_argument("--counter", type=int, help="event counter (default: the next one)")
    send.add_argument("--incident", type=lambda v: int(v, 16), default=0, metavar="HEX")
    where = send.add_mutually_exclusive_group(required=True)
    where.add_argument("--control", type=Path, metavar="SOCKET",
                       help="a simulated camera's control socket")  # fmt: skip
    where.add_argument("--adapter", metavar="HCI", help="a real BlueZ adapter, e.g. hci1")
    send.add_argument("--rssi", type=int, default=-60, help="sim only: signal strength, dBm")
    send.add_argument("--seconds", type=float, default=2.0, help="real only: advertise this long")
    send.set_defaults(handler=run_send)

    scan = tsub.add_parser("scan", help="list what a camera accepted or rejected, and why")
    scan.add_argument("--control", type=Path, required=True, metavar="SOCKET",
                      help="the camera's control socket")  # fmt: skip
    scan.add_argument("--json", action="store_true", help="print JSON instead of tables")
    scan.set_defaults(handler=run_scan)


# -- send ---------------------------------------------------------------------------------------


def run_send(args: argparse.Namespace) -> int:
    registry = TriggerRegistry.load(args.registry)
    source = registry.by_name(args.source)
    if source is None:
        names = ", ".join(s.name for s in registry)
        raise CliError(f"no source {args.source!r} in {args.registry}; registered: {names}")
    event_type = EVENTS[args.event] if args.event else default_event(source)
    counter = args.counter if args.counter is not None else next_counter(args.registry, source)
    event = TriggerEvent(source.source_id, event_type, counter, args.incident, 0)
    payload = trigger.seal_trigger(
        event, source_secret=source.secret, agency_secret=registry.agency_secret
    )
    if args.control is not None:
        reply = _control(args.control, {
            "cmd": "advert", "company_id": trigger.COMPANY_ID, "payload": payload.hex(),
            "rssi": args.rssi,
        })  # fmt: skip
        print(f"sent {event_type.name.lower()} #{counter} from {source.name} into the sim radio "
              f"({reply['delivered']} scanner(s) listening)")  # fmt: skip
    else:
        asyncio.run(_advertise(args.adapter, payload, args.seconds))
        print(f"advertised {event_type.name.lower()} #{counter} from {source.name} on "
              f"{args.adapter} for {args.seconds:g} s")  # fmt: skip
    return 0


def default_event(source: TriggerSource) -> EventType:
    by_kind = {"peer": EventType.PEER_RECORDING, "test": EventType.TEST}
    return by_kind.get(source.kind) or EVENTS.get(source.kind, EventType.TEST)


def next_counter(registry_path: Path, source: TriggerSource) -> int:
    """One more than the last counter this tool sent for ``source`` (kept beside the registry)."""
    state = registry_path.with_name(registry_path.stem + ".sent.json")
    try:
        sent: dict[str, int] = json.loads(state.read_text())
    except (FileNotFoundError, ValueError):
        sent = {}
    counter = sent.get(source.name, 0) + 1
    sent[source.name] = counter
    tmp = state.with_name(f".{state.name}.tmp")
    tmp.write_text(json.dumps(sent, indent=2, sort_keys=True))
    tmp.replace(state)
    return counter


async def _advertise(adapter: str, payload: bytes, seconds: float) -> None:
    from hw.ports.ble import Advertisement
    from hw.real.ble_advertiser import BluezBleAdvertiser

    advertiser = BluezBleAdvertiser(device=adapter)
    await advertiser.start(Advertisement({trigger.COMPANY_ID: payload}))
    try:
        await asyncio.sleep(seconds)
    finally:
        await advertiser.stop()


# -- scan ---------------------------------------------------------------------------------------


def run_scan(args: argparse.Namespace) -> int:
    reply = _control(args.control, {"cmd": "triggers"})
    if args.json:
        print(json.dumps({k: reply[k] for k in ("stats", "recent")}, indent=2))
        return 0
    console = Console(highlight=False)
    stats = reply["stats"]
    counts = Table(title="what the camera heard")
    counts.add_column("outcome")
    counts.add_column("count", justify="right")
    counts.add_row("accepted", str(stats["accepted"]))
    counts.add_row("other devices (ignored)", str(stats["ignored"]))
    for reason, count in stats["rejected"].items():
        counts.add_row(f"rejected: {reason}", str(count))
    console.print(counts)
    recent = Table(title="latest decisions, newest last")
    for column in ("address", "rssi", "outcome", "reason", "source", "event", "counter"):
        recent.add_column(column, overflow="fold")
    for decision in reply["recent"]:
        recent.add_row(*("" if decision[c] is None else str(decision[c]) for c in (
            "address", "rssi", "outcome", "reason", "source", "event", "counter")))  # fmt: skip
    console.print(recent)
    return 0


def _control(path: Path, request: dict[str, Any]) -> dict[str, Any]:
    from device.control import send

    try:
        reply = send(path, request)
    except (FileNotFoundError, ConnectionRefusedError) as exc:
        raise CliError(
            f"no camera is listening on {path}: start one with 'bwc device run'"
        ) from exc
    if not reply.get("ok"):
        raise CliError(f"the camera refused: {reply.get('error')}")
    return reply
