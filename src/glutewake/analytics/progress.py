"""The progress report: per week and per phase, for a participant or the cohort.

Answers the project's question: as a person moves through the three rehabilitation phases, do
sitting less and better glute activation go together, and how fast are they recovering? The
page opens with the week's **next steps** (the last seven days, from the same clinician-
configurable table as the daily report), then readiness for the next phase
(:mod:`glutewake.analytics.readiness`), a projected recovery horizon
(:mod:`glutewake.analytics.horizon`), weekly figures from zero shaded by phase, how sitting and
activation relate (:mod:`glutewake.analytics.relation`) and a table per phase. Every verdict is
printed only when the data can carry it (:mod:`glutewake.analytics.evidence`).

The analysis functions are re-exported here: ``load_progress``, ``assess_readiness``,
``project_horizon``, ``within_participants``, ``across_participants``.
"""

from __future__ import annotations

import datetime as dt
import html
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import polars as pl

from glutewake.analytics import progress_figures as figs
from glutewake.analytics.day_data import ReportError
from glutewake.analytics.evidence import MIN_BASELINE_DAYS, trend_per_week
from glutewake.analytics.horizon import (
    HORIZON_MAX_WEEKS,
    HORIZON_MIN_WEEKS,
    Horizon,
    HorizonFactor,
    project_horizon,
)
from glutewake.analytics.next_steps import (
    Bout,
    RuleBook,
    WeekFacts,
    load_rules,
    steps_html,
    week_steps,
)
from glutewake.analytics.page import legend_html, num, page_foot, page_head
from glutewake.analytics.progress_data import WEEK_DAYS, ProgressData, load_progress
from glutewake.analytics.readiness import (
    Criterion,
    Readiness,
    ReadinessCriteria,
    assess_readiness,
    baseline_sitting,
    mean_of,
)
from glutewake.analytics.relation import Relation, across_participants, within_participants
from glutewake.analytics.repetitions import per_session, repetition_table
from glutewake.analytics.svg import OKABE_ITO, PRINT_STYLE, pyplot, style, svg_figure

if TYPE_CHECKING:
    from glutewake.store.datadir import DataDir

__all__ = [
    "HORIZON_MAX_WEEKS",
    "HORIZON_MIN_WEEKS",
    "Criterion",
    "Horizon",
    "HorizonFactor",
    "ProgressData",
    "Readiness",
    "ReadinessCriteria",
    "Relation",
    "across_participants",
    "assess_readiness",
    "load_progress",
    "project_horizon",
    "render_progress_html",
    "week_facts",
    "within_participants",
    "write_progress_report",
]

PHASE_NAMES = {
    1: "activation and isolation",
    2: "strengthening and loading",
    3: "functional integration",
}
PAIN_COLUMNS = (("lower_back_pain", "lower back"), ("hip_pain", "hip"), ("knee_pain", "knee"))


# --------------------------------------------------------------------------- the week


def _week_reps(data: ProgressData, sessions: pl.DataFrame) -> tuple[int, int, int, int]:
    """Repetitions, glutes fired, paired and hamstrings-first over the week's sessions."""
    counts = {r["session_id"]: r for r in
              per_session(repetition_table(data.week_contractions)).iter_rows(named=True)}
    reps = fired = paired = led = 0
    for s in sessions.iter_rows(named=True):
        c = counts.get(s["session_id"])
        if c:
            reps, fired = reps + int(c["reps"]), fired + int(c["fired"])
            paired, led = paired + int(c["paired"]), led + int(c["hamstrings_led"])
        elif s["glute_fired_share"] is not None and s["repetitions"]:
            reps += int(s["repetitions"])
            fired += round(s["glute_fired_share"] * s["repetitions"])
    return reps, fired, paired, led


