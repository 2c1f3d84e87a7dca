"""glutewake-open: an open GATT profile for DIY EMG/IMU boards (specified in docs/devices.md).

An ESP32/nRF52 board with a MyoWare-class EMG front end and an optional IMU implements:

- service ``47570001-6f70-656e-2d65-6d672d696d75`` with characteristics
  EMG data ``...0002`` (notify), ACC data ``...0003`` (notify), configuration ``...0004`` (read),
  command ``...0005`` (write with response + notify);
- the standard Battery Service 0x180F / Battery Level 0x2A19.

Every data notification is a 14-byte little-endian header (stream id, flags, packet sequence
number, device time of the first sample in µs) followed by int16 samples, sample-major.

>>> from glutewake.devices import glutewake_open as go
>>> pkt = go.encode_packet(go.STREAM_EMG, seq=7, t_dev_us=1_000_000, raw=[[10, -20], [11, -21]])
>>> pkt.hex()
'0100070040420f000000000002020a00ecff0b00ebff'
>>> p = go.decode_packet(pkt)
>>> p.seq, p.t_dev_us, p.raw.tolist()
(7, 1000000, [[10, -20], [11, -21]])
"""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from glutewake.devices import base
from glutewake.devices._timing import map_to_host
from glutewake.devices.errors import (
    ControlPointError,
    MtuTruncatedError,
    PayloadLengthError,
    TimestampError,
    TruncatedPacketError,
    UnknownMeasurementTypeError,
)

DEVICE = "glutewake-open"
_SUFFIX = "-6f70-656e-2d65-6d672d696d75"  # ASCII "open-emg-imu"
SERVICE_UUID = "47570001" + _SUFFIX
EMG_DATA_UUID = "47570002" + _SUFFIX
ACC_DATA_UUID = "47570003" + _SUFFIX
CONFIG_UUID = "47570004" + _SUFFIX
COMMAND_UUID = "47570005" + _SUFFIX
BATTERY_SERVICE_UUID = "0000180f-0000-1000-8000-00805f9b34fb"
BATTERY_LEVEL_UUID = "00002a19-0000-1000-8000-00805f9b34fb"

STREAM_EMG = 0x01
STREAM_ACC = 0x02
STREAM_IDS = {"emg": STREAM_EMG, "acc": STREAM_ACC}
STREAM_BY_ID = {v: k for k, v in STREAM_IDS.items()}
DATA_UUIDS = {"emg": EMG_DATA_UUID, "acc": ACC_DATA_UUID}

FLAG_START = 0x01  #: first packet of the stream since a start command
FLAG_CLIPPED = 0x02  #: at least one sample of the packet hit the int16 rail

HEADER_BYTES = 14
#: device times at or above this are invalid (a clock since boot never gets there: 146,000 years)
MAX_DEVICE_TIME_US = 1 << 62
_HEADER = struct.Struct("<BBHQBB")

OP_START = 0x01
OP_STOP = 0x02
RESPONSE_CODE = 0xF0
STATUS_OK = 0
STATUS_UNKNOWN_OP = 1
STATUS_INVALID_LENGTH = 2
STATUS_INVALID_PARAMETER = 3
STATUS_MTU_TOO_SMALL = 4
STATUS_NAMES = {
    0: "OK",
    1: "UNKNOWN_OP",
    2: "INVALID_LENGTH",
    3: "INVALID_PARAMETER",
    4: "MTU_TOO_SMALL",
}

CONFIG_VERSION = 1
_CONFIG = struct.Struct("<BBHfBHfB")  # 16 bytes, then the labels
#: defaults used when neither a configuration read nor the config dict gives a scale
DEFAULT_EMG_UV_PER_LSB = 0.5
DEFAULT_ACC_G_PER_LSB = 1.0 / 4096.0
#: a packet carries at most this much data (latency bound the firmware keeps)
MAX_PACKET_S = 0.05
#: the host wants at least this much data per packet (<= 100 notifications/s per stream)
MIN_PACKET_S = 0.01
_ACC_NAMES = ("x", "y", "z")


# ----------------------------------------------------------------------------- packets


