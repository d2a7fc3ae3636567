"""Hardware layer: a ``typing.Protocol`` port per piece of hardware, a real and a sim adapter each.

Nothing here imports the rest of the project. The layer above asks for a port (``Camera``,
``UsbBus``, ...) and never learns which adapter it got; :mod:`hw.rig` builds them from
configuration.
"""

from hw.errors import AdapterUnavailable, ConfigError, DeviceClosed, DeviceError, HwError, PowerLost

__all__ = [
    "AdapterUnavailable",
    "ConfigError",
    "DeviceClosed",
    "DeviceError",
    "HwError",
    "PowerLost",
]
