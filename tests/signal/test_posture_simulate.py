"""The thigh-day simulator: seeded, consistent, fast, realistic enough to test against."""

from __future__ import annotations

import time
from datetime import datetime
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from glutewake.signal.posture import Posture
from glutewake.simulate.posture import simulate_thigh_days

START_US = int(datetime(2026, 3, 28, 0, 0, tzinfo=ZoneInfo("Europe/London")).timestamp() * 1e6)


def test_seeded_and_consistent() -> None:
    a = simulate_thigh_days(0.3, 20.0, start_us=START_US, seed=4)
    b = simulate_thigh_days(0.3, 20.0, start_us=START_US, seed=4)
    c = simulate_thigh_days(0.3, 20.0, start_us=START_US, seed=5)
    np.testing.assert_array_equal(a.acc_g, b.acc_g)
    assert not np.array_equal(a.acc_g, c.acc_g)
    n = a.acc_g.shape[0]
    assert a.acc_g.dtype == np.float32 and a.acc_g.shape == (n, 3)
    assert a.labels.shape == (n,) and a.t_us.shape == (n,)
    assert a.t_us[0] == START_US and np.all(np.diff(a.t_us) == 50_000)


def test_bouts_tile_the_recording_and_match_labels() -> None:
    sim = simulate_thigh_days(2.0, 10.0, start_us=START_US, tz="Europe/London", seed=2)
    assert sim.bout_start_us[0] == START_US
    np.testing.assert_array_equal(sim.bout_start_us[1:], sim.bout_end_us[:-1])
    assert set(np.unique(sim.bout_label).tolist()) >= {0, 1, 2, 3}
    # Awake hours in local time: nobody is up at 03:00, and the sensor is off overnight.
    local_hour = np.array(
        [datetime.fromtimestamp(t / 1e6, ZoneInfo("Europe/London")).hour for t in sim.t_us[::3600]]
    )
    labels = sim.labels[::3600]
    assert np.all(labels[local_hour == 3] == Posture.NONWEAR)
    # A sensor on a table is still (noise only); a seated wearer fidgets.
    off = np.flatnonzero(sim.bout_label == Posture.NONWEAR)
    sit = np.flatnonzero(sim.bout_label == Posture.SITTING)
    i0 = ((sim.bout_start_us - START_US) // 100_000).astype(np.int64)
    i1 = ((sim.bout_end_us - START_US) // 100_000).astype(np.int64)
    assert max(float(sim.acc_g[i0[j] : i1[j]].std(axis=0).max()) for j in off) < 0.01
    assert max(float(sim.acc_g[i0[j] : i1[j]].std(axis=0).max()) for j in sit) > 0.01


def test_still_vectors_are_one_g_after_undoing_the_error() -> None:
    sim = simulate_thigh_days(0.5, 10.0, start_us=START_US, seed=8, noise_g=0.0)
    true = (sim.acc_g.astype(np.float64) - sim.offset_g) / sim.gain
    still = np.isin(sim.labels, (Posture.SITTING, Posture.STANDING, Posture.NONWEAR))
    norms = np.linalg.norm(true[still], axis=1)
    assert np.median(np.abs(norms - 1.0)) < 1e-3


def test_three_days_at_52_hz_is_fast() -> None:
    t0 = time.perf_counter()
    sim = simulate_thigh_days(3.0, 52.0, start_us=START_US, tz="Europe/London", seed=1)
    elapsed = time.perf_counter() - t0
    assert sim.acc_g.shape[0] == 3 * 86400 * 52
    assert elapsed < 4.0  # goal < 2 s; slack for a shared CI machine


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="n_days"):
        simulate_thigh_days(0, 50.0, start_us=START_US)
    with pytest.raises(ValueError, match="night"):
        simulate_thigh_days(1, 50.0, start_us=START_US, night="awake")
