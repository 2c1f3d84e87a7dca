"""Exports to Parquet and CSV: round trip, filters, manifest, clear errors."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import polars as pl
import pytest

from glutewake.analytics import api
from glutewake.analytics.export import DEFAULT_TABLES, ExportError, export_tables
from glutewake.simulate.cohort import CohortParams, build_cohort
from glutewake.store.datadir import DataDir


@pytest.fixture(scope="module")
def cohort(tmp_path_factory: pytest.TempPathFactory) -> DataDir:
    d = DataDir(tmp_path_factory.mktemp("export") / "data")
    build_cohort(d, CohortParams(n_participants=3, days=21, seed=3))
    return d


def test_parquet_round_trip_of_every_default_table(cohort: DataDir, tmp_path: Path) -> None:
    written = export_tables(cohort, tmp_path / "out")
    names = [p.name for p in written]
    assert names == [f"{t}.parquet" for t in DEFAULT_TABLES] + ["manifest.json"]
    back = pl.read_parquet(tmp_path / "out" / "daily_summary.parquet")
    expected = api.daily_summary(cohort)
    assert back.equals(expected)
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["rows"]["daily_summary"] == 3 * 21
    assert manifest["schema_version"] >= 2 and manifest["format"] == "parquet"
    assert not list((tmp_path / "out").glob("*.tmp"))


def test_csv_with_participant_and_date_filters(cohort: DataDir, tmp_path: Path) -> None:
    start, end = dt.date(2026, 1, 10), dt.date(2026, 1, 16)
    written = export_tables(
        cohort, tmp_path / "csv", tables=["daily_summary", "participants", "contractions"],
        fmt="csv", participant="S002", start=start, end=end,
    )
    assert [p.suffix for p in written] == [".csv", ".csv", ".csv", ".json"]
    daily = pl.read_csv(tmp_path / "csv" / "daily_summary.csv", try_parse_dates=True)
    assert daily.height == 7
    assert set(daily["participant_id"]) == {"S002"}
    assert daily["local_date"].min() == start and daily["local_date"].max() == end
    people = pl.read_csv(tmp_path / "csv" / "participants.csv")
    assert people["participant_id"].to_list() == ["S002"]  # no date column: not date-filtered
    con = pl.read_csv(tmp_path / "csv" / "contractions.csv", try_parse_dates=True)
    expected = api.contractions(cohort, "S002", start, end)
    assert con.height == expected.height > 0
    # timestamps keep their UTC offset in CSV, so they read back as the same instants
    text = (tmp_path / "csv" / "contractions.csv").read_text().splitlines()[1]
    assert re.search(r"T\d\d:\d\d:\d\d(\.\d+)?[+-]\d\d:?\d\d,", text)
    assert con["onset_time"].dt.epoch("us").sort().to_list() == (
        expected["onset_time"].dt.epoch("us").sort().to_list())


def test_export_errors(cohort: DataDir, tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="cannot export nonsense"):
        export_tables(cohort, tmp_path / "x", tables=["nonsense"])
    with pytest.raises(ExportError, match="format"):
        export_tables(cohort, tmp_path / "x", fmt="xlsx")  # type: ignore[arg-type]
    a_file = tmp_path / "file"
    a_file.write_text("")
    with pytest.raises(ExportError, match="not a folder"):
        export_tables(cohort, a_file)
    with pytest.raises(api.UnknownParticipantError):
        export_tables(cohort, tmp_path / "y", participant="nobody")
