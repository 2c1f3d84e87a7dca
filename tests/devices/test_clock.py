"""Clock model: lower envelope of (device, host) pairs under offset + drift + latency jitter."""

from __future__ import annotations

import numpy as np
import pytest

from glutewake.devices.clock import ClockModel, clock_segments, fit_clock


def _simulate(
    offset_us: float, drift_ppm: float, n: int, span_s: float, seed: int, outliers: float = 0.05
):
    rng = np.random.default_rng(seed)
    dev = np.sort(rng.uniform(0, span_s * 1e6, n)).astype(np.int64) + 10**15
    lat = 7_500 + rng.exponential(10_000, n)
    spikes = rng.random(n) < outliers
    lat[spikes] += rng.uniform(0.2e6, 3e6, spikes.sum())  # connection-latency outliers
    host = dev + offset_us + drift_ppm * 1e-6 * (dev - dev[0]) + lat
    return dev, np.rint(host).astype(np.int64)


@pytest.mark.parametrize(("offset_us", "drift_ppm"), [(2.5e6, 0.0), (-7.3e8, 40.0), (123.0, -85.0)])
def test_recovers_offset_and_drift_under_jitter(offset_us: float, drift_ppm: float) -> None:
    dev, host = _simulate(offset_us, drift_ppm, 20_000, 3 * 3600, seed=3)
    m = fit_clock(dev, host)
    assert m.drift_ppm == pytest.approx(drift_ppm, abs=0.05)
    # the envelope sits at the minimum latency (7.5 ms), never below the truth
    assert 7_400 < m.offset_us - offset_us < 8_500
    truth = dev + offset_us + drift_ppm * 1e-6 * (dev - dev[0])
    err = m.to_host_us(dev) - truth
    assert err.min() > 7_000 and err.max() < 9_000
    assert m.n_points == 20_000 and m.span_s == pytest.approx(3 * 3600, rel=1e-3)


def test_outliers_cannot_pull_the_envelope_down_or_tilt_it() -> None:
    dev, host = _simulate(0.0, 10.0, 5_000, 3600, seed=4, outliers=0.4)
    m = fit_clock(dev, host)
    assert m.drift_ppm == pytest.approx(10.0, abs=0.2)


def test_short_recordings_fix_drift_at_zero() -> None:
    dev, host = _simulate(1e6, 50.0, 100, 30, seed=5)
    m = fit_clock(dev, host)
    assert m.drift_ppm == 0.0
    assert m.offset_us == pytest.approx(float(np.min(host - dev)))


def test_single_point_and_errors() -> None:
    m = fit_clock([5], [105])
    assert m.offset_us == 100 and m.to_host_us([7]).tolist() == [107]
    with pytest.raises(ValueError, match="zero points"):
        fit_clock([], [])
    with pytest.raises(ValueError, match=r"differ|has"):
        fit_clock([1, 2], [1])


def test_min_latency_is_removed_when_known() -> None:
    dev, host = _simulate(0.0, 0.0, 2_000, 600, seed=6)
    m = fit_clock(dev, host, min_latency_us=7_500)
    assert abs(m.offset_us) < 600


def test_segments_split_where_device_time_goes_back() -> None:
    assert clock_segments([1, 2, 3, 0, 5, 1]).tolist() == [0, 0, 0, 1, 1, 2]


def test_model_mapping_is_exact_integer_arithmetic() -> None:
    m = ClockModel(
        ref_device_us=10**15,
        offset_us=-5.0,
        drift_ppm=100.0,
        n_points=2,
        span_s=1.0,
        median_latency_us=0.0,
    )
    assert m.to_host_us([10**15, 10**15 + 1_000_000]).tolist() == [
        10**15 - 5,
        10**15 + 1_000_000 + 95,
    ]
