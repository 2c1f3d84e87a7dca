"""The bundled sample recording goes through the same path as collected data."""

from __future__ import annotations

from pathlib import Path

from glutewake.pipeline import process
from glutewake.simulate.sample_data import SAMPLE_DAY, load_sample_data, sample_data_path
from glutewake.store.catalog import open_read, query_frame
from glutewake.store.datadir import DataDir
from glutewake.store.spool import list_segments, read_segment, spool_folders


def test_sample_data_is_bundled_small_and_device_native() -> None:
    sample = sample_data_path()
    assert sample is not None
    size = sum(p.stat().st_size for p in sample.rglob("*") if p.is_file())
    assert size < 3 * 1024 * 1024
    profiles = set()
    for folder in spool_folders(sample / "spool"):
        for seg in list_segments(folder):
            info, records, _ = read_segment(seg)
            profiles.add(info.profile)
            assert len(records) > 0
    assert profiles == {"polar-pmd", "glutewake-open"}


def test_sample_data_processes_into_the_catalog(tmp_path: Path) -> None:
    sample = sample_data_path()
    assert sample is not None
    data_dir = DataDir(tmp_path / "data")
    load_sample_data(sample, data_dir)
    summary = process(data_dir)
    assert summary.decode_errors == 0
    with open_read(data_dir) as con:
        daily = query_frame(con, "SELECT * FROM daily_sitting")
        sessions = query_frame(con, "SELECT * FROM exercise_sessions")
        contractions = query_frame(con, "SELECT DISTINCT muscle FROM contractions ORDER BY 1")
    assert daily["local_date"].to_list() == [SAMPLE_DAY]
    # two hours streamed: a short, not a valid, day
    assert 110 <= daily["wear_min"][0] <= 121 and daily["valid_day"][0] is False
    assert sessions.height == 1 and sessions["repetitions"][0] == 10
    assert contractions["muscle"].to_list() == ["glute_max", "hamstring"]
