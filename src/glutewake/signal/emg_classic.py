"""Classic onset detectors kept for comparison: Hodges-Bui (1996) and Bonato et al. (1998).

Both run on the whole conditioned recording (same conditioning as the default method), with the
baseline from the lowest quarter of 100 ms sub-windows of the whole recording (see
:func:`quiet_stats`), and the same
merge (100 ms) and minimum-duration (100 ms) rules as the default. They are not streamed.

* Hodges & Bui: full-wave rectification, 50 Hz low-pass (zero-phase 2nd-order Butterworth),
  centered 25 ms moving mean; active while above baseline mean + 3 SD.
* Bonato: noise-normalised test statistic on sample pairs
  ``g = (y[2k]^2 + y[2k+1]^2) / sigma^2`` (chi-square, 2 dof, under rest); a pair is a hit when
  ``g > 7.82`` (false-alarm probability 0.02); active where at least ``r0 = 1`` of ``m = 5``
  consecutive pairs hit; active spans shorter than 25 ms are ignored.
"""

from __future__ import annotations

import numpy as np
import scipy.signal
from numpy.typing import NDArray

__all__ = ["active_runs", "bonato_active", "hodges_bui_active", "merge_runs", "quiet_stats"]

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]
IntArray = NDArray[np.int64]


def quiet_stats(x: FloatArray, nsub: int) -> tuple[float, float]:
    """Baseline mean and SD of ``x`` robust to contractions.

    ``x`` is cut into ``nsub``-sample sub-windows; the lowest quarter of their means is taken as
    rest and fitted by a Gaussian lower tail (``sigma_m = (q25 - q5) / 0.97``,
    ``mean = q25 + 0.674 sigma_m``); the SD adds the mean within-window variance of those windows.
    """
    n_full = (x.size // nsub) * nsub
    if n_full < 4 * nsub:
        return float(np.mean(x)), float(np.std(x))
    w = x[:n_full].reshape(-1, nsub)
    means = w.mean(axis=1)
    q5, q25 = np.percentile(means, [5.0, 25.0])
    sigma_m = (q25 - q5) / 0.97
    quiet = means <= q25
    within2 = float(np.mean(w[quiet].var(axis=1)))
    return float(q25 + 0.674 * sigma_m), float(np.sqrt(sigma_m**2 + within2))


def active_runs(active: BoolArray) -> tuple[IntArray, IntArray]:
    """Start (inclusive) and end (exclusive) indices of the True runs."""
    d = np.diff(np.r_[np.int8(0), active.astype(np.int8), np.int8(0)])
    return np.flatnonzero(d == 1).astype(np.int64), np.flatnonzero(d == -1).astype(np.int64)


def merge_runs(
    starts: IntArray, ends: IntArray, gap: int, min_len: int
) -> tuple[IntArray, IntArray]:
    """Merge runs closer than ``gap`` samples, then drop runs shorter than ``min_len``."""
    if starts.size == 0:
        return starts, ends
    new = np.r_[True, starts[1:] - ends[:-1] >= gap]
    group = np.cumsum(new) - 1
    m_starts = starts[new]
    m_ends = np.zeros(m_starts.size, dtype=np.int64)
    np.maximum.at(m_ends, group, ends)
    keep = m_ends - m_starts >= min_len
    return m_starts[keep], m_ends[keep]


def hodges_bui_active(
    y: FloatArray,
    fs_hz: float,
    *,
    h_sd: float = 3.0,
    lp_hz: float = 50.0,
    window_s: float = 0.025,
    nsub: int = 100,
) -> BoolArray:
    """Hodges-Bui activity mask for one conditioned channel."""
    sos = scipy.signal.butter(2, lp_hz, fs=fs_hz, output="sos")
    env = scipy.signal.sosfiltfilt(sos, np.abs(y))
    w = max(1, round(window_s * fs_hz))
    env = np.convolve(env, np.ones(w) / w, mode="same")
    mu, sd = quiet_stats(env, nsub)
    return np.asarray(env > mu + h_sd * sd)


def bonato_active(
    y: FloatArray,
    fs_hz: float,
    *,
    zeta: float = 7.82,
    m: int = 5,
    r0: int = 1,
    min_active_s: float = 0.025,
    nsub: int = 100,
) -> BoolArray:
    """Bonato double-threshold activity mask for one conditioned channel."""
    n_pairs = y.size // 2
    # Noise variance = baseline mean of the squared (zero-mean, band-limited) signal.
    sigma2 = max(quiet_stats(y * y, nsub)[0], 1e-24)
    pairs = y[: 2 * n_pairs].reshape(-1, 2)
    g = (pairs**2).sum(axis=1) / sigma2
    hits = (g > zeta).astype(np.int64)
    cs = np.r_[0, np.cumsum(hits)]
    # hits among the last m pairs, so activity starts at the first hit (no look-ahead bias)
    idx = np.arange(n_pairs)
    count = cs[idx + 1] - cs[np.maximum(idx + 1 - m, 0)]
    active_pairs = count >= r0
    st, en = active_runs(active_pairs)
    min_pairs = max(1, round(min_active_s * fs_hz / 2))
    keep = en - st >= min_pairs
    mask = np.zeros(n_pairs, dtype=bool)
    for s, e in zip(st[keep], en[keep], strict=True):
        mask[s:e] = True
    out = np.zeros(y.size, dtype=bool)
    out[: 2 * n_pairs] = np.repeat(mask, 2)
    return out
