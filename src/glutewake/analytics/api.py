"""Researchers' Python access to the catalog: polars DataFrames per participant or cohort.

Every function takes a *source* - a :class:`~glutewake.store.datadir.DataDir`, a data directory
path, or an open DuckDB connection to the catalog - and optional filters: ``participant`` (one id, a
list of ids, or ``None`` for the whole cohort) and an inclusive local-date range
``start``/``end``. Given a path or data directory, the catalog is opened read-only for the call
(with the bounded retry of :func:`~glutewake.store.catalog.open_read`); given a connection,
it is used as it is, which is what a notebook running many queries wants.

>>> from glutewake.analytics import api
>>> api.daily_summary("study-data", participant="P01",
...                   start=dt.date(2026, 3, 1), end=dt.date(2026, 3, 31))  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from glutewake.store.catalog import open_read, query_frame
from glutewake.store.datadir import DataDir
from glutewake.store.ids import InvalidIdError, check_participant_id
from glutewake.store.user_query import QueryRefusedError, run_read_query

if TYPE_CHECKING:
    from typing import TypeAlias

    import duckdb
    import polars as pl

    Source: TypeAlias = DataDir | str | os.PathLike[str] | duckdb.DuckDBPyConnection

__all__ = [
    "RELATIONS",
    "ApiError",
    "Participants",
    "QueryRefusedError",
    "Relation",
    "UnknownParticipantError",
    "baseline_sitting",
    "connection",
    "contractions",
    "daily_qc",
    "daily_summary",
    "exercise_sessions",
    "filtered",
    "participant_ids",
    "participants",
    "phase_progress",
    "phases",
    "read",
    "sitting_bouts",
    "sql",
    "weekly_progress",
]

Participants = str | Sequence[str] | None


class ApiError(ValueError):
    """Invalid query arguments (names the argument and what was expected)."""


class UnknownParticipantError(ApiError, KeyError):
    """A participant id that is not in the catalog."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


@contextlib.contextmanager
def connection(source: Source) -> Iterator[duckdb.DuckDBPyConnection]:
    """Yield a read-only connection for ``source`` (an open connection is passed through).

    A connection opened here is confined as :func:`~glutewake.store.catalog.open_read`
    describes (the catalog and the data directory's sample and reference files, nothing else);
    run SQL from others through :func:`sql`, which also refuses statements that write.
    """
    if isinstance(source, DataDir):
        with open_read(source) as con:
            yield con
    elif isinstance(source, str | os.PathLike):
        with open_read(DataDir.resolve(source)) as con:
            yield con
    elif hasattr(source, "execute") and hasattr(source, "sql"):
        yield source
    else:  # callers may pass anything at run time
        raise ApiError(
            f"source must be a DataDir, a data directory path or a DuckDB connection, "
            f"not {type(source).__name__}"
        )


def participant_ids(participant: Participants) -> list[str] | None:
    """``participant`` as a list of ids (``None`` = the cohort); raises :class:`ApiError`."""
    if participant is None:
        return None
    ids = [participant] if isinstance(participant, str) else list(participant)
    if not ids or not all(isinstance(p, str) and p for p in ids):
        raise ApiError(f"participant must be a non-empty id or list of ids, not {participant!r}")
    for pid in ids:
        try:
            check_participant_id(pid)
        except InvalidIdError as exc:
            raise ApiError(str(exc)) from None
    return ids


def _check_range(start: dt.date | None, end: dt.date | None) -> None:
    for name, value in (("start", start), ("end", end)):
        if value is not None and not isinstance(value, dt.date):
            raise ApiError(f"{name} must be a datetime.date, not {type(value).__name__}")
    if start is not None and end is not None and end < start:
        raise ApiError(f"end {end} is before start {start}")


def _require(con: duckdb.DuckDBPyConnection, ids: list[str] | None) -> None:
    if ids is None:
        return
    known = {
        str(r[0])
        for r in con.execute(
            "SELECT participant_id FROM participants WHERE participant_id IN (SELECT unnest(?))",
            [ids],
        ).fetchall()
    }
    missing = [p for p in ids if p not in known]
    if missing:
        raise UnknownParticipantError(f"participant(s) not in the catalog: {', '.join(missing)}")


