"""Byte-level model of a glutewake-open board (simulators and tests).

It answers START/STOP commands like the firmware specified in docs/devices.md, serves the
configuration and battery characteristics, and emits EMG/ACC packets of
:func:`~glutewake.devices.glutewake_open.samples_per_packet` samples once their last sample
has been measured, stamped with its own clock (µs since boot, offset and drift from true time).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from glutewake.devices.base import (
    GattLayout,
    GattService,
    StreamSamples,
    VirtualDevice,
    characteristic,
)
from glutewake.devices.glutewake_open import (
    ACC_DATA_UUID,
    BATTERY_LEVEL_UUID,
    COMMAND_UUID,
    CONFIG_UUID,
    DEFAULT_ACC_G_PER_LSB,
    DEFAULT_EMG_UV_PER_LSB,
    EMG_DATA_UUID,
    FLAG_CLIPPED,
    FLAG_START,
    HEADER_BYTES,
    OP_START,
    OP_STOP,
    SERVICE_UUID,
    STATUS_INVALID_LENGTH,
    STATUS_INVALID_PARAMETER,
    STATUS_MTU_TOO_SMALL,
    STATUS_OK,
    STATUS_UNKNOWN_OP,
    STREAM_ACC,
    STREAM_EMG,
    OpenConfig,
    encode_packet,
    encode_response,
    samples_per_packet,
    samples_to_raw,
)


@dataclass
class _Run:
    stream_id: int
    uuid: str
    sig: StreamSamples
    raw: NDArray[np.int64]
    clipped: NDArray[np.bool_]
    per_packet: int
    next_idx: int
    seq: int = 0
    first: bool = True


class GlutewakeOpenVirtualDevice(VirtualDevice):
    """A glutewake-open board driven by known signals.

    Parameters
    ----------
    emg : StreamSamples
        True EMG in µV at its nominal rate (``fs_hz``), true UTC ``t_us``; its
        ``channel_names`` become the board's channel labels.
    acc : StreamSamples or None
        True acceleration in g (3 channels), optional.
    emg_uv_per_lsb, acc_g_per_lsb : float
        The board's scales (published in the configuration characteristic).
    clock_offset_us : int or None
        Device clock (µs since boot) minus true UTC µs at the first sample; default: the board
        booted 5 s before the first sample.
    clock_drift_ppm : float
        How much faster the device clock runs than true time.
    att_mtu : int
        Negotiated ATT MTU (settable attribute); packets are at most ``att_mtu - 3`` bytes.
    battery_percent : int
        Battery level characteristic value.
    """

    def __init__(
        self,
        emg: StreamSamples,
        acc: StreamSamples | None = None,
        *,
        emg_uv_per_lsb: float = DEFAULT_EMG_UV_PER_LSB,
        acc_g_per_lsb: float = DEFAULT_ACC_G_PER_LSB,
        clock_offset_us: int | None = None,
        clock_drift_ppm: float = 0.0,
        att_mtu: int = 247,
        battery_percent: int = 80,
        name: str = "glutewake-open",
    ) -> None:
        if acc is not None and acc.values.shape[1] != 3:
            raise ValueError("GlutewakeOpenVirtualDevice: acc must have 3 channels")
        self.emg = emg
        self.acc = acc
        self.emg_uv_per_lsb = float(emg_uv_per_lsb)
        self.acc_g_per_lsb = float(acc_g_per_lsb)
        self._anchor_us = int(emg.t_us[0])
        self.clock_offset_us = (
            -self._anchor_us + 5_000_000 if clock_offset_us is None else int(clock_offset_us)
        )
        if self._anchor_us + self.clock_offset_us < 0:
            raise ValueError("GlutewakeOpenVirtualDevice: device clock would be negative")
        self.clock_drift_ppm = float(clock_drift_ppm)
        self.att_mtu = int(att_mtu)
        self.battery_percent = int(battery_percent)
        self.name = name
        self._runs: dict[int, _Run] = {}

    @property
    def config(self) -> OpenConfig:
        """What a read of the configuration characteristic returns."""
        return OpenConfig(
            emg_channels=tuple(self.emg.channel_names),
            emg_fs_hz=round(self.emg.fs_hz),
            emg_uv_per_lsb=float(np.float32(self.emg_uv_per_lsb)),
            acc_channels=3 if self.acc is not None else 0,
            acc_fs_hz=round(self.acc.fs_hz) if self.acc is not None else 0,
            acc_g_per_lsb=float(np.float32(self.acc_g_per_lsb)),
        )

    def device_time_us(self, true_t_us: NDArray[np.int64]) -> NDArray[np.int64]:
        """Device clock (µs since boot) at true UTC microseconds."""
        t = np.asarray(true_t_us, dtype=np.int64)
        drift = np.rint(self.clock_drift_ppm * 1e-6 * (t - self._anchor_us)).astype(np.int64)
        return t + self.clock_offset_us + drift

    def gatt_layout(self) -> GattLayout:
        """The GATT layout of docs/devices.md (the ACC characteristic only with an IMU)."""
        chars = [characteristic(EMG_DATA_UUID, "notify")]
        if self.acc is not None:
            chars.append(characteristic(ACC_DATA_UUID, "notify"))
        chars += [
            characteristic(CONFIG_UUID, "read"),
            characteristic(COMMAND_UUID, "write", "notify"),
        ]
        return GattLayout((GattService(SERVICE_UUID, tuple(chars)),), self.name, (SERVICE_UUID,))

    def read_value(self, char_uuid: str) -> bytes:
        """Configuration or battery level."""
        u = char_uuid.lower()
        if u == CONFIG_UUID:
            return self.config.encode()
        if u == BATTERY_LEVEL_UUID:
            return bytes((self.battery_percent,))
        raise KeyError(f"GlutewakeOpenVirtualDevice: characteristic {char_uuid} is not readable")

    def handle_write(self, char_uuid: str, data: bytes, now_us: int) -> list[tuple[str, bytes]]:
        """Execute a START/STOP command; answer on the command characteristic."""
        if char_uuid.lower() != COMMAND_UUID:
            return []
        op = data[0] if data else 0
        if op == OP_START:
            return [(COMMAND_UUID, encode_response(op, self._start(data, now_us)))]
        if op == OP_STOP:
            if len(data) != 2:
                return [(COMMAND_UUID, encode_response(op, STATUS_INVALID_LENGTH))]
            for sid in (STREAM_EMG, STREAM_ACC):
                if data[1] & sid:
                    self._runs.pop(sid, None)
            return [(COMMAND_UUID, encode_response(op, STATUS_OK))]
        return [(COMMAND_UUID, encode_response(op, STATUS_UNKNOWN_OP))]

    def _start(self, data: bytes, now_us: int) -> int:
        if len(data) != 6:
            return STATUS_INVALID_LENGTH
        mask = data[1]
        emg_fs = int.from_bytes(data[2:4], "little")
        acc_fs = int.from_bytes(data[4:6], "little")
        if mask == 0 or mask & ~(STREAM_EMG | STREAM_ACC):
            return STATUS_INVALID_PARAMETER
        plans: list[tuple[int, str, StreamSamples, float]] = []
        if mask & STREAM_EMG:
            if emg_fs not in (0, round(self.emg.fs_hz)):
                return STATUS_INVALID_PARAMETER
            plans.append((STREAM_EMG, EMG_DATA_UUID, self.emg, self.emg_uv_per_lsb))
        if mask & STREAM_ACC:
            if self.acc is None or acc_fs not in (0, round(self.acc.fs_hz)):
                return STATUS_INVALID_PARAMETER
            plans.append((STREAM_ACC, ACC_DATA_UUID, self.acc, self.acc_g_per_lsb))
        for _, _, sig, _ in plans:
            if self.att_mtu < 3 + HEADER_BYTES + 2 * sig.values.shape[1]:
                return STATUS_MTU_TOO_SMALL
        for sid, uuid, sig, scale in plans:
            raw, clipped = samples_to_raw(sig.values, scale)
            self._runs[sid] = _Run(
                stream_id=sid,
                uuid=uuid,
                sig=sig,
                raw=raw,
                clipped=np.asarray(clipped.any(axis=1), dtype=bool),
                per_packet=samples_per_packet(sig.values.shape[1], sig.fs_hz, self.att_mtu),
                next_idx=int(np.searchsorted(sig.t_us, now_us, side="left")),
            )
        return STATUS_OK

    def poll(self, now_us: int) -> list[tuple[str, bytes]]:
        """Packets whose last sample was measured by ``now_us``, in send order."""
        out: list[tuple[int, str, bytes]] = []
        for run in self._runs.values():
            avail = int(np.searchsorted(run.sig.t_us, now_us, side="right"))
            k = run.per_packet
            n_full = (avail - run.next_idx) // k
            if n_full <= 0:
                continue
            a0 = run.next_idx
            t_dev = self.device_time_us(run.sig.t_us[a0 : a0 + n_full * k : k])
            for j in range(n_full):
                a = a0 + j * k
                flags = (FLAG_START if run.first else 0) | (
                    FLAG_CLIPPED if run.clipped[a : a + k].any() else 0
                )
                pkt = encode_packet(
                    run.stream_id,
                    seq=run.seq,
                    t_dev_us=int(t_dev[j]),
                    raw=run.raw[a : a + k],
                    flags=flags,
                )
                out.append((int(run.sig.t_us[a + k - 1]), run.uuid, pkt))
                run.seq = (run.seq + 1) & 0xFFFF
                run.first = False
            run.next_idx = a0 + n_full * k
        out.sort(key=lambda x: x[0])
        return [(u, p) for _, u, p in out]

    def next_due_us(self) -> int | None:
        """True time at which the next packet's last sample is measured."""
        due = [
            int(r.sig.t_us[r.next_idx + r.per_packet - 1])
            for r in self._runs.values()
            if r.next_idx + r.per_packet <= len(r.sig)
        ]
        return min(due) if due else None

    def link_lost(self, now_us: int) -> None:
        """The link dropped: the firmware stops streaming."""
        self._runs.clear()

    @property
    def streaming(self) -> tuple[str, ...]:
        """Streams currently running."""
        return tuple("emg" if sid == STREAM_EMG else "acc" for sid in sorted(self._runs))
