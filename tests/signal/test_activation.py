"""Tests for glutewake.signal.activation on simulated exercise sessions with known truth."""

from __future__ import annotations

import numpy as np
import pytest

from glutewake.signal.activation import (
    QUALITY_WEIGHTS,
    mvc_reference,
    session_activation,
)
from glutewake.signal.emg import EmgInputError, detect_contractions
from glutewake.simulate.emg import simulate_exercise_session

FS = 1000.0


def test_firing_order_per_repetition_matches_truth() -> None:
    s = simulate_exercise_session(n_reps=8, fs_hz=FS, firing_latency_ms=-60, latency_sd_ms=30,
                                  seed=1)
    act = session_activation(s.emg_uv, FS, roles=s.roles)
    assert act.n_reps == 8
    assert act.glute_fired.all()
    err = act.latency_ms - s.latency_ms[:, 0]
    assert np.median(np.abs(err)) <= 12
    assert np.abs(err).max() <= 40
    assert act.median_latency_ms < -30  # glutes first
    assert act.rep_side == ("right",) * 8


def test_late_glutes_score_lower_than_early_glutes() -> None:
    early = simulate_exercise_session(n_reps=8, fs_hz=FS, firing_latency_ms=-60, seed=2)
    late = simulate_exercise_session(n_reps=8, fs_hz=FS, firing_latency_ms=80, seed=2)
    a = session_activation(early.emg_uv, FS, roles=early.roles)
    b = session_activation(late.emg_uv, FS, roles=late.roles)
    assert a.median_latency_ms < 0 < b.median_latency_ms
    assert a.quality_components["timing"] > 0.8 > 0.2 > b.quality_components["timing"]
    assert a.quality > b.quality + 10


def test_mvc_reference_and_percent_mvc() -> None:
    s = simulate_exercise_session(n_reps=6, fs_hz=FS, glute_pct_mvc=30, hamstring_pct_mvc=20,
                                  amplitude_cv=0.0, seed=3)
    mvc = mvc_reference(s.mvc_emg_uv, FS)
    assert np.allclose(mvc, s.mvc_rms_uv, rtol=0.15)
    act = session_activation(s.emg_uv, FS, roles=s.roles, mvc_uv=list(mvc))
    glute, ham = act.channels
    # the RMS-envelope peak sits somewhat above the plateau RMS
    assert 25 <= glute.peak_pct_mvc <= 45
    assert 15 <= ham.peak_pct_mvc <= 32
    assert act.ratio_basis == "pct_mvc"
    assert act.glute_hamstring_ratio == pytest.approx(glute.peak_pct_mvc / ham.peak_pct_mvc,
                                                      rel=0.1)
    assert "intensity" in act.quality_components
    assert glute.n_contractions == 6
    assert 1.2 <= glute.duration_s <= 1.8


def test_missed_glute_repetitions_lower_reliability() -> None:
    s = simulate_exercise_session(n_reps=10, fs_hz=FS, glute_miss_prob=0.4, seed=4)
    fired_true = int((s.onset_idx[:, 0] >= 0).sum())
    assert fired_true < 10
    act = session_activation(s.emg_uv, FS, roles=s.roles)
    assert act.n_reps == 10  # repetitions come from the hamstring when the glute is silent
    assert int(act.glute_fired.sum()) == fired_true
    assert act.glute_fired_share == pytest.approx(fired_true / 10)
    assert np.isnan(act.latency_ms[~act.glute_fired]).all()


def test_consistency_and_fatigue_trend() -> None:
    steady = simulate_exercise_session(n_reps=10, fs_hz=FS, amplitude_cv=0.02, seed=5)
    fading = simulate_exercise_session(n_reps=10, fs_hz=FS, amplitude_cv=0.02,
                                       amplitude_trend=-0.6, seed=5)
    a = session_activation(steady.emg_uv, FS, roles=steady.roles)
    b = session_activation(fading.emg_uv, FS, roles=fading.roles)
    assert a.cv_peak_glute < 0.1 < b.cv_peak_glute
    assert a.quality_components["consistency"] > b.quality_components["consistency"]
    peaks = b.peak_uv[:, 0]
    assert peaks[-1] < 0.6 * peaks[0]


def test_left_right_symmetry_and_pairing_per_side() -> None:
    s = simulate_exercise_session(n_reps=6, fs_hz=FS, sides=("right", "left"),
                                  left_right_ratio=0.5, seed=6)
    act = session_activation(s.emg_uv, FS, roles=s.roles)
    assert act.rep_side.count("right") == 6 and act.rep_side.count("left") == 6
    assert 40 <= act.symmetry_pct <= 62
    right = [r for r, side in enumerate(act.rep_side) if side == "right"]
    left = [r for r, side in enumerate(act.rep_side) if side == "left"]
    # each side's repetitions use only that side's channels
    assert (act.onset_idx[right][:, 2:] == -1).all()
    assert (act.onset_idx[left][:, :2] == -1).all()


def test_coactivation_index_range() -> None:
    s = simulate_exercise_session(n_reps=6, fs_hz=FS, seed=7)
    act = session_activation(s.emg_uv, FS, roles=s.roles)
    assert np.all((act.coactivation > 50) & (act.coactivation <= 100))
    assert act.coactivation_index == pytest.approx(np.nanmean(act.coactivation))


def test_quality_formula_matches_components() -> None:
    s = simulate_exercise_session(n_reps=6, fs_hz=FS, seed=8)
    act = session_activation(s.emg_uv, FS, roles=s.roles)
    comp = act.quality_components
    assert set(comp) == {"reliability", "timing", "consistency", "dominance"}
    expected = 100 * sum(QUALITY_WEIGHTS[k] * v for k, v in comp.items()) / sum(
        QUALITY_WEIGHTS[k] for k in comp)
    assert act.quality == pytest.approx(expected)
    assert 0 <= act.quality <= 100


def test_precomputed_contractions_and_glute_only() -> None:
    s = simulate_exercise_session(n_reps=5, fs_hz=FS, seed=9)
    res = detect_contractions(s.emg_uv, FS)
    a = session_activation(s.emg_uv, FS, roles=s.roles, contractions=res)
    b = session_activation(s.emg_uv, FS, roles=s.roles)
    assert np.array_equal(a.onset_idx, b.onset_idx)
    glute_only = session_activation(s.emg_uv[:, :1], FS, roles=[("glute_max", "right")],
                                    expected_reps=10)
    assert glute_only.glute_fired_share == pytest.approx(0.5)
    assert set(glute_only.quality_components) == {"reliability", "consistency"}


def test_bad_roles_and_mvc_raise() -> None:
    s = simulate_exercise_session(n_reps=3, fs_hz=FS, seed=10)
    with pytest.raises(EmgInputError, match="roles"):
        session_activation(s.emg_uv, FS, roles=[("glute_max", "right")])
    with pytest.raises(EmgInputError, match="no glute"):
        session_activation(s.emg_uv, FS, roles=[("hamstring", "right"), ("quad", "right")])
    with pytest.raises(EmgInputError, match="mvc_uv"):
        session_activation(s.emg_uv, FS, roles=s.roles, mvc_uv=[100.0])
    with pytest.raises(EmgInputError, match="positive"):
        session_activation(s.emg_uv, FS, roles=s.roles, mvc_uv=[-1.0, None])
    with pytest.raises(EmgInputError, match="NaN"):
        mvc_reference(np.full((3000, 2), np.nan), FS)
