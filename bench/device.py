"""Camera firmware figures: pre-event ring memory and recording-path CPU, each with its peer.

Both are fed the same pre-encoded stream (:mod:`bench.stream`), so encoding is never counted.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from bench.figures import Figure
from bench.peers import NoPeer, PeerRun, ffmpeg_segment
from bench.replay_camera import ReplayCamera
from bench.stream import START_WALL_NS, EncodedStream, Scenario
from custody.clip import MANIFEST_NAME
from custody.manifest import parse_manifest
from custody.verify import verify_clip_folder
from device.config import DeviceConfig
from device.events import Gesture, GestureInput
from device.firmware import CLIPS_ROOT, DevicePorts, Firmware
from device.recorder import DeviceKeys
from hw.ports.battery import BatteryConfig
from hw.ports.io import IoConfig
from hw.real.storage import FileStorage
from hw.sim.battery import SimBattery
from hw.sim.clock import SimClock
from hw.sim.io import open_sim_io

#: the folder that holds ``bench/``: the child process imports ``bench`` from there
REPO_ROOT = Path(__file__).resolve().parent.parent


class BenchError(Exception):
    """A benchmark could not measure what it claims to (the path under test misbehaved)."""


# ---- pre-event ring memory --------------------------------------------------------------------


def ring_memory(stream: EncodedStream, scenario: Scenario) -> Figure:
    """Resident memory the ring costs per buffered second, against the stream's own bitrate.

    The ring is filled in a fresh interpreter (:mod:`bench.ring_probe`) with the whole stream,
    longer than the ring, so it has wrapped and evicted GOPs as it does on a camera.
    """
    command = [sys.executable, "-m", "bench.ring_probe", str(stream.folder), str(scenario.ring_s)]
    done = subprocess.run(command, capture_output=True, text=True, check=False, cwd=REPO_ROOT)
    if done.returncode != 0:
        raise BenchError(f"the ring probe failed (exit {done.returncode}): {done.stderr.strip()}")
    probe = json.loads(done.stdout)
    buffered_s = probe["buffered_s"]
    if buffered_s < scenario.ring_s or probe["evicted_gops"] == 0:
        raise BenchError(
            f"the ring holds {buffered_s:.2f} s after {stream.duration_s:.0f} s of video "
            f"({probe['evicted_gops']} GOPs evicted): the stream must be longer than the ring"
        )
    grown = probe["rss_after_bytes"] - probe["rss_before_bytes"]
    return Figure(
        name="pre-event ring: resident memory per buffered second",
        value=grown / buffered_s,
        unit="bytes/s",
        peer="encoded bitrate of the buffered span",
        peer_value=probe["held_bytes"] / probe["held_s"],
        better="lower",
        note=(
            f"{scenario.describe()}; VmRSS of a fresh process grew {grown / 1e6:.1f} MB while "
            f"the ring held {buffered_s:.2f} s in {probe['gops']} GOPs "
            f"({probe['held_bytes'] / 1e6:.1f} MB encoded, {probe['evicted_gops']} GOPs "
            f"evicted, {probe['evicted_for_bytes']} for the byte cap); peak RSS "
            f"{probe['rss_peak_bytes'] / 1e6:.0f} MB; stream average "
            f"{stream.bytes_per_s * 8 / 1e6:.2f} Mbit/s"
        ),
    )


# ---- recording path CPU -----------------------------------------------------------------------


@dataclass(frozen=True)
class Recording:
    cpu_s: float  #: process CPU from the start input to the sealed clip
    wall_s: float
    video_s: float  #: footage in the sealed clip, from its manifest
    segments: int
    clip_bytes: int


def record_clip(stream: EncodedStream, scenario: Scenario, card: Path) -> Recording:
    """Run the whole firmware on the replayed packets: one clip from the first frame to the last.

    The clip starts on the first frame (a double press queued before it), so every packet goes
    through the ring and the recorder (segmenter, fMP4 mux, AES-GCM, hash chain, fsynced writes
    and renames on the real filesystem, manifest) and the clip is sealed and signed at the end.
    The clip is then verified, so a broken path cannot pass for a fast one.
    """
    packets = list(stream.packets())  # in memory before the clock starts: no file reads timed
    clock = SimClock(virtual=True, start_wall_ns=START_WALL_NS)
    card.mkdir(parents=True, exist_ok=True)
    io = open_sim_io(IoConfig(), clock)
    battery = SimBattery(BatteryConfig(), clock)
    device_key, agency_key = Ed25519PrivateKey.generate(), X25519PrivateKey.generate()
    config = DeviceConfig(
        device_id="bench-cam", serial="BWC-BENCH-0001", pre_event_s=scenario.ring_s
    )
    ports = DevicePorts(clock, ReplayCamera(stream.info, packets, clock), io, battery,
                        FileStorage(card))  # fmt: skip
    firmware = Firmware(config, ports, DeviceKeys(device_key, agency_key.public_key()))
    try:
        firmware.boot()
        firmware.submit(GestureInput(Gesture.RECORD_DOUBLE_PRESS, clock.monotonic_ns()))
        cpu0, wall0 = time.process_time(), time.perf_counter()
        for _ in packets:
            firmware.step()
        firmware.close()  # seals the open clip
        cpu_s, wall_s = time.process_time() - cpu0, time.perf_counter() - wall0
    finally:
        firmware.close()
        io.close()
        battery.close()
    return _checked(firmware, card, device_key, agency_key, cpu_s, wall_s, stream)


def _checked(
    firmware: Firmware,
    card: Path,
    device_key: Ed25519PrivateKey,
    agency_key: X25519PrivateKey,
    cpu_s: float,
    wall_s: float,
    stream: EncodedStream,
) -> Recording:
    if len(firmware.sealed) != 1:
        raise BenchError(
            f"the firmware sealed {len(firmware.sealed)} clips instead of one "
            f"(state {firmware.controller.state.value}, fault {firmware.controller.fault!r})"
        )
    folder = card / CLIPS_ROOT / firmware.sealed[0]
    verify_clip_folder(folder, device_key.public_key(), agency_key).raise_for_failure()
    segments = parse_manifest((folder / MANIFEST_NAME).read_bytes()).segments
    video_s = (segments[-1].pts_end_ns - segments[0].pts_start_ns) / 1e9
    if abs(video_s - stream.duration_s) > 1 / float(stream.info.fps) + 1e-6:
        raise BenchError(f"the clip holds {video_s:.2f} s of the {stream.duration_s:.2f} s fed")
    clip_bytes = sum(p.stat().st_size for p in folder.iterdir())
    return Recording(cpu_s, wall_s, video_s, len(segments), clip_bytes)


def recording_cpu(stream: EncodedStream, scenario: Scenario, work: Path) -> Figure:
    """Firmware CPU seconds per minute of video, against ffmpeg segmenting the same packets.

    Each side runs ``scenario.repeats`` times (a fresh card or output folder each time) and the
    median run is reported, so one cold start does not decide the figure.
    """
    runs = []
    for n in range(scenario.repeats):
        runs.append(record_clip(stream, scenario, work / f"card-{n}"))
        shutil.rmtree(work / f"card-{n}")
    ours = sorted(runs, key=lambda r: r.cpu_s)[len(runs) // 2]
    peer = _median_peer(
        [ffmpeg_segment(stream, work / f"ffmpeg-{n}") for n in range(scenario.repeats)]
    )
    note = (
        f"{scenario.describe()}; median of {scenario.repeats} runs each; "
        f"firmware: {ours.cpu_s:.3f} s CPU ({ours.wall_s:.2f} s wall) for "
        f"a {ours.video_s:.1f} s clip in {ours.segments} encrypted segments "
        f"({ours.clip_bytes / 1e6:.1f} MB, verified), each fsynced in the work folder"
    )
    if isinstance(peer, NoPeer):
        peer_value = None
        note += f"; peer not measured: {peer.reason}"
    else:
        peer_value = peer.cpu_s * 60 / stream.duration_s  # the clip holds the same seconds
        note += (
            f"; ffmpeg: {peer.cpu_s:.3f} s CPU ({peer.wall_s:.2f} s wall), "
            f"{peer.outputs} plain MP4 segments, no encryption, hashing or fsync"
        )
    return Figure(
        name=f"recording path: firmware CPU per minute of {scenario.label} video",
        value=ours.cpu_s * 60 / ours.video_s,
        unit="CPU s/min",
        peer="ffmpeg -c copy -f segment -segment_time 1",
        peer_value=peer_value,
        better="lower",
        note=note,
    )


def _median_peer(runs: list[PeerRun | NoPeer]) -> PeerRun | NoPeer:
    """The median run; the first failure if any run failed (a flaky peer is not a figure)."""
    missing = [r for r in runs if isinstance(r, NoPeer)]
    if missing:
        return missing[0]
    done = sorted((r for r in runs if isinstance(r, PeerRun)), key=lambda r: r.cpu_s)
    return done[len(done) // 2]
