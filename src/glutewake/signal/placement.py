"""Recognise the sensor placement (thigh or waist) from the data.

While walking, the thigh swings through 40-60° at each stride, so the gravity direction seen
by a thigh sensor sways widely; the pelvis keeps within a few degrees. The 90th percentile of
the angle between the low-passed (3 Hz) acceleration direction and its mean over a walking
bout separates the two: on MotionSense (front pocket) it was 13-35°, on HAPT (belt)
9-17°; the default threshold is 14°.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from scipy.signal import butter, sosfiltfilt

from glutewake.signal.runs import runs_of

__all__ = ["gait_swing_deg", "guess_placement"]


def gait_swing_deg(window_g: np.ndarray, fs_hz: float, *, lowpass_hz: float = 3.0) -> float:
    """90th percentile angle (degrees) of the low-passed acceleration from its mean direction."""
    w = np.asarray(window_g, dtype=np.float64)
    if w.shape[0] < 16:
        return float("nan")
    sos = butter(2, min(lowpass_hz, 0.45 * fs_hz), fs=fs_hz, output="sos")
    lp = sosfiltfilt(sos, w, axis=0)
    u = lp / np.linalg.norm(lp, axis=1, keepdims=True)
    m = u.mean(axis=0)
    m /= np.linalg.norm(m)
    return float(np.percentile(np.degrees(np.arccos(np.clip(u @ m, -1.0, 1.0))), 90))


def guess_placement(
    acc_g: npt.ArrayLike,
    fs_hz: float,
    samples_per_epoch: int,
    walking: np.ndarray,
    *,
    threshold_deg: float = 14.0,
    max_bouts: int = 10,
    window_s: float = 10.0,
) -> tuple[str, float]:
    """``("thigh" | "waist", swing)`` from up to ``max_bouts`` walking bouts (longest first).

    Returns ``("thigh", nan)`` when there is no walking to judge by.
    """
    starts, ends = runs_of(walking)
    if starts.size == 0:
        return "thigh", float("nan")
    order = np.argsort(starts - ends)[:max_bouts]  # longest first
    n_win = round(window_s * fs_hz)
    swings = []
    for i in order:
        a = int(starts[i]) * samples_per_epoch
        b = min(int(ends[i]) * samples_per_epoch, a + n_win)
        swings.append(gait_swing_deg(np.asarray(acc_g[a:b]), fs_hz))  # type: ignore[index]
    swing = float(np.nanmedian(swings))
    return ("thigh" if swing >= threshold_deg else "waist"), swing
