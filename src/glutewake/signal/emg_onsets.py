"""Contraction onset/offset detection for surface EMG (default method, streaming core).

Default method ("tkeo_changepoint"), per channel (all settings are :class:`DetectionParams`
fields; ``docs/emg.md`` has the full description):

1. Conditioning (:mod:`glutewake.signal.emg_condition`) on a fixed grid of 60 s blocks (five
   12 s detection blocks); after it everything runs on 2 ms bins (one sample below 500 Hz).
2. Detection envelope: centered 50 ms mean of ``|TKEO|`` (lag ``round(fs / 1000)``).
3. Baseline noise, robust to the contractions: 100 ms sub-window means in a +-32 s context; the
   lowest quarter is fitted by a Gaussian lower tail, giving the noise level ``nu`` and spread
   ``s`` (see ``ContractionStream._thresholds``).
4. Hysteresis: a run above ``T_low = nu + k_low s`` (k_low 2) counts only if it also crosses
   ``T_high = nu + k_high s`` (k_high 5). Runs less than ``merge_gap_s`` (100 ms) apart are one
   contraction, and so are runs up to ``merge_max_s`` (300 ms) apart when the power between
   them stays above ``merge_power_ratio`` (1.5) times the noise power.
5. Likelihood refinement of each onset (and, on the reversed signal, each offset) with
   :func:`ramp_onset`: a noise -> linear-amplitude-ramp -> plateau model of the bin powers,
   posterior mean of the ramp start over a grid of starts and rise times (0-150 ms), searched
   coarse-to-fine (16 ms bins first, then the 2 ms grid around the coarse posterior). The
   contractions completed in up to five blocks are refined together as one stacked
   computation, with the same result as one at a time (``ContractionStream._flush``).
6. Contractions shorter than ``min_duration_s`` (100 ms) after refinement are dropped (ECG QRS
   residue, spikes).
7. Confidence: ``sigmoid((snr_db - 3) / 1.5) * min(1, duration / (2 min_duration))`` where
   ``snr_db`` compares the contraction's mean power with the local noise power.

Streaming: :class:`ContractionStream` consumes chunks of any size and emits each contraction once
its context is complete (about 32 s later, plus up to a 60 s conditioning block). Memory is
bounded by the chunk size plus one conditioning block plus the context (~10 blocks of
bin-rate arrays) plus the longest contraction. Results are identical to a single
pass because the block grid, the context and every computation depend only on sample positions,
not on chunking.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from glutewake.signal.emg_condition import (
    FFT_ROWS,
    MIN_FS_HZ,
    ConditioningParams,
    EmgInputError,
    band_edges_hz,
    condition_blocks_rows_t,
    validate_emg,
)

__all__ = [
    "ContractionStream",
    "Contractions",
    "DetectionParams",
    "ramp_onset",
]

FloatArray = NDArray[np.float64]
# (y, noise power, cand_hi, cand_lo[, search_hi]): one ramp-onset problem (see _ramp_batch_core)
RampProblem = tuple[FloatArray, float, int, int] | tuple[FloatArray, float, int, int, int]

RISE_GRID_S = (0.0, 0.005, 0.01, 0.02, 0.035, 0.05, 0.075, 0.1, 0.15)
_sum = np.add.reduce
FLUSH_BATCH = 256  # contractions refined together (two problems each)
THRESHOLD_STACK = 64  # blocks whose noise thresholds are computed together
DETECT_STACK = 32  # blocks whose hysteresis runs are found together
RAMP_CHUNK = 64  # fewest problems per stacked refinement
RAMP_CELLS = 64 * 256  # problems x candidates per stacked refinement (see _ramp_batch_core)
COARSE_SD = 4.0  # the fine search covers the coarse posterior mean +- this many SDs
COARSE_PAD = 2.0  # ... plus this many coarse bins
BIG_NLL = 1e30  # marks grid points outside a problem's range (finite, for float32 BLAS)
IntArray = NDArray[np.int64]


@dataclass(frozen=True)
class DetectionParams:
    """Detection settings; every default is documented in ``docs/emg.md``.

    Attributes
    ----------
    conditioning : ConditioningParams
        Band-pass and mains settings.
    k_low, k_high : float
        Hysteresis thresholds in noise spreads above the noise level.
    min_duration_s : float
        Shortest contraction kept (after merging).
    merge_gap_s : float
        Runs closer than this are one contraction.
    merge_max_s, merge_power_ratio : float
        Runs closer than ``merge_max_s`` are also one contraction when the mean power between
        them exceeds ``merge_power_ratio`` times the noise power.
    det_window_s, rms_window_s : float
        Centered windows of the TKEO detection envelope and of the RMS amplitude envelope used
        for the features.
    bin_s : float
        Bin length after conditioning (at least one sample).
    sub_window_s : float
        Sub-window for the noise statistics.
    subs_per_block : int
        Sub-windows per processing block (block = 12 s by default).
    blocks_per_fft : int
        Blocks conditioned together (one FFT and one mains search per channel; 60 s by
        default): fewer, longer transforms cost less per sample than many short ones.
    margin_s : float
        Real data on both sides of each block for the filters and windows.
    context_s : float
        Half-width of the noise-estimation context.
    quiet_fraction : float
        Share of sub-windows taken as quiet.
    refine : bool
        Likelihood refinement of onsets and offsets.
    tkeo : bool
        Detection envelope from |TKEO| (default) or from the squared signal.
    refine_pre_s : float
        How far before the coarse onset the refinement looks (0.4 s: at 3 dB the coarse
        onset of a weak burst can be 200-400 ms late; 0.2 s left those late).
    refine_coarse_s : float
        Bin length of the refinement's coarse search (coarse-to-fine: the full-rate search
        then covers only the coarse posterior's mean +- 4 SD + 2 coarse bins); 0 searches every
        candidate at the full rate. Used when it spans at least 2 bins.
    """

    conditioning: ConditioningParams = field(default_factory=ConditioningParams)
    k_low: float = 2.0
    k_high: float = 5.0
    min_duration_s: float = 0.1
    merge_gap_s: float = 0.1
    merge_max_s: float = 0.3
    merge_power_ratio: float = 1.5
    det_window_s: float = 0.05
    rms_window_s: float = 0.1
    bin_s: float = 0.002
    sub_window_s: float = 0.1
    subs_per_block: int = 120
    blocks_per_fft: int = 5
    margin_s: float = 1.5
    context_s: float = 32.0
    quiet_fraction: float = 0.25
    refine: bool = True
    tkeo: bool = True
    refine_pre_s: float = 0.4
    refine_coarse_s: float = 0.016


@dataclass(frozen=True)
class Contractions:
    """Detected contractions, one entry per contraction, sorted by channel then onset.

    Attributes
    ----------
    onset_idx, offset_idx : ndarray of int
        First and last sample of each contraction (inclusive).
    channel : ndarray of int
        Channel of each contraction (zeros for 1-D input).
    confidence : ndarray of float
        0..1 (see module docstring).
    peak_uv, mean_uv : ndarray of float
        Peak and mean of the RMS envelope (``rms_window_s``, centered) over the contraction, µV.
    time_to_peak_s : ndarray of float
        Onset to the RMS envelope peak.
    fs_hz : float
        Sampling rate.
    n_channels : int
        Channels in the input.
    method : str
        Detection method used.
    noise_uv : ndarray of float, shape (n_channels,)
        Median baseline noise RMS per channel (conditioned signal).
    mains_hz : float or None
        Mains frequency found (most frequent over blocks) or forced.
    """

    onset_idx: IntArray
    offset_idx: IntArray
    channel: IntArray
    confidence: FloatArray
    peak_uv: FloatArray
    mean_uv: FloatArray
    time_to_peak_s: FloatArray
    fs_hz: float
    n_channels: int
    method: str
    noise_uv: FloatArray
    mains_hz: float | None

    def __len__(self) -> int:
        return int(self.onset_idx.size)

    @property
    def duration_s(self) -> FloatArray:
        """Duration of each contraction (offset - onset + 1 samples) in seconds."""
        return np.asarray((self.offset_idx - self.onset_idx + 1) / self.fs_hz)

    def for_channel(self, ch: int) -> Contractions:
        """The contractions of one channel."""
        sel = self.channel == ch
        return Contractions(
            onset_idx=self.onset_idx[sel],
            offset_idx=self.offset_idx[sel],
            channel=self.channel[sel],
            confidence=self.confidence[sel],
            peak_uv=self.peak_uv[sel],
            mean_uv=self.mean_uv[sel],
            time_to_peak_s=self.time_to_peak_s[sel],
            fs_hz=self.fs_hz,
            n_channels=self.n_channels,
            method=self.method,
            noise_uv=self.noise_uv,
            mains_hz=self.mains_hz,
        )


def ramp_onset(
    y: FloatArray,
    noise_pw: float,
    cand_hi: int,
    rise_bins: Sequence[int],
    plateau_bins: int,
    kappa: float = 0.0,
    cand_lo: int = 0,
) -> int:
    """Maximum-likelihood start of a variance ramp in a sequence of bin powers.

    Model: ``y_j`` (mean of ``x^2`` over a short bin) has expectation
    ``v_j = s0 + A2 * clip((j - t0 + 0.5) / R, 0, 1)^2`` (noise, then an amplitude rising linearly
    over ``R`` bins to a plateau; ``R = 0`` is a step) and a Gamma likelihood, so the negative
    log-likelihood is ``sum(log v_j + y_j / v_j)``. ``s0`` is the given noise power; ``A2`` comes
    from the data after the ramp (two passes). ``t0`` is searched over ``cand_lo..cand_hi``
    and ``R``
    over ``rise_bins``, all at once: cumulative sums for the noise and plateau parts and one
    matrix product for the ramp part.

    With ``kappa > 0`` the estimate is the posterior mean of ``t0`` (flat prior over the grid,
    likelihood ``exp(-kappa * nll)``) instead of the maximum: ``kappa`` is the Gamma shape of a
    bin power, about ``bandwidth * bin duration``. Early ramp samples are buried in noise, so
    the maximum sits late on the ramp at low SNR; averaging over the plausible (t0, R) pairs
    removes most of that bias.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> y = np.r_[rng.exponential(1.0, 100), rng.exponential(20.0, 100)]
    >>> abs(ramp_onset(y, 1.0, 150, (0, 5, 10), 50) - 100) <= 2
    True
    """
    if rise_bins and _ramp_fits(y.size, cand_hi, cand_lo, max(rise_bins)):
        return _ramp_batch_core([(y, noise_pw, cand_hi, cand_lo)], rise_bins, plateau_bins,
                                kappa)[0]
    return _ramp_onset_single(y, noise_pw, cand_hi, rise_bins, plateau_bins, kappa, cand_lo)


def _ramp_onset_single(
    y: FloatArray,
    noise_pw: float,
    cand_hi: int,
    rise_bins: Sequence[int],
    plateau_bins: int,
    kappa: float = 0.0,
    cand_lo: int = 0,
) -> int:
    """:func:`ramp_onset` one problem at a time, for problems too short for the longest rise
    time (only the rise times that fit are searched)."""
    n = y.size
    s0 = max(float(noise_pw), 1e-30)
    r_all = np.asarray(sorted(set(rise_bins)), dtype=np.int64)
    hi = min(cand_hi + 1, n - 2)
    lo = min(max(cand_lo, 0), hi - 1)
    r_all = r_all[r_all <= n - hi - 1]
    if hi - lo < 1 or r_all.size == 0:
        return max(lo, 0)
    r_max = max(int(r_all[-1]), 1)
    cs = np.empty(n + 1)
    cs[0] = 0.0
    np.cumsum(y, out=cs[1:])
    t0 = np.arange(lo, hi)
    first = min(max(cand_hi, 1), n - 1)
    a2 = max(float((cs[n] - cs[first]) / (n - first)) - s0, 0.25 * s0)
    k = np.arange(r_max) + 0.5
    frac = np.minimum(1.0, k[:, None] / np.maximum(r_all, 1)[None, :]) ** 2
    frac[:, r_all == 0] = 1.0
    # Rows t0 = lo..hi-1 of the sliding windows of length r_max (a strided view, no copy).
    yc = np.ascontiguousarray(y, dtype=np.float64)
    win = np.lib.stride_tricks.as_strided(
        yc[lo:], shape=(hi - lo, r_max), strides=(yc.strides[0], yc.strides[0]), writeable=False
    )
    pre = t0 * np.log(s0) + cs[t0] / s0
    tail_n = n - t0 - r_max
    tail_cs = cs[n] - cs[t0 + r_max]
    n_r = r_all.size
    for it in range(2):
        v_pl = s0 + a2
        v = s0 + a2 * frac
        nll = (pre + tail_n * np.log(v_pl) + tail_cs / v_pl)[:, None] + (
            np.log(v).sum(axis=0)[None, :] + win @ (1.0 / v)
        )
        j, jr = divmod(int(np.argmin(nll)), n_r)
        p_lo = int(t0[j]) + int(r_all[jr])
        p_hi = min(n, p_lo + plateau_bins)
        if it == 1 or p_hi - p_lo < 3:
            break
        a2 = max(float((cs[p_hi] - cs[p_lo]) / (p_hi - p_lo)) - s0, 0.25 * s0)
    best_t0 = int(t0[j])
    if kappa > 0:
        w = np.exp(-kappa * (nll - nll[j, jr]))
        best_t0 = round(float((w.sum(axis=1) @ t0) / w.sum()))
    return best_t0


def _ramp_fits(n: int, cand_hi: int, cand_lo: int, r_top: int) -> bool:
    """Whether a problem has room for the longest rise time (else :func:`ramp_onset` trims)."""
    hi = min(cand_hi + 1, n - 2)
    lo = min(max(cand_lo, 0), hi - 1)
    return hi - lo >= 1 and r_top <= n - hi - 1 and r_top >= 1


def _ramp_onsets_batch(
    problems: Sequence[RampProblem],
    rise_bins: Sequence[int],
    plateau_bins: int,
    kappa: float,
) -> list[int]:
    """:func:`ramp_onset` for many ``(y, noise_pw, cand_hi, cand_lo)`` problems at once."""
    return _ramp_batch_core(problems, rise_bins, plateau_bins, kappa)


def _ramp_batch_core(
    problems: Sequence[RampProblem],
    rise_bins: Sequence[int],
    plateau_bins: int,
    kappa: float,
    spread: list[float] | None = None,
) -> list[int]:
    """:func:`ramp_onset` for many ``(y, noise_pw, cand_hi, cand_lo)`` problems at once.

    Same model, same two passes and the same estimate; the problems are stacked (padded to the
    longest candidate range) so the work is a handful of array operations instead of a few
    dozen per problem. Problems too short for the longest rise time go to the one-problem
    path of :func:`ramp_onset`.

    The ramp part of the likelihood, ``sum_k y[t0 + k] / v_k`` over the rise, is the costly
    term: it is formed in float32 (its terms are O(1), the error ~1e-6 of the log-likelihood
    differences that matter) and only over the bins where the ramp differs from the plateau
    (rise times up to a third of the longest use a short window; the plateau after the ramp
    comes from cumulative sums).

    With ``spread`` (a list) the posterior SD of ``t0`` in bins is written into it (``inf``
    where it was not computed: no ``kappa`` or a one-problem path). A fifth entry of a problem
    bounds its candidates from above instead of ``cand_hi`` (which still sets where the first
    plateau estimate starts).
    """
    out = [0] * len(problems)
    if spread is not None:
        spread[:] = [math.inf] * len(problems)
    r_all = np.asarray(sorted(set(rise_bins)), dtype=np.int64)
    r_max = max(int(r_all[-1]), 1)
    if not problems:
        return out
    # The test of _ramp_fits, for all problems at once.
    ns_all = np.array([p[0].size for p in problems])
    # A fifth entry, where given, bounds the candidates (coarse-to-fine) while ``cand_hi``
    # still sets where the first plateau estimate starts.
    his_all = np.minimum(np.array([p[4] if len(p) > 4 else p[2] for p in problems]) + 1,
                         ns_all - 2)
    los_all = np.minimum(np.maximum(np.array([p[3] for p in problems]), 0), his_all - 1)
    fits = (his_all - los_all >= 1) & (r_all[-1] <= ns_all - his_all - 1) & (r_all[-1] >= 1)
    for i in np.flatnonzero(~fits).tolist():
        prob = problems[i]
        out[i] = _ramp_onset_single(prob[0], prob[1], prob[2], rise_bins, plateau_bins, kappa,
                                    prob[3])
    batch = np.flatnonzero(fits).tolist()
    if not batch:
        return out
    spans = (his_all - los_all)[fits]
    # Stacks of about RAMP_CELLS candidates keep the (problems, rise times, candidates) arrays
    # in cache (64 problems of the full 0.4 s look-back; more of the short coarse-to-fine
    # ranges); sorted by candidate range, each stack pads little (same results).
    chunk = min(max(RAMP_CELLS // max(int(spans.mean()), 1), RAMP_CHUNK), 16 * RAMP_CHUNK)
    if len(batch) > chunk:
        order = np.argsort(spans, kind="stable")
        n_chunks = -(-len(batch) // chunk)
        for part in np.array_split(order, n_chunks):
            idx = [batch[i] for i in part.tolist()]
            sub_sd: list[float] | None = [] if spread is not None else None
            sub = _ramp_batch_core([problems[i] for i in idx], rise_bins, plateau_bins, kappa,
                                   sub_sd)
            for k_i, (i, v) in enumerate(zip(idx, sub, strict=True)):
                out[i] = v
                if spread is not None and sub_sd is not None:
                    spread[i] = sub_sd[k_i]
        return out
    n_p = len(batch)
    ns = ns_all[fits]
    cand_his = np.array([problems[i][2] for i in batch])
    his = his_all[fits]
    los = los_all[fits]
    s0 = np.maximum(np.array([float(problems[i][1]) for i in batch]), 1e-30)
    n_t = int((his - los).max())
    width = int(ns.max())
    # Zero-padded rows (one extra zero column) and their cumulative sums.
    ypad = np.zeros((n_p, width + 1))
    for row, i in enumerate(batch):
        y_i = problems[i][0]
        ypad[row, : y_i.size] = y_i
    cs = np.zeros((n_p, width + 1))
    np.cumsum(ypad[:, :width], axis=1, out=cs[:, 1:])
    rows = np.arange(n_p)[:, None]
    row_base = rows * (width + 1)  # flat offsets for np.take (faster than 2-D fancy indexing)
    p_idx = np.arange(n_p)
    t0 = los[:, None] + np.arange(n_t)[None, :]  # (P, T)
    valid = t0 < his[:, None]
    t0 = np.minimum(t0, his[:, None] - 1)
    first = np.minimum(np.maximum(cand_his, 1), ns - 1)
    a2 = np.maximum((cs[p_idx, ns] - cs[p_idx, first]) / (ns - first) - s0, 0.25 * s0)
    k = np.arange(r_max) + 0.5
    frac = np.minimum(1.0, k[:, None] / np.maximum(r_all, 1)[None, :]) ** 2
    frac[:, r_all == 0] = 1.0
    blk = max(r_max // 3, 1)
    n_blk = -(-r_max // blk)
    # Windows y[t0 + k] for t0 = lo.. (rows shifted by lo, so the strides are uniform). The
    # blocks below read up to n_blk * blk bins per window, past r_max when blk does not divide
    # it (e.g. 250 Hz): those columns are zeros (their kernel weights are zero; unpadded they
    # read past the buffer, and garbage NaN made onsets invalid).
    shift = np.minimum(los[:, None] + np.arange(n_t + max(r_max, n_blk * blk))[None, :], width)
    ys = np.take(ypad, row_base + shift).astype(np.float32)
    st = ys.strides
    # The ramp sums run over whole blocks of ``blk`` bins (a third of the longest rise): rise
    # time R needs the first ceil(R / blk) blocks, the rest up to r_max is plateau (from the
    # cumulative sums). Block b of every window is the block-0 window ``b * blk`` rows later,
    # so one Hankel array serves all blocks.
    nb_r = -(-r_all // blk)  # blocks each rise time needs
    hank = np.ascontiguousarray(np.lib.stride_tricks.as_strided(
        ys, shape=(n_p, n_t + (n_blk - 1) * blk, blk), strides=(st[0], st[1], st[1]),
        writeable=False))
    hank_t = hank.transpose(0, 2, 1)  # (P, blk, rows): BLAS reads it transposed, no copy
    # cs[t0 + c] for every candidate t0 and offset c as slices of one gather (candidates past
    # a problem's range read other values, but they never win: BIG_NLL below).
    cs_sh = np.take(cs, row_base + np.minimum(los[:, None] + np.arange(n_t + r_max + 1)[None, :],
                                              width))
    pre = t0 * np.log(s0)[:, None] + cs_sh[:, :n_t] / s0[:, None]
    pre += np.where(valid, 0.0, BIG_NLL)  # candidates past the range never win
    tail_n = (ns[:, None] - t0 - r_max).astype(np.float64)
    cs_end = cs_sh[:, r_max : r_max + n_t]
    tail_cs = cs[p_idx, ns][:, None] - cs_end
    # Plateau from the end of block c to r_max, c = 0..n_blk. The grids below are laid out
    # (P, R, T), the long axis last: numpy broadcasts over a short last axis ~10x slower.
    bounds = np.minimum(np.arange(n_blk + 1) * blk, r_max).tolist()
    mid_cs = np.empty((n_p, len(bounds), n_t))  # (P, C, T)
    for c, b in enumerate(bounds):
        np.subtract(cs_end, cs_sh[:, b : b + n_t], out=mid_cs[:, c, :])
    n_r = r_all.size
    done = np.zeros(n_p, dtype=bool)
    flat_best = np.zeros(n_p, dtype=np.int64)
    first_r = [int(np.searchsorted(nb_r, b, side="right")) for b in range(n_blk)]
    frac_f32 = frac.T.ravel().astype(np.float32)
    kern = np.zeros((n_p, n_r, n_blk * blk), dtype=np.float32)  # zero past r_max
    prod = np.empty((n_p, n_r, n_t), dtype=np.float32)
    passes = []
    for it in range(2):
        v_pl = s0 + a2
        # (P, R, r_max) from a flat outer product: broadcasting over three axes is slow too.
        v = np.multiply.outer(a2.astype(np.float32), frac_f32)
        v += s0.astype(np.float32)[:, None]
        v = v.reshape(n_p, n_r, r_max)
        np.divide(np.float32(1.0), v, out=kern[:, :, :r_max])
        np.log(v, out=v)
        log_sum = v.sum(axis=2)  # (P, R)
        base = pre + tail_n * np.log(v_pl)[:, None] + tail_cs / v_pl[:, None]
        mids64 = np.divide(mid_cs, v_pl[:, None, None])
        mids64 += base[:, None, :]
        mids = mids64.astype(np.float32)
        cur = np.take(mids, nb_r, axis=1)  # (P, R, T)
        cur += log_sum[:, :, None]
        for b_i in range(n_blk):
            r0 = first_r[b_i]
            ramp = prod[:, r0:, :]
            np.matmul(kern[:, r0:, b_i * blk : (b_i + 1) * blk],
                      hank_t[:, :, b_i * blk : b_i * blk + n_t], out=ramp)
            cur[:, r0:, :] += ramp
        passes.append(cur)
        fb = np.argmin(cur.reshape(n_p, -1), axis=1)
        flat_best[~done] = fb[~done]
        jr, j = np.divmod(fb, n_t)
        p_lo = t0[p_idx, j] + r_all[jr]
        p_hi = np.minimum(ns, p_lo + plateau_bins)
        short = p_hi - p_lo < 3
        if it == 1:
            break
        done |= short
        span = np.maximum(p_hi - p_lo, 1)
        a2_new = (cs[p_idx, p_hi] - cs[p_idx, np.minimum(p_lo, width)]) / span
        a2 = np.where(done, a2, np.maximum(a2_new - s0, 0.25 * s0))
    nll = passes[-1]
    if done.any():
        nll[done] = passes[0][done]
    jr, j = np.divmod(flat_best, n_t)
    best = t0[p_idx, j]
    if kappa > 0:
        ref = nll[p_idx, jr, j]
        nll -= ref[:, None, None]
        nll *= np.float32(-kappa)
        np.exp(nll, out=nll)
        w_t = nll.sum(axis=1, dtype=np.float64)
        w_sum = w_t.sum(axis=1)
        mean_t0 = (w_t * t0).sum(axis=1) / w_sum
        best = np.rint(mean_t0).astype(np.int64)
        if spread is not None:
            var = (w_t * (t0 - mean_t0[:, None]) ** 2).sum(axis=1) / w_sum
            for row, i in enumerate(batch):
                spread[i] = float(np.sqrt(var[row]))
    for row, i in enumerate(batch):
        out[i] = int(best[row])
    return out


def _ramp_onsets_coarse_fine(
    problems: Sequence[tuple[FloatArray, float, int, int]],
    rise_bins: Sequence[int],
    plateau_bins: int,
    kappa: float,
    factor: int,
    n_sd: float = COARSE_SD,
    pad: float = COARSE_PAD,
) -> list[int]:
    """:func:`ramp_onset` for many problems, searched coarse-to-fine.

    The same model is first solved on bins ``factor`` times longer (means of ``factor`` bins:
    the same powers, a Gamma shape ``factor`` times larger) over the whole candidate range,
    which gives the posterior mean and SD of the ramp start at the coarse rate. The full-rate
    search then runs only over the candidates within ``n_sd`` SDs (and at least two coarse
    bins) of that mean, where practically all the posterior weight lies; the data after the
    original ``cand_hi`` still give the first plateau estimate. Without a posterior spread
    (``kappa = 0``, or a problem too short at the coarse rate) the full range is searched.
    """
    if factor < 2 or kappa <= 0 or not problems:
        return _ramp_onsets_batch(problems, rise_bins, plateau_bins, kappa)
    rise_c = sorted({round(r / factor) for r in rise_bins})
    # Coarse bins of all problems at once (per-problem reductions over a short axis cost more
    # than the coarse search itself): rows zero-padded, ``factor`` strided adds.
    n_c = [p[0].size // factor for p in problems]
    width = max(n_c) * factor
    rows = np.zeros((len(problems), width))
    for row, (y, _, _, _) in enumerate(problems):
        m = n_c[row] * factor
        rows[row, :m] = y[:m]
    y_cs = rows[:, 0::factor].copy()
    for k in range(1, factor):
        y_cs += rows[:, k::factor]
    y_cs *= 1.0 / factor
    coarse: list[RampProblem] = [(y_cs[row, : n_c[row]], s0, hi // factor, lo // factor)
                                 for row, (_, s0, hi, lo) in enumerate(problems)]
    sd: list[float] = []
    t_c = _ramp_batch_core(coarse, rise_c, max(plateau_bins // factor, 3), kappa * factor, sd)
    fine: list[RampProblem] = []
    for (y, s0, hi, lo), t, s in zip(problems, t_c, sd, strict=True):
        if not math.isfinite(s):
            fine.append((y, s0, hi, lo))
            continue
        centre = t * factor + 0.5 * (factor - 1)
        half = n_sd * s * factor + pad * factor
        # cand_hi still sets where the first plateau estimate starts (see _ramp_batch_core).
        fine.append((y, s0, hi, max(lo, math.floor(centre - half)),
                     min(hi, math.ceil(centre + half))))
    return _ramp_onsets_batch(fine, rise_bins, plateau_bins, kappa)


@dataclass
class _Block:
    """One block's bin-rate arrays, channels first ``(ch, bins)`` / ``(ch, sub-windows)``."""

    lo: int
    env: FloatArray
    sq: FloatArray
    rms: FloatArray
    sub_mean: FloatArray
    sub_std: FloatArray
    sub_pw: FloatArray
    mains: float | None