@dataclass(frozen=True)
class OpenPacket:
    """One decoded data notification.

    Attributes
    ----------
    stream_id : int
        1 EMG, 2 ACC.
    flags : int
        ``FLAG_START`` | ``FLAG_CLIPPED``.
    seq : int
        Packet sequence number (uint16, wraps).
    t_dev_us : int
        Device clock (µs since boot) of the first sample.
    raw : int64 (n_samples, n_channels)
        The int16 samples.
    """

    stream_id: int
    flags: int
    seq: int
    t_dev_us: int
    raw: NDArray[np.int64]

    @property
    def stream(self) -> str:
        """``emg`` or ``acc``."""
        return STREAM_BY_ID[self.stream_id]


def decode_packet(data: bytes, *, att_mtu: int | None = None) -> OpenPacket:
    """Decode one data notification.

    Raises
    ------
    TruncatedPacketError, MtuTruncatedError, UnknownMeasurementTypeError, PayloadLengthError,
    TimestampError
    """
    n = len(data)
    stream = STREAM_BY_ID.get(data[0], f"stream{data[0]}") if n else "data"
    if n < HEADER_BYTES:
        err: base.DecodeError = TruncatedPacketError(
            DEVICE, stream, f"packet of {n} bytes is shorter than the 14-byte header"
        )
        raise _mtu(err, n, att_mtu)
    sid, flags, seq, t_dev, ns, nch = _HEADER.unpack_from(data)
    if sid not in STREAM_BY_ID:
        raise UnknownMeasurementTypeError(DEVICE, stream, f"unknown stream id 0x{sid:02X}")
    if ns == 0 or nch == 0:
        raise PayloadLengthError(DEVICE, stream, f"header announces {ns} samples x {nch} channels")
    if t_dev >= MAX_DEVICE_TIME_US:
        raise TimestampError(DEVICE, stream, f"device time {t_dev} µs is not a time since boot")
    need = HEADER_BYTES + 2 * ns * nch
    if n < need:
        err = TruncatedPacketError(
            DEVICE, stream, f"header announces {ns} x {nch} samples ({need} bytes), packet has {n}"
        )
        raise _mtu(err, n, att_mtu)
    if n > need:
        raise PayloadLengthError(
            DEVICE, stream, f"packet has {n} bytes, header announces {need} ({ns} x {nch} samples)"
        )
    raw = np.frombuffer(data, dtype="<i2", offset=HEADER_BYTES).astype(np.int64).reshape(ns, nch)
    return OpenPacket(sid, flags, seq, t_dev, raw)


def _mtu(err: base.DecodeError, n: int, att_mtu: int | None) -> base.DecodeError:
    if att_mtu is not None and n == att_mtu - 3:
        return MtuTruncatedError(
            err.device, err.stream, f"notification cut at ATT MTU {att_mtu}: {err.problem}"
        )
    return err


def encode_packet(
    stream_id: int, *, seq: int, t_dev_us: int, raw: ArrayLike, flags: int = 0
) -> bytes:
    """Encode a data notification exactly as the firmware sends it.

    Raises
    ------
    ValueError
        Samples outside int16, more than 255 samples or channels, a bad stream id.
    """
    r = np.asarray(raw, dtype=np.int64)
    if r.ndim != 2 or not (1 <= r.shape[0] <= 255) or not (1 <= r.shape[1] <= 255):
        raise ValueError("raw must be (1..255 samples, 1..255 channels)")
    if stream_id not in STREAM_BY_ID:
        raise ValueError(f"unknown stream id {stream_id}")
    if r.min() < -32768 or r.max() > 32767:
        raise ValueError("samples exceed int16")
    if not 0 <= t_dev_us < MAX_DEVICE_TIME_US:
        raise ValueError(f"t_dev_us must be in [0, 2**62), got {t_dev_us}")
    head = _HEADER.pack(stream_id, flags, seq & 0xFFFF, t_dev_us, r.shape[0], r.shape[1])
    return head + r.astype("<i2").tobytes()


def samples_per_packet(n_channels: int, fs_hz: float, att_mtu: int) -> int:
    """Samples per channel the firmware puts in one packet.

    ``min(255, (att_mtu - 3 - 14) // (2 * n_channels), ceil(fs_hz * 0.05))``, at least 1: as
    many as the MTU allows, but never more than 50 ms of data.

    >>> samples_per_packet(2, 1000, 247)
    50
    >>> samples_per_packet(2, 1000, 23)
    1
    """
    by_mtu = (att_mtu - 3 - HEADER_BYTES) // (2 * n_channels)
    return max(1, min(255, by_mtu, math.ceil(fs_hz * MAX_PACKET_S)))


