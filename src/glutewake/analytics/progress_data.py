"""What the progression analytics read: one participant or a cohort, from the catalog.

Reads the ``weekly_progress``, ``phase_progress``, ``daily_summary`` and ``baseline_sitting``
views and the ``exercise_sessions`` table (read-only, through :mod:`glutewake.analytics.api`);
for one participant also the last seven days' sitting bouts and contractions, for the week's
next steps.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import polars as pl

from glutewake.analytics import api

if TYPE_CHECKING:
    from glutewake.store.datadir import DataDir

__all__ = ["WEEK_DAYS", "ProgressData", "load_progress"]

#: the "week" of the progress report's next steps: the last this many days with data
WEEK_DAYS = 7


@dataclass(frozen=True)
class ProgressData:
    """What progression reports read: one participant, or a cohort (``participant is None``).

    ``week_bouts`` and ``week_contractions`` cover the last :data:`WEEK_DAYS` days up to the
    last day with data (one participant only; empty for a cohort).
    """

    participant: str | None
    participants: pl.DataFrame
    weekly: pl.DataFrame
    phases: pl.DataFrame
    phase_progress: pl.DataFrame
    daily: pl.DataFrame
    sessions: pl.DataFrame
    baseline: pl.DataFrame
    week_bouts: pl.DataFrame = field(default_factory=pl.DataFrame)
    week_contractions: pl.DataFrame = field(default_factory=pl.DataFrame)

    def last_day(self, participant: str) -> dt.date | None:
        """The participant's last day with data in the period."""
        days = self.daily.filter(pl.col("participant_id") == participant)["local_date"]
        last = days.max() if days.len() else None
        return last if isinstance(last, dt.date) else None


def load_progress(
    data_dir: DataDir,
    participant: str | None = None,
    start: dt.date | None = None,
    end: dt.date | None = None,
) -> ProgressData:
    """Read progression data for one participant (or the cohort) from the catalog.

    Raises
    ------
    glutewake.analytics.api.UnknownParticipantError
        For a participant id that is not in the catalog.
    """
    with api.connection(data_dir) as con:
        data = ProgressData(
            participant=participant,
            participants=api.participants(con, participant),
            weekly=api.weekly_progress(con, participant, start, end),
            # phases that start after the period do not exist yet for it
            phases=api.phases(con, participant).filter(
                pl.lit(end is None) | (pl.col("start_date") <= pl.lit(end, dtype=pl.Date))
            ),
            phase_progress=api.phase_progress(con, participant, None, end),
            daily=api.daily_summary(con, participant, start, end),
            sessions=api.exercise_sessions(con, participant, start, end),
            baseline=api.baseline_sitting(con, participant),
        )
        last = data.last_day(participant) if participant is not None else None
        if last is None:
            return data
        first = last - dt.timedelta(days=WEEK_DAYS - 1)
        return dataclasses.replace(
            data,
            week_bouts=api.sitting_bouts(con, participant, first, last),
            week_contractions=api.contractions(con, participant, first, last),
        )
