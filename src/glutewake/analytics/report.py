"""The daily sedentary report: one self-contained HTML file, figures embedded, opens offline.

Everything shown is read from the catalog (read-only). Times are the participant's local time.
A day without enough wear, a participant without EMG, or a day without sessions is said in words,
never shown as misleading zeros.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import io
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import polars as pl

from glutewake import __version__
from glutewake.analytics.catalog import open_read, query_frame

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from glutewake.datadir import DataDir

POSTURE_COLOURS = {
    "sitting": "#d1495b",
    "lying": "#8d6a9f",
    "standing": "#edae49",
    "moving": "#00798c",
    "cycling": "#30638e",
    "nonwear": "#d9d9d9",
}
LONG_BOUT_MIN = 30.0


class ReportError(ValueError):
    """The report cannot be made (unknown participant, no catalog, ...)."""


@dataclass(frozen=True)
class DayData:
    """What the daily report shows, read from the catalog."""

    participant: dict[str, Any]
    day: dt.date
    daily: dict[str, Any] | None
    baseline: dict[str, Any] | None
    periods: pl.DataFrame
    bouts: pl.DataFrame
    sessions: pl.DataFrame
    contractions: pl.DataFrame
    gaps: pl.DataFrame
    phase: int | None
    symptoms: dict[str, Any] | None


def load_day(data_dir: DataDir, participant_id: str, day: dt.date) -> DayData:
    """Read one participant-day's report data from the catalog (read-only)."""
    with open_read(data_dir) as con:
        part = query_frame(
            con, "SELECT * FROM participants WHERE participant_id = ?", [participant_id]
        )
        if part.height == 0:
            raise ReportError(f"participant {participant_id!r} is not in the catalog")
        participant = part.row(0, named=True)
        tz = participant["tz"]

        def frame(sql: str, *params: Any) -> pl.DataFrame:
            return query_frame(con, sql, [participant_id, *params])

        daily = frame(
            "SELECT * FROM daily_sitting WHERE participant_id = ? AND local_date = ?", day
        )
        base_start = participant.get("baseline_start")
        base_end = participant.get("baseline_end")
        baseline = None
        if base_start is not None and base_end is not None:
            b = frame(
                "SELECT count(*) AS days, avg(sitting_min) AS sitting_min, "
                "avg(bouts_30min) AS bouts_30min, avg(breaks_per_sitting_hour) AS "
                "breaks_per_sitting_hour, avg(longest_bout_min) AS longest_bout_min "
                "FROM daily_sitting WHERE participant_id = ? AND valid_day "
                "AND local_date BETWEEN ? AND ?",
                base_start,
                base_end,
            )
            if b.height and b["days"][0]:
                baseline = b.row(0, named=True)
        local = f"timezone('{tz}', start_time)"
        periods = frame(
            f"SELECT {local} AS start_local, timezone('{tz}', end_time) AS end_local, posture "
            "FROM posture_periods WHERE participant_id = ? AND local_date = ? ORDER BY start_time",
            day,
        )
        bouts = frame(
            f"SELECT {local} AS start_local, duration_min FROM sitting_bouts "
            "WHERE participant_id = ? AND local_date = ? ORDER BY start_time",
            day,
        )
        sessions = frame(
            f"SELECT session_id, {local} AS start_local, exercise, phase, repetitions, "
            "glute_fired_share, firing_order_ms, glute_hamstring_ratio, peak_cv, "
            "glute_peak_pct_mvc, activation_quality FROM exercise_sessions "
            "WHERE participant_id = ? AND local_date = ? ORDER BY start_time",
            day,
        )
        contractions = frame(
            "SELECT c.session_id, c.channel, c.muscle, c.repetition, c.peak_uv, c.peak_pct_mvc "
            "FROM contractions c JOIN exercise_sessions s USING (session_id) "
            "WHERE c.participant_id = ? AND s.local_date = ? ORDER BY c.onset_time",
            day,
        )
        gaps = frame(
            f"SELECT {local} AS start_local, timezone('{tz}', end_time) AS end_local, kind, value "
            "FROM qc WHERE participant_id = ? AND kind LIKE 'gap:%' AND "
            f"CAST({local} AS DATE) = ? ORDER BY start_time",
            day,
        )
        phase_row = con.execute(
            "SELECT phase FROM phases WHERE participant_id = ? AND start_date <= ? "
            "ORDER BY start_date DESC LIMIT 1",
            [participant_id, day],
        ).fetchone()
        sym = frame("SELECT * FROM symptoms WHERE participant_id = ? AND local_date = ?", day)
    return DayData(
        participant=participant,
        day=day,
        daily=daily.row(0, named=True) if daily.height else None,
        baseline=baseline,
        periods=periods,
        bouts=bouts,
        sessions=sessions,
        contractions=contractions,
        gaps=gaps,
        phase=int(phase_row[0]) if phase_row else None,
        symptoms=sym.row(0, named=True) if sym.height else None,
    )


