"""What firmware bundles and configuration profiles share: the agency release key's signature.

Both are signed by a key of role ``release`` over a domain label and canonical JSON; a verifier
trusts a set of release public keys (an agency may roll its key, so old and new both verify).
"""

from __future__ import annotations

from collections.abc import Iterable

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from custody.keys import key_id
from custody.report import Report

SIGNATURE_SIZE = 64


def check_release_signature(
    report: Report,
    *,
    what: str,
    signer_key_id: str,
    signature: bytes,
    message: bytes,
    trusted: Iterable[Ed25519PublicKey],
) -> None:
    """Add the ``signer`` and ``signature`` checks for a document signed by a release key."""
    keys = {key_id(key): key for key in trusted}
    if not signature:
        report.failed("signer", f"the {what} is unsigned: run 'bwc {what.split()[0]} sign'")
        report.failed("signature", f"the {what} carries no signature")
        return
    key = keys.get(signer_key_id)
    if key is None:
        known = ", ".join(sorted(keys)) or "none"
        report.failed(
            "signer",
            f"signed by release key {signer_key_id}, which is not trusted (trusted: {known})",
        )
        report.failed("signature", "not checked: the signing key is not trusted")
        return
    report.passed("signer", f"release key {signer_key_id}")
    try:
        key.verify(signature, message)
    except InvalidSignature:
        report.failed(
            "signature", f"the {what}'s Ed25519 signature does not verify: forged or altered"
        )
    else:
        report.passed("signature", f"Ed25519 by release key {signer_key_id}")
