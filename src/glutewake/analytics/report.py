"""The daily sedentary report: one self-contained HTML file, figures embedded, opens offline.

Everything shown is read from the catalog (read-only). Times are the participant's local time,
and the day is the participant's local calendar day: on a DST change day the timeline is 23 or
25 hours long and its clock labels follow the local clock. A day without enough wear, a
participant without EMG, or a day without sessions is said in words, never shown as misleading
zeros.

The page is made for a phone first (one column, large numbers, figures that scale to the
screen width) and prints cleanly. ``fmt="pdf"`` or ``"png"`` renders a one-page A4 version of
the same content with matplotlib (no browser needed).
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import io
import re
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from zoneinfo import ZoneInfo

import numpy as np
import polars as pl

from glutewake import __version__
from glutewake.store.catalog import open_read, query_frame

if TYPE_CHECKING:
    import duckdb
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from glutewake.store.datadir import DataDir

__all__ = [
    "DayData",
    "ReportError",
    "ReportFormat",
    "load_day",
    "render_daily_figure",
    "render_daily_html",
    "write_daily_report",
]

ReportFormat = Literal["html", "pdf", "png"]

POSTURE_COLOURS = {
    "sitting": "#d1495b",
    "lying": "#8d6a9f",
    "standing": "#edae49",
    "moving": "#00798c",
    "cycling": "#30638e",
    "nonwear": "#d9d9d9",
}
LONG_BOUT_MIN = 30.0
LONG_BOUT_COLOUR = "#7a1020"
#: days of history shown in the "recent days" chart
RECENT_DAYS = 14


class ReportError(ValueError):
    """The report cannot be made (unknown participant, bad dates or format, ...)."""


@dataclass(frozen=True)
class DayData:
    """What the daily report shows, read from the catalog.

    Times of day are ``*_h`` columns: hours elapsed since the local midnight that starts the
    day (so a 25-hour DST day runs from 0 to 25 without overlap).
    """

    participant: dict[str, Any]
    day: dt.date
    day_hours: float
    summary: dict[str, Any] | None
    qc: dict[str, Any] | None
    baseline: dict[str, Any] | None
    recent: pl.DataFrame
    periods: pl.DataFrame
    bouts: pl.DataFrame
    sessions: pl.DataFrame
    contractions: pl.DataFrame
    gaps: pl.DataFrame
    phase: int | None
    has_emg: bool
    symptoms: dict[str, Any] | None

    @property
    def has_sitting(self) -> bool:
        """The day has thigh-sensor (sitting) figures."""
        return self.summary is not None and bool(self.summary.get("has_sitting_data"))


def _local_midnight_us(day: dt.date, tz: str) -> int:
    start = dt.datetime.combine(day, dt.time(), tzinfo=ZoneInfo(tz))
    return int((start - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)) // dt.timedelta(microseconds=1))


def day_length_h(day: dt.date, tz: str) -> float:
    """Length of the local calendar day in hours (23 or 25 on DST change days)."""
    nxt = day + dt.timedelta(days=1)
    return (_local_midnight_us(nxt, tz) - _local_midnight_us(day, tz)) / 3.6e9


def _row(frame: pl.DataFrame) -> dict[str, Any] | None:
    return frame.row(0, named=True) if frame.height else None


def _load(con: duckdb.DuckDBPyConnection, participant_id: str, day: dt.date) -> DayData:
    part = query_frame(con, "SELECT * FROM participants WHERE participant_id = ?", [participant_id])
    if part.height == 0:
        raise ReportError(f"participant {participant_id!r} is not in the catalog")
    participant = part.row(0, named=True)
    tz = str(participant["tz"])
    tz_sql = tz.replace("'", "''")  # an IANA name has no quote; never let one end the literal
    t0 = _local_midnight_us(day, tz)
    t1 = _local_midnight_us(day + dt.timedelta(days=1), tz)
    hours = f"(epoch_us({{col}}) - {t0}) / 3.6e9"

    def frame(sql: str, *params: Any) -> pl.DataFrame:
        return query_frame(con, sql, [participant_id, *params])

    summary = _row(
        frame("SELECT * FROM daily_summary WHERE participant_id = ? AND local_date = ?", day)
    )
    qc = _row(frame("SELECT * FROM daily_qc WHERE participant_id = ? AND local_date = ?", day))
    recent = frame(
        "SELECT local_date, sitting_min, valid_day, has_sitting_data, exercise_sessions "
        "FROM daily_summary WHERE participant_id = ? AND local_date BETWEEN ? AND ? "
        "ORDER BY local_date",
        day - dt.timedelta(days=RECENT_DAYS - 1),
        day,
    )
    b = frame(
        "SELECT baseline_days AS days, baseline_sitting_min AS sitting_min, "
        "baseline_bouts_30min AS bouts_30min, baseline_breaks_per_sitting_hour AS "
        "breaks_per_sitting_hour FROM baseline_sitting WHERE participant_id = ?"
    )
    baseline = b.row(0, named=True) if b.height and b["days"][0] else None
    periods = frame(
        f"SELECT {hours.format(col='start_time')} AS start_h, "
        f"{hours.format(col='end_time')} AS end_h, posture FROM posture_periods "
        "WHERE participant_id = ? AND local_date = ? ORDER BY start_time",
        day,
    )
    bouts = frame(
        f"SELECT {hours.format(col='start_time')} AS start_h, "
        f"timezone('{tz_sql}', start_time) AS start_local, duration_min FROM sitting_bouts "
        "WHERE participant_id = ? AND local_date = ? ORDER BY start_time",
        day,
    )
    sessions = frame(
        f"SELECT session_id, timezone('{tz_sql}', start_time) AS start_local, exercise, phase, "
        "repetitions, glute_fired_share, firing_order_ms, glute_hamstring_ratio, peak_cv, "
        "glute_peak_pct_mvc, activation_quality FROM exercise_sessions "
        "WHERE participant_id = ? AND local_date = ? ORDER BY start_time",
        day,
    )
    contractions = frame(
        "SELECT c.session_id, c.channel, c.muscle, c.side, c.repetition, c.peak_uv, "
        "c.peak_pct_mvc FROM contractions c JOIN exercise_sessions s USING (session_id) "
        "WHERE c.participant_id = ? AND s.local_date = ? ORDER BY c.onset_time",
        day,
    )
    gaps = frame(
        f"SELECT {hours.format(col='start_time')} AS start_h, "
        f"{hours.format(col='end_time')} AS end_h, kind, value FROM qc "
        "WHERE participant_id = ? AND kind LIKE 'gap:%' AND epoch_us(start_time) < ? "
        "AND epoch_us(end_time) > ? ORDER BY start_time",
        t1,
        t0,
    )
    # DuckDB 2 wants every result fetched to the end before the next statement: fetchall
    has_emg = bool(
        con.execute(
            "SELECT EXISTS (SELECT 1 FROM exercise_sessions WHERE participant_id = ?) OR "
            "EXISTS (SELECT 1 FROM recordings WHERE participant_id = ? AND stream = 'emg')",
            [participant_id, participant_id],
        ).fetchall()[0][0]
    )
    sym = _row(frame("SELECT * FROM symptoms WHERE participant_id = ? AND local_date = ?", day))
    phase = summary["phase"] if summary else None
    if phase is None:
        rows = con.execute(
            "SELECT phase FROM phases WHERE participant_id = ? AND start_date <= ? "
            "ORDER BY start_date DESC LIMIT 1",
            [participant_id, day],
        ).fetchall()
        phase = int(rows[0][0]) if rows else None
    return DayData(
        participant=participant,
        day=day,
        day_hours=day_length_h(day, tz),
        summary=summary,
        qc=qc,
        baseline=baseline,
        recent=recent,
        periods=periods,
        bouts=bouts,
        sessions=sessions,
        contractions=contractions,
        gaps=gaps,
        phase=int(phase) if phase is not None else None,
        has_emg=has_emg,
        symptoms=sym,
    )


def load_day(data_dir: DataDir, participant_id: str, day: dt.date) -> DayData:
    """Read one participant-day's report data from the catalog (read-only).

    Raises
    ------
    ReportError
        If the participant is not in the catalog.
    """
    with open_read(data_dir) as con:
        return _load(con, participant_id, day)


# --------------------------------------------------------------------------- figures


def pyplot() -> Any:
    """matplotlib's pyplot on the non-interactive Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def figure_html(fig: Figure, alt: str) -> str:
    """The figure as an ``<img>`` with an embedded PNG data URI (closes the figure)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=144, bbox_inches="tight")
    pyplot().close(fig)
    data = base64.b64encode(buf.getvalue()).decode("ascii")
    return f'<img class="fig" alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def _clock_ticks(d: DayData) -> tuple[list[float], list[str]]:
    """Tick positions (elapsed hours) at every third local clock hour, DST-aware."""
    zone = ZoneInfo(str(d.participant["tz"]))
    midnight = dt.datetime.combine(d.day, dt.time(), tzinfo=zone)
    pos: list[float] = []
    labels: list[str] = []
    for hour in range(0, 24, 3):
        local = dt.datetime.combine(d.day, dt.time(hour), tzinfo=zone)
        elapsed = (local.astimezone(dt.UTC) - midnight.astimezone(dt.UTC)).total_seconds() / 3600
        pos.append(elapsed)
        labels.append(f"{hour:02d}")
    pos.append(d.day_hours)
    labels.append("24")
    return pos, labels


def _spines(ax: Axes, keep: tuple[str, ...] = ("bottom", "left")) -> None:
    for side in ("left", "right", "top", "bottom"):
        ax.spines[side].set_visible(side in keep)


def draw_timeline(ax: Axes, d: DayData, *, legend: bool = True) -> None:
    """The day's posture as coloured spans, long bouts underneath, data gaps shaded."""
    from matplotlib.patches import Patch

    for posture, colour in POSTURE_COLOURS.items():
        sel = d.periods.filter(pl.col("posture") == posture)
        if sel.height:
            spans = [
                (a, b - a) for a, b in zip(sel["start_h"], sel["end_h"], strict=True)
            ]
            ax.broken_barh(spans, (0.35, 0.5), facecolors=colour)
    long = d.bouts.filter(pl.col("duration_min") >= LONG_BOUT_MIN)
    for start, minutes in zip(long["start_h"], long["duration_min"], strict=True):
        ax.broken_barh([(start, minutes / 60)], (0.05, 0.22), facecolors=LONG_BOUT_COLOUR)
        ax.text(start, 0.0, f"{minutes:.0f}′", fontsize=8, va="top", color=LONG_BOUT_COLOUR)
    for start, end in zip(d.gaps["start_h"], d.gaps["end_h"], strict=True):
        ax.axvspan(max(start, 0.0), min(end, d.day_hours), color="#000", alpha=0.15, lw=0)
    ax.set_xlim(0, d.day_hours)
    ax.set_ylim(-0.12, 1)
    ax.set_yticks([])
    pos, labels = _clock_ticks(d)
    ax.set_xticks(pos)
    ax.set_xticklabels(labels, fontsize=9)
    ax.set_xlabel("local time (h)", fontsize=8, labelpad=1)
    _spines(ax, ("bottom",))
    if legend:
        present = set(d.periods["posture"].to_list())
        handles = [Patch(color=c, label=p) for p, c in POSTURE_COLOURS.items() if p in present]
        handles.append(Patch(color=LONG_BOUT_COLOUR, label=f"bout ≥ {LONG_BOUT_MIN:.0f} min"))
        if d.gaps.height:
            handles.append(Patch(color="#00000026", label="data gap"))
        ax.legend(handles=handles, ncol=3, fontsize=8, loc="upper center",
                  bbox_to_anchor=(0.5, -0.28), frameon=False)


