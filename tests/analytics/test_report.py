"""The daily sedentary report: content, edge cases in words, DST day, formats, errors."""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import re
from pathlib import Path
from zoneinfo import ZoneInfo

import duckdb
import numpy as np
import polars as pl
import pytest

from glutewake.analytics.daily_sitting import local_dates, sitting_bout_table
from glutewake.analytics.report import (
    ReportError,
    day_length_h,
    load_day,
    render_daily_html,
    write_daily_report,
)
from glutewake.cli import reports as commands
from glutewake.store.bookkeeping import log_symptoms, set_phase, upsert_participant
from glutewake.store.catalog import open_write
from glutewake.store.datadir import DataDir
from tests.analytics.test_api import add_daily, add_session, insert, worn_days

TZ = "Europe/Berlin"
DST_DAY = dt.date(2026, 3, 29)
LOW_WEAR_DAY = dt.date(2026, 3, 25)
EXERCISE_ONLY_DAY = dt.date(2026, 3, 30)
POSTURES = {0: "nonwear", 1: "sitting", 2: "standing", 3: "moving", 4: "lying", 5: "cycling"}


def _utc(t_us: np.ndarray) -> pl.Series:
    return pl.Series(t_us, dtype=pl.Int64).cast(pl.Datetime("us", "UTC"))


def add_periods_and_bouts(con: duckdb.DuckDBPyConnection, pid: str, t: np.ndarray,
                          codes: np.ndarray, tz: str) -> None:
    new = np.ones(t.size, dtype=bool)
    new[1:] = (codes[1:] != codes[:-1]) | (np.diff(t) > 90_000_000)
    starts = np.flatnonzero(new)
    ends = np.r_[starts[1:], t.size] - 1
    end_us = t[ends] + 60_000_000
    insert(con, "posture_periods", pl.DataFrame({
        "participant_id": pid,
        "local_date": local_dates(t[starts], tz),
        "start_time": _utc(t[starts]),
        "end_time": _utc(end_us),
        "posture": [POSTURES[int(c)] for c in codes[starts]],
        "duration_s": (end_us - t[starts]) / 1e6,
    }))
    bouts = sitting_bout_table(t, codes, 60.0, tz)
    insert(con, "sitting_bouts", bouts.with_columns(
        pl.lit(pid).alias("participant_id"),
        _utc(bouts["start_us"].to_numpy()).alias("start_time"),
        _utc(bouts["end_us"].to_numpy()).alias("end_time"),
        (pl.col("duration_s") / 60).alias("duration_min"),
        pl.lit("test").alias("glutewake_version"),
        pl.lit("{}").alias("params"),
    ))


