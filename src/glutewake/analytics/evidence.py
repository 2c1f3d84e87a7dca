"""How much the data can carry: the rules that decide whether a report may state a verdict.

A report prints a judgement ("met", "not met", "rising", a relation between sitting and
activation, "ready") only when the data behind it can carry it; otherwise it says, in words,
that there is not enough data yet and how much more would be needed. The thresholds and their
reasons are in ``docs/reports.md`` ("Uncertainty before verdicts"):

* a firing order (glute onset minus hamstring onset) is judged only when its 95 % confidence
  interval lies entirely beyond the onset error :data:`ONSET_ERROR_MS` on one side;
* a trend is stated only from :data:`MIN_WEEKS_TREND` calendar weeks of data, and called rising
  or falling only when the slope's 95 % interval excludes zero;
* a correlation is stated as a relation only when its 95 % interval excludes zero;
* a share (glutes fired on 80 % of repetitions) is judged against its threshold only when its
  Wilson 95 % interval lies on one side of it; a mean (ratio, variation) likewise with its
  t interval;
* nothing is compared with the baseline week unless it has :data:`MIN_BASELINE_DAYS` valid days,
  and no goal is judged on a day that is not valid.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

__all__ = [
    "CONFIDENCE",
    "MIN_BASELINE_DAYS",
    "MIN_WEEKS_TREND",
    "ONSET_ERROR_MS",
    "FiringOrder",
    "MeanEstimate",
    "ShareEstimate",
    "Trend",
    "calendar_weeks",
    "correlation_weeks_needed",
    "firing_order",
    "mean_estimate",
    "share_estimate",
    "trend_per_week",
]

#: The onset error of the EMG detector: p90 of the absolute onset error at 10 dB SNR, 1 kHz
#: (docs/emg.md, "Measured": 21-26 ms). Two onsets closer than this cannot be ordered.
ONSET_ERROR_MS = 25.0
#: A trend needs data from this many calendar weeks (two points always make a line).
MIN_WEEKS_TREND = 3
#: Valid days the baseline week needs before anything is compared with it.
MIN_BASELINE_DAYS = 3
#: Confidence level of every interval the reports print.
CONFIDENCE = 0.95

Side = Literal["below", "above", "unclear"]


def _t(n: int) -> float:
    from scipy import stats

    return float(stats.t.ppf(0.5 + CONFIDENCE / 2, n - 1))


@dataclass(frozen=True)
class FiringOrder:
    """Firing order over repetitions or sessions: mean glute-minus-hamstring onset (ms).

    ``verdict`` is ``"glutes_first"`` or ``"hamstrings_first"`` only when the whole 95 %
    interval lies beyond ``error_ms`` on that side; otherwise ``"unclear"``, and ``more_needed``
    says how many more values would settle it (``None`` when more data cannot: the mean itself
    lies within the onset error).
    """

    mean_ms: float | None
    ci95: tuple[float, float] | None
    n: int
    error_ms: float
    verdict: Literal["glutes_first", "hamstrings_first", "unclear"]
    more_needed: int | None

    def words(self, unit: str = "sessions") -> str:
        """The finding in words, or why there is none."""
        if self.mean_ms is None:
            return f"no {unit} with both a glute and a hamstring onset"
        if self.ci95 is None:
            return (f"glute onset {_signed_ms(self.mean_ms)} from one of the {unit}; at least 2 "
                    "are needed to judge")
        lo, hi = self.ci95
        interval = f"mean {self.mean_ms:+.0f} ms, 95% CI {lo:+.0f} to {hi:+.0f} ms, {self.n} {unit}"
        if self.verdict == "glutes_first":
            return f"the glutes fired first, by {-self.mean_ms:.0f} ms ({interval})"
        if self.verdict == "hamstrings_first":
            return f"the hamstrings fired first, by {self.mean_ms:.0f} ms ({interval})"
        if self.more_needed is None:
            return (f"glute and hamstring onsets were within the ±{self.error_ms:.0f} ms onset "
                    f"error of each other ({interval}): which fires first cannot be told")
        return (f"cannot tell which fired first yet ({interval}; the interval must clear the "
                f"±{self.error_ms:.0f} ms onset error): not enough data yet, about "
                f"{self.more_needed} more {unit} needed")


def _signed_ms(value: float) -> str:
    return f"{abs(value):.0f} ms {'before' if value < 0 else 'after'} the hamstrings'"


def _more_for_margin(mean: float, sd: float, n: int, margin: float) -> int | None:
    """Values to add until ``t * sd / sqrt(n) < margin`` (None when the margin is not positive)."""
    if margin <= 0:
        return None
    if sd == 0:
        return max(2 - n, 1)
    total = max(n, 2)
    while total < 10_000:
        if _t(total) * sd / math.sqrt(total) < margin:
            return max(total - n, 1)
        total += 1
    return None


def firing_order(latency_ms: np.ndarray, error_ms: float = ONSET_ERROR_MS) -> FiringOrder:
    """Judge the firing order from glute-minus-hamstring onset differences (ms).

    Parameters
    ----------
    latency_ms : numpy.ndarray
        One value per repetition (or per session); negative = glutes first; NaN is ignored.
    error_ms : float
        The onset error: the interval must clear ``±error_ms`` for a verdict.

    Examples
    --------
    >>> firing_order(np.array([1.0, -3.0, 4.0, 0.0])).verdict
    'unclear'
    >>> firing_order(np.array([-60.0, -55.0, -70.0, -62.0])).verdict
    'glutes_first'
    """
    x = np.asarray(latency_ms, dtype=float)
    x = x[np.isfinite(x)]
    n = int(x.size)
    if n == 0:
        return FiringOrder(None, None, 0, error_ms, "unclear", None)
    mean = float(x.mean())
    if n < 2:
        return FiringOrder(mean, None, 1, error_ms, "unclear", 1)
    sd = float(x.std(ddof=1))
    half = _t(n) * sd / math.sqrt(n)
    lo, hi = mean - half, mean + half
    if hi < -error_ms:
        verdict: Literal["glutes_first", "hamstrings_first", "unclear"] = "glutes_first"
    elif lo > error_ms:
        verdict = "hamstrings_first"
    else:
        verdict = "unclear"
    more = None if verdict != "unclear" else _more_for_margin(mean, sd, n, abs(mean) - error_ms)
    return FiringOrder(mean, (lo, hi), n, error_ms, verdict, more)


@dataclass(frozen=True)
class ShareEstimate:
    """A share of successes with its Wilson 95 % interval, judged against a threshold."""

    successes: int
    trials: int
    share: float | None
    ci95: tuple[float, float] | None
    side: Side

    def words(self, threshold: float) -> str:
        """``"9 of 12 (75%, 95% CI 47-91%)"``."""
        if self.share is None or self.ci95 is None:
            return "no repetitions"
        lo, hi = self.ci95
        return (f"{self.successes} of {self.trials} ({self.share * 100:.0f}%, 95% CI "
                f"{lo * 100:.0f}-{hi * 100:.0f}%)")


def share_estimate(successes: int, trials: int, threshold: float) -> ShareEstimate:
    """Wilson interval of ``successes / trials`` and where it lies against ``threshold``.

    ``side`` is ``"above"`` when the whole interval is at or above the threshold, ``"below"``
    when it is all below, else ``"unclear"``.
    """
    if trials <= 0:
        return ShareEstimate(0, 0, None, None, "unclear")
    from statsmodels.stats.proportion import proportion_confint

    lo, hi = (float(v) for v in proportion_confint(successes, trials, 1 - CONFIDENCE, "wilson"))
    side: Side = "above" if lo >= threshold else "below" if hi < threshold else "unclear"
    return ShareEstimate(successes, trials, successes / trials, (lo, hi), side)


@dataclass(frozen=True)
class MeanEstimate:
    """A mean with its t 95 % interval, judged against a threshold."""

    mean: float | None
    ci95: tuple[float, float] | None
    n: int
    side: Side


def mean_estimate(values: np.ndarray, threshold: float) -> MeanEstimate:
    """Mean of ``values`` (NaN ignored), its 95 % t interval and its side of ``threshold``."""
    x = np.asarray(values, dtype=float)
    x = x[np.isfinite(x)]
    if x.size == 0:
        return MeanEstimate(None, None, 0, "unclear")
    mean = float(x.mean())
    if x.size < 2:
        return MeanEstimate(mean, None, 1, "unclear")
    half = _t(x.size) * float(x.std(ddof=1)) / math.sqrt(x.size)
    lo, hi = mean - half, mean + half
    side: Side = "above" if lo >= threshold else "below" if hi < threshold else "unclear"
    return MeanEstimate(mean, (lo, hi), int(x.size), side)


def calendar_weeks(days: list[dt.date]) -> int:
    """Distinct ISO weeks (Monday to Sunday) among ``days``."""
    return len({d.isocalendar()[:2] for d in days})


@dataclass(frozen=True)
class Trend:
    """A least-squares slope per week with its 95 % interval, from dated values.

    ``slope`` is None when there are fewer than :data:`MIN_WEEKS_TREND` calendar weeks of data
    (``weeks`` says how many there are); ``direction`` is ``"rising"``/``"falling"`` only when the
    interval excludes zero.
    """

    slope: float | None
    ci95: tuple[float, float] | None
    weeks: int
    n: int
    direction: Literal["rising", "falling", "unclear"]

    def words(self, unit: str = "") -> str:
        """The slope with its interval, or how many more weeks are needed."""
        if self.slope is None:
            more = MIN_WEEKS_TREND - self.weeks
            return (f"not enough data yet for a trend: {self.weeks} week(s) of data, "
                    f"{more} more needed")
        assert self.ci95 is not None
        lo, hi = self.ci95
        figure = f"{self.slope:+.1f}{unit}/week (95% CI {lo:+.1f} to {hi:+.1f})"
        if self.direction == "unclear":
            return f"no clear trend: {figure}"
        return f"{self.direction} {figure}"


def trend_per_week(days: list[dt.date], values: np.ndarray) -> Trend:
    """Slope per week of ``values`` over ``days`` (one value per dated observation)."""
    x = np.array([(d - days[0]).days / 7.0 for d in days]) if days else np.zeros(0)
    y = np.asarray(values, dtype=float)
    keep = np.isfinite(y)
    kept_days = [d for d, k in zip(days, keep, strict=True) if k]
    x, y = x[keep], y[keep]
    weeks = calendar_weeks(kept_days)
    if weeks < MIN_WEEKS_TREND or np.ptp(x) == 0 or x.size < 3:
        return Trend(None, None, weeks, int(x.size), "unclear")
    from scipy import stats

    fit = stats.linregress(x, y)
    half = float(stats.t.ppf(0.5 + CONFIDENCE / 2, x.size - 2)) * float(fit.stderr)
    slope = float(fit.slope)
    lo, hi = slope - half, slope + half
    direction: Literal["rising", "falling", "unclear"] = (
        "rising" if lo > 0 else "falling" if hi < 0 else "unclear"
    )
    return Trend(slope, (lo, hi), weeks, int(x.size), direction)


def correlation_weeks_needed(r: float, n: int) -> int:
    """More paired weeks needed before a correlation of about ``|r|`` could exclude zero.

    From Fisher's z: the 95 % interval excludes zero once ``atanh(|r|) > 1.96 / sqrt(n - 3)``.
    ``|r|`` is taken as at least 0.3 and at most 0.9, so a tiny or a wild first estimate gives a
    sensible order of magnitude rather than thousands or zero.
    """
    from scipy import stats

    z = float(stats.norm.ppf(0.5 + CONFIDENCE / 2))
    size = min(max(abs(r), 0.3), 0.9)
    total = math.floor((z / math.atanh(size)) ** 2 + 3) + 1
    return max(total - n, 1)
