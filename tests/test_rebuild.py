"""``glutewake rebuild``: a deleted or damaged catalog comes back, table by table, from the
bookkeeping ledger, the spool and the sample files (imported ones whose source file is gone)."""

from __future__ import annotations

import datetime as dt
import shutil
import stat
from pathlib import Path

import duckdb
import numpy as np
import pytest

from glutewake.cli import main
from glutewake.pipeline import import_files, process
from glutewake.pipeline.rebuild import rebuild
from glutewake.store import bookkeeping
from glutewake.store.datadir import DataDir
from glutewake.store.ledger import LEDGER_NAME, read_entries
from glutewake.store.spool import list_segments, spool_folders
from tests.conftest import STUDY_DAY

#: columns that record when something ran, not what it computed
VOLATILE = {"processed_at", "applied_at", "first_failed_at", "last_failed_at"}


def tables(path: Path) -> dict[str, list[tuple[object, ...]]]:
    """Every base table's rows (volatile columns left out), sorted."""
    con = duckdb.connect(str(path), read_only=True)
    try:
        names = [
            r[0]
            for r in con.execute(
                "SELECT table_name FROM information_schema.tables "
                "WHERE table_schema = 'main' AND table_type = 'BASE TABLE' ORDER BY 1"
            ).fetchall()
        ]
        out = {}
        for name in names:
            cols = [
                f'"{r[0]}"'
                for r in con.execute(
                    "SELECT column_name FROM information_schema.columns WHERE table_name = ? "
                    "ORDER BY ordinal_position",
                    [name],
                ).fetchall()
                if r[0] not in VOLATILE
            ]
            out[name] = con.execute(f"SELECT {', '.join(cols)} FROM {name} ORDER BY ALL").fetchall()
        return out
    finally:
        con.close()


def _thigh_csv(path: Path, day: dt.date) -> Path:
    """Half an hour of 25 Hz thigh acceleration on ``day`` (sitting, then standing)."""
    start = dt.datetime.combine(day, dt.time(14, 0), tzinfo=dt.UTC)
    n = 25 * 1800
    t_us = int(start.timestamp() * 1e6) + np.round(np.arange(n) * 40_000).astype(np.int64)
    acc = np.zeros((n, 3))
    acc[: n // 2, 0] = 1.0
    acc[n // 2 :, 2] = 1.0
    acc += np.random.default_rng(9).normal(0, 0.01, acc.shape)
    rows = "\n".join(f"{t},{x:.4f},{y:.4f},{z:.4f}" for t, (x, y, z) in zip(t_us, acc, strict=True))
    path.write_text("t_us,acc_x[g],acc_y[g],acc_z[g]\n" + rows + "\n")
    return path


@pytest.fixture(scope="module")
def study(small_study: tuple[DataDir, object], tmp_path_factory: pytest.TempPathFactory) -> DataDir:
    """The small study with bookkeeping typed by hand, two imports (one of them failed), a
    damaged spool segment, processed: everything a catalog holds."""
    source, _ = small_study
    data_dir = DataDir(tmp_path_factory.mktemp("rebuild") / "study")
    shutil.copytree(source.root, data_dir.root)
    bookkeeping.add_participant(
        data_dir, "P01", "Europe/Berlin", goal_sitting_min=480.0, notes="knee surgery 2025"
    )
    bookkeeping.add_participant(data_dir, "P02", "America/New_York")
    bookkeeping.write(data_dir, bookkeeping.set_phase, "P01", 2, STUDY_DAY + dt.timedelta(days=1))
    bookkeeping.write(
        data_dir, bookkeeping.log_symptoms, "P01", STUDY_DAY, lower_back=4, hip=2, note="stiff"
    )
    bookkeeping.write(data_dir, bookkeeping.log_symptoms, "P01", STUDY_DAY, lower_back=3)
    folder = next(f for f in spool_folders(data_dir.spool) if "A0-9E" in f.name)
    list_segments(folder)[1].write_bytes(b"")  # damage: a zero-byte segment
    process(data_dir)
    files = data_dir.root.parent / "files"
    files.mkdir()
    csv = _thigh_csv(files / "thigh.csv", STUDY_DAY + dt.timedelta(days=2))
    done = import_files(data_dir, [csv], participant_id="P01", placement="thigh", device_id="ax")
    assert done.files[0].status == "imported", done.files[0].message
    bad = files / "bad.csv"
    bad.write_text("time,acc_x[g]\n2026-03-02T08:00:00+01:00,oops\n")
    failed = import_files(data_dir, [bad], participant_id="P01", placement="thigh", device_id="x")
    assert failed.files[0].status == "failed"
    shutil.rmtree(files)  # the imported files are gone: their samples and the ledger remain
    return data_dir


def test_rebuild_of_a_deleted_catalog_gives_identical_tables(
    study: DataDir, tmp_path: Path
) -> None:
    data_dir = DataDir(tmp_path / "copy")
    shutil.copytree(study.root, data_dir.root)
    before = tables(data_dir.catalog)
    assert all(before[t] for t in ("participants", "phases", "symptoms", "import_files"))
    assert before["spool_damage"] and any(r[2] == "import:generic-csv" for r in before["devices"])
    data_dir.catalog.unlink()

    summary = rebuild(data_dir)

    assert summary.previous_catalog is None and summary.imported_recordings >= 1
    after = tables(data_dir.catalog)
    assert set(after) == set(before)
    for name in sorted(before):
        assert after[name] == before[name], name
    ledger = data_dir.root / LEDGER_NAME
    assert stat.S_IMODE(ledger.stat().st_mode) == 0o600
    # the ledger holds what was typed; the rebuild wrote nothing to it
    entries = read_entries(ledger)
    typed = [r for op, r in entries if op == "symptoms" and r["note"] in ("stiff", None)]
    assert [r["lower_back_pain"] for r in typed[-2:]] == [4, 3]
    assert "forget_device" in {op for op, _ in entries}  # the failed import's device


def test_a_damaged_catalog_names_the_rebuild_and_the_rebuild_keeps_it(
    study: DataDir, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data_dir = DataDir(tmp_path / "copy")
    shutil.copytree(study.root, data_dir.root)
    before = tables(data_dir.catalog)
    data_dir.catalog.write_bytes(b"\0" * 4096 + data_dir.catalog.read_bytes()[4096:])
    for command in (["sql", "select 1"], ["process"], ["participant", "list"]):
        with pytest.raises(SystemExit) as exit_:
            main([*command, "--data", str(data_dir.root)])
        assert exit_.value.code == 2
        assert "glutewake rebuild" in capsys.readouterr().err, command

    assert main(["rebuild", "--data", str(data_dir.root), "-q"]) == 0
    out = capsys.readouterr().out
    kept = list(data_dir.root.glob("catalog.duckdb.before-rebuild-*"))
    assert len(kept) == 1 and str(kept[0]) in out  # moved aside, never deleted
    after = tables(data_dir.catalog)
    for name in sorted(before):
        assert after[name] == before[name], name
