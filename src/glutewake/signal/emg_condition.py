"""Surface-EMG conditioning: band-pass, mains removal, TKEO, input validation.

The conditioning runs block by block on a fixed grid of blocks (12 s by default, each with 1.5 s
of real neighbouring data on both sides), as a zero-phase filter applied in the frequency domain
(one real FFT per padded block):

* band-pass: the magnitude response of a zero-phase (forward-backward) 4th-order Butterworth
  high-pass at ``band_hz[0]`` (default 20 Hz) and low-pass at ``band_hz[1]`` (default
  ``min(450, 0.45 fs)``), so 20-450 Hz at 1 kHz and above, 20-90 Hz at 200 Hz;
* mains: the block's spectrum is searched for a narrow line at 50 or 60 Hz and their harmonics
  (:func:`mains_lines`); the lines found are subtracted as slowly varying sinusoids estimated
  from the quiet parts of the block (``_fit_lines``); optional Gaussian notches
  (``notch_sigma_hz`` > 0) remove what is left;
* ECG: QRS energy sits mostly below ~30 Hz and is removed by the high-pass (raise ``band_hz[0]``
  to 30 Hz for trunk muscles near the heart); what survives is short and is rejected by the
  detector's minimum-duration rule.

Because every block sees the same samples whatever chunks the caller feeds, chunked processing
gives results identical to a single pass.

Cost (the issue-6 speed goal): float32 real FFTs, two forward (the block, then the fitted hum)
and one inverse per block; the mains search reads only the spectral bins near 50/60 Hz
harmonics; the hum is fitted on one sample in eight and rebuilt from amplitude knots every
16 ms with one small matrix product; arrays are processed channels-first because numpy reduces
along the last axis much faster than along the first axis of a 2-column array; no BLAS
matrix-vector products (OpenBLAS would start threads for them and spin on a shared machine).
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
    finite = np.isfinite(out)
    if not finite.all():
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


@functools.lru_cache(maxsize=16)
def _line_bins(n_fft: int, fs_hz: float, band_top_hz: float) -> NDArray[np.int64]:
    """rfft bins within 7 Hz of any 50/60 Hz harmonic that the mains search may look at."""
    df = fs_hz / n_fft
    n_f = n_fft // 2 + 1
    top = min(fs_hz / 2 - 6.0, band_top_hz + 6.0)
    centres = [k * f0 for f0 in (50.0, 60.0) for k in range(1, int(top // f0) + 1)]
    k_out = max(1, round(7.0 / df)) + 1
    idx = np.unique(
        np.rint(np.asarray(centres) / df).astype(np.int64)[:, None] + np.arange(-k_out, k_out + 1)
    )
    idx = idx[(idx >= 0) & (idx < n_f)]
    idx.flags.writeable = False
    return idx


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

    One forward and one inverse real FFT: the spectrum serves the mains search and the
    band-pass; the hum (fitted in the time domain, see ``_fit_lines``) is narrow-band, so its
    band-passed version is the hum times the band-pass gain at its line, subtracted from the
    rows returned.
    """
    m = x_pad.shape[0]
    r_lo, r_hi = (0, m) if rows is None else rows
    n_fft = scipy.fft.next_fast_len(m, real=True)
    # Channels first inside: numpy reduces and accumulates along the last axis much faster
    # than along the first axis of a 2-column array.
    xt = np.array(np.asarray(x_pad).T, dtype=np.float64, order="C")  # a copy: modified below
    # A least-squares line per channel keeps the wrap-around step small; the high-pass removes it.
    # (Reductions rather than a matrix-vector product: BLAS would start threads for this and,
    # on a shared machine, burn CPU spinning.)
    t = np.linspace(-1.0, 1.0, m)
    slope = (xt * t).sum(axis=1) / float((t * t).sum())
    xt -= xt.mean(axis=1)[:, None]
    xt -= slope[:, None] * t
    taper = None
    if margin > 0 and 2 * margin < m:
        taper = (0.5 - 0.5 * np.cos(np.pi * (np.arange(margin) + 0.5) / margin)).astype(np.float32)
    spec = _rfft_tapered(xt, taper, n_fft)  # (ch, n_f)
    band = band_edges_hz(fs_hz, params.band_hz)
    mains: float | None = None
    lines: list[float] = []
    if params.mains_hz is not None:
        f = np.asarray(np.fft.rfftfreq(n_fft, 1.0 / fs_hz), dtype=np.float64)
        forced = None if isinstance(params.mains_hz, str) else float(params.mains_hz)
        # Only the bins around the candidate lines are ever looked at.
        power = np.zeros(f.size)
        sel = (
            _line_bins(n_fft, float(fs_hz), band[1])
            if forced in (None, 50.0, 60.0)
            else np.arange(f.size)
        )
        part = spec[:, sel]
        power[sel] = np.einsum("cf,cf->f", part.real, part.real, dtype=np.float64) + np.einsum(
            "cf,cf->f", part.imag, part.imag, dtype=np.float64
        )
        mains, lines = mains_lines(power, f, fs_hz, params.mains_min_ratio, forced, band[1])
        lines = [_refine_line(power, f, fl) for fl in lines]
    if params.notch_sigma_hz > 0 and lines:
        sigma = max(params.notch_sigma_hz, 2.0 * fs_hz / n_fft)
        gain = conditioning_gain(n_fft, fs_hz, band, lines, sigma).astype(np.float32)
    else:
        gain = _band_gain_f32(n_fft, float(fs_hz), band)
    if lines:
        # The fitted hum is subtracted in the frequency domain, before the band-pass: its
        # amplitude estimate carries a little leaked wander/ECG, which the band-pass removes.
        spec -= _rfft_tapered(_fit_lines(xt, lines, fs_hz, 0, m), taper, n_fft)
    spec *= gain
    y = np.asarray(scipy.fft.irfft(spec, n=n_fft, axis=1)[:, r_lo:r_hi], dtype=np.float64)
    return y.T, mains


