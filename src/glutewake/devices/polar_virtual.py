"""Byte-level model of a Polar Verity Sense speaking PMD (simulators and tests).

What the model does like the real sensor:

- answers control-point writes: get settings (ACC 52 Hz, 16 bit, range 8 g, 3 channels), start
  (validating every setting, the link MTU and the state; a start response carrying FACTOR 1.0),
  stop; malformed or unknown requests get the matching error status;
- streams ACC as delta-compressed frame type 0x81 (values in mG), the frame type the Verity
  Sense sends for ACC; GYRO (0x80, 16-bit, factor = range / 32768 deg/s per count) and MAG
  (0x80, factor = range / 32768 gauss per count) are modelled the same way when given signals;
- fills each frame to the negotiated ATT MTU (payload <= MTU - 3) with device-chosen block bit
  widths, sends it when the next sample would not fit, and stamps it with the device clock
  (ns since 2000-01-01) of its last sample, that clock running at ``clock_offset_us`` and
  ``clock_drift_ppm`` from true time;
- stops every stream when the link drops; can stop on its own (``stop_by_device``), sending
  the measurement-stopped indication.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from glutewake.devices.base import StreamSamples, VirtualDevice
from glutewake.devices.errors import ControlPointError
from glutewake.devices.pmd_codec import (
    HEADER_BYTES,
    LAYOUTS,
    PMD_EPOCH_UNIX_US,
    STREAM_TYPES,
    FramePlanner,
    _delta_widths,
    _quantise,
    encode_delta_frames,
    min_frame_mtu,
)
from glutewake.devices.pmd_control import (
    OpCode,
    SettingType,
    Status,
    encode_features,
    encode_measurement_stopped,
    encode_response,
    encode_settings,
    parse_request,
)

_CP = "fb005c81-02e7-f387-1cad-8acc2d9d7b11"
_DATA = "fb005c82-02e7-f387-1cad-8acc2d9d7b11"
_BATTERY = "00002a19-0000-1000-8000-00805f9b34fb"
_DEVICE_NAME = "00002a00-0000-1000-8000-00805f9b34fb"


@dataclass(frozen=True)
class _Capability:
    frame_type: int
    sample_rates: tuple[int, ...]
    resolutions: tuple[int, ...]
    ranges: tuple[int, ...]
    channels: int


#: what a Verity Sense offers in online streaming (ACC is the thigh-posture stream)
VERITY_SENSE: dict[int, _Capability] = {
    2: _Capability(0x81, (52,), (16,), (8,), 3),
    5: _Capability(0x80, (52,), (16,), (250, 500, 1000, 2000), 3),
    6: _Capability(0x80, (10, 20, 50, 100), (16,), (50,), 3),
}


def _factor(mtype: int, range_value: int) -> float:
    if mtype == 2:
        return 1.0  # 0x81 frames carry mG
    return float(np.float32(range_value / 32768.0))


@dataclass
class _Running:
    mtype: int
    fs_hz: int
    resolution_bits: int
    channels: int
    factor: float
    frame_type: int
    raw: NDArray[np.signedinteger[Any]]  # quantised signal, all samples (int32 or int64)
    #: widths[i]: bits delta i (sample i - sample i-1) needs; widths[0] unused
    widths: NDArray[np.uint8]
    planner: FramePlanner
    next_idx: int  # first sample not yet sent
    # frames planned ahead (the signal is known): first sample, count, whole frame bytes; the
    # MTU they were planned for (the peripheral may renegotiate it)
    plan_start: list[int] = field(default_factory=list)
    plan_count: list[int] = field(default_factory=list)
    plan_frame: list[bytes] = field(default_factory=list)
    plan_pos: int = 0
    plan_mtu: int = 0


class PolarVirtualDevice(VirtualDevice):
    """A Polar Verity Sense driven by known signals.

    Parameters
    ----------
    signals : StreamSamples or mapping stream -> StreamSamples
        True signals at the nominal rate with true UTC ``t_us``: ``acc`` in g (52 Hz), optionally
        ``gyro`` (deg/s, 52 Hz) and ``mag`` (gauss). The device offers exactly these streams.
    clock_offset_us : int
        Device clock minus true time at the first sample.
    clock_drift_ppm : float
        How much faster the device clock runs than true time.
    att_mtu : int
        Negotiated ATT MTU; frames are at most ``att_mtu - 3`` bytes (settable attribute).
    battery_percent : int
        Value of the battery level characteristic.
    name : str
        Advertised name.
    """

    def __init__(
        self,
        signals: StreamSamples | Mapping[str, StreamSamples],
        *,
        clock_offset_us: int = 0,
        clock_drift_ppm: float = 0.0,
        att_mtu: int = 232,
        battery_percent: int = 90,
        name: str = "Polar Sense 0A1B2C3D",
    ) -> None:
        sig = {signals.stream: signals} if isinstance(signals, StreamSamples) else dict(signals)
        for s in sig:
            if s not in STREAM_TYPES:
                raise ValueError(f"PolarVirtualDevice: no PMD stream called {s!r} (acc, gyro, mag)")
        self.signals = sig
        self.clock_offset_us = int(clock_offset_us)
        self.clock_drift_ppm = float(clock_drift_ppm)
        self.att_mtu = int(att_mtu)
        self.battery_percent = int(battery_percent)
        self.name = name
        self._anchor_us = min(int(s.t_us[0]) for s in sig.values() if len(s)) if sig else 0
        self._running: dict[int, _Running] = {}

    # ------------------------------------------------------------------ clock

    def device_time_ns(self, true_t_us: NDArray[np.int64]) -> NDArray[np.int64]:
        """Device timestamps (ns since 2000-01-01) at true UTC microseconds."""
        t = np.asarray(true_t_us, dtype=np.int64)
        dev_us = (
            t
            + self.clock_offset_us
            + np.rint(self.clock_drift_ppm * 1e-6 * (t - self._anchor_us)).astype(np.int64)
        )
        return (dev_us - PMD_EPOCH_UNIX_US) * 1000

    # ------------------------------------------------------------------ GATT

    def read_value(self, char_uuid: str) -> bytes:
        """Control point (feature list), battery level or device name."""
        u = char_uuid.lower()
        if u == _CP:
            return encode_features([STREAM_TYPES[s] for s in self.signals])
        if u == _BATTERY:
            return bytes((self.battery_percent,))
        if u == _DEVICE_NAME:
            return self.name.encode()
        raise KeyError(f"PolarVirtualDevice: characteristic {char_uuid} is not readable")

    def handle_write(self, char_uuid: str, data: bytes, now_us: int) -> list[tuple[str, bytes]]:
        """Answer a control-point write with its response indication."""
        if char_uuid.lower() != _CP:
            return []
        op = data[0] if data else 0
        mt = data[1] & 0x3F if len(data) > 1 else 0
        try:
            req = parse_request(data)
        except ControlPointError:
            return [
                (
                    _CP,
                    encode_response(
                        op,
                        mt,
                        Status.ERROR_INVALID_LENGTH
                        if len(data) < 2
                        else Status.ERROR_INVALID_PARAMETER,
                    ),
                )
            ]
        cap = VERITY_SENSE.get(req.measurement_type)
        offered = cap is not None and any(
            STREAM_TYPES[s] == req.measurement_type for s in self.signals
        )
        if req.op_code == OpCode.GET_MEASUREMENT_SETTINGS:
            if cap is None:
                return [(_CP, encode_response(op, mt, Status.ERROR_INVALID_MEASUREMENT_TYPE))]
            if not offered:
                return [(_CP, encode_response(op, mt, Status.ERROR_NOT_SUPPORTED))]
            params = encode_settings(
                {
                    SettingType.SAMPLE_RATE: list(cap.sample_rates),
                    SettingType.RESOLUTION: list(cap.resolutions),
                    SettingType.RANGE: list(cap.ranges),
                    SettingType.CHANNELS: [cap.channels],
                }
            )
            return [(_CP, encode_response(op, mt, Status.SUCCESS, params))]
        if req.op_code == OpCode.REQUEST_MEASUREMENT_START:
            return [(_CP, self._start(req.measurement_type, req.settings, now_us))]
        if req.op_code == OpCode.STOP_MEASUREMENT:
            if cap is None:
                return [(_CP, encode_response(op, mt, Status.ERROR_INVALID_MEASUREMENT_TYPE))]
            if self._running.pop(mt, None) is None:
                return [(_CP, encode_response(op, mt, Status.ERROR_ALREADY_IN_STATE))]
            return [(_CP, encode_response(op, mt, Status.SUCCESS))]
        return [(_CP, encode_response(op, mt, Status.ERROR_INVALID_OP_CODE))]

    def _start(self, mt: int, settings: dict[SettingType, list[float]], now_us: int) -> bytes:
        op = OpCode.REQUEST_MEASUREMENT_START
        cap = VERITY_SENSE.get(mt)
        if cap is None:
            return encode_response(op, mt, Status.ERROR_INVALID_MEASUREMENT_TYPE)
        stream = next((s for s in self.signals if STREAM_TYPES[s] == mt), None)
        if stream is None:
            return encode_response(op, mt, Status.ERROR_NOT_SUPPORTED)
        if mt in self._running:
            return encode_response(op, mt, Status.ERROR_ALREADY_IN_STATE)
        checks = (
            (SettingType.SAMPLE_RATE, cap.sample_rates, Status.ERROR_INVALID_SAMPLE_RATE),
            (SettingType.RESOLUTION, cap.resolutions, Status.ERROR_INVALID_RESOLUTION),
            (SettingType.RANGE, cap.ranges, Status.ERROR_INVALID_RANGE),
            (SettingType.CHANNELS, (cap.channels,), Status.ERROR_INVALID_NUMBER_OF_CHANNELS),
        )
        chosen: dict[SettingType, int] = {}
        for st, allowed, err in checks:
            vals = settings.get(st)
            if vals is None:
                if st in (SettingType.SAMPLE_RATE, SettingType.RESOLUTION):
                    return encode_response(op, mt, Status.ERROR_INVALID_PARAMETER)
                chosen[st] = int(allowed[-1])
                continue
            if len(vals) != 1 or int(vals[0]) not in allowed:
                return encode_response(op, mt, err)
            chosen[st] = int(vals[0])
        if self.att_mtu < min_frame_mtu(cap.channels, chosen[SettingType.RESOLUTION]):
            return encode_response(op, mt, Status.ERROR_INVALID_MTU)
        sig = self.signals[stream]
        factor = _factor(mt, chosen[SettingType.RANGE])
        # day-long signals in the narrowest integers that hold the layout (memory traffic)
        lay = LAYOUTS[(mt, cap.frame_type)]
        small = np.int16 if lay.resolution_bits <= 16 else np.int32
        raw = _quantise(sig.values, mt, cap.frame_type, factor, np.int64 if lay.is_float else small)
        if mt == 2:  # the sensor saturates at its range
            lim = chosen[SettingType.RANGE] * 1000
            np.clip(raw, -lim, lim, out=raw)
        w = np.zeros(raw.shape[0], dtype=np.uint8)
        w[1:] = _delta_widths(raw, chosen[SettingType.RESOLUTION], np.uint8)
        first = int(np.searchsorted(sig.t_us, now_us, side="left"))
        self._running[mt] = _Running(
            mtype=mt,
            fs_hz=chosen[SettingType.SAMPLE_RATE],
            resolution_bits=chosen[SettingType.RESOLUTION],
            channels=cap.channels,
            factor=factor,
            frame_type=cap.frame_type,
            raw=raw,
            widths=w,
            planner=FramePlanner(w, cap.channels, chosen[SettingType.RESOLUTION]),
            next_idx=first,
        )
        params = encode_settings({SettingType.FACTOR: [factor]})
        return encode_response(op, mt, Status.SUCCESS, params)

    #: frames planned (and encoded in one batch) at a time by ``poll``
    _PLAN_FRAMES = 256
    #: frames encoded per numpy batch by ``render_until`` (bounds its memory)
    _RENDER_BATCH = 512

    def _signal(self, mt: int) -> StreamSamples:
        return self.signals[next(s for s in self.signals if STREAM_TYPES[s] == mt)]

    def _budget(self) -> int:
        return self.att_mtu - 3 - HEADER_BYTES

    def _frames(self, run: _Running, starts: list[int], counts: list[int]) -> list[bytes]:
        """Whole data frames (header with the device timestamp of the last sample + payload)."""
        st = np.asarray(starts, dtype=np.int64)
        ct = np.asarray(counts, dtype=np.int64)
        return encode_delta_frames(
            run.raw,
            st,
            ct,
            run.resolution_bits,
            run.widths,
            measurement_type=run.mtype,
            frame_type=run.frame_type,
            timestamp_ns=self.device_time_ns(self._signal(run.mtype).t_us[st + ct - 1]),
        )

    def _next_frame(self, run: _Running) -> tuple[int, int, bytes] | None:
        """The next frame to send: (first sample, sample count, frame bytes), planning ahead.

        A frame holds as many samples as fit the MTU; it is sent when the first sample that
        does not fit is measured. Planning a batch ahead gives the same frames as deciding at
        each poll (the frame's extent depends only on the samples it holds and the next one).
        """
        if run.plan_mtu != self.att_mtu or run.plan_pos >= len(run.plan_start):
            self._plan(run)
        if run.plan_pos >= len(run.plan_start):
            return None
        k = run.plan_pos
        return run.plan_start[k], run.plan_count[k], run.plan_frame[k]

    def _plan(self, run: _Running) -> None:
        starts, counts = run.planner.plan(
            run.next_idx, self._budget(), stop=run.raw.shape[0], max_frames=self._PLAN_FRAMES
        )
        run.plan_start, run.plan_count, run.plan_pos, run.plan_mtu = starts, counts, 0, self.att_mtu
        run.plan_frame = self._frames(run, starts, counts)

    def poll(self, now_us: int) -> list[tuple[str, bytes]]:
        """Frames completed by ``now_us`` (a frame is sent when its next sample would not fit)."""
        out: list[tuple[int, bytes]] = []
        for mt, run in self._running.items():
            t_us = self._signal(mt).t_us
            while (nxt := self._next_frame(run)) is not None:
                a, n, frame = nxt
                if int(t_us[a + n]) > now_us:
                    break
                out.append((int(t_us[a + n - 1]), frame))
                run.next_idx = a + n
                run.plan_pos += 1
        out.sort(key=lambda x: x[0])
        return [(_DATA, f) for _, f in out]

    def next_due_us(self) -> int | None:
        """True time of the next frame: when the first sample that no longer fits is measured."""
        due = []
        for mt, run in self._running.items():
            nxt = self._next_frame(run)
            if nxt is not None:
                due.append(int(self._signal(mt).t_us[nxt[0] + nxt[1]]))
        return min(due) if due else None

    def render_until(self, end_us: int) -> list[tuple[int, str, bytes]]:
        """Every frame that becomes due before ``end_us``, planned and encoded in bulk.

        Returns ``(due_us, char_uuid, frame)`` in send order: the same frames, bytes and order
        as stepping ``due = next_due_us()`` then ``poll(due)`` while ``due < end_us`` (frames of
        one step share its ``due_us``), and the streams are left in the same state.
        """
        keys: list[tuple[int, NDArray[np.int64], NDArray[np.int64]]] = []
        frames: list[bytes] = []
        budget = self._budget()
        for order, (mt, run) in enumerate(self._running.items()):
            t_us = self._signal(mt).t_us
            stop = int(np.searchsorted(t_us, end_us, side="left"))  # first sample due too late
            starts, counts = run.planner.plan(run.next_idx, budget, stop=stop)
            for k in range(0, len(starts), self._RENDER_BATCH):
                sl = slice(k, k + self._RENDER_BATCH)
                frames += self._frames(run, starts[sl], counts[sl])
            if starts:
                st = np.asarray(starts, dtype=np.int64)
                ct = np.asarray(counts, dtype=np.int64)
                keys.append((order, t_us[st + ct], t_us[st + ct - 1]))
                run.next_idx = starts[-1] + counts[-1]
            run.plan_start, run.plan_count, run.plan_frame, run.plan_pos = [], [], [], 0
        if not keys:
            return []
        due = np.concatenate([k[1] for k in keys])
        if len(keys) == 1:
            return list(zip(due.tolist(), [_DATA] * len(frames), frames, strict=True))
        # poll sends the frames of one step sorted by last-sample time, streams in start order
        last = np.concatenate([k[2] for k in keys])
        stream = np.concatenate([np.full(k[1].size, k[0]) for k in keys])
        idx = np.lexsort((np.arange(due.size), stream, last, due)).tolist()
        due_l = due.tolist()
        return [(due_l[i], _DATA, frames[i]) for i in idx]

    def link_lost(self, now_us: int) -> None:
        """The link dropped: every stream stops (unsent samples are lost)."""
        self._running.clear()

    def stop_by_device(self, now_us: int) -> list[tuple[str, bytes]]:
        """The sensor stops on its own (e.g. put on charge): measurement-stopped indication."""
        types = sorted(self._running)
        self._running.clear()
        return [(_CP, encode_measurement_stopped(types))] if types else []

    @property
    def streaming(self) -> tuple[str, ...]:
        """Streams currently running."""
        return tuple(s for s in self.signals if STREAM_TYPES[s] in self._running)
