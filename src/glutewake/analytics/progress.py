"""Progression per week and per phase: trends, how sitting and activation relate, readiness.

Reads the ``weekly_progress``, ``phase_progress`` and ``daily_summary`` views and the
``exercise_sessions`` table (read-only) and answers the project's question: as a person moves
through the three rehabilitation phases, do sitting less and better glute activation go
together, and how fast are they recovering?

* **Relation across weeks**: within one participant, the Pearson correlation of weekly sitting
  with weekly activation quality (scipy); within participants of a cohort, the repeated-measures
  correlation (``pingouin.rm_corr``: one common slope, an intercept per participant); across
  participants, a linear mixed model (``statsmodels`` ``MixedLM``: activation quality on the
  participant's mean sitting and its weekly deviation, random intercept per participant). Every
  result carries the weeks and participants behind it.
* **Readiness** for the next phase from the criteria in the domain notes, each judged in words
  (met, not met, or not enough data to judge) with the thresholds in :class:`ReadinessCriteria`.
* **Projected recovery horizon** within the 6-week to 6-month range, from adherence, sedentary
  reduction and symptom trend: an *estimate*, shown with the factors that drive it, never a
  diagnosis.
"""

from __future__ import annotations

import datetime as dt
import html
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import polars as pl

from glutewake.analytics import api
from glutewake.analytics.report import (
    ReportError,
    figure_html,
    num,
    page_foot,
    page_head,
    pyplot,
)
from glutewake.store.ids import participant_component
from glutewake.store.private import private_tmp

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from glutewake.store.datadir import DataDir

__all__ = [
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
    "within_participants",
    "write_progress_report",
]

PHASE_NAMES = {
    1: "activation and isolation",
    2: "strengthening and loading",
    3: "functional integration",
}
PHASE_COLOURS = {1: "#e8f1fa", 2: "#fdf1dc", 3: "#e6f4ea"}
PHASE_MARKERS = {1: "#4c78a8", 2: "#f58518", 3: "#54a24b"}
#: the recovery range from the domain notes, in weeks from the start of phase 1
HORIZON_MIN_WEEKS = 6.0
HORIZON_MAX_WEEKS = 26.0


# --------------------------------------------------------------------------- data


@dataclass(frozen=True)
class ProgressData:
    """What progression reports read: one participant, or a cohort (``participant is None``)."""

    participant: str | None
    participants: pl.DataFrame
    weekly: pl.DataFrame
    phases: pl.DataFrame
    phase_progress: pl.DataFrame
    daily: pl.DataFrame
    sessions: pl.DataFrame
    baseline: pl.DataFrame


def load_progress(
    data_dir: DataDir,
    participant: str | None = None,
    start: dt.date | None = None,
    end: dt.date | None = None,
) -> ProgressData:
    """Read progression data for one participant (or the cohort) from the catalog.

    Raises
    ------
    glutewake.analytics.api.UnknownParticipantError
        For a participant id that is not in the catalog.
    """
    with api.connection(data_dir) as con:
        return ProgressData(
            participant=participant,
            participants=api.participants(con, participant),
            weekly=api.weekly_progress(con, participant, start, end),
            # phases that start after the period do not exist yet for it
            phases=api.phases(con, participant).filter(
                pl.lit(end is None) | (pl.col("start_date") <= pl.lit(end, dtype=pl.Date))
            ),
            phase_progress=api.phase_progress(con, participant, None, end),
            daily=api.daily_summary(con, participant, start, end),
            sessions=api.exercise_sessions(con, participant, start, end),
            baseline=api.baseline_sitting(con, participant),
        )


# --------------------------------------------------------------------------- relation


@dataclass(frozen=True)
class Relation:
    """How weekly sitting and weekly activation quality go together.

    ``estimate`` is a correlation (``r``) or, for the mixed model, the change in activation
    quality (points) per hour/day more sitting; ``None`` when it could not be estimated, and
    ``text`` then says why.
    """

    method: str
    estimate: float | None
    ci95: tuple[float, float] | None
    p_value: float | None
    n_weeks: int
    n_participants: int
    text: str
    extra: dict[str, float] = field(default_factory=dict)


def _paired_weeks(weekly: pl.DataFrame) -> pl.DataFrame:
    """Weeks with both a sitting mean (valid days) and an activation quality mean."""
    return weekly.filter(
        pl.col("sitting_min").is_not_null()
        & pl.col("activation_quality").is_not_null()
        & (pl.col("valid_days") > 0)
        & (pl.col("scored_sessions") > 0)
    ).with_columns((pl.col("sitting_min") / 60.0).alias("sitting_h"))


def _direction(r: float) -> str:
    if abs(r) < 0.1:
        return "hardly related"
    strength = "strongly" if abs(r) >= 0.5 else "moderately" if abs(r) >= 0.3 else "weakly"
    way = "less sitting went with better activation" if r < 0 else (
        "more sitting went with better activation"
    )
    return f"{strength} related: {way}"