def draw_bouts(ax: Axes, d: DayData) -> None:
    """Sitting minutes by bout length class."""
    edges = [0, 5, 10, 20, 30, 60, 24 * 60]
    labels = ["<5", "5-10", "10-20", "20-30", "30-60", "≥60"]
    minutes = d.bouts["duration_min"].to_numpy()
    cls = np.digitize(minutes, edges[1:-1])
    totals = np.bincount(cls, weights=minutes, minlength=len(labels))
    counts = np.bincount(cls, minlength=len(labels))
    colours = ["#f4a6a6"] * 4 + ["#d1495b", LONG_BOUT_COLOUR]
    bars = ax.bar(labels, totals, color=colours)
    for bar, n in zip(bars, counts, strict=True):
        if n:
            ax.annotate(f"{n}×", (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                        ha="center", va="bottom", fontsize=8)
    ax.set_xlabel("bout length (min)", fontsize=9)
    ax.set_ylabel("sitting (min)", fontsize=9)
    ax.tick_params(labelsize=9)
    _spines(ax)


def draw_wear(ax: Axes, d: DayData) -> None:
    """One bar of the wear time split into sitting, lying, standing and moving (hours)."""
    s = d.summary or {}
    parts = [(name, s.get(f"{name}_min") or 0.0) for name in ("sitting", "lying", "standing",
                                                               "moving")]
    left = 0.0
    for name, minutes in parts:
        if minutes > 0:
            ax.barh([0], [minutes / 60], left=left, color=POSTURE_COLOURS[name], label=name)
            if minutes >= 45:
                ax.text(left + minutes / 120, 0, f"{minutes / 60:.1f} h", ha="center",
                        va="center", fontsize=8, color="white")
            left += minutes / 60
    wear_h = (s.get("wear_min") or 0.0) / 60
    ax.set_xlim(0, max(wear_h, left, 1.0) * 1.02)
    ax.set_yticks([])
    ax.set_xlabel("hours of wear", fontsize=9)
    ax.tick_params(labelsize=9)
    _spines(ax, ("bottom",))
    ax.legend(ncol=4, fontsize=8, loc="lower center", bbox_to_anchor=(0.5, 1.0), frameon=False)


def draw_recent(ax: Axes, d: DayData) -> None:
    """Sitting hours on the recent days, with the baseline week's mean and the goal."""
    r = d.recent.filter(pl.col("has_sitting_data"))
    xs = [(x - d.day).days for x in r["local_date"].to_list()]
    hours = [(v or 0.0) / 60 for v in r["sitting_min"].to_list()]
    colours = [
        ("#d1495b" if x == 0 else "#e8a0a8") if valid else "#cfcfcf"
        for x, valid in zip(xs, r["valid_day"].to_list(), strict=True)
    ]
    ax.bar(xs, hours, color=colours, width=0.8)
    if d.baseline and d.baseline.get("sitting_min") is not None:
        ax.axhline(d.baseline["sitting_min"] / 60, color="#555", ls="--", lw=1, label="baseline")
    goal = d.participant.get("goal_sitting_min")
    if goal:
        ax.axhline(goal / 60, color="#1a7f37", ls=":", lw=1.5, label="goal")
    ax.set_xlim(-RECENT_DAYS + 0.4, 0.6)
    ticks = list(range(-RECENT_DAYS + 1, 1, 2))
    ax.set_xticks(ticks)
    ax.set_xticklabels(
        [(d.day + dt.timedelta(days=t)).strftime("%d.%m") for t in ticks], fontsize=8
    )
    ax.set_ylabel("sitting (h)", fontsize=9)
    ax.tick_params(labelsize=8)
    _spines(ax)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8, frameon=False, loc="lower left")


