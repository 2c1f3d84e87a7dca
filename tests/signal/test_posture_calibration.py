"""Auto-calibration recovers a known gain and offset."""

from __future__ import annotations

import numpy as np

from glutewake.signal.calibration import apply_calibration, calibrate_from_epochs
from glutewake.signal.epochs import epoch_features


def _sphere_points(n: int, seed: int) -> np.ndarray:
    u = np.random.default_rng(seed).normal(size=(n, 3))
    return u / np.linalg.norm(u, axis=1, keepdims=True)


def test_recovers_known_gain_and_offset() -> None:
    true = _sphere_points(400, 0)
    gain_err = np.array([1.03, 0.97, 1.01])
    offset_err = np.array([0.04, -0.02, 0.015])
    raw = true * gain_err + offset_err
    cal = calibrate_from_epochs(raw, np.full_like(raw, 0.002))
    assert cal.success
    np.testing.assert_allclose(cal.gain, 1 / gain_err, atol=1e-3)
    np.testing.assert_allclose(cal.offset_g, -offset_err / gain_err, atol=1e-3)
    fixed, _ = apply_calibration(raw, np.zeros_like(raw), cal)
    assert np.max(np.abs(np.linalg.norm(fixed, axis=1) - 1)) < 1e-3
    assert cal.error_after_g < cal.error_before_g / 10


def test_from_samples_with_noise() -> None:
    fs = 50.0
    dirs = _sphere_points(60, 1)
    acc = np.repeat(dirs, int(10 * fs), axis=0) * [0.98, 1.02, 1.0] + [0.0, 0.03, -0.02]
    acc += np.random.default_rng(2).normal(0, 0.003, acc.shape)
    feats = epoch_features(acc, fs)
    cal = calibrate_from_epochs(feats.mean_g, feats.sd_g)
    assert cal.success
    np.testing.assert_allclose(cal.gain, [1 / 0.98, 1 / 1.02, 1.0], atol=3e-3)


def test_insufficient_orientations_give_identity() -> None:
    raw = np.tile([0.0, 0.0, 1.05], (500, 1))
    cal = calibrate_from_epochs(raw, np.zeros_like(raw))
    assert not cal.success
    assert "orientations" in cal.reason
    np.testing.assert_array_equal(cal.gain, np.ones(3))
    np.testing.assert_array_equal(cal.offset_g, np.zeros(3))


def test_moving_epochs_are_not_used() -> None:
    raw = _sphere_points(400, 3) * 1.05
    sd = np.full_like(raw, 0.2)  # nothing still
    cal = calibrate_from_epochs(raw, sd)
    assert not cal.success and cal.n_still == 0