def add_contractions(con: duckdb.DuckDBPyConnection, pid: str, session_id: str,
                     start: dt.datetime) -> None:
    rows = []
    for rep in range(1, 11):
        for channel, muscle, peak in (("ch1", "glute_max", 40.0 + rep), ("ch2", "hamstring", 25.0)):
            if muscle == "glute_max" and rep == 4:
                continue  # the glutes did not fire on repetition 4
            onset = start + dt.timedelta(seconds=4 * rep)
            rows.append({
                "session_id": session_id, "participant_id": pid, "channel": channel,
                "muscle": muscle, "side": "right", "onset_time": onset,
                "offset_time": onset + dt.timedelta(seconds=1), "duration_ms": 1000.0,
                "peak_uv": peak * 5, "mean_uv": peak * 2, "peak_pct_mvc": peak,
                "repetition": rep,
            })
    insert(con, "contractions", pl.DataFrame(rows))


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> DataDir:
    d = DataDir(tmp_path_factory.mktemp("report") / "data")
    first = dt.date(2026, 3, 16)
    with open_write(d) as con:
        upsert_participant(con, "P1", TZ, baseline_start=first,
                           baseline_end=first + dt.timedelta(days=4), goal_sitting_min=900.0,
                           goal_breaks_per_sitting_hour=1.0)
        upsert_participant(con, "P2", "UTC")
        set_phase(con, "P1", 1, dt.date(2026, 3, 23))
        t, codes = worn_days(first, 14, TZ, wear_h={LOW_WEAR_DAY: 6.0})
        # a mostly-sitting pattern with one long bout in the afternoon of the DST day
        dst_start = np.searchsorted(t, int(dt.datetime(2026, 3, 29, 14, tzinfo=ZoneInfo(TZ))
                                           .timestamp() * 1e6))
        codes[dst_start:dst_start + 95] = 1
        codes[dst_start + 95:dst_start + 110] = 3
        add_daily(con, "P1", t, codes, TZ)
        add_periods_and_bouts(con, "P1", t, codes, TZ)
        for k, quality in enumerate((62.0, 71.0)):
            add_session(con, "P1", DST_DAY, quality=quality + k, glute_fired_share=0.9,
                        firing_order_ms=-30.0, glute_peak_pct_mvc=45.0)
        add_session(con, "P1", EXERCISE_ONLY_DAY, quality=70.0)
        sid = con.execute("SELECT session_id FROM exercise_sessions WHERE local_date = ? "
                          "ORDER BY session_id LIMIT 1", [DST_DAY]).fetchall()[0][0]
        add_contractions(con, "P1", sid, dt.datetime(2026, 3, 29, 18, tzinfo=ZoneInfo(TZ)))
        log_symptoms(con, "P1", DST_DAY, lower_back=3, hip=1, knee=0)
        con.execute(
            "INSERT INTO qc VALUES ('P1', 'P1/x-c1-acc', NULL, 'gap:disconnect', "
            "TIMESTAMPTZ '2026-03-29 10:00:00+02', TIMESTAMPTZ '2026-03-29 10:05:00+02', 300, "
            "NULL), ('P1', NULL, DATE '2026-03-29', 'battery', NULL, NULL, 41, NULL)"
        )
        t2, c2 = worn_days(dt.date(2026, 3, 29), 1, "UTC")
        add_daily(con, "P2", t2, c2, "UTC")
        add_periods_and_bouts(con, "P2", t2, c2, "UTC")
    return d


def figures(page: str) -> list[str]:
    """The accessible names of the page's inline SVG figures, in order."""
    return re.findall(r"<svg class=\"fig\"[^>]*aria-label=\"([^\"]+)\"", page)


def assert_self_contained(page: str) -> None:
    """No resource outside the file; every internal reference resolves to one element.

    No URL in src/href/url() other than a ``#fragment`` of this page (the figures' clip paths,
    hatches and markers), no scripts, links or images, no http(s) address anywhere.
    """
    assert not re.search(r"""(src|href)\s*=\s*["']?(?!#)[^"'\s>]""", page, re.I)
    assert not re.search(r"url\(\s*['\"]?(?!#)", page, re.I)
    lower = page.lower()
    assert "<script" not in lower and "<link" not in lower and "<img" not in lower
    assert "http://" not in page and "https://" not in page
    ids = re.findall(r"\sid=\"([^\"]+)\"", page)
    assert len(ids) == len(set(ids)), "duplicate element ids"
    refs = set(re.findall(r"url\(#([^)]+)\)", page)) | set(re.findall(r'href="#([^"]+)"', page))
    assert refs <= set(ids), f"unresolved references: {sorted(refs - set(ids))[:5]}"