def draw_activation(ax: Axes, d: DayData) -> None:
    """Each channel's contraction peak per repetition (%MVC where a reference exists)."""
    c = d.contractions
    use_mvc = c["peak_pct_mvc"].null_count() == 0
    value = "peak_pct_mvc" if use_mvc else "peak_uv"
    # repetitions are numbered within a session; later sessions continue the count, and a
    # repetition in which a muscle did not fire is a gap in that muscle's line
    offsets = dict(
        zip(
            d.sessions["session_id"].to_list(),
            np.concatenate(([0], np.cumsum(d.sessions["repetitions"].to_numpy())[:-1])).tolist(),
            strict=True,
        )
    )
    c = c.with_columns(
        (
            pl.col("session_id").replace_strict(offsets, default=0, return_dtype=pl.Int64)
            + pl.col("repetition").fill_null(pl.int_range(1, pl.len() + 1).over("channel"))
        ).alias("x")
    )
    for (channel, muscle), sel in c.group_by(["channel", "muscle"], maintain_order=True):
        ax.plot(sel["x"].to_list(), sel[value].to_list(), marker="o", ms=3,
                label=f"{muscle or channel}")
    for start in list(offsets.values())[1:]:
        ax.axvline(start + 0.5, color="#bbb", lw=0.8, ls="--")
    ax.set_xlabel("repetition" + (" (sessions one after another)" if len(offsets) > 1 else ""),
                  fontsize=9)
    ax.set_ylabel("peak (%MVC)" if use_mvc else "peak (µV)", fontsize=9)
    ax.tick_params(labelsize=9)
    _spines(ax)
    ax.legend(fontsize=8, frameon=False)


