"""Accelerometer auto-calibration from still periods (gain and offset so that still = 1 g).

The method follows van Hees et al. (2014, J Appl Physiol 117:738): the means of still epochs
should lie on the unit sphere; per-axis gain and offset are fitted by iterated least squares
towards the sphere. It runs on epoch means only, so it costs nothing at the sample level.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Calibration", "apply_calibration", "calibrate_from_epochs"]


@dataclass(frozen=True)
class Calibration:
    """Result of auto-calibration: ``calibrated = gain * raw + offset_g`` per axis.

    Attributes
    ----------
    gain : ndarray, shape (3,)
    offset_g : ndarray, shape (3,)
    success : bool
        True when enough still epochs covering enough orientations were found and the fit
        reduced the error; otherwise gain is 1 and offset 0 (identity).
    n_still : int
        Still epochs used.
    error_before_g, error_after_g : float
        RMS distance of still-epoch means from 1 g before and after.
    reason : str
        Why calibration was not applied, empty on success.
    """

    gain: np.ndarray
    offset_g: np.ndarray
    success: bool
    n_still: int
    error_before_g: float
    error_after_g: float
    reason: str = ""

    def as_dict(self) -> dict[str, object]:
        """Plain-Python form for QC ledgers."""
        return {
            "gain": [float(v) for v in self.gain],
            "offset_g": [float(v) for v in self.offset_g],
            "success": self.success,
            "n_still": self.n_still,
            "error_before_g": self.error_before_g,
            "error_after_g": self.error_after_g,
            "reason": self.reason,
        }


def _identity(n_still: int, err: float, reason: str) -> Calibration:
    return Calibration(np.ones(3), np.zeros(3), False, n_still, err, err, reason)


def calibrate_from_epochs(
    mean_g: np.ndarray,
    sd_g: np.ndarray,
    *,
    still_sd_g: float = 0.013,
    min_still: int = 50,
    min_axis_span_g: float = 0.3,
    max_iter: int = 100,
    max_points: int = 20000,
) -> Calibration:
    """Fit per-axis gain and offset from still epochs.

    Parameters
    ----------
    mean_g, sd_g : ndarray, shape (n_epochs, 3)
        Per-epoch mean and standard deviation (see :func:`glutewake.signal.epochs.epoch_features`).
    still_sd_g : float
        An epoch is still when every axis' standard deviation is below this (default 13 mg).
    min_still : int
        Minimum still epochs needed.
    min_axis_span_g : float
        Each axis must be seen both below ``-span`` and above ``+span`` g across still epochs
        (orientation coverage); otherwise gain and offset are not identifiable.
    max_iter : int
        Iterations of the sphere fit.
    max_points : int
        Still epochs used at most (evenly subsampled).

    Returns
    -------
    Calibration

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> u = rng.normal(size=(500, 3)); u /= np.linalg.norm(u, axis=1, keepdims=True)
    >>> raw = (u - 0.02) / 1.03
    >>> cal = calibrate_from_epochs(raw, np.full_like(raw, 0.002))
    >>> bool(cal.success), np.round(cal.gain, 3).tolist()
    (True, [1.03, 1.03, 1.03])
    """
    mean_g = np.asarray(mean_g, dtype=np.float64)
    sd_g = np.asarray(sd_g, dtype=np.float64)
    if mean_g.shape != sd_g.shape or mean_g.ndim != 2 or mean_g.shape[1] != 3:
        raise ValueError(f"mean_g and sd_g must both be (n, 3); got {mean_g.shape}, {sd_g.shape}")
    still = np.all(sd_g < still_sd_g, axis=1) & np.all(np.isfinite(mean_g), axis=1)
    pts = mean_g[still]
    n_still = int(pts.shape[0])
    if n_still > max_points:
        pts = pts[np.linspace(0, n_still - 1, max_points).astype(np.int64)]
    err0 = float(np.sqrt(np.mean((np.linalg.norm(pts, axis=1) - 1.0) ** 2))) if n_still else 0.0
    if n_still < min_still:
        return _identity(n_still, err0, f"only {n_still} still epochs (< {min_still})")
    if np.any(pts.min(axis=0) > -min_axis_span_g) or np.any(pts.max(axis=0) < min_axis_span_g):
        return _identity(n_still, err0, "still periods do not cover enough orientations")
    # axis-major copy: the per-axis reductions below run over contiguous memory, and the
    # regressor's mean and variance do not change between iterations
    raw = np.ascontiguousarray(pts.T)
    n_pts = raw.shape[1]
    x_mean = raw.mean(axis=1)
    raw_c = raw - x_mean[:, None]
    x_var = np.einsum("ij,ij->i", raw_c, raw_c) / n_pts
    gain = np.ones(3)
    offset = np.zeros(3)
    target = np.empty_like(raw)
    norm = np.empty(n_pts)
    for _ in range(max_iter):
        np.multiply(raw, gain[:, None], out=target)
        target += offset[:, None]
        np.einsum("ij,ij->j", target, target, out=norm)
        np.sqrt(norm, out=norm)
        target /= norm
        # Three independent 1-D regressions target_k ~ offset_k + gain_k * raw_k, closed form.
        y_mean = target.mean(axis=1)
        new_gain = np.einsum("ij,ij->i", raw_c, target) / n_pts / x_var
        new_offset = y_mean - new_gain * x_mean
        step = max(np.max(np.abs(new_gain - gain)), np.max(np.abs(new_offset - offset)))
        converged = step < 1e-7
        gain, offset = new_gain, new_offset
        if converged:
            break
    err1 = float(np.sqrt(np.mean((np.linalg.norm(pts * gain + offset, axis=1) - 1.0) ** 2)))
    if not (err1 < err0) or np.any(np.abs(gain - 1.0) > 0.5) or np.any(np.abs(offset) > 0.5):
        return _identity(n_still, err0, "fit did not reduce the error or was implausible")
    return Calibration(gain, offset, True, n_still, err0, err1)


def apply_calibration(
    mean_g: np.ndarray, sd_g: np.ndarray, cal: Calibration
) -> tuple[np.ndarray, np.ndarray]:
    """Apply a calibration to epoch means and standard deviations (linear, so exact)."""
    return mean_g * cal.gain + cal.offset_g, sd_g * np.abs(cal.gain)
