"""Everything glutewake writes is its owner's alone (folders 0700, files 0600), whatever the umask.

Both tests run with umask 000, under which a default ``mkdir`` gives 0777 and a default file
0666: the library (spooling, processing in a pool of workers, reports, exports, imports, the
collector's status and log files, the demo's sample copy) must set modes itself; the command line
additionally restricts the umask, which covers what DuckDB and other libraries create.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from glutewake.analytics.export import export_tables
from glutewake.analytics.progress import write_progress_report
from glutewake.analytics.report import write_daily_report
from glutewake.ingest.collector import _attach_log_file, status_path, write_status
from glutewake.pipeline import import_files, process
from glutewake.simulate.sample_data import load_sample_data, sample_data_path
from glutewake.simulate.study import DEFAULT_PARTICIPANTS, build_study, register_study
from glutewake.store.datadir import DataDir

DAY = dt.date(2026, 3, 27)
ACTIVPAL = (
    '"Time","DataCount (samples)","Interval (s)","ActivityCode (0=sedentary 1= standing '
    '2=stepping)","CumulativeStepCount","Activity Score (MET.h)"\n'
    "46108.3333333333,0,1800,0,0,0.1\n"
    "46108.3541666667,18000,120,1,0,0.1\n"
)


def not_owner_only(*roots: Path) -> list[tuple[str, str]]:
    """Folders that are not 0700 and files that are not 0600 under ``roots`` (roots included)."""
    bad: list[tuple[str, str]] = []
    for root in roots:
        for path in [root, *sorted(root.rglob("*"))]:
            mode = stat.S_IMODE(path.lstat().st_mode)
            want = 0o700 if path.is_dir() else 0o600
            if mode != want:
                bad.append((str(path.relative_to(root.parent)), oct(mode)))
    return bad


@pytest.fixture
def umask_000() -> Iterator[None]:
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


@pytest.mark.timeout(300)
def test_the_library_writes_owner_only_under_umask_000(tmp_path: Path, umask_000: None) -> None:
    data_dir = DataDir(tmp_path / "data")
    truth = build_study(
        data_dir,
        seed=3,
        days=1,
        first_day=DAY,
        participants=DEFAULT_PARTICIPANTS[:1],
        imu_hours=(8.0, 9.5),
        n_reps=4,
    )
    register_study(data_dir, truth)
    sample = sample_data_path()
    if sample is not None:  # the demo's copy of the bundled recording
        load_sample_data(sample, data_dir)
    summary = process(data_dir, workers=2)  # samples written by spawned pool workers
    assert summary.recordings > 0
    csv = tmp_path / "inputs" / "acc.csv"
    csv.parent.mkdir()
    rows = [f"2026-03-28T08:00:{s:02d}+00:00,0,0,1" for s in range(60)]
    csv.write_text("time,acc_x[g],acc_y[g],acc_z[g]\n" + "\n".join(rows) + "\n")
    events = tmp_path / "inputs" / "PAL-Events.csv"
    events.write_text(ACTIVPAL)
    imported = import_files(data_dir, [csv, events], participant_id="P01", tz="Europe/Berlin")
    assert [f.status for f in imported.files] == ["imported", "imported"], imported.files
    reports = write_daily_report(data_dir, "P01", DAY)
    pdf = tmp_path / "out" / "nested" / "day.pdf"
    write_daily_report(data_dir, "P01", DAY, out=pdf, fmt="pdf")
    progress = write_progress_report(data_dir, "P01")
    cohort = write_progress_report(data_dir, None)
    exported = export_tables(data_dir, tmp_path / "exports" / "study", fmt="csv")
    write_status(status_path(data_dir, "P01", "A0:9E:1A:00:00:01"), {"state": "streaming"})
    detach = _attach_log_file(data_dir)
    try:
        log = logging.getLogger("glutewake.ingest.collector")
        log.info("a line before the rollover")
        for handler in logging.getLogger("glutewake").handlers:
            if isinstance(handler, logging.handlers.RotatingFileHandler):
                handler.doRollover()
        log.info("a line after it")
    finally:
        detach()

    for path in (*reports, progress, cohort, *exported):
        assert path.is_file()
    assert (data_dir.root / "logs" / "collect.log.1").is_file()
    assert list((data_dir.root / "reference").rglob("*.parquet"))
    assert not_owner_only(data_dir.root, tmp_path / "out", tmp_path / "exports") == []


def test_the_commands_write_owner_only_under_umask_000(tmp_path: Path) -> None:
    data = tmp_path / "data"
    csv = tmp_path / "acc.csv"
    rows = [f"2026-03-28T08:00:{s:02d}+00:00,0,0,1" for s in range(60)]
    csv.write_text("time,acc_x[g],acc_y[g],acc_z[g]\n" + "\n".join(rows) + "\n")
    commands = [
        ["participant", "add", "P01", "--tz", "UTC"],
        ["import", str(csv), "--participant", "P01"],
        ["symptom", "log", "P01", "--date", "2026-03-28", "--hip", "2"],
        ["report", "progress", "--participant", "P01", "--out", str(tmp_path / "r" / "p.html")],
        ["export", "--out", str(tmp_path / "exports")],
        ["sql", "SELECT count(*) FROM recordings"],
    ]
    for command in commands:
        res = subprocess.run(
            [sys.executable, "-m", "glutewake", *command, "--data", str(data), "-q"],
            capture_output=True,
            text=True,
            timeout=120,
            preexec_fn=lambda: os.umask(0),
        )
        assert res.returncode == 0, (command, res.stderr)
    assert not_owner_only(data, tmp_path / "r", tmp_path / "exports") == []
