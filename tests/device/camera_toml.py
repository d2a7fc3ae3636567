"""The configuration file of a sim camera run as a real ``bwc device run`` process in tests.

A small, real-time camera (160x120 at 10 fps) whose card and keys live under one folder; each
test names only the ``[device]`` and ``[camera]`` settings it is about.
"""

from __future__ import annotations

import json
from pathlib import Path

CAMERA = {"width": 160, "height": 120, "fps": 10, "keyframe_interval": 10}


def sim_camera_toml(
    root: Path, *, camera: dict[str, object] | None = None, **device: object
) -> str:
    """``[clock]``, ``[camera]``, ``[storage]`` and ``[device]`` tables for a camera in ``root``.

    The card is ``root/card`` and the keys folder ``root/keys``; ``device`` settings come over
    the defaults (one second of pre-event, the offload API on a free port).
    """
    device = {"pre_event_s": 1, "keys_dir": str(root / "keys"), "offload_port": 0, **device}
    lines = ["[clock]", "virtual = false", "[camera]"]
    lines += [f"{k} = {json.dumps(v)}" for k, v in {**CAMERA, **(camera or {})}.items()]
    lines += ["[storage]", f"root = {json.dumps(str(root / 'card'))}", "[device]"]
    lines += [f"{k} = {json.dumps(v)}" for k, v in device.items()]  # JSON scalars are TOML's
    return "\n".join(lines) + "\n"
