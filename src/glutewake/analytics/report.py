"""The daily sedentary report: one self-contained HTML file, figures inline, opens offline.

Everything shown is read from the catalog (read-only, :mod:`glutewake.analytics.day_data`).
Times are the participant's local time, and the day is the participant's local calendar day:
on a DST change day the timeline is 23 or 25 hours long and its clock labels follow the local
clock. A day without enough wear, a participant without EMG, or a day without sessions is said
in words, never shown as misleading zeros.

The page opens with **next steps** in words, from the day's own data and the participant's
phase (:mod:`glutewake.analytics.next_steps`, a clinician-configurable table). Verdicts (a goal
met, a firing order) are printed only where the data can carry them
(:mod:`glutewake.analytics.evidence`): no goal is judged on a day that is not valid, and a firing
order only when its interval clears the onset error.

The page is made for a phone first: one column, figures as inline SVG whose text stays at least
11 CSS px on a 390-px screen, colour keys as HTML that wraps. ``fmt="pdf"`` or ``"png"``
renders a one-page A4 version of the same content with matplotlib (no browser needed).
"""

from __future__ import annotations

import datetime as dt
import html
import re
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np
import polars as pl

from glutewake import __version__
from glutewake.analytics import daily_figures as figs
from glutewake.analytics.day_data import (
    RECENT_DAYS,
    DayData,
    ReportError,
    day_length_h,
    load_day,
    read_day,
)
from glutewake.analytics.evidence import MIN_BASELINE_DAYS, ONSET_ERROR_MS, firing_order
from glutewake.analytics.next_steps import (
    Bout,
    DayFacts,
    RuleBook,
    SessionFacts,
    day_steps,
    hm,
    load_rules,
    steps_html,
)
from glutewake.analytics.page import legend_html, num, page_foot, page_head
from glutewake.analytics.repetitions import per_session, repetition_table
from glutewake.analytics.svg import PRINT_STYLE, pyplot, style, svg_figure
from glutewake.store.catalog import open_read
from glutewake.store.ids import check_participant_id, participant_component
from glutewake.store.private import private_tmp

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from glutewake.store.datadir import DataDir

__all__ = [
    "DayData",
    "ReportError",
    "ReportFormat",
    "day_facts",
    "day_length_h",
    "load_day",
    "render_daily_figure",
    "render_daily_html",
    "write_daily_report",
]

ReportFormat = Literal["html", "pdf", "png"]
PAIN_SITES = (("lower_back_pain", "lower back"), ("hip_pain", "hip"), ("knee_pain", "knee"))


# --------------------------------------------------------------------------- facts


def _session_counts(d: DayData) -> pl.DataFrame:
    """Per session: repetitions, glutes fired, paired, led (from the contractions)."""
    return per_session(repetition_table(d.contractions))


def day_facts(d: DayData) -> DayFacts:
    """The facts the next-steps rules look at, from one day's report data."""
    s = d.summary or {}
    p = d.participant
    counts = {r["session_id"]: r for r in _session_counts(d).iter_rows(named=True)}
    sessions = []
    for row in d.sessions.iter_rows(named=True):
        c = counts.get(row["session_id"])
        share, reps = row["glute_fired_share"], int(row["repetitions"] or 0)
        sessions.append(SessionFacts(
            start=row["start_local"],
            exercise=row["exercise"],
            reps=int(c["reps"]) if c else reps,
            fired=int(c["fired"]) if c else (None if share is None else round(share * reps)),
            paired=int(c["paired"]) if c else 0,
            hamstrings_led=int(c["hamstrings_led"]) if c else 0,
            glutes_led=int(c["glutes_led"]) if c else 0,
            peak_cv=row["peak_cv"],
        ))
    bouts = figs.bout_spans(d)
    pain = {site: int(d.symptoms[col]) for col, site in PAIN_SITES
            if d.symptoms and d.symptoms.get(col) is not None}
    return DayFacts(
        day=d.day,
        phase=d.phase,
        has_thigh=d.has_sitting,
        valid_day=bool(s.get("valid_day")),
        wear_min=s.get("wear_min"),
        sitting_min=s.get("sitting_min"),
        goal_sitting_min=p.get("goal_sitting_min"),
        breaks_per_hour=s.get("breaks_per_sitting_hour"),
        goal_breaks_per_hour=p.get("goal_breaks_per_sitting_hour"),
        bouts=tuple(
            Bout(a, b, float(m)) for a, b, m in zip(
                bouts["start_local"], bouts["end_local"], bouts["duration_min"], strict=True)
        ),
        has_emg=d.has_emg,
        sessions=tuple(sessions),
        pain=pain,
    )


