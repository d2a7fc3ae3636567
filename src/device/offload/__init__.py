"""The camera side of the offload API (docs/formats/offload.md): served while docked.

``device.offload.api`` (FastAPI) is imported only when a camera first docks.
"""

from device.offload.link import FirmwareHost, attach_offload
from device.offload.provision import load_officer
from device.offload.server import OffloadServer
from device.offload.service import OffloadService
from device.offload.session import DEVICE_DOMAIN, SESSION_DOMAIN, device_message, session_message

__all__ = [
    "DEVICE_DOMAIN",
    "SESSION_DOMAIN",
    "FirmwareHost",
    "OffloadServer",
    "OffloadService",
    "attach_offload",
    "device_message",
    "load_officer",
    "session_message",
]
