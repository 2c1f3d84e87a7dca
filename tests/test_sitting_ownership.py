"""One owner per bout, end to end: the demo catalog and recordings added in pieces.

The catalog invariants of issue 15 are checked on what ``process`` stores: no bout stored twice
or overlapping another; per day, the stored posture inside bouts is exactly the day's sitting
plus the short stands the bouts bridge; a bout's stored posture adds up to its whole length;
and the same recording gives the same catalog whether it arrives whole or in pieces.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from glutewake.devices.base import StreamSamples
from glutewake.pipeline import add_recordings
from glutewake.simulate.posture import simulate_thigh_days
from glutewake.store.bookkeeping import add_participant
from glutewake.store.catalog import open_read, query_frame
from glutewake.store.datadir import DataDir
from glutewake.store.samples import NewRecording

UPRIGHT = ("standing", "moving", "cycling")


def sitting_tables(data_dir: DataDir) -> dict[str, pl.DataFrame]:
    with open_read(data_dir) as con:
        return {
            name: query_frame(con, f"SELECT * EXCLUDE (glutewake_version, params) FROM {name} "
                              f"ORDER BY {order}")
            for name, order in (
                ("daily_sitting", "participant_id, local_date"),
                ("sitting_bouts", "participant_id, start_time"),
            )
        } | {
            "posture_periods": query_frame(
                con, "SELECT * FROM posture_periods ORDER BY participant_id, start_time"
            )
        }


def check_invariants(tables: dict[str, pl.DataFrame], min_break_s: float = 10.0) -> int:
    """Assert the catalog invariants; returns the number of bouts that cross local midnight."""
    bouts = tables["sitting_bouts"]
    periods = tables["posture_periods"]
    daily = tables["daily_sitting"]
    crossing = 0
    for pid in bouts["participant_id"].unique().to_list():
        b = bouts.filter(pl.col("participant_id") == pid).sort("start_time")
        p = periods.filter(pl.col("participant_id") == pid).sort("start_time")
        d = daily.filter(pl.col("participant_id") == pid)
        # no bout stored twice, none overlapping another
        assert b["start_time"].n_unique() == b.height
        assert (b["end_time"][:-1] <= b["start_time"][1:]).all()
        # which bout (if any) each stored posture period lies in
        starts, ends = b["start_time"].to_numpy(), b["end_time"].to_numpy()
        k = np.searchsorted(starts, p["start_time"].to_numpy(), side="right") - 1
        inside = (k >= 0) & (p["end_time"].to_numpy() <= ends[np.maximum(k, 0)])
        p = p.with_columns(
            pl.Series("bout", np.where(inside, k, -1)),
            pl.col("posture").is_in(UPRIGHT).alias("upright"),
        )
        in_bouts = p.filter(pl.col("bout") >= 0)
        # inside bouts there is only sitting and bridged upright (short stands)
        assert in_bouts["posture"].is_in(("sitting", *UPRIGHT)).all()
        assert p.filter(pl.col("bout") < 0, pl.col("posture") == "sitting").height == 0
        # each bout's stored posture, over all the days it touches, is its whole length
        per_bout = in_bouts.group_by("bout").agg(
            pl.col("duration_s").sum(),
            pl.col("duration_s").filter(pl.col("posture") == "sitting").sum().alias("sit_s"),
            pl.col("local_date").n_unique().alias("days"),
        ).sort("bout")
        assert per_bout.height == b.height
        assert np.allclose(per_bout["duration_s"].to_numpy() / 60, b["duration_min"].to_numpy())
        assert np.allclose(per_bout["sit_s"].to_numpy() / 60, b["sitting_min"].to_numpy())
        crossing += int((per_bout["days"] > 1).sum())
        # per day: bout time on the day = sitting + the short stands bridged that day, exactly
        on_day = in_bouts.group_by("local_date").agg(
            pl.col("duration_s").sum().alias("in_bouts_s"),
            pl.col("duration_s").filter(pl.col("upright")).sum().alias("bridged_s"),
        )
        sitting = p.group_by("local_date").agg(
            pl.col("duration_s").filter(pl.col("posture") == "sitting").sum().alias("sit_s")
        )
        check = d.join(sitting, on="local_date").join(on_day, on="local_date", how="left")
        check = check.fill_null(0.0)
        assert np.allclose(check["sit_s"], check["sitting_min"] * 60, atol=1e-6)
        assert np.allclose(check["in_bouts_s"], check["sit_s"] + check["bridged_s"], atol=1e-6)
        # a bout is counted on the day it starts, with its whole length
        counted = b.group_by("local_date").agg(
            pl.len().alias("n"), (pl.col("duration_min") >= 30).sum().alias("n30")
        )
        check = d.join(counted, on="local_date", how="left").fill_null(0)
        assert (check["sitting_bouts"] == check["n"]).all()
        assert (check["bouts_30min"] == check["n30"]).all()
        # short stands: the bridged upright stretches, each shorter than the break minimum
        stands = in_bouts.with_columns(
            (pl.col("upright") & ~pl.col("upright").shift(1, fill_value=False)).alias("first")
        )
        stands = stands.with_columns(pl.col("first").cum_sum().alias("stand"))
        lengths = stands.filter(pl.col("upright")).group_by("stand").agg(pl.col("duration_s").sum())
        assert (lengths["duration_s"] < min_break_s).all()
        assert int(b["short_stands"].sum()) == lengths.height == int(d["short_stands"].sum())
    return crossing


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> DataDir:
    """The demo's P01 (same seed, same data: its three days), processed."""
    from glutewake.pipeline import process
    from glutewake.simulate.study import DEFAULT_PARTICIPANTS, build_study, register_study

    data_dir = DataDir(tmp_path_factory.mktemp("demo") / "demo").create()
    truth = build_study(data_dir, days=3, participants=DEFAULT_PARTICIPANTS[:1], workers=2)
    register_study(data_dir, truth)
    process(data_dir, workers=2)
    return data_dir


