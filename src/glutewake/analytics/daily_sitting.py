"""Daily sitting measures per participant-local calendar day (DST- and time-zone-aware).

Everything is computed from *posture runs*: periods of one posture, split at local midnight
and at gaps (:func:`posture_runs` makes them from per-epoch posture codes,
:class:`glutewake.signal.posture.Posture`, with each epoch's UTC start). The pipeline stores
the same runs per local day (``posture_periods``) and measures a day from the runs of all the
days its bouts touch (:func:`sitting_from_runs`), so the figures do not depend on how the
days were cut into tasks. A gap in time (a run starting more than half an epoch after the
previous one ends) is not wear time and never joins bouts. Local days come from the
participant's IANA time zone, or a schedule of time zones (a participant who travels), so a
DST change day has 23 or 25 hours.

Ownership across local midnight: a bout is one row, dated by the local day it *starts* on, with
its whole length (it counts toward that day's bouts, bouts >= 30/60 min, longest and mean
bout); sitting *time* is split at midnight, so each day's sitting minutes are exactly that
day's. A break belongs to the day on which the break (its first upright epoch) happens, a
short stand to the day on which it starts.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import polars as pl

from glutewake.signal.bouts import bouts_of_runs

__all__ = [
    "SittingTables",
    "TzSchedule",
    "daily_sitting",
    "local_dates",
    "posture_runs",
    "sitting_bout_table",
    "sitting_from_runs",
]

TzSchedule = str | Sequence[tuple[int, str]]
"""A time zone name, or ``[(from_us, tz_name), ...]`` sorted by ``from_us`` (the first entry
applies from the beginning whatever its ``from_us``)."""

_NONWEAR, _SITTING, _STANDING, _MOVING, _LYING, _CYCLING = 0, 1, 2, 3, 4, 5


_DRIFT_TOLERANCE = 0.01


def _check_inputs(
    epoch_start_us: npt.ArrayLike, posture: npt.ArrayLike, epoch_s: float
) -> tuple[np.ndarray, np.ndarray]:
    t = np.asarray(epoch_start_us)
    p = np.asarray(posture)
    if t.ndim != 1 or p.ndim != 1 or t.shape != p.shape:
        raise ValueError(
            f"epoch_start_us and posture must be 1-D with equal length, got {t.shape}, {p.shape}"
        )
    if not np.issubdtype(t.dtype, np.integer):
        raise TypeError(f"epoch_start_us must be integer microseconds, got dtype {t.dtype}")
    if not np.isfinite(epoch_s) or epoch_s <= 0:
        raise ValueError(f"epoch_s must be positive, got {epoch_s!r}")
    # epoch starts come from drift-corrected device time, so allow a clock-drift tolerance
    # (1 %, far beyond any real drift) while still rejecting overlapping epochs
    if t.size > 1 and np.any(np.diff(t) < round(epoch_s * 1e6 * (1 - _DRIFT_TOLERANCE))):
        raise ValueError("epoch_start_us must increase by at least one epoch between epochs")
    if p.size and (p.min() < 0 or p.max() > 5):
        raise ValueError("posture holds codes outside Posture (0..5)")
    return t.astype(np.int64, copy=False), p.astype(np.int8, copy=False)


def _schedule(tz: TzSchedule) -> list[tuple[int, str]]:
    if isinstance(tz, str):
        return [(np.iinfo(np.int64).min, tz)]
    sched = [(int(a), str(b)) for a, b in tz]
    if not sched:
        raise ValueError("tz schedule is empty")
    if any(b[0] <= a[0] for a, b in itertools.pairwise(sched)):
        raise ValueError("tz schedule must be sorted by strictly increasing from_us")
    return sched


def local_dates(t_us: npt.ArrayLike, tz: TzSchedule) -> pl.Series:
    """Local calendar date of each UTC instant under a time zone (or a schedule of zones).

    Raises
    ------
    ValueError
        For an unknown time zone name.
    """
    t = np.asarray(t_us, dtype=np.int64)
    sched = _schedule(tz)
    which = np.searchsorted(np.array([s[0] for s in sched[1:]], dtype=np.int64), t, side="right")
    out = np.zeros(t.size, dtype="datetime64[D]")
    for k, (_, name) in enumerate(sched):
        sel = which == k
        if not sel.any():
            continue
        try:
            dates = (
                pl.Series(t[sel])
                .cast(pl.Datetime("us", "UTC"))
                .dt.convert_time_zone(name)
                .dt.date()
            )
        except pl.exceptions.ComputeError as exc:
            raise ValueError(f"unknown time zone {name!r}") from exc
        out[sel] = dates.to_numpy()
    return pl.Series("local_date", out).cast(pl.Date)


RUN_SCHEMA = {
    "start_us": pl.Int64,
    "end_us": pl.Int64,
    "posture": pl.Int8,
    "duration_s": pl.Float64,
    "local_date": pl.Date,
}
#: the daily measures, in order
DAILY_COLUMNS = (
    "local_date",
    "wear_min",
    "sitting_min",
    "sitting_pct",
    "standing_min",
    "moving_min",
    "cycling_min",
    "lying_min",
    "nonwear_min",
    "sitting_bouts",
    "bouts_30min",
    "bouts_60min",
    "longest_bout_min",
    "mean_bout_min",
    "breaks",
    "short_stands",
    "breaks_per_sitting_hour",
    "valid_day",
)
# durations are whole epochs summed in floating point: a microsecond of slack keeps a stand
# of exactly the break minimum a break
_SLACK_S = 1e-6


def posture_runs(
    epoch_start_us: npt.ArrayLike, posture: npt.ArrayLike, epoch_s: float, tz: TzSchedule
) -> pl.DataFrame:
    """Per-epoch posture as runs of one posture, split at gaps and at local midnight.

    Parameters
    ----------
    epoch_start_us : array_like of int64, shape (n,)
        UTC start of each epoch, µs, increasing by at least one epoch; gaps allowed.
    posture : array_like of int8, shape (n,)
        Posture codes.
    epoch_s : float
        Epoch length.
    tz : str or sequence of (from_us, str)
        The participant's IANA time zone, or a schedule of zones.

    Returns
    -------
    polars.DataFrame
        ``start_us`` (first epoch's start), ``end_us`` (last epoch's start + one epoch),
        ``posture`` (code), ``duration_s`` (epochs x ``epoch_s``), ``local_date``.

    Examples
    --------
    >>> t = np.arange(5, dtype=np.int64) * 1_000_000
    >>> posture_runs(t, np.array([1, 1, 2, 2, 2], np.int8), 1.0, "UTC")["duration_s"].to_list()
    [2.0, 3.0]
    """
    t, p = _check_inputs(epoch_start_us, posture, epoch_s)
    epoch_us = round(epoch_s * 1e6)
    dates = local_dates(t, tz)
    day = dates.to_physical().to_numpy()
    change = np.ones(t.size, dtype=bool)
    change[1:] = (p[1:] != p[:-1]) | (np.diff(t) > epoch_us * 1.5) | (day[1:] != day[:-1])
    first = np.flatnonzero(change)
    last = np.append(first[1:], t.size) - 1
    return pl.DataFrame(
        {
            "start_us": pl.Series(t[first], dtype=pl.Int64),
            "end_us": pl.Series(t[last] + epoch_us, dtype=pl.Int64),
            "posture": pl.Series(p[first], dtype=pl.Int8),
            "duration_s": pl.Series((last - first + 1) * float(epoch_s), dtype=pl.Float64),
            "local_date": dates.gather(first),
        }
    )


def merge_sources(sources: Sequence[pl.DataFrame]) -> pl.DataFrame:
    """One stream of runs from several thigh sources of one participant, first source first.

    Each instant belongs to the first source (in the given priority order) that has a run
    covering it; a later source fills only the time no earlier one covers. A run cut short by
    an earlier source keeps the part of its ``duration_s`` that its remaining time holds, so one
    source alone comes back exactly as it was.

    Parameters
    ----------
    sources : sequence of polars.DataFrame
        Runs (:data:`RUN_SCHEMA`) per source, in priority order; each sorted or not.

    Returns
    -------
    polars.DataFrame
        Runs (:data:`RUN_SCHEMA`) sorted by start; touching parts of one posture and local day
        joined.

    Examples
    --------
    >>> import datetime as dt
    >>> a = pl.DataFrame({"start_us": [0], "end_us": [10_000_000], "posture": [1],
    ...                   "duration_s": [10.0], "local_date": [dt.date(2026, 3, 1)]})
    >>> b = pl.DataFrame({"start_us": [5_000_000], "end_us": [20_000_000], "posture": [2],
    ...                   "duration_s": [15.0], "local_date": [dt.date(2026, 3, 1)]})
    >>> merge_sources([a, b])["duration_s"].to_list()
    [10.0, 10.0]
    """
    parts = [
        s.select(list(RUN_SCHEMA)).cast(RUN_SCHEMA).sort("start_us")  # type: ignore[arg-type]
        for s in sources
        if s.height
    ]
    if not parts:
        return pl.DataFrame(schema=RUN_SCHEMA)
    if len(parts) == 1:
        return parts[0]
    # a source's runs may overlap by a fraction of an epoch (epochs start at sample times, so a
    # clock slower than nominal ends a run after the next one starts): within a source each
    # run ends where the next begins, with its whole duration
    bounds = []
    for s in parts:
        start, end = s["start_us"].to_numpy(), s["end_us"].to_numpy().copy()
        end[:-1] = np.minimum(end[:-1], start[1:])
        bounds.append((start, end))
    edges = np.unique(np.concatenate([np.r_[start, end] for start, end in bounds]))
    lo, hi = edges[:-1], edges[1:]
    # midpoints of the elementary intervals decide which run covers each
    mid = lo + (hi - lo) // 2
    owner = np.full(lo.size, -1, dtype=np.int64)
    run = np.zeros(lo.size, dtype=np.int64)
    for k, (start, end) in enumerate(bounds):
        idx = np.searchsorted(start, mid, side="right") - 1
        inside = (idx >= 0) & (mid < end[np.maximum(idx, 0)]) & (owner < 0)
        owner[inside] = k
        run[inside] = idx[inside]
    keep = owner >= 0
    lo, hi, owner, run = lo[keep], hi[keep], owner[keep], run[keep]
    posture = np.empty(lo.size, dtype=np.int8)
    duration = np.empty(lo.size, dtype=np.float64)
    day = np.empty(lo.size, dtype=np.int64)
    for k, s in enumerate(parts):
        mine = owner == k
        r = run[mine]
        start, end = bounds[k][0][r], bounds[k][1][r]
        share = (hi[mine] - lo[mine]) / np.maximum(end - start, 1)
        posture[mine] = s["posture"].to_numpy()[r]
        duration[mine] = s["duration_s"].to_numpy()[r] * share
        day[mine] = s["local_date"].to_physical().to_numpy()[r]
    joined = np.zeros(lo.size, dtype=bool)  # True: continues the previous part
    joined[1:] = (lo[1:] == hi[:-1]) & (posture[1:] == posture[:-1]) & (day[1:] == day[:-1])
    first = np.flatnonzero(~joined)
    last = np.append(first[1:], lo.size) - 1
    return pl.DataFrame(
        {
            "start_us": pl.Series(lo[first], dtype=pl.Int64),
            "end_us": pl.Series(hi[last], dtype=pl.Int64),
            "posture": pl.Series(posture[first], dtype=pl.Int8),
            "duration_s": pl.Series(np.add.reduceat(duration, first), dtype=pl.Float64),
            "local_date": pl.Series(day[first], dtype=pl.Int32).cast(pl.Date),
        }
    )


@dataclass(frozen=True)
class SittingTables:
    """What :func:`sitting_from_runs` measures.

    Attributes
    ----------
    daily : polars.DataFrame
        One row per local day with runs (columns :data:`DAILY_COLUMNS`).
    bouts : polars.DataFrame
        One row per bout: ``start_us``, ``end_us`` (exclusive), ``duration_s`` (spans bridged
        short stands), ``sitting_s``, ``short_stands``, ``ends_in_break``, ``local_date``
        (the day it starts on).
    runs : polars.DataFrame
        The runs in time order, with ``bridged`` (a short stand that a bout bridges) and
        ``stretch`` (the independent stretch of the run: no bout, short stand or break
        reaches across the cuts between stretches; see
        :class:`glutewake.signal.bouts.RunBouts`).
    """

    daily: pl.DataFrame
    bouts: pl.DataFrame
    runs: pl.DataFrame


def sitting_from_runs(
    runs: pl.DataFrame,
    epoch_s: float,
    *,
    min_break_s: float = 10.0,
    valid_wear_h: float = 10.0,
) -> SittingTables:
    """Bouts and daily measures from posture runs (see :func:`posture_runs`).

    The runs may come from several days derived separately (the stored ``posture_periods``):
    they are sorted by time, runs of one posture that touch (the next starting at most half an
    epoch after the previous ends, or overlapping it by less than an epoch where two days'
    epochs meet) continue each other, and a bout runs on across midnight for as long as the
    runs do.

    Parameters
    ----------
    runs : polars.DataFrame
        Columns ``start_us, end_us, posture, duration_s, local_date``.
    epoch_s : float
        Epoch length (sets the gap tolerance).
    min_break_s : float
        Break rule (default 10 s).
    valid_wear_h : float
        Wear hours for a valid day (default 10).

    Returns
    -------
    SittingTables

    Raises
    ------
    ValueError
        If runs overlap by an epoch or more, or ``min_break_s`` is negative.
    """
    if min_break_s < 0:
        raise ValueError(f"min_break_s must be >= 0, got {min_break_s!r}")
    runs = runs.select(list(RUN_SCHEMA)).cast(RUN_SCHEMA).sort("start_us")  # type: ignore[arg-type]
    start = runs["start_us"].to_numpy()
    end = runs["end_us"].to_numpy()
    code = runs["posture"].to_numpy()
    duration = runs["duration_s"].to_numpy()
    epoch_us = round(epoch_s * 1e6)
    step = start[1:] - end[:-1]
    if np.any(step <= -epoch_us):
        raise ValueError("posture runs overlap by an epoch or more")
    new_segment = np.ones(start.size, dtype=bool)
    new_segment[1:] = step > epoch_us // 2
    rb = bouts_of_runs(code, duration, new_segment, min_break=min_break_s - _SLACK_S)
    dates = runs["local_date"]
    bouts = pl.DataFrame(
        {
            "start_us": pl.Series(start[rb.first_run], dtype=pl.Int64),
            "end_us": pl.Series(end[rb.end_run - 1], dtype=pl.Int64),
            "duration_s": pl.Series(rb.length, dtype=pl.Float64),
            "sitting_s": pl.Series(rb.sitting, dtype=pl.Float64),
            "short_stands": pl.Series(rb.short_stands, dtype=pl.Int64),
            "ends_in_break": pl.Series(rb.ends_in_break, dtype=pl.Boolean),
            "local_date": dates.gather(rb.first_run),
        }
    )
    ep_min = 1.0 / 60.0
    per_day = runs.group_by("local_date").agg(
        (pl.col("duration_s").filter(pl.col("posture") != _NONWEAR).sum() * ep_min).alias(
            "wear_min"
        ),
        *[
            (pl.col("duration_s").filter(pl.col("posture") == code).sum() * ep_min).alias(name)
            for code, name in (
                (_SITTING, "sitting_min"),
                (_STANDING, "standing_min"),
                (_MOVING, "moving_min"),
                (_CYCLING, "cycling_min"),
                (_LYING, "lying_min"),
                (_NONWEAR, "nonwear_min"),
            )
        ],
    )
    bout_day = bouts.group_by("local_date").agg(
        pl.len().cast(pl.Int64).alias("sitting_bouts"),
        (pl.col("duration_s") >= 1800 - _SLACK_S).sum().cast(pl.Int64).alias("bouts_30min"),
        (pl.col("duration_s") >= 3600 - _SLACK_S).sum().cast(pl.Int64).alias("bouts_60min"),
        (pl.col("duration_s").max() / 60).alias("longest_bout_min"),
        (pl.col("duration_s").mean() / 60).alias("mean_bout_min"),
    )
    break_day = _count_by_date(dates, rb.break_run[rb.ends_in_break], "breaks")
    stand_day = _count_by_date(dates, rb.short_stand_run, "short_stands")
    daily = (
        per_day.join(bout_day, on="local_date", how="left")
        .join(break_day, on="local_date", how="left")
        .join(stand_day, on="local_date", how="left")
        .with_columns(
            pl.col("sitting_bouts", "bouts_30min", "bouts_60min", "breaks", "short_stands")
            .fill_null(0),
        )
        .with_columns(
            (pl.col("wear_min") >= valid_wear_h * 60.0 - _SLACK_S).alias("valid_day"),
        )
        .sort("local_date")
    )
    # ratios in numpy: polars divides a one-row column by another kernel than a longer one
    # (the last bit differs), and a day's figures must not depend on how many days came along
    wear = daily["wear_min"].to_numpy()
    sitting = daily["sitting_min"].to_numpy()
    breaks = daily["breaks"].to_numpy().astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        pct = np.where(wear > 0, 100.0 * sitting / wear, np.nan)
        per_hour = np.where(sitting > 0, breaks / (sitting / 60.0), np.nan)
    daily = daily.with_columns(
        pl.Series("sitting_pct", pct, dtype=pl.Float64, nan_to_null=True),
        pl.Series("breaks_per_sitting_hour", per_hour, dtype=pl.Float64, nan_to_null=True),
    ).select(DAILY_COLUMNS)
    runs = runs.with_columns(
        pl.Series("bridged", rb.bridged, dtype=pl.Boolean),
        pl.Series("stretch", rb.stretch, dtype=pl.Int64),
    )
    return SittingTables(daily=daily, bouts=bouts, runs=runs)


def _count_by_date(dates: pl.Series, run_index: np.ndarray, name: str) -> pl.DataFrame:
    return (
        pl.DataFrame({"local_date": dates.gather(run_index)})
        .group_by("local_date")
        .agg(pl.len().cast(pl.Int64).alias(name))
    )


def sitting_bout_table(
    epoch_start_us: npt.ArrayLike,
    posture: npt.ArrayLike,
    epoch_s: float,
    tz: TzSchedule,
    *,
    min_break_s: float = 10.0,
) -> pl.DataFrame:
    """One row per sitting bout (break rule applied; gaps end bouts).

    Returns
    -------
    polars.DataFrame
        ``start_us`` (Int64, UTC), ``end_us`` (exclusive), ``duration_s`` (spans bridged
        short stands), ``sitting_s``, ``short_stands``, ``ends_in_break`` (bool),
        ``local_date`` (the local day the bout starts on).

    Examples
    --------
    >>> t = np.arange(3600, dtype=np.int64) * 1_000_000
    >>> p = np.r_[np.full(1800, 1), np.full(1800, 2)].astype(np.int8)
    >>> sitting_bout_table(t, p, 1.0, "UTC")["duration_s"].to_list()
    [1800.0]
    """
    runs = posture_runs(epoch_start_us, posture, epoch_s, tz)
    return sitting_from_runs(runs, epoch_s, min_break_s=min_break_s).bouts


def daily_sitting(
    epoch_start_us: npt.ArrayLike,
    posture: npt.ArrayLike,
    epoch_s: float,
    tz: TzSchedule,
    *,
    min_break_s: float = 10.0,
    valid_wear_h: float = 10.0,
) -> pl.DataFrame:
    """Daily sitting measures, one row per local calendar day with any data.

    Parameters
    ----------
    epoch_start_us : array_like of int64, shape (n,)
        UTC start of each epoch, µs, increasing; gaps allowed.
    posture : array_like of int8, shape (n,)
        Posture codes.
    epoch_s : float
        Epoch length.
    tz : str or sequence of (from_us, str)
        The participant's IANA time zone, or a schedule of zones.
    min_break_s : float
        Break rule (default 10 s).
    valid_wear_h : float
        Wear hours for a valid day (default 10).

    Returns
    -------
    polars.DataFrame
        Columns :data:`DAILY_COLUMNS`: ``local_date, wear_min, sitting_min, sitting_pct,
        standing_min, moving_min, cycling_min, lying_min, nonwear_min, sitting_bouts,
        bouts_30min, bouts_60min, longest_bout_min, mean_bout_min, breaks, short_stands,
        breaks_per_sitting_hour, valid_day``. ``sitting_pct`` is % of wear; bout statistics
        are null on days without bouts; ``breaks_per_sitting_hour`` is null without sitting;
        ``short_stands`` counts upright interruptions shorter than ``min_break_s`` that bouts
        bridge (``breaks + short_stands`` is every sit-to-upright transition inside the
        day's sitting).

    Examples
    --------
    >>> t = np.arange(3600, dtype=np.int64) * 1_000_000
    >>> p = np.r_[np.full(1800, 1), np.full(1800, 2)].astype(np.int8)
    >>> daily_sitting(t, p, 1.0, "UTC")["sitting_min"].to_list()
    [30.0]
    """
    runs = posture_runs(epoch_start_us, posture, epoch_s, tz)
    return sitting_from_runs(
        runs, epoch_s, min_break_s=min_break_s, valid_wear_h=valid_wear_h
    ).daily
