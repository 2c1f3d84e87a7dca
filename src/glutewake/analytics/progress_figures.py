"""The progress report's figures: weekly measures shaded by phase, pain, sitting vs activation.

Drawn onto a matplotlib axes for the page (inline SVG, :func:`glutewake.analytics.svg.
svg_figure`) and the printed page alike. Every quantity axis starts at zero (a fall from 9.6 to
7.7 bouts a day must look like the 20 % it is); colours are Okabe-Ito, phases are shaded and
labelled where the label fits; colour keys are HTML on the page.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

import numpy as np
import polars as pl

from glutewake.analytics.page import Swatch
from glutewake.analytics.relation import paired_weeks
from glutewake.analytics.svg import OKABE_ITO, label_width, settle_layout

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = [
    "PHASE_MARKERS",
    "PHASE_TINTS",
    "draw_pain",
    "draw_scatter",
    "draw_week",
    "pain_legend",
    "phase_legend",
]

PHASE_TINTS = {1: "#DCEBF7", 2: "#FBE8C4", 3: "#D3EFE4"}
PHASE_MARKERS = {1: (OKABE_ITO["blue"], "o"), 2: (OKABE_ITO["orange"], "s"),
                 3: (OKABE_ITO["bluish_green"], "^")}
PAIN_LINES = (("lower_back_pain", "lower back", OKABE_ITO["vermillion"], "-", "o"),
              ("hip_pain", "hip", OKABE_ITO["orange"], "--", "s"),
              ("knee_pain", "knee", OKABE_ITO["blue"], ":", "^"))
REFERENCE_STYLE = {"baseline": ("#000000", "--"), "goal": (OKABE_ITO["blue"], ":")}


def week_end(weekly: pl.DataFrame) -> dt.date:
    """The day after the last week shown."""
    last = weekly["week_start"].max() if weekly.height else None
    return (last if isinstance(last, dt.date) else dt.date.today()) + dt.timedelta(days=7)


def _date_axis(ax: Axes) -> None:
    import matplotlib.dates as mdates

    ax.xaxis.set_major_locator(mdates.AutoDateLocator(minticks=2, maxticks=4))
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%d %b"))


def phase_spans(ax: Axes, phases: pl.DataFrame, x_max: dt.date, x_min: dt.date) -> None:
    """Shade each phase behind a date axis; label it above the axes where the label fits."""
    import matplotlib.dates as mdates

    rows = phases.sort("start_date").to_dicts()
    spans = []
    for k, row in enumerate(rows):
        end = rows[k + 1]["start_date"] if k + 1 < len(rows) else x_max
        x0 = float(mdates.date2num(max(row["start_date"], x_min)))
        x1 = float(mdates.date2num(end))
        if x1 <= x0:
            continue
        ax.axvspan(x0, x1, color=PHASE_TINTS.get(int(row["phase"]), "#eeeeee"), lw=0, zorder=0)
        spans.append((x0, x1, int(row["phase"])))
    settle_layout(ax)  # the final axes width, for the label widths
    for x0, x1, phase in spans:
        for text in (f"phase {phase}", f"{phase}"):
            if label_width(ax, text) * 1.2 <= x1 - x0:
                ax.text((x0 + x1) / 2, 1.02, text, transform=ax.get_xaxis_transform(),
                        ha="center", va="bottom", color="#333333")
                break


def draw_week(ax: Axes, weekly: pl.DataFrame, phases: pl.DataFrame, column: str, ylabel: str,
              *, scale: float = 1.0, kind: str = "line", ref: dict[str, float] | None = None,
              colour: str = OKABE_ITO["blue"], y_max: float | None = None) -> None:
    """One weekly measure over time, from zero, shaded by phase, with reference lines."""
    import matplotlib.dates as mdates

    sel = weekly.filter(pl.col(column).is_not_null())
    xs = [float(mdates.date2num(w + dt.timedelta(days=3))) for w in sel["week_start"].to_list()]
    ys = sel[column].to_numpy().astype(float) * scale
    first = weekly["week_start"].min() if weekly.height else None
    x_min = first if isinstance(first, dt.date) else dt.date.today()
    ax.set_xlim(float(mdates.date2num(x_min)), float(mdates.date2num(week_end(weekly))))
    top = y_max or max([*ys.tolist(), *(ref or {}).values(), 1.0]) * 1.25
    ax.set_ylim(0, top)
    ax.set_ylabel(ylabel)
    _date_axis(ax)
    phase_spans(ax, phases, week_end(weekly), x_min)
    if kind == "bar":
        ax.bar(xs, ys, width=5, color=colour, zorder=2)
    else:
        ax.plot(xs, ys, marker="o", ms=5, color=colour, zorder=2)
    for name, value in (ref or {}).items():
        line_colour, style = REFERENCE_STYLE[name]
        ax.axhline(value, ls=style, color=line_colour, lw=1.5, zorder=1)


def reference_legend(ref: dict[str, float]) -> list[Swatch]:
    """The key of the reference lines of a weekly figure."""
    names = {"baseline": "baseline week", "goal": "goal"}
    return [(names[n], f"{REFERENCE_STYLE[n][0]} {'dashed' if n == 'baseline' else 'dotted'}",
             "line") for n in ref]


def phase_legend(phases: pl.DataFrame, names: dict[int, str]) -> list[Swatch]:
    """The key of the phase shading."""
    return [(f"phase {p}: {names.get(p, '')}", PHASE_TINTS.get(p, "#eeeeee"), "box")
            for p in sorted({int(v) for v in phases["phase"].to_list()})]


def draw_pain(ax: Axes, weekly: pl.DataFrame, phases: pl.DataFrame) -> None:
    """Weekly mean pain (0-10) per site, shaded by phase."""
    import matplotlib.dates as mdates

    first = weekly["week_start"].min() if weekly.height else None
    x_min = first if isinstance(first, dt.date) else dt.date.today()
    ax.set_xlim(float(mdates.date2num(x_min)), float(mdates.date2num(week_end(weekly))))
    ax.set_ylim(0, 10)
    ax.set_ylabel("pain (0-10)")
    _date_axis(ax)
    phase_spans(ax, phases, week_end(weekly), x_min)
    for column, _, colour, style, marker in PAIN_LINES:
        sel = weekly.filter(pl.col(column).is_not_null())
        ax.plot([float(mdates.date2num(w + dt.timedelta(days=3)))
                 for w in sel["week_start"].to_list()],
                sel[column].to_list(), marker=marker, ms=4, color=colour, ls=style, zorder=2)


def pain_legend() -> list[Swatch]:
    """The key of the pain figure."""
    styles = {"-": "solid", "--": "dashed", ":": "dotted"}
    return [(label, f"{colour} {styles[style]}", "line")
            for _, label, colour, style, _ in PAIN_LINES]


def draw_scatter(ax: Axes, weekly: pl.DataFrame, *, fit_lines: bool) -> None:
    """Weekly sitting against weekly activation quality, one dot per participant-week.

    Axes from zero; a least-squares line per participant only when ``fit_lines`` (the relation
    can be stated).
    """
    paired = paired_weeks(weekly)
    many = paired["participant_id"].n_unique() > 1
    for _, sel in paired.group_by("participant_id", maintain_order=True):
        x = sel["sitting_h"].to_numpy()
        y = sel["activation_quality"].to_numpy()
        if many:
            ax.scatter(x, y, s=14, alpha=0.6, color="#555555", edgecolors="none")
        else:
            for phase in sorted({int(p or 0) for p in sel["phase"].to_list()}):
                mask = np.array([int(p or 0) == phase for p in sel["phase"].to_list()])
                colour, marker = PHASE_MARKERS.get(phase, ("#999999", "o"))
                ax.scatter(x[mask], y[mask], s=36, color=colour, marker=marker,
                           edgecolors="#000000", linewidths=0.5, zorder=3)
        if fit_lines and len(x) >= 3 and np.ptp(x) > 0:
            k, b = np.polyfit(x, y, 1)
            xs = np.array([x.min(), x.max()])
            ax.plot(xs, k * xs + b, lw=1, color="#000000", alpha=0.7 if many else 1.0)
    x_top = float(paired["sitting_h"].max() or 1.0)  # type: ignore[arg-type]
    ax.set_xlim(0, max(x_top * 1.1, 1.0))
    ax.set_ylim(0, 100)
    ax.set_xlabel("sitting (h/day, weekly mean)")
    ax.set_ylabel("activation quality")


def scatter_legend(weekly: pl.DataFrame) -> list[Swatch]:
    """The scatter's key: phases of one participant's weeks."""
    paired = paired_weeks(weekly)
    if paired["participant_id"].n_unique() > 1:
        return [("a participant-week", "#555555", "box")]
    phases = sorted({int(p or 0) for p in paired["phase"].to_list()})
    return [(f"phase {p} week", PHASE_MARKERS.get(p, ("#999999", "o"))[0], "box")
            for p in phases]
