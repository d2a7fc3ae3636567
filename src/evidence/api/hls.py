"""HLS routes: a VOD playlist of a stored clip, and each segment's init and media parts.

Each part is verified and decrypted from its stored segment when asked for, and each request is
an audit record, like every other access. The parts are fetched with the same bearer token as
the playlist (a player such as hls.js sets it on every request).
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from custody.errors import FormatError
from evidence.api.auth import PlayerCaller
from evidence.api.models import ERROR_RESPONSES, ErrorOut, EvidenceId, SegmentIndex
from evidence.api.state import Playbacks
from evidence.errors import Conflict
from evidence.hls import PLAYLIST_TYPE, playlist, split_fmp4
from evidence.playback import PlaybackService
from evidence.tokens import Principal

router = APIRouter(prefix="/v1", responses=ERROR_RESPONSES)

_NO_STORE = {"Cache-Control": "no-store"}  # decrypted evidence: no cache keeps it
_ERRORS: dict[int | str, dict[str, object]] = {
    503: {"model": ErrorOut, "description": "the agency key cannot unwrap this clip"}
}


def _part(body: str, media_type: str) -> dict[int | str, dict[str, object]]:
    return {200: {"content": {media_type: {"schema": {"type": "string"}}}, "description": body}}


@router.get(
    "/evidence/{evidence_id}/hls/index.m3u8",
    response_class=Response,
    responses=_part("the VOD media playlist", PLAYLIST_TYPE) | _ERRORS,
)
async def hls_playlist(evidence_id: EvidenceId, playback: Playbacks, who: PlayerCaller) -> Response:
    """The clip as an HLS playlist: one fMP4 part pair per stored segment."""
    manifest = await run_in_threadpool(playback.playlist, evidence_id, who)
    return Response(playlist(manifest), media_type=PLAYLIST_TYPE, headers=_NO_STORE)


def _split(
    playback: PlaybackService, evidence_id: str, index: int, who: Principal, part: str
) -> tuple[bytes, bytes]:
    plaintext = playback.segment(evidence_id, index, who, part=f"hls {part} {index}")
    try:
        return split_fmp4(plaintext)
    except FormatError as exc:
        raise Conflict(
            f"segment {index} of evidence {evidence_id} is not a fragmented MP4 ({exc}): "
            "play the clip as playback.mp4"
        ) from exc


@router.get(
    "/evidence/{evidence_id}/hls/{index}/init.mp4",
    response_class=Response,
    responses=_part("the segment's initialisation section", "video/mp4") | _ERRORS,
)
async def hls_init(
    evidence_id: EvidenceId, index: SegmentIndex, playback: Playbacks, who: PlayerCaller
) -> Response:
    """A segment's fMP4 initialisation section (ftyp and moov), named by EXT-X-MAP."""
    init, _ = await run_in_threadpool(_split, playback, evidence_id, index, who, "init")
    return Response(init, media_type="video/mp4", headers=_NO_STORE)


@router.get(
    "/evidence/{evidence_id}/hls/{index}/media.m4s",
    response_class=Response,
    responses=_part("the segment's media fragments", "video/iso.segment") | _ERRORS,
)
async def hls_media(
    evidence_id: EvidenceId, index: SegmentIndex, playback: Playbacks, who: PlayerCaller
) -> Response:
    """A segment's fMP4 media fragments (moof and mdat)."""
    _, media = await run_in_threadpool(_split, playback, evidence_id, index, who, "media")
    return Response(media, media_type="video/iso.segment", headers=_NO_STORE)
