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
