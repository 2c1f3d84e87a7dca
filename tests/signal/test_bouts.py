"""Sitting bouts and the break rule."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from glutewake.signal.bouts import sitting_bouts
from glutewake.signal.runs import fill_short_runs, run_bounds

S, U, W, N, L = 1, 2, 3, 0, 4


def seq(*parts: tuple[int, int]) -> np.ndarray:
    return np.concatenate([np.full(n, code, dtype=np.int8) for code, n in parts])


def test_short_interruption_does_not_break_a_bout() -> None:
    b = sitting_bouts(seq((S, 100), (U, 9), (S, 100), (U, 10), (S, 50)), 1.0)
    assert b.start_epoch.tolist() == [0, 219]
    assert b.end_epoch.tolist() == [209, 269]
    assert b.sitting_epochs.tolist() == [200, 50]
    assert b.ends_in_break.tolist() == [True, False]
    assert b.sit_to_stand_epoch.tolist() == [209]
    assert b.stand_to_sit_epoch.tolist() == [219]


def test_epoch_length_scales_the_rule() -> None:
    p = seq((S, 20), (U, 4), (S, 20))  # 4 epochs of 2 s = 8 s < 10 s
    assert len(sitting_bouts(p, 2.0)) == 1
    p = seq((S, 20), (U, 5), (S, 20))  # 10 s: a break
    assert len(sitting_bouts(p, 2.0)) == 2


def test_nonwear_and_lying_end_bouts_without_break() -> None:
    b = sitting_bouts(seq((S, 30), (N, 3), (S, 30), (L, 5), (S, 30), (W, 30)), 1.0)
    assert b.start_epoch.tolist() == [0, 33, 68]
    assert b.ends_in_break.tolist() == [False, False, True]
    assert b.stand_to_sit_epoch.tolist() == []


def test_segment_start_splits_and_is_no_transition() -> None:
    p = seq((S, 30), (U, 3), (S, 30))
    seg = np.zeros(p.size, dtype=bool)
    seg[31] = True  # a gap in time inside the short interruption
    b = sitting_bouts(p, 1.0, segment_start=seg)
    assert b.start_epoch.tolist() == [0, 33]
    assert b.ends_in_break.tolist() == [False, False]


def test_empty_and_all_sitting() -> None:
    assert len(sitting_bouts(np.zeros(0, dtype=np.int8), 1.0)) == 0
    b = sitting_bouts(seq((S, 10)), 1.0)
    assert b.duration_s.tolist() == [10.0]


def test_bad_input_raises() -> None:
    with pytest.raises(ValueError, match="1-D"):
        sitting_bouts(np.zeros((3, 2)), 1.0)
    with pytest.raises(ValueError, match="epoch_s"):
        sitting_bouts(np.zeros(3), 0.0)


def test_fill_short_runs() -> None:
    x = np.array([1, 1, 1, 2, 1, 1, 3, 3, 3], dtype=np.int8)
    assert fill_short_runs(x, 2).tolist() == [1, 1, 1, 1, 1, 1, 3, 3, 3]
    s, e, v = run_bounds(x)
    assert s.tolist() == [0, 3, 4, 6] and e.tolist() == [3, 4, 6, 9] and v.tolist() == [1, 2, 1, 3]


@given(
    st.lists(st.tuples(st.sampled_from([N, S, U, W, L, 5]), st.integers(1, 25)), max_size=40),
    st.integers(0, 15),
    st.lists(st.integers(0, 400), max_size=5),
)
@settings(max_examples=200, deadline=None)
def test_bout_invariants(parts: list[tuple[int, int]], min_break: int, seg_at: list[int]) -> None:
    p = seq(*parts) if parts else np.zeros(0, dtype=np.int8)
    seg = np.zeros(p.size, dtype=bool)
    for i in seg_at:
        if i < p.size:
            seg[i] = True
    b = sitting_bouts(p, 1.0, min_break_s=float(min_break), segment_start=seg)
    # Every sitting epoch is in exactly one bout; bouts are sorted, disjoint, start and end
    # sitting, hold only sitting and short upright interruptions, and never span a segment start.
    assert int(b.sitting_epochs.sum()) == int(np.sum(p == S))
    assert np.all(b.start_epoch[1:] >= b.end_epoch[:-1])
    for s, e, brk in zip(b.start_epoch, b.end_epoch, b.ends_in_break, strict=True):
        assert p[s] == S and p[e - 1] == S
        inside = p[s:e]
        assert np.all(np.isin(inside, (S, U, W, 5)))
        run = 0
        for v in inside:
            run = run + 1 if v != S else 0
            assert run < max(min_break, 1)
        assert not seg[s + 1 : e].any()
        if brk:
            after = p[e : e + max(min_break, 1)]
            assert after.size == max(min_break, 1) and np.all(np.isin(after, (U, W, 5)))
            assert not seg[e : e + max(min_break, 1)].any()
    assert np.all(np.isin(b.sit_to_stand_epoch, b.end_epoch[b.ends_in_break]))
