"""A projected recovery horizon: an estimate within the domain's 6-week to 6-month range.

Shown only where the data supports it, with the factors that push it sooner or later, and
flagged as an estimate, never a diagnosis.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal

import numpy as np
import polars as pl

from glutewake.analytics.evidence import MIN_BASELINE_DAYS, trend_per_week
from glutewake.analytics.progress_data import ProgressData
from glutewake.analytics.readiness import baseline_sitting, mean_of

__all__ = [
    "HORIZON_MAX_WEEKS",
    "HORIZON_MIN_WEEKS",
    "Horizon",
    "HorizonFactor",
    "project_horizon",
]

#: the recovery range from the domain notes, in weeks from the start of phase 1
HORIZON_MIN_WEEKS = 6.0
HORIZON_MAX_WEEKS = 26.0


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


def _pain_trend(daily: pl.DataFrame) -> tuple[HorizonFactor | None, str | None]:
    """The symptom-trend factor from daily pain ratings, or why there is none."""
    rated = daily.with_columns(
        pl.mean_horizontal("lower_back_pain", "hip_pain", "knee_pain").alias("pain")
    ).filter(pl.col("pain").is_not_null()).sort("local_date")
    trend = trend_per_week(rated["local_date"].to_list(), rated["pain"].to_numpy())
    if trend.slope is None:
        return None, f"symptom trend: pain rated in {trend.weeks} week(s), 3 needed"
    assert trend.ci95 is not None
    lo, hi = trend.ci95
    figure = (f"{trend.slope:+.2f} points per week over {trend.weeks} weeks (95% CI {lo:+.2f} "
              f"to {hi:+.2f})")
    if trend.direction == "unclear":
        return None, f"symptom trend: no clear trend yet ({figure})"
    s = float(np.clip((0.25 - trend.slope) / 0.75, 0.0, 1.0))
    word = "easing" if trend.direction == "falling" else "rising"
    return HorizonFactor("symptom trend", f"pain {word}, {figure}", s, _score_effect(s)), None


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
    ``target_sitting_reduction``; needs a baseline of ``MIN_BASELINE_DAYS`` valid days),
    symptom trend (pain slope per week, from 3 calendar weeks and only when its 95 % interval
    excludes zero; -0.5 scores 1, +0.25 scores 0) - are averaged, and the horizon runs from 26
    weeks (score 0) to 6 weeks (score 1) after the start of phase 1, with a +/-3 week band. It
    needs at least two weeks and ``min_days`` days with data since phase 1 began, and two of
    the three factors.
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
    missing: list[str] = []
    if recent.height:
        days_pw = float(recent["exercise_days"].mean())  # type: ignore[arg-type]
        s = min(days_pw / target_days_per_week, 1.0)
        factors.append(HorizonFactor(
            "exercise adherence",
            f"{days_pw:.1f} exercise days per week over the last {recent.height} week(s) "
            f"(target {target_days_per_week:g})", s, _score_effect(s)))
    base, base_days = baseline_sitting(data, participant)
    now = mean_of(daily.filter(pl.col("valid_day") & (pl.col("local_date") >= (
        last - dt.timedelta(weeks=recent_weeks)))), "sitting_min")
    if base is not None and now is not None and base > 0:
        drop = 1.0 - now / base
        s = float(np.clip(drop / target_sitting_reduction, 0.0, 1.0))
        factors.append(HorizonFactor(
            "sedentary reduction",
            f"sitting {abs(drop) * 100:.0f}% {'below' if drop >= 0 else 'above'} the baseline "
            f"week (target {target_sitting_reduction * 100:.0f}% below)", s, _score_effect(s)))
    else:
        missing.append(f"sedentary reduction: the baseline week has {base_days} valid day(s), "
                       f"{MIN_BASELINE_DAYS} needed" if base_days < MIN_BASELINE_DAYS else
                       "sedentary reduction: no valid days recently")
    pain, why = _pain_trend(daily)
    if pain is not None:
        factors.append(pain)
    elif why:
        missing.append(why)
    if len(factors) < 2:
        return Horizon(False, None, None, None, elapsed, tuple(factors), (
            "No projected recovery horizon yet: it needs at least two of adherence, sedentary "
            "reduction (a baseline week) and a clear symptom trend; not enough data yet ("
            + "; ".join(missing) + ")."))
    score = float(np.mean([f.score for f in factors]))
    total = HORIZON_MAX_WEEKS - (HORIZON_MAX_WEEKS - HORIZON_MIN_WEEKS) * score
    low, high = max(HORIZON_MIN_WEEKS, total - 3), min(HORIZON_MAX_WEEKS, total + 3)
    remaining = total - elapsed
    when = (f"about {remaining:.0f} more week(s)" if remaining >= 1 else
            "at or past the projected point: recovery can take 6 months or more, so the range "
            "is a guide, not a deadline")
    drivers = "; ".join(f"{f.name}: {f.value} — pushes it {f.effect}" if f.effect != "neither"
                        else f"{f.name}: {f.value}" for f in factors)
    left_out = f" Not used: {'; '.join(missing)}." if missing else ""
    text = (f"Projected recovery horizon: about {total:.0f} weeks from the start of phase 1 "
            f"(range {low:.0f}-{high:.0f} weeks), {when}; {elapsed:.1f} weeks have passed. "
            f"Driven by {drivers}.{left_out} {flag}")
    return Horizon(True, total, low, high, elapsed, tuple(factors), text)