def week_facts(data: ProgressData, participant: str, readiness: Readiness) -> WeekFacts | None:
    """The last seven days' facts for the week's next steps (None without any data)."""
    last = data.last_day(participant)
    if last is None:
        return None
    first = last - dt.timedelta(days=WEEK_DAYS - 1)
    in_week = (pl.col("local_date") >= first) & (pl.col("local_date") <= last)
    days = data.daily.filter((pl.col("participant_id") == participant) & in_week)
    sessions = data.sessions.filter((pl.col("participant_id") == participant) & in_week)
    valid = days.filter(pl.col("valid_day"))
    part = data.participants.filter(pl.col("participant_id") == participant)
    bouts = data.week_bouts.unique(subset=["start_local", "duration_min"], keep="first",
                                   maintain_order=True) if data.week_bouts.height else None
    reps, fired, paired, led = _week_reps(data, sessions)
    pain = tuple(
        (row["local_date"], site, int(row[col]))
        for row in days.iter_rows(named=True) for col, site in PAIN_COLUMNS
        if row[col] is not None
    )
    return WeekFacts(
        first=first,
        last=last,
        phase=readiness.phase,
        valid_days=valid.height,
        days_with_thigh=days.filter(pl.col("has_sitting_data")).height,
        sitting_min_mean=mean_of(valid, "sitting_min"),
        goal_sitting_min=part["goal_sitting_min"][0] if part.height else None,
        bouts=tuple(
            Bout(a, b, float(m)) for a, b, m in zip(
                bouts["start_local"], bouts["end_local"], bouts["duration_min"], strict=True)
        ) if bouts is not None else (),
        has_emg=data.sessions.filter(pl.col("participant_id") == participant).height > 0,
        exercise_days=sessions["local_date"].n_unique() if sessions.height else 0,
        exercises=tuple(sessions["exercise"].to_list()),
        reps=reps,
        fired=fired,
        paired=paired,
        hamstrings_led=led,
        pain=pain,
        ready=readiness.ready,
        next_step=readiness.next_step,
        not_met=tuple(c.name for c in readiness.criteria if c.met is False),
    )


# --------------------------------------------------------------------------- page parts


def _counts(weekly: pl.DataFrame) -> tuple[int, int, int, int]:
    valid = int(weekly["valid_days"].sum()) if weekly.height else 0
    weeks_sit = weekly.filter(pl.col("valid_days") > 0).height
    sessions = int(weekly["exercise_sessions"].sum()) if weekly.height else 0
    weeks_act = weekly.filter(pl.col("scored_sessions") > 0).height
    return valid, weeks_sit, sessions, weeks_act


def _phase_trend(data: ProgressData, row: dict[str, Any], end: dt.date | None) -> str:
    """Activation quality's weekly trend within a phase, or how much more data it needs."""
    sessions = data.sessions.filter(
        (pl.col("participant_id") == row["participant_id"])
        & (pl.col("local_date") >= row["start_date"])
        & pl.col("activation_quality").is_not_null()
    )
    if end is not None:
        sessions = sessions.filter(pl.col("local_date") < end)
    sessions = sessions.sort("local_date")
    trend = trend_per_week(sessions["local_date"].to_list(),
                           sessions["activation_quality"].to_numpy())
    return trend.words()


