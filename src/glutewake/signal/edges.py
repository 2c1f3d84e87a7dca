"""Sub-epoch posture edges: where, within the epochs around a sit/upright change, the thigh
actually crossed the sitting angle.

Posture is decided per epoch (1 s), so an epoch holding a transition is wholly one posture and
a stand of a few seconds can lose up to an epoch at each end. Around each such change this
module looks at the samples themselves: the low-passed direction of each sample, its angle
from the mounting's upright axis, and the single change point that best separates inclined
samples (before, for sit-to-upright) from upright ones (after). Only the samples of the two
epochs next to the change are searched, so epoch decisions are never overruled by more than
one epoch.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = ["change_points"]

_BLOCK = 128


def change_points(
    acc_g: npt.ArrayLike,
    lo: np.ndarray,
    hi: np.ndarray,
    inclined_first: np.ndarray,
    up_ref: np.ndarray,
    split_deg: np.ndarray,
    *,
    gain: np.ndarray | None = None,
    offset_g: np.ndarray | None = None,
    smooth_samples: int = 1,
) -> np.ndarray:
    """Sample index of the sit/upright change within each search window.

    Parameters
    ----------
    acc_g : array_like, shape (n, 3)
        Raw samples (a memory map will do: only the windows are read).
    lo, hi : ndarray of int64, shape (k,)
        Search window of each change, samples ``[lo, hi)``; the change point is in
        ``lo..hi``.
    inclined_first : ndarray of bool, shape (k,)
        True for sit-to-upright (inclined samples before the change), False for upright-to-sit.
    up_ref : ndarray, shape (k, 3)
        Unit upright axis of the mounting (sign ignored).
    split_deg : ndarray, shape (k,)
        Sitting angle: a sample at least this far from upright is inclined.
    gain, offset_g : ndarray, shape (3,), optional
        Calibration (``gain * raw + offset_g``); identity if omitted.
    smooth_samples : int
        Length of the centred moving average applied to each axis before the angle (removes
        heel strikes and sensor noise).

    Returns
    -------
    ndarray of int64, shape (k,)
        Absolute sample index of the first sample after the change. Where several points fit
        equally well the middle one is taken.

    Examples
    --------
    >>> acc = np.zeros((100, 3)); acc[:37, 0] = 1.0; acc[37:, 2] = 1.0  # horizontal, then up
    >>> change_points(acc, np.array([0]), np.array([100]), np.array([True]),
    ...               np.array([[0.0, 0.0, 1.0]]), np.array([45.0])).tolist()
    [37]
    """
    arr = np.asarray(acc_g) if not isinstance(acc_g, np.ndarray) else acc_g
    lo = np.asarray(lo, dtype=np.int64)
    hi = np.asarray(hi, dtype=np.int64)
    first_up = np.asarray(inclined_first, dtype=bool)
    up = np.asarray(up_ref, dtype=np.float64).reshape(-1, 3)
    split = np.asarray(split_deg, dtype=np.float64)
    out = np.zeros(lo.size, dtype=np.int64)
    # a block of changes at a time: the windows' temporaries stay a few MB however many
    for i in range(0, lo.size, _BLOCK):
        sl = slice(i, i + _BLOCK)
        out[sl] = _block(
            arr, lo[sl], hi[sl], first_up[sl], up[sl], split[sl], gain, offset_g, smooth_samples
        )
    return out


def _block(
    arr: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
    inclined_first: np.ndarray,
    up_ref: np.ndarray,
    split_deg: np.ndarray,
    gain: np.ndarray | None,
    offset_g: np.ndarray | None,
    smooth_samples: int,
) -> np.ndarray:
    k = lo.size
    n = arr.shape[0]
    width = int(np.max(hi - lo))
    half = max(0, int(smooth_samples) // 2)
    span = max(1, int(smooth_samples))
    # (k, width + span - 1) sample indices: each window widened for the centred average
    idx = lo[:, None] - half + np.arange(width + span - 1)[None, :]
    x = np.asarray(arr[np.clip(idx, 0, n - 1)], dtype=np.float64)
    if gain is not None:
        x *= gain
    if offset_g is not None:
        x += offset_g
    csum = np.concatenate((np.zeros((k, 1, 3)), np.cumsum(x, axis=1)), axis=1)
    smooth = csum[:, span:, :] - csum[:, :-span, :]  # (k, width, 3); scale does not matter
    norm = np.linalg.norm(smooth, axis=2)
    cos = np.abs(np.einsum("kwj,kj->kw", smooth, up_ref)) / np.where(norm > 0, norm, 1.0)
    inclined = cos <= np.cos(np.radians(split_deg))[:, None]
    valid = np.arange(width)[None, :] < (hi - lo)[:, None]
    first = np.where(inclined_first[:, None], inclined, ~inclined) & valid
    second = np.where(inclined_first[:, None], ~inclined, inclined) & valid
    zero = np.zeros((k, 1), dtype=np.int64)
    before = np.concatenate((zero, np.cumsum(first, axis=1)), axis=1)  # agreeing before k
    after_total = second.sum(axis=1, keepdims=True)
    after = after_total - np.concatenate((zero, np.cumsum(second, axis=1)), axis=1)
    score = before + after
    score[np.arange(width + 1)[None, :] > (hi - lo)[:, None]] = -1
    best = score.max(axis=1, keepdims=True)
    at_best = score == best
    first_best = np.argmax(at_best, axis=1)
    last_best = width - np.argmax(at_best[:, ::-1], axis=1)
    return lo + (first_best + last_best) // 2
