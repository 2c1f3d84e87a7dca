"""The daily report's figures: the day's timeline, bouts by length, wear, recent days, reps.

Each ``draw_*`` function draws onto a matplotlib axes, for the page (inline SVG at the phone
design width, :mod:`glutewake.analytics.svg`) and for the printed A4 page alike. Colours are
Okabe-Ito; non-wear (grey) and a data gap (white, hatched) differ in pattern as well; every
quantity axis starts at zero. The figures carry no legend on the page: the page shows the
colour keys as HTML (:func:`legends`), which wraps on a phone.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import numpy as np
import polars as pl

from glutewake.analytics.day_data import RECENT_DAYS
from glutewake.analytics.evidence import MIN_BASELINE_DAYS
from glutewake.analytics.page import Swatch
from glutewake.analytics.svg import OKABE_ITO, label_width, settle_layout

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from glutewake.analytics.day_data import DayData

__all__ = [
    "GAP_HATCH",
    "LONG_BOUT_COLOUR",
    "LONG_BOUT_MIN",
    "POSTURE_COLOURS",
    "bout_spans",
    "draw_activation",
    "draw_bouts",
    "draw_recent",
    "draw_timeline",
    "draw_wear",
    "legends",
]

POSTURE_COLOURS = {
    "sitting": OKABE_ITO["vermillion"],
    "lying": OKABE_ITO["orange"],
    "standing": OKABE_ITO["yellow"],
    "moving": OKABE_ITO["sky_blue"],
    "cycling": OKABE_ITO["blue"],
    "nonwear": "#BBBBBB",
}
POSTURE_NAMES = {"nonwear": "not worn"}
#: a data gap: white with dark diagonal hatching (differs from non-wear in pattern, not only hue)
GAP_HATCH = "////"
GAP_EDGE = "#444444"
GAP_CSS = f"repeating-linear-gradient(45deg,{GAP_EDGE} 0 1.5px,#fff 1.5px 5px)"
LONG_BOUT_MIN = 30.0
#: a long bout is labelled only when at least this much of it lies inside the day (minutes):
#: a bout that began a second before midnight shows as a sliver, and a label beside a sliver
#: reads as a label without a bar
LABELLED_MIN = 10.0
LONG_BOUT_COLOUR = OKABE_ITO["black"]
SHORT_DAY_CSS = "repeating-linear-gradient(45deg,#777 0 1.5px,#ddd 1.5px 5px)"
GOAL_COLOUR = OKABE_ITO["blue"]
GLUTE_COLOUR = OKABE_ITO["blue"]
REFERENCE_COLOUR = OKABE_ITO["orange"]


def _clock_ticks(d: DayData, every_h: int = 3) -> tuple[list[float], list[str]]:
    """Tick positions (elapsed hours) at every ``every_h`` local clock hours, DST-aware."""
    zone = ZoneInfo(str(d.participant["tz"]))
    midnight = dt.datetime.combine(d.day, dt.time(), tzinfo=zone)
    pos: list[float] = []
    labels: list[str] = []
    for hour in range(0, 24, every_h):
        local = dt.datetime.combine(d.day, dt.time(hour), tzinfo=zone)
        elapsed = (local.astimezone(dt.UTC) - midnight.astimezone(dt.UTC)).total_seconds() / 3600
        pos.append(elapsed)
        labels.append(f"{hour:02d}")
    pos.append(d.day_hours)
    labels.append("24")
    return pos, labels


def bout_spans(d: DayData, minimum_min: float = 0.0) -> pl.DataFrame:
    """The day's bouts of at least ``minimum_min`` as spans clipped to the day, each once.

    A bout that crosses midnight may be stored on both days (or twice); here it is kept once
    and clipped to the day, and a bout with nothing left inside the day is dropped, so a label
    is never drawn without its bar.
    """
    return (
        d.bouts.filter(pl.col("duration_min") >= minimum_min)
        .unique(subset=["start_h", "duration_min"], keep="first", maintain_order=True)
        .with_columns(
            pl.col("start_h").clip(0.0, d.day_hours).alias("x0"),
            (pl.col("start_h") + pl.col("duration_min") / 60).clip(0.0, d.day_hours).alias("x1"),
        )
        .filter(pl.col("x1") - pl.col("x0") > 1e-6)
    )


def _place_labels(ax: Axes, spans: pl.DataFrame, lanes: int = 2) -> list[tuple[float, float, str]]:
    """Where to label the long bouts: (x centre, lane, text), longest first, never overlapping.

    A label goes in the first lane where it clears every label already there by a gap; a bout
    whose label fits in no lane, or with less than :data:`LABELLED_MIN` inside the day, stays
    unlabelled (the caption lists every long bout anyway).
    """
    placed: list[list[tuple[float, float]]] = [[] for _ in range(lanes)]
    out: list[tuple[float, float, str]] = []
    x_max = ax.get_xlim()[1]
    gap = label_width(ax, "0") * 0.5
    visible = spans.filter(pl.col("x1") - pl.col("x0") >= LABELLED_MIN / 60)
    for row in visible.sort("duration_min", descending=True).iter_rows(named=True):
        text = f"{row['duration_min']:.0f}′"
        width = label_width(ax, text)
        centre = float(np.clip((row["x0"] + row["x1"]) / 2, width / 2, x_max - width / 2))
        lo, hi = centre - width / 2 - gap, centre + width / 2 + gap
        for lane in range(lanes):
            if all(hi <= a or lo >= b for a, b in placed[lane]):
                placed[lane].append((lo, hi))
                out.append((centre, lane, text))
                break
    return out


def draw_timeline(ax: Axes, d: DayData, *, legend: bool = False) -> None:
    """The day's posture as coloured spans, long bouts underneath with their length, gaps hatched.

    Long-bout labels (minutes) are placed so they never overlap (:func:`_place_labels`); a bout
    crossing midnight is clipped to the day.
    """
    for posture, colour in POSTURE_COLOURS.items():
        sel = d.periods.filter(pl.col("posture") == posture)
        if sel.height:
            spans = [(a, b - a) for a, b in zip(sel["start_h"], sel["end_h"], strict=True)]
            ax.broken_barh(spans, (0.5, 0.5), facecolors=colour)
    for start, end in zip(d.gaps["start_h"], d.gaps["end_h"], strict=True):
        a, b = max(start, 0.0), min(end, d.day_hours)
        if b > a:
            ax.broken_barh([(a, b - a)], (0.5, 0.5), facecolors="white", edgecolors=GAP_EDGE,
                           hatch=GAP_HATCH, linewidth=0.6)
    long = bout_spans(d, LONG_BOUT_MIN)
    if long.height:
        ax.broken_barh(list(zip(long["x0"], long["x1"] - long["x0"], strict=True)),
                       (0.3, 0.14), facecolors=LONG_BOUT_COLOUR)
    ax.set_xlim(0, d.day_hours)
    ax.set_ylim(-0.42, 1.02)
    ax.set_yticks([])
    pos, labels = _clock_ticks(d)
    ax.set_xticks(pos, labels)
    ax.set_xlabel("local time (h)", labelpad=6)
    for side in ("left", "top", "right"):
        ax.spines[side].set_visible(False)
    if long.height:
        settle_layout(ax)  # the final axes width, for the label widths
        for centre, lane, text in _place_labels(ax, long):
            ax.text(centre, 0.24 - lane * 0.3, text, ha="center", va="top",
                    color=LONG_BOUT_COLOUR)
    if legend:
        _figure_legend(ax, timeline_legend(d), ncol=4)


def _figure_legend(ax: Axes, items: list[Swatch], ncol: int) -> None:
    """A legend inside the figure, for the printed page."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    handles: list[Patch | Line2D] = []
    for label, css, kind in items:
        if kind == "line":
            colour, style = css.split()
            handles.append(Line2D([], [], color=colour, label=label,
                                  ls={"dashed": "--", "dotted": ":"}.get(style, "-")))
        elif css == GAP_CSS:
            handles.append(Patch(facecolor="white", edgecolor=GAP_EDGE, hatch=GAP_HATCH,
                                 label=label))
        elif css == SHORT_DAY_CSS:
            handles.append(Patch(facecolor="#dddddd", edgecolor="#777777", hatch=GAP_HATCH,
                                 label=label))
        else:
            handles.append(Patch(color=css, label=label))
    ax.legend(handles=handles, ncol=ncol, loc="upper center", bbox_to_anchor=(0.5, -0.35),
              frameon=False)


