"""The mutated-import set: no damaged or implausible file is imported silently.

:func:`glutewake.simulate.import_mutations.mutated_files` writes a valid file of each format and
well over 125 files with one thing wrong each (NaN, ±inf, -1e20, 1.8e12, swapped columns,
reversed / constant / repeated / shuffled timestamps, a time unit off by 1000, values in the
wrong unit or from the wrong sensor, cut off, ragged, empty, garbage). Each must be refused with
one line naming the file, or imported with a QC flag that says what is odd.
"""

from __future__ import annotations

import collections
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from glutewake.cli import main
from glutewake.pipeline import import_files
from glutewake.simulate.import_mutations import TZ, Mutation, mutated_files
from glutewake.store.bookkeeping import add_participant
from glutewake.store.catalog import open_read
from glutewake.store.datadir import DataDir


@pytest.fixture(scope="module")
def mutations(tmp_path_factory: pytest.TempPathFactory) -> list[Mutation]:
    return mutated_files(tmp_path_factory.mktemp("mutations"))


Outcome = tuple[Mutation, str, Any]  #: the mutation, its participant, its FileResult


@pytest.fixture(scope="module")
def imported(
    mutations: list[Mutation], tmp_path_factory: pytest.TempPathFactory
) -> tuple[DataDir, list[Outcome]]:
    """Each mutated file imported for its own participant (no file can mask another)."""
    data_dir = DataDir(tmp_path_factory.mktemp("data") / "d").create()
    out = []
    for i, m in enumerate(mutations):
        pid = f"M{i:03d}"
        add_participant(data_dir, pid, TZ)
        f = import_files(data_dir, [m.path], participant_id=pid, tz=TZ).files[0]
        out.append((m, pid, f))
    return data_dir, out


@pytest.fixture(scope="module")
def outcomes(imported: tuple[DataDir, list[Outcome]]) -> list[Outcome]:
    return imported[1]


def test_the_set_covers_every_format_with_over_125_files(mutations: list[Mutation]) -> None:
    assert len(mutations) >= 125
    per_format = collections.Counter(m.fmt for m in mutations)
    assert set(per_format) == {
        "generic-csv", "polar-sensor-logger", "movesense-csv", "movesense-json", "axivity-csv",
        "actigraph-csv", "edf", "activpal-events", "glutewake-samples",
    }  # fmt: skip
    names = {m.name for m in mutations}
    for wanted in ("nan", "plus_inf", "minus_1e20", "plus_1_8e12", "swapped_time_and_value",
                   "reversed_rows", "constant_time", "every_row_twice", "cut_off"):  # fmt: skip
        assert wanted in names


def test_no_mutated_file_is_imported_silently(
    outcomes: list[Outcome],
) -> None:
    silent = [(m.fmt, m.name) for m, _, f in outcomes if f.status == "imported" and not f.flags]
    assert silent == []
    for m, _, f in outcomes:
        status, message = f.status, f.message
        if status == "failed":
            assert message and "\n" not in message and str(m.path) in message, (m.name, message)
        elif status == "skipped":
            assert message, m.name


def test_refusals_and_flags_say_what_is_wrong(
    outcomes: list[Outcome],
) -> None:
    by = {(m.fmt, m.name): f for m, _, f in outcomes}
    expect_failed = {
        ("generic-csv", "nan"): "expected a finite number",
        ("generic-csv", "plus_inf"): "expected a finite number",
        ("polar-sensor-logger", "minus_1e20"): "no acc sensor reads",
        ("generic-csv", "plus_1_8e12"): "no acc sensor reads",
        ("glutewake-samples", "times_1970"): "outside 2000-2100",
        ("glutewake-samples", "reversed_times"): "never increase",
        ("glutewake-samples", "constant_times"): "are all equal",
        ("movesense-csv", "shuffled_rows"): "steps back",
        ("generic-csv", "values_x9_8"): "m/s^2 read as g",
        ("movesense-json", "timestamp_in_us"): "wrong time unit",
        ("activpal-events", "overlapping_events"): "before the one above it ends",
    }
    for key, text in expect_failed.items():
        f = by[key]
        assert f.status == "failed" and text in str(f.message), (key, f.message)
    flagged = {
        ("generic-csv", "one_repeated_row"): "duplicate_times",
        ("polar-sensor-logger", "one_step_back"): "clock_jumps_back",
        ("axivity-csv", "constant_channel"): "constant_channel",
    }
    for key, flag in flagged.items():
        f = by[key]
        assert f.status == "imported" and flag in f.qc["acc"]["flags"], key
    assert by[("generic-csv", "one_repeated_row")].qc["acc"]["duplicate_times"] == 1


