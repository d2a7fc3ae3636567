"""Exceptions raised by the custody contract.

Every message is one line that says what failed and what to do. ``exit_code`` follows the ``bwc``
convention: 2 for input that cannot be used at all (bad key file, unreadable format), 1 when a
check ran and found that something does not hold (hash, chain, signature).
"""

from __future__ import annotations


class CustodyError(Exception):
    """Root of every error the custody package raises."""

    exit_code = 2


class FormatError(CustodyError):
    """Bytes that are not a valid document of the format they claim (or are too large)."""


class UnsupportedVersionError(FormatError):
    """A document of a format version this implementation does not read."""


class KeyFileError(CustodyError):
    """A key file that is missing, unreadable, of the wrong kind or not private enough."""


class IntegrityError(CustodyError):
    """Data that parsed but does not match what it commits to (hash, chain, AEAD tag)."""

    exit_code = 1


class SignatureError(IntegrityError):
    """A signature that does not verify, or was made by a key that is not trusted."""


class KeyMismatchError(IntegrityError):
    """A key that is valid but not the one the data was made for (e.g. the wrong agency key)."""


class TriggerError(CustodyError):
    """A BLE trigger advertisement that must be ignored; ``reason`` says why, for counting.

    ``open_trigger`` raises only these, whatever the bytes, so a receiver can count rejections
    by ``reason`` without a catch-all.
    """

    reason = "invalid"


class TriggerFormatError(TriggerError, FormatError):
    """Not a trigger payload: wrong size or type, or an event type this version does not know."""

    reason = "malformed"


class TriggerVersionError(TriggerFormatError, UnsupportedVersionError):
    """A trigger payload of a format version this implementation does not read."""

    reason = "version"


class UnknownTriggerSourceError(TriggerError, IntegrityError):
    """The payload names a source that is not registered (or was sealed for another agency)."""

    reason = "unknown_source"


class TriggerMacError(TriggerError, IntegrityError):
    """The MAC does not verify with the named source's key: forged, altered or wrong key."""

    reason = "bad_mac"
