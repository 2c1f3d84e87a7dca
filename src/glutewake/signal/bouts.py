"""Sitting bouts with the break rule, and sit/stand transitions, from posture runs or epochs.

Break rule (docs/domain.md): a bout is a maximal run of sitting that is not broken by an
upright interruption shorter than ``min_break_s`` (default 10 s). Short upright interruptions
(*short stands*) are bridged: the bout's duration spans them; sitting *time* still counts only
sitting. Non-wear, lying and segment boundaries (gaps in the recording) end a bout without
counting as a break. A break (sit-to-upright transition) is the end of a bout followed by an
upright period of at least ``min_break_s``.

The rule is applied once, to runs of one posture (:func:`bouts_of_runs`): per-epoch posture
(:func:`sitting_bouts`) and the stored posture periods of several days are both run lists, so
a bout that crosses midnight comes out the same whichever way its days were cut.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = ["Bouts", "RunBouts", "bouts_of_runs", "sitting_bouts"]

SITTING_CODE = 1
UPRIGHT_CODES = (2, 3, 5)  # STANDING, MOVING, CYCLING (codes of glutewake.signal.posture.Posture)


@dataclass(frozen=True)
class RunBouts:
    """Sitting bouts over a list of posture runs (indices into that list).

    Attributes
    ----------
    first_run, end_run : ndarray of int64
        First run and exclusive end of each bout (the bout's last run is sitting).
    length, sitting : ndarray
        Bout length (spanning bridged interruptions) and its sitting part, in the unit of
        the runs' lengths.
    short_stands : ndarray of int64
        Upright interruptions shorter than the break minimum bridged by each bout.
    ends_in_break : ndarray of bool
        The bout is followed, in the same segment, by at least the break minimum upright.
    break_run : ndarray of int64
        First run of that break (-1 without a break).
    starts_after_upright : ndarray of bool
        The run before the bout, in the same segment, is upright.
    bridged : ndarray of bool, shape (n_runs,)
        Runs that are bridged upright interruptions (short stands).
    short_stand_run : ndarray of int64
        First run of each short stand (consecutive upright runs are one stand).
    stretch : ndarray of int64, shape (n_runs,)
        Independent stretch of each run: stretches are cut at gaps, at non-wear and lying, and
        after every upright period of at least the break minimum; no bout, short stand or
        break reaches across a cut, so the bouts of a stretch depend on its runs alone.
    """

    first_run: np.ndarray
    end_run: np.ndarray
    length: np.ndarray
    sitting: np.ndarray
    short_stands: np.ndarray
    ends_in_break: np.ndarray
    break_run: np.ndarray
    starts_after_upright: np.ndarray
    bridged: np.ndarray
    short_stand_run: np.ndarray
    stretch: np.ndarray

    def __len__(self) -> int:
        return int(self.first_run.size)


def bouts_of_runs(
    code: npt.ArrayLike,
    length: npt.ArrayLike,
    new_segment: npt.ArrayLike,
    *,
    min_break: float,
) -> RunBouts:
    """The break rule over runs of posture (consecutive runs may repeat a posture).

    Parameters
    ----------
    code : array_like of int, shape (n_runs,)
        :class:`glutewake.signal.posture.Posture` code of each run, in time order.
    length : array_like, shape (n_runs,)
        Length of each run (epochs or seconds: any unit, the same as ``min_break``).
    new_segment : array_like of bool, shape (n_runs,)
        True where a run starts after a gap in time (and for the first run): bouts, bridges
        and breaks never cross it.
    min_break : float
        Shortest upright period that breaks a bout, in the unit of ``length``.

    Returns
    -------
    RunBouts

    Examples
    --------
    >>> b = bouts_of_runs([1, 2, 1, 3, 1], [60, 5, 60, 30, 20], [True] + [False] * 4,
    ...                   min_break=10)
    >>> b.first_run.tolist(), b.end_run.tolist(), b.short_stands.tolist()
    ([0, 4], [3, 5], [1, 0])
    """
    c = np.asarray(code)
    d = np.asarray(length)
    seg = np.asarray(new_segment, dtype=bool)
    n = c.size
    if c.ndim != 1 or d.shape != (n,) or seg.shape != (n,):
        raise ValueError(
            f"code, length and new_segment must be 1-D of equal length, got {c.shape}, "
            f"{d.shape}, {seg.shape}"
        )
    # 1 sitting, 2 upright, 0 anything else (non-wear, lying): only the class matters
    cls = np.where(c == SITTING_CODE, 1, np.where(np.isin(c, UPRIGHT_CODES), 2, 0))
    # merge consecutive runs of one class within a segment into groups
    new_group = np.ones(n, dtype=bool)
    new_group[1:] = (cls[1:] != cls[:-1]) | seg[1:]
    g_first = np.flatnonzero(new_group)
    g_cls = cls[g_first]
    g_len = np.add.reduceat(d, g_first) if n else d[:0]
    g_seg = seg[g_first] if n else seg[:0]
    g_n = g_first.size
    g_end = np.append(g_first[1:], n)

    prev_sit = np.zeros(g_n, dtype=bool)
    next_sit = np.zeros(g_n, dtype=bool)
    prev_sit[1:] = (g_cls[:-1] == 1) & ~g_seg[1:]
    next_sit[:-1] = (g_cls[1:] == 1) & ~g_seg[1:]
    bridged_g = (g_cls == 2) & prev_sit & next_sit & (g_len < min_break)
    in_bout = (g_cls == 1) | bridged_g
    starts = in_bout.copy()
    starts[1:] &= ~in_bout[:-1] | g_seg[1:]
    bout_of_group = np.cumsum(starts) - 1
    first_g = np.flatnonzero(starts)
    ends = in_bout.copy()
    ends[:-1] &= ~in_bout[1:] | g_seg[1:]
    last_g = np.flatnonzero(ends)
    k = first_g.size
    sel = np.flatnonzero(in_bout)
    length_b = np.zeros(k, dtype=d.dtype if n else np.float64)
    sitting_b = np.zeros_like(length_b)
    stands_b = np.zeros(k, dtype=np.int64)
    np.add.at(length_b, bout_of_group[sel], g_len[sel])
    sit_g = sel[g_cls[sel] == 1]
    np.add.at(sitting_b, bout_of_group[sit_g], g_len[sit_g])
    np.add.at(stands_b, bout_of_group[bridged_g], 1)

    after = last_g + 1
    has_after = after < g_n
    a = np.minimum(after, max(g_n - 1, 0))
    ends_in_break = has_after & (g_cls[a] == 2) & ~g_seg[a] & (g_len[a] >= min_break)
    before = first_g - 1
    b = np.maximum(before, 0)
    starts_after_upright = (before >= 0) & (g_cls[b] == 2) & ~g_seg[first_g]

    bridged = np.repeat(bridged_g, g_end - g_first) if n else np.zeros(0, dtype=bool)
    cut = g_seg | (g_cls == 0)
    cut[:1] = True
    cut[1:] |= (g_cls[:-1] == 0) | ((g_cls[:-1] == 2) & (g_len[:-1] >= min_break))
    stretch = np.repeat(np.cumsum(cut) - 1, g_end - g_first) if n else np.zeros(0, np.int64)
    return RunBouts(
        first_run=g_first[first_g].astype(np.int64),
        end_run=g_end[last_g].astype(np.int64),
        length=length_b,
        sitting=sitting_b,
        short_stands=stands_b,
        ends_in_break=ends_in_break,
        break_run=np.where(ends_in_break, g_first[a], -1).astype(np.int64),
        starts_after_upright=starts_after_upright,
        bridged=bridged,
        short_stand_run=g_first[bridged_g].astype(np.int64),
        stretch=stretch.astype(np.int64),
    )


@dataclass(frozen=True)
class Bouts:
    """Sitting bouts and transitions (epoch indices).

    Attributes
    ----------
    start_epoch, end_epoch : ndarray of int64
        First epoch and exclusive end of each bout.
    sitting_epochs : ndarray of int64
        Sitting epochs inside each bout (excludes bridged upright interruptions).
    short_stands : ndarray of int64
        Upright interruptions shorter than ``min_break_s`` bridged by each bout.
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
    short_stands: np.ndarray
    ends_in_break: np.ndarray
    stand_to_sit_epoch: np.ndarray
    sit_to_stand_epoch: np.ndarray
    epoch_s: float
    min_break_s: float

    @property
    def duration_s(self) -> np.ndarray:
        """Bout durations in seconds (spanning bridged interruptions)."""
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
    change = np.ones(n, dtype=bool)
    change[1:] = (p[1:] != p[:-1]) | seg[1:]
    run_start = np.flatnonzero(change)
    run_end = np.append(run_start[1:], n)
    # in whole epochs, so the rule is exact: a break needs ceil(min_break_s / epoch_s) epochs
    min_break = int(np.ceil(min_break_s / epoch_s - 1e-9))
    rb = bouts_of_runs(p[run_start], run_end - run_start, seg[run_start], min_break=min_break)
    start = run_start[rb.first_run]
    end = run_end[rb.end_run - 1] if len(rb) else np.zeros(0, dtype=np.int64)
    return Bouts(
        start_epoch=start.astype(np.int64),
        end_epoch=end.astype(np.int64),
        sitting_epochs=rb.sitting.astype(np.int64),
        short_stands=rb.short_stands,
        ends_in_break=rb.ends_in_break,
        stand_to_sit_epoch=start[rb.starts_after_upright].astype(np.int64),
        sit_to_stand_epoch=end[rb.ends_in_break].astype(np.int64),
        epoch_s=float(epoch_s),
        min_break_s=float(min_break_s),
    )
