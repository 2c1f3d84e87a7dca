"""Movesense sensors with the GATT sensor-data protocol (the ``gatt_sensordata_app`` firmware).

Host -> sensor (write to ``34800001-...``)::

    HELLO        [0x00][client reference]
    SUBSCRIBE    [0x01][client reference][resource path, ASCII]   e.g. 01 63 "/Meas/IMU9/104"
    UNSUBSCRIBE  [0x02][client reference]

Sensor -> host (notify on ``34800002-...``)::

    COMMAND_RESULT [0x01][reference][HTTP-like status, or "Hello"] (see decode_command_status)
    DATA           [0x02][reference][first 150 bytes of the payload]
    DATA_PART2     [0x03][reference][the rest]                (payloads longer than 150 bytes)
    DATA_PART3     [0x04][reference][...]                     (defined, "continue with Part2 & 3")

The reference is whatever the client chose in its SUBSCRIBE (the firmware stores it and echoes
it in every notification; Movesense's own clients use 99), so the decoder learns each
reference's measurement from the SUBSCRIBE writes in the records. The payload is
``timestamp u32 LE`` (ms, sensor clock, first sample) followed by n float32 LE x,y,z samples of
each sensor in turn: ``/Meas/Acc`` acc (m/s²); ``/Meas/IMU6`` acc then gyro (deg/s);
``/Meas/IMU9`` acc, gyro, then magnetometer (µT). Sample i is at ``t + i·1000/fs`` ms. Project
units: acc g (÷ 9.80665), gyro deg/s, magnetometer gauss (÷ 100). Source: movesense-device-lib
``samples/gatt_sensordata_app/GATTSensorDataClient.cpp`` (release 2.2.1), its Python and web
clients, and ``MovesenseCoreLib/resources/movesense-api/meas/*.yaml``.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

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

CMD_HELLO = 0x00
CMD_SUBSCRIBE = 0x01
CMD_UNSUBSCRIBE = 0x02
RESP_COMMAND_RESULT = 0x01
RESP_DATA = 0x02
RESP_DATA_PART2 = 0x03
RESP_DATA_PART3 = 0x04
#: the firmware puts at most this many payload bytes in one notification
SPLIT_PAYLOAD_BYTES = 150
G_MS2 = 9.80665

#: measurement -> (resource name, sensors in payload order, the reference glutewake subscribes
#: with; any non-zero byte works, the firmware echoes the client's)
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


def _cfg(config: dict[str, Any]) -> list[tuple[str, int, int]]:
    """(measurement, rate, reference) per configured measurement."""
    out = []
    for m, c in config.items():
        if m not in MEASUREMENTS:
            raise ValueError(f"movesense: unknown measurement {m!r} (acc, imu6, imu9)")
        fs = int(c.get("sample_rate_hz", 52))
        resource_path(m, fs)
        ref = int(c.get("reference", MEASUREMENTS[m][2]))
        if not 1 <= ref <= 255:
            raise ValueError(f"movesense: reference {ref} must be 1..255 (0 marks a free slot)")
        out.append((m, fs, ref))
    if len({ref for _, _, ref in out}) < len(out):
        raise ValueError("movesense: two measurements with the same reference")
    return out


def _whole(data: bytes, measurement: str) -> bool:
    """Whether a DATA notification's payload holds a timestamp and whole sample rows."""
    step = 12 * len(MEASUREMENTS[measurement][1])
    return len(data) >= 6 + step and (len(data) - 6) % step == 0


