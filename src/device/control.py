"""The control socket of ``bwc device run``: press buttons, dock, trigger, read status.

A Unix-domain socket speaking JSON Lines: one request object per line, one reply per line.
Requests: ``{"cmd": "status"}``, ``{"cmd": "press", "button": "record", "gesture": "double"}``
(gesture ``single``, ``double`` or ``hold``; button ``record``, ``function`` or ``both``),
``{"cmd": "trigger", "kind": "holster", "source_id": "HOLSTER-7"}``, ``{"cmd": "dock"}``,
``{"cmd": "undock"}``, ``{"cmd": "battery", "percent": 2}``, ``{"cmd": "shutdown"}``,
``{"cmd": "triggers"}`` (the trigger engine's counts and latest decisions) and, in sim,
``{"cmd": "advert", "company_id": 65535, "payload": "<hex>", "rssi": -60}``, which plays an
advertisement into the camera's simulated air as if a sensor nearby had sent it.
Replies are ``{"ok": true, ...}`` or ``{"ok": false, "error": "what was wrong"}``.

Button presses drive the sim I/O's pins, so they travel the same path as a real press: gpiozero
edge, gesture detector, controller. Only the sim rig has pins to drive and a battery to set.
"""

from __future__ import annotations

import json
import os
import secrets
import socketserver
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from device.events import DockInput, PowerInput, TriggerInput
from device.firmware import Firmware
from hw.ports.ble import Advertisement
from hw.ports.clock import Clock
from hw.ports.io import Button
from hw.sim.battery import SimBattery
from hw.sim.ble import SimRadio
from hw.sim.io import SimOfficerIo

MAX_REQUEST_BYTES = 4096
TAP_S = 0.08  #: how long a simulated finger keeps a button down for a press
GAP_S = 0.12  #: between the two presses of a double press


class ControlError(ValueError):
    """A request the control socket cannot carry out; the reply carries the message."""


@dataclass(frozen=True)
class SimControls:
    """The sim rig's test controls the socket may use."""

    io: SimOfficerIo
    battery: SimBattery
    clock: Clock
    radio: SimRadio | None = None


class ControlServer:
    def __init__(self, firmware: Firmware, path: Path, sim: SimControls | None) -> None:
        self._firmware = firmware
        self._sim = sim
        self.path = path
        path.unlink(missing_ok=True)
        handler = _handler_for(self)
        self._server = socketserver.ThreadingUnixStreamServer(str(path), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self.path.unlink(missing_ok=True)

    def handle(self, request: dict[str, Any]) -> dict[str, Any]:
        cmd = request.get("cmd")
        now = self._firmware.ports.clock.monotonic_ns()
        match cmd:
            case "status":
                return self._firmware.status()
            case "press":
                self._press(str(request.get("button", "")), str(request.get("gesture", "")))
            case "trigger":
                kind, source = request.get("kind"), request.get("source_id")
                if not isinstance(kind, str) or not isinstance(source, str):
                    raise ControlError("trigger needs string fields 'kind' and 'source_id'")
                self._firmware.submit(TriggerInput(source, kind, now))
            case "dock" | "undock":
                if self._sim is not None:
                    self._sim.battery.set_charging(cmd == "dock")
                self._firmware.submit(DockInput(docked=cmd == "dock", at_ns=now))
            case "battery":
                self._set_battery(request.get("percent"))
            case "shutdown":
                self._firmware.submit(PowerInput(on=False, at_ns=now))
            case "triggers":
                return self._triggers()
            case "advert":
                return {"delivered": self._advert(request)}
            case _:
                raise ControlError(
                    f"unknown command {cmd!r}: use status, press, trigger, dock, undock, "
                    "battery, shutdown, triggers or advert"
                )
        return {}

    def _press(self, button: str, gesture: str) -> None:
        io = self._require_sim().io
        buttons: dict[str, tuple[Button, ...]] = {
            "record": (io.record_button,),
            "function": (io.function_button,),
            "both": (io.record_button, io.function_button),
        }
        if button not in buttons:
            raise ControlError(f"unknown button {button!r}: use record, function or both")
        if gesture not in ("single", "double", "hold"):
            raise ControlError(f"unknown gesture {gesture!r}: use single, double or hold")
        clock = self._require_sim().clock
        hold_s = self._firmware.config.hold_s + 0.2
        presses = 2 if gesture == "double" else 1
        for n in range(presses):
            for b in buttons[button]:
                io.press(b)
            clock.sleep(hold_s if gesture == "hold" else TAP_S)
            for b in buttons[button]:
                io.release(b)
            if n + 1 < presses:
                clock.sleep(GAP_S)

    def _triggers(self) -> dict[str, Any]:
        link = self._firmware.ble
        if link is None:
            raise ControlError("this camera has no BLE link: it hears no triggers")
        return {
            "stats": link.engine.stats(),
            "recent": [d.to_json() for d in list(link.engine.recent)],
        }

    def _advert(self, request: dict[str, Any]) -> int:
        radio = self._require_sim().radio
        if radio is None:
            raise ControlError("this camera's radio is not simulated: use a BLE adapter")
        company, data, rssi = request.get("company_id"), request.get("payload"), request.get("rssi")
        if not isinstance(company, int) or not isinstance(data, str) or not isinstance(rssi, int):
            raise ControlError("advert needs integer 'company_id' and 'rssi' and hex 'payload'")
        try:
            payload = bytes.fromhex(data)
        except ValueError as exc:
            raise ControlError(f"advert 'payload' is not hex: {exc}") from exc
        address = ":".join(f"{b:02X}" for b in [0xC0 | secrets.randbelow(64), *os.urandom(5)])
        return radio.inject(Advertisement({company: payload}), address, rssi)

    def _set_battery(self, percent: object) -> None:
        if not isinstance(percent, int | float) or not 0 <= percent <= 100:
            raise ControlError(f"battery needs 'percent' between 0 and 100 (got {percent!r})")
        self._require_sim().battery.set_percent(float(percent))

    def _require_sim(self) -> SimControls:
        if self._sim is None:
            raise ControlError("this camera runs on real hardware: there is nothing to simulate")
        return self._sim


def _handler_for(server: ControlServer) -> type[socketserver.StreamRequestHandler]:
    class Handler(socketserver.StreamRequestHandler):
        def handle(self) -> None:
            for line in iter(lambda: self.rfile.readline(MAX_REQUEST_BYTES + 1), b""):
                self.wfile.write(json.dumps(_reply(server, line)).encode() + b"\n")

    return Handler


def _reply(server: ControlServer, line: bytes) -> dict[str, Any]:
    try:
        if len(line) > MAX_REQUEST_BYTES:
            raise ControlError(f"request longer than {MAX_REQUEST_BYTES} bytes")
        request = json.loads(line)
        if not isinstance(request, dict):
            raise ControlError("a request is one JSON object per line")
        return {"ok": True, **server.handle(request)}
    except (ControlError, ValueError) as exc:
        return {"ok": False, "error": str(exc)}


def send(path: Path, request: dict[str, Any], *, timeout_s: float = 30.0) -> dict[str, Any]:
    """Send one request to a running camera's control socket and return its reply."""
    import socket

    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout_s)
        sock.connect(str(path))
        sock.sendall(json.dumps(request).encode() + b"\n")
        reply: dict[str, Any] = json.loads(sock.makefile("rb").readline())
        return reply
