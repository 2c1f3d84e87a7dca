"""Waist placement: transitions (pelvis drop / rise), hysteresis, placement recognition."""

from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation

from glutewake.signal.posture import Posture, PostureParams, analyse_posture, hysteresis
from glutewake.signal.transitions import vertical_displacement_m

FS = 50.0


def _tilted(tilt_deg: np.ndarray, vert_g: np.ndarray) -> np.ndarray:
    """Specific force of a pelvis tilted forward by ``tilt_deg`` with vertical acceleration."""
    t = np.radians(tilt_deg)
    f = 1.0 + vert_g
    return np.c_[f * np.sin(t), np.zeros_like(t), f * np.cos(t)]


def _phase(seconds: float, tilt_from: float, tilt_to: float, vert: str = "none") -> np.ndarray:
    n = int(seconds * FS)
    s = np.linspace(0, 1, n, endpoint=False)
    tilt = tilt_from + (tilt_to - tilt_from) * s
    if vert == "walk":
        a = 0.3 * np.sin(2 * np.pi * 1.9 * s * seconds)
        tilt = tilt + 3 * np.sin(2 * np.pi * 0.95 * s * seconds)
    elif vert in ("down", "up"):
        a = 0.2 * np.sin(2 * np.pi * s) * (-1 if vert == "down" else 1)
    else:
        a = np.zeros(n)
    return _tilted(tilt, a)


def _day(sit_tilt: float) -> tuple[np.ndarray, np.ndarray]:
    """Walk, stand, sit down, sit, stand up, stand, walk; truth per epoch (1 s)."""
    parts = [
        (_phase(30, 0, 0, "walk"), Posture.MOVING),
        (_phase(20, 2, 2), Posture.STANDING),
        (_phase(1.2, 2, sit_tilt, "down"), -1),
        (_phase(30.8, sit_tilt, sit_tilt), Posture.SITTING),
        (_phase(1.2, sit_tilt, 2, "up"), -1),
        (_phase(20.8, 2, 2), Posture.STANDING),
        (_phase(30, 0, 0, "walk"), Posture.MOVING),
    ]
    acc = np.vstack([p for p, _ in parts])
    acc += np.random.default_rng(0).normal(0, 0.004, acc.shape)
    truth = np.concatenate([np.full(int(p.shape[0] / FS), c) for p, c in parts[:2]])
    truth = np.r_[truth, -1, np.full(31, Posture.SITTING), -1, np.full(20, Posture.STANDING)]
    return acc, truth


def test_displacement_sign_and_size() -> None:
    n = int(1.2 * FS)
    s = np.linspace(0, 1, n, endpoint=False)
    still = np.zeros(int(FS))
    down = np.r_[still, -0.2 * np.sin(2 * np.pi * s), still]
    expected = 0.2 * 9.80665 * 1.2**2 / (2 * np.pi)
    acc = np.c_[np.zeros_like(down), np.zeros_like(down), 1 + down]
    assert abs(vertical_displacement_m(acc, FS) + expected) < 0.03
    rot = Rotation.random(random_state=3).as_matrix()
    up = np.c_[np.zeros_like(down), np.zeros_like(down), 1 - down] @ rot.T * 1.02  # gain error
    assert abs(vertical_displacement_m(up, FS) - expected) < 0.03


def test_upright_sitter_found_by_the_drop_and_rise() -> None:
    acc, truth = _day(sit_tilt=8.0)  # 8° is below the 12° sitting angle
    with_tr = analyse_posture(acc, FS, placement="waist")
    without = analyse_posture(
        acc, FS, placement="waist", params=PostureParams(waist_use_transitions=False)
    )
    sit = np.flatnonzero(truth == Posture.SITTING)[2:-2]
    stand = np.flatnonzero(truth == Posture.STANDING)[2:-2]
    assert np.mean(with_tr.posture[sit] == Posture.SITTING) > 0.95
    assert np.mean(with_tr.posture[stand] == Posture.STANDING) > 0.95
    assert np.mean(without.posture[sit] == Posture.SITTING) < 0.05
    assert with_tr.qc["periods_decided_by_transitions"] >= 1


def test_clear_inclination_is_not_overruled() -> None:
    acc, truth = _day(sit_tilt=30.0)
    res = analyse_posture(acc, FS, placement="waist")
    sit = np.flatnonzero(truth == Posture.SITTING)[2:-2]
    assert np.mean(res.posture[sit] == Posture.SITTING) > 0.95


def test_auto_placement_from_gait_swing() -> None:
    waist, _ = _day(sit_tilt=30.0)
    assert analyse_posture(waist, FS, placement="auto").qc["placement"] == "waist"
    t = np.arange(int(60 * FS)) / FS
    swing = np.radians(12 + 25 * np.sin(2 * np.pi * 0.9 * t))  # thigh swings +-25°
    thigh = np.c_[np.sin(swing), 0 * t, np.cos(swing) + 0.3 * np.sin(2 * np.pi * 1.8 * t)]
    thigh = np.vstack([thigh, np.tile([np.sin(1.4), 0, np.cos(1.4)], (int(60 * FS), 1))])
    thigh += np.random.default_rng(1).normal(0, 0.004, thigh.shape)
    res = analyse_posture(thigh, FS, placement="auto")
    assert res.qc["placement"] == "thigh" and res.qc["gait_swing_deg"] > 14


