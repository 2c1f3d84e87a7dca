"""What the process tasks compute and hand back: rows for the catalog, counts, small helpers.

Every task of :mod:`glutewake.pipeline` returns a :class:`Rows`; the coordinator merges them
(:func:`merge_rows`) and :mod:`glutewake.pipeline.write` writes them in one transaction.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import polars as pl

from glutewake.pipeline.parallel import TaskFailure


class ProcessError(RuntimeError):
    """The process job cannot go on (names what is wrong)."""


ProgressHook = Callable[[str, int], Callable[[int], None]]


def no_progress(description: str, total: int) -> Callable[[int], None]:
    return lambda n: None


@dataclass
class ProcessSummary:
    """What one ``process`` run did."""

    spool_files: int = 0
    recordings: int = 0
    samples: int = 0
    decode_errors: int = 0
    participant_days: int = 0
    exercise_sessions: int = 0
    contractions: int = 0
    warnings: list[str] = field(default_factory=list)
    #: tasks that raised on every attempt: (task, key, error); kept in ``task_failures``
    failures: list[tuple[str, str, str]] = field(default_factory=list)
    #: earlier failures retried in this run
    retried: int = 0
    #: damaged spool parts now in ``spool_damage`` (set when the table changed in this run)
    damaged_parts: int | None = None


@dataclass
class Recording:
    recording_id: str
    participant_id: str
    device_id: str
    profile: str
    stream: str
    conn_id: int
    start_us: int
    end_us: int
    n_samples: int
    fs_hz: float
    channels: tuple[str, ...]
    unit: str
    exercise: str | None
    qc: dict[str, Any]


@dataclass
class Rows:
    """Rows computed in this run, written in one short transaction."""

    spool_files: list[dict[str, Any]] = field(default_factory=list)
    recordings: list[Recording] = field(default_factory=list)
    qc: list[dict[str, Any]] = field(default_factory=list)
    packet_errors: list[dict[str, Any]] = field(default_factory=list)
    devices: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    #: participant-days whose posture (``posture_periods``, QC) was derived in this run
    days: dict[str, set[dt.date]] = field(default_factory=dict)
    #: participant-days whose daily measures and bouts are replaced (``days`` and the
    #: neighbouring days their bouts reach)
    sitting_days: dict[str, set[dt.date]] = field(default_factory=dict)
    #: posture runs of each (participant, device, local day) derived in this run
    posture_runs: dict[tuple[str, str, dt.date], pl.DataFrame] = field(default_factory=dict)
    daily: list[pl.DataFrame] = field(default_factory=list)
    bouts: list[pl.DataFrame] = field(default_factory=list)
    periods: list[pl.DataFrame] = field(default_factory=list)
    mvc: list[dict[str, Any]] = field(default_factory=list)
    sessions: list[dict[str, Any]] = field(default_factory=list)
    contractions: list[dict[str, Any]] = field(default_factory=list)
    failures: list[dict[str, Any]] = field(default_factory=list)
    attempted: set[tuple[str, str]] = field(default_factory=set)
    #: connections decoded in this run (``participant/device-cN``): their connection-level QC
    #: rows (disconnect, battery) are replaced
    connections: set[str] = field(default_factory=set)
    #: EMG recordings derived again from the store (not decoded in this run): their earlier
    #: sessions, contractions and EMG QC rows are replaced
    rederived_emg: set[str] = field(default_factory=set)
    #: devices whose pending re-derivation (changed placement or roles) this run did
    rederived_devices: set[tuple[str, str]] = field(default_factory=set)


def us_to_dt(t_us: int) -> dt.datetime:
    return dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(microseconds=int(t_us))


def local_date(t_us: int, tz: str) -> dt.date:
    return us_to_dt(t_us).astimezone(ZoneInfo(tz)).date()


def day_bounds_us(day: dt.date, tz: str) -> tuple[int, int]:
    zone = ZoneInfo(tz)
    start = dt.datetime.combine(day, dt.time(), tzinfo=zone)
    end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), tzinfo=zone)
    epoch = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    return (start - epoch) // dt.timedelta(microseconds=1), (end - epoch) // dt.timedelta(
        microseconds=1
    )


def json_default(obj: Any) -> Any:
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, dt.date | dt.datetime):
        return obj.isoformat()
    return str(obj)


def record_failure(
    rows: Rows,
    summary: ProcessSummary,
    task: str,
    failure: TaskFailure,
    participant_id: str | None,
    args: dict[str, Any],
) -> None:
    rows.failures.append(
        {
            "task": task,
            "task_key": failure.key,
            "participant_id": participant_id,
            "args": json.dumps(args, default=json_default, sort_keys=True),
            "error": failure.error,
            "traceback": failure.traceback,
            "attempts": failure.attempts,
        }
    )
    summary.failures.append((task, failure.key, failure.error))


def merge_rows(into: Rows, part: Rows) -> None:
    for f in dataclasses.fields(Rows):
        mine, theirs = getattr(into, f.name), getattr(part, f.name)
        if isinstance(mine, list):
            mine.extend(theirs)
        elif f.name in ("days", "sitting_days"):
            for pid, days in theirs.items():
                mine.setdefault(pid, set()).update(days)
        else:
            mine.update(theirs)