def _where(
    ids: list[str] | None,
    start: dt.date | None,
    end: dt.date | None,
    *,
    pid_col: str,
    date_col: str | None,
) -> tuple[str, list[object]]:
    clauses: list[str] = []
    params: list[object] = []
    if ids is not None:
        if len(ids) == 1:  # an equality keeps the filter pushed down into the scans
            clauses.append(f"{pid_col} = ?")
            params.append(ids[0])
        else:
            clauses.append(f"{pid_col} IN (SELECT unnest(?))")
            params.append(ids)
    if date_col is not None and start is not None:
        clauses.append(f"{date_col} >= ?")
        params.append(start)
    if date_col is not None and end is not None:
        clauses.append(f"{date_col} <= ?")
        params.append(end)
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", params


def filtered(
    source: Source,
    sql: str,
    participant: Participants,
    start: dt.date | None,
    end: dt.date | None,
    *,
    pid_col: str = "participant_id",
    date_col: str | None = "local_date",
    order: str = "participant_id, local_date",
) -> pl.DataFrame:
    """Run ``sql`` (a SELECT of a trusted relation) filtered by participant and date range."""
    ids = participant_ids(participant)
    _check_range(start, end)
    where, params = _where(ids, start, end, pid_col=pid_col, date_col=date_col)
    with connection(source) as con:
        _require(con, ids)
        return query_frame(con, f"{sql}{where} ORDER BY {order}", params)


def sql(source: Source, query: str, params: list[object] | None = None) -> pl.DataFrame:
    """Run a read-only SQL query on the catalog (and the sample and reference Parquet files).

    The same as ``glutewake sql``: only queries run (``SELECT``, ``WITH``, ``SHOW``,
    ``DESCRIBE``, ``SUMMARIZE``, ``EXPLAIN``); ``COPY``, ``EXPORT``, ``ATTACH``, ``INSTALL``,
    ``SET`` and every statement that writes are refused before anything runs, and Ctrl-C
    (a notebook's interrupt) stops a running query.

    Parameters
    ----------
    source : DataDir, path or duckdb connection
        Where the catalog is.
    query : str
        SQL text; ``?`` or ``$1`` placeholders take ``params``.
    params : list, optional
        Values for the placeholders.

    Returns
    -------
    polars.DataFrame
        The result of the last statement.

    Raises
    ------
    QueryRefusedError
        For a statement that would do more than read.
    duckdb.Error
        If the query fails (unknown table, a file outside the allowed trees, ...).

    Examples
    --------
    >>> sql("study-data", "SELECT count(*) FROM daily_summary WHERE valid_day")  # doctest: +SKIP
    """
    if not isinstance(query, str):
        raise ApiError(f"query must be SQL text, not {type(query).__name__}")
    with connection(source) as con:
        return run_read_query(con, query, params)


@dataclass(frozen=True)
class Relation:
    """One queryable relation of the catalog: how to select it, filter it and sort it."""

    sql: str
    #: the local-date column ``start``/``end`` filter on (None: the relation is not dated)
    date_col: str | None = "local_date"
    order: str = "participant_id, local_date"


#: name -> relation; every reader of this module is :func:`read` over one of these
RELATIONS: dict[str, Relation] = {
    "daily_summary": Relation("SELECT * FROM daily_summary"),
    "daily_qc": Relation("SELECT * FROM daily_qc"),
    "sitting_bouts": Relation(
        "SELECT * FROM (SELECT b.participant_id, b.local_date, b.start_time, b.end_time, "
        "timezone(p.tz, b.start_time) AS start_local, timezone(p.tz, b.end_time) AS end_local, "
        "b.duration_min, b.sitting_min, b.short_stands, b.ends_in_break, b.glutewake_version, "
        "b.params FROM sitting_bouts b "
        "JOIN participants p USING (participant_id))",
        order="participant_id, local_date, start_time",
    ),
    "exercise_sessions": Relation(
        "SELECT * FROM exercise_sessions", order="participant_id, local_date, start_time"
    ),
    "contractions": Relation(
        "SELECT * FROM (SELECT c.*, s.local_date, s.exercise, s.phase FROM contractions c "
        "JOIN exercise_sessions s ON s.session_id = c.session_id)",
        order="participant_id, local_date, session_id, onset_time",
    ),
    "weekly_progress": Relation(
        "SELECT * FROM weekly_progress", date_col="week_start", order="participant_id, week_start"
    ),
    "phase_progress": Relation(
        "SELECT * FROM phase_progress", date_col="start_date", order="participant_id, start_date"
    ),
    "baseline_sitting": Relation(
        "SELECT * FROM baseline_sitting", date_col=None, order="participant_id"
    ),
    "phases": Relation("SELECT * FROM phases", date_col=None, order="participant_id, start_date"),
    "participants": Relation("SELECT * FROM participants", date_col=None, order="participant_id"),
}