# ----------------------------------------------------------------------------- config/commands


@dataclass(frozen=True)
class OpenConfig:
    """The configuration characteristic's content."""

    emg_channels: tuple[str, ...]
    emg_fs_hz: int
    emg_uv_per_lsb: float
    acc_channels: int = 0
    acc_fs_hz: int = 0
    acc_g_per_lsb: float = DEFAULT_ACC_G_PER_LSB
    version: int = CONFIG_VERSION

    def encode(self) -> bytes:
        """Bytes a read of the configuration characteristic returns."""
        labels = ",".join(self.emg_channels).encode()
        if len(labels) > 255:
            raise ValueError("channel labels exceed 255 bytes")
        head = _CONFIG.pack(
            self.version,
            len(self.emg_channels),
            self.emg_fs_hz,
            self.emg_uv_per_lsb,
            self.acc_channels,
            self.acc_fs_hz,
            self.acc_g_per_lsb,
            len(labels),
        )
        return head + labels

    @classmethod
    def decode(cls, data: bytes) -> OpenConfig:
        """Parse a configuration read.

        Raises
        ------
        ControlPointError
            Wrong version, truncated value, label count mismatch.
        """
        if len(data) < _CONFIG.size:
            raise ControlPointError(
                DEVICE, "config", f"config value of {len(data)} bytes (need 16)"
            )
        ver, nch, fs, uv, nacc, afs, g, nl = _CONFIG.unpack_from(data)
        if ver != CONFIG_VERSION:
            raise ControlPointError(
                DEVICE, "config", f"config version {ver} (this decoder reads 1)"
            )
        if len(data) != _CONFIG.size + nl:
            raise ControlPointError(
                DEVICE, "config", f"labels announce {nl} bytes, value has {len(data) - 16}"
            )
        labels = tuple(data[_CONFIG.size :].decode("utf-8", "replace").split(",")) if nl else ()
        if labels and len(labels) != nch:
            raise ControlPointError(DEVICE, "config", f"{len(labels)} labels for {nch} channels")
        if not labels:
            labels = tuple(f"emg{i + 1}" for i in range(nch))
        return cls(labels, fs, float(uv), nacc, afs, float(g), ver)


def encode_start(
    *, emg: bool = True, acc: bool = False, emg_fs_hz: int = 0, acc_fs_hz: int = 0
) -> bytes:
    """START command: ``[0x01][stream mask][emg fs u16][acc fs u16]`` (fs 0 = keep current).

    >>> encode_start(emg=True, acc=True, emg_fs_hz=1000, acc_fs_hz=50).hex()
    '0103e8033200'
    """
    mask = (STREAM_EMG if emg else 0) | (STREAM_ACC if acc else 0)
    return struct.pack("<BBHH", OP_START, mask, emg_fs_hz, acc_fs_hz)


def encode_stop(*, emg: bool = True, acc: bool = True) -> bytes:
    """STOP command: ``[0x02][stream mask]``.

    >>> encode_stop().hex()
    '0203'
    """
    return bytes((OP_STOP, (STREAM_EMG if emg else 0) | (STREAM_ACC if acc else 0)))


def encode_response(op: int, status: int) -> bytes:
    """Command response notification: ``[0xF0][op][status]``."""
    return bytes((RESPONSE_CODE, op, status))


def parse_response(data: bytes) -> tuple[int, int]:
    """``(op, status)`` of a command response.

    Raises
    ------
    ControlPointError
    """
    if len(data) != 3 or data[0] != RESPONSE_CODE:
        raise ControlPointError(DEVICE, "command", f"not a command response: {data.hex()}")
    return data[1], data[2]


# ----------------------------------------------------------------------------- profile


def _config_from_dict(config: dict[str, Any]) -> OpenConfig:
    emg = config.get("emg", {})
    acc = config.get("acc", {})
    chans = emg.get("channels", ["emg1"])
    if isinstance(chans, int):
        chans = [f"emg{i + 1}" for i in range(chans)]
    return OpenConfig(
        emg_channels=tuple(chans),
        emg_fs_hz=int(emg.get("fs_hz", 0)),
        emg_uv_per_lsb=float(emg.get("uv_per_lsb", DEFAULT_EMG_UV_PER_LSB)),
        acc_channels=3 if acc else 0,
        acc_fs_hz=int(acc.get("fs_hz", 0)),
        acc_g_per_lsb=float(acc.get("g_per_lsb", DEFAULT_ACC_G_PER_LSB)),
    )


