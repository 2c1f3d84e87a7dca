"""Surface-EMG conditioning: band-pass, mains removal, TKEO and moving-window envelopes.

The conditioning runs block by block on a fixed grid of blocks (``block_samples`` long, each with
``margin_samples`` of real neighbouring data on both sides), as a zero-phase filter applied in the
frequency domain (one real FFT per padded block):

* band-pass: the magnitude response of a zero-phase (forward-backward) 4th-order Butterworth
  high-pass at ``band_hz[0]`` (default 20 Hz) and low-pass at ``band_hz[1]`` (default
  ``min(450, 0.45 fs)``), so 20-450 Hz at 1 kHz and above, 20-90 Hz at 200 Hz;
* mains: the block's spectrum is searched for a narrow line at 50 or 60 Hz and their harmonics;
  when one stands out (peak-to-neighbourhood power ratio above ``mains_min_ratio``), Gaussian
  notches (sigma ``notch_sigma_hz``) are applied at every harmonic below Nyquist;
* ECG: QRS energy sits mostly below ~30 Hz and is removed by the high-pass (raise ``band_hz[0]``
  to 30 Hz for trunk muscles near the heart); what survives is short (< 100 ms) and is rejected by
  the detector's minimum-duration rule.

Because every block sees the same samples whatever chunks the caller feeds, chunked processing
gives results identical to a single pass. The filter's impulse response (notch sigma 0.75 Hz ->
about 0.2 s time spread) is far shorter than the 1 s margins, so the block seams are invisible.
"""

from __future__ import annotations

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
    "moving_mean_centered",
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
    notch_sigma_hz: float = 0.75
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
    mains_hz: float | None,
    notch_sigma_hz: float = 0.75,
) -> FloatArray:
    """Real zero-phase gain on the ``rfftfreq(n_fft, 1/fs)`` grid (band-pass times notches)."""
    f = np.fft.rfftfreq(n_fft, 1.0 / fs_hz)
    lo, hi = band_hz
    with np.errstate(divide="ignore"):
        hp = 1.0 / (1.0 + (lo / f) ** 8)
    hp[0] = 0.0
    gain = hp / (1.0 + (f / hi) ** 8)
    if mains_hz is not None:
        for k in range(1, int((fs_hz / 2) // mains_hz) + 1):
            gain *= 1.0 - np.exp(-0.5 * ((f - k * mains_hz) / notch_sigma_hz) ** 2)
    return np.asarray(gain, dtype=np.float64)


def _line_ratio(power: FloatArray, f: FloatArray, f_line: float) -> float:
    peak_sel = np.abs(f - f_line) <= 0.5
    ref_sel = (np.abs(f - f_line) >= 1.5) & (np.abs(f - f_line) <= 6.0)
    if not peak_sel.any() or ref_sel.sum() < 3:
        return 0.0
    ref = float(np.median(power[ref_sel]))
    return float(power[peak_sel].max() / ref) if ref > 0 else 0.0


def mains_from_spectrum(power: FloatArray, f: FloatArray, fs_hz: float, min_ratio: float
                        ) -> float | None:
    """50, 60 or None: the mains family whose strongest harmonic line stands out most.

    ``power`` is a power spectrum (summed over channels) on the frequency grid ``f``.
    """
    best: float | None = None
    best_ratio = min_ratio
    for f0 in (50.0, 60.0):
        ratios = [
            _line_ratio(power, f, k * f0) for k in range(1, 4) if k * f0 < fs_hz / 2 - 6.0
        ]
        r = max(ratios, default=0.0)
        if r > best_ratio:
            best, best_ratio = f0, r
    return best


def condition_block(
    x_pad: FloatArray, fs_hz: float, params: ConditioningParams
) -> tuple[FloatArray, float | None]:
    """Condition one padded block ``(m, n_channels)``; returns it filtered and the mains used."""
    m = x_pad.shape[0]
    n_fft = scipy.fft.next_fast_len(m, real=True)
    # A least-squares line per channel keeps the wrap-around step small (the margins absorb the
    # rest); it is removed by the high-pass anyway.
    t = np.linspace(-1.0, 1.0, m)
    slope = (t @ x_pad) / (t @ t)
    x = x_pad - x_pad.mean(axis=0) - np.outer(t, slope)
    spec = scipy.fft.rfft(x, n=n_fft, axis=0)
    band = band_edges_hz(fs_hz, params.band_hz)
    mains: float | None
    if params.mains_hz == "auto":
        f = np.fft.rfftfreq(n_fft, 1.0 / fs_hz)
        power = np.sum(spec.real**2 + spec.imag**2, axis=1)
        mains = mains_from_spectrum(power, f, fs_hz, params.mains_min_ratio)
    elif params.mains_hz is None or isinstance(params.mains_hz, str):
        mains = None
    else:
        mains = float(params.mains_hz)
    gain = conditioning_gain(n_fft, fs_hz, band, mains, params.notch_sigma_hz)
    y = scipy.fft.irfft(spec * gain[:, None], n=n_fft, axis=0)[:m]
    return np.asarray(y, dtype=np.float64), mains


def moving_mean_centered(x: FloatArray, half: int, lo: int, hi: int) -> FloatArray:
    """Centered moving mean (window ``2 half + 1``) of ``x`` evaluated at rows ``lo..hi-1``.

    Requires ``half <= lo`` and ``hi + half <= len(x)`` (the caller supplies margins).
    """
    cs = np.empty((x.shape[0] + 1, *x.shape[1:]))
    cs[0] = 0.0
    np.cumsum(x, axis=0, out=cs[1:])
    return np.asarray((cs[lo + half + 1 : hi + half + 1] - cs[lo - half : hi - half])
                      / (2 * half + 1))


def tkeo_abs(y: FloatArray) -> FloatArray:
    """|Teager-Kaiser energy| ``|y[n]^2 - y[n-1] y[n+1]|``, same length (ends copied)."""
    out = np.empty_like(y)
    out[1:-1] = np.abs(y[1:-1] ** 2 - y[:-2] * y[2:])
    out[0] = out[1]
    out[-1] = out[-2]
    return out