def within_participants(weekly: pl.DataFrame, *, min_weeks: int = 3) -> Relation:
    """Correlation of weekly sitting with weekly activation quality within participants.

    One participant: Pearson's r across their weeks. Several (at least 3 with two or more paired
    weeks each): the repeated-measures correlation (``pingouin.rm_corr``), which removes the
    differences between participants and keeps the common within-person association.

    Parameters
    ----------
    weekly : polars.DataFrame
        Rows of the ``weekly_progress`` view.
    min_weeks : int
        Paired weeks needed for one participant's correlation.
    """
    if weekly["participant_id"].n_unique() <= 1:
        return _one_participant(_paired_weeks(weekly), min_weeks)
    paired = _paired_weeks(weekly)
    counts = paired.group_by("participant_id").len()
    usable = counts.filter(pl.col("len") >= 2)["participant_id"].to_list()
    paired = paired.filter(pl.col("participant_id").is_in(usable))
    n_weeks, n_people = paired.height, len(usable)
    if n_people >= 3:
        import pingouin

        frame = paired.select("participant_id", "sitting_h", "activation_quality").to_pandas()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pandas/pingouin deprecation chatter
            res = pingouin.rm_corr(
                data=frame, x="sitting_h", y="activation_quality", subject="participant_id"
            )
        r = float(res["r"].iloc[0])
        lo, hi = (float(v) for v in res["CI95"].iloc[0])
        p = float(res["pval"].iloc[0])
        return Relation(
            method="repeated-measures correlation (pingouin.rm_corr)",
            estimate=r,
            ci95=(lo, hi),
            p_value=p,
            n_weeks=n_weeks,
            n_participants=n_people,
            text=(
                f"Within participants, weekly sitting and activation quality were "
                f"{_direction(r)} (r = {r:.2f}, 95% CI {lo:.2f} to {hi:.2f}, p = {p:.3g}; "
                f"{n_weeks} weeks from {n_people} participants)."
            ),
        )
    return Relation(
        method="repeated-measures correlation (pingouin.rm_corr)",
        estimate=None,
        ci95=None,
        p_value=None,
        n_weeks=n_weeks,
        n_participants=n_people,
        text=(
            f"{n_people} participant(s) have two or more weeks with both valid sitting days and "
            "scored exercise sessions: the repeated-measures correlation needs at least 3."
        ),
    )


def _one_participant(one: pl.DataFrame, min_weeks: int) -> Relation:
    """Pearson's r across one participant's paired weeks."""
    method = "Pearson correlation across weeks"
    if one.height < max(min_weeks, 3) or one["sitting_h"].std() == 0 or (
        one["activation_quality"].std() == 0
    ):
        return Relation(
            method=method,
            estimate=None,
            ci95=None,
            p_value=None,
            n_weeks=one.height,
            n_participants=1 if one.height else 0,
            text=(
                f"Only {one.height} week(s) with both valid sitting days and scored exercise "
                f"sessions: at least {max(min_weeks, 3)} (that differ) are needed to relate "
                "sitting to activation."
            ),
        )
    from scipy import stats

    res = stats.pearsonr(one["sitting_h"].to_numpy(), one["activation_quality"].to_numpy())
    r, p = float(res.statistic), float(res.pvalue)
    ci = res.confidence_interval(0.95)
    return Relation(
        method=method,
        estimate=r,
        ci95=(float(ci.low), float(ci.high)),
        p_value=p,
        n_weeks=one.height,
        n_participants=1,
        text=(
            f"Across this participant's weeks, sitting and activation quality were "
            f"{_direction(r)} (r = {r:.2f}, 95% CI {ci.low:.2f} to {ci.high:.2f}, "
            f"p = {p:.3g}; {one.height} weeks). A correlation is not a cause."
        ),
    )


def across_participants(weekly: pl.DataFrame, *, min_participants: int = 5) -> Relation:
    """Mixed model of weekly activation quality on sitting, across participants.

    ``activation_quality ~ sitting_between + sitting_within + week`` with a random intercept
    per participant (statsmodels ``MixedLM``, REML): ``sitting_between`` is the participant's
    mean sitting (h/day, centred on the cohort), ``sitting_within`` the week's deviation from
    it, ``week`` the week number. ``estimate`` is the between-participant slope: points of
    activation quality per hour/day more sitting; the within slope is in ``extra``.
    """
    paired = _paired_weeks(weekly)
    counts = paired.group_by("participant_id").len().filter(pl.col("len") >= 2)
    paired = paired.filter(pl.col("participant_id").is_in(counts["participant_id"].to_list()))
    n_people, n_weeks = counts.height, paired.height
    method = "linear mixed model (statsmodels MixedLM, random intercept per participant)"
    if n_people < min_participants:
        return Relation(
            method=method,
            estimate=None,
            ci95=None,
            p_value=None,
            n_weeks=n_weeks,
            n_participants=n_people,
            text=(
                f"{n_people} participant(s) with two or more paired weeks: the model across "
                f"participants needs at least {min_participants}."
            ),
        )
    import statsmodels.formula.api as smf

    frame = paired.with_columns(
        pl.col("sitting_h").mean().over("participant_id").alias("person_mean")
    ).with_columns(
        (pl.col("person_mean") - pl.col("person_mean").mean()).alias("sitting_between"),
        (pl.col("sitting_h") - pl.col("person_mean")).alias("sitting_within"),
        pl.col("week_index").cast(pl.Float64).alias("week"),
    ).select(
        "participant_id", "activation_quality", "sitting_between", "sitting_within", "week"
    ).to_pandas()
    converged = True
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = smf.mixedlm(
            "activation_quality ~ sitting_between + sitting_within + week",
            frame,
            groups=frame["participant_id"],
        )
        fit = model.fit(reml=True)
    if any("converge" in str(w.message).lower() for w in caught) or not fit.converged:
        converged = False
    params, ci, pvals = fit.params, fit.conf_int(), fit.pvalues
    between = float(params["sitting_between"])
    within = float(params["sitting_within"])
    lo, hi = (float(v) for v in ci.loc["sitting_between"])
    p = float(pvals["sitting_between"])
    note = "" if converged else " The model fit did not fully converge: read it with care."
    return Relation(
        method=method,
        estimate=between,
        ci95=(lo, hi),
        p_value=p,
        n_weeks=n_weeks,
        n_participants=n_people,
        text=(
            f"Across participants, each hour per day more sitting went with {between:+.1f} "
            f"points of activation quality (95% CI {lo:+.1f} to {hi:+.1f}, p = {p:.3g}); "
            f"within a participant, a week with an hour more sitting than their usual went "
            f"with {within:+.1f} points (p = {float(pvals['sitting_within']):.3g}). "
            f"Adjusted for week number; {n_weeks} weeks from {n_people} participants.{note}"
        ),
        extra={
            "within_slope": within,
            "within_p": float(pvals["sitting_within"]),
            "week_slope": float(params["week"]),
            "converged": float(converged),
        },
    )


