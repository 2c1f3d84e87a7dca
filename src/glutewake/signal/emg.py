"""Surface EMG: conditioning, envelopes and contraction onset/offset detection.

Public entry points (all pure functions over arrays, ``(n,)`` or ``(n, n_channels)`` in µV):

* :func:`condition` -- band-pass adapted to ``fs_hz`` and mains removal (50/60 Hz found from the
  data), zero-phase;
* :func:`envelope` -- centered RMS envelope (default window 100 ms);
* :func:`estimate_mains_hz` -- 50, 60 or None from the recording's spectrum;
* :func:`detect_contractions` -- onsets/offsets with ``method="default"`` (TKEO + hysteresis +
  changepoint refinement, see :mod:`glutewake.signal.emg_onsets`), ``"hodges_bui"`` or
  ``"bonato"`` (see :mod:`glutewake.signal.emg_classic`), returning :class:`Contractions` with the
  per-contraction features (peak/mean RMS amplitude in µV, time to peak, confidence);
* :class:`ContractionStream` / :func:`detect_contractions_chunked` -- the default method on chunks,
  identical to a single pass.

At 200 Hz (Myo/Ganglion-class boards) the band is 20-90 Hz: onsets and amplitudes are measurable
(with 5 ms resolution and amplitudes not comparable to 1-2 kHz recordings, since most EMG power
lies above 90 Hz); spectral fatigue measures (median frequency) are not.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from glutewake.signal.emg_classic import bonato_active, hodges_bui_active, merge_runs
from glutewake.signal.emg_condition import (
    FFT_ROWS,
    ConditioningParams,
    EmgInputError,
    condition_blocks_t,
    mains_from_spectrum,
    validate_emg,
)
from glutewake.signal.emg_onsets import (
    Contractions,
    ContractionStream,
    DetectionParams,
    _pad_edges,
    _sub_stats,
)

__all__ = [
    "METHODS",
    "ConditioningParams",
    "ContractionStream",
    "Contractions",
    "DetectionParams",
    "EmgInputError",
    "concat_contractions",
    "condition",
    "contraction_features",
    "detect_contractions",
    "detect_contractions_chunked",
    "envelope",
    "estimate_mains_hz",
]

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]

METHODS = ("default", "tkeo_changepoint", "hodges_bui", "bonato")
MIN_RECORDING_S = 0.5


def _params(params: DetectionParams | Mapping[str, Any] | None) -> DetectionParams:
    if params is None:
        return DetectionParams()
    if isinstance(params, DetectionParams):
        return params
    try:
        return DetectionParams(**dict(params))
    except TypeError as exc:
        raise EmgInputError(f"unknown detection parameter: {exc}") from exc


def _shape_like(out: FloatArray, emg_uv: ArrayLike) -> FloatArray:
    return out[:, 0].copy() if np.ndim(emg_uv) == 1 else out


def _condition_2d(
    x: FloatArray, fs_hz: float, p: DetectionParams
) -> tuple[FloatArray, list[float | None]]:
    nsub = max(2, round(p.sub_window_s * fs_hz))
    # The same blocks as the detector's conditioning (``blocks_per_fft`` detection blocks).
    block = nsub * p.subs_per_block * max(1, p.blocks_per_fft)
    margin = max(round(p.margin_s * fs_hz), 2)
    n = x.shape[0]
    out = np.empty_like(x)
    mains: list[float | None] = []
    # Blocks of the same length are conditioned together, enough to fill the FFT's SIMD rows
    # (each block's result is the same as alone).
    n_group = max(1, FFT_ROWS // math.gcd(x.shape[1], FFT_ROWS))
    starts = list(range(0, n, block))
    full = [lo for lo in starts if lo + block <= n]
    groups = [full[i : i + n_group] for i in range(0, len(full), n_group)]
    groups += [[lo] for lo in starts if lo + block > n]  # the short last block, alone
    for group in groups:
        mains += _condition_group(x, fs_hz, p, group, block, margin, out)
    return out, mains


def _condition_group(
    x: FloatArray,
    fs_hz: float,
    p: DetectionParams,
    starts: list[int],
    block: int,
    margin: int,
    out: FloatArray,
) -> list[float | None]:
    """Condition the blocks starting at ``starts`` (all of one length) into ``out``."""
    n = x.shape[0]
    x_pads = []
    for lo in starts:
        hi = min(lo + block, n)
        seg_lo, seg_hi = max(lo - margin, 0), min(hi + margin, n)
        x_pads.append(_pad_edges(
            x[seg_lo:seg_hi],
            margin - (lo - seg_lo),
            margin - (seg_hi - hi),
            max(1, round(0.1 * fs_hz)),
        ))
    mains = []
    for lo, (y, m) in zip(starts, condition_blocks_t(x_pads, fs_hz, p.conditioning, margin),
                          strict=True):
        hi = min(lo + block, n)
        out[lo:hi] = y.T[margin : margin + hi - lo]
        mains.append(m)
    return mains


def condition(
    emg_uv: ArrayLike,
    fs_hz: float,
    *,
    mains_hz: float | str | None = "auto",
    band_hz: tuple[float, float] | None = None,
) -> FloatArray:
    """Band-pass and mains-filter EMG (zero-phase), same shape as the input.

    Parameters
    ----------
    emg_uv : array, shape (n,) or (n, n_channels)
        Raw EMG in µV.
    fs_hz : float
        Sampling rate (100 Hz to 10 kHz).
    mains_hz : float, "auto" or None
        "auto" finds 50/60 Hz (and harmonics) from the data per 60 s block.
    band_hz : (float, float), optional
        Pass band; default 20 Hz to ``min(450, 0.45 fs)``.

    Returns
    -------
    ndarray
        Conditioned EMG in µV.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.random.default_rng(0).normal(size=2000)
    >>> condition(x, 1000.0).shape
    (2000,)
    """
    x = validate_emg(emg_uv, fs_hz, min_duration_s=MIN_RECORDING_S)
    p = DetectionParams(conditioning=ConditioningParams(band_hz=band_hz, mains_hz=mains_hz))
    y, _ = _condition_2d(x, fs_hz, p)
    return _shape_like(y, emg_uv)


def envelope(
    emg_uv: ArrayLike,
    fs_hz: float,
    *,
    window_s: float = 0.1,
    conditioned: bool = False,
    mains_hz: float | str | None = "auto",
) -> FloatArray:
    """Centered moving-RMS envelope in µV (window ``window_s``, default 100 ms).

    Parameters
    ----------
    emg_uv : array, shape (n,) or (n, n_channels)
        EMG in µV, raw unless ``conditioned``.
    fs_hz : float
        Sampling rate.
    window_s : float
        RMS window length (centered; the edges use the available half-window).
    conditioned : bool
        True if ``emg_uv`` is already conditioned.
    mains_hz : float, "auto" or None
        Passed to :func:`condition`.

    Returns
    -------
    ndarray
        Same shape as the input.

    Examples
    --------
    >>> import numpy as np
    >>> env = envelope(np.ones(1000), 1000.0, conditioned=True)
    >>> float(env[500])
    1.0
    """
    x = validate_emg(emg_uv, fs_hz, min_duration_s=MIN_RECORDING_S)
    if window_s <= 0:
        raise EmgInputError(f"window_s must be positive, got {window_s!r}")
    y = (
        x
        if conditioned
        else _condition_2d(
            x, fs_hz, DetectionParams(conditioning=ConditioningParams(mains_hz=mains_hz))
        )[0]
    )
    return _shape_like(_rms_env(y, fs_hz, window_s), emg_uv)


def _rms_env(y: FloatArray, fs_hz: float, window_s: float) -> FloatArray:
    half = max(1, round(window_s * fs_hz / 2))
    n = y.shape[0]
    cs = np.zeros((n + 1, y.shape[1]))
    np.cumsum(y * y, axis=0, out=cs[1:])
    idx = np.arange(n)
    lo = np.maximum(idx - half, 0)
    hi = np.minimum(idx + half + 1, n)
    ms = (cs[hi] - cs[lo]) / (hi - lo)[:, None]
    return np.asarray(np.sqrt(np.maximum(ms, 0.0)))


def estimate_mains_hz(emg_uv: ArrayLike, fs_hz: float, *, min_ratio: float = 20.0) -> float | None:
    """Mains frequency (50 or 60 Hz) from the recording's averaged spectrum, or None.

    The spectrum is averaged over 10 s segments (all channels); the family (50 or 60 Hz and
    harmonics) whose strongest line stands out most over its +-1.5-6 Hz neighbourhood wins if that
    power ratio exceeds ``min_ratio``.

    Examples
    --------
    >>> import numpy as np
    >>> t = np.arange(20000) / 1000.0
    >>> x = np.random.default_rng(0).normal(size=t.size) + np.sin(2 * np.pi * 60 * t)
    >>> estimate_mains_hz(x, 1000.0)
    60.0
    """
    x = validate_emg(emg_uv, fs_hz, min_duration_s=MIN_RECORDING_S)
    seg = min(x.shape[0], round(10 * fs_hz))
    n_seg = x.shape[0] // seg
    power = np.zeros(seg // 2 + 1)
    for i in range(n_seg):
        part = x[i * seg : (i + 1) * seg]
        spec = np.fft.rfft(part - part.mean(axis=0), axis=0)
        power += np.sum(spec.real**2 + spec.imag**2, axis=1)
    freqs = np.asarray(np.fft.rfftfreq(seg, 1.0 / fs_hz), dtype=np.float64)
    return mains_from_spectrum(power, freqs, fs_hz, min_ratio)


def contraction_features(
    emg_uv: ArrayLike,
    fs_hz: float,
    onset_idx: IntArray,
    offset_idx: IntArray,
    channel: IntArray | None = None,
    *,
    rms_window_s: float = 0.1,
    conditioned: bool = False,
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Peak and mean RMS envelope (µV) and time to peak (s) of given contractions.

    Used by the classic methods and for contractions found elsewhere; the default method computes
    the same features while streaming.

    Returns
    -------
    peak_uv, mean_uv, time_to_peak_s : ndarray
    """
    x = validate_emg(emg_uv, fs_hz, min_duration_s=MIN_RECORDING_S)
    y = x if conditioned else _condition_2d(x, fs_hz, DetectionParams())[0]
    env = _rms_env(y, fs_hz, rms_window_s)
    onset_idx = np.asarray(onset_idx, dtype=np.int64)
    offset_idx = np.asarray(offset_idx, dtype=np.int64)
    ch = np.zeros_like(onset_idx) if channel is None else np.asarray(channel, dtype=np.int64)
    if (onset_idx < 0).any() or (offset_idx >= x.shape[0]).any() or (offset_idx < onset_idx).any():
        raise EmgInputError("contraction indices must satisfy 0 <= onset <= offset < n_samples")
    peak = np.empty(onset_idx.size)
    mean = np.empty(onset_idx.size)
    ttp = np.empty(onset_idx.size)
    for i, (a, b, c) in enumerate(zip(onset_idx, offset_idx, ch, strict=True)):
        seg = env[a : b + 1, c]
        j = int(np.argmax(seg))
        peak[i], mean[i], ttp[i] = seg[j], seg.mean(), j / fs_hz
    return peak, mean, ttp