def _figure(width_in: float, height_in: float, draw: Any, d: DayData, alt: str) -> str:
    fig, ax = pyplot().subplots(figsize=(width_in, height_in))
    draw(ax, d)
    return figure_html(fig, alt)


# --------------------------------------------------------------------------- words


def num(value: Any, fmt: str = "{:.0f}", missing: str = "–") -> str:
    """Format a number, or ``missing`` for None/NaN."""
    if value is None or (isinstance(value, float) and value != value):
        return missing
    return fmt.format(value)


def _hm(minutes: float) -> str:
    h, m = divmod(round(minutes), 60)
    return f"{h} h {m:02d} min" if h else f"{m} min"


def _versus(value: float | None, reference: float | None, unit: str, *, lower_is_better: bool,
            fmt: str = "{:.0f}") -> str:
    if value is None or reference is None:
        return ""
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
            "figures are shown but should not be compared with full days (and are left out of "
            "weekly averages)."
        )
    if not d.has_emg:
        notes.append(
            "No EMG has been recorded for this participant, so there is no glute activation "
            "to show."
        )
    if (note := dst_note(d.day, d.day_hours)) is not None:
        notes.append(note)
    return notes


# --------------------------------------------------------------------------- page

CSS = """
*{box-sizing:border-box}
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#222;
background:#fafafa;font-size:16px;line-height:1.4;-webkit-text-size-adjust:100%}
main{max-width:860px;margin:0 auto;padding:12px 14px 40px}
h1{font-size:1.35rem;margin:.4rem 0 .1rem}h2{font-size:1.08rem;margin:1.4rem 0 .4rem}
.sub{color:#555;font-size:.9rem}
.tiles{display:grid;grid-template-columns:repeat(auto-fit,minmax(150px,1fr));gap:8px;margin:10px 0}
.tile{background:#fff;border-radius:10px;padding:8px 10px;box-shadow:0 1px 2px #0002}
.tile b{display:block;font-size:1.6rem;line-height:1.2}.tile small{color:#555;font-size:.8rem}
.fig{width:100%;max-width:720px;height:auto;display:block;margin:4px 0}
.row{display:flex;flex-wrap:wrap;gap:8px}.row>div{flex:1 1 300px;min-width:0}
.scroll{overflow-x:auto}
table{border-collapse:collapse;font-size:.8rem;width:100%}
td,th{padding:4px 6px;border-bottom:1px solid #e3e3e3;text-align:left;vertical-align:top}
.good{color:#1a7f37;font-weight:600}.bad{color:#b42318;font-weight:600}
.note{background:#fff7e0;border-radius:8px;padding:8px 10px;margin:8px 0}
.cap{color:#666;font-size:.8rem;margin:0 0 6px}
ul{padding-left:1.2rem}
footer{color:#888;font-size:.75rem;margin-top:2rem}
@media print{body{background:#fff}.tile{box-shadow:none;border:1px solid #ddd}}
"""