# --------------------------------------------------------------------------- readiness


@dataclass(frozen=True)
class ReadinessCriteria:
    """Thresholds that turn the domain's phase criteria into checks (documented defaults).

    Attributes
    ----------
    window_days : int
        Judge on the sessions and days of the last ``window_days`` in the current phase.
    min_sessions : int
        Sessions in the window needed to judge at all.
    fired_share_min : float
        Phase 1 and 3: glutes fire on "most repetitions" (share of repetitions).
    firing_order_max_ms : float
        Phase 1 and 2: glute onset not later than the hamstring's (median, ms; 0 = same time).
    peak_cv_max : float
        Phase 1: "stable amplitude rep to rep" (coefficient of variation of glute peaks).
    min_weeks_trend : int
        Phase 2: weeks with a %MVC value behind the week-on-week trend.
    pct_mvc_slope_min : float
        Phase 2: %MVC must rise at least this much per week.
    glute_hamstring_ratio_min : float
        Phase 2: the glutes drive the movement (glute / hamstring amplitude ratio).
    sitting_reduction_min : float
        Phase 3: sitting at least this share below the baseline week (or at the goal).
    pain_max : float
        Phase 3: mean pain (0-10, over the rated days and sites) at most this.
    min_rated_days : int
        Phase 3: rated days needed to judge symptoms.
    """

    window_days: int = 14
    min_sessions: int = 6
    fired_share_min: float = 0.8
    firing_order_max_ms: float = 0.0
    peak_cv_max: float = 0.25
    min_weeks_trend: int = 3
    pct_mvc_slope_min: float = 0.5
    glute_hamstring_ratio_min: float = 1.0
    sitting_reduction_min: float = 0.10
    pain_max: float = 3.0
    min_rated_days: int = 4


@dataclass(frozen=True)
class Criterion:
    """One readiness check: ``met`` is True, False, or None (not enough data to judge)."""

    name: str
    met: bool | None
    detail: str


@dataclass(frozen=True)
class Readiness:
    """Readiness for the next step, with each criterion and a summary in words."""

    phase: int | None
    next_step: str
    ready: bool | None
    criteria: tuple[Criterion, ...]
    summary: str
    sessions: int
    days: int


def _mean(frame: pl.DataFrame, column: str) -> float | None:
    if frame.height == 0 or column not in frame.columns:
        return None
    value = frame[column].drop_nulls().drop_nans().mean()
    return None if value is None else float(value)  # type: ignore[arg-type]


def _median(frame: pl.DataFrame, column: str) -> float | None:
    if frame.height == 0:
        return None
    value = frame[column].drop_nulls().drop_nans().median()
    return None if value is None else float(value)  # type: ignore[arg-type]


def _fired(sessions: pl.DataFrame, c: ReadinessCriteria, what: str) -> Criterion:
    share = _mean(sessions, "glute_fired_share")
    if share is None:
        return Criterion(what, None, "No repetition-level glute firing was measured.")
    ok = share >= c.fired_share_min
    return Criterion(
        what,
        ok,
        f"The glutes fired on {share * 100:.0f}% of repetitions (needed: at least "
        f"{c.fired_share_min * 100:.0f}%).",
    )


def _order(sessions: pl.DataFrame, c: ReadinessCriteria, what: str) -> Criterion:
    order = _median(sessions, "firing_order_ms")
    if order is None:
        return Criterion(what, None, "Firing order needs a hamstring (or lower-back) channel; "
                                     "none was recorded.")
    ok = order <= c.firing_order_max_ms
    when = f"{abs(order):.0f} ms before" if order < 0 else (
        "at the same time as" if order == 0 else f"{order:.0f} ms after"
    )
    return Criterion(what, ok, f"Glute onset came {when} the hamstrings (median over sessions; "
                               f"needed: not later than {c.firing_order_max_ms:.0f} ms).")


