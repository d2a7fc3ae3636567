"""Exceptions of the evidence store: each carries the HTTP status it is answered with.

Messages are one line that says what failed and what to do; the API sends them as
``{"error": "..."}``. Nothing here is ever a traceback for a client.
"""

from __future__ import annotations


class EvidenceError(Exception):
    """Root of every error the evidence store raises."""

    status = 400


class BadRequest(EvidenceError):
    """A request whose body or parameters cannot be used (malformed manifest, bad id)."""


class Unauthenticated(EvidenceError):
    """No bearer token, or one the store does not know."""

    status = 401


class Forbidden(EvidenceError):
    """A known token whose role may not do this."""

    status = 403


class UnenrolledDevice(Forbidden):
    """A manifest from a device whose public key the store has not enrolled."""


class NotFound(EvidenceError):
    """An upload, evidence record or segment that does not exist."""

    status = 404


class Conflict(EvidenceError):
    """A request that does not fit the upload's state (segments missing, data differs)."""

    status = 409


class PayloadTooLarge(EvidenceError):
    status = 413


class VerificationFailed(EvidenceError):
    """Data that does not match what the signed manifest commits to (hash, size, chain)."""

    status = 422


class StoreSetupError(EvidenceError):
    """The store itself cannot start: unreadable key, token file or data folder."""

    status = 500


class AgencyKeyUnavailable(EvidenceError):
    """The agency key cannot unwrap the clip: not the clip's key, or its key service fails."""

    status = 503


class BlobLocked(EvidenceError):
    """A blob the object store keeps under Object Lock (retention or legal hold) for now."""

    status = 409
