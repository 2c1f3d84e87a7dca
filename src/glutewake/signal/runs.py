"""Run-length helpers over 1-D label arrays (shared by posture smoothing and bouts)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = ["fill_short_runs", "run_bounds", "runs_of"]


def run_bounds(labels: npt.ArrayLike) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Split a label array into maximal runs of equal values.

    Parameters
    ----------
    labels : array_like, shape (n,)
        Any comparable 1-D array.

    Returns
    -------
    starts, ends, values : ndarray
        Run start indices, exclusive end indices and the value of each run.

    Examples
    --------
    >>> run_bounds([1, 1, 0, 0, 0, 1])
    (array([0, 2, 5]), array([2, 5, 6]), array([1, 0, 1]))
    """
    arr = np.asarray(labels)
    if arr.ndim != 1:
        raise ValueError(f"labels must be 1-D, got shape {arr.shape}")
    if arr.size == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty.copy(), arr[:0]
    change = np.flatnonzero(arr[1:] != arr[:-1]) + 1
    starts = np.concatenate(([0], change)).astype(np.int64)
    ends = np.concatenate((change, [arr.size])).astype(np.int64)
    return starts, ends, arr[starts]


def runs_of(mask: npt.ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Start and exclusive end indices of the runs of True in a boolean mask."""
    m = np.asarray(mask, dtype=bool)
    if m.ndim != 1:
        raise ValueError(f"mask must be 1-D, got shape {m.shape}")
    edges = np.diff(np.concatenate(([0], m.view(np.int8), [0])))
    return np.flatnonzero(edges == 1).astype(np.int64), np.flatnonzero(edges == -1).astype(np.int64)


def fill_short_runs(
    labels: np.ndarray, min_len: int, *, protect: np.ndarray | None = None
) -> np.ndarray:
    """Replace runs shorter than ``min_len`` by the preceding run's value.

    One vectorised sweep: a short run takes the value of the nearest preceding long run (or, at
    the start, of the first long run), so flicker between two postures disappears without
    moving the edges of long runs.

    Parameters
    ----------
    labels : ndarray, shape (n,)
        Integer labels.
    min_len : int
        Runs with fewer elements are replaced.
    protect : ndarray of bool, shape (n,), optional
        Elements whose runs are never replaced (e.g. non-wear).

    Returns
    -------
    ndarray
        A new array with the same dtype.
    """
    out = np.array(labels, copy=True)
    if out.size == 0 or min_len <= 1:
        return out
    starts, ends, values = run_bounds(out)
    keep = (ends - starts) >= min_len
    if protect is not None:
        keep |= np.asarray(protect, dtype=bool)[starts]
    if keep.all():
        return out
    if not keep.any():
        return out
    idx = np.where(keep, np.arange(starts.size), -1)
    idx = np.maximum.accumulate(idx)
    first_keep = int(np.argmax(keep))
    idx[idx < 0] = first_keep
    new_values = values[idx]
    return np.repeat(new_values, ends - starts).astype(out.dtype, copy=False)
