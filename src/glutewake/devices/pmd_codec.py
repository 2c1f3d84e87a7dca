"""Polar Measurement Data (PMD) data frames: byte-exact decoding and encoding.

A PMD data notification is one *frame*::

    offset  size  field
    0       1     measurement type (low 6 bits; 2 ACC, 5 GYRO, 6 MAG, ...)
    1       8     timestamp, uint64 LE, ns since 2000-01-01 (device clock), of the LAST sample
    9       1     frame type: bit 7 = delta compressed, bits 0-6 = type index
    10      ...   content

Uncompressed ACC content (types 0/1/2) is consecutive signed little-endian x,y,z of 1/2/3 bytes
each, in mG. Compressed content is a reference sample (``channels`` signed little-endian values
of ``ceil(resolution/8)`` bytes) followed by blocks ``[bit width][sample count][packed deltas]``;
deltas are two's complement, packed least-significant bit first, channel-interleaved, and each
block's bytes are ``ceil(width * count * channels / 8)``. A sample is the previous sample plus
its delta (32-bit streams add with int32 wrap-around: they carry IEEE-754 bit patterns).

Units after scaling (``values``): ACC g, GYRO deg/s, MAG gauss. ``factor`` is the multiplier
the device reports in its start response (1.0 when it reports none).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum
from itertools import accumulate
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from glutewake.devices._bits import (
    min_signed_width,
    pack_fields,
    unpack_interleaved_cm,
)
from glutewake.devices.errors import (
    BitWidthError,
    BlockOverrunError,
    DecodeError,
    MtuTruncatedError,
    PayloadLengthError,
    ReferenceSampleError,
    TimestampError,
    TruncatedPacketError,
    UnknownFrameTypeError,
    UnknownMeasurementTypeError,
)

DEVICE = "polar-pmd"
#: 2000-01-01T00:00:00Z in Unix microseconds: the PMD device epoch
PMD_EPOCH_UNIX_US = 946_684_800_000_000
HEADER_BYTES = 10
#: deltas per block as Polar firmware forms them (inferred from the SDK's multi-block vector:
#: the first block holds 9 deltas after the reference sample, then blocks of 10, and adjacent
#: blocks of equal bit width are merged)
BLOCK_SAMPLES = 10
_MAX_BLOCK_COUNT = 255
_INT64_MAX = (1 << 63) - 1


class MeasurementType(IntEnum):
    """PMD measurement types (low 6 bits of the first frame byte; polar-ble-sdk
    ``PmdMeasurementType.kt``)."""

    ECG = 0
    PPG = 1
    ACC = 2
    PPI = 3
    GYRO = 5
    MAG = 6
    SKIN_TEMP = 7
    SDK_MODE = 9
    LOCATION = 10
    PRESSURE = 11
    TEMPERATURE = 12
    OFFLINE_RECORDING = 13
    OFFLINE_HR = 14


#: measurement type -> project stream name (the streams this package decodes)
STREAM_NAMES: dict[int, str] = {2: "acc", 5: "gyro", 6: "mag"}
#: stream name -> measurement type
STREAM_TYPES: dict[str, int] = {v: k for k, v in STREAM_NAMES.items()}
STREAM_UNITS: dict[str, str] = {"acc": "g", "gyro": "deg/s", "mag": "gauss"}


@dataclass(frozen=True)
class FrameLayout:
    """What a (measurement type, frame type) pair carries."""

    channels: int
    resolution_bits: int
    compressed: bool
    is_float: bool
    #: project units per (raw * factor): 1e-3 for mG/mGauss frames, 1 for frames already in g
    unit_scale: float
    #: index of a column carrying a status code rather than a measurement (MAG 0x81)
    status_channel: int | None = None


LAYOUTS: dict[tuple[int, int], FrameLayout] = {
    (2, 0x00): FrameLayout(3, 8, False, False, 1e-3),
    (2, 0x01): FrameLayout(3, 16, False, False, 1e-3),
    (2, 0x02): FrameLayout(3, 24, False, False, 1e-3),
    (2, 0x80): FrameLayout(3, 16, True, False, 1.0),
    (2, 0x81): FrameLayout(3, 16, True, False, 1e-3),
    (5, 0x80): FrameLayout(3, 16, True, False, 1.0),
    (5, 0x81): FrameLayout(3, 32, True, True, 1.0),
    (6, 0x80): FrameLayout(3, 16, True, False, 1.0),
    (6, 0x81): FrameLayout(4, 16, True, False, 1e-3, status_channel=3),
}


def stream_name(measurement_type: int) -> str:
    """Project stream name of a measurement type (``typeN`` for ones not decoded here)."""
    return STREAM_NAMES.get(measurement_type, f"type{measurement_type}")


@dataclass(frozen=True)
class PmdFrame:
    """One decoded PMD data frame.

    Attributes
    ----------
    measurement_type : int
        2 ACC, 5 GYRO, 6 MAG.
    frame_type : int
        The frame-type byte, compression bit included (0x00..0x02, 0x80, 0x81).
    timestamp_ns : int
        The frame timestamp (device clock, ns since 2000-01-01): the last sample's time.
    raw : int64 (n, channels)
        Integers after delta decoding, before scaling (32-bit float streams: the IEEE-754 bit
        patterns as unsigned integers).
    values : float64 (n, channels)
        Project units (ACC g, GYRO deg/s, MAG gauss; a status column is copied unscaled).
    timestamps_ns : int64 (n,)
        Device clock, ns since 2000-01-01, by the vendor rule.
    factor : float
        The factor applied.
    """

    measurement_type: int
    frame_type: int
    timestamp_ns: int
    raw: NDArray[np.int64]
    values: NDArray[np.float64]
    timestamps_ns: NDArray[np.int64]
    factor: float

    @property
    def compressed(self) -> bool:
        """Whether the frame was delta compressed."""
        return bool(self.frame_type & 0x80)

    @property
    def stream(self) -> str:
        """Project stream name (``acc``, ``gyro``, ``mag``)."""
        return stream_name(self.measurement_type)

    def __len__(self) -> int:
        return int(self.raw.shape[0])


# ----------------------------------------------------------------------------- header


def parse_header(data: bytes, *, att_mtu: int | None = None) -> tuple[int, int, int]:
    """Return ``(measurement_type, timestamp_ns, frame_type_byte)`` of a data frame.

    Raises
    ------
    TruncatedPacketError, MtuTruncatedError, TimestampError
    """
    if len(data) < HEADER_BYTES + 1:
        stream = stream_name(data[0] & 0x3F) if data else "data"
        err = TruncatedPacketError(
            DEVICE,
            stream,
            f"frame of {len(data)} bytes is shorter than the 10-byte header + content",
        )
        raise _mtu_wrap(err, data, att_mtu) from None
    mtype = data[0] & 0x3F
    ts = int.from_bytes(data[1:9], "little")
    if ts > _INT64_MAX:
        raise TimestampError(
            DEVICE, stream_name(mtype), f"frame timestamp {ts} ns is beyond year 2292"
        )
    return mtype, ts, data[9]


def layout_of(measurement_type: int, frame_type: int) -> FrameLayout:
    """The layout of a (measurement type, frame type) pair.

    Raises
    ------
    UnknownMeasurementTypeError, UnknownFrameTypeError
    """
    if measurement_type not in STREAM_NAMES:
        name = (
            MeasurementType(measurement_type).name
            if measurement_type in MeasurementType._value2member_map_
            else "unknown"
        )
        raise UnknownMeasurementTypeError(
            DEVICE,
            stream_name(measurement_type),
            f"measurement type {measurement_type} ({name}) not supported",
        )
    lay = LAYOUTS.get((measurement_type, frame_type))
    if lay is None:
        raise UnknownFrameTypeError(
            DEVICE, stream_name(measurement_type), f"unknown frame type 0x{frame_type:02X}"
        )
    return lay


def _mtu_wrap(err: DecodeError, data: bytes, att_mtu: int | None) -> DecodeError:
    if att_mtu is not None and len(data) == att_mtu - 3:
        return MtuTruncatedError(
            err.device,
            err.stream,
            f"notification cut at ATT MTU {att_mtu} ({len(data)} bytes): {err.problem}",
        )
    return err


# ----------------------------------------------------------------------------- delta payloads


@dataclass
class _BlockPlan:
    """Validated block structure of one or more compressed payloads in a shared buffer."""

    # lists while the scalar path appends; int64 arrays from the batch planner
    ref_offsets: Any  # byte offset of each payload's reference sample
    block_bytes: Any  # byte offset of each block's packed data
    block_width: Any
    block_count: Any
    frame_blocks: Any  # number of blocks per payload

    @classmethod
    def empty(cls) -> _BlockPlan:
        return cls([], [], [], [], [])


def _plan_payload(
    buf: bytes,
    start: int,
    end: int,
    channels: int,
    resolution_bits: int,
    plan: _BlockPlan,
    stream: str,
    base: int = 0,
) -> None:
    """Walk the block headers of payload ``buf[start:end]``, validating as it goes.

    Offsets are recorded relative to a joined buffer in which ``buf`` starts at ``base``.
    """
    ref_bytes = channels * ((resolution_bits + 7) >> 3)
    if end - start < ref_bytes:
        raise ReferenceSampleError(
            DEVICE,
            stream,
            f"reference sample needs {ref_bytes} bytes ({channels} x {resolution_bits} bit) "
            f"but the payload has {end - start}",
        )
    max_w = min(resolution_bits + 1, 32)
    pos = start + ref_bytes
    nblocks = 0
    bb, bw, bc = plan.block_bytes, plan.block_width, plan.block_count
    while pos < end:
        if pos + 2 > end:
            raise TruncatedPacketError(
                DEVICE,
                stream,
                f"delta block {nblocks + 1} header cut: 1 byte left at offset {pos - start}",
            )
        w = buf[pos]
        c = buf[pos + 1]
        if w == 0 or w > max_w:
            raise BitWidthError(
                DEVICE,
                stream,
                f"delta block {nblocks + 1} bit width {w} impossible for {resolution_bits}-bit "
                f"samples (1..{max_w})",
            )
        nb = (w * c * channels + 7) >> 3
        pos += 2
        if pos + nb > end:
            raise BlockOverrunError(
                DEVICE,
                stream,
                f"delta block {nblocks + 1} announces {c} samples x {w} bit = {nb} bytes "
                f"but {end - pos} remain",
            )
        bb.append(pos + base)
        bw.append(w)
        bc.append(c)
        nblocks += 1
        pos += nb
    plan.ref_offsets.append(start + base)
    plan.frame_blocks.append(nblocks)


def _rows_view(a: NDArray[np.int64], *, for_writing: bool = False) -> NDArray[Any]:
    """An (n, ch) array as n opaque rows: row gathers/scatters copy whole rows at once (several
    times faster than numpy's element-wise fancy indexing of 2-D arrays)."""
    if for_writing and not a.flags.c_contiguous:
        raise ValueError("rows of a non-contiguous array cannot be written through a view")
    return np.ascontiguousarray(a).view(np.dtype((np.void, a.dtype.itemsize * a.shape[1])))[:, 0]


#: payloads unpacked per pass of :func:`_execute_plan`: temporaries stay in cache and are
#: reused by the allocator (1024 measured 3x the page faults and more system time)
_FRAMES_PER_PASS = 256


def _execute_plan(
    buf: NDArray[np.uint8],
    plan: _BlockPlan,
    channels: int,
    resolution_bits: int,
    *,
    signed: bool,
    scale: float | None = None,
) -> tuple[NDArray[Any], NDArray[np.int64]]:
    """Unpack every payload of ``plan``; return (samples (rows, ch), rows per payload).

    With ``scale`` (narrower than 32-bit samples only) the samples come back as float64
    ``raw * scale`` computed pass by pass, without a day-long integer array in between.
    """
    ro = np.asarray(plan.ref_offsets, dtype=np.int64)
    nf = int(ro.size)
    bb = np.asarray(plan.block_bytes, dtype=np.int64)
    w = np.asarray(plan.block_width, dtype=np.int64)
    cnt = np.asarray(plan.block_count, dtype=np.int64)
    fb = np.asarray(plan.frame_blocks, dtype=np.int64)
    # delta rows per payload = sum of its blocks' counts
    block_frame = np.repeat(np.arange(nf, dtype=np.int64), fb)
    rows = np.bincount(block_frame, weights=cnt, minlength=nf).astype(np.int64) + 1
    if scale is not None and resolution_bits >= 32:
        raise ValueError("scaled unpacking is for samples narrower than 32 bits")
    out: NDArray[Any] = np.empty(
        (int(rows.sum()), channels), dtype=np.int64 if scale is None else np.float64
    )
    b_end = np.cumsum(fb)
    r_end = np.cumsum(rows)
    for f0 in range(0, nf, _FRAMES_PER_PASS):
        f1 = min(nf, f0 + _FRAMES_PER_PASS)
        b0 = int(b_end[f0 - 1]) if f0 else 0
        b1 = int(b_end[f1 - 1])
        r0 = int(r_end[f0 - 1]) if f0 else 0
        span = _execute_span(
            buf,
            ro[f0:f1],
            bb[b0:b1],
            w[b0:b1],
            cnt[b0:b1],
            fb[f0:f1],
            rows[f0:f1],
            channels,
            resolution_bits,
        )
        dst = out[r0 : int(r_end[f1 - 1])]
        for c in range(channels):  # one contiguous row per channel into a column
            if scale is None:
                dst[:, c] = span[c]
            else:
                np.multiply(span[c], scale, out=dst[:, c])
    if resolution_bits >= 32:
        out &= 0xFFFFFFFF
        if signed:
            out -= (out >> 31) << 32
    return out, rows


def _execute_span(
    buf: NDArray[np.uint8],
    ro: NDArray[np.int64],
    bb: NDArray[np.int64],
    w: NDArray[np.int64],
    cnt: NDArray[np.int64],
    fb: NDArray[np.int64],
    rows: NDArray[np.int64],
    channels: int,
    resolution_bits: int,
) -> NDArray[np.int64]:
    """Samples of consecutive payloads of a plan, channel-major ``(channels, rows)``.

    The bytes the payloads span are cut out first. Each payload's reference row is read as a
    1-bit "block" of one sample from the zero padding past the cut, so the deltas unpack
    straight into their rows (no scatter) and the reference rows are filled in afterwards.
    """
    nf = ro.size
    nbytes = (resolution_bits + 7) >> 3
    ends = bb + ((w * cnt * channels + 7) >> 3)
    lo = int(min(ro.min(), bb.min())) if bb.size else int(ro.min())
    hi = int(max(ro.max() + channels * nbytes, ends.max() if bb.size else 0))
    part = buf[lo:hi]
    ro = ro - lo
    # reference samples, all payloads at once
    idx = ro[:, None] + np.arange(channels * nbytes, dtype=np.int64)[None, :]
    rb = part[idx].reshape(nf, channels, nbytes).astype(np.int64)
    ref = np.zeros((nf, channels), dtype=np.int64)
    for k in range(nbytes):
        ref |= rb[:, :, k] << (8 * k)
    sbit = 8 * nbytes
    ref = ref - (((ref >> (sbit - 1)) & 1) << sbit)

    # blocks with each payload's pseudo block (its reference row) in front
    nb_all = bb.size + nf
    pseudo = np.cumsum(fb) - fb + np.arange(nf, dtype=np.int64)
    real = np.ones(nb_all, dtype=bool)
    real[pseudo] = False
    a_bytes = np.full(nb_all, part.size, dtype=np.int64)  # the zero padding
    a_w = np.ones(nb_all, dtype=np.int64)
    a_cnt = np.ones(nb_all, dtype=np.int64)
    a_bytes[real] = bb - lo
    a_w[real] = w
    a_cnt[real] = cnt
    total = int(rows.sum())
    # sample i of block b starts at bit 8 * bytes[b] + (i - first[b]) * w[b] * channels
    first = np.cumsum(a_cnt) - a_cnt
    unit = a_w * channels
    bit_start = np.arange(total, dtype=np.int64)
    bit_start *= np.repeat(unit, a_cnt)
    bit_start += np.repeat(a_bytes * 8 - first * unit, a_cnt)
    d = unpack_interleaved_cm(part, bit_start, np.repeat(a_w, a_cnt), channels)
    row_start = np.cumsum(rows) - rows
    # one running sum over all payloads: each payload's first row restarts it at its reference
    # (its reference minus the previous payload's last sample); reference rows are 0 so far
    last = ref.T + np.add.reduceat(d, row_start, axis=1)  # each payload's last sample
    d[:, row_start] = ref.T
    d[:, row_start[1:]] -= last[:, :-1]
    return np.cumsum(d, axis=1, out=d)


def decode_delta_payload(
    content: bytes,
    *,
    channels: int,
    resolution_bits: int,
    signed: bool | None = None,
    stream: str = "data",
) -> NDArray[np.int64]:
    """Decode a compressed PMD payload (reference sample + delta blocks) into integers.

    Parameters
    ----------
    content : bytes
        Frame content after the 10-byte header.
    channels : int
        Values per sample.
    resolution_bits : int
        Width of the reference sample values (8, 16, 24 or 32).
    signed : bool or None
        32-bit payloads wrap modulo 2**32; by default (None) they are returned as unsigned
        bit patterns (every 32-bit PMD stream carries IEEE-754 floats); ``True`` returns int32.
        Narrower payloads are always signed.
    stream : str
        Stream name used in error messages.

    Returns
    -------
    int64 array (n, channels), reference sample first.

    Raises
    ------
    ReferenceSampleError, TruncatedPacketError, BitWidthError, BlockOverrunError

    Examples
    --------
    >>> decode_delta_payload(bytes.fromhex("F1FF1400F00306017B0F08"), channels=3,
    ...                      resolution_bits=16).tolist()
    [[-15, 20, 1008], [-20, 17, 1008]]
    """
    _check_shape(channels, resolution_bits, stream)
    plan = _BlockPlan.empty()
    _plan_payload(content, 0, len(content), channels, resolution_bits, plan, stream)
    buf = np.frombuffer(content, dtype=np.uint8)
    sgn = (resolution_bits < 32) if signed is None else signed
    out, _ = _execute_plan(buf, plan, channels, resolution_bits, signed=sgn or resolution_bits < 32)
    return out


def _check_shape(channels: int, resolution_bits: int, stream: str) -> None:
    if not 1 <= channels <= 16:
        raise ValueError(f"{DEVICE} {stream}: channels must be 1..16, got {channels}")
    if resolution_bits not in (8, 16, 24, 32):
        raise ValueError(
            f"{DEVICE} {stream}: resolution_bits must be 8/16/24/32, got {resolution_bits}"
        )


#: rows per pass of the whole-recording helpers: temporaries stay in cache, not in fresh pages
_ROWS_PER_PASS = 1 << 16


#: two's-complement width of each magnitude below 2**16 (the deltas of <= 16-bit streams)
_WIDTH_OF = (np.frexp(np.arange(1 << 16, dtype=np.float64))[1] + 1).astype(np.uint8)


def _delta_widths(raw: NDArray[Any], resolution_bits: int, dtype: Any = np.int64) -> NDArray[Any]:
    """Bit width each delta (sample i minus i-1, i >= 1) needs, max over channels."""
    n = raw.shape[0] - 1
    out = np.zeros(max(n, 0), dtype=dtype)
    work = np.int32 if resolution_bits <= 24 else np.int64  # deltas of <= 24-bit samples
    for i in range(0, n, _ROWS_PER_PASS):
        j = min(n, i + _ROWS_PER_PASS)
        d = raw[i + 1 : j + 1].astype(work) - raw[i:j]
        if resolution_bits >= 32:
            d = ((d + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)
        # the width grows with the magnitude (~v for negatives), so take the max over channels
        # first: one bit length per sample instead of one per value
        np.bitwise_xor(d, d >> (8 * d.itemsize - 1), out=d)
        m = d[:, 0].copy()
        for c in range(1, d.shape[1]):
            np.maximum(m, d[:, c], out=m)
        if m.size and int(m.max()) < _WIDTH_OF.size:
            out[i:j] = _WIDTH_OF[m]
        else:
            out[i:j] = min_signed_width(m)
    return out


def _chunk_ids(n_deltas: int) -> NDArray[np.int64]:
    """Chunk index of each delta: deltas 1..9 form chunk 0, then chunks of BLOCK_SAMPLES."""
    return (np.arange(1, n_deltas + 1, dtype=np.int64)) // BLOCK_SAMPLES


def plan_blocks(widths: NDArray[np.int64]) -> list[tuple[int, int]]:
    """Device block policy: ``(bit width, count)`` blocks for the given per-delta widths.

    Deltas are grouped in chunks (9 after the reference, then 10), each chunk takes the smallest
    width that holds all its deltas, and adjacent chunks of equal width are merged up to 255
    samples.
    """
    n = int(widths.shape[0])
    if n == 0:
        return []
    ids = _chunk_ids(n)
    starts = np.flatnonzero(np.concatenate([[True], ids[1:] != ids[:-1]]))
    cw = np.maximum.reduceat(widths, starts)
    cc = np.diff(np.concatenate([starts, [n]]))
    blocks: list[tuple[int, int]] = []
    for w, c in zip(cw.tolist(), cc.tolist(), strict=True):
        if blocks and blocks[-1][0] == w and blocks[-1][1] + c <= _MAX_BLOCK_COUNT:
            blocks[-1] = (w, blocks[-1][1] + c)
        else:
            blocks.append((w, c))
    return blocks


def encode_delta_payload(raw: ArrayLike, *, resolution_bits: int = 16) -> bytes:
    """Encode samples as a compressed PMD payload, choosing block bit widths as the device does.

    Parameters
    ----------
    raw : int array (n, channels), n >= 1
        Samples (32-bit: bit patterns, signed or unsigned).
    resolution_bits : int
        Reference sample width.

    Returns
    -------
    bytes: the frame content (without the 10-byte header).

    Examples
    --------
    >>> encode_delta_payload([[-15, 20, 1008], [-20, 17, 1008]]).hex()
    'f1ff1400f0030401db00'
    """
    r = np.asarray(raw, dtype=np.int64)
    if r.ndim != 2 or r.shape[0] < 1:
        raise ValueError("raw must be (n >= 1, channels)")
    ch = r.shape[1]
    _check_shape(ch, resolution_bits, "data")
    lo, hi = -(1 << (resolution_bits - 1)), (1 << (resolution_bits - 1)) - 1
    if resolution_bits >= 32:
        r = ((r + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)
    elif r.min() < lo or r.max() > hi:
        raise ValueError(f"samples exceed the {resolution_bits}-bit range [{lo}, {hi}]")
    return _encode_delta_payload(r, resolution_bits, _delta_widths(r, resolution_bits))


def _encode_delta_payload(
    r: NDArray[np.int64], resolution_bits: int, widths: NDArray[np.int64]
) -> bytes:
    """Encode validated samples given each delta's width; one bit-packing pass for the payload."""
    ch = r.shape[1]
    d = np.diff(r, axis=0)
    if resolution_bits >= 32:
        d = ((d + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)
    ref_w = 8 * ((resolution_bits + 7) >> 3)
    vals: list[NDArray[np.int64]] = [r[0]]
    wids: list[NDArray[np.int64]] = [np.full(ch, ref_w, dtype=np.int64)]
    i = 0
    for w, c in plan_blocks(widths):
        blk = d[i : i + c].reshape(-1)
        pad = -(w * blk.size) % 8  # every block starts on a byte boundary
        vals.append(np.concatenate([[w, c], blk, [0] * (pad > 0)]).astype(np.int64))
        wids.append(
            np.concatenate([[8, 8], np.full(blk.size, w), [pad] * (pad > 0)]).astype(np.int64)
        )
        i += c
    return pack_fields(np.concatenate(vals), np.concatenate(wids), msb_first=False)


def encode_delta_payloads(
    raw: NDArray[np.int64],
    starts: NDArray[np.int64],
    counts: NDArray[np.int64],
    resolution_bits: int,
    widths: NDArray[np.int64] | None = None,
) -> list[bytes]:
    """Encode many payloads at once: payload f holds ``raw[starts[f] : starts[f] + counts[f]]``.

    Byte-identical to :func:`encode_delta_payload` on each slice (same block policy), with one
    vectorized packing pass for all payloads; simulators use it to render long recordings.

    Parameters
    ----------
    raw : int64 (n, channels)
        Validated samples (within the resolution's range; 32-bit: any bit patterns).
    starts, counts : int64 (frames,)
        First sample and number of samples (>= 1) of each payload.
    resolution_bits : int
        Reference sample width.
    widths : int64 (n,) or None
        ``widths[i]``: bits delta ``raw[i] - raw[i - 1]`` needs (``widths[0]`` unused);
        computed when None.
    """
    buf, off, size = _pack_payloads(raw, starts, counts, resolution_bits, widths, None)
    return [buf[o : o + s] for o, s in zip(off.tolist(), size.tolist(), strict=True)]


def encode_delta_frames(
    raw: NDArray[np.int64],
    starts: NDArray[np.int64],
    counts: NDArray[np.int64],
    resolution_bits: int,
    widths: NDArray[np.integer[Any]] | None,
    *,
    measurement_type: int,
    frame_type: int,
    timestamp_ns: NDArray[np.int64],
) -> list[bytes]:
    """Whole compressed data frames (10-byte header + payload) for many sample ranges at once.

    Frame f is ``encode_frame(measurement_type, frame_type, raw[starts[f]:starts[f]+counts[f]],
    timestamp_ns=timestamp_ns[f])`` byte for byte; headers and payloads are laid out in one
    buffer, so a day of frames costs a few numpy passes and one slice per frame.
    """
    ts = np.asarray(timestamp_ns, dtype=np.int64)
    if ts.size and (ts.min() < 0):
        raise ValueError("timestamp_ns must be >= 0")
    head = np.empty((ts.size, HEADER_BYTES), dtype=np.uint8)
    head[:, 0] = measurement_type
    head[:, 1:9] = ts.astype("<u8").view(np.uint8).reshape(-1, 8)
    head[:, 9] = frame_type
    buf, off, size = _pack_payloads(raw, starts, counts, resolution_bits, widths, head)
    h = HEADER_BYTES
    return [buf[o - h : o + s] for o, s in zip(off.tolist(), size.tolist(), strict=True)]


def _pack_payloads(
    raw: NDArray[np.int64],
    starts: NDArray[np.int64],
    counts: NDArray[np.int64],
    resolution_bits: int,
    widths: NDArray[np.integer[Any]] | None,
    head: NDArray[np.uint8] | None,
) -> tuple[bytes, NDArray[np.int64], NDArray[np.int64]]:
    """Lay out payloads (each optionally preceded by its ``head`` row) in one byte buffer.

    Returns the buffer and each payload's offset and size in it. Block headers and reference
    samples are byte-aligned and written as bytes; the deltas are packed as units (a sample's
    channels together when they fit 64 bits) OR-ed into little-endian 64-bit words, which is
    the least-significant-bit-first bit stream the device sends.
    """
    st = np.asarray(starts, dtype=np.int64)
    ct = np.asarray(counts, dtype=np.int64)
    nf = st.size
    if nf == 0:
        return b"", np.zeros(0, np.int64), np.zeros(0, np.int64)
    # work on the span the payloads cover only (callers pass whole recordings)
    lo, hi = int(st.min()), int((st + ct).max())
    r = np.asarray(raw[lo:hi], dtype=np.int64)
    st = st - lo
    ch = r.shape[1]
    if resolution_bits >= 32:
        r = ((r + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)
    if widths is None:
        w_span = np.zeros(r.shape[0], dtype=np.int64)
        w_span[1:] = _delta_widths(r, resolution_bits)
    else:
        w_span = np.asarray(widths[lo:hi])
    d = np.zeros_like(r)
    np.subtract(r[1:], r[:-1], out=d[1:])
    if resolution_bits >= 32:
        d = ((d + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)
    # deltas of every frame (sample indices a+1 .. a+n-1), frame-major
    nd = ct - 1
    n_deltas = int(nd.sum())
    d_first = np.cumsum(nd) - nd
    if nf > 1 and np.array_equal(st[1:], st[:-1] + ct[:-1]) and st[0] == 0:
        # frames one after the other (a rendered recording): every row but the frames' first
        keep = np.ones(r.shape[0], dtype=bool)
        keep[st] = False
        dv, wd = _rows_view(d)[keep].view(np.int64).reshape(-1, ch), w_span[keep]
    else:
        sample = np.repeat(st, nd) + np.arange(1, n_deltas + 1) - np.repeat(d_first, nd)
        dv, wd = _rows_view(d)[sample].view(np.int64).reshape(-1, ch), w_span[sample]
    # chunks: 9 deltas after the reference, then 10 (see BLOCK_SAMPLES), per frame
    k_f = np.where(nd > 0, (nd + BLOCK_SAMPLES) // BLOCK_SAMPLES, 0)
    c_f = np.repeat(np.arange(nf, dtype=np.int64), k_f)
    c_k = np.arange(c_f.size, dtype=np.int64) - np.repeat(np.cumsum(k_f) - k_f, k_f)
    c_base = d_first[c_f]
    c_start = c_base + np.maximum(BLOCK_SAMPLES * c_k - 1, 0)
    c_n = np.minimum(c_base + BLOCK_SAMPLES * c_k + BLOCK_SAMPLES - 1, c_base + nd[c_f]) - c_start
    c_w = (np.maximum.reduceat(wd, c_start) if c_start.size else c_start).astype(np.int64)
    # merge adjacent chunks of equal width within a frame, greedily up to 255 samples: runs of
    # equal width are one block unless longer than 255 (then split greedily, rare: flat signal)
    run_start = np.ones(c_start.size, dtype=bool)
    run_start[1:] = (c_f[1:] != c_f[:-1]) | (c_w[1:] != c_w[:-1])
    rs = np.flatnonzero(run_start)
    run_total = np.add.reduceat(c_n, rs) if rs.size else rs
    blk_start = run_start.copy()
    long_runs = np.flatnonzero(run_total > _MAX_BLOCK_COUNT)
    if long_runs.size:
        run_end = np.append(rs[1:], c_start.size)
        cn = c_n.tolist()
        for k in long_runs.tolist():
            acc = 0
            for j in range(int(rs[k]), int(run_end[k])):
                if acc and acc + cn[j] > _MAX_BLOCK_COUNT:
                    blk_start[j] = True
                    acc = 0
                acc += cn[j]
    bs = np.flatnonzero(blk_start)
    bw = c_w[bs]
    bn = np.add.reduceat(c_n, bs) if bs.size else bs
    bfr = c_f[bs]
    # byte layout: per frame [head] [reference] then per block [width][count][deltas]
    hb = 0 if head is None else head.shape[1]
    rb = (resolution_bits + 7) >> 3
    blk_bytes = 2 + ((bw * bn * ch + 7) >> 3)
    size = rb * ch + np.bincount(bfr, weights=blk_bytes, minlength=nf).astype(np.int64)
    frame_off = np.cumsum(size + hb) - size  # payload offsets (after each frame's head)
    total = int(frame_off[-1] + size[-1])
    out = np.zeros(total + 16, dtype=np.uint8)
    if head is not None:
        out[(frame_off - hb)[:, None] + np.arange(hb)] = head
    ref = r[st]
    shifts = 8 * np.arange(rb, dtype=np.int64)
    out[frame_off[:, None] + np.arange(ch * rb)] = (
        ((ref[:, :, None] >> shifts) & 0xFF).reshape(nf, ch * rb).astype(np.uint8)
    )
    cum_b = np.cumsum(blk_bytes) - blk_bytes
    nblk_f = np.bincount(bfr, minlength=nf)
    b_first = np.cumsum(nblk_f) - nblk_f
    blk_off = frame_off[bfr] + rb * ch + cum_b - cum_b[b_first[bfr]]
    out[blk_off] = bw
    out[blk_off + 1] = bn
    if n_deltas:
        max_w = int(bw.max())
        per_sample = ch * max_w <= 64
        unit_w = bw * ch if per_sample else bw
        units = bn if per_sample else bn * ch
        wv = np.repeat(bw, bn)
        dm = dv & ((np.int64(1) << wv) - 1)[:, None]  # two's complement fields, w bits each
        if per_sample:
            val = dm[:, 0].copy()
            for c in range(1, ch):
                col = dm[:, c]
                col <<= c * wv
                val |= col
        else:
            val = dm.reshape(-1)
        val_u = val.view(np.uint64)
        u_first = np.cumsum(units) - units
        uw = np.repeat(unit_w, units)
        bit = np.repeat(8 * (blk_off + 2) - u_first * unit_w, units)
        bit += np.arange(val.size, dtype=np.int64) * uw
        q = bit >> 6
        o = bit & 63
        low = val_u << o.view(np.uint64)
        words = np.zeros(total // 8 + 3, dtype=np.uint64)
        grp = np.flatnonzero(np.concatenate([[True], q[1:] != q[:-1]]))
        words[q[grp]] = np.add.reduceat(low, grp)  # fields of a word have disjoint bits
        spill = np.flatnonzero(o + uw > 64)  # at most one unit crosses each word boundary
        words[q[spill] + 1] += val_u[spill] >> (64 - o[spill]).view(np.uint64)
        out[: total + 16] |= words.view(np.uint8)[: total + 16]
    return out[:total].tobytes(), frame_off, size


def delta_payload_size(widths: NDArray[np.int64], channels: int, resolution_bits: int) -> int:
    """Bytes of a compressed payload whose deltas need ``widths`` (see :func:`plan_blocks`)."""
    size = channels * ((resolution_bits + 7) >> 3)
    for w, c in plan_blocks(widths):
        size += 2 + ((w * c * channels + 7) >> 3)
    return size


def max_samples_fitting(
    widths: NDArray[np.int64], channels: int, resolution_bits: int, budget_bytes: int
) -> int:
    """Most samples (reference included) of a pending buffer whose compressed payload fits.

    ``widths[i]`` is the width delta ``i + 1`` needs. Used by simulators to fill a frame to the MTU.
    """
    ref = channels * ((resolution_bits + 7) >> 3)
    if budget_bytes < ref:
        return 0
    n = int(widths.shape[0])
    best = 1
    closed = ref
    cur_w, cur_c = 0, 0
    pos = 0
    while pos < n:
        end = min(n, BLOCK_SAMPLES - 1 if pos == 0 else pos + BLOCK_SAMPLES)
        # try the whole chunk, then shorter prefixes of it
        cm = np.maximum.accumulate(widths[pos:end]).tolist()
        fitted = 0
        for r in range(end - pos, 0, -1):
            wk = int(cm[r - 1])
            if cur_c and wk == cur_w and cur_c + r <= _MAX_BLOCK_COUNT:
                size = closed + 2 + ((cur_w * (cur_c + r) * channels + 7) >> 3)
            else:
                size = closed + (2 + ((cur_w * cur_c * channels + 7) >> 3) if cur_c else 0)
                size += 2 + ((wk * r * channels + 7) >> 3)
            if size <= budget_bytes:
                fitted = r
                break
        if fitted == 0:
            break
        best = 1 + pos + fitted
        if fitted < end - pos:
            break
        wk = int(cm[-1])
        if cur_c and wk == cur_w and cur_c + fitted <= _MAX_BLOCK_COUNT:
            cur_c += fitted
        else:
            if cur_c:
                closed += 2 + ((cur_w * cur_c * channels + 7) >> 3)
            cur_w, cur_c = wk, fitted
        pos = end
    return best


class FramePlanner:
    """Cuts a known signal into frames filled to a byte budget, as the device does.

    Each frame holds the most samples whose compressed payload fits (exactly the count
    :func:`max_samples_fitting` gives for the frame's pending samples). The per-delta widths are
    reduced once to sliding maxima over the 9- and 10-delta chunks of the block policy and kept as
    bytes, so cutting a frame costs one small integer step per chunk, not numpy calls.

    Parameters
    ----------
    widths : int array (n,)
        ``widths[i]``: bits delta ``raw[i] - raw[i - 1]`` needs (``widths[0]`` unused).
    channels, resolution_bits : int
        Sample layout.

    Examples
    --------
    >>> FramePlanner(np.full(100, 3), 3, 16).plan(0, 40, stop=100)
    ([0, 29, 58], [29, 29, 29])
    """

    def __init__(
        self, widths: NDArray[np.integer[Any]], channels: int, resolution_bits: int
    ) -> None:
        w = np.asarray(widths)
        if w.size and (int(w.min()) < 0 or int(w.max()) > 64):
            raise ValueError("delta widths must be 0..64 bits")
        self.widths = w
        self.channels = int(channels)
        self.resolution_bits = int(resolution_bits)
        self.total = int(w.size)
        u = np.concatenate([w.astype(np.uint8), np.zeros(16, dtype=np.uint8)])
        m2 = np.maximum(u[:-1], u[1:])
        m4 = np.maximum(m2[:-2], m2[2:])
        m8 = np.maximum(m4[:-4], m4[4:])
        self._w = u.tobytes()
        self._m9 = np.maximum(m8[:-1], m8[1:]).tobytes()  # max(w[i : i + 9])
        self._m10 = np.maximum(m8[:-2], m8[2:]).tobytes()  # max(w[i : i + 10])

    def plan(
        self, first: int, budget_bytes: int, *, stop: int, max_frames: int | None = None
    ) -> tuple[list[int], list[int]]:
        """Frames from sample ``first`` on: lists of first sample and sample count.

        A frame is cut only when the sample after it exists and does not fit; planning ends
        before a frame whose next sample is ``stop`` or later (``stop <= len(widths)``), or
        after ``max_frames`` frames.

        Raises
        ------
        RuntimeError
            If not even one sample fits the budget.
        """
        ch = self.channels
        cap = (budget_bytes * 8) // ch + 1  # no frame holds more deltas than 1 bit each
        fast_end = self.total - cap - 24  # frames starting earlier never reach the signal's end
        stop = min(stop, self.total)
        limit = max_frames if max_frames is not None else self.total
        starts: list[int] = []
        counts: list[int] = []
        a = int(first)
        while len(starts) < limit and stop - a >= 2:
            if a < fast_end:
                n = self._fit(a, budget_bytes)
            else:
                w = self.widths[a + 1 : min(self.total, a + 1 + cap)]
                n = max_samples_fitting(w, ch, self.resolution_bits, budget_bytes)
            if n < 1:
                raise RuntimeError("frame budget too small for one sample")
            if a + n >= stop:
                break
            starts.append(a)
            counts.append(n)
            a += n
        return starts, counts

    def _fit(self, a: int, budget: int) -> int:
        """:func:`max_samples_fitting` for the frame starting at ``a`` (signal end not in reach)."""
        ch = self.channels
        ref = ch * ((self.resolution_bits + 7) >> 3)
        if budget < ref:
            return 0
        wk = self._m9[a + 1]  # chunk 0: deltas 1..9
        if ref + 2 + ((wk * 9 * ch + 7) >> 3) > budget:
            return self._prefix(a, a + 1, 9, ref, 0, 0, budget)
        m10 = self._m10
        closed, cur_w, cur_c = ref, wk, 9
        s = a + 10  # first sample of the next chunk (deltas 10k .. 10k + 9)
        while True:
            wk = m10[s]
            if wk == cur_w and cur_c <= _MAX_BLOCK_COUNT - BLOCK_SAMPLES:
                if closed + 2 + ((cur_w * (cur_c + 10) * ch + 7) >> 3) > budget:
                    return self._prefix(a, s, 10, closed, cur_w, cur_c, budget)
                cur_c += 10
            else:
                shut = closed + 2 + ((cur_w * cur_c * ch + 7) >> 3)
                if shut + 2 + ((wk * 10 * ch + 7) >> 3) > budget:
                    return self._prefix(a, s, 10, closed, cur_w, cur_c, budget)
                closed, cur_w, cur_c = shut, wk, 10
            s += 10

    def _prefix(
        self, a: int, s: int, full: int, closed: int, cur_w: int, cur_c: int, budget: int
    ) -> int:
        """The whole chunk at ``s`` does not fit: the longest prefix of it that does."""
        ch = self.channels
        cm = list(accumulate(self._w[s : s + full - 1], max))  # widest delta of each prefix
        for r in range(full - 1, 0, -1):
            wk = cm[r - 1]
            if cur_c and wk == cur_w and cur_c + r <= _MAX_BLOCK_COUNT:
                size = closed + 2 + ((cur_w * (cur_c + r) * ch + 7) >> 3)
            else:
                size = closed + (2 + ((cur_w * cur_c * ch + 7) >> 3) if cur_c else 0)
                size += 2 + ((wk * r * ch + 7) >> 3)
            if size <= budget:
                return s - a + r
        return s - a


def min_frame_mtu(channels: int, resolution_bits: int) -> int:
    """ATT MTU below which a compressed frame cannot hold its reference and first delta block.

    The first block is 9 deltas; at the widest width a ``resolution_bits`` stream can need
    (``resolution_bits + 1``) that is the largest first frame the device may have to send.

    >>> min_frame_mtu(3, 16)
    79
    """
    ref = channels * ((resolution_bits + 7) >> 3)
    w = min(resolution_bits + 1, 32)
    return 3 + HEADER_BYTES + ref + 2 + (w * (BLOCK_SAMPLES - 1) * channels + 7) // 8


# ----------------------------------------------------------------------------- timestamps


def _round_half_even_div(num: NDArray[np.int64], den: int) -> NDArray[np.int64]:
    q, r = np.divmod(num, den)
    twice = 2 * r
    up = (twice > den) | ((twice == den) & ((q & 1) == 1))
    return q + up.astype(np.int64)


def sample_timestamps(
    frame_timestamp_ns: int,
    n_samples: int,
    *,
    previous_timestamp_ns: int | None,
    sample_rate_hz: float,
    stream: str = "data",
) -> NDArray[np.int64]:
    """Per-sample device timestamps by the vendor rule.

    The frame timestamp belongs to the last sample. With a previous frame timestamp of the same
    stream (not None and not 0, as the SDK treats 0 as "none"), the samples are spread evenly
    over ``(previous, frame]``: ``t_i = previous + (i + 1) * (frame - previous) / n``. Without
    one (first frame after connect/start), the spacing is ``1e9 / sample_rate_hz`` backwards from
    the frame timestamp. Values are rounded half to even (the Kotlin SDK's rule), computed with
    exact integers.

    Raises
    ------
    TimestampError
        If neither a previous timestamp (earlier than this frame's) nor a sample rate is known
        for a frame of several samples.

    Examples
    --------
    >>> sample_timestamps(101, 2, previous_timestamp_ns=100, sample_rate_hz=0).tolist()
    [100, 101]
    """
    if n_samples <= 0:
        return np.zeros(0, dtype=np.int64)
    ts = int(frame_timestamp_ns)
    prev = previous_timestamp_ns
    if prev is not None and prev != 0 and 0 < prev < ts:
        diff = ts - prev
        if diff <= _INT64_MAX // n_samples:
            k = np.arange(1, n_samples + 1, dtype=np.int64)
            out = prev + _round_half_even_div(k * diff, n_samples)
        else:  # absurd timestamps (tests use 2**63 - 1): exact Python integers
            out = np.array(
                [prev + _py_round_half_even(k * diff, n_samples) for k in range(1, n_samples + 1)],
                dtype=np.int64,
            )
        out[-1] = ts
        return out
    if n_samples == 1:
        return np.array([ts], dtype=np.int64)
    if not sample_rate_hz or sample_rate_hz <= 0:
        why = (
            "no previous frame timestamp"
            if not prev
            else f"previous timestamp {prev} >= frame {ts}"
        )
        raise TimestampError(
            DEVICE, stream, f"{why} and no sample rate: cannot time {n_samples} samples"
        )
    k = np.arange(n_samples - 1, -1, -1, dtype=np.int64)
    if float(sample_rate_hz).is_integer():
        back = _round_half_even_div(k * 1_000_000_000, int(sample_rate_hz))
    else:
        back = np.rint(k * (1e9 / sample_rate_hz)).astype(np.int64)
    out = ts - back
    if out[0] < 0:
        raise TimestampError(DEVICE, stream, f"frame timestamp {ts} ns precedes the device epoch")
    return out


def _py_round_half_even(num: int, den: int) -> int:
    q, r = divmod(num, den)
    if 2 * r > den or (2 * r == den and q & 1):
        q += 1
    return q


# ----------------------------------------------------------------------------- frames


def _raw_frame_samples(content: bytes, lay: FrameLayout, stream: str) -> NDArray[np.int64]:
    nbytes = lay.resolution_bits // 8
    step = nbytes * lay.channels
    if len(content) == 0 or len(content) % step:
        raise PayloadLengthError(
            DEVICE,
            stream,
            f"{len(content)} content bytes is not a whole number of {step}-byte samples",
        )
    if nbytes == 1:
        return np.frombuffer(content, dtype=np.int8).astype(np.int64).reshape(-1, lay.channels)
    if nbytes == 2:
        return np.frombuffer(content, dtype="<i2").astype(np.int64).reshape(-1, lay.channels)
    b = np.frombuffer(content, dtype=np.uint8).reshape(-1, 3).astype(np.int64)
    v = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
    v = v - ((v >> 23) << 24)
    return v.reshape(-1, lay.channels)


def scale_raw(raw: NDArray[np.int64], lay: FrameLayout, factor: float) -> NDArray[np.float64]:
    """Raw integers to project units for a frame layout."""
    if lay.is_float:
        f32 = (raw & 0xFFFFFFFF).astype(np.uint32).view(np.float32)
        with np.errstate(invalid="ignore", over="ignore"):  # NaN/inf patterns pass through
            vals = f32.astype(np.float64) * factor
    else:
        vals = np.multiply(raw, factor * lay.unit_scale, dtype=np.float64)
    if lay.status_channel is not None and raw.shape[1] > lay.status_channel:
        vals[:, lay.status_channel] = raw[:, lay.status_channel]
    return vals


def decode_frame(
    data: bytes,
    *,
    channels: int | None = None,
    resolution_bits: int | None = None,
    factor: float = 1.0,
    sample_rate_hz: float = 0.0,
    previous_timestamp_ns: int | None = None,
    att_mtu: int | None = None,
) -> PmdFrame:
    """Decode one PMD data frame.

    Parameters
    ----------
    data : bytes
        The notification as received on the PMD data characteristic.
    channels, resolution_bits : int or None
        Compressed-frame shape; None takes the vendor layout of the frame's measurement and frame
        type (ACC/GYRO/MAG 0x80 and ACC 0x81: 3 x 16 bit; GYRO 0x81: 3 x 32-bit float;
        MAG 0x81: 4 x 16 bit, the 4th the calibration status). Uncompressed ACC frame types fix
        their own width (type 0: 8, 1: 16, 2: 24 bit).
    factor : float
        Scale factor from the start response.
    sample_rate_hz : float
        Nominal rate, used to time a frame that has no previous frame.
    previous_timestamp_ns : int or None
        Timestamp of the previous frame of the same stream on this connection (0 = none).
    att_mtu : int or None
        The link's ATT MTU; a frame of exactly ``att_mtu - 3`` bytes that is cut short raises
        :class:`MtuTruncatedError`.

    Returns
    -------
    PmdFrame

    Raises
    ------
    DecodeError
        A subclass naming the device, stream and problem.

    Examples
    --------
    >>> fr = decode_frame(bytes.fromhex("02650000000000000081F1FF1400F00306017B0F08"),
    ...                   previous_timestamp_ns=100)
    >>> fr.raw.tolist(), fr.timestamps_ns.tolist()
    ([[-15, 20, 1008], [-20, 17, 1008]], [100, 101])
    """
    mtype, ts, ftype = parse_header(data, att_mtu=att_mtu)
    lay = layout_of(mtype, ftype)
    stream = stream_name(mtype)
    content = data[HEADER_BYTES:]
    try:
        if lay.compressed:
            ch = lay.channels if channels is None else channels
            res = lay.resolution_bits if resolution_bits is None else resolution_bits
            _check_shape(ch, res, stream)
            raw = decode_delta_payload(content, channels=ch, resolution_bits=res, stream=stream)
            if lay.is_float and res != 32:
                lay = FrameLayout(ch, res, True, False, 1.0)
        else:
            raw = _raw_frame_samples(content, lay, stream)
    except DecodeError as err:
        raise _mtu_wrap(err, data, att_mtu) from None
    values = scale_raw(raw, lay, factor)
    tss = sample_timestamps(
        ts,
        raw.shape[0],
        previous_timestamp_ns=previous_timestamp_ns,
        sample_rate_hz=sample_rate_hz,
        stream=stream,
    )
    return PmdFrame(mtype, ftype, ts, raw, values, tss, float(factor))


#: frames already laid out in one buffer: (bytes ending in >= 16 zero bytes, starts, lengths)
JoinedFrames = tuple[NDArray[np.uint8], NDArray[np.int64], NDArray[np.int64]]


@dataclass(frozen=True)
class FrameBatch:
    """Many frames of one stream decoded together (see :func:`decode_frames`).

    ``raw``/``values`` stack every frame's samples; ``frame_rows`` holds each frame's sample
    count and ``frame_timestamp_ns`` its timestamp; timestamps are not derived here because the
    vendor rule depends on which frames are consecutive on a connection (the caller knows).
    """

    raw: NDArray[np.int64]
    values: NDArray[np.float64]
    frame_rows: NDArray[np.int64]
    frame_timestamp_ns: NDArray[np.int64]
    frame_index: NDArray[np.int64]  # index into the input of each decoded frame
    errors: list[tuple[int, DecodeError]]


def _explain(
    fr: bytes, measurement_type: int, frame_type: int, ch: int, res: int, att_mtu: int | None
) -> DecodeError:
    """The specific error of a frame the batch planner rejected (scalar re-check)."""
    stream = stream_name(measurement_type)
    try:
        m, _, ft = parse_header(fr, att_mtu=att_mtu)
        if (m, ft) != (measurement_type, frame_type):
            layout_of(m, ft)
            raise UnknownFrameTypeError(
                DEVICE, stream, f"frame type 0x{ft:02X} in a 0x{frame_type:02X} run"
            )
        _plan_payload(fr, HEADER_BYTES, len(fr), ch, res, _BlockPlan.empty(), stream)
    except DecodeError as err:
        return _mtu_wrap(err, fr, att_mtu)
    raise AssertionError("batch planner rejected a frame the scalar decoder accepts")


def _decode_compressed_batch(
    frames: Sequence[bytes],
    measurement_type: int,
    frame_type: int,
    ch: int,
    res: int,
    scale: float | None = None,
    joined: JoinedFrames | None = None,
) -> tuple[
    NDArray[np.int64], NDArray[np.int64], NDArray[np.int64], NDArray[np.int64], NDArray[np.int64]
]:
    """Validate and plan every frame's blocks with numpy (one pass per block index, not per
    frame), then unpack all deltas at once. Returns raw, rows, timestamps, good and bad indices.
    """
    if joined is None:
        nf = len(frames)
        lens = np.fromiter(map(len, frames), dtype=np.int64, count=nf)
        buf = np.frombuffer(b"".join(frames) + bytes(16), dtype=np.uint8)
        starts = np.cumsum(lens) - lens
    else:
        buf, starts, lens = joined
        nf = int(starts.size)
    ends = starts + lens
    ref_bytes = ch * ((res + 7) >> 3)
    ok = lens >= HEADER_BYTES + ref_bytes
    ok &= (buf[starts] & 0x3F) == measurement_type
    ok &= buf[starts + 9] == frame_type
    ts = np.ascontiguousarray(buf[(starts + 1)[:, None] + np.arange(8)]).view("<u8").reshape(-1)
    ok &= ts <= np.uint64(_INT64_MAX)
    max_w = min(res + 1, 32)
    pos = starts + HEADER_BYTES + ref_bytes
    bf: list[NDArray[np.int64]] = []
    bp: list[NDArray[np.int64]] = []
    bw: list[NDArray[np.int64]] = []
    bc: list[NDArray[np.int64]] = []
    active = np.flatnonzero(ok & (pos < ends))
    while active.size:
        p = pos[active]
        e = ends[active]
        w = buf[p].astype(np.int64)
        c = buf[p + 1].astype(np.int64)
        nb = (w * c * ch + 7) >> 3
        bad = (p + 2 > e) | (w == 0) | (w > max_w) | (p + 2 + nb > e)
        ok[active[bad]] = False
        g = ~bad
        f = active[g]
        bf.append(f)
        bp.append(p[g] + 2)
        bw.append(w[g])
        bc.append(c[g])
        pos[f] = p[g] + 2 + nb[g]
        active = f[pos[f] < ends[f]]
    good = np.flatnonzero(ok)
    bad_idx = np.flatnonzero(~ok)
    if good.size == 0:
        z = np.zeros(0, dtype=np.int64)
        return np.zeros((0, ch), dtype=np.int64), z, z, z, bad_idx
    if bf:
        blk_f = np.concatenate(bf)
        order = np.argsort(blk_f, kind="stable")  # frame-major, block order kept
        blk_f = blk_f[order]
        keep = ok[blk_f]
        plan = _BlockPlan(
            ref_offsets=starts[good] + HEADER_BYTES,
            block_bytes=np.concatenate(bp)[order][keep],
            block_width=np.concatenate(bw)[order][keep],
            block_count=np.concatenate(bc)[order][keep],
            frame_blocks=np.bincount(blk_f[keep], minlength=nf)[good],
        )
    else:
        z = np.zeros(good.size, dtype=np.int64)
        plan = _BlockPlan(starts[good] + HEADER_BYTES, z[:0], z[:0], z[:0], z)
    raw, rows = _execute_plan(buf, plan, ch, res, signed=res < 32, scale=scale)
    return raw, rows, ts[good].astype(np.int64), good, bad_idx


def decode_frames(
    frames: Sequence[bytes],
    *,
    measurement_type: int,
    frame_type: int,
    channels: int | None = None,
    resolution_bits: int | None = None,
    factor: float = 1.0,
    att_mtu: int | None = None,
) -> FrameBatch:
    """Decode a run of compressed or raw frames of one stream and frame type in one pass.

    Frames that fail (or whose header differs from ``measurement_type``/``frame_type``) are
    reported in ``errors`` as ``(input index, DecodeError)`` and skipped; the others are
    unpacked together with a few vectorized numpy operations, which is what makes day-long
    recordings decode at millions of samples per second.
    """
    return _decode_frames(
        frames,
        measurement_type=measurement_type,
        frame_type=frame_type,
        channels=channels,
        resolution_bits=resolution_bits,
        factor=factor,
        att_mtu=att_mtu,
        keep_raw=True,
    )


def _decode_frames(
    frames: Sequence[bytes],
    *,
    measurement_type: int,
    frame_type: int,
    channels: int | None,
    resolution_bits: int | None,
    factor: float,
    att_mtu: int | None,
    keep_raw: bool,
    joined: JoinedFrames | None = None,
) -> FrameBatch:
    """:func:`decode_frames`; ``keep_raw=False`` may leave ``raw`` empty (0 rows) when the
    values can be computed without it (replay needs values only: a day less of memory).

    ``joined`` = (buffer, starts, lengths) says where ``frames`` already lie in one buffer
    (ending in at least 16 zero bytes), so compressed frames are not joined again."""
    lay = layout_of(measurement_type, frame_type)
    stream = stream_name(measurement_type)
    ch = lay.channels if channels is None else channels
    res = lay.resolution_bits if resolution_bits is None else resolution_bits
    if lay.compressed:
        _check_shape(ch, res, stream)
    errors: list[tuple[int, DecodeError]] = []
    ok_idx: list[int] = []
    ts_list: list[int] = []
    values_fused: NDArray[np.float64] | None = None
    if not lay.compressed:
        raws: list[NDArray[np.int64]] = []
        for i, fr in enumerate(frames):
            try:
                m, ts, ft = parse_header(fr, att_mtu=att_mtu)
                if (m, ft) != (measurement_type, frame_type):
                    layout_of(m, ft)
                    raise UnknownFrameTypeError(
                        DEVICE, stream, f"frame type 0x{ft:02X} in a 0x{frame_type:02X} run"
                    )
                raws.append(_raw_frame_samples(fr[HEADER_BYTES:], lay, stream))
            except DecodeError as err:
                errors.append((i, _mtu_wrap(err, fr, att_mtu)))
                continue
            ok_idx.append(i)
            ts_list.append(ts)
        raw = np.concatenate(raws) if raws else np.zeros((0, lay.channels), dtype=np.int64)
        rows = np.array([r.shape[0] for r in raws], dtype=np.int64)
    else:
        eff = FrameLayout(ch, res, True, False, 1.0) if lay.is_float and res != 32 else lay
        fused = not keep_raw and not eff.is_float and eff.status_channel is None and res < 32
        raw, rows, ts_arr, good_idx, bad_idx = _decode_compressed_batch(
            frames,
            measurement_type,
            frame_type,
            ch,
            res,
            factor * eff.unit_scale if fused else None,
            joined,
        )
        if fused:
            values_fused = raw.astype(np.float64, copy=False)
            raw = np.zeros((0, ch), dtype=np.int64)
        ok_idx = good_idx.tolist()
        ts_list = ts_arr.tolist()
        for i in bad_idx.tolist():
            errors.append((i, _explain(frames[i], measurement_type, frame_type, ch, res, att_mtu)))
    if lay.compressed and lay.is_float and res != 32:
        lay = FrameLayout(ch, res, True, False, 1.0)
    values = values_fused if values_fused is not None else scale_raw(raw, lay, factor)
    return FrameBatch(
        raw=raw,
        values=values,
        frame_rows=rows,
        frame_timestamp_ns=np.array(ts_list, dtype=np.int64),
        frame_index=np.array(ok_idx, dtype=np.int64),
        errors=errors,
    )


def encode_frame(
    measurement_type: int,
    frame_type: int,
    raw: ArrayLike,
    *,
    timestamp_ns: int,
    resolution_bits: int | None = None,
) -> bytes:
    """Encode integer samples as the exact PMD data frame the device sends.

    Parameters
    ----------
    measurement_type, frame_type : int
        E.g. ``2, 0x81`` for Verity Sense ACC (compressed, mG).
    raw : int array (n, channels)
        Samples as the frame carries them (mG for ACC 0x81, float bit patterns for GYRO 0x81).
    timestamp_ns : int
        Device time of the last sample, ns since 2000-01-01.
    resolution_bits : int or None
        Compressed frames: reference width (None: the layout's).

    Examples
    --------
    >>> encode_frame(2, 0x81, [[-15, 20, 1008], [-20, 17, 1008]], timestamp_ns=101).hex()
    '02650000000000000081f1ff1400f0030401db00'
    """
    lay = layout_of(measurement_type, frame_type)
    r = np.asarray(raw, dtype=np.int64)
    if r.ndim != 2 or r.shape[0] < 1:
        raise ValueError("raw must be (n >= 1, channels)")
    if not 0 <= timestamp_ns <= _INT64_MAX:
        raise ValueError(f"timestamp_ns {timestamp_ns} out of range")
    head = bytes([measurement_type]) + int(timestamp_ns).to_bytes(8, "little") + bytes([frame_type])
    if lay.compressed:
        res = lay.resolution_bits if resolution_bits is None else resolution_bits
        return head + encode_delta_payload(r, resolution_bits=res)
    if r.shape[1] != lay.channels:
        raise ValueError(f"frame type 0x{frame_type:02X} carries {lay.channels} channels")
    nbytes = lay.resolution_bits // 8
    lo, hi = -(1 << (8 * nbytes - 1)), (1 << (8 * nbytes - 1)) - 1
    if r.min() < lo or r.max() > hi:
        raise ValueError(f"samples exceed the {8 * nbytes}-bit range")
    u = (r.reshape(-1) & ((1 << (8 * nbytes)) - 1)).astype(np.int64)
    b = np.stack([(u >> (8 * k)) & 0xFF for k in range(nbytes)], axis=1).astype(np.uint8)
    return head + b.tobytes()


def values_to_raw(
    values: ArrayLike, measurement_type: int, frame_type: int, *, factor: float = 1.0
) -> NDArray[np.int64]:
    """Quantise project-unit values to the integers a frame carries (inverse of scaling).

    Integer layouts round to nearest and saturate at the frame's sample width, as a sensor does;
    float layouts (GYRO 0x81) return float32 bit patterns.
    """
    return _quantise(values, measurement_type, frame_type, factor, np.int64)


def _quantise(
    values: ArrayLike, measurement_type: int, frame_type: int, factor: float, dtype: Any
) -> NDArray[Any]:
    """:func:`values_to_raw` into ``dtype`` (simulators keep day-long signals as int32)."""
    lay = layout_of(measurement_type, frame_type)
    v = np.asarray(values)
    if lay.is_float:
        bits32 = (v.astype(np.float64) / factor).astype(np.float32).view(np.uint32)
        return bits32.astype(np.int64)
    bits = lay.resolution_bits
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    scale = factor * lay.unit_scale
    sc = lay.status_channel
    has_status = sc is not None and v.ndim > 0 and v.shape[-1] > sc
    if v.ndim == 0:
        return np.asarray(np.clip(np.rint(float(v) / scale), lo, hi)).astype(np.int64)
    out = np.empty(v.shape, dtype=dtype)
    step = _ROWS_PER_PASS if v.ndim >= 2 else max(v.shape[0], 1)  # rows of (n, channels)
    for i in range(0, v.shape[0], step):
        chunk = np.asarray(v[i : i + step], dtype=np.float64)
        x = chunk / scale
        np.rint(x, out=x)
        if has_status:
            x[..., sc] = np.rint(chunk[..., sc])
        np.clip(x, lo, hi, out=x)
        out[i : i + step] = x
    return out
