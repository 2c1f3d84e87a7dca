"""Byte-level model of a Movesense sensor running ``gatt_sensordata_app`` (simulators and tests).

The model follows Movesense's sample firmware (movesense-device-lib, read from the public
mirror alexisduque/movesense-device-lib at 07177ff, whose ``samples/`` are the official release
2.2.1 commit 22ad815), ``samples/gatt_sensordata_app/GATTSensorDataClient.cpp``, and states its
constants itself instead of importing :mod:`.movesense`:

- ``handleIncomingCommand``: HELLO ``00 <ref>`` is answered ``01 <ref> "Hello"``; SUBSCRIBE
  ``01 <ref> <path>`` takes a free slot (at most ``MAX_DATASUB_COUNT`` = 4, else
  ``01 <ref> 01 FB``, 507) and sends **no** reply when it succeeds; UNSUBSCRIBE ``02 <ref>``
  frees the slot silently;
- ``onNotify``: each measurement notification goes out as ``02 <ref>`` + its payload, the
  reference being the client's; a payload longer than 150 bytes is split, whatever the MTU:
  the first 150 bytes in DATA, the rest in DATA_PART2 ``03 <ref> ...``;
- the payload (``MovesenseCoreLib/resources/movesense-api/meas/acc.yaml``, ``imu.yaml``,
  serialised in declaration order by the SBEM generator) is a u32 timestamp (ms) and float32
  x, y, z rows of each sensor in turn: acc (m/s²), gyro (deg/s), magnetometer (µT);
- all subscriptions end when the link drops (``unsubscribeAllStreams``).

How many rows the sensor puts in one notification is not published except for IMU9 at 104 Hz
(8, the sample client ``python_client/movesense_sensor_data.py``); the model uses
``min(8, max(1, rate // 13))``, an assumption.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from glutewake.devices.base import (
    GattLayout,
    GattService,
    StreamSamples,
    VirtualDevice,
    characteristic,
)

#: GATTSensorDataClient.cpp SENSOR_DATASERVICE_UUID, COMMAND_CHAR_UUID (property WRITE),
#: DATA_CHAR_UUID (property NOTIFY) (byte arrays, least significant byte first)
SERVICE = "34802252-7185-4d5d-b431-630e7050e8f0"
COMMAND = "34800001-7185-4d5d-b431-630e7050e8f0"
DATA = "34800002-7185-4d5d-b431-630e7050e8f0"
#: enum Commands / enum Responses
HELLO, SUBSCRIBE, UNSUBSCRIBE = 0, 1, 2
COMMAND_RESULT, DATA_PART1, DATA_PART2 = 1, 2, 3
#: GATTSensorDataClient.h MAX_DATASUB_COUNT
MAX_SUBSCRIPTIONS = 4
#: onNotify: ``firstPartLen = (length > 150) ? 150 : length``
SPLIT_BYTES = 150
#: resource paths of the measurements (``/Meas/Acc/{SampleRate}``, ``/Meas/IMU6/...``,
#: ``/Meas/IMU9/...``) and the sensors each payload carries, in order
RESOURCES: dict[str, tuple[str, ...]] = {
    "Acc": ("acc",),
    "IMU6": ("acc", "gyro"),
    "IMU9": ("acc", "gyro", "mag"),
}
#: LSM6DS3 rates the measurement resources accept
SAMPLE_RATES = (13, 26, 52, 104, 208, 416, 833, 1666)
#: the payload's units per project unit: m/s² per g, deg/s, µT per gauss
_NATIVE_PER_PROJECT = {"acc": 9.80665, "gyro": 1.0, "mag": 100.0}


def notifications(
    reference: int, sensors: Mapping[str, ArrayLike], timestamp_ms: int
) -> list[bytes]:
    """The notifications of one measurement as the firmware sends them.

    ``sensors`` maps each sensor of the measurement, in payload order, to (n, 3) values in
    the payload's units; the payload is split after 150 bytes.

    >>> [len(p) for p in notifications(99, {"acc": np.zeros((8, 3))}, 0)]
    [102]
    >>> [len(p) for p in notifications(99, {s: np.zeros((8, 3)) for s in ("a", "g", "m")}, 0)]
    [152, 144]
    """
    arrays = [np.asarray(v, dtype="<f4") for v in sensors.values()]
    n = arrays[0].shape[0]
    if n < 1 or any(a.shape != (n, 3) for a in arrays):
        raise ValueError("every sensor needs the same (n >= 1, 3) rows")
    payload = struct.pack("<I", timestamp_ms & 0xFFFFFFFF) + b"".join(a.tobytes() for a in arrays)
    out = [bytes((DATA_PART1, reference)) + payload[:SPLIT_BYTES]]
    if len(payload) > SPLIT_BYTES:
        out.append(bytes((DATA_PART2, reference)) + payload[SPLIT_BYTES:])
    return out


def samples_per_notification(sample_rate_hz: int) -> int:
    """Rows per notification in this model (8 at 104 Hz, as the sample client reads IMU9)."""
    return int(min(8, max(1, sample_rate_hz // 13)))


@dataclass
class _Sub:
    sensors: tuple[str, ...]
    fs: int
    next_idx: int


class MovesenseVirtualDevice(VirtualDevice):
    """A Movesense sensor running the sensor-data app, streaming known signals.

    Parameters
    ----------
    signals : dict sensor -> StreamSamples
        ``acc`` (g), ``gyro`` (deg/s), ``mag`` (gauss), same true ``t_us`` and rate.
    clock_offset_us : int or None
        Sensor clock (ms counter since power-on, in µs) minus true time at the first sample;
        default: powered on 10 s before the first sample.
    clock_drift_ppm : float
        How much faster the sensor clock runs than true time.
    serial : str
        The serial number in the advertised name (``Movesense <serial>``).
    """

    def __init__(
        self,
        signals: dict[str, StreamSamples],
        *,
        clock_offset_us: int | None = None,
        clock_drift_ppm: float = 0.0,
        serial: str = "000000000001",
    ) -> None:
        self.signals = signals
        first = next(iter(signals.values()))
        self._t = first.t_us
        self._anchor = int(first.t_us[0])
        self.clock_offset_us = (
            -self._anchor + 10_000_000 if clock_offset_us is None else int(clock_offset_us)
        )
        self.clock_drift_ppm = float(clock_drift_ppm)
        self.serial = serial
        self._subs: dict[int, _Sub] = {}

    def gatt_layout(self) -> GattLayout:
        """The sensor-data service: command (write) and data (notify) characteristics."""
        svc = GattService(
            SERVICE, (characteristic(COMMAND, "write"), characteristic(DATA, "notify"))
        )
        return GattLayout((svc,), f"Movesense {self.serial}", (SERVICE,))

    def _dev_ms(self, t_us: int) -> int:
        d = t_us + self.clock_offset_us + self.clock_drift_ppm * 1e-6 * (t_us - self._anchor)
        return int(d // 1000)

    def read_value(self, char_uuid: str) -> bytes:
        """Nothing readable in this model."""
        raise KeyError(f"MovesenseVirtualDevice: characteristic {char_uuid} is not readable")

    def handle_write(self, char_uuid: str, data: bytes, now_us: int) -> list[tuple[str, bytes]]:
        """HELLO, SUBSCRIBE, UNSUBSCRIBE as ``handleIncomingCommand`` answers them."""
        if char_uuid.lower() != COMMAND or len(data) < 2:
            return []
        cmd, ref = data[0], data[1]
        if cmd == HELLO:
            return [(DATA, bytes((COMMAND_RESULT, ref)) + b"Hello")]
        if cmd == UNSUBSCRIBE:
            self._subs.pop(ref, None)
            return []
        if cmd != SUBSCRIBE:
            return []
        if len(self._subs) >= MAX_SUBSCRIPTIONS:
            return [(DATA, bytes((COMMAND_RESULT, ref, 0x01, 0xFB)))]  # 507
        parts = data[2:].decode("ascii", "replace").split("/")
        # a path the sensor cannot subscribe to fails in onSubscribeResult, silently
        if len(parts) == 4 and parts[1] == "Meas" and parts[2] in RESOURCES and parts[3].isdigit():
            sensors, fs = RESOURCES[parts[2]], int(parts[3])
            if fs in SAMPLE_RATES and all(s in self.signals for s in sensors):
                start = int(np.searchsorted(self._t, now_us, side="left"))
                self._subs[ref] = _Sub(sensors, fs, start)
        return []

    def poll(self, now_us: int) -> list[tuple[str, bytes]]:
        """Measurement notifications due by ``now_us``."""
        out: list[tuple[str, bytes]] = []
        avail = int(np.searchsorted(self._t, now_us, side="right"))
        for ref, sub in self._subs.items():
            k = samples_per_notification(sub.fs)
            while avail - sub.next_idx >= k:
                a = sub.next_idx
                rows = {
                    s: self.signals[s].values[a : a + k] * _NATIVE_PER_PROJECT[s]
                    for s in sub.sensors
                }
                for pkt in notifications(ref, rows, self._dev_ms(int(self._t[a]))):
                    out.append((DATA, pkt))
                sub.next_idx = a + k
        return out

    def next_due_us(self) -> int | None:
        """True time at which the next notification's last sample is measured."""
        due = [
            int(self._t[s.next_idx + samples_per_notification(s.fs) - 1])
            for s in self._subs.values()
            if s.next_idx + samples_per_notification(s.fs) <= self._t.size
        ]
        return min(due) if due else None

    def link_lost(self, now_us: int) -> None:
        """Subscriptions end with the link."""
        self._subs.clear()
