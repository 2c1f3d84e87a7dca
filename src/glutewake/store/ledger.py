"""The bookkeeping ledger: what people typed, also kept outside the catalog.

Participants, devices, phases, symptoms, goals and the record of imported files exist nowhere
but in the catalog unless they are written down elsewhere too. Every change the bookkeeping
functions make is therefore also appended to ``DATA/bookkeeping.jsonl``: one JSON object per
line (``op``, the values exactly as written, with their timestamps), appended, fsynced, readable
by the owner only. ``glutewake rebuild`` replays it into a fresh catalog and re-derives everything
else from the spool and the sample files.

An entry is written once its change is committed: at once for a statement in autocommit mode,
at ``COMMIT`` for one inside :func:`transaction` (a rolled-back transaction leaves no entry), so
the ledger never claims more than the catalog holds.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import duckdb

log = logging.getLogger(__name__)
log.addHandler(logging.NullHandler())

LEDGER_NAME = "bookkeeping.jsonl"
FORMAT_VERSION = 1

#: entries waiting for their transaction's COMMIT, by connection
_pending: dict[int, list[bytes]] = {}


class LedgerError(RuntimeError):
    """The ledger cannot be read (names the file, the line and what was wrong)."""


def ledger_path(con: duckdb.DuckDBPyConnection) -> Path | None:
    """The ledger beside the catalog file ``con`` is connected to (None: an in-memory one)."""
    row = con.execute(
        "SELECT path FROM duckdb_databases() WHERE database_name = current_database()"
    ).fetchone()
    if row is None or not row[0]:
        return None
    return Path(str(row[0])).parent / LEDGER_NAME


def _jsonable(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    return value


def encode(op: str, row: dict[str, Any]) -> bytes:
    """One ledger line.

    >>> encode("phase", {"participant_id": "P01", "start_date": dt.date(2026, 3, 1)})
    b'{"op":"phase","row":{"participant_id":"P01","start_date":"2026-03-01"},"v":1}\\n'
    """
    entry = {"op": op, "row": _jsonable(row), "v": FORMAT_VERSION}
    return json.dumps(entry, sort_keys=True, separators=(",", ":")).encode() + b"\n"


def append(con: duckdb.DuckDBPyConnection, op: str, row: dict[str, Any]) -> None:
    """Record a committed (or, inside :func:`transaction`, about to be committed) change."""
    line = encode(op, row)
    if id(con) in _pending:
        _pending[id(con)].append(line)
        return
    path = ledger_path(con)
    if path is not None:
        write_lines(path, [line])


def write_lines(path: Path, lines: list[bytes]) -> None:
    """Append lines to the ledger and fsync it (created owner-only)."""
    if not lines:
        return
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        os.write(fd, b"".join(lines))
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """Hold the ledger entries of ``con`` until the block ends without an error.

    The block runs ``BEGIN`` ... ``COMMIT`` itself; the entries are written after it (a crash
    between the two loses the entries of that one transaction, never adds ones it rolled back).
    """
    key = id(con)
    if key in _pending:  # nested: the outer block writes them
        yield
        return
    _pending[key] = []
    try:
        yield
    except BaseException:
        _pending.pop(key, None)
        raise
    lines = _pending.pop(key)
    path = ledger_path(con)
    if path is not None:
        write_lines(path, lines)


def read_entries(path: Path) -> list[tuple[str, dict[str, Any]]]:
    """``(op, row)`` of every ledger line, in order.

    A last line cut short (a crash while it was written) is skipped with a warning; any other
    unreadable line is a :class:`LedgerError` naming it.
    """
    lines = path.read_bytes().split(b"\n")
    out = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
            out.append((str(entry["op"]), dict(entry["row"])))
        except (ValueError, KeyError, TypeError) as exc:
            if number >= len(lines) - 1:  # the last line, written when the crash came
                log.warning("%s: line %d is cut short; skipped", path, number)
                continue
            raise LedgerError(f"{path}: line {number} is not a ledger entry ({exc})") from exc
    return out