@pytest.mark.slow
def test_demo_catalog_keeps_every_bout_once(demo: DataDir) -> None:
    tables = sitting_tables(demo)
    assert check_invariants(tables) >= 1  # the demo has bouts running through midnight
    # issue 15's case: P01's bout from 23:59:59 (Berlin) to 00:44:58 is one bout of 27 March
    b = tables["sitting_bouts"].filter(
        pl.col("participant_id") == "P01", pl.col("duration_min") >= 30
    )
    midnight_us = int(dt.datetime(2026, 3, 28, tzinfo=ZoneInfo(TZ)).timestamp() * 1e6)
    late = b.filter(
        pl.col("start_time").dt.epoch("us") < midnight_us,
        pl.col("end_time").dt.epoch("us") > midnight_us,
    )
    assert late.height == 1 and late["local_date"][0] == dt.date(2026, 3, 27)
    assert late["duration_min"][0] == pytest.approx(45.0, abs=0.1)
    day = tables["daily_sitting"].filter(pl.col("participant_id") == "P01")
    assert day["bouts_30min"].to_list() == [
        b.filter(pl.col("local_date") == d).height for d in day["local_date"].to_list()
    ]


TZ = "Europe/Berlin"
FS_HZ = 25.0
START_US = int(dt.datetime(2026, 3, 28, 12, tzinfo=ZoneInfo(TZ)).timestamp() * 1e6)


@pytest.fixture(scope="module")
def night_recording() -> tuple[np.ndarray, np.ndarray]:
    """Two nights worn in bed (lying reads as sitting on the thigh), over the DST change."""
    sim = simulate_thigh_days(1.75, FS_HZ, start_us=START_US, tz=TZ, seed=11, night="lying")
    return sim.t_us, np.asarray(sim.acc_g, dtype=np.float64)