@dataclass
class _Run:
    start: int
    end: int
    first_high: int
    last_high: int


@dataclass
class _ChannelState:
    open_run: _Run | None = None
    pending: _Run | None = None
    last_offset: int = -1
    events: list[tuple[int, int, float, float, float, float]] = field(default_factory=list)


def _sub_stats(x: FloatArray, nsub: int) -> tuple[FloatArray, FloatArray]:
    """Mean and SD over consecutive ``nsub``-row sub-windows (last one may be partial)."""
    starts = np.arange(0, x.shape[0], nsub)
    cnt = np.diff(np.r_[starts, x.shape[0]])[:, None]
    mean = np.add.reduceat(x, starts, axis=0) / cnt
    msq = np.add.reduceat(x * x, starts, axis=0) / cnt
    return mean, np.sqrt(np.maximum(msq - mean**2, 0.0))


def _percentiles_5_25(x: FloatArray) -> tuple[FloatArray, FloatArray]:
    """5th and 25th percentiles along axis 0 (linear interpolation, as ``np.percentile``),
    from one partial sort along the last axis of the transposed data (~10x faster)."""
    xt = np.ascontiguousarray(x.T)
    n = xt.shape[1]
    pos = np.array([0.05, 0.25]) * (n - 1)
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, n - 1)
    part = np.partition(xt, np.unique(np.r_[lo, hi]), axis=1)
    frac = pos - lo
    q = part[:, lo] + (part[:, hi] - part[:, lo]) * frac
    return q[:, 0], q[:, 1]


