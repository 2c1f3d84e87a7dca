"""Vertical displacement across postural transitions (sit-to-stand rises, stand-to-sit drops).

At the waist, sitting and standing can look alike in inclination (a straight-backed sitter
tilts the pelvis only a few degrees), but getting up lifts the pelvis by about 0.3 m and
sitting down lowers it as much. The vertical displacement across a short movement between two
still periods is found by integrating the vertical (gravity-aligned) acceleration twice:
the gravity baseline moves from the still level before to the still level after in step with
the change of orientation (so accelerometer gain errors do not become drift), and the velocity
is detrended to be zero at both still ends.
"""

from __future__ import annotations

import numpy as np
from scipy.signal import butter, sosfiltfilt

__all__ = ["period_displacements", "vertical_displacement_m"]

_G_M_S2 = 9.80665


def vertical_displacement_m(
    window_g: np.ndarray, fs_hz: float, *, still_s: float = 0.5, lowpass_hz: float = 1.0
) -> float:
    """Net vertical displacement (m, up positive) across a movement flanked by still samples.

    Parameters
    ----------
    window_g : ndarray, shape (m, 3)
        Acceleration (g) from shortly before to shortly after the movement; its first and
        last ``still_s`` seconds must be still.
    fs_hz : float
        Sampling rate.
    still_s : float
        Length of the still reference at each end.
    lowpass_hz : float
        Cut-off of the low-pass giving the gravity direction during the movement.

    Returns
    -------
    float
        Displacement in metres; NaN if the window is too short.

    Examples
    --------
    >>> fs = 50.0
    >>> t = np.arange(int(4 * fs)) / fs
    >>> a_z = np.where(t < 1, 0, np.where(t < 2, -0.06, np.where(t < 3, 0.06, 0)))  # 0.59 m drop
    >>> acc = np.c_[0 * t, 0 * t, 1 + a_z]
    >>> round(vertical_displacement_m(acc, fs), 2)
    -0.59
    """
    w = np.asarray(window_g, dtype=np.float64)
    n_still = max(2, round(still_s * fs_hz))
    if w.ndim != 2 or w.shape[1] != 3 or w.shape[0] < 3 * n_still or w.shape[0] < 16:
        return float("nan")
    norm = np.linalg.norm(w, axis=1)
    before = w[:n_still].mean(axis=0)
    after = w[-n_still:].mean(axis=0)
    g_before, g_after = float(np.linalg.norm(before)), float(np.linalg.norm(after))
    u_before, u_after = before / g_before, after / g_after
    total_deg = float(np.degrees(np.arccos(np.clip(u_before @ u_after, -1.0, 1.0))))
    if total_deg > 3.0:
        sos = butter(2, min(lowpass_hz, 0.45 * fs_hz), fs=fs_hz, output="sos")
        lp = sosfiltfilt(sos, w, axis=0)
        lp /= np.linalg.norm(lp, axis=1, keepdims=True)
        progress = np.degrees(np.arccos(np.clip(lp @ u_before, -1.0, 1.0))) / total_deg
        progress = np.clip(progress, 0.0, 1.0)
    else:
        progress = np.linspace(0.0, 1.0, norm.size)
    baseline = g_before + (g_after - g_before) * progress
    vel = np.cumsum((norm - baseline) * _G_M_S2) / fs_hz
    vel -= np.linspace(0.0, vel[-1], vel.size)
    return float(np.sum(vel) / fs_hz)


def period_displacements(
    acc_g: np.ndarray,
    fs_hz: float,
    samples_per_epoch: int,
    period_start: np.ndarray,
    period_end: np.ndarray,
    *,
    max_gap_epochs: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Vertical displacement into and out of each still period.

    Parameters
    ----------
    acc_g : array_like, shape (n, 3)
        The samples (anything sliceable, e.g. a memory map).
    fs_hz : float
    samples_per_epoch : int
    period_start, period_end : ndarray of int
        Epoch bounds (end exclusive) of consecutive still periods, sorted.
    max_gap_epochs : int
        Only movements between periods at most this long are measured (longer ones are
        walking or activity, not a single transition).

    Returns
    -------
    into_m, out_of_m : ndarray
        Displacement of the movement before / after each period (NaN where not measured).
    """
    k = period_start.size
    into = np.full(k, np.nan)
    out = np.full(k, np.nan)
    spe = samples_per_epoch
    for i in range(k - 1):
        gap = int(period_start[i + 1] - period_end[i])
        if gap < 1 or gap > max_gap_epochs:
            continue
        a = (int(period_end[i]) - 1) * spe
        b = (int(period_start[i + 1]) + 1) * spe
        d = vertical_displacement_m(np.asarray(acc_g[a:b]), fs_hz, still_s=0.5 * spe / fs_hz)
        out[i] = d
        into[i + 1] = d
    return into, out
