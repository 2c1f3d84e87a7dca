"""Contraction onset/offset detection for surface EMG (default method, streaming core).

Default method ("tkeo_changepoint"), per channel:

1. Conditioning (:mod:`glutewake.signal.emg_condition`) on a fixed grid of 8 s blocks.
2. Detection envelope: centered 50 ms moving mean of the absolute Teager-Kaiser energy of the
   conditioned signal (µV²).
3. Baseline noise, robust to the contractions: the envelope is cut into 100 ms sub-windows; in a
   context of +-32 s around each block the quietest 25 % of sub-windows (by mean) give the noise
   level ``nu`` (median of their means) and spread ``s`` (median of their standard deviations).
4. Hysteresis (double threshold): a run above ``T_low = nu + k_low s`` is a candidate; it counts
   only if it also crosses ``T_high = nu + k_high s``. Runs separated by less than
   ``merge_gap_s`` (50 ms) are merged; events shorter than ``min_duration_s`` (100 ms, which
   rejects ECG QRS residue and spikes) are dropped.
5. Changepoint refinement of each onset (and, mirrored, each offset): on the 10 ms power envelope
   of the conditioned signal between 200 ms before the coarse onset and the point where the power
   reaches half its local peak, a least-squares fit of ``p(t) = c + a (t - t0)_+^m`` for
   m in {0 (step), 1, 2 (linear amplitude ramp)} over every candidate ``t0``; the best fit's
   ``t0`` is the onset. Closed-form with suffix sums, O(window) per contraction.
6. Confidence: ``sigmoid((snr_db - 3) / 1.5) * min(1, duration / (2 min_duration))`` where
   ``snr_db`` compares the contraction's mean power with the local noise power.

Streaming: :class:`ContractionStream` consumes chunks of any size and emits each contraction once
its context is complete (about 32 s later). Memory is bounded by the chunk size plus the context
(~10 blocks) plus the longest contraction. Results are identical to a single pass because the
block grid, the context and every computation depend only on sample positions, not on chunking.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from glutewake.signal.emg_condition import (
    MIN_FS_HZ,
    ConditioningParams,
    EmgInputError,
    condition_block,
    moving_mean_centered,
    tkeo_abs,
    validate_emg,
)

__all__ = [
    "ContractionStream",
    "Contractions",
    "DetectionParams",
    "fit_changepoint",
]

FloatArray = NDArray[np.float64]
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
    det_window_s, power_window_s, rms_window_s : float
        Centered windows of the TKEO detection envelope, the refinement power envelope and the
        RMS amplitude envelope used for the features.
    sub_window_s : float
        Sub-window for the noise statistics.
    subs_per_block : int
        Sub-windows per processing block (block = 8 s by default).
    margin_s : float
        Real data on both sides of each block for the filters and windows.
    context_s : float
        Half-width of the noise-estimation context.
    quiet_fraction : float
        Share of sub-windows taken as quiet.
    refine : bool
        Changepoint refinement of onsets and offsets.
    refine_pre_s : float
        How far before the coarse onset the refinement looks.
    """

    conditioning: ConditioningParams = field(default_factory=ConditioningParams)
    k_low: float = 3.0
    k_high: float = 8.0
    min_duration_s: float = 0.1
    merge_gap_s: float = 0.05
    det_window_s: float = 0.05
    power_window_s: float = 0.01
    rms_window_s: float = 0.1
    sub_window_s: float = 0.1
    subs_per_block: int = 80
    margin_s: float = 1.0
    context_s: float = 32.0
    quiet_fraction: float = 0.25
    refine: bool = True
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
            onset_idx=self.onset_idx[sel], offset_idx=self.offset_idx[sel],
            channel=self.channel[sel], confidence=self.confidence[sel],
            peak_uv=self.peak_uv[sel], mean_uv=self.mean_uv[sel],
            time_to_peak_s=self.time_to_peak_s[sel], fs_hz=self.fs_hz,
            n_channels=self.n_channels, method=self.method, noise_uv=self.noise_uv,
            mains_hz=self.mains_hz,
        )


def _suffix(v: FloatArray) -> FloatArray:
    return np.asarray(np.cumsum(v[::-1])[::-1])


def fit_changepoint(p: FloatArray, cand_lo: int, cand_hi: int) -> int:
    """Best ``t0`` in ``[cand_lo, cand_hi]`` for ``p(t) = c + a (t - t0)_+^m``, m in {0, 1, 2}.

    Least squares with ``a > 0``; returns ``cand_lo`` if no candidate fits.

    Examples
    --------
    >>> p = np.r_[np.ones(50), 1 + 0.1 * np.arange(50.0) ** 2]
    >>> fit_changepoint(p, 1, 90)
    50
    """
    n = p.size
    cand_hi = min(cand_hi, n - 2)
    if n < 4 or cand_hi < cand_lo:
        return cand_lo
    t = np.arange(n, dtype=np.float64) / n
    ones = np.ones(n)
    s0, s1, s2, s3, s4 = (_suffix(t**j) if j else _suffix(ones) for j in range(5))
    p0, p1, p2 = _suffix(p), _suffix(p * t), _suffix(p * t * t)
    sp = float(p.sum())
    spp = float(p @ p)
    idx = np.arange(cand_lo, cand_hi + 1)
    t0 = t[idx]
    s0i, s1i, s2i, s3i, s4i = s0[idx], s1[idx], s2[idx], s3[idx], s4[idx]
    p0i, p1i, p2i = p0[idx], p1[idx], p2[idx]
    models = (
        (s0i, s0i, p0i),
        (s1i - t0 * s0i, s2i - 2 * t0 * s1i + t0**2 * s0i, p1i - t0 * p0i),
        (
            s2i - 2 * t0 * s1i + t0**2 * s0i,
            s4i - 4 * t0 * s3i + 6 * t0**2 * s2i - 4 * t0**3 * s1i + t0**4 * s0i,
            p2i - 2 * t0 * p1i + t0**2 * p0i,
        ),
    )
    best_sse = np.inf
    best = cand_lo
    for g, gg, pg in models:
        det = n * gg - g * g
        ok = det > 1e-12 * n * np.maximum(gg, 1e-300)
        det_safe = np.where(ok, det, 1.0)
        c = (gg * sp - g * pg) / det_safe
        a = (n * pg - g * sp) / det_safe
        sse = np.where(ok & (a > 0), spp - c * sp - a * pg, np.inf)
        j = int(np.argmin(sse))
        if sse[j] < best_sse:
            best_sse, best = float(sse[j]), int(idx[j])
    return best


@dataclass
class _Block:
    lo: int
    env: FloatArray
    pw: FloatArray
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


def _pad_reflect(seg: FloatArray, left: int, right: int) -> FloatArray:
    if left == 0 and right == 0:
        return seg
    if seg.shape[0] > 1:
        return np.pad(seg, ((left, right), (0, 0)), mode="reflect")
    return np.pad(seg, ((left, right), (0, 0)), mode="edge")