def parse_subscribe(data: bytes) -> tuple[int, str, int] | None:
    """(reference, measurement, rate) of a SUBSCRIBE command, None if it is none we decode.

    >>> parse_subscribe(b"\\x01\\x63/Meas/IMU9/104")
    (99, 'imu9', 104)
    >>> parse_subscribe(b"\\x01\\x64/Meas/ECG/200") is None
    True
    """
    if len(data) < 3 or data[0] != CMD_SUBSCRIBE:
        return None
    parts = bytes(data[2:]).decode("ascii", "replace").split("/")
    by_name = {v[0]: k for k, v in MEASUREMENTS.items()}
    if len(parts) != 4 or parts[1] != "Meas" or parts[2] not in by_name or not parts[3].isdigit():
        return None
    return data[1], by_name[parts[2]], int(parts[3])


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
        """155: the firmware sends at most 150 payload bytes + 2 header bytes per notification
        (longer payloads are split), and how many rows one notification carries is published
        only for IMU9 at 104 Hz, so this bound is the one that holds for every measurement.

        >>> PROFILE.required_mtu({"imu9": {"sample_rate_hz": 104}})
        155
        """
        _cfg(config)
        return 3 + 2 + SPLIT_PAYLOAD_BYTES

    def decode_records(self, records: base.RawRecords, config: dict[str, Any]) -> base.DecodeResult:
        """Replay: learn references from SUBSCRIBE writes, join split notifications, decode,
        unwrap the ms timestamps, clock-map.

        A reference means the measurement of the latest SUBSCRIBE that used it, else the one
        the configuration gives it (``reference``, default glutewake's own). A measurement's
        rate is that of its first SUBSCRIBE in the records, else the configured one. A DATA
        holding 150 payload bytes (where the firmware splits) or no whole number of sample
        rows waits for its DATA_PART2, and a 150-byte DATA_PART2 for a possible DATA_PART3;
        a first part whose continuation never comes is an error.
        """
        res = base.DecodeResult()
        cfg = _cfg(config)
        by_ref = {ref: (m, fs) for m, fs, ref in cfg}
        rate: dict[str, int] = {}
        acc: dict[str, _Acc] = {}
        # a split payload so far: ref -> (host t of the first part, parts, session, measurement)
        pending: dict[int, tuple[int, list[bytes], int, str]] = {}
        conn: int | None = None
        session = 0

        def add(m: str, t: int, sess: int, payload: bytes, data: bytes) -> None:
            try:
                md = decode_payload(payload, m)
            except base.DecodeError as err:
                res.errors.append(base.PacketError(t, NOTIFY_UUID, data, str(err)))
                return
            a = acc.setdefault(m, _Acc())
            a.host_us.append(t)
            a.session.append(sess)
            a.data.append(md)

        def flush(ref: int) -> None:
            """Decode a split payload; a first part alone is an error."""
            pt, parts, psess, m = pending.pop(ref)
            if len(parts) == 1:
                why = "first part without its second part"
                if len(parts[0]) - 2 != SPLIT_PAYLOAD_BYTES:
                    why += " (or a notification cut short: no whole number of sample rows)"
                res.errors.append(
                    base.PacketError(pt, NOTIFY_UUID, parts[0], f"{DEVICE} {m}: {why}")
                )
                return
            # the first part's arrival bounds the batch's newest sample more tightly
            add(m, pt, psess, b"".join(p[2:] for p in parts), parts[-1])

        for i in range(len(records)):
            kind = int(records.kind[i])
            uuid = records.char_uuid[i].lower()
            data = bytes(records.payload[i])
            t = int(records.t_us[i])
            cid = int(records.conn_id[i])
            if cid != conn:
                conn = cid
                session += 1
                for r in list(pending):
                    flush(r)
            if kind == base.RecordKind.WRITE and uuid == WRITE_UUID:
                sub = parse_subscribe(data)
                if sub is not None:
                    ref, m, fs = sub
                    by_ref[ref] = (m, fs)
                    rate.setdefault(m, fs)
                if data[:1] == bytes((CMD_SUBSCRIBE,)):
                    session += 1
                continue
            if kind != base.RecordKind.NOTIFY or uuid != NOTIFY_UUID:
                continue
            try:
                if len(data) < 2:
                    raise TruncatedPacketError(DEVICE, "data", f"notification of {len(data)} bytes")
                rtype, ref = data[0], data[1]
                if rtype == RESP_COMMAND_RESULT:
                    self._command_result(ref, data, res)
                    continue
                if ref not in by_ref:
                    raise UnknownMeasurementTypeError(
                        DEVICE, "data", f"no subscription with reference {ref}"
                    )
                m = by_ref[ref][0]
                if rtype == RESP_DATA:
                    if ref in pending:
                        flush(ref)
                    if len(data) - 2 == SPLIT_PAYLOAD_BYTES or not _whole(data, m):
                        pending[ref] = (t, [data], session, m)
                    else:
                        add(m, t, session, data[2:], data)
                elif rtype in (RESP_DATA_PART2, RESP_DATA_PART3):
                    parts = pending[ref][1] if ref in pending else []
                    if len(parts) != rtype - RESP_DATA:
                        if ref in pending and len(parts) > rtype - RESP_DATA:
                            flush(ref)
                        part = "second" if rtype == RESP_DATA_PART2 else "third"
                        raise SequenceError(DEVICE, m, f"{part} part without the part before it")
                    parts.append(data)
                    if rtype == RESP_DATA_PART3 or len(data) - 2 != SPLIT_PAYLOAD_BYTES:
                        flush(ref)
                else:
                    raise UnknownMeasurementTypeError(
                        DEVICE, m, f"unknown response type 0x{rtype:02X}"
                    )
            except base.DecodeError as err:
                res.errors.append(base.PacketError(t, uuid, data, str(err)))
                continue
        for r in list(pending):
            flush(r)
        for m, fs, _ in cfg:
            rate.setdefault(m, fs)
        for m in [*(m for m, _, _ in cfg if m in acc), *(m for m in acc if m not in config)]:
            self._decode(m, rate[m], acc[m], res)
        return res

    @staticmethod
    def _command_result(ref: int, data: bytes, res: base.DecodeResult) -> None:
        """Note a command result: the HELLO reply, or an error status."""
        if data[2:] == b"Hello":  # handleIncomingCommand's answer to HELLO
            return
        status = decode_command_status(data[2:])
        if status >= 300:
            res.qc.setdefault("command", {}).setdefault("errors", []).append(
                f"ref {ref}: status {status}"
            )

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
            # a signalling-NaN bit pattern sets the invalid flag when widened; it stays NaN
            with np.errstate(invalid="ignore"):
                f64 = np.concatenate([d.samples[sensor] for d in a.data]).astype(np.float64)
            vals = f64 * _UNIT_SCALE[sensor]
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

from glutewake.devices.movesense_virtual import MovesenseVirtualDevice  # noqa: E402  (re-exported)

__all__ = [
    "MEASUREMENTS",
    "NOTIFY_UUID",
    "PROFILE",
    "SERVICE_UUID",
    "WRITE_UUID",
    "MeasData",
    "MovesenseProfile",
    "MovesenseVirtualDevice",
    "decode_command_status",
    "decode_payload",
    "encode_command_result",
    "encode_subscribe",
    "encode_unsubscribe",
    "parse_subscribe",
    "resource_path",
]