# --------------------------------------------------------------------------- figures


def _hours(ts: Any, day: dt.date) -> float:
    """Local naive timestamp -> hours since the local midnight that starts ``day``."""
    delta = ts - dt.datetime.combine(day, dt.time())
    return float(delta.total_seconds() / 3600.0)


def _figure_html(fig: Figure, alt: str) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=144, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    data = base64.b64encode(buf.getvalue()).decode("ascii")
    return f'<img class="fig" alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def _timeline_figure(d: DayData) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    fig, ax = plt.subplots(figsize=(8, 1.9))
    for posture, colour in POSTURE_COLOURS.items():
        sel = d.periods.filter(pl.col("posture") == posture)
        if sel.height == 0:
            continue
        spans = [
            (_hours(a, d.day), _hours(b, d.day) - _hours(a, d.day))
            for a, b in zip(sel["start_local"], sel["end_local"], strict=True)
        ]
        ax.broken_barh(spans, (0.35, 0.5), facecolors=colour)
    long = d.bouts.filter(pl.col("duration_min") >= LONG_BOUT_MIN)
    for start, minutes in zip(long["start_local"], long["duration_min"], strict=True):
        x = _hours(start, d.day)
        ax.broken_barh([(x, minutes / 60)], (0.05, 0.22), facecolors="#7a1020")
    for start, end in zip(d.gaps["start_local"], d.gaps["end_local"], strict=True):
        ax.axvspan(_hours(start, d.day), _hours(end, d.day), color="#000", alpha=0.12, lw=0)
    ax.set_xlim(0, 24)
    ax.set_ylim(0, 1)
    ax.set_yticks([])
    ax.set_xticks(range(0, 25, 3))
    ax.set_xticklabels([f"{h:02d}:00" for h in range(0, 25, 3)])
    for side in ("left", "right", "top"):
        ax.spines[side].set_visible(False)
    handles = [Patch(color=c, label=p) for p, c in POSTURE_COLOURS.items()]
    handles.append(Patch(color="#7a1020", label=f"bout ≥ {LONG_BOUT_MIN:.0f} min"))
    ax.legend(handles=handles, ncol=4, fontsize=7, loc="upper center",
              bbox_to_anchor=(0.5, -0.25), frameon=False)
    return _figure_html(fig, "posture timeline of the day")


def _bouts_figure(d: DayData) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    edges = [0, 5, 10, 20, 30, 60, 24 * 60]
    labels = ["<5", "5-10", "10-20", "20-30", "30-60", "≥60"]
    minutes = d.bouts["duration_min"].to_list()
    totals = [
        sum(m for m in minutes if lo <= m < hi) for lo, hi in zip(edges[:-1], edges[1:], strict=True)
    ]
    fig, ax = plt.subplots(figsize=(4, 2.6))
    colours = ["#f4a6a6"] * 4 + ["#d1495b", "#7a1020"]
    ax.bar(labels, totals, color=colours)
    ax.set_xlabel("bout length (min)")
    ax.set_ylabel("sitting (min)")
    ax.spines[["top", "right"]].set_visible(False)
    return _figure_html(fig, "sitting time by bout length")


def _wear_figure(d: DayData) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    assert d.daily is not None
    parts = [
        ("sitting", d.daily["sitting_min"]),
        ("lying", d.daily["lying_min"]),
        ("standing", d.daily["standing_min"]),
        ("moving", d.daily["moving_min"]),
    ]
    fig, ax = plt.subplots(figsize=(4, 1.2))
    left = 0.0
    for name, minutes in parts:
        ax.barh([0], [minutes / 60], left=left, color=POSTURE_COLOURS[name], label=name)
        left += minutes / 60
    ax.set_yticks([])
    ax.set_xlabel("hours of wear")
    ax.spines[["top", "right", "left"]].set_visible(False)
    ax.legend(ncol=4, fontsize=7, loc="upper center", bbox_to_anchor=(0.5, 1.6), frameon=False)
    return _figure_html(fig, "sitting versus wear time")


