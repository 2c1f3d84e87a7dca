"""``run_import``: storage, idempotency, time zones, timing QC, errors, chunking, the CLI."""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from glutewake.cli.import_command import add_import_command
from glutewake.ingest.importers import (
    FORMATS,
    ImportFileError,
    detect_format,
)
from glutewake.pipeline import import_files as run_import
from glutewake.store import samples as sample_store
from glutewake.store.bookkeeping import add_participant
from glutewake.store.catalog import open_read
from glutewake.store.datadir import DataDir

T0 = dt.datetime(2026, 3, 2, 8, 0, tzinfo=dt.timezone(dt.timedelta(hours=1)))
T0_US = int(T0.timestamp() * 1_000_000)


@pytest.fixture
def data_dir(tmp_path: Path) -> DataDir:
    """P01 registered (an import needs a known participant, like every command)."""
    d = DataDir(tmp_path / "data").create()
    add_participant(d, "P01", "UTC")
    return d


def acc_values(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.round(rng.normal(0, 0.05, (n, 3)) + np.array([0.0, 0.0, 1.0]), 4)


def write_generic(
    path: Path,
    t_us: np.ndarray,
    acc: np.ndarray,
    *,
    naive: bool = False,
    meta: str = "",
    header: str = "time,acc_x[g],acc_y[g],acc_z[g]",
) -> Path:
    lines = [meta.rstrip("\n")] if meta else []
    lines.append(header)
    offset = dt.timedelta(hours=1)
    for t, (x, y, z) in zip(t_us, acc, strict=True):
        when = dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(microseconds=int(t))
        when = when.astimezone(dt.timezone(offset))
        text = (
            when.replace(tzinfo=None).isoformat(timespec="milliseconds")
            if naive
            else (when.isoformat(timespec="milliseconds"))
        )
        lines.append(f"{text},{x},{y},{z}")
    path.write_text("\n".join(lines) + "\n")
    return path


def regular_t(n: int, fs_hz: float = 100.0, start_us: int = T0_US) -> np.ndarray:
    return start_us + np.round(np.arange(n) * 1e6 / fs_hz).astype(np.int64)


def counts(data_dir: DataDir) -> dict[str, int]:
    with open_read(data_dir) as con:
        return {
            t: int(con.execute(f"SELECT count(*) FROM {t}").fetchone()[0])  # type: ignore[index]
            for t in ("recordings", "import_files", "qc")
        }


def stored(data_dir: DataDir, pid: str = "P01", stream: str = "acc") -> sample_store.SampleBlock:
    block = sample_store.read_samples(
        data_dir,
        stream=stream,
        participant_id=pid,
        start_us=T0_US - 2 * 86_400_000_000,
        end_us=T0_US + 5 * 86_400_000_000,
    )
    assert block is not None
    return block


def test_generic_csv_is_stored_like_collected_samples(data_dir: DataDir, tmp_path: Path) -> None:
    n = 3000
    t_us, acc = regular_t(n), acc_values(n)
    path = write_generic(tmp_path / "thigh.csv", t_us, acc, meta="# device: thigh-7")
    summary = run_import(data_dir, [path], participant_id="P01")
    assert [f.status for f in summary.files] == ["imported"], summary.files[0].message
    assert summary.files[0].format == "generic-csv" and summary.files[0].rows == n
    block = stored(data_dir)
    np.testing.assert_array_equal(block.t_us, t_us)  # offsets in the file give UTC
    np.testing.assert_allclose(block.values, acc, atol=1e-6)
    files = list(data_dir.samples.glob("stream=acc/participant_id=P01/date=2026-03-02/*.parquet"))
    assert len(files) == 1 and files[0].name.startswith("thigh-7-")
    with open_read(data_dir) as con:
        rec = con.execute(
            "SELECT device_id, profile, stream, n_samples, fs_hz, unit FROM recordings"
        ).fetchall()
        imp = con.execute(
            "SELECT sha256, format, rows_read, recordings FROM import_files"
        ).fetchall()
    assert rec == [("thigh-7", "import:generic-csv", "acc", n, pytest.approx(100.0), "g")]
    assert imp[0][0] == summary.files[0].sha256 and imp[0][1:3] == ("generic-csv", n)
    assert imp[0][3] == summary.files[0].recordings[0]


def test_same_file_twice_adds_nothing(data_dir: DataDir, tmp_path: Path) -> None:
    path = write_generic(tmp_path / "a.csv", regular_t(500), acc_values(500))
    first = run_import(data_dir, [path], participant_id="P01")
    before = counts(data_dir)
    copy = tmp_path / "renamed-copy.csv"
    copy.write_bytes(path.read_bytes())
    again = run_import(data_dir, [path, copy], participant_id="P01")
    assert first.files[0].status == "imported"
    assert [f.status for f in again.files] == ["skipped", "skipped"]
    assert counts(data_dir) == before
    assert len(stored(data_dir).t_us) == 500
    # the same bytes for another participant are that participant's data
    add_participant(data_dir, "P02", "UTC")
    other = run_import(data_dir, [copy], participant_id="P02")
    assert other.files[0].status == "imported"


def test_naive_times_need_tz_and_use_it(data_dir: DataDir, tmp_path: Path) -> None:
    t_us = regular_t(400)
    path = write_generic(tmp_path / "naive.csv", t_us, acc_values(400), naive=True)
    failed = run_import(data_dir, [path], participant_id="P01")
    assert failed.files[0].status == "failed"
    assert "--tz" in str(failed.files[0].message) and str(path) in str(failed.files[0].message)
    assert not list(data_dir.samples.glob("**/*.parquet"))
    ok = run_import(data_dir, [path], participant_id="P01", tz="Europe/Berlin")
    assert ok.files[0].status == "imported"
    np.testing.assert_array_equal(stored(data_dir).t_us, t_us)  # Berlin is UTC+1 in March


def test_unknown_tz_and_format_are_call_errors(data_dir: DataDir, tmp_path: Path) -> None:
    with pytest.raises(ImportFileError, match="time zone"):
        run_import(data_dir, [], participant_id="P01", tz="Mars/Olympus")
    with pytest.raises(ImportFileError, match="unknown format"):
        run_import(data_dir, [], participant_id="P01", format="nope")


def test_gaps_and_clock_jumps_are_recorded_not_resampled(data_dir: DataDir, tmp_path: Path) -> None:
    t_us = regular_t(2000)
    t_us[1000:] += 5_000_000  # 5 s without data
    t_us[1500:] -= 2_000_000  # the clock steps back 2 s
    path = write_generic(tmp_path / "gappy.csv", t_us, acc_values(2000))
    # small batches: the gap and the jump are found across batch boundaries too
    summary = run_import(data_dir, [path], participant_id="P01", chunk_rows=333)
    qc = summary.files[0].qc["acc"]
    assert qc["gaps"] == 1 and qc["gap_s"] == pytest.approx(5.01)
    assert qc["clock_jumps_back"] == 1 and qc["resampled"] is False
    assert qc["fs_measured_hz"] == pytest.approx(100.0)
    on_disk = pl.concat([pl.read_parquet(f) for f in data_dir.samples.glob("**/*.parquet")])
    assert on_disk.height == 2000  # every row kept on disk, none made up
    # readers resolve the jump: the span that repeats earlier times is not interleaved
    assert np.all(np.diff(stored(data_dir).t_us) > 0) and len(stored(data_dir).t_us) == 1800
    with open_read(data_dir) as con:
        kinds = dict(
            con.execute(
                "SELECT kind, value FROM qc WHERE kind LIKE 'gap:%' ORDER BY kind"
            ).fetchall()
        )
        detail = con.execute("SELECT detail FROM qc WHERE kind = 'import'").fetchone()
    assert kinds == {"gap:clock_jump_back": pytest.approx(1.99), "gap:gap": pytest.approx(5.01)}
    assert detail is not None and '"gaps": 1' in detail[0]


def test_irregular_sampling_is_measured(data_dir: DataDir, tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    t_us = regular_t(1000) + rng.integers(-4000, 4000, 1000)  # ±4 ms on a 10 ms period
    t_us.sort()
    path = write_generic(tmp_path / "jitter.csv", t_us, acc_values(1000))
    qc = run_import(data_dir, [path], participant_id="P01").files[0].qc["acc"]
    assert 0.2 < qc["irregular_share"] < 0.9
    assert qc["fs_measured_hz"] == pytest.approx(100.0, rel=0.01)


def test_malformed_file_fails_alone_with_its_line(data_dir: DataDir, tmp_path: Path) -> None:
    good = write_generic(tmp_path / "good.csv", regular_t(300), acc_values(300))
    bad = write_generic(
        tmp_path / "bad.csv", regular_t(300, start_us=T0_US + 10**9), acc_values(300)
    )
    lines = bad.read_text().splitlines()
    fields = lines[201].split(",")
    fields[2] = "n/a"
    lines[201] = ",".join(fields)  # line 202 of the file
    bad.write_text("\n".join(lines) + "\n")
    summary = run_import(data_dir, [bad, good], participant_id="P01")
    assert [f.status for f in summary.files] == ["failed", "imported"]
    msg = str(summary.files[0].message)
    assert str(bad) in msg and "line 202" in msg and "acc_y[g]" in msg and "number" in msg
    assert counts(data_dir)["recordings"] == 1 and counts(data_dir)["import_files"] == 1
    assert len(stored(data_dir).t_us) == 300
    assert not list(data_dir.root.glob(".import-*"))  # staging cleaned up


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("time,acc_x[g],acc_y[m/s^2],acc_z[g]", "mixed units"),
        ("time,acc_x[g],acc_y[g],acc_z[furlongs]", "known unit"),
        ("time,time,acc_x[g]", "more than one time column"),
    ],
)
def test_wrong_columns_are_named(
    data_dir: DataDir, tmp_path: Path, header: str, expected: str
) -> None:
    path = tmp_path / "cols.csv"
    path.write_text(f"{header}\n2026-03-02T08:00:00+01:00,1,2,3\n")
    summary = run_import(data_dir, [path], participant_id="P01", format="generic-csv")
    assert summary.files[0].status == "failed"
    assert expected in str(summary.files[0].message) and "line 1" in str(summary.files[0].message)