def _phase_table(data: ProgressData) -> list[str]:
    pp = data.phase_progress.sort("participant_id", "start_date")
    out = ["<div class='scroll'><table><tr><th>phase</th><th>from</th><th>days</th>"
           "<th>sessions /week</th><th>activation quality</th><th>its trend</th>"
           "<th>sitting h/day</th><th>bouts ≥30 min /day</th><th>pain</th></tr>"]
    notes: list[str] = []
    rows = pp.to_dicts()
    for k, r in enumerate(rows):
        nxt = rows[k + 1]["start_date"] if k + 1 < len(rows) else None
        pains = [v for v in (r["lower_back_pain"], r["hip_pain"], r["knee_pain"]) if v is not None]
        aq = ("no sessions" if r["exercise_sessions"] == 0 else
              f"{num(r['activation_quality'])} from {r['scored_sessions']} sessions")
        trend = "–" if r["exercise_sessions"] == 0 else _phase_trend(data, r, nxt)
        out.append(
            f"<tr><td>{r['phase']}</td><td>{r['start_date']:%d %b %Y}</td>"
            f"<td>{r['days_in_phase']} ({r['valid_days']} valid)</td>"
            f"<td>{r['sessions_per_week']:.1f}</td><td>{aq}</td><td>{html.escape(trend)}</td>"
            f"<td>{num(None if r['sitting_min'] is None else r['sitting_min'] / 60, '{:.1f}')}</td>"
            f"<td>{num(r['bouts_30min'], '{:.1f}')}</td>"
            f"<td>{num(sum(pains) / len(pains) if pains else None, '{:.1f}')}</td></tr>"
        )
        if r["exercise_sessions"] == 0:
            notes.append(f"Phase {r['phase']} (from {r['start_date']:%d %b}) has no exercise "
                         "sessions yet, so activation in this phase cannot be judged.")
        if r["valid_days"] == 0:
            notes.append(f"Phase {r['phase']} has no valid sitting days (enough wear time), so "
                         "its sitting figures are missing rather than zero.")
    out.append("</table></div>")
    out.append("<p class='cap'>A trend is given from 3 calendar weeks of sessions, and called "
               "rising or falling only when its 95% interval excludes zero.</p>")
    out += [f"<p class='note'>{html.escape(n)}</p>" for n in notes]
    return out


def _readiness_html(r: Readiness) -> list[str]:
    mark = {True: "<span class='good'>✓ met</span>", False: "<span class='bad'>✗ not met</span>",
            None: "<span class='unsure'>? cannot judge yet</span>"}
    out = [f"<p><b>{html.escape(r.summary)}</b></p><ul>"]
    for k in r.criteria:
        out.append(f"<li>{mark[k.met]} — {html.escape(k.name)}: {html.escape(k.detail)}</li>")
    out.append(f"</ul><p class='cap'>From {r.sessions} session(s) and {r.days} day(s) of data "
               "in the window; thresholds are configurable defaults (docs/reports.md).</p>")
    return out


def _figure(draw: Any, alt: str, height_in: float = 2.2) -> str:
    return svg_figure(draw, height_in, alt)


def _sitting_refs(data: ProgressData, pid: str, part: dict[str, Any]) -> dict[str, float]:
    base, _ = baseline_sitting(data, pid)
    goal = part.get("goal_sitting_min")
    return {k: v / 60 for k, v in (("baseline", base), ("goal", goal)) if v}