def page_head(title: str) -> list[str]:
    """The start of a self-contained page (no external resources)."""
    return [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width, initial-scale=1'>",
        f"<title>{html.escape(title)}</title>",
        f"<style>{CSS}</style></head><body><main>",
    ]


def page_foot(tz: str) -> list[str]:
    """The footer and the end of the page."""
    now = dt.datetime.now(ZoneInfo(tz))
    return [
        f"<footer>glutewake {html.escape(__version__)} · generated {now:%Y-%m-%d %H:%M %Z} · "
        "an activity and activation record, not a diagnosis</footer>",
        "</main></body></html>",
    ]


def _tiles(d: DayData) -> list[tuple[str, str, str]]:
    s = d.summary or {}
    p = d.participant
    goal = p.get("goal_sitting_min")
    goal_breaks = p.get("goal_breaks_per_sitting_hour")
    tiles: list[tuple[str, str, str]] = []
    if d.has_sitting:
        tiles += [
            ("sitting", _hm(s["sitting_min"]),
             f"{num(s['sitting_pct'])}% of wear" + (f" · goal {_hm(goal)}" if goal else "")),
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
    s = d.summary or {}
    parts: list[str] = []
    base = d.baseline
    goal = d.participant.get("goal_sitting_min")
    goal_breaks = d.participant.get("goal_breaks_per_sitting_hour")
    if base:
        sitting = _versus(s["sitting_min"], base["sitting_min"], " min", lower_is_better=True)
        bouts = _versus(s["bouts_30min"], base["bouts_30min"], "", lower_is_better=True,
                        fmt="{:.1f}")
        breaks = _versus(s["breaks_per_sitting_hour"], base["breaks_per_sitting_hour"], "",
                         lower_is_better=False, fmt="{:.1f}")
        plural = "s" if base["days"] != 1 else ""
        parts.append(
            f"Compared with the baseline week ({base['days']} valid day{plural}): sitting "
            f"{sitting}, bouts ≥30 min {bouts}, breaks per sitting hour {breaks}."
        )
    else:
        parts.append("No baseline week is recorded for this participant, so there is nothing to "
                     "compare this day with yet.")
    if goal:
        met = s["sitting_min"] <= goal
        parts.append(
            f"Sitting goal {_hm(goal)}: "
            + (f"<span class='good'>met, {_hm(goal - s['sitting_min'])} to spare</span>." if met
               else f"<span class='bad'>{_hm(s['sitting_min'] - goal)} over</span>.")
        )
    if goal_breaks and s.get("breaks_per_sitting_hour") is not None:
        met = s["breaks_per_sitting_hour"] >= goal_breaks
        parts.append(
            f"Breaks goal {goal_breaks:g} per sitting hour: "
            + ("<span class='good'>met</span>." if met else "<span class='bad'>not met</span>.")
        )
    return "<p>" + " ".join(parts) + "</p>"


def _sessions_html(d: DayData) -> list[str]:
    esc = html.escape
    out = ["<div class='scroll'><table><tr><th>time</th><th>exercise</th><th>quality</th>"
           "<th>reps</th><th>glutes fired</th><th>firing order</th><th>glute peak</th></tr>"]
    for s in d.sessions.iter_rows(named=True):
        order = s["firing_order_ms"]
        order_text = "–" if order is None else (
            f"glutes {abs(order):.0f} ms {'first' if order <= 0 else 'after hamstrings'}"
        )
        share = s["glute_fired_share"]
        out.append(
            f"<tr><td>{s['start_local']:%H:%M}</td><td>{esc(str(s['exercise'] or '–'))}</td>"
            f"<td><b>{num(s['activation_quality'])}</b>/100</td>"
            f"<td>{s['repetitions']}</td>"
            f"<td>{num(None if share is None else share * 100, '{:.0f}%')}</td>"
            f"<td>{order_text}</td><td>{num(s['glute_peak_pct_mvc'], '{:.0f}% MVC')}</td></tr>"
        )
    out.append("</table></div>")
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
                     "(shaded in the timeline)")
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


