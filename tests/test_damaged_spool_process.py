"""``process`` on a spool with damaged segments: each is moved aside or partly read, recorded in
``spool_damage`` and ``daily_qc``, and the rest of its folder is processed."""

from __future__ import annotations

import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from glutewake.analytics.report import write_daily_report
from glutewake.pipeline import process
from glutewake.store.catalog import open_read, query_frame
from glutewake.store.datadir import DataDir
from glutewake.store.quarantine import QUARANTINE_DIR
from glutewake.store.spool import list_segments, parse_segment_name, spool_folders
from tests.conftest import STUDY_DAY


def _copy(source: DataDir, to: Path) -> DataDir:
    shutil.copytree(source.root, to)
    return DataDir(to)


def _imu_folder(data_dir: DataDir) -> Path:
    [folder] = [f for f in spool_folders(data_dir.spool) if "A0-9E" in f.name]
    return folder


def _flip_in_row_group(path: Path, group: int) -> None:
    """Flip one bit inside a data page of the payload column of one row group."""
    meta = pq.ParquetFile(path).metadata
    chunk = meta.row_group(group).column(meta.schema.to_arrow_schema().names.index("payload"))
    start = chunk.dictionary_page_offset if chunk.has_dictionary_page else chunk.data_page_offset
    at = start + chunk.total_compressed_size // 2
    data = bytearray(path.read_bytes())
    data[at] ^= 0x04
    path.write_bytes(bytes(data))


def test_damaged_segments_are_recorded_and_the_rest_processed(
    small_study: tuple[DataDir, object], serial_catalog: DataDir, tmp_path: Path
) -> None:
    source, _ = small_study
    data_dir = _copy(source, tmp_path / "study")
    folder = _imu_folder(data_dir)
    _, middle, last = list_segments(folder)
    middle.write_bytes(middle.read_bytes()[: middle.stat().st_size // 3])  # truncated
    zero = folder / "seg-01774606000000000-000000009999.parquet"
    zero.write_bytes(b"")  # a zero-byte segment after the last
    _flip_in_row_group(last, 2)

    summary = process(data_dir)

    # the unreadable files are moved aside, never deleted, and named in the warnings
    for damaged in (middle, zero):
        assert not damaged.exists()
        assert (folder / QUARANTINE_DIR / damaged.name).exists()
        assert any(damaged.name in w for w in summary.warnings)
    assert last.exists()  # a partly damaged segment stays: its intact rows are data
    assert summary.damaged_parts == 3
    with open_read(data_dir) as con:
        damage = query_frame(con, "SELECT * FROM spool_damage ORDER BY original_path, part")
        qc = query_frame(con, "SELECT * FROM daily_qc").row(0, named=True)
        days = query_frame(con, "SELECT count(*) AS n FROM daily_sitting")["n"][0]
        recordings = query_frame(con, "SELECT count(*) AS n FROM recordings")["n"][0]
    with open_read(serial_catalog) as con:
        ref_recordings = query_frame(con, "SELECT count(*) AS n FROM recordings")["n"][0]
    assert days == 1 and recordings == ref_recordings  # the folder was processed regardless
    rows = {Path(r["original_path"]).name: r for r in damage.iter_rows(named=True)}
    assert set(rows) == {middle.name, zero.name, last.name}
    assert rows[middle.name]["quarantined"] and rows[zero.name]["quarantined"]
    assert not rows[last.name]["quarantined"] and rows[last.name]["part"].startswith("row group 3")
    assert rows[last.name]["records_lost"] == 256
    assert rows[last.name]["participant_id"] == "P01"
    assert rows[last.name]["device_id"] == "A0:9E:1A:00:00:01"
    # the truncated hour: from the time in its name to the next segment's first record
    t_middle = parse_segment_name(middle.name)[0]  # type: ignore[index]
    assert rows[middle.name]["start_time"].timestamp() == pytest.approx(t_middle / 1e6)
    t_next = parse_segment_name(last.name)[0]  # type: ignore[index]
    assert rows[middle.name]["end_time"].timestamp() == pytest.approx(t_next / 1e6)
    # the zero-byte file after the last: at most one rotation period (the 1-h step between
    # the folder's segments) from the time in its name
    t_zero = parse_segment_name(zero.name)[0]  # type: ignore[index]
    span_s = (rows[zero.name]["end_time"] - rows[zero.name]["start_time"]).total_seconds()
    assert rows[zero.name]["start_time"].timestamp() == pytest.approx(t_zero / 1e6)
    assert 3600 <= span_s <= 3605
    # daily_qc shows the day's loss: two estimated hours plus the damaged row group's minutes
    group_min = (rows[last.name]["end_time"] - rows[last.name]["start_time"]).total_seconds() / 60
    assert 5 < group_min < 10  # 256 Polar frames
    assert qc["damaged_parts"] == 3
    assert qc["damage_min"] == pytest.approx(
        (rows[middle.name]["end_time"] - rows[middle.name]["start_time"]).total_seconds() / 60
        + span_s / 60
        + group_min
    )

    # the daily report says what was lost
    [page] = write_daily_report(data_dir, "P01", STUDY_DAY)
    text = Path(page).read_text()
    assert "3 damaged part(s) of the raw recording" in text
    assert f"about {qc['damage_min']:.0f} min of data lost" in text

    # later runs go on: nothing left to move, nothing fails, the table unchanged
    again = process(data_dir)
    assert not again.failures and again.damaged_parts is None
    with open_read(data_dir) as con:
        assert query_frame(con, "SELECT count(*) AS n FROM spool_damage")["n"][0] == 3


def test_a_folder_of_only_unreadable_segments_fails_nothing(
    small_study: tuple[DataDir, object], tmp_path: Path
) -> None:
    source, _ = small_study
    data_dir = _copy(source, tmp_path / "study")
    folder = _imu_folder(data_dir)
    for seg in list_segments(folder):
        seg.write_bytes(b"")
    summary = process(data_dir)
    assert not summary.failures
    assert not list_segments(folder)
    assert len(list((folder / QUARANTINE_DIR).glob("*.parquet"))) == 3
