"""Daily sitting measures per participant-local calendar day (DST- and time-zone-aware).

Inputs are per-epoch posture codes (:class:`glutewake.signal.posture.Posture`) with each
epoch's UTC start; epochs may have gaps in time (between recording segments): a gap is not
wear time and never joins bouts. Local days come from the participant's IANA time zone, or a
schedule of time zones (a participant who travels), so a DST change day has 23 or 25 hours.

Bouts crossing local midnight: a bout belongs, whole, to the local day on which it *starts*
(its full duration counts toward that day's bout counts, longest and mean bout); sitting
*time* is always split by epoch, so each day's sitting minutes are exactly that day's. A break
belongs to the day on which the break (the first upright epoch) happens.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import polars as pl

from glutewake.signal.bouts import sitting_bouts

__all__ = ["TzSchedule", "daily_sitting", "local_dates", "sitting_bout_table"]

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
        ``start_us`` (Int64, UTC), ``end_us`` (exclusive), ``duration_s`` (spans absorbed
        short interruptions), ``sitting_s``, ``ends_in_break`` (bool), ``local_date`` (the
        local day the bout starts on).

    Examples
    --------
    >>> t = np.arange(3600, dtype=np.int64) * 1_000_000
    >>> p = np.r_[np.full(1800, 1), np.full(1800, 2)].astype(np.int8)
    >>> sitting_bout_table(t, p, 1.0, "UTC")["duration_s"].to_list()
    [1800.0]
    """
    t, p = _check_inputs(epoch_start_us, posture, epoch_s)
    epoch_us = round(epoch_s * 1e6)
    seg = np.zeros(t.size, dtype=bool)
    if t.size:
        seg[0] = True
        seg[1:] = np.diff(t) > epoch_us * 1.5
    b = sitting_bouts(p, epoch_s, min_break_s=min_break_s, segment_start=seg)
    start_us = t[b.start_epoch]
    end_us = t[b.end_epoch - 1] + epoch_us if len(b) else np.zeros(0, dtype=np.int64)
    return pl.DataFrame(
        {
            "start_us": pl.Series(start_us, dtype=pl.Int64),
            "end_us": pl.Series(end_us, dtype=pl.Int64),
            "duration_s": pl.Series(b.duration_s.astype(np.float64), dtype=pl.Float64),
            "sitting_s": pl.Series(b.sitting_epochs * float(epoch_s), dtype=pl.Float64),
            "ends_in_break": pl.Series(b.ends_in_break, dtype=pl.Boolean),
            "local_date": local_dates(start_us, tz),
        }
    )


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
        Columns ``local_date, wear_min, sitting_min, sitting_pct, standing_min, moving_min,
        cycling_min, lying_min, nonwear_min, sitting_bouts, bouts_30min, bouts_60min,
        longest_bout_min, mean_bout_min, breaks, breaks_per_sitting_hour, valid_day``.
        ``sitting_pct`` is % of wear; bout statistics are null on days without bouts;
        ``breaks_per_sitting_hour`` is null without sitting.

    Examples
    --------
    >>> t = np.arange(3600, dtype=np.int64) * 1_000_000
    >>> p = np.r_[np.full(1800, 1), np.full(1800, 2)].astype(np.int8)
    >>> daily_sitting(t, p, 1.0, "UTC")["sitting_min"].to_list()
    [30.0]
    """
    t, p = _check_inputs(epoch_start_us, posture, epoch_s)
    ep_min = float(epoch_s) / 60.0
    dates = local_dates(t, tz)
    epochs = pl.DataFrame({"local_date": dates, "posture": pl.Series(p, dtype=pl.Int8)})
    per_day = (
        epochs.group_by("local_date")
        .agg(
            [
                (pl.col("posture") != _NONWEAR).sum().alias("wear_ep"),
                *[
                    (pl.col("posture") == code).sum().alias(name)
                    for code, name in (
                        (_SITTING, "sit_ep"),
                        (_STANDING, "stand_ep"),
                        (_MOVING, "move_ep"),
                        (_CYCLING, "cyc_ep"),
                        (_LYING, "lie_ep"),
                        (_NONWEAR, "nonwear_ep"),
                    )
                ],
            ]
        )
        .with_columns(
            (pl.col("wear_ep") * ep_min).alias("wear_min"),
            (pl.col("sit_ep") * ep_min).alias("sitting_min"),
            (pl.col("stand_ep") * ep_min).alias("standing_min"),
            (pl.col("move_ep") * ep_min).alias("moving_min"),
            (pl.col("cyc_ep") * ep_min).alias("cycling_min"),
            (pl.col("lie_ep") * ep_min).alias("lying_min"),
            (pl.col("nonwear_ep") * ep_min).alias("nonwear_min"),
        )
    )
    bouts = sitting_bout_table(t, p, epoch_s, tz, min_break_s=min_break_s)
    bout_day = bouts.group_by("local_date").agg(
        pl.len().cast(pl.Int64).alias("sitting_bouts"),
        (pl.col("duration_s") >= 1800).sum().cast(pl.Int64).alias("bouts_30min"),
        (pl.col("duration_s") >= 3600).sum().cast(pl.Int64).alias("bouts_60min"),
        (pl.col("duration_s").max() / 60).alias("longest_bout_min"),
        (pl.col("duration_s").mean() / 60).alias("mean_bout_min"),
    )
    # A break is dated by its first upright epoch (the bout's exclusive end).
    breaks_df = bouts.filter(pl.col("ends_in_break"))
    break_day = (
        pl.DataFrame({"local_date": local_dates(breaks_df["end_us"].to_numpy(), tz)})
        .group_by("local_date")
        .agg(pl.len().cast(pl.Int64).alias("breaks"))
    )
    out = (
        per_day.join(bout_day, on="local_date", how="left")
        .join(break_day, on="local_date", how="left")
        .with_columns(
            pl.col("sitting_bouts", "bouts_30min", "bouts_60min", "breaks").fill_null(0),
        )
        .with_columns(
            pl.when(pl.col("wear_min") > 0)
            .then(100.0 * pl.col("sitting_min") / pl.col("wear_min"))
            .otherwise(None)
            .alias("sitting_pct"),
            pl.when(pl.col("sitting_min") > 0)
            .then(pl.col("breaks") / (pl.col("sitting_min") / 60.0))
            .otherwise(None)
            .alias("breaks_per_sitting_hour"),
            (pl.col("wear_min") >= valid_wear_h * 60.0).alias("valid_day"),
        )
        .sort("local_date")
    )
    return out.select(
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
        "breaks_per_sitting_hour",
        "valid_day",
    )
