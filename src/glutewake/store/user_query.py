"""SQL someone typed: allowed only if it reads, and stoppable with Ctrl-C.

``glutewake sql`` and :func:`glutewake.analytics.api.sql` run their text through
:func:`run_read_query`. Each statement must be a query: ``SELECT`` (with ``WITH``, ``FROM``-first,
``VALUES``, ``SHOW``, ``DESCRIBE``, ``SUMMARIZE``, ``PIVOT`` inside a ``SELECT``) or an
``EXPLAIN [ANALYZE]`` of one. Everything else is refused with one line saying why, before it
runs: ``COPY`` and ``EXPORT`` (write files), ``ATTACH``/``DETACH`` (other databases), ``INSTALL``/
``LOAD`` (extensions, the network), ``SET``/``RESET``/``PRAGMA``/``CALL`` (settings, side
effects), and every statement that changes tables. This is one of two fences: the connection
itself is confined by :func:`glutewake.store.catalog.open_read` (no file outside the sample and
reference trees, no extensions, settings locked, the catalog read-only).
"""

from __future__ import annotations

import re
import threading
from typing import TYPE_CHECKING, Any

from glutewake.store.catalog import CatalogError

if TYPE_CHECKING:
    import duckdb
    import polars as pl

__all__ = ["QueryRefusedError", "check_read_only", "run_read_query"]


class QueryRefusedError(CatalogError):
    """A statement that would do more than read (names it and why it is refused)."""


#: why each kind of statement is refused (by DuckDB statement type name)
_REASONS: dict[str, str] = {
    "COPY": "COPY reads or writes files",
    "COPY_DATABASE": "COPY FROM DATABASE writes a database",
    "EXPORT": "EXPORT DATABASE writes files",
    "ATTACH": "ATTACH opens another database",
    "DETACH": "DETACH changes the attached databases",
    "LOAD": "INSTALL and LOAD fetch or load extensions",
    "EXTENSION": "extension statements are not run",
    "SET": "SET, RESET and USE change settings, which are locked",
    "VARIABLE_SET": "SET VARIABLE changes session state",
    "PRAGMA": "PRAGMA changes settings or runs functions; for table information use "
    "SELECT * FROM pragma_table_info('daily_summary')",
    "CALL": "CALL runs functions for their side effects; use SELECT * FROM the_function(...)",
    "TRANSACTION": "transactions are not needed to read",
    "PREPARE": "PREPARE and EXECUTE are not supported here",
    "EXECUTE": "PREPARE and EXECUTE are not supported here",
    "VACUUM": "VACUUM changes the database",
    "ANALYZE": "ANALYZE changes the database",
    "MULTI": "statements that expand into several (PIVOT ...) are not run; use SELECT ... PIVOT",
}
_CHANGES = "the catalog is read-only here; glutewake process and the bookkeeping commands write it"
_EXPLAIN = re.compile(r"\s*EXPLAIN\s+(?:ANALY[SZ]E\s+|\([^()]*\)\s*)?", re.IGNORECASE)


def _refuse(statement: Any) -> QueryRefusedError:
    kind = str(getattr(statement.type, "name", statement.type))
    first = str(statement.query).strip().split(None, 1)
    word = first[0].upper() if first and first[0].isalpha() else kind
    reason = _REASONS.get(kind, _CHANGES)
    return QueryRefusedError(
        f"refused {word} statement: {reason}; only queries run here (SELECT, WITH, SHOW, "
        "DESCRIBE, SUMMARIZE, EXPLAIN)"
    )


def check_read_only(con: duckdb.DuckDBPyConnection, sql: str) -> None:
    """Raise :class:`QueryRefusedError` unless every statement of ``sql`` only reads.

    Parse errors come through as DuckDB's own ``ParserException``.

    Examples
    --------
    >>> check_read_only(con, "SELECT * FROM daily_summary")  # doctest: +SKIP
    >>> check_read_only(con, "COPY daily_summary TO 'x.csv'")  # doctest: +SKIP
    Traceback (most recent call last):
    ...
    QueryRefusedError: refused COPY statement: COPY reads or writes files; only queries run ...
    """
    import duckdb

    statements = con.extract_statements(sql)
    if not statements:
        raise QueryRefusedError("no statement to run")
    for statement in statements:
        if statement.type == duckdb.StatementType.SELECT:
            continue
        if statement.type == duckdb.StatementType.EXPLAIN:
            # EXPLAIN ANALYZE runs what it explains: the explained statement must read too
            prefix = _EXPLAIN.match(statement.query)
            inner = con.extract_statements(statement.query[prefix.end() :]) if prefix else []
            if len(inner) == 1 and inner[0].type == duckdb.StatementType.SELECT:
                continue
            if len(inner) == 1:
                raise _refuse(inner[0])
            raise QueryRefusedError("refused EXPLAIN: only an EXPLAIN of one query runs here")
        raise _refuse(statement)


def run_read_query(
    con: duckdb.DuckDBPyConnection, sql: str, params: list[object] | None = None
) -> pl.DataFrame:
    """Check ``sql`` with :func:`check_read_only`, run it, return the last result as a frame.

    The query runs on a helper thread while this one waits, so Ctrl-C (``KeyboardInterrupt``)
    arrives at once: it interrupts the query (``con.interrupt()``) and is raised again here.

    Raises
    ------
    QueryRefusedError
        If a statement would do more than read.
    duckdb.Error
        If the query fails (parse error, unknown table, a path outside the allowed trees).
    KeyboardInterrupt
        On Ctrl-C, after the query has been stopped.
    """
    from glutewake.store.catalog import query_frame

    check_read_only(con, sql)
    outcome: dict[str, Any] = {}
    finished = threading.Event()

    def work() -> None:
        try:
            outcome["frame"] = query_frame(con, sql, params)
        except BaseException as exc:  # handed to the waiting thread
            outcome["error"] = exc
        finally:
            finished.set()

    threading.Thread(target=work, name="glutewake-query", daemon=True).start()
    # an Event, not Thread.join: a join interrupted by Ctrl-C marks a running thread as ended
    # (CPython 3.11), and short waits let Windows deliver Ctrl-C between them
    try:
        while not finished.wait(0.2):
            pass
    except KeyboardInterrupt:
        con.interrupt()
        finished.wait(10.0)  # DuckDB stops within milliseconds; the connection closes after
        raise
    if "error" in outcome:
        raise outcome["error"]
    frame: pl.DataFrame = outcome["frame"]
    return frame
