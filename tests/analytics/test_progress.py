"""Progression: relation of sitting and activation, readiness in words, horizon, reports."""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
from pathlib import Path

import polars as pl
import pytest

from glutewake.analytics.progress import (
    HORIZON_MAX_WEEKS,
    HORIZON_MIN_WEEKS,
    ReadinessCriteria,
    across_participants,
    assess_readiness,
    load_progress,
    project_horizon,
    render_progress_html,
    within_participants,
    write_progress_report,
)
from glutewake.analytics.report import ReportError
from glutewake.cli import reports as commands
from glutewake.simulate.cohort import CohortParams, build_cohort
from glutewake.store.bookkeeping import log_symptoms, set_phase, upsert_participant
from glutewake.store.catalog import open_write
from glutewake.store.datadir import DataDir
from tests.analytics.test_api import add_daily, add_session, worn_days
from tests.analytics.test_report import assert_self_contained, figures

D0 = dt.date(2026, 2, 2)  # a Monday


@pytest.fixture(scope="module")
def cohort(tmp_path_factory: pytest.TempPathFactory) -> DataDir:
    d = DataDir(tmp_path_factory.mktemp("cohort") / "data")
    build_cohort(d, CohortParams(n_participants=6, days=56, seed=11, contractions=False))
    return d


def _day(k: int) -> dt.date:
    return D0 + dt.timedelta(days=k)