def assess_readiness(
    data: ProgressData,
    participant: str,
    criteria: ReadinessCriteria | None = None,
) -> Readiness:
    """Judge readiness for the next phase from the domain notes' criteria, in words.

    Phase 1 -> 2: glutes fire reliably in isolation (fired on most repetitions, onset not later
    than the hamstring's, stable amplitude). Phase 2 -> 3: %MVC rises week on week while form
    holds (glute/hamstring ratio, firing order). Phase 3 -> maintenance: firing automatic in
    dynamic tasks, sitting stays below baseline, symptoms low.
    """
    c = criteria or ReadinessCriteria()
    phases = data.phases.filter(pl.col("participant_id") == participant).sort("start_date")
    daily = data.daily.filter(pl.col("participant_id") == participant)
    if phases.height == 0:
        return Readiness(None, "start phase 1", None, (), (
            "No rehabilitation phase is recorded for this participant, so readiness cannot be "
            "judged (record one with 'glutewake phase set')."), 0, 0)
    current = phases.row(-1, named=True)
    phase = int(current["phase"])
    last_day = daily["local_date"].max() if daily.height else None
    end = last_day if isinstance(last_day, dt.date) else current["start_date"]
    window_start = max(current["start_date"], end - dt.timedelta(days=c.window_days - 1))
    sessions = data.sessions.filter(
        (pl.col("participant_id") == participant)
        & (pl.col("local_date") >= window_start)
        & (pl.col("local_date") <= end)
    )
    days = daily.filter((pl.col("local_date") >= window_start) & (pl.col("local_date") <= end))
    next_step = {1: "move to phase 2", 2: "move to phase 3", 3: "finish the programme and "
                 "maintain"}[phase]
    window = f"{window_start:%d %b} to {end:%d %b}"
    checks: list[Criterion] = []
    if sessions.height < c.min_sessions and phase in (1, 2, 3):
        enough = Criterion(
            "enough sessions to judge",
            None,
            f"Only {sessions.height} exercise session(s) from {window}; at least "
            f"{c.min_sessions} are needed to judge activation.",
        )
        checks.append(enough)
    if phase == 1:
        if sessions.height >= c.min_sessions:
            checks.append(_fired(sessions, c, "glutes fire on most repetitions"))
            checks.append(_order(sessions, c, "glutes fire no later than the hamstrings"))
            cv = _mean(sessions, "peak_cv")
            checks.append(
                Criterion("stable amplitude rep to rep", None,
                          "Rep-to-rep variation of the glute peak was not measured.")
                if cv is None
                else Criterion(
                    "stable amplitude rep to rep",
                    cv <= c.peak_cv_max,
                    f"The glute peak varied by {cv * 100:.0f}% from repetition to repetition "
                    f"(needed: at most {c.peak_cv_max * 100:.0f}%).",
                )
            )
    elif phase == 2:
        weeks = data.weekly.filter(
            (pl.col("participant_id") == participant)
            & (pl.col("week_start") >= current["start_date"] - dt.timedelta(days=6))
            & pl.col("glute_peak_pct_mvc").is_not_null()
        )
        if weeks.height < c.min_weeks_trend:
            checks.append(Criterion(
                "activation (%MVC) rises week on week", None,
                f"{weeks.height} week(s) in phase 2 with a %MVC value; {c.min_weeks_trend} are "
                "needed for a trend (an MVC reference trial is needed for %MVC)."))
        else:
            x = weeks["week_index"].to_numpy().astype(float)
            slope = float(np.polyfit(x, weeks["glute_peak_pct_mvc"].to_numpy(), 1)[0])
            checks.append(Criterion(
                "activation (%MVC) rises week on week",
                slope >= c.pct_mvc_slope_min,
                f"The glute peak changed by {slope:+.1f} %MVC per week over {weeks.height} "
                f"weeks (needed: at least +{c.pct_mvc_slope_min:g})."))
        if sessions.height >= c.min_sessions:
            ratio = _mean(sessions, "glute_hamstring_ratio")
            checks.append(
                Criterion("the glutes drive the movement", None,
                          "No glute/hamstring amplitude ratio was measured.")
                if ratio is None
                else Criterion(
                    "the glutes drive the movement",
                    ratio >= c.glute_hamstring_ratio_min,
                    f"Glute amplitude was {ratio:.2f}x the hamstring's (needed: at least "
                    f"{c.glute_hamstring_ratio_min:g}x).",
                )
            )
            checks.append(_order(sessions, c, "form holds: glutes fire first"))
    else:
        if sessions.height >= c.min_sessions:
            checks.append(_fired(sessions, c, "glute firing automatic in dynamic tasks"))
        checks.append(_sitting_check(data, participant, days, c))
        checks.append(_pain_check(days, c))
    met = [k.met for k in checks]
    if any(m is False for m in met):
        ready: bool | None = False
        missing = [k.name for k in checks if k.met is False]
        summary = (f"Not yet ready to {next_step}: {'; '.join(missing)} "
                   f"{'is' if len(missing) == 1 else 'are'} not met yet ({window}).")
    elif any(m is None for m in met) or not checks:
        ready = None
        summary = (f"Cannot judge yet whether to {next_step}: there is not enough data from "
                   f"{window}.")
    else:
        ready = True
        summary = f"Ready to {next_step}: every criterion is met ({window})."
    return Readiness(phase, next_step, ready, tuple(checks), summary, sessions.height,
                     days.height)


def _baseline_sitting(data: ProgressData, participant: str) -> float | None:
    """Mean sitting (min/day) of the participant's baseline week's valid days, if any."""
    return _mean(data.baseline.filter(pl.col("participant_id") == participant),
                 "baseline_sitting_min")


def _sitting_check(
    data: ProgressData, participant: str, days: pl.DataFrame, c: ReadinessCriteria
) -> Criterion:
    name = "sedentary habits stay reduced"
    valid = days.filter(pl.col("valid_day"))
    now = _mean(valid, "sitting_min")
    if now is None:
        return Criterion(name, None, "No valid sitting days in the window.")
    base = _baseline_sitting(data, participant)
    part = data.participants.filter(pl.col("participant_id") == participant)
    goal = part["goal_sitting_min"][0] if part.height else None
    if base is None and goal is None:
        return Criterion(name, None, "Neither a baseline week nor a sitting goal is recorded.")
    parts: list[str] = []
    ok = False
    if base is not None:
        drop = 1.0 - now / base
        ok = drop >= c.sitting_reduction_min
        parts.append(f"sitting {now / 60:.1f} h/day over {valid.height} valid days, "
                     f"{abs(drop) * 100:.0f}% {'below' if drop >= 0 else 'above'} the baseline "
                     f"week's {base / 60:.1f} h (needed: at least "
                     f"{c.sitting_reduction_min * 100:.0f}% below)")
    if goal is not None:
        ok = ok or now <= goal
        parts.append(f"goal {goal / 60:.1f} h/day {'met' if now <= goal else 'not met'}")
    return Criterion(name, ok, "; ".join(parts).capitalize() + ".")