def _detect_classic(x: FloatArray, fs_hz: float, method: str, p: DetectionParams) -> Contractions:
    y, mains_list = _condition_2d(x, fs_hz, p)
    nsub = max(2, round(p.sub_window_s * fs_hz))
    gap = max(1, round(p.merge_gap_s * fs_hz))
    min_len = max(1, round(p.min_duration_s * fs_hz))
    ons: list[IntArray] = []
    offs: list[IntArray] = []
    chans: list[IntArray] = []
    for ch in range(y.shape[1]):
        if method == "hodges_bui":
            active = hodges_bui_active(y[:, ch], fs_hz, nsub=nsub)
        else:
            active = bonato_active(y[:, ch], fs_hz, nsub=nsub)
        d = np.diff(np.r_[np.int8(0), active.astype(np.int8), np.int8(0)])
        st, en = merge_runs(np.flatnonzero(d == 1), np.flatnonzero(d == -1), gap, min_len)
        ons.append(st)
        offs.append(en - 1)
        chans.append(np.full(st.size, ch, dtype=np.int64))
    onset = np.concatenate(ons).astype(np.int64)
    offset = np.concatenate(offs).astype(np.int64)
    channel = np.concatenate(chans)
    peak, mean, ttp = contraction_features(
        y, fs_hz, onset, offset, channel, rms_window_s=p.rms_window_s, conditioned=True
    )
    sq_mean, _ = _sub_stats(y * y, nsub)
    noise_pw = np.quantile(sq_mean, 0.125, axis=0)
    found = [m for m in mains_list if m is not None]
    return Contractions(
        onset_idx=onset,
        offset_idx=offset,
        channel=channel,
        confidence=np.ones(onset.size),
        peak_uv=peak,
        mean_uv=mean,
        time_to_peak_s=ttp,
        fs_hz=float(fs_hz),
        n_channels=y.shape[1],
        method=method,
        noise_uv=np.sqrt(noise_pw),
        mains_hz=max(set(found), key=found.count) if found else None,
    )


