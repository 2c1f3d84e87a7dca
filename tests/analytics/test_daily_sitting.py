"""Daily sitting measures: DST change days, a time-zone change, gaps, bouts across midnight."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from glutewake.analytics.daily_sitting import daily_sitting, local_dates, sitting_bout_table

S, U, W, N = 1, 2, 3, 0
EPOCH_S = 60.0  # minute epochs keep these tests small; the code is epoch-length agnostic


def _us(tz: str, *args: int) -> int:
    return int(datetime(*args, tzinfo=ZoneInfo(tz)).timestamp() * 1_000_000)  # type: ignore[misc]


def _minutes(start_us: int, n: int) -> np.ndarray:
    return start_us + np.arange(n, dtype=np.int64) * 60_000_000


def test_spring_forward_day_has_23_hours() -> None:
    tz = "Europe/London"  # 2026-03-29: 01:00 GMT -> 02:00 BST
    start = _us(tz, 2026, 3, 28, 0, 0)
    t = _minutes(start, 3 * 24 * 60)
    p = np.full(t.size, U, dtype=np.int8)
    out = daily_sitting(t, p, EPOCH_S, tz)
    wear = dict(zip(out["local_date"].to_list(), out["wear_min"].to_list(), strict=True))
    assert wear[date(2026, 3, 28)] == 24 * 60
    assert wear[date(2026, 3, 29)] == 23 * 60
    assert out["valid_day"].to_list()[:2] == [True, True]


def test_fall_back_day_has_25_hours_and_bouts_count_by_local_day() -> None:
    tz = "America/New_York"  # 2026-11-01: 02:00 EDT -> 01:00 EST
    start = _us(tz, 2026, 11, 1, 0, 0)
    n = 25 * 60 + 24 * 60
    t = _minutes(start, n)
    p = np.full(n, U, dtype=np.int8)
    p[:90] = S  # 00:00-01:30 local (EDT): a 90-min bout
    p[25 * 60 - 30 : 25 * 60 + 45] = S  # 23:30 -> 00:45 next day: crosses local midnight
    out = daily_sitting(t, p, EPOCH_S, tz).to_dicts()
    d1, d2 = out[0], out[1]
    assert d1["local_date"] == date(2026, 11, 1) and d1["wear_min"] == 25 * 60
    assert d1["sitting_min"] == 90 + 30 and d2["sitting_min"] == 45
    # The crossing bout belongs to the day it starts on.
    assert d1["sitting_bouts"] == 2 and d2["sitting_bouts"] == 0
    assert d1["bouts_60min"] == 2 and d1["longest_bout_min"] == 90
    assert d1["breaks"] == 1 and d2["breaks"] == 1  # the second break happens after midnight
    assert d2["mean_bout_min"] is None
    assert d1["breaks_per_sitting_hour"] == pytest.approx(1 / 2)


def test_time_zone_change_moves_the_day_boundary() -> None:
    # A participant flies from Berlin to New York on 2026-06-10 at 12:00 UTC.
    start = _us("UTC", 2026, 6, 9, 22, 0)  # local midnight in Berlin (CEST)
    t = _minutes(start, 3 * 24 * 60)
    p = np.full(t.size, W, dtype=np.int8)
    change = _us("UTC", 2026, 6, 10, 12, 0)
    sched = [(0, "Europe/Berlin"), (change, "America/New_York")]
    out = daily_sitting(t, p, EPOCH_S, sched)
    wear = dict(zip(out["local_date"].to_list(), out["wear_min"].to_list(), strict=True))
    # 10 June: 00:00 CEST .. 14:00 CEST (=12:00 UTC), then 08:00 .. 24:00 EDT: 14 h + 16 h.
    assert wear[date(2026, 6, 10)] == 30 * 60
    assert wear[date(2026, 6, 11)] == 24 * 60
    only_berlin = daily_sitting(t, p, EPOCH_S, "Europe/Berlin")
    assert only_berlin["wear_min"].to_list()[0] == 24 * 60


def test_gaps_are_not_wear_and_split_bouts() -> None:
    t0 = _us("UTC", 2026, 5, 1, 8, 0)
    t = np.concatenate([_minutes(t0, 40), _minutes(t0 + 41 * 60_000_000, 40)])  # 1-min gap
    p = np.full(t.size, S, dtype=np.int8)
    out = daily_sitting(t, p, EPOCH_S, "UTC").to_dicts()[0]
    assert out["wear_min"] == 80 and out["sitting_bouts"] == 2 and out["bouts_30min"] == 2
    assert out["breaks"] == 0
    table = sitting_bout_table(t, p, EPOCH_S, "UTC")
    assert table["start_us"].to_list() == [t[0], t[40]]
    assert table["end_us"].to_list() == [t[39] + 60_000_000, t[79] + 60_000_000]


def test_nonwear_counts_neither_wear_nor_sitting() -> None:
    t = _minutes(_us("UTC", 2026, 5, 1, 0, 0), 24 * 60)
    p = np.full(t.size, N, dtype=np.int8)
    p[8 * 60 : 17 * 60] = S
    out = daily_sitting(t, p, EPOCH_S, "UTC", valid_wear_h=10).to_dicts()[0]
    assert out["wear_min"] == 9 * 60 and out["nonwear_min"] == 15 * 60
    assert out["sitting_pct"] == 100.0 and out["valid_day"] is False
    assert out["breaks"] == 0


def test_min_break_rule_is_applied() -> None:
    t = _minutes(_us("UTC", 2026, 5, 1, 9, 0), 200)
    p = np.full(t.size, S, dtype=np.int8)
    p[60] = U  # a 1-min stand: a break with the default 10 s rule, not with a 2-min rule
    assert daily_sitting(t, p, EPOCH_S, "UTC")["sitting_bouts"].to_list() == [2]
    assert daily_sitting(t, p, EPOCH_S, "UTC", min_break_s=120)["sitting_bouts"].to_list() == [1]


def test_columns_and_bad_input() -> None:
    t = _minutes(0, 10)
    out = daily_sitting(t, np.full(10, S, dtype=np.int8), EPOCH_S, "UTC")
    for col in [
        "local_date",
        "wear_min",
        "sitting_min",
        "sitting_pct",
        "standing_min",
        "moving_min",
        "lying_min",
        "sitting_bouts",
        "bouts_30min",
        "bouts_60min",
        "longest_bout_min",
        "mean_bout_min",
        "breaks",
        "breaks_per_sitting_hour",
        "valid_day",
    ]:
        assert col in out.columns
    assert out.schema["local_date"] == pl.Date
    with pytest.raises(ValueError, match="equal length"):
        daily_sitting(t, np.zeros(3, dtype=np.int8), EPOCH_S, "UTC")
    with pytest.raises(ValueError, match="increase"):
        daily_sitting(t[::-1].copy(), np.zeros(10, dtype=np.int8), EPOCH_S, "UTC")
    with pytest.raises(ValueError, match="time zone"):
        daily_sitting(t, np.zeros(10, dtype=np.int8), EPOCH_S, "Mars/Olympus")
    with pytest.raises(TypeError, match="integer"):
        daily_sitting(t.astype(float), np.zeros(10, dtype=np.int8), EPOCH_S, "UTC")


def test_local_dates_schedule() -> None:
    t = np.array([_us("UTC", 2026, 1, 1, 23, 30)], dtype=np.int64)
    assert local_dates(t, "Asia/Tokyo").to_list() == [date(2026, 1, 2)]
    assert local_dates(t, "UTC").to_list() == [date(2026, 1, 1)]


@given(
    st.lists(st.integers(0, 5), min_size=1, max_size=300),
    st.sampled_from(["UTC", "Europe/London", "America/New_York", "Asia/Kolkata"]),
    st.integers(0, 10**6),
)
@settings(max_examples=50, deadline=None)
def test_totals_are_conserved(codes: list[int], tz: str, seed: int) -> None:
    rng = np.random.default_rng(seed)
    p = np.repeat(np.array(codes, dtype=np.int8), rng.integers(1, 30, len(codes)))
    step = np.where(rng.random(p.size) < 0.02, 3, 1) * 60_000_000  # a few gaps
    t = _us("UTC", 2026, 3, 28, 20, 0) + np.concatenate(([0], np.cumsum(step[1:])))
    out = daily_sitting(t, p, EPOCH_S, tz)
    assert out["sitting_min"].sum() == pytest.approx(np.sum(p == S))
    assert out["wear_min"].sum() == pytest.approx(np.sum(p != N))
    assert out["sitting_bouts"].sum() == sitting_bout_table(t, p, EPOCH_S, tz).height
    assert out["local_date"].is_sorted() and out["local_date"].n_unique() == out.height


def test_drift_corrected_epoch_starts_are_accepted_but_overlaps_are_not() -> None:
    n = 3600
    base = 1_774_569_600_000_000  # 2026-03-27 00:00 UTC
    # a device clock running 30 ppm fast, mapped to UTC: epochs 0.99997 s apart
    starts = base + np.round(np.arange(n) * 0.99997e6).astype(np.int64)
    posture = np.ones(n, dtype=np.int8)
    day = daily_sitting(starts, posture, 1.0, "UTC")
    assert day["sitting_min"][0] == pytest.approx(60.0)
    overlapping = base + np.arange(n, dtype=np.int64) * 500_000
    with pytest.raises(ValueError, match="at least one epoch"):
        daily_sitting(overlapping, posture, 1.0, "UTC")
