"""The bench's rig description (TOML): what hardware a HIL run uses, as pydantic models.

``--rig sim`` needs no file: :func:`sim_rig_file` describes the simulated bench. A bench file names
the real resources (docs/bench-rig.example.toml); unknown keys are errors, so a typo is caught
before anything is powered.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from hw.ports.battery import BatteryConfig
from hw.ports.camera import CameraConfig
from hw.ports.io import IoConfig
from hw.ports.microphone import MicrophoneConfig
from hw.ports.usb import UsbConfig
from tests.hil.netns import sim_network

SIM_CARD_BYTES = 256 * 1024**2
TRIGGER_SOURCE_M = 1.0  # the sim trigger source sits a metre from the camera

#: what a rig may offer; tests ask for them with ``@pytest.mark.needs(...)``
Capability = Literal[
    "camera", "microphone", "buttons", "trigger_source", "peer_radio", "dock", "power", "storage"
]

CAPABILITIES: tuple[str, ...] = get_args(Capability)


class RigError(Exception):
    """The rig cannot be used: one line per problem, each saying what to fix."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


class _Table(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BleRig(_Table):
    """Two HCI adapters: the camera's own, and one that plays the trigger sensors and peers."""

    camera: str = "hci0"
    trigger_source: str = "hci1"


class DockPort(_Table):
    usb: UsbConfig = UsbConfig(adapter="libusb")
    #: the dock bay the camera's USB cable is in, as ``bus-port.port`` (``lsusb -t``)
    bay: str = "1-1"
    #: the USB serial number the camera's gadget presents (the dock enrols it by serial)
    serial: str = "BWC1-000042"
    #: where the camera's offload API listens: its end of the USB network link (CDC-NCM gadget)
    camera_host: str = "fe80::1%usb0"
    camera_port: int = Field(default=8080, ge=1, le=65535)

    @property
    def link(self) -> str:
        """The offload API's URL as the dock reaches it."""
        host = f"[{self.camera_host}]" if ":" in self.camera_host else self.camera_host
        return f"http://{host.replace('%', '%25')}:{self.camera_port}"


class PowerSwitch(_Table):
    """Switches the camera's storage supply: argv lists, run without a shell."""

    off: list[str] = Field(min_length=1)
    on: list[str] = Field(min_length=1)
    #: the storage comes back at ``storage_root`` within this many seconds of ``on``
    settle_s: float = Field(default=15.0, gt=0, le=120)


class ButtonLines(_Table):
    """BCM GPIO outputs wired (through an opto-coupler) across the camera's buttons."""

    record: int = Field(ge=0, le=53)
    function: int | None = Field(default=None, ge=0, le=53)
    #: how long a press holds the line
    press_s: float = Field(default=0.05, gt=0, le=1)


class StorageRig(_Table):
    #: where the camera's card is mounted; each test records into its own folder under it
    root: Path = Path("/media/bwc-card")


class Targets(_Table):
    #: holster advertisement to recording, on this bench
    trigger_latency_ms: float = Field(default=500.0, gt=0)


class RigFile(_Table):
    name: str = "bench"
    kind: Literal["sim", "real"] = "real"
    camera: CameraConfig = CameraConfig(adapter="picamera2", width=640, height=360, fps=30)
    microphone: MicrophoneConfig | None = None
    io: IoConfig = IoConfig(adapter="gpiozero")
    ble: BleRig | None = None
    dock: DockPort | None = None
    power: PowerSwitch | None = None
    buttons: ButtonLines | None = None
    #: a bench supply has no fuel gauge: the sim gauge (full) unless a MAX17048 is wired
    battery: BatteryConfig = BatteryConfig()
    storage: StorageRig = StorageRig()
    targets: Targets = Targets()

    def capabilities(self) -> frozenset[str]:
        have = {"camera", "storage"}
        optional = {"microphone": self.microphone, "dock": self.dock, "power": self.power,
                    "buttons": self.buttons}  # fmt: skip
        have |= {name for name, table in optional.items() if table is not None}
        if self.ble is not None:
            have |= {"trigger_source", "peer_radio"}
        return frozenset(have)


def sim_rig_file() -> RigFile:
    """The simulated bench: every resource, from the sim adapters."""
    return RigFile(
        name="sim",
        kind="sim",
        camera=CameraConfig(width=160, height=120, fps=10, keyframe_interval=10, bitrate=200_000),
        microphone=MicrophoneConfig(sample_rate=16_000, chunk_ms=50),
        io=IoConfig(),
        ble=BleRig(),
        dock=DockPort(usb=UsbConfig(), bay="1-1", camera_host="127.0.0.1"),
        power=PowerSwitch(off=["sim-storage", "power-cut"], on=["sim-storage", "restart"]),
        buttons=ButtonLines(record=17, function=27),
        storage=StorageRig(root=Path("card")),
    )


def load_rig_file(path: Path) -> RigFile:
    """Parse a rig file; every problem in it is one line of the :class:`RigError`."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RigError(
            [f"rig file {path} does not exist: pass --rig sim or a bench file"]
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise RigError([f"rig file {path} cannot be read: {exc}"]) from exc
    except tomllib.TOMLDecodeError as exc:
        raise RigError([f"rig file {path} is not valid TOML: {exc}"]) from exc
    try:
        return RigFile.model_validate(data)
    except ValidationError as exc:
        raise RigError(
            [f"{path}: [{'.'.join(map(str, e['loc']))}] {e['msg']}" for e in exc.errors()]
        ) from exc


@dataclass(frozen=True)
class Rig:
    source: str  #: "sim", or the rig file's path
    file: RigFile
    #: how the dock reaches the camera's offload API; None: a sim rig's, decided on first use
    link: str | None = None

    @property
    def network(self) -> str:
        return self.link if self.link is not None else sim_network()

    @property
    def kind(self) -> str:
        return self.file.kind

    @property
    def capabilities(self) -> frozenset[str]:
        return self.file.capabilities()

    def resources(self) -> list[tuple[str, str]]:
        """(resource, what plays it) for the run's summary and report."""
        f, sim = self.file, self.kind == "sim"
        cam = f.camera
        rows = [("camera", f"{'SimCamera (PyAV libx264)' if sim else 'picamera2'} "
                           f"{cam.width}x{cam.height}@{cam.fps}")]  # fmt: skip
        if f.microphone is not None:
            rows.append(("microphone", "SimMicrophone tone" if sim else "pyaudio"))
        if f.ble is not None:
            rows.append(("ble camera", "SimRadio" if sim else f"bleak + BlueZ on {f.ble.camera}"))
            rows.append(("trigger source", f"SimRadio at {TRIGGER_SOURCE_M} m" if sim
                         else f"BlueZ + bleak on {f.ble.trigger_source}"))  # fmt: skip
        if f.dock is not None:
            rows.append(("dock", f"{'pyusb virtual backend' if sim else 'libusb'}, "
                                 f"bay {f.dock.bay}"))  # fmt: skip
        if f.power is not None:
            rows.append(("power", "SimStorage power cut" if sim else " ".join(f.power.off)))
        if f.buttons is not None:
            rows.append(("buttons", "gpiozero MockFactory" if sim
                         else f"GPIO {f.buttons.record} -> record button"))  # fmt: skip
        rows.append(("storage", f"SimStorage {SIM_CARD_BYTES >> 20} MiB" if sim
                     else str(f.storage.root)))  # fmt: skip
        rows.append(("network", self.network))
        return rows
