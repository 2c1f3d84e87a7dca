"""``glutewake rebuild``: a new catalog from what the data folder holds besides it.

The catalog is derived data plus bookkeeping. The bookkeeping is also in the ledger
(``bookkeeping.jsonl``, :mod:`glutewake.store.ledger`), the raw data in the spool, the imported
samples in the sample store, damage in the spool's damage reports. A rebuild:

1. moves the old catalog aside (``catalog.duckdb.before-rebuild-<time>``, never deleted; a
   damaged one may still be useful to someone);
2. replays the ledger into a new catalog: participants, devices, phases, symptoms, the imported
   files and their recordings' rows, in the order they were written;
3. runs ``process --redo``: every spool segment decoded again, every day it touches derived;
4. derives the days and exercise sessions of the imported recordings from their samples.

The result has the same rows as the catalog it replaces, table by table (only the times at which
rows were processed and the schema applied differ); ``tests/test_rebuild.py`` checks that on a
study with collected and imported data.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from glutewake.pipeline.imported import IMPORTED_OP, rows_from_entry
from glutewake.pipeline.parallel import TaskRunner
from glutewake.pipeline.process import process
from glutewake.pipeline.rows import (
    ProcessError,
    ProcessSummary,
    ProgressHook,
    Recording,
    no_progress,
)
from glutewake.pipeline.write import write_rows
from glutewake.store import bookkeeping, catalog
from glutewake.store.datadir import DataDir
from glutewake.store.ledger import LEDGER_NAME, LedgerError, read_entries


@dataclass
class RebuildSummary:
    """What a rebuild did."""

    #: where the catalog it replaced went (None: there was none)
    previous_catalog: Path | None = None
    ledger_entries: int = 0
    imported_recordings: int = 0
    process: ProcessSummary = field(default_factory=ProcessSummary)


def rebuild(
    data_dir: DataDir,
    *,
    progress: ProgressHook = no_progress,
    runner: TaskRunner | None = None,
    workers: int = 1,
) -> RebuildSummary:
    """Recreate the catalog from the ledger, the spool and the sample files.

    Parameters
    ----------
    data_dir : DataDir
        The data directory; its catalog, if any, is moved aside first.
    progress, runner, workers
        As for :func:`glutewake.pipeline.process`.

    Raises
    ------
    ProcessError
        If the data directory does not exist or its ledger cannot be read (nothing is moved).
    """
    if not data_dir.exists():
        raise ProcessError(f"data directory {data_dir.root} does not exist")
    ledger_file = data_dir.root / LEDGER_NAME
    try:
        entries = read_entries(ledger_file) if ledger_file.exists() else []
    except LedgerError as exc:
        raise ProcessError(f"cannot rebuild: {exc}") from exc
    unknown = sorted({op for op, _ in entries} - bookkeeping.OPERATIONS - {IMPORTED_OP})
    if unknown:
        raise ProcessError(f"cannot rebuild: {ledger_file} has unknown operations {unknown}")
    summary = RebuildSummary(previous_catalog=_move_aside(data_dir))
    summary.ledger_entries = len(entries)
    imported: list[Recording] = []
    batch: list[tuple[str, dict[str, Any]]] = []

    def replay_batch() -> None:
        with catalog.open_write(data_dir) as con:
            con.execute("BEGIN TRANSACTION")
            for op, row in batch:
                bookkeeping.replay(con, op, row)
            con.execute("COMMIT")
        batch.clear()

    for op, row in entries:
        if op != IMPORTED_OP:
            batch.append((op, row))
            continue
        replay_batch()  # in ledger order: an import's rows follow the devices it registered
        rows = rows_from_entry(row)
        write_rows(data_dir, rows)
        imported.extend(rows.recordings)
    replay_batch()
    summary.imported_recordings = len(imported)
    if runner is None:
        with TaskRunner(workers=workers) as own:
            return _derive_all(data_dir, summary, imported, progress, own)
    return _derive_all(data_dir, summary, imported, progress, runner)


def _derive_all(
    data_dir: DataDir,
    summary: RebuildSummary,
    imported: list[Recording],
    progress: ProgressHook,
    runner: TaskRunner,
) -> RebuildSummary:
    # a redo derives again every recording in the catalog: the spool's, decoded afresh, and
    # the imported ones the ledger wrote back (those a longer version replaced are gone again)
    summary.process = process(data_dir, progress=progress, redo=True, runner=runner)
    return summary


def _move_aside(data_dir: DataDir) -> Path | None:
    """Rename the catalog (and its write-ahead log) out of the way; return its new path."""
    if not data_dir.catalog.exists():
        return None
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    target = data_dir.catalog.with_name(f"{data_dir.catalog.name}.before-rebuild-{stamp}")
    os.replace(data_dir.catalog, target)
    wal = data_dir.catalog.with_name(data_dir.catalog.name + ".wal")
    if wal.exists():
        os.replace(wal, target.with_name(target.name + ".wal"))
    return target
