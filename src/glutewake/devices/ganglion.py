"""OpenBCI Ganglion: 4-channel biosignal board (200 Hz) used for EMG, firmware 2 and 3.

Every data notification on ``2d30c082-...`` is 20 bytes; byte 0 is the packet id. The two
firmware generations number and fill their packets differently
(OpenBCI/OpenBCI_Ganglion_Library, ``OpenBCI_Ganglion_Library.cpp``: firmware 2.0.1 at commit
4e19bd3, firmware 3.0.2 at b6058e6; ``Definitions_Ganglion.h`` for the ids):

======= ================================================ =====================================
id      firmware 2                                       firmware 3
======= ================================================ =====================================
0       raw: 4 x 24-bit big-endian (bytes 1-12), ``ABCDEFG`` 18-bit absolute (see 1-99)
1-99    2 samples x 4 channels, 18-bit deltas, MSB first 2 samples x 4 channels, the 18 most
        (bytes 1-18); byte 19 accelerometer              significant bits, MSB first; byte 19
                                                         accelerometer
100     as 1-99                                          19-bit absolute (see 101-199)
101-199 2 x 4 19-bit deltas, MSB first (bytes 1-19)      2 x 4, the 19 most significant bits
200     as 101-199                                       not sent
201-205 impedance of channels 1-4 and the reference, ASCII digits then ``Z``, shorter than 20
206-207 ASCII message packet / its last packet, up to 20 bytes
======= ================================================ =====================================

**Firmware 2** sends deltas ``previous - sample`` with the sign written into bit 0; a field
``f`` of ``w`` bits is ``f`` when bit 0 is clear and ``f - 2**w`` when set (OpenBCI's decoders
and unit tests, OpenBCI/OpenBCI_JavaScript_Utilities ``test/openBCIUtilities-test.js``), and
each sample is the previous one minus it. A cycle is one raw packet then 100 delta packets:
201 samples.

**Firmware 3** sends each sample's top bits: the sign written into bit 6 (18-bit) or 5
(19-bit), shifted right by as much ("send MSBs instead of using delta compression"). Values are
read as brainflow's ``decompress_firmware_3`` reads them (brainflow-dev/brainflow,
``ganglion_native.cpp``; ``custom_cast.h`` ``cast_ganglion_bits_to_int32``): a field whose
first bit is set is ``f - 2**w - 1``, then shifted left by 6 or 5 bits, which is the sample
rounded down to a multiple of 128 (18-bit) or 64 counts (19-bit). A cycle is 100 packets; the
firmware's sample counter runs to 200, so one sample per cycle is never sent.

Which firmware a board runs is in its Device Information Software Revision String (0x2A28,
``SimbleeBLE.softwareRevision``: "3.0.2", "2.0.1"; brainflow reads it and takes firmware 3 iff
it begins with '3'). Counts to µV: ``1.2e6 / (8388607 * 1.5 * 51)`` (brainflow's
``eeg_scale``). Host commands are ASCII on ``2d30c083-...``: ``b`` start, ``s`` stop.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from glutewake.devices import base
from glutewake.devices.clock import fit_clock
from glutewake.devices.errors import (
    PayloadLengthError,
    SequenceError,
    TruncatedPacketError,
    UnknownFirmwareError,
    UnknownMeasurementTypeError,
)

DEVICE = "ganglion"
SERVICE_UUID = "0000fe84-0000-1000-8000-00805f9b34fb"
RECEIVE_UUID = "2d30c082-f39f-4ce6-923f-3484ea480596"
SEND_UUID = "2d30c083-f39f-4ce6-923f-3484ea480596"
#: Device Information Software Revision String: the Ganglion firmware's version
SOFTWARE_REVISION_UUID = "00002a28-0000-1000-8000-00805f9b34fb"
#: Device Information Firmware Revision String: used when no Software Revision String is served
FIRMWARE_REVISION_UUID = "00002a26-0000-1000-8000-00805f9b34fb"
PACKET_BYTES = 20
FS_HZ = 200.0
N_CHANNELS = 4
UV_PER_COUNT = 1.2e6 / (8388607.0 * 1.5 * 51.0)
CMD_START = b"b"
CMD_STOP = b"s"
FIRMWARES = (2, 3)

RAW_PADDING = b"ABCDEFG"  # bytes 13-19 of a firmware-2 raw packet (``sendRawPacket``)
CYCLE_PACKETS = 101  # firmware 2: one raw packet + 100 delta packets
CYCLE_SAMPLES = 201  # both firmwares: the sample counter runs 0..200
FW3_CYCLE_PACKETS = 100  # firmware 3: ring levels 0..99; sample 200 is not sent
ID_IMPEDANCE = range(201, 206)  # ID_Z_1 .. ID_Z_R
ID_MESSAGE, ID_MESSAGE_STOP = 206, 207  # ID_MULTI_PACKET, ID_MULTI_PACKET_STOP


@dataclass(frozen=True)
class GanglionPacket:
    """One decoded notification.

    ``kind`` is ``raw`` (firmware 2: ``values`` (1, 4) absolute counts), ``delta18``/``delta19``
    (firmware 2: ``values`` (2, 4) the deltas as transmitted, previous minus sample),
    ``msb18``/``msb19`` (firmware 3: ``values`` (2, 4) absolute counts), ``impedance`` or
    ``message`` (``values`` empty).
    """

    packet_id: int
    kind: str
    values: NDArray[np.int64]
    accel_byte: int | None = None


def decode_delta_fields(fields: ArrayLike, *, bits: int) -> NDArray[np.int64]:
    """Unsigned ``bits``-wide firmware-2 delta fields -> signed deltas (sign in bit 0).

    Examples
    --------
    >>> decode_delta_fields([0x00690, 0x3FFFF, 0x2C000], bits=18).tolist()
    [1680, -1, 180224]
    """
    f = np.asarray(fields, dtype=np.int64)
    return f - (f & 1) * (1 << bits)


def decode_msb_fields(fields: ArrayLike, *, bits: int) -> NDArray[np.int64]:
    """Unsigned ``bits``-wide firmware-3 fields -> 24-bit counts, as brainflow reads them.

    ``cast_ganglion_bits_to_int32``: a field with its first (most significant) bit set is
    ``-(NOT f) - 2`` = ``f - 2**bits - 1``, else ``f``; then shifted left by ``24 - bits``.

    Examples
    --------
    >>> decode_msb_fields([0x00000, 0x7FFFF, 0x40001, 0x3FFFE], bits=19).tolist()
    [0, -64, -8388608, 8388544]
    """
    f = np.asarray(fields, dtype=np.int64)
    v = np.where(f >> (bits - 1) != 0, f - (1 << bits) - 1, f)
    return v * (1 << (24 - bits))


def transmitted_delta(deltas: ArrayLike, *, bits: int) -> NDArray[np.int64]:
    """The delta a receiver decodes when a firmware-2 board sends ``deltas`` (previous − sample).

    The firmware replaces bit 0 with the sign and keeps the low ``bits`` bits, so an
    in-range delta comes back rounded towards zero to even (non-negative) or odd (negative);
    a delta beyond the field wraps, as on the board.

    Examples
    --------
    >>> transmitted_delta([0, 1, 2, -1, -2, -3], bits=19).tolist()
    [0, 0, 2, -1, -1, -3]
    """
    d = np.asarray(deltas, dtype=np.int64)
    fields = ((d & ((1 << bits) - 1)) & ~np.int64(1)) | (d < 0).astype(np.int64)
    return decode_delta_fields(fields, bits=bits)


def cycle_position(packet_id: int) -> int:
    """Position of a firmware-2 data packet in the board's 101-packet cycle (raw packet = 0).

    >>> [cycle_position(i) for i in (0, 1, 100, 101, 200)]
    [0, 1, 100, 1, 100]
    """
    if not 0 <= packet_id <= 200:
        raise ValueError("data packet ids are 0..200")
    return 0 if packet_id == 0 else (packet_id - 1) % 100 + 1


def next_packet_id(packet_id: int, *, bits: int = 19) -> int:
    """The id a firmware-2 board sends after ``packet_id``: 0 -> 101 (or 1) ... 200 -> 0."""
    pos = cycle_position(packet_id)
    if pos == CYCLE_PACKETS - 1:
        return 0
    return pos + 1 + (100 if bits == 19 else 0)


_VERSION = re.compile(r"\s*[vV]?(\d+)")


def firmware_major(version: str | int | None) -> int | None:
    """The firmware generation (2 or 3) a version says, None if it says neither.

    >>> firmware_major("3.0.2"), firmware_major(b"2.0.1".decode()), firmware_major(3)
    (3, 2, 3)
    >>> firmware_major("1.0.0") is None, firmware_major("Simblee") is None
    (True, True)
    """
    if version is None or isinstance(version, bool):
        return None
    if isinstance(version, int):
        return version if version in FIRMWARES else None
    m = _VERSION.match(str(version))
    major = int(m.group(1)) if m else None
    return major if major in FIRMWARES else None


def _fields(data: bytes, bits: int) -> list[int]:
    """The eight ``bits``-wide fields packed MSB first from byte 1."""
    body = int.from_bytes(data[1:20], "big")  # 152 bits
    mask = (1 << bits) - 1
    return [(body >> (152 - bits * (k + 1))) & mask for k in range(8)]


def _accel(data: bytes) -> int:
    return data[19] - 256 if data[19] > 127 else data[19]


def decode_packet(data: bytes, *, firmware: int = 2) -> GanglionPacket:
    """Decode one notification of a board running ``firmware`` (2 or 3).

    Data packets (ids 0-200) are 20 bytes; impedance (201-205) and ASCII message packets
    (206, 207) are as long as their text, up to 20 bytes.

    Raises
    ------
    TruncatedPacketError, PayloadLengthError, UnknownMeasurementTypeError
    ValueError
        ``firmware`` is neither 2 nor 3.
    """
    if firmware not in FIRMWARES:
        raise ValueError(f"ganglion firmware must be 2 or 3, got {firmware!r}")
    if not data:
        raise TruncatedPacketError(DEVICE, "emg", "empty notification")
    pid = data[0]
    if pid > ID_MESSAGE_STOP:
        raise UnknownMeasurementTypeError(DEVICE, "emg", f"unknown packet id {pid}")
    if pid > 200:
        if len(data) > PACKET_BYTES:
            raise PayloadLengthError(
                DEVICE, "emg", f"packet {pid} of {len(data)} bytes (at most 20)"
            )
        kind = "impedance" if pid in ID_IMPEDANCE else "message"
        return GanglionPacket(pid, kind, np.zeros((0, 4), dtype=np.int64))
    if len(data) < PACKET_BYTES:
        raise TruncatedPacketError(
            DEVICE, "emg", f"data packet of {len(data)} bytes (Ganglion data packets are 20)"
        )
    if len(data) > PACKET_BYTES:
        raise PayloadLengthError(
            DEVICE, "emg", f"data packet of {len(data)} bytes (Ganglion data packets are 20)"
        )
    if firmware == 3:
        if pid == 200:
            raise UnknownMeasurementTypeError(
                DEVICE, "emg", "packet id 200 is not sent by firmware 3 (ids 0-199)"
            )
        return _msb_packet(data, 18 if pid < 100 else 19)
    if pid == 0:
        v = [int.from_bytes(data[1 + 3 * c : 4 + 3 * c], "big", signed=True) for c in range(4)]
        return GanglionPacket(0, "raw", np.array([v], dtype=np.int64))
    w = 18 if pid <= 100 else 19
    d = decode_delta_fields(_fields(data, w), bits=w).reshape(2, 4)
    return GanglionPacket(pid, f"delta{w}", d, _accel(data) if w == 18 else None)


def _msb_packet(data: bytes, bits: int) -> GanglionPacket:
    v = decode_msb_fields(_fields(data, bits), bits=bits).reshape(2, 4)
    return GanglionPacket(data[0], f"msb{bits}", v, _accel(data) if bits == 18 else None)


def _is_data(data: bytes) -> bool:
    return len(data) == PACKET_BYTES and data[0] <= 200


def _config_firmware(config: dict[str, Any]) -> int | None:
    if "firmware" not in config:
        return None
    major = firmware_major(config["firmware"])
    if major is None:
        raise ValueError(f"ganglion: config firmware {config['firmware']!r} is neither 2.x nor 3.x")
    return major


@dataclass
class _Session:
    """Where the packets of one stretch of streaming (a connection, or a start) stand."""

    last: NDArray[np.int64] | None = None  # firmware 2: the delta chain's last sample
    prev_pos: int | None = None  # position of the last placed packet in its cycle
    shift: int = 0  # firmware 3: 1 while the first cycle after ``b`` is numbered one low
    prev_raw: int = -1  # firmware 3: the last packet's id position, to see the first wrap
    first: bool = True  # no data packet placed yet


class GanglionProfile(base.DeviceProfile):
    """OpenBCI Ganglion EMG streaming, firmware 2 and 3.

    Config: ``{"emg": {"channels": ["glute_max_r", "biceps_femoris_r", "ch3", "ch4"]},
    "firmware": "3.0.2"}`` (labels optional; the rate is fixed at 200 Hz; ``firmware``
    optional: without it the decoder takes the revision string read from the board).
    """

    name = "ganglion"
    name_prefixes = ("Ganglion", "Simblee")
    service_uuids = (SERVICE_UUID,)
    notify_uuids = (RECEIVE_UUID,)

    def start_writes(self, config: dict[str, Any]) -> list[base.GattWrite]:
        """``b``: start streaming (written without response, as brainflow writes commands)."""
        self._labels(config)
        return [base.GattWrite(SEND_UUID, CMD_START, with_response=False)]

    def stop_writes(self, config: dict[str, Any]) -> list[base.GattWrite]:
        """``s``: stop streaming."""
        self._labels(config)
        return [base.GattWrite(SEND_UUID, CMD_STOP, with_response=False)]

    def required_mtu(self, config: dict[str, Any]) -> int:
        """20-byte packets fit the default MTU."""
        self._labels(config)
        return 23

    @staticmethod
    def _labels(config: dict[str, Any]) -> tuple[str, ...]:
        unknown = set(config) - {"emg", "firmware"}
        if unknown:
            raise ValueError(
                f"ganglion: unknown config key(s) {sorted(unknown)} (known: emg, firmware)"
            )
        _config_firmware(config)
        labels = tuple(config.get("emg", {}).get("channels", [f"ch{i + 1}" for i in range(4)]))
        if len(labels) != N_CHANNELS:
            raise ValueError("ganglion: exactly 4 channel labels")
        return labels

    def decode_records(self, records: base.RawRecords, config: dict[str, Any]) -> base.DecodeResult:
        """Rebuild the samples of firmware-2 or firmware-3 streams; lost packets become gaps.

        The firmware comes from ``config["firmware"]``, else from the revision string read at
        the connection (Software Revision String 0x2A28, which the Ganglion firmware sets;
        the Firmware Revision String 0x2A26 where no 0x2A28 is served), else from the stream:
        a connection whose first data packet is a firmware-2 raw packet (id 0, ``ABCDEFG``) is
        firmware 2. Otherwise the connection's packets are not decoded and one
        :class:`UnknownFirmwareError` says why: firmware-3 values read as firmware-2 deltas
        would be garbage.

        A packet's position in the board's cycle tells how many packets were lost (firmware 2:
        including a lost raw packet, one sample; after a loss the delta chain continues from
        the last sample received until the next raw packet, ``qc.chain_breaks``). Firmware 3
        never sends sample 200 of its 201-sample cycle: the sample counter skips it.
        """
        labels = self._labels(config)
        cfg_fw = _config_firmware(config)
        res = base.DecodeResult()
        qc: dict[str, Any] = {
            "packets": 0,
            "packets_lost": 0,
            "duplicates": 0,
            "reordered": 0,
            "chain_breaks": 0,
            "undecoded_packets": 0,
        }
        res.qc["emg"] = qc
        if cfg_fw is not None:
            qc["firmware_from"] = "config"
        n_rec = len(records)
        next_id = self._next_data_ids(records)
        conn: int | None = None
        fw: int | None = None
        revisions: dict[str, str] = {}
        failed = False
        sess = _Session()
        counter = 0
        vals: list[NDArray[np.int64]] = []
        idx: list[NDArray[np.int64]] = []
        pkt_last_idx: list[int] = []
        pkt_host: list[int] = []
        pkt_conn: list[int] = []
        lost_at: list[tuple[int, str]] = []  # (sample index of first sample after, reason)
        seg = 0  # clock segment: a new one per connection and per start command
        stopped = False
        for i in range(n_rec):
            cid = int(records.conn_id[i])
            if cid != conn:
                if conn is not None:
                    lost_at.append((-1, "disconnect"))
                    seg += 1
                conn = cid
                sess, stopped, fw, revisions, failed = _Session(), False, cfg_fw, {}, False
            kind = int(records.kind[i])
            uuid = records.char_uuid[i].lower()
            data = records.payload[i]
            if kind == base.RecordKind.READ and uuid in (
                SOFTWARE_REVISION_UUID,
                FIRMWARE_REVISION_UUID,
            ):
                revisions[uuid] = bytes(data).decode("utf-8", "replace")
                continue
            if kind == base.RecordKind.WRITE and uuid == SEND_UUID:
                # a restart begins a new cycle and a new stretch of samples; a firmware-2
                # chain is kept in case the board ignores a repeated start
                if data == CMD_STOP:
                    stopped = True
                elif data == CMD_START:
                    if stopped:
                        lost_at.append((-1, "stopped"))
                    stopped = False
                    sess = _Session(last=sess.last)
                    seg += 1
                continue
            if kind != base.RecordKind.NOTIFY or uuid != RECEIVE_UUID:
                continue
            t = int(records.t_us[i])
            if failed:
                qc["undecoded_packets"] += int(_is_data(data))
                continue
            if fw is None:
                fw = cfg_fw or self._revision_firmware(revisions, qc)
            if fw is None and _is_data(data):
                if data[0] == 0 and data[13:20] == RAW_PADDING:
                    fw = 2
                    qc["firmware_from"] = "raw packet"
                else:
                    failed = True
                    qc["undecoded_packets"] += 1
                    err = UnknownFirmwareError(
                        DEVICE,
                        "emg",
                        "firmware unknown (no config firmware, no revision string naming 2.x "
                        "or 3.x) and the stream does not open with a firmware-2 raw packet: "
                        "not decoded; give the firmware, e.g. config firmware='3.0.2'",
                    )
                    res.errors.append(base.PacketError(t, RECEIVE_UUID, bytes(data), str(err)))
                    continue
            try:
                placed = self._place(data, fw or 2, sess, next_id[i], qc)
                if placed is None:
                    continue
                p, missing, skipped = placed
                if missing:
                    qc["packets_lost"] += missing
                if skipped:
                    counter += skipped
                    if missing:
                        lost_at.append((counter, "packet_loss"))
                        if p.kind.startswith("delta"):
                            qc["chain_breaks"] += 1
                new = self._samples(p, sess)
            except base.DecodeError as err:
                res.errors.append(base.PacketError(t, RECEIVE_UUID, bytes(data), str(err)))
                continue
            qc["firmware"] = fw
            if lost_at and lost_at[-1][0] == -1:
                lost_at[-1] = (counter, lost_at[-1][1])
            n = new.shape[0]
            vals.append(new)
            idx.append(np.arange(counter, counter + n, dtype=np.int64))
            counter += n
            pkt_last_idx.append(counter - 1)
            pkt_host.append(t)
            pkt_conn.append(seg)
        if not vals:
            return res
        self._finish(res, qc, labels, vals, idx, pkt_last_idx, pkt_host, pkt_conn, lost_at)
        return res

    @staticmethod
    def _next_data_ids(records: base.RawRecords) -> list[int]:
        """For each record, the id of the next data packet of its connection (-1: none)."""
        out = [-1] * len(records)
        nxt, nxt_conn = -1, None
        for i in range(len(records) - 1, -1, -1):
            cid = int(records.conn_id[i])
            if cid != nxt_conn:
                nxt, nxt_conn = -1, cid
            out[i] = nxt
            data = records.payload[i]
            if (
                int(records.kind[i]) == base.RecordKind.NOTIFY
                and records.char_uuid[i].lower() == RECEIVE_UUID
                and _is_data(data)
            ):
                nxt = data[0]
        return out

    @staticmethod
    def _revision_firmware(revisions: dict[str, str], qc: dict[str, Any]) -> int | None:
        # the Software Revision String is the one the Ganglion firmware sets (and brainflow
        # reads); what a Ganglion serves as Firmware Revision String is not published
        for uuid, label in (
            (SOFTWARE_REVISION_UUID, "software revision"),
            (FIRMWARE_REVISION_UUID, "firmware revision"),
        ):
            major = firmware_major(revisions.get(uuid))
            if major is not None:
                qc["firmware_from"] = label
                return major
        return None

    @staticmethod
    def _place(
        data: bytes, fw: int, sess: _Session, next_id: int, qc: dict[str, Any]
    ) -> tuple[GanglionPacket, int, int] | None:
        """Decode a packet and place it in its cycle: (packet, packets lost before it, samples
        to skip before it); None for packets that carry no samples or repeat/trail others."""
        if (
            fw == 3
            and sess.first
            and len(data) == PACKET_BYTES
            and (data[0] == 0xFF or (data[0] == 99 and 100 <= next_id <= 199))
        ):
            # the first cycle after ``b``: ring level 0xFF makes the first id 255 (18-bit) or
            # 99 (19-bit), and the cycle runs one id low until the ring level is reset
            p = _msb_packet(data, 18 if data[0] == 0xFF else 19)
            sess.shift, sess.prev_raw, sess.first = 1, -1, False
            qc["packets"] += 1
            sess.prev_pos = 0
            return p, 0, 0
        if fw == 3 and data[:1] == b"\xff" and len(data) == PACKET_BYTES:
            raise UnknownMeasurementTypeError(
                DEVICE, "emg", "packet id 255 other than first after a start"
            )
        p = decode_packet(data, firmware=fw)
        if p.kind in ("impedance", "message"):
            return None
        qc["packets"] += 1
        if fw == 3:
            raw = p.packet_id % 100
            if sess.shift and raw < sess.prev_raw:
                sess.shift = 0  # the ring level was reset: numbering is regular from here
            sess.prev_raw = raw
            pos = (raw + sess.shift) % FW3_CYCLE_PACKETS
            cycle = FW3_CYCLE_PACKETS
        else:
            pos = cycle_position(p.packet_id)
            cycle = CYCLE_PACKETS
        sess.first = False
        prev = sess.prev_pos
        if prev is None:
            sess.prev_pos = pos
            return p, 0, 0
        if pos == prev:
            qc["duplicates"] += 1
            return None
        missing = (pos - prev - 1) % cycle
        if missing >= cycle // 2:  # far behind: a late packet, not half a cycle lost
            qc["reordered"] += 1
            return None
        sess.prev_pos = pos
        if fw == 3:
            # two samples per lost packet, and the unsent sample 200 where the cycle wraps
            return p, missing, 2 * missing + int(prev + missing + 1 >= cycle)
        # two samples per lost packet, one if it was the raw packet (position 0 = 101)
        return p, missing, 2 * missing - int(prev + missing >= cycle)

    @staticmethod
    def _samples(p: GanglionPacket, sess: _Session) -> NDArray[np.int64]:
        if p.kind.startswith("msb"):
            return p.values
        if p.kind == "raw":
            sess.last = p.values[0]
            return p.values
        if sess.last is None:
            raise SequenceError(DEVICE, "emg", f"delta packet {p.packet_id} before any raw packet")
        s1 = sess.last - p.values[0]
        s2 = s1 - p.values[1]
        sess.last = s2
        return np.stack([s1, s2])

    @staticmethod
    def _finish(
        res: base.DecodeResult,
        qc: dict[str, Any],
        labels: tuple[str, ...],
        vals: list[NDArray[np.int64]],
        idx: list[NDArray[np.int64]],
        pkt_last_idx: list[int],
        pkt_host: list[int],
        pkt_conn: list[int],
        lost_at: list[tuple[int, str]],
    ) -> None:
        """Sample times from the sample counter, fitted per segment; gaps; the stream."""
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


PROFILE = GanglionProfile()


from glutewake.devices.ganglion_virtual import GanglionVirtualDevice  # noqa: E402  (re-exported)

__all__ = [
    "CMD_START",
    "CMD_STOP",
    "FIRMWARE_REVISION_UUID",
    "PROFILE",
    "RECEIVE_UUID",
    "SEND_UUID",
    "SERVICE_UUID",
    "SOFTWARE_REVISION_UUID",
    "UV_PER_COUNT",
    "GanglionPacket",
    "GanglionProfile",
    "GanglionVirtualDevice",
    "cycle_position",
    "decode_delta_fields",
    "decode_msb_fields",
    "decode_packet",
    "firmware_major",
    "next_packet_id",
    "transmitted_delta",
]