def render_daily_html(d: DayData) -> str:
    """The daily report page as one HTML string (figures embedded as data URIs).

    The page references nothing outside itself: no scripts, fonts, styles or images from the
    network, so it opens offline and leaks nothing when opened.
    """
    p = d.participant
    esc = html.escape
    out = page_head(f"glutewake daily report {p['participant_id']} {d.day}")
    out += [
        f"<h1>Sitting and glutes — {d.day:%A %d %B %Y}</h1>",
        f"<div class='sub'>participant {esc(str(p['participant_id']))} · local time "
        f"{esc(str(p['tz']))} · phase {d.phase if d.phase else 'not set'}</div>",
    ]
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
        out.append(_figure(5, 2.0, draw_timeline, d, "posture timeline of the day"))
        out.append("<p class='cap'>Posture through the day in local time; dark red bars mark "
                   "sitting bouts of 30 minutes or more, with their length.</p>")
        out.append("<div class='row'><div><h2>Sitting by bout length</h2>")
        if d.bouts.height:
            out.append(_figure(5, 2.8, draw_bouts, d, "sitting time by bout length"))
            out.append(f"<p class='cap'>{d.bouts.height} bouts; number of bouts above each "
                       "bar.</p>")
        else:
            out.append("<p>No sitting bouts on this day.</p>")
        out.append("</div><div><h2>Sitting versus wear</h2>")
        out.append(_figure(5, 1.3, draw_wear, d, "sitting versus wear time"))
        out.append("</div></div>")
    if d.recent.filter(pl.col("has_sitting_data")).height > 1:
        n = d.recent.filter(pl.col("has_sitting_data") & pl.col("valid_day")).height
        out.append(f"<h2>The last {RECENT_DAYS} days</h2>")
        out.append(_figure(5, 2.5, draw_recent, d, "sitting on recent days, baseline and goal"))
        out.append(f"<p class='cap'>Sitting per day ({n} valid days shown in colour; grey = too "
                   "little wear); dashed = baseline week, dotted = goal.</p>")
    out.append("<h2>Glute exercise</h2>")
    if not d.has_emg:
        out.append("<p>No EMG recorded for this participant yet.</p>")
    elif d.sessions.height == 0:
        out.append("<p class='note'>No exercise session was recorded on this day.</p>")
    else:
        out += _sessions_html(d)
        if d.contractions.height:
            out.append(_figure(5, 2.8, draw_activation, d, "contraction peaks per repetition"))
            out.append(f"<p class='cap'>{d.contractions.height} contractions detected across "
                       f"{d.sessions.height} session(s).</p>")
    out.append("<h2>Data quality</h2><ul>")
    out += [f"<li>{esc(item)}</li>" for item in _qc_items(d)]
    out.append("</ul>")
    out += page_foot(str(p["tz"]))
    return "".join(out)