# --------------------------------------------------------------------------- words


def _versus(value: float | None, reference: float | None, unit: str, *, lower_is_better: bool,
            fmt: str = "{:.0f}") -> str:
    if value is None or reference is None:
        return "–"
    diff = value - reference
    if abs(diff) < 1e-9:
        return "<span>same</span>"
    better = diff < 0 if lower_is_better else diff > 0
    word = "less" if diff < 0 else "more"
    cls = "good" if better else "bad"
    return f"<span class='{cls}'>{fmt.format(abs(diff))}{unit} {word}</span>"


def dst_note(day: dt.date, hours: float) -> str | None:
    """Words for a DST change day, else None."""
    if abs(hours - 24) < 1e-6:
        return None
    change = "forward" if hours < 24 else "back"
    return f"Clocks went {change} on {day:%d %B}: this day had {hours:.0f} hours."


def day_notes(d: DayData) -> list[str]:
    """The day's caveats in words (no data, too little wear, no EMG, no session, DST)."""
    notes: list[str] = []
    s = d.summary
    if not d.has_sitting:
        notes.append(
            "No thigh-sensor data was processed for this day, so there are no sitting figures."
            + (" Exercise and symptoms are shown below." if s else "")
        )
    elif not s or not s["valid_day"]:
        wear_h = (s or {}).get("wear_min", 0.0) / 60
        notes.append(
            f"Only {wear_h:.1f} h of wear time: below the valid-day minimum, so this day's "
            "figures are shown but not judged against the goals, not compared with full days, "
            "and left out of weekly averages."
        )
    if not d.has_emg:
        notes.append(
            "No EMG has been recorded for this participant, so there is no glute activation "
            "to show."
        )
    if (note := dst_note(d.day, d.day_hours)) is not None:
        notes.append(note)
    return notes


def _tiles(d: DayData) -> list[tuple[str, str, str]]:
    s = d.summary or {}
    p = d.participant
    goal = p.get("goal_sitting_min")
    goal_breaks = p.get("goal_breaks_per_sitting_hour")
    tiles: list[tuple[str, str, str]] = []
    if d.has_sitting:
        tiles += [
            ("sitting", hm(s["sitting_min"]),
             f"{num(s['sitting_pct'])}% of wear" + (f" · goal {hm(goal)}" if goal else "")),
            ("long bouts (≥30 min)", f"{s['bouts_30min']}",
             f"≥60 min: {s['bouts_60min']} · longest "
             + num(s["longest_bout_min"], "{:.0f} min", "none")),
            ("breaks per sitting hour", num(s["breaks_per_sitting_hour"], "{:.1f}"),
             f"{s['breaks']} breaks" + (f" · goal {goal_breaks:g}" if goal_breaks else "")),
            ("wear time", f"{s['wear_min'] / 60:.1f} h",
             "valid day" if s["valid_day"] else "too short to count"),
        ]
    if d.sessions.height:
        q = d.sessions["activation_quality"].drop_nulls()
        tiles.append(
            ("glute exercise", f"{d.sessions.height} session" + ("s" if d.sessions.height > 1
                                                                   else ""),
             f"quality {num(q.mean() if q.len() else None)}/100")
        )
    return tiles


def _comparison(d: DayData) -> str:
    """Versus the baseline week and the goals: judged only on a valid day, with enough baseline.

    A day that is not valid (too little wear) is neither compared nor judged; a baseline week
    with fewer than ``MIN_BASELINE_DAYS`` valid days is not compared with.
    """
    s = d.summary or {}
    parts: list[str] = []
    base = d.baseline
    goal = d.participant.get("goal_sitting_min")
    goal_breaks = d.participant.get("goal_breaks_per_sitting_hour")
    if not s.get("valid_day"):
        wear = hm(s.get("wear_min") or 0.0)
        return (f"<p class='unsure'>With only {wear} of wear this day is not valid, so it is "
                "neither compared with the baseline week nor judged against the goals: not "
                "enough data.</p>")
    if base and base["days"] >= MIN_BASELINE_DAYS:
        sitting = _versus(s["sitting_min"], base["sitting_min"], " min", lower_is_better=True)
        bouts = _versus(s["bouts_30min"], base["bouts_30min"], "", lower_is_better=True,
                        fmt="{:.1f}")
        breaks = _versus(s["breaks_per_sitting_hour"], base["breaks_per_sitting_hour"], "",
                         lower_is_better=False, fmt="{:.1f}")
        parts.append(
            f"Compared with the baseline week ({base['days']} valid days): sitting "
            f"{sitting}, bouts ≥30 min {bouts}, breaks per sitting hour {breaks}."
        )
    elif base:
        plural = "s" if base["days"] != 1 else ""
        parts.append(
            f"<span class='unsure'>The baseline week has only {base['days']} valid "
            f"day{plural}; at least {MIN_BASELINE_DAYS} are needed to compare a day with it, so "
            "this day is not compared.</span>"
        )
    else:
        parts.append("No baseline week is recorded for this participant, so there is nothing to "
                     "compare this day with yet.")
    if goal:
        met = s["sitting_min"] <= goal
        parts.append(
            f"Sitting goal {hm(goal)}: "
            + (f"<span class='good'>met, {hm(goal - s['sitting_min'])} to spare</span>." if met
               else f"<span class='bad'>not met, {hm(s['sitting_min'] - goal)} over</span>.")
        )
    if goal_breaks and s.get("breaks_per_sitting_hour") is not None:
        met = s["breaks_per_sitting_hour"] >= goal_breaks
        parts.append(
            f"Breaks goal {goal_breaks:g} per sitting hour: "
            + ("<span class='good'>met</span>." if met else "<span class='bad'>not met</span>.")
        )
    return "<p>" + " ".join(parts) + "</p>"


def _order_cell(latencies: np.ndarray, session_median: float | None) -> str:
    """A session's firing order in words: judged only when its interval clears the error."""
    if latencies.size == 0:
        if session_median is None:
            return "–"
        return (f"median {session_median:+.0f} ms <span class='unsure'>(not judged: no "
                "per-repetition onsets)</span>")
    order = firing_order(latencies)
    if order.verdict == "glutes_first":
        return f"<span class='good'>glutes first</span>, by {-(order.mean_ms or 0.0):.0f} ms"
    if order.verdict == "hamstrings_first":
        return f"<span class='bad'>hamstrings first</span>, by {order.mean_ms or 0.0:.0f} ms"
    if order.more_needed is None:
        return (f"<span class='unsure'>together (within ±{ONSET_ERROR_MS:.0f} ms)</span>, "
                f"mean {order.mean_ms or 0.0:+.0f} ms")
    return (f"<span class='unsure'>not clear yet</span>: mean {order.mean_ms or 0.0:+.0f} ms "
            f"from {order.n} reps")


def _sessions_html(d: DayData) -> list[str]:
    esc = html.escape
    reps = repetition_table(d.contractions)
    counts = {r["session_id"]: r for r in per_session(reps).iter_rows(named=True)}
    out = ["<div class='scroll'><table><tr><th>time</th><th>exercise</th><th>quality</th>"
           "<th>glutes fired</th><th>firing order</th><th>glute peak</th></tr>"]
    for s in d.sessions.iter_rows(named=True):
        c = counts.get(s["session_id"])
        latencies = reps.filter(pl.col("session_id") == s["session_id"])["latency_ms"]
        order = _order_cell(latencies.drop_nulls().to_numpy(), s["firing_order_ms"])
        share = s["glute_fired_share"]
        fired = (f"{c['fired']} of {c['reps']} reps" if c else
                 num(None if share is None else share * 100, "{:.0f}% of reps"))
        out.append(
            f"<tr><td>{s['start_local']:%H:%M}</td>"
            f"<td>{esc(str(s['exercise'] or '–').replace('_', ' '))}</td>"
            f"<td><b>{num(s['activation_quality'])}</b>/100</td><td>{fired}</td>"
            f"<td>{order}</td><td>{num(s['glute_peak_pct_mvc'], '{:.0f}% MVC')}</td></tr>"
        )
    out.append("</table></div>")
    out.append(f"<p class='cap'>Firing order is glute onset minus hamstring onset over the "
               f"repetitions; it is called only when its 95% interval lies beyond the "
               f"±{ONSET_ERROR_MS:.0f} ms onset error of the EMG detector.</p>")
    if d.sessions["glute_peak_pct_mvc"].null_count() == d.sessions.height:
        out.append("<p class='cap'>No MVC reference for these sessions, so peaks are in µV and "
                   "not comparable across days.</p>")
    return out