def detect_contractions(
    emg_uv: ArrayLike,
    fs_hz: float,
    *,
    method: str = "default",
    params: DetectionParams | Mapping[str, Any] | None = None,
) -> Contractions:
    """Detect muscle contractions (onset and offset per contraction and channel).

    Parameters
    ----------
    emg_uv : array, shape (n,) or (n, n_channels)
        Raw EMG in µV (any DC offset, wander and mains hum are handled).
    fs_hz : float
        Sampling rate, 100 Hz to 10 kHz (designed for 200 Hz to 4 kHz).
    method : {"default", "tkeo_changepoint", "hodges_bui", "bonato"}
        "default" is "tkeo_changepoint" (streaming-capable, refined onsets, confidence).
    params : DetectionParams or mapping, optional
        Settings; a mapping is passed to :class:`DetectionParams`.

    Returns
    -------
    Contractions
        ``onset_idx``, ``offset_idx``, ``channel`` (zeros for 1-D input), ``confidence``,
        ``peak_uv``, ``mean_uv``, ``time_to_peak_s``.

    Raises
    ------
    EmgInputError
        NaN/inf, empty, >2-D or shorter than 0.5 s input, bad ``fs_hz``, unknown method.

    Examples
    --------
    >>> from glutewake.simulate.emg import simulate_emg
    >>> sim = simulate_emg(duration_s=20, fs_hz=1000, snr_db=20, seed=3)
    >>> res = detect_contractions(sim.emg_uv, 1000.0)
    >>> len(res) == sim.onset_idx.size
    True
    """
    if method not in METHODS:
        raise EmgInputError(f"unknown method {method!r}; choose one of {METHODS}")
    p = _params(params)
    x = validate_emg(emg_uv, fs_hz, min_duration_s=MIN_RECORDING_S)
    if method in ("hodges_bui", "bonato"):
        return _detect_classic(x, fs_hz, method, p)
    return ContractionStream(fs_hz, p)._close_whole(x)


