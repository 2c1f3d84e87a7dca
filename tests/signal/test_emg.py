"""Tests for glutewake.signal.emg: conditioning, mains, detection, chunking, errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from glutewake.signal import emg_condition, emg_onsets
from glutewake.signal.emg import (
    Contractions,
    ContractionStream,
    EmgInputError,
    concat_contractions,
    condition,
    contraction_features,
    detect_contractions,
    detect_contractions_chunked,
    envelope,
    estimate_mains_hz,
)
from glutewake.signal.emg_onsets import ramp_onset
from glutewake.simulate.emg import simulate_emg

BIOSPPY_EMG = (Path(__file__).resolve().parents[2] / ".." / "shared" / "datasets"
               / "biosppy_example_emg" / "emg_1.txt")


def _match(sim_on: np.ndarray, sim_off: np.ndarray, res: Contractions, ch: int | None = None
           ) -> tuple[int, int, np.ndarray]:
    on, off = res.onset_idx, res.offset_idx
    if ch is not None:
        sel = res.channel == ch
        on, off = on[sel], off[sel]
    used = np.zeros(on.size, dtype=bool)
    errs = []
    for a, b in zip(sim_on, sim_off, strict=True):
        cand = np.flatnonzero((on <= b) & (off >= a) & ~used)
        if cand.size:
            k = cand[np.argmin(np.abs(on[cand] - a))]
            used[k] = True
            errs.append(on[k] - a)
    return len(errs), int((~used).sum()), np.asarray(errs)


@pytest.mark.parametrize("fs_hz", [1000.0, 2000.0])
def test_onsets_accurate_at_10_db(fs_hz: float) -> None:
    sim = simulate_emg(duration_s=60, fs_hz=fs_hz, snr_db=10, seed=11)
    res = detect_contractions(sim.emg_uv, fs_hz)
    matched, false, errs = _match(sim.onset_idx, sim.offset_idx, res)
    assert matched == sim.onset_idx.size
    assert false == 0
    err_ms = np.abs(errs) / fs_hz * 1000
    assert np.median(err_ms) <= 15
    assert np.percentile(err_ms, 90) <= 35


def test_onsets_at_3_db_detected_with_bounded_error() -> None:
    sim = simulate_emg(duration_s=50, fs_hz=1000.0, snr_db=3, seed=12)
    res = detect_contractions(sim.emg_uv, 1000.0)
    matched, false, errs = _match(sim.onset_idx, sim.offset_idx, res)
    assert matched >= 0.9 * sim.onset_idx.size
    assert false <= 0.15 * sim.onset_idx.size
    assert np.median(np.abs(errs)) <= 35


def test_offsets_and_features_match_truth_at_20_db() -> None:
    fs = 1000.0
    sim = simulate_emg(duration_s=40, fs_hz=fs, snr_db=20, seed=13, amplitude_jitter=0.0)
    res = detect_contractions(sim.emg_uv, fs)
    assert len(res) == sim.onset_idx.size
    assert np.median(np.abs(res.offset_idx - sim.offset_idx)) <= 15
    # plateau RMS is the reference amplitude; the RMS-envelope peak sits a little above it
    ref = sim.noise_uv * 10 ** (20 / 20)
    assert np.all(res.peak_uv > 0.9 * ref)
    assert np.all(res.peak_uv < 1.6 * ref)
    assert np.all(res.mean_uv < res.peak_uv)
    assert np.all((res.time_to_peak_s >= 0) & (res.time_to_peak_s <= res.duration_s))
    assert np.all((res.confidence > 0.9) & (res.confidence <= 1.0))


def test_multichannel_channels_independent() -> None:
    fs = 1000.0
    sim = simulate_emg(duration_s=45, fs_hz=fs, snr_db=12, n_channels=3, seed=14)
    res = detect_contractions(sim.emg_uv, fs)
    assert res.n_channels == 3
    for ch in range(3):
        sel = sim.channel == ch
        matched, false, _ = _match(sim.onset_idx[sel], sim.offset_idx[sel], res, ch)
        assert matched == sel.sum()
        assert false == 0
    # a single-channel run finds the same contractions as that column of the multichannel run
    # (mains lines are found from all channels together, so onsets may move a little)
    one = detect_contractions(sim.emg_uv[:, 1], fs)
    assert one.onset_idx.size == res.for_channel(1).onset_idx.size
    diff = np.abs(one.onset_idx - res.for_channel(1).onset_idx)
    assert np.median(diff) <= 2 and diff.max() <= 25
    assert np.all(one.channel == 0)


def test_one_d_input_gives_zero_channel() -> None:
    sim = simulate_emg(duration_s=20, fs_hz=1000.0, snr_db=15, seed=15)
    res = detect_contractions(sim.emg_uv, 1000.0)
    assert len(res) > 0
    assert res.channel.dtype == np.int64 and np.all(res.channel == 0)
    assert res.onset_idx.dtype == np.int64


@pytest.mark.parametrize("sizes", [[3967], [1000, 1, 2, 15000, 555], [32000], [61500, 7]])
def test_chunked_identical_to_single_pass(sizes: list[int]) -> None:
    # 130 s: two whole 60 s conditioning blocks and a partial one, cut anywhere.
    fs = 1000.0
    sim = simulate_emg(duration_s=130, fs_hz=fs, snr_db=8, n_channels=2, seed=16)
    single = detect_contractions(sim.emg_uv, fs)
    cuts = np.cumsum(sizes * (sim.emg_uv.shape[0] // sum(sizes) + 1))
    cuts = cuts[cuts < sim.emg_uv.shape[0]]
    chunked = detect_contractions_chunked(np.split(sim.emg_uv, cuts), fs)
    for name in ("onset_idx", "offset_idx", "channel", "confidence", "peak_uv", "mean_uv",
                 "time_to_peak_s"):
        assert np.array_equal(getattr(single, name), getattr(chunked, name)), name


def test_stream_emits_contractions_before_close() -> None:
    fs = 1000.0
    sim = simulate_emg(duration_s=80, fs_hz=fs, snr_db=15, seed=17)
    stream = ContractionStream(fs)
    parts = [stream.push(c) for c in np.array_split(sim.emg_uv, 8)]
    assert sum(len(p) for p in parts) > 0  # results arrive while streaming, not only at the end
    parts.append(stream.close())
    joined = concat_contractions(parts)
    assert np.array_equal(joined.onset_idx, detect_contractions(sim.emg_uv, fs).onset_idx)
    with pytest.raises(EmgInputError):
        stream.push(sim.emg_uv[:100])


@pytest.mark.parametrize("mains", [50.0, 60.0])
def test_mains_detected_and_removed(mains: float) -> None:
    fs = 1000.0
    sim = simulate_emg(duration_s=30, fs_hz=fs, snr_db=10, seed=18, mains_hz=mains,
                       hum_rel=6.0)
    assert estimate_mains_hz(sim.emg_uv, fs) == mains
    res = detect_contractions(sim.emg_uv, fs)
    assert res.mains_hz == mains
    y = condition(sim.emg_uv, fs)
    spec = np.abs(np.fft.rfft(y)) ** 2
    f = np.fft.rfftfreq(y.size, 1 / fs)
    line = spec[np.abs(f - mains) < 0.2].max()
    neighbourhood = np.median(spec[(np.abs(f - mains) > 2) & (np.abs(f - mains) < 8)])
    assert line < 20 * neighbourhood  # hum at most a small bump, not a line 1000x the floor


def test_no_mains_reported_without_hum() -> None:
    sim = simulate_emg(duration_s=30, fs_hz=1000.0, snr_db=10, seed=19, mains_hz=None)
    assert estimate_mains_hz(sim.emg_uv, 1000.0) is None


def test_condition_band_limits_and_removes_wander() -> None:
    fs = 1000.0
    t = np.arange(int(20 * fs)) / fs
    x = 200 * np.sin(2 * np.pi * 0.3 * t) + 10 * np.sin(2 * np.pi * 100 * t)
    y = condition(x, fs, mains_hz=None)
    core = slice(int(fs), -int(fs))
    assert abs(y[core].std() - 10 / np.sqrt(2)) < 0.5  # 100 Hz passes, 0.3 Hz wander is gone
    assert y.shape == x.shape


def test_envelope_rms_of_sine() -> None:
    fs = 1000.0
    t = np.arange(5000) / fs
    env = envelope(3 * np.sin(2 * np.pi * 100 * t), fs, conditioned=True, window_s=0.1)
    assert np.allclose(env[500:-500], 3 / np.sqrt(2), rtol=0.02)


def test_classic_methods_find_clear_bursts() -> None:
    fs = 1000.0
    sim = simulate_emg(duration_s=40, fs_hz=fs, snr_db=20, seed=20)
    for method in ("hodges_bui", "bonato"):
        res = detect_contractions(sim.emg_uv, fs, method=method)
        matched, _, errs = _match(sim.onset_idx, sim.offset_idx, res)
        assert res.method == method
        assert matched == sim.onset_idx.size
        assert np.median(np.abs(errs)) < 60


def test_contraction_features_given_indices() -> None:
    fs = 1000.0
    t = np.arange(4000) / fs
    x = np.where((t > 1) & (t < 2), 50.0, 5.0) * np.sin(2 * np.pi * 120 * t)
    peak, mean, ttp = contraction_features(x, fs, np.array([1000]), np.array([1999]),
                                           conditioned=True)
    assert peak[0] == pytest.approx(50 / np.sqrt(2), rel=0.03)
    assert mean[0] < peak[0]
    assert 0 <= ttp[0] <= 1.0


def test_200_hz_still_detects() -> None:
    fs = 200.0
    sim = simulate_emg(duration_s=45, fs_hz=fs, snr_db=10, seed=21)
    res = detect_contractions(sim.emg_uv, fs)
    matched, false, errs = _match(sim.onset_idx, sim.offset_idx, res)
    assert matched == sim.onset_idx.size
    # at 200 Hz the 20-90 Hz band keeps more ECG and motion residue: a few false detections
    assert false <= 0.15 * sim.onset_idx.size
    assert np.median(np.abs(errs)) / fs * 1000 <= 25


def test_ramp_onset_finds_step_and_ramp() -> None:
    rng = np.random.default_rng(0)
    y = np.r_[rng.exponential(1.0, 150), rng.exponential(30.0, 150)]
    assert abs(ramp_onset(y, 1.0, 200, (0, 5, 10, 20), 60, 1.0) - 150) <= 2
    ramp = 1.0 + 30.0 * np.clip((np.arange(300) - 120 + 0.5) / 40, 0, 1) ** 2
    y2 = rng.exponential(1.0, 300) * ramp
    assert abs(ramp_onset(y2, 1.0, 200, (0, 10, 20, 40, 60), 80, 1.0) - 120) <= 12


@pytest.mark.parametrize(
    ("bad", "fs", "message"),
    [
        (np.array([]), 1000.0, "empty"),
        (np.full(2000, np.nan), 1000.0, "NaN"),
        (np.ones((10, 2, 2)), 1000.0, "1-D or 2-D"),
        (np.ones(100), 1000.0, "too short"),
        (np.ones(2000), 20.0, "fs_hz"),
        (np.ones(2000), float("nan"), "fs_hz"),
        (np.array(["a"] * 2000), 1000.0, "numeric"),
    ],
)
def test_bad_input_raises(bad: np.ndarray, fs: float, message: str) -> None:
    with pytest.raises(EmgInputError, match=message):
        detect_contractions(bad, fs)


def test_nan_position_reported_and_other_errors() -> None:
    x = np.zeros((3000, 2))
    x[1234, 1] = np.inf
    with pytest.raises(EmgInputError, match="sample 1234, channel 1"):
        detect_contractions(x, 1000.0)
    with pytest.raises(EmgInputError, match="unknown method"):
        detect_contractions(np.zeros(3000), 1000.0, method="magic")
    with pytest.raises(EmgInputError, match="unknown detection parameter"):
        detect_contractions(np.zeros(3000), 1000.0, params={"nope": 1})
    stream = ContractionStream(1000.0)
    stream.push(np.zeros((2000, 2)))
    with pytest.raises(EmgInputError, match="channels"):
        stream.push(np.zeros((2000, 3)))


def test_silence_gives_no_contractions() -> None:
    noise = np.random.default_rng(5).normal(0, 5, size=(60_000, 2))
    res = detect_contractions(noise, 2000.0)
    assert len(res) == 0
    assert np.allclose(res.noise_uv, 5 * np.sqrt(430 / 1000), rtol=0.3)  # 20-450 Hz of white
    assert len(detect_contractions(np.zeros(5000), 1000.0)) == 0


@pytest.mark.dataset
def test_biosppy_example_rest_and_activity() -> None:
    if not BIOSPPY_EMG.exists():
        pytest.skip("shared dataset not available")
    raw = np.loadtxt(BIOSPPY_EMG, comments="#")
    x = raw - raw.mean()
    res = detect_contractions(x, 1000.0)
    # the three large bursts (about 1.8 s, 16 s and 26 s; seen in the raw trace) are found
    for t_s in (1.8, 16.0, 25.8):
        assert np.any((res.onset_idx <= t_s * 1000) & (res.offset_idx >= t_s * 1000)), t_s
    # and the long quiet stretch at the end holds no contraction
    assert not np.any(res.offset_idx > 47_000)
    assert np.all(np.diff(res.onset_idx) > 0)
    assert np.all(res.offset_idx[:-1] < res.onset_idx[1:])


def test_batched_ramp_onsets_equal_one_at_a_time() -> None:
    rng = np.random.default_rng(5)
    problems = []
    for _ in range(40):
        n = int(rng.integers(20, 400))
        k = int(rng.integers(5, n))
        y = np.r_[rng.exponential(1.0, k), rng.exponential(rng.uniform(1, 30), n - k)]
        problems.append((y, float(rng.uniform(0.5, 2.0)), int(rng.integers(2, n)),
                         int(rng.integers(0, n))))
    rise = (0, 3, 5, 10, 18, 25, 38, 50, 75)
    for kappa in (0.0, 0.8):
        batched = emg_onsets._ramp_onsets_batch(problems, rise, 150, kappa)
        single = [ramp_onset(y, s0, hi, rise, 150, kappa, lo) for y, s0, hi, lo in problems]
        assert batched == single


def test_refinement_batching_matches_one_contraction_at_a_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Short rests put a contraction's onset search right after the previous refined offset,
    # the case where the batched refinement must re-solve one contraction alone.
    fs = 1000.0
    sim = simulate_emg(duration_s=40, fs_hz=fs, snr_db=6, n_channels=2, seed=21,
                       rest_s=(0.15, 0.6))
    batched = detect_contractions(sim.emg_uv, fs)

    def one_at_a_time(
        problems: list[emg_onsets.RampProblem], rise: list[int], plateau: int, kappa: float,
    ) -> list[int]:
        # Each problem alone (the fine stage of the coarse-to-fine search passes its bounded
        # candidate range as a fifth entry, which ramp_onset does not take).
        return [emg_onsets._ramp_batch_core([p], rise, plateau, kappa)[0] for p in problems]

    monkeypatch.setattr(emg_onsets, "_ramp_onsets_batch", one_at_a_time)
    single = detect_contractions(sim.emg_uv, fs)
    assert len(batched) > 20
    assert np.array_equal(batched.onset_idx, single.onset_idx)
    assert np.array_equal(batched.offset_idx, single.offset_idx)


@pytest.mark.parametrize("n_ch", [1, 2])
def test_input_not_modified(n_ch: int) -> None:
    fs = 1000.0
    x = simulate_emg(duration_s=30, fs_hz=fs, snr_db=10, n_channels=n_ch, seed=22).emg_uv
    x = x.reshape(x.shape[0], n_ch)
    before = x.copy()
    condition(x, fs)
    detect_contractions(x, fs)
    detect_contractions_chunked(np.array_split(x, 5), fs)
    assert np.array_equal(x, before)


def test_hum_fit_follows_drifting_hum_up_to_block_edges() -> None:
    # The hum is fitted on the band-passed block, whose ends are tapered: the weighted fit must
    # undo the taper, so the hum is removed as well next to the block edges as in the middle.
    fs, margin = 2000.0, 3000
    rng = np.random.default_rng(30)
    n = int(20 * fs)
    t = np.arange(n) / fs
    noise = rng.normal(size=(n, 2)) * 5.0
    hum = (20 * (1 + 0.2 * np.sin(2 * np.pi * 0.05 * t)) * np.sin(2 * np.pi * 50.003 * t + 0.3)
           + 6 * np.sin(2 * np.pi * 150.01 * t + 1.1))[:, None]
    p = emg_condition.ConditioningParams()
    rows = (margin, n - margin)
    y_hum, mains = emg_condition.condition_block_t(noise + hum, fs, p, margin, rows)
    y_ref, _ = emg_condition.condition_block_t(
        noise, fs, emg_condition.ConditioningParams(mains_hz=None), margin, rows)
    resid = y_hum - y_ref
    assert mains == 50.0
    edge = int(fs)
    for part in (resid[:, :edge], resid[:, edge:-edge], resid[:, -edge:]):
        assert part.std() < 0.03 * hum.std()  # > 30 dB of hum removed everywhere


def test_line_search_on_long_blocks_finds_only_real_harmonics() -> None:
    # A 60 s spectrum has 4x finer bins than a 15 s one; without restoring the 15 s resolution
    # the noise maxima near 100-400 Hz passed as harmonics (here 100, 250, 300, 350 Hz) and
    # EMG was subtracted there.
    fs = 2000.0
    sim = simulate_emg(duration_s=70, fs_hz=fs, n_channels=1, snr_db=10, seed=12)
    m = int(63 * fs)
    n_fft = emg_condition.scipy.fft.next_fast_len(m, real=True)
    spec = emg_condition._rfft_tapered([sim.emg_uv[:m, None]], emg_condition._taper(3000),
                                       n_fft)
    family, lines = emg_condition._find_lines(spec, n_fft, fs, 20.0, None, 450.0)
    assert family == 50.0
    # the simulator's hum is 50 Hz and its 3rd harmonic (a line at the 450 Hz band edge, where
    # the spectrum falls off, may pass)
    assert sorted(round(f) for f in lines if f < 440) == [50, 150]


def test_fast_percentiles_equal_numpy() -> None:
    x = np.random.default_rng(31).normal(size=(841, 3))
    q5, q25 = emg_onsets._percentiles_5_25(x)
    assert np.array_equal(np.stack([q5, q25]), np.percentile(x, [5.0, 25.0], axis=0))


def test_stream_keeps_its_own_copy_of_chunks() -> None:
    # A caller reusing one buffer for every chunk must get the same result as a single pass.
    fs = 1000.0
    sim = simulate_emg(duration_s=100, fs_hz=fs, snr_db=10, n_channels=2, seed=32)
    stream = ContractionStream(fs)
    buf = np.empty((7000, 2))
    parts = []
    for lo in range(0, sim.emg_uv.shape[0], buf.shape[0]):
        part = sim.emg_uv[lo : lo + buf.shape[0]]
        buf[: part.shape[0]] = part
        parts.append(stream.push(buf[: part.shape[0]]))
        buf[:] = np.nan  # the caller's buffer is overwritten after each push
    parts.append(stream.close())
    joined = concat_contractions(parts)
    single = detect_contractions(sim.emg_uv, fs)
    assert len(single) > 20
    assert np.array_equal(joined.onset_idx, single.onset_idx)
    assert np.array_equal(joined.offset_idx, single.offset_idx)


def test_finite_check_is_exact() -> None:
    # The finiteness check sums the input first: an overflowing sum of finite values must not
    # be reported, and +inf next to -inf (a NaN sum) must be, at its position.
    from glutewake.signal.emg_condition import validate_emg

    huge = np.full((1000, 2), 1e308)
    assert validate_emg(huge, 1000.0).shape == (1000, 2)
    x = np.zeros((1000, 2))
    x[3, 1], x[7, 0] = np.inf, -np.inf
    with pytest.raises(EmgInputError, match="sample 3, channel 1"):
        validate_emg(x, 1000.0)


def test_250_hz_onsets_valid_and_accurate() -> None:
    # At 250 Hz the longest rise time (38 bins) is not a multiple of the refinement's block
    # (12 bins); the stacked windows once read past their buffer, and garbage NaN gave
    # onsets near -2**63 (or a hang) on some runs.
    fs = 250.0
    sim = simulate_emg(duration_s=61, fs_hz=fs, snr_db=3.0, seed=6)
    for _ in range(3):
        res = detect_contractions(sim.emg_uv, fs)
        n = sim.emg_uv.shape[0]
        assert (res.onset_idx >= 0).all() and (res.offset_idx < n).all()
        assert (res.onset_idx <= res.offset_idx).all()
        matched, _, errs = _match(sim.onset_idx, sim.offset_idx, res)
        assert matched >= 0.8 * sim.onset_idx.size
        assert np.median(np.abs(errs)) / fs * 1000 <= 40


def test_batched_ramp_onsets_with_uneven_rise_blocks() -> None:
    rng = np.random.default_rng(8)
    problems = []
    for _ in range(30):
        n = int(rng.integers(80, 300))
        k = int(rng.integers(10, n - 50))
        y = np.r_[rng.exponential(1.0, k), rng.exponential(rng.uniform(2, 30), n - k)]
        problems.append((y, 1.0, min(k + 10, n - 45), max(k - 40, 0)))
    rise = (0, 1, 2, 5, 9, 12, 19, 25, 38)  # the 250 Hz grid: 38 = 3 blocks of 12 + 2
    batched = emg_onsets._ramp_onsets_batch(problems, rise, 75, 1.0)
    single = [ramp_onset(y, s0, hi, rise, 75, 1.0, lo) for y, s0, hi, lo in problems]
    assert batched == single
    assert all(lo <= t <= hi + 1 for t, (_, _, hi, lo) in zip(batched, problems, strict=True))


def test_percentiles_last_axis_equal_numpy() -> None:
    x = np.random.default_rng(32).normal(size=(4, 3, 841))
    q5, q25 = emg_onsets._percentiles_5_25_last(x)
    assert np.array_equal(np.stack([q5, q25]), np.percentile(x, [5.0, 25.0], axis=-1))


def _small_blocks() -> emg_onsets.DetectionParams:
    # 2 s detection blocks, 4 s conditioning blocks: many blocks in a short recording.
    return emg_onsets.DetectionParams(subs_per_block=20, blocks_per_fft=2)


@pytest.mark.parametrize("n_ch", [1, 2, 3])
def test_fft_grouping_and_stacked_detection_change_nothing(
    monkeypatch: pytest.MonkeyPatch, n_ch: int
) -> None:
    # Blocks conditioned together (one FFT call for all their rows) and hysteresis runs found
    # for many blocks at once must give exactly what one block at a time gives.
    fs = 1000.0
    sim = simulate_emg(duration_s=41.3, fs_hz=fs, snr_db=6, n_channels=n_ch, seed=40,
                       mains_hz=50.0)
    p = _small_blocks()
    grouped = detect_contractions(sim.emg_uv, fs, params=p)
    streamed = detect_contractions_chunked(np.array_split(sim.emg_uv, 3), fs, params=p)
    monkeypatch.setattr(emg_onsets, "FFT_ROWS", 1)
    monkeypatch.setattr(emg_onsets, "DETECT_STACK", 1)
    single = detect_contractions(sim.emg_uv, fs, params=p)
    assert len(single) > 10 * n_ch
    for res in (grouped, streamed):
        for name in ("onset_idx", "offset_idx", "channel", "confidence", "peak_uv", "mean_uv",
                     "time_to_peak_s", "noise_uv"):
            assert np.array_equal(getattr(res, name), getattr(single, name)), name
        assert res.mains_hz == single.mains_hz == 50.0


@pytest.mark.parametrize("n_ch", [1, 2, 3])
@pytest.mark.parametrize("notch", [0.0, 0.5])
def test_condition_blocks_equal_one_block_at_a_time(n_ch: int, notch: float) -> None:
    fs, margin = 1000.0, 300
    rng = np.random.default_rng(41)
    t = np.arange(6000) / fs
    hum = 20.0 * np.sin(2 * np.pi * 50.02 * t)[:, None]
    xs = [rng.normal(0.0, 5.0, (t.size, n_ch)) + hum * (i + 1) for i in range(5)]
    p = emg_condition.ConditioningParams(notch_sigma_hz=notch)
    together = emg_condition.condition_blocks_t(xs, fs, p, margin, rows=(200, 5800))
    for x, (y, mains) in zip(xs, together, strict=True):
        y1, mains1 = emg_condition.condition_block_t(x, fs, p, margin, rows=(200, 5800))
        assert y.shape == (n_ch, 5600)
        assert np.array_equal(y, y1)
        assert mains == mains1 == 50.0
    with pytest.raises(EmgInputError, match="same shape"):
        emg_condition.condition_blocks_t([xs[0], xs[1][:-1]], fs, p, margin)


def test_condition_grouped_blocks_equal_single(monkeypatch: pytest.MonkeyPatch) -> None:
    from glutewake.signal import emg

    fs = 1000.0
    x = simulate_emg(duration_s=200, fs_hz=fs, snr_db=6, n_channels=2, seed=42).emg_uv
    grouped = condition(x, fs)
    monkeypatch.setattr(emg, "FFT_ROWS", 1)
    assert np.array_equal(grouped, condition(x, fs))


def test_hum_fit_leaves_its_input_untouched() -> None:
    # The hum fit reads the windows of the band-passed block in place and tapers copies of
    # the end windows only.
    fs, margin = 2000.0, 3000
    rng = np.random.default_rng(43)
    y = rng.normal(0.0, 5.0, (2, 30000)).astype(np.float32)
    before = y.copy()
    hum = emg_condition._fit_lines(y, [50.0, 150.0], fs, margin, 30000 - margin,
                                   emg_condition._taper(margin))
    assert np.array_equal(y, before)
    assert hum.shape == (2, 30000 - 2 * margin)
    assert np.isfinite(hum).all()


def test_coarse_to_fine_refinement_matches_full_search() -> None:
    # Noise, then a linear amplitude ramp of 10-60 ms to a plateau at 3-20 dB, in 2 ms bins:
    # the coarse-to-fine search must land where the search over every candidate does.
    rng = np.random.default_rng(11)
    rise = [0, 2, 5, 10, 18, 25, 38, 50, 75]
    problems = []
    truth = []
    for _ in range(60):
        n = int(rng.integers(300, 420))
        t0 = int(rng.integers(150, 230))
        r = int(rng.integers(5, 31))
        a2 = 10 ** (rng.uniform(3, 20) / 10)
        v = 1.0 + a2 * np.clip((np.arange(n) - t0 + 0.5) / r, 0, 1) ** 2
        # Sum of 4 exponentials / 4: the Gamma shape of a 2 ms bin power at 2 kHz.
        y = rng.gamma(4.0, v / 4.0)
        problems.append((y, 1.0, t0 + r + 10, max(t0 - 200 + int(rng.integers(0, 40)), 0)))
        truth.append(t0)
    full = emg_onsets._ramp_onsets_batch(problems, rise, 150, 0.86)
    fast = emg_onsets._ramp_onsets_coarse_fine(problems, rise, 150, 0.86, 8)
    diff = np.abs(np.asarray(full) - np.asarray(fast))
    assert diff.max() <= 2
    assert np.mean(diff == 0) >= 0.9
    # Both searches are near the truth (the test data are sane, not only equal).
    assert np.median(np.abs(np.asarray(fast) - np.asarray(truth))) <= 8
    # Without a posterior (kappa 0: the maximum) the full range is searched: identical.
    assert (emg_onsets._ramp_onsets_coarse_fine(problems, rise, 150, 0.0, 8)
            == emg_onsets._ramp_onsets_batch(problems, rise, 150, 0.0))


def test_coarse_to_fine_detection_close_to_full_search() -> None:
    # The default detector (coarse-to-fine refinement) against every candidate searched at the
    # full rate (refine_coarse_s=0): the same contractions, onsets/offsets within a bin or two.
    fs = 2000.0
    sim = simulate_emg(duration_s=60, fs_hz=fs, snr_db=6, n_channels=2, seed=31)
    fast = detect_contractions(sim.emg_uv, fs)
    full = detect_contractions(sim.emg_uv, fs, params={"refine_coarse_s": 0.0})
    assert len(fast) > 30
    assert len(fast) == len(full)
    assert np.array_equal(fast.channel, full.channel)
    bin_n = round(0.002 * fs)
    d_on = np.abs(fast.onset_idx - full.onset_idx)
    d_off = np.abs(fast.offset_idx - full.offset_idx)
    assert max(d_on.max(), d_off.max()) <= 2 * bin_n
    assert np.mean(np.r_[d_on, d_off] == 0) >= 0.9