def test_empty_value_and_bad_time_name_the_line(data_dir: DataDir, tmp_path: Path) -> None:
    path = write_generic(tmp_path / "holes.csv", regular_t(50), acc_values(50))
    lines = path.read_text().splitlines()
    lines[10] = lines[10].rsplit(",", 1)[0] + ","
    path.write_text("\n".join(lines) + "\n")
    msg = str(run_import(data_dir, [path], participant_id="P01").files[0].message)
    assert "line 11" in msg and "empty" in msg
    path2 = write_generic(tmp_path / "badtime.csv", regular_t(50), acc_values(50))
    lines = path2.read_text().splitlines()
    lines[20] = "yesterday-ish" + lines[20][lines[20].index(",") :]
    path2.write_text("\n".join(lines) + "\n")
    msg = str(run_import(data_dir, [path2], participant_id="P01").files[0].message)
    assert "line 21" in msg and "'time'" in msg and "date-time" in msg


def test_start_and_rate_header_without_time_column(data_dir: DataDir, tmp_path: Path) -> None:
    acc = acc_values(250)
    path = tmp_path / "rate.csv"
    body = "\n".join(f"{x},{y},{z}" for x, y, z in acc)
    path.write_text(
        "# start: 2026-03-02T08:00:00+01:00\n# fs_hz: 50\nx[g],y[g],z[g]\n" + body + "\n"
    )
    summary = run_import(data_dir, [path], participant_id="P01")
    assert summary.files[0].status == "imported", summary.files[0].message
    np.testing.assert_array_equal(stored(data_dir).t_us, regular_t(250, 50.0))
    assert summary.files[0].qc["acc"]["fs_stated_hz"] == 50.0


