"""One owner per bout: the catalog's sitting figures do not depend on how days were cut.

Property tests over random posture streams in time zones with DST change days: the rows the
pipeline would store, built day by day in any order and any grouping of days into runs (as
``process`` does with per-day tasks, workers and incremental data), equal the figures of the
whole stream measured at once, and they obey the catalog invariants.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from glutewake.analytics.daily_sitting import posture_runs, sitting_from_runs
from glutewake.analytics.sitting_days import measure_days

N, S, U, W, L, C = 0, 1, 2, 3, 4, 5
EPOCH_S = 10.0
EPOCH_US = 10_000_000
# zones and starting days around DST changes (23 h, 25 h, a 30-minute change) and none
ZONE_STARTS = [
    ("Europe/Berlin", dt.date(2026, 3, 28)),
    ("America/New_York", dt.date(2026, 10, 31)),
    ("Australia/Lord_Howe", dt.date(2026, 4, 4)),
    ("Asia/Kolkata", dt.date(2026, 6, 1)),
    ("UTC", dt.date(2026, 1, 1)),
]


def _stream(
    parts: list[tuple[int, int]], gaps: list[int], zone: str, first: dt.date, offset_min: int
) -> tuple[np.ndarray, np.ndarray]:
    codes = np.concatenate([np.full(n, c, dtype=np.int8) for c, n in parts])
    step = np.full(codes.size, EPOCH_US, dtype=np.int64)
    for g in gaps:
        step[g % codes.size] += 7 * EPOCH_US  # a gap of 70 s before that epoch
    step[0] = 0
    start = dt.datetime.combine(first, dt.time(), tzinfo=ZoneInfo(zone))
    t0 = int(start.timestamp() * 1_000_000) + offset_min * 60_000_000
    return t0 + np.cumsum(step), codes


def _by_day(runs: pl.DataFrame) -> dict[dt.date, pl.DataFrame]:
    return {d: part for (d,), part in runs.partition_by("local_date", as_dict=True).items()}


class _Catalog:
    """The sitting tables as ``process`` keeps them: rows replaced per participant-day."""

    def __init__(self, min_break_s: float) -> None:
        self.min_break_s = min_break_s
        self.runs: dict[dt.date, pl.DataFrame] = {}
        self.daily: dict[dt.date, pl.DataFrame] = {}
        self.bouts: dict[dt.date, pl.DataFrame] = {}

    def process(self, fresh: dict[dt.date, pl.DataFrame]) -> None:
        m = measure_days(
            fresh,
            set(self.runs),
            lambda days: {d: self.runs[d] for d in days},
            EPOCH_S,
            min_break_s=self.min_break_s,
        )
        assert set(fresh) <= m.days
        self.runs.update(fresh)
        for day in m.days:
            self.daily[day] = m.daily.filter(pl.col("local_date") == day)
            self.bouts[day] = m.bouts.filter(pl.col("local_date") == day)

    def tables(self) -> tuple[pl.DataFrame, pl.DataFrame]:
        daily = pl.concat(list(self.daily.values())).sort("local_date")
        bouts = pl.concat(list(self.bouts.values())).sort("start_us")
        return daily, bouts


streams = st.tuples(
    st.lists(
        st.tuples(
            st.sampled_from([N, S, S, S, U, U, W, L, C]),
            st.one_of(st.integers(1, 3), st.integers(1, 400), st.integers(1, 12_000)),
        ),
        min_size=1,
        max_size=60,
    ),
    st.lists(st.integers(0, 10**6), max_size=4),
    st.sampled_from(ZONE_STARTS),
    st.integers(-180, 180),
    st.sampled_from([0.0, 10.0, 30.0, 120.0]),
)


@given(streams, st.randoms(use_true_random=False))
@settings(max_examples=60, deadline=None)
def test_day_by_day_in_any_order_and_split_equals_the_whole(
    stream: tuple[list[tuple[int, int]], list[int], tuple[str, dt.date], int, float],
    rnd: object,
) -> None:
    parts, gaps, (zone, first), offset_min, min_break_s = stream
    t, codes = _stream(parts, gaps, zone, first, offset_min)
    runs = posture_runs(t, codes, EPOCH_S, zone)
    whole = sitting_from_runs(runs, EPOCH_S, min_break_s=min_break_s)
    days = _by_day(runs)
    order = sorted(days)

    one_by_one = _Catalog(min_break_s)
    for day in order:  # day after day, as data arrives
        one_by_one.process({day: days[day]})
    shuffled = list(order)
    rnd.shuffle(shuffled)  # type: ignore[attr-defined]
    batches = _Catalog(min_break_s)
    while shuffled:  # random groups of days, in random order (workers, reprocessing)
        k = rnd.randint(1, len(shuffled))  # type: ignore[attr-defined]
        batches.process({d: days[d] for d in shuffled[:k]})
        shuffled = shuffled[k:]
    reverse = _Catalog(min_break_s)
    for day in reversed(order):
        reverse.process({day: days[day]})

    for catalog in (one_by_one, batches, reverse):
        daily, bouts = catalog.tables()
        assert_frame_equal(daily, whole.daily)
        assert_frame_equal(bouts, whole.bouts.sort("start_us"))


@given(streams)
@settings(max_examples=80, deadline=None)
def test_catalog_invariants(
    stream: tuple[list[tuple[int, int]], list[int], tuple[str, dt.date], int, float],
) -> None:
    parts, gaps, (zone, first), offset_min, min_break_s = stream
    t, codes = _stream(parts, gaps, zone, first, offset_min)
    runs = posture_runs(t, codes, EPOCH_S, zone)
    catalog = _Catalog(min_break_s)
    for day, part in _by_day(runs).items():
        catalog.process({day: part})
    daily, bouts = catalog.tables()
    measured = sitting_from_runs(runs, EPOCH_S, min_break_s=min_break_s)

    # no bout stored twice, none overlapping another
    start = bouts["start_us"].to_numpy()
    end = bouts["end_us"].to_numpy()
    assert bouts.select("start_us").is_unique().all()
    assert np.all(end[:-1] <= start[1:])
    # the daily sitting minutes add up to the stream's sitting time
    assert daily["sitting_min"].sum() * 60 == pytest.approx(np.sum(codes == S) * EPOCH_S)
    # each day's bout minutes on that day = its sitting minutes + the short stands bridged
    # that day, exactly (bouts clipped to the day's own time, epochs are exact here)
    bridged = measured.runs.filter(pl.col("bridged"))
    for row in daily.iter_rows(named=True):
        day = row["local_date"]
        lo = int(dt.datetime.combine(day, dt.time(), ZoneInfo(zone)).timestamp() * 1e6)
        hi = int(
            dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), ZoneInfo(zone)).timestamp()
            * 1e6
        )
        on_day = np.clip(np.minimum(end, hi) - np.maximum(start, lo), 0, None).sum() / 60e6
        bridged_min = bridged.filter(pl.col("local_date") == day)["duration_s"].sum() / 60
        assert on_day == pytest.approx(row["sitting_min"] + bridged_min, abs=1e-9)
        assert bridged_min < 1e-12 or min_break_s > 0
    # bouts are counted on their start day only, with their whole length
    per_day = bouts.group_by("local_date").agg(
        pl.len().alias("n"), (pl.col("duration_s") >= 1800).sum().alias("n30")
    )
    counted = daily.join(per_day, on="local_date", how="left").fill_null(0)
    assert (counted["sitting_bouts"] == counted["n"]).all()
    assert (counted["bouts_30min"] == counted["n30"]).all()
    assert bouts["duration_s"].sum() == pytest.approx(
        bouts["sitting_s"].sum() + bridged["duration_s"].sum()
    )


def test_a_bout_across_midnight_is_one_bout_of_its_start_day() -> None:
    zone = "Europe/Berlin"
    t, codes = _stream([(U, 360), (S, 540), (U, 360)], [], zone, dt.date(2026, 3, 27), 22 * 60)
    runs = posture_runs(t, codes, EPOCH_S, zone)  # 22:00-23:00 up, 23:00-00:30 sitting
    catalog = _Catalog(10.0)
    for day, part in sorted(_by_day(runs).items(), reverse=True):  # the later day first
        catalog.process({day: part})
    daily, bouts = catalog.tables()
    assert bouts.height == 1
    assert bouts["local_date"][0] == dt.date(2026, 3, 27)
    assert bouts["duration_s"][0] == 5400.0
    d27, d28 = daily.to_dicts()
    assert (d27["sitting_min"], d27["sitting_bouts"], d27["bouts_60min"]) == (60.0, 1, 1)
    assert (d28["sitting_min"], d28["sitting_bouts"], d28["bouts_30min"]) == (30.0, 0, 0)
    assert d28["breaks"] == 1 and d27["breaks"] == 0  # the break happens after midnight


def test_only_the_days_a_stretch_reaches_are_loaded_and_rewritten() -> None:
    zone = "UTC"
    h = 360  # epochs per hour
    parts = [
        (N, 10 * h), (U, 10 * h), (N, 4 * h),  # 30 Apr: nothing reaches the next day
        (N, 7 * h), (U, 15 * h), (S, 3 * h),  # 1 May: a bout from 22:00 ...
        (N, 6 * h), (U, 5 * h), (S, 1 * h), (U, 10 * h), (S, 3 * h),  # 2 May: ... and 23:00
        (N, 5 * h), (U, 17 * h),  # 3 May (the fresh day): up from 07:00 ...
        (U, 10 * h), (N, 14 * h),  # 4 May: ... to 10:00
    ]
    t, codes = _stream(parts, [], zone, dt.date(2026, 4, 30), 0)
    days = _by_day(posture_runs(t, codes, EPOCH_S, zone))
    assert len(days) == 5
    loaded: list[dt.date] = []

    def load(ds: list[dt.date]) -> dict[dt.date, pl.DataFrame]:
        loaded.extend(ds)
        return {d: days[d] for d in ds}

    fresh = dt.date(2026, 5, 3)
    m = measure_days({fresh: days[fresh]}, set(days), load, EPOCH_S)
    # the bout from 23:00 on 2 May runs into the fresh day: 2 May is rewritten; it needs
    # 1 May, whose bout runs into 2 May; nothing reaches 30 April, which is not read
    assert m.days == {dt.date(2026, 5, 2), fresh}
    assert sorted(loaded) == [dt.date(2026, 5, d) for d in (1, 2, 4)]
    whole = sitting_from_runs(posture_runs(t, codes, EPOCH_S, zone), EPOCH_S)
    assert_frame_equal(m.daily, whole.daily.filter(pl.col("local_date").is_in(sorted(m.days))))
    assert m.bouts["duration_s"].to_list() == [3600.0, 3 * 3600.0]


def test_runs_stored_under_another_time_zone_are_superseded_not_fatal() -> None:
    # a participant's zone was corrected from UTC to New York: the runs stored under UTC
    # cover the same hours as the fresh runs of other dates; the fresh ones win
    t, codes = _stream([(U, 4000), (S, 3000), (U, 4000)], [], "UTC", dt.date(2026, 5, 1), 0)
    old = _by_day(posture_runs(t, codes, EPOCH_S, "UTC"))
    new = _by_day(posture_runs(t, codes, EPOCH_S, "America/New_York"))
    day = dt.date(2026, 5, 1)  # 04:00-04:00 UTC: overlaps both stored UTC days
    loaded: list[dt.date] = []

    def load(ds: list[dt.date]) -> dict[dt.date, pl.DataFrame]:
        loaded.extend(ds)
        return {d: old[d] for d in ds}

    m = measure_days({day: new[day]}, set(old), load, EPOCH_S)
    assert loaded == [dt.date(2026, 5, 2)]
    whole = sitting_from_runs(posture_runs(t, codes, EPOCH_S, "America/New_York"), EPOCH_S)
    assert m.bouts["duration_s"].to_list() == whole.bouts["duration_s"].to_list() == [30000.0]
    assert m.daily["sitting_min"].to_list() == [500.0]
