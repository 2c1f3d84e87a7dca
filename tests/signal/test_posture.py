"""Posture classification on simulated thigh days: accuracy, invariances, chunking, errors."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from glutewake.signal.epochs import EpochFeatureAccumulator
from glutewake.signal.posture import (
    Posture,
    PostureParams,
    analyse_posture,
    classify_epochs,
    sitting_mask,
)
from glutewake.simulate.posture import SimulatedDays, simulate_thigh_days

FS_HZ = 25.0
START_US = 1_780_000_000_000_000  # 2026-05-28


@pytest.fixture(scope="module")
def sim() -> SimulatedDays:
    return simulate_thigh_days(1.0, FS_HZ, start_us=START_US, tz="Europe/Berlin", seed=11)


@pytest.fixture(scope="module")
def result(sim: SimulatedDays):
    return analyse_posture(sim.acc_g, FS_HZ)


def _interior(mask: np.ndarray, margin: int) -> np.ndarray:
    """Mask eroded by ``margin`` epochs (ignore the blurry edges of runs)."""
    out = mask.copy()
    for k in range(1, margin + 1):
        out[k:] &= mask[:-k]
        out[:-k] &= mask[k:]
    return out


def test_sedentary_agreement_with_truth(sim: SimulatedDays, result) -> None:
    truth = sim.epoch_labels(result.samples_per_epoch)
    sed_true = np.isin(truth, (Posture.SITTING, Posture.LYING))
    sed_pred = np.isin(result.posture, (Posture.SITTING, Posture.LYING))
    assert np.mean(sed_true == sed_pred) > 0.98
    assert result.qc["calibration"]["success"] is True


def test_nonwear_is_never_sitting(sim: SimulatedDays, result) -> None:
    truth = sim.epoch_labels(result.samples_per_epoch)
    off = _interior(truth == Posture.NONWEAR, 3)
    assert off.sum() > 3600  # the night is off the body
    assert not np.any(result.posture[off] == Posture.SITTING)
    assert np.mean(result.posture[off] == Posture.NONWEAR) > 0.99


def test_remount_mid_day_is_followed(sim: SimulatedDays, result) -> None:
    # Every true mounting's sitting is recognised, whatever its rotation.
    truth = sim.epoch_labels(result.samples_per_epoch)
    ep_start = (sim.mount_start_us - START_US) / 1e6 / result.epoch_s
    bounds = np.append(ep_start.astype(np.int64), truth.size)
    assert sim.mount_start_us.size >= 2
    for a, b in itertools.pairwise(bounds):
        sit = truth[a:b] == Posture.SITTING
        if sit.sum() > 600:
            assert np.mean(result.posture[a:b][sit] == Posture.SITTING) > 0.97


def test_rotation_and_mirror_invariance() -> None:
    sim = simulate_thigh_days(
        0.5, FS_HZ, start_us=START_US, seed=5, gain_error=0.0, offset_error_g=0.0
    )
    base = analyse_posture(sim.acc_g, FS_HZ, params=PostureParams(calibrate=False)).posture
    rot = Rotation.random(random_state=7).as_matrix().astype(np.float32)
    turned = analyse_posture(sim.acc_g @ rot.T, FS_HZ, params=PostureParams(calibrate=False))
    mirrored = analyse_posture(
        sim.acc_g * np.float32([-1, 1, 1]), FS_HZ, params=PostureParams(calibrate=False)
    )
    assert np.mean(turned.posture == base) > 0.999
    assert np.mean(mirrored.posture == base) > 0.999


def test_chunked_equals_single_pass(sim: SimulatedDays, result) -> None:
    rng = np.random.default_rng(0)
    accu = EpochFeatureAccumulator(FS_HZ, 1.0)
    i = 0
    n = sim.acc_g.shape[0]
    while i < n:
        step = int(rng.integers(1, 200_000))
        accu.feed(sim.acc_g[i : i + step])
        i += step
    chunked = classify_epochs(accu.finish())
    np.testing.assert_array_equal(chunked.posture, result.posture)
    np.testing.assert_allclose(chunked.inclination_deg, result.inclination_deg, atol=1e-4)


def test_sitting_mask_contract(sim: SimulatedDays) -> None:
    acc = sim.acc_g[: int(3 * 3600 * FS_HZ) + 7]  # a partial epoch at the end
    mask = sitting_mask(acc, FS_HZ)
    assert mask.dtype == bool and mask.shape == (acc.shape[0],)
    assert mask[-1] == mask[-8]
    res = analyse_posture(acc, FS_HZ, placement="waist")
    assert res.qc["placement"] == "waist"


def test_standing_then_sitting_minimal_signal() -> None:
    # Walking establishes "up" along +y; then still at 80° from it is sitting.
    fs = 50.0
    rng = np.random.default_rng(1)
    t = np.arange(int(60 * fs)) / fs
    walk = np.c_[0.3 * np.sin(2 * np.pi * 1.8 * t), 1 + 0.4 * np.sin(2 * np.pi * 0.9 * t), 0 * t]
    stand = np.tile([0.0, 1.0, 0.0], (int(60 * fs), 1))
    sit = np.tile([0.0, np.cos(np.radians(80)), np.sin(np.radians(80))], (int(60 * fs), 1))
    acc = np.vstack([walk, stand, sit]) + rng.normal(0, 0.01, (int(180 * fs), 3))
    res = analyse_posture(acc, fs)
    assert np.all(res.posture[5:55] == Posture.MOVING)
    assert np.all(res.posture[65:115] == Posture.STANDING)
    assert np.all(res.posture[125:] == Posture.SITTING)


@pytest.mark.parametrize(
    ("acc", "fs", "placement", "exc"),
    [
        (np.zeros((100, 2)), 50.0, "thigh", ValueError),
        (np.zeros(100), 50.0, "thigh", ValueError),
        (np.full((100, 3), np.nan), 50.0, "thigh", ValueError),
        (np.zeros((100, 3)), 0.0, "thigh", ValueError),
        (np.zeros((100, 3)), 50.0, "ankle", ValueError),
        (np.full((100, 3), "a"), 50.0, "thigh", TypeError),
    ],
)
def test_bad_input_raises(acc: np.ndarray, fs: float, placement: str, exc: type) -> None:
    with pytest.raises(exc):
        analyse_posture(acc, fs, placement=placement)


def test_bad_params_raise() -> None:
    with pytest.raises(ValueError, match="thigh_sit_angle_deg"):
        PostureParams(thigh_sit_angle_deg=95.0)
    with pytest.raises(ValueError, match="epoch_s"):
        PostureParams(epoch_s=0.0)


def test_bad_new_params_raise() -> None:
    with pytest.raises(ValueError, match="lying_bridge_max_s"):
        PostureParams(lying_bridge_max_s=-1.0)
    with pytest.raises(ValueError, match="lying_bridge_min_deg"):
        PostureParams(lying_bridge_min_deg=0.0)
    with pytest.raises(ValueError, match="thigh_stand_max_deg"):
        PostureParams(thigh_stand_max_deg=120.0)
    with pytest.raises(ValueError, match="stand_sway_ratio"):
        PostureParams(stand_sway_ratio=float("nan"))