def test_emg_and_acc_streams_with_unit_conversion(data_dir: DataDir, tmp_path: Path) -> None:
    n = 400
    t_us = regular_t(n, 200.0)
    path = tmp_path / "mixed.csv"
    rows = [f"{int(t)},{i * 0.001},{i * 0.002},9.80665,0,0" for i, t in enumerate(t_us)]
    path.write_text(
        "t_us,emg_glute[mV],emg_ham[mV],acc_x[m/s^2],acc_y[m/s^2],acc_z[m/s^2]\n"
        + "\n".join(rows)
        + "\n"
    )
    summary = run_import(data_dir, [path], participant_id="P01", exercise="glute_bridge")
    assert summary.files[0].status == "imported", summary.files[0].message
    emg = stored(data_dir, stream="emg")
    assert emg.channels == ("glute", "ham")
    np.testing.assert_allclose(emg.values[:, 1], np.arange(n) * 2.0, rtol=1e-6)  # mV -> µV
    np.testing.assert_allclose(stored(data_dir).values[:, 0], 1.0, rtol=1e-6)  # m/s² -> g
    with open_read(data_dir) as con:
        ex = con.execute("SELECT DISTINCT exercise FROM recordings").fetchall()
    assert ex == [("glute_bridge",)]


def test_large_file_is_split_into_bounded_chunks(
    data_dir: DataDir, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from glutewake.ingest.importers import _core

    monkeypatch.setattr(_core, "CHUNK_VALUES", 3000)  # 1000 rows of x,y,z per chunk
    n = 3500
    t_us, acc = regular_t(n), acc_values(n)
    path = write_generic(tmp_path / "long.csv", t_us, acc)
    summary = run_import(data_dir, [path], participant_id="P01", chunk_rows=700)
    assert len(summary.files[0].recordings) == 4
    block = stored(data_dir)
    np.testing.assert_array_equal(block.t_us, t_us)
    np.testing.assert_allclose(block.values, acc, atol=1e-6)
    with open_read(data_dir) as con:
        n_rec = con.execute("SELECT sum(n_samples), count(*) FROM recordings").fetchone()
    assert n_rec == (n, 4)


def test_placement_registers_the_device(data_dir: DataDir, tmp_path: Path) -> None:
    add_participant(data_dir, "P01", "Europe/Berlin")
    path = write_generic(tmp_path / "p.csv", regular_t(200), acc_values(200))
    run_import(data_dir, [path], participant_id="P01", placement="lower_back", device_id="back")
    with open_read(data_dir) as con:
        rows = con.execute("SELECT device_id, profile, placement FROM devices").fetchall()
    assert rows == [("back", "import:generic-csv", "lower_back")]
    with pytest.raises(ImportFileError, match="participant 'P09' does not exist"):
        run_import(data_dir, [path], participant_id="P09", placement="thigh")
    bad = tmp_path / "bad.csv"
    bad.write_text("time,acc_x[g]\n2026-03-02T08:00:00+01:00,oops\n")
    failed = run_import(data_dir, [bad], participant_id="P01", placement="thigh", device_id="new")
    assert failed.files[0].status == "failed"
    with open_read(data_dir) as con:  # the failed file's new device is not left behind
        assert con.execute("SELECT device_id FROM devices ORDER BY 1").fetchall() == [("back",)]


def test_unrecognised_and_missing_files(data_dir: DataDir, tmp_path: Path) -> None:
    odd = tmp_path / "notes.txt"
    odd.write_text("dear diary\n")
    summary = run_import(data_dir, [odd, tmp_path / "nope.csv"], participant_id="P01")
    assert [f.status for f in summary.files] == ["failed", "failed"]
    assert "not recognised" in str(summary.files[0].message)
    assert "no such file" in str(summary.files[1].message)
    assert detect_format(odd) is None


def _cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--data")
    common.add_argument("-q", "--quiet", action="store_true")
    sub = parser.add_subparsers(dest="command")
    add_import_command(sub, common)
    args = parser.parse_args(argv)
    return int(args.func(args))


def test_cli_command_exit_status(
    data_dir: DataDir, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = write_generic(tmp_path / "g.csv", regular_t(100), acc_values(100))
    bad = tmp_path / "b.csv"
    bad.write_text("time,acc_x[g]\n2026-03-02T08:00:00+01:00,abc\n")
    base = ["import", "--data", str(data_dir.root), "--participant", "P01"]
    assert _cli([*base, str(good)]) == 0
    assert _cli([*base, str(good)]) == 0  # already imported is not a failure
    assert _cli([*base, str(bad), "--format", "generic-csv"]) == 1
    out = capsys.readouterr()
    assert "imported" in out.out and "skipped" in out.out
    assert "line 2" in out.err and "'acc_x[g]'" in out.err
    assert "generic-csv" in FORMATS


def test_thigh_import_derives_the_local_day(data_dir: DataDir, tmp_path: Path) -> None:
    add_participant(data_dir, "P01", "Europe/Berlin")
    fs_hz, n = 25.0, 25 * 1800
    t_us = regular_t(n, fs_hz)
    rng = np.random.default_rng(9)
    # sitting: thigh horizontal (gravity on x), then standing: thigh vertical (gravity on z)
    acc = np.zeros((n, 3))
    acc[: n // 2, 0] = 1.0
    acc[n // 2 :, 2] = 1.0
    acc += rng.normal(0, 0.01, acc.shape)
    path = tmp_path / "thigh.csv"
    rows = "\n".join(f"{t},{x:.4f},{y:.4f},{z:.4f}" for t, (x, y, z) in zip(t_us, acc, strict=True))
    path.write_text("t_us,acc_x[g],acc_y[g],acc_z[g]\n" + rows + "\n")
    summary = run_import(data_dir, [path], participant_id="P01", placement="thigh")
    assert summary.files[0].status == "imported", summary.files[0].message
    assert summary.participant_days == 1
    with open_read(data_dir) as con:
        day = con.execute("SELECT local_date, wear_min FROM daily_sitting").fetchall()
    assert day[0][0] == dt.date(2026, 3, 2) and day[0][1] > 0


def test_local_time_skipped_by_dst_names_the_line(data_dir: DataDir, tmp_path: Path) -> None:
    path = tmp_path / "dst.csv"
    path.write_text(
        "time,acc_x[g],acc_y[g],acc_z[g]\n"
        "2026-03-29T01:59:59.980,0,0,1\n"
        "2026-03-29T01:59:59.990,0,0,1\n"
        "2026-03-29T02:00:00.000,0,0,1\n"  # clocks jump from 02:00 to 03:00 in Berlin
    )
    f = run_import(data_dir, [path], participant_id="P01", tz="Europe/Berlin").files[0]
    assert f.status == "failed"
    assert "line 4" in str(f.message) and "exists in Europe/Berlin" in str(f.message)


def test_ragged_line_fails_with_the_file_named(data_dir: DataDir, tmp_path: Path) -> None:
    path = write_generic(tmp_path / "ragged.csv", regular_t(20), acc_values(20))
    lines = path.read_text().splitlines()
    lines[5] += ",7"
    path.write_text("\n".join(lines) + "\n")
    f = run_import(data_dir, [path], participant_id="P01").files[0]
    assert f.status == "failed" and str(path) in str(f.message)
    assert "line 6: 5 fields; expected 4" in str(f.message)


def test_error_after_stored_chunks_leaves_nothing(
    data_dir: DataDir, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from glutewake.ingest.importers import _core

    monkeypatch.setattr(_core, "CHUNK_VALUES", 300)  # 100 rows per stored chunk
    path = write_generic(tmp_path / "late.csv", regular_t(400), acc_values(400))
    lines = path.read_text().splitlines()
    lines[351] = lines[351].replace(",", ",x", 1)
    path.write_text("\n".join(lines) + "\n")
    f = run_import(data_dir, [path], participant_id="P01", chunk_rows=100).files[0]
    assert f.status == "failed" and "line 352" in str(f.message)
    assert not list(data_dir.samples.glob("**/*.parquet"))  # chunks 0-2 were stored, then removed


@pytest.mark.parametrize("chunk_rows", [4_000_000, 97])
def test_hour_repeated_when_clocks_go_back_is_read_in_order(
    data_dir: DataDir, tmp_path: Path, chunk_rows: int
) -> None:
    # Berlin, 2026-10-25: 03:00 CEST becomes 02:00 CET, so 02:00-02:59 local happens twice
    start = dt.datetime(2026, 10, 25, 1, 30)
    local = [start + dt.timedelta(seconds=i) for i in range(60 * 90)]  # 01:30-02:59:59, 1 Hz
    local += [dt.datetime(2026, 10, 25, 2, 0) + dt.timedelta(seconds=i) for i in range(60 * 90)]
    path = tmp_path / "fold.csv"
    path.write_text(
        "time,acc_x[g],acc_y[g],acc_z[g]\n"
        + "\n".join(f"{t.isoformat(timespec='milliseconds')},0,0,1" for t in local)
        + "\n"
    )
    f = run_import(
        data_dir, [path], participant_id="P01", tz="Europe/Berlin", chunk_rows=chunk_rows
    ).files[0]
    assert f.status == "imported", f.message
    assert f.qc["acc"]["clock_jumps_back"] == 0 and f.qc["acc"]["gaps"] == 0
    first_utc = int(dt.datetime(2026, 10, 24, 23, 30, tzinfo=dt.UTC).timestamp() * 1e6)
    block = sample_store.read_samples(
        data_dir,
        stream="acc",
        participant_id="P01",
        start_us=first_utc - 10**9,
        end_us=first_utc + 10**11,
    )
    assert block is not None
    np.testing.assert_array_equal(block.t_us, first_utc + np.arange(len(local)) * 1_000_000)


def test_thigh_data_with_a_clock_jump_back_still_gives_daily_sitting(
    data_dir: DataDir, tmp_path: Path
) -> None:
    from glutewake.store.bookkeeping import add_participant

    add_participant(data_dir, "P01", "UTC")
    n = 100 * 600  # 10 min at 100 Hz
    t_us = regular_t(n)
    t_us[n // 2 :] -= 30_000_000  # the clock steps back 30 s half-way
    path = write_generic(tmp_path / "jump.csv", t_us, acc_values(n))
    summary = run_import(data_dir, [path], participant_id="P01")
    assert summary.files[0].status == "imported", summary.files[0].message
    with open_read(data_dir) as con:
        wear = con.execute("SELECT wear_min FROM daily_sitting").fetchall()
    # the repeated 30 s are counted once: 10 min recorded, 9.5 min of distinct time
    assert len(wear) == 1 and wear[0][0] == pytest.approx(9.5, abs=0.1)
