"""Measuring each stored clip, from the store's copy and the media itself, never from the plan.

For every evidence record the store lists: its manifest and segments are fetched over the store's
API and verified with custody (device signature, hash chain, every segment, decryption with the
agency key); its receipt is checked against the store's key and that manifest; the store's
playback (decrypted with the agency key) is saved as the export and decoded with PyAV. The
pre-event time is read from the picture: the sim camera burns each frame's wall-clock time into
a machine-readable stamp, so the first decoded frame says when the clip's footage begins, and the
manifest header says when the start input came (the first frame's wall time plus the
``pre_event`` duration the firmware recorded). Whether a clip was erased is read from the
camera's card after the dock ran.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import numpy as np
import requests

from bwc.demo.cameras import ShiftCamera
from bwc.demo.errors import ShiftError
from bwc.demo.site import Site
from custody.clip import MemorySegments
from custody.keys import load_agency_private_key, load_verify_key
from custody.manifest import Manifest, parse_manifest
from custody.receipt import parse_receipt, verify_receipt
from custody.verify import verify_clip
from device.firmware import AUDIT_LOG
from hw.sim.testcard import read_stamp

TIMEOUT_S = 30.0
#: how the controller names the input that started a clip (device audit ``state`` cause)
CAUSES = {"record_double_press": "double press", "trigger:holster": "holster"}


@dataclass(frozen=True)
class Media:
    """What PyAV decodes from an export."""

    frames: int
    duration_s: float
    first_frame_wall_ms: int  #: the burned-in stamp of the first frame


@dataclass(frozen=True)
class StoredClip:
    clip_id: str
    evidence_id: str
    camera: str
    device_id: str
    officer: str
    manifest: Manifest
    media: Media
    export: Path
    bytes: int
    verified: bool
    verify_problem: str | None
    receipt_verified: bool
    erased: bool
    trigger: str
    buffered_s: float | None

    @property
    def start_input_wall_ns(self) -> int:
        info = self.manifest.header.info
        return info.start_wall_ns + info.pre_event_ns

    @property
    def pre_event_s(self) -> float:
        """Footage before the start input, as the picture shows it."""
        return (self.start_input_wall_ns / 1e6 - self.media.first_frame_wall_ms) / 1000

    @property
    def markers(self) -> int:
        return sum(1 for e in self.manifest.events if e.kind == "marker")


class StoreReader:
    """The store's API as records staff use it (their development token)."""

    def __init__(self, url: str, token: str) -> None:
        self._url = url
        self._http = requests.Session()
        self._http.headers["Authorization"] = f"Bearer {token}"

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        try:
            answer = self._http.get(f"{self._url}/v1{path}", timeout=TIMEOUT_S, **kwargs)
        except requests.RequestException as exc:
            raise ShiftError(f"the evidence store did not answer GET {path}: {exc}") from exc
        if answer.status_code >= 400:
            raise ShiftError(f"the evidence store refused GET {path}: {answer.text[:200]}")
        return answer

    def close(self) -> None:
        self._http.close()


def measure_clips(site: Site, reader: StoreReader, cameras: list[ShiftCamera]) -> list[StoredClip]:
    by_device = {c.folder.officer.device_id: c for c in cameras}
    site.exports_dir.mkdir(parents=True, exist_ok=True)
    found = [
        _measure(site, reader, record, by_device)
        for record in reader.get("/evidence", params={"limit": 1000}).json()
    ]
    return sorted(found, key=lambda c: (c.manifest.header.info.start_wall_ns, c.camera))


def _measure(
    site: Site, reader: StoreReader, record: dict[str, Any], by_device: dict[str, ShiftCamera]
) -> StoredClip:
    evidence_id = str(record["evidence_id"])
    data = reader.get(f"/evidence/{evidence_id}/manifest").content
    manifest = parse_manifest(data)
    header = manifest.header
    camera = by_device.get(header.info.device_id)
    if camera is None:
        raise ShiftError(f"the store holds a clip of {header.info.device_id}, not a shift camera")
    segments = {
        s.index: reader.get(f"/evidence/{evidence_id}/segments/{s.index}").content
        for s in manifest.segments
    }
    report = verify_clip(
        MemorySegments(segments), data,
        load_verify_key(camera.folder.device.public), load_agency_private_key(site.agency.private),
    )  # fmt: skip
    receipt = reader.get(f"/evidence/{evidence_id}/receipt").content
    receipt_ok = verify_receipt(receipt, load_verify_key(site.store.public), data).ok
    export = site.exports_dir / f"{camera.serial}-{header.clip_id[:8]}.mp4"
    _download(reader, f"/evidence/{evidence_id}/playback.mp4", export)
    problem = report.first_failure
    seal = manifest.seal
    return StoredClip(
        clip_id=header.clip_id, evidence_id=evidence_id, camera=camera.serial,
        device_id=header.info.device_id, officer=header.info.officer_id, manifest=manifest,
        media=decode(export), export=export,
        bytes=seal.total_bytes if seal is not None else sum(s.size for s in manifest.segments),
        verified=report.ok, verify_problem=problem.describe() if problem is not None else None,
        receipt_verified=receipt_ok and parse_receipt(receipt).evidence_id == evidence_id,
        erased=header.clip_id not in camera.clips_on_card(),
        trigger=started_by(camera, manifest), buffered_s=camera.buffered_s.get(header.clip_id),
    )  # fmt: skip


def _download(reader: StoreReader, path: str, out: Path) -> None:
    answer = reader.get(path, stream=True)
    part = out.with_name(f".{out.name}.part")
    with part.open("wb") as file:
        for chunk in answer.iter_content(256 * 1024):
            file.write(chunk)
    part.replace(out)


def decode(path: Path) -> Media:
    """Decode every video frame of ``path``; its length and its first frame's stamp."""
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            times: list[float] = []
            first_ms: int | None = None
            for frame in container.decode(stream):
                if first_ms is None:
                    stamp = read_stamp(np.asarray(frame.to_ndarray(format="gray"), dtype=np.uint8))
                    if stamp is None:
                        raise ShiftError(f"{path}: the first frame carries no readable stamp")
                    first_ms = stamp.wall_ms
                times.append(float(frame.time or 0.0))
            rate = stream.average_rate
    except av.FFmpegError as exc:
        raise ShiftError(f"{path} does not decode: {exc}") from exc
    if first_ms is None:
        raise ShiftError(f"{path} holds no video frame")
    frame_s = 1 / float(rate) if rate else 0.0
    return Media(len(times), times[-1] - times[0] + frame_s, first_ms)


def started_by(camera: ShiftCamera, manifest: Manifest) -> str:
    """Why the clip started, as the camera's audit log says: the first change to recording at
    or after the clip's start input (its ``cause``)."""
    info = manifest.header.info
    at = info.start_monotonic_ns + info.pre_event_ns
    log = camera.folder.card / AUDIT_LOG
    for line in log.read_bytes().splitlines():
        record = json.loads(line)
        data = record.get("data", {})
        starts = record["event"] == "state" and data.get("to") == "recording"
        if starts and record["monotonic_ns"] >= at:
            cause = str(data.get("cause", "?"))
            if cause.startswith("peer:"):
                return f"peer beacon of {cause.removeprefix('peer:')}"
            return CAUSES.get(cause, cause)
    return "?"
