"""What a clip's manifest opens with: the header, and the pre-event time configured and recorded.

The clip writer writes these lines first, in the clip's staging folder (docs/formats/manifest.md).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey

from custody.envelope import wrap_data_key
from custody.keys import raw_public
from custody.manifest import ClipHeader, ClipInfo, EventRecord
from custody.manifest_writer import ManifestWriter
from device.config import DeviceConfig
from hw.ports.clock import Clock


@dataclass(frozen=True)
class ClipStart:
    """Why and from when a clip records; the header keeps all of it."""

    #: the inputs that started it, each with a string ``kind`` ("button", "holster", "peer", ...)
    triggers: Sequence[Mapping[str, str | int]]
    #: monotonic time of the clip's first frame (the oldest pre-event frame it includes)
    first_frame_monotonic_ns: int
    #: buffered footage before the start input that the clip actually includes
    pre_event_ns: int = 0
    #: camera wall clock minus dock time at the last dock time sync
    time_sync_offset_ns: int = 0


def clip_head(
    clip_id: str,
    data_key: bytes,
    config: DeviceConfig,
    device_key: Ed25519PrivateKey,
    agency_public: X25519PublicKey,
    clock: Clock,
    start: ClipStart,
) -> bytes:
    """The first manifest lines: the header, then the configured and actual pre-event time."""
    now_mono, now_wall = clock.monotonic_ns(), clock.wall_ns()
    if not 0 <= start.first_frame_monotonic_ns <= now_mono:
        raise ValueError(
            f"first frame at {start.first_frame_monotonic_ns} ns is not in 0..now ({now_mono})"
        )
    header = ClipHeader(
        clip_id=clip_id,
        device_public_key=raw_public(device_key),
        data_key=wrap_data_key(data_key, agency_public, clip_id),
        info=ClipInfo(
            device_id=config.device_id or config.serial,
            device_serial=config.serial,
            officer_id=config.officer_id,
            firmware_version=config.firmware_version,
            start_wall_ns=now_wall - (now_mono - start.first_frame_monotonic_ns),
            start_monotonic_ns=start.first_frame_monotonic_ns,
            time_sync_offset_ns=start.time_sync_offset_ns,
            triggers=tuple(dict(t) for t in start.triggers),
            pre_event_ns=start.pre_event_ns,
            pre_event_audio=config.pre_event_audio,
            profile_id=config.profile_id,
        ),
    )
    lines: list[bytes] = []
    manifest = ManifestWriter.start(lines.append, header)
    # The header holds the pre-event time the clip has; this records what was configured.
    pre_event = {
        "configured_ns": round(config.pre_event_s * 1e9),
        "actual_ns": start.pre_event_ns,
        "audio": config.pre_event_audio,
    }
    manifest.add_event(
        EventRecord(
            "pre_event", header.info.start_wall_ns, start.first_frame_monotonic_ns, pre_event
        )
    )
    return b"".join(lines)