def test_dst_day_report_shows_the_day(study: DataDir) -> None:
    data = load_day(study, "P1", DST_DAY)
    assert data.day_hours == pytest.approx(23.0) == day_length_h(DST_DAY, TZ)
    # the timeline is in elapsed hours since local midnight: nothing overlaps, nothing past 23
    assert data.periods["end_h"].max() == pytest.approx(23.0)
    assert (data.periods["start_h"].diff().drop_nulls() > 0).all()
    page = render_daily_html(data)
    assert_self_contained(page)
    alts = figures(page)
    assert alts == [
        "posture timeline of the day", "sitting time by bout length", "sitting versus wear time",
        "sitting on recent days, baseline and goal", "contraction peaks per repetition",
    ]
    assert "this day had 23 hours" in page
    assert "1 data gap(s), 5.0 min" in page
    assert "lowest battery level 41%" in page
    assert "pain today (0-10): lower back 3, hip 1, knee 0" in page
    # glute and hamstring onsets coincide in the fixture: inside the onset error, not a verdict
    assert "together (within ±25 ms)" in page
    # the other session has no per-repetition onsets: its median is shown, not judged
    assert "median -30 ms <span class='unsure'>(not judged" in page
    assert "2 sessions" in page and "Compared with the baseline week (5 valid days)" in page
    assert "Sitting goal 15 h: <span class='bad'>not met, 4 h 05 min over" in page
    longest = data.summary["longest_bout_min"] if data.summary else None
    assert longest == pytest.approx(95.0)
    assert "longest 95 min" in page


def test_short_wear_day_is_said_in_words(study: DataDir) -> None:
    page = render_daily_html(load_day(study, "P1", LOW_WEAR_DAY))
    assert "Only 6.0 h of wear time: below the valid-day minimum" in page
    assert "too short to count" in page
    assert "No exercise session was recorded on this day." in page


def test_participant_without_emg(study: DataDir) -> None:
    page = render_daily_html(load_day(study, "P2", DST_DAY))
    assert "No EMG has been recorded for this participant" in page
    assert "<table>" not in page
    assert "this day had" not in page  # UTC has no DST
    assert "battery level not recorded" in page and "no pain ratings logged" in page
    assert "No baseline week is recorded" in page


def test_exercise_without_thigh_data_and_an_empty_day(study: DataDir) -> None:
    page = render_daily_html(load_day(study, "P1", EXERCISE_ONLY_DAY))
    assert "No thigh-sensor data was processed for this day" in page
    assert "posture timeline" not in page
    assert "<table>" in page and "<td>glute bridge</td>" in page
    empty = render_daily_html(load_day(study, "P1", dt.date(2026, 6, 1)))
    assert "No thigh-sensor data was processed" in empty
    assert "No exercise session was recorded on this day." in empty
    assert " 0 min" not in empty and "0.0 h of wear" not in empty  # no misleading zeros