def render_daily_figure(d: DayData) -> Figure:
    """The daily report as one A4 matplotlib page (for PDF or PNG printing)."""
    plt = pyplot()
    fig = plt.figure(figsize=(8.27, 11.69))
    grid = fig.add_gridspec(6, 2, height_ratios=[1.25, 1.0, 1.4, 1.4, 1.4, 1.6], hspace=0.75,
                            wspace=0.3, left=0.08, right=0.95, top=0.95, bottom=0.04)
    p = d.participant
    head = fig.add_subplot(grid[0, :])
    head.axis("off")
    head.text(0, 1, f"Sitting and glutes — {d.day:%A %d %B %Y}", fontsize=15,
              fontweight="bold", va="top")
    head.text(0, 0.72, f"participant {p['participant_id']} · local time {p['tz']} · phase "
              f"{d.phase if d.phase else 'not set'}", fontsize=9, color="#555", va="top")
    tiles = _tiles(d)
    for k, (title, big, small) in enumerate(tiles[:5]):
        x = k / max(len(tiles[:5]), 1)
        head.text(x, 0.45, title, fontsize=7.5, color="#555", va="top")
        head.text(x, 0.3, big, fontsize=13, fontweight="bold", va="top")
        head.text(x, 0.12, small.replace(" · ", "\n"), fontsize=6.5, color="#555", va="top")
    notes = fig.add_subplot(grid[1, :])
    notes.axis("off")
    lines = day_notes(d) + _qc_items(d)
    if d.has_sitting:  # the comparison paragraph without its markup
        lines.append(html.unescape(re.sub(r"<[^>]+>", "", _comparison(d))))
    text = "\n".join(textwrap.fill(f"• {line}", 120, subsequent_indent="  ") for line in lines)
    notes.text(0, 1, text, fontsize=7.5, va="top")
    if d.has_sitting:
        draw_timeline(fig.add_subplot(grid[2, :]), d)
        if d.bouts.height:
            draw_bouts(fig.add_subplot(grid[3, 0]), d)
        draw_wear(fig.add_subplot(grid[3, 1]), d)
    if d.recent.filter(pl.col("has_sitting_data")).height > 1:
        draw_recent(fig.add_subplot(grid[4, :]), d)
    act = fig.add_subplot(grid[5, :])
    if d.contractions.height:
        draw_activation(act, d)
        act.set_title(f"glute exercise: {d.sessions.height} session(s)", fontsize=9)
    else:
        act.axis("off")
        text = ("No EMG recorded for this participant." if not d.has_emg
                else "No exercise session was recorded on this day.")
        act.text(0, 0.8, text, fontsize=9, va="top")
    fig.text(0.08, 0.01, f"glutewake {__version__} · not a diagnosis", fontsize=6, color="#888")
    return fig


