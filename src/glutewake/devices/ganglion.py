"""OpenBCI Ganglion: 4-channel biosignal board (200 Hz) used for EMG, with delta compression.

Every notification on ``2d30c082-...`` is 20 bytes; byte 0 is the packet id:

====== =====================================================================================
id     content
====== =====================================================================================
0      raw: 4 channels x 24-bit signed big-endian (bytes 1-12); resets the delta chain
1-100  2 samples x 4 channels of 18-bit deltas, MSB-first (bytes 1-18); byte 19 accelerometer
101-200 2 samples x 4 channels of 19-bit deltas, MSB-first (bytes 1-19)
201-205 impedance values (ASCII), 206-207 ASCII message, 208 end of message
====== =====================================================================================

Each sample is the previous one *minus* its delta (OpenBCI's reference decoders); ids count up
1..100 or 101..200 and wrap, so a jump in ids is a dropped packet (2 samples each). Counts to
µV: ``1.2e6 / (8388607 * 1.5 * 51)`` (MCP3912, 1.2 V reference, gain 51 x 1.5). Host commands
are ASCII on ``2d30c083-...``: ``b`` start, ``s`` stop.

Not verified against a vendor test vector (none is published as such): the field sign
convention here is plain two's complement; check with a real board's raw/delta pairs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from glutewake.devices._bits import pack_fields, unpack_fields
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
    VirtualDevice,
)
from glutewake.devices.clock import fit_clock
from glutewake.devices.errors import (
    PayloadLengthError,
    SequenceError,
    TruncatedPacketError,
    UnknownMeasurementTypeError,
)

DEVICE = "ganglion"
SERVICE_UUID = "0000fe84-0000-1000-8000-00805f9b34fb"
RECEIVE_UUID = "2d30c082-f39f-4ce6-923f-3484ea480596"
SEND_UUID = "2d30c083-f39f-4ce6-923f-3484ea480596"
PACKET_BYTES = 20
FS_HZ = 200.0
N_CHANNELS = 4
UV_PER_COUNT = 1.2e6 / (8388607.0 * 1.5 * 51.0)
CMD_START = b"b"
CMD_STOP = b"s"


@dataclass(frozen=True)
class GanglionPacket:
    """One decoded notification.

    ``kind`` is ``raw`` (``values`` (1, 4) absolute counts), ``delta18``/``delta19``
    (``values`` (2, 4) deltas), or ``other`` (impedance/ASCII: ``values`` empty).
    """

    packet_id: int
    kind: str
    values: NDArray[np.int64]
    accel_byte: int | None = None


def decode_packet(data: bytes) -> GanglionPacket:
    """Decode one 20-byte notification.

    Raises
    ------
    TruncatedPacketError, PayloadLengthError, UnknownMeasurementTypeError
    """
    if len(data) < PACKET_BYTES:
        raise TruncatedPacketError(
            DEVICE, "emg", f"packet of {len(data)} bytes (Ganglion packets are 20)"
        )
    if len(data) > PACKET_BYTES:
        raise PayloadLengthError(
            DEVICE, "emg", f"packet of {len(data)} bytes (Ganglion packets are 20)"
        )
    pid = data[0]
    buf = np.frombuffer(data, dtype=np.uint8)
    if pid == 0:
        b = buf[1:13].reshape(4, 3).astype(np.int64)
        v = (b[:, 0] << 16) | (b[:, 1] << 8) | b[:, 2]
        v = v - ((v >> 23) << 24)
        return GanglionPacket(0, "raw", v.reshape(1, 4))
    if pid <= 200:
        w = 18 if pid <= 100 else 19
        starts = 8 + w * np.arange(8, dtype=np.int64)
        d = unpack_fields(buf, starts, np.full(8, w, dtype=np.int64), msb_first=True, signed=True)
        acc = (data[19] - 256 if data[19] > 127 else data[19]) if w == 18 else None
        return GanglionPacket(pid, f"delta{w}", d.reshape(2, 4), acc)
    if pid <= 208:
        return GanglionPacket(pid, "other", np.zeros((0, 4), dtype=np.int64))
    raise UnknownMeasurementTypeError(DEVICE, "emg", f"unknown packet id {pid}")


def encode_raw_packet(sample: ArrayLike) -> bytes:
    """Packet id 0: one absolute sample of 4 channels (24-bit counts)."""
    s = np.asarray(sample, dtype=np.int64).reshape(4)
    if s.min() < -(1 << 23) or s.max() >= (1 << 23):
        raise ValueError("raw samples exceed 24 bits")
    u = s & 0xFFFFFF
    body = bytes(
        np.stack([(u >> 16) & 0xFF, (u >> 8) & 0xFF, u & 0xFF], axis=1).astype(np.uint8).reshape(-1)
    )
    return bytes((0,)) + body + bytes(7)


def encode_delta_packet(packet_id: int, deltas: ArrayLike, *, accel_byte: int = 0) -> bytes:
    """Packet id 1-100 (18-bit) or 101-200 (19-bit) carrying deltas (2, 4) (previous - sample)."""
    if not 1 <= packet_id <= 200:
        raise ValueError("delta packet ids are 1..200")
    w = 18 if packet_id <= 100 else 19
    d = np.asarray(deltas, dtype=np.int64).reshape(8)
    if d.min() < -(1 << (w - 1)) or d.max() >= (1 << (w - 1)):
        raise ValueError(f"deltas exceed {w} bits")
    body = pack_fields(d, np.full(8, w, dtype=np.int64), msb_first=True)
    if w == 18:
        body += bytes((accel_byte & 0xFF,))
    return bytes((packet_id,)) + body


def next_packet_id(packet_id: int, *, bits: int = 19) -> int:
    """The id that follows ``packet_id`` (0 is followed by 1 or 101)."""
    lo = 101 if bits == 19 else 1
    if packet_id == 0:
        return lo
    return lo if packet_id == lo + 99 else packet_id + 1


class GanglionProfile(DeviceProfile):
    """OpenBCI Ganglion EMG streaming.

    Config: ``{"emg": {"channels": ["glute_max_r", "biceps_femoris_r", "ch3", "ch4"]}}``
    (labels optional; the rate is fixed at 200 Hz).
    """

    name = "ganglion"
    name_prefixes = ("Ganglion", "Simblee")
    service_uuids = (SERVICE_UUID,)
    notify_uuids = (RECEIVE_UUID,)

    def start_writes(self, config: dict[str, Any]) -> list[GattWrite]:
        """``b``: start streaming."""
        self._labels(config)
        return [GattWrite(SEND_UUID, CMD_START)]

    def stop_writes(self, config: dict[str, Any]) -> list[GattWrite]:
        """``s``: stop streaming."""
        self._labels(config)
        return [GattWrite(SEND_UUID, CMD_STOP)]

    def required_mtu(self, config: dict[str, Any]) -> int:
        """20-byte packets fit the default MTU."""
        self._labels(config)
        return 23

    @staticmethod
    def _labels(config: dict[str, Any]) -> tuple[str, ...]:
        unknown = set(config) - {"emg"}
        if unknown:
            raise ValueError(f"ganglion: unknown stream(s) {sorted(unknown)} (known: emg)")
        labels = tuple(config.get("emg", {}).get("channels", [f"ch{i + 1}" for i in range(4)]))
        if len(labels) != N_CHANNELS:
            raise ValueError("ganglion: exactly 4 channel labels")
        return labels

    def decode_records(self, records: RawRecords, config: dict[str, Any]) -> DecodeResult:
        """Rebuild samples along the delta chain; dropped ids become gaps and break the chain.

        After a dropped packet the chain continues from the last sample received (as OpenBCI's
        software does) until the next raw packet; ``qc.chain_breaks`` counts how often values
        may carry a constant offset from a lost delta (EMG processing high-passes it away).
        """
        labels = self._labels(config)
        res = DecodeResult()
        qc: dict[str, Any] = {
            "packets": 0,
            "packets_lost": 0,
            "duplicates": 0,
            "reordered": 0,
            "chain_breaks": 0,
        }
        res.qc["emg"] = qc
        last: NDArray[np.int64] | None = None
        prev_id: int | None = None
        conn: int | None = None
        counter = 0
        vals: list[NDArray[np.int64]] = []
        idx: list[NDArray[np.int64]] = []
        pkt_last_idx: list[int] = []
        pkt_host: list[int] = []
        pkt_conn: list[int] = []
        lost_at: list[tuple[int, str]] = []  # (sample index of first sample after, reason)
        for i in range(len(records)):
            cid = int(records.conn_id[i])
            if cid != conn:
                if conn is not None:
                    lost_at.append((-1, "disconnect"))
                conn = cid
                last, prev_id = None, None
            if (
                int(records.kind[i]) != RecordKind.NOTIFY
                or records.char_uuid[i].lower() != RECEIVE_UUID
            ):
                continue
            data = records.payload[i]
            t = int(records.t_us[i])
            try:
                p = decode_packet(data)
                if p.kind == "other":
                    continue
                qc["packets"] += 1
                if p.kind == "raw":
                    last = p.values[0]
                    new = p.values
                else:
                    if last is None:
                        raise SequenceError(
                            DEVICE, "emg", f"delta packet {p.packet_id} before any raw packet"
                        )
                    if prev_id is not None and prev_id != 0:
                        bits = 18 if p.kind == "delta18" else 19
                        expect = next_packet_id(prev_id, bits=bits)
                        if p.packet_id == prev_id:
                            qc["duplicates"] += 1
                            continue
                        if p.packet_id != expect:
                            missing = (p.packet_id - expect) % 100
                            if missing >= 50:  # far behind: late packet, not 50 lost
                                qc["reordered"] += 1
                                continue
                            qc["packets_lost"] += missing
                            qc["chain_breaks"] += 1
                            counter += 2 * missing
                            lost_at.append((counter, "packet_loss"))
                    s1 = last - p.values[0]
                    s2 = s1 - p.values[1]
                    new = np.stack([s1, s2])
                    last = s2
            except DecodeError as err:
                res.errors.append(PacketError(t, RECEIVE_UUID, bytes(data), str(err)))
                continue
            if lost_at and lost_at[-1][0] == -1:
                lost_at[-1] = (counter, "disconnect")
            n = new.shape[0]
            vals.append(new)
            idx.append(np.arange(counter, counter + n, dtype=np.int64))
            counter += n
            pkt_last_idx.append(counter - 1)
            pkt_host.append(t)
            pkt_conn.append(cid)
            prev_id = p.packet_id
        if not vals:
            return res
        v = np.concatenate(vals)
        sidx = np.concatenate(idx)
        dev_us = np.rint(sidx * 1e6 / FS_HZ).astype(np.int64)
        # the sample counter is the device clock; per connection, as the count restarts there
        t_us = np.empty_like(dev_us)
        conns = np.array(pkt_conn)
        pl = np.array(pkt_last_idx)
        ph = np.array(pkt_host, dtype=np.int64)
        rows = np.array([x.shape[0] for x in vals])
        sample_conn = np.repeat(conns, rows)
        drift: list[float] = []
        for c in np.unique(conns).tolist():
            m = fit_clock(
                np.rint(pl[conns == c] * 1e6 / FS_HZ).astype(np.int64),
                ph[conns == c],
                max_abs_drift_ppm=20_000.0,
            )
            sm = sample_conn == c
            t_us[sm] = m.to_host_us(dev_us[sm])
            drift.append(m.drift_ppm)
            qc["clock_offset_us"] = float(m.offset_us)
        qc["clock_drift_ppm"] = float(np.median(drift))
        for first_idx, reason in lost_at:
            k = int(np.searchsorted(sidx, first_idx))
            if 0 < k < sidx.size:
                res.gaps.append(Gap("emg", int(t_us[k - 1]), int(t_us[k]), reason))
        values = v.astype(np.float64) * UV_PER_COUNT
        res.streams["emg"] = StreamSamples("emg", t_us, values, labels, "uV", FS_HZ, sidx)
        qc["samples"] = int(v.shape[0])
        return res


PROFILE = GanglionProfile()


class GanglionVirtualDevice(VirtualDevice):
    """A Ganglion streaming a known 4-channel EMG signal (µV, 200 Hz, true ``t_us``).

    Sends a raw packet after ``b``, then 19-bit delta packets (ids 101..200). Deltas that do not
    fit 19 bits are clipped and the board follows its own clipped chain, so what it sends is
    exactly what a receiver reconstructs. The board has no clock of its own to report: its
    sampling instants are the signal's ``t_us``.
    """

    def __init__(self, emg: StreamSamples) -> None:
        if emg.values.shape[1] != N_CHANNELS:
            raise ValueError("GanglionVirtualDevice: 4 channels")
        self.emg = emg
        self.counts = np.clip(np.rint(emg.values / UV_PER_COUNT), -(1 << 23), (1 << 23) - 1).astype(
            np.int64
        )
        self._running = False
        self._next = 0
        self._pid = 0
        self._last = np.zeros(4, dtype=np.int64)

    def read_value(self, char_uuid: str) -> bytes:
        """Nothing readable in this model."""
        raise KeyError(f"GanglionVirtualDevice: characteristic {char_uuid} is not readable")

    def handle_write(self, char_uuid: str, data: bytes, now_us: int) -> list[tuple[str, bytes]]:
        """``b`` starts, ``s`` stops."""
        if char_uuid.lower() != SEND_UUID:
            return []
        if data == CMD_START and not self._running:
            self._running = True
            self._next = int(np.searchsorted(self.emg.t_us, now_us, side="left"))
            self._pid = -1
        elif data == CMD_STOP:
            self._running = False
        return []

    def poll(self, now_us: int) -> list[tuple[str, bytes]]:
        """Packets completed by ``now_us``."""
        if not self._running:
            return []
        out: list[tuple[str, bytes]] = []
        avail = int(np.searchsorted(self.emg.t_us, now_us, side="right"))
        lim = (1 << 18) - 1
        while True:
            if self._pid == -1:
                if avail - self._next < 1:
                    break
                self._last = self.counts[self._next].copy()
                out.append((RECEIVE_UUID, encode_raw_packet(self._last)))
                self._next += 1
                self._pid = 0
                continue
            if avail - self._next < 2:
                break
            target = self.counts[self._next : self._next + 2]
            d1 = np.clip(self._last - target[0], -lim - 1, lim)
            s1 = self._last - d1
            d2 = np.clip(s1 - target[1], -lim - 1, lim)
            self._last = s1 - d2
            self._pid = next_packet_id(self._pid, bits=19)
            out.append((RECEIVE_UUID, encode_delta_packet(self._pid, np.stack([d1, d2]))))
            self._next += 2
        return out

    def next_due_us(self) -> int | None:
        """True time of the next packet (raw: its one sample; delta: its second sample)."""
        if not self._running:
            return None
        last = self._next + (0 if self._pid == -1 else 1)
        return int(self.emg.t_us[last]) if last < len(self.emg) else None

    def link_lost(self, now_us: int) -> None:
        """Streaming stops with the link."""
        self._running = False
