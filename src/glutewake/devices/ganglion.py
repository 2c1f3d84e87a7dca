"""OpenBCI Ganglion: 4-channel biosignal board (200 Hz) used for EMG, with delta compression.

Every notification on ``2d30c082-...`` is 20 bytes; byte 0 is the packet id:

======= ====================================================================================
id      content
======= ====================================================================================
0       raw: 4 channels x 24-bit signed big-endian (bytes 1-12), bytes 13-19 ``ABCDEFG``
1-100   2 samples x 4 channels of 18-bit deltas, MSB-first (bytes 1-18); byte 19 accelerometer
101-200 2 samples x 4 channels of 19-bit deltas, MSB-first (bytes 1-19)
201-205 impedance values (ASCII), 206-207 ASCII message, 208 end of message
======= ====================================================================================

This is the format of Ganglion firmware 2 (``OpenBCI/OpenBCI_Ganglion_Library``,
``compressData18``/``compressData19``/``buildRawPacket``). The board computes each delta as
``previous - sample`` in 32-bit two's complement, **overwrites bit 0 with the sign bit** and
sends the low 18/19 bits. A receiver therefore reads a field ``f`` of ``w`` bits as ``f`` when
bit 0 is clear and ``f - 2**w`` when it is set (OpenBCI's decoders ``conv19bitToInt32`` and
their unit tests in ``openbci-archive/OpenBCI_NodeJS_Ganglion``); each sample is the previous
one *minus* that value. A non-negative odd delta thus arrives one smaller and a negative even
delta one larger (a one-count rounding per sample that accumulates until the next raw packet).

A cycle is one raw packet (one sample) then 100 delta packets (ids 101..200, or 1..100 with the
accelerometer on), 201 samples in all; then the next raw packet. A jump in the cycle position is
a dropped packet. Counts to µV: ``1.2e6 / (8388607 * 1.5 * 51)`` (MCP3912, 1.2 V reference,
gain 51 x 1.5; brainflow's ``eeg_scale``). Host commands are ASCII on ``2d30c083-...``:
``b`` start, ``s`` stop. Firmware 3 sends absolute 18/19-bit values instead (ids 0-99 and
100-199) and is not decoded here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from glutewake.devices import base
from glutewake.devices._bits import pack_fields, unpack_fields
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


RAW_PADDING = b"ABCDEFG"  # bytes 13-19 of a raw packet (firmware ``sendRawPacket``)
CYCLE_PACKETS = 101  # one raw packet + 100 delta packets
CYCLE_SAMPLES = 201


@dataclass(frozen=True)
class GanglionPacket:
    """One decoded notification.

    ``kind`` is ``raw`` (``values`` (1, 4) absolute counts), ``delta18``/``delta19``
    (``values`` (2, 4) the deltas as transmitted, previous minus sample), or ``other``
    (impedance/ASCII: ``values`` empty).
    """

    packet_id: int
    kind: str
    values: NDArray[np.int64]
    accel_byte: int | None = None


def decode_delta_fields(fields: ArrayLike, *, bits: int) -> NDArray[np.int64]:
    """Unsigned ``bits``-wide delta fields -> signed deltas (sign in bit 0, OpenBCI's rule).

    Examples
    --------
    >>> decode_delta_fields([0x00690, 0x3FFFF, 0x2C000], bits=18).tolist()
    [1680, -1, 180224]
    """
    f = np.asarray(fields, dtype=np.int64)
    return f - (f & 1) * (1 << bits)


def transmitted_delta(deltas: ArrayLike, *, bits: int) -> NDArray[np.int64]:
    """The delta a receiver decodes when the board sends ``deltas`` (previous − sample).

    The firmware replaces bit 0 with the sign and keeps the low ``bits`` bits, so an
    in-range delta comes back rounded towards zero to even (non-negative) or odd (negative);
    a delta beyond the field wraps, as on the board.

    Examples
    --------
    >>> transmitted_delta([0, 1, 2, -1, -2, -3], bits=19).tolist()
    [0, 0, 2, -1, -1, -3]
    """
    d = np.asarray(deltas, dtype=np.int64)
    return decode_delta_fields(_wire_fields(d, bits), bits=bits)


def _wire_fields(d: NDArray[np.int64], bits: int) -> NDArray[np.int64]:
    mask = (1 << bits) - 1
    return ((d & mask) & ~np.int64(1)) | (d < 0).astype(np.int64)


def cycle_position(packet_id: int) -> int:
    """Position of a data packet in the board's 101-packet cycle (raw packet = 0).

    >>> [cycle_position(i) for i in (0, 1, 100, 101, 200)]
    [0, 1, 100, 1, 100]
    """
    if not 0 <= packet_id <= 200:
        raise ValueError("data packet ids are 0..200")
    return 0 if packet_id == 0 else (packet_id - 1) % 100 + 1


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
        f = unpack_fields(buf, starts, np.full(8, w, dtype=np.int64), msb_first=True, signed=False)
        acc = (data[19] - 256 if data[19] > 127 else data[19]) if w == 18 else None
        return GanglionPacket(pid, f"delta{w}", decode_delta_fields(f, bits=w).reshape(2, 4), acc)
    if pid <= 208:
        return GanglionPacket(pid, "other", np.zeros((0, 4), dtype=np.int64))
    raise UnknownMeasurementTypeError(DEVICE, "emg", f"unknown packet id {pid}")


def encode_raw_packet(sample: ArrayLike) -> bytes:
    """Packet id 0: one absolute sample of 4 channels (24-bit counts), padded as the board
    pads it."""
    s = np.asarray(sample, dtype=np.int64).reshape(4)
    if s.min() < -(1 << 23) or s.max() >= (1 << 23):
        raise ValueError("raw samples exceed 24 bits")
    u = s & 0xFFFFFF
    body = bytes(
        np.stack([(u >> 16) & 0xFF, (u >> 8) & 0xFF, u & 0xFF], axis=1).astype(np.uint8).reshape(-1)
    )
    return bytes((0,)) + body + RAW_PADDING


def encode_delta_packet(packet_id: int, deltas: ArrayLike, *, accel_byte: int = 0) -> bytes:
    """Packet id 1-100 (18-bit) or 101-200 (19-bit) carrying deltas (2, 4) (previous − sample).

    The bytes are the board's: bit 0 of each field carries the sign, so ``decode_packet``
    returns :func:`transmitted_delta` of ``deltas`` (equal to them when a non-negative delta
    is even and a negative one odd). Deltas outside ``[-2**w, 2**w - 1]`` raise ValueError
    (the board would wrap them).
    """
    if not 1 <= packet_id <= 200:
        raise ValueError("delta packet ids are 1..200")
    w = 18 if packet_id <= 100 else 19
    d = np.asarray(deltas, dtype=np.int64).reshape(8)
    if d.min() < -(1 << w) or d.max() >= (1 << w):
        raise ValueError(f"deltas exceed the {w}-bit field")
    return _delta_packet(packet_id, _wire_fields(d, w), w, accel_byte)


def _delta_packet(packet_id: int, fields: NDArray[np.int64], w: int, accel_byte: int) -> bytes:
    body = pack_fields(fields, np.full(8, w, dtype=np.int64), msb_first=True)
    if w == 18:
        body += bytes((accel_byte & 0xFF,))
    return bytes((packet_id,)) + body


def next_packet_id(packet_id: int, *, bits: int = 19) -> int:
    """The id the board sends after ``packet_id``: 0 -> 101 (or 1) ... 200 (or 100) -> 0."""
    pos = cycle_position(packet_id)
    if pos == CYCLE_PACKETS - 1:
        return 0
    return pos + 1 + (100 if bits == 19 else 0)


class GanglionProfile(base.DeviceProfile):
    """OpenBCI Ganglion EMG streaming.

    Config: ``{"emg": {"channels": ["glute_max_r", "biceps_femoris_r", "ch3", "ch4"]}}``
    (labels optional; the rate is fixed at 200 Hz).
    """

    name = "ganglion"
    name_prefixes = ("Ganglion", "Simblee")
    service_uuids = (SERVICE_UUID,)
    notify_uuids = (RECEIVE_UUID,)

    def start_writes(self, config: dict[str, Any]) -> list[base.GattWrite]:
        """``b``: start streaming."""
        self._labels(config)
        return [base.GattWrite(SEND_UUID, CMD_START)]

    def stop_writes(self, config: dict[str, Any]) -> list[base.GattWrite]:
        """``s``: stop streaming."""
        self._labels(config)
        return [base.GattWrite(SEND_UUID, CMD_STOP)]

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

    def decode_records(self, records: base.RawRecords, config: dict[str, Any]) -> base.DecodeResult:
        """Rebuild samples along the delta chain; dropped ids become gaps and break the chain.

        The packet's position in the board's cycle (raw, then 100 delta packets) tells how many
        packets were lost, including a lost raw packet (one sample). After a lost packet the
        chain continues from the last sample received (as OpenBCI's software does) until the
        next raw packet; ``qc.chain_breaks`` counts how often values may carry a constant
        offset from a lost delta (EMG processing high-passes it away).
        """
        labels = self._labels(config)
        res = base.DecodeResult()
        qc: dict[str, Any] = {
            "packets": 0,
            "packets_lost": 0,
            "duplicates": 0,
            "reordered": 0,
            "chain_breaks": 0,
        }
        res.qc["emg"] = qc
        last: NDArray[np.int64] | None = None
        prev_pos: int | None = None
        conn: int | None = None
        counter = 0
        vals: list[NDArray[np.int64]] = []
        idx: list[NDArray[np.int64]] = []
        pkt_last_idx: list[int] = []
        pkt_host: list[int] = []
        pkt_conn: list[int] = []
        lost_at: list[tuple[int, str]] = []  # (sample index of first sample after, reason)
        seg = 0  # clock segment: a new one per connection and per start command
        stopped = False
        for i in range(len(records)):
            cid = int(records.conn_id[i])
            if cid != conn:
                if conn is not None:
                    lost_at.append((-1, "disconnect"))
                    seg += 1
                conn = cid
                last, prev_pos, stopped = None, None, False
            kind = int(records.kind[i])
            uuid = records.char_uuid[i].lower()
            if kind == base.RecordKind.WRITE and uuid == SEND_UUID:
                # a restart begins a new cycle (raw packet first) and a new stretch of samples;
                # the chain itself is kept in case the board ignores a repeated start
                if records.payload[i] == CMD_STOP:
                    stopped = True
                elif records.payload[i] == CMD_START:
                    if stopped:
                        lost_at.append((-1, "stopped"))
                    stopped = False
                    prev_pos = None
                    seg += 1
                continue
            if kind != base.RecordKind.NOTIFY or uuid != RECEIVE_UUID:
                continue
            data = records.payload[i]
            t = int(records.t_us[i])
            try:
                p = decode_packet(data)
                if p.kind == "other":
                    continue
                qc["packets"] += 1
                pos = cycle_position(p.packet_id)
                if prev_pos is not None:
                    if pos == prev_pos:
                        qc["duplicates"] += 1
                        continue
                    missing = (pos - prev_pos - 1) % CYCLE_PACKETS
                    if missing >= CYCLE_PACKETS // 2:  # far behind: a late packet, not 50 lost
                        qc["reordered"] += 1
                        continue
                    if missing:
                        qc["packets_lost"] += missing
                        # a raw packet carries one sample, a delta packet two
                        counter += 2 * missing - (prev_pos + missing >= CYCLE_PACKETS)
                        lost_at.append((counter, "packet_loss"))
                        if p.kind != "raw":
                            qc["chain_breaks"] += 1
                if p.kind == "raw":
                    last = p.values[0]
                    new = p.values
                elif last is None:  # then prev_pos is None too: no counters moved
                    raise SequenceError(
                        DEVICE, "emg", f"delta packet {p.packet_id} before any raw packet"
                    )
                else:
                    s1 = last - p.values[0]
                    s2 = s1 - p.values[1]
                    new = np.stack([s1, s2])
                    last = s2
            except base.DecodeError as err:
                res.errors.append(base.PacketError(t, RECEIVE_UUID, bytes(data), str(err)))
                continue
            if lost_at and lost_at[-1][0] == -1:
                lost_at[-1] = (counter, lost_at[-1][1])
            n = new.shape[0]
            vals.append(new)
            idx.append(np.arange(counter, counter + n, dtype=np.int64))
            counter += n
            pkt_last_idx.append(counter - 1)
            pkt_host.append(t)
            pkt_conn.append(seg)
            prev_pos = pos
        if not vals:
            return res
        v = np.concatenate(vals)
        sidx = np.concatenate(idx)
        dev_us = np.rint(sidx * 1e6 / FS_HZ).astype(np.int64)
        # the sample counter is the device clock, fitted per segment (connection or restart)
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
                res.gaps.append(base.Gap("emg", int(t_us[k - 1]), int(t_us[k]), reason))
        values = v.astype(np.float64) * UV_PER_COUNT
        res.streams["emg"] = base.StreamSamples("emg", t_us, values, labels, "uV", FS_HZ, sidx)
        qc["samples"] = int(v.shape[0])
        return res


PROFILE = GanglionProfile()


class GanglionVirtualDevice(base.VirtualDevice):
    """A Ganglion (firmware 2) streaming a known 4-channel EMG signal (µV, 200 Hz, true ``t_us``).

    After ``b`` it sends what the firmware sends: a raw packet, then 100 19-bit delta packets
    (ids 101..200), then the next raw packet, and so on (201 samples a cycle). Deltas are taken
    between the true samples and sent with the sign in bit 0 (:func:`transmitted_delta`), so a
    receiver's values drift by up to one count per sample from the truth until the next raw
    packet, as with the real board; a delta beyond 19 bits wraps, as on the board. The board has
    no clock of its own to report: its sampling instants are the signal's ``t_us``.
    """

    def __init__(self, emg: base.StreamSamples) -> None:
        if emg.values.shape[1] != N_CHANNELS:
            raise ValueError("GanglionVirtualDevice: 4 channels")
        self.emg = emg
        self.counts = np.clip(np.rint(emg.values / UV_PER_COUNT), -(1 << 23), (1 << 23) - 1).astype(
            np.int64
        )
        self._running = False
        self._next = 0
        self._pos = 0  # cycle position of the next packet (0 = raw)

    def read_value(self, char_uuid: str) -> bytes:
        """Nothing readable in this model."""
        raise KeyError(f"GanglionVirtualDevice: characteristic {char_uuid} is not readable")

    def handle_write(self, char_uuid: str, data: bytes, now_us: int) -> list[tuple[str, bytes]]:
        """``b`` starts (with a raw packet), ``s`` stops."""
        if char_uuid.lower() != SEND_UUID:
            return []
        if data == CMD_START and not self._running:
            self._running = True
            self._next = int(np.searchsorted(self.emg.t_us, now_us, side="left"))
            self._pos = 0
        elif data == CMD_STOP:
            self._running = False
        return []

    def poll(self, now_us: int) -> list[tuple[str, bytes]]:
        """Packets completed by ``now_us``."""
        if not self._running:
            return []
        out: list[tuple[str, bytes]] = []
        avail = int(np.searchsorted(self.emg.t_us, now_us, side="right"))
        while True:
            if self._pos == 0:
                if avail - self._next < 1:
                    break
                out.append((RECEIVE_UUID, encode_raw_packet(self.counts[self._next])))
                self._next += 1
                self._pos = 1
                continue
            if avail - self._next < 2:
                break
            prev_true = self.counts[self._next - 1 : self._next + 1]
            d = prev_true - self.counts[self._next : self._next + 2]
            out.append(
                (
                    RECEIVE_UUID,
                    _delta_packet(100 + self._pos, _wire_fields(d.reshape(8), 19), 19, 0),
                )
            )
            self._next += 2
            self._pos = (self._pos + 1) % CYCLE_PACKETS
        return out

    def next_due_us(self) -> int | None:
        """True time of the next packet (raw: its one sample; delta: its second sample)."""
        if not self._running:
            return None
        last = self._next + (0 if self._pos == 0 else 1)
        return int(self.emg.t_us[last]) if last < len(self.emg) else None

    def link_lost(self, now_us: int) -> None:
        """Streaming stops with the link."""
        self._running = False