def _pain_check(days: pl.DataFrame, c: ReadinessCriteria) -> Criterion:
    name = "symptoms low"
    rated = days.filter(
        pl.any_horizontal(pl.col("lower_back_pain", "hip_pain", "knee_pain").is_not_null())
    )
    if rated.height < c.min_rated_days:
        return Criterion(name, None, f"Pain was rated on {rated.height} day(s) in the window; "
                                     f"{c.min_rated_days} are needed.")
    pain = float(
        rated.select(pl.mean_horizontal("lower_back_pain", "hip_pain", "knee_pain"))
        .to_series()
        .mean()  # type: ignore[arg-type]
    )
    return Criterion(name, pain <= c.pain_max,
                     f"Mean pain {pain:.1f}/10 over {rated.height} rated days (needed: at most "
                     f"{c.pain_max:g}).")


# --------------------------------------------------------------------------- horizon


@dataclass(frozen=True)
class HorizonFactor:
    """One driver of the projected horizon: its value in words and which way it pushes."""

    name: str
    value: str
    score: float
    effect: Literal["sooner", "later", "neither"]


@dataclass(frozen=True)
class Horizon:
    """Projected recovery horizon (weeks from the start of phase 1), flagged as an estimate."""

    available: bool
    weeks_total: float | None
    weeks_low: float | None
    weeks_high: float | None
    weeks_elapsed: float | None
    factors: tuple[HorizonFactor, ...]
    text: str


def _score_effect(score: float) -> Literal["sooner", "later", "neither"]:
    return "sooner" if score >= 0.67 else "later" if score <= 0.33 else "neither"


def project_horizon(
    data: ProgressData,
    participant: str,
    *,
    target_days_per_week: float = 5.0,
    target_sitting_reduction: float = 0.20,
    recent_weeks: int = 4,
    min_days: int = 14,
) -> Horizon:
    """Project when recovery may be reached, within the domain's 6-week to 6-month range.

    The model is deliberately simple and shown in full: three factor scores in [0, 1] -
    adherence (exercise days per week over the last ``recent_weeks`` weeks against
    ``target_days_per_week``), sedentary reduction (sitting below the baseline week against
    ``target_sitting_reduction``), symptom trend (pain slope per week; -0.5 scores 1, +0.25
    scores 0) - are averaged, and the horizon runs from 26 weeks (score 0) to 6 weeks
    (score 1) after the start of phase 1, with a +/-3 week band. It needs at least two weeks
    and ``min_days`` days with data since phase 1 began, and two of the three factors.
    """
    flag = "This is an estimate from the data so far, not a diagnosis or a promise."
    phases = data.phases.filter(pl.col("participant_id") == participant).sort("start_date")
    weekly = data.weekly.filter(pl.col("participant_id") == participant).sort("week_start")
    daily = data.daily.filter(pl.col("participant_id") == participant)
    if phases.height == 0:
        return Horizon(False, None, None, None, None, (), (
            "No projected recovery horizon: no rehabilitation phase is recorded, so there is no "
            "start to count from."))
    start = phases["start_date"].min()
    assert isinstance(start, dt.date)
    last = daily["local_date"].max() if daily.height else None
    if not isinstance(last, dt.date) or last < start:
        return Horizon(False, None, None, None, 0.0, (), (
            "No projected recovery horizon yet: there is no data since phase 1 began."))
    elapsed = ((last - start).days + 1) / 7.0
    if elapsed < 2.0:
        return Horizon(False, None, None, None, elapsed, (), (
            f"No projected recovery horizon yet: {elapsed:.1f} week(s) since phase 1 began; at "
            "least 2 are needed."))
    days_with_data = daily.filter(pl.col("local_date") >= start).height
    if days_with_data < min_days:
        return Horizon(False, None, None, None, elapsed, (), (
            f"No projected recovery horizon yet: {days_with_data} day(s) with data since phase 1 "
            f"began; at least {min_days} are needed."))
    recent = weekly.filter(
        pl.col("week_start") >= weekly["week_start"].max() - dt.timedelta(weeks=recent_weeks - 1)  # type: ignore[operator]
    ).filter(pl.col("week_start") >= start - dt.timedelta(days=6))
    factors: list[HorizonFactor] = []
    if recent.height:
        days_pw = float(recent["exercise_days"].mean())  # type: ignore[arg-type]
        s = min(days_pw / target_days_per_week, 1.0)
        factors.append(HorizonFactor(
            "exercise adherence",
            f"{days_pw:.1f} exercise days per week over the last {recent.height} week(s) "
            f"(target {target_days_per_week:g})", s, _score_effect(s)))
    base = _baseline_sitting(data, participant)
    now = _mean(daily.filter(pl.col("valid_day") & (pl.col("local_date") >= (
        last - dt.timedelta(weeks=recent_weeks)))), "sitting_min")
    if base is not None and now is not None and base > 0:
        drop = 1.0 - now / base
        s = float(np.clip(drop / target_sitting_reduction, 0.0, 1.0))
        factors.append(HorizonFactor(
            "sedentary reduction",
            f"sitting {abs(drop) * 100:.0f}% {'below' if drop >= 0 else 'above'} the baseline "
            f"week (target {target_sitting_reduction * 100:.0f}% below)", s, _score_effect(s)))
    pain = weekly.filter(pl.col("symptom_days") > 0).with_columns(
        pl.mean_horizontal("lower_back_pain", "hip_pain", "knee_pain").alias("pain")
    ).filter(pl.col("pain").is_not_null())
    if pain.height >= 3:
        slope = float(np.polyfit(pain["week_index"].to_numpy().astype(float),
                                 pain["pain"].to_numpy(), 1)[0])
        s = float(np.clip((0.25 - slope) / 0.75, 0.0, 1.0))
        word = "easing" if slope < 0 else "rising" if slope > 0 else "flat"
        factors.append(HorizonFactor(
            "symptom trend", f"pain {word} by {abs(slope):.2f} points per week over "
            f"{pain.height} weeks", s, _score_effect(s)))
    if len(factors) < 2:
        return Horizon(False, None, None, None, elapsed, tuple(factors), (
            "No projected recovery horizon yet: it needs at least two of adherence, sedentary "
            "reduction (a baseline week) and symptom trend (3 weeks of pain ratings)."))
    score = float(np.mean([f.score for f in factors]))
    total = HORIZON_MAX_WEEKS - (HORIZON_MAX_WEEKS - HORIZON_MIN_WEEKS) * score
    low, high = max(HORIZON_MIN_WEEKS, total - 3), min(HORIZON_MAX_WEEKS, total + 3)
    remaining = total - elapsed
    when = (f"about {remaining:.0f} more week(s)" if remaining >= 1 else
            "at or past the projected point: recovery can take 6 months or more, so the range "
            "is a guide, not a deadline")
    drivers = "; ".join(f"{f.name}: {f.value} — pushes it {f.effect}" if f.effect != "neither"
                        else f"{f.name}: {f.value}" for f in factors)
    text = (f"Projected recovery horizon: about {total:.0f} weeks from the start of phase 1 "
            f"(range {low:.0f}-{high:.0f} weeks), {when}; {elapsed:.1f} weeks have passed. "
            f"Driven by {drivers}. {flag}")
    return Horizon(True, total, low, high, elapsed, tuple(factors), text)


