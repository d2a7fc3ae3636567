"""Listing and downloading: sealed clips only, byte for byte, resumable, never outside clips/."""

from __future__ import annotations

import http.client
import json
from urllib.parse import urlsplit

import pytest

from custody.canonical import sha256_hex
from custody.clip import segment_name
from custody.manifest import parse_manifest
from custody.verify import verify_manifest
from tests.device.offload_rig import BIG_SEGMENT, PREFIX, DockedCamera


def test_the_list_holds_every_sealed_clip_oldest_first_and_nothing_else(
    docked: DockedCamera,
) -> None:
    answer = docked.get("/clips")
    assert answer.status_code == 200
    listed = answer.json()
    ids = [c["clip_id"] for c in listed]
    assert sorted(ids) == sorted(docked.sealed)
    assert docked.open_clip not in ids
    starts = [parse_manifest(docked.manifest(i)).header.info.start_wall_ns for i in ids]
    assert starts == sorted(starts)


def test_each_listed_clip_describes_its_sealed_manifest(docked: DockedCamera) -> None:
    for entry in docked.get("/clips").json():
        data = docked.manifest(entry["clip_id"])
        seal = parse_manifest(data).seal
        assert seal is not None
        assert entry == {
            "clip_id": entry["clip_id"],
            "segment_count": seal.segment_count,
            "total_bytes": seal.total_bytes,
            "manifest_bytes": len(data),
            "manifest_sha256": sha256_hex(data),
            "recovered": False,
        }


def test_the_open_clip_cannot_be_downloaded(docked: DockedCamera) -> None:
    for path in (f"/clips/{docked.open_clip}/manifest", f"/clips/{docked.open_clip}/segments/0"):
        answer = docked.get(path)
        assert answer.status_code == 404
        assert "no sealed clip" in answer.json()["error"]


def test_the_manifest_downloads_as_stored_and_verifies(docked: DockedCamera) -> None:
    clip_id = docked.sealed[-1]  # the one the firmware recorded
    answer = docked.get(f"/clips/{clip_id}/manifest")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("application/x-ndjson")
    assert answer.content == docked.manifest(clip_id)
    assert int(answer.headers["content-length"]) == len(answer.content)
    assert verify_manifest(answer.content, docked.camera.device_key.public_key()).ok


def test_every_segment_downloads_as_stored(docked: DockedCamera) -> None:
    for clip_id in docked.sealed:
        for record in parse_manifest(docked.manifest(clip_id)).segments:
            answer = docked.get(f"/clips/{clip_id}/segments/{record.index}")
            assert answer.status_code == 200
            assert answer.headers["content-type"] == "application/octet-stream"
            assert len(answer.content) == record.size
            assert sha256_hex(answer.content) == record.cipher_sha256


def big_segment(docked: DockedCamera) -> tuple[str, bytes]:
    clip_id = docked.sealed[1]
    data = (docked.folder(clip_id) / segment_name(0)).read_bytes()
    assert len(data) > BIG_SEGMENT
    return clip_id, data


def test_a_transfer_cut_short_resumes_with_a_range_and_the_parts_join(
    docked: DockedCamera,
) -> None:
    clip_id, whole = big_segment(docked)
    path = f"/clips/{clip_id}/segments/0"
    with docked.get(path, stream=True) as cut:
        received = cut.raw.read(100_000)  # the cable comes out here
    rest = docked.get(path, headers={"Range": f"bytes={len(received)}-"})
    assert rest.status_code == 206
    assert rest.headers["content-range"] == f"bytes {len(received)}-{len(whole) - 1}/{len(whole)}"
    assert int(rest.headers["content-length"]) == len(whole) - len(received)
    assert received + rest.content == whole


@pytest.mark.parametrize(("start", "end"), [(0, 0), (10, 65_545), (70_000, 10**9)])
def test_a_bounded_range_returns_exactly_those_bytes(
    docked: DockedCamera, start: int, end: int
) -> None:
    clip_id, whole = big_segment(docked)
    answer = docked.get(f"/clips/{clip_id}/segments/0", headers={"Range": f"bytes={start}-{end}"})
    assert answer.status_code == 206
    assert answer.content == whole[start : end + 1]


def test_a_range_past_the_end_is_unsatisfiable(docked: DockedCamera) -> None:
    clip_id, whole = big_segment(docked)
    answer = docked.get(f"/clips/{clip_id}/segments/0", headers={"Range": f"bytes={len(whole)}-"})
    assert answer.status_code == 416
    assert answer.headers["content-range"] == f"bytes */{len(whole)}"
    assert "outside" in answer.json()["error"]


def test_a_multi_range_is_refused(docked: DockedCamera) -> None:
    clip_id, _ = big_segment(docked)
    answer = docked.get(f"/clips/{clip_id}/segments/0", headers={"Range": "bytes=0-1,5-9"})
    assert answer.status_code == 400


def test_a_segment_index_past_the_seal_is_not_found(docked: DockedCamera) -> None:
    clip_id = docked.sealed[0]
    count = len(parse_manifest(docked.manifest(clip_id)).segments)
    answer = docked.get(f"/clips/{clip_id}/segments/{count}")
    assert answer.status_code == 404
    assert docked.get(f"/clips/{clip_id}/segments/-1").status_code == 400


def raw_get(docked: DockedCamera, path: str) -> tuple[int, bytes]:
    """Send ``path`` exactly as written (no client-side dot-segment clean-up)."""
    parts = urlsplit(docked.url)
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=10)
    try:
        conn.request("GET", path, headers={"Authorization": f"Bearer {docked.token}"})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


@pytest.mark.parametrize(
    "path",
    [
        "/clips/../manifest",
        "/clips/..%2F..%2Faudit/manifest",
        "/clips/%2e%2e/segments/0",
        "/clips/.hidden/manifest",
        "/clips/{clip}/segments/..%2F..%2F..%2Faudit%2Fdevice.jsonl",
        "/clips/{clip}%2F..%2F..%2Faudit/manifest",
        "/clips/{clip}/segments/0%00",
    ],
)
def test_a_path_that_leaves_the_clips_folder_gets_json_and_no_file(
    docked: DockedCamera, path: str
) -> None:
    status, body = raw_get(docked, PREFIX + path.format(clip=docked.sealed[0]))
    assert status in (400, 404)
    assert "error" in json.loads(body)
    assert b"audit.start" not in body
