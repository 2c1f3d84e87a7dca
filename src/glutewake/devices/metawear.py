"""MbientLab MetaMotion / MetaWear accelerometer (BMI160, BMI270), MetaWear GATT protocol.

Every command and notification is ``[module][register][payload]``; the accelerometer is module
0x03. Streaming: configure ``03 03 <acc_conf> <acc_range>``, subscribe to the data register
(``03 04 01`` single samples, ``03 1C 01`` packed on BMI160, ``03 05 01`` packed on BMI270),
enable sampling ``03 02 01 00``, start ``03 01 01`` (``03 01 02`` on a BMI270 below 12.5 Hz,
MbientLab MetaWear-SDK-Cpp ``accelerometer_bosch.cpp`` ``mbl_mw_acc_bosch_start``); stop is
``03 01 00``, ``03 02 00 01`` and the unsubscribe ``03 04 00`` (``03 1C 00`` / ``03 05 00``).
Data are int16 LE x, y, z, scaled by ``32768 / range_g`` counts per g; a packed notification
carries 3 samples.

The notifications carry neither a timestamp nor a counter: sample times come from the sample
counter since start (nominal rate) anchored to host receive times by the clock model, whose
drift term absorbs the sensor's output-data-rate error; a silence much longer than the packet
interval is taken as lost packets (the counter advances by the silence x rate).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from glutewake.devices import base
from glutewake.devices.clock import fit_clock
from glutewake.devices.errors import (
    PayloadLengthError,
    TruncatedPacketError,
    UnknownFrameTypeError,
    UnknownMeasurementTypeError,
)

DEVICE = "metawear"
SERVICE_UUID = "326a9000-85cb-9195-d9dd-464cfbbae75a"
COMMAND_UUID = "326a9001-85cb-9195-d9dd-464cfbbae75a"
NOTIFY_UUID = "326a9006-85cb-9195-d9dd-464cfbbae75a"

MODULE_ACC = 0x03
REG_POWER = 0x01
REG_INTERRUPT_ENABLE = 0x02
REG_CONFIG = 0x03
REG_DATA = 0x04
REG_PACKED_BMI160 = 0x1C
REG_PACKED_BMI270 = 0x05
#: power-mode value of the BMI270's start below 12.5 Hz (``accelerometer_bosch.cpp``
#: ``mbl_mw_acc_bosch_start``: ``command[2] = 2`` when ``acc.us == 0``)
POWER_START_BMI270_LOW_RATE = 0x02

#: BMI160/BMI270 ACC_CONF output data rate codes (low nibble), Hz -> code
ODR_CODES: dict[float, int] = {
    0.78125: 0x1,
    1.5625: 0x2,
    3.125: 0x3,
    6.25: 0x4,
    12.5: 0x5,
    25: 0x6,
    50: 0x7,
    100: 0x8,
    200: 0x9,
    400: 0xA,
    800: 0xB,
    1600: 0xC,
}
#: BMI160 ACC_RANGE register values
BMI160_RANGE: dict[int, int] = {2: 0x03, 4: 0x05, 8: 0x08, 16: 0x0C}
#: BMI270 ACC_RANGE register values
BMI270_RANGE: dict[int, int] = {2: 0x00, 4: 0x01, 8: 0x02, 16: 0x03}


def lsb_per_g(range_g: int) -> float:
    """Counts per g at a range (16384 at 2 g ... 2048 at 16 g)."""
    if range_g not in BMI160_RANGE:
        raise ValueError(f"metawear: range_g must be one of 2, 4, 8, 16, got {range_g}")
    return 32768.0 / range_g


def acc_conf_byte(sample_rate_hz: float, chip: str = "bmi160") -> int:
    """ACC_CONF register: ODR code | bandwidth (normal, 2 << 4) | undersampling/perf bit.

    BMI160 sets the undersampling bit (0x80) below 12.5 Hz and uses bandwidth 0 there, as the
    vendor's table does; BMI270 keeps bandwidth 2 everywhere and sets the performance bit (0x80)
    from 12.5 Hz up (MbientLab's ``test_accelerometer_bmi270.py``, ``test_set_odr``).

    >>> hex(acc_conf_byte(100)), hex(acc_conf_byte(0.78125)), hex(acc_conf_byte(100, "bmi270"))
    ('0x28', '0x81', '0xa8')
    >>> hex(acc_conf_byte(6.25, "bmi270"))
    '0x24'
    """
    code = ODR_CODES.get(float(sample_rate_hz))
    if code is None:
        raise ValueError(f"metawear: unsupported sample rate {sample_rate_hz} Hz")
    if chip == "bmi270":
        return (0x80 if code >= 0x5 else 0) | (2 << 4) | code
    if chip != "bmi160":
        raise ValueError(f"metawear: chip must be bmi160 or bmi270, got {chip!r}")
    return (0x80 | code) if code < 0x5 else ((2 << 4) | code)


@dataclass(frozen=True)
class _Cfg:
    fs_hz: float
    range_g: int
    chip: str
    packed: bool

    @property
    def data_register(self) -> int:
        if not self.packed:
            return REG_DATA
        return REG_PACKED_BMI270 if self.chip == "bmi270" else REG_PACKED_BMI160


def _cfg(config: dict[str, Any]) -> _Cfg:
    unknown = set(config) - {"acc"}
    if unknown:
        raise ValueError(f"metawear: unknown stream(s) {sorted(unknown)} (known: acc)")
    a = config.get("acc", {})
    c = _Cfg(
        float(a.get("sample_rate_hz", 100)),
        int(a.get("range_g", 16)),
        str(a.get("chip", "bmi160")),
        bool(a.get("packed", True)),
    )
    acc_conf_byte(c.fs_hz, c.chip)
    lsb_per_g(c.range_g)
    return c


def decode_notification(data: bytes, *, range_g: int) -> NDArray[np.float64]:
    """Decode an accelerometer notification (single or packed) into g, shape (n, 3).

    Raises
    ------
    TruncatedPacketError, UnknownMeasurementTypeError, UnknownFrameTypeError, PayloadLengthError

    Examples
    --------
    >>> decode_notification(bytes.fromhex("030416C494A22AD0"), range_g=4).round(3).tolist()
    [[-1.872, -2.919, -1.495]]
    """
    raw = decode_raw(data)
    return raw / lsb_per_g(range_g)


def decode_raw(data: bytes) -> NDArray[np.int64]:
    """The int16 counts of an accelerometer notification, shape (n, 3)."""
    if len(data) < 2:
        raise TruncatedPacketError(
            DEVICE, "acc", f"notification of {len(data)} bytes (need module + register)"
        )
    if data[0] != MODULE_ACC:
        raise UnknownMeasurementTypeError(
            DEVICE, "acc", f"module 0x{data[0]:02X} is not the accelerometer"
        )
    reg = data[1]
    body = data[2:]
    if reg == REG_DATA:
        need = 6
    elif reg in (REG_PACKED_BMI160, REG_PACKED_BMI270):
        need = 18
    else:
        raise UnknownFrameTypeError(
            DEVICE, "acc", f"accelerometer register 0x{reg:02X} is not a data register"
        )
    if len(body) < need:
        raise TruncatedPacketError(
            DEVICE, "acc", f"register 0x{reg:02X} carries {need} bytes, got {len(body)}"
        )
    if len(body) > need:
        raise PayloadLengthError(
            DEVICE, "acc", f"register 0x{reg:02X} carries {need} bytes, got {len(body)}"
        )
    return np.frombuffer(body, dtype="<i2").astype(np.int64).reshape(-1, 3)


def encode_notification(raw: ArrayLike, *, register: int = REG_DATA) -> bytes:
    """Encode int16 counts (1 sample for register 0x04, 3 for packed registers) as sent.

    >>> encode_notification([[-15338, -23916, -12246]]).hex()
    '030416c494a22ad0'
    """
    r = np.asarray(raw, dtype=np.int64)
    need = 1 if register == REG_DATA else 3
    if register not in (REG_DATA, REG_PACKED_BMI160, REG_PACKED_BMI270):
        raise ValueError(f"register 0x{register:02X} is not a data register")
    if r.shape != (need, 3):
        raise ValueError(f"register 0x{register:02X} carries {need} samples of 3 axes")
    if r.min() < -32768 or r.max() > 32767:
        raise ValueError("samples exceed int16")
    return bytes((MODULE_ACC, register)) + r.astype("<i2").tobytes()


@dataclass
class _Sess:
    host_us: list[int] = field(default_factory=list)
    raws: list[NDArray[np.int64]] = field(default_factory=list)


class MetaWearProfile(base.DeviceProfile):
    """MetaWear accelerometer streaming.

    Config: ``{"acc": {"sample_rate_hz": 100, "range_g": 16, "chip": "bmi160", "packed": True}}``
    (``chip`` ``bmi160`` for MetaMotion R/C, ``bmi270`` for MetaMotion S).
    """

    name = "metawear"
    name_prefixes = ("MetaWear", "MetaMotion", "MMS", "MMR", "MMC")
    service_uuids = (SERVICE_UUID,)
    notify_uuids = (NOTIFY_UUID,)
    #: silence, in packet intervals, taken as lost packets
    loss_factor = 5.0

    def start_writes(self, config: dict[str, Any]) -> list[base.GattWrite]:
        """Configure, subscribe, enable, start (written without response, as the SDK's
        ``send_command`` writes every command but macros).

        The BMI270's start is ``03 01 02`` below 12.5 Hz, where the SDK clears the performance
        bit (``mbl_mw_acc_bmi270_set_odr`` then ``mbl_mw_acc_bosch_start``).

        >>> [w.data.hex() for w in PROFILE.start_writes({"acc": {"sample_rate_hz": 100,
        ...  "range_g": 16}})]
        ['0303280c', '031c01', '03020100', '030101']
        >>> PROFILE.start_writes({"acc": {"sample_rate_hz": 6.25, "chip": "bmi270"}})[-1].data
        b'\\x03\\x01\\x02'
        """
        c = _cfg(config)
        rng = (BMI270_RANGE if c.chip == "bmi270" else BMI160_RANGE)[c.range_g]
        conf = acc_conf_byte(c.fs_hz, c.chip)
        power = POWER_START_BMI270_LOW_RATE if c.chip == "bmi270" and not conf & 0x80 else 0x01
        cmds = [
            bytes((MODULE_ACC, REG_CONFIG, conf, rng)),
            bytes((MODULE_ACC, c.data_register, 0x01)),
            bytes((MODULE_ACC, REG_INTERRUPT_ENABLE, 0x01, 0x00)),
            bytes((MODULE_ACC, REG_POWER, power)),
        ]
        return [base.GattWrite(COMMAND_UUID, d, with_response=False) for d in cmds]

    def stop_writes(self, config: dict[str, Any]) -> list[base.GattWrite]:
        """Stop, disable, unsubscribe.

        >>> [w.data.hex() for w in PROFILE.stop_writes({"acc": {}})]
        ['030100', '03020001', '031c00']
        """
        c = _cfg(config)
        cmds = [
            bytes((MODULE_ACC, REG_POWER, 0x00)),
            bytes((MODULE_ACC, REG_INTERRUPT_ENABLE, 0x00, 0x01)),
            bytes((MODULE_ACC, c.data_register, 0x00)),
        ]
        return [base.GattWrite(COMMAND_UUID, d, with_response=False) for d in cmds]

    def required_mtu(self, config: dict[str, Any]) -> int:
        """20-byte notifications fit the default MTU (23)."""
        _cfg(config)
        return 23

    def decode_records(self, records: base.RawRecords, config: dict[str, Any]) -> base.DecodeResult:
        """Replay records: sessions start at each connection and each start command."""
        c = _cfg(config)
        res = base.DecodeResult()
        scale = 1.0 / lsb_per_g(c.range_g)
        fs = c.fs_hz
        sessions: list[_Sess] = []
        conn: int | None = None
        for i in range(len(records)):
            kind = int(records.kind[i])
            uuid = records.char_uuid[i].lower()
            data = records.payload[i]
            t = int(records.t_us[i])
            cid = int(records.conn_id[i])
            if cid != conn:
                conn = cid
                sessions.append(_Sess())
            if kind == base.RecordKind.WRITE and uuid == COMMAND_UUID:
                if (
                    len(data) == 3
                    and data[:2] == bytes((MODULE_ACC, REG_POWER))
                    and data[2]
                    in (
                        0x01,
                        POWER_START_BMI270_LOW_RATE,
                    )
                ):
                    sessions.append(_Sess())
                elif len(data) == 4 and data[:2] == bytes((MODULE_ACC, REG_CONFIG)):
                    rb = data[3]
                    table = BMI270_RANGE if c.chip == "bmi270" else BMI160_RANGE
                    inv = {v: k for k, v in table.items()}
                    if rb in inv:
                        scale = 1.0 / lsb_per_g(inv[rb])
            elif kind == base.RecordKind.NOTIFY and uuid == NOTIFY_UUID:
                if (
                    data[:1] != bytes((MODULE_ACC,))
                    or len(data) < 2
                    or data[1]
                    not in (
                        REG_DATA,
                        REG_PACKED_BMI160,
                        REG_PACKED_BMI270,
                    )
                ):
                    if data[:1] == bytes((MODULE_ACC,)) or not data:
                        res.errors.append(base.PacketError(t, uuid, bytes(data), self._why(data)))
                    continue  # other modules' traffic (battery, settings) is not ours
                try:
                    raw = decode_raw(data)
                except base.DecodeError as err:
                    res.errors.append(base.PacketError(t, uuid, bytes(data), str(err)))
                    continue
                if not sessions:
                    sessions.append(_Sess())
                sessions[-1].host_us.append(t)
                sessions[-1].raws.append(raw)
        qc: dict[str, Any] = {"packets": 0, "packets_lost": 0, "duplicates": 0, "reordered": 0}
        res.qc["acc"] = qc
        t_parts: list[NDArray[np.int64]] = []
        v_parts: list[NDArray[np.float64]] = []
        s_parts: list[NDArray[np.int64]] = []
        seq0 = 0
        drift: list[float] = []
        for s in sessions:
            if not s.raws:
                continue
            rows = np.array([r.shape[0] for r in s.raws], dtype=np.int64)
            host = np.array(s.host_us, dtype=np.int64)
            qc["packets"] += len(s.raws)
            extra = self._lost_samples(host, rows, fs)
            first_idx = np.cumsum(rows + extra) - rows
            last_idx = first_idx + rows - 1
            dev_pkt_us = np.rint(last_idx * 1e6 / fs).astype(np.int64)
            m = fit_clock(dev_pkt_us, host, max_abs_drift_ppm=20_000.0)
            idx = np.repeat(first_idx, rows) + (
                np.arange(int(rows.sum())) - np.repeat(np.cumsum(rows) - rows, rows)
            )
            t_us = m.to_host_us(np.rint(idx * 1e6 / fs).astype(np.int64))
            qc["packets_lost"] += int(np.sum(np.ceil(extra / np.maximum(rows, 1))))
            for j in np.flatnonzero(extra > 0).tolist():
                a = int(np.searchsorted(idx, first_idx[j])) - 1
                res.gaps.append(base.Gap("acc", int(t_us[a]), int(t_us[a + 1]), "packet_loss"))
            if t_parts:
                res.gaps.append(base.Gap("acc", int(t_parts[-1][-1]), int(t_us[0]), "disconnect"))
                seq0 = (
                    int(s_parts[-1][-1])
                    + 1
                    + max(0, round((int(t_us[0]) - int(t_parts[-1][-1])) * fs / 1e6) - 1)
                )
            t_parts.append(t_us)
            v_parts.append(np.concatenate(s.raws).astype(np.float64) * scale)
            s_parts.append(seq0 + idx)
            drift.append(m.drift_ppm)
            qc["clock_offset_us"] = float(m.offset_us)
        if t_parts:
            res.streams["acc"] = base.StreamSamples(
                "acc",
                np.concatenate(t_parts),
                np.concatenate(v_parts),
                ("x", "y", "z"),
                "g",
                fs,
                np.concatenate(s_parts).astype(np.int64),
            )
            qc["clock_drift_ppm"] = float(np.median(drift))
            qc["samples"] = int(sum(p.size for p in t_parts))
        return res

    def _lost_samples(
        self, host: NDArray[np.int64], rows: NDArray[np.int64], fs: float
    ) -> NDArray[np.int64]:
        """Samples lost before each packet, from persistent steps in the arrival envelope.

        A latency spike delays packets and the ones queued behind it, which then arrive in a
        burst: the envelope of ``host - sample_time`` returns to its level. Lost packets shift
        it up for good. So a silence is a loss when the envelope after it (next ~5 s) sits higher
        than before it by more than ``loss_factor`` packet intervals.
        """
        extra = np.zeros(rows.size, dtype=np.int64)
        if rows.size < 2:
            return extra
        interval_us = float(np.median(rows)) / fs * 1e6
        gap = np.diff(host)
        cand = np.flatnonzero(gap > max(self.loss_factor * interval_us, 50_000.0)) + 1
        if cand.size == 0:
            return extra
        win = max(5, round(5e6 / interval_us))
        last = (np.cumsum(rows) - 1).astype(np.float64)
        y = host.astype(np.float64) - last / fs * 1e6
        shift = 0.0
        for j in cand.tolist():
            if rows.size - j < win // 2:
                break  # too few packets after the silence to tell a spike from a loss
            pre = float(y[max(0, j - win) : j].min())
            post = float(y[j : j + win].min()) - shift
            lost_us = post - pre
            if lost_us > self.loss_factor * interval_us:
                n = round(lost_us * fs / 1e6)
                extra[j] = n
                shift += n / fs * 1e6
        return extra

    @staticmethod
    def _why(data: bytes) -> str:
        try:
            decode_raw(data)
        except base.DecodeError as err:
            return str(err)
        return f"{DEVICE} acc: unexpected notification"  # pragma: no cover


PROFILE = MetaWearProfile()


from glutewake.devices.metawear_virtual import MetaWearVirtualDevice  # noqa: E402  (re-exported)

__all__ = [
    "COMMAND_UUID",
    "NOTIFY_UUID",
    "PROFILE",
    "SERVICE_UUID",
    "MetaWearProfile",
    "MetaWearVirtualDevice",
    "acc_conf_byte",
    "decode_notification",
    "decode_raw",
    "encode_notification",
    "lsb_per_g",
]