def test_range_pdf_png_and_command(study: DataDir, tmp_path: Path) -> None:
    paths = write_daily_report(study, "P1", dt.date(2026, 3, 28), dt.date(2026, 3, 29))
    assert [p.name for p in paths] == ["P1-2026-03-28.html", "P1-2026-03-29.html"]
    assert all(p.parent == study.reports / "P1" and p.stat().st_size > 10_000 for p in paths)
    pdf = write_daily_report(study, "P2", DST_DAY, out=tmp_path / "day.pdf", fmt="pdf")[0]
    assert pdf.read_bytes()[:5] == b"%PDF-"
    args = argparse.Namespace(data=str(study.root), participant="P1", date=DST_DAY, until=None,
                              out=str(tmp_path / "day.png"), format="png")
    assert commands.report_daily(args) == 0
    png = (tmp_path / "day.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 50_000


def test_report_errors(study: DataDir, tmp_path: Path) -> None:
    with pytest.raises(ReportError, match="not in the catalog"):
        write_daily_report(study, "nobody", DST_DAY, out=tmp_path / "x.html")
    with pytest.raises(ReportError, match="before"):
        write_daily_report(study, "P1", DST_DAY, dt.date(2026, 3, 1))
    with pytest.raises(ReportError, match="html, pdf or png"):
        write_daily_report(study, "P1", DST_DAY, fmt="docx")  # type: ignore[arg-type]
    assert not (tmp_path / "x.html").exists()


def test_bouts_across_midnight_are_drawn_once_and_labelled_only_with_a_bar(
    study: DataDir,
) -> None:
    from glutewake.analytics.daily_figures import bout_spans, draw_timeline
    from glutewake.analytics.svg import pyplot, style

    day = load_day(study, "P1", DST_DAY)
    t0 = dt.datetime(2026, 3, 29)
    rows = [  # (start_h, minutes): from yesterday 23:00, stored twice; a normal bout; a bout
        (-1.0, 90.0), (-1.0, 90.0), (10.0, 40.0), (22.999, 45.0)]  # starting 4 s before midnight
    bouts = pl.DataFrame({
        "start_h": [h for h, _ in rows],
        "start_local": [t0 + dt.timedelta(hours=h) for h, _ in rows],
        "end_local": [t0 + dt.timedelta(hours=h, minutes=m) for h, m in rows],
        "duration_min": [m for _, m in rows],
    })
    odd = dataclasses.replace(day, bouts=bouts)
    spans = bout_spans(odd, 30.0)
    assert spans.height == 3  # the duplicate is drawn once
    assert spans["x0"].to_list()[0] == 0.0 and spans["x1"].to_list()[0] == pytest.approx(0.5)
    assert spans["x1"].to_list()[2] == pytest.approx(23.0)  # clipped to the 23-hour day
    with style():
        fig, ax = pyplot().subplots(figsize=(5, 1.9), layout="constrained")
        draw_timeline(ax, odd)
    labels = sorted(t.get_text() for t in ax.texts)
    pyplot().close(fig)
    # the 45-minute bout has 4 s inside the day: a sliver, so no label beside it
    assert labels == ["40′", "90′"]


def test_daily_figures_start_at_zero(study: DataDir) -> None:
    from glutewake.analytics import daily_figures as figs
    from glutewake.analytics.svg import pyplot, style

    day = load_day(study, "P1", DST_DAY)
    with style():
        fig, axes = pyplot().subplots(4, 1, figsize=(5, 8))
        figs.draw_bouts(axes[0], day)
        figs.draw_recent(axes[1], day)
        figs.draw_activation(axes[2], day)
        figs.draw_wear(axes[3], day)
    assert [ax.get_ylim()[0] for ax in axes[:3]] == [0, 0, 0]
    assert axes[3].get_xlim()[0] == 0
    pyplot().close(fig)


def test_report_commands_take_a_clinicians_next_steps_file(
    study: DataDir, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from glutewake.cli import main

    rules = tmp_path / "clinic.toml"
    rules.write_text('[[rules]]\nid = "break_up_sitting"\n'
                     'text = "Walk every {every_min} minutes: {long_bouts}."\n'
                     "params = { every_min = 20 }\n", encoding="utf-8")
    out = tmp_path / "day.html"
    assert main(["report", "daily", "--data", str(study.root), "--participant", "P1", "--date",
                 str(DST_DAY), "--out", str(out), "--next-steps", str(rules)]) == 0
    assert "Walk every 20 minutes: 00:00–00:50 (50 min)" in out.read_text(encoding="utf-8")
    progress = tmp_path / "progress.html"
    assert main(["report", "progress", "--data", str(study.root), "--participant", "P1",
                 "--out", str(progress), "--next-steps", str(rules)]) == 0
    assert "<section class='next'><h2>Next steps (the week" in progress.read_text("utf-8")
    rules.write_text('[[rules]]\nid = "break_up_sitting"\ntext = "{nap}"\n', encoding="utf-8")
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        main(["report", "daily", "--data", str(study.root), "--participant", "P1", "--date",
              str(DST_DAY), "--out", str(tmp_path / "bad.html"), "--next-steps", str(rules)])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("glutewake: error: ") and "unknown field {nap}" in err
    assert len(err.splitlines()) == 1 and not (tmp_path / "bad.html").exists()
