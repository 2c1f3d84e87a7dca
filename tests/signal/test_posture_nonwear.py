"""Non-wear: long stillness only, optional temperature."""

from __future__ import annotations

import numpy as np
import pytest

from glutewake.signal.nonwear import nonwear_mask


def test_long_still_run_is_nonwear_short_is_not() -> None:
    sd = np.full((4 * 3600, 3), 0.05)
    sd[100 : 100 + 3700] = 0.002  # 61.7 min still: off
    sd[5000 : 5000 + 1800] = 0.002  # 30 min still: worn (deep sitting)
    m = nonwear_mask(sd, 1.0)
    assert m[100 : 100 + 3700].all()
    assert not m[:100].any() and not m[3800:].any()


def test_one_moving_axis_breaks_stillness() -> None:
    sd = np.full((6000, 3), 0.002)  # 100 min still but for one epoch at 50 min
    sd[3000, 1] = 0.05
    assert not nonwear_mask(sd, 1.0).any()


def test_temperature_confirms_or_vetoes() -> None:
    sd = np.full((7200, 3), 0.002)
    warm = np.full(7200, 33.0)
    cold = np.full(7200, 22.0)
    assert not nonwear_mask(sd, 1.0, temperature_c=warm).any()
    assert nonwear_mask(sd, 1.0, temperature_c=cold).all()
    sd_short = np.full((1200, 3), 0.002)  # 20 min, cold: counts (>= a quarter of 60 min)
    assert nonwear_mask(sd_short, 1.0, temperature_c=np.full(1200, 20.0)).all()


def test_bad_shapes_raise() -> None:
    with pytest.raises(ValueError, match="sd_g"):
        nonwear_mask(np.zeros(10), 1.0)
    with pytest.raises(ValueError, match="temperature_c"):
        nonwear_mask(np.zeros((10, 3)), 1.0, temperature_c=np.zeros(3))
