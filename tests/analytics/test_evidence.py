"""When the data can carry a verdict: firing order, shares, means, trends, correlations."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest
from scipy import stats

from glutewake.analytics.evidence import (
    ONSET_ERROR_MS,
    correlation_weeks_needed,
    firing_order,
    mean_estimate,
    share_estimate,
    trend_per_week,
)
from glutewake.analytics.relation import within_participants


def test_firing_order_needs_its_interval_beyond_the_onset_error() -> None:
    rng = np.random.default_rng(1)
    assert firing_order(-60 + 10 * rng.standard_normal(12)).verdict == "glutes_first"
    assert firing_order(55 + 10 * rng.standard_normal(12)).verdict == "hamstrings_first"
    # 1 ms apart on average: inside the onset error, and more sessions would not change that
    tiny = firing_order(np.array([1.0, -3.0, 4.0, 0.0, 3.0]))
    assert tiny.verdict == "unclear" and tiny.more_needed is None
    assert "within the ±25 ms onset error" in tiny.words()
    # clearly beyond the error on average, but too noisy yet: says how many more are needed
    noisy = firing_order(np.array([-80.0, -10.0, -60.0]))
    assert noisy.verdict == "unclear" and noisy.more_needed is not None
    more = noisy.more_needed
    sd, mean = float(np.std([-80.0, -10.0, -60.0], ddof=1)), -50.0
    n = 3 + more
    assert stats.t.ppf(0.975, n - 1) * sd / np.sqrt(n) < abs(mean) - ONSET_ERROR_MS
    assert stats.t.ppf(0.975, n - 2) * sd / np.sqrt(n - 1) >= abs(mean) - ONSET_ERROR_MS
    assert f"about {more} more sessions needed" in noisy.words()
    assert firing_order(np.array([-70.0])).ci95 is None  # one value: no interval, no verdict
    assert firing_order(np.array([np.nan])).mean_ms is None


def test_share_and_mean_are_judged_only_off_the_threshold() -> None:
    assert share_estimate(120, 120, 0.8).side == "above"
    assert share_estimate(9, 12, 0.8).side == "unclear"  # 75 %, 95% CI 47-91 %
    assert share_estimate(30, 100, 0.8).side == "below"
    lo, hi = share_estimate(9, 12, 0.8).ci95 or (0, 0)
    assert lo == pytest.approx(0.4677, abs=1e-3) and hi == pytest.approx(0.9111, abs=1e-3)
    assert mean_estimate(np.array([0.1, 0.12, 0.11, 0.13]), 0.25).side == "below"
    assert mean_estimate(np.array([0.1, 0.4]), 0.25).side == "unclear"
    assert mean_estimate(np.array([0.1]), 0.25).ci95 is None


def test_trend_needs_three_calendar_weeks_and_an_interval_off_zero() -> None:
    monday = dt.date(2026, 3, 2)
    two_weeks = [monday + dt.timedelta(days=k) for k in range(0, 14, 2)]
    short = trend_per_week(two_weeks, np.arange(7.0))
    assert short.slope is None and short.weeks == 2
    assert short.words() == "not enough data yet for a trend: 2 week(s) of data, 1 more needed"
    days = [monday + dt.timedelta(days=k) for k in range(0, 21, 2)]
    rising = trend_per_week(days, 50 + 0.5 * np.arange(11.0))  # +0.5 a session = +1.75/week
    assert rising.direction == "rising" and rising.slope == pytest.approx(1.75)
    flat = trend_per_week(days, np.array([50.0, 58, 44, 55, 47, 52, 49, 57, 43, 51, 50]))
    assert flat.slope is not None and flat.direction == "unclear"
    assert flat.words().startswith("no clear trend:")


def test_correlation_weeks_needed_follows_fisher_z() -> None:
    # r = 0.5 needs n with atanh(0.5) > 1.96 / sqrt(n - 3): n = 16
    assert correlation_weeks_needed(0.5, 3) == 13
    assert correlation_weeks_needed(-0.05, 3) == correlation_weeks_needed(0.3, 3)  # floor 0.3


def _weeks(sitting_h: list[float], quality: list[float]) -> pl.DataFrame:
    n = len(sitting_h)
    return pl.DataFrame({
        "participant_id": ["P"] * n,
        "sitting_min": [h * 60 for h in sitting_h],
        "activation_quality": quality,
        "valid_days": [5] * n,
        "scored_sessions": [3] * n,
    })


def test_a_correlation_is_stated_only_when_its_interval_excludes_zero() -> None:
    weak = within_participants(_weeks([13.0, 12.5, 12.8], [64.0, 74.0, 84.0]))
    assert weak.estimate is not None and weak.judged is False
    assert weak.ci95 is not None and weak.ci95[0] < 0 < weak.ci95[1]
    assert "can be stated yet" in weak.text and "related:" not in weak.text
    assert "more week(s) would be needed" in weak.text
    sitting = [14.0, 13.2, 12.9, 12.1, 11.8, 11.0, 10.4, 10.1]
    strong = within_participants(_weeks(sitting, [50.0, 55, 54, 60, 63, 66, 70, 71]))
    assert strong.judged is True and "strongly related: less sitting went with better" in (
        strong.text)
