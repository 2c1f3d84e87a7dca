"""``process`` while a read-only query holds the catalog: it says so, waits as long as asked, and
keeps its finished results when the wait runs out."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from glutewake.store.datadir import DataDir
from tests.test_rebuild import tables

HOLDER = """
import sys, time, duckdb
con = duckdb.connect(sys.argv[1], read_only=True)
con.execute("SELECT count(*) FROM participants").fetchall()
print("open", flush=True)
time.sleep(float(sys.argv[2]))
"""


def _hold(catalog: Path, seconds: float) -> subprocess.Popen[str]:
    """A reader holding the catalog open read-only for ``seconds`` (e.g. a long query)."""
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(catalog), str(seconds)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "open"
    return proc


def _release(holder: subprocess.Popen[str]) -> None:
    """The query ends."""
    holder.kill()
    holder.wait(10)
    if holder.stdout is not None:
        holder.stdout.close()


def _process(data_dir: DataDir, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "glutewake", "process", "--data", str(data_dir.root), "-q", *extra],
        capture_output=True,
        text=True,
    )


def test_a_reader_delays_the_write_and_process_waits_for_it(
    small_study: tuple[DataDir, object], serial_catalog: DataDir, tmp_path: Path
) -> None:
    source, _ = small_study
    data_dir = DataDir(tmp_path / "study")
    shutil.copytree(source.root, data_dir.root)
    holder = _hold(data_dir.catalog, 300.0)
    command = ["process", "--data", str(data_dir.root), "-q", "--wait", "300"]
    run = subprocess.Popen(
        [sys.executable, "-m", "glutewake", *command],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert run.stderr is not None
        said = run.stderr.readline()  # the run has computed everything and waits to write
    finally:
        _release(holder)
    out, err = run.communicate(timeout=300)
    assert run.returncode == 0, said + err
    # it said what it waited for, and named the cause: a read-only holder, by process id
    assert said.startswith("waiting up to 300 s for the catalog")
    assert f"process {holder.pid}" in said and "read-only" in said
    assert "processed 2 new spool file(s)" in out or "processed" in out
    after, ref = tables(data_dir.catalog), tables(serial_catalog.catalog)
    for name in ("recordings", "daily_sitting", "exercise_sessions"):
        assert after[name] == ref[name], name


def test_finished_results_are_kept_when_the_wait_runs_out(
    small_study: tuple[DataDir, object], serial_catalog: DataDir, tmp_path: Path
) -> None:
    source, _ = small_study
    data_dir = DataDir(tmp_path / "study")
    shutil.copytree(source.root, data_dir.root)
    holder = _hold(data_dir.catalog, 120.0)
    try:
        gave_up = _process(data_dir, "--wait", "1")
    finally:
        _release(holder)
    assert gave_up.returncode == 2
    [message] = [line for line in gave_up.stderr.splitlines() if "error" in line]
    assert "read-only" in message and "gave up after 1 s" in message
    [kept] = (data_dir.root / "pending").glob("process-*.json")
    assert str(kept) in message
    assert (kept.stat().st_mode & 0o077) == 0

    # the next run writes what the first computed, before anything else
    done = _process(data_dir)
    assert done.returncode == 0, done.stderr
    assert "wrote the results an earlier run kept" in done.stderr
    assert "processed 0 new spool file(s)" in done.stdout  # nothing was computed twice
    assert not kept.exists()
    after, ref = tables(data_dir.catalog), tables(serial_catalog.catalog)
    for name in sorted(ref):
        if name != "schema_version":
            assert after[name] == ref[name], name
