"""Exceptions raised by the hardware layer.

Every message is one line a user can act on: what failed and what to do about it.
Adapters translate their library's exceptions into these at the edge (``raise ... from exc``).
"""

from __future__ import annotations


class HwError(Exception):
    """Root of every error the hardware layer raises."""


class ConfigError(HwError):
    """The configuration asks for something invalid (unknown adapter, bad value, missing file)."""


class AdapterUnavailable(HwError):
    """A real adapter's library or device is missing; the message says what to install or plug."""


class DeviceError(HwError):
    """A device that opened failed while in use (read error, lost connection)."""


class DeviceClosed(DeviceError):
    """The port was used after ``close()`` or before ``open()``."""


class PowerLost(DeviceError):
    """Simulated power cut: storage refuses every operation until it is restarted."""


class StoragePathError(HwError, ValueError):
    """A storage path is absolute, climbs out with ``..`` or follows a symlink out of the root."""
