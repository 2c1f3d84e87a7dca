"""A seeded cohort of *derived* rows (no raw signals): many participants x many days.

The analytics speed benchmark and the progression tests need catalog content at a scale the
signal simulators cannot produce quickly (100 participants x 90 days). This module draws the
rows the pipeline would have written - ``daily_sitting``, ``sitting_bouts``,
``exercise_sessions``, ``contractions`` - plus the bookkeeping (participants, phases,
symptoms), from a small generative model in which recovery is driven by the two factors named
in the domain notes:

* **adherence**: each participant does a session on a day with probability ``adherence``;
  activation progress grows with the cumulative number of sessions;
* **sedentary reduction**: daily sitting falls from the participant's baseline towards a
  personal reduction, and a lower sitting time adds to the day's activation quality.

So sitting and activation quality are negatively related within participants, which the
progression analysis should recover. Everything is vectorised over participant-days.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import numpy as np
import polars as pl

from glutewake import __version__

if TYPE_CHECKING:
    import duckdb

    from glutewake.store.datadir import DataDir

__all__ = ["CohortParams", "CohortTables", "build_cohort", "load_cohort", "simulate_cohort"]

TIME_ZONES = ("Europe/Berlin", "America/New_York", "Australia/Sydney", "Asia/Tokyo", "UTC")
PHASE_EXERCISES = {
    1: ("glute_bridge", "clamshell", "side_lying_leg_lift", "prone_hip_extension"),
    2: ("hip_thrust", "step_up", "cable_kickback", "squat"),
    3: ("lunge", "single_leg_deadlift", "lateral_bound"),
}


class CohortError(ValueError):
    """Invalid cohort parameters (names the field)."""


@dataclass(frozen=True)
class CohortParams:
    """What to simulate.

    Attributes
    ----------
    n_participants, days : int
        Cohort size and days per participant (all start on ``first_day``).
    first_day : datetime.date
        First local day; the first 7 days are the baseline week (phase 1 starts after it).
    seed : int
        Random seed: the same parameters give the same rows.
    contractions : bool
        Also draw per-repetition contraction rows (2 channels per repetition).
    low_wear_share : float
        Share of days with too little wear time (not valid days).
    """

    n_participants: int = 100
    days: int = 90
    first_day: dt.date = dt.date(2026, 1, 5)
    seed: int = 0
    contractions: bool = True
    low_wear_share: float = 0.08

    def __post_init__(self) -> None:
        if self.n_participants < 1:
            raise CohortError(f"n_participants must be at least 1, not {self.n_participants}")
        if self.days < 1:
            raise CohortError(f"days must be at least 1, not {self.days}")
        if not 0.0 <= self.low_wear_share < 1.0:
            raise CohortError(f"low_wear_share must be in [0, 1), not {self.low_wear_share}")


@dataclass(frozen=True)
class CohortTables:
    """The simulated rows, one polars frame per catalog table (columns named as the table's)."""

    participants: pl.DataFrame
    phases: pl.DataFrame
    symptoms: pl.DataFrame
    daily_sitting: pl.DataFrame
    sitting_bouts: pl.DataFrame
    exercise_sessions: pl.DataFrame
    contractions: pl.DataFrame

    def items(self) -> list[tuple[str, pl.DataFrame]]:
        """``(table name, frame)`` pairs in an order that satisfies the catalog's references."""
        return [
            ("participants", self.participants),
            ("phases", self.phases),
            ("symptoms", self.symptoms),
            ("daily_sitting", self.daily_sitting),
            ("sitting_bouts", self.sitting_bouts),
            ("exercise_sessions", self.exercise_sessions),
            ("contractions", self.contractions),
        ]


def _midnights_us(first_day: dt.date, days: int, tz: str) -> np.ndarray:
    """UTC µs of each local midnight from ``first_day`` for ``days + 1`` days (DST-aware)."""
    zone = ZoneInfo(tz)
    epoch = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    return np.array(
        [
            (dt.datetime.combine(first_day + dt.timedelta(days=k), dt.time(), tzinfo=zone) - epoch)
            // dt.timedelta(microseconds=1)
            for k in range(days + 1)
        ],
        dtype=np.int64,
    )


def _utc(t_us: np.ndarray) -> pl.Series:
    return pl.Series(t_us, dtype=pl.Int64).cast(pl.Datetime("us", "UTC"))


def simulate_cohort(params: CohortParams | None = None) -> CohortTables:
    """Draw a cohort's derived rows.

    Parameters
    ----------
    params : CohortParams, optional
        Size, start day and seed (defaults: 100 participants x 90 days).

    Returns
    -------
    CohortTables
        Frames for ``participants, phases, symptoms, daily_sitting, sitting_bouts,
        exercise_sessions, contractions``.

    Examples
    --------
    >>> t = simulate_cohort(CohortParams(n_participants=2, days=14, contractions=False))
    >>> t.daily_sitting.height
    28
    """
    p = params or CohortParams()
    rng = np.random.default_rng(p.seed)
    n, days = p.n_participants, p.days
    pids = [f"S{i + 1:03d}" for i in range(n)]
    tzs = [TIME_ZONES[i % len(TIME_ZONES)] for i in range(n)]
    now = dt.datetime.now(dt.UTC)
    param_text = json.dumps(
        {"simulated": "cohort", **{k: str(v) for k, v in asdict(p).items()}}, sort_keys=True
    )

    # --- per-participant traits
    base_sit = rng.normal(600.0, 60.0, n)  # min/day in the baseline week
    reduction = rng.uniform(20.0, 160.0, n)  # eventual sitting reduction, min/day
    adherence = rng.uniform(0.3, 0.95, n)  # P(session on a day)
    learn = rng.uniform(15.0, 40.0, n)  # sessions to ~63 % of the activation gain
    pain0 = rng.integers(3, 9, (n, 3))  # lower back, hip, knee
    phase2 = 7 + rng.integers(21, 36, n)
    phase3 = phase2 + rng.integers(21, 36, n)

    participants = pl.DataFrame(
        {
            "participant_id": pids,
            "tz": tzs,
            "baseline_start": [p.first_day] * n,
            "baseline_end": [p.first_day + dt.timedelta(days=6)] * n,
            "goal_sitting_min": np.round(base_sit - 90.0, 0),
            "goal_breaks_per_sitting_hour": np.full(n, 3.0),
            "notes": ["simulated cohort"] * n,
            "created_at": [now] * n,
        }
    )
    phase_rows: dict[str, list[object]] = {"participant_id": [], "phase": [], "start_date": []}
    for i, pid in enumerate(pids):
        for phase, offset in ((1, 7), (2, int(phase2[i])), (3, int(phase3[i]))):
            if offset < days:
                phase_rows["participant_id"].append(pid)
                phase_rows["phase"].append(phase)
                phase_rows["start_date"].append(p.first_day + dt.timedelta(days=offset))
    phases = pl.DataFrame(phase_rows).with_columns(
        pl.col("phase").cast(pl.Int8), pl.lit(None, dtype=pl.Utf8).alias("note")
    )

    # --- participant-day grid (row k = participant k // days, day k % days)
    pi = np.repeat(np.arange(n), days)
    di = np.tile(np.arange(days), n)
    dates = pl.Series([p.first_day + dt.timedelta(days=int(k)) for k in range(days)])
    local_date = dates.gather(di)
    phase_of_day = np.where(
        di >= phase3[pi], 3, np.where(di >= phase2[pi], 2, np.where(di >= 7, 1, 0))
    )
    in_programme = di >= 7
    session_day = in_programme & (rng.random(n * days) < adherence[pi])
    cum_sessions = np.cumsum(session_day.reshape(n, days).astype(np.float64), axis=1).ravel()
    progress = 1.0 - np.exp(-cum_sessions / learn[pi])
    t_prog = np.maximum(di - 7, 0)
    sitting = base_sit[pi] - reduction[pi] * (1.0 - np.exp(-t_prog / 25.0))
    sitting = np.clip(sitting + rng.normal(0.0, 35.0, n * days), 120.0, 900.0)
    low_wear = rng.random(n * days) < p.low_wear_share
    wear = np.where(
        low_wear, rng.uniform(180.0, 560.0, n * days), rng.normal(900.0, 45.0, n * days)
    )
    sitting = np.minimum(sitting, wear * 0.9)

    # --- sitting bouts: per day, durations that sum to the day's sitting time
    n_bouts = np.maximum(np.round(sitting / rng.uniform(18.0, 32.0, n * days)), 1).astype(np.int64)
    day_of_bout = np.repeat(np.arange(n * days), n_bouts)
    raw = rng.gamma(1.3, 1.0, day_of_bout.size)
    share = raw / np.bincount(day_of_bout, weights=raw)[day_of_bout]
    duration_min = share * sitting[day_of_bout]
    upright = wear - sitting
    gap_min = upright[day_of_bout] / n_bouts[day_of_bout]
    first_bout = np.concatenate(([0], np.cumsum(n_bouts)[:-1]))
    step = duration_min + gap_min
    before = np.cumsum(step) - step
    offset_min = before - before[first_bout][day_of_bout]
    midnights = np.concatenate(
        [_midnights_us(p.first_day, days, tz)[:-1] for tz in tzs]
    )  # row order = participant-day grid
    wake_min = 7 * 60.0 + rng.uniform(-45.0, 45.0, n * days)
    start_us = (midnights[day_of_bout] + (wake_min[day_of_bout] + offset_min) * 60e6).astype(
        np.int64
    )
    end_us = start_us + (duration_min * 60e6).astype(np.int64)
    sitting_bouts = pl.DataFrame(
        {
            "participant_id": pl.Series([pids[i] for i in range(n)]).gather(pi[day_of_bout]),
            "local_date": local_date.gather(di[day_of_bout]),
            "start_time": _utc(start_us),
            "end_time": _utc(end_us),
            "duration_min": duration_min,
            "glutewake_version": __version__,
            "params": param_text,
        }
    )

    def per_day(values: np.ndarray, how: str) -> np.ndarray:
        if how == "max":
            out = np.zeros(n * days)
            np.maximum.at(out, day_of_bout, values)
            return out
        return np.bincount(day_of_bout, weights=values, minlength=n * days)

    bouts_30 = per_day((duration_min >= 30).astype(float), "sum").astype(np.int32)
    bouts_60 = per_day((duration_min >= 60).astype(float), "sum").astype(np.int32)
    longest = per_day(duration_min, "max")
    standing = upright * rng.uniform(0.5, 0.7, n * days)
    daily_sitting = pl.DataFrame(
        {
            "participant_id": pl.Series(pids).gather(pi),
            "local_date": local_date.gather(di),
            "wear_min": wear,
            "sitting_min": sitting,
            "sitting_pct": 100.0 * sitting / wear,
            "standing_min": standing,
            "moving_min": upright - standing,
            "lying_min": np.zeros(n * days),
            "sitting_bouts": n_bouts.astype(np.int32),
            "bouts_30min": bouts_30,
            "bouts_60min": bouts_60,
            "longest_bout_min": longest,
            "mean_bout_min": sitting / n_bouts,
            "breaks": n_bouts.astype(np.int32),
            "breaks_per_sitting_hour": n_bouts / (sitting / 60.0),
            "valid_day": wear >= 600.0,
            "glutewake_version": __version__,
            "params": param_text,
        }
    )

    # --- exercise sessions: one on each session day, evening local time
    sk = np.flatnonzero(session_day)
    ns = sk.size
    prog_s = progress[sk]
    sit_drop = (base_sit[pi[sk]] - sitting[sk]) / 100.0  # per 100 min less sitting
    quality = np.clip(30.0 + 45.0 * prog_s + 6.0 * sit_drop + rng.normal(0, 5.0, ns), 0, 100)
    reps = rng.integers(10, 16, ns)
    s_start = midnights[sk] + (18 * 3600 + rng.uniform(0, 3 * 3600, ns)) * 1e6
    s_start = s_start.astype(np.int64)
    s_end = s_start + (reps * 4.0e6 + 30e6).astype(np.int64)
    phase_s = phase_of_day[sk]
    exercise = [
        PHASE_EXERCISES[int(ph)][int(k) % len(PHASE_EXERCISES[int(ph)])]
        for ph, k in zip(phase_s, rng.integers(0, 12, ns), strict=True)
    ]
    session_ids = [f"{pids[pi[k]]}/sim-{local_date[int(di[k])].isoformat()}-emg" for k in sk]
    exercise_sessions = pl.DataFrame(
        {
            "session_id": session_ids,
            "participant_id": pl.Series(pids).gather(pi[sk]),
            "local_date": local_date.gather(di[sk]),
            "start_time": _utc(s_start),
            "end_time": _utc(s_end),
            "exercise": exercise,
            "phase": phase_s.astype(np.int8),
            "repetitions": reps.astype(np.int32),
            "glute_fired_share": np.clip(0.45 + 0.55 * prog_s + rng.normal(0, 0.05, ns), 0, 1),
            "firing_order_ms": 60.0 - 110.0 * prog_s + rng.normal(0, 15.0, ns),
            "glute_hamstring_ratio": 0.7 + 0.9 * prog_s + rng.normal(0, 0.1, ns),
            "coactivation": np.clip(0.6 - 0.3 * prog_s + rng.normal(0, 0.05, ns), 0, 1),
            "peak_cv": np.clip(0.4 - 0.25 * prog_s + rng.normal(0, 0.03, ns), 0.02, None),
            "symmetry": np.full(ns, np.nan),
            "glute_peak_pct_mvc": 20.0 + 40.0 * prog_s + rng.normal(0, 4.0, ns),
            "activation_quality": quality,
            "glutewake_version": __version__,
            "params": param_text,
        }
    ).with_columns(pl.col("symmetry").fill_nan(None))

    keep = ns if p.contractions else 0
    contractions = _contractions(rng, exercise_sessions.head(keep), reps[:keep], s_start[:keep])

    # --- symptoms on ~70 % of days, easing with activation progress
    logged = rng.random(n * days) < 0.7
    lk = np.flatnonzero(logged)
    pain = np.clip(
        np.round(
            pain0[pi[lk]] * (1.0 - 0.6 * progress[lk])[:, None] + rng.normal(0, 0.7, (lk.size, 3))
        ),
        0,
        10,
    ).astype(np.int8)
    symptoms = pl.DataFrame(
        {
            "participant_id": pl.Series(pids).gather(pi[lk]),
            "local_date": local_date.gather(di[lk]),
            "lower_back_pain": pain[:, 0],
            "hip_pain": pain[:, 1],
            "knee_pain": pain[:, 2],
            "note": pl.Series([None] * lk.size, dtype=pl.Utf8),
            "logged_at": [now] * lk.size,
        }
    )
    return CohortTables(
        participants=participants,
        phases=phases,
        symptoms=symptoms,
        daily_sitting=daily_sitting,
        sitting_bouts=sitting_bouts,
        exercise_sessions=exercise_sessions,
        contractions=contractions,
    )


def _contractions(
    rng: np.random.Generator, sessions: pl.DataFrame, reps: np.ndarray, start_us: np.ndarray
) -> pl.DataFrame:
    """Two channels (glute max, hamstring) per repetition, 4 s apart."""
    ns = sessions.height
    sess = np.repeat(np.arange(ns), reps)
    rep = (np.arange(sess.size) - np.repeat(np.cumsum(reps) - reps, reps)).astype(np.int32) + 1
    fired_p = sessions["glute_fired_share"].to_numpy()[sess] if ns else np.zeros(0)
    pct = sessions["glute_peak_pct_mvc"].to_numpy()[sess] if ns else np.zeros(0)
    order_ms = sessions["firing_order_ms"].to_numpy()[sess] if ns else np.zeros(0)
    onset_ham = start_us[sess] + 15_000_000 + (rep - 1).astype(np.int64) * 4_000_000
    glute_fired = rng.random(sess.size) < fired_p
    g = np.flatnonzero(glute_fired)
    onset_glute = onset_ham[g] + (order_ms[g] * 1000).astype(np.int64)
    g_pct = np.clip(pct[g] * rng.normal(1.0, 0.12, g.size), 1.0, None)
    h_pct = np.clip(rng.normal(30.0, 6.0, sess.size), 1.0, None)
    ids = sessions["session_id"]
    pids = sessions["participant_id"]

    def frame(
        idx: np.ndarray, channel: str, muscle: str, onset: np.ndarray, pct_mvc: np.ndarray
    ) -> pl.DataFrame:
        dur_ms = rng.uniform(900.0, 1600.0, idx.size)
        return pl.DataFrame(
            {
                "session_id": ids.gather(sess[idx]),
                "participant_id": pids.gather(sess[idx]),
                "channel": channel,
                "muscle": muscle,
                "side": "right",
                "onset_time": _utc(onset),
                "offset_time": _utc(onset + (dur_ms * 1000).astype(np.int64)),
                "duration_ms": dur_ms,
                "time_to_peak_ms": dur_ms * 0.4,
                "peak_uv": pct_mvc * 4.0,
                "mean_uv": pct_mvc * 2.2,
                "peak_pct_mvc": pct_mvc,
                "confidence": np.full(idx.size, 0.9),
                "repetition": rep[idx],
            }
        )

    return pl.concat(
        [
            frame(g, "ch1", "glute_max", onset_glute, g_pct),
            frame(np.arange(sess.size), "ch2", "hamstring", onset_ham, h_pct),
        ]
    )


def load_cohort(con: duckdb.DuckDBPyConnection, tables: CohortTables) -> None:
    """Insert the rows on an open read-write catalog connection, one bulk insert per table."""
    for name, frame in tables.items():
        if frame.height == 0:
            continue
        cols = ", ".join(frame.columns)
        con.register("cohort_rows", frame)
        try:
            con.execute(f"INSERT INTO {name} ({cols}) SELECT {cols} FROM cohort_rows")
        finally:
            con.unregister("cohort_rows")


def build_cohort(data_dir: DataDir, params: CohortParams | None = None) -> CohortTables:
    """Simulate a cohort and load it into ``data_dir``'s catalog (created if needed)."""
    from glutewake.store.bookkeeping import write

    tables = simulate_cohort(params)
    write(data_dir, _load_in_transaction, tables)
    return tables


def _load_in_transaction(con: duckdb.DuckDBPyConnection, tables: CohortTables) -> None:
    con.execute("BEGIN TRANSACTION")
    try:
        load_cohort(con, tables)
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise
