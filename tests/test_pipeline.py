"""The process job end to end on a small simulated study spooled as device-native bytes."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from glutewake.pipeline import process
from glutewake.store.catalog import open_read, query_frame
from glutewake.store.datadir import DataDir
from tests.conftest import STUDY_DAY as DAY

COUNTED = (
    "recordings",
    "sitting_bouts",
    "daily_sitting",
    "posture_periods",
    "exercise_sessions",
    "contractions",
    "mvc_references",
    "qc",
    "spool_files",
)


def _counts(data_dir: DataDir) -> dict[str, int]:
    with open_read(data_dir) as con:
        return {
            t: int(con.execute(f"SELECT count(*) FROM {t}").fetchone()[0])  # type: ignore[index]
            for t in COUNTED
        }


@pytest.fixture(scope="module")
def processed(
    small_study: tuple[DataDir, object], tmp_path_factory: pytest.TempPathFactory
) -> DataDir:
    source, _ = small_study
    data_dir = DataDir(tmp_path_factory.mktemp("processed"))
    shutil.copytree(source.root, data_dir.root, dirs_exist_ok=True)
    summary = process(data_dir)
    assert summary.decode_errors == 0
    assert summary.participant_days == 1
    return data_dir


def test_every_stage_produced_rows(processed: DataDir) -> None:
    counts = _counts(processed)
    for table in COUNTED:
        if table != "qc":
            assert counts[table] > 0, table
    with open_read(processed) as con:
        rec = query_frame(
            con, "SELECT profile, stream, n_samples, fs_hz FROM recordings ORDER BY profile, stream"
        )
        daily = query_frame(con, "SELECT * FROM daily_sitting").row(0, named=True)
        session = query_frame(con, "SELECT * FROM exercise_sessions").row(0, named=True)
    assert set(zip(rec["profile"], rec["stream"], strict=True)) == {
        ("glutewake-open", "emg"),
        ("polar-pmd", "acc"),
    }
    # 3 h at 52 Hz, less at most one partly filled frame per connection
    acc = rec.filter(rec["stream"] == "acc")
    assert abs(int(acc["n_samples"][0]) - 3 * 3600 * 52) < 200
    assert daily["local_date"] == DAY
    assert 170 <= daily["wear_min"] <= 181
    assert (
        daily["sitting_min"] + daily["standing_min"] + daily["moving_min"] <= daily["wear_min"] + 1
    )
    assert session["exercise"] == "glute_bridge"
    assert session["phase"] == 1
    assert session["repetitions"] == 8
    assert 0 <= session["activation_quality"] <= 100


def test_sitting_time_matches_the_simulated_truth(
    small_study: tuple[DataDir, object], processed: DataDir
) -> None:
    _, truth = small_study
    with open_read(processed) as con:
        sitting = con.execute("SELECT sitting_min FROM daily_sitting").fetchone()[0]  # type: ignore[index]
    # the truth counts the whole day; only 08:00-11:00 was streamed, so compare with that window
    true_window = truth.sitting_min_between("P01", DAY, 8.0, 11.0)  # type: ignore[attr-defined]
    assert sitting == pytest.approx(true_window, abs=max(5.0, 0.05 * true_window))


def test_process_is_idempotent(processed: DataDir) -> None:
    before = _counts(processed)
    again = process(processed)
    assert again.spool_files == 0 and again.recordings == 0
    assert _counts(processed) == before
    redo = process(processed, redo=True)
    assert redo.recordings == before["recordings"]
    assert _counts(processed) == before


def test_missing_time_zone_is_reported_not_guessed(
    small_study: tuple[DataDir, object], tmp_path: Path
) -> None:
    data_dir, _ = small_study
    copy = DataDir(tmp_path / "copy")
    shutil.copytree(data_dir.spool, copy.spool)
    copy.create()
    summary = process(copy)
    assert summary.recordings > 0 and summary.participant_days == 0
    assert any("no time zone" in w and "P01" in w for w in summary.warnings)


def _table_rows(data_dir: DataDir, table: str, order: str) -> list[tuple[object, ...]]:
    with open_read(data_dir) as con:
        cols = [
            c
            for (c,) in con.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_name = ? "
                "ORDER BY ordinal_position",
                [table],
            ).fetchall()
            if c not in ("processed_at", "imported_at", "created_at", "logged_at")
        ]
        return con.execute(f"SELECT {', '.join(cols)} FROM {table} ORDER BY {order}").fetchall()


def test_workers_give_the_same_catalog_as_serial(
    small_study: tuple[DataDir, object], processed: DataDir, tmp_path: Path
) -> None:
    source, _ = small_study
    parallel = DataDir(tmp_path / "parallel")
    shutil.copytree(source.root, parallel.root)
    process(parallel, workers=2)
    for table, order in (
        ("recordings", "recording_id"),
        ("daily_sitting", "ALL"),
        ("sitting_bouts", "ALL"),
        ("posture_periods", "ALL"),
        ("exercise_sessions", "ALL"),
        ("contractions", "ALL"),
        ("qc", "ALL"),
    ):
        assert _table_rows(parallel, table, order) == _table_rows(processed, table, order), table


def test_lost_links_become_gaps_of_the_right_length(tmp_path: Path) -> None:
    from glutewake.simulate.study import DEFAULT_PARTICIPANTS, build_study, register_study

    data_dir = DataDir(tmp_path / "gaps").create()
    truth = build_study(
        data_dir,
        seed=5,
        days=2,
        first_day=DAY,
        participants=DEFAULT_PARTICIPANTS[:1],
        imu_hours=(14.5, 15.75),
        n_reps=4,
    )
    register_study(data_dir, truth)
    process(data_dir)
    with open_read(data_dir) as con:
        gaps = con.execute(
            "SELECT value FROM qc WHERE kind = 'gap:disconnect' AND recording_id LIKE '%-acc' "
            "ORDER BY start_time"
        ).fetchall()
    # day 1 15:45 -> day 2 14:30 (sensor charging), then out of range 15:00-15:20 on day 2
    assert len(gaps) == 2
    assert gaps[0][0] == pytest.approx(22.75 * 3600, abs=5)
    assert gaps[1][0] == pytest.approx(20 * 60, abs=5)
    before = _counts(data_dir)
    process(data_dir, redo=True)
    assert _counts(data_dir) == before


def test_battery_readings_become_qc_rows_once(
    small_study: tuple[DataDir, object], tmp_path: Path
) -> None:
    import numpy as np

    from glutewake.devices.base import RawRecords, RecordKind
    from glutewake.ingest.spool_scan import BATTERY_LEVEL_UUID
    from glutewake.store.spool import list_segments, read_segment, spool_folders, write_segment

    source, _ = small_study
    data_dir = DataDir(tmp_path / "battery")
    shutil.copytree(source.root, data_dir.root)
    process(data_dir)
    # the collector reads the level on connect and periodically: append two reads to the
    # device's last connection, as a later spool segment
    folder = spool_folders(data_dir.spool)[0]
    info, records, seq = read_segment(list_segments(folder)[-1])
    t_last = int(records.t_us.max())
    conn = int(records.conn_id.max())
    reads = RawRecords(
        t_us=np.array([t_last + 1_000_000, t_last + 2_000_000], np.int64),
        kind=np.full(2, RecordKind.READ, np.int8),
        char_uuid=[BATTERY_LEVEL_UUID, BATTERY_LEVEL_UUID],
        payload=[bytes([81]), bytes([80])],
        conn_id=np.full(2, conn, np.int64),
    )
    write_segment(folder, info, reads, [int(seq.max()) + 1, int(seq.max()) + 2])

    def battery_rows() -> list[tuple[object, ...]]:
        with open_read(data_dir) as con:
            return con.execute(
                "SELECT recording_id, value FROM qc WHERE kind = 'battery' ORDER BY start_time"
            ).fetchall()

    process(data_dir)
    expected = [(f"P01/{folder.name.removeprefix('device=')}-c{conn}", v) for v in (81.0, 80.0)]
    assert battery_rows() == expected
    process(data_dir, redo=True)  # re-decoding the connection replaces, never duplicates
    assert battery_rows() == expected


def test_batches_of_participants_give_the_same_catalog(tmp_path: Path) -> None:
    from glutewake.simulate.study import DEFAULT_PARTICIPANTS, build_study, register_study

    source = DataDir(tmp_path / "two").create()
    truth = build_study(
        source, seed=5, days=1, first_day=DAY, participants=DEFAULT_PARTICIPANTS,
        imu_hours=(8.0, 10.0), n_reps=6,
    )
    register_study(source, truth)
    one_batch = DataDir(tmp_path / "one")
    per_participant = DataDir(tmp_path / "each")
    shutil.copytree(source.root, one_batch.root)
    shutil.copytree(source.root, per_participant.root)
    whole = process(one_batch)
    split = process(per_participant, batch_participants=1)
    assert (split.participant_days, split.contractions, split.spool_files) == (
        whole.participant_days, whole.contractions, whole.spool_files
    )
    assert whole.participant_days == 2
    for table, order in (
        ("recordings", "recording_id"),
        ("daily_sitting", "ALL"),
        ("sitting_bouts", "ALL"),
        ("exercise_sessions", "ALL"),
        ("contractions", "ALL"),
        ("qc", "ALL"),
    ):
        assert _table_rows(per_participant, table, order) == _table_rows(one_batch, table, order)
