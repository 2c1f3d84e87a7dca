"""Readers keep working while data is collected (spool appended) and processed (catalog written)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

from glutewake.store.catalog import open_read
from glutewake.store.datadir import DataDir
from glutewake.store.spool import list_segments, read_segment, spool_folders, write_segment


def test_read_only_queries_succeed_during_collection_and_processing(
    small_study: tuple[DataDir, object], tmp_path: Path
) -> None:
    source, _ = small_study
    data_dir = DataDir(tmp_path / "data")
    shutil.copytree(source.root, data_dir.root)
    # hold back the EMG board's spool: a "collector" writes it while processing runs
    emg_folder = next(f for f in spool_folders(data_dir.spool) if "C0-FF-EE" in f.name)
    pending = [read_segment(p) for p in list_segments(emg_folder)]
    shutil.rmtree(emg_folder)
    emg_folder.mkdir()

    def collect() -> None:
        for info, records, seq in pending:
            write_segment(emg_folder, info, records, seq)
            time.sleep(0.2)

    collector = threading.Thread(target=collect)
    collector.start()
    proc = subprocess.Popen(
        [sys.executable, "-m", "glutewake", "process", "--data", str(data_dir.root)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    queries = 0
    while proc.poll() is None:
        with open_read(data_dir, timeout_s=30) as con:
            con.execute("SELECT count(*) FROM participants").fetchone()
        queries += 1
        time.sleep(0.05)
    _out, err = proc.communicate()
    collector.join()
    assert proc.returncode == 0, err
    assert queries >= 5  # the reader really ran alongside the writer
    # a second run picks up whatever the collector wrote after the first had listed the spool
    done = subprocess.run(
        [sys.executable, "-m", "glutewake", "process", "--data", str(data_dir.root)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "processed" in done.stdout
    with open_read(data_dir) as con:
        sessions = con.execute("SELECT count(*) FROM exercise_sessions").fetchone()
        acc = con.execute("SELECT count(*) FROM daily_sitting").fetchone()
    assert sessions == (1,) and acc == (1,)
