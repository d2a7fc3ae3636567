"""Child process: fill a PreEventRing from the encoded stream and report its resident memory.

Run by :func:`bench.device.ring_memory` as ``python -m bench.ring_probe FOLDER RING_S`` in a fresh
interpreter, so the resident set holds nothing but the interpreter, the imports and the ring:
no cached stream, no encoder, no earlier figure. It prints one JSON object on stdout.

Memory is the resident set (``VmRSS`` in ``/proc/self/status``), read just before the first
packet and again after the last. That is what the camera actually pays for the ring: packet
payloads, the Python objects around them, and whatever the allocator keeps after evicted GOPs
were freed. ``resource.getrusage`` was not used because it only reports the peak (``ru_maxrss``),
which a freed-and-reused buffer never lowers; the peak (``VmHWM``) is reported alongside.
Only Linux has ``/proc``, and the camera runs Linux.
"""

from __future__ import annotations

import gc
import json
import sys
from pathlib import Path

from bench.stream import EncodedStream
from device.config import DeviceConfig
from device.ring import PreEventRing


def _status_kib(field: str) -> int:
    """A ``kB`` field of ``/proc/self/status`` (``VmRSS``, ``VmHWM``), in KiB."""
    try:
        status = Path("/proc/self/status").read_text(encoding="utf-8")
    except OSError as exc:
        raise SystemExit(
            f"cannot read /proc/self/status ({exc.strerror}): the ring benchmark needs Linux"
        ) from exc
    for line in status.splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise SystemExit(f"/proc/self/status has no {field} line: the ring benchmark needs Linux")


def probe(folder: Path, ring_s: float) -> dict[str, float | int]:
    stream = EncodedStream.load(folder)
    ring = PreEventRing(
        ring_s, DeviceConfig().pre_event_max_bytes, keep_audio=False, fps=stream.info.fps
    )
    packets = stream.packets()
    gc.collect()
    before_kib = _status_kib("VmRSS")
    for packet in packets:
        ring.push_video(packet)
    del packet  # the loop variable would keep the newest packet alive outside the ring
    gc.collect()
    after_kib = _status_kib("VmRSS")
    # The encoded bytes of exactly what the ring holds, counted from the stream's own index
    # (not from the ring's books): from its first key frame to the end of the stream.
    first = ring.snapshot().video[0].pts
    held = [i for i, pts in enumerate(stream.pts) if pts >= first]
    frame = 1 / (stream.info.fps * stream.info.time_base)
    held_s = float((stream.pts[-1] + frame - first) * stream.info.time_base)
    return {
        "rss_before_bytes": before_kib * 1024,
        "rss_after_bytes": after_kib * 1024,
        "rss_peak_bytes": _status_kib("VmHWM") * 1024,
        "buffered_s": ring.buffered_s,
        "held_s": held_s,
        "held_packets": len(held),
        "held_bytes": sum(stream.sizes[i] for i in held),
        "ring_bytes": ring.bytes,
        "gops": ring.gops,
        "evicted_gops": ring.evicted_gops,
        "evicted_for_bytes": ring.evicted_for_bytes,
    }


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m bench.ring_probe STREAM_FOLDER RING_SECONDS", file=sys.stderr)
        return 2
    print(json.dumps(probe(Path(argv[0]), float(argv[1]))))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