def test_hysteresis_keeps_state_inside_band() -> None:
    x = np.array([0, 11, 13, 11, 9, 11, 13, 15, 11, 9.0])
    assert hysteresis(x, 12.0, 0.0).tolist() == [v >= 12 for v in x]
    assert hysteresis(x, 12.0, 2.0).tolist() == [
        False,
        False,
        False,
        False,
        False,
        False,
        False,
        True,
        True,
        False,
    ]


def test_chunked_waist_equals_single_pass() -> None:
    from glutewake.signal.epochs import EpochFeatureAccumulator
    from glutewake.signal.posture import classify_epochs

    acc, _ = _day(sit_tilt=8.0)
    accu = EpochFeatureAccumulator(FS, 1.0)
    for chunk in np.array_split(acc, 7):
        accu.feed(chunk)
    chunked = classify_epochs(accu.finish(), placement="waist", acc_g=acc)
    single = analyse_posture(acc, FS, placement="waist")
    np.testing.assert_array_equal(chunked.posture, single.posture)


def _lying_day(middle: list[tuple[np.ndarray, int]]) -> tuple[np.ndarray, np.ndarray]:
    """Walk, stand, lie down, lie, *middle*, lie, get up, walk; truth per epoch (1 s)."""
    parts = [
        (_phase(30, 0, 0, "walk"), Posture.MOVING),
        (_phase(20, 2, 2), Posture.STANDING),
        (_phase(3, 2, 85, "down"), -1),
        (_phase(30, 85, 85), Posture.LYING),
        *middle,
        (_phase(30, 85, 85), Posture.LYING),
        (_phase(3, 85, 2, "up"), -1),
        (_phase(30, 0, 0, "walk"), Posture.MOVING),
    ]
    acc = np.vstack([p for p, _ in parts])
    acc += np.random.default_rng(2).normal(0, 0.004, acc.shape)
    truth = np.concatenate([np.full(round(p.shape[0] / FS), c) for p, c in parts])
    return acc, truth


def test_upright_sitter_between_lying_is_sitting() -> None:
    # HAPT's lie-to-sit-to-lie: sitting up on the bed with the pelvis as upright as standing
    # (4° < the 12° sitting angle) and no pelvis rise to measure; it used to read standing.
    acc, truth = _lying_day(
        [
            (_phase(3, 85, 4), -1),
            (_phase(30, 4, 4), Posture.SITTING),
            (_phase(3, 4, 85), -1),
        ]
    )
    res = analyse_posture(acc, FS, placement="waist")
    off = analyse_posture(acc, FS, placement="waist", params=PostureParams(lying_bridge_max_s=0))
    sit = np.flatnonzero(truth == Posture.SITTING)[2:-2]
    stand = np.flatnonzero(truth == Posture.STANDING)[2:-2]
    assert np.mean(res.posture[sit] == Posture.SITTING) > 0.95
    assert np.mean(off.posture[sit] == Posture.STANDING) > 0.95  # the rule does the work
    assert np.mean(res.posture[stand] == Posture.STANDING) > 0.95
    assert res.qc["periods_sitting_between_lying"] == 1


def test_standing_reached_by_walking_between_lying_stays_standing() -> None:
    acc, truth = _lying_day(
        [
            (_phase(3, 85, 2, "up"), -1),
            (_phase(20, 0, 0, "walk"), Posture.MOVING),
            (_phase(30, 2, 2), Posture.STANDING),
            (_phase(20, 0, 0, "walk"), Posture.MOVING),
            (_phase(3, 2, 85, "down"), -1),
        ]
    )
    res = analyse_posture(acc, FS, placement="waist")
    stand = np.flatnonzero(truth == Posture.STANDING)[2:-2]
    assert np.mean(res.posture[stand] == Posture.STANDING) > 0.95
    assert res.qc["periods_sitting_between_lying"] == 0


def test_reclined_sit_does_not_anchor_the_lying_rule() -> None:
    # A sit reclined to 65° reads as lying at the pelvis (HAPT #38); the standing period
    # after it, before real lying, must stay standing.
    parts = [
        (_phase(30, 0, 0, "walk"), Posture.MOVING),
        (_phase(20, 2, 2), Posture.STANDING),
        (_phase(2, 2, 65, "down"), -1),
        (_phase(30, 65, 65), Posture.SITTING),
        (_phase(2, 65, 2, "up"), -1),
        (_phase(30, 2, 2), Posture.STANDING),
        (_phase(3, 2, 85, "down"), -1),
        (_phase(30, 85, 85), Posture.LYING),
    ]
    acc = np.vstack([p for p, _ in parts])
    acc += np.random.default_rng(3).normal(0, 0.004, acc.shape)
    truth = np.concatenate([np.full(round(p.shape[0] / FS), c) for p, c in parts])
    res = analyse_posture(acc, FS, placement="waist")
    stand = np.flatnonzero(truth == Posture.STANDING)[2:-2]
    assert np.mean(res.posture[stand] == Posture.STANDING) > 0.95
    assert res.qc["periods_sitting_between_lying"] == 0
