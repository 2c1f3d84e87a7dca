"""Sources merge, never replace: a participant-day is measured from every thigh source.

An import for a day that already has collected data adds to that day (and the collected data
owns the time both cover); the result does not depend on which source was processed first.
"""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from glutewake.analytics.daily_sitting import RUN_SCHEMA, merge_sources
from glutewake.pipeline import import_files, process
from glutewake.store.catalog import open_read
from glutewake.store.datadir import DataDir
from tests.conftest import STUDY_DAY

DAY = dt.date(2026, 3, 1)


def _runs(*rows: tuple[float, float, int, float]) -> pl.DataFrame:
    """Runs from ``(start_s, end_s, posture, duration_s)``."""
    return pl.DataFrame(
        {
            "start_us": [int(r[0] * 1e6) for r in rows],
            "end_us": [int(r[1] * 1e6) for r in rows],
            "posture": [r[2] for r in rows],
            "duration_s": [r[3] for r in rows],
            "local_date": [DAY] * len(rows),
        },
        schema=RUN_SCHEMA,
    )


def test_one_source_comes_back_exactly() -> None:
    runs = _runs((0, 10.02, 1, 10.0), (10.02, 40.05, 2, 30.0), (50, 60, 1, 10.0))
    assert merge_sources([runs]).equals(runs)
    assert merge_sources([runs, _runs()]).equals(runs)


def test_the_first_source_owns_the_time_both_cover() -> None:
    collected = _runs((0, 100, 1, 100.0))
    imported = _runs((50, 150, 2, 100.0), (200, 210, 2, 10.0))
    merged = merge_sources([collected, imported])
    assert merged["start_us"].to_list() == [0, 100_000_000, 200_000_000]
    assert merged["end_us"].to_list() == [100_000_000, 150_000_000, 210_000_000]
    assert merged["posture"].to_list() == [1, 2, 2]
    # the cut run keeps the share of its duration that its remaining time holds
    assert merged["duration_s"].to_list() == pytest.approx([100.0, 50.0, 10.0])


def test_runs_of_one_source_that_overlap_by_a_sliver_keep_their_durations() -> None:
    own = _runs((0, 1.05, 1, 1.0), (1.0, 2.05, 2, 1.0))
    other = _runs((5, 6, 1, 1.0))
    merged = merge_sources([own, other])
    assert merged["duration_s"].to_list() == pytest.approx([1.0, 1.0, 1.0])
    assert merged["end_us"].to_list()[0] == 1_000_000


def test_parts_of_one_posture_that_touch_are_joined_and_the_order_of_sources_decides() -> None:
    a = _runs((0, 10, 1, 10.0))
    b = _runs((10, 20, 1, 10.0), (5, 8, 3, 3.0))
    merged = merge_sources([a, b])
    assert merged.select("start_us", "end_us", "posture").rows() == [(0, 20_000_000, 1)]
    assert merged["duration_s"].to_list() == pytest.approx([20.0])
    # the other way round, b's standing owns 5-8 s
    assert merge_sources([b, a])["posture"].to_list() == [1, 3, 1]


