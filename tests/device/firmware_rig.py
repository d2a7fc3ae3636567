"""A whole camera on sim hardware with a virtual clock, driven frame by frame from a test."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import av
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from custody.clip import MANIFEST_NAME, FolderSegments, decrypt_segments
from custody.export import export_mp4
from custody.manifest import Manifest, parse_manifest
from custody.report import Report
from custody.verify import verify_clip_folder
from device.config import DeviceConfig
from device.events import Input
from device.firmware import CLIPS_ROOT, DevicePorts, Firmware
from device.recorder import DeviceKeys
from hw.ports.battery import BatteryConfig
from hw.ports.camera import CameraConfig
from hw.ports.io import IoConfig
from hw.ports.microphone import MicrophoneConfig
from hw.sim.battery import SimBattery
from hw.sim.camera import SimCamera
from hw.sim.clock import SimClock
from hw.sim.io import SimOfficerIo, open_sim_io
from hw.sim.microphone import SimMicrophone
from hw.sim.storage import SimStorage

FPS = 10
GOP = 10  # one key frame a second: one segment a second


@dataclass
class Camera:
    """The firmware plus the sim parts a test pokes at."""

    firmware: Firmware
    clock: SimClock
    io: SimOfficerIo
    battery: SimBattery
    storage: SimStorage
    device_key: Ed25519PrivateKey
    agency_key: X25519PrivateKey

    def run(self, seconds: float) -> None:
        for _ in range(round(seconds * FPS)):
            self.firmware.step()

    def submit(self, event: Input) -> None:
        self.firmware.submit(event)

    def now(self) -> int:
        return self.clock.monotonic_ns()

    def tap(self, times: int = 1) -> None:
        """Press the record button ``times`` in quick succession (between frames)."""
        for n in range(times):
            self.io.press(self.io.record_button)
            self.clock.advance(0.05)
            self.io.release(self.io.record_button)
            if n + 1 < times:
                self.clock.advance(0.1)

    def hold_record(self, seconds: float = 3.2) -> None:
        """Hold the record button while the camera keeps running."""
        self.io.press(self.io.record_button)
        self.run(seconds)
        self.io.release(self.io.record_button)

    def clip_folder(self, clip_id: str) -> Path:
        return self.storage.root / CLIPS_ROOT / clip_id

    def clip_ids(self) -> list[str]:
        root = self.storage.root / CLIPS_ROOT
        return sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))

    def verify(self, clip_id: str) -> Report:
        return verify_clip_folder(
            self.clip_folder(clip_id), self.device_key.public_key(), self.agency_key
        )

    def manifest(self, clip_id: str) -> Manifest:
        return parse_manifest((self.clip_folder(clip_id) / MANIFEST_NAME).read_bytes())

    def export(self, clip_id: str, out: Path) -> list[av.VideoFrame]:
        folder = self.clip_folder(clip_id)
        plaintexts = decrypt_segments(
            FolderSegments(folder), self.manifest(clip_id), self.agency_key
        )
        export_mp4(plaintexts, out)
        with av.open(str(out)) as container:
            return list(container.decode(video=0))


def build_camera(
    card: Path,
    device_key: Ed25519PrivateKey,
    agency_key: X25519PrivateKey,
    config: DeviceConfig,
    *,
    audio: bool = True,
    capacity_bytes: int = 256 * 1024**2,
    clock: SimClock | None = None,
) -> Camera:
    clock = clock or SimClock(virtual=True, start_wall_ns=1_700_000_000_000_000_000)
    io = open_sim_io(IoConfig(), clock)
    battery = SimBattery(BatteryConfig(), clock)
    storage = SimStorage(card, capacity_bytes=capacity_bytes)
    camera = SimCamera(
        CameraConfig(width=160, height=120, fps=FPS, keyframe_interval=GOP, bitrate=200_000),
        clock,
    )
    mic = SimMicrophone(MicrophoneConfig(sample_rate=16_000, chunk_ms=50), clock) if audio else None
    ports = DevicePorts(clock, camera, io, battery, storage, microphone=mic)
    keys = DeviceKeys(device_key, agency_key.public_key())
    firmware = Firmware(config, ports, keys)
    return Camera(firmware, clock, io, battery, storage, device_key, agency_key)