# --------------------------------------------------------------------------- figures


def _week_end(weekly: pl.DataFrame) -> dt.date:
    last = weekly["week_start"].max() if weekly.height else None
    return (last if isinstance(last, dt.date) else dt.date.today()) + dt.timedelta(days=7)


def _phase_spans(ax: Axes, phases: pl.DataFrame, x_max: dt.date) -> None:
    """Shade each phase period behind a date axis and label it."""
    import matplotlib.dates as mdates

    rows = phases.sort("start_date").to_dicts()
    for k, row in enumerate(rows):
        end = rows[k + 1]["start_date"] if k + 1 < len(rows) else x_max
        x0, x1 = float(mdates.date2num(row["start_date"])), float(mdates.date2num(end))
        ax.axvspan(x0, x1, color=PHASE_COLOURS.get(int(row["phase"]), "#eee"), lw=0, zorder=0)
        ax.text(x0, 1.0, f" phase {row['phase']}", transform=ax.get_xaxis_transform(),
                fontsize=7, va="top", color="#555")


def _week_plot(weekly: pl.DataFrame, phases: pl.DataFrame, column: str, ylabel: str,
               *, scale: float = 1.0, kind: str = "line", ref: dict[str, float] | None = None,
               colour: str = "#30638e") -> Any:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5, 2.4))
    sel = weekly.filter(pl.col(column).is_not_null())
    _phase_spans(ax, phases, _week_end(weekly))
    xs = [w + dt.timedelta(days=3) for w in sel["week_start"].to_list()]
    ys = (sel[column].to_numpy() * scale).tolist()
    if kind == "bar":
        ax.bar(xs, ys, width=5, color=colour, zorder=2)
    else:
        ax.plot(xs, ys, marker="o", ms=4, color=colour, zorder=2)
    for name, value in (ref or {}).items():
        ax.axhline(value, ls="--" if name == "baseline" else ":", color="#555", lw=1, label=name)
    if ref:
        ax.legend(fontsize=8, frameon=False, loc="lower left")
    ax.set_ylabel(ylabel, fontsize=9)
    ax.tick_params(labelsize=8)
    fig.autofmt_xdate(rotation=0, ha="center")
    import matplotlib.dates as mdates

    ax.xaxis.set_major_formatter(mdates.DateFormatter("%d %b"))
    ax.xaxis.set_major_locator(mdates.AutoDateLocator(maxticks=6))
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    return fig


def _pain_plot(weekly: pl.DataFrame, phases: pl.DataFrame) -> Any:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5, 2.4))
    _phase_spans(ax, phases, _week_end(weekly))
    for column, label, colour in (("lower_back_pain", "lower back", "#b42318"),
                                  ("hip_pain", "hip", "#edae49"), ("knee_pain", "knee", "#30638e")):
        sel = weekly.filter(pl.col(column).is_not_null())
        ax.plot([w + dt.timedelta(days=3) for w in sel["week_start"].to_list()],
                sel[column].to_list(), marker="o", ms=3, label=label, color=colour, zorder=2)
    ax.set_ylim(0, 10)
    ax.set_ylabel("pain (0-10)", fontsize=9)
    ax.legend(fontsize=8, frameon=False, ncol=3, loc="upper right")
    ax.tick_params(labelsize=8)
    import matplotlib.dates as mdates

    ax.xaxis.set_major_formatter(mdates.DateFormatter("%d %b"))
    ax.xaxis.set_major_locator(mdates.AutoDateLocator(maxticks=6))
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    return fig


