"""The reference evidence store: verified ingest, signed receipts and an audit chain.

Imports only :mod:`custody`. The service (:mod:`evidence.ingest`) knows no HTTP; the ASGI app
(:mod:`evidence.api`) and the storage backends (:mod:`evidence.storage`) plug into it.
"""

from evidence.config import EvidenceConfig
from evidence.errors import EvidenceError

__all__ = ["EvidenceConfig", "EvidenceError"]
