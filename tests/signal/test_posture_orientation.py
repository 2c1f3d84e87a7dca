"""Orientation from walking: any mounting, re-mounts found."""

from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation

from glutewake.signal.epochs import epoch_features
from glutewake.signal.orientation import find_orientation, inclination_deg

FS = 50.0


def _walk_stand_sit(rot: np.ndarray, seconds: int, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(int(seconds * FS)) / FS
    up = np.c_[np.zeros_like(t), np.zeros_like(t), np.ones_like(t)]
    walk = up + np.c_[0.3 * np.sin(2 * np.pi * 0.9 * t), 0 * t, 0.4 * np.sin(2 * np.pi * 1.8 * t)]
    sit = np.tile([np.sin(np.radians(80)), 0, np.cos(np.radians(80))], (t.size, 1))
    x = np.vstack([walk, up, sit, walk, sit]) @ rot.T
    return x + rng.normal(0, 0.005, x.shape)


def test_reference_found_for_random_mounting() -> None:
    rng = np.random.default_rng(0)
    for seed in range(5):
        rot = Rotation.random(random_state=seed).as_matrix()
        f = epoch_features(_walk_stand_sit(rot, 60, rng), FS)
        o = find_orientation(f.mean_g, f.sd_g, f.epoch_s)
        true_up = rot @ np.array([0.0, 0.0, 1.0])
        assert inclination_deg(o.up_ref, true_up)[0] < 3.0
        assert o.source == ("walking",) and o.confidence[0] > 0.9


def test_remount_is_detected_near_the_change() -> None:
    rng = np.random.default_rng(1)
    r1 = Rotation.random(random_state=1).as_matrix()
    r2 = Rotation.from_euler("x", 100, degrees=True).as_matrix() @ r1
    x = np.vstack([_walk_stand_sit(r1, 60, rng), _walk_stand_sit(r2, 60, rng)])
    f = epoch_features(x, FS)
    o = find_orientation(f.mean_g, f.sd_g, f.epoch_s)
    assert o.mount_start_epoch.size == 2
    assert 240 <= int(o.mount_start_epoch[1]) <= 360  # somewhere between the walking bouts
    assert inclination_deg(o.up_ref[1:], r2 @ np.array([0.0, 0.0, 1.0]))[0] < 3.0


def test_upside_down_gives_same_inclination() -> None:
    d = np.array([[0.0, 0.5, np.sqrt(0.75)]])
    up = np.array([0.0, 0.0, 1.0])
    np.testing.assert_allclose(inclination_deg(d, up), inclination_deg(-d, up))
    np.testing.assert_allclose(inclination_deg(d, up), [30.0], atol=1e-9)


def _direction(incl_deg: float, azimuth_deg: float) -> np.ndarray:
    a, b = np.radians(incl_deg), np.radians(azimuth_deg)
    return np.array([np.sin(a) * np.cos(b), np.sin(a) * np.sin(b), np.cos(a)])


def _still(
    direction: np.ndarray, seconds: int, sway_deg: float, rng: np.random.Generator
) -> np.ndarray:
    """Still posture; ``sway_deg`` amplitude of a slow (0.3 Hz) balance sway of the axis."""
    t = np.arange(int(seconds * FS)) / FS
    tilt = np.radians(sway_deg) * np.sin(2 * np.pi * 0.3 * t + rng.uniform(0, 6))
    perp = np.cross(direction, [1.0, 0.0, 0.0])
    perp /= np.linalg.norm(perp)
    x = np.cos(tilt)[:, None] * direction + np.sin(tilt)[:, None] * perp
    return x + rng.normal(0, 0.004, x.shape)


def _repocketed(rot: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """MotionSense subject 10: walk, then the phone re-pocketed with no walk after it, so
    sitting reads 40° and standing 58° from the walking reference (standing sways)."""
    rng = np.random.default_rng(4)
    t = np.arange(int(60 * FS)) / FS
    swing = np.radians(25 * np.sin(2 * np.pi * 0.9 * t))
    walk = np.c_[np.sin(swing), 0 * t, np.cos(swing) + 0.3 * np.sin(2 * np.pi * 1.8 * t)]
    sit, stand = _direction(40, 115), _direction(58, 0)
    parts = [
        (walk, False),
        (_still(sit, 60, 0.05, rng), True),
        (_still(stand, 60, 1.0, rng), False),
        (_still(sit, 60, 0.05, rng), True),
        (_still(stand, 60, 1.0, rng), False),
    ]
    acc = np.vstack([x for x, _ in parts]) @ rot.T
    truth = np.concatenate([np.full(x.shape[0], s) for x, s in parts])
    return acc, truth


def test_stale_reference_replaced_by_the_swaying_standing_cluster() -> None:
    from glutewake.signal.posture import PostureParams, analyse_posture

    for seed in (0, 1):
        rot = Rotation.random(random_state=seed).as_matrix()
        acc, truth = _repocketed(rot)
        res = analyse_posture(acc, FS, placement="thigh")
        pred = res.sample_mask(acc.shape[0])
        assert res.qc["reference_from_standing"] == [True]
        standing = ~truth & (np.arange(truth.size) >= 60 * FS)
        assert np.mean(pred[truth]) > 0.95 and np.mean(~pred[standing]) > 0.95
        off = analyse_posture(acc, FS, params=PostureParams(thigh_stand_max_deg=90.0))
        assert np.mean(off.sample_mask(acc.shape[0])[truth]) < 0.05  # inverted without it


def test_reference_kept_when_standing_reads_upright() -> None:
    from glutewake.signal.posture import analyse_posture

    rng = np.random.default_rng(5)
    x = _walk_stand_sit(Rotation.random(random_state=2).as_matrix(), 60, rng)
    res = analyse_posture(x, FS, placement="thigh")
    assert res.qc["reference_from_standing"] == [False]
