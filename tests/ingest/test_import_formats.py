"""Each import format, from small files written here in the shapes the apps document."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import polars as pl
import pytest

from glutewake.ingest.importers import detect_format
from glutewake.pipeline import import_files as run_import
from glutewake.store import samples as sample_store
from glutewake.store.bookkeeping import add_participant
from glutewake.store.catalog import open_read
from glutewake.store.datadir import DataDir

BERLIN = ZoneInfo("Europe/Berlin")
LOCAL0 = dt.datetime(2026, 3, 2, 9, 0, 0)  # local wall clock in Berlin (UTC+1)
T0_US = int(LOCAL0.replace(tzinfo=BERLIN).timestamp() * 1_000_000)
DAY_US = 86_400_000_000


@pytest.fixture
def data_dir(tmp_path: Path) -> DataDir:
    """No participant registered: no local days are derived, so these tests stay fast."""
    d = DataDir(tmp_path / "data").create()
    add_participant(d, "P01", "UTC")  # an import needs a known participant
    return d


def stored(data_dir: DataDir, stream: str = "acc") -> sample_store.SampleBlock:
    block = sample_store.read_samples(
        data_dir,
        stream=stream,
        participant_id="P01",
        start_us=T0_US - DAY_US,
        end_us=T0_US + DAY_US,
    )
    assert block is not None, f"no {stream} samples stored"
    return block


def one(data_dir: DataDir, path: Path, **kw: object) -> dict[str, object]:
    summary = run_import(data_dir, [path], participant_id="P01", **kw)  # type: ignore[arg-type]
    f = summary.files[0]
    assert f.status == "imported", f.message
    return {"format": f.format, "rows": f.rows, "qc": f.qc, "recordings": f.recordings}


def local_text(t_us: int, fmt: str = "%Y-%m-%dT%H:%M:%S.%f") -> str:
    when = dt.datetime.fromtimestamp(t_us / 1e6, BERLIN).replace(tzinfo=None)
    return when.strftime(fmt)[:-3]


# --------------------------------------------------------------------------- Polar Sensor Logger


def write_polar(folder: Path, stream: str, header_units: str, values: np.ndarray) -> Path:
    path = folder / f"Polar_H10_0C301E3F_20260302090000_{stream}.txt"
    fs_hz = 200.0
    polar_epoch_ns = 946_684_800 * 10**9  # sensor clock: ns since 2000-01-01
    sensor0 = T0_US * 1000 - polar_epoch_ns + 123_456_789
    lines = [
        f"Phone timestamp;sensor timestamp [ns];X [{header_units}];Y [{header_units}];"
        f"Z [{header_units}]"
    ]
    for i, (x, y, z) in enumerate(values):
        sensor_ns = sensor0 + round(i * 1e9 / fs_hz)
        frame_end = (i // 36 + 1) * 36 - 1  # frames of 36 samples arrive together, 30 ms late
        phone_us = T0_US + round(frame_end * 1e6 / fs_hz) + 30_000
        lines.append(f"{local_text(phone_us)};{sensor_ns};{x};{y};{z}")
    path.write_text("\n".join(lines) + "\n")
    return path


def test_polar_sensor_logger_acc(data_dir: DataDir, tmp_path: Path) -> None:
    n = 720
    mg = np.round(np.random.default_rng(1).normal(0, 30, (n, 3)) + np.array([0, 0, 1000])).astype(
        int
    )
    path = write_polar(tmp_path, "ACC", "mg", mg)
    assert detect_format(path) == "polar-sensor-logger"
    failed = run_import(data_dir, [path], participant_id="P01")
    assert "--tz" in str(failed.files[0].message)
    res = one(data_dir, path, tz="Europe/Berlin")
    block = stored(data_dir)
    np.testing.assert_allclose(block.values, mg / 1000.0, atol=1e-6)  # mg -> g
    steps = np.diff(block.t_us)
    assert set(np.unique(steps)) <= {5000}  # the sensor clock's 5 ms spacing, untouched
    # placed within the arrival latency of the true time
    assert 0 <= block.t_us[0] - T0_US <= 31_000
    assert res["qc"]["acc"]["fs_measured_hz"] == pytest.approx(200.0)  # type: ignore[index]
    with open_read(data_dir) as con:
        dev = con.execute("SELECT device_id FROM recordings").fetchall()
    assert dev == [("Polar_H10_0C301E3F",)]


def test_polar_gyro_and_mag_units(data_dir: DataDir, tmp_path: Path) -> None:
    gyro = np.full((100, 3), 12.5)
    mag = np.full((100, 3), 0.4)
    one(data_dir, write_polar(tmp_path, "GYRO", "dps", gyro), tz="Europe/Berlin")
    one(data_dir, write_polar(tmp_path, "MAG", "G", mag), tz="Europe/Berlin")
    np.testing.assert_allclose(stored(data_dir, "gyro").values, 12.5)
    np.testing.assert_allclose(stored(data_dir, "mag").values, 0.4, rtol=1e-6)


def test_polar_mixed_units_fail(data_dir: DataDir, tmp_path: Path) -> None:
    path = tmp_path / "Polar_H10_0C301E3F_20260302090000_ACC.txt"
    path.write_text(
        "Phone timestamp;sensor timestamp [ns];X [mg];Y [g];Z [mg]\n"
        "2026-03-02T09:00:00.000;1;1;2;3\n"
    )
    f = run_import(data_dir, [path], participant_id="P01", tz="Europe/Berlin").files[0]
    assert f.status == "failed" and "mixed units" in str(f.message) and "line 1" in str(f.message)


# --------------------------------------------------------------------------- Movesense


def test_movesense_json(data_dir: DataDir, tmp_path: Path) -> None:
    fs_hz, per_packet, n_packets = 52.0, 4, 30
    packets = []
    for k in range(n_packets):
        stamp = 100_000 + round(k * per_packet * 1000 / fs_hz)
        packets.append(
            {
                "Uri": "ECKI01234/Meas/IMU6/52",
                "Body": {
                    "Timestamp": stamp,
                    "ArrayAcc": [{"x": 0.0, "y": 0.0, "z": 9.80665}] * per_packet,
                    "ArrayGyro": [{"x": 1.0, "y": 2.0, "z": 3.0}] * per_packet,
                },
            }
        )
    path = tmp_path / "movesense_export.json"
    path.write_text(json.dumps({"UtcTime": T0_US, "data": packets}))
    assert detect_format(path) == "movesense-json"
    res = one(data_dir, path)
    acc = stored(data_dir)
    assert len(acc.t_us) == n_packets * per_packet
    np.testing.assert_allclose(acc.values[:, 2], 1.0, rtol=1e-6)  # m/s² -> g
    assert acc.t_us[0] == T0_US
    np.testing.assert_allclose(np.diff(acc.t_us), 1e6 / fs_hz, atol=1000)
    np.testing.assert_allclose(stored(data_dir, "gyro").values[0], [1.0, 2.0, 3.0])
    assert res["qc"]["acc"]["fs_stated_hz"] == 52.0  # type: ignore[index]


def test_movesense_json_without_wall_time_fails(data_dir: DataDir, tmp_path: Path) -> None:
    path = tmp_path / "export.json"
    path.write_text(
        json.dumps({"data": [{"Body": {"Timestamp": 1, "ArrayAcc": [{"x": 0, "y": 0, "z": 9.8}]}}]})
    )
    f = run_import(data_dir, [path], participant_id="P01").files[0]
    assert f.status == "failed" and "wall time" in str(f.message)


def test_movesense_csv(data_dir: DataDir, tmp_path: Path) -> None:
    path = tmp_path / "Movesense_Acc_20260302T080000Z.csv"
    rows = [f"{5000 + i * 10},{0.0},{9.80665},{0.0}" for i in range(300)]
    path.write_text("timestamp,x,y,z\n" + "\n".join(rows) + "\n")
    assert detect_format(path) == "movesense-csv"
    one(data_dir, path)
    acc = stored(data_dir)
    assert acc.t_us[0] == T0_US  # 08:00Z is 09:00 in Berlin
    np.testing.assert_allclose(acc.values[:, 1], 1.0, rtol=1e-6)
    assert set(np.unique(np.diff(acc.t_us))) == {10_000}


# --------------------------------------------------------------------------- ActiGraph, Axivity

_AG_HEADER = """------------ Data File Created By ActiGraph GT3X+ ActiLife v6.13.4 Firmware v3.2.1 date format M/d/yyyy at 30 Hz  Filter Normal -----------
Serial Number: MOS2E22180349
Start Time 09:00:00
Start Date 3/2/2026
Epoch Period (hh:mm:ss) 00:00:00
Download Time 10:00:00
Download Date 3/9/2026
Current Memory Address: 0
Current Battery Voltage: 4.21     Mode = 12
--------------------------------------------------
"""  # noqa: E501


@pytest.mark.parametrize("with_timestamp", [True, False])
def test_actigraph_csv(data_dir: DataDir, tmp_path: Path, with_timestamp: bool) -> None:
    n = 300
    acc = np.round(np.random.default_rng(2).normal(0, 0.1, (n, 3)) + np.array([0.0, 0.0, 1.0]), 3)
    lines = []
    for i, (x, y, z) in enumerate(acc):
        t = T0_US + round(i * 1e6 / 30)
        stamp = dt.datetime.fromtimestamp(t / 1e6, BERLIN)
        ms = stamp.microsecond // 1000
        text = f"{stamp.month}/{stamp.day}/{stamp.year} {stamp:%H:%M:%S}.{ms:03d}"
        lines.append(f"{text},{x},{y},{z}" if with_timestamp else f"{x},{y},{z}")
    header = ("Timestamp," if with_timestamp else "") + (
        "Accelerometer X,Accelerometer Y,Accelerometer Z"
    )
    path = tmp_path / "MOS2E22180349 (2026-03-09)RAW.csv"
    path.write_text(_AG_HEADER + header + "\n" + "\n".join(lines) + "\n")
    assert detect_format(path) == "actigraph-csv"
    res = one(data_dir, path, tz="Europe/Berlin")
    block = stored(data_dir)
    assert abs(int(block.t_us[0]) - T0_US) < 1000 and len(block.t_us) == n
    np.testing.assert_allclose(block.values, acc, atol=1e-6)
    assert res["qc"]["acc"]["fs_stated_hz"] == 30.0  # type: ignore[index]
    with open_read(data_dir) as con:
        assert con.execute("SELECT device_id FROM recordings").fetchall() == [("MOS2E22180349",)]


def test_axivity_csv(data_dir: DataDir, tmp_path: Path) -> None:
    n = 500
    acc = np.round(np.random.default_rng(3).normal(0, 0.1, (n, 3)) + np.array([0.0, 0.0, 1.0]), 4)
    lines = [
        f"{local_text(T0_US + i * 10_000, '%Y-%m-%d %H:%M:%S.%f')},{x},{y},{z}"
        for i, (x, y, z) in enumerate(acc)
    ]
    path = tmp_path / "thigh.csv"
    path.write_text("\n".join(lines) + "\n")
    assert detect_format(path) == "axivity-csv"
    one(data_dir, path, tz="Europe/Berlin")
    block = stored(data_dir)
    assert block.t_us[0] == T0_US and len(block.t_us) == n


# --------------------------------------------------------------------------- activPAL


def test_activpal_events_become_a_reference_table(data_dir: DataDir, tmp_path: Path) -> None:
    excel0 = (LOCAL0 - dt.datetime(1899, 12, 30)).total_seconds() / 86400
    events = [
        (0, 1800.0, 0, 0),
        (1800.0, 120.0, 1, 0),
        (1920.0, 300.0, 2, 410),
        (2220.0, 600.0, 2.1, 410),
        (2820.0, 3600.0, 3.1, 410),
    ]
    lines = [
        '"Time","DataCount (samples)","Interval (s)","ActivityCode (0=sedentary 1= standing '
        '2=stepping)","CumulativeStepCount","Activity Score (MET.h)"'
    ]
    for start_s, dur, code, steps in events:
        lines.append(
            f"{excel0 + start_s / 86400:.10f},{int(start_s * 10)},{dur},{code},{steps},0.1"
        )
    path = tmp_path / "PAL-Events.csv"
    path.write_text("\n".join(lines) + "\n")
    assert detect_format(path) == "activpal-events"
    res = one(data_dir, path, tz="Europe/Berlin")
    ref = pl.read_parquet(data_dir.root / str(res["recordings"][0]))  # type: ignore[index]
    assert ref["posture"].to_list() == ["sitting", "standing", "moving", "cycling", "lying"]
    first = ref["start_time"][0]
    assert int(first.timestamp() * 1e6) == pytest.approx(T0_US, abs=1000)
    assert ref["duration_s"].to_list() == [1800.0, 120.0, 300.0, 600.0, 3600.0]
    assert (ref["end_time"] - ref["start_time"]).dt.total_seconds().to_list() == [
        1800,
        120,
        300,
        600,
        3600,
    ]
    with open_read(data_dir) as con:
        assert con.execute("SELECT format, rows_read FROM import_files").fetchall() == [
            ("activpal-events", 5)
        ]
        assert con.execute("SELECT count(*) FROM recordings").fetchone() == (0,)
    again = run_import(data_dir, [path], participant_id="P01", tz="Europe/Berlin")
    assert again.files[0].status == "skipped"


def test_activpal_unknown_code_names_the_line(data_dir: DataDir, tmp_path: Path) -> None:
    path = tmp_path / "ev.csv"
    path.write_text(
        '"Time","Interval (s)","ActivityCode (0=sedentary)"\n46083.5,10,0\n46083.6,5,7\n'
    )
    f = run_import(data_dir, [path], participant_id="P01", tz="Europe/Berlin").files[0]
    assert f.status == "failed" and "line 3" in str(f.message) and "code 7" in str(f.message)


# --------------------------------------------------------------------------- EDF / BDF


def write_edf(path: Path, *, bdf: bool = False, seconds: int = 4) -> np.ndarray:
    import pyedflib

    fs_emg, fs_acc = 1000, 50
    rng = np.random.default_rng(5)
    emg = rng.normal(0, 50, (seconds * fs_emg, 2))
    acc = np.tile([0.0, 0.0, 1.0], (seconds * fs_acc, 1))
    filetype = pyedflib.FILETYPE_BDFPLUS if bdf else pyedflib.FILETYPE_EDFPLUS
    writer = pyedflib.EdfWriter(str(path), 6, file_type=filetype)
    heads = []
    for label in ("Glute R", "Hamstring R"):
        heads.append(
            {
                "label": label,
                "dimension": "uV",
                "sample_frequency": fs_emg,
                "physical_max": 1000,
                "physical_min": -1000,
                "digital_max": 8388607 if bdf else 32767,
                "digital_min": -8388608 if bdf else -32768,
            }
        )
    for axis in "XYZ":
        heads.append(
            {
                "label": f"Acc {axis}",
                "dimension": "g",
                "sample_frequency": fs_acc,
                "physical_max": 8,
                "physical_min": -8,
                "digital_max": 32767,
                "digital_min": -32768,
            }
        )
    heads.append(
        {
            "label": "Battery",
            "dimension": "%",
            "sample_frequency": 1,
            "physical_max": 100,
            "physical_min": 0,
            "digital_max": 32767,
            "digital_min": -32768,
        }
    )
    writer.setSignalHeaders(heads)
    writer.setStartdatetime(LOCAL0)
    writer.setEquipment("LabEMG-8")
    columns = [emg[:, 0], emg[:, 1], acc[:, 0], acc[:, 1], acc[:, 2], np.full(seconds, 80.0)]
    writer.writeSamples([np.ascontiguousarray(c) for c in columns])
    writer.close()
    return emg


@pytest.mark.parametrize("bdf", [False, True])
def test_edf_and_bdf(data_dir: DataDir, tmp_path: Path, bdf: bool) -> None:
    path = tmp_path / ("lab.bdf" if bdf else "lab.edf")
    emg = write_edf(path, bdf=bdf)
    assert detect_format(path) == "edf"
    res = one(data_dir, path, tz="Europe/Berlin", exercise="glute_bridge")
    block = stored(data_dir, "emg")
    assert block.channels == ("glute_r", "hamstring_r")
    assert block.t_us[0] == T0_US and len(block.t_us) == len(emg)
    resolution = 2000 / (2**24 if bdf else 2**16)
    np.testing.assert_allclose(block.values, emg, atol=resolution)
    assert stored(data_dir).values.shape == (200, 3)
    assert res["qc"]["emg"]["fs_stated_hz"] == 1000.0  # type: ignore[index]
    with open_read(data_dir) as con:
        detail = con.execute("SELECT detail FROM qc WHERE kind = 'import' LIMIT 1").fetchone()
        dev = con.execute("SELECT DISTINCT device_id FROM recordings").fetchall()
    assert detail is not None and "Battery [%]" in detail[0]
    assert dev == [("LabEMG-8",)]


def test_truncated_edf_names_the_record(data_dir: DataDir, tmp_path: Path) -> None:
    path = tmp_path / "cut.edf"
    write_edf(path, seconds=4)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 5000])
    f = run_import(data_dir, [path], participant_id="P01", tz="Europe/Berlin").files[0]
    assert f.status == "failed" and "truncated" in str(f.message)
    assert "declares 4 data records" in str(f.message) and "(record 3 is cut" in str(f.message)
    assert not list(data_dir.samples.glob("**/*.parquet"))


# --------------------------------------------------------------------------- own Parquet


def test_sample_parquet_reimports_into_another_data_dir(data_dir: DataDir, tmp_path: Path) -> None:
    n = 400
    acc = np.round(np.random.default_rng(6).normal(0, 0.1, (n, 3)) + np.array([0.0, 0.0, 1.0]), 4)
    src = tmp_path / "src.csv"
    src.write_text(
        "t_us,acc_x[g],acc_y[g],acc_z[g]\n"
        + "\n".join(f"{T0_US + i * 20_000},{x},{y},{z}" for i, (x, y, z) in enumerate(acc))
        + "\n"
    )
    one(data_dir, src, device_id="thigh")
    files = sorted(data_dir.samples.glob("stream=acc/**/*.parquet"))
    other = DataDir(tmp_path / "other").create()
    add_participant(other, "P01", "UTC")
    assert detect_format(files[0]) == "glutewake-samples"
    summary = run_import(other, files, participant_id="P01")
    assert summary.files[0].status == "imported", summary.files[0].message
    block = stored(other)
    np.testing.assert_array_equal(block.t_us, stored(data_dir).t_us)
    np.testing.assert_allclose(block.values, acc, atol=1e-6)
    with open_read(other) as con:
        assert con.execute("SELECT DISTINCT device_id FROM recordings").fetchall() == [("thigh",)]


def test_spool_segment_reimport_decodes_it(data_dir: DataDir, tmp_path: Path) -> None:
    from glutewake.devices import get_profile
    from glutewake.devices.base import RawRecords, RecordKind, StreamSamples
    from glutewake.devices.polar_pmd import PolarVirtualDevice
    from glutewake.simulate.spooling import spool_virtual_session
    from glutewake.store.spool import SpoolInfo, list_segments, read_segment, write_segment

    fs_hz, n = 52.0, 52 * 20
    t_us = T0_US + np.round(np.arange(n) * 1e6 / fs_hz).astype(np.int64)
    acc = np.tile([0.0, 0.0, 1.0], (n, 1))
    profile = get_profile("polar-pmd")
    config = {"acc": {"sample_rate_hz": 52, "range_g": 8, "resolution_bits": 16}}
    folder = tmp_path / "spool" / "device=A0-9E-1A-00-00-01"
    device = PolarVirtualDevice(
        {"acc": StreamSamples("acc", t_us, acc, ("x", "y", "z"), "g", fs_hz, np.arange(n))}
    )
    spool_virtual_session(
        folder,
        SpoolInfo("X9", "A0:9E:1A:00:00:01", profile.name, config, {}),
        profile,
        device,
        start_us=T0_US - 500_000,
        end_us=int(t_us[-1]) + 500_000,
        first_conn_id=1,
        rng=np.random.default_rng(0),
    )
    # a segment holding only a connection event (as an hour boundary can leave) has no samples
    write_segment(
        folder,
        SpoolInfo("X9", "A0:9E:1A:00:00:01", profile.name, config, {}),
        RawRecords(
            t_us=np.array([T0_US - 3_600_000_000], dtype=np.int64),
            kind=np.array([RecordKind.CONNECT], dtype=np.int8),
            char_uuid=[""],
            payload=[b"\xf7\x00"],
            conn_id=np.array([0], dtype=np.int64),
        ),
        [0],
    )
    segments = list_segments(folder)
    assert all(detect_format(s) == "glutewake-spool" for s in segments)
    summary = run_import(data_dir, segments, participant_id="P01")
    assert not summary.failed, summary.failed[0].message
    skipped = [f for f in summary.files if f.status == "skipped"]
    assert len(skipped) == 1 and "no notifications" in str(skipped[0].message)
    expected = []
    for seg in segments:
        info, records, _ = read_segment(seg)
        streams = profile.decode_records(records, info.config).streams
        if "acc" in streams:
            expected.append(streams["acc"].t_us)
    block = stored(data_dir)
    np.testing.assert_array_equal(block.t_us, np.sort(np.concatenate(expected)))  # as process
    np.testing.assert_allclose(block.values[:, 2], 1.0, atol=0.01)
    with open_read(data_dir) as con:
        assert con.execute("SELECT DISTINCT device_id FROM recordings").fetchall() == [
            ("A0:9E:1A:00:00:01",)
        ]