def detect_contractions_chunked(
    chunks: Iterable[ArrayLike],
    fs_hz: float,
    *,
    params: DetectionParams | Mapping[str, Any] | None = None,
) -> Contractions:
    """The default method over an iterable of chunks; identical to a single pass.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.random.default_rng(1).normal(size=(4000, 1))
    >>> len(detect_contractions_chunked(np.array_split(x, 7), 1000.0))
    0
    """
    stream = ContractionStream(fs_hz, _params(params))
    parts = [stream.push(c) for c in chunks]
    parts.append(stream.close())
    return concat_contractions(parts)


def concat_contractions(parts: list[Contractions]) -> Contractions:
    """Join results of consecutive :meth:`ContractionStream.push` calls (sorted by channel)."""
    if not parts:
        raise EmgInputError("nothing to concatenate")
    last = parts[-1]
    onset = np.concatenate([p.onset_idx for p in parts])
    channel = np.concatenate([p.channel for p in parts])
    order = np.lexsort((onset, channel))

    def cat(name: str) -> Any:
        return np.concatenate([getattr(p, name) for p in parts])[order]

    return replace(
        last,
        onset_idx=onset[order],
        offset_idx=cat("offset_idx"),
        channel=channel[order],
        confidence=cat("confidence"),
        peak_uv=cat("peak_uv"),
        mean_uv=cat("mean_uv"),
        time_to_peak_s=cat("time_to_peak_s"),
    )
