"""Byte-level model of a Polar Verity Sense speaking PMD (simulators and tests).

What the model does like the real sensor:

- answers control-point writes: get settings (ACC 52 Hz, 16 bit, range 8 g, 3 channels), start
  (validating every setting, the link MTU and the state; a start response carrying FACTOR 1.0),
  stop; malformed or unknown requests get the matching error status;
- streams ACC as delta-compressed frame type 0x81 (values in mG), the frame type Verity Sense
  users captured (Polar's sources do not say which type the sensor sends); GYRO (0x80, 16-bit,
  factor = range / 32768 deg/s per count) and MAG (0x80, factor = range / 32768 gauss per
  count) are modelled the same way when given signals;
- fills each frame to the negotiated ATT MTU (payload <= MTU - 3) with device-chosen block bit
  widths, sends it when the next sample would not fit, and stamps it with the device clock
  (ns since 2000-01-01) of its last sample, that clock running at ``clock_offset_us`` and
  ``clock_drift_ppm`` from true time;
- stops every stream when the link drops; can stop on its own (``stop_by_device``), sending
  the measurement-stopped indication.

The model states Polar's constants itself (UUIDs, measurement and frame types, op codes, status
codes, setting TLVs, units, time epoch), citing the SDK, instead of importing them from
:mod:`.polar_pmd` / :mod:`.pmd_control`: a wrong constant in the decoder then makes a test
against this model fail rather than agree with it. Only the bit packing of delta frames comes
from :mod:`.pmd_codec`; the decoder's reading of that packing is pinned by Polar's own test
vectors (``tests/devices/test_polar_pmd.py``), so the model's frames are checked through it.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from glutewake.devices.base import (
    GattLayout,
    GattService,
    StreamSamples,
    VirtualDevice,
    characteristic,
)
from glutewake.devices.pmd_codec import (
    FramePlanner,
    _delta_widths,
    encode_delta_frames,
    min_frame_mtu,
)

# -- Polar's published definitions, stated here and not taken from the decoder modules, so that a
# wrong constant in either shows up as a disagreement (tests/devices/test_vendor_constants.py
# checks both against the SDK's strings). Repository polarofficial/polar-ble-sdk; paths below
# are under sources/Android/android-communications/library/src/main/java/com/polar/
# androidcommunications/api/ble/model/gatt/client/pmd/ unless they start with iOS/.

#: BlePMDClient.kt PMD_SERVICE, PMD_CP, PMD_DATA; iOS BlePmdClient.swift the same strings
PMD_SERVICE = "fb005c80-02e7-f387-1cad-8acd2d8df0c8"
PMD_CP = "fb005c81-02e7-f387-1cad-8acd2d8df0c8"
PMD_DATA = "fb005c82-02e7-f387-1cad-8acd2d8df0c8"
_BATTERY = "00002a19-0000-1000-8000-00805f9b34fb"  # Bluetooth SIG Battery Level
_DEVICE_NAME = "00002a00-0000-1000-8000-00805f9b34fb"  # Bluetooth SIG Device Name
#: PmdMeasurementType.kt: ACC(2), GYRO(5), MAGNETOMETER(6)
_TYPES: dict[str, int] = {"acc": 2, "gyro": 5, "mag": 6}
#: PmdControlPointCommand.kt: GET_MEASUREMENT_SETTINGS(1), REQUEST_MEASUREMENT_START(2),
#: STOP_MEASUREMENT(3); ONLINE_MEASUREMENT_STOPPED(1) is the first byte of the device's stop
_OP_GET_SETTINGS, _OP_START, _OP_STOP = 1, 2, 3
_MEASUREMENT_STOPPED = 0x01
#: PmdControlPointResponse.kt: CONTROL_POINT_RESPONSE_CODE 0xF0 and the status codes
_RESPONSE = 0xF0
_SUCCESS = 0
_INVALID_OP_CODE = 1
_INVALID_MEASUREMENT_TYPE = 2
_NOT_SUPPORTED = 3
_INVALID_LENGTH = 4
_INVALID_PARAMETER = 5
_ALREADY_IN_STATE = 6
_INVALID_RESOLUTION = 7
_INVALID_SAMPLE_RATE = 8
_INVALID_RANGE = 9
_INVALID_MTU = 10
_INVALID_NUMBER_OF_CHANNELS = 11
#: PmdSetting.kt PmdSettingType and typeToFieldSize: type -> value bytes
_SAMPLE_RATE, _RESOLUTION, _RANGE, _CHANNELS, _FACTOR = 0, 1, 2, 4, 5
_SETTING_BYTES: dict[int, int] = {0: 2, 1: 2, 2: 2, 3: 4, 4: 1, 5: 4, 6: 16}
#: iOS BlePmdClient.swift: a control-point read starts with 0x0f; PmdMeasurementType.kt
#: fromByteArray: then bit n of the little-endian mask = measurement type n
_FEATURES = 0x0F
#: PmdDataFrame.kt: type byte, u64 timestamp, frame-type byte, content from byte 10
_HEADER_BYTES = 10
#: documentation/TimeSystemExplained.md: PMD time is ns since 2000-01-01T00:00:00Z
_EPOCH_UNIX_US = 946_684_800_000_000


@dataclass(frozen=True)
class _Capability:
    frame_type: int
    #: project units (g, deg/s, gauss) per count before the factor: AccData.kt reads ACC
    #: compressed TYPE_1 (0x81) as mG; GyrData.kt / MagData.kt read TYPE_0 (0x80) as
    #: count x factor in deg/s and gauss
    unit_per_count: float
    sample_rates: tuple[int, ...]
    resolutions: tuple[int, ...]
    ranges: tuple[int, ...]
    channels: int


#: what the model offers in online streaming (ACC is the thigh-posture stream), from Polar's
#: documentation/products/PolarVeritySense.md (L15-17 and the table at L37-42): ACC 52 Hz, 8 g
#: in mG and GYRO 52 Hz, 2000 deg/s without SDK mode (the GYRO ranges below are the SDK-mode
#: list), MAG 10/20/50/100 Hz at 50 gauss, all 16-bit. Which frame type the sensor sends is not
#: in Polar's sources: 0x81 for ACC is what users captured (polar-ble-sdk issues #331, #443),
#: 0x80 for GYRO and MAG this model's choice.
VERITY_SENSE: dict[int, _Capability] = {
    2: _Capability(0x81, 1e-3, (52,), (16,), (8,), 3),
    5: _Capability(0x80, 1.0, (52,), (16,), (250, 500, 1000, 2000), 3),
    6: _Capability(0x80, 1.0, (10, 20, 50, 100), (16,), (50,), 3),
}


def _factor(mtype: int, range_value: int) -> float:
    if mtype == _TYPES["acc"]:
        return 1.0  # 0x81 frames carry mG
    return float(np.float32(range_value / 32768.0))


def _counts(values: NDArray[Any], per_count: float, bits: int, dtype: Any) -> NDArray[Any]:
    """Signal values to the integers a frame carries: nearest count, saturated at the sample
    width, a pass of rows at a time (day-long signals)."""
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    out = np.empty(values.shape, dtype=dtype)
    step = 1 << 16
    for i in range(0, values.shape[0], step):
        x = np.asarray(values[i : i + step], dtype=np.float64) / per_count
        np.rint(x, out=x)
        np.clip(x, lo, hi, out=x)
        out[i : i + step] = x
    return out


def _response(op: int, mt: int, status: int, params: bytes = b"") -> bytes:
    """[0xF0][op][type][status][more = 0][parameters] (PmdControlPointResponse.kt)."""
    return bytes((_RESPONSE, op, mt, status, 0)) + params


def _settings_tlv(settings: Mapping[int, list[int]]) -> bytes:
    """[type][count][count x little-endian value of the type's size] (PmdSetting.kt)."""
    out = b""
    for t, vals in settings.items():
        out += bytes((t, len(vals))) + b"".join(
            int(v).to_bytes(_SETTING_BYTES[t], "little") for v in vals
        )
    return out


def _parse_start(data: bytes) -> dict[int, list[int]] | None:
    """The settings of a start request (None if its TLV list is malformed)."""
    out: dict[int, list[int]] = {}
    pos = 2
    while pos < len(data):
        if pos + 2 > len(data) or data[pos] not in _SETTING_BYTES:
            return None
        t, count = data[pos], data[pos + 1]
        size = _SETTING_BYTES[t]
        pos += 2
        if pos + size * count > len(data):
            return None
        out.setdefault(t, []).extend(
            int.from_bytes(data[pos + k * size : pos + (k + 1) * size], "little", signed=True)
            for k in range(count)
        )
        pos += size * count
    return out


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
            if s not in _TYPES:
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
        return (dev_us - _EPOCH_UNIX_US) * 1000

    # ------------------------------------------------------------------ GATT

    def gatt_layout(self) -> GattLayout:
        """The PMD service: control point (write with response, indicate, read) and data
        (notify) (BlePMDClient.kt: ``addCharacteristicNotification(PMD_CP)``,
        ``addCharacteristicRead(PMD_CP)``, ``addCharacteristicNotification(PMD_DATA)``,
        ``transmitMessage(..., PMD_CP, packet, true)``)."""
        pmd = GattService(
            PMD_SERVICE,
            (
                characteristic(PMD_CP, "write", "indicate", "read"),
                characteristic(PMD_DATA, "notify"),
            ),
        )
        return GattLayout((pmd,), self.name, (PMD_SERVICE,))

    def read_value(self, char_uuid: str) -> bytes:
        """Control point (feature list), battery level or device name."""
        u = char_uuid.lower()
        if u == PMD_CP:
            mask = sum(1 << _TYPES[s] for s in self.signals)
            return bytes((_FEATURES,)) + mask.to_bytes(2, "little")
        if u == _BATTERY:
            return bytes((self.battery_percent,))
        if u == _DEVICE_NAME:
            return self.name.encode()
        raise KeyError(f"PolarVirtualDevice: characteristic {char_uuid} is not readable")

    def handle_write(self, char_uuid: str, data: bytes, now_us: int) -> list[tuple[str, bytes]]:
        """Answer a control-point write with its response indication."""
        if char_uuid.lower() != PMD_CP:
            return []
        if len(data) < 2:
            return [(PMD_CP, _response(data[0] if data else 0, 0, _INVALID_LENGTH))]
        op, mt = data[0], data[1] & 0x3F
        cap = VERITY_SENSE.get(mt)
        offered = any(_TYPES[s] == mt for s in self.signals)
        if op == _OP_GET_SETTINGS:
            if cap is None:
                return [(PMD_CP, _response(op, mt, _INVALID_MEASUREMENT_TYPE))]
            if not offered:
                return [(PMD_CP, _response(op, mt, _NOT_SUPPORTED))]
            params = _settings_tlv(
                {
                    _SAMPLE_RATE: list(cap.sample_rates),
                    _RESOLUTION: list(cap.resolutions),
                    _RANGE: list(cap.ranges),
                    _CHANNELS: [cap.channels],
                }
            )
            return [(PMD_CP, _response(op, mt, _SUCCESS, params))]
        if op == _OP_START:
            settings = _parse_start(data)
            if settings is None:
                return [(PMD_CP, _response(op, mt, _INVALID_PARAMETER))]
            return [(PMD_CP, self._start(mt, settings, now_us))]
        if op == _OP_STOP:
            if cap is None:
                return [(PMD_CP, _response(op, mt, _INVALID_MEASUREMENT_TYPE))]
            if self._running.pop(mt, None) is None:
                return [(PMD_CP, _response(op, mt, _ALREADY_IN_STATE))]
            return [(PMD_CP, _response(op, mt, _SUCCESS))]
        return [(PMD_CP, _response(op, mt, _INVALID_OP_CODE))]

    def _start(self, mt: int, settings: dict[int, list[int]], now_us: int) -> bytes:
        op = _OP_START
        cap = VERITY_SENSE.get(mt)
        if cap is None:
            return _response(op, mt, _INVALID_MEASUREMENT_TYPE)
        stream = next((s for s in self.signals if _TYPES[s] == mt), None)
        if stream is None:
            return _response(op, mt, _NOT_SUPPORTED)
        if mt in self._running:
            return _response(op, mt, _ALREADY_IN_STATE)
        checks = (
            (_SAMPLE_RATE, cap.sample_rates, _INVALID_SAMPLE_RATE),
            (_RESOLUTION, cap.resolutions, _INVALID_RESOLUTION),
            (_RANGE, cap.ranges, _INVALID_RANGE),
            (_CHANNELS, (cap.channels,), _INVALID_NUMBER_OF_CHANNELS),
        )
        chosen: dict[int, int] = {}
        for st, allowed, err in checks:
            vals = settings.get(st)
            if vals is None:
                if st in (_SAMPLE_RATE, _RESOLUTION):
                    return _response(op, mt, _INVALID_PARAMETER)
                chosen[st] = int(allowed[-1])
                continue
            if len(vals) != 1 or int(vals[0]) not in allowed:
                return _response(op, mt, err)
            chosen[st] = int(vals[0])
        if self.att_mtu < min_frame_mtu(cap.channels, chosen[_RESOLUTION]):
            return _response(op, mt, _INVALID_MTU)
        sig = self.signals[stream]
        factor = _factor(mt, chosen[_RANGE])
        # day-long signals in the narrowest integers that hold the samples (memory traffic)
        bits = chosen[_RESOLUTION]
        raw = _counts(
            sig.values, cap.unit_per_count * factor, bits, np.int16 if bits <= 16 else np.int32
        )
        if mt == _TYPES["acc"]:  # the sensor saturates at its range
            lim = chosen[_RANGE] * 1000
            np.clip(raw, -lim, lim, out=raw)
        w = np.zeros(raw.shape[0], dtype=np.uint8)
        w[1:] = _delta_widths(raw, bits, np.uint8)
        first = int(np.searchsorted(sig.t_us, now_us, side="left"))
        self._running[mt] = _Running(
            mtype=mt,
            fs_hz=chosen[_SAMPLE_RATE],
            resolution_bits=bits,
            channels=cap.channels,
            factor=factor,
            frame_type=cap.frame_type,
            raw=raw,
            widths=w,
            planner=FramePlanner(w, cap.channels, bits),
            next_idx=first,
        )
        # the start response carries FACTOR as the bits of a float32 (BlePMDClient.kt getFactor:
        # Float.intBitsToFloat)
        params = bytes((_FACTOR, 1)) + struct.pack("<f", factor)
        return _response(op, mt, _SUCCESS, params)

    #: frames planned (and encoded in one batch) at a time by ``poll``
    _PLAN_FRAMES = 256
    #: frames encoded per numpy batch by ``render_until`` (bounds its memory)
    _RENDER_BATCH = 512

    def _signal(self, mt: int) -> StreamSamples:
        return self.signals[next(s for s in self.signals if _TYPES[s] == mt)]

    def _budget(self) -> int:
        return self.att_mtu - 3 - _HEADER_BYTES

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
        return [(PMD_DATA, f) for _, f in out]

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
            return list(zip(due.tolist(), [PMD_DATA] * len(frames), frames, strict=True))
        # poll sends the frames of one step sorted by last-sample time, streams in start order
        last = np.concatenate([k[2] for k in keys])
        stream = np.concatenate([np.full(k[1].size, k[0]) for k in keys])
        idx = np.lexsort((np.arange(due.size), stream, last, due)).tolist()
        due_l = due.tolist()
        return [(due_l[i], PMD_DATA, frames[i]) for i in idx]

    def link_lost(self, now_us: int) -> None:
        """The link dropped: every stream stops (unsent samples are lost)."""
        self._running.clear()

    def stop_by_device(self, now_us: int) -> list[tuple[str, bytes]]:
        """The sensor stops on its own (e.g. put on charge): measurement-stopped indication."""
        types = sorted(self._running)
        self._running.clear()
        return [(PMD_CP, bytes((_MEASUREMENT_STOPPED, *types)))] if types else []

    @property
    def streaming(self) -> tuple[str, ...]:
        """Streams currently running."""
        return tuple(s for s in self.signals if _TYPES[s] in self._running)
