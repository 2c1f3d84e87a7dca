"""Which local days to (re)measure when some days' posture is new, and with what context.

Posture is derived per local day (in parallel, each day with hours of context either side) and
stored per day as runs (``posture_periods``). Bouts, breaks and short stands are then measured
from the runs of *all* the days they touch, so a bout is owned once, by the day it starts on,
with its whole length, however the days were cut into tasks or runs of ``process``:

* the runs of the fresh days are joined with stored runs of neighbouring days, day by day,
  until every independent stretch (:class:`glutewake.signal.bouts.RunBouts`) that touches a
  day to be written lies wholly inside the loaded days or ends at the edge of the data;
* the days to be written are the fresh days and every day that a stretch touching a fresh
  day reaches (a bout from the evening before that runs into a fresh day, the day after
  into which a fresh day's bout runs): their daily rows and bouts are replaced.

The same function serves a whole recording, a day at a time, or any split: tests check that
the results are identical.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass

import numpy as np
import polars as pl

from glutewake.analytics.daily_sitting import RUN_SCHEMA, sitting_from_runs
from glutewake.signal.bouts import SITTING_CODE as SITTING

__all__ = ["DayMeasures", "measure_days"]

ONE_DAY = dt.timedelta(days=1)


@dataclass(frozen=True)
class DayMeasures:
    """Rows to write for the days a derivation changes.

    Attributes
    ----------
    days : frozenset of datetime.date
        Days whose daily row and bouts are replaced.
    daily : polars.DataFrame
        Their daily measures (one row per day of ``days`` that has runs).
    bouts : polars.DataFrame
        The bouts that start on them, each with its whole length.
    loaded : frozenset of datetime.date
        Every day whose runs were used (the written days and their context).
    """

    days: frozenset[dt.date]
    daily: pl.DataFrame
    bouts: pl.DataFrame
    loaded: frozenset[dt.date]


def measure_days(
    fresh: Mapping[dt.date, pl.DataFrame],
    stored_days: Collection[dt.date],
    load: Callable[[list[dt.date]], Mapping[dt.date, pl.DataFrame]],
    epoch_s: float,
    *,
    min_break_s: float = 10.0,
    valid_wear_h: float = 10.0,
) -> DayMeasures:
    """Daily measures and bouts of the days that fresh posture changes.

    Parameters
    ----------
    fresh : mapping of date to polars.DataFrame
        Newly derived runs (:data:`glutewake.analytics.daily_sitting.RUN_SCHEMA`) per local day;
        they replace any stored runs of those days.
    stored_days : collection of date
        Days whose runs are stored (and can be loaded as context).
    load : callable
        ``load(days)`` returns the stored runs of those days.
    epoch_s : float
        Epoch length (gap tolerance).
    min_break_s, valid_wear_h : float
        As for :func:`glutewake.analytics.daily_sitting.sitting_from_runs`.

    Returns
    -------
    DayMeasures
    """
    runs_by_day = {day: runs for day, runs in fresh.items() if runs.height}
    stored = set(stored_days) - set(runs_by_day)
    fresh_days = set(runs_by_day)
    fresh_frame = _concat(runs_by_day.values())
    while True:
        tables = sitting_from_runs(
            _concat(runs_by_day.values()),
            epoch_s,
            min_break_s=min_break_s,
            valid_wear_h=valid_wear_h,
        )
        write, edges = _days_to_write(tables.runs, fresh_days, stored, set(runs_by_day))
        if not edges:
            break
        loaded = load(edges)
        for day in edges:
            # a stored day without runs still closes the edge: nothing continues through it
            runs = loaded.get(day, pl.DataFrame(schema=RUN_SCHEMA))
            runs_by_day[day] = _superseded_dropped(runs, fresh_frame, epoch_s)
    return DayMeasures(
        days=frozenset(write),
        daily=tables.daily.filter(pl.col("local_date").is_in(sorted(write))),
        bouts=tables.bouts.filter(pl.col("local_date").is_in(sorted(write))),
        loaded=frozenset(runs_by_day),
    )


def _days_to_write(
    runs: pl.DataFrame, fresh: set[dt.date], stored: set[dt.date], loaded: set[dt.date]
) -> tuple[set[dt.date], list[dt.date]]:
    """The days to write, and the stored days still to load before they can be written.

    A stretch matters if it holds sitting (a stretch without sitting has no bout, short
    stand or break), or if it reaches a loaded day's edge beyond which a stored day is not
    loaded yet (it may continue there). The days to write are the fresh days and every day a
    stretch that matters reaches from a fresh day; every stretch that matters and touches a
    day to write must be complete, so the stored day beyond its open edge is loaded.
    """
    frame = runs.select("stretch", "local_date", "posture")
    open_left = {d for d in loaded if d - ONE_DAY in stored and d - ONE_DAY not in loaded}
    open_right = {d for d in loaded if d + ONE_DAY in stored and d + ONE_DAY not in loaded}
    ends = frame.group_by("local_date").agg(
        pl.col("stretch").first().alias("first"), pl.col("stretch").last().alias("last")
    )
    # (stretch, the stored day beyond its open edge)
    edge_of = {(first, d - ONE_DAY) for d, first, _ in ends.iter_rows() if d in open_left}
    edge_of |= {(last, d + ONE_DAY) for d, _, last in ends.iter_rows() if d in open_right}
    open_stretches = {s for s, _ in edge_of}
    per_stretch = frame.group_by("stretch").agg(
        (pl.col("posture") == SITTING).any().alias("sitting"), pl.col("local_date").unique()
    )
    matters = {
        int(s): set(days)
        for s, sitting, days in per_stretch.iter_rows()
        if sitting or int(s) in open_stretches
    }
    write = set(fresh)
    for days in matters.values():
        if days & fresh:
            write |= days
    needed = {s for s, days in matters.items() if days & write}
    edges = sorted({day for s, day in edge_of if s in needed})
    return write, edges


def _superseded_dropped(
    stored: pl.DataFrame, fresh: pl.DataFrame, epoch_s: float
) -> pl.DataFrame:
    """Stored runs without those that fresh runs cover (by an epoch or more).

    Days are cut in the participant's time zone: after a change of zone, the runs stored under
    the old one can cover the same time as fresh runs of another date. The fresh derivation
    wins (``process --redo`` re-derives them all).
    """
    if not stored.height or not fresh.height:
        return stored
    f = fresh.sort("start_us")
    f_start, f_end = f["start_us"].to_numpy(), f["end_us"].to_numpy()
    before = np.concatenate(([0], np.cumsum(f_end - f_start)))

    def fresh_time_before(t: np.ndarray) -> np.ndarray:
        k = np.searchsorted(f_start, t, side="right") - 1
        inside = np.clip(t - f_start[np.maximum(k, 0)], 0, (f_end - f_start)[np.maximum(k, 0)])
        return np.where(k >= 0, before[np.maximum(k, 0)] + inside, 0)

    s_start, s_end = stored["start_us"].to_numpy(), stored["end_us"].to_numpy()
    overlap = fresh_time_before(s_end) - fresh_time_before(s_start)
    return stored.filter(pl.Series(overlap < round(epoch_s * 1e6)))


def _concat(frames: Collection[pl.DataFrame]) -> pl.DataFrame:
    parts = [f.select(list(RUN_SCHEMA)).cast(RUN_SCHEMA) for f in frames]  # type: ignore[arg-type]
    return pl.concat(parts) if parts else pl.DataFrame(schema=RUN_SCHEMA)