def render_progress_html(
    data: ProgressData, criteria: ReadinessCriteria | None = None,
    rules: RuleBook | None = None,
) -> str:
    """The progression page (one participant, or the cohort) as self-contained HTML.

    Parameters
    ----------
    data : ProgressData
        From :func:`load_progress`.
    criteria : ReadinessCriteria, optional
        Readiness thresholds (documented defaults).
    rules : RuleBook, optional
        The next-steps table (the built-in one by default).
    """
    if data.participant is None:
        return _render_cohort(data, criteria)
    pid = data.participant
    part = data.participants.row(0, named=True)
    weekly, phases = data.weekly, data.phases
    out = page_head(f"glutewake progress {pid}")
    out.append(f"<h1>Progress — {html.escape(pid)}</h1>")
    current = phases.sort("start_date").row(-1, named=True) if phases.height else None
    out.append(
        "<div class='sub'>"
        + (f"phase {current['phase']} ({PHASE_NAMES[int(current['phase'])]}) since "
           f"{current['start_date']:%d %B %Y}" if current else "no phase recorded")
        + f" · {weekly.height} week(s) with data · local time {html.escape(str(part['tz']))}"
        + "</div>"
    )
    if weekly.height == 0:
        out.append("<p class='note'>No data for this participant in the chosen period.</p>")
        out += page_foot(str(part["tz"]))
        return "".join(out)
    readiness = assess_readiness(data, pid, criteria)
    facts = week_facts(data, pid, readiness)
    if facts is not None:
        title = f"Next steps (the week {facts.first:%d %b} to {facts.last:%d %b})"
        out.append(steps_html(week_steps(facts, rules or load_rules()), title))
    horizon = project_horizon(data, pid)
    out.append("<h2>Ready for the next phase?</h2>")
    out += _readiness_html(readiness)
    out.append("<h2>Recovery horizon (estimate)</h2>")
    out.append(f"<p class='note'>{html.escape(horizon.text)}</p>")
    out += _sitting_section(data, pid, part)
    out += _activation_section(data)
    out.append("<h2>Sitting and activation together</h2>")
    relation = within_participants(weekly)
    if relation.estimate is not None:
        out.append(_figure(lambda ax: figs.draw_scatter(ax, weekly, fit_lines=relation.judged),
                           "weekly sitting versus activation quality", 2.6))
        out.append(legend_html(figs.scatter_legend(weekly)))
    out.append(f"<p>{html.escape(relation.text)}</p>")
    out.append("<h2>Symptoms</h2>")
    if int(weekly["symptom_days"].sum()):
        out.append(_figure(lambda ax: figs.draw_pain(ax, weekly, phases), "weekly pain ratings"))
        out.append(legend_html(figs.pain_legend()))
        out.append(f"<p class='cap'>Weekly mean of {int(weekly['symptom_days'].sum())} rated "
                   "days.</p>")
    else:
        out.append("<p class='note'>No pain ratings logged in this period.</p>")
    out.append("<h2>By phase</h2>")
    if data.phase_progress.height:
        out += _phase_table(data)
    else:
        out.append("<p class='note'>No phase history recorded.</p>")
    out += page_foot(str(part["tz"]))
    return "".join(out)


def _sitting_section(data: ProgressData, pid: str, part: dict[str, Any]) -> list[str]:
    weekly, phases = data.weekly, data.phases
    valid, weeks_sit, _, _ = _counts(weekly)
    out = ["<h2>Sitting</h2>"]
    if not valid:
        out.append("<p class='note'>No valid sitting days (enough thigh-sensor wear time) in "
                   "this period, so there are no sitting trends.</p>")
        return out
    ref = _sitting_refs(data, pid, part)
    out.append(_figure(lambda ax: figs.draw_week(ax, weekly, phases, "sitting_min",
                                                 "sitting (h/day)", scale=1 / 60, ref=ref,
                                                 colour=OKABE_ITO["vermillion"]),
                       "weekly sitting time"))
    out.append(legend_html(figs.phase_legend(phases, PHASE_NAMES) + figs.reference_legend(ref)))
    _, base_days = baseline_sitting(data, pid)
    short = (f" The baseline week has {base_days} valid day(s), fewer than "
             f"{MIN_BASELINE_DAYS}, so it is not drawn or compared with."
             if 0 < base_days < MIN_BASELINE_DAYS else "")
    out.append(f"<p class='cap'>Weekly mean of {valid} valid days over {weeks_sit} weeks; "
               f"shaded by phase.{short}</p>")
    out.append(_figure(lambda ax: figs.draw_week(ax, weekly, phases, "bouts_30min",
                                                 "bouts ≥30 min per day",
                                                 colour=OKABE_ITO["black"]),
                       "prolonged sitting bouts per week"))
    out.append("<p class='cap'>Prolonged sitting: mean number of bouts of 30 min or more "
               "per valid day.</p>")
    return out


def _activation_section(data: ProgressData) -> list[str]:
    weekly, phases = data.weekly, data.phases
    _, _, sessions, weeks_act = _counts(weekly)
    out = ["<h2>Glute activation and adherence</h2>"]
    if sessions == 0:
        out.append("<p class='note'>No exercise sessions (EMG) have been recorded in this "
                   "period, so activation quality, readiness by activation and its relation to "
                   "sitting cannot be shown.</p>")
        return out
    if weeks_act:
        out.append(_figure(lambda ax: figs.draw_week(ax, weekly, phases, "activation_quality",
                                                     "activation quality", y_max=100),
                           "weekly activation quality"))
        scored = int(weekly["scored_sessions"].sum())
        out.append(f"<p class='cap'>Mean session quality (0-100) from {scored} scored "
                   f"sessions in {weeks_act} weeks.</p>")
    out.append(_figure(lambda ax: figs.draw_week(ax, weekly, phases, "exercise_days",
                                                 "exercise days", kind="bar", y_max=7),
                       "exercise days per week"))
    out.append(f"<p class='cap'>Adherence: days with at least one session per week "
               f"({sessions} sessions in all).</p>")
    return out


