"""One participant-day of report data, read from the catalog (read-only).

Times of day are hours elapsed since the local midnight that starts the day (``*_h``
columns), so a 23- or 25-hour DST day has no overlap and no hole; clock times are the
participant's local time.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import polars as pl

from glutewake.store.catalog import open_read, query_frame

if TYPE_CHECKING:
    import duckdb

    from glutewake.store.datadir import DataDir

__all__ = ["DayData", "ReportError", "day_length_h", "load_day", "read_day"]

#: days of history read for the "recent days" chart
RECENT_DAYS = 14


class ReportError(ValueError):
    """The report cannot be made (unknown participant, bad dates or format, ...)."""


@dataclass(frozen=True)
class DayData:
    """What the daily report shows, read from the catalog.

    Times of day are ``*_h`` columns: hours elapsed since the local midnight that starts the
    day (so a 25-hour DST day runs from 0 to 25 without overlap).
    """

    participant: dict[str, Any]
    day: dt.date
    day_hours: float
    summary: dict[str, Any] | None
    qc: dict[str, Any] | None
    baseline: dict[str, Any] | None
    recent: pl.DataFrame
    periods: pl.DataFrame
    bouts: pl.DataFrame
    sessions: pl.DataFrame
    contractions: pl.DataFrame
    gaps: pl.DataFrame
    phase: int | None
    has_emg: bool
    symptoms: dict[str, Any] | None

    @property
    def has_sitting(self) -> bool:
        """The day has thigh-sensor (sitting) figures."""
        return self.summary is not None and bool(self.summary.get("has_sitting_data"))


def _local_midnight_us(day: dt.date, tz: str) -> int:
    start = dt.datetime.combine(day, dt.time(), tzinfo=ZoneInfo(tz))
    return int((start - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)) // dt.timedelta(microseconds=1))


def day_length_h(day: dt.date, tz: str) -> float:
    """Length of the local calendar day in hours (23 or 25 on DST change days)."""
    nxt = day + dt.timedelta(days=1)
    return (_local_midnight_us(nxt, tz) - _local_midnight_us(day, tz)) / 3.6e9


def _row(frame: pl.DataFrame) -> dict[str, Any] | None:
    return frame.row(0, named=True) if frame.height else None


def read_day(con: duckdb.DuckDBPyConnection, participant_id: str, day: dt.date) -> DayData:
    """Read one participant-day from an open read-only catalog connection.

    Raises
    ------
    ReportError
        If the participant is not in the catalog.
    """
    part = query_frame(con, "SELECT * FROM participants WHERE participant_id = ?", [participant_id])
    if part.height == 0:
        raise ReportError(f"participant {participant_id!r} is not in the catalog")
    participant = part.row(0, named=True)
    tz = str(participant["tz"])
    tz_sql = tz.replace("'", "''")  # an IANA name has no quote; never let one end the literal
    t0 = _local_midnight_us(day, tz)
    t1 = _local_midnight_us(day + dt.timedelta(days=1), tz)
    hours = f"(epoch_us({{col}}) - {t0}) / 3.6e9"

    def frame(sql: str, *params: Any) -> pl.DataFrame:
        return query_frame(con, sql, [participant_id, *params])

    summary = _row(
        frame("SELECT * FROM daily_summary WHERE participant_id = ? AND local_date = ?", day)
    )
    qc = _row(frame("SELECT * FROM daily_qc WHERE participant_id = ? AND local_date = ?", day))
    recent = frame(
        "SELECT local_date, sitting_min, valid_day, has_sitting_data, exercise_sessions "
        "FROM daily_summary WHERE participant_id = ? AND local_date BETWEEN ? AND ? "
        "ORDER BY local_date",
        day - dt.timedelta(days=RECENT_DAYS - 1),
        day,
    )
    b = frame(
        "SELECT baseline_days AS days, baseline_sitting_min AS sitting_min, "
        "baseline_bouts_30min AS bouts_30min, baseline_breaks_per_sitting_hour AS "
        "breaks_per_sitting_hour FROM baseline_sitting WHERE participant_id = ?"
    )
    baseline = b.row(0, named=True) if b.height and b["days"][0] else None
    periods = frame(
        f"SELECT {hours.format(col='start_time')} AS start_h, "
        f"{hours.format(col='end_time')} AS end_h, posture FROM posture_periods "
        "WHERE participant_id = ? AND local_date = ? ORDER BY start_time",
        day,
    )
    bouts = frame(
        f"SELECT {hours.format(col='start_time')} AS start_h, "
        f"timezone('{tz_sql}', start_time) AS start_local, "
        f"timezone('{tz_sql}', end_time) AS end_local, duration_min FROM sitting_bouts "
        "WHERE participant_id = ? AND local_date = ? ORDER BY start_time",
        day,
    )
    sessions = frame(
        f"SELECT session_id, timezone('{tz_sql}', start_time) AS start_local, exercise, phase, "
        "repetitions, glute_fired_share, firing_order_ms, glute_hamstring_ratio, peak_cv, "
        "glute_peak_pct_mvc, activation_quality FROM exercise_sessions "
        "WHERE participant_id = ? AND local_date = ? ORDER BY start_time",
        day,
    )
    contractions = frame(
        "SELECT c.session_id, c.channel, c.muscle, c.side, c.repetition, c.onset_time, "
        "c.peak_uv, c.peak_pct_mvc FROM contractions c JOIN exercise_sessions s USING (session_id) "
        "WHERE c.participant_id = ? AND s.local_date = ? ORDER BY c.onset_time",
        day,
    )
    gaps = frame(
        f"SELECT {hours.format(col='start_time')} AS start_h, "
        f"{hours.format(col='end_time')} AS end_h, kind, value FROM qc "
        "WHERE participant_id = ? AND kind LIKE 'gap:%' AND epoch_us(start_time) < ? "
        "AND epoch_us(end_time) > ? ORDER BY start_time",
        t1,
        t0,
    )
    # DuckDB 2 wants every result fetched to the end before the next statement: fetchall
    has_emg = bool(
        con.execute(
            "SELECT EXISTS (SELECT 1 FROM exercise_sessions WHERE participant_id = ?) OR "
            "EXISTS (SELECT 1 FROM recordings WHERE participant_id = ? AND stream = 'emg')",
            [participant_id, participant_id],
        ).fetchall()[0][0]
    )
    sym = _row(frame("SELECT * FROM symptoms WHERE participant_id = ? AND local_date = ?", day))
    phase = summary["phase"] if summary else None
    if phase is None:
        rows = con.execute(
            "SELECT phase FROM phases WHERE participant_id = ? AND start_date <= ? "
            "ORDER BY start_date DESC LIMIT 1",
            [participant_id, day],
        ).fetchall()
        phase = int(rows[0][0]) if rows else None
    return DayData(
        participant=participant,
        day=day,
        day_hours=day_length_h(day, tz),
        summary=summary,
        qc=qc,
        baseline=baseline,
        recent=recent,
        periods=periods,
        bouts=bouts,
        sessions=sessions,
        contractions=contractions,
        gaps=gaps,
        phase=int(phase) if phase is not None else None,
        has_emg=has_emg,
        symptoms=sym,
    )


def load_day(data_dir: DataDir, participant_id: str, day: dt.date) -> DayData:
    """Read one participant-day's report data from the catalog (read-only).

    Raises
    ------
    ReportError
        If the participant is not in the catalog.
    """
    with open_read(data_dir) as con:
        return read_day(con, participant_id, day)