def _write(d: DayData, path: Path, fmt: ReportFormat) -> None:
    tmp = path.with_name(path.name + ".tmp")
    if fmt == "html":
        tmp.write_text(render_daily_html(d), encoding="utf-8")
    else:
        fig = render_daily_figure(d)
        fig.savefig(tmp, format=fmt, dpi=150)
        pyplot().close(fig)
    tmp.replace(path)


def write_daily_report(
    data_dir: DataDir,
    participant_id: str,
    day: dt.date,
    until: dt.date | None = None,
    *,
    out: Path | None = None,
    fmt: ReportFormat = "html",
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

    Raises
    ------
    ReportError
        For an unknown participant or format, or ``until`` before ``day``.
    """
    if fmt not in ("html", "pdf", "png"):
        raise ReportError(f"report format must be html, pdf or png, not {fmt!r}")
    last = until or day
    if last < day:
        raise ReportError(f"--until {last} is before --date {day}")
    paths: list[Path] = []
    with open_read(data_dir) as con:
        days: list[DayData] = []
        current = day
        while current <= last:
            days.append(_load(con, participant_id, current))
            current += dt.timedelta(days=1)
    for data in days:
        if out is not None and until is None:
            path = out
        else:
            folder = out if out is not None else data_dir.reports / participant_id
            path = folder / f"{participant_id}-{data.day.isoformat()}.{fmt}"
        path.parent.mkdir(parents=True, exist_ok=True)
        _write(data, path, fmt)
        paths.append(path)
    return paths
