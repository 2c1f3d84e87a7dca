"""Seeded surface-EMG simulator with ground-truth contraction onsets and offsets.

Two generators:

* :func:`simulate_emg` -- one or more channels of band-limited bursts (varied rise times,
  durations and amplitudes) in band-limited background noise at a requested in-band SNR, plus
  the artefacts real recordings carry: mains hum (with harmonics), baseline wander, ECG-like
  spikes and motion artefacts. Used by the onset benchmark and the tests.
* :func:`simulate_exercise_session` -- N repetitions of an exercise recorded with a glute and a
  hamstring channel (optionally both sides), with a controllable firing-order latency, amplitude
  trend, missed glute repetitions and a separate MVC trial. Used by the lead's demo.

Everything is in µV at the requested ``fs_hz`` and fully determined by ``seed``.

Ground truth: a burst's onset is the first sample where its amplitude envelope leaves zero (the
start of the rise ramp) and its offset the last sample before the envelope returns to zero.

SNR definition: ``snr_db = 10 log10(P_burst / P_noise)`` where ``P_burst`` is the mean power of a
burst's plateau at the reference amplitude (amplitudes vary around it by ``amplitude_jitter``)
and ``P_noise`` the power of the Gaussian background noise, which is band-limited to the EMG band
(20 Hz to ``min(450, 0.45 fs)`` Hz) so the SNR is the same for every sampling rate and detector.
Artefacts come on top of that noise (their sizes are given relative to the noise RMS).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "ExerciseSession",
    "SimulatedEmg",
    "emg_carrier",
    "simulate_emg",
    "simulate_exercise_session",
]

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]


@dataclass(frozen=True)
class SimulatedEmg:
    """A simulated recording and its ground truth.

    Attributes
    ----------
    emg_uv : ndarray, shape (n,) or (n, n_channels)
        The recording in µV (1-D when one channel was asked for).
    fs_hz : float
        Sampling rate.
    onset_idx, offset_idx, channel : ndarray of int
        True burst onsets/offsets (sample indices) and their channel, sorted by channel then onset.
    amplitude_uv : ndarray of float
        Plateau RMS of each burst in µV.
    rise_s : ndarray of float
        Rise time of each burst.
    noise_uv : float
        RMS of the band-limited background noise.
    mains_hz : float or None
        Frequency of the simulated hum (None when off).
    snr_db : float
        Requested in-band SNR at the reference amplitude.
    """

    emg_uv: FloatArray
    fs_hz: float
    onset_idx: IntArray
    offset_idx: IntArray
    channel: IntArray
    amplitude_uv: FloatArray
    rise_s: FloatArray
    noise_uv: float
    mains_hz: float | None
    snr_db: float


def _band_hz(fs_hz: float) -> tuple[float, float]:
    return 20.0, min(450.0, 0.45 * fs_hz)


def _shaped_noise(
    rng: np.random.Generator, n: int, n_ch: int, fs_hz: float, gain: FloatArray | None
) -> FloatArray:
    """Gaussian noise shaped by an rfft-domain amplitude gain, normalised to unit RMS."""
    white = rng.standard_normal((n, n_ch))
    if gain is None:
        return white
    spec = np.fft.rfft(white, axis=0) * gain[:, None]
    out = np.fft.irfft(spec, n=n, axis=0)
    rms = np.sqrt(np.mean(out**2, axis=0))
    return np.asarray(out / np.where(rms > 0, rms, 1.0), dtype=np.float64)


def _emg_gain(n: int, fs_hz: float) -> FloatArray:
    """Amplitude response of the Shwedyk surface-EMG spectral model (peak near 80-100 Hz)."""
    f = np.fft.rfftfreq(n, 1.0 / fs_hz)
    f_lo, f_hi = 60.0, 120.0
    psd = (f_hi**4 * f**2) / ((f**2 + f_lo**2) * (f**2 + f_hi**2) ** 2)
    lo, hi = _band_hz(fs_hz)
    # A real amplifier's anti-alias and high-pass corners; keeps the carrier inside the EMG band.
    psd = psd / (1.0 + (f / hi) ** 8) / (1.0 + (lo / np.maximum(f, 1e-9)) ** 8)
    return np.asarray(np.sqrt(psd), dtype=np.float64)


def _band_gain(n: int, fs_hz: float) -> FloatArray:
    f = np.fft.rfftfreq(n, 1.0 / fs_hz)
    lo, hi = _band_hz(fs_hz)
    return np.asarray(((f >= lo) & (f <= hi)).astype(np.float64))


def emg_carrier(n: int, fs_hz: float, seed: int | np.random.Generator = 0, n_channels: int = 1
                ) -> FloatArray:
    """Unit-RMS band-limited EMG carrier (Gaussian, surface-EMG spectrum), shape (n, n_channels)."""
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    return _shaped_noise(rng, n, n_channels, fs_hz, _emg_gain(n, fs_hz))


def _ramp(n_rise: int, shape: str) -> FloatArray:
    x = (np.arange(n_rise, dtype=np.float64) + 1.0) / (n_rise + 1.0)
    if shape == "linear":
        return x
    return 0.5 - 0.5 * np.cos(np.pi * x)


def _burst_envelope(n_rise: int, n_plateau: int, n_fall: int, shape: str) -> FloatArray:
    return np.concatenate(
        [_ramp(n_rise, shape), np.ones(n_plateau), _ramp(n_fall, shape)[::-1]]
    )


def _artefacts(
    rng: np.random.Generator,
    n: int,
    n_ch: int,
    fs_hz: float,
    noise_uv: float,
    *,
    mains_hz: float | None,
    hum_rel: float,
    wander_rel: float,
    ecg_rel: float,
    motion_per_min: float,
    motion_rel: float,
) -> FloatArray:
    t_s = np.arange(n) / fs_hz
    out = np.zeros((n, n_ch))
    if mains_hz is not None and hum_rel > 0:
        for ch in range(n_ch):
            phase = rng.uniform(0, 2 * np.pi, size=3)
            drift = 1.0 + 0.2 * np.sin(2 * np.pi * 0.05 * t_s + phase[0])
            hum = np.sin(2 * np.pi * mains_hz * t_s + phase[1])
            if 3 * mains_hz < fs_hz / 2:
                hum = hum + 0.3 * np.sin(2 * np.pi * 3 * mains_hz * t_s + phase[2])
            out[:, ch] += hum_rel * noise_uv * np.sqrt(2) * drift * hum
    if wander_rel > 0:
        for ch in range(n_ch):
            f_w = rng.uniform(0.1, 0.5)
            walk = np.cumsum(rng.standard_normal(n)) / np.sqrt(fs_hz)
            out[:, ch] += wander_rel * noise_uv * (
                np.sin(2 * np.pi * f_w * t_s + rng.uniform(0, 2 * np.pi)) + 0.5 * walk
            )
    if ecg_rel > 0:
        # QRS-like Mexican-hat pulses (sigma 10 ms, energy peak ~22 Hz) at about 70 beats/min,
        # the same on every channel.
        sigma = 0.010
        half = int(5 * sigma * fs_hz)
        tk = np.arange(-half, half + 1) / fs_hz
        qrs = (1 - (tk / sigma) ** 2) * np.exp(-0.5 * (tk / sigma) ** 2)
        beat = 0.0
        beats = []
        while True:
            beat += rng.uniform(0.75, 0.95)
            if beat >= t_s[-1]:
                break
            beats.append(int(beat * fs_hz))
        train = np.zeros(n)
        train[np.asarray(beats, dtype=np.int64)] = 1.0
        ecg = np.convolve(train, qrs, mode="same")
        out += ecg_rel * noise_uv * ecg[:, None] * rng.uniform(0.5, 1.0, size=n_ch)[None, :]
    if motion_per_min > 0 and motion_rel > 0:
        n_events = rng.poisson(motion_per_min * n / fs_hz / 60.0)
        for _ in range(n_events):
            ch = int(rng.integers(n_ch))
            centre = rng.uniform(0, n / fs_hz)
            width = rng.uniform(0.05, 0.2)
            bump = np.exp(-0.5 * ((t_s - centre) / width) ** 2)
            out[:, ch] += motion_rel * noise_uv * rng.choice([-1.0, 1.0]) * bump
    return out


def simulate_emg(
    *,
    duration_s: float = 60.0,
    fs_hz: float = 2000.0,
    n_channels: int = 1,
    snr_db: float = 10.0,
    noise_uv: float = 5.0,
    burst_s: tuple[float, float] = (0.4, 1.6),
    rest_s: tuple[float, float] = (1.0, 3.0),
    rise_s: tuple[float, float] = (0.01, 0.06),
    rise_shape: str = "mixed",
    amplitude_jitter: float = 0.3,
    mains_hz: float | None = 50.0,
    hum_rel: float = 4.0,
    wander_rel: float = 20.0,
    ecg_rel: float = 3.0,
    motion_per_min: float = 2.0,
    motion_rel: float = 30.0,
    seed: int = 0,
) -> SimulatedEmg:
    """Simulate EMG bursts with known onsets/offsets in noise and artefacts.

    Parameters
    ----------
    duration_s, fs_hz : float
        Length and sampling rate.
    n_channels : int
        Independent channels (bursts are placed independently per channel; ECG is common).
    snr_db : float
        In-band SNR at the reference amplitude (see module docstring).
    noise_uv : float
        RMS of the band-limited background noise in µV.
    burst_s, rest_s, rise_s : (float, float)
        Uniform ranges of burst duration (onset to offset), rest between bursts and rise time
        (the fall time is drawn from the same range).
    rise_shape : {"linear", "cosine", "mixed"}
        Amplitude ramp shape; "mixed" draws one of the two per burst.
    amplitude_jitter : float
        Burst plateau amplitudes are the reference times ``exp(U(-j, j))``.
    mains_hz : float or None
        Hum frequency (fundamental plus a third harmonic), None for none.
    hum_rel, wander_rel, ecg_rel, motion_rel : float
        Artefact sizes relative to ``noise_uv`` (hum RMS, wander amplitude, QRS peak, motion peak).
    motion_per_min : float
        Mean rate of motion artefacts (Poisson).
    seed : int
        Random seed; the same seed gives the same recording.

    Returns
    -------
    SimulatedEmg

    Examples
    --------
    >>> sim = simulate_emg(duration_s=10, fs_hz=1000, snr_db=10, seed=1)
    >>> sim.emg_uv.shape
    (10000,)
    """
    if fs_hz <= 0 or duration_s <= 0:
        raise ValueError("fs_hz and duration_s must be positive")
    if rise_shape not in ("linear", "cosine", "mixed"):
        raise ValueError(f"rise_shape must be 'linear', 'cosine' or 'mixed', not {rise_shape!r}")
    rng = np.random.default_rng(seed)
    n = round(duration_s * fs_hz)
    noise = noise_uv * _shaped_noise(rng, n, n_channels, fs_hz, _band_gain(n, fs_hz))
    carrier = emg_carrier(n, fs_hz, rng, n_channels)
    ref_amp_uv = noise_uv * 10 ** (snr_db / 20.0)
    signal = np.zeros((n, n_channels))
    onsets: list[int] = []
    offsets: list[int] = []
    chans: list[int] = []
    amps: list[float] = []
    rises: list[float] = []
    for ch in range(n_channels):
        t = rng.uniform(*rest_s)
        while True:
            dur = rng.uniform(*burst_s)
            if t + dur + 0.5 > duration_s:
                break
            r_s = rng.uniform(*rise_s)
            f_s = rng.uniform(*rise_s)
            shape = rise_shape if rise_shape != "mixed" else str(rng.choice(["linear", "cosine"]))
            n_on = round(t * fs_hz)
            n_rise = max(1, round(r_s * fs_hz))
            n_fall = max(1, round(f_s * fs_hz))
            n_total = round(dur * fs_hz)
            n_plateau = max(1, n_total - n_rise - n_fall)
            env = _burst_envelope(n_rise, n_plateau, n_fall, shape)
            amp = ref_amp_uv * float(np.exp(rng.uniform(-amplitude_jitter, amplitude_jitter)))
            signal[n_on : n_on + env.size, ch] += amp * env * carrier[n_on : n_on + env.size, ch]
            onsets.append(n_on)
            offsets.append(n_on + env.size - 1)
            chans.append(ch)
            amps.append(amp)
            rises.append(n_rise / fs_hz)
            t += dur + rng.uniform(*rest_s)
    art = _artefacts(
        rng, n, n_channels, fs_hz, noise_uv, mains_hz=mains_hz, hum_rel=hum_rel,
        wander_rel=wander_rel, ecg_rel=ecg_rel, motion_per_min=motion_per_min,
        motion_rel=motion_rel,
    )
    emg = signal + noise + art
    return SimulatedEmg(
        emg_uv=emg[:, 0].copy() if n_channels == 1 else emg,
        fs_hz=float(fs_hz),
        onset_idx=np.asarray(onsets, dtype=np.int64),
        offset_idx=np.asarray(offsets, dtype=np.int64),
        channel=np.asarray(chans, dtype=np.int64),
        amplitude_uv=np.asarray(amps, dtype=np.float64),
        rise_s=np.asarray(rises, dtype=np.float64),
        noise_uv=float(noise_uv),
        mains_hz=mains_hz,
        snr_db=float(snr_db),
    )


@dataclass(frozen=True)
class ExerciseSession:
    """A simulated exercise session and its ground truth.

    Attributes
    ----------
    emg_uv : ndarray, shape (n, n_channels)
        The exercise recording in µV.
    mvc_emg_uv : ndarray, shape (m, n_channels)
        A separate maximal-voluntary-contraction trial (one 3 s maximal effort per channel, the
        channels one after the other), in µV.
    fs_hz : float
        Sampling rate.
    roles : tuple of (muscle, side)
        One per channel, e.g. ``("glute_max", "right")``.
    onset_idx, offset_idx : ndarray of int, shape (n_reps, n_channels)
        True onsets/offsets per repetition and channel; -1 where the muscle did not fire.
    peak_rms_uv : ndarray, shape (n_reps, n_channels)
        Plateau RMS of each contraction (0 where it did not fire).
    mvc_rms_uv : ndarray, shape (n_channels,)
        Plateau RMS of each channel's MVC contraction.
    latency_ms : ndarray, shape (n_reps, n_sides)
        True glute-minus-hamstring onset per repetition and side (NaN if the glute did not fire).
    """

    emg_uv: FloatArray
    mvc_emg_uv: FloatArray
    fs_hz: float
    roles: tuple[tuple[str, str], ...]
    onset_idx: IntArray
    offset_idx: IntArray
    peak_rms_uv: FloatArray
    mvc_rms_uv: FloatArray
    latency_ms: FloatArray
    sides: tuple[str, ...] = field(default=("right",))


def simulate_exercise_session(
    *,
    n_reps: int = 10,
    fs_hz: float = 1000.0,
    sides: Sequence[str] = ("right",),
    firing_latency_ms: float = -40.0,
    latency_sd_ms: float = 20.0,
    glute_pct_mvc: float = 35.0,
    hamstring_pct_mvc: float = 25.0,
    amplitude_trend: float = 0.0,
    amplitude_cv: float = 0.1,
    glute_miss_prob: float = 0.0,
    left_right_ratio: float = 1.0,
    mvc_uv: tuple[float, float] = (400.0, 300.0),
    rep_period_s: float = 4.0,
    contraction_s: float = 1.5,
    rise_s: float = 0.08,
    noise_uv: float = 4.0,
    mains_hz: float | None = 50.0,
    seed: int = 0,
) -> ExerciseSession:
    """Simulate an exercise session: a glute and a hamstring channel per side plus an MVC trial.

    Parameters
    ----------
    n_reps : int
        Repetitions.
    fs_hz : float
        Sampling rate.
    sides : sequence of {"right", "left"}
        Sides recorded; channels are ordered glute, hamstring per side.
    firing_latency_ms, latency_sd_ms : float
        Mean and SD of the glute-minus-hamstring onset per repetition (negative = glutes first).
    glute_pct_mvc, hamstring_pct_mvc : float
        Mean contraction amplitude as a percentage of the channel's MVC RMS.
    amplitude_trend : float
        Fractional change of the glute amplitude from the first to the last repetition (e.g. -0.3
        for fatigue, +0.2 for warming up).
    amplitude_cv : float
        Rep-to-rep coefficient of variation of the amplitudes.
    glute_miss_prob : float
        Probability that the glute does not fire on a repetition.
    left_right_ratio : float
        Left glute amplitude relative to the right (only with both sides).
    mvc_uv : (float, float)
        MVC plateau RMS of the glute and hamstring channels.
    rep_period_s, contraction_s, rise_s : float
        Repetition period, contraction duration and rise time.
    noise_uv : float
        Background noise RMS (band-limited) per channel.
    mains_hz : float or None
        Mains hum frequency.
    seed : int
        Random seed.

    Returns
    -------
    ExerciseSession

    Examples
    --------
    >>> s = simulate_exercise_session(n_reps=3, fs_hz=1000, seed=0)
    >>> s.emg_uv.shape[1], s.onset_idx.shape
    (2, (3, 2))
    """
    sides = tuple(sides)
    if not sides or any(s not in ("right", "left") for s in sides) or len(set(sides)) != len(sides):
        raise ValueError(f"sides must be distinct values of 'right'/'left', got {sides!r}")
    if n_reps < 1:
        raise ValueError("n_reps must be >= 1")
    rng = np.random.default_rng(seed)
    roles = tuple((m, s) for s in sides for m in ("glute_max", "hamstring"))
    n_ch = len(roles)
    lead_s = 2.0
    n = round((lead_s + n_reps * rep_period_s + 1.0) * fs_hz)
    onset = -np.ones((n_reps, n_ch), dtype=np.int64)
    offset = -np.ones((n_reps, n_ch), dtype=np.int64)
    peak = np.zeros((n_reps, n_ch))
    latency = np.full((n_reps, len(sides)), np.nan)
    carrier = emg_carrier(n, fs_hz, rng, n_ch)
    signal = np.zeros((n, n_ch))
    n_rise = max(1, round(rise_s * fs_hz))
    n_len = round(contraction_s * fs_hz)
    trend = 1.0 + amplitude_trend * np.linspace(0.0, 1.0, n_reps)
    for rep in range(n_reps):
        t_ham_s = lead_s + rep * rep_period_s + rng.uniform(0.0, 0.3)
        for si, side in enumerate(sides):
            lat_ms = firing_latency_ms + latency_sd_ms * rng.standard_normal()
            for mi, muscle in enumerate(("glute_max", "hamstring")):
                ch = si * 2 + mi
                if muscle == "glute_max" and rng.uniform() < glute_miss_prob:
                    continue
                t_on = t_ham_s + (lat_ms / 1000.0 if muscle == "glute_max" else 0.0)
                pct = glute_pct_mvc if muscle == "glute_max" else hamstring_pct_mvc
                amp = mvc_uv[mi] * pct / 100.0 * np.exp(amplitude_cv * rng.standard_normal())
                if muscle == "glute_max":
                    amp *= trend[rep] * (left_right_ratio if side == "left" else 1.0)
                n_on = round(t_on * fs_hz)
                n_plateau = max(1, n_len - 2 * n_rise)
                env = _burst_envelope(n_rise, n_plateau, n_rise, "linear")
                seg = slice(n_on, n_on + env.size)
                signal[seg, ch] += amp * env * carrier[seg, ch]
                onset[rep, ch] = n_on
                offset[rep, ch] = n_on + env.size - 1
                peak[rep, ch] = amp
                if muscle == "glute_max":
                    latency[rep, si] = lat_ms
    noise = noise_uv * _shaped_noise(rng, n, n_ch, fs_hz, _band_gain(n, fs_hz))
    art = _artefacts(
        rng, n, n_ch, fs_hz, noise_uv, mains_hz=mains_hz, hum_rel=3.0, wander_rel=10.0,
        ecg_rel=1.0, motion_per_min=0.0, motion_rel=0.0,
    )
    # MVC trial: each channel in turn does one 3 s maximal effort; a quiet second between.
    n_mvc_each = round(5.0 * fs_hz)
    m = n_mvc_each * n_ch + int(fs_hz)
    mvc = noise_uv * _shaped_noise(rng, m, n_ch, fs_hz, _band_gain(m, fs_hz))
    mvc_carrier = emg_carrier(m, fs_hz, rng, n_ch)
    mvc_env = _burst_envelope(n_rise, int(3.0 * fs_hz) - 2 * n_rise, n_rise, "linear")
    for ch in range(n_ch):
        start = int(fs_hz) + ch * n_mvc_each
        amp = mvc_uv[ch % 2]
        mvc[start : start + mvc_env.size, ch] += (
            amp * mvc_env * mvc_carrier[start : start + mvc_env.size, ch]
        )
    return ExerciseSession(
        emg_uv=signal + noise + art,
        mvc_emg_uv=mvc,
        fs_hz=float(fs_hz),
        roles=roles,
        onset_idx=onset,
        offset_idx=offset,
        peak_rms_uv=peak,
        mvc_rms_uv=np.asarray([mvc_uv[ch % 2] for ch in range(n_ch)], dtype=np.float64),
        latency_ms=latency,
        sides=sides,
    )
