"""Movesense sensors with the GATT sensor-data protocol (the ``gatt_sensordata_app`` firmware).

Host -> sensor (write to ``34800001-...``)::

    SUBSCRIBE    [0x01][client reference][resource path, ASCII]   e.g. 01 63 "/Meas/IMU9/52"
    UNSUBSCRIBE  [0x02][client reference]

Sensor -> host (notify on ``34800002-...``)::

    COMMAND_RESULT [0x01][reference][status u16, HTTP-like: 200 OK] (see decode_command_status)
    DATA           [0x02][reference][payload]
    DATA_PART2     [0x03][reference][rest of the payload]   (IMU9: a payload longer than one
                                                             notification is split in two)

The payload is ``timestamp u32 LE`` (ms, sensor clock, first sample) followed by n float32 LE
x,y,z samples of each sensor in turn: ``/Meas/Acc`` acc (m/s²); ``/Meas/IMU6`` acc then gyro
(deg/s); ``/Meas/IMU9`` acc, gyro, then magnetometer (µT). Sample i is at ``t + i·1000/fs`` ms.
Project units: acc g (÷ 9.80665), gyro deg/s, magnetometer gauss (÷ 100).
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from glutewake.devices import base
from glutewake.devices._timing import map_to_host
from glutewake.devices.errors import (
    ControlPointError,
    PayloadLengthError,
    SequenceError,
    TruncatedPacketError,
    UnknownMeasurementTypeError,
)

DEVICE = "movesense"
SERVICE_UUID = "34802252-7185-4d5d-b431-630e7050e8f0"
WRITE_UUID = "34800001-7185-4d5d-b431-630e7050e8f0"
NOTIFY_UUID = "34800002-7185-4d5d-b431-630e7050e8f0"

CMD_SUBSCRIBE = 0x01
CMD_UNSUBSCRIBE = 0x02
RESP_COMMAND_RESULT = 0x01
RESP_DATA = 0x02
RESP_DATA_PART2 = 0x03
G_MS2 = 9.80665

#: measurement -> (resource name, sensors in payload order, client reference)
MEASUREMENTS: dict[str, tuple[str, tuple[str, ...], int]] = {
    "acc": ("Acc", ("acc",), 0x61),
    "imu6": ("IMU6", ("acc", "gyro"), 0x66),
    "imu9": ("IMU9", ("acc", "gyro", "mag"), 0x69),
}
SAMPLE_RATES = (13, 26, 52, 104, 208, 416, 833, 1666)
_UNIT_SCALE = {"acc": 1.0 / G_MS2, "gyro": 1.0, "mag": 0.01}
_UNITS = {"acc": "g", "gyro": "deg/s", "mag": "gauss"}


def resource_path(measurement: str, sample_rate_hz: int) -> str:
    """``/Meas/IMU9/52`` style path.

    >>> resource_path("imu9", 52)
    '/Meas/IMU9/52'
    """
    if measurement not in MEASUREMENTS:
        raise ValueError(f"movesense: unknown measurement {measurement!r} (acc, imu6, imu9)")
    if sample_rate_hz not in SAMPLE_RATES:
        raise ValueError(f"movesense: sample rate {sample_rate_hz} not in {SAMPLE_RATES}")
    return f"/Meas/{MEASUREMENTS[measurement][0]}/{sample_rate_hz}"


def encode_subscribe(reference: int, path: str) -> bytes:
    """SUBSCRIBE command.

    >>> encode_subscribe(0x69, "/Meas/IMU9/52").hex()
    '01692f4d6561732f494d55392f3532'
    """
    return bytes((CMD_SUBSCRIBE, reference)) + path.encode("ascii")


def encode_unsubscribe(reference: int) -> bytes:
    """UNSUBSCRIBE command."""
    return bytes((CMD_UNSUBSCRIBE, reference))


def encode_command_result(reference: int, status: int = 200) -> bytes:
    """COMMAND_RESULT notification."""
    return bytes((RESP_COMMAND_RESULT, reference)) + struct.pack("<H", status)


def decode_command_status(status_bytes: bytes) -> int:
    """HTTP-like status of a COMMAND_RESULT notification (the bytes after type and reference).

    Movesense's own code is not consistent: Python clients read a u16 little-endian
    (``C8 00`` = 200), the ``gatt_sensordata_app`` firmware sends "no free subscription slot"
    as ``01 FB`` (507, big-endian) and the offline sample a single byte (``C8``). The
    little-endian reading wins unless it is no HTTP status (100-599) and the big-endian one is.

    Raises
    ------
    ControlPointError
        No status byte.

    Examples
    --------
    >>> decode_command_status(bytes.fromhex("C800")), decode_command_status(bytes.fromhex("01FB"))
    (200, 507)
    >>> decode_command_status(bytes.fromhex("C8"))
    200
    """
    if not status_bytes:
        raise ControlPointError(DEVICE, "command", "command result cut short (no status)")
    if len(status_bytes) == 1:
        return status_bytes[0]
    le = int.from_bytes(status_bytes[:2], "little")
    be = int.from_bytes(status_bytes[:2], "big")
    return be if not 100 <= le < 600 and 100 <= be < 600 else le


@dataclass(frozen=True)
class MeasData:
    """One decoded measurement notification (both parts joined)."""

    timestamp_ms: int
    samples: dict[str, NDArray[np.float32]]  # sensor -> (n, 3) in the sensor's native unit

    def __len__(self) -> int:
        return int(next(iter(self.samples.values())).shape[0])


def decode_payload(payload: bytes, measurement: str) -> MeasData:
    """Decode a (joined) data payload of a measurement.

    Raises
    ------
    UnknownMeasurementTypeError, TruncatedPacketError, PayloadLengthError
    """
    if measurement not in MEASUREMENTS:
        raise UnknownMeasurementTypeError(DEVICE, measurement, "unknown measurement")
    sensors = MEASUREMENTS[measurement][1]
    step = 12 * len(sensors)
    if len(payload) < 4 + step:
        raise TruncatedPacketError(
            DEVICE,
            measurement,
            f"payload of {len(payload)} bytes (need timestamp + one sample set)",
        )
    body = len(payload) - 4
    if body % step:
        raise PayloadLengthError(
            DEVICE,
            measurement,
            f"{body} sample bytes is not a whole number of {step}-byte sample sets",
        )
    n = body // step
    ts = int.from_bytes(payload[:4], "little")
    arr = np.frombuffer(payload, dtype="<f4", offset=4).reshape(len(sensors), n, 3)
    return MeasData(ts, {s: arr[k].astype(np.float32) for k, s in enumerate(sensors)})


def encode_notifications(
    reference: int,
    measurement: str,
    timestamp_ms: int,
    samples: Mapping[str, ArrayLike],
    *,
    att_mtu: int = 247,
) -> list[bytes]:
    """Encode a measurement as the sensor sends it: one DATA notification, or DATA + DATA_PART2
    when the payload does not fit ``att_mtu - 3`` bytes.

    ``samples`` maps each sensor of the measurement to (n, 3) values in native units.
    """
    sensors = MEASUREMENTS[measurement][1]
    arrays = [np.asarray(samples[s], dtype="<f4") for s in sensors]
    n = arrays[0].shape[0]
    if any(a.shape != (n, 3) for a in arrays) or n < 1:
        raise ValueError("every sensor needs the same (n >= 1, 3) samples")
    payload = struct.pack("<I", timestamp_ms & 0xFFFFFFFF) + b"".join(a.tobytes() for a in arrays)
    room = att_mtu - 3 - 2
    if len(payload) <= room:
        return [bytes((RESP_DATA, reference)) + payload]
    if len(payload) > 2 * room:
        raise ValueError(
            f"payload of {len(payload)} bytes does not fit two notifications at MTU {att_mtu}"
        )
    return [
        bytes((RESP_DATA, reference)) + payload[:room],
        bytes((RESP_DATA_PART2, reference)) + payload[room:],
    ]


def _cfg(config: dict[str, Any]) -> list[tuple[str, int, int]]:
    out = []
    for m, c in config.items():
        if m not in MEASUREMENTS:
            raise ValueError(f"movesense: unknown measurement {m!r} (acc, imu6, imu9)")
        fs = int(c.get("sample_rate_hz", 52))
        resource_path(m, fs)
        out.append((m, fs, MEASUREMENTS[m][2]))
    return out


@dataclass
class _Acc:
    host_us: list[int] = field(default_factory=list)
    session: list[int] = field(default_factory=list)
    data: list[MeasData] = field(default_factory=list)


class MovesenseProfile(base.DeviceProfile):
    """Movesense GATT sensor-data protocol.

    Config: ``{"imu9": {"sample_rate_hz": 52}}`` (or ``acc`` / ``imu6``); the decoded streams are
    ``acc`` (g), ``gyro`` (deg/s) and ``mag`` (gauss) as the measurement carries them.
    """

    name = "movesense"
    name_prefixes = ("Movesense",)
    service_uuids = (SERVICE_UUID,)
    notify_uuids = (NOTIFY_UUID,)

    def start_writes(self, config: dict[str, Any]) -> list[base.GattWrite]:
        """One SUBSCRIBE per measurement.

        >>> PROFILE.start_writes({"acc": {"sample_rate_hz": 52}})[0].data
        b'\\x01a/Meas/Acc/52'
        """
        return [
            base.GattWrite(WRITE_UUID, encode_subscribe(ref, resource_path(m, fs)))
            for m, fs, ref in _cfg(config)
        ]

    def stop_writes(self, config: dict[str, Any]) -> list[base.GattWrite]:
        """One UNSUBSCRIBE per measurement."""
        return [base.GattWrite(WRITE_UUID, encode_unsubscribe(ref)) for _, _, ref in _cfg(config)]

    def required_mtu(self, config: dict[str, Any]) -> int:
        """MTU at which the largest notification is not cut: 8 samples x sensors x 12 bytes,
        + timestamp + header; IMU9 may split in two, so half of that.

        >>> PROFILE.required_mtu({"imu9": {"sample_rate_hz": 104}})
        151
        """
        need = 23
        for m, fs, _ in _cfg(config):
            payload = 4 + samples_per_notification(fs) * 12 * len(MEASUREMENTS[m][1])
            parts = 2 if m == "imu9" else 1
            need = max(need, 3 + 2 + -(-payload // parts))
        return need

    def decode_records(self, records: base.RawRecords, config: dict[str, Any]) -> base.DecodeResult:
        """Replay: join two-part notifications, decode, unwrap the ms timestamps, clock-map."""
        res = base.DecodeResult()
        by_ref = {ref: (m, fs) for m, fs, ref in _cfg(config)}
        acc: dict[str, _Acc] = {m: _Acc() for m, _, _ in _cfg(config)}
        # an IMU9 DATA waits here for a possible DATA_PART2: (host t, bytes, session, whole)
        pending: dict[int, tuple[int, bytes, int, bool]] = {}
        split_len: dict[int, int] = {}  # length of first parts that had a DATA_PART2
        conn: int | None = None
        session = 0

        def add(m: str, t: int, sess: int, payload: bytes, data: bytes) -> None:
            try:
                md = decode_payload(payload, m)
            except base.DecodeError as err:
                res.errors.append(base.PacketError(t, NOTIFY_UUID, data, str(err)))
                return
            acc[m].host_us.append(t)
            acc[m].session.append(sess)
            acc[m].data.append(md)

        def flush(ref: int) -> None:
            """The pending first part got no second part: complete on its own, or an error."""
            pt, pdata, psess, whole = pending.pop(ref)
            m = by_ref[ref][0]
            # whole sample rows but the length this stream splits at: its second part was lost
            if whole and split_len.get(ref) != len(pdata):
                add(m, pt, psess, pdata[2:], pdata)
            else:
                res.errors.append(
                    base.PacketError(
                        pt, NOTIFY_UUID, pdata, f"{DEVICE} {m}: first part without its second part"
                    )
                )

        for i in range(len(records)):
            kind = int(records.kind[i])
            uuid = records.char_uuid[i].lower()
            data = records.payload[i]
            t = int(records.t_us[i])
            cid = int(records.conn_id[i])
            if cid != conn:
                conn = cid
                session += 1
                for r in list(pending):
                    flush(r)
                split_len.clear()
            if (
                kind == base.RecordKind.WRITE
                and uuid == WRITE_UUID
                and data[:1] == bytes((CMD_SUBSCRIBE,))
            ):
                session += 1
                continue
            if kind != base.RecordKind.NOTIFY or uuid != NOTIFY_UUID:
                continue
            try:
                if len(data) < 2:
                    raise TruncatedPacketError(DEVICE, "data", f"notification of {len(data)} bytes")
                rtype, ref = data[0], data[1]
                if rtype == RESP_COMMAND_RESULT:
                    status = decode_command_status(bytes(data[2:]))
                    if status >= 300:
                        res.qc.setdefault("command", {}).setdefault("errors", []).append(
                            f"ref {ref}: status {status}"
                        )
                    continue
                if ref not in by_ref:
                    raise UnknownMeasurementTypeError(
                        DEVICE, "data", f"no subscription with reference {ref}"
                    )
                m, _fs = by_ref[ref]
                if rtype == RESP_DATA:
                    if ref in pending:
                        flush(ref)
                    if m == "imu9":
                        # a split can fall anywhere, even after whole sample sets: decide
                        # when the next notification of this reference comes
                        whole = len(data) >= 2 + 4 + 36 and (len(data) - 6) % 36 == 0
                        pending[ref] = (t, bytes(data), session, whole)
                        continue
                    add(m, t, session, bytes(data[2:]), bytes(data))
                elif rtype == RESP_DATA_PART2:
                    if ref not in pending:
                        raise SequenceError(DEVICE, m, "second part without a first part")
                    pt, first, psess, _ = pending.pop(ref)
                    split_len[ref] = len(first)
                    # the first part's arrival bounds the batch's newest sample more tightly
                    add(m, pt, psess, first[2:] + bytes(data[2:]), bytes(data))
                else:
                    raise UnknownMeasurementTypeError(
                        DEVICE, m, f"unknown response type 0x{rtype:02X}"
                    )
            except base.DecodeError as err:
                res.errors.append(base.PacketError(t, uuid, bytes(data), str(err)))
                continue
        for r in list(pending):
            flush(r)
        for m, fs, _ in _cfg(config):
            if acc[m].data:
                self._decode(m, fs, acc[m], res)
        return res

    @staticmethod
    def _decode(m: str, fs: int, a: _Acc, res: base.DecodeResult) -> None:
        rows = np.array([len(d) for d in a.data], dtype=np.int64)
        ts = np.array([d.timestamp_ms for d in a.data], dtype=np.int64)
        # unwrap the u32 ms counter (49.7 days)
        step = np.diff(ts)
        step = ((step + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)
        ts_u = np.concatenate([[ts[0]], ts[0] + np.cumsum(step)]) if ts.size else ts
        period_us = 1e6 / fs
        within = np.arange(int(rows.sum())) - np.repeat(np.cumsum(rows) - rows, rows)
        dev_us = np.repeat(ts_u * 1000, rows) + np.rint(within * period_us).astype(np.int64)
        last = ts_u * 1000 + np.rint((rows - 1) * period_us).astype(np.int64)
        host = np.array(a.host_us, dtype=np.int64)
        sample_pkt = np.repeat(np.arange(rows.size), rows)
        t_us, clock_qc = map_to_host(last, host, dev_us, sample_pkt)
        gap_n = np.zeros(rows.size, dtype=np.int64)
        if rows.size > 1:
            gap_n[1:] = np.maximum(
                np.rint((ts_u[1:] * 1000 - last[:-1]) / period_us).astype(np.int64) - 1, 0
            )
        st = np.ones(int(rows.sum()), dtype=np.int64)
        first_rows = np.cumsum(rows) - rows
        st[first_rows] += gap_n
        st[0] = 0
        seq = np.cumsum(st)
        sess = np.array(a.session)
        lost = 0
        for j in np.flatnonzero(gap_n > 0).tolist():
            same = sess[j] == sess[j - 1]
            reason = "packet_loss" if same else "disconnect"
            lost += round(gap_n[j] / max(rows[j], 1)) if same else 0
            for sensor in MEASUREMENTS[m][1]:
                res.gaps.append(
                    base.Gap(sensor, int(t_us[first_rows[j] - 1]), int(t_us[first_rows[j]]), reason)
                )
        for sensor in MEASUREMENTS[m][1]:
            vals = (
                np.concatenate([d.samples[sensor] for d in a.data]).astype(np.float64)
                * _UNIT_SCALE[sensor]
            )
            res.streams[sensor] = base.StreamSamples(
                sensor, t_us, vals, ("x", "y", "z"), _UNITS[sensor], float(fs), seq
            )
            res.qc[sensor] = {
                "packets": int(rows.size),
                "packets_lost": lost,
                "duplicates": 0,
                "reordered": 0,
                "samples": int(rows.sum()),
                **clock_qc,
            }


PROFILE = MovesenseProfile()


def samples_per_notification(sample_rate_hz: int) -> int:
    """Samples per notification the sensor sends (1 at 13 Hz ... 8 from 104 Hz up)."""
    return int(min(8, max(1, sample_rate_hz // 13)))


@dataclass
class _Sub:
    measurement: str
    fs: int
    next_idx: int


class MovesenseVirtualDevice(base.VirtualDevice):
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
    att_mtu : int
        Negotiated ATT MTU; IMU9 payloads longer than one notification are split in two.
    """

    def __init__(
        self,
        signals: dict[str, base.StreamSamples],
        *,
        clock_offset_us: int | None = None,
        clock_drift_ppm: float = 0.0,
        att_mtu: int = 185,
    ) -> None:
        self.signals = signals
        first = next(iter(signals.values()))
        self._t = first.t_us
        self._anchor = int(first.t_us[0])
        self.clock_offset_us = (
            -self._anchor + 10_000_000 if clock_offset_us is None else int(clock_offset_us)
        )
        self.clock_drift_ppm = float(clock_drift_ppm)
        self.att_mtu = att_mtu
        self._subs: dict[int, _Sub] = {}

    def _dev_ms(self, t_us: int) -> int:
        d = t_us + self.clock_offset_us + self.clock_drift_ppm * 1e-6 * (t_us - self._anchor)
        return int(d // 1000)

    def read_value(self, char_uuid: str) -> bytes:
        """Nothing readable in this model."""
        raise KeyError(f"MovesenseVirtualDevice: characteristic {char_uuid} is not readable")

    def handle_write(self, char_uuid: str, data: bytes, now_us: int) -> list[tuple[str, bytes]]:
        """SUBSCRIBE / UNSUBSCRIBE with their command results."""
        if char_uuid.lower() != WRITE_UUID or len(data) < 2:
            return []
        ref = data[1]
        if data[0] == CMD_UNSUBSCRIBE:
            return [
                (NOTIFY_UUID, encode_command_result(ref, 200 if self._subs.pop(ref, None) else 404))
            ]
        if data[0] != CMD_SUBSCRIBE:
            return [(NOTIFY_UUID, encode_command_result(ref, 400))]
        path = data[2:].decode("ascii", "replace")
        parts = path.split("/")
        by_name = {v[0]: k for k, v in MEASUREMENTS.items()}
        if (
            len(parts) != 4
            or parts[1] != "Meas"
            or parts[2] not in by_name
            or not parts[3].isdigit()
        ):
            return [(NOTIFY_UUID, encode_command_result(ref, 404))]
        m, fs = by_name[parts[2]], int(parts[3])
        if fs not in SAMPLE_RATES or any(s not in self.signals for s in MEASUREMENTS[m][1]):
            return [(NOTIFY_UUID, encode_command_result(ref, 400))]
        self._subs[ref] = _Sub(m, fs, int(np.searchsorted(self._t, now_us, side="left")))
        return [(NOTIFY_UUID, encode_command_result(ref, 200))]

    def poll(self, now_us: int) -> list[tuple[str, bytes]]:
        """Measurement notifications due by ``now_us``."""
        out: list[tuple[str, bytes]] = []
        avail = int(np.searchsorted(self._t, now_us, side="right"))
        for ref, sub in self._subs.items():
            k = samples_per_notification(sub.fs)
            while avail - sub.next_idx >= k:
                a = sub.next_idx
                samples = {}
                for s in MEASUREMENTS[sub.measurement][1]:
                    samples[s] = self.signals[s].values[a : a + k] / _UNIT_SCALE[s]
                ts = self._dev_ms(int(self._t[a]))
                for pkt in encode_notifications(
                    ref, sub.measurement, ts, samples, att_mtu=self.att_mtu
                ):
                    out.append((NOTIFY_UUID, pkt))
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