def _render_cohort(data: ProgressData, criteria: ReadinessCriteria | None) -> str:
    weekly = data.weekly
    out = page_head("glutewake cohort progress")
    n = data.participants.height
    out.append("<h1>Cohort progress</h1>")
    out.append(f"<div class='sub'>{n} participant(s) · {weekly.height} participant-weeks · "
               f"{int(weekly['valid_days'].sum()) if weekly.height else 0} valid days · "
               f"{int(weekly['exercise_sessions'].sum()) if weekly.height else 0} sessions</div>")
    within = within_participants(weekly)
    across = across_participants(weekly)
    out.append("<h2>Do sitting less and better activation go together?</h2>")
    if within.estimate is not None:
        out.append(_figure(lambda ax: figs.draw_scatter(ax, weekly, fit_lines=within.judged),
                           "weekly sitting versus activation quality", 2.6))
        out.append("<p class='cap'>One dot per participant-week"
                   + ("; a line per participant." if within.judged else ".") + "</p>")
    out.append(f"<p>{html.escape(within.text)}</p><p>{html.escape(across.text)}</p>")
    out.append("<h2>Participants</h2><div class='scroll'><table><tr><th>participant</th>"
               "<th>phase</th><th>weeks</th><th>sessions /week</th><th>quality (last 4 wk)</th>"
               "<th>sitting vs baseline</th><th>readiness</th></tr>")
    for pid in data.participants["participant_id"].to_list():
        w = weekly.filter(pl.col("participant_id") == pid)
        r = assess_readiness(data, pid, criteria)
        last4 = w.tail(4)
        sessions_pw = float(w["exercise_sessions"].mean()) if w.height else None  # type: ignore[arg-type]
        base, base_days = baseline_sitting(data, pid)
        change = (num(mean_of(last4, "sitting_vs_baseline_min"), "{:+.0f} min/day", "–")
                  if base is not None else
                  f"baseline too short ({base_days} day(s))" if base_days else "no baseline")
        word = {True: "ready", False: "not yet", None: "cannot judge yet"}[r.ready]
        out.append(
            f"<tr><td>{html.escape(pid)}</td><td>{r.phase or '–'}</td><td>{w.height}</td>"
            f"<td>{num(sessions_pw, '{:.1f}')}</td><td>{num(mean_of(last4, 'activation_quality'))}"
            f"</td><td>{change}</td>"
            f"<td title='{html.escape(r.summary)}'>{word}</td></tr>"
        )
    out.append("</table></div>")
    pp = data.phase_progress
    if pp.height:
        agg = pp.group_by("phase").agg(
            pl.len().alias("participants"),
            pl.col("sessions_per_week").mean(),
            pl.col("activation_quality").mean(),
            pl.col("sitting_min").mean(),
            (pl.col("exercise_sessions") == 0).sum().alias("without_sessions"),
        ).sort("phase")
        out.append("<h2>By phase, across participants</h2><div class='scroll'><table><tr>"
                   "<th>phase</th><th>participants</th><th>sessions /week</th>"
                   "<th>activation quality</th><th>sitting h/day</th></tr>")
        for row in agg.iter_rows(named=True):
            sitting_h = None if row["sitting_min"] is None else row["sitting_min"] / 60
            without = row["without_sessions"]
            out.append(
                f"<tr><td>{row['phase']}</td><td>{row['participants']}"
                + (f" ({without} without sessions)" if without else "")
                + f"</td><td>{num(row['sessions_per_week'], '{:.1f}')}</td>"
                f"<td>{num(row['activation_quality'])}</td>"
                f"<td>{num(sitting_h, '{:.1f}')}</td></tr>"
            )
        out.append("</table></div>")
    out += page_foot("UTC")
    return "".join(out)


