"""Readiness for the next rehabilitation phase, judged from the domain's criteria, in words.

Each criterion is **met**, **not met**, or **cannot judge yet**; a criterion is judged only when
the data can carry the verdict (:mod:`glutewake.analytics.evidence`): a share or a mean only
when its 95 % interval lies on one side of the threshold, a firing order only when its interval
clears the onset error, a trend only from three calendar weeks. Readiness as a whole is "ready"
only when every criterion is met and the phase has lasted long enough to judge.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import polars as pl

from glutewake.analytics.evidence import (
    MIN_BASELINE_DAYS,
    ONSET_ERROR_MS,
    firing_order,
    mean_estimate,
    share_estimate,
    trend_per_week,
)
from glutewake.analytics.progress_data import ProgressData

__all__ = [
    "Criterion",
    "Readiness",
    "ReadinessCriteria",
    "assess_readiness",
    "baseline_sitting",
    "mean_of",
]


@dataclass(frozen=True)
class ReadinessCriteria:
    """Thresholds that turn the domain's phase criteria into checks (documented defaults).

    Attributes
    ----------
    window_days : int
        Judge on the sessions and days of the last ``window_days`` in the current phase.
    min_days_in_phase : int
        Readiness as a whole is judged only after this many days in the phase.
    min_sessions : int
        Sessions in the window needed to judge activation at all.
    fired_share_min : float
        Phase 1 and 3: glutes fire on "most repetitions" (share of repetitions; judged with
        the Wilson interval of the pooled repetitions).
    onset_error_ms : float
        Phase 1 and 2: a firing order is judged only when the interval of the sessions' firing
        order lies beyond this on one side (the EMG detector's onset error).
    peak_cv_max : float
        Phase 1: "stable amplitude rep to rep" (coefficient of variation of glute peaks).
    min_weeks_trend : int
        Phase 2: calendar weeks of %MVC values behind the week-on-week trend.
    pct_mvc_slope_min : float
        Phase 2: %MVC must rise at least this much per week.
    glute_hamstring_ratio_min : float
        Phase 2: the glutes drive the movement (glute / hamstring amplitude ratio).
    sitting_reduction_min : float
        Phase 3: sitting at least this share below the baseline week (or at the goal).
    min_valid_days : int
        Phase 3: valid sitting days in the window needed to judge sitting.
    pain_max : float
        Phase 3: mean pain (0-10, over the rated days and sites) at most this.
    min_rated_days : int
        Phase 3: rated days needed to judge symptoms.
    """

    window_days: int = 14
    min_days_in_phase: int = 14
    min_sessions: int = 6
    fired_share_min: float = 0.8
    onset_error_ms: float = ONSET_ERROR_MS
    peak_cv_max: float = 0.25
    min_weeks_trend: int = 3
    pct_mvc_slope_min: float = 0.5
    glute_hamstring_ratio_min: float = 1.0
    sitting_reduction_min: float = 0.10
    min_valid_days: int = 4
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


def mean_of(frame: pl.DataFrame, column: str) -> float | None:
    """Mean of a column without nulls and NaNs (None when nothing is left)."""
    if frame.height == 0 or column not in frame.columns:
        return None
    value = frame[column].drop_nulls().drop_nans().mean()
    return None if value is None else float(value)  # type: ignore[arg-type]


def baseline_sitting(data: ProgressData, participant: str) -> tuple[float | None, int]:
    """Mean sitting (min/day) of the baseline week's valid days, and how many there are.

    The mean is None with fewer than ``MIN_BASELINE_DAYS`` valid days: nothing is compared
    with such a baseline.
    """
    row = data.baseline.filter(pl.col("participant_id") == participant)
    days = int(row["baseline_days"][0] or 0) if row.height else 0
    mean = mean_of(row, "baseline_sitting_min")
    return (mean if days >= MIN_BASELINE_DAYS else None), days


def _values(frame: pl.DataFrame, column: str) -> list[float]:
    return [float(v) for v in frame[column].drop_nulls().drop_nans().to_list()]


def _fired(sessions: pl.DataFrame, c: ReadinessCriteria, what: str) -> Criterion:
    rows = sessions.filter(pl.col("glute_fired_share").is_not_null())
    if rows.height == 0:
        return Criterion(what, None, "No repetition-level glute firing was measured.")
    reps = rows["repetitions"].fill_null(0).cast(pl.Int64)
    fired = int((rows["glute_fired_share"] * reps).round(0).sum())
    est = share_estimate(fired, int(reps.sum()), c.fired_share_min)
    needed = f"(needed: at least {c.fired_share_min * 100:.0f}%)"
    if est.side == "unclear":
        return Criterion(what, None, f"The glutes fired on {est.words(c.fired_share_min)} "
                                     f"repetitions {needed}: the interval spans the threshold, "
                                     "so not enough data yet to judge.")
    return Criterion(what, est.side == "above",
                     f"The glutes fired on {est.words(c.fired_share_min)} repetitions {needed}.")


def _order(sessions: pl.DataFrame, c: ReadinessCriteria, what: str) -> Criterion:
    values = _values(sessions, "firing_order_ms")
    if not values:
        return Criterion(what, None, "Firing order needs a hamstring (or lower-back) channel; "
                                     "none was recorded.")
    import numpy as np

    order = firing_order(np.array(values), c.onset_error_ms)
    verdict = {"glutes_first": True, "hamstrings_first": False}.get(order.verdict)
    return Criterion(what, verdict, _sentence(order.words("sessions")))


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:] + ("" if text.endswith(".") else ".")


def _mean_check(sessions: pl.DataFrame, column: str, threshold: float, what: str, *,
                higher_is_better: bool, describe: str, fmt: str, missing: str) -> Criterion:
    import numpy as np

    est = mean_estimate(np.array(_values(sessions, column)), threshold)
    if est.mean is None:
        return Criterion(what, None, missing)
    figure = describe.format(fmt.format(est.mean))
    if est.ci95 is None or est.side == "unclear":
        interval = "" if est.ci95 is None else (
            f" (95% CI {fmt.format(est.ci95[0])} to {fmt.format(est.ci95[1])})")
        return Criterion(what, None, f"{figure}{interval}, needed "
                                     f"{'at least' if higher_is_better else 'at most'} "
                                     f"{fmt.format(threshold)}: the interval spans the "
                                     "threshold, so not enough data yet to judge.")
    lo, hi = est.ci95
    ok = (est.side == "above") == higher_is_better
    return Criterion(what, ok, f"{figure} (95% CI {fmt.format(lo)} to {fmt.format(hi)}, "
                               f"{est.n} sessions; needed: "
                               f"{'at least' if higher_is_better else 'at most'} "
                               f"{fmt.format(threshold)}).")


def _mvc_trend(sessions: pl.DataFrame, c: ReadinessCriteria) -> Criterion:
    name = "activation (%MVC) rises week on week"
    rows = sessions.filter(pl.col("glute_peak_pct_mvc").is_not_null()).sort("local_date")
    import numpy as np

    trend = trend_per_week(rows["local_date"].to_list(),
                           np.asarray(rows["glute_peak_pct_mvc"].to_numpy(), dtype=float))
    if trend.slope is None or trend.weeks < c.min_weeks_trend:
        return Criterion(name, None, f"%MVC values from {trend.weeks} calendar week(s) of this "
                                     f"phase; {c.min_weeks_trend} are needed for a trend: not "
                                     f"enough data yet, {c.min_weeks_trend - trend.weeks} more "
                                     "week(s) needed (an MVC reference trial is needed for "
                                     "%MVC).")
    assert trend.ci95 is not None
    lo, hi = trend.ci95
    detail = (f"The glute peak changed by {trend.slope:+.1f} %MVC per week over {trend.weeks} "
              f"weeks (95% CI {lo:+.1f} to {hi:+.1f}; needed: at least "
              f"+{c.pct_mvc_slope_min:g}).")
    if trend.slope >= c.pct_mvc_slope_min and lo > 0:
        return Criterion(name, True, detail)
    if hi < c.pct_mvc_slope_min:
        return Criterion(name, False, detail)
    return Criterion(name, None, detail[:-1] + ": not clear yet, not enough data to judge.")


def _sitting_check(data: ProgressData, participant: str, days: pl.DataFrame,
                   c: ReadinessCriteria) -> Criterion:
    name = "sedentary habits stay reduced"
    valid = days.filter(pl.col("valid_day"))
    now = mean_of(valid, "sitting_min")
    if now is None or valid.height < c.min_valid_days:
        return Criterion(name, None, f"{valid.height} valid sitting day(s) in the window; "
                                     f"{c.min_valid_days} are needed: not enough data yet.")
    base, base_days = baseline_sitting(data, participant)
    part = data.participants.filter(pl.col("participant_id") == participant)
    goal = part["goal_sitting_min"][0] if part.height else None
    if base is None and goal is None:
        why = (f"the baseline week has {base_days} valid day(s) ({MIN_BASELINE_DAYS} needed) "
               "and no sitting goal is recorded" if base_days else
               "neither a baseline week nor a sitting goal is recorded")
        return Criterion(name, None, _sentence(why))
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
    return Criterion(name, ok, _sentence("; ".join(parts)))


def _pain_check(days: pl.DataFrame, c: ReadinessCriteria) -> Criterion:
    name = "symptoms low"
    rated = days.filter(
        pl.any_horizontal(pl.col("lower_back_pain", "hip_pain", "knee_pain").is_not_null())
    )
    if rated.height < c.min_rated_days:
        return Criterion(name, None, f"Pain was rated on {rated.height} day(s) in the window; "
                                     f"{c.min_rated_days} are needed: not enough data yet.")
    pain = float(
        rated.select(pl.mean_horizontal("lower_back_pain", "hip_pain", "knee_pain"))
        .to_series()
        .mean()  # type: ignore[arg-type]
    )
    return Criterion(name, pain <= c.pain_max,
                     f"Mean pain {pain:.1f}/10 over {rated.height} rated days (needed: at most "
                     f"{c.pain_max:g}).")


NEXT_STEP = {1: "move to phase 2", 2: "move to phase 3", 3: "finish the programme and maintain"}


def assess_readiness(
    data: ProgressData,
    participant: str,
    criteria: ReadinessCriteria | None = None,
) -> Readiness:
    """Judge readiness for the next phase from the domain notes' criteria, in words.

    Phase 1 -> 2: glutes fire reliably in isolation (fired on most repetitions, glutes first,
    stable amplitude). Phase 2 -> 3: %MVC rises week on week while form holds (glute/hamstring
    ratio, glutes first). Phase 3 -> maintenance: firing automatic in dynamic tasks, sitting
    stays below baseline, symptoms low. Each criterion is judged only when the data carries it.
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
    mine = data.sessions.filter(pl.col("participant_id") == participant)
    sessions = mine.filter((pl.col("local_date") >= window_start) & (pl.col("local_date") <= end))
    days = daily.filter((pl.col("local_date") >= window_start) & (pl.col("local_date") <= end))
    next_step = NEXT_STEP[phase]
    window = f"{window_start:%d %b} to {end:%d %b}"
    checks: list[Criterion] = []
    in_phase = (end - current["start_date"]).days + 1
    if in_phase < c.min_days_in_phase:
        checks.append(Criterion(
            "long enough in the phase", None,
            f"{max(in_phase, 0)} day(s) in phase {phase} so far; readiness is judged after "
            f"{c.min_days_in_phase}: not enough data yet, {c.min_days_in_phase - in_phase} more "
            "day(s) needed."))
    enough = sessions.height >= c.min_sessions
    if not enough:
        checks.append(Criterion(
            "enough sessions to judge", None,
            f"Only {sessions.height} exercise session(s) from {window}; at least "
            f"{c.min_sessions} are needed to judge activation: not enough data yet, "
            f"{c.min_sessions - sessions.height} more needed."))
    if phase == 1:
        if enough:
            checks.append(_fired(sessions, c, "glutes fire on most repetitions"))
            checks.append(_order(sessions, c, "glutes fire before the hamstrings"))
            checks.append(_mean_check(
                sessions, "peak_cv", c.peak_cv_max, "stable amplitude rep to rep",
                higher_is_better=False, fmt="{:.2f}",
                describe="The glute peak's rep-to-rep variation (CV) averaged {}",
                missing="Rep-to-rep variation of the glute peak was not measured."))
    elif phase == 2:
        in_phase_sessions = mine.filter((pl.col("local_date") >= current["start_date"])
                                        & (pl.col("local_date") <= end))
        checks.append(_mvc_trend(in_phase_sessions, c))
        if enough:
            checks.append(_mean_check(
                sessions, "glute_hamstring_ratio", c.glute_hamstring_ratio_min,
                "the glutes drive the movement", higher_is_better=True, fmt="{:.2f}",
                describe="Glute amplitude averaged {}x the hamstring's",
                missing="No glute/hamstring amplitude ratio was measured."))
            checks.append(_order(sessions, c, "form holds: glutes fire first"))
    else:
        if enough:
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
        unclear = [k.name for k in checks if k.met is None]
        summary = (f"Cannot judge yet whether to {next_step}: not enough data yet for "
                   f"{'; '.join(unclear)} ({window}).")
    else:
        ready = True
        summary = (f"Ready to {next_step}: every criterion is met, each with data enough to "
                   f"judge it ({window}).")
    return Readiness(phase, next_step, ready, tuple(checks), summary, sessions.height,
                     days.height)
