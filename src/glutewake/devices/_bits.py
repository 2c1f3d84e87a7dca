"""Vectorized bit-field packing shared by the delta-compressed device formats.

Polar PMD packs delta fields least-significant bit first; OpenBCI Ganglion packs them most
significant bit first. Both are handled by reading an 8-byte window at each field's start
byte and shifting, so unpacking costs a handful of numpy operations per call whatever the
number of fields (no per-bit or per-field Python loop).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray


def _windows(
    buf: NDArray[np.uint8], byte_idx: NDArray[np.int64], nbytes: int, big: bool
) -> NDArray[Any]:
    """``nbytes``-byte unsigned words starting at each ``byte_idx`` (zeros past the end).

    The padded buffer is viewed as overlapping words one byte apart (an unaligned strided
    view, no copy), so every window is one element: a single flat gather.
    """
    padded = np.zeros(buf.size + nbytes, dtype=np.uint8)
    padded[: buf.size] = buf
    dtype = np.dtype((">" if big else "<") + ("u4" if nbytes == 4 else "u8"))
    words = np.ndarray(shape=(buf.size + 1,), dtype=dtype, buffer=padded, strides=(1,))
    # np.take, not words[byte_idx]: take first copies the view into aligned words (8 bytes
    # per byte of buf) and then gathers, which still beats fancy indexing's unaligned loop
    # by 2-4x; keep buf small (a pass of frames), as the copy scales with it
    out: NDArray[Any] = np.take(words, byte_idx).astype(dtype.newbyteorder("="), copy=False)
    return out


def unpack_fields(
    buf: NDArray[np.uint8],
    bit_start: NDArray[np.int64],
    width: NDArray[np.int64],
    *,
    msb_first: bool = False,
    signed: bool = True,
) -> NDArray[np.int64]:
    """Read bit fields of per-field ``width`` starting at absolute bit offsets ``bit_start``.

    Parameters
    ----------
    buf : uint8 array
        The packed bytes.
    bit_start, width : int64 arrays
        Field start (bits from the start of ``buf``) and width (1..57 bits).
    msb_first : bool
        False: bit 0 of each byte comes first and a field's first bit is its least significant
        (Polar). True: bit 7 comes first and a field's first bit is its most significant (Ganglion).
    signed : bool
        Interpret fields as two's complement.

    Returns
    -------
    int64 array of field values.

    Examples
    --------
    >>> unpack_fields(np.array([0x7B, 0x0F, 0x08], dtype=np.uint8), np.array([0, 6, 12]),
    ...               np.array([6, 6, 6])).tolist()
    [-5, -3, 0]
    """
    if bit_start.size == 0:
        return np.zeros(0, dtype=np.int64)
    byte_idx = bit_start >> 3
    # 4-byte windows hold any field of <= 25 bits at any bit offset: half the memory traffic
    nbits = 32 if int(width.max()) <= 25 else 64
    ut: Any = np.uint32 if nbits == 32 else np.uint64
    st: Any = np.int32 if nbits == 32 else np.int64
    words: Any = _windows(buf, byte_idx, nbits // 8, msb_first)
    off = bit_start & 7
    # move the field to the top of the word, then shift it down (arithmetic when signed):
    # two shifts do extraction and sign extension at once
    up = off if msb_first else nbits - width - off
    top = words << up.astype(ut)
    down = (nbits - width).astype(ut)
    if signed:
        return (top.view(st) >> down.astype(st)).astype(np.int64)
    return (top >> down).astype(np.int64)


def pack_fields(
    values: NDArray[np.int64], width: NDArray[np.int64], *, msb_first: bool = False
) -> bytes:
    """Pack integer fields (two's complement, per-field width) into bytes, padding the last byte.

    The inverse of :func:`unpack_fields` for consecutive fields starting at bit 0.
    """
    if values.size == 0:
        return b""
    w = width.astype(np.int64)
    v = values.astype(np.int64)
    starts = np.cumsum(w) - w
    bits = np.empty(int(w.sum()), dtype=np.uint8)
    for u in np.unique(w).tolist():
        sel = w == u
        k = np.arange(u, dtype=np.int64)
        shift = (u - 1 - k) if msb_first else k  # the field's first bit is its MSB / LSB
        bits[(starts[sel][:, None] + k).reshape(-1)] = ((v[sel][:, None] >> shift) & 1).reshape(-1)
    return np.packbits(bits, bitorder="big" if msb_first else "little").tobytes()


def min_signed_width(values: NDArray[np.int64]) -> NDArray[np.int64]:
    """Smallest two's-complement width (>= 1 bit) that holds each value."""
    v = np.asarray(values, dtype=np.int64)
    mag = v ^ (v >> 63)  # -2**(w-1) needs the same width as 2**(w-1) - 1 (~v for negatives)
    # frexp's exponent is the bit length; exact for magnitudes below 2**53 (values here are
    # deltas of <= 32-bit samples)
    return np.frexp(mag.astype(np.float64))[1].astype(np.int64) + 1


def unpack_interleaved(
    buf: NDArray[np.uint8], bit_start: NDArray[np.int64], width: NDArray[np.int64], channels: int
) -> NDArray[np.int64]:
    """Signed LSB-first fields read a sample at a time: ``channels`` fields of ``width`` bits.

    Sample ``i`` holds its channels' fields back to back from bit ``bit_start[i]`` (Polar's
    channel-interleaved deltas). Reading one 8-byte window per sample instead of one per field
    cuts the gathers by the channel count.

    Returns
    -------
    int64 array (samples, channels).

    Examples
    --------
    >>> unpack_interleaved(np.array([0x7B, 0x0F, 0x08], dtype=np.uint8), np.array([0, 12]),
    ...                    np.array([6, 6]), 2).tolist()
    [[-5, -3], [0, 2]]
    """
    return unpack_interleaved_cm(buf, bit_start, width, channels).T.copy()


def unpack_interleaved_cm(
    buf: NDArray[np.uint8], bit_start: NDArray[np.int64], width: NDArray[np.int64], channels: int
) -> NDArray[np.int64]:
    """:func:`unpack_interleaved` returning channel-major ``(channels, samples)`` int64.

    Channel-major rows are contiguous, so per-channel writes and running sums over samples
    stream through memory (a strided column costs several times more per element).
    """
    n = bit_start.size
    if n == 0:
        return np.zeros((channels, 0), dtype=np.int64)
    if channels * int(width.max()) > 56:  # a sample no longer fits an 8-byte window
        fields = np.repeat(bit_start, channels) + np.tile(
            np.arange(channels, dtype=np.int64), n
        ) * np.repeat(width, channels)
        f = unpack_fields(buf, fields, np.repeat(width, channels)).reshape(n, channels)
        return np.ascontiguousarray(f.T)
    words: Any = _windows(buf, bit_start >> 3, 8, False)
    # field c sits at bits [off + c*w, off + (c+1)*w) of the window: shift it to the top, then
    # an arithmetic shift down sign-extends it (off + channels*w <= 63, so no shift is negative)
    top = (64 - width) - (bit_start & 7)
    top_u = top.view(np.uint64)
    w_u = width.astype(np.uint64)
    down = 64 - width
    out = np.empty((channels, n), dtype=np.int64)
    tmp = np.empty(n, dtype=np.uint64)
    for c in range(channels):
        np.left_shift(words, top_u, out=tmp)
        np.right_shift(tmp.view(np.int64), down, out=out[c])
        if c + 1 < channels:
            top_u -= w_u
    return out
