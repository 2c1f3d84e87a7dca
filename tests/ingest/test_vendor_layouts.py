"""Every import format, from files laid out the way the vendor's app or tool writes them.

One simulated hour of thigh acceleration (with its true postures) is written in each vendor
layout by :mod:`glutewake.simulate.vendor_files` (which cites the vendor source of each), then
imported without ``--format``: the sample count, the times, the values and the derived sitting
minutes must come back; a copy cut off mid-line must be refused with one line that says so, or
imported without its cut line and flagged.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from glutewake.ingest.importers import detect_format
from glutewake.ingest.importers.sniff import HEAD_BYTES, Head
from glutewake.pipeline import import_files
from glutewake.simulate import vendor_files as vf
from glutewake.store import samples as sample_store
from glutewake.store.bookkeeping import add_participant
from glutewake.store.catalog import open_read
from glutewake.store.datadir import DataDir

TZ = "Europe/Berlin"
START = dt.datetime(2026, 3, 2, 9, 0)
HOUR_US = 3_600_000_000


@pytest.fixture(scope="module")
def recordings() -> dict[float, vf.ThighRecording]:
    """The same simulated hour at each vendor's rate (26 Hz Movesense and Polar, 25 Hz AX3,
    30 Hz ActiGraph)."""
    return {fs: vf.thigh_recording(60, fs, start=START, tz=TZ) for fs in (25.0, 26.0, 30.0)}


@pytest.fixture
def data_dir(tmp_path: Path) -> DataDir:
    d = DataDir(tmp_path / "data").create()
    add_participant(d, "P01", TZ)  # with a time zone, the import derives the day
    return d


@dataclass(frozen=True)
class Case:
    writer: Callable[[vf.ThighRecording, Path], Path]
    fs_hz: float
    fmt: str
    #: how far the first sample's stored time may lie from the truth (s): the file's clock
    time_tol_s: float
    #: how far stored values may lie from the truth (g): the file's number format
    value_tol_g: float
    #: samples the layout leaves out at the start (iOS CSV drops the first packet)
    dropped: int = 0
    #: a cut copy is refused (a single JSON document, EDF) rather than imported without its cut
    cut_refused: bool = False
    #: samples per packet, for layouts that write whole packets
    packet: int = 1


def _sub(name: str, writer: Callable[..., Path], **kw: object) -> Callable[..., Path]:
    def write(rec: vf.ThighRecording, folder: Path) -> Path:
        (folder / name).mkdir(exist_ok=True)
        return writer(rec, folder / name, **kw)

    return write


CASES = {
    # phone arrival anchors the sensor clock: within the least arrival latency (30 ms here)
    "polar-sensor-logger": Case(vf.write_polar_sensor_logger, 26, "polar-sensor-logger", 0.05,
                                6e-4),
    # the name states the log's last modification to the second: the last sample
    "movesense-datalogger": Case(vf.write_movesense_datalogger, 26, "movesense-json", 1.6, 1e-6,
                                 cut_refused=True, packet=8),
    "movesense-sbem2json": Case(vf.write_movesense_sbem2json, 26, "movesense-json", 0.002, 1e-6,
                                cut_refused=True, packet=8),
    # the name states when Record was pressed, to the second, before the first packet came
    "movesense-ios-json": Case(vf.write_movesense_ios_json, 26, "movesense-json", 1.5, 1e-6,
                               packet=4),
    "movesense-ios-json-old": Case(_sub("old", vf.write_movesense_ios_json, wrapped=False), 26,
                                   "movesense-json", 1.5, 1e-6, packet=4),
    "movesense-ios-csv": Case(vf.write_movesense_ios_csv, 26, "movesense-csv", 1.5, 1e-6,
                              dropped=4, packet=4),
    # the name states when the log was saved, a moment after the last sample
    "movesense-android-csv": Case(vf.write_movesense_android_csv, 26, "movesense-csv", 3.0, 1e-6,
                                  packet=8),
    "movesense-android-csv-de": Case(_sub("de", vf.write_movesense_android_csv, decimal=","), 26,
                                     "movesense-csv", 3.0, 1e-6, packet=8),
    "actigraph-csv": Case(vf.write_actigraph_csv, 30, "actigraph-csv", 0.001, 6e-4),
    "axivity-csv": Case(vf.write_axivity_csv, 25, "axivity-csv", 0.001, 1e-6),
    "axivity-csv-serial": Case(_sub("s", vf.write_axivity_csv, time_form="serial"), 25,
                               "axivity-csv", 0.001, 1e-6),
    "axivity-csv-excel-extras": Case(
        _sub("e", vf.write_axivity_csv, time_form="excel", extras=True), 25, "axivity-csv",
        0.001, 1e-6),
    "axivity-omconvert": Case(_sub("o", vf.write_axivity_csv, header=True), 25, "axivity-csv",
                              0.001, 1e-6),
    "generic-csv": Case(vf.write_generic_csv, 26, "generic-csv", 0.0, 6e-6),
    "edf": Case(lambda rec, folder: vf.write_edf(folder, rec.local(int(rec.t_us[0])), rec=rec),
                26, "edf", 0.0, 3e-4, cut_refused=True),
}  # fmt: skip


def _stored(data_dir: DataDir, rec: vf.ThighRecording) -> sample_store.SampleBlock:
    block = sample_store.read_samples(
        data_dir,
        stream="acc",
        participant_id="P01",
        start_us=int(rec.t_us[0]) - HOUR_US,
        end_us=int(rec.t_us[-1]) + HOUR_US,
    )
    assert block is not None
    return block


@pytest.mark.parametrize("name", list(CASES))
def test_vendor_file_round_trip(
    name: str, recordings: dict[float, vf.ThighRecording], data_dir: DataDir, tmp_path: Path
) -> None:
    case = CASES[name]
    rec = recordings[case.fs_hz]
    path = case.writer(rec, tmp_path)
    assert detect_format(path) == case.fmt
    summary = import_files(data_dir, [path], participant_id="P01", tz=TZ)
    f = summary.files[0]
    assert (f.status, f.format) == ("imported", case.fmt), f.message
    assert f.flags == [] and summary.warnings == []  # a clean vendor file raises nothing
    n = rec.n - rec.n % case.packet - case.dropped  # whole packets only
    assert f.rows == n
    block = _stored(data_dir, rec)
    truth_t = rec.t_us[case.dropped : case.dropped + n]
    shift_s = (int(block.t_us[0]) - int(truth_t[0])) / 1e6
    assert abs(shift_s) <= case.time_tol_s
    # the spacing is the file's: the span matches the truth to a few ms (packet clock steps)
    assert abs((block.t_us[-1] - block.t_us[0]) - (truth_t[-1] - truth_t[0])) <= 40_000
    np.testing.assert_allclose(
        block.values[:, :3], rec.acc_g[case.dropped : case.dropped + n], atol=case.value_tol_g
    )
    with open_read(data_dir) as con:
        sitting = con.execute("SELECT sitting_min FROM daily_sitting").fetchall()
    assert len(sitting) == 1
    assert sitting[0][0] == pytest.approx(rec.sitting_min, abs=0.25)


def _cut(path: Path, share: float = 0.6) -> Path:
    """A copy ending a few characters into a line, as a killed writer or copy leaves it."""
    data = path.read_bytes()
    at = data.find(b"\n", int(len(data) * share))
    at = int(len(data) * share) if at < 0 else at + 4
    cut = path.with_name("cut-" + path.name)
    cut.write_bytes(data[:at])
    return cut


@pytest.mark.parametrize("name", list(CASES))
def test_vendor_file_cut_off(
    name: str, recordings: dict[float, vf.ThighRecording], data_dir: DataDir, tmp_path: Path
) -> None:
    case = CASES[name]
    rec = recordings[case.fs_hz]
    cut = _cut(case.writer(rec, tmp_path))
    f = import_files(data_dir, [cut], participant_id="P01", tz=TZ).files[0]
    if case.cut_refused:
        assert f.status == "failed"
        assert "truncated" in str(f.message) and str(cut) in str(f.message)
        assert "\n" not in str(f.message)
        assert not list(data_dir.samples.glob("**/*.parquet"))
        return
    assert f.status == "imported", f.message
    assert 0.5 * rec.n < f.rows < 0.7 * rec.n
    assert any("cut off" in flag for flag in f.flags), f.flags
    with open_read(data_dir) as con:
        kinds = con.execute("SELECT DISTINCT kind FROM qc WHERE kind = 'import_flag'").fetchall()
    assert kinds == [("import_flag",)]


def test_ten_megabyte_single_line_datalogger_export(data_dir: DataDir, tmp_path: Path) -> None:
    rec = vf.thigh_recording(40, 26.0, start=START, tz=TZ, seed=5)
    path = vf.write_movesense_datalogger(rec, tmp_path)
    size = path.stat().st_size
    assert size > 10_000_000 and b"\n" not in path.read_bytes()
    head = Head.read(path)
    assert head.lines == () and head.cut and len(head.raw) == HEAD_BYTES
    assert detect_format(path) == "movesense-json"
    f = import_files(data_dir, [path], participant_id="P01", tz=TZ).files[0]
    assert f.status == "imported", f.message
    assert f.rows == rec.n - rec.n % 8
    assert f.qc["acc"]["fs_measured_hz"] == pytest.approx(26.0, rel=0.01)


def test_movesense_start_option_places_a_file_without_a_stamp(
    recordings: dict[float, vf.ThighRecording], data_dir: DataDir, tmp_path: Path
) -> None:
    rec = recordings[26.0]
    path = vf.write_movesense_datalogger(rec, tmp_path)
    plain = path.rename(tmp_path / "MovesenseLog_2_625.json")  # as the published files are named
    f = import_files(data_dir, [plain], participant_id="P01", tz=TZ).files[0]
    assert f.status == "failed" and "--start" in str(f.message)
    start = dt.datetime.fromtimestamp(int(rec.t_us[0]) / 1e6, ZoneInfo(TZ)).isoformat()
    ok = import_files(data_dir, [plain], participant_id="P01", start=start).files[0]
    assert ok.status == "imported", ok.message
    assert int(_stored(data_dir, rec).t_us[0]) == pytest.approx(int(rec.t_us[0]), abs=1000)


def test_activpal_sitting_minutes_equal_the_files(
    recordings: dict[float, vf.ThighRecording], data_dir: DataDir, tmp_path: Path
) -> None:
    import polars as pl

    rec = recordings[26.0]
    events = vf.activpal_events(rec)
    file_sitting_min = sum(seconds for _, seconds, code, _ in events if code == "0") / 60
    add_participant(data_dir, "P02", TZ)
    for pid, extended in (("P01", False), ("P02", True)):
        path = vf.write_activpal_events(rec, tmp_path, extended=extended)
        assert detect_format(path) == "activpal-events"
        f = import_files(data_dir, [path], participant_id=pid, tz=TZ).files[0]
        assert f.status == "imported", f.message
        assert f.qc["reference_minutes"]["sitting"] == pytest.approx(file_sitting_min, abs=1e-3)
        ref = pl.read_parquet(data_dir.root / f.recordings[0])
        stored = ref.filter(pl.col("posture") == "sitting")["duration_s"].sum() / 60
        assert stored == pytest.approx(file_sitting_min, abs=1e-9)
        assert stored == pytest.approx(rec.sitting_min, abs=0.1)
        first = ref["start_time"][0]
        assert abs(first.timestamp() * 1e6 - int(rec.t_us[0])) < 1000
        # the file counts strides; stored as steps (PAL's R package doubles them)
        assert ref["cumulative_steps"][-1] == 2 * events[-1][3]