def read(
    source: Source,
    name: str,
    participant: Participants = None,
    start: dt.date | None = None,
    end: dt.date | None = None,
) -> pl.DataFrame:
    """One relation of :data:`RELATIONS`, filtered by participant and local-date range.

    Parameters
    ----------
    source : DataDir, path or duckdb connection
        Where the catalog is.
    name : str
        A key of :data:`RELATIONS` (``daily_summary``, ``sitting_bouts``, ...).
    participant : str or list of str, optional
        One participant, several, or ``None`` for the cohort.
    start, end : datetime.date, optional
        Inclusive range of local dates (weeks by their Monday, phase periods by their start);
        refused for relations that are not dated.

    Returns
    -------
    polars.DataFrame
        The relation's columns (see ``docs/schema.md``), sorted by participant and time.

    Raises
    ------
    UnknownParticipantError
        For a participant id that is not in the catalog.
    ApiError
        For an unknown relation, an ``end`` before ``start`` or arguments of the wrong type.

    Examples
    --------
    >>> read("study-data", "sitting_bouts", "P01", start=dt.date(2026, 3, 1))  # doctest: +SKIP
    """
    relation = RELATIONS.get(name)
    if relation is None:
        raise ApiError(f"unknown relation {name!r}; expected one of {', '.join(RELATIONS)}")
    if relation.date_col is None and (start is not None or end is not None):
        raise ApiError(f"{name} has no dates: start/end do not apply")
    return filtered(
        source,
        relation.sql,
        participant,
        start,
        end,
        date_col=relation.date_col,
        order=relation.order,
    )


class _Reader(Protocol):
    def __call__(
        self,
        source: Source,
        participant: Participants = None,
        start: dt.date | None = None,
        end: dt.date | None = None,
    ) -> pl.DataFrame: ...


class _UndatedReader(Protocol):
    def __call__(self, source: Source, participant: Participants = None) -> pl.DataFrame: ...


def _reader(name: str, doc: str) -> _Reader:
    def reader(
        source: Source,
        participant: Participants = None,
        start: dt.date | None = None,
        end: dt.date | None = None,
    ) -> pl.DataFrame:
        return read(source, name, participant, start, end)

    reader.__name__ = reader.__qualname__ = name
    reader.__doc__ = f"{doc}\n\n:func:`read` of ``{name}``: same arguments, results and errors."
    return reader


def _undated_reader(name: str, doc: str) -> _UndatedReader:
    def reader(source: Source, participant: Participants = None) -> pl.DataFrame:
        return read(source, name, participant)

    reader.__name__ = reader.__qualname__ = name
    reader.__doc__ = f"{doc}\n\n:func:`read` of ``{name}`` (not dated)."
    return reader


daily_summary = _reader(
    "daily_summary", "The ``daily_summary`` view: one row per participant and local day."
)
daily_qc = _reader("daily_qc", "The ``daily_qc`` view (wear time, data gaps, battery) per day.")
sitting_bouts = _reader(
    "sitting_bouts", "Sitting bouts with local start and end (``start_local``, ``end_local``)."
)
exercise_sessions = _reader("exercise_sessions", "Exercise sessions with activation measures.")
contractions = _reader(
    "contractions", "Contractions with their session's ``local_date``, ``exercise`` and ``phase``."
)
weekly_progress = _reader(
    "weekly_progress", "The ``weekly_progress`` view; ``start``/``end`` select weeks by Monday."
)
phase_progress = _reader(
    "phase_progress", "The ``phase_progress`` view; ``start``/``end`` select by period start."
)
baseline_sitting = _undated_reader(
    "baseline_sitting", "The ``baseline_sitting`` view: baseline week means and goals."
)
phases = _undated_reader("phases", "Phase history (``participant_id, phase, start_date, note``).")
participants = _undated_reader(
    "participants", "Participants with their time zone, baseline week and goals."
)
