"""docs/schema.md and the catalog agree: every table and view, every column, in order."""

from __future__ import annotations

import re
from pathlib import Path

from glutewake.store.catalog import SCHEMA_VERSION, open_read, open_write, table_columns
from glutewake.store.datadir import DataDir

DOC = Path(__file__).resolve().parents[2] / "docs" / "schema.md"


def documented_columns() -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    current: str | None = None
    for line in DOC.read_text(encoding="utf-8").splitlines():
        heading = re.match(r"^### (\w+)", line)
        if heading:
            current = heading.group(1)
            out[current] = []
            continue
        cell = re.match(r"^\| (\w+) \|", line)
        if current and cell and cell.group(1) not in ("column",):
            out[current].append(cell.group(1))
    return out


def test_doc_matches_database(tmp_path: Path) -> None:
    data_dir = DataDir(tmp_path)
    with open_write(data_dir):
        pass
    with open_read(data_dir) as con:
        actual = table_columns(con)
    documented = documented_columns()
    assert set(documented) == set(actual), (
        f"undocumented: {sorted(set(actual) - set(documented))}, "
        f"documented but missing: {sorted(set(documented) - set(actual))}"
    )
    for table, columns in actual.items():
        assert documented[table] == columns, f"{table}: doc {documented[table]} != db {columns}"


def test_required_researcher_tables_exist() -> None:
    required = {
        "participants",
        "devices",
        "recordings",
        "phases",
        "symptoms",
        "sitting_bouts",
        "daily_sitting",
        "contractions",
        "exercise_sessions",
        "qc",
        "daily_summary",
    }
    assert required <= set(documented_columns())
    assert SCHEMA_VERSION >= 1