# --------------------------------------------------------------------------- files


def write_progress_report(
    data_dir: DataDir,
    participant: str | None = None,
    *,
    out: Path | None = None,
    start: dt.date | None = None,
    end: dt.date | None = None,
    fmt: Literal["html", "pdf", "png"] = "html",
    criteria: ReadinessCriteria | None = None,
    next_steps: Path | None = None,
) -> Path:
    """Write the progression report for a participant (or the cohort); return its path.

    ``fmt="pdf"``/``"png"`` prints the page's figures and texts on A4 pages with matplotlib.
    By default the report goes to ``DATA/reports/<participant or cohort>/progress.<fmt>``.
    ``next_steps`` is a clinician's next-steps rules file laid over the built-in table.

    Raises
    ------
    ReportError
        For an unknown format, an ``end`` before ``start``, or an invalid next-steps file.
    """
    if fmt not in ("html", "pdf", "png"):
        raise ReportError(f"report format must be html, pdf or png, not {fmt!r}")
    if start and end and end < start:
        raise ReportError(f"--until {end} is before --from {start}")
    rules = load_rules(next_steps)
    data = load_progress(data_dir, participant, start, end)
    name = participant or "cohort"
    path = out or data_dir.reports / name / f"progress.{fmt}"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    if fmt == "html":
        tmp.write_text(render_progress_html(data, criteria, rules), encoding="utf-8")
    else:
        with style(PRINT_STYLE):
            fig = _print_figure(data, criteria, rules)
            fig.savefig(tmp, format=fmt, dpi=150)
        pyplot().close(fig)
    tmp.replace(path)
    return path


def _print_figure(data: ProgressData, criteria: ReadinessCriteria | None,
                  rules: RuleBook) -> Any:
    """A one-page A4 summary: the key texts and the weekly trends."""
    plt = pyplot()
    fig = plt.figure(figsize=(8.27, 11.69))
    pid = data.participant
    lines: list[str] = []
    if pid is None:
        lines.append("Cohort progress")
        lines.append(within_participants(data.weekly).text)
        lines.append(across_participants(data.weekly).text)
    else:
        lines.append(f"Progress — {pid}")
        if data.weekly.height:
            readiness = assess_readiness(data, pid, criteria)
            facts = week_facts(data, pid, readiness)
            if facts is not None:
                lines += [f"→ {s.text}" for s in week_steps(facts, rules)]
            lines.append(readiness.summary)
            lines.append(project_horizon(data, pid).text)
            lines.append(within_participants(data.weekly).text)
        else:
            lines.append("No data for this participant in the chosen period.")
    wrapped = "\n".join(textwrap.fill(t, 120) for t in lines[1:])
    fig.text(0.06, 0.97, lines[0], fontsize=15, fontweight="bold", va="top")
    fig.text(0.06, 0.94, wrapped, fontsize=7, va="top")
    weekly = data.weekly
    if weekly.height and pid is not None:
        panels = (("sitting_min", "sitting (h/day)", 1 / 60, None),
                  ("bouts_30min", "bouts ≥30 min/day", 1.0, None),
                  ("activation_quality", "activation quality", 1.0, 100.0),
                  ("exercise_days", "exercise days/week", 1.0, 7.0))
        for k, (column, label, scale, top) in enumerate(panels):
            ax = fig.add_axes((0.1, 0.46 - k * 0.12, 0.85, 0.09))
            figs.draw_week(ax, weekly, data.phases, column, label, scale=scale, y_max=top)
    elif weekly.height:
        ax = fig.add_axes((0.12, 0.1, 0.8, 0.4))
        figs.draw_scatter(ax, weekly, fit_lines=within_participants(weekly).judged)
    return fig