def _scatter(weekly: pl.DataFrame) -> Any:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5, 3.0))
    paired = _paired_weeks(weekly)
    groups = paired.group_by("participant_id", maintain_order=True)
    many = paired["participant_id"].n_unique() > 1
    for _, sel in groups:
        x = sel["sitting_h"].to_numpy()
        y = sel["activation_quality"].to_numpy()
        colour = None if many else (
            [PHASE_MARKERS.get(int(p or 0), "#999") for p in sel["phase"].to_list()]
        )
        ax.scatter(x, y, s=14 if many else 30, alpha=0.7, c=colour,
                   edgecolors="#333" if not many else "none", linewidths=0.5)
        if len(x) >= 3 and np.ptp(x) > 0:
            k, b = np.polyfit(x, y, 1)
            xs = np.array([x.min(), x.max()])
            ax.plot(xs, k * xs + b, lw=0.8, alpha=0.6, color="#555" if not many else None)
    ax.set_xlabel("sitting (h/day, weekly mean of valid days)", fontsize=9)
    ax.set_ylabel("activation quality (0-100)", fontsize=9)
    ax.tick_params(labelsize=8)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    return fig


# --------------------------------------------------------------------------- page


def _counts(weekly: pl.DataFrame) -> tuple[int, int, int, int]:
    valid = int(weekly["valid_days"].sum()) if weekly.height else 0
    weeks_sit = weekly.filter(pl.col("valid_days") > 0).height
    sessions = int(weekly["exercise_sessions"].sum()) if weekly.height else 0
    weeks_act = weekly.filter(pl.col("scored_sessions") > 0).height
    return valid, weeks_sit, sessions, weeks_act