def _activation_figure(d: DayData) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4, 2.6))
    value = "peak_pct_mvc" if d.contractions["peak_pct_mvc"].null_count() == 0 else "peak_uv"
    for channel in d.contractions["channel"].unique().sort().to_list():
        sel = d.contractions.filter(pl.col("channel") == channel)
        ax.plot(range(1, sel.height + 1), sel[value].to_list(), marker="o", ms=3, label=channel)
    ax.set_xlabel("repetition")
    ax.set_ylabel("peak (%MVC)" if value == "peak_pct_mvc" else "peak (µV)")
    ax.spines[["top", "right"]].set_visible(False)
    ax.legend(fontsize=7, frameon=False)
    return _figure_html(fig, "contraction peaks per repetition")


# --------------------------------------------------------------------------- page


def _num(value: Any, fmt: str = "{:.0f}") -> str:
    return "–" if value is None else fmt.format(value)


def _compare(value: float | None, reference: float | None, lower_is_better: bool) -> str:
    if value is None or reference is None:
        return ""
    diff = value - reference
    better = diff < 0 if lower_is_better else diff > 0
    cls = "good" if better else "bad" if abs(diff) > 1e-9 else ""
    return f'<span class="{cls}">{diff:+.0f}</span>'


CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#222;
background:#fafafa}
main{max-width:860px;margin:0 auto;padding:12px 14px 40px}
h1{font-size:1.35rem;margin:.4rem 0 .1rem}h2{font-size:1.05rem;margin:1.4rem 0 .4rem}
.sub{color:#666;font-size:.9rem}
.tiles{display:grid;grid-template-columns:repeat(auto-fit,minmax(150px,1fr));gap:8px;margin:10px 0}
.tile{background:#fff;border-radius:8px;padding:8px 10px;box-shadow:0 1px 2px #0002}
.tile b{display:block;font-size:1.5rem}.tile small{color:#666}
.fig{max-width:100%;height:auto;display:block;margin:4px 0}
.row{display:flex;flex-wrap:wrap;gap:8px}.row>div{flex:1 1 320px}
table{border-collapse:collapse;font-size:.85rem;width:100%}
td,th{padding:3px 6px;border-bottom:1px solid #e3e3e3;text-align:left}
.good{color:#1a7f37}.bad{color:#b42318}.note{background:#fff7e0;border-radius:6px;padding:8px}
footer{color:#888;font-size:.75rem;margin-top:2rem}
"""


def render_daily_html(d: DayData) -> str:
    """The daily report page as one HTML string (figures embedded as data URIs)."""
    p = d.participant
    esc = html.escape
    out = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width, initial-scale=1'>",
        f"<title>glutewake daily report {esc(p['participant_id'])} {d.day}</title>",
        f"<style>{CSS}</style></head><body><main>",
        f"<h1>Sitting and glutes — {d.day:%A %d %B %Y}</h1>",
        f"<div class='sub'>participant {esc(p['participant_id'])} · local time "
        f"{esc(p['tz'])} · phase {d.phase if d.phase else 'not set'}</div>",
    ]
    daily = d.daily
    if daily is None:
        out.append(
            "<p class='note'>No thigh-sensor data was processed for this day, so there are no "
            "sitting figures.</p>"
        )
    else:
        if not daily["valid_day"]:
            out.append(
                f"<p class='note'>Only {daily['wear_min'] / 60:.1f} h of wear time: below the "
                "valid-day threshold, so this day's figures are shown but should not be compared "
                "with full days.</p>"
            )
        base = d.baseline or {}
        goal = p.get("goal_sitting_min")
        tiles = [
            ("sitting", f"{daily['sitting_min'] / 60:.1f} h",
             f"{_num(daily['sitting_pct'], '{:.0f}')}% of wear"
             + (f" · goal {goal / 60:.1f} h" if goal else "")),
            ("long bouts (≥30 min)", f"{daily['bouts_30min']}",
             f"≥60 min: {daily['bouts_60min']} · longest {daily['longest_bout_min']:.0f} min"),
            ("breaks per sitting hour", _num(daily["breaks_per_sitting_hour"], "{:.1f}"),
             f"{daily['breaks']} breaks"),
            ("wear time", f"{daily['wear_min'] / 60:.1f} h",
             "valid day" if daily["valid_day"] else "not a valid day"),
        ]
        out.append("<div class='tiles'>")
        for title, big, small in tiles:
            out.append(f"<div class='tile'><small>{esc(title)}</small><b>{big}</b>"
                       f"<small>{esc(small)}</small></div>")
        out.append("</div>")
        if base:
            out.append(
                "<p class='sub'>Versus baseline week "
                f"({base['days']} valid days): sitting "
                f"{_compare(daily['sitting_min'], base['sitting_min'], True)} min, bouts ≥30 min "
                f"{_compare(daily['bouts_30min'], base['bouts_30min'], True)}, longest bout "
                f"{_compare(daily['longest_bout_min'], base['longest_bout_min'], True)} min.</p>"
            )
        else:
            out.append("<p class='sub'>No baseline week is recorded for this participant yet.</p>")
        out.append("<h2>The day</h2>")
        out.append(_timeline_figure(d))
        out.append("<div class='row'><div><h2>Sitting by bout length</h2>")
        out.append(_bouts_figure(d) if d.bouts.height else "<p>No sitting bouts.</p>")
        out.append("</div><div><h2>Sitting versus wear</h2>")
        out.append(_wear_figure(d))
        out.append("</div></div>")
    out.append("<h2>Glute exercise</h2>")
    if d.sessions.height == 0:
        out.append("<p class='note'>No exercise session was recorded on this day.</p>")
    else:
        out.append("<table><tr><th>time</th><th>exercise</th><th>reps</th><th>glutes fired</th>"
                   "<th>firing order</th><th>glute peak</th><th>quality</th></tr>")
        for s in d.sessions.iter_rows(named=True):
            order = s["firing_order_ms"]
            order_text = "–" if order is None else (
                f"glutes {abs(order):.0f} ms {'first' if order < 0 else 'after hamstrings'}"
            )
            out.append(
                f"<tr><td>{s['start_local']:%H:%M}</td><td>{esc(str(s['exercise'] or '–'))}</td>"
                f"<td>{s['repetitions']}</td>"
                f"<td>{_num(s['glute_fired_share'] and s['glute_fired_share'] * 100)}%</td>"
                f"<td>{order_text}</td><td>{_num(s['glute_peak_pct_mvc'])}% MVC</td>"
                f"<td><b>{_num(s['activation_quality'])}</b>/100</td></tr>"
            )
        out.append("</table>")
        if d.contractions.height:
            out.append(_activation_figure(d))
    out.append("<h2>Data quality</h2><ul>")
    if daily is not None:
        out.append(f"<li>wear time {daily['wear_min'] / 60:.1f} h</li>")
    if d.gaps.height:
        total = float(d.gaps["value"].sum())
        out.append(f"<li>{d.gaps.height} data gap(s), {total / 60:.1f} min in all "
                   "(shaded in the timeline)</li>")
    else:
        out.append("<li>no data gaps</li>")
    if d.symptoms:
        sy = d.symptoms
        out.append(f"<li>pain today (0-10): lower back {_num(sy['lower_back_pain'])}, hip "
                   f"{_num(sy['hip_pain'])}, knee {_num(sy['knee_pain'])}</li>")
    out.append("</ul>")
    out.append(f"<footer>glutewake {__version__} · generated "
               f"{dt.datetime.now(ZoneInfo(p['tz'])):%Y-%m-%d %H:%M %Z}</footer>")
    out.append("</main></body></html>")
    return "".join(out)


def write_daily_report(
    data_dir: DataDir,
    participant_id: str,
    day: dt.date,
    until: dt.date | None = None,
    *,
    out: Path | None = None,
) -> list[Path]:
    """Write the daily report(s) for ``day`` (through ``until``); return the paths written.

    ``out`` is the file for a single day or the folder for a range; by default reports go to
    ``DATA/reports/<participant>/<date>.html``.
    """
    last = until or day
    if last < day:
        raise ReportError(f"--until {last} is before --date {day}")
    paths: list[Path] = []
    current = day
    while current <= last:
        data = load_day(data_dir, participant_id, current)
        if out is not None and until is None:
            path = out
        else:
            folder = out if out is not None else data_dir.reports / participant_id
            path = folder / f"{participant_id}-{current.isoformat()}.html"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(render_daily_html(data), encoding="utf-8")
        paths.append(path)
        current += dt.timedelta(days=1)
    return paths
