"""The hardware part of the configuration: one table per port, sim adapters by default."""

from __future__ import annotations

from hw.ports.base import PortConfig
from hw.ports.battery import BatteryConfig
from hw.ports.ble import BleAdvertiserConfig, BleScannerConfig, SimRadioConfig
from hw.ports.camera import CameraConfig
from hw.ports.clock import ClockConfig
from hw.ports.gnss import GnssConfig
from hw.ports.io import IoConfig
from hw.ports.microphone import MicrophoneConfig
from hw.ports.storage import StorageConfig
from hw.ports.usb import UsbConfig


class HwConfig(PortConfig):
    """``[camera]``, ``[microphone]``, ... tables of the configuration file."""

    camera: CameraConfig = CameraConfig()
    microphone: MicrophoneConfig = MicrophoneConfig()
    ble_scanner: BleScannerConfig = BleScannerConfig()
    ble_advertiser: BleAdvertiserConfig = BleAdvertiserConfig()
    sim_radio: SimRadioConfig = SimRadioConfig()
    usb: UsbConfig = UsbConfig()
    io: IoConfig = IoConfig()
    battery: BatteryConfig = BatteryConfig()
    clock: ClockConfig = ClockConfig()
    gnss: GnssConfig = GnssConfig()
    storage: StorageConfig = StorageConfig()


#: table names that belong to the hardware layer
HW_TABLES = frozenset(HwConfig.model_fields)