def _qc_items(d: DayData) -> list[str]:
    items: list[str] = []
    s = d.summary or {}
    if d.has_sitting:
        items.append(f"wear time {s['wear_min'] / 60:.1f} h of {d.day_hours:.0f} h "
                     + ("(a valid day)" if s["valid_day"] else "(below the valid-day minimum)"))
    else:
        items.append("no thigh-sensor data for this day")
    if d.gaps.height:
        total_min = float(d.gaps["value"].sum()) / 60
        items.append(f"{d.gaps.height} data gap(s), {total_min:.1f} min in all "
                     "(hatched in the timeline)")
    else:
        items.append("no data gaps")
    battery = (d.qc or {}).get("battery_min_pct")
    items.append(
        f"lowest battery level {battery:.0f}%" if battery is not None
        else "battery level not recorded"
    )
    damaged = (d.qc or {}).get("damaged_parts") or 0
    if damaged:
        items.append(f"{damaged} damaged part(s) of the raw recording could not be used: about "
                     f"{(d.qc or {}).get('damage_min') or 0:.0f} min of data lost "
                     "(glutewake sql \"select * from spool_damage\")")
    if d.symptoms:
        sy = d.symptoms
        items.append(f"pain today (0-10): lower back {num(sy['lower_back_pain'])}, hip "
                     f"{num(sy['hip_pain'])}, knee {num(sy['knee_pain'])}")
    else:
        items.append("no pain ratings logged for this day")
    return items


def _long_bouts_caption(d: DayData) -> str:
    long = figs.bout_spans(d, figs.LONG_BOUT_MIN)
    if long.height == 0:
        return (f"Posture through the day in local time; no sitting bout lasted "
                f"{figs.LONG_BOUT_MIN:.0f} minutes or more.")
    times = ", ".join(f"{a:%H:%M}–{b:%H:%M} ({hm(m)})" for a, b, m in zip(
        long["start_local"], long["end_local"], long["duration_min"], strict=True))
    return (f"Posture through the day in local time; black bars mark the {long.height} sitting "
            f"bout(s) of {figs.LONG_BOUT_MIN:.0f} minutes or more: {times}.")


# --------------------------------------------------------------------------- page


