"""``bwc demo``: until the shift demo lands, record a few seconds from the simulated camera.

It proves the foundation end to end: real H.264 from the sim camera, written as an elementary
stream, remuxed into MP4, and decoded back so "playable" is measured, not assumed.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import av
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from bwc.commands.options import add_config_option
from bwc.config import load_config
from bwc.errors import CliError
from hw.ports.camera import Camera, CameraInfo
from hw.ports.clock import open_clock


@dataclass
class Recording:
    info: CameraInfo
    frames: int = 0
    keyframes: int = 0
    bytes: int = 0
    decoded_frames: int = 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("demo", help="run the simulated camera and show what it recorded")
    add_config_option(parser)
    parser.add_argument("--seconds", type=float, default=3.0, help="how long to record")
    parser.add_argument("--out", type=Path, default=Path("out/demo"), help="output folder")
    parser.set_defaults(handler=run_demo)


def run_demo(args: argparse.Namespace) -> int:
    if not 0 < args.seconds <= 600:
        raise CliError(f"--seconds must be between 0 and 600 (got {args.seconds:g})")
    config = load_config(getattr(args, "config", None))
    from hw.ports.camera import open_camera

    camera = open_camera(config.hw.camera, open_clock(config.hw.clock))
    args.out.mkdir(parents=True, exist_ok=True)
    h264 = args.out / "camera.h264"
    mp4 = args.out / "camera.mp4"
    console = Console(highlight=False)
    rec = record(camera, h264, args.seconds, console)
    remux_to_mp4(h264, mp4, rec.info)
    rec.decoded_frames = count_decoded_frames(mp4)
    console.print(summary(rec, config.hw.camera.camera_id, h264, mp4))
    if rec.decoded_frames != rec.frames:
        console.print(f"[red]decoded {rec.decoded_frames} of {rec.frames} frames[/red]")
        return 1
    return 0


def record(camera: Camera, path: Path, seconds: float, console: Console) -> Recording:
    camera.open()
    try:
        rec = Recording(camera.info)
        total = max(1, round(seconds * float(rec.info.fps)))
        columns = (
            TextColumn("recording"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total} frames"),
            TimeRemainingColumn(),
        )
        with path.open("wb") as out, Progress(*columns, console=console) as progress:
            task = progress.add_task("record", total=total)
            for _ in range(total):
                packet = camera.read()
                out.write(packet.data)
                rec.frames += 1
                rec.keyframes += packet.keyframe
                rec.bytes += len(packet.data)
                progress.advance(task)
        return rec
    finally:
        camera.close()


def remux_to_mp4(h264: Path, mp4: Path, info: CameraInfo) -> None:
    """Copy the elementary stream into MP4 without re-encoding.

    A raw H.264 stream has no timestamps; the camera encodes without B-frames, so decode order is
    presentation order and frame n sits at n / fps.
    """
    frame_duration = 1 / info.fps
    with (
        av.open(str(h264), format="h264") as src,
        av.open(str(mp4), "w", format="mp4") as dst,
    ):
        in_stream = src.streams.video[0]
        out_stream = dst.add_stream_from_template(in_stream)
        out_stream.time_base = frame_duration
        for index, packet in enumerate(p for p in src.demux(in_stream) if p.size):
            packet.stream = out_stream
            packet.time_base = frame_duration
            packet.pts = packet.dts = index
            packet.duration = 1
            dst.mux(packet)


def count_decoded_frames(mp4: Path) -> int:
    with av.open(str(mp4)) as container:
        return sum(1 for _ in container.decode(video=0))


def summary(rec: Recording, camera_id: str, h264: Path, mp4: Path) -> Table:
    seconds = rec.frames / float(rec.info.fps)
    table = Table(title=f"simulated camera {camera_id}", show_header=False)
    table.add_column("what")
    table.add_column("value")
    rows = [
        ("video", f"H.264 {rec.info.width}x{rec.info.height} @ {rec.info.fps} fps"),
        ("duration", f"{seconds:.2f} s"),
        ("frames", str(rec.frames)),
        ("key frames", f"{rec.keyframes} (every {rec.info.keyframe_interval} frames)"),
        ("bytes", f"{rec.bytes:,} ({rec.bytes * 8 / seconds / 1000:.0f} kbit/s)"),
        ("playable", f"{rec.decoded_frames} frames decoded back from the MP4"),
        ("elementary stream", str(h264)),
        ("MP4", str(mp4)),
    ]
    for row in rows:
        table.add_row(*row)
    return table
