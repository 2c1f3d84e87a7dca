"""The researcher views (daily_summary, daily_qc, weekly_progress, phase_progress) and the API.

Catalog content is built here by inserting rows, with the daily sitting measures computed by
the sitting module's public functions from posture epochs, so the tests do not depend on the
demo or on the signal simulators.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

import duckdb
import numpy as np
import polars as pl
import pytest

from glutewake.analytics import api
from glutewake.analytics.daily_sitting import daily_sitting
from glutewake.store.bookkeeping import log_symptoms, set_phase, upsert_participant
from glutewake.store.catalog import open_read, open_write
from glutewake.store.datadir import DataDir

TZ = "Europe/Berlin"
DST_DAY = dt.date(2026, 3, 29)  # clocks go forward: a 23-hour local day
REQUIRED = [
    "participant_id", "local_date", "wear_min", "sitting_min", "sitting_bouts", "bouts_30min",
    "longest_bout_min", "breaks_per_sitting_hour", "valid_day", "exercise_sessions",
    "activation_quality",
]


def _midnight_us(day: dt.date, tz: str) -> int:
    start = dt.datetime.combine(day, dt.time(), tzinfo=ZoneInfo(tz))
    return int((start - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)) // dt.timedelta(microseconds=1))


def worn_days(first: dt.date, days: int, tz: str, *, sit_min: int = 50, up_min: int = 10,
              wear_h: dict[dt.date, float] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """1-min posture epochs over whole local days: ``sit_min`` sitting then ``up_min`` standing.

    ``wear_h`` limits a day's wear to its first N hours (the rest is not recorded).
    """
    t0 = _midnight_us(first, tz)
    t1 = _midnight_us(first + dt.timedelta(days=days), tz)
    t = np.arange(t0, t1, 60_000_000, dtype=np.int64)
    cycle = np.r_[np.full(sit_min, 1), np.full(up_min, 2)].astype(np.int8)
    codes = np.resize(cycle, t.size)
    keep = np.ones(t.size, dtype=bool)
    for day, hours in (wear_h or {}).items():
        a = _midnight_us(day, tz)
        b = _midnight_us(day + dt.timedelta(days=1), tz)
        keep &= ~((t >= a + int(hours * 3.6e9)) & (t < b))
    return t[keep], codes[keep]


def insert(con: duckdb.DuckDBPyConnection, table: str, frame: pl.DataFrame) -> None:
    cols = [
        r[0]
        for r in con.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = ?", [table]
        ).fetchall()
    ]
    frame = frame.select([c for c in frame.columns if c in cols])
    con.register("rows_in", frame)
    con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM rows_in")
    con.unregister("rows_in")


def add_daily(con: duckdb.DuckDBPyConnection, pid: str, t: np.ndarray, codes: np.ndarray,
              tz: str) -> pl.DataFrame:
    daily = daily_sitting(t, codes, 60.0, tz).with_columns(
        pl.lit(pid).alias("participant_id"),
        pl.lit("test").alias("glutewake_version"),
        pl.lit("{}").alias("params"),
    )
    insert(con, "daily_sitting", daily)
    return daily


def add_session(con: duckdb.DuckDBPyConnection, pid: str, day: dt.date, *, quality: float,
                tz: str = TZ, **measures: float) -> None:
    start = dt.datetime.combine(day, dt.time(18), tzinfo=ZoneInfo(tz))
    row = {
        "session_id": f"{pid}/{day}-{quality}",
        "participant_id": pid,
        "local_date": day,
        "start_time": start,
        "end_time": start + dt.timedelta(minutes=5),
        "exercise": "glute_bridge",
        "repetitions": 12,
        "activation_quality": quality,
        "glutewake_version": "test",
        "params": "{}",
        **measures,
    }
    insert(con, "exercise_sessions", pl.DataFrame([row]))


@pytest.fixture
def catalog(tmp_path: Path) -> DataDir:
    """P1 (Berlin): 10 whole days around the DST change, one short-wear day, sessions and
    symptoms, a session-only day; P2 (New York): 3 days."""
    d = DataDir(tmp_path / "data")
    first = dt.date(2026, 3, 23)  # a Monday
    with open_write(d) as con:
        upsert_participant(con, "P1", TZ, baseline_start=first, baseline_end=first +
                           dt.timedelta(days=2), goal_sitting_min=600.0)
        upsert_participant(con, "P2", "America/New_York")
        set_phase(con, "P1", 1, dt.date(2026, 3, 26))
        set_phase(con, "P1", 2, dt.date(2026, 4, 1))
        set_phase(con, "P1", 3, dt.date(2026, 4, 20))  # a phase without sessions
        short = dt.date(2026, 3, 31)
        t, codes = worn_days(first, 10, TZ, wear_h={short: 6.0})
        add_daily(con, "P1", t, codes, TZ)
        t2, c2 = worn_days(dt.date(2026, 3, 27), 3, "America/New_York", sit_min=20, up_min=5)
        add_daily(con, "P2", t2, c2, "America/New_York")
        for k, day in enumerate([dt.date(2026, 3, 27), dt.date(2026, 3, 28), DST_DAY]):
            add_session(con, "P1", day, quality=50.0 + 10 * k, glute_fired_share=0.9,
                        glute_peak_pct_mvc=30.0 + k)
        add_session(con, "P1", DST_DAY, quality=80.0)  # two sessions on one day
        add_session(con, "P1", dt.date(2026, 4, 5), quality=75.0)  # no thigh data that day
        log_symptoms(con, "P1", DST_DAY, lower_back=4, hip=2)
        log_symptoms(con, "P1", dt.date(2026, 4, 7), knee=1)  # a symptoms-only day
        con.execute(
            "INSERT INTO qc VALUES ('P1', 'P1/x-c1-acc', NULL, 'gap:disconnect', "
            "TIMESTAMPTZ '2026-03-29 10:00:00+02', TIMESTAMPTZ '2026-03-29 10:05:00+02', 300, "
            "NULL), ('P1', NULL, DATE '2026-03-29', 'battery', NULL, NULL, 41, NULL)"
        )
    return d


def test_daily_summary_one_row_per_participant_day_with_dst(catalog: DataDir) -> None:
    frame = api.daily_summary(catalog)
    assert set(REQUIRED) <= set(frame.columns)
    keys = frame.select("participant_id", "local_date")
    assert keys.n_unique() == frame.height
    p1 = frame.filter(pl.col("participant_id") == "P1").sort("local_date")
    # 10 thigh days + a session-only day + a symptoms-only day
    assert p1.height == 12
    dst = p1.filter(pl.col("local_date") == DST_DAY).row(0, named=True)
    assert dst["wear_min"] == pytest.approx(23 * 60)  # the local day had 23 hours
    normal = p1.filter(pl.col("local_date") == dt.date(2026, 3, 28)).row(0, named=True)
    assert normal["wear_min"] == pytest.approx(24 * 60)
    assert dst["exercise_sessions"] == 2
    assert dst["activation_quality"] == pytest.approx((70.0 + 80.0) / 2)
    assert dst["lower_back_pain"] == 4 and dst["knee_pain"] is None
    assert dst["bouts_30min"] == dst["sitting_bouts"] > 0
    assert dst["longest_bout_min"] == pytest.approx(50.0)


def test_exercise_or_symptoms_without_thigh_data_still_appear(catalog: DataDir) -> None:
    frame = api.daily_summary(catalog, "P1").sort("local_date")
    only_ex = frame.filter(pl.col("local_date") == dt.date(2026, 4, 5)).row(0, named=True)
    assert only_ex["has_sitting_data"] is False
    assert only_ex["valid_day"] is False
    assert only_ex["wear_min"] is None and only_ex["sitting_min"] is None  # not zeros
    assert only_ex["exercise_sessions"] == 1 and only_ex["activation_quality"] == 75.0
    only_sym = frame.filter(pl.col("local_date") == dt.date(2026, 4, 7)).row(0, named=True)
    assert only_sym["exercise_sessions"] == 0 and only_sym["knee_pain"] == 1
    assert only_sym["phase"] == 2


def test_phase_baseline_and_goal_columns(catalog: DataDir) -> None:
    frame = api.daily_summary(catalog, "P1").sort("local_date")
    phases = dict(zip(frame["local_date"].to_list(), frame["phase"].to_list(), strict=True))
    assert phases[dt.date(2026, 3, 25)] is None  # baseline week, before phase 1
    assert phases[dt.date(2026, 3, 26)] == 1
    assert phases[dt.date(2026, 4, 1)] == 2
    base = api.baseline_sitting(catalog).sort("participant_id")
    p1 = base.row(0, named=True)
    expected = frame.filter(pl.col("local_date") <= dt.date(2026, 3, 25))["sitting_min"].mean()
    assert p1["baseline_days"] == 3 and p1["baseline_sitting_min"] == pytest.approx(expected)
    assert p1["goal_sitting_min"] == 600.0
    assert base.row(1, named=True)["baseline_days"] == 0  # P2 has no baseline week
    assert base.row(1, named=True)["baseline_sitting_min"] is None
    week = api.weekly_progress(catalog, "P1").row(0, named=True)
    assert week["sitting_vs_baseline_min"] == pytest.approx(week["sitting_min"] - expected)


def test_short_wear_day_is_not_valid(catalog: DataDir) -> None:
    row = api.daily_summary(catalog, "P1", dt.date(2026, 3, 31), dt.date(2026, 3, 31)).row(
        0, named=True)
    assert row["wear_min"] == pytest.approx(360.0)
    assert row["valid_day"] is False


def test_daily_qc_gaps_and_battery_on_their_local_day(catalog: DataDir) -> None:
    qc = api.daily_qc(catalog, "P1", DST_DAY, DST_DAY).row(0, named=True)
    assert qc["data_gaps"] == 1 and qc["gap_min"] == pytest.approx(5.0)
    assert qc["battery_min_pct"] == 41
    other = api.daily_qc(catalog, "P1", dt.date(2026, 3, 28), dt.date(2026, 3, 28)).row(
        0, named=True)
    assert other["data_gaps"] == 0 and other["battery_min_pct"] is None


def test_weekly_progress_uses_valid_days_only(catalog: DataDir) -> None:
    weeks = api.weekly_progress(catalog, "P1")
    first = weeks.filter(pl.col("week_start") == dt.date(2026, 3, 23)).row(0, named=True)
    assert first["week_index"] == 1
    assert first["days_with_data"] == 7 and first["valid_days"] == 7
    assert first["exercise_sessions"] == 4 and first["exercise_days"] == 3
    assert first["scored_sessions"] == 4
    assert first["activation_quality"] == pytest.approx((50 + 60 + 70 + 80) / 4)
    second = weeks.filter(pl.col("week_start") == dt.date(2026, 3, 30)).row(0, named=True)
    assert second["valid_days"] == 2  # 30 and 31 March worn, 31 March too short
    daily = api.daily_summary(catalog, "P1", dt.date(2026, 3, 30), dt.date(2026, 3, 30))
    assert second["sitting_min"] == pytest.approx(daily["sitting_min"][0])


def test_phase_progress_per_phase_and_without_sessions(catalog: DataDir) -> None:
    pp = api.phase_progress(catalog, "P1").sort("start_date")
    assert pp["phase"].to_list() == [1, 2, 3]
    one, two, three = pp.iter_rows(named=True)
    assert one["end_date"] == dt.date(2026, 3, 31)
    assert one["days_in_phase"] == 6
    assert one["exercise_sessions"] == 4
    assert two["exercise_sessions"] == 1
    assert three["exercise_sessions"] == 0
    assert three["activation_quality"] is None  # missing, not zero
    assert three["sessions_per_week"] == 0.0


def test_filters_and_errors(catalog: DataDir, tmp_path: Path) -> None:
    both = api.daily_summary(catalog, ["P1", "P2"], dt.date(2026, 3, 28), dt.date(2026, 3, 29))
    assert sorted(set(both["participant_id"])) == ["P1", "P2"]
    assert both["local_date"].min() == dt.date(2026, 3, 28)
    assert both["local_date"].max() == dt.date(2026, 3, 29)
    with open_read(catalog) as con:  # an open connection is used as it is
        assert api.daily_summary(con, "P2").height == 3
    assert api.daily_summary(str(catalog.root), "P2").height == 3
    with pytest.raises(api.UnknownParticipantError, match="nobody"):
        api.daily_summary(catalog, "nobody")
    with pytest.raises(api.ApiError, match="before start"):
        api.daily_summary(catalog, "P1", dt.date(2026, 4, 2), dt.date(2026, 4, 1))
    with pytest.raises(api.ApiError, match=r"datetime\.date"):
        api.daily_summary(catalog, "P1", "2026-04-01")  # type: ignore[arg-type]
    with pytest.raises(api.ApiError, match="source must be"):
        api.daily_summary(42)  # type: ignore[arg-type]
    with pytest.raises(api.ApiError, match="non-empty"):
        api.daily_summary(catalog, [])


def test_bouts_sessions_and_contractions_frames(catalog: DataDir) -> None:
    with open_write(catalog) as con:
        start = dt.datetime(2026, 3, 29, 8, tzinfo=ZoneInfo(TZ))
        insert(con, "sitting_bouts", pl.DataFrame([{
            "participant_id": "P1", "local_date": DST_DAY, "start_time": start,
            "end_time": start + dt.timedelta(minutes=40), "duration_min": 40.0,
            "glutewake_version": "test", "params": "{}"}]))
        sid = api.exercise_sessions(con, "P1", DST_DAY, DST_DAY)["session_id"][0]
        insert(con, "contractions", pl.DataFrame([{
            "session_id": sid, "participant_id": "P1", "channel": "ch1", "muscle": "glute_max",
            "side": "right", "onset_time": start, "offset_time": start + dt.timedelta(seconds=1),
            "duration_ms": 1000.0, "peak_uv": 120.0, "mean_uv": 60.0, "repetition": 1}]))
    bouts = api.sitting_bouts(catalog, "P1")
    assert bouts.height == 1
    assert bouts["start_local"][0] == dt.datetime(2026, 3, 29, 8)  # local wall-clock time
    sessions = api.exercise_sessions(catalog, "P1", DST_DAY, DST_DAY)
    assert sessions.height == 2
    con_rows = api.contractions(catalog, "P1", DST_DAY, DST_DAY)
    assert con_rows.height == 1 and con_rows["local_date"][0] == DST_DAY
    assert con_rows["exercise"][0] == "glute_bridge"
    assert api.contractions(catalog, "P1", dt.date(2026, 4, 1)).height == 0
    assert api.phases(catalog, "P1").height == 3
    assert api.participants(catalog)["participant_id"].to_list() == ["P1", "P2"]
