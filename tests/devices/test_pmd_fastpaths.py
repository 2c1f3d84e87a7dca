"""The fast paths of the Polar replay give exactly the numbers of the plain integer rules."""

from __future__ import annotations

import numpy as np
import pytest

from glutewake.devices import polar_pmd
from glutewake.devices._bits import unpack_fields, unpack_interleaved, unpack_interleaved_cm
from glutewake.devices._timing import fit_host_clock, map_to_host
from glutewake.devices.clock import fit_clock


def _py_rhe(num: int, den: int) -> int:
    q, r = divmod(num, den)
    return q + (1 if 2 * r > den or (2 * r == den and q & 1) else 0)


def _vendor_reference(
    ts: list[int], prev: list[int], n: list[int], spread: list[bool], fs: int
) -> list[int]:
    """The vendor rule frame by frame in Python integers."""
    out: list[int] = []
    for t, p, k_n, sp in zip(ts, prev, n, spread, strict=True):
        for k in range(1, k_n + 1):
            if sp:
                out.append(p + _py_rhe(k * (t - p), k_n))
            else:
                out.append(t - _py_rhe((k_n - k) * 1_000_000_000, fs))
    return out


@pytest.mark.parametrize("seed", range(6))
def test_vendor_times_match_integer_rule_including_ties(seed: int) -> None:
    rng = np.random.default_rng(seed)
    nf = 300
    n = rng.integers(1, 130, nf).astype(np.int64)
    # steps of m * n + n / 2 put samples exactly half way between integers (the tie rule)
    step = rng.integers(1, 40_000_000, nf) * n + np.where(rng.random(nf) < 0.5, n // 2, 0)
    ts = np.cumsum(step).astype(np.int64) + 10**12
    prev = ts - step
    for spread in (np.ones(nf, dtype=bool), rng.random(nf) < 0.8):
        got = polar_pmd._vendor_times_span(ts, prev, n, spread, 52.0)
        want = _vendor_reference(ts.tolist(), prev.tolist(), n.tolist(), spread.tolist(), 52)
        assert got.dtype == np.int64
        assert got.tolist() == want


def test_vendor_times_huge_steps_take_the_exact_integer_path() -> None:
    n = np.array([3, 7], dtype=np.int64)
    prev = np.array([1, 2**40], dtype=np.int64)
    ts = prev + np.array([2**52, 2**53 + 5], dtype=np.int64)  # products beyond 2**52
    got = polar_pmd._vendor_times_span(ts, prev, n, np.ones(2, dtype=bool), 52.0)
    want = _vendor_reference(ts.tolist(), prev.tolist(), n.tolist(), [True, True], 52)
    assert got.tolist() == want


def test_vendor_times_at_picks_single_samples() -> None:
    rng = np.random.default_rng(3)
    n = rng.integers(1, 60, 50).astype(np.int64)
    step = rng.integers(1, 10**9, 50).astype(np.int64)
    ts = np.cumsum(step) + 10**12
    spread = rng.random(50) < 0.7
    full = polar_pmd._vendor_times_span(ts, ts - step, n, spread, 52.0)
    first = np.cumsum(n) - n
    within = rng.integers(0, n)
    got = polar_pmd._vendor_times_at(ts, ts - step, n, spread, 52.0, within)
    assert np.array_equal(got, full[first + within])


@pytest.mark.parametrize("channels", [1, 3, 4])
def test_channel_major_unpack_is_the_transpose(channels: int) -> None:
    rng = np.random.default_rng(channels)
    buf = rng.integers(0, 256, 600, dtype=np.uint8)
    for max_w in (8, 17, 32):  # 3 x 32 bits no longer fits an 8-byte window: the field path
        width = rng.integers(1, max_w + 1, 400).astype(np.int64)
        bit_start = rng.integers(0, 600 * 8 - channels * 32, 400).astype(np.int64)
        cm = unpack_interleaved_cm(buf, bit_start, width, channels)
        assert cm.shape == (channels, 400) and cm.flags.c_contiguous
        rows = unpack_interleaved(buf, bit_start, width, channels)
        assert np.array_equal(cm.T, rows)
        fields = (bit_start[:, None] + np.arange(channels) * width[:, None]).reshape(-1)
        one = unpack_fields(buf, fields, np.repeat(width, channels)).reshape(-1, channels)
        assert np.array_equal(rows, one)


def test_host_clock_segments_map_like_map_to_host() -> None:
    rng = np.random.default_rng(5)
    # the device clock restarts after 400 packets
    dev = np.concatenate([np.arange(400) * 2_000_000, 5_000_000 + np.arange(300) * 2_000_000])
    dev = dev.astype(np.int64) + 10**15
    host = dev + 7_000 + rng.integers(0, 30_000, dev.size)
    host[400:] += 3_000_000_000
    rows = rng.integers(1, 40, dev.size).astype(np.int64)
    sample_dev = np.repeat(dev, rows) - rng.integers(0, 1_000_000, int(rows.sum()))
    clock = fit_host_clock(dev, host)
    assert len(clock.models) == 2 and clock.qc["clock_segments"] == 2
    out = np.empty(sample_dev.size, dtype=np.int64)
    clock.map_into(sample_dev, np.repeat(clock.segment, rows), out)
    t_us, qc = map_to_host(dev, host, sample_dev, None, packet_rows=rows)
    assert np.array_equal(out, t_us) and qc == clock.qc
    first = fit_clock(dev[:400], host[:400])
    n0 = int(rows[:400].sum())
    assert np.array_equal(t_us[:n0], first.to_host_us(sample_dev[:n0]))
    with pytest.raises(ValueError, match="sample_segment"):
        clock.map_into(sample_dev, None, out)


def test_to_host_us_into_equals_to_host_us() -> None:
    m = fit_clock(np.arange(0, 600_000_000, 1_000_000), np.arange(0, 600_000_000, 1_000_000) + 5)
    d = np.arange(10**12, 10**12 + 200_000 * 997, 997, dtype=np.int64)  # several chunks
    out = np.empty_like(d)
    m.to_host_us_into(d, out)
    assert np.array_equal(out, m.to_host_us(d))
