"""The custody contract shared by the camera, the dock and the evidence store.

Public, versioned formats (docs/formats/): canonical JSON, key files, segment files, key wrap,
manifests, receipts and audit logs, with verifiers that report every check they ran.
"""

from custody.errors import (
    CustodyError,
    FormatError,
    IntegrityError,
    KeyFileError,
    KeyMismatchError,
    SignatureError,
    UnsupportedVersionError,
)
from custody.report import Check, Report

__all__ = [
    "Check",
    "CustodyError",
    "FormatError",
    "IntegrityError",
    "KeyFileError",
    "KeyMismatchError",
    "Report",
    "SignatureError",
    "UnsupportedVersionError",
]
