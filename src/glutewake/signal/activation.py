"""Per-repetition glute activation features and the per-session activation quality score.

Definitions follow ``docs/domain.md`` (Activation). Input: a multichannel exercise recording in
µV, one ``(muscle, side)`` role per channel, optionally an MVC reference per channel.

Repetition pairing across channels (per side): all contractions of that side's channels are
sorted by onset; a contraction joins the current repetition if it starts before the repetition's
latest offset (they overlap) or within ``pair_window_s`` (default 0.5 s) of its first onset;
otherwise it opens a new repetition. Within a repetition each channel contributes its earliest
contraction (later ones on the same channel are ignored). Glute channels are those whose muscle
starts with ``"glute"`` (``glute_max`` preferred); the reference is the first channel whose muscle
is ``hamstring``, ``biceps_femoris``, ``semitendinosus`` or ``erector_spinae``.

Measures
--------
* firing order: glute onset minus reference onset (ms) per repetition; negative = glutes first;
* amplitude: RMS-envelope peak and mean in µV and, with an MVC, in %MVC;
* duration and time to peak per contraction;
* glute-to-hamstring ratio: mean over repetitions of glute peak / reference peak (%MVC when both
  have an MVC, else µV);
* co-activation index (Falconer-Winter): ``200 * sum(min(g, h)) / sum(g + h)`` over the
  repetition (onset of the first to offset of the last), with both envelopes in %MVC when both
  have an MVC, else each divided by that channel's mean repetition peak;
* consistency: CV of the glute peak across repetitions; share of repetitions in which the glute
  fired (against ``expected_reps`` when given, else against the repetitions found);
* symmetry: ``100 * min(L, R) / max(L, R)`` of the mean glute peak (100 = symmetric).

Activation quality (0..100)
---------------------------
``quality = 100 * sum(w_i c_i) / sum(w_i)`` over the components available:

============  ======  =====================================================================
component     weight  score in 0..1
============  ======  =====================================================================
reliability   0.30    share of repetitions the glute fired
timing        0.25    mean over paired repetitions of ``clip(0.5 - latency_ms / 100, 0, 1)``
                      (-50 ms or earlier -> 1, simultaneous -> 0.5, +50 ms or later -> 0)
consistency   0.20    ``clip(1 - CV_peak / 0.5, 0, 1)`` (CV 0 -> 1, CV >= 50 % -> 0)
dominance     0.15    ``clip(0.5 + 0.5 log2(ratio), 0, 1)`` (ratio 0.5 -> 0, 1 -> 0.5, 2 -> 1)
intensity     0.10    ``clip(mean glute peak %MVC / 40, 0, 1)`` (only with a glute MVC)
============  ======  =====================================================================

Timing and dominance need a reference channel; intensity needs an MVC. With both sides
recorded, each component is the mean of the two sides.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike, NDArray

from glutewake.signal.emg import Contractions, detect_contractions, envelope
from glutewake.signal.emg_condition import EmgInputError, validate_emg

__all__ = [
    "QUALITY_WEIGHTS",
    "REFERENCE_MUSCLES",
    "ChannelActivation",
    "SessionActivation",
    "mvc_reference",
    "session_activation",
]

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]

REFERENCE_MUSCLES = ("hamstring", "biceps_femoris", "semitendinosus", "erector_spinae")
QUALITY_WEIGHTS = {
    "reliability": 0.30,
    "timing": 0.25,
    "consistency": 0.20,
    "dominance": 0.15,
    "intensity": 0.10,
}


@dataclass(frozen=True)
class ChannelActivation:
    """Summary of one channel over the session (NaN where not defined)."""

    channel: int
    muscle: str
    side: str
    n_contractions: int
    mvc_uv: float
    peak_uv: float
    peak_pct_mvc: float
    mean_uv: float
    mean_pct_mvc: float
    duration_s: float
    time_to_peak_s: float
    cv_peak: float


@dataclass(frozen=True)
class SessionActivation:
    """Per-repetition table and session summary.

    Per-repetition arrays have one row per repetition (``rep_side`` says which side); per-channel
    columns use -1 / NaN where the channel did not fire in that repetition.

    Attributes
    ----------
    roles : tuple of (muscle, side)
    rep_side : tuple of str
    onset_idx, offset_idx : ndarray (n_reps, n_channels) of int
    peak_uv, mean_uv, peak_pct_mvc, duration_s, time_to_peak_s : ndarray (n_reps, n_channels)
    latency_ms : ndarray (n_reps,)
        Glute minus reference onset (negative = glutes first).
    glute_fired : ndarray (n_reps,) of bool
    ratio : ndarray (n_reps,)
        Glute peak over reference peak.
    coactivation : ndarray (n_reps,)
        Co-activation index in % (0 = none, 100 = identical envelopes).
    channels : tuple of ChannelActivation
    glute_fired_share, median_latency_ms, glute_hamstring_ratio, coactivation_index,
    cv_peak_glute, symmetry_pct, quality : float
    quality_components : dict
        The 0..1 component scores behind ``quality``.
    ratio_basis : str
        "pct_mvc" or "uv".
    """

    roles: tuple[tuple[str, str], ...]
    rep_side: tuple[str, ...]
    onset_idx: IntArray
    offset_idx: IntArray
    peak_uv: FloatArray
    mean_uv: FloatArray
    peak_pct_mvc: FloatArray
    duration_s: FloatArray
    time_to_peak_s: FloatArray
    latency_ms: FloatArray
    glute_fired: NDArray[np.bool_]
    ratio: FloatArray
    coactivation: FloatArray
    channels: tuple[ChannelActivation, ...]
    glute_fired_share: float
    median_latency_ms: float
    glute_hamstring_ratio: float
    coactivation_index: float
    cv_peak_glute: float
    symmetry_pct: float
    quality: float
    quality_components: dict[str, float] = field(default_factory=dict)
    ratio_basis: str = "uv"

    @property
    def n_reps(self) -> int:
        """Number of repetitions found."""
        return len(self.rep_side)


def mvc_reference(emg_uv_of_mvc_trial: ArrayLike, fs_hz: float, *, window_s: float = 0.5
                  ) -> FloatArray:
    """MVC reference per channel: the highest mean RMS envelope over any ``window_s`` window.

    Parameters
    ----------
    emg_uv_of_mvc_trial : array, shape (n,) or (n, n_channels)
        Raw EMG of the maximal voluntary contraction trial in µV.
    fs_hz : float
        Sampling rate.
    window_s : float
        Averaging window (default 500 ms, the usual MVC convention).

    Returns
    -------
    ndarray, shape (n_channels,)
        µV.

    Examples
    --------
    >>> from glutewake.simulate.emg import simulate_exercise_session
    >>> s = simulate_exercise_session(n_reps=2, fs_hz=1000, seed=0)
    >>> ref = mvc_reference(s.mvc_emg_uv, 1000.0)
    >>> bool(abs(ref[0] / s.mvc_rms_uv[0] - 1) < 0.15)
    True
    """
    x = validate_emg(emg_uv_of_mvc_trial, fs_hz, min_duration_s=max(window_s, 0.5))
    env = envelope(x, fs_hz, window_s=0.1)
    w = max(1, round(window_s * fs_hz))
    cs = np.vstack([np.zeros((1, env.shape[1])), np.cumsum(env, axis=0)])
    mov = (cs[w:] - cs[:-w]) / w
    return np.asarray(mov.max(axis=0), dtype=np.float64)


def _glute_channels(roles: Sequence[tuple[str, str]], side: str) -> list[int]:
    chans = [i for i, (m, s) in enumerate(roles) if s == side and m.startswith("glute")]
    return sorted(chans, key=lambda i: (not roles[i][0].startswith("glute_max"), i))


def _reference_channel(roles: Sequence[tuple[str, str]], side: str) -> int | None:
    for i, (m, s) in enumerate(roles):
        if s == side and m in REFERENCE_MUSCLES:
            return i
    return None


def _pair_repetitions(res: Contractions, chans: list[int], pair_window_n: int
                      ) -> list[dict[int, int]]:
    """Group contractions of ``chans`` into repetitions: list of {channel: contraction index}."""
    idx = np.flatnonzero(np.isin(res.channel, chans))
    idx = idx[np.argsort(res.onset_idx[idx], kind="stable")]
    reps: list[dict[int, int]] = []
    first_on = last_off = -1
    for i in idx:
        on = int(res.onset_idx[i])
        if reps and (on <= last_off or on - first_on <= pair_window_n):
            last_off = max(last_off, int(res.offset_idx[i]))
            reps[-1].setdefault(int(res.channel[i]), int(i))
        else:
            reps.append({int(res.channel[i]): int(i)})
            first_on, last_off = on, int(res.offset_idx[i])
    return reps


def _nanmean(x: ArrayLike) -> float:
    a = np.asarray(x, dtype=np.float64)
    a = a[np.isfinite(a)]
    return float(a.mean()) if a.size else float("nan")


def _cv(x: ArrayLike) -> float:
    a = np.asarray(x, dtype=np.float64)
    a = a[np.isfinite(a)]
    if a.size < 2 or a.mean() <= 0:
        return float("nan")
    return float(a.std(ddof=1) / a.mean())


def session_activation(
    emg_uv: ArrayLike,
    fs_hz: float,
    *,
    roles: Sequence[tuple[str, str]],
    mvc_uv: Sequence[float | None] | None = None,
    contractions: Contractions | None = None,
    pair_window_s: float = 0.5,
    expected_reps: int | None = None,
) -> SessionActivation:
    """Activation features per repetition and the session's activation quality.

    Parameters
    ----------
    emg_uv : array, shape (n, n_channels)
        Raw EMG of the exercise in µV.
    fs_hz : float
        Sampling rate.
    roles : sequence of (muscle, side)
        One per channel, e.g. ``[("glute_max", "right"), ("hamstring", "right")]``.
    mvc_uv : sequence of float or None, optional
        MVC reference per channel (µV, from :func:`mvc_reference`); None where absent.
    contractions : Contractions, optional
        Precomputed :func:`~glutewake.signal.emg.detect_contractions` result for ``emg_uv``.
    pair_window_s : float
        Onsets within this of a repetition's first onset belong to it (see module docstring).
    expected_reps : int, optional
        Repetitions performed (per side), if known; used for the share the glutes fired.

    Returns
    -------
    SessionActivation

    Raises
    ------
    EmgInputError
        Bad input, ``roles``/``mvc_uv`` not matching the channels, or no glute channel.

    Examples
    --------
    >>> from glutewake.simulate.emg import simulate_exercise_session
    >>> s = simulate_exercise_session(n_reps=6, fs_hz=1000, firing_latency_ms=-50, seed=2)
    >>> act = session_activation(s.emg_uv, 1000.0, roles=s.roles)
    >>> act.n_reps, bool(act.median_latency_ms < 0)
    (6, True)
    """
    x = validate_emg(emg_uv, fs_hz, min_duration_s=0.5)
    n_ch = x.shape[1]
    roles = tuple((str(m), str(s)) for m, s in roles)
    if len(roles) != n_ch:
        raise EmgInputError(f"roles has {len(roles)} entries for {n_ch} channels")
    mvc = np.full(n_ch, np.nan)
    if mvc_uv is not None:
        if len(mvc_uv) != n_ch:
            raise EmgInputError(f"mvc_uv has {len(mvc_uv)} entries for {n_ch} channels")
        for i, v in enumerate(mvc_uv):
            if v is not None:
                if not np.isfinite(v) or v <= 0:
                    raise EmgInputError(f"mvc_uv[{i}] must be a positive number, got {v!r}")
                mvc[i] = float(v)
    sides = [s for s in dict.fromkeys(side for _, side in roles) if _glute_channels(roles, s)]
    if not sides:
        raise EmgInputError("no glute channel in roles (muscle names starting with 'glute')")
    res = contractions if contractions is not None else detect_contractions(x, fs_hz)
    if res.n_channels != n_ch:
        raise EmgInputError(f"contractions are for {res.n_channels} channels, emg_uv has {n_ch}")
    env = envelope(x, fs_hz, window_s=0.1)

    rows: list[tuple[str, dict[int, int]]] = []
    for side in sides:
        chans = [i for i, (_, s) in enumerate(roles) if s == side]
        rows += [(side, rep) for rep in _pair_repetitions(res, chans, round(pair_window_s * fs_hz))]
    n_reps = len(rows)
    shape = (n_reps, n_ch)
    onset = -np.ones(shape, dtype=np.int64)
    offset = -np.ones(shape, dtype=np.int64)
    peak = np.full(shape, np.nan)
    mean = np.full(shape, np.nan)
    dur = np.full(shape, np.nan)
    ttp = np.full(shape, np.nan)
    for r, (_, rep) in enumerate(rows):
        for ch, i in rep.items():
            onset[r, ch], offset[r, ch] = res.onset_idx[i], res.offset_idx[i]
            peak[r, ch], mean[r, ch] = res.peak_uv[i], res.mean_uv[i]
            dur[r, ch] = (res.offset_idx[i] - res.onset_idx[i] + 1) / fs_hz
            ttp[r, ch] = res.time_to_peak_s[i]
    pct = 100.0 * peak / mvc[None, :]
    pct_mean = 100.0 * mean / mvc[None, :]

    latency = np.full(n_reps, np.nan)
    fired = np.zeros(n_reps, dtype=bool)
    ratio = np.full(n_reps, np.nan)
    coact = np.full(n_reps, np.nan)
    per_side: dict[str, dict[str, float]] = {}
    glute_peak_by_side: dict[str, float] = {}
    basis = "uv"
    for side in sides:
        g = _glute_channels(roles, side)[0]
        h = _reference_channel(roles, side)
        use_pct = bool(np.isfinite(mvc[g]) and (h is None or np.isfinite(mvc[h])))
        basis = "pct_mvc" if use_pct else basis
        amp = pct if use_pct else peak
        reps = [r for r, (s, _) in enumerate(rows) if s == side]
        for r in reps:
            fired[r] = onset[r, g] >= 0
            if h is None:
                continue
            if onset[r, g] >= 0 and onset[r, h] >= 0:
                latency[r] = (onset[r, g] - onset[r, h]) / fs_hz * 1000.0
                ratio[r] = amp[r, g] / amp[r, h]
                lo = min(onset[r, g], onset[r, h])
                hi = max(offset[r, g], offset[r, h]) + 1
                if use_pct:
                    eg, eh = env[lo:hi, g] / mvc[g], env[lo:hi, h] / mvc[h]
                else:
                    eg = env[lo:hi, g] / max(_nanmean(peak[reps, g]), 1e-12)
                    eh = env[lo:hi, h] / max(_nanmean(peak[reps, h]), 1e-12)
                coact[r] = 200.0 * float(np.minimum(eg, eh).sum() / max((eg + eh).sum(), 1e-12))
        n_expected = expected_reps if expected_reps else len(reps)
        comp: dict[str, float] = {
            "reliability": min(1.0, float(fired[reps].sum()) / max(n_expected, 1)),
        }
        lat = latency[reps]
        lat = lat[np.isfinite(lat)]
        if lat.size:
            comp["timing"] = float(np.clip(0.5 - lat / 100.0, 0.0, 1.0).mean())
        cv = _cv(peak[reps, g])
        if np.isfinite(cv):
            comp["consistency"] = float(np.clip(1.0 - cv / 0.5, 0.0, 1.0))
        rat = _nanmean(ratio[reps])
        if np.isfinite(rat) and rat > 0:
            comp["dominance"] = float(np.clip(0.5 + 0.5 * np.log2(rat), 0.0, 1.0))
        if np.isfinite(mvc[g]) and np.isfinite(_nanmean(pct[reps, g])):
            comp["intensity"] = float(np.clip(_nanmean(pct[reps, g]) / 40.0, 0.0, 1.0))
        per_side[side] = comp
        glute_peak_by_side[side] = _nanmean(amp[reps, g])

    components: dict[str, float] = {}
    for name in QUALITY_WEIGHTS:
        vals = [c[name] for c in per_side.values() if name in c]
        if vals:
            components[name] = float(np.mean(vals))
    wsum = sum(QUALITY_WEIGHTS[k] for k in components)
    quality = 100.0 * sum(QUALITY_WEIGHTS[k] * v for k, v in components.items()) / wsum

    symmetry = float("nan")
    if "left" in glute_peak_by_side and "right" in glute_peak_by_side:
        lv, rv = glute_peak_by_side["left"], glute_peak_by_side["right"]
        if np.isfinite(lv) and np.isfinite(rv) and max(lv, rv) > 0:
            symmetry = 100.0 * min(lv, rv) / max(lv, rv)

    channels = []
    for ch, (muscle, side) in enumerate(roles):
        sel = res.channel == ch
        d_s = (res.offset_idx[sel] - res.onset_idx[sel] + 1) / fs_hz
        channels.append(ChannelActivation(
            channel=ch, muscle=muscle, side=side, n_contractions=int(sel.sum()),
            mvc_uv=float(mvc[ch]), peak_uv=_nanmean(peak[:, ch]),
            peak_pct_mvc=_nanmean(pct[:, ch]), mean_uv=_nanmean(mean[:, ch]),
            mean_pct_mvc=_nanmean(pct_mean[:, ch]), duration_s=_nanmean(d_s),
            time_to_peak_s=_nanmean(res.time_to_peak_s[sel]), cv_peak=_cv(peak[:, ch]),
        ))
    glute_cols = [_glute_channels(roles, s)[0] for s in sides]
    glute_peaks = np.concatenate([
        peak[[r for r, (s, _) in enumerate(rows) if s == side], g]
        for side, g in zip(sides, glute_cols, strict=True)
    ]) if n_reps else np.zeros(0)
    n_expected_all = (expected_reps * len(sides)) if expected_reps else n_reps
    lat_all = latency[np.isfinite(latency)]
    return SessionActivation(
        roles=roles,
        rep_side=tuple(s for s, _ in rows),
        onset_idx=onset,
        offset_idx=offset,
        peak_uv=peak,
        mean_uv=mean,
        peak_pct_mvc=pct,
        duration_s=dur,
        time_to_peak_s=ttp,
        latency_ms=latency,
        glute_fired=fired,
        ratio=ratio,
        coactivation=coact,
        channels=tuple(channels),
        glute_fired_share=min(1.0, float(fired.sum()) / max(n_expected_all, 1)),
        median_latency_ms=float(np.median(lat_all)) if lat_all.size else float("nan"),
        glute_hamstring_ratio=_nanmean(ratio),
        coactivation_index=_nanmean(coact),
        cv_peak_glute=_cv(glute_peaks),
        symmetry_pct=symmetry,
        quality=float(quality),
        quality_components=components,
        ratio_basis=basis,
    )