def render_daily_html(d: DayData, rules: RuleBook | None = None) -> str:
    """The daily report page as one HTML string (figures inline as SVG).

    The page references nothing outside itself: no scripts, fonts, styles or images from the
    network, so it opens offline and leaks nothing when opened.

    Parameters
    ----------
    d : DayData
        The day's data (:func:`load_day`).
    rules : RuleBook, optional
        The next-steps table (:func:`glutewake.analytics.next_steps.load_rules`); the built-in
        one by default.
    """
    p = d.participant
    esc = html.escape
    keys = figs.legends(d)
    out = page_head(f"glutewake daily report {p['participant_id']} {d.day}")
    out += [
        f"<h1>Sitting and glutes — {d.day:%A %d %B %Y}</h1>",
        f"<div class='sub'>participant {esc(str(p['participant_id']))} · local time "
        f"{esc(str(p['tz']))} · phase {d.phase if d.phase else 'not set'}</div>",
    ]
    out.append(steps_html(day_steps(day_facts(d), rules or load_rules())))
    out += [f"<p class='note'>{esc(n)}</p>" for n in day_notes(d)]
    tiles = _tiles(d)
    if tiles:
        out.append("<div class='tiles'>")
        for title, big, small in tiles:
            out.append(f"<div class='tile'><small>{esc(title)}</small><b>{esc(big)}</b>"
                       f"<small>{esc(small)}</small></div>")
        out.append("</div>")
    if d.has_sitting:
        out.append(_comparison(d))
        out.append("<h2>The day</h2>")
        out.append(svg_figure(lambda ax: figs.draw_timeline(ax, d), 1.9,
                              "posture timeline of the day"))
        out.append(legend_html(keys["timeline"]))
        out.append(f"<p class='cap'>{esc(_long_bouts_caption(d))}</p>")
        out.append("<div class='row'><div><h2>Sitting by bout length</h2>")
        if d.bouts.height:
            out.append(svg_figure(lambda ax: figs.draw_bouts(ax, d), 2.5,
                                  "sitting time by bout length"))
            out.append(f"<p class='cap'>{figs.bout_spans(d).height} bouts; the number of bouts "
                       "above each bar; black = 30 minutes or more.</p>")
        else:
            out.append("<p>No sitting bouts on this day.</p>")
        out.append("</div><div><h2>Sitting versus wear</h2>")
        out.append(svg_figure(lambda ax: figs.draw_wear(ax, d), 1.05,
                              "sitting versus wear time"))
        out.append(legend_html(keys["wear"]))
        out.append("</div></div>")
    if d.recent.filter(pl.col("has_sitting_data")).height > 1:
        n = d.recent.filter(pl.col("has_sitting_data") & pl.col("valid_day")).height
        out.append(f"<h2>The last {RECENT_DAYS} days</h2>")
        out.append(svg_figure(lambda ax: figs.draw_recent(ax, d), 2.2,
                              "sitting on recent days, baseline and goal"))
        out.append(legend_html(keys["recent"]))
        out.append(f"<p class='cap'>Sitting per day, {n} valid day(s); today framed in black."
                   "</p>")
    out.append("<h2>Glute exercise</h2>")
    if not d.has_emg:
        out.append("<p>No EMG recorded for this participant yet.</p>")
    elif d.sessions.height == 0:
        out.append("<p class='note'>No exercise session was recorded on this day.</p>")
    else:
        out += _sessions_html(d)
        if d.contractions.height:
            out.append(svg_figure(lambda ax: figs.draw_activation(ax, d), 2.4,
                                  "contraction peaks per repetition"))
            out.append(legend_html(keys["activation"]))
            out.append(f"<p class='cap'>{d.contractions.height} contractions detected across "
                       f"{d.sessions.height} session(s).</p>")
    out.append("<h2>Data quality</h2><ul>")
    out += [f"<li>{esc(item)}</li>" for item in _qc_items(d)]
    out.append("</ul>")
    out += page_foot(str(p["tz"]))
    return "".join(out)


def render_daily_figure(d: DayData, rules: RuleBook | None = None) -> Figure:
    """The daily report as one A4 matplotlib page (for PDF or PNG printing)."""
    with style(PRINT_STYLE):
        return _print_page(d, rules or load_rules())