def test_failed_files_leave_nothing_and_process_still_runs(
    imported: tuple[DataDir, list[Outcome]],
) -> None:
    data_dir, outcomes = imported
    failed = {pid for _, pid, f in outcomes if f.status != "imported"}
    stored = {p.name.removeprefix("participant_id=")
              for p in data_dir.samples.glob("stream=*/participant_id=*")}  # fmt: skip
    assert failed and not failed & stored
    with open_read(data_dir) as con:
        rows = con.execute("SELECT DISTINCT participant_id FROM recordings").fetchall()
        flags = con.execute("SELECT count(*) FROM qc WHERE kind = 'import_flag'").fetchone()
    assert not failed & {r[0] for r in rows}
    n_imported = sum(1 for _, _, f in outcomes if f.status == "imported")
    assert flags is not None and flags[0] >= n_imported > 0
    # what was stored has sane rates: process (which divides by them) runs through
    assert main(["process", "--redo", "-q", "--data", str(data_dir.root)]) == 0


def test_bad_files_through_the_cli(
    outcomes: list[Outcome],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    refused = [m.path for m, _, f in outcomes if f.status == "failed"]
    data = tmp_path / "data"
    assert main(["participant", "add", "P01", "--tz", TZ, "--data", str(data)]) == 0
    snapshot = _catalog_snapshot(DataDir(data))
    capsys.readouterr()
    code = main(["import", *map(str, refused), "--participant", "P01", "--tz", TZ, "-q",
                 "--data", str(data)])  # fmt: skip
    out = capsys.readouterr()
    assert code == 1
    err = out.err.strip().splitlines()
    assert len(err) == len(refused) and all(line.startswith("failed ") for line in err)
    assert "Traceback" not in out.err + out.out
    assert _catalog_snapshot(DataDir(data)) == snapshot
    assert not list(DataDir(data).samples.glob("**/*.parquet"))


def _catalog_snapshot(data_dir: DataDir) -> dict[str, int]:
    with open_read(data_dir) as con:
        tables = [t for (t,) in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_type = 'BASE TABLE'"
        ).fetchall()]  # fmt: skip
        return {t: int(con.execute(f"SELECT count(*) FROM {t}").fetchone()[0]) for t in tables}  # type: ignore[index]


def _generic(path: Path, t_us: np.ndarray) -> Path:
    rng = np.random.default_rng(3)
    acc = rng.normal(0, 0.02, (len(t_us), 3)) + np.array([0.0, 0.0, 1.0])
    rows = "\n".join(f"{t},{x:.4f},{y:.4f},{z:.4f}" for t, (x, y, z) in zip(t_us, acc, strict=True))
    path.write_text("t_us,acc_x[g],acc_y[g],acc_z[g]\n" + rows + "\n")
    return path


def test_a_partial_file_then_the_full_one_keeps_one_copy(tmp_path: Path) -> None:
    data_dir = DataDir(tmp_path / "data").create()
    add_participant(data_dir, "P01", TZ)
    t_us = 1_772_438_400_000_000 + np.arange(1000) * 20_000
    full = _generic(tmp_path / "thigh.csv", t_us)
    lines = full.read_text().splitlines()
    partial = tmp_path / "thigh-partial.csv"
    partial.write_text("\n".join(lines[:501]) + "\n")  # exported while still recording
    run = lambda p: import_files(data_dir, [p], participant_id="P01", device_id="d1").files[0]  # noqa: E731
    assert run(partial).status == "imported"
    second = run(full)
    assert second.status == "imported" and "replaced" in str(second.message)
    with open_read(data_dir) as con:
        n, files = con.execute(
            "SELECT (SELECT sum(n_samples) FROM recordings), (SELECT count(*) FROM import_files)"
        ).fetchone()  # type: ignore[misc]
    on_disk = sum(pq.read_metadata(p).num_rows for p in data_dir.samples.glob("**/*.parquet"))
    assert (n, files, on_disk) == (1000, 1, 1000)
    again = run(partial)  # the shorter version again adds nothing
    assert again.status == "skipped" and "already imported" in str(again.message)
    assert sum(pq.read_metadata(p).num_rows for p in data_dir.samples.glob("**/*.parquet")) == 1000


def test_a_million_identical_timestamps_are_refused(tmp_path: Path) -> None:
    data_dir = DataDir(tmp_path / "data").create()
    add_participant(data_dir, "P01", TZ)
    n = 1_000_000
    folder = tmp_path / "stream=acc"
    folder.mkdir()
    path = folder / "d1-c1-acc.parquet"
    pq.write_table(
        pa.table(
            {
                "t_us": np.full(n, 1_772_438_400_000_000, dtype=np.int64),
                "sample_seq": np.arange(n, dtype=np.int64),
                "x": np.zeros(n, np.float32),
                "y": np.zeros(n, np.float32),
                "z": np.ones(n, np.float32),
            }
        ),
        path,
    )
    f = import_files(data_dir, [path], participant_id="P01").files[0]
    assert f.status == "failed" and "1,000,000 timestamps are all equal" in str(f.message)
