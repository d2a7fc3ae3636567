"""``bwc device run`` runs the camera firmware; ``bwc device send`` drives a running one.

This module is the firmware's composition root: it opens every port from the configuration,
loads the camera's keys, boots the firmware and serves its control socket.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import signal
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey
from rich.console import Console

from bwc.commands.options import add_config_option
from bwc.config import Config, load_config
from bwc.errors import CliError
from custody.keys import Role, load_agency_public_key, load_signing_key, write_key_pair
from custody.trigger_registry import TriggerRegistry, TriggerSource
from device.config import DeviceConfig
from device.recorder import DeviceKeys
from hw.config import HwConfig

if TYPE_CHECKING:
    from device.audit_log import DeviceAuditLog
    from device.firmware import DevicePorts, Firmware
    from device.offload import OffloadServer
    from device.updates import FirmwareSlots
    from hw.ports.storage import Storage
    from hw.sim.battery import SimBattery
    from hw.sim.ble import SimRadio
    from hw.sim.io import SimOfficerIo

DEFAULT_CONTROL = Path("var/bwc/control.sock")
REGISTRY_NAME = "triggers.json"
SIM_PORTS = ("camera", "microphone", "ble_scanner", "ble_advertiser", "usb", "io", "battery",
             "clock", "gnss", "storage")  # fmt: skip


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


def choose_firmware(
    device: DeviceConfig, rig: Rig, keys: DeviceKeys
) -> tuple[FirmwareSlots, DeviceAuditLog]:
    """Open the audit log once and choose the firmware slot before the firmware boots."""
    from device.audit_log import DeviceAuditLog
    from device.errors import FirmwareUpdateError
    from device.firmware import AUDIT_LOG
    from device.updates import FirmwareSlots

    storage = rig.ports.storage
    audit = DeviceAuditLog(storage, AUDIT_LOG, keys.identity, rig.ports.clock)
    slots = FirmwareSlots(
        storage, device.keys_dir, audit, target=device.hardware_target,
        factory_version=device.firmware_version, healthy_after_s=device.healthy_after_s,
    )  # fmt: skip
    try:
        slots.boot()
    except FirmwareUpdateError as exc:
        audit.close()
        rig.ports.io.close()
        raise CliError(f"the camera cannot boot: {exc}") from exc
    return slots, audit


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


def simulated(config: Config) -> Config:
    """The same configuration with every hardware port on its sim adapter."""
    hw = config.hw
    tables = {name: getattr(hw, name).model_copy(update={"adapter": "sim"}) for name in SIM_PORTS}
    return config.model_copy(update={"hw": HwConfig(**tables, sim_radio=hw.sim_radio)})


def load_keys(cfg: DeviceConfig, *, create: bool, console: Console) -> DeviceKeys:
    """The camera's identity and the agency's recording key from ``keys_dir``.

    A simulated camera makes a development set on first run (with the agency's private key beside
    it, so ``bwc verify --agency-key`` can decrypt its clips); a real one must be provisioned.
    """
    identity, agency = cfg.keys_dir / "device.key.pem", cfg.keys_dir / "agency.pub.pem"
    if not identity.exists() and create:
        write_key_pair(cfg.keys_dir, Role.DEVICE)
        if not agency.exists():
            write_key_pair(cfg.keys_dir, Role.AGENCY)
        console.print(f"made development keys in {cfg.keys_dir} (simulated camera)")
    if not identity.exists() or not agency.exists():
        missing = identity if not identity.exists() else agency
        raise CliError(f"{missing} is missing: provision the camera at a dock before recording")
    signing: Ed25519PrivateKey = load_signing_key(identity)
    recording: X25519PublicKey = load_agency_public_key(agency)
    return DeviceKeys(signing, recording)


@dataclass
class Rig:
    """The opened ports, and the sim parts the control socket may drive (None on hardware)."""

    ports: DevicePorts
    radio: SimRadio
    sim_io: SimOfficerIo | None = None
    sim_battery: SimBattery | None = None


def with_provisioned(config: Config, storage: Storage, console: Console) -> Config:
    """``config`` with what docks provisioned since it was written: the officer last assigned
    and the active configuration profile's settings (docs/formats/offload.md)."""
    from device.offload import load_officer
    from device.profile import camera_settings, device_settings, load_active_profile

    device = config.device
    officer = load_officer(storage)
    if officer:
        device = device.model_copy(update={"officer_id": officer})
    profile = load_active_profile(storage, device.keys_dir)
    if profile is None:
        return config.model_copy(update={"device": device})
    hw = config.hw.model_copy(update={"camera": camera_settings(config.hw.camera, profile)})
    console.print(f"profile {profile.name!r} version {profile.profile_version} applied")
    return config.model_copy(update={"device": device_settings(device, profile), "hw": hw})


