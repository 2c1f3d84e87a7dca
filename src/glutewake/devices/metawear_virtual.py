"""Byte-level model of an MbientLab MetaMotion accelerometer (BMI160 or BMI270) (tests).

The model answers the accelerometer commands as MbientLab's C++ SDK sends them
(mbientlab/MetaWear-SDK-Cpp at f67699e) and states the constants itself instead of importing
:mod:`.metawear`:

- GATT (``src/metawear/impl/cpp/metawearboard.cpp``: ``METAWEAR_SERVICE_NOTIFY_CHAR``,
  ``METAWEAR_COMMAND_CHAR``): service ``326a9000-…``, commands written to ``326a9001-…`` (the
  SDK's ``send_command`` writes without response, macros with), notifications on
  ``326a9006-…``;
- every message is ``[module][register][payload]``, the accelerometer module 3
  (``src/metawear/core/module.h`` ``MBL_MW_MODULE_ACCELEROMETER``), registers
  (``accelerometer_bosch_register.h``) POWER_MODE 1, DATA_INTERRUPT_ENABLE 2, DATA_CONFIG 3,
  DATA_INTERRUPT 4, PACKED_ACC_DATA 0x1C (BMI160) / 5 (BMI270);
- ``03 03 <acc_conf> <range>`` sets the range (``accelerometer_bosch.cpp`` ``FSR_BITMASKS``
  {3, 5, 8, 0xC}, ``BMI270_FSR_BITMASKS`` {0, 1, 2, 3} for 2/4/8/16 g, 16384/8192/4096/2048
  counts per g); ``03 01 01`` or, on a BMI270 below 12.5 Hz, ``03 01 02`` starts
  (``mbl_mw_acc_bosch_start``), ``03 01 00`` stops;
- data are int16 LE x, y, z: one sample per ``03 04`` notification, three per packed one
  (``metawearboard.cpp`` ``response_handler_packed_data``, ``CARTESIAN_FLOAT_SIZE`` 6).

MetaWear notifications carry no device time, so the model has no clock parameters: its
sampling instants are the signal's true ``t_us`` (give it a drifting signal to model an
output-data-rate error).
"""

from __future__ import annotations

import numpy as np

from glutewake.devices.base import (
    GattLayout,
    GattService,
    StreamSamples,
    VirtualDevice,
    characteristic,
)

SERVICE = "326a9000-85cb-9195-d9dd-464cfbbae75a"
COMMAND = "326a9001-85cb-9195-d9dd-464cfbbae75a"
NOTIFY = "326a9006-85cb-9195-d9dd-464cfbbae75a"
_BATTERY = "00002a19-0000-1000-8000-00805f9b34fb"  # Bluetooth SIG Battery Level
ACCELEROMETER = 0x03
POWER_MODE, DATA_INTERRUPT_ENABLE, DATA_CONFIG, DATA_INTERRUPT = 1, 2, 3, 4
PACKED = {"bmi160": 0x1C, "bmi270": 0x05}
#: range register value -> g, per chip
RANGES = {
    "bmi160": {0x3: 2, 0x5: 4, 0x8: 8, 0xC: 16},
    "bmi270": {0x0: 2, 0x1: 4, 0x2: 8, 0x3: 16},
}
#: power-mode values that start sampling
_STARTS = (0x01, 0x02)


class MetaWearVirtualDevice(VirtualDevice):
    """A MetaMotion answering the accelerometer commands and streaming a known signal.

    Parameters
    ----------
    acc : StreamSamples
        True acceleration in g at the configured rate.
    chip : str
        ``bmi160`` or ``bmi270`` (which packed register and range codes it answers to).
    battery_percent : int
        Battery level served.
    """

    def __init__(
        self, acc: StreamSamples, *, chip: str = "bmi160", battery_percent: int = 70
    ) -> None:
        if chip not in PACKED:
            raise ValueError(f"MetaWearVirtualDevice: chip bmi160 or bmi270, got {chip!r}")
        self.acc = acc
        self.chip = chip
        self.battery_percent = battery_percent
        self.range_g = 16
        self._subscribed: set[int] = set()
        self._enabled = False
        self._running = False
        self._next = 0

    def gatt_layout(self) -> GattLayout:
        """The MetaWear service: command (write, with and without response) and notify."""
        svc = GattService(
            SERVICE,
            (
                characteristic(COMMAND, "write", "write-without-response"),
                characteristic(NOTIFY, "notify"),
            ),
        )
        return GattLayout((svc,), "MetaWear", (SERVICE,))

    def read_value(self, char_uuid: str) -> bytes:
        """Battery level (standard characteristic)."""
        if char_uuid.lower() == _BATTERY:
            return bytes((self.battery_percent,))
        raise KeyError(f"MetaWearVirtualDevice: characteristic {char_uuid} is not readable")

    def handle_write(self, char_uuid: str, data: bytes, now_us: int) -> list[tuple[str, bytes]]:
        """Apply an accelerometer command (no response, as the device)."""
        if char_uuid.lower() != COMMAND or len(data) < 3 or data[0] != ACCELEROMETER:
            return []
        reg = data[1]
        if reg == DATA_CONFIG and len(data) == 4:
            self.range_g = RANGES[self.chip].get(data[3], self.range_g)
        elif reg in (DATA_INTERRUPT, PACKED[self.chip]):
            (self._subscribed.add if data[2] else self._subscribed.discard)(reg)
        elif reg == DATA_INTERRUPT_ENABLE:
            self._enabled = data[2] == 1
        elif reg == POWER_MODE:
            self._running = data[2] in _STARTS
            if self._running:
                self._next = int(np.searchsorted(self.acc.t_us, now_us, side="left"))
        return []

    def _per_notification(self) -> tuple[int, int]:
        reg = max(self._subscribed)  # packed wins where both are subscribed
        return reg, (1 if reg == DATA_INTERRUPT else 3)

    def poll(self, now_us: int) -> list[tuple[str, bytes]]:
        """Notifications for samples measured by ``now_us``."""
        if not (self._running and self._enabled and self._subscribed):
            return []
        avail = int(np.searchsorted(self.acc.t_us, now_us, side="right"))
        reg, k = self._per_notification()
        n = (avail - self._next) // k
        if n <= 0:
            return []
        counts_per_g = 32768.0 / self.range_g
        vals = self.acc.values[self._next : self._next + n * k]
        raw = np.clip(np.rint(vals * counts_per_g), -32768, 32767).astype("<i2")
        self._next += n * k
        head = bytes((ACCELEROMETER, reg))
        return [(NOTIFY, head + raw[j * k : (j + 1) * k].tobytes()) for j in range(n)]

    def next_due_us(self) -> int | None:
        """True time at which the next notification's last sample is measured."""
        if not (self._running and self._enabled and self._subscribed):
            return None
        last = self._next + self._per_notification()[1] - 1
        return int(self.acc.t_us[last]) if last < len(self.acc) else None

    def link_lost(self, now_us: int) -> None:
        """The link dropped: the board stops streaming (subscriptions are per connection)."""
        self._running = False
        self._subscribed.clear()