def _print_page(d: DayData, rules: RuleBook) -> Figure:
    plt = pyplot()
    fig = plt.figure(figsize=(8.27, 11.69))
    grid = fig.add_gridspec(6, 2, height_ratios=[1.0, 1.5, 1.4, 1.2, 1.2, 1.3], hspace=0.85,
                            wspace=0.3, left=0.08, right=0.95, top=0.96, bottom=0.04)
    p = d.participant
    head = fig.add_subplot(grid[0, :])
    head.axis("off")
    head.text(0, 1, f"Sitting and glutes — {d.day:%A %d %B %Y}", fontsize=15,
              fontweight="bold", va="top")
    head.text(0, 0.72, f"participant {p['participant_id']} · local time {p['tz']} · phase "
              f"{d.phase if d.phase else 'not set'}", color="#555", va="top")
    tiles = _tiles(d)
    for k, (title, big, small) in enumerate(tiles[:5]):
        x = k / max(len(tiles[:5]), 1)
        head.text(x, 0.45, title, fontsize=7.5, color="#555", va="top")
        head.text(x, 0.3, big, fontsize=12, fontweight="bold", va="top")
        head.text(x, 0.12, small.replace(" · ", "\n"), fontsize=6.5, color="#555", va="top")
    notes = fig.add_subplot(grid[1, :])
    notes.axis("off")
    steps = [f"→ {s.text}" for s in day_steps(day_facts(d), rules)]
    lines = ["Next steps:", *steps, *day_notes(d), *_qc_items(d)]
    if d.has_sitting:  # the comparison paragraph without its markup
        lines.append(html.unescape(re.sub(r"<[^>]+>", "", _comparison(d))))
    text = "\n".join(textwrap.fill(line, 125, subsequent_indent="  ") for line in lines)
    notes.text(0, 1.05, text, fontsize=7, va="top")
    if d.has_sitting:
        figs.draw_timeline(fig.add_subplot(grid[2, :]), d, legend=True)
        if d.bouts.height:
            figs.draw_bouts(fig.add_subplot(grid[3, 0]), d)
        figs.draw_wear(fig.add_subplot(grid[3, 1]), d)
    if d.recent.filter(pl.col("has_sitting_data")).height > 1:
        figs.draw_recent(fig.add_subplot(grid[4, :]), d)
    act = fig.add_subplot(grid[5, :])
    if d.contractions.height:
        figs.draw_activation(act, d)
        act.set_title(f"glute exercise: {d.sessions.height} session(s)")
    else:
        act.axis("off")
        text = ("No EMG recorded for this participant." if not d.has_emg
                else "No exercise session was recorded on this day.")
        act.text(0, 0.8, text, va="top")
    fig.text(0.08, 0.01, f"glutewake {__version__} · not a diagnosis", fontsize=6, color="#888")
    return fig


def _write(d: DayData, path: Path, fmt: ReportFormat, rules: RuleBook) -> None:
    with private_tmp(path) as tmp:  # owner-only, whatever the umask; renamed into place
        if fmt == "html":
            tmp.write_text(render_daily_html(d, rules), encoding="utf-8")
        else:
            with style(PRINT_STYLE):
                fig = _print_page(d, rules)
                fig.savefig(tmp, format=fmt, dpi=150)
            pyplot().close(fig)


def write_daily_report(
    data_dir: DataDir,
    participant_id: str,
    day: dt.date,
    until: dt.date | None = None,
    *,
    out: Path | None = None,
    fmt: ReportFormat = "html",
    next_steps: Path | None = None,
) -> list[Path]:
    """Write the daily report(s) for ``day`` (through ``until``); return the paths written.

    Parameters
    ----------
    data_dir : DataDir
        The data directory (its catalog is opened read-only, once for the whole range).
    participant_id : str
        The participant.
    day, until : datetime.date
        The local day, or the first and last day of a range (one report per day).
    out : pathlib.Path, optional
        The file for a single day, or the folder for a range; by default reports go to
        ``DATA/reports/<participant>/<participant>-<date>.<fmt>``.
    fmt : {"html", "pdf", "png"}
        HTML (the self-contained page) or a printable one-page PDF/PNG (matplotlib).
    next_steps : pathlib.Path, optional
        A clinician's next-steps rules file laid over the built-in table
        (:func:`glutewake.analytics.next_steps.load_rules`).

    Raises
    ------
    ReportError
        For an unknown participant or format, or ``until`` before ``day``.
    glutewake.analytics.next_steps.NextStepsError
        For an invalid next-steps rules file.
    """
    if fmt not in ("html", "pdf", "png"):
        raise ReportError(f"report format must be html, pdf or png, not {fmt!r}")
    check_participant_id(participant_id)
    last = until or day
    if last < day:
        raise ReportError(f"--until {last} is before --date {day}")
    rules = load_rules(next_steps)
    paths: list[Path] = []
    with open_read(data_dir) as con:
        days: list[DayData] = []
        current = day
        while current <= last:
            days.append(read_day(con, participant_id, current))
            current += dt.timedelta(days=1)
    for data in days:
        if out is not None and until is None:
            path = out
        else:
            name = participant_component(participant_id)  # checked: never '..' or a path
            folder = out if out is not None else data_dir.reports / name
            path = folder / f"{name}-{data.day.isoformat()}.{fmt}"
        _write(data, path, fmt, rules)
        paths.append(path)
    return paths