def open_rig(hw: HwConfig, storage: Storage | None = None) -> Rig:
    from device.firmware import DevicePorts
    from hw.ports.battery import open_battery
    from hw.ports.camera import open_camera
    from hw.ports.clock import open_clock
    from hw.ports.gnss import open_gnss
    from hw.ports.io import open_io
    from hw.ports.microphone import open_microphone
    from hw.ports.storage import open_storage
    from hw.sim.battery import SimBattery
    from hw.sim.ble import SimRadio
    from hw.sim.io import SimOfficerIo

    clock = open_clock(hw.clock)
    io = open_io(hw.io, clock)
    battery = open_battery(hw.battery, clock)
    if storage is None:
        hw.storage.root.mkdir(parents=True, exist_ok=True)
        storage = open_storage(hw.storage)
    ports = DevicePorts(
        clock=clock, camera=open_camera(hw.camera, clock), io=io, battery=battery,
        storage=storage, microphone=open_microphone(hw.microphone, clock),
        gnss=open_gnss(hw.gnss, clock),
    )  # fmt: skip
    return Rig(
        ports,
        SimRadio(hw.sim_radio),
        sim_io=io if isinstance(io, SimOfficerIo) else None,
        sim_battery=battery if isinstance(battery, SimBattery) else None,
    )


def attach_radio(
    firmware: Firmware, config: Config, rig: Rig, audit: DeviceAuditLog, *, create: bool,
    console: Console,
) -> None:  # fmt: skip
    """Give the firmware its trigger engine and peer beacon, if it holds the registry it should."""
    from device.ble_link import BleLink
    from device.profile import registry_mismatch
    from device.triggers import CounterStore, TriggerEngine
    from hw.ports.ble import open_ble_advertiser, open_ble_scanner

    path = config.device.keys_dir / REGISTRY_NAME
    mismatch = registry_mismatch(config.device, path)
    if mismatch is not None:
        console.print(mismatch.message(), soft_wrap=True)  # one line, whatever the width
        audit.append("triggers.refused", mismatch.audit_detail())
        return
    if not path.exists() and create:
        development_registry(config.device.serial).save(path)
        console.print(f"made a development trigger registry in {path} (simulated camera)")
    if not path.exists():
        console.print(f"no trigger registry at {path}: this camera hears no triggers until a "
                      "dock provisions one")  # fmt: skip
        return
    registry = TriggerRegistry.load(path)
    counters = CounterStore(rig.ports.storage)
    kinds = config.device.trigger_kinds
    engine = TriggerEngine(
        registry, counters, rig.ports.clock, debounce_s=config.device.trigger_debounce_s,
        sink=firmware.submit, obeyed_kinds=None if kinds is None else frozenset(kinds),
    )  # fmt: skip
    scanner = open_ble_scanner(config.hw.ble_scanner, rig.radio)
    advertiser = open_ble_advertiser(config.hw.ble_advertiser, rig.radio)
    firmware.attach_ble(
        BleLink(scanner, advertiser, engine, registry, counters,
                beacon_s=config.device.peer_beacon_s)
    )  # fmt: skip


def development_registry(serial: str) -> TriggerRegistry:
    """A registry for a simulated camera: itself as a peer, and one sensor of each kind.

    Source ids derive from the names, so every simulated camera of one machine agrees on them.
    """

    def source(name: str, kind: str, rssi_min_dbm: int) -> TriggerSource:
        source_id = int.from_bytes(hashlib.sha256(name.encode()).digest()[:4], "big")
        return TriggerSource(source_id, name, kind, os.urandom(32), rssi_min_dbm)

    me = source(serial, "peer", -90)
    sensors = [source(f"{kind}-1", kind, -80) for kind in ("holster", "lightbar", "siren", "door")]
    return TriggerRegistry(os.urandom(32), [me, *sensors], self_source_id=me.source_id)


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