class ContractionStream:
    """Chunked contraction detection with results identical to a single pass.

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
        self._nsub = max(2, round(p.sub_window_s * fs_hz))
        self._B = self._nsub * p.subs_per_block
        self._h_det = max(1, round(p.det_window_s * fs_hz / 2))
        self._h_pw = max(1, round(p.power_window_s * fs_hz / 2))
        self._h_rms = max(1, round(p.rms_window_s * fs_hz / 2))
        self._M = max(round(p.margin_s * fs_hz), self._h_rms + 2, self._h_det + 2)
        self._C = max(1, math.ceil(p.context_s * fs_hz / self._B))
        self._min_len = max(1, round(p.min_duration_s * fs_hz))
        self._gap = max(1, round(p.merge_gap_s * fs_hz))
        self._pre = max(2, round(p.refine_pre_s * fs_hz))
        self._dec = max(1, round(fs_hz / 1000.0))
        self._raw = np.zeros((0, 0))
        self._raw_lo = 0
        self._n_in = 0
        self._n_ch: int | None = None
        self._next_block = 0
        self._next_detect = 0
        self._blocks: dict[int, _Block] = {}
        self._state: list[_ChannelState] = []
        self._emitted = 0
        self._closed = False
        self._noise_pw: list[FloatArray] = []
        self._mains: list[float | None] = []

    # ----------------------------------------------------------------- public
    def push(self, chunk_uv: object) -> Contractions:
        """Feed the next chunk ``(n,)`` or ``(n, n_channels)``; returns contractions completed."""
        self._feed(chunk_uv)
        return self._collect()

    def _feed(self, chunk_uv: object) -> None:
        if self._closed:
            raise EmgInputError("stream is closed")
        x = validate_emg(chunk_uv, self._fs) if np.size(chunk_uv) else None  # type: ignore[arg-type]
        if x is not None:
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

    # ---------------------------------------------------------------- blocks
    def _condition_next(self, final: bool) -> bool:
        k = self._next_block
        lo = k * self._B
        if lo >= self._n_in:
            return False
        hi = min(lo + self._B, self._n_in)
        if not final and lo + self._B + self._M > self._n_in:
            return False
        seg_lo = max(lo - self._M, 0)
        seg_hi = min(hi + self._M, self._n_in)
        seg = self._raw[seg_lo - self._raw_lo : seg_hi - self._raw_lo]
        pad_l = self._M - (lo - seg_lo)
        pad_r = self._M - (seg_hi - hi)
        x_pad = _pad_reflect(seg, pad_l, pad_r)
        y, mains = condition_block(x_pad, self._fs, self._p.conditioning)
        c_lo, c_hi = self._M, self._M + (hi - lo)
        env = moving_mean_centered(tkeo_abs(y), self._h_det, c_lo, c_hi)
        sq = y * y
        cs = np.empty((sq.shape[0] + 1, sq.shape[1]))
        cs[0] = 0.0
        np.cumsum(sq, axis=0, out=cs[1:])
        pw = (cs[c_lo + self._h_pw + 1 : c_hi + self._h_pw + 1]
              - cs[c_lo - self._h_pw : c_hi - self._h_pw]) / (2 * self._h_pw + 1)
        ms = (cs[c_lo + self._h_rms + 1 : c_hi + self._h_rms + 1]
              - cs[c_lo - self._h_rms : c_hi - self._h_rms]) / (2 * self._h_rms + 1)
        rms = np.sqrt(np.maximum(ms, 0.0))
        sub_mean, sub_std = _sub_stats(env, self._nsub)
        sub_pw, _ = _sub_stats(sq[c_lo:c_hi], self._nsub)
        self._blocks[k] = _Block(lo, env, pw, rms, sub_mean, sub_std, sub_pw, mains)
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
            self._detect_block(self._next_detect, final)
            self._next_detect += 1
        if final:
            for ch, st in enumerate(self._state):
                if st.open_run is not None:
                    self._offer(ch, st.open_run, self._n_in)
                    st.open_run = None
                if st.pending is not None:
                    self._finalize(ch, st.pending, self._n_in)
                    st.pending = None
        self._prune()

    def _prune(self) -> None:
        keep = self._next_detect - self._C - 1
        for st in self._state:
            for run in (st.open_run, st.pending):
                if run is not None:
                    keep = min(keep, (run.start - self._pre) // self._B - 1)
        for k in [k for k in self._blocks if k < keep]:
            del self._blocks[k]

    def _range(self, name: str, ch: int, a: int, b: int) -> FloatArray:
        parts = []
        for k in range(max(a // self._B, 0), (b - 1) // self._B + 1):
            blk = self._blocks.get(k)
            if blk is None:
                continue
            arr: FloatArray = getattr(blk, name)
            lo, hi = max(a - blk.lo, 0), min(b - blk.lo, arr.shape[0])
            if hi > lo:
                parts.append(arr[lo:hi, ch])
        return np.concatenate(parts) if parts else np.zeros(0)

    def _first_available(self) -> int:
        return min(self._blocks) * self._B if self._blocks else 0

    # ------------------------------------------------------------- detection
    def _thresholds(self, k: int) -> tuple[FloatArray, FloatArray, FloatArray]:
        ks = [j for j in range(k - self._C, k + self._C + 1) if j in self._blocks]
        means = np.concatenate([self._blocks[j].sub_mean for j in ks])
        stds = np.concatenate([self._blocks[j].sub_std for j in ks])
        pws = np.concatenate([self._blocks[j].sub_pw for j in ks])
        n_q = max(1, int(self._p.quiet_fraction * means.shape[0]))
        order = np.argpartition(means, n_q - 1, axis=0)[:n_q]
        nu = np.median(np.take_along_axis(means, order, axis=0), axis=0)
        s = np.median(np.take_along_axis(stds, order, axis=0), axis=0)
        noise_pw = np.median(np.take_along_axis(pws, order, axis=0), axis=0)
        tiny = 1e-12 * np.maximum(nu, 1e-12)
        s = np.maximum(s, tiny)
        return nu + self._p.k_low * s, nu + self._p.k_high * s, noise_pw

    def _detect_block(self, k: int, final: bool) -> None:
        blk = self._blocks[k]
        t_low, t_high, noise_pw = self._thresholds(k)
        self._noise_pw.append(noise_pw)
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
            pos = np.searchsorted(high_idx, starts)
            fh = np.where(pos < high_idx.size, high_idx[np.minimum(pos, high_idx.size - 1)]
                          if high_idx.size else -1, -1)
            fh = np.where((fh >= starts) & (fh < ends), fh, -1)
            pos_l = np.searchsorted(high_idx, ends) - 1
            lh = np.where(pos_l >= 0, high_idx[np.maximum(pos_l, 0)] if high_idx.size else -1, -1)
            lh = np.where((lh >= starts) & (lh < ends), lh, -1)
            n_runs = starts.size
            has_high = fh >= 0
            keep = np.flatnonzero(has_high | ((np.arange(n_runs) == 0) & (carry is not None))
                                  | ((np.arange(n_runs) == n_runs - 1) & bool(low[-1])))
            st.open_run = None
            for i in keep:
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
                elif run.first_high >= 0:
                    self._offer(ch, run, run.end)
            if st.pending is not None:
                nxt = st.open_run.start if st.open_run is not None else block_end
                if nxt - st.pending.end >= self._gap:
                    self._finalize(ch, st.pending, nxt)
                    st.pending = None

    def _offer(self, ch: int, run: _Run, next_bound: int) -> None:
        st = self._state[ch]
        if run.first_high < 0:
            return
        if st.pending is not None and run.start - st.pending.end < self._gap:
            st.pending.end = run.end
            st.pending.last_high = max(st.pending.last_high, run.last_high)
            return
        if st.pending is not None:
            self._finalize(ch, st.pending, run.start)
        st.pending = _Run(run.start, run.end, run.first_high, run.last_high)

    def _finalize(self, ch: int, ev: _Run, next_bound: int) -> None:
        st = self._state[ch]
        if ev.end - ev.start < self._min_len:
            return
        onset, offset = ev.start, ev.end - 1
        first_av = self._first_available()
        if self._p.refine:
            a = max(ev.start - self._pre, st.last_offset + 1, first_av)
            onset = self._refine(ch, a, ev.first_high, ev.end, ev.start, reverse=False)
            b = min(ev.end + self._pre, next_bound, self._n_in)
            offset = self._refine(ch, b, ev.last_high, ev.start, ev.end - 1, reverse=True)
            if offset <= onset:
                onset, offset = ev.start, ev.end - 1
        rms = self._range("rms", ch, onset, offset + 1)
        pw = self._range("pw", ch, onset, offset + 1)
        if rms.size == 0:
            return
        j = int(np.argmax(rms))
        noise = self._noise_pw[-1][ch] if self._noise_pw else 0.0
        snr_db = 10 * np.log10(max(float(pw.mean()), 1e-30) / max(float(noise), 1e-30))
        conf = 1.0 / (1.0 + np.exp(-(snr_db - 3.0) / 1.5))
        conf *= min(1.0, (offset - onset + 1) / (2 * self._min_len))
        st.events.append((onset, offset, float(conf), float(rms[j]), float(rms.mean()),
                          j / self._fs))
        st.last_offset = offset

    def _refine(
        self, ch: int, a: int, anchor: int, limit: int, fallback: int, reverse: bool
    ) -> int:
        """Onset (or, reversed, offset) from a changepoint fit between ``a`` and the half-peak."""
        if reverse:
            lo = max(limit, anchor - round(0.3 * self._fs))
            seg = self._range("pw", ch, lo, a)[::-1]
            rel = a - 1 - anchor
        else:
            hi = min(limit, anchor + round(0.3 * self._fs))
            seg = self._range("pw", ch, a, hi)
            rel = anchor - a
        if seg.size < 8 or rel < 1 or rel >= seg.size:
            return fallback
        base = float(np.median(seg[: max(rel // 2, 1)]))
        peak = float(seg[rel:].max())
        above = np.flatnonzero(seg[rel:] >= base + 0.5 * (peak - base))
        end = rel + (int(above[0]) + 1 if above.size else seg.size - rel)
        end = min(max(end, rel + 2), seg.size)
        q = seg[:end : self._dec]
        t0 = fit_changepoint(q, 1, rel // self._dec) * self._dec
        return a + t0 if not reverse else a - 1 - t0

    # ---------------------------------------------------------------- output
    def _collect(self) -> Contractions:
        rows = []
        for ch, st in enumerate(self._state):
            rows.extend((ch, *ev) for ev in st.events)
            st.events.clear()
        rows.sort(key=lambda r: (r[0], r[1]))
        arr = np.asarray(rows, dtype=np.float64).reshape(-1, 7)
        noise = (np.sqrt(np.median(np.asarray(self._noise_pw), axis=0))
                 if self._noise_pw else np.zeros(self._n_ch or 0))
        return Contractions(
            onset_idx=arr[:, 1].astype(np.int64),
            offset_idx=arr[:, 2].astype(np.int64),
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
