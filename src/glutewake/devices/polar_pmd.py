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

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, overload

import numpy as np
from numpy.typing import NDArray

from glutewake.devices import base
from glutewake.devices._timing import HostClock, fit_host_clock
from glutewake.devices.errors import ControlPointError, TimestampError
from glutewake.devices.pmd_codec import (
    _INT64_MAX,
    DEVICE,
    LAYOUTS,
    PMD_EPOCH_UNIX_US,
    STREAM_NAMES,
    STREAM_TYPES,
    STREAM_UNITS,
    FrameBatch,
    MeasurementType,
    PmdFrame,
    _decode_frames,
    decode_delta_payload,
    decode_frame,
    decode_frames,
    encode_delta_payload,
    encode_delta_payloads,
    encode_frame,
    min_frame_mtu,
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

# polarofficial/polar-ble-sdk: Android BlePMDClient.kt (PMD_SERVICE, PMD_CP, PMD_DATA) and iOS
# BlePmdClient.swift (the same three strings); checked by tests/devices/test_vendor_constants.py
PMD_SERVICE_UUID = "fb005c80-02e7-f387-1cad-8acd2d8df0c8"
PMD_CONTROL_POINT_UUID = "fb005c81-02e7-f387-1cad-8acd2d8df0c8"
PMD_DATA_UUID = "fb005c82-02e7-f387-1cad-8acd2d8df0c8"
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


@dataclass
class _StreamState:
    fs_hz: float = 0.0
    resolution_bits: int = 16
    channels: int = 3
    factor: float = 1.0


_Settings = tuple[float, int, int, float, int | None]  # fs_hz, resolution, channels, factor, mtu


@dataclass
class _Collected:
    """A stream's data records as runs: record indices, each run with its session and settings."""

    rec_idx: list[NDArray[np.int64]] = field(default_factory=list)
    session: list[int] = field(default_factory=list)
    settings: list[_Settings] = field(default_factory=list)


@dataclass
class _Records:
    """The records being replayed, their payloads joined once into one buffer."""

    records: base.RawRecords
    buf: NDArray[np.uint8]  # every payload back to back, then 16 zero bytes
    starts: NDArray[np.int64]
    lens: NDArray[np.int64]

    @classmethod
    def of(cls, records: base.RawRecords) -> _Records:
        lens = np.fromiter(map(len, records.payload), dtype=np.int64)
        # the padding joined in, not appended after: one copy of the payloads, not two
        buf = np.frombuffer(b"".join([*records.payload, bytes(16)]), dtype=np.uint8)
        return cls(records, buf, np.cumsum(lens) - lens, lens)

    def byte_at(self, rec: NDArray[np.int64], offset: int) -> NDArray[np.int64]:
        """Byte ``offset`` of each record's payload, -1 where the payload is shorter."""
        b = self.buf[self.starts[rec] + offset].astype(np.int64)
        b[self.lens[rec] <= offset] = -1
        return b


class _RecordFrames(Sequence[bytes]):
    """Payloads of some records as a sequence of bytes, fetched only when asked for."""

    def __init__(self, payload: list[bytes], rec: NDArray[np.int64]) -> None:
        self._payload = payload
        self._rec = rec

    def __len__(self) -> int:
        return int(self._rec.size)

    @overload
    def __getitem__(self, i: int) -> bytes: ...

    @overload
    def __getitem__(self, i: slice) -> list[bytes]: ...

    def __getitem__(self, i: int | slice) -> bytes | list[bytes]:
        if isinstance(i, slice):
            return [bytes(self._payload[k]) for k in self._rec[i].tolist()]
        return bytes(self._payload[int(self._rec[i])])


#: frames timed per pass of :func:`_sample_times_us` (small temporaries: see pmd_codec's)
_FRAMES_PER_PASS = 256


def _sample_times_us(
    ts: NDArray[np.int64],
    prev: NDArray[np.int64],
    n: NDArray[np.int64],
    spread: NDArray[np.bool_],
    fs: float,
    clock: HostClock,
) -> NDArray[np.int64]:
    """UTC µs of every sample of many frames: device times by the vendor rule (see
    :func:`_vendor_times_span`), to Unix µs, then through the host clock, a pass of frames at
    a time so no day-long temporary is made (fresh pages cost more than the arithmetic)."""
    total = int(n.sum())
    out = np.empty(total, dtype=np.int64)
    ends = np.cumsum(n)
    several = len(clock.models) > 1
    for f0 in range(0, n.size, _FRAMES_PER_PASS):
        f1 = min(n.size, f0 + _FRAMES_PER_PASS)
        r0 = int(ends[f0 - 1]) if f0 else 0
        dev_us = _vendor_times_span(ts[f0:f1], prev[f0:f1], n[f0:f1], spread[f0:f1], fs)
        np.floor_divide(dev_us, 1000, out=dev_us)
        dev_us += PMD_EPOCH_UNIX_US
        seg = np.repeat(clock.segment[f0:f1], n[f0:f1]) if several else None
        clock.map_into(dev_us, seg, out[r0 : int(ends[f1 - 1])])
    return out


def _vendor_times_at(
    ts: NDArray[np.int64],
    prev: NDArray[np.int64],
    n: NDArray[np.int64],
    spread: NDArray[np.bool_],
    fs: float,
    within: NDArray[np.int64],
) -> NDArray[np.int64]:
    """The vendor-rule time of sample ``within[f]`` of each frame ``f`` (the same numbers
    :func:`_vendor_times_span` gives that sample)."""
    out = np.empty(n.size, dtype=np.int64)
    sp = spread
    if sp.any():
        out[sp] = prev[sp] + _round_half_even((within[sp] + 1) * (ts[sp] - prev[sp]), n[sp])
    rt = ~sp
    if rt.any():
        back = n[rt] - 1 - within[rt]
        if float(fs).is_integer() and fs > 0:
            out[rt] = ts[rt] - _round_half_even(back * 1_000_000_000, np.full(back.size, int(fs)))
        else:
            out[rt] = ts[rt] - np.rint(back * (1e9 / fs if fs > 0 else 0.0)).astype(np.int64)
    return out


def _vendor_times_span(
    ts: NDArray[np.int64],
    prev: NDArray[np.int64],
    n: NDArray[np.int64],
    spread: NDArray[np.bool_],
    fs: float,
) -> NDArray[np.int64]:
    """Sample times of consecutive frames by the vendor rule (see ``sample_timestamps``):
    ``spread`` frames over (previous, frame], the others back from the frame at 1/fs."""
    if spread.all():  # the usual case: no masks
        return _spread_times(ts, prev, n)
    # time every frame as spread (the others as a zero-length spread ending at the frame, so
    # every row is in range), then redo the rows of the frames that are not
    out = _spread_times(ts, np.where(spread, prev, ts), n)
    rt = np.flatnonzero(~spread)
    first = np.cumsum(n) - n
    f = np.repeat(rt, n[rt])
    within = np.arange(f.size, dtype=np.int64) - np.repeat(np.cumsum(n[rt]) - n[rt], n[rt])
    back = n[f] - 1 - within
    if float(fs).is_integer() and fs > 0:
        t = ts[f] - _round_half_even(back * 1_000_000_000, np.full(back.size, int(fs)))
    else:
        t = ts[f] - np.rint(back * (1e9 / fs if fs > 0 else 0.0)).astype(np.int64)
    out[first[f] + within] = t
    return out


def _spread_times(
    ts: NDArray[np.int64], prev: NDArray[np.int64], n: NDArray[np.int64]
) -> NDArray[np.int64]:
    """Sample ``k`` (1..n) of each frame at ``prev + round_half_even(k * (ts - prev) / n)``."""
    total = int(n.sum())
    step = ts - prev
    if int(n.max()) < (1 << 20) and int(np.abs(step * n).max()) < (1 << 52):
        # (k * step) / n in doubles: the product is exact and the quotient is within half an
        # ulp, which cannot cross a half-integer (they lie >= 1/(2n) away), so rint (half to
        # even) gives exactly _round_half_even, in a third of the integer passes
        q = np.arange(1, total + 1, dtype=np.float64)
        q -= np.repeat((np.cumsum(n) - n).astype(np.float64), n)
        q *= np.repeat(step.astype(np.float64), n)
        q /= np.repeat(n.astype(np.float64), n)
        np.rint(q, out=q)
        t = q.astype(np.int64)
        t += np.repeat(prev, n)
        return t
    within = np.arange(total, dtype=np.int64) - np.repeat(np.cumsum(n) - n, n)
    num = (within + 1) * np.repeat(step, n)
    return np.repeat(prev, n) + _round_half_even(num, np.repeat(n, n))


def _round_half_even(num: NDArray[np.int64], den: NDArray[np.int64]) -> NDArray[np.int64]:
    if num.size and int(np.abs(num).max()) < (1 << 52) and int(den.max()) < (1 << 20):
        # exact in doubles: a quotient's fraction is a multiple of 1/den, far more than the
        # rounding error away from an integer, so the floor is exact (and SIMD-fast)
        q = np.floor(num / den).astype(np.int64)
        r = num - q * den
    else:
        q, r = np.divmod(num, den)
    up = (2 * r > den) | ((2 * r == den) & ((q & 1) == 1))
    return q + up.astype(np.int64)


class PolarPmdProfile(base.DeviceProfile):
    """The PMD profile.

    Config: ``{"acc": {"sample_rate_hz": 52, "range_g": 8, "resolution_bits": 16}}``, optionally
    ``"gyro": {"sample_rate_hz": 52, "range_dps": 2000}`` and
    ``"mag": {"sample_rate_hz": 50, "range_gauss": 50}`` (``resolution_bits`` defaults to 16 and
    ``channels`` to 3). ``factor`` (default 1.0) is used only for data whose start response
    is not in the records (the response's FACTOR wins).
    """

    name = "polar-pmd"
    name_prefixes = ("Polar Sense", "Polar H10", "Polar OH1", "Polar Verity")
    service_uuids = (PMD_SERVICE_UUID,)
    notify_uuids = (PMD_CONTROL_POINT_UUID, PMD_DATA_UUID)
    control_point_uuid = PMD_CONTROL_POINT_UUID
    data_uuid = PMD_DATA_UUID

    def start_writes(self, config: dict[str, Any]) -> list[base.GattWrite]:
        """One start request per configured stream, in config order.

        >>> PROFILE.start_writes({"acc": {"sample_rate_hz": 52, "range_g": 8}})[0].data.hex()
        '0202000134000101100002010800040103'
        """
        out = []
        for s, c in config.items():
            settings = _stream_settings(s, c)
            out.append(
                base.GattWrite(PMD_CONTROL_POINT_UUID, encode_start(STREAM_TYPES[s], settings))
            )
        return out

    def stop_writes(self, config: dict[str, Any]) -> list[base.GattWrite]:
        """One stop request per configured stream.

        >>> PROFILE.stop_writes({"acc": {"sample_rate_hz": 52}})[0].data.hex()
        '0302'
        """
        for s in config:
            _stream_settings(s, {"sample_rate_hz": 0})
        return [
            base.GattWrite(PMD_CONTROL_POINT_UUID, encode_stop(STREAM_TYPES[s])) for s in config
        ]

    def required_mtu(self, config: dict[str, Any]) -> int:
        """Smallest MTU at which each configured stream's frames fit (see :func:`min_frame_mtu`).

        >>> PROFILE.required_mtu({"acc": {"sample_rate_hz": 52}})
        79
        """
        need = 23
        for s, c in config.items():
            _stream_settings(s, {"sample_rate_hz": 0, **c})
            need = max(
                need, min_frame_mtu(int(c.get("channels", 3)), int(c.get("resolution_bits", 16)))
            )
        return need

    # ------------------------------------------------------------------ replay

    def decode_records(self, records: base.RawRecords, config: dict[str, Any]) -> base.DecodeResult:
        """Replay spooled records: control-point exchanges set each stream's settings and factor.

        Per stream the previous-frame timestamp is reset on every connection and every start.
        Where consecutive frames' spacing shows lost frames (more than 1.5 sample periods per
        sample) the frame is timed from the sample rate instead of being stretched over the
        hole, and the hole becomes a ``packet_loss`` gap. Device timestamps go to UTC through
        the clock model fitted on (frame timestamp, host receive time) pairs.
        """
        res = base.DecodeResult()
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
                factor=float(c.get("factor", 1.0)),
            )
            for s, c in config.items()
            if s in STREAM_TYPES
        }

        def end_sessions(types: list[int], why: str) -> None:
            for mt in types:
                sid = cur_sess.pop(mt, None)
                if sid is not None:
                    session_end.setdefault(sid, why)

        def add_data(j0: int, j1: int) -> None:
            """Data notifications ``j0 .. j1 - 1`` (one connection, no control in between)."""
            nonlocal next_session
            mts = rec_mt[j0:j1]
            groups: list[tuple[int, NDArray[np.int64]]]
            if mts[0] == mts[-1] and bool((mts == mts[0]).all()):
                groups = [(int(mts[0]), np.arange(j0, j1, dtype=np.int64))]
            else:
                u, first = np.unique(mts, return_index=True)
                groups = [
                    (int(u[g]), np.flatnonzero(mts == u[g]) + j0)
                    for g in np.argsort(first, kind="stable").tolist()
                ]
            for mt, ks in groups:  # streams in order of their first frame
                if mt not in cur_sess:
                    cur_sess[mt] = next_session
                    next_session += 1
                st = states.get(mt) or cfg_states.get(mt) or _StreamState()
                col = collected.setdefault(mt, _Collected())
                col.rec_idx.append(ks)
                col.session.append(cur_sess[mt])
                col.settings.append((st.fs_hz, st.resolution_bits, st.channels, st.factor, att_mtu))

        def handle(i: int) -> None:
            """One record that is not a data notification continuing a run."""
            nonlocal conn, att_mtu, next_session
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
            if kind == base.RecordKind.CONNECT:
                att_mtu = int.from_bytes(data[:2], "little") if len(data) >= 2 else None
                return
            if kind == base.RecordKind.DISCONNECT:
                end_sessions(list(cur_sess), "disconnect")
                return
            if uuid == PMD_CONTROL_POINT_UUID and kind == base.RecordKind.WRITE:
                try:
                    req = parse_request(data)
                except ControlPointError as err:
                    res.errors.append(base.PacketError(t, uuid, bytes(data), str(err)))
                    return
                if req.op_code == OpCode.REQUEST_MEASUREMENT_START:
                    pending_start[req.measurement_type] = req
                elif req.op_code == OpCode.STOP_MEASUREMENT:
                    end_sessions([req.measurement_type], "stopped")
                    states.pop(req.measurement_type, None)
                return
            if uuid == PMD_CONTROL_POINT_UUID and kind == base.RecordKind.NOTIFY:
                try:
                    msg = parse_notification(data)
                except ControlPointError as err:
                    res.errors.append(base.PacketError(t, uuid, bytes(data), str(err)))
                    return
                if isinstance(msg, MeasurementStopped):
                    end_sessions(list(msg.measurement_types), "device_stopped")
                    for mt in msg.measurement_types:
                        states.pop(mt, None)
                    return
                self._on_response(msg, pending_start, states, cp_errors, res, t, uuid, data)
                if msg.op_code == OpCode.REQUEST_MEASUREMENT_START and msg.ok:
                    end_sessions([msg.measurement_type], "restarted")
                    cur_sess[msg.measurement_type] = next_session
                    next_session += 1
                return
            if uuid == PMD_DATA_UUID and kind == base.RecordKind.NOTIFY:
                add_data(i, i + 1)

        # data notifications between two control records (or connection changes) are
        # collected in bulk; everything else is replayed one record at a time
        n_rec = len(records)
        joined = _Records.of(records)
        rec_mt = joined.byte_at(np.arange(n_rec, dtype=np.int64), 0)
        rec_mt[rec_mt >= 0] &= 0x3F
        uuid_is_data = {u: u.lower() == PMD_DATA_UUID for u in set(records.char_uuid)}
        is_data = (records.kind == base.RecordKind.NOTIFY) & np.fromiter(
            map(uuid_is_data.__getitem__, records.char_uuid), dtype=bool, count=n_rec
        )
        new_conn = np.ones(n_rec, dtype=bool)
        new_conn[1:] = records.conn_id[1:] != records.conn_id[:-1]
        events = [*np.flatnonzero(~is_data | new_conn).tolist(), n_rec]
        for e in range(len(events) - 1):
            handle(events[e])
            if events[e] + 1 < events[e + 1]:
                add_data(events[e] + 1, events[e + 1])
        for mt, col in collected.items():
            self._decode_stream(mt, col, joined, session_end, res)
        for stream, errs in cp_errors.items():
            res.qc.setdefault(stream, {})["control_point_errors"] = errs
        return res

    @staticmethod
    def _on_response(
        msg: CpResponse,
        pending_start: dict[int, CpRequest],
        states: dict[int, _StreamState],
        cp_errors: dict[str, list[str]],
        res: base.DecodeResult,
        t: int,
        uuid: str,
        data: bytes,
    ) -> None:
        stream = STREAM_NAMES.get(msg.measurement_type, f"type{msg.measurement_type}")
        if not msg.ok:
            known = msg.op_code in OpCode._value2member_map_
            op = OpCode(msg.op_code).name if known else str(msg.op_code)
            cp_errors.setdefault(stream, []).append(f"{op}: {msg.status_name}")
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
            res.errors.append(base.PacketError(t, uuid, bytes(data), str(err)))
            params = {}
        if SettingType.FACTOR in params:
            st.factor = float(params[SettingType.FACTOR][0])
        states[msg.measurement_type] = st

    def _decode_stream(
        self,
        mt: int,
        col: _Collected,
        joined: _Records,
        session_end: dict[int, str],
        res: base.DecodeResult,
    ) -> None:
        stream = STREAM_NAMES.get(mt, f"type{mt}")
        rec = col.rec_idx[0] if len(col.rec_idx) == 1 else np.concatenate(col.rec_idx)
        run_n = [r.size for r in col.rec_idx]
        n_in = int(rec.size)
        sess_all = np.repeat(np.asarray(col.session, dtype=np.int64), run_n)
        fs_all = np.repeat(np.array([st[0] for st in col.settings], dtype=np.float64), run_n)
        # group by (frame type, settings) so each group is one vectorized batch; groups in
        # order of their first frame
        key_ids: dict[tuple[int, int, float, int | None], int] = {}
        run_key = [key_ids.setdefault(st[1:], len(key_ids)) for st in col.settings]
        key_of = list(key_ids)
        code = (joined.byte_at(rec, 9) + 1) * len(key_ids) + np.repeat(
            np.asarray(run_key, dtype=np.int64), run_n
        )
        groups: dict[tuple[int, int, int, float, int | None], NDArray[np.int64]] = {}
        if n_in and code[0] == code[-1] and bool((code == code[0]).all()):
            c0 = int(code[0])
            groups[(c0 // len(key_ids) - 1, *key_of[c0 % len(key_ids)])] = np.arange(n_in)
        elif n_in:
            u, first = np.unique(code, return_index=True)
            for g in np.argsort(first, kind="stable").tolist():
                cg = int(u[g])
                key = (cg // len(key_ids) - 1, *key_of[cg % len(key_ids)])
                groups[key] = np.flatnonzero(code == cg)
        f_ok = np.zeros(n_in, dtype=bool)
        f_rows = np.zeros(n_in, dtype=np.int64)
        f_start = np.zeros(n_in, dtype=np.int64)
        f_ts = np.zeros(n_in, dtype=np.int64)
        f_ch = np.zeros(n_in, dtype=np.int64)
        group_out: list[tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float64]]] = []
        for (ft, resb, ch, factor, mtu), idx in groups.items():
            frames = _RecordFrames(joined.records.payload, rec[idx])
            try:
                lay = LAYOUTS.get((mt, ft))
                use_ch = (
                    ch
                    if lay is not None and lay.compressed and lay.status_channel is None
                    else None
                )
                use_res = resb if lay is not None and lay.compressed and not lay.is_float else None
                batch: FrameBatch = _decode_frames(
                    frames,
                    measurement_type=mt,
                    frame_type=ft,
                    channels=use_ch,
                    resolution_bits=use_res,
                    factor=factor,
                    att_mtu=mtu,
                    keep_raw=False,  # replay needs the values only
                    joined=(joined.buf, joined.starts[rec[idx]], joined.lens[rec[idx]]),
                )
            except base.DecodeError as err:
                for k in idx.tolist():
                    self._record_error(res, joined, int(rec[k]), err)
                continue
            for j, bad in batch.errors:
                self._record_error(res, joined, int(rec[idx[j]]), bad)
            kk = idx[batch.frame_index]
            f_ok[kk] = True
            f_rows[kk] = batch.frame_rows
            f_ts[kk] = batch.frame_timestamp_ns
            f_ch[kk] = batch.values.shape[1]
            group_out.append((kk, batch.frame_rows, batch.values))
        qc: dict[str, Any] = {
            "packets": n_in,
            "packets_decoded": int(f_ok.sum()),
            "decode_errors": int(n_in - f_ok.sum()),
            "packets_lost": 0,
            "duplicates": 0,
            "reordered": 0,
        }
        res.qc[stream] = qc
        if not f_ok.any():
            return
        # one channel layout per stream: frames of another (settings changed mid-stream
        # without a start we saw) are reported rather than mixed in
        chans = int(np.bincount(f_ch[f_ok]).argmax())
        for k in np.flatnonzero(f_ok & (f_ch != chans)).tolist():
            self._record_error(
                res,
                joined,
                int(rec[k]),
                base.DecodeError(DEVICE, stream, f"{f_ch[k]} channels, stream has {chans}"),
            )
        f_ok &= f_ch == chans
        offset = 0
        for kk, rows_g, vals_g in group_out:
            if vals_g.shape[1] == chans:
                f_start[kk] = offset + np.cumsum(rows_g) - rows_g
                offset += vals_g.shape[0]
        parts = [v for _, _, v in group_out if v.shape[1] == chans]
        all_vals = parts[0] if len(parts) == 1 else np.concatenate(parts)
        kept = np.flatnonzero(f_ok)
        sess = sess_all[kept]
        ts = f_ts[kept]
        same = np.zeros(kept.size, dtype=bool)
        same[1:] = sess[1:] == sess[:-1]
        prev = np.concatenate([[0], ts[:-1]])
        # an exact repeat of the previous frame's timestamp is a duplicate notification
        dup = same & (ts == prev)
        qc["duplicates"] = int(dup.sum())
        kept, sess, ts = kept[~dup], sess[~dup], ts[~dup]
        n = f_rows[kept]
        fs = self._nominal_fs(fs_all, kept, f_ts, f_rows, sess)
        nominal_ns = 1e9 / fs if fs > 0 else 0.0
        same = np.zeros(kept.size, dtype=bool)
        same[1:] = sess[1:] == sess[:-1]
        prev = np.concatenate([[0], ts[:-1]])
        qc["reordered"] = int(np.sum(same & (ts < prev)))
        diff = ts - prev
        spread = same & (prev > 0) & (diff > 0) & (diff <= _INT64_MAX // np.maximum(n, 1) // 4)
        if nominal_ns > 0:
            per = diff / np.maximum(n, 1)
            spread &= (per >= 0.5 * nominal_ns) & (per <= 1.5 * nominal_ns)
        # frames that cannot be timed: no previous frame, several samples, no rate; or timed
        # before the device epoch
        untimed = ~spread & (n > 1) & (nominal_ns <= 0)
        untimed |= ~spread & (ts - (n - 1) * nominal_ns < 0)
        if untimed.any():
            for k in kept[untimed].tolist():
                self._record_error(
                    res,
                    joined,
                    int(rec[k]),
                    TimestampError(
                        DEVICE, stream, "no previous frame and no sample rate to time it"
                    ),
                )
            keep_m = ~untimed
            kept, sess, ts, n, spread = (
                kept[keep_m],
                sess[keep_m],
                ts[keep_m],
                n[keep_m],
                spread[keep_m],
            )
            same = np.zeros(kept.size, dtype=bool)
            same[1:] = sess[1:] == sess[:-1]
            prev = np.concatenate([[0], ts[:-1]])
            diff = ts - prev
            spread &= same
        if kept.size == 0:
            return
        total = int(n.sum())
        first_rows = np.cumsum(n) - n
        last_rows = first_rows + n - 1
        miss = np.zeros(kept.size, dtype=np.int64)
        if nominal_ns > 0 and kept.size > 1:
            first_t = _vendor_times_at(ts, prev, n, spread, fs, np.zeros_like(n))
            last_t = _vendor_times_at(ts, prev, n, spread, fs, n - 1)
            hole = np.rint((first_t[1:] - last_t[:-1]) / nominal_ns).astype(np.int64) - 1
            miss[1:] = np.where(~spread[1:], np.maximum(hole, 0), 0)
        pkt_dev_us = ts // 1000 + PMD_EPOCH_UNIX_US
        pkt_host_us = joined.records.t_us[rec[kept]].astype(np.int64, copy=False)
        clock = fit_host_clock(pkt_dev_us, pkt_host_us)
        qc.update(clock.qc)
        t_us = _sample_times_us(ts, prev, n, spread, fs, clock)
        if miss.any():
            seq_step = np.ones(total, dtype=np.int64)
            seq_step[first_rows] += miss
            seq_step[0] = 0
            seq = np.cumsum(seq_step, out=seq_step)
        else:  # no frame lost: the same numbers without a day-long temporary
            seq = np.arange(total, dtype=np.int64)
        src = f_start[kept]
        if src[0] == 0 and np.array_equal(src, first_rows) and all_vals.shape[0] == total:
            values = all_vals  # every frame kept, in order: no gather needed
        else:
            within = np.arange(total, dtype=np.int64) - np.repeat(first_rows, n)
            values = all_vals[np.repeat(src, n) + within]
        names = (
            _CHANNEL_NAMES[:chans]
            if chans <= 3
            else (*_CHANNEL_NAMES, "calibration_status")[:chans]
        )
        res.streams[stream] = base.StreamSamples(
            stream=stream,
            t_us=t_us,
            values=values,
            channel_names=tuple(names),
            unit=STREAM_UNITS.get(stream, ""),
            fs_hz=float(fs),
            sample_seq=seq,
        )
        qc["samples"] = total
        qc["fs_hz"] = float(fs)
        for j in np.flatnonzero(miss > 0).tolist():
            loss = bool(same[j])
            reason = "packet_loss" if loss else session_end.get(int(sess[j - 1]), "disconnect")
            if loss:
                qc["packets_lost"] += max(1, round(int(miss[j]) / max(int(n[j]), 1)))
            res.gaps.append(
                base.Gap(stream, int(t_us[last_rows[j - 1]]), int(t_us[first_rows[j]]), reason)
            )

    @staticmethod
    def _nominal_fs(
        fs_all: NDArray[np.float64],
        kept: NDArray[np.int64],
        f_ts: NDArray[np.int64],
        f_rows: NDArray[np.int64],
        sess: NDArray[np.int64],
    ) -> float:
        fs_k = fs_all[kept]
        fs_k = fs_k[fs_k > 0]
        if fs_k.size and fs_k.min() == fs_k.max():  # the usual case: one rate
            return float(fs_k[0])
        if fs_k.size:
            fss = fs_k.tolist()  # the most frequent; a tie goes to the first in set order
            return float(max(set(fss), key=fss.count))
        # no settings seen: estimate from consecutive frames of a session
        ts = f_ts[kept]
        ok = (sess[1:] == sess[:-1]) & (ts[1:] > ts[:-1])
        if not ok.any():
            return 0.0
        per = (ts[1:] - ts[:-1])[ok] / f_rows[kept][1:][ok]
        return float(1e9 / np.median(per))

    @staticmethod
    def _record_error(
        res: base.DecodeResult, joined: _Records, i: int, err: base.DecodeError
    ) -> None:
        """Report record ``i`` (an index into the replayed records) as undecodable."""
        t_us = int(joined.records.t_us[i])
        payload = bytes(joined.records.payload[i])
        res.errors.append(base.PacketError(t_us, PMD_DATA_UUID, payload, str(err)))


PROFILE = PolarPmdProfile()

from glutewake.devices.polar_virtual import PolarVirtualDevice  # noqa: E402  (re-exported)

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
    "encode_delta_payloads",
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