def _rfft_tapered(
    xt: FloatArray, taper: NDArray[np.float32] | None, n_fft: int
) -> NDArray[np.complex64]:
    """rfft along the last axis of ``(ch, m)`` data in float32, ends tapered."""
    x = xt.astype(np.float32)
    if taper is not None:
        k = taper.size
        x[:, :k] *= taper
        x[:, x.shape[1] - k :] *= taper[::-1]
    return np.asarray(scipy.fft.rfft(x, n=n_fft, axis=1))


def _refine_line(power: FloatArray, f: FloatArray, f_line: float) -> float:
    """Peak frequency to a fraction of a bin (parabola through the log power at the peak)."""
    j = int(np.rint(f_line / (f[1] - f[0])))
    if j < 1 or j >= f.size - 1:
        return f_line
    a, b, c = np.log(np.maximum(power[j - 1 : j + 2], 1e-300))
    den = a - 2 * b + c
    delta = 0.5 * (a - c) / den if den < 0 else 0.0
    return float(f[j] + np.clip(delta, -0.5, 0.5) * (f[1] - f[0]))


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


HUM_KNOT_S = 0.016


def _fit_lines(
    x: FloatArray,
    lines: Sequence[float],
    fs_hz: float,
    lo: int,
    hi: int,
) -> FloatArray:
    """Hum at ``lines`` with slowly varying amplitude and phase: ``(ch, hi - lo)`` for the
    samples ``lo..hi-1`` of the channels-first block ``x`` ``(ch, m)``.

    Each line is demodulated (multiplied by ``exp(-2 pi i f t)``) and its complex amplitude
    averaged over a centered 2 s window, so hum whose level drifts (cables, posture) is
    followed. Samples in 50 ms windows whose high-frequency power (first difference) exceeds
    three times the block median are left out of the averages, so contractions, whose spectrum
    also covers the mains frequencies, do not leak into the hum estimate (and back out as an
    echo around them). A 100 ms moving mean is subtracted first: it removes baseline wander but
    leaves every multiple of 10 Hz (50, 60 Hz and harmonics) untouched. The averages are formed
    on one sample in eight (jittered, so no line aliases onto another) and, being slow, are
    evaluated on knots every ``HUM_KNOT_S`` and interpolated linearly between them; the hum of
    every line is then one small matrix product per channel.
    """
    n_ch, n = x.shape
    step = 8 if n >= 64 * 8 else 1
    n_rows = n // step
    rows = np.arange(0, n - step + 1, step) + (np.arange(n_rows) * 5) % step
    # The 100 ms moving mean (shrinking at the ends) is only needed at the rows.
    half = min(max(1, round(0.1 * fs_hz)) // 2, max((n - 1) // 2, 0))
    cs = np.zeros((n_ch, n + 1))
    np.cumsum(x, axis=1, out=cs[:, 1:])
    top = np.minimum(rows + half + 1, n)
    bot = np.maximum(rows - half, 0)
    x_rows = x[:, rows] - (cs[:, top] - cs[:, bot]) / (top - bot)
    # Quiet windows from the first difference of the data (the moving mean's own difference is
    # ~1/100 of it and does not change which windows are quiet).
    w_len = max(1, round(0.05 * fs_hz))
    n_win = n // w_len
    if n_win:
        dx = np.diff(x[:, : n_win * w_len], axis=1, prepend=x[:, :1]).reshape(n_ch, n_win, w_len)
        win_pw = np.einsum("cwk,cwk->cw", dx, dx)
        quiet = np.hstack([win_pw <= 3.0 * np.median(win_pw, axis=1)[:, None],
                           np.ones((n_ch, 1), bool)])
        w_rows = quiet[:, np.minimum(rows // w_len, n_win)].astype(np.float64)
    else:
        w_rows = np.ones((n_ch, n_rows))
    avg = max(1, round(2.0 * fs_hz / step))
    f_l = np.asarray(lines, dtype=np.float64)
    n_l = f_l.size
    omega = 2 * np.pi * f_l / fs_hz  # rad per sample
    # rows[i] = step i + (5 i mod step) repeats its jitter every ``step`` rows, so the
    # demodulating phasors are products of two short tables.
    n_q = -(-n_rows // step)
    r_in = np.arange(step)
    within = np.exp(-1j * np.outer(omega, step * r_in + (5 * r_in) % step))  # (L, step)
    outer = np.exp(-1j * np.outer(omega, step * step * np.arange(n_q)))  # (L, n_q)
    demod = (outer[:, :, None] * within[:, None, :]).reshape(n_l, -1)[:, :n_rows]
    xw = x_rows * w_rows  # (ch, n_rows)
    # Centered moving sums over ``avg`` rows (shrinking at the ends) from cumulative sums, only
    # at the two rows around each knot; linear interpolation between them as np.interp would.
    cs_a = np.zeros((n_ch, n_l, n_rows + 1), dtype=np.complex128)
    np.cumsum(xw[:, None, :] * demod[None, :, :], axis=-1, out=cs_a[:, :, 1:])
    cs_w = np.zeros((n_ch, n_rows + 1))
    np.cumsum(w_rows, axis=-1, out=cs_w[:, 1:])
    h_avg = min(avg // 2, max((n_rows - 1) // 2, 0))
    k_len = max(1, round(HUM_KNOT_S * fs_hz))
    n_k = -(-(hi - lo) // k_len)
    knots = lo + k_len * np.arange(n_k + 1)
    i1 = np.clip(np.searchsorted(rows, knots, side="right"), 1, n_rows - 1)
    i0 = i1 - 1
    frac = np.clip((knots - rows[i0]) / (rows[i1] - rows[i0]), 0.0, 1.0)

    def at(i: NDArray[np.int64]) -> NDArray[np.complex128]:
        top = np.minimum(i + h_avg + 1, n_rows)
        bot = np.maximum(i - h_avg, 0)
        den = np.maximum(cs_w[:, top] - cs_w[:, bot], 1.0)  # (ch, n_knots)
        return np.asarray((cs_a[:, :, top] - cs_a[:, :, bot]) / den[:, None, :])

    a_k = at(i0) * (1.0 - frac) + at(i1) * frac  # (ch, L, n_k + 1)
    carrier = 2.0 * np.exp(1j * np.outer(omega, knots[:-1]))  # (L, n_k)
    p_k = a_k[:, :, :-1] * carrier  # (ch, L, n_k)
    q_k = (a_k[:, :, 1:] - a_k[:, :, :-1]) * carrier
    j = np.arange(k_len)
    c_j = np.exp(1j * np.outer(omega, j))  # (L, K)
    uc_j = c_j * (j / k_len)
    basis = np.concatenate([c_j.real, c_j.imag, uc_j.real, uc_j.imag])  # (4L, K)
    coef = np.concatenate([p_k.real, -p_k.imag, q_k.real, -q_k.imag], axis=1)  # (ch, 4L, n_k)
    hum = np.matmul(coef.transpose(0, 2, 1), basis)  # (ch, n_k, K)
    return np.asarray(hum.reshape(n_ch, n_k * k_len)[:, : hi - lo])


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
