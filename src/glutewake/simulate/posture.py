"""Seeded simulator of thigh-worn tri-axial acceleration over whole days, with ground truth.

A day in the participant's local time zone: the sensor lies on a bedside table overnight
(non-wear, or worn while lying if ``night="lying"``), is put on at waking with a new random
mounting rotation, and the day is a Markov sequence of sitting, standing, walking and
cycling bouts with realistic, heavy-tailed durations and brief (< 10 s) stands inside some
sitting bouts. Optionally the sensor is taken off for an hour or so mid-day and put back in
another random orientation (a re-mount). The accelerometer has a per-axis gain and offset
error and white noise; output is float32 in g.

The signal model: thigh frame x = anterior, y = medio-lateral, z = long axis (towards the
hip). The specific force at rest is the "up" vector ``[sin θ cos ψ, sin θ sin ψ, cos θ]``
for thigh pitch θ from vertical and roll ψ about the long axis. Walking swings θ at the
stride frequency and adds vertical impacts at the step frequency; cycling swings θ around
60°. Everything is vectorised over samples.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from fractions import Fraction
from zoneinfo import ZoneInfo

import numpy as np
from scipy.spatial.transform import Rotation

from glutewake.signal.posture import Posture

__all__ = ["SimulatedDays", "SitStandSit", "simulate_sit_stand_sit", "simulate_thigh_days"]

_DAY_STATES = (Posture.SITTING, Posture.STANDING, Posture.MOVING, Posture.CYCLING)
# Transition probabilities between daytime states (rows: from, columns: to; same order).
_TRANSITIONS = np.array(
    [
        [0.0, 0.50, 0.48, 0.02],
        [0.55, 0.0, 0.45, 0.0],
        [0.50, 0.45, 0.0, 0.05],
        [0.0, 0.40, 0.60, 0.0],
    ]
)
# Lognormal duration (median s, sigma, min s, max s) per state.
_DURATIONS = {
    Posture.SITTING: (900.0, 1.0, 30.0, 3 * 3600.0),
    Posture.STANDING: (90.0, 0.9, 12.0, 1800.0),
    Posture.MOVING: (120.0, 0.9, 12.0, 3600.0),
    Posture.CYCLING: (600.0, 0.5, 120.0, 3600.0),
}


@dataclass(frozen=True)
class SimulatedDays:
    """Simulated recording with ground truth.

    Attributes
    ----------
    acc_g : ndarray of float32, shape (n, 3)
        Raw acceleration as the device would report it (gain/offset error, noise), g;
        column-major (Fortran order) because it is generated column by column.
    t_us : ndarray of int64, shape (n,)
        UTC sample times, µs.
    fs_hz : float
    labels : ndarray of int8, shape (n,)
        True :class:`~glutewake.signal.posture.Posture` per sample.
    bout_start_us, bout_end_us : ndarray of int64
        True activity bouts (every scheduled segment, end exclusive).
    bout_label : ndarray of int8
    mount_start_us : ndarray of int64
        When each mounting (sensor put on with a new rotation) began.
    mount_rotation : ndarray, shape (n_mounts, 3, 3)
        Sensor-from-thigh rotation of each mounting.
    gain, offset_g : ndarray, shape (3,)
        The accelerometer's error: ``raw = gain * true + offset_g``.
    tz : str
    """

    acc_g: np.ndarray
    t_us: np.ndarray
    fs_hz: float
    labels: np.ndarray
    bout_start_us: np.ndarray
    bout_end_us: np.ndarray
    bout_label: np.ndarray
    mount_start_us: np.ndarray
    mount_rotation: np.ndarray
    gain: np.ndarray
    offset_g: np.ndarray
    tz: str

    def epoch_labels(self, samples_per_epoch: int) -> np.ndarray:
        """Label of each complete epoch (the label at the epoch's middle sample)."""
        n_ep = self.labels.size // samples_per_epoch
        return self.labels[samples_per_epoch // 2 :: samples_per_epoch][:n_ep].copy()


def _sample_times_us(start_us: int, n: int, fs_hz: float) -> np.ndarray:
    """``start_us + round(i * 1e6 / fs_hz)`` in exact integer arithmetic, in place."""
    ratio = Fraction(fs_hz).limit_denominator(1000)  # fs = p / q
    p, q = ratio.numerator, ratio.denominator
    t = np.arange(n, dtype=np.int64)
    t *= 1_000_000 * q
    t += p // 2
    t //= p
    t += start_us
    return t


def _local_instant_us(day: date, hour: float, tz: ZoneInfo) -> int:
    dt = datetime.combine(day, time(0), tzinfo=tz) + timedelta(hours=hour)
    # Re-attach the zone so a wall time after a DST change gets the right offset.
    dt = dt.replace(tzinfo=None).replace(tzinfo=tz)
    return round(dt.timestamp() * 1e6)


def _schedule(
    rng: np.random.Generator,
    start_us: int,
    end_us: int,
    tz: ZoneInfo,
    night: Posture,
    remount_per_day: float,
) -> tuple[list[tuple[int, int, int]], list[int]]:
    """Segments (label, start_us, end_us) covering [start_us, end_us) and mount start times."""
    segs: list[tuple[int, int, int]] = []
    mounts: list[int] = []
    first_day = datetime.fromtimestamp(start_us / 1e6, tz).date() - timedelta(days=1)
    last_day = datetime.fromtimestamp(end_us / 1e6, tz).date() + timedelta(days=1)
    day = first_day
    t = start_us
    while day <= last_day and t < end_us:
        wake = _local_instant_us(day, rng.normal(7.0, 0.4), tz)
        bed = _local_instant_us(day, rng.normal(23.0, 0.4), tz)
        if t < wake:
            segs.append((int(night), t, min(wake, end_us)))
            t = wake
        if t < bed and t < end_us:
            mounts.append(t)
            remount_at = None
            if rng.random() < remount_per_day:
                remount_at = _local_instant_us(day, rng.uniform(11.0, 17.0), tz)
            state = int(rng.choice(len(_DAY_STATES), p=[0.3, 0.3, 0.4, 0.0]))
            day_end = min(bed, end_us)
            while t < day_end:
                label = _DAY_STATES[state]
                med, sig, lo, hi = _DURATIONS[label]
                dur_us = int(np.clip(med * np.exp(sig * rng.normal()), lo, hi) * 1e6)
                stop = min(t + dur_us, day_end)
                if remount_at is not None and t <= remount_at < stop:
                    stop = remount_at
                if stop > t:
                    segs.append((int(label), t, stop))
                t = stop
                if remount_at is not None and t == remount_at:
                    off_end = min(t + int(rng.uniform(3900.0, 5400.0) * 1e6), day_end)
                    segs.append((int(Posture.NONWEAR), t, off_end))
                    t = off_end
                    if t < day_end:
                        mounts.append(t)
                    remount_at = None
                state = int(rng.choice(len(_DAY_STATES), p=_TRANSITIONS[state]))
        if t < end_us:
            next_wake_guess = _local_instant_us(day + timedelta(days=1), 0.0, tz)
            if t < next_wake_guess:
                segs.append((int(night), t, min(next_wake_guess, end_us)))
                t = min(next_wake_guess, end_us)
        day += timedelta(days=1)
    if t < end_us:
        segs.append((int(night), t, end_us))
    return segs, mounts


def _sensor_error(
    acc: np.ndarray,
    rng: np.random.Generator,
    noise_g: float,
    gain_error: float,
    offset_error_g: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Apply a per-axis gain and offset error and white noise to ``acc`` in place."""
    n = acc.shape[0]
    gain = 1.0 + rng.normal(0.0, gain_error, 3)
    offset = rng.normal(0.0, offset_error_g, 3)
    noise_scale = np.float32(noise_g * np.sqrt(12.0) / 256.0)
    tmp = np.empty(n, dtype=np.float32)
    for axis in range(3):
        col = acc[:, axis]
        col *= np.float32(gain[axis])
        col += np.float32(offset[axis] - 127.5 * noise_scale)
        # Uniform white noise from raw random bytes (quantised like an ADC; sd = noise_g).
        np.multiply(np.frombuffer(rng.bytes(n), dtype=np.uint8), noise_scale, out=tmp)
        col += tmp
    return gain, offset


def simulate_thigh_days(
    n_days: float,
    fs_hz: float,
    *,
    start_us: int,
    tz: str = "UTC",
    seed: int = 0,
    night: str = "nonwear",
    remount_per_day: float = 0.5,
    brief_stand_rate_per_h: float = 2.0,
    fidget_rate_per_h: float = 20.0,
    noise_g: float = 0.004,
    gain_error: float = 0.02,
    offset_error_g: float = 0.02,
) -> SimulatedDays:
    """Simulate ``n_days`` of thigh acceleration with ground-truth posture.

    Parameters
    ----------
    n_days : float
        Length of the recording in days (from ``start_us``).
    fs_hz : float
        Sampling rate.
    start_us : int
        UTC start, µs.
    tz : str
        IANA time zone of the participant (sets the local sleep/wake times).
    seed : int
        Seed; the same arguments give the same data.
    night : {"nonwear", "lying"}
        Sensor off on a table overnight, or worn while lying in bed.
    remount_per_day : float
        Probability per day of a mid-day removal (65-90 min) and re-mount in a new orientation.
    brief_stand_rate_per_h : float
        Rate of brief (3-8 s) stands inside sitting bouts, shorter than the break rule.
    fidget_rate_per_h : float
        Rate of 1-3 s fidgets while seated or lying.
    noise_g : float
        White noise per axis.
    gain_error, offset_error_g : float
        Standard deviation of the per-axis gain error and offset error.

    Returns
    -------
    SimulatedDays

    Examples
    --------
    >>> sim = simulate_thigh_days(0.1, 25.0, start_us=1_780_000_000_000_000, seed=1)
    >>> sim.acc_g.shape[0] == sim.t_us.shape[0] == sim.labels.shape[0]
    True
    """
    if n_days <= 0 or not np.isfinite(n_days):
        raise ValueError(f"n_days must be positive, got {n_days!r}")
    if fs_hz <= 0 or not np.isfinite(fs_hz):
        raise ValueError(f"fs_hz must be positive, got {fs_hz!r}")
    if night not in ("nonwear", "lying"):
        raise ValueError(f"night must be 'nonwear' or 'lying', got {night!r}")
    zone = ZoneInfo(tz)
    rng = np.random.default_rng(seed)
    n = round(n_days * 86400.0 * fs_hz)
    end_us = start_us + round(n * 1e6 / fs_hz)
    night_label = Posture.NONWEAR if night == "nonwear" else Posture.LYING
    segs, mounts = _schedule(rng, start_us, end_us, zone, night_label, remount_per_day)
    if not mounts:
        mounts = [start_us]
    lab = np.array([s[0] for s in segs], dtype=np.int8)
    s_us = np.array([s[1] for s in segs], dtype=np.int64)
    e_us = np.array([s[2] for s in segs], dtype=np.int64)
    s_idx = np.clip(np.round((s_us - start_us) * fs_hz / 1e6).astype(np.int64), 0, n)
    e_idx = np.append(s_idx[1:], n)
    keep = e_idx > s_idx
    lab, s_us, e_us, s_idx, e_idx = lab[keep], s_us[keep], e_us[keep], s_idx[keep], e_idx[keep]
    dur = e_idx - s_idx
    k = lab.size

    # Per-segment parameters (thigh frame: x anterior, y medio-lateral, z long axis).
    theta0 = np.zeros(k)
    amp = np.zeros(k)
    freq = np.zeros(k)
    psi = rng.normal(0.0, np.radians(10.0), k)
    for code, mu, sd in (
        (Posture.SITTING, 80.0, 7.0),
        (Posture.STANDING, 5.0, 4.0),
        (Posture.MOVING, 12.0, 3.0),
        (Posture.CYCLING, 60.0, 5.0),
        (Posture.LYING, 88.0, 3.0),
    ):
        sel = lab == code
        theta0[sel] = np.radians(rng.normal(mu, sd, sel.sum()))
    walk = lab == Posture.MOVING
    cyc = lab == Posture.CYCLING
    amp[walk] = np.radians(rng.uniform(15.0, 25.0, walk.sum()))
    freq[walk] = rng.uniform(0.8, 1.0, walk.sum())
    amp[cyc] = np.radians(rng.uniform(20.0, 30.0, cyc.sum()))
    freq[cyc] = rng.uniform(1.0, 1.4, cyc.sum())
    lying = lab == Posture.LYING
    psi[lying] = rng.choice([-np.pi / 2, 0.0, np.pi / 2], lying.sum())
    up_seg = np.c_[np.sin(theta0) * np.cos(psi), np.sin(theta0) * np.sin(psi), np.cos(theta0)]

    # Mountings: each has its own random rotation (sensor from thigh), applied from its start.
    mount_us = np.array(sorted(set(mounts)), dtype=np.int64)
    rots = Rotation.random(mount_us.size, random_state=rng.integers(2**31)).as_matrix()
    m_idx = np.clip(np.round((mount_us - start_us) * fs_hz / 1e6).astype(np.int64), 0, n)
    m_idx[0] = 0
    seg_mount = np.searchsorted(m_idx, s_idx, side="right") - 1
    sensor_seg = np.einsum("kij,kj->ki", rots[seg_mount], up_seg)
    # Off the body the sensor lies still on a table in an arbitrary (fixed) orientation.
    off = lab == Posture.NONWEAR
    if off.any():
        table = Rotation.random(int(off.sum()), random_state=rng.integers(2**31)).as_matrix()
        sensor_seg[off] = table.reshape(-1, 3, 3)[:, :, 2]

    # Column-major output, filled with each segment's static vector, then the moving segments
    # are overwritten sample by sample. Large temporaries are avoided on purpose: the
    # simulator must make 3 days at 52 Hz in well under 2 s.
    acc = np.empty((n, 3), dtype=np.float32, order="F")
    for axis in range(3):
        acc[:, axis] = np.repeat(sensor_seg[:, axis].astype(np.float32), dur)
    labels = np.repeat(lab, dur)
    for i in np.flatnonzero(walk | cyc):
        a, b = int(s_idx[i]), int(e_idx[i])
        ph = np.arange(b - a, dtype=np.float64) * (2 * np.pi * freq[i] / fs_hz)
        theta = theta0[i] + amp[i] * np.sin(ph)
        impact = 0.35 if walk[i] else 0.08
        up = np.empty((b - a, 3))
        up[:, 0] = np.sin(theta) * np.cos(psi[i]) + impact * 0.4 * np.cos(ph)
        up[:, 1] = np.sin(theta) * np.sin(psi[i])
        # Heel-strike impacts at the step frequency (twice the stride), along the long axis.
        up[:, 2] = np.cos(theta) + impact * np.sin(2 * ph)
        acc[a:b] = up @ rots[seg_mount[i]].T

    # Brief stands (< 10 s) inside sitting bouts: the thigh comes up for a few seconds.
    sit_hours = float(dur[lab == Posture.SITTING].sum()) / fs_hz / 3600.0
    n_brief = rng.poisson(brief_stand_rate_per_h * sit_hours)
    sit_idx = np.flatnonzero(lab == Posture.SITTING)
    if n_brief and sit_idx.size:
        which = rng.choice(sit_idx, n_brief)
        brief_len = np.round(rng.uniform(3.0, 8.0, n_brief) * fs_hz).astype(np.int64)
        margin = round(20 * fs_hz)
        room = dur[which] - brief_len - 2 * margin
        ok = room > 0
        offs = s_idx[which[ok]] + margin + (rng.random(ok.sum()) * room[ok]).astype(np.int64)
        for o, ln, seg in zip(offs, brief_len[ok], which[ok], strict=True):
            acc[o : o + ln] = rots[seg_mount[seg]] @ np.array([0.05, 0.0, 0.998])
            labels[o : o + ln] = Posture.STANDING

    # Fidgets while seated or lying (a worn sensor is never perfectly still for long).
    sed_idx = np.flatnonzero((lab == Posture.SITTING) | (lab == Posture.LYING))
    sed_hours = float(dur[sed_idx].sum()) / fs_hz / 3600.0
    n_fidget = rng.poisson(fidget_rate_per_h * sed_hours)
    if n_fidget and sed_idx.size:
        weights = dur[sed_idx] / dur[sed_idx].sum()
        which = rng.choice(sed_idx, n_fidget, p=weights)
        f_len = np.round(rng.uniform(1.0, 3.0, n_fidget) * fs_hz).astype(np.int64)
        f_pos = s_idx[which] + (rng.random(n_fidget) * np.maximum(dur[which] - f_len, 1)).astype(
            np.int64
        )
        f_amp = rng.uniform(0.03, 0.12, n_fidget)
        ramp = np.sin(np.arange(int(f_len.max())) * (2 * np.pi * 2.5 / fs_hz))
        for o, ln, amp_g, seg in zip(f_pos, f_len, f_amp, which, strict=True):
            anterior = rots[seg_mount[seg]][:, 0]  # thigh x axis in the sensor frame
            acc[o : o + ln] += (amp_g * ramp[:ln, None] * anterior).astype(np.float32)

    gain, offset = _sensor_error(acc, rng, noise_g, gain_error, offset_error_g)
    t_us = _sample_times_us(start_us, n, fs_hz)
    return SimulatedDays(
        acc_g=acc,
        t_us=t_us,
        fs_hz=float(fs_hz),
        labels=labels.astype(np.int8),
        bout_start_us=s_us,
        bout_end_us=e_us,
        bout_label=lab,
        mount_start_us=mount_us,
        mount_rotation=rots,
        gain=gain,
        offset_g=offset,
        tz=tz,
    )


@dataclass(frozen=True)
class SitStandSit:
    """A simulated sit-stand-sit drill with ground truth.

    Attributes
    ----------
    acc_g : ndarray of float32, shape (n, 3)
        Raw acceleration (random mounting, gain/offset error, noise), g.
    fs_hz : float
    labels : ndarray of int8, shape (n,)
        True :class:`~glutewake.signal.posture.Posture` per sample: ``SITTING`` while the
        thigh is at least 45° from upright (the thigh-inclinometer convention), ``STANDING``
        while it is less (transitions included, split where they cross 45°), ``MOVING``
        while walking.
    stand_start, stand_end : ndarray of int64
        Sample range of each short stand between two sitting periods (end exclusive).
    stand_s : ndarray of float
        Length of each stand (time below 45°), s.
    """

    acc_g: np.ndarray
    fs_hz: float
    labels: np.ndarray
    stand_start: np.ndarray
    stand_end: np.ndarray
    stand_s: np.ndarray


def _ramp(theta_from: float, theta_to: float, n: int) -> np.ndarray:
    """Thigh pitch along a smooth (raised-cosine) postural transition of ``n`` samples."""
    x = (1.0 - np.cos(np.pi * (np.arange(n) + 0.5) / n)) / 2.0
    return theta_from + (theta_to - theta_from) * x


def _crossing_fraction(theta_from: float, theta_to: float, at: float) -> float:
    """Where (0..1) a raised-cosine ramp from ``theta_from`` to ``theta_to`` crosses ``at``."""
    r = (theta_from - at) / (theta_from - theta_to)
    return float(np.arccos(1.0 - 2.0 * r) / np.pi)


def simulate_sit_stand_sit(
    n_stands: int,
    fs_hz: float,
    *,
    seed: int = 0,
    stand_s: tuple[float, float] = (1.0, 10.0),
    sit_s: tuple[float, float] = (15.0, 40.0),
    transition_s: tuple[float, float] = (0.8, 1.6),
    stand_deg: tuple[float, float] = (3.0, 28.0),
    walk_every: int = 12,
    noise_g: float = 0.004,
    gain_error: float = 0.02,
    offset_error_g: float = 0.02,
) -> SitStandSit:
    """Simulate a sit-stand-sit drill: sitting periods separated by short stands.

    The recording starts with a minute of walking (so the upright reference can be found),
    then alternates sitting (``sit_s``) and stands whose time below 45° is uniform in
    ``stand_s``, with a short walk after every ``walk_every`` stands. Each postural transition
    is a raised-cosine swing of the thigh (``transition_s`` long) with the body's vertical
    acceleration added (0.1-0.3 g); a brief stand may never straighten fully: the thigh reads
    ``stand_deg`` from upright at the top (real brief stands read 5-28° from the walking
    reference). The mounting is a random 3-D rotation.

    Parameters
    ----------
    n_stands : int
        Number of short stands.
    fs_hz : float
        Sampling rate.
    seed : int
        Seed; the same arguments give the same data.
    stand_s, sit_s, transition_s, stand_deg : tuple of float
        Uniform ranges of the stand length (below 45°), the sitting periods, each transition
        and the thigh angle at the top of a stand.
    walk_every : int
        A 20-40 s walk follows every this many stands (0: never).
    noise_g, gain_error, offset_error_g : float
        Sensor error as in :func:`simulate_thigh_days`.

    Returns
    -------
    SitStandSit

    Examples
    --------
    >>> sim = simulate_sit_stand_sit(5, 50.0, seed=1)
    >>> sim.stand_start.size, bool(np.all(sim.stand_s >= 1.0))
    (5, True)
    """
    if n_stands < 1:
        raise ValueError(f"n_stands must be at least 1, got {n_stands!r}")
    if fs_hz <= 0 or not np.isfinite(fs_hz):
        raise ValueError(f"fs_hz must be positive, got {fs_hz!r}")
    rng = np.random.default_rng(seed)
    theta: list[np.ndarray] = []  # thigh pitch from vertical, degrees, per sample
    lift: list[np.ndarray] = []  # vertical body acceleration, g
    label: list[np.ndarray] = []
    walking: list[tuple[int, int]] = []
    starts, ends, lengths = [], [], []
    pos = 0

    def add(th: np.ndarray, lab: np.ndarray, up_g: np.ndarray | None = None) -> None:
        nonlocal pos
        theta.append(th)
        label.append(lab)
        lift.append(np.zeros(th.size) if up_g is None else up_g)
        pos += th.size

    def hold(deg: float, seconds: float, code: int) -> None:
        n = round(seconds * fs_hz)
        add(np.full(n, deg), np.full(n, code, dtype=np.int8))

    def walk(seconds: float) -> None:
        n = round(seconds * fs_hz)
        walking.append((pos, pos + n))
        hold(10.0, seconds, int(Posture.MOVING))

    def swing(th_from: float, th_to: float, n: int) -> None:
        th = _ramp(th_from, th_to, n)
        up_g = rng.uniform(0.1, 0.3) * np.sin(2 * np.pi * (np.arange(n) + 0.5) / n)
        code = np.where(th < 45.0, Posture.STANDING, Posture.SITTING).astype(np.int8)
        add(th, code, up_g)

    walk(60.0)
    hold(float(rng.uniform(*stand_deg)), 10.0, int(Posture.STANDING))
    sit_deg = float(np.clip(rng.normal(80.0, 7.0), 60.0, 95.0))
    swing(5.0, sit_deg, round(rng.uniform(*transition_s) * fs_hz))
    for i in range(n_stands):
        hold(sit_deg, float(rng.uniform(*sit_s)), int(Posture.SITTING))
        length = float(rng.uniform(*stand_s))
        top = float(rng.uniform(*stand_deg))
        next_sit = float(np.clip(rng.normal(80.0, 7.0), 60.0, 95.0))
        t_up, t_down = rng.uniform(*transition_s, 2)
        # time below 45° spent in each swing, then the plateau that makes up the length
        below_up = 1.0 - _crossing_fraction(sit_deg, top, 45.0)
        below_down = _crossing_fraction(top, next_sit, 45.0)
        swings_s = t_up * below_up + t_down * below_down
        if swings_s > length:  # too brief to straighten for long: faster swings, no plateau
            t_up, t_down = t_up * length / swings_s, t_down * length / swings_s
        plateau = max(0.0, length - t_up * below_up - t_down * below_down)
        n_up, n_down = max(2, round(t_up * fs_hz)), max(2, round(t_down * fs_hz))
        mark = pos
        swing(sit_deg, top, n_up)
        hold(top, plateau, int(Posture.STANDING))
        swing(top, next_sit, n_down)
        seg = np.concatenate(label[-3:])
        below = np.flatnonzero(seg == Posture.STANDING)
        starts.append(mark + int(below[0]))
        ends.append(mark + int(below[-1]) + 1)
        lengths.append((below[-1] + 1 - below[0]) / fs_hz)
        sit_deg = next_sit
        if walk_every and (i + 1) % walk_every == 0 and i + 1 < n_stands:
            hold(sit_deg, float(rng.uniform(*sit_s)), int(Posture.SITTING))
            swing(sit_deg, 5.0, round(rng.uniform(*transition_s) * fs_hz))
            walk(float(rng.uniform(20.0, 40.0)))
            swing(5.0, sit_deg, round(rng.uniform(*transition_s) * fs_hz))
    hold(sit_deg, 20.0, int(Posture.SITTING))
    swing(sit_deg, 5.0, round(rng.uniform(*transition_s) * fs_hz))
    walk(30.0)

    th = np.radians(np.concatenate(theta))
    labels = np.concatenate(label)
    n = th.size
    psi = np.radians(rng.normal(0.0, 10.0))
    phases: list[np.ndarray] = []
    for a, b in walking:  # stride swing and heel strikes as in simulate_thigh_days
        ph = np.arange(b - a, dtype=np.float64) * (2 * np.pi * rng.uniform(0.8, 1.0) / fs_hz)
        th[a:b] = np.radians(12.0) + np.radians(rng.uniform(15.0, 25.0)) * np.sin(ph)
        phases.append(ph)
    scale = 1.0 + np.concatenate(lift)
    up = np.empty((n, 3))
    up[:, 0] = np.sin(th) * np.cos(psi)
    up[:, 1] = np.sin(th) * np.sin(psi)
    up[:, 2] = np.cos(th)
    up *= scale[:, None]
    for (a, b), ph in zip(walking, phases, strict=True):
        up[a:b, 0] += 0.35 * 0.4 * np.cos(ph)
        up[a:b, 2] += 0.35 * np.sin(2 * ph)
    rot = Rotation.random(random_state=rng.integers(2**31)).as_matrix()
    acc = np.asfortranarray((up @ rot.T).astype(np.float32))
    _sensor_error(acc, rng, noise_g, gain_error, offset_error_g)
    return SitStandSit(
        acc_g=acc,
        fs_hz=float(fs_hz),
        labels=labels,
        stand_start=np.asarray(starts, dtype=np.int64),
        stand_end=np.asarray(ends, dtype=np.int64),
        stand_s=np.asarray(lengths, dtype=np.float64),
    )