@dataclass
class _Pkts:
    host_us: list[int] = field(default_factory=list)
    session: list[int] = field(default_factory=list)
    pkt: list[OpenPacket] = field(default_factory=list)
    cfg: list[OpenConfig] = field(default_factory=list)
    raw_bytes: list[bytes] = field(default_factory=list)


class GlutewakeOpenProfile(base.DeviceProfile):
    """The glutewake-open profile.

    Config: ``{"emg": {"fs_hz": 1000, "channels": ["glute_max_r", "biceps_femoris_r"],
    "uv_per_lsb": 0.5}, "acc": {"fs_hz": 50, "g_per_lsb": 1/4096}}``; ``acc`` optional,
    ``channels`` a list of labels or a count, scales optional (the configuration read wins).
    """

    name = "glutewake-open"
    name_prefixes = ("glutewake", "GW-")
    service_uuids = (SERVICE_UUID,)
    notify_uuids = (EMG_DATA_UUID, ACC_DATA_UUID, COMMAND_UUID)
    optional_notify_uuids = (ACC_DATA_UUID,)  # "omit if no IMU" (docs/devices.md)

    def start_writes(self, config: dict[str, Any]) -> list[base.GattWrite]:
        """One START command for the configured streams.

        >>> PROFILE.start_writes({"emg": {"fs_hz": 1000, "channels": 2}})[0].data.hex()
        '0101e8030000'
        """
        self._check(config)
        data = encode_start(
            emg="emg" in config,
            acc="acc" in config,
            emg_fs_hz=int(config.get("emg", {}).get("fs_hz", 0)),
            acc_fs_hz=int(config.get("acc", {}).get("fs_hz", 0)),
        )
        return [base.GattWrite(COMMAND_UUID, data)]

    def stop_writes(self, config: dict[str, Any]) -> list[base.GattWrite]:
        """One STOP command for the configured streams."""
        self._check(config)
        return [base.GattWrite(COMMAND_UUID, encode_stop(emg="emg" in config, acc="acc" in config))]

    def required_mtu(self, config: dict[str, Any]) -> int:
        """MTU at which a packet carries >= 10 ms of every stream (<= 100 packets/s each).

        >>> PROFILE.required_mtu({"emg": {"fs_hz": 1000, "channels": 2}})
        57
        """
        c = _config_from_dict(config)
        need = 23
        if "emg" in config:
            need = max(
                need,
                3 + HEADER_BYTES + 2 * len(c.emg_channels) * math.ceil(c.emg_fs_hz * MIN_PACKET_S),
            )
        if "acc" in config:
            need = max(need, 3 + HEADER_BYTES + 6 * math.ceil(c.acc_fs_hz * MIN_PACKET_S))
        return need

    @staticmethod
    def _check(config: dict[str, Any]) -> None:
        unknown = set(config) - {"emg", "acc"}
        if unknown:
            raise ValueError(
                f"glutewake-open: unknown stream(s) {sorted(unknown)} (known: emg, acc)"
            )

    def decode_records(self, records: base.RawRecords, config: dict[str, Any]) -> base.DecodeResult:
        """Replay spooled records into EMG (µV) and ACC (g) streams.

        Sessions (a connection, or a START) are decoded separately: within one, sequence
        numbers are unwrapped, duplicates dropped, late packets put back in order, and holes
        become ``packet_loss`` gaps; ``qc`` counts packets, lost, duplicates and reordered.
        """
        res = base.DecodeResult()
        cfg = _config_from_dict(config)
        per: dict[str, _Pkts] = {"emg": _Pkts(), "acc": _Pkts()}
        session = 0
        conn: int | None = None
        att_mtu: int | None = None
        cmd_errors: list[str] = []
        for i in range(len(records)):
            kind = int(records.kind[i])
            uuid = records.char_uuid[i].lower()
            data = records.payload[i]
            t = int(records.t_us[i])
            cid = int(records.conn_id[i])
            if cid != conn:
                conn = cid
                session += 1
                att_mtu = None
            if kind == base.RecordKind.CONNECT:
                att_mtu = int.from_bytes(data[:2], "little") if len(data) >= 2 else None
            elif kind == base.RecordKind.READ and uuid == CONFIG_UUID:
                try:
                    cfg = OpenConfig.decode(data)
                except ControlPointError as err:
                    res.errors.append(base.PacketError(t, uuid, bytes(data), str(err)))
            elif (
                kind == base.RecordKind.WRITE
                and uuid == COMMAND_UUID
                and data[:1] == bytes((OP_START,))
            ):
                session += 1
            elif kind == base.RecordKind.NOTIFY and uuid == COMMAND_UUID:
                try:
                    op, status = parse_response(data)
                except ControlPointError as err:
                    res.errors.append(base.PacketError(t, uuid, bytes(data), str(err)))
                    continue
                if status != STATUS_OK:
                    cmd_errors.append(f"op {op}: {STATUS_NAMES.get(status, status)}")
            elif kind == base.RecordKind.NOTIFY and uuid in (EMG_DATA_UUID, ACC_DATA_UUID):
                try:
                    p = decode_packet(data, att_mtu=att_mtu)
                    want = "emg" if uuid == EMG_DATA_UUID else "acc"
                    if p.stream != want:
                        raise UnknownMeasurementTypeError(
                            DEVICE, want, f"stream id {p.stream_id} on the {want} characteristic"
                        )
                except base.DecodeError as err:
                    res.errors.append(base.PacketError(t, uuid, bytes(data), str(err)))
                    continue
                pk = per[p.stream]
                if p.flags & FLAG_START and pk.session and pk.session[-1] == session and pk.pkt:
                    first = pk.session.index(session)
                    # a repeat of this session's first packet is a link-layer duplicate; any
                    # other start-flagged packet means the device restarted the stream
                    if not (pk.pkt[first].seq == p.seq and pk.raw_bytes[first] == bytes(data)):
                        session += 1
                pk.raw_bytes.append(bytes(data))
                pk.host_us.append(t)
                pk.session.append(session)
                pk.pkt.append(p)
                pk.cfg.append(cfg)
        for stream, pk in per.items():
            if pk.pkt:
                self._decode_stream(stream, pk, res)
        if cmd_errors:
            res.qc.setdefault("command", {})["errors"] = cmd_errors
        return res

    def _decode_stream(self, stream: str, pk: _Pkts, res: base.DecodeResult) -> None:
        cfg = pk.cfg[-1]
        fs = float(cfg.emg_fs_hz if stream == "emg" else cfg.acc_fs_hz)
        scale = cfg.emg_uv_per_lsb if stream == "emg" else cfg.acc_g_per_lsb
        names = cfg.emg_channels if stream == "emg" else _ACC_NAMES
        nch = pk.pkt[0].raw.shape[1]
        qc: dict[str, Any] = {
            "packets": len(pk.pkt),
            "packets_lost": 0,
            "duplicates": 0,
            "reordered": 0,
        }
        res.qc[stream] = qc
        if len(names) != nch:
            names = tuple(f"{stream}{i + 1}" for i in range(nch))
        if fs <= 0:
            fs = self._estimate_fs(pk)
        # unwrap sequence numbers within each session, in arrival order
        sess = np.array(pk.session, dtype=np.int64)
        seq16 = np.array([p.seq for p in pk.pkt], dtype=np.int64)
        useq = np.empty_like(seq16)
        order_keep: list[int] = []
        for s in np.unique(sess).tolist():
            idx = np.flatnonzero(sess == s)
            d = np.diff(seq16[idx])
            step = ((d + 32768) & 0xFFFF) - 32768
            u = np.concatenate([[seq16[idx[0]]], seq16[idx[0]] + np.cumsum(step)])
            useq[idx] = u
            running_max = np.maximum.accumulate(u)
            qc["reordered"] += int(np.sum(u[1:] < running_max[:-1]))
            _, first = np.unique(u, return_index=True)
            qc["duplicates"] += int(idx.size - first.size)
            kept = idx[first]  # sorted by unwrapped seq
            qc["packets_lost"] += int(np.sum(np.diff(u[first]) - 1))
            order_keep.extend(kept.tolist())
        keep = np.array(order_keep, dtype=np.int64)
        pkts = [pk.pkt[k] for k in keep.tolist()]
        if any(p.raw.shape[1] != nch for p in pkts):
            good = [k for k, p in zip(keep.tolist(), pkts, strict=True) if p.raw.shape[1] == nch]
            for k, p in zip(keep.tolist(), pkts, strict=True):
                if p.raw.shape[1] != nch:
                    res.errors.append(
                        base.PacketError(
                            pk.host_us[k],
                            DATA_UUIDS[stream],
                            b"",
                            f"{DEVICE} {stream}: {p.raw.shape[1]} channels, expected {nch}",
                        )
                    )
            keep = np.array(good, dtype=np.int64)
            pkts = [pk.pkt[k] for k in good]
        rows = np.array([p.raw.shape[0] for p in pkts], dtype=np.int64)
        raw = np.concatenate([p.raw for p in pkts])
        t0 = np.array([p.t_dev_us for p in pkts], dtype=np.int64)
        period_us = 1e6 / fs
        within = np.arange(int(rows.sum()), dtype=np.int64) - np.repeat(
            np.cumsum(rows) - rows, rows
        )
        dev_us = np.repeat(t0, rows) + np.rint(within * period_us).astype(np.int64)
        last_dev = t0 + np.rint((rows - 1) * period_us).astype(np.int64)
        host = np.array(pk.host_us, dtype=np.int64)[keep]
        # clock pairs in sequence order: a late packet sits above the envelope and does not
        # count as a clock step back
        sample_pkt = np.repeat(np.arange(keep.size, dtype=np.int64), rows)
        t_us, clock_qc = map_to_host(last_dev, host, dev_us, sample_pkt)
        qc.update(clock_qc)
        # sample counter: holes (lost packets, disconnects) advance it by the missing samples
        gap_samples = np.zeros(keep.size, dtype=np.int64)
        if keep.size > 1:
            hole = np.rint((t0[1:] - last_dev[:-1]) / period_us).astype(np.int64) - 1
            gap_samples[1:] = np.maximum(hole, 0)
        step = np.ones(raw.shape[0], dtype=np.int64)
        first_rows = np.cumsum(rows) - rows
        step[first_rows] += gap_samples
        step[0] = 0
        seq = np.cumsum(step)
        sess_k = sess[keep]
        for j in np.flatnonzero(gap_samples > 0).tolist():
            reason = "packet_loss" if sess_k[j] == sess_k[j - 1] else "disconnect"
            res.gaps.append(
                base.Gap(stream, int(t_us[first_rows[j] - 1]), int(t_us[first_rows[j]]), reason)
            )
        res.streams[stream] = base.StreamSamples(
            stream=stream,
            t_us=t_us,
            values=raw.astype(np.float64) * scale,
            channel_names=tuple(names),
            unit="uV" if stream == "emg" else "g",
            fs_hz=fs,
            sample_seq=seq,
        )
        qc["samples"] = int(raw.shape[0])
        qc["clipped_packets"] = int(sum(1 for p in pkts if p.flags & FLAG_CLIPPED))

    @staticmethod
    def _estimate_fs(pk: _Pkts) -> float:
        t = np.array([p.t_dev_us for p in pk.pkt], dtype=np.float64)
        n = np.array([p.raw.shape[0] for p in pk.pkt], dtype=np.float64)
        dt = np.diff(t)
        ok = dt > 0
        if not ok.any():
            return 1.0
        # garbage device times cannot make the rate absurd (1 Hz .. 100 kHz)
        return float(np.clip(np.median(n[:-1][ok] / dt[ok]) * 1e6, 1.0, 1e5))


PROFILE = GlutewakeOpenProfile()


def samples_to_raw(values: ArrayLike, scale: float) -> tuple[NDArray[np.int64], NDArray[np.bool_]]:
    """Quantise values (µV or g) to int16 counts; also return where the rail was hit."""
    q = np.rint(np.asarray(values, dtype=np.float64) / scale)
    clipped = (q <= -32768) | (q >= 32767)
    return np.clip(q, -32768, 32767).astype(np.int64), clipped


def channel_labels(config: dict[str, Any]) -> Sequence[str]:
    """EMG channel labels of a config dict."""
    return _config_from_dict(config).emg_channels


__all__ = [
    "ACC_DATA_UUID",
    "BATTERY_LEVEL_UUID",
    "BATTERY_SERVICE_UUID",
    "COMMAND_UUID",
    "CONFIG_UUID",
    "EMG_DATA_UUID",
    "PROFILE",
    "SERVICE_UUID",
    "GlutewakeOpenProfile",
    "OpenConfig",
    "OpenPacket",
    "decode_packet",
    "encode_packet",
    "encode_response",
    "encode_start",
    "encode_stop",
    "parse_response",
    "samples_per_packet",
]
