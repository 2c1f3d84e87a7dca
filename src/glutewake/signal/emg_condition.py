"""Surface-EMG conditioning: band-pass, mains removal, TKEO, input validation.

The conditioning runs block by block on a fixed grid of blocks (60 s by default: five 12 s
detection blocks, each conditioning block with 1.5 s of real neighbouring data on both sides),
as a zero-phase filter applied in the frequency domain (one real FFT per padded block):

* band-pass: the magnitude response of a zero-phase (forward-backward) 4th-order Butterworth
  high-pass at ``band_hz[0]`` (default 20 Hz) and low-pass at ``band_hz[1]`` (default
  ``min(450, 0.45 fs)``), so 20-450 Hz at 1 kHz and above, 20-90 Hz at 200 Hz;
* mains: the block's spectrum is searched for a narrow line at 50 or 60 Hz and their harmonics
  (``_find_lines``, the criteria of :func:`mains_lines` at a fixed ~15 s resolution); the lines
  found are fitted on the band-passed block as slowly varying sinusoids from its quiet parts
  and subtracted (``_fit_lines``); optional Gaussian notches (``notch_sigma_hz`` > 0) remove
  what is left;
* ECG: QRS energy sits mostly below ~30 Hz and is removed by the high-pass (raise ``band_hz[0]``
  to 30 Hz for trunk muscles near the heart); what survives is short and is rejected by the
  detector's minimum-duration rule.

Because every block sees the same samples whatever chunks the caller feeds, chunked processing
gives results identical to a single pass.

Cost (the issue-6 speed goal): per block one forward and one inverse float32 real FFT of
all channels, with the rows of several blocks in one transform call when they are ready
together (``condition_blocks_t``: pocketfft then transforms four rows at once with SIMD, about
a third of the time per row, bit for bit the same result); the mains search reads only the
bins near 50/60 Hz harmonics; the hum is fitted from demodulated 50 ms window sums (one
small matrix product, reading the block in place) and rebuilt from amplitude knots every
50 ms (another); arrays are processed channels-first because numpy reduces along the last
axis much faster than along the first axis of a 2-column array; matrix products are cut into
slices small enough that OpenBLAS stays on one thread (its threads spin on a shared machine).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.fft
from numpy.typing import NDArray

__all__ = [
    "ConditioningParams",
    "EmgInputError",
    "band_edges_hz",
    "condition_block",
    "condition_block_t",
    "condition_blocks_rows_t",
    "condition_blocks_t",
    "conditioning_gain",
    "mains_from_spectrum",
    "mains_lines",
    "tkeo_abs",
    "validate_emg",
]

FloatArray = NDArray[np.float64]

MIN_FS_HZ = 100.0
MAX_FS_HZ = 10_000.0


class EmgInputError(ValueError):
    """Raised for EMG input that cannot be processed (shape, NaN/inf, empty, too short, fs)."""


@dataclass(frozen=True)
class ConditioningParams:
    """Conditioning settings (all documented defaults).

    Attributes
    ----------
    band_hz : (float, float) or None
        Pass band; None = (20, min(450, 0.45 fs)).
    mains_hz : float, None or "auto"
        "auto" finds 50/60 Hz from each block's spectrum; a number forces it; None disables.
    notch_sigma_hz : float
        Gaussian width of each mains notch.
    mains_min_ratio : float
        Power ratio of the mains line over its spectral neighbourhood needed to notch.
    """

    band_hz: tuple[float, float] | None = None
    mains_hz: float | str | None = "auto"
    notch_sigma_hz: float = 0.0
    mains_min_ratio: float = 20.0


def validate_emg(emg_uv: object, fs_hz: float, *, min_duration_s: float = 0.0) -> FloatArray:
    """Check and return EMG as a float64 ``(n, n_channels)`` array.

    Raises
    ------
    EmgInputError
        For a non-numeric, empty, >2-D, non-finite or too short input, or an invalid ``fs_hz``.
    """
    if not np.isfinite(fs_hz) or not MIN_FS_HZ <= fs_hz <= MAX_FS_HZ:
        raise EmgInputError(f"fs_hz must be within {MIN_FS_HZ:g}..{MAX_FS_HZ:g} Hz, got {fs_hz!r}")
    arr = np.asarray(emg_uv)
    if arr.dtype.kind not in "biuf":
        raise EmgInputError(f"emg_uv must be a real numeric array, got dtype {arr.dtype}")
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise EmgInputError(f"emg_uv must be 1-D or 2-D (n_samples, n_channels), got {arr.ndim}-D")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise EmgInputError(f"emg_uv is empty (shape {arr.shape})")
    out = np.asarray(arr, dtype=np.float64)
    # A sum is finite only if every term is (NaN and inf propagate); one reduction instead of
    # a boolean array of the input's size. Only a non-finite sum (or an overflow) looks closer.
    with np.errstate(over="ignore", invalid="ignore"):
        total = np.add.reduce(out, axis=None)
    if not np.isfinite(total) and not (finite := np.isfinite(out)).all():
        bad = np.argwhere(~finite)[0]
        raise EmgInputError(
            f"emg_uv contains NaN or inf (first at sample {bad[0]}, channel {bad[1]}); "
            "fill or cut gaps before detection"
        )
    if out.shape[0] < min_duration_s * fs_hz:
        raise EmgInputError(
            f"emg_uv is too short: {out.shape[0]} samples ({out.shape[0] / fs_hz:.3f} s) at "
            f"{fs_hz:g} Hz; at least {min_duration_s:g} s are needed"
        )
    return out


def band_edges_hz(fs_hz: float, band_hz: tuple[float, float] | None = None) -> tuple[float, float]:
    """Pass band used at ``fs_hz``: (20, min(450, 0.45 fs)) unless given."""
    if band_hz is None:
        return 20.0, min(450.0, 0.45 * fs_hz)
    lo, hi = float(band_hz[0]), float(band_hz[1])
    if not 0 < lo < hi < fs_hz / 2:
        raise EmgInputError(f"band_hz must satisfy 0 < low < high < fs/2, got {band_hz!r}")
    return lo, hi


def _band_gain(f_hz: NDArray[np.floating], band_hz: tuple[float, float]) -> FloatArray:
    """Zero-phase 4th-order Butterworth high-pass times low-pass magnitude at ``f_hz``."""
    f = np.asarray(f_hz, dtype=np.float64)
    lo, hi = band_hz
    with np.errstate(divide="ignore"):
        hp = 1.0 / (1.0 + (lo / f) ** 8)
    hp[f == 0] = 0.0
    return np.asarray(hp / (1.0 + (f / hi) ** 8), dtype=np.float64)


def conditioning_gain(
    n_fft: int,
    fs_hz: float,
    band_hz: tuple[float, float],
    lines_hz: Sequence[float] = (),
    notch_sigma_hz: float = 0.3,
) -> FloatArray:
    """Real zero-phase gain on the ``rfftfreq(n_fft, 1/fs)`` grid (band-pass times notches).

    ``lines_hz`` are the mains lines (fundamental and harmonics) to notch.
    """
    f = np.fft.rfftfreq(n_fft, 1.0 / fs_hz)
    gain = _band_gain(f, band_hz)
    for f_line in lines_hz:
        sel = np.abs(f - f_line) < 6 * notch_sigma_hz
        gain[sel] *= 1.0 - np.exp(-0.5 * ((f[sel] - f_line) / notch_sigma_hz) ** 2)
    return gain


@functools.lru_cache(maxsize=16)
def _band_gain_f32(n_fft: int, fs_hz: float, band_hz: tuple[float, float]) -> NDArray[np.float32]:
    """Band-pass gain on the rfft grid, cached (every block of a recording has the same)."""
    gain = _band_gain(np.fft.rfftfreq(n_fft, 1.0 / fs_hz), band_hz).astype(np.float32)
    gain.flags.writeable = False
    return gain


def _lines(power: FloatArray, f: FloatArray, f_lines: FloatArray) -> tuple[FloatArray, FloatArray]:
    """(peak-to-neighbourhood power ratio, peak frequency) of spectral lines near ``f_lines``.

    Peak: the strongest bin within +-0.5 Hz; neighbourhood: median of the bins 1.5-6 Hz away.
    All lines at once (one gather, one median).
    """
    df = float(f[1] - f[0])
    k_pk, k_in, k_out = (max(1, round(h / df)) for h in (0.5, 1.5, 6.0))
    j0 = np.rint(np.asarray(f_lines) / df).astype(np.int64)
    valid = (j0 - k_out >= 0) & (j0 + k_out < power.size)
    j0c = np.clip(j0, k_out, max(power.size - 1 - k_out, k_out))
    off_ref = np.r_[np.arange(-k_out, -k_in + 1), np.arange(k_in, k_out + 1)]
    peak = power[np.minimum(j0c[:, None] + np.arange(-k_pk, k_pk + 1), power.size - 1)]
    ref = np.median(power[np.minimum(j0c[:, None] + off_ref, power.size - 1)], axis=1)
    j = j0c - k_pk + np.argmax(peak, axis=1)
    ok = valid & (ref > 0)
    ratio = np.where(ok, power[j] / np.where(ok, ref, 1.0), 0.0)
    return ratio, np.where(valid, f[j], f_lines)


def mains_lines(
    power: FloatArray,
    f: FloatArray,
    fs_hz: float,
    min_ratio: float,
    family_hz: float | None = None,
    band_top_hz: float = np.inf,
) -> tuple[float | None, list[float]]:
    """Mains family (50, 60 or None) and the frequencies of its lines present in a spectrum.

    ``power`` is a power spectrum (summed over channels) on the grid ``f``. A family is present
    when its strongest line exceeds ``min_ratio`` times the median power 1.5-6 Hz around it; then
    every harmonic up to the top of the pass band whose line exceeds ``0.4 min_ratio`` is
    returned, at its measured
    peak frequency (so a grid a little off 50.00 Hz is still notched precisely). With
    ``family_hz`` given, that family is used and its lines are searched the same way.
    """
    families = (50.0, 60.0) if family_hz is None else (family_hz,)
    top = min(fs_hz / 2 - 6.0, band_top_hz + 6.0)
    harm = [np.arange(1, int(top // f0) + 1) * f0 for f0 in families]
    sizes = [h.size for h in harm]
    ratio_all, freq_all = _lines(power, f, np.concatenate(harm))
    best: float | None = None
    best_lines: list[float] = []
    best_ratio = min_ratio
    pos = 0
    for f0, size in zip(families, sizes, strict=True):
        ratio, freq = ratio_all[pos : pos + size], freq_all[pos : pos + size]
        pos += size
        r = float(ratio.max()) if size else 0.0
        if r > best_ratio or family_hz is not None:
            best, best_ratio = f0, r
            # Harmonics need less evidence once the family is established: removing a spurious
            # line costs a fitted sinusoid (negligible EMG), leaving a real one costs a hum.
            best_lines = [float(x) for x in freq[ratio > 0.4 * min_ratio]]
    return best, best_lines


def mains_from_spectrum(
    power: FloatArray, f: FloatArray, fs_hz: float, min_ratio: float
) -> float | None:
    """50, 60 or None: the mains family whose strongest line stands out most."""
    return mains_lines(power, f, fs_hz, min_ratio)[0]


def condition_block(
    x_pad: FloatArray,
    fs_hz: float,
    params: ConditioningParams,
    margin: int = 0,
    rows: tuple[int, int] | None = None,
) -> tuple[FloatArray, float | None]:
    """Condition one padded block ``(m, n_channels)``; returns it filtered and the mains used.

    The ``margin`` rows at each end are tapered (half-cosine) before the FFT, which keeps the
    mains lines narrow in the spectrum; those rows are not used by the caller. ``rows``
    ``(lo, hi)`` returns only those rows of the result (default: all ``m``).
    """
    y, mains = condition_block_t(x_pad, fs_hz, params, margin, rows)
    return np.asarray(y.T, dtype=np.float64), mains


def condition_block_t(
    x_pad: FloatArray,
    fs_hz: float,
    params: ConditioningParams,
    margin: int = 0,
    rows: tuple[int, int] | None = None,
) -> tuple[NDArray[np.float32], float | None]:
    """:func:`condition_block`, returned channels first ``(n_channels, rows)`` in float32.

    One forward and one inverse real FFT (float32, all channels): the spectrum serves the
    mains search and the band-pass; the hum is then fitted on the band-passed block (see
    ``_fit_lines``) and subtracted from the rows returned only.

    Examples
    --------
    >>> x = np.random.default_rng(0).normal(size=(4000, 2))
    >>> y, mains = condition_block_t(x, 1000.0, ConditioningParams(), margin=500)
    >>> y.shape, y.dtype, mains
    ((2, 4000), dtype('float32'), None)
    """
    return condition_blocks_t([x_pad], fs_hz, params, margin, rows)[0]


FFT_ROWS = 4
"""Rows (block channels) worth transforming in one FFT call: pocketfft transforms this many
rows at once with SIMD (~3x less time per row than one or two rows; the same result)."""


def condition_blocks_t(
    x_pads: Sequence[FloatArray],
    fs_hz: float,
    params: ConditioningParams,
    margin: int = 0,
    rows: tuple[int, int] | None = None,
) -> list[tuple[NDArray[np.float32], float | None]]:
    """:func:`condition_block_t` of several padded blocks of the same shape at once.

    Each block gets exactly what :func:`condition_block_t` gives it alone (every block's
    mains search, gain and hum fit are its own); only the two FFTs are shared: the rows
    (block channels) of all blocks go through one forward and one inverse transform call,
    which pocketfft vectorises across rows when there are ``FFT_ROWS`` or more.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> xs = [rng.normal(size=(4000, 2)) for _ in range(2)]
    >>> out = condition_blocks_t(xs, 1000.0, ConditioningParams(), margin=500)
    >>> [y.shape for y, _ in out]
    [(2, 4000), (2, 4000)]
    """
    y_rows, mains = condition_blocks_rows_t(x_pads, fs_hz, params, margin, rows)
    n_ch = y_rows.shape[0] // max(len(mains), 1)
    return [(y_rows[b * n_ch : (b + 1) * n_ch], m) for b, m in enumerate(mains)]


def condition_blocks_rows_t(
    x_pads: Sequence[FloatArray],
    fs_hz: float,
    params: ConditioningParams,
    margin: int = 0,
    rows: tuple[int, int] | None = None,
    consume: bool = False,
) -> tuple[NDArray[np.float32], list[float | None]]:
    """:func:`condition_blocks_t` as one array ``(blocks * n_channels, rows)`` (block by
    block, channels first within a block) and the list of each block's mains. With
    ``consume`` a list ``x_pads`` is emptied and its blocks freed once read (before the
    transforms allocate their buffers)."""
    xs = [np.asarray(x) for x in x_pads]
    m, n_ch = xs[0].shape
    if any(x.shape != (m, n_ch) for x in xs):
        raise EmgInputError("blocks conditioned together must have the same shape")
    n_blocks = len(xs)
    if consume and isinstance(x_pads, list):
        x_pads.clear()
    r_lo, r_hi = (0, m) if rows is None else rows
    n_fft = scipy.fft.next_fast_len(m, real=True)
    taper = _taper(margin) if margin > 0 and 2 * margin < m else None
    spec = _rfft_tapered(xs, taper, n_fft, consume)  # (blocks * ch, n_f)
    band = band_edges_hz(fs_hz, params.band_hz)
    found: list[tuple[float | None, list[float]]] = []
    for b in range(n_blocks):
        mains: float | None = None
        lines: list[float] = []
        if params.mains_hz is not None:
            forced = None if isinstance(params.mains_hz, str) else float(params.mains_hz)
            mains, lines = _find_lines(spec[b * n_ch : (b + 1) * n_ch], n_fft, float(fs_hz),
                                       params.mains_min_ratio, forced, band[1])
        found.append((mains, lines))
        if params.notch_sigma_hz > 0 and lines:
            sigma = max(params.notch_sigma_hz, 2.0 * fs_hz / n_fft)
            gain = conditioning_gain(n_fft, fs_hz, band, lines, sigma).astype(np.float32)
            spec[b * n_ch : (b + 1) * n_ch] *= gain
        else:
            spec[b * n_ch : (b + 1) * n_ch] *= _band_gain_f32(n_fft, float(fs_hz), band)
    y_all = scipy.fft.irfft(spec, n=n_fft, axis=1, overwrite_x=True)
    for b, (_, lines) in enumerate(found):
        if lines:
            # Fitted on the band-passed block (no wander or ECG left to leak into the
            # estimate) and subtracted only where needed.
            y_b = y_all[b * n_ch : (b + 1) * n_ch]
            y_b[:, r_lo:r_hi] -= _fit_lines(y_b[:, :m], lines, fs_hz, r_lo, r_hi, taper)
    n_rows = n_blocks * n_ch  # the transforms may carry zero rows (see _rfft_tapered)
    return np.asarray(y_all[:n_rows, r_lo:r_hi], dtype=np.float32), [mn for mn, _ in found]


@functools.lru_cache(maxsize=16)
def _unit_ramp(m: int) -> FloatArray:
    t = np.linspace(-1.0, 1.0, m)
    t.flags.writeable = False
    return t


@functools.lru_cache(maxsize=16)
def _taper(margin: int) -> NDArray[np.float32]:
    taper = (0.5 - 0.5 * np.cos(np.pi * (np.arange(margin) + 0.5) / margin)).astype(np.float32)
    taper.flags.writeable = False
    return taper


def _find_lines(
    spec: NDArray[np.complex64],
    n_fft: int,
    fs_hz: float,
    min_ratio: float,
    forced: float | None,
    band_top_hz: float,
) -> tuple[float | None, list[float]]:
    """Mains family and its line frequencies from a block's spectrum ``(ch, n_f)``.

    The criteria of :func:`mains_lines` (peak within +-0.5 Hz over the median 1.5-6 Hz away;
    family at ``min_ratio``, harmonics at ``0.4 min_ratio``), evaluated only on the bins around
    the candidate harmonics. The criteria were set on ~15 s spectra: on a longer block the
    noise bins' maximum over +-0.5 Hz grows with the number of bins there, and harmonics that
    are not in the data pass; moving sums over ``g`` bins restore the 15 s resolution for the
    search. Each line found is then located on the full-resolution power.
    """
    n_f = spec.shape[1]
    df = fs_hz / n_fft
    families = (50.0, 60.0) if forced is None else (forced,)
    harm, f_all, j0, valid, idx_c, outside, g, reach, k_pk, k_out, o, off_ref = _line_grid(
        n_fft, fs_hz, families, band_top_hz)
    if f_all.size == 0:
        return (forced, []) if forced is not None else (None, [])
    part = np.take(spec, idx_c, axis=1).view(np.float32)  # re, im interleaved (take: ~7x faster)
    raw2 = np.einsum("chk,chk->hk", part, part, dtype=np.float64)
    raw = raw2[:, 0::2] + raw2[:, 1::2]
    raw[outside] = 0.0
    if g > 1:
        cs = np.zeros((raw.shape[0], raw.shape[1] + 1))
        np.cumsum(raw, axis=1, out=cs[:, 1:])
        smooth = cs[:, o + g] - cs[:, o]
    else:
        smooth = raw[:, g : g + 2 * k_out + 1]
    centre = k_out
    pk = smooth[:, centre - k_pk : centre + k_pk + 1]
    ref = _median_rows(smooth[:, off_ref])
    j_rel = np.argmax(pk, axis=1) - k_pk  # offset of the smoothed peak from j0
    peak = pk[np.arange(pk.shape[0]), j_rel + k_pk]
    ok = valid & (ref > 0)
    ratio = np.where(ok, peak / np.where(ok, ref, 1.0), 0.0)
    best: float | None = None
    best_sel = np.zeros(0, dtype=np.int64)
    best_ratio = min_ratio
    pos = 0
    for f0, h in zip(families, harm, strict=True):
        r_f = ratio[pos : pos + h.size]
        r = float(r_f.max()) if h.size else 0.0
        if r > best_ratio or forced is not None:
            best, best_ratio = f0, r
            # Harmonics need less evidence once the family is established: removing a spurious
            # line costs a fitted sinusoid (negligible EMG), leaving a real one costs a hum.
            best_sel = pos + np.flatnonzero(r_f > 0.4 * min_ratio)
        pos += h.size
    lines: list[float] = []
    for i in best_sel:
        # The strongest raw bin within the smoothing width, then a parabola through the log
        # power around it, to a fraction of a bin.
        jj = reach + int(j_rel[i])
        if g > 1:
            lo_b, hi_b = max(jj - g, 1), min(jj + g + 1, raw.shape[1] - 1)
            jj = lo_b + int(np.argmax(raw[i, lo_b:hi_b]))
        a_, b_, c_ = np.log(np.maximum(raw[i, jj - 1 : jj + 2], 1e-300))
        den = a_ - 2 * b_ + c_
        delta = 0.5 * (a_ - c_) / den if den < 0 else 0.0
        j_abs = int(j0[i]) + jj - reach
        if j_abs < 1 or j_abs >= n_f - 1 or not valid[i]:
            lines.append(float(f_all[i]))
            continue
        lines.append(float((j_abs + float(np.clip(delta, -0.5, 0.5))) * df))
    return best, lines


@functools.lru_cache(maxsize=16)
def _line_grid(
    n_fft: int, fs_hz: float, families: tuple[float, ...], band_top_hz: float
) -> tuple[
    list[FloatArray], FloatArray, NDArray[np.int64], NDArray[np.bool_], NDArray[np.int64],
    NDArray[np.bool_], int, int, int, int, NDArray[np.int64], NDArray[np.int64],
]:
    """Index arrays of :func:`_find_lines` (the same for every block of a recording)."""
    n_f = n_fft // 2 + 1
    df = fs_hz / n_fft
    g = max(1, round(n_fft / (LINE_SEARCH_S * fs_hz)))
    k_pk, k_in, k_out = (max(1, round(h / df)) for h in (0.5, 1.5, 6.0))
    top = min(fs_hz / 2 - 6.0, band_top_hz + 6.0)
    harm = [np.arange(1, int(top // f0) + 1, dtype=np.float64) * f0 for f0 in families]
    f_all = np.concatenate(harm)
    j0 = np.rint(f_all / df).astype(np.int64)
    reach = k_out + g  # raw bins needed on each side (moving sums, refinement)
    valid = (j0 - k_out >= 0) & (j0 + k_out < n_f)
    idx = j0[:, None] + np.arange(-reach, reach + 1)[None, :]
    idx_c = np.clip(idx, 0, n_f - 1)
    outside = (idx < 0) | (idx >= n_f)
    # smooth at offset o (-k_out..k_out) = sum of raw over o - half .. o - half + g - 1
    o = np.arange(-k_out, k_out + 1) + reach - g // 2
    off_ref = np.r_[np.arange(-k_out, -k_in + 1), np.arange(k_in, k_out + 1)] + k_out
    for arr in (f_all, j0, valid, idx_c, outside, o, off_ref, *harm):
        arr.flags.writeable = False
    return harm, f_all, j0, valid, idx_c, outside, g, reach, k_pk, k_out, o, off_ref


def _median_rows(a: FloatArray) -> FloatArray:
    """``np.median(a, axis=1)`` by one partial sort (same values, less overhead)."""
    n = a.shape[1]
    k = n // 2
    if n % 2:
        return np.asarray(np.partition(a, k, axis=1)[:, k])
    part = np.partition(a, [k - 1, k], axis=1)
    return np.asarray((part[:, k - 1] + part[:, k]) / 2.0)


def _rfft_tapered(
    xs: Sequence[FloatArray], taper: NDArray[np.float32] | None, n_fft: int,
    consume: bool = False,
) -> NDArray[np.complex64]:
    """rfft of ``(m, ch)`` blocks, channels first ``(blocks * ch, n_f)``, in float32, ends
    tapered (plus zero rows up to a multiple of 4 where that is faster; see below). With
    ``consume`` a list ``xs`` is emptied once read.

    Each channel's mean is removed first (float32 keeps the EMG precise next to a large DC
    offset). With tapered ends nothing else is needed to avoid a wrap-around step; without
    a taper a least-squares line is removed too. Each column is centred in float64 and
    written as float32 straight into the zero-padded transform buffer (no float64 copy of
    the block; a strided column's mean is the same pairwise sum as a contiguous row's).
    """
    m, n_ch = xs[0].shape
    n_rows = len(xs) * n_ch
    # pocketfft transforms 4 rows at once with SIMD (each row bit for bit as alone): 2 or 3
    # rows cost more than 4, so they are padded with zero rows (2 channels streamed in 60 s
    # chunks: one block, 2 rows).
    n_buf = n_rows + 4 - n_rows % 4 if n_rows % 4 >= 2 else n_rows
    buf = np.empty((n_buf, n_fft), dtype=np.float32)
    buf[:, m:] = 0.0
    buf[n_rows:] = 0.0
    xt = buf[:n_rows, :m]
    for b, x in enumerate(xs):
        for c in range(n_ch):
            col = x[:, c]
            np.subtract(col, col.mean(), out=xt[b * n_ch + c], casting="same_kind")
    if consume and isinstance(xs, list):
        # The raw blocks are no longer needed: freed before the transform allocates the
        # spectrum (this keeps the padded rows within the streaming memory peak).
        del x, col
        xs.clear()
    if taper is not None:
        k = taper.size
        xt[:, :k] *= taper
        xt[:, m - k :] *= taper[::-1]
    else:
        t = _unit_ramp(m)
        slope = (xt * t).sum(axis=1, dtype=np.float64) / float((t * t).sum())
        xt -= (slope[:, None] * t).astype(np.float32)
    return np.asarray(scipy.fft.rfft(buf, axis=1, overwrite_x=True))


def _moving_sum(x: NDArray[np.generic], width: int) -> NDArray[np.generic]:
    """Centered moving sum along the last axis (the window shrinks at the ends)."""
    n = x.shape[-1]
    half = min(width // 2, max((n - 1) // 2, 0))
    cs = np.zeros((*x.shape[:-1], n + 1), dtype=x.dtype)
    np.cumsum(x, axis=-1, out=cs[..., 1:])
    out = np.empty_like(cs[..., 1:])
    out[..., half : n - half] = cs[..., 2 * half + 1 :] - cs[..., : n - 2 * half]
    out[..., :half] = cs[..., half + 1 : 2 * half + 1]
    out[..., n - half :] = cs[..., n : n + 1] - cs[..., n - 2 * half : n - half]
    return out


LINE_SEARCH_S = 15.0


def _fit_lines(
    y: NDArray[np.float32],
    lines: Sequence[float],
    fs_hz: float,
    lo: int,
    hi: int,
    taper: NDArray[np.float32] | None = None,
) -> NDArray[np.float32]:
    """Hum at ``lines`` with slowly varying amplitude and phase in the band-passed block ``y``
    ``(ch, m)`` (channels first): ``(ch, hi - lo)`` for its samples ``lo..hi-1``.

    Each line is demodulated (multiplied by ``exp(-2 pi i f t)``) and its complex amplitude
    averaged over a centered 2 s window, so hum whose level drifts (cables, posture) is
    followed. 50 ms windows whose high-frequency power (first difference) exceeds three times
    the block median are left out of the averages, so contractions, whose spectrum also covers
    the mains frequencies, do not leak into the hum estimate (and back out as an echo around
    them). Working on the band-passed signal, baseline wander and ECG are already gone. Where
    the block's ends were tapered (``taper``, the half-cosine of the first ``margin`` samples,
    mirrored at the end), the average is weighted least squares with the taper as regressor,
    which undoes it. The demodulated sums are formed per 50 ms window (one small matrix
    product), the 2 s averages over whole windows (shrinking at the block ends) are evaluated
    at the window boundaries and interpolated linearly between them; the hum of every line is
    then again one small matrix product per channel. float32 throughout the full-rate parts.
    """
    n_ch, n = y.shape
    w_len = max(1, round(0.05 * fs_hz))
    n_w = -(-n // w_len)
    k_tap = taper.size if taper is not None and 2 * taper.size < n else 0
    # Windows holding tapered samples: 0..w_a-1 at the start, w_b.. at the end.
    w_a, w_b = -(-k_tap // w_len), (n - k_tap) // w_len
    in_place = n == n_w * w_len and w_a < w_b
    if in_place:
        # The windows are read where they are; only the tapered ones are copied (below).
        v = y
    else:
        # Full windows; the partial one at the end is zero-padded (and always counted quiet).
        v = np.zeros((n_ch, n_w * w_len), dtype=np.float32)
        v[:, :n] = y
        if taper is not None and k_tap:
            v[:, :k_tap] *= taper
            v[:, n - k_tap : n] *= taper[::-1]
    tap2 = _window_taper2(n, w_len, k_tap)
    quiet = np.ones((n_ch, n_w), dtype=bool)
    n_win = n // w_len
    if n_win > 1:
        n_in = n_win * w_len
        dy = np.empty((n_ch, n_in), dtype=np.float32)
        dy[:, 0] = 0.0
        np.subtract(y[:, 1:n_in], y[:, : n_in - 1], out=dy[:, 1:])
        dy *= dy
        win_pw = dy.reshape(n_ch, n_win, w_len).sum(axis=2, dtype=np.float64)
        # Tapered windows would look quiet; compare their power as if untapered.
        win_pw /= np.maximum(tap2[:n_win] / w_len, 0.01)
        quiet[:, :n_win] = win_pw <= 3.0 * _median_rows(win_pw)[:, None]
    f_l = np.asarray(lines, dtype=np.float64)
    n_l = f_l.size
    omega = 2 * np.pi * f_l / fs_hz  # rad per sample
    j = np.arange(w_len)
    c_j = np.exp(1j * np.outer(omega, j))  # (L, K)
    # Demodulated window sums: sum_j v[w, j] exp(-i omega j), then the window's phase.
    e_mat = np.concatenate([c_j.real, -c_j.imag]).T.astype(np.float32)  # (K, 2L)
    if in_place:
        zr32 = _matmul_1thread(v.reshape(n_ch, n_w, w_len), e_mat).reshape(n_ch * n_w, -1)
        if k_tap and taper is not None:
            # The tapered windows, copied and tapered, in one product (at least two rows: a
            # single-row product takes another BLAS path with other rounding).
            ends = np.concatenate([y[:, : w_a * w_len], y[:, w_b * w_len : n]], axis=1)
            ends[:, :k_tap] *= taper
            ends[:, ends.shape[1] - k_tap :] *= taper[::-1]
            n_e = w_a + n_w - w_b
            z_e = _matmul_1thread(ends.reshape(1, n_ch * n_e, w_len), e_mat)[0]
            z_e = z_e.reshape(n_ch, n_e, -1)
            zr3 = zr32.reshape(n_ch, n_w, -1)
            zr3[:, :w_a] = z_e[:, :w_a]
            zr3[:, w_b:] = z_e[:, w_a:]
        zr = zr32.astype(np.float64)
    else:
        zr = _matmul_1thread(v.reshape(1, n_ch * n_w, w_len), e_mat)[0].astype(np.float64)
    z = (zr[:, :n_l] + 1j * zr[:, n_l:]).reshape(n_ch, n_w, n_l).transpose(0, 2, 1)
    phase = np.exp(-1j * np.outer(omega, w_len * np.arange(n_w)))  # (L, W)
    z = z * phase[None, :, :]
    q = quiet.astype(np.float64)
    z *= q[:, None, :]
    qc = q * tap2  # (ch, W): sum of the squared taper over the quiet samples
    # 2 s box sums over whole windows, at the window boundaries b = 0..n_w.
    h_avg = max(1, round(1.0 / 0.05))
    cz = np.zeros((n_ch, n_l, n_w + 1), dtype=np.complex128)
    np.cumsum(z, axis=2, out=cz[:, :, 1:])
    cq = np.zeros((n_ch, n_w + 1))
    np.cumsum(qc, axis=1, out=cq[:, 1:])
    b_lo = lo // w_len
    b_hi = -(-hi // w_len)
    bnd = np.arange(b_lo, b_hi + 1)
    top_w = np.minimum(bnd + h_avg, n_w)
    bot_w = np.maximum(bnd - h_avg, 0)
    den = np.maximum(cq[:, top_w] - cq[:, bot_w], 1.0)
    a_k = (cz[:, :, top_w] - cz[:, :, bot_w]) / den[:, None, :]  # (ch, L, n_k + 1)
    knots = bnd[:-1] * w_len
    n_k = knots.size
    # exp(i omega knot): the conjugate of the window phases above (same angles; cos is even
    # and sin odd, so the same values as a second complex exponential, at half the cost).
    carrier = 2.0 * np.conj(phase[:, b_lo:b_hi])  # (L, n_k)
    p_k = a_k[:, :, :-1] * carrier  # (ch, L, n_k)
    q_k = (a_k[:, :, 1:] - a_k[:, :, :-1]) * carrier
    uc_j = c_j * (j / w_len)
    basis = np.concatenate([c_j.real, c_j.imag, uc_j.real, uc_j.imag]).astype(np.float32)
    coef = np.concatenate([p_k.real, -p_k.imag, q_k.real, -q_k.imag], axis=1)  # (ch, 4L, n_k)
    hum = _matmul_1thread(coef.transpose(0, 2, 1).astype(np.float32), basis)  # (ch, n_k, K)
    off = lo - b_lo * w_len
    return hum.reshape(n_ch, n_k * w_len)[:, off : off + hi - lo]


@functools.lru_cache(maxsize=16)
def _window_taper2(n: int, w_len: int, k_tap: int) -> FloatArray:
    """Sum of the squared taper (``_taper(k_tap)`` at both ends, 1 between, 0 past ``n``)
    over each ``w_len`` window: the same for every block of a recording, so cached."""
    n_w = -(-n // w_len)
    tap = np.ones(n_w * w_len)
    if k_tap:
        taper = _taper(k_tap).astype(np.float64)
        tap[:k_tap] = taper
        tap[n - k_tap : n] = taper[::-1]
    tap[n:] = 0.0
    out = (tap * tap).reshape(n_w, w_len).sum(axis=1)
    out.flags.writeable = False
    return out


def _matmul_1thread(a: NDArray[np.float32], b: NDArray[np.float32]) -> NDArray[np.float32]:
    """``a @ b`` for ``a`` ``(ch, m, k)``, in row slices small enough that OpenBLAS keeps to one
    thread (it starts threads above m n k = 262144, and on a shared machine they spin)."""
    n_ch, m, k = a.shape
    step = max(1, 200_000 // max(1, k * b.shape[1]))
    out = np.empty((n_ch, m, b.shape[1]), dtype=np.result_type(a, b))
    for c in range(n_ch):
        for i in range(0, m, step):
            np.matmul(a[c, i : i + step], b, out=out[c, i : i + step])
    return out


def tkeo_abs(y: FloatArray, lag: int = 1) -> FloatArray:
    """|Teager-Kaiser energy| ``|y[n]^2 - y[n-lag] y[n+lag]|``, same length (ends copied).

    The operator weights a component of frequency f by ``sin^2(2 pi f lag / fs)``; choosing
    ``lag = round(fs / 1000)`` keeps that weighting peaking near 250 Hz at every sampling rate
    (with lag 1 at 2 kHz it would favour the white noise at the top of the band over the EMG).
    """
    out = np.empty_like(y)
    k = lag
    out[k:-k] = np.abs(y[k:-k] ** 2 - y[: -2 * k] * y[2 * k :])
    out[:k] = out[k]
    out[-k:] = out[-k - 1]
    return out