def _add(data_dir: DataDir, t_us: np.ndarray, acc: np.ndarray, cuts: list[int]) -> None:
    """Add the recording in pieces split at the sample indices ``cuts``, later pieces first."""
    bounds = [0, *cuts, t_us.size]
    for k in reversed(range(len(bounds) - 1)):
        lo, hi = bounds[k], bounds[k + 1]
        samples = StreamSamples(
            stream="acc",
            t_us=t_us[lo:hi],
            values=acc[lo:hi],
            channel_names=("x", "y", "z"),
            unit="g",
            fs_hz=FS_HZ,
            sample_seq=np.arange(lo, hi, dtype=np.int64),
        )
        add_recordings(
            data_dir,
            [NewRecording("P09", "thigh1", "import:csv", f"thigh1-part{k}", samples)],
        )


def _catalog(root: Path, recording: tuple[np.ndarray, np.ndarray], cuts: list[int]) -> DataDir:
    data_dir = DataDir(root).create()
    add_participant(data_dir, "P09", TZ)
    _add(data_dir, *recording, cuts)
    return data_dir


def _local_index(t_us: np.ndarray, day: dt.date, hour: float) -> int:
    at = dt.datetime.combine(day, dt.time(), tzinfo=ZoneInfo(TZ)) + dt.timedelta(hours=hour)
    return int(np.searchsorted(t_us, int(at.timestamp() * 1e6)))


def test_pieces_in_any_order_give_the_catalog_of_the_whole(
    night_recording: tuple[np.ndarray, np.ndarray], tmp_path: Path
) -> None:
    t_us = night_recording[0]
    whole = sitting_tables(_catalog(tmp_path / "whole", night_recording, []))
    assert check_invariants(whole) >= 1  # a night in bed runs through midnight
    sat = dt.date(2026, 3, 28)
    pieces = {
        "at 01:17": [_local_index(t_us, sat + dt.timedelta(days=1), 1.3)],
        "at 23:59:50 and 04:00": [
            _local_index(t_us, sat, 23.0 + 59 / 60 + 50 / 3600),
            _local_index(t_us, sat + dt.timedelta(days=1), 4.0),
        ],
    }
    for name, cuts in pieces.items():
        split = sitting_tables(_catalog(tmp_path / name.replace(" ", "_"), night_recording, cuts))
        for table, frame in whole.items():
            try:
                assert_frame_equal(split[table], frame, check_exact=False)
            except AssertionError as exc:
                raise AssertionError(f"{table}, pieces cut {name}: {exc}") from None


def test_process_redo_rederives_an_old_catalog(
    night_recording: tuple[np.ndarray, np.ndarray], tmp_path: Path
) -> None:
    from glutewake.pipeline import process
    from glutewake.store.catalog import open_write

    data_dir = _catalog(tmp_path / "old", night_recording, [])
    good = sitting_tables(data_dir)
    with open_write(data_dir) as con:  # rows as an older glutewake left them
        # issue 15: a bout running through midnight stored again by the next day
        con.execute(
            "INSERT INTO sitting_bouts (participant_id, local_date, start_time, end_time, "
            "duration_min, glutewake_version, params) SELECT b.participant_id, "
            "b.local_date + 1, b.start_time, b.end_time, b.duration_min, 'old', '{}' "
            "FROM sitting_bouts b JOIN daily_sitting d ON d.participant_id = b.participant_id "
            "AND d.local_date = b.local_date + 1"
        )
        con.execute("UPDATE daily_sitting SET short_stands = NULL, bouts_30min = bouts_30min + 1")
    assert sitting_tables(data_dir)["sitting_bouts"].height > good["sitting_bouts"].height
    summary = process(data_dir, redo=True)  # imported data: no spool to decode
    assert summary.participant_days >= 2
    for table, frame in good.items():
        assert_frame_equal(sitting_tables(data_dir)[table], frame, check_exact=False)