def _thigh_csv(path: Path, start: dt.datetime, minutes: int) -> Path:
    """25 Hz thigh acceleration: sitting for the first half, standing for the second."""
    n = 25 * 60 * minutes
    t_us = int(start.timestamp() * 1e6) + np.arange(n, dtype=np.int64) * 40_000
    acc = np.zeros((n, 3))
    acc[: n // 2, 0] = 1.0
    acc[n // 2 :, 2] = 1.0
    acc += np.random.default_rng(4).normal(0, 0.01, acc.shape)
    rows = "\n".join(f"{t},{x:.4f},{y:.4f},{z:.4f}" for t, (x, y, z) in zip(t_us, acc, strict=True))
    path.write_text("t_us,acc_x[g],acc_y[g],acc_z[g]\n" + rows + "\n")
    return path


def _day(data_dir: DataDir, after: dt.datetime | None = None) -> dict[str, float]:
    """P01's study-day minutes by posture (from ``after`` on, if given)."""
    since = after or dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    with open_read(data_dir) as con:
        minutes = dict(
            con.execute(
                "SELECT posture, sum(duration_s) / 60 FROM posture_periods "
                "WHERE participant_id = 'P01' AND local_date = ? AND start_time >= ? "
                "GROUP BY posture",
                [STUDY_DAY, since],
            ).fetchall()
        )
        # epochs start at sample times, so neighbouring periods of one source may overlap by a
        # fraction of an epoch; periods of two sources never overlap by more
        overlaps = con.execute(
            "SELECT count(*) FROM posture_periods p1 JOIN posture_periods p2 "
            "ON p1.participant_id = p2.participant_id AND p1.start_time < p2.start_time "
            "AND p2.start_time + INTERVAL 100 MILLISECOND < p1.end_time"
        ).fetchone()
        daily = con.execute(
            "SELECT sitting_min FROM daily_sitting WHERE participant_id = 'P01' AND local_date = ?",
            [STUDY_DAY],
        ).fetchone()
    assert overlaps == (0,)  # one owner for every instant
    if after is None:  # the daily figure is the periods' sum
        assert daily is not None and daily[0] == pytest.approx(minutes.get("sitting", 0.0))
    return {k: float(v) for k, v in minutes.items()}


def _added(a: dict[str, float], b: dict[str, float]) -> dict[str, float]:
    return {k: a.get(k, 0.0) + b.get(k, 0.0) for k in set(a) | set(b)}


@pytest.fixture(scope="module")
def collected(small_study: tuple[DataDir, object], tmp_path_factory: pytest.TempPathFactory):
    source, _ = small_study
    data_dir = DataDir(tmp_path_factory.mktemp("merge") / "study")
    shutil.copytree(source.root, data_dir.root)
    process(data_dir)
    return data_dir, _day(data_dir)


def _alone(base: DataDir, target: Path, csv: Path, after: dt.datetime | None = None):
    """The import's own minutes: imported into a copy without any collected data."""
    data_dir = DataDir(target)
    shutil.copytree(base.root, data_dir.root)
    shutil.rmtree(data_dir.spool)
    data_dir.catalog.unlink()
    for name in ("bookkeeping.jsonl",):
        (data_dir.root / name).unlink(missing_ok=True)
    from glutewake.store.bookkeeping import add_participant

    add_participant(data_dir, "P01", "Europe/Berlin")
    done = import_files(data_dir, [csv], participant_id="P01", placement="thigh", device_id="ax")
    assert done.files[0].status == "imported", done.files[0].message
    return _day(data_dir, after)


def test_an_import_after_collected_data_adds_to_the_day(
    collected: tuple[DataDir, dict[str, float]], tmp_path: Path
) -> None:
    base, before = collected
    data_dir = DataDir(tmp_path / "study")
    shutil.copytree(base.root, data_dir.root)
    # 12:00-12:40 UTC, after the collected morning (08:00-11:00 Berlin = 07:00-10:00 UTC)
    start = dt.datetime.combine(STUDY_DAY, dt.time(12, 0), tzinfo=dt.UTC)
    csv = _thigh_csv(tmp_path / "later.csv", start, 40)
    alone = _alone(base, tmp_path / "alone", csv)
    assert sum(alone.values()) == pytest.approx(40, abs=0.2)
    done = import_files(data_dir, [csv], participant_id="P01", placement="thigh", device_id="ax")
    assert done.files[0].status == "imported", done.files[0].message

    after = _day(data_dir)
    assert after == pytest.approx(_added(before, alone))


def test_collected_data_owns_the_time_an_import_also_covers(
    collected: tuple[DataDir, dict[str, float]], tmp_path: Path
) -> None:
    base, before = collected
    data_dir = DataDir(tmp_path / "study")
    shutil.copytree(base.root, data_dir.root)
    # 09:30-10:30 UTC: the first half inside the collected morning, the second after it
    start = dt.datetime.combine(STUDY_DAY, dt.time(9, 30), tzinfo=dt.UTC)
    csv = _thigh_csv(tmp_path / "overlap.csv", start, 60)
    with open_read(base) as con:
        row = con.execute(
            "SELECT max(end_time) FROM posture_periods WHERE participant_id = 'P01'"
        ).fetchone()
    assert row is not None
    collected_end = row[0]
    assert start < collected_end < start + dt.timedelta(minutes=60)
    done = import_files(data_dir, [csv], participant_id="P01", placement="thigh", device_id="ax")
    assert done.files[0].status == "imported", done.files[0].message

    after = _day(data_dir)
    # the collected morning is unchanged; only the import's time after it is added
    assert _day(data_dir, after=start) != _day(base, after=start)
    assert after == pytest.approx(
        _added(before, _alone(base, tmp_path / "alone", csv, after=collected_end)), abs=0.05
    )


def test_the_order_of_the_sources_does_not_matter(
    small_study: tuple[DataDir, object], collected: tuple[DataDir, dict[str, float]], tmp_path: Path
) -> None:
    base, _ = collected
    source, _ = small_study
    start = dt.datetime.combine(STUDY_DAY, dt.time(9, 30), tzinfo=dt.UTC)
    csv = _thigh_csv(tmp_path / "overlap.csv", start, 60)

    first = DataDir(tmp_path / "collected-first")
    shutil.copytree(base.root, first.root)
    import_files(first, [csv], participant_id="P01", placement="thigh", device_id="ax")

    second = DataDir(tmp_path / "imported-first")
    shutil.copytree(source.root, second.root)
    import_files(second, [csv], participant_id="P01", placement="thigh", device_id="ax")
    process(second)

    assert _day(first) == _day(second)
