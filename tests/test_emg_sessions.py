"""EMG recordings with gaps: detection runs per contiguous span, never across a gap."""

from __future__ import annotations

import numpy as np

from glutewake.pipeline.emg_sessions import detect_by_span
from glutewake.signal.emg import DetectionParams, detect_contractions
from glutewake.simulate.emg import emg_carrier

FS = 1000.0


def _segment(seconds: float, burst: tuple[float, float], seed: int) -> np.ndarray:
    n = int(seconds * FS)
    x = 5.0 * emg_carrier(n, FS, seed)
    lo, hi = (int(b * FS) for b in burst)
    x[lo:hi] += 60.0 * emg_carrier(hi - lo, FS, seed + 100)
    return x


def test_bursts_either_side_of_a_gap_stay_two_contractions() -> None:
    # the link dropped 40 ms after one contraction ended and came back 5 s later, 40 ms before
    # the next began: in sample order they are 80 ms apart, so one pass over the joined
    # samples merges them into a single "contraction" spanning the gap
    a = _segment(10.0, (7.0, 9.96), seed=1)
    b = _segment(10.0, (0.04, 3.0), seed=2)
    emg = np.concatenate([a, b])
    t_a = np.arange(len(a)) * 1000
    t_us = np.concatenate([t_a, t_a[-1] + 5_000_000 + np.arange(len(b)) * 1000]).astype(np.int64)
    params = DetectionParams()

    joined = detect_contractions(emg, FS, params=params)
    assert len(joined) == 1  # the failure this guards against

    found = detect_by_span(emg, FS, t_us, params)
    assert len(found) == 2
    gap_at = len(a)
    assert found.offset_idx[0] < gap_at <= found.onset_idx[1]
    # the first is timed as usual; the second began 40 ms into its span, too little rest for
    # a baseline before it, so its onset can only be placed between the span start and 30 ms late
    assert abs(found.onset_idx[0] - 7.0 * FS) <= 30 and abs(found.offset_idx[0] - 9.96 * FS) <= 60
    assert gap_at <= found.onset_idx[1] <= gap_at + 0.04 * FS + 30


def test_without_gaps_it_is_exactly_one_pass() -> None:
    emg = _segment(12.0, (4.0, 6.0), seed=3)
    t_us = (np.arange(len(emg)) * 1000).astype(np.int64)
    one = detect_contractions(emg, FS)
    by_span = detect_by_span(emg, FS, t_us, DetectionParams())
    assert np.array_equal(one.onset_idx, by_span.onset_idx)
    assert np.array_equal(one.offset_idx, by_span.offset_idx)
    assert np.array_equal(one.confidence, by_span.confidence)
