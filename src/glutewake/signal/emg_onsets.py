"""Contraction onset/offset detection for surface EMG (default method, streaming core).

Default method ("tkeo_changepoint"), per channel (all settings are :class:`DetectionParams`
fields; ``docs/emg.md`` has the full description):

1. Conditioning (:mod:`glutewake.signal.emg_condition`) on a fixed grid of 12 s blocks; after it
   everything runs on 2 ms bins (one sample below 500 Hz).
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
   posterior mean of the ramp start over a grid of starts and rise times (0-150 ms). The
   contractions completed in one block are refined together as one stacked computation,
   with the same result as one at a time (``ContractionStream._flush``).
6. Contractions shorter than ``min_duration_s`` (100 ms) after refinement are dropped (ECG QRS
   residue, spikes).
7. Confidence: ``sigmoid((snr_db - 3) / 1.5) * min(1, duration / (2 min_duration))`` where
   ``snr_db`` compares the contraction's mean power with the local noise power.

Streaming: :class:`ContractionStream` consumes chunks of any size and emits each contraction once
its context is complete (about 32 s later). Memory is bounded by the chunk size plus the context
(~10 blocks of bin-rate arrays) plus the longest contraction. Results are identical to a single
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
    MIN_FS_HZ,
    ConditioningParams,
    EmgInputError,
    band_edges_hz,
    condition_block,
    tkeo_abs,
    validate_emg,
)

__all__ = [
    "ContractionStream",
    "Contractions",
    "DetectionParams",
    "ramp_onset",
]

FloatArray = NDArray[np.float64]

RISE_GRID_S = (0.0, 0.005, 0.01, 0.02, 0.035, 0.05, 0.075, 0.1, 0.15)
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
        How far before the coarse onset the refinement looks.
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
    margin_s: float = 1.5
    context_s: float = 32.0
    quiet_fraction: float = 0.25
    refine: bool = True
    tkeo: bool = True
    refine_pre_s: float = 0.2


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


def _ramp_onsets_batch(
    problems: Sequence[tuple[FloatArray, float, int, int]],
    rise_bins: Sequence[int],
    plateau_bins: int,
    kappa: float,
) -> list[int]:
    """:func:`ramp_onset` for many ``(y, noise_pw, cand_hi, cand_lo)`` problems at once.

    Same model, same two passes and the same estimate; the problems are stacked (padded to the
    longest candidate range) so the work is a handful of array operations instead of a few
    dozen per problem. Problems too short for the longest rise time go to :func:`ramp_onset`.
    """
    out = [0] * len(problems)
    r_all = np.asarray(sorted(set(rise_bins)), dtype=np.int64)
    r_max = max(int(r_all[-1]), 1)
    batch: list[int] = []
    for i, (y, s0, cand_hi, cand_lo) in enumerate(problems):
        n = y.size
        hi = min(cand_hi + 1, n - 2)
        lo = min(max(cand_lo, 0), hi - 1)
        if hi - lo >= 1 and int(r_all[-1]) <= n - hi - 1 and r_all[-1] >= 1:
            batch.append(i)
        else:
            out[i] = ramp_onset(y, s0, cand_hi, rise_bins, plateau_bins, kappa, cand_lo)
    if not batch:
        return out
    n_p = len(batch)
    ns = np.array([problems[i][0].size for i in batch])
    his = np.minimum(np.array([problems[i][2] for i in batch]) + 1, ns - 2)
    los = np.minimum(np.maximum(np.array([problems[i][3] for i in batch]), 0), his - 1)
    s0 = np.maximum(np.array([float(problems[i][1]) for i in batch]), 1e-30)
    n_t = int((his - los).max())
    width = int(ns.max())
    ys = np.zeros((n_p, width + 1))
    cs = np.zeros((n_p, width + 1))
    for row, i in enumerate(batch):
        y = problems[i][0]
        np.cumsum(y, out=cs[row, 1 : y.size + 1])
        cs[row, y.size + 1 :] = cs[row, y.size]
        ys[row, : y.size - los[row]] = y[los[row] :]
    rows = np.arange(n_p)[:, None]
    t0 = los[:, None] + np.arange(n_t)[None, :]  # (P, T)
    valid = t0 < his[:, None]
    t0 = np.minimum(t0, his[:, None] - 1)
    first = np.minimum(np.maximum(np.array([problems[i][2] for i in batch]), 1), ns - 1)
    a2 = np.maximum((cs[np.arange(n_p), ns] - cs[np.arange(n_p), first]) / (ns - first) - s0,
                    0.25 * s0)
    k = np.arange(r_max) + 0.5
    frac = np.minimum(1.0, k[:, None] / np.maximum(r_all, 1)[None, :]) ** 2
    frac[:, r_all == 0] = 1.0
    # Window rows t0 = lo..: ys is shifted by lo per problem, so the strides are uniform.
    ys = np.concatenate([ys, np.zeros((n_p, n_t + r_max))], axis=1)
    st = ys.strides
    win = np.ascontiguousarray(
        np.lib.stride_tricks.as_strided(
            ys, shape=(n_p, n_t, r_max), strides=(st[0], st[1], st[1]), writeable=False
        )
    )
    pre = t0 * np.log(s0)[:, None] + cs[rows, t0] / s0[:, None]
    tail_n = ns[:, None] - t0 - r_max
    tail_cs = cs[np.arange(n_p), ns][:, None] - cs[rows, t0 + r_max]
    n_r = r_all.size
    done = np.zeros(n_p, dtype=bool)
    nll = np.zeros((n_p, n_t, n_r))
    flat_best = np.zeros(n_p, dtype=np.int64)
    for it in range(2):
        v_pl = s0 + a2
        v = s0[:, None, None] + a2[:, None, None] * frac[None, :, :]  # (P, r_max, R)
        cur = (pre + tail_n * np.log(v_pl)[:, None] + tail_cs / v_pl[:, None])[:, :, None] + (
            np.log(v).sum(axis=1)[:, None, :] + np.matmul(win, 1.0 / v)
        )
        cur[~valid] = np.inf
        upd = ~done
        nll[upd] = cur[upd]
        fb = np.argmin(cur.reshape(n_p, -1), axis=1)
        flat_best[upd] = fb[upd]
        j, jr = np.divmod(fb, n_r)
        p_lo = t0[np.arange(n_p), j] + r_all[jr]
        p_hi = np.minimum(ns, p_lo + plateau_bins)
        short = p_hi - p_lo < 3
        if it == 1:
            break
        done |= short
        span = np.maximum(p_hi - p_lo, 1)
        a2_new = (cs[np.arange(n_p), p_hi] - cs[np.arange(n_p), np.minimum(p_lo, width)]) / span
        a2 = np.where(done, a2, np.maximum(a2_new - s0, 0.25 * s0))
    j, jr = np.divmod(flat_best, n_r)
    best = t0[np.arange(n_p), j]
    if kappa > 0:
        ref = nll[np.arange(n_p), j, jr]
        w = np.exp(-kappa * (nll - ref[:, None, None]))
        w_t = w.sum(axis=2)
        best = np.array(
            [round(float((w_t[r] @ t0[r]) / w_t[r].sum())) for r in range(n_p)], dtype=np.int64
        )
    for row, i in enumerate(batch):
        out[i] = int(best[row])
    return out


@dataclass
class _Block:
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


def _bin_mean(x: NDArray[np.floating], d: int) -> FloatArray:
    if d == 1:
        return np.asarray(x, dtype=np.float64)
    out = x[::d].astype(np.float64)
    for i in range(1, d):
        out += x[i::d]
    out *= 1.0 / d
    return out


def _centered_mean(x: FloatArray, half: int, lo: int, hi: int) -> FloatArray:
    cs = np.empty((x.shape[0] + 1, x.shape[1]))
    cs[0] = 0.0
    np.cumsum(x, axis=0, out=cs[1:])
    return np.asarray(
        (cs[lo + half + 1 : hi + half + 1] - cs[lo - half : hi - half]) / (2 * half + 1)
    )


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
        self._raw = np.zeros((0, 0))
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
        self._todo: list[tuple[int, _Run, int]] = []

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

    @property
    def mains_hz(self) -> float | None:
        """Most frequent mains frequency found over the processed blocks."""
        found = [m for m in self._mains if m is not None]
        if not found:
            return None
        vals, counts = np.unique(found, return_counts=True)
        return float(vals[np.argmax(counts)])

    def _feed(self, chunk_uv: object) -> None:
        if self._closed:
            raise EmgInputError("stream is closed")
        if np.size(chunk_uv) == 0:  # type: ignore[arg-type]
            return
        x = validate_emg(chunk_uv, self._fs)
        if self._n_ch is None:
            self._n_ch = x.shape[1]
            self._raw = np.zeros((0, self._n_ch))
            self._state = [_ChannelState() for _ in range(self._n_ch)]
        elif x.shape[1] != self._n_ch:
            raise EmgInputError(
                f"chunk has {x.shape[1]} channels, the stream started with {self._n_ch}"
            )
        self._raw = np.concatenate([self._raw, x]) if self._raw.size else x
        self._n_in += x.shape[0]
        self._advance(final=False)

    # ---------------------------------------------------------------- blocks
    def _condition_next(self, final: bool) -> bool:
        k = self._next_block
        lo = k * self._B
        if lo >= self._n_in or (not final and lo + self._B + self._M > self._n_in):
            return False
        hi = min(lo + self._B, self._n_in)
        n_core = -(-(hi - lo) // self._d) * self._d
        seg_lo = max(lo - self._M, 0)
        seg_hi = min(hi + self._M, self._n_in)
        seg = self._raw[seg_lo - self._raw_lo : seg_hi - self._raw_lo]
        pad_l = self._M - (lo - seg_lo)
        pad_r = self._M + n_core - (seg_hi - lo)
        # Only the core and the half-windows of the envelopes around it are needed downstream.
        e = self._Eb
        y, mains = condition_block(
            _pad_edges(seg, pad_l, pad_r, self._period),
            self._fs,
            self._p.conditioning,
            self._M,
            rows=((self._Mb - e) * self._d, self._M + n_core + e * self._d),
        )
        sq = _bin_mean(y * y, self._d)
        tk = _bin_mean(tkeo_abs(y, self._lag), self._d) if self._p.tkeo else sq
        c_lo, c_hi = e, e + n_core // self._d
        env = _centered_mean(tk, self._h_det, c_lo, c_hi)
        rms = np.sqrt(np.maximum(_centered_mean(sq, self._h_rms, c_lo, c_hi), 0.0))
        sq_core = sq[c_lo:c_hi]
        sub_mean, sub_std = _sub_stats(env, self._nsub)
        sub_pw, _ = _sub_stats(sq_core, self._nsub)
        self._blocks[k] = _Block(k * self._Bb, env, sq_core, rms, sub_mean, sub_std, sub_pw, mains)
        self._mains.append(mains)
        self._next_block += 1
        keep_from = hi - self._M
        if keep_from > self._raw_lo:
            self._raw = self._raw[keep_from - self._raw_lo :]
            self._raw_lo = keep_from
        return True

    def _advance(self, final: bool) -> None:
        while self._condition_next(final):
            pass
        while self._next_detect < self._next_block and (
            final or self._next_detect + self._C < self._next_block
        ):
            self._detect_block(self._next_detect)
            self._flush()
            self._next_detect += 1
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
        parts = []
        for k in range(max(a // self._Bb, 0), (b - 1) // self._Bb + 1):
            blk = self._blocks.get(k)
            if blk is None:
                continue
            arr: FloatArray = getattr(blk, name)
            lo, hi = max(a - blk.lo, 0), min(b - blk.lo, arr.shape[0])
            if hi > lo:
                parts.append(arr[lo:hi, ch])
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
        means = np.concatenate([self._blocks[j].sub_mean for j in ks])
        stds = np.concatenate([self._blocks[j].sub_std for j in ks])
        pws = np.concatenate([self._blocks[j].sub_pw for j in ks])
        q5, q25 = np.percentile(means, [5.0, 25.0], axis=0)
        sigma_m = (q25 - q5) / 0.97
        mu = q25 + 0.674 * sigma_m
        quiet = means <= q25[None, :]
        n_q = np.maximum(quiet.sum(axis=0), 1)
        within = np.sqrt((np.where(quiet, stds, 0.0) ** 2).sum(axis=0) / n_q)
        noise_pw = np.where(quiet, pws, 0.0).sum(axis=0) / n_q
        spread = np.sqrt(sigma_m**2 + within**2)
        spread = np.maximum(spread, 1e-9 * np.maximum(mu, 1e-12))
        return mu + self._p.k_low * spread, mu + self._p.k_high * spread, noise_pw

    def _detect_block(self, k: int) -> None:
        blk = self._blocks[k]
        t_low, t_high, noise_pw = self._thresholds(k)
        self._noise_pw.append(noise_pw)
        self._noise_now = noise_pw
        n = blk.env.shape[0]
        block_end = blk.lo + n
        for ch, st in enumerate(self._state):
            e = blk.env[:, ch]
            low = e > t_low[ch]
            high_idx = np.flatnonzero(e > t_high[ch])
            carry = st.open_run
            ext = np.empty(n + 1, dtype=np.int8)
            ext[0] = carry is not None
            ext[1:] = low
            d = np.diff(ext)
            starts = np.flatnonzero(d == 1)
            ends = np.flatnonzero(d == -1)
            if low[-1]:
                ends = np.r_[ends, n]
            if carry is not None:
                starts = np.r_[0, starts]
            n_runs = starts.size
            if high_idx.size:
                pos = np.searchsorted(high_idx, starts)
                fh = high_idx[np.minimum(pos, high_idx.size - 1)]
                fh = np.where((pos < high_idx.size) & (fh < ends), fh, -1)
                pos_l = np.searchsorted(high_idx, ends) - 1
                lh = high_idx[np.maximum(pos_l, 0)]
                lh = np.where((pos_l >= 0) & (lh >= starts), lh, -1)
            else:
                fh = lh = np.full(n_runs, -1)
            sel = fh >= 0
            if n_runs:
                sel[0] |= carry is not None
                sel[-1] |= bool(low[-1])
            st.open_run = None
            for i in np.flatnonzero(sel):
                s_g = blk.lo + int(starts[i])
                first_h = blk.lo + int(fh[i]) if fh[i] >= 0 else -1
                last_h = blk.lo + int(lh[i]) if lh[i] >= 0 else -1
                if i == 0 and carry is not None:
                    s_g = carry.start
                    if carry.first_high >= 0:
                        first_h = carry.first_high
                    if last_h < 0:
                        last_h = carry.last_high
                run = _Run(s_g, blk.lo + int(ends[i]), first_h, last_h)
                if i == n_runs - 1 and low[-1]:
                    st.open_run = run
                else:
                    self._offer(ch, run)
            if st.pending is not None:
                nxt = st.open_run.start if st.open_run is not None else block_end
                if nxt - st.pending.end >= self._gap_max:
                    self._finalize(ch, st.pending, nxt)
                    st.pending = None

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
        self._todo.append((ch, _Run(ev.start, ev.end, ev.first_high, ev.last_high), next_bound))

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
        if not self._p.refine:
            for ch, ev, _ in todo:
                self._emit(ch, ev.start, ev.end - 1)
            return
        first_avail = self._first_available()
        seen: set[int] = set()
        a_guess = []
        for ch, ev, _ in todo:
            last = self._state[ch].last_offset if ch not in seen else -1
            seen.add(ch)
            a_guess.append(max(ev.start - self._pre, last + 1, first_avail))
        # An offset search starts after the refined onset only when the contraction is shorter
        # than the search span; the offsets are solved in the same batch as the onsets with
        # that bound left out, and re-solved where it applies.
        n_todo = len(todo)
        both = self._refine_many(
            [(ch, a, ev.first_high, ev.end, ev.start, False)
             for (ch, ev, _), a in zip(todo, a_guess, strict=True)]
            + [(ch, min(ev.end + self._pre, nb), ev.last_high, 0, ev.end - 1, True)
               for ch, ev, nb in todo]
        )
        onsets, offsets = both[:n_todo], both[n_todo:]
        redo = [i for i, (_, ev, _) in enumerate(todo)
                if onsets[i] + 1 > ev.last_high - self._span]
        if redo:
            fixed = self._refine_many(
                [(todo[i][0], min(todo[i][1].end + self._pre, todo[i][2]), todo[i][1].last_high,
                  onsets[i] + 1, todo[i][1].end - 1, True) for i in redo]
            )
            for i, off in zip(redo, fixed, strict=True):
                offsets[i] = off
        for (ch, ev, nb), a, onset, offset in zip(todo, a_guess, onsets, offsets, strict=True):
            st = self._state[ch]
            a_true = max(ev.start - self._pre, st.last_offset + 1, first_avail)
            if a_true != a:
                onset = self._refine_many([(ch, a_true, ev.first_high, ev.end, ev.start, False)])[0]
                b = min(ev.end + self._pre, nb)
                offset = self._refine_many([(ch, b, ev.last_high, onset + 1, ev.end - 1, True)])[0]
            if offset <= onset:
                onset, offset = ev.start, ev.end - 1
            if offset - onset + 1 < self._min_len:
                continue
            self._emit(ch, onset, offset)

    def _emit(self, ch: int, onset: int, offset: int) -> None:
        st = self._state[ch]
        rms = self._range("rms", ch, onset, offset + 1)
        pw = self._range("sq", ch, onset, offset + 1)
        if rms.size == 0:
            return
        j = int(np.argmax(rms))
        noise = float(self._noise_now[ch])
        snr_db = 10 * np.log10(max(float(pw.mean()), 1e-30) / max(noise, 1e-30))
        conf = 1.0 / (1.0 + np.exp(-(snr_db - 3.0) / 1.5))
        conf *= min(1.0, (offset - onset + 1) / (2 * self._min_len))
        st.events.append(
            (onset, offset, float(conf), float(rms[j]), float(rms.mean()), j / self._bfs)
        )
        st.last_offset = offset

    def _refine_many(self, jobs: Sequence[tuple[int, int, int, int, int, bool]]) -> list[int]:
        """ML ramp onsets (or, reversed, offsets) in bins, one per ``(ch, a, anchor, limit,
        fallback, reverse)`` job: between ``a`` and ``anchor`` + 300 ms."""
        out: list[int] = []
        problems: list[tuple[FloatArray, float, int, int]] = []
        where: list[tuple[int, int, bool]] = []
        for ch, a, anchor, limit, fallback, reverse in jobs:
            if reverse:
                lo = max(limit, anchor - self._span)
                y = self._range("sq", ch, lo, a)[::-1]
                rel = a - 1 - anchor
                coarse_rel = a - 1 - fallback
            else:
                y = self._range("sq", ch, a, min(limit, anchor + self._span))
                rel = anchor - a
                coarse_rel = fallback - a
            out.append(fallback)
            if y.size < 8 or rel < 1 or rel >= y.size:
                continue
            # Local noise power from before the coarse boundary: the context estimate is
            # biased low by its quiet-window selection, which would pull onsets early.
            n_pre = coarse_rel - max(1, round(0.01 * self._bfs))
            noise = float(y[:n_pre].mean()) if n_pre >= 10 else float(self._noise_now[ch])
            # The centered detection window lets crossings lead the signal by up to half a
            # window.
            cand_hi = min(rel + self._h_det, y.size - 1)
            cand_lo = max(0, coarse_rel - self._look_back)
            problems.append((y, noise, cand_hi, cand_lo))
            where.append((len(out) - 1, a, reverse))
        t0s = _ramp_onsets_batch(problems, self._rise_bins, self._span, self._kappa)
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
