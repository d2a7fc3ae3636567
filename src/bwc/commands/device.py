"""``bwc device run`` runs the camera firmware; ``bwc device send`` drives a running one.

This module is the firmware's composition root: it opens every port from the configuration,
loads the camera's keys, boots the firmware and serves its control socket. The parts it builds
the firmware from are in :mod:`bwc.commands.device_rig`.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console

from bwc.commands.device_rig import (
    attach_radio,
    choose_firmware,
    load_keys,
    open_rig,
    simulated,
    with_provisioned,
)
from bwc.commands.options import add_config_option
from bwc.config import load_config
from bwc.errors import CliError

if TYPE_CHECKING:
    from device.firmware import Firmware
    from device.offload import OffloadServer
    from device.updates import FirmwareSlots

DEFAULT_CONTROL = Path("var/bwc/control.sock")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("device", help="run and drive the camera firmware")
    device_sub = parser.add_subparsers(dest="device_command", metavar="COMMAND", required=True)

    run = device_sub.add_parser("run", help="run the firmware until it powers off or is stopped")
    add_config_option(run)
    mode = run.add_mutually_exclusive_group()
    mode.add_argument(
        "--sim",
        dest="sim",
        action="store_true",
        default=True,
        help="every port simulated, whatever the config says (default)",
    )
    mode.add_argument("--real", dest="sim", action="store_false",
                      help="use the adapters the config names (on the camera itself)")  # fmt: skip
    run.add_argument("--control", type=Path, default=DEFAULT_CONTROL, metavar="SOCKET",
                     help=f"control socket path (default {DEFAULT_CONTROL})")  # fmt: skip
    run.add_argument("--seconds", type=float, default=None,
                     help="stop after this much camera time (default: until off)")  # fmt: skip
    run.add_argument("--docked", action="store_true",
                     help="sim: power on in the dock (as after a reboot there)")  # fmt: skip
    run.add_argument("--offload-port", type=int, default=None, metavar="PORT",
                     help="offload API port while docked (over [device])")  # fmt: skip
    run.set_defaults(handler=run_device)

    send = device_sub.add_parser(
        "send", help="send one command to a running camera",
        description="Commands: status; press record|function|both single|double|hold; "
        "trigger KIND SOURCE_ID; dock; undock; battery PERCENT; shutdown.",
    )  # fmt: skip
    send.add_argument("--control", type=Path, default=DEFAULT_CONTROL, metavar="SOCKET")
    send.add_argument("words", nargs="+", metavar="COMMAND")
    send.set_defaults(handler=run_send)


# -- run ----------------------------------------------------------------------------------------


def run_device(args: argparse.Namespace) -> int:
    config = load_config(getattr(args, "config", None))
    if args.sim:
        config = simulated(config)
    elif args.docked:
        raise CliError(
            "--docked is for a simulated camera: a real one docks when its USB link is up"
        )
    if args.offload_port is not None:
        device = config.device.model_validate(
            {**config.device.model_dump(), "offload_port": args.offload_port}
        )
        config = config.model_copy(update={"device": device})
    console = Console(highlight=False, stderr=True)
    keys = load_keys(config.device, create=args.sim, console=console)
    from hw.ports.storage import open_storage

    config.hw.storage.root.mkdir(parents=True, exist_ok=True)
    storage = open_storage(config.hw.storage)
    config = with_provisioned(config, storage, console)
    rig = open_rig(config.hw, storage)
    from device.control import ControlServer, SimControls
    from device.events import DockInput
    from device.firmware import Firmware
    from device.offload import attach_offload

    slots, audit = choose_firmware(config.device, rig, keys)
    console.print(slots.choice.describe())
    running = config.device.model_copy(update={"firmware_version": slots.choice.version})
    firmware = Firmware(running, rig.ports, keys, audit=audit)
    attach_radio(firmware, config, rig, audit, create=args.sim, console=console)
    report = firmware.boot()
    reboot = threading.Event()
    offload = attach_offload(firmware, keys.identity, slots=slots, reboot=reboot.set)
    if args.docked:  # "a camera powered in the dock is docked"
        firmware.submit(DockInput(docked=True, at_ns=rig.ports.clock.monotonic_ns()))
    if report.recovered or report.dropped or report.unrecovered:
        console.print(
            f"recovered {len(report.recovered)} clip(s) at boot; dropped {len(report.dropped)} "
            f"torn file(s); {len(report.unrecovered)} folder(s) left for the armorer"
        )
    args.control.parent.mkdir(parents=True, exist_ok=True)
    sim = None
    if rig.sim_io is not None and rig.sim_battery is not None:
        sim = SimControls(rig.sim_io, rig.sim_battery, rig.ports.clock, rig.radio)
    control = ControlServer(firmware, args.control, sim)
    control.start()
    console.print(f"camera {config.device.serial} running; control socket {args.control}")
    stop = _stop_on_signals()
    try:
        _loop(firmware, (stop, reboot), args.seconds, offload, slots, console)
    finally:
        offload.close()  # first: its requests append to the audit log the firmware closes
        firmware.close()
        control.close()
        rig.ports.io.close()
    status = firmware.status()
    print(json.dumps({"sealed": status["sealed"], "state": status["state"]}), flush=True)
    if reboot.is_set() and not stop.is_set():
        console.print(f"rebooting (firmware {slots.choice.version} stopped cleanly)")
        sys.stderr.flush()
        argv = reboot_argv(sys.orig_argv, offload.port, docked=args.sim)
        os.execv(sys.executable, argv)  # the same process comes back, as a camera reboots
    return 0


def reboot_argv(orig: list[str], port: int, *, docked: bool) -> list[str]:
    """The command line that started this camera, back in the dock on the same offload port."""
    argv: list[str] = []
    skip = False
    for word in orig:
        if skip:
            skip = False
        elif word == "--offload-port":
            skip = True
        elif word != "--docked" and not word.startswith("--offload-port="):
            argv.append(word)
    return [*argv, "--offload-port", str(port), *(["--docked"] if docked else [])]


def _loop(
    firmware: Firmware,
    stops: tuple[threading.Event, ...],
    seconds: float | None,
    offload: OffloadServer,
    slots: FirmwareSlots,
    console: Console,
) -> None:
    from device.updates import firmware_healthy

    clock = firmware.ports.clock
    until = None if seconds is None else clock.monotonic_ns() + round(seconds * 1e9)
    shown: str | None = None
    while firmware.running and not any(stop.is_set() for stop in stops):
        firmware.step()
        url = offload.url  # the server starts in its own thread: say so once it listens
        if url != shown:
            console.print(f"docked: offload API at {url}" if url else "offload API stopped")
            shown = url
        now = clock.monotonic_ns()
        if slots.check_health(now, firmware_healthy(firmware)):
            choice = slots.choice
            console.print(f"firmware {choice.version} healthy: slot {choice.slot} is active")
        if until is not None and now >= until:
            break


def _stop_on_signals() -> threading.Event:
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    return stop


# -- send ---------------------------------------------------------------------------------------


def run_send(args: argparse.Namespace) -> int:
    request = parse_command(args.words)
    from device.control import send

    try:
        reply = send(args.control, request)
    except (FileNotFoundError, ConnectionRefusedError) as exc:
        raise CliError(
            f"no camera is listening on {args.control}: start one with 'bwc device run'"
        ) from exc
    print(json.dumps(reply, indent=2))
    if not reply.get("ok"):
        print(f"bwc: error: {reply.get('error')}", file=sys.stderr)
        return 1
    return 0


def parse_command(words: list[str]) -> dict[str, Any]:
    """``press record double`` -> ``{"cmd": "press", "button": "record", "gesture": "double"}``."""
    cmd, rest = words[0], words[1:]
    shapes: dict[str, tuple[str, ...]] = {
        "status": (), "dock": (), "undock": (), "shutdown": (),
        "press": ("button", "gesture"), "trigger": ("kind", "source_id"), "battery": ("percent",),
    }  # fmt: skip
    if cmd not in shapes:
        raise CliError(f"unknown command {cmd!r}: use one of {', '.join(shapes)}")
    names = shapes[cmd]
    if len(rest) != len(names):
        usage = " ".join([cmd, *(n.upper() for n in names)])
        raise CliError(f"'{cmd}' takes {len(names)} argument(s): bwc device send {usage}")
    request: dict[str, Any] = {"cmd": cmd, **dict(zip(names, rest, strict=True))}
    if cmd == "battery":
        try:
            request["percent"] = float(rest[0])
        except ValueError as exc:
            raise CliError(f"battery PERCENT must be a number (got {rest[0]!r})") from exc
    return request
