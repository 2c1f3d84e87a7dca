"""Polar Measurement Data (PMD): Verity Sense (recommended thigh sensor), H10, OH1.

This module is the public face of the PMD protocol: frame codec (:mod:`.pmd_codec`),
control point (:mod:`.pmd_control`), the profile that replays spooled records
(:data:`PROFILE`) and the byte-level device model (:class:`PolarVirtualDevice`).

>>> from glutewake.devices import polar_pmd
>>> fr = polar_pmd.decode_frame(bytes.fromhex("02650000000000000081F1FF1400F00306017B0F08"),
...                             previous_timestamp_ns=100)
>>> fr.measurement_type, fr.raw.tolist(), fr.timestamps_ns.tolist()
(2, [[-15, 20, 1008], [-20, 17, 1008]], [100, 101])
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from glutewake.devices._timing import map_to_host
from glutewake.devices.base import (
    DecodeError,
    DecodeResult,
    DeviceProfile,
    Gap,
    GattWrite,
    PacketError,
    RawRecords,
    RecordKind,
    StreamSamples,
)
from glutewake.devices.errors import ControlPointError
from glutewake.devices.pmd_codec import (
    DEVICE,
    HEADER_BYTES,
    LAYOUTS,
    PMD_EPOCH_UNIX_US,
    STREAM_NAMES,
    STREAM_TYPES,
    STREAM_UNITS,
    FrameBatch,
    MeasurementType,
    PmdFrame,
    decode_delta_payload,
    decode_frame,
    decode_frames,
    encode_delta_payload,
    encode_frame,
    parse_header,
    sample_timestamps,
    values_to_raw,
)
from glutewake.devices.pmd_control import (
    CpRequest,
    CpResponse,
    MeasurementStopped,
    OpCode,
    SettingType,
    Status,
    encode_features,
    encode_get_settings,
    encode_measurement_stopped,
    encode_response,
    encode_settings,
    encode_start,
    encode_stop,
    parse_features,
    parse_notification,
    parse_request,
    parse_settings,
)

PMD_SERVICE_UUID = "fb005c80-02e7-f387-1cad-8acc2d9d7b11"
PMD_CONTROL_POINT_UUID = "fb005c81-02e7-f387-1cad-8acc2d9d7b11"
PMD_DATA_UUID = "fb005c82-02e7-f387-1cad-8acc2d9d7b11"
BATTERY_LEVEL_UUID = "00002a19-0000-1000-8000-00805f9b34fb"

#: config key of each stream's range, in the unit the PMD RANGE setting uses
_RANGE_KEYS = {"acc": "range_g", "gyro": "range_dps", "mag": "range_gauss"}
_CHANNEL_NAMES = ("x", "y", "z")


def _stream_settings(stream: str, cfg: Mapping[str, Any]) -> dict[SettingType, list[float]]:
    if stream not in STREAM_TYPES:
        raise ValueError(f"polar-pmd: unknown stream {stream!r} (known: acc, gyro, mag)")
    s: dict[SettingType, list[float]] = {
        SettingType.SAMPLE_RATE: [int(cfg["sample_rate_hz"])],
        SettingType.RESOLUTION: [int(cfg.get("resolution_bits", 16))],
    }
    rk = _RANGE_KEYS[stream]
    if rk in cfg:
        s[SettingType.RANGE] = [int(cfg[rk])]
    s[SettingType.CHANNELS] = [int(cfg.get("channels", 3))]
    return s


def min_frame_mtu(channels: int, resolution_bits: int) -> int:
    """ATT MTU below which a compressed frame cannot hold its reference and first delta block.

    The first block is 9 deltas; at the widest width a ``resolution_bits`` stream can need
    (``resolution_bits + 1``) that is the largest first frame the device may have to send.
    """
    ref = channels * ((resolution_bits + 7) >> 3)
    w = min(resolution_bits + 1, 32)
    return 3 + HEADER_BYTES + ref + 2 + math.ceil(w * 9 * channels / 8)


@dataclass
class _StreamState:
    fs_hz: float = 0.0
    resolution_bits: int = 16
    channels: int = 3
    factor: float = 1.0


@dataclass
class _Collected:
    rec_idx: list[int] = field(default_factory=list)
    session: list[int] = field(default_factory=list)
    payload: list[bytes] = field(default_factory=list)
    host_us: list[int] = field(default_factory=list)
    settings: list[tuple[float, int, int, float, int | None]] = field(default_factory=list)


class PolarPmdProfile(DeviceProfile):
    """The PMD profile.

    Config: ``{"acc": {"sample_rate_hz": 52, "range_g": 8, "resolution_bits": 16}}``, optionally
    ``"gyro": {"sample_rate_hz": 52, "range_dps": 2000}`` and
    ``"mag": {"sample_rate_hz": 50, "range_gauss": 50}`` (``resolution_bits`` defaults to 16 and
    ``channels`` to 3).
    """

    name = "polar-pmd"
    name_prefixes = ("Polar Sense", "Polar H10", "Polar OH1", "Polar Verity")
    service_uuids = (PMD_SERVICE_UUID,)
    notify_uuids = (PMD_CONTROL_POINT_UUID, PMD_DATA_UUID)
    control_point_uuid = PMD_CONTROL_POINT_UUID
    data_uuid = PMD_DATA_UUID

    def start_writes(self, config: dict[str, Any]) -> list[GattWrite]:
        """One start request per configured stream, in config order.

        >>> PROFILE.start_writes({"acc": {"sample_rate_hz": 52, "range_g": 8}})[0].data.hex()
        '0202000134000101100002010800040103'
        """
        return [
            GattWrite(PMD_CONTROL_POINT_UUID, encode_start(STREAM_TYPES[s], _stream_settings(s, c)))
            for s, c in config.items()
        ]

    def stop_writes(self, config: dict[str, Any]) -> list[GattWrite]:
        """One stop request per configured stream.

        >>> PROFILE.stop_writes({"acc": {"sample_rate_hz": 52}})[0].data.hex()
        '0302'
        """
        for s in config:
            _stream_settings(s, {"sample_rate_hz": 0})
        return [GattWrite(PMD_CONTROL_POINT_UUID, encode_stop(STREAM_TYPES[s])) for s in config]

    def required_mtu(self, config: dict[str, Any]) -> int:
        """Smallest MTU at which each configured stream's frames fit (see :func:`min_frame_mtu`).

        >>> PROFILE.required_mtu({"acc": {"sample_rate_hz": 52}})
        79
        """
        need = 23
        for s, c in config.items():
            _stream_settings(s, {"sample_rate_hz": 0, **c})
            need = max(need, min_frame_mtu(int(c.get("channels", 3)), int(c.get("resolution_bits", 16))))
        return need

    # ------------------------------------------------------------------ replay

    def decode_records(self, records: RawRecords, config: dict[str, Any]) -> DecodeResult:
        """Replay spooled records: control-point exchanges set each stream's settings and factor.

        Per stream the previous-frame timestamp is reset on every connection and every start.
        Where consecutive frames' spacing shows lost frames (more than 1.5 sample periods per
        sample) the frame is timed from the sample rate instead of being stretched over the
        hole, and the hole becomes a ``packet_loss`` gap. Device timestamps go to UTC through
        the clock model fitted on (frame timestamp, host receive time) pairs.
        """
        res = DecodeResult()
        states: dict[int, _StreamState] = {}
        pending_start: dict[int, CpRequest] = {}
        collected: dict[int, _Collected] = {}
        session_end: dict[int, str] = {}  # session id -> why it ended
        cp_errors: dict[str, list[str]] = {}
        cur_sess: dict[int, int] = {}  # measurement type -> current session id
        next_session = 0
        conn: int | None = None
        att_mtu: int | None = None
        cfg_states = {
            STREAM_TYPES[s]: _StreamState(
                fs_hz=float(c.get("sample_rate_hz", 0)),
                resolution_bits=int(c.get("resolution_bits", 16)),
                channels=int(c.get("channels", 3)),
            )
            for s, c in config.items()
            if s in STREAM_TYPES
        }

        def end_sessions(types: list[int], why: str) -> None:
            for mt in types:
                sid = cur_sess.pop(mt, None)
                if sid is not None:
                    session_end.setdefault(sid, why)

        for i in range(len(records)):
            kind = int(records.kind[i])
            uuid = records.char_uuid[i].lower()
            data = records.payload[i]
            t = int(records.t_us[i])
            cid = int(records.conn_id[i])
            if cid != conn:
                end_sessions(list(cur_sess), "disconnect")
                conn = cid
                states.clear()
                pending_start.clear()
                att_mtu = None
            if kind == RecordKind.CONNECT:
                att_mtu = int.from_bytes(data[:2], "little") if len(data) >= 2 else None
                continue
            if kind == RecordKind.DISCONNECT:
                end_sessions(list(cur_sess), "disconnect")
                continue
            if uuid == PMD_CONTROL_POINT_UUID and kind == RecordKind.WRITE:
                try:
                    req = parse_request(data)
                except ControlPointError as err:
                    res.errors.append(PacketError(t, uuid, bytes(data), str(err)))
                    continue
                if req.op_code == OpCode.REQUEST_MEASUREMENT_START:
                    pending_start[req.measurement_type] = req
                elif req.op_code == OpCode.STOP_MEASUREMENT:
                    end_sessions([req.measurement_type], "stopped")
                    states.pop(req.measurement_type, None)
                continue
            if uuid == PMD_CONTROL_POINT_UUID and kind == RecordKind.NOTIFY:
                try:
                    msg = parse_notification(data)
                except ControlPointError as err:
                    res.errors.append(PacketError(t, uuid, bytes(data), str(err)))
                    continue
                if isinstance(msg, MeasurementStopped):
                    end_sessions(list(msg.measurement_types), "device_stopped")
                    for mt in msg.measurement_types:
                        states.pop(mt, None)
                    continue
                self._on_response(msg, pending_start, states, cp_errors, res, t, uuid, data)
                if msg.op_code == OpCode.REQUEST_MEASUREMENT_START and msg.ok:
                    end_sessions([msg.measurement_type], "restarted")
                    cur_sess[msg.measurement_type] = next_session
                    next_session += 1
                continue
            if uuid == PMD_DATA_UUID and kind == RecordKind.NOTIFY:
                mt = data[0] & 0x3F if data else -1
                if mt not in cur_sess:
                    cur_sess[mt] = next_session
                    next_session += 1
                st = states.get(mt) or cfg_states.get(mt) or _StreamState()
                col = collected.setdefault(mt, _Collected())
                col.rec_idx.append(i)
                col.session.append(cur_sess[mt])
                col.payload.append(bytes(data))
                col.host_us.append(t)
                col.settings.append((st.fs_hz, st.resolution_bits, st.channels, st.factor, att_mtu))
        for mt, col in collected.items():
            self._decode_stream(mt, col, session_end, records, res)
        for stream, errs in cp_errors.items():
            res.qc.setdefault(stream, {})["control_point_errors"] = errs
        return res

    @staticmethod
    def _on_response(
        msg: CpResponse,
        pending_start: dict[int, CpRequest],
        states: dict[int, _StreamState],
        cp_errors: dict[str, list[str]],
        res: DecodeResult,
        t: int,
        uuid: str,
        data: bytes,
    ) -> None:
        stream = STREAM_NAMES.get(msg.measurement_type, f"type{msg.measurement_type}")
        if not msg.ok:
            cp_errors.setdefault(stream, []).append(
                f"{OpCode(msg.op_code).name if msg.op_code in OpCode._value2member_map_ else msg.op_code}: "
                f"{msg.status_name}"
            )
            return
        if msg.op_code != OpCode.REQUEST_MEASUREMENT_START:
            return
        req = pending_start.pop(msg.measurement_type, None)
        st = _StreamState()
        if req is not None:
            s = req.settings
            st.fs_hz = float(s.get(SettingType.SAMPLE_RATE, [0])[0])
            st.resolution_bits = int(s.get(SettingType.RESOLUTION, [16])[0])
            st.channels = int(s.get(SettingType.CHANNELS, [3])[0])
        try:
            params = msg.settings()
        except ControlPointError as err:
            res.errors.append(PacketError(t, uuid, bytes(data), str(err)))
            params = {}
        if SettingType.FACTOR in params:
            st.factor = float(params[SettingType.FACTOR][0])
        states[msg.measurement_type] = st

    def _decode_stream(
        self,
        mt: int,
        col: _Collected,
        session_end: dict[int, str],
        records: RawRecords,
        res: DecodeResult,
    ) -> None:
        stream = STREAM_NAMES.get(mt, f"type{mt}")
        n_in = len(col.payload)
        # group by (frame type, settings) so each group is one vectorized batch
        groups: dict[tuple[int, int, int, float, int | None], list[int]] = {}
        for k, fr in enumerate(col.payload):
            ft = fr[9] if len(fr) > 9 else -1
            fs, resb, ch, factor, mtu = col.settings[k]
            groups.setdefault((ft, resb, ch, factor, mtu), []).append(k)
        frame_raw: dict[int, NDArray[np.int64]] = {}
        frame_vals: dict[int, NDArray[np.float64]] = {}
        frame_ts: dict[int, int] = {}
        for (ft, resb, ch, factor, mtu), idx in groups.items():
            frames = [col.payload[k] for k in idx]
            try:
                lay = LAYOUTS.get((mt, ft))
                use_ch = ch if lay is not None and lay.compressed and lay.status_channel is None else None
                use_res = resb if lay is not None and lay.compressed and not lay.is_float else None
                batch: FrameBatch = decode_frames(
                    frames,
                    measurement_type=mt,
                    frame_type=ft,
                    channels=use_ch,
                    resolution_bits=use_res,
                    factor=factor,
                    att_mtu=mtu,
                )
            except DecodeError as err:
                for k in idx:
                    self._record_error(res, col, k, err, records)
                continue
            for j, err in batch.errors:
                self._record_error(res, col, idx[j], err, records)
            starts = np.cumsum(batch.frame_rows) - batch.frame_rows
            for pos, j in enumerate(batch.frame_index.tolist()):
                k = idx[j]
                a, b = int(starts[pos]), int(starts[pos] + batch.frame_rows[pos])
                frame_raw[k] = batch.raw[a:b]
                frame_vals[k] = batch.values[a:b]
                frame_ts[k] = int(batch.frame_timestamp_ns[pos])
        ok = sorted(frame_raw)
        qc: dict[str, Any] = {
            "packets": n_in,
            "packets_decoded": len(ok),
            "decode_errors": n_in - len(ok),
            "packets_lost": 0,
            "duplicates": 0,
            "reordered": 0,
        }
        res.qc[stream] = qc
        if not ok:
            return
        # drop exact repeats of the previous frame's timestamp in a session (duplicate
        # notifications); count frames whose timestamp goes backwards (reordered)
        keep: list[int] = []
        last_ts: dict[int, int] = {}
        for k in ok:
            s = col.session[k]
            prev = last_ts.get(s)
            if prev is not None and frame_ts[k] == prev:
                qc["duplicates"] += 1
                continue
            if prev is not None and frame_ts[k] < prev:
                qc["reordered"] += 1
            keep.append(k)
            last_ts[s] = max(prev or 0, frame_ts[k])
        fs = self._nominal_fs(col, keep, frame_ts, frame_raw)
        nominal_ns = 1e9 / fs if fs > 0 else 0.0
        ts_parts: list[NDArray[np.int64]] = []
        gaps_dev: list[tuple[int, int, str]] = []  # (device ns last before, first after, reason)
        missing_before: list[int] = []
        prev_ts_in_session: dict[int, int] = {}
        prev_last_sample: int | None = None
        prev_session: int | None = None
        for k in keep:
            s = col.session[k]
            n = frame_raw[k].shape[0]
            ts = frame_ts[k]
            prev = prev_ts_in_session.get(s)
            use_prev: int | None = prev
            if prev is not None and nominal_ns > 0:
                per = (ts - prev) / n
                if per > 1.5 * nominal_ns or per < 0.5 * nominal_ns:
                    use_prev = None
            try:
                tss = sample_timestamps(
                    ts, n, previous_timestamp_ns=use_prev, sample_rate_hz=fs, stream=stream
                )
            except DecodeError as err:
                self._record_error(res, col, k, err, records)
                frame_raw.pop(k)
                continue
            miss = 0
            if prev_last_sample is not None and nominal_ns > 0 and use_prev is None:
                miss = max(0, round((int(tss[0]) - prev_last_sample) / nominal_ns) - 1)
                if miss > 0:
                    reason = (
                        "packet_loss"
                        if prev_session == s
                        else session_end.get(prev_session or 0, "disconnect")
                    )
                    gaps_dev.append((prev_last_sample, int(tss[0]), reason))
                    if reason == "packet_loss":
                        qc["packets_lost"] += max(1, round(miss / max(n, 1)))
            missing_before.append(miss)
            ts_parts.append(tss)
            prev_ts_in_session[s] = ts
            prev_last_sample = int(tss[-1])
            prev_session = s
        keep = [k for k in keep if k in frame_raw]
        if not keep:
            return
        rows = np.array([frame_raw[k].shape[0] for k in keep], dtype=np.int64)
        dev_ns = np.concatenate(ts_parts)
        dev_us = dev_ns // 1000 + PMD_EPOCH_UNIX_US
        pkt_dev_us = np.array([frame_ts[k] // 1000 + PMD_EPOCH_UNIX_US for k in keep], dtype=np.int64)
        pkt_host_us = np.array([col.host_us[k] for k in keep], dtype=np.int64)
        sample_pkt = np.repeat(np.arange(len(keep), dtype=np.int64), rows)
        t_us, clock_qc = map_to_host(pkt_dev_us, pkt_host_us, dev_us, sample_pkt)
        qc.update(clock_qc)
        seq_step = np.ones(int(rows.sum()), dtype=np.int64)
        first_rows = np.cumsum(rows) - rows
        seq_step[first_rows] += np.array(missing_before, dtype=np.int64)
        seq_step[0] = 0
        seq = np.cumsum(seq_step) + 0
        values = np.concatenate([frame_vals[k] for k in keep])
        ch = values.shape[1]
        names = _CHANNEL_NAMES[:ch] if ch <= 3 else (*_CHANNEL_NAMES, "calibration_status")[:ch]
        res.streams[stream] = StreamSamples(
            stream=stream,
            t_us=t_us,
            values=values,
            channel_names=tuple(names),
            unit=STREAM_UNITS.get(stream, ""),
            fs_hz=float(fs),
            sample_seq=seq,
        )
        qc["samples"] = int(rows.sum())
        qc["fs_hz"] = float(fs)
        # gap ends in UTC through the same clock model
        if gaps_dev:
            a = np.array([g[0] for g in gaps_dev], dtype=np.int64) // 1000 + PMD_EPOCH_UNIX_US
            b = np.array([g[1] for g in gaps_dev], dtype=np.int64) // 1000 + PMD_EPOCH_UNIX_US
            ia = np.searchsorted(dev_us, a, side="left")
            ib = np.searchsorted(dev_us, b, side="left")
            for g, x, y in zip(gaps_dev, ia.tolist(), ib.tolist(), strict=True):
                res.gaps.append(
                    Gap(stream, int(t_us[min(x, t_us.size - 1)]), int(t_us[min(y, t_us.size - 1)]), g[2])
                )

    @staticmethod
    def _nominal_fs(
        col: _Collected, keep: list[int], frame_ts: dict[int, int], frame_raw: dict[int, NDArray[np.int64]]
    ) -> float:
        fss = [col.settings[k][0] for k in keep if col.settings[k][0] > 0]
        if fss:
            return float(max(set(fss), key=fss.count))
        # no settings seen: estimate from consecutive frames of a session
        per: list[float] = []
        for a, b in zip(keep, keep[1:], strict=False):
            if col.session[a] == col.session[b] and frame_ts[b] > frame_ts[a]:
                per.append((frame_ts[b] - frame_ts[a]) / frame_raw[b].shape[0])
        return float(1e9 / np.median(per)) if per else 0.0

    @staticmethod
    def _record_error(res: DecodeResult, col: _Collected, k: int, err: DecodeError, records: RawRecords) -> None:
        res.errors.append(PacketError(col.host_us[k], PMD_DATA_UUID, col.payload[k], str(err)))


PROFILE = PolarPmdProfile()

from glutewake.devices.polar_virtual import PolarVirtualDevice  # noqa: E402  (uses this module's constants)

__all__ = [
    "BATTERY_LEVEL_UUID",
    "DEVICE",
    "PMD_CONTROL_POINT_UUID",
    "PMD_DATA_UUID",
    "PMD_EPOCH_UNIX_US",
    "PMD_SERVICE_UUID",
    "PROFILE",
    "CpRequest",
    "CpResponse",
    "FrameBatch",
    "MeasurementStopped",
    "MeasurementType",
    "OpCode",
    "PmdFrame",
    "PolarPmdProfile",
    "PolarVirtualDevice",
    "SettingType",
    "Status",
    "decode_delta_payload",
    "decode_frame",
    "decode_frames",
    "encode_delta_payload",
    "encode_features",
    "encode_frame",
    "encode_get_settings",
    "encode_measurement_stopped",
    "encode_response",
    "encode_settings",
    "encode_start",
    "encode_stop",
    "min_frame_mtu",
    "parse_features",
    "parse_header",
    "parse_notification",
    "parse_request",
    "parse_settings",
    "sample_timestamps",
    "values_to_raw",
]