@pytest.fixture(scope="module")
def people(tmp_path_factory: pytest.TempPathFactory) -> DataDir:
    """Hand-made participants, one per readiness situation."""
    d = DataDir(tmp_path_factory.mktemp("people") / "data")
    good = {"glute_fired_share": 0.92, "firing_order_ms": -40.0, "peak_cv": 0.15,
            "glute_hamstring_ratio": 1.4}
    with open_write(d) as con:
        for pid in ("READY1", "WEAK1", "FEW1", "RISE2", "DONE3", "NOEMG", "CLOSE1", "LATE1",
                    "NEW1", "EDGE1"):
            upsert_participant(con, pid, "UTC", baseline_start=_day(0), baseline_end=_day(6),
                               goal_sitting_min=420.0)
        # phase 1, ready: 10 good sessions in the last two weeks
        set_phase(con, "READY1", 1, _day(7))
        for k in range(8, 28, 2):
            add_session(con, "READY1", _day(k), quality=70.0, tz="UTC", **good)
        # phase 1, glutes fire on only 60 % of repetitions
        set_phase(con, "WEAK1", 1, _day(7))
        for k in range(8, 28, 2):
            add_session(con, "WEAK1", _day(k), quality=45.0, tz="UTC",
                        **{**good, "glute_fired_share": 0.6})
        # phase 1, too few sessions to judge
        set_phase(con, "FEW1", 1, _day(7))
        for k in (20, 24, 27):
            add_session(con, "FEW1", _day(k), quality=60.0, tz="UTC", **good)
        # phase 2 for four weeks, %MVC rising 3 per week, form holding; then a phase 3 with
        # data (a pain rating) but no sessions
        set_phase(con, "RISE2", 1, _day(0))
        set_phase(con, "RISE2", 2, _day(7))
        for k in range(7, 35):
            if k % 2 == 0:
                add_session(con, "RISE2", _day(k), quality=60.0 + k / 2, tz="UTC",
                            glute_peak_pct_mvc=30.0 + 3.0 * (k - 7) / 7, **good)
        set_phase(con, "RISE2", 3, _day(40))
        log_symptoms(con, "RISE2", _day(41), hip=2)
        # phase 3: sitting well below baseline, low pain
        set_phase(con, "DONE3", 3, _day(14))
        t, codes = worn_days(_day(0), 7, "UTC", sit_min=50, up_min=10)  # baseline: ~83 % sitting
        add_daily(con, "DONE3", t, codes, "UTC")
        t, codes = worn_days(_day(7), 21, "UTC", sit_min=25, up_min=35)  # then ~42 %
        add_daily(con, "DONE3", t, codes, "UTC")
        for k in range(14, 28, 2):
            add_session(con, "DONE3", _day(k), quality=80.0, tz="UTC", **good)
        for k in range(7, 28):
            log_symptoms(con, "DONE3", _day(k), lower_back=max(6 - k // 3, 1), hip=1, knee=0)
        # glute and hamstring onsets a few ms apart: inside the onset error, never a verdict
        set_phase(con, "CLOSE1", 1, _day(7))
        for j, k in enumerate(range(8, 28, 2)):
            add_session(con, "CLOSE1", _day(k), quality=70.0, tz="UTC",
                        **{**good, "firing_order_ms": -1.0 + 4.0 * (j % 2)})
        # hamstrings clearly first
        set_phase(con, "LATE1", 1, _day(7))
        for j, k in enumerate(range(8, 28, 2)):
            add_session(con, "LATE1", _day(k), quality=50.0, tz="UTC",
                        **{**good, "firing_order_ms": 50.0 + 6.0 * (j % 3)})
        # good sessions, but only 5 days into the phase
        set_phase(con, "NEW1", 1, _day(23))
        for k in range(23, 28):
            add_session(con, "NEW1", _day(k), quality=75.0, tz="UTC", **good)
            add_session(con, "NEW1", _day(k), quality=76.0, tz="UTC", **good)
        # glutes fired on 83 % of 84 repetitions: the interval straddles the 80 % threshold
        set_phase(con, "EDGE1", 1, _day(7))
        for k in range(8, 28, 2):
            add_session(con, "EDGE1", _day(k), quality=65.0, tz="UTC",
                        **{**good, "glute_fired_share": 0.8})
        # sitting data only: no EMG at all
        set_phase(con, "NOEMG", 1, _day(7))
        t, codes = worn_days(_day(0), 21, "UTC")
        add_daily(con, "NOEMG", t, codes, "UTC")
    return d


def test_relation_within_and_across_participants(cohort: DataDir) -> None:
    data = load_progress(cohort)
    within = within_participants(data.weekly)
    assert within.n_participants == 6
    paired = data.weekly.filter(
        pl.col("sitting_min").is_not_null() & pl.col("activation_quality").is_not_null()
    )
    assert within.n_weeks == paired.height
    assert within.estimate is not None and within.estimate < -0.3  # the simulated relation
    assert within.p_value is not None and within.p_value < 0.01
    assert within.ci95 is not None and within.ci95[0] < within.estimate < within.ci95[1]
    assert f"{within.n_weeks} weeks from 6 participants" in within.text
    across = across_participants(data.weekly)
    assert across.n_participants == 6 and across.estimate is not None
    assert across.extra["within_slope"] < 0
    assert "weeks from 6 participants" in across.text


def test_relation_needs_enough_data(cohort: DataDir) -> None:
    data = load_progress(cohort)
    two = data.weekly.filter(pl.col("participant_id").is_in(["S001", "S002"]))
    rel = within_participants(two)
    assert rel.estimate is None and "needs at least 3" in rel.text
    assert across_participants(two).estimate is None
    one = within_participants(data.weekly.filter(pl.col("participant_id") == "S001"))
    assert one.method.startswith("Pearson") and one.n_participants == 1
    assert one.estimate is not None and one.estimate < 0
    short = within_participants(data.weekly.filter(pl.col("participant_id") == "S001").head(2))
    assert short.estimate is None and "at least 3" in short.text


def test_readiness_phase_1(people: DataDir) -> None:
    ready = assess_readiness(load_progress(people, "READY1"), "READY1")
    assert ready.phase == 1 and ready.ready is True
    assert ready.summary.startswith("Ready to move to phase 2")
    assert [c.met for c in ready.criteria] == [True, True, True]
    assert "fired on 77 of 84 (92%, 95% CI 84-96%) repetitions" in ready.criteria[0].detail
    assert "The glutes fired first, by 40 ms" in ready.criteria[1].detail
    weak = assess_readiness(load_progress(people, "WEAK1"), "WEAK1")
    assert weak.ready is False
    assert "glutes fire on most repetitions" in weak.summary
    assert "49 of 84 (58%, 95% CI 48-68%)" in weak.criteria[0].detail
    few = assess_readiness(load_progress(people, "FEW1"), "FEW1")
    assert few.ready is None and "Only 3 exercise session(s)" in few.criteria[0].detail
    strict = assess_readiness(load_progress(people, "READY1"), "READY1",
                              ReadinessCriteria(peak_cv_max=0.1))
    assert strict.ready is False  # the thresholds are configurable


def test_readiness_is_judged_only_where_the_data_carries_it(people: DataDir) -> None:
    close = assess_readiness(load_progress(people, "CLOSE1"), "CLOSE1")
    order = next(c for c in close.criteria if "hamstrings" in c.name)
    assert order.met is None and "within the ±25 ms onset error" in order.detail
    assert close.ready is None and "every criterion" not in close.summary
    late = assess_readiness(load_progress(people, "LATE1"), "LATE1")
    order = next(c for c in late.criteria if "hamstrings" in c.name)
    assert order.met is False and "The hamstrings fired first, by 55 ms" in order.detail
    assert late.ready is False
    new = assess_readiness(load_progress(people, "NEW1"), "NEW1")
    assert new.criteria[0].name == "long enough in the phase" and new.criteria[0].met is None
    assert "5 day(s) in phase 1 so far" in new.criteria[0].detail
    assert all(c.met for c in new.criteria[1:]) and new.ready is None
    edge = assess_readiness(load_progress(people, "EDGE1"), "EDGE1")
    fired = edge.criteria[0]
    assert fired.met is None and "70 of 84 (83%, 95% CI 74-90%)" in fired.detail
    assert "not enough data yet" in fired.detail


def test_readiness_phase_2_and_3(people: DataDir) -> None:
    rise = assess_readiness(load_progress(people, "RISE2", end=_day(34)), "RISE2")
    assert rise.phase == 2
    trend = next(c for c in rise.criteria if "week on week" in c.name)
    assert trend.met is True and "+3.0 %MVC per week over 4 weeks" in trend.detail
    # two weeks into phase 2 there is no trend to judge yet
    early = assess_readiness(load_progress(people, "RISE2", end=_day(19)), "RISE2")
    trend = next(c for c in early.criteria if "week on week" in c.name)
    assert trend.met is None and "1 more week(s) needed" in trend.detail
    assert rise.ready is True
    done = assess_readiness(load_progress(people, "DONE3"), "DONE3")
    assert done.phase == 3
    met = {c.name: c.met for c in done.criteria}
    assert met["sedentary habits stay reduced"] is True
    assert met["symptoms low"] is True
    assert done.ready is True and "finish the programme" in done.summary
    nothing = assess_readiness(load_progress(people, "NOEMG"), "NOEMG")
    assert nothing.ready is None and "Only 0 exercise session(s)" in nothing.criteria[0].detail


def test_horizon_is_an_estimate_in_range_and_follows_adherence(cohort: DataDir) -> None:
    data = load_progress(cohort, "S004")
    h = project_horizon(data, "S004")
    assert h.available and h.weeks_total is not None
    assert HORIZON_MIN_WEEKS <= h.weeks_low <= h.weeks_total <= h.weeks_high <= HORIZON_MAX_WEEKS  # type: ignore[operator]
    assert {f.name for f in h.factors} == {"exercise adherence", "sedentary reduction",
                                           "symptom trend"}
    assert "estimate" in h.text and "not a diagnosis" in h.text
    lazy = dataclasses.replace(data, weekly=data.weekly.with_columns(pl.lit(0).alias(
        "exercise_days")))
    later = project_horizon(lazy, "S004")
    assert later.weeks_total is not None and later.weeks_total > h.weeks_total
    adherence = next(f for f in later.factors if f.name == "exercise adherence")
    assert adherence.effect == "later" and adherence.score == 0.0


def test_horizon_needs_data(people: DataDir, cohort: DataDir) -> None:
    data = load_progress(cohort, "S001", end=dt.date(2026, 1, 20))  # phase 1 began 12 Jan
    h = project_horizon(data, "S001")
    assert not h.available and "at least 2 are needed" in h.text
    few = project_horizon(load_progress(people, "FEW1"), "FEW1")
    assert not few.available and "3 day(s) with data since phase 1 began" in few.text
    # sessions on 14 days, but no sitting baseline and no pain ratings: one factor only
    one = project_horizon(load_progress(people, "RISE2", end=_day(34)), "RISE2")
    assert not one.available and "needs at least two of" in one.text
    assert [f.name for f in one.factors] == ["exercise adherence"]


def test_participant_report_words_and_figures(people: DataDir, tmp_path: Path) -> None:
    page = render_progress_html(load_progress(people, "RISE2"))
    assert_self_contained(page)
    assert "Ready for the next phase?" in page and "Recovery horizon (estimate)" in page
    # activation, adherence and pain figures; no sitting data: said in words
    assert len(figures(page)) == 3
    assert "No valid sitting days" in page
    assert "Phase 3 (from 14 Mar) has no exercise sessions yet" in page
    done = render_progress_html(load_progress(people, "DONE3"))
    # sitting, bouts, quality, exercise days, pain; quality never varied, so no scatter
    assert len(figures(done)) == 5
    assert "(that differ) are needed to relate sitting to activation" in done
    no_emg = render_progress_html(load_progress(people, "NOEMG"))
    assert "No exercise sessions (EMG) have been recorded" in no_emg
    assert "Phase 1 (from 09 Feb) has no exercise sessions yet" in no_emg


def test_cohort_report_and_commands(cohort: DataDir, tmp_path: Path) -> None:
    path = write_progress_report(cohort, out=tmp_path / "cohort.html")
    page = path.read_text(encoding="utf-8")
    assert_self_contained(page)
    assert "Within participants, weekly sitting and activation quality" in page
    assert "Across participants, each hour per day more sitting" in page
    assert page.count("<tr><td>S0") == 6
    parser = argparse.ArgumentParser()
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--data")
    sub = parser.add_subparsers(dest="command")
    report = sub.add_parser("report", parents=[common])
    rsub = report.add_subparsers(dest="action")
    daily = rsub.add_parser("daily", parents=[common])
    commands.add_report_subcommands(rsub, common, daily)
    commands.add_subcommands(sub, common)
    args = parser.parse_args(["report", "progress", "--data", str(cohort.root), "--participant",
                              "S002", "--format", "pdf", "--out", str(tmp_path / "p.pdf")])
    assert args.func(args) == 0
    assert (tmp_path / "p.pdf").read_bytes()[:5] == b"%PDF-"
    args = parser.parse_args(["export", "--data", str(cohort.root), "--out", str(tmp_path / "x"),
                              "--table", "weekly_progress", "--format", "csv"])
    assert args.func(args) == 0
    assert (tmp_path / "x" / "weekly_progress.csv").exists()
    with pytest.raises(ReportError, match="before"):
        write_progress_report(cohort, start=dt.date(2026, 2, 1), end=dt.date(2026, 1, 1))


def test_horizon_needs_days_with_data(cohort: DataDir) -> None:
    data = load_progress(cohort, "S003")
    sparse = dataclasses.replace(data, daily=data.daily.filter(
        pl.col("local_date").dt.weekday() == 1))  # Mondays only: ~8 days of data
    h = project_horizon(sparse, "S003")
    assert not h.available and "day(s) with data since phase 1 began; at least 14" in h.text
    assert project_horizon(data, "S003").available


def test_weekly_figures_start_at_zero(people: DataDir) -> None:
    """Bouts falling from 9.6 to 7.7 a day must look like the 20 % they are, not a collapse."""
    from glutewake.analytics.progress_figures import draw_pain, draw_scatter, draw_week
    from glutewake.analytics.svg import pyplot, style

    data = load_progress(people, "DONE3")
    weekly = data.weekly.with_columns(
        pl.Series("bouts_30min", [9.6, 8.9, 8.1, 7.7][: data.weekly.height]))
    with style():
        fig, axes = pyplot().subplots(4, 1, figsize=(5, 8))
        draw_week(axes[0], weekly, data.phases, "bouts_30min", "bouts")
        draw_week(axes[1], weekly, data.phases, "sitting_min", "sitting", scale=1 / 60,
                  ref={"goal": 7.0})
        draw_pain(axes[2], weekly, data.phases)
        draw_scatter(axes[3], weekly, fit_lines=False)
    assert [ax.get_ylim()[0] for ax in axes] == [0, 0, 0, 0]
    assert axes[0].get_ylim()[1] >= 9.6 and axes[3].get_xlim()[0] == 0
    pyplot().close(fig)
