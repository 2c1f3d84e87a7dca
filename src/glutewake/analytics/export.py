"""Exports of catalog tables and views to Parquet or CSV, with a manifest (``glutewake export``).

Each table becomes one file ``<out>/<table>.<parquet|csv>``, written to a temporary name and
renamed into place, so a crash never leaves a half-written file under the final name. A
``manifest.json`` beside them records what was exported: the glutewake and schema versions, the
filters, and each file's row count, so an analysis can cite exactly what it read.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from glutewake import __version__
from glutewake.analytics import api
from glutewake.store.private import private_dir, private_tmp, write_private_text

if TYPE_CHECKING:
    import duckdb
    import polars as pl

    from glutewake.store.datadir import DataDir

__all__ = ["DEFAULT_TABLES", "EXPORTABLE", "ExportError", "export_tables"]

ExportFormat = Literal["parquet", "csv"]

#: tables and views that can be exported, with the column the date range filters on
EXPORTABLE: dict[str, str | None] = {
    "participants": None,
    "devices": None,
    "phases": "start_date",
    "symptoms": "local_date",
    "recordings": None,
    "daily_sitting": "local_date",
    "sitting_bouts": "local_date",
    "posture_periods": "local_date",
    "mvc_references": "local_date",
    "exercise_sessions": "local_date",
    "contractions": "local_date",
    "qc": None,
    "daily_summary": "local_date",
    "daily_qc": "local_date",
    "weekly_progress": "week_start",
    "phase_progress": "start_date",
}
#: what ``glutewake export`` writes without ``--table``
DEFAULT_TABLES: tuple[str, ...] = (
    "participants",
    "phases",
    "symptoms",
    "daily_summary",
    "daily_qc",
    "sitting_bouts",
    "exercise_sessions",
    "contractions",
    "weekly_progress",
    "phase_progress",
)


class ExportError(ValueError):
    """Invalid export request (names the table, format or folder)."""


def _frame(
    con: duckdb.DuckDBPyConnection,
    table: str,
    participant: api.Participants,
    start: dt.date | None,
    end: dt.date | None,
) -> pl.DataFrame:
    date_col = EXPORTABLE[table]
    if table == "contractions":
        return api.contractions(con, participant, start, end)
    if table == "sitting_bouts":
        return api.sitting_bouts(con, participant, start, end)
    ranged = date_col is not None
    sql = f"SELECT * FROM {table}"
    order = "participant_id" + (f", {date_col}" if ranged else "")
    return api.filtered(
        con,
        sql,
        participant,
        start if ranged else None,
        end if ranged else None,
        date_col=date_col,
        order=order,
    )


def _write_atomic(frame: pl.DataFrame, path: Path, fmt: ExportFormat) -> None:
    with private_tmp(path) as tmp:  # owner-only, fsynced, renamed into place
        if fmt == "parquet":
            frame.write_parquet(tmp, compression="zstd")
        else:
            frame.write_csv(tmp)


def export_tables(
    data_dir: DataDir,
    out_dir: Path,
    *,
    tables: Sequence[str] | None = None,
    fmt: ExportFormat = "parquet",
    participant: api.Participants = None,
    start: dt.date | None = None,
    end: dt.date | None = None,
) -> list[Path]:
    """Export catalog tables/views to ``out_dir`` as Parquet or CSV; return the files written.

    Parameters
    ----------
    data_dir : DataDir
        The data directory whose catalog is read (read-only).
    out_dir : pathlib.Path
        Folder for the files (created if needed).
    tables : sequence of str, optional
        Names from :data:`EXPORTABLE` (default :data:`DEFAULT_TABLES`).
    fmt : {"parquet", "csv"}
        File format. CSV timestamps are ISO 8601 with their UTC offset.
    participant : str or list of str, optional
        Restrict to these participants (default: the whole cohort).
    start, end : datetime.date, optional
        Inclusive local-date range, applied to tables that have a date column (see
        :data:`EXPORTABLE`); tables without one are exported whole.

    Returns
    -------
    list of pathlib.Path
        The data files written, then ``manifest.json``.

    Raises
    ------
    ExportError
        For an unknown table or format, or an ``out_dir`` that is a file.
    """
    if fmt not in ("parquet", "csv"):
        raise ExportError(f"format must be 'parquet' or 'csv', not {fmt!r}")
    names = list(tables) if tables else list(DEFAULT_TABLES)
    unknown = [t for t in names if t not in EXPORTABLE]
    if unknown:
        raise ExportError(
            f"cannot export {', '.join(unknown)}: choose from {', '.join(EXPORTABLE)}"
        )
    if out_dir.exists() and not out_dir.is_dir():
        raise ExportError(f"{out_dir} exists and is not a folder")
    api.participant_ids(participant)  # an invalid id fails before anything is written
    private_dir(out_dir)
    written: list[Path] = []
    counts: dict[str, int] = {}
    with api.connection(data_dir) as con:
        rows = con.execute("SELECT max(version) FROM schema_version").fetchall()
        schema_version = int(rows[0][0]) if rows and rows[0][0] is not None else None
        for table in names:
            frame = _frame(con, table, participant, start, end)
            path = out_dir / f"{table}.{fmt}"
            _write_atomic(frame, path, fmt)
            written.append(path)
            counts[table] = frame.height
    manifest = {
        "glutewake_version": __version__,
        "schema_version": schema_version,
        "exported_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "format": fmt,
        "participants": api.participant_ids(participant),
        "start": start.isoformat() if start else None,
        "end": end.isoformat() if end else None,
        "rows": counts,
        "date_filter_column": {t: EXPORTABLE[t] for t in names},
    }
    text = json.dumps(manifest, indent=2) + "\n"
    manifest_path = write_private_text(out_dir / "manifest.json", text)
    written.append(manifest_path)
    return written