def _phase_table(pp: pl.DataFrame) -> list[str]:
    out = ["<div class='scroll'><table><tr><th>phase</th><th>from</th><th>days</th>"
           "<th>sessions /week</th><th>activation quality</th><th>sitting h/day</th>"
           "<th>bouts ≥30 min /day</th><th>pain</th></tr>"]
    notes: list[str] = []
    for r in pp.sort("start_date").iter_rows(named=True):
        pains = [v for v in (r["lower_back_pain"], r["hip_pain"], r["knee_pain"]) if v is not None]
        aq = r["activation_quality"]
        trend = r["activation_quality_slope_per_week"]
        aq_text = ("no sessions" if r["exercise_sessions"] == 0 else
                   f"{num(aq)} ({num(trend, '{:+.1f}')}/wk) from {r['scored_sessions']} sessions")
        out.append(
            f"<tr><td>{r['phase']}</td><td>{r['start_date']:%d %b %Y}</td>"
            f"<td>{r['days_in_phase']} ({r['valid_days']} valid)</td>"
            f"<td>{r['sessions_per_week']:.1f}</td><td>{aq_text}</td>"
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
    out += [f"<p class='note'>{html.escape(n)}</p>" for n in notes]
    return out


def _readiness_html(r: Readiness) -> list[str]:
    mark = {True: "<span class='good'>✓ met</span>", False: "<span class='bad'>✗ not met</span>",
            None: "<span>? cannot judge</span>"}
    out = [f"<p><b>{html.escape(r.summary)}</b></p><ul>"]
    for k in r.criteria:
        out.append(f"<li>{mark[k.met]} — {html.escape(k.name)}: {html.escape(k.detail)}</li>")
    out.append(f"</ul><p class='cap'>From {r.sessions} session(s) and {r.days} day(s) of data "
               "in the window; thresholds are configurable defaults (docs/reports.md).</p>")
    return out


def render_progress_html(
    data: ProgressData, criteria: ReadinessCriteria | None = None
) -> str:
    """The progression page (one participant, or the cohort) as self-contained HTML."""
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
    horizon = project_horizon(data, pid)
    out.append("<h2>Ready for the next phase?</h2>")
    out += _readiness_html(readiness)
    out.append("<h2>Recovery horizon (estimate)</h2>")
    out.append(f"<p class='note'>{html.escape(horizon.text)}</p>")
    valid, weeks_sit, sessions, weeks_act = _counts(weekly)
    base = _baseline_sitting(data, pid)
    goal = part.get("goal_sitting_min")
    ref = {k: v / 60 for k, v in (("baseline", base), ("goal", goal)) if v}
    out.append("<h2>Sitting</h2>")
    if valid:
        out.append(figure_html(_week_plot(weekly, phases, "sitting_min", "sitting (h/day)",
                                          scale=1 / 60, ref=ref, colour="#d1495b"),
                               "weekly sitting time"))
        out.append(f"<p class='cap'>Weekly mean of {valid} valid days over {weeks_sit} weeks; "
                   "shaded by phase.</p>")
        out.append(figure_html(_week_plot(weekly, phases, "bouts_30min",
                                          "bouts ≥30 min per day", colour="#7a1020"),
                               "prolonged sitting bouts per week"))
        out.append("<p class='cap'>Prolonged sitting: mean number of bouts of 30 min or more "
                   "per valid day.</p>")
    else:
        out.append("<p class='note'>No valid sitting days (enough thigh-sensor wear time) in "
                   "this period, so there are no sitting trends.</p>")
    out.append("<h2>Glute activation and adherence</h2>")
    if sessions == 0:
        out.append("<p class='note'>No exercise sessions (EMG) have been recorded in this "
                   "period, so activation quality, readiness by activation and its relation to "
                   "sitting cannot be shown.</p>")
    else:
        if weeks_act:
            out.append(figure_html(_week_plot(weekly, phases, "activation_quality",
                                              "activation quality", colour="#00798c"),
                                   "weekly activation quality"))
            scored = int(weekly["scored_sessions"].sum())
            out.append(f"<p class='cap'>Mean session quality (0-100) from {scored} scored "
                       f"sessions in {weeks_act} weeks.</p>")
        out.append(figure_html(_week_plot(weekly, phases, "exercise_days", "exercise days",
                                          kind="bar", colour="#30638e"),
                               "exercise days per week"))
        out.append(f"<p class='cap'>Adherence: days with at least one session per week "
                   f"({sessions} sessions in all).</p>")
    out.append("<h2>Sitting and activation together</h2>")
    relation = within_participants(weekly)
    if relation.estimate is not None:
        out.append(figure_html(_scatter(weekly), "weekly sitting versus activation quality"))
    out.append(f"<p>{html.escape(relation.text)}</p>")
    out.append("<h2>Symptoms</h2>")
    if int(weekly["symptom_days"].sum()):
        out.append(figure_html(_pain_plot(weekly, phases), "weekly pain ratings"))
        out.append(f"<p class='cap'>Weekly mean of {int(weekly['symptom_days'].sum())} rated "
                   "days.</p>")
    else:
        out.append("<p class='note'>No pain ratings logged in this period.</p>")
    out.append("<h2>By phase</h2>")
    if data.phase_progress.height:
        out += _phase_table(data.phase_progress)
    else:
        out.append("<p class='note'>No phase history recorded.</p>")
    out += page_foot(str(part["tz"]))
    return "".join(out)


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
        out.append(figure_html(_scatter(weekly), "weekly sitting versus activation quality"))
        out.append("<p class='cap'>One dot per participant-week; a line per participant.</p>")
    out.append(f"<p>{html.escape(within.text)}</p><p>{html.escape(across.text)}</p>")
    out.append("<h2>Participants</h2><div class='scroll'><table><tr><th>participant</th>"
               "<th>phase</th><th>weeks</th><th>sessions /week</th><th>quality (last 4 wk)</th>"
               "<th>sitting vs baseline</th><th>readiness</th></tr>")
    for pid in data.participants["participant_id"].to_list():
        w = weekly.filter(pl.col("participant_id") == pid)
        r = assess_readiness(data, pid, criteria)
        last4 = w.tail(4)
        sessions_pw = float(w["exercise_sessions"].mean()) if w.height else None  # type: ignore[arg-type]
        change = _mean(last4, "sitting_vs_baseline_min")
        word = {True: "ready", False: "not yet", None: "cannot judge"}[r.ready]
        out.append(
            f"<tr><td>{html.escape(pid)}</td><td>{r.phase or '–'}</td><td>{w.height}</td>"
            f"<td>{num(sessions_pw, '{:.1f}')}</td><td>{num(_mean(last4, 'activation_quality'))}"
            f"</td><td>{num(change, '{:+.0f} min/day', 'no baseline')}</td>"
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


def write_progress_report(
    data_dir: DataDir,
    participant: str | None = None,
    *,
    out: Path | None = None,
    start: dt.date | None = None,
    end: dt.date | None = None,
    fmt: Literal["html", "pdf", "png"] = "html",
    criteria: ReadinessCriteria | None = None,
) -> Path:
    """Write the progression report for a participant (or the cohort); return its path.

    ``fmt="pdf"``/``"png"`` prints the page's figures and texts on A4 pages with matplotlib.
    By default the report goes to ``DATA/reports/<participant>/progress.<fmt>``, or
    ``DATA/reports/_cohort/progress.<fmt>`` for the cohort (no participant id starts with ``_``).

    Raises
    ------
    ReportError
        For an unknown format, or an ``end`` before ``start``.
    """
    if fmt not in ("html", "pdf", "png"):
        raise ReportError(f"report format must be html, pdf or png, not {fmt!r}")
    if start and end and end < start:
        raise ReportError(f"--until {end} is before --from {start}")
    data = load_progress(data_dir, participant, start, end)
    name = participant_component(participant) if participant else "_cohort"
    path = out or data_dir.reports / name / f"progress.{fmt}"
    with private_tmp(path) as tmp:
        if fmt == "html":
            tmp.write_text(render_progress_html(data, criteria), encoding="utf-8")
        else:
            fig = _print_figure(data, criteria)
            fig.savefig(tmp, format=fmt, dpi=150)
            pyplot().close(fig)
    return path


def _print_figure(data: ProgressData, criteria: ReadinessCriteria | None) -> Any:
    """A one-page A4 summary: the key texts and the weekly trends."""
    import textwrap

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
            lines.append(assess_readiness(data, pid, criteria).summary)
            lines.append(project_horizon(data, pid).text)
            lines.append(within_participants(data.weekly).text)
        else:
            lines.append("No data for this participant in the chosen period.")
    wrapped = "\n\n".join(textwrap.fill(t, 110) for t in lines[1:])
    fig.text(0.06, 0.97, lines[0], fontsize=15, fontweight="bold", va="top")
    fig.text(0.06, 0.93, wrapped, fontsize=7.5, va="top")
    weekly = data.weekly
    if weekly.height and pid is not None:
        panels = (("sitting_min", "sitting (h/day)", 1 / 60), ("bouts_30min", "bouts ≥30 min/day",
                  1.0), ("activation_quality", "activation quality", 1.0),
                  ("exercise_days", "exercise days/week", 1.0))
        for k, (column, label, scale) in enumerate(panels):
            ax = fig.add_axes((0.1, 0.56 - k * 0.135, 0.85, 0.1))
            sel = weekly.filter(pl.col(column).is_not_null())
            _phase_spans(ax, data.phases, _week_end(weekly))
            ax.plot(sel["week_start"].to_list(), (sel[column].to_numpy() * scale).tolist(),
                    marker="o", ms=3, zorder=2)
            ax.set_ylabel(label, fontsize=7)
            ax.tick_params(labelsize=7)
            if sel.height == 0:
                ax.text(0.5, 0.5, "no data", transform=ax.transAxes, ha="center")
    elif weekly.height:
        ax = fig.add_axes((0.12, 0.1, 0.8, 0.45))
        paired = _paired_weeks(weekly)
        ax.scatter(paired["sitting_h"].to_list(), paired["activation_quality"].to_list(), s=6,
                   alpha=0.5)
        ax.set_xlabel("sitting (h/day)")
        ax.set_ylabel("activation quality")
    return fig
