"""Sitting bouts with the break rule, and sit/stand transitions, from per-epoch posture.

Break rule (docs/domain.md): a bout is a maximal run of sitting that is not broken by an
upright interruption shorter than ``min_break_s`` (default 10 s). Short upright interruptions
are absorbed into the bout (its duration spans them; sitting *time* still counts only sitting
epochs). Non-wear, lying and segment boundaries (gaps in the recording) end a bout without
counting as a break. A break (sit-to-upright transition) is the end of a bout followed by an
upright period of at least ``min_break_s``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from glutewake.signal.runs import runs_of

__all__ = ["Bouts", "sitting_bouts"]

SITTING_CODE = 1
UPRIGHT_CODES = (2, 3, 5)  # STANDING, MOVING, CYCLING (codes of glutewake.signal.posture.Posture)


@dataclass(frozen=True)
class Bouts:
    """Sitting bouts and transitions (epoch indices).

    Attributes
    ----------
    start_epoch, end_epoch : ndarray of int64
        First epoch and exclusive end of each bout.
    sitting_epochs : ndarray of int64
        Sitting epochs inside each bout (excludes absorbed upright interruptions).
    ends_in_break : ndarray of bool
        The bout ends with a break (followed by >= ``min_break_s`` upright).
    stand_to_sit_epoch : ndarray of int64
        Epochs where a bout starts right after an upright epoch.
    sit_to_stand_epoch : ndarray of int64
        Epochs where a break starts (first upright epoch after a bout).
    epoch_s : float
    min_break_s : float
    """

    start_epoch: np.ndarray
    end_epoch: np.ndarray
    sitting_epochs: np.ndarray
    ends_in_break: np.ndarray
    stand_to_sit_epoch: np.ndarray
    sit_to_stand_epoch: np.ndarray
    epoch_s: float
    min_break_s: float

    @property
    def duration_s(self) -> np.ndarray:
        """Bout durations in seconds (spanning absorbed interruptions)."""
        return (self.end_epoch - self.start_epoch) * self.epoch_s

    def __len__(self) -> int:
        return int(self.start_epoch.size)


def sitting_bouts(
    posture: npt.ArrayLike,
    epoch_s: float,
    *,
    min_break_s: float = 10.0,
    segment_start: npt.ArrayLike | None = None,
) -> Bouts:
    """Sitting bouts under the break rule, with sit-to-stand and stand-to-sit transitions.

    Parameters
    ----------
    posture : array_like of int, shape (n_epochs,)
        :class:`glutewake.signal.posture.Posture` codes.
    epoch_s : float
        Epoch length.
    min_break_s : float
        Upright interruptions shorter than this do not break a bout (default 10 s).
    segment_start : array_like of bool, shape (n_epochs,), optional
        True at the first epoch of each contiguous segment (after a gap in time); bouts and
        breaks never run across a segment start.

    Returns
    -------
    Bouts

    Examples
    --------
    >>> p = np.array([1] * 60 + [2] * 5 + [1] * 60 + [3] * 30 + [1] * 20, dtype=np.int8)
    >>> b = sitting_bouts(p, 1.0)
    >>> b.start_epoch.tolist(), b.end_epoch.tolist(), b.ends_in_break.tolist()
    ([0, 155], [125, 175], [True, False])
    """
    p = np.asarray(posture)
    if p.ndim != 1:
        raise ValueError(f"posture must be 1-D, got shape {p.shape}")
    if not np.isfinite(epoch_s) or epoch_s <= 0:
        raise ValueError(f"epoch_s must be positive, got {epoch_s!r}")
    if min_break_s < 0:
        raise ValueError(f"min_break_s must be >= 0, got {min_break_s!r}")
    n = p.size
    seg = np.zeros(n, dtype=bool) if segment_start is None else np.asarray(segment_start, bool)
    if seg.shape != (n,):
        raise ValueError(f"segment_start must have shape ({n},), got {seg.shape}")
    seg_id = np.cumsum(seg)
    sit = p == SITTING_CODE
    upright = np.isin(p, UPRIGHT_CODES)
    min_break = int(np.ceil(min_break_s / epoch_s - 1e-9))

    # Upright runs (split at segment starts) shorter than the break rule, with sitting on both
    # sides in the same segment, are absorbed into the surrounding bout.
    up_s, up_e = _runs_split(upright, seg)
    before = up_s - 1
    after = up_e
    inside = (before >= 0) & (after < n)
    bridge = inside & ((up_e - up_s) < min_break)
    bridge[inside] &= sit[before[inside]] & sit[np.minimum(after[inside], n - 1)]
    bridge[inside] &= (seg_id[before[inside]] == seg_id[up_s[inside]]) & (
        seg_id[np.minimum(after[inside], n - 1)] == seg_id[up_s[inside]]
    )
    merged = sit.copy()
    if bridge.any():
        marks = np.zeros(n + 1, dtype=np.int64)
        np.add.at(marks, up_s[bridge], 1)
        np.add.at(marks, up_e[bridge], -1)
        merged |= np.cumsum(marks[:-1]) > 0

    b_s, b_e = _runs_split(merged, seg)
    csum = np.concatenate(([0], np.cumsum(sit)))
    sitting_epochs = csum[b_e] - csum[b_s]

    # Upright run lengths starting at each epoch (within a segment) decide whether a bout's end
    # is a break.
    run_len_from = np.zeros(n + 1, dtype=np.int64)
    run_len_from[up_s] = up_e - up_s
    nxt = np.minimum(b_e, n)
    has_next = b_e < n
    same_seg = np.zeros(b_e.size, dtype=bool)
    same_seg[has_next] = seg_id[b_e[has_next]] == seg_id[b_s[has_next]]
    ends_in_break = has_next & same_seg & (run_len_from[nxt] >= max(min_break, 1))
    prev = b_s - 1
    starts_after_upright = (prev >= 0) & ~seg[np.minimum(b_s, n - 1)] if n else np.zeros(0, bool)
    starts_after_upright &= upright[np.maximum(prev, 0)]
    return Bouts(
        start_epoch=b_s,
        end_epoch=b_e,
        sitting_epochs=sitting_epochs.astype(np.int64),
        ends_in_break=ends_in_break,
        stand_to_sit_epoch=b_s[starts_after_upright],
        sit_to_stand_epoch=b_e[ends_in_break],
        epoch_s=float(epoch_s),
        min_break_s=float(min_break_s),
    )


def _runs_split(mask: np.ndarray, seg_start: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Runs of True in ``mask``, split where a new segment starts."""
    if not seg_start.any():
        return runs_of(mask)
    # Insert a False separator before every segment start, then map indices back.
    pos = np.arange(mask.size) + np.cumsum(seg_start)
    spread = np.zeros(mask.size + int(seg_start.sum()), dtype=bool)
    spread[pos] = mask
    s, e = runs_of(spread)
    back = np.full(spread.size + 1, -1, dtype=np.int64)
    back[pos] = np.arange(mask.size)
    back[spread.size] = mask.size
    # An exclusive end lands on a separator or past the end: map to the next real index.
    idx_next = np.full(spread.size + 1, mask.size, dtype=np.int64)
    idx_next[pos] = np.arange(mask.size)
    idx_next = np.minimum.accumulate(idx_next[::-1])[::-1]
    return back[s], idx_next[e]
