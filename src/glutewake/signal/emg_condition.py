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
"""

from __future__ import annotations

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
    lo, hi = band_hz
    with np.errstate(divide="ignore"):
        hp = 1.0 / (1.0 + (lo / f) ** 8)
    hp[0] = 0.0
    gain = hp / (1.0 + (f / hi) ** 8)
    for f_line in lines_hz:
        sel = np.abs(f - f_line) < 6 * notch_sigma_hz
        gain[sel] *= 1.0 - np.exp(-0.5 * ((f[sel] - f_line) / notch_sigma_hz) ** 2)
    return np.asarray(gain, dtype=np.float64)


def _line(power: FloatArray, f: FloatArray, f_line: float) -> tuple[float, float]:
    """(peak-to-neighbourhood power ratio, peak frequency) of a spectral line near ``f_line``.

    Peak: the strongest bin within +-0.5 Hz; neighbourhood: median of the bins 1.5-6 Hz away.
    """
    df = float(f[1] - f[0])
    j0 = round(f_line / df)
    k_pk, k_in, k_out = (max(1, round(h / df)) for h in (0.5, 1.5, 6.0))
    if j0 - k_out < 0 or j0 + k_out >= power.size:
        return 0.0, f_line
    peak = power[j0 - k_pk : j0 + k_pk + 1]
    ref_bins = np.concatenate(
        [power[j0 - k_out : j0 - k_in + 1], power[j0 + k_in : j0 + k_out + 1]]
    )
    ref = float(np.median(ref_bins))
    j = j0 - k_pk + int(np.argmax(peak))
    return (float(power[j] / ref) if ref > 0 else 0.0), float(f[j])


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
    best: float | None = None
    best_lines: list[float] = []
    best_ratio = min_ratio
    for f0 in (50.0, 60.0) if family_hz is None else (family_hz,):
        top = min(fs_hz / 2 - 6.0, band_top_hz + 6.0)
        found = [_line(power, f, k * f0) for k in range(1, int(top // f0) + 1)]
        r = max((x[0] for x in found), default=0.0)
        if r > best_ratio or family_hz is not None:
            best, best_ratio = f0, r
            # Harmonics need less evidence once the family is established: removing a spurious
            # line costs a fitted sinusoid (negligible EMG), leaving a real one costs a hum.
            best_lines = [fr for ratio, fr in found if ratio > 0.4 * min_ratio]
    return best, best_lines


def mains_from_spectrum(
    power: FloatArray, f: FloatArray, fs_hz: float, min_ratio: float
) -> float | None:
    """50, 60 or None: the mains family whose strongest line stands out most."""
    return mains_lines(power, f, fs_hz, min_ratio)[0]


def condition_block(
    x_pad: FloatArray, fs_hz: float, params: ConditioningParams, margin: int = 0
) -> tuple[FloatArray, float | None]:
    """Condition one padded block ``(m, n_channels)``; returns it filtered and the mains used.

    The ``margin`` rows at each end are tapered (half-cosine) before the FFT, which keeps the
    mains lines narrow in the spectrum; those rows are not used by the caller.
    """
    m = x_pad.shape[0]
    n_fft = scipy.fft.next_fast_len(m, real=True)
    # A least-squares line per channel keeps the wrap-around step small; the high-pass removes it.
    t = np.linspace(-1.0, 1.0, m)
    slope = (t @ x_pad) / (t @ t)
    x64 = x_pad - x_pad.mean(axis=0) - np.outer(t, slope)
    taper = None
    if margin > 0 and 2 * margin < m:
        taper = (0.5 - 0.5 * np.cos(np.pi * (np.arange(margin) + 0.5) / margin)).astype(np.float32)
    spec = _rfft_tapered(x64, taper, n_fft)
    band = band_edges_hz(fs_hz, params.band_hz)
    f = np.asarray(np.fft.rfftfreq(n_fft, 1.0 / fs_hz), dtype=np.float64)
    mains: float | None = None
    lines: list[float] = []
    if params.mains_hz is not None:
        power = np.sum(
            spec.real.astype(np.float64) ** 2 + spec.imag.astype(np.float64) ** 2, axis=1
        )
        forced = None if isinstance(params.mains_hz, str) else float(params.mains_hz)
        mains, lines = mains_lines(power, f, fs_hz, params.mains_min_ratio, forced, band[1])
        if lines:
            # Subtract the hum as fitted sinusoids first (amplitude and phase varying smoothly
            # over the block): a notch alone leaves seams at block edges where the taper
            # modulates a strong hum. The notch then removes what the fit leaves.
            lines = [_refine_line(power, f, fl) for fl in lines]
            x64 = x64 - _fit_lines(x64, lines, fs_hz, t)
            spec = _rfft_tapered(x64, taper, n_fft)
    sigma = max(params.notch_sigma_hz, 2.0 * fs_hz / n_fft)
    notched = lines if params.notch_sigma_hz > 0 else []
    gain = conditioning_gain(n_fft, fs_hz, band, notched, sigma).astype(np.float32)
    y = scipy.fft.irfft(spec * gain[:, None], n=n_fft, axis=0)[:m]
    return np.asarray(y, dtype=np.float64), mains


def _rfft_tapered(
    x64: FloatArray, taper: NDArray[np.float32] | None, n_fft: int
) -> NDArray[np.complex64]:
    x = x64.astype(np.float32)
    if taper is not None:
        k = taper.size
        x[:k] *= taper[:, None]
        x[x.shape[0] - k :] *= taper[::-1, None]
    return np.asarray(scipy.fft.rfft(x, n=n_fft, axis=0))


def _refine_line(power: FloatArray, f: FloatArray, f_line: float) -> float:
    """Peak frequency to a fraction of a bin (parabola through the log power at the peak)."""
    j = int(np.argmin(np.abs(f - f_line)))
    if j < 1 or j >= f.size - 1:
        return f_line
    a, b, c = np.log(np.maximum(power[j - 1 : j + 2], 1e-300))
    den = a - 2 * b + c
    delta = 0.5 * (a - c) / den if den < 0 else 0.0
    return float(f[j] + np.clip(delta, -0.5, 0.5) * (f[1] - f[0]))


def _moving_sum(x: NDArray[np.generic], width: int) -> NDArray[np.generic]:
    """Centered moving sum along axis 0 (the window shrinks at the ends)."""
    n = x.shape[0]
    half = min(width // 2, max((n - 1) // 2, 0))
    cs = np.zeros((n + 1, *x.shape[1:]), dtype=x.dtype)
    np.cumsum(x, axis=0, out=cs[1:])
    out = np.empty_like(cs[1:])
    out[half : n - half] = cs[2 * half + 1 :] - cs[: n - 2 * half]
    out[:half] = cs[half + 1 : 2 * half + 1]
    out[n - half :] = cs[n] - cs[n - 2 * half : n - half]
    return out


def _fit_lines(x: FloatArray, lines: Sequence[float], fs_hz: float, t: FloatArray) -> FloatArray:
    """Hum at ``lines`` with slowly varying amplitude and phase, estimated per channel.

    Each line is demodulated (multiplied by ``exp(-2 pi i f t)``) and its complex amplitude
    averaged over a centered 2 s window, so hum whose level drifts (cables, posture) is
    followed. Samples in 50 ms windows whose high-frequency power (first difference) exceeds
    three times the block median are left out of the averages, so contractions, whose spectrum
    also covers the mains frequencies, do not leak into the hum estimate (and back out as an
    echo around them). A 100 ms moving mean is subtracted first: it removes baseline wander but
    leaves every multiple of 10 Hz (50, 60 Hz and harmonics) untouched. The averages are formed
    on one sample in eight and interpolated.
    """
    del t
    n = x.shape[0]
    m = max(1, round(0.1 * fs_hz))
    counts = _moving_sum(np.ones((n, 1)), m).astype(np.float64)
    x = x - np.asarray(_moving_sum(x, m), dtype=np.float64) / counts
    w_len = max(1, round(0.05 * fs_hz))
    n_win = n // w_len
    dx = np.diff(x, axis=0, prepend=x[:1])
    w = np.ones_like(x)
    if n_win:
        win_pw = (dx[: n_win * w_len] ** 2).reshape(n_win, w_len, -1).mean(axis=1)
        quiet = (win_pw <= 3.0 * np.median(win_pw, axis=0)).astype(np.float64)
        w[: n_win * w_len] = np.repeat(quiet, w_len, axis=0)
    # The averages only need to follow a slow amplitude: they are formed on a fixed, jittered
    # subset of one sample in eight (jittered so no line aliases onto another) and interpolated.
    step = 8 if n >= 64 * 8 else 1
    rows = np.arange(0, n - step + 1, step) + (np.arange(n // step) * 5) % step
    avg = max(1, round(2.0 * fs_hz / step))
    t_rows = rows / fs_hz
    w_rows = w[rows]
    den = np.maximum(np.asarray(_moving_sum(w_rows, avg), dtype=np.float64), 1.0)
    xw = x[rows] * w_rows
    t_all = np.arange(n) / fs_hz
    out = np.zeros_like(x)
    for fl in lines:
        amp = _moving_sum(xw * np.exp(-2j * np.pi * fl * t_rows)[:, None], avg) / den
        c, s_ = np.cos(2 * np.pi * fl * t_all), np.sin(2 * np.pi * fl * t_all)
        for ch in range(x.shape[1]):
            re = np.interp(t_all, t_rows, amp[:, ch].real)
            im = np.interp(t_all, t_rows, amp[:, ch].imag)
            out[:, ch] += 2.0 * (re * c - im * s_)
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
