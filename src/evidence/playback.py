"""Playback: a stored clip decrypted for an authorised viewer. No HTTP here.

Before anything is decrypted the stored manifest must still hash to what the receipt names, and
each stored segment must match the manifest (size and ciphertext SHA-256); each plaintext must
match it too. The MP4 is built in full before it is handed out, in a private temporary folder
that is removed at once (the caller gets an open, nameless file), so a fault anywhere means
nothing was shown and no decrypted file is left behind. Every playback and every refusal is an
audit record naming who.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from custody.canonical import sha256_hex
from custody.errors import CustodyError, FormatError, IntegrityError
from custody.export import export_mp4
from custody.manifest import Manifest, SegmentRecord, parse_manifest
from custody.segment import open_segment
from evidence.agency_keys import AgencyKey
from evidence.audit_log import StoreAudit
from evidence.errors import (
    AgencyKeyUnavailable,
    Conflict,
    EvidenceError,
    Forbidden,
    NotFound,
    VerificationFailed,
)
from evidence.ingest import IngestService, manifest_key, segment_key
from evidence.storage import BlobStore, Evidence, MetadataStore
from evidence.tokens import Principal, Role

_MAX_REASON = 500  # characters of a refusal kept in the audit record
NO_KEY = (
    "playback needs the agency private key: set agency_key (a PEM file, mode 0600) or "
    "agency_kms (url and token_file of the agency key service) in the store's configuration"
)


@dataclass(frozen=True)
class PlayableClip:
    """A verified clip ready to decrypt: its record, its manifest and its data key."""

    evidence: Evidence
    manifest: Manifest
    data_key: bytes


@dataclass
class Mp4:
    """A decrypted MP4 as an open file with no name on disk; close it when sent."""

    file: BinaryIO
    size: int
    clip_id: str


class PlaybackService:
    def __init__(
        self,
        metadata: MetadataStore,
        blobs: BlobStore,
        audit: StoreAudit,
        agency_key: AgencyKey | None,
        *,
        tmp_dir: Path | None = None,
    ) -> None:
        self._metadata, self._blobs, self._audit = metadata, blobs, audit
        self._key, self._tmp_dir = agency_key, tmp_dir

    @classmethod
    def beside(
        cls, service: IngestService, agency_key: AgencyKey | None, *, tmp_dir: Path | None = None
    ) -> PlaybackService:
        """Playback over the same backends and audit log as the ingest service."""
        return cls(service.metadata, service.blobs, service.audit, agency_key, tmp_dir=tmp_dir)

    def mp4(self, evidence_id: str, who: Principal, *, detail: str = "") -> Mp4:
        """The whole clip as one standard MP4 (one timeline), verified and decrypted.

        ``detail`` (such as the byte range asked for) goes into the audit record.
        """
        with self._refusals(who, evidence_id, "mp4"):
            clip = self._playable(evidence_id, who)
            with tempfile.TemporaryDirectory(prefix="bwc-playback-", dir=self._tmp_dir) as tmp:
                out = Path(tmp) / "clip.mp4"
                try:
                    export_mp4(self._plaintexts(clip), out)
                except CustodyError as exc:
                    raise Conflict(
                        f"evidence {evidence_id} cannot be played as MP4 ({exc}): download its "
                        "segments and check them with 'bwc verify --agency-key'"
                    ) from exc
                # Opened, then unlinked with the folder: only this handle reaches the plaintext.
                file = out.open("rb")
            try:
                size = os.fstat(file.fileno()).st_size
                self._played(who, clip.evidence, "mp4", detail)
            except BaseException:
                file.close()
                raise
            return Mp4(file, size, clip.evidence.clip_id)

    def segment(self, evidence_id: str, index: int, who: Principal, *, part: str) -> bytes:
        """One segment's verified plaintext (a self-contained fragmented MP4), for HLS.

        ``part`` names what of it is served ("hls init 3"), for the audit record.
        """
        with self._refusals(who, evidence_id, part):
            clip = self._playable(evidence_id, who)
            records = [r for r in clip.manifest.segments if r.index == index]
            if not records:
                raise NotFound(f"evidence {evidence_id} has no segment {index}")
            plaintext = self._decrypt(clip, records[0])
            self._played(who, clip.evidence, part, "")
            return plaintext

    def playlist(self, evidence_id: str, who: Principal) -> Manifest:
        """The verified manifest, to list a clip's segments; no decryption yet.

        The agency key is asked here too, so a viewer learns at once if the clip cannot play.
        """
        with self._refusals(who, evidence_id, "hls playlist"):
            clip = self._playable(evidence_id, who)
            self._played(who, clip.evidence, "hls playlist", "")
            return clip.manifest

    @contextmanager
    def _refusals(self, who: Principal, evidence_id: str, part: str) -> Iterator[None]:
        try:
            yield
        except EvidenceError as exc:
            self._audit.record(
                who.actor, "playback.refused",
                {"evidence_id": evidence_id, "part": part, "reason": str(exc)[:_MAX_REASON]},
            )  # fmt: skip
            raise

    def _played(self, who: Principal, evidence: Evidence, part: str, detail: str) -> None:
        data = {"evidence_id": evidence.id, "clip_id": evidence.clip_id, "part": part}
        if detail:
            data["detail"] = detail
        self._audit.record(who.actor, "evidence.played", dict(data))

    def _allowed(self, evidence_id: str, who: Principal) -> Evidence:
        if self._key is None:
            # 409, not 5xx: the store works, this deployment is not set up to decrypt.
            raise Conflict(NO_KEY)
        evidence = self._metadata.evidence(evidence_id)
        if evidence is None:
            raise NotFound(f"evidence {evidence_id} does not exist: list it with GET /v1/evidence")
        if who.role is Role.OFFICER and evidence.officer_id != who.name:
            raise Forbidden(
                f"officer {who.name} may play only their own clips; evidence {evidence_id} is "
                "another officer's: ask records or a supervisor"
            )
        return evidence

    def _playable(self, evidence_id: str, who: Principal) -> PlayableClip:
        evidence = self._allowed(evidence_id, who)
        manifest = self._manifest(evidence)
        assert self._key is not None  # _allowed refuses without one
        data_key = self._key.unwrap(manifest.header.data_key, manifest.header.clip_id)
        return PlayableClip(evidence, manifest, data_key)

    def _manifest(self, evidence: Evidence) -> Manifest:
        data = self._blobs.get(manifest_key(evidence.manifest_sha256))
        if data is None or sha256_hex(data) != evidence.manifest_sha256:
            raise VerificationFailed(
                f"the stored manifest of evidence {evidence.id} is missing or altered "
                "(its sha256 is not the receipt's): restore it from backup"
            )
        try:
            return parse_manifest(data)
        except FormatError as exc:  # it hashed right, so it parsed at ingest: a bug if seen
            raise VerificationFailed(f"the stored manifest of {evidence.id}: {exc}") from exc

    def _plaintexts(self, clip: PlayableClip) -> Iterator[bytes]:
        for record in clip.manifest.segments:
            yield self._decrypt(clip, record)

    def _decrypt(self, clip: PlayableClip, record: SegmentRecord) -> bytes:
        evidence, index = clip.evidence, record.index
        blob = self._blobs.get(segment_key(evidence.manifest_sha256, index))
        if blob is None or len(blob) != record.size or sha256_hex(blob) != record.cipher_sha256:
            state = "missing" if blob is None else "altered (its sha256 is not the manifest's)"
            raise VerificationFailed(
                f"stored segment {index} of evidence {evidence.id} is {state}: nothing was "
                "played; restore the clip from backup"
            )
        try:
            plaintext = open_segment(clip.data_key, clip.manifest.header.clip_id, index, blob)
        except IntegrityError as exc:
            # The ciphertext is what the device signed, so only the data key can be wrong.
            raise AgencyKeyUnavailable(
                f"segment {index} of evidence {evidence.id} does not open with the data key the "
                "agency key gave: check the configured agency key"
            ) from exc
        if sha256_hex(plaintext) != record.plain_sha256:
            raise VerificationFailed(
                f"segment {index} of evidence {evidence.id} decrypts to data whose sha256 is not "
                "the manifest's: nothing was played"
            )
        return plaintext