def _percentiles_5_25_last(x: FloatArray) -> tuple[FloatArray, FloatArray]:
    """5th and 25th percentiles along the last axis (as :func:`_percentiles_5_25` on axis 0)."""
    n = x.shape[-1]
    pos = np.array([0.05, 0.25]) * (n - 1)
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, n - 1)
    part = np.partition(x, np.unique(np.r_[lo, hi]), axis=-1)
    frac = pos - lo
    q = part[..., lo] + (part[..., hi] - part[..., lo]) * frac
    return q[..., 0], q[..., 1]


def _pad_edges(seg: FloatArray, left: int, right: int, period: int) -> FloatArray:
    """Extend the recording at its ends with data shifted by whole 100 ms periods.

    100 ms holds whole cycles of both 50 and 60 Hz, so mains hum continues in phase across the
    seam (a mirror image would break it and leave a transient the detector would see); the
    level is matched over one period so baseline wander leaves no step.
    """
    if left == 0 and right == 0:
        return seg
    n = seg.shape[0]
    parts = []
    for size, at_start in ((left, True), (right, False)):
        if size == 0:
            continue
        shift = -(-size // period) * period
        if shift + period > n:
            pad = np.pad(
                seg,
                ((size, 0), (0, 0)) if at_start else ((0, size), (0, 0)),
                mode="reflect" if n > 1 else "edge",
            )
            parts.append(pad[:size] if at_start else pad[n + left * 0 :][:size])
            continue
        if at_start:
            src = seg[shift - size : shift]
            level = seg[:period].mean(axis=0) - seg[shift - period : shift].mean(axis=0)
        else:
            src = seg[n - shift : n - shift + size]
            level = seg[n - period :].mean(axis=0) - seg[n - shift : n - shift + period].mean(
                axis=0
            )
        parts.append(src + level)
    out = [parts.pop(0)] if left else []
    out.append(seg)
    if right:
        out.append(parts.pop(0))
    return np.concatenate(out)


def _bin_mean_t(x: NDArray[np.float32], d: int) -> FloatArray:
    """Means of ``d`` consecutive samples of channels-first ``(ch, n * d)`` data, as
    ``(ch, n)`` float64."""
    if d == 1:
        return np.asarray(x, dtype=np.float64)
    # Strided adds (a sum over a short last axis is ~10x slower in numpy), summed in the
    # order x0 + x1 + x2 + ...; the float32 scaling is written straight into float64.
    acc = np.add(x[:, 0::d], x[:, 1::d])
    for i in range(2, d):
        acc += x[:, i::d]
    out = np.empty(acc.shape, dtype=np.float64)
    np.multiply(acc, np.float32(1.0 / d), out=out)
    return out


def _tkeo_abs_t(
    y: NDArray[np.float32], lag: int, y2: NDArray[np.float32] | None = None
) -> NDArray[np.float32]:
    """``tkeo_abs`` along the last axis of channels-first data (``y2``: ``y * y`` if known)."""
    out = np.empty_like(y)
    k = lag
    core = out[:, k:-k]
    np.multiply(y[:, : -2 * k], y[:, 2 * k :], out=core)
    if y2 is None:
        y2 = y * y
    np.subtract(y2[:, k:-k], core, out=core)
    np.abs(core, out=core)
    out[:, :k] = out[:, k : k + 1]
    out[:, -k:] = out[:, -k - 1 : -k]
    return out


def _centered_mean_t(x: FloatArray, half: int, lo: int, hi: int) -> FloatArray:
    """Centered ``2 half + 1`` means of channels-first ``(ch, n)`` data at ``lo..hi-1``."""
    cs = np.empty((x.shape[0], x.shape[1] + 1))
    cs[:, 0] = 0.0
    np.cumsum(x, axis=1, out=cs[:, 1:])
    return np.asarray(
        (cs[:, lo + half + 1 : hi + half + 1] - cs[:, lo - half : hi - half]) / (2 * half + 1)
    )


def _sub_stats_t(x: FloatArray, nsub: int) -> tuple[FloatArray, FloatArray]:
    """:func:`_sub_stats` of channels-first ``(ch, n)`` data, as ``(ch, n_sub)``."""
    n_ch, n = x.shape
    n_full = n // nsub
    parts_m, parts_q = [], []
    if n_full:
        xr = x[:, : n_full * nsub].reshape(n_ch, n_full, nsub)
        parts_m.append(xr.sum(axis=2) / nsub)
        parts_q.append(np.einsum("cwk,cwk->cw", xr, xr) / nsub)
    if n > n_full * nsub:
        tail = x[:, n_full * nsub :]
        parts_m.append(tail.mean(axis=1, keepdims=True))
        parts_q.append((tail * tail).mean(axis=1, keepdims=True))
    mean = np.concatenate(parts_m, axis=1)
    msq = np.concatenate(parts_q, axis=1)
    return mean, np.sqrt(np.maximum(msq - mean**2, 0.0))


class ContractionStream:
    """Chunked contraction detection with results identical to a single pass.

    After conditioning, the stream works on short bins (``bin_s``, 2 ms; one sample below
    500 Hz): bin means of ``|TKEO|`` and of the squared signal carry all later steps, which
    is what makes an hour of 2 kHz EMG cheap. Onsets and offsets are reported in samples (the
    centre of the bin found).

    Parameters
    ----------
    fs_hz : float
        Sampling rate.
    params : DetectionParams, optional
        Settings (defaults documented in ``docs/emg.md``).

    Examples
    --------
    >>> import numpy as np
    >>> stream = ContractionStream(1000.0)
    >>> x = np.random.default_rng(0).normal(size=(5000, 2))
    >>> part = stream.push(x[:2000])
    >>> res = stream.close(x[2000:])
    >>> res.n_channels
    2
    """

    def __init__(self, fs_hz: float, params: DetectionParams | None = None) -> None:
        if not np.isfinite(fs_hz) or fs_hz < MIN_FS_HZ:
            raise EmgInputError(f"fs_hz must be >= {MIN_FS_HZ:g} Hz, got {fs_hz!r}")
        p = params or DetectionParams()
        self._p = p
        self._fs = float(fs_hz)
        d = max(1, round(p.bin_s * fs_hz))
        self._d = d
        bfs = fs_hz / d
        self._bfs = bfs
        self._nsub = max(2, round(p.sub_window_s * bfs))
        self._Bb = self._nsub * p.subs_per_block
        self._h_det = max(1, round(p.det_window_s * bfs / 2))
        self._h_rms = max(1, round(p.rms_window_s * bfs / 2))
        self._Mb = max(round(p.margin_s * bfs), self._h_rms + 2, self._h_det + 2)
        # Bins kept on each side of a block's core: the envelope half-windows plus the bin
        # whose TKEO is undefined at the edge.
        self._Eb = max(self._h_rms, self._h_det) + 2
        self._B = self._Bb * d
        self._G = max(1, int(p.blocks_per_fft))
        self._M = self._Mb * d
        self._C = max(1, math.ceil(p.context_s * bfs / self._Bb))
        self._min_len = max(1, round(p.min_duration_s * bfs))
        self._gap = max(1, round(p.merge_gap_s * bfs))
        self._gap_max = max(self._gap, round(p.merge_max_s * bfs))
        self._pre = max(2, round(p.refine_pre_s * bfs))
        self._span = max(4, round(0.3 * bfs))
        self._look_back = self._pre
        self._period = max(1, round(0.1 * fs_hz))
        self._lag = max(1, round(fs_hz / 1000.0))
        band = band_edges_hz(fs_hz, p.conditioning.band_hz)
        self._kappa = (band[1] - band[0]) * d / fs_hz
        self._rise_bins = sorted({round(r * bfs) for r in RISE_GRID_S})
        self._coarse = round(p.refine_coarse_s * bfs)
        # Raw chunks still needed (joined only where a block needs them: appending to one
        # array would copy everything held on every push).
        self._raw: list[FloatArray] = []
        self._raw_lo = 0
        self._n_in = 0
        self._n_ch: int | None = None
        self._next_block = 0
        self._next_detect = 0
        self._blocks: dict[int, _Block] = {}
        self._state: list[_ChannelState] = []
        self._closed = False
        self._noise_pw: list[FloatArray] = []
        self._noise_now: FloatArray = np.zeros(0)
        self._mains: list[float | None] = []
        self._todo: list[tuple[int, _Run, int, float]] = []
        self._span_bins: tuple[int, int] | None = None
        self._span_cache: dict[tuple[str, int], FloatArray] = {}
        self._span_first = 0

    # ----------------------------------------------------------------- public
    def push(self, chunk_uv: object) -> Contractions:
        """Feed the next chunk ``(n,)`` or ``(n, n_channels)``; returns contractions completed."""
        self._feed(chunk_uv)
        return self._collect()

    def close(self, chunk_uv: object | None = None) -> Contractions:
        """Feed an optional last chunk, flush, and return the remaining contractions."""
        if chunk_uv is not None:
            self._feed(chunk_uv)
        min_n = max(round(0.5 * self._fs), 1)
        if self._n_in < min_n:
            raise EmgInputError(
                f"recording is too short: {self._n_in} samples; at least 0.5 s "
                f"({min_n} samples at {self._fs:g} Hz) are needed"
            )
        self._advance(final=True)
        self._closed = True
        return self._collect()

    def _close_whole(self, x: FloatArray) -> Contractions:
        """:meth:`close` on a whole validated recording that is not modified meanwhile (no
        copy of it is kept)."""
        self._feed(x, copy=False, validated=True)
        return self.close()

    @property
    def mains_hz(self) -> float | None:
        """Most frequent mains frequency found over the processed blocks."""
        found = [m for m in self._mains if m is not None]
        if not found:
            return None
        vals, counts = np.unique(found, return_counts=True)
        return float(vals[np.argmax(counts)])

    def _feed(self, chunk_uv: object, copy: bool = True, validated: bool = False) -> None:
        if self._closed:
            raise EmgInputError("stream is closed")
        if np.size(chunk_uv) == 0:  # type: ignore[arg-type]
            return
        # ``validated``: a float64 (n, ch) array already checked (one pass over an hour saved).
        x = chunk_uv if validated else validate_emg(chunk_uv, self._fs)
        assert isinstance(x, np.ndarray)
        if copy and np.may_share_memory(x, chunk_uv):
            x = x.copy()  # the caller may reuse its buffer for the next chunk
        if self._n_ch is None:
            self._n_ch = x.shape[1]
            self._state = [_ChannelState() for _ in range(self._n_ch)]
        elif x.shape[1] != self._n_ch:
            raise EmgInputError(
                f"chunk has {x.shape[1]} channels, the stream started with {self._n_ch}"
            )
        self._raw.append(x)
        self._n_in += x.shape[0]
        self._advance(final=False)

    # ---------------------------------------------------------------- blocks
    def _condition_next(self, final: bool) -> bool:
        """Condition the next conditioning blocks (``blocks_per_fft`` detection blocks each;
        one FFT per channel), as many together as fill the FFT's SIMD rows (``FFT_ROWS``,
        e.g. two blocks of two channels) when they are all ready: never waiting for data,
        so the delay and the memory are those of one block at a time."""
        g_len = self._G * self._B
        n_ch = self._n_ch or 1
        n_group = max(1, FFT_ROWS // math.gcd(n_ch, FFT_ROWS))
        group: list[tuple[int, int, int, int]] = []  # (first block, lo, hi, n_core)
        k = self._next_block
        while len(group) < n_group:
            lo = k * self._B
            if lo >= self._n_in or (not final and lo + g_len + self._M > self._n_in):
                break
            hi = min(lo + g_len, self._n_in)
            n_core = -(-(hi - lo) // self._d) * self._d
            if group and n_core != group[0][3]:
                break  # one FFT call needs blocks of one length
            group.append((k, lo, hi, n_core))
            k += self._G
        if not group:
            return False
        n_core = group[0][3]
        x_pads = []
        for _, lo, hi, _ in group:
            seg_lo = max(lo - self._M, 0)
            seg_hi = min(hi + self._M, self._n_in)
            seg = self._raw_segment(seg_lo, seg_hi)
            pad_l = self._M - (lo - seg_lo)
            pad_r = self._M + n_core - (seg_hi - lo)
            x_pads.append(_pad_edges(seg, pad_l, pad_r, self._period))
            del seg
        # Only the core and the half-windows of the envelopes around it are needed downstream.
        # The raw segments are handed over (consume): freed before the transforms allocate.
        e = self._Eb
        y_rows, mains = condition_blocks_rows_t(
            x_pads, self._fs, self._p.conditioning, self._M,
            rows=((self._Mb - e) * self._d, self._M + n_core + e * self._d), consume=True,
        )
        self._store_blocks([k for k, _, _, _ in group], y_rows, mains, n_core)
        keep_from = group[-1][2] - self._M
        while self._raw and self._raw_lo + self._raw[0].shape[0] <= keep_from:
            self._raw_lo += self._raw.pop(0).shape[0]
        return True

    def _store_blocks(
        self, ks: list[int], y: NDArray[np.float32], mains: list[float | None], n_core: int
    ) -> None:
        """Bin-rate arrays of conditioned samples as detection blocks: ``y`` holds the rows
        (channels) of the conditioning blocks starting at detection blocks ``ks``, each with
        ``_Eb`` bins of context on both sides of ``n_core`` samples. Every step works row by
        row, so the blocks are processed stacked (fewer, larger array operations)."""
        e = self._Eb
        n_ch = self._n_ch or 1
        y2 = y * y
        sq = _bin_mean_t(y2, self._d)
        tk = _bin_mean_t(_tkeo_abs_t(y, self._lag, y2), self._d) if self._p.tkeo else sq
        c_lo, c_hi = e, e + n_core // self._d
        env = _centered_mean_t(tk, self._h_det, c_lo, c_hi)
        rms = _centered_mean_t(sq, self._h_rms, c_lo, c_hi)
        np.maximum(rms, 0.0, out=rms)
        np.sqrt(rms, out=rms)
        sq_core = sq[:, c_lo:c_hi]
        sub_mean, sub_std = _sub_stats_t(env, self._nsub)
        sub_pw, _ = _sub_stats_t(sq_core, self._nsub)
        n_bins = c_hi - c_lo
        per_sub = self._Bb // self._nsub
        for g, (k, mains_g) in enumerate(zip(ks, mains, strict=True)):
            r0, r1 = g * n_ch, (g + 1) * n_ch
            for j in range(-(-n_bins // self._Bb)):
                b0, b1 = j * self._Bb, (j + 1) * self._Bb
                s0, s1 = j * per_sub, (j + 1) * per_sub
                # Channels first (ch, bins): per-channel slices are contiguous.
                self._blocks[k + j] = _Block(
                    (k + j) * self._Bb, env[r0:r1, b0:b1], sq_core[r0:r1, b0:b1],
                    rms[r0:r1, b0:b1], sub_mean[r0:r1, s0:s1], sub_std[r0:r1, s0:s1],
                    sub_pw[r0:r1, s0:s1], mains_g,
                )
                self._mains.append(mains_g)
                self._next_block += 1

    def _raw_segment(self, lo: int, hi: int) -> FloatArray:
        """Raw samples ``lo..hi-1`` (held since they are still needed)."""
        parts = []
        pos = self._raw_lo
        for part in self._raw:
            end = pos + part.shape[0]
            if end > lo and pos < hi:
                parts.append(part[max(lo - pos, 0) : min(hi, end) - pos])
            pos = end
            if pos >= hi:
                break
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def _advance(self, final: bool) -> None:
        while self._condition_next(final):
            pass
        end = self._next_block if final else max(self._next_block - self._C, self._next_detect)
        # Thresholds depend only on the blocks held, which detection does not change.
        thresholds = self._thresholds_many(range(self._next_detect, end))
        for g0 in range(0, len(thresholds), DETECT_STACK):
            self._detect_blocks(self._next_detect, thresholds[g0 : g0 + DETECT_STACK])
        self._flush()
        if final:
            n_bins = -(-self._n_in // self._d)
            for ch, st in enumerate(self._state):
                if st.open_run is not None:
                    self._offer(ch, st.open_run)
                    st.open_run = None
                if st.pending is not None:
                    self._finalize(ch, st.pending, n_bins)
                    st.pending = None
            self._flush()
        self._prune()

    def _prune(self) -> None:
        keep = self._next_detect - self._C - 1
        for st in self._state:
            for run in (st.open_run, st.pending):
                if run is not None:
                    keep = min(keep, (run.start - self._pre) // self._Bb - 1)
        for k in [k for k in self._blocks if k < keep]:
            del self._blocks[k]

    def _range(self, name: str, ch: int, a: int, b: int) -> FloatArray:
        """Bins ``a..b-1`` of one per-block array (only what is still held)."""
        span = self._span_bins
        if span is not None and span[0] <= a and b <= span[1]:
            key = (name, ch)
            got = self._span_cache.get(key)
            if got is None:
                got = self._range_blocks(name, ch, span[0], span[1])
                self._span_cache[key] = got
            lo = max(self._span_first, span[0])
            i0 = min(max(a - lo, 0), got.size)
            return got[i0 : max(min(b - lo, got.size), i0)]
        return self._range_blocks(name, ch, a, b)

    def _range_blocks(self, name: str, ch: int, a: int, b: int) -> FloatArray:
        parts = []
        for k in range(max(a // self._Bb, 0), (b - 1) // self._Bb + 1):
            blk = self._blocks.get(k)
            if blk is None:
                continue
            arr: FloatArray = getattr(blk, name)
            lo, hi = max(a - blk.lo, 0), min(b - blk.lo, arr.shape[1])
            if hi > lo:
                parts.append(arr[ch, lo:hi])
        return np.concatenate(parts) if parts else np.zeros(0)

    def _first_available(self) -> int:
        return min(self._blocks) * self._Bb if self._blocks else 0

    # ------------------------------------------------------------- detection
    def _thresholds(self, k: int) -> tuple[FloatArray, FloatArray, FloatArray]:
        """Noise level and spread of the detection envelope around block ``k``, robustly.

        The lowest quarter of the context's 100 ms sub-window means is taken as noise only and
        fitted by a Gaussian lower tail: ``sigma_m = (q25 - q5) / 0.97`` and
        ``mu = q25 + 0.674 sigma_m``; the spread of single envelope values adds the mean
        within-window variance of those windows. Valid while contractions fill less than about
        three quarters of the +-32 s context.
        """
        ks = [j for j in range(k - self._C, k + self._C + 1) if j in self._blocks]
        # Channels first: reductions along the last axis are much faster.
        means = np.concatenate([self._blocks[j].sub_mean for j in ks], axis=1)
        stds = np.concatenate([self._blocks[j].sub_std for j in ks], axis=1)
        pws = np.concatenate([self._blocks[j].sub_pw for j in ks], axis=1)
        return self._threshold_stats(means, stds, pws)

    def _threshold_stats(
        self, means: FloatArray, stds: FloatArray, pws: FloatArray
    ) -> tuple[FloatArray, FloatArray, FloatArray]:
        """The statistics of :meth:`_thresholds` along the last axis of ``(..., ch, n)``."""
        q5, q25 = _percentiles_5_25_last(means)
        sigma_m = (q25 - q5) / 0.97
        mu = q25 + 0.674 * sigma_m
        quiet = means <= q25[..., None]
        n_q = np.maximum(quiet.sum(axis=-1), 1)
        within = np.sqrt(np.where(quiet, stds * stds, 0.0).sum(axis=-1) / n_q)
        noise_pw = np.where(quiet, pws, 0.0).sum(axis=-1) / n_q
        spread = np.sqrt(sigma_m**2 + within**2)
        spread = np.maximum(spread, 1e-9 * np.maximum(mu, 1e-12))
        return mu + self._p.k_low * spread, mu + self._p.k_high * spread, noise_pw

    def _thresholds_many(self, ks: range) -> list[tuple[FloatArray, FloatArray, FloatArray]]:
        """:meth:`_thresholds` of consecutive blocks; those with a whole context in one stack
        of sliding windows (same values: the per-row operations are unchanged)."""
        C = self._C
        per_sub = self._Bb // self._nsub
        full = [k for k in ks
                if all(j in self._blocks and self._blocks[j].sub_mean.shape[1] == per_sub
                       for j in range(k - C, k + C + 1))]
        out: dict[int, tuple[FloatArray, FloatArray, FloatArray]] = {}
        w = (2 * C + 1) * per_sub
        if len(full) > 1 and full[-1] - full[0] == len(full) - 1:
            # Stacks of THRESHOLD_STACK blocks: a whole-day recording in one call would
            # otherwise hold (2 C + 1) copies of its sub-window statistics at once.
            for g0 in range(0, len(full), THRESHOLD_STACK):
                group = full[g0 : g0 + THRESHOLD_STACK]
                js = range(group[0] - C, group[-1] + C + 1)

                def stack(name: str, js: range = js) -> FloatArray:
                    arr = np.concatenate([getattr(self._blocks[j], name) for j in js], axis=1)
                    win = np.lib.stride_tricks.sliding_window_view(arr, w, axis=1)[:, ::per_sub]
                    return np.ascontiguousarray(win.transpose(1, 0, 2))  # (k, ch, w)

                t_low, t_high, noise = self._threshold_stats(
                    stack("sub_mean"), stack("sub_std"), stack("sub_pw"))
                for i, k in enumerate(group):
                    out[k] = (t_low[i], t_high[i], noise[i])
        return [out[k] if k in out else self._thresholds(k) for k in ks]

    def _detect_blocks(
        self, k0: int, thresholds: Sequence[tuple[FloatArray, FloatArray, FloatArray]]
    ) -> None:
        """Hysteresis detection of the consecutive blocks ``k0, k0 + 1, ...`` (one
        ``(T_low, T_high, noise_pw)`` triple each).

        The runs above each block's ``T_low`` are found for all the blocks in one pass per
        channel (a run crossing a block boundary is one run; a run still open at the end is
        carried to the next call as ``open_run``); runs that also cross ``T_high`` are then
        offered to the merge rules block by block, in the order the run ends, with the noise
        of the block in which each run ends; at every block end a pending contraction is
        finalised when nothing can merge with it any more. So the result does not depend on
        how many blocks one call covers (the earlier block-by-block loop gave the same)."""
        if not thresholds:
            return
        n_blk = len(thresholds)
        blks = [self._blocks[k0 + i] for i in range(n_blk)]
        lens = np.array([b.env.shape[1] for b in blks])
        lo0 = blks[0].lo
        blk_end = (lo0 + np.cumsum(lens)).tolist()  # global end bin of each block
        env = np.concatenate([b.env for b in blks], axis=1) if n_blk > 1 else blks[0].env
        t_low = np.stack([t[0] for t in thresholds], axis=1)  # (ch, blocks)
        t_high = np.stack([t[1] for t in thresholds], axis=1)
        n = env.shape[1]
        runs_ch = []
        same_len = bool((lens == lens[0]).all())
        for ch, st in enumerate(self._state):
            e = env[ch]
            if same_len:
                e_b = e.reshape(n_blk, -1)
                low = (e_b > t_low[ch][:, None]).ravel()
                high_idx = np.flatnonzero(e_b > t_high[ch][:, None])
            else:
                low = e > np.repeat(t_low[ch], lens)
                high_idx = np.flatnonzero(e > np.repeat(t_high[ch], lens))
            carry = st.open_run
            ext = np.empty(n + 2, dtype=np.int8)
            ext[0] = carry is not None
            ext[1:-1] = low
            ext[-1] = 0
            d = np.diff(ext)
            starts = np.flatnonzero(d == 1)
            ends = np.flatnonzero(d == -1)  # first bin after each run (n: still open)
            if carry is not None:
                starts = np.r_[0, starts]
            if high_idx.size:
                pos = np.searchsorted(high_idx, starts)
                fh = high_idx[np.minimum(pos, high_idx.size - 1)]
                fh = np.where((pos < high_idx.size) & (fh < ends), fh, -1)
                pos_l = np.searchsorted(high_idx, ends) - 1
                lh = high_idx[np.maximum(pos_l, 0)]
                lh = np.where((pos_l >= 0) & (lh >= starts), lh, -1)
            else:
                fh = lh = np.full(starts.size, -1)
            # Global bins as Python ints (cheaper element access below).
            st_l = (starts + lo0).tolist()
            en_l = (ends + lo0).tolist()
            fh_l = np.where(fh >= 0, fh + lo0, -1).tolist()
            lh_l = np.where(lh >= 0, lh + lo0, -1).tolist()
            if carry is not None:
                # The first run continues the open run of the previous call.
                st_l[0] = carry.start
                if carry.first_high >= 0:
                    fh_l[0] = carry.first_high
                if lh_l[0] < 0:
                    lh_l[0] = carry.last_high
            runs_ch.append((st_l, en_l, fh_l, lh_l, bool(low[-1])))
        ptr = [0] * len(self._state)
        for i, th in enumerate(thresholds):
            noise_pw = th[2]
            self._noise_pw.append(noise_pw)
            self._noise_now = noise_pw
            block_end = blk_end[i]
            last = i == n_blk - 1
            for ch, st in enumerate(self._state):
                st_l, en_l, fh_l, lh_l, open_end = runs_ch[ch]
                j = ptr[ch]
                n_runs = len(st_l)
                # Runs that end (their first bin below T_low) within this block.
                while j < n_runs and en_l[j] < block_end:
                    if fh_l[j] >= 0:
                        self._offer(ch, _Run(st_l[j], en_l[j], fh_l[j], lh_l[j]))
                    j += 1
                ptr[ch] = j
                # A run still above T_low at the block's end stays open.
                if j < n_runs and st_l[j] < block_end:
                    if last and open_end:
                        st.open_run = _Run(st_l[j], block_end, fh_l[j], lh_l[j])
                    else:
                        st.open_run = _Run(st_l[j], block_end, -1, -1)
                else:
                    st.open_run = None
                if st.pending is not None:
                    nxt = st.open_run.start if st.open_run is not None else block_end
                    if nxt - st.pending.end >= self._gap_max:
                        self._finalize(ch, st.pending, nxt)
                        st.pending = None
            self._next_detect += 1
            # Refining many contractions at once is cheaper (the result does not depend on it);
            # the batch is bounded so its arrays stay small.
            if len(self._todo) >= FLUSH_BATCH:
                self._flush()

    def _offer(self, ch: int, run: _Run) -> None:
        st = self._state[ch]
        if run.first_high < 0:
            return
        if st.pending is not None and self._same_contraction(ch, st.pending, run):
            st.pending.end = run.end
            st.pending.last_high = max(st.pending.last_high, run.last_high)
            return
        if st.pending is not None:
            self._finalize(ch, st.pending, run.start)
        st.pending = _Run(run.start, run.end, run.first_high, run.last_high)

    def _same_contraction(self, ch: int, prev: _Run, run: _Run) -> bool:
        """Merge rule: gap < ``merge_gap_s``, or < ``merge_max_s`` with the signal power in the
        gap still ``merge_power_ratio`` times the noise power (an envelope dip inside one weak
        contraction, not a rest)."""
        gap = run.start - prev.end
        if gap < self._gap:
            return True
        if gap >= self._gap_max:
            return False
        gap_pw = self._range("sq", ch, prev.end, run.start)
        return bool(gap_pw.size and gap_pw.mean() > self._p.merge_power_ratio
                    * float(self._noise_now[ch]))

    def _finalize(self, ch: int, ev: _Run, next_bound: int) -> None:
        """Queue a contraction for refinement and output (see :meth:`_flush`)."""
        if ev.end - ev.start < self._min_len:
            return
        self._todo.append((ch, _Run(ev.start, ev.end, ev.first_high, ev.last_high), next_bound,
                           float(self._noise_now[ch])))

    def _flush(self) -> None:
        """Refine and emit the queued contractions, in order.

        The onset search of a contraction starts after the previous contraction's refined
        offset, which couples them; the searches are solved in two batches (all onsets, then
        all offsets) with each channel's first queued onset bounded by the last emitted offset
        and the others assumed unbounded, and then committed in order. A contraction whose
        bound turns out different (a previous offset within ``refine_pre_s`` of its start) is
        re-solved alone, so the result is the same as refining one contraction at a time.
        """
        todo, self._todo = self._todo, []
        if not todo:
            return
        # Every search window and contraction of this flush lies in one span of bins: it is
        # joined from the blocks once per array and channel (see ``_range``).
        self._span_bins = (min(ev.start for _, ev, _, _ in todo) - self._pre - 1,
                           max(ev.end for _, ev, _, _ in todo) + self._pre + self._span + 2)
        self._span_cache = {}
        self._span_first = self._first_available()
        try:
            self._flush_todo(todo)
        finally:
            self._span_bins = None
            self._span_cache = {}

    def _flush_todo(self, todo: list[tuple[int, _Run, int, float]]) -> None:
        """The body of :meth:`_flush`."""
        if not self._p.refine:
            for ch, ev, _, noise in todo:
                self._emit(ch, ev.start, ev.end - 1, noise)
            return
        first_avail = self._first_available()
        span = self._span_bins
        span_lo = max(self._span_first, span[0]) if span is not None else 0
        sizes = ([self._range("rms", c, span[0], span[1]).size for c in range(self._n_ch or 0)]
                 if span is not None else [])
        batch: list[tuple[int, int, int, float, int, int]] = []
        seen: set[int] = set()
        a_guess = []
        for ch, ev, _, _ in todo:
            last = self._state[ch].last_offset if ch not in seen else -1
            seen.add(ch)
            a_guess.append(max(ev.start - self._pre, last + 1, first_avail))
        # An offset search starts after the refined onset only when the contraction is shorter
        # than the search span; the offsets are solved in the same batch as the onsets with
        # that bound left out, and re-solved where it applies.
        n_todo = len(todo)
        both = self._refine_many(
            [(ch, a, ev.first_high, ev.end, ev.start, False, nz)
             for (ch, ev, _, nz), a in zip(todo, a_guess, strict=True)]
            + [(ch, min(ev.end + self._pre, nb), ev.last_high, 0, ev.end - 1, True, nz)
               for ch, ev, nb, nz in todo]
        )
        onsets, offsets = both[:n_todo], both[n_todo:]
        redo = [i for i, (_, ev, _, _) in enumerate(todo)
                if onsets[i] + 1 > ev.last_high - self._span]
        if redo:
            fixed = self._refine_many(
                [(todo[i][0], min(todo[i][1].end + self._pre, todo[i][2]), todo[i][1].last_high,
                  onsets[i] + 1, todo[i][1].end - 1, True, todo[i][3]) for i in redo]
            )
            for i, off in zip(redo, fixed, strict=True):
                offsets[i] = off
        for (ch, ev, nb, nz), a, onset, offset in zip(todo, a_guess, onsets, offsets,
                                                      strict=True):
            st = self._state[ch]
            a_true = max(ev.start - self._pre, st.last_offset + 1, first_avail)
            if a_true != a:
                onset = self._refine_many(
                    [(ch, a_true, ev.first_high, ev.end, ev.start, False, nz)])[0]
                b = min(ev.end + self._pre, nb)
                offset = self._refine_many(
                    [(ch, b, ev.last_high, onset + 1, ev.end - 1, True, nz)])[0]
            if offset <= onset:
                onset, offset = ev.start, ev.end - 1
            if offset - onset + 1 < self._min_len:
                continue
            if span is None or onset < span[0] or offset + 1 > span[1]:
                self._emit(ch, onset, offset, nz)
                continue
            # In the joined span: emitted below in one pass (the event order within a channel
            # is restored by ``_collect``'s sort); only the bound for the next search is due now.
            i0 = min(max(onset - span_lo, 0), sizes[ch])
            i1 = max(min(offset + 1 - span_lo, sizes[ch]), i0)
            if i1 > i0:
                batch.append((ch, onset, offset, nz, i0, i1))
                st.last_offset = offset
        self._emit_many(batch)

    def _emit_many(self, batch: list[tuple[int, int, int, float, int, int]]) -> None:
        """:meth:`_emit` of ``(ch, onset, offset, noise, i0, i1)`` contractions whose RMS and
        power are bins ``i0..i1-1`` (non-empty) of the flush's joined span arrays."""
        if not batch:
            return
        chs = np.array([b[0] for b in batch])
        onsets = np.array([b[1] for b in batch])
        offsets = np.array([b[2] for b in batch])
        noise = np.array([b[3] for b in batch])
        i0 = np.array([b[4] for b in batch])
        i1 = np.array([b[5] for b in batch])
        n = i1 - i0
        pw_sum = np.empty(len(batch))
        rms_sum = np.empty(len(batch))
        j = np.empty(len(batch), dtype=np.int64)
        peak = np.empty(len(batch))
        assert self._span_bins is not None
        a, b = self._span_bins
        for ch in np.unique(chs).tolist():
            sel = np.flatnonzero(chs == ch)
            rms = self._range("rms", ch, a, b)
            sq = self._range("sq", ch, a, b)
            bounds = np.stack([i0[sel], i1[sel]], axis=1).ravel()
            if np.all(bounds[1:] >= bounds[:-1]) and bounds[-1] < rms.size:
                # One reduction per array; the sums between contractions are dropped.
                rms_sum[sel] = np.add.reduceat(rms, bounds)[::2]
                pw_sum[sel] = np.add.reduceat(sq, bounds)[::2]
            else:
                for i in sel.tolist():
                    rms_sum[i] = _sum(rms[i0[i] : i1[i]])
                    pw_sum[i] = _sum(sq[i0[i] : i1[i]])
            for i, lo, hi in zip(sel.tolist(), i0[sel].tolist(), i1[sel].tolist(), strict=True):
                j[i] = rms[lo:hi].argmax()
            peak[sel] = rms[i0[sel] + j[sel]]
        with np.errstate(over="ignore"):
            snr_db = 10 * np.log10(np.maximum(pw_sum / n, 1e-30) / np.maximum(noise, 1e-30))
            conf = 1.0 / (1.0 + np.exp(np.minimum(-(snr_db - 3.0) / 1.5, 700.0)))
        conf *= np.minimum(1.0, (offsets - onsets + 1) / (2 * self._min_len))
        rows = zip(onsets.tolist(), offsets.tolist(), conf.tolist(), peak.tolist(),
                   (rms_sum / n).tolist(), (j / self._bfs).tolist(), strict=True)
        for ch, row in zip(chs.tolist(), rows, strict=True):
            self._state[ch].events.append(row)

    def _emit(self, ch: int, onset: int, offset: int, noise: float) -> None:
        st = self._state[ch]
        rms = self._range("rms", ch, onset, offset + 1)
        pw = self._range("sq", ch, onset, offset + 1)
        if rms.size == 0:
            return
        j = int(rms.argmax())
        # np.add.reduce: the ndarray.mean/sum wrappers cost more than the sums here.
        snr_db = 10 * math.log10(
            max(float(_sum(pw)) / pw.size, 1e-30) / max(noise, 1e-30)
        )
        conf = 1.0 / (1.0 + math.exp(min(-(snr_db - 3.0) / 1.5, 700.0)))
        conf *= min(1.0, (offset - onset + 1) / (2 * self._min_len))
        st.events.append(
            (onset, offset, float(conf), float(rms[j]), float(_sum(rms)) / rms.size,
             j / self._bfs)
        )
        st.last_offset = offset

    def _refine_many(
        self, jobs: Sequence[tuple[int, int, int, int, int, bool, float]]
    ) -> list[int]:
        """ML ramp onsets (or, reversed, offsets) in bins, one per ``(ch, a, anchor, limit,
        fallback, reverse, noise_pw)`` job: between ``a`` and ``anchor`` + 300 ms (``noise_pw``:
        the context noise power, used when too little precedes the coarse boundary)."""
        out: list[int] = []
        problems: list[tuple[FloatArray, float, int, int]] = []
        where: list[tuple[int, int, bool]] = []
        span = self._span_bins
        held: dict[int, FloatArray] = {}
        span_lo = max(self._span_first, span[0]) if span is not None else 0

        def sq_range(ch: int, a: int, b: int) -> FloatArray:
            # ``_range("sq", ...)`` inlined for the joined span (called for every job).
            if span is None or a < span[0] or b > span[1]:
                return self._range("sq", ch, a, b)
            got = held.get(ch)
            if got is None:
                got = held[ch] = self._range("sq", ch, span[0], span[1])
            i0 = min(max(a - span_lo, 0), got.size)
            return got[i0 : max(min(b - span_lo, got.size), i0)]

        for ch, a, anchor, limit, fallback, reverse, noise_ctx in jobs:
            if reverse:
                lo = max(limit, anchor - self._span)
                y = sq_range(ch, lo, a)[::-1]
                rel = a - 1 - anchor
                coarse_rel = a - 1 - fallback
            else:
                y = sq_range(ch, a, min(limit, anchor + self._span))
                rel = anchor - a
                coarse_rel = fallback - a
            out.append(fallback)
            if y.size < 8 or rel < 1 or rel >= y.size:
                continue
            # Local noise power from before the coarse boundary: the context estimate is
            # biased low by its quiet-window selection, which would pull onsets early.
            n_pre = coarse_rel - max(1, round(0.01 * self._bfs))
            noise = float(_sum(y[:n_pre])) / n_pre if n_pre >= 10 else noise_ctx
            # The centered detection window lets crossings lead the signal by up to half a
            # window.
            cand_hi = min(rel + self._h_det, y.size - 1)
            cand_lo = max(0, coarse_rel - self._look_back)
            problems.append((y, noise, cand_hi, cand_lo))
            where.append((len(out) - 1, a, reverse))
        t0s = _ramp_onsets_coarse_fine(problems, self._rise_bins, self._span, self._kappa,
                                       self._coarse)
        for (i, a, reverse), t0 in zip(where, t0s, strict=True):
            out[i] = a + t0 if not reverse else a - 1 - t0
        return out

    # ---------------------------------------------------------------- output
    def _collect(self) -> Contractions:
        rows: list[tuple[float, ...]] = []
        for ch, st in enumerate(self._state):
            rows.extend((ch, *ev) for ev in st.events)
            st.events.clear()
        rows.sort(key=lambda r: (r[0], r[1]))
        arr = np.asarray(rows, dtype=np.float64).reshape(-1, 7)
        noise = (
            np.sqrt(np.median(np.asarray(self._noise_pw), axis=0))
            if self._noise_pw
            else np.zeros(self._n_ch or 0)
        )
        # Bin index -> sample index of the bin centre, clipped to the recording.
        last = max(self._n_in - 1, 0)
        half = (self._d - 1) // 2
        onset = np.minimum(arr[:, 1].astype(np.int64) * self._d + half, last)
        offset = np.minimum(arr[:, 2].astype(np.int64) * self._d + half, last)
        return Contractions(
            onset_idx=onset,
            offset_idx=offset,
            channel=arr[:, 0].astype(np.int64),
            confidence=arr[:, 3].copy(),
            peak_uv=arr[:, 4].copy(),
            mean_uv=arr[:, 5].copy(),
            time_to_peak_s=arr[:, 6].copy(),
            fs_hz=self._fs,
            n_channels=self._n_ch or 0,
            method="tkeo_changepoint",
            noise_uv=np.asarray(noise, dtype=np.float64),
            mains_hz=self.mains_hz,
        )