def timeline_legend(d: DayData) -> list[Swatch]:
    """The timeline's colour key: postures present, long bouts, data gaps."""
    present = set(d.periods["posture"].to_list())
    items: list[Swatch] = [
        (POSTURE_NAMES.get(p, p), c, "box") for p, c in POSTURE_COLOURS.items() if p in present
    ]
    if bout_spans(d, LONG_BOUT_MIN).height:
        items.append((f"sitting bout ≥ {LONG_BOUT_MIN:.0f} min (label: minutes)",
                      LONG_BOUT_COLOUR, "box"))
    if d.gaps.height:
        items.append(("data gap (nothing received)", GAP_CSS, "box"))
    return items


BOUT_CLASSES = ((0, 5, "<5"), (5, 10, "5-10"), (10, 20, "10-20"), (20, 30, "20-30"),
                (30, 60, "30-60"), (60, 24 * 60, "≥60"))


def draw_bouts(ax: Axes, d: DayData) -> None:
    """Sitting minutes by bout length class, the number of bouts above each bar."""
    minutes = bout_spans(d)["duration_min"].to_numpy()
    edges = [lo for lo, _, _ in BOUT_CLASSES[1:]]
    cls = np.digitize(minutes, edges)
    totals = np.bincount(cls, weights=minutes, minlength=len(BOUT_CLASSES))
    counts = np.bincount(cls, minlength=len(BOUT_CLASSES))
    colours = [LONG_BOUT_COLOUR if lo >= LONG_BOUT_MIN else POSTURE_COLOURS["sitting"]
               for lo, _, _ in BOUT_CLASSES]
    bars = ax.bar([name for _, _, name in BOUT_CLASSES], totals, color=colours)
    for bar, n in zip(bars, counts, strict=True):
        if n:
            ax.annotate(f"{n}×", (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                        ha="center", va="bottom", xytext=(0, 2), textcoords="offset points")
    ax.set_ylim(0, max(float(totals.max()) * 1.2, 10.0))
    ax.set_xlabel("bout length (min)")
    ax.set_ylabel("sitting (min)")


WEAR_PARTS = ("sitting", "lying", "standing", "moving")


def draw_wear(ax: Axes, d: DayData) -> None:
    """One bar of the wear time split into sitting, lying, standing and moving (hours).

    The parts are named with their hours in the colour key (:func:`wear_legend`), not inside
    the bar, where short parts would make labels collide.
    """
    s = d.summary or {}
    left = 0.0
    for name in WEAR_PARTS:
        hours = (s.get(f"{name}_min") or 0.0) / 60
        if hours > 0:
            ax.barh([0], [hours], left=left, color=POSTURE_COLOURS[name], height=0.6)
            left += hours
    ax.set_xlim(0, max(left, (s.get("wear_min") or 0.0) / 60, 1.0) * 1.02)
    ax.set_ylim(-0.5, 0.5)
    ax.set_yticks([])
    ax.set_xlabel("hours of wear")
    ax.spines["left"].set_visible(False)


def wear_legend(d: DayData) -> list[Swatch]:
    """The wear bar's key, each part with its hours."""
    s = d.summary or {}
    return [
        (f"{name} {(s.get(f'{name}_min') or 0.0) / 60:.1f} h", POSTURE_COLOURS[name], "box")
        for name in WEAR_PARTS
        if (s.get(f"{name}_min") or 0.0) > 0
    ]


def draw_recent(ax: Axes, d: DayData) -> None:
    """Sitting hours on the recent days; short-wear days hatched grey; baseline and goal lines."""
    r = d.recent.filter(pl.col("has_sitting_data"))
    xs = np.array([(x - d.day).days for x in r["local_date"].to_list()], dtype=float)
    hours = np.array([(v or 0.0) / 60 for v in r["sitting_min"].to_list()])
    valid = np.array(r["valid_day"].to_list(), dtype=bool)
    ax.bar(xs[valid], hours[valid], color=POSTURE_COLOURS["sitting"], width=0.8)
    ax.bar(xs[~valid], hours[~valid], color="#dddddd", edgecolor="#777777", hatch=GAP_HATCH,
           width=0.8, linewidth=0.6)
    today = xs == 0
    if today.any():  # today's bar framed in black
        ax.bar(xs[today], hours[today], width=0.8, fill=False, edgecolor="#000000",
               linewidth=1.6)
    base = d.baseline
    if base and base.get("sitting_min") is not None and base["days"] >= MIN_BASELINE_DAYS:
        ax.axhline(base["sitting_min"] / 60, color="#000000", ls="--", lw=1.2)
    goal = d.participant.get("goal_sitting_min")
    if goal:
        ax.axhline(goal / 60, color=GOAL_COLOUR, ls=":", lw=2)
    ax.set_xlim(-RECENT_DAYS + 0.4, 0.6)
    ax.set_ylim(0, max(float(hours.max()) if hours.size else 0.0, (goal or 0) / 60, 1.0) * 1.1)
    ticks = list(range(0, -RECENT_DAYS, -4))[::-1]
    ax.set_xticks(ticks, [(d.day + dt.timedelta(days=t)).strftime("%d %b") for t in ticks])
    ax.set_ylabel("sitting (h)")


def recent_legend(d: DayData) -> list[Swatch]:
    """The recent-days chart's key."""
    items: list[Swatch] = [("valid day", POSTURE_COLOURS["sitting"], "box")]
    if not all(d.recent.filter(pl.col("has_sitting_data"))["valid_day"].to_list()):
        items.append(("too little wear to count", SHORT_DAY_CSS, "box"))
    base = d.baseline
    if base and base.get("sitting_min") is not None and base["days"] >= MIN_BASELINE_DAYS:
        items.append(("baseline week", "#000000 dashed", "line"))
    if d.participant.get("goal_sitting_min"):
        items.append(("goal", f"{GOAL_COLOUR} dotted", "line"))
    return items


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
    top = 0.0
    for (_, muscle), sel in c.group_by(["channel", "muscle"], maintain_order=True):
        glute = str(muscle or "").startswith("glute")
        ax.plot(sel["x"].to_list(), sel[value].to_list(), marker="o" if glute else "s", ms=4,
                color=GLUTE_COLOUR if glute else REFERENCE_COLOUR, ls="-" if glute else "--")
        top = max(top, float(sel[value].max() or 0.0))  # type: ignore[arg-type]
    for start in list(offsets.values())[1:]:
        ax.axvline(start + 0.5, color="#999999", lw=0.8, ls="--")
    ax.set_ylim(0, top * 1.15 or 1.0)
    ax.set_xlabel("repetition" + (" (sessions in turn)" if len(offsets) > 1 else ""))
    ax.set_ylabel("peak (%MVC)" if use_mvc else "peak (µV)")


def activation_legend(d: DayData) -> list[Swatch]:
    """The repetition chart's key: one line per muscle."""
    items: list[Swatch] = []
    for muscle in d.contractions["muscle"].unique(maintain_order=True).to_list():
        glute = str(muscle or "").startswith("glute")
        colour = GLUTE_COLOUR if glute else REFERENCE_COLOUR
        items.append((str(muscle or "channel").replace("_", " "),
                      f"{colour} {'solid' if glute else 'dashed'}", "line"))
    return items


def legends(d: DayData) -> dict[str, list[Swatch]]:
    """Every figure's colour key, by figure."""
    return {"timeline": timeline_legend(d), "wear": wear_legend(d), "recent": recent_legend(d),
            "activation": activation_legend(d)}
