"""A few lines of real vendor files, restated with their source, read to the right values.

Each fixture is the first lines of a published export (or of the vendor tool's output on a
published recording), cited where it is written; later lines are derived from the verbatim ones
only where a file needs more than one packet or row, and say so.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from glutewake.ingest.importers import detect_format
from glutewake.pipeline import import_files
from glutewake.store import samples as sample_store
from glutewake.store.bookkeeping import add_participant
from glutewake.store.datadir import DataDir

G = 9.80665


@pytest.fixture
def data_dir(tmp_path: Path) -> DataDir:
    d = DataDir(tmp_path / "data").create()
    add_participant(d, "P01", "UTC")
    return d


def one(data_dir: DataDir, path: Path, **kw: object) -> tuple[str, object]:
    f = import_files(data_dir, [path], participant_id="P01", **kw).files[0]  # type: ignore[arg-type]
    return f.status, f


def stored(data_dir: DataDir, stream: str = "acc") -> sample_store.SampleBlock:
    """The stream's samples over the span its recordings cover (read back from the store)."""
    from glutewake.store.catalog import open_read

    with open_read(data_dir) as con:
        lo, hi = con.execute(
            "SELECT epoch_us(min(start_time)), epoch_us(max(end_time)) FROM recordings "
            "WHERE stream = ?",
            [stream],
        ).fetchone()  # type: ignore[misc]
    block = sample_store.read_samples(
        data_dir, stream=stream, participant_id="P01", start_us=int(lo), end_us=int(hi) + 1
    )
    assert block is not None
    return block


def utc_us(text: str) -> int:
    return int(dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC).timestamp() * 1_000_000)


# --------------------------------------------------------------------------- Polar Sensor Logger

# obss/BIOBSS (MIT), sample_data/ik_d1_25042022_forearm_left/
# Polar_Sense_A40F6F28_20220425_113903_ACC.txt @ 804b39c2, lines 1-3
POLAR_ACC = """Phone timestamp;sensor timestamp [ns];X [mg];Y [mg];Z [mg]
2022-04-25T11:39:36.978;704201974831254116;-777;436;-499
2022-04-25T11:39:36.997;704201974850594517;-778;437;-498
"""
# obss/BIOBSS, sample_data/Polar_files/txt_files/sample_record/Polar_Sense_GYRO.txt @ db2f8aa4, L1-3
POLAR_GYRO = """Phone timestamp;sensor timestamp [ns];X [dps];Y [dps];Z [dps]
2022-04-25T11:39:37.357;704201974831222483;0.35;0.14;1.19
2022-04-25T11:39:37.376;704201974850563052;0.0;0.42000002;2.1
"""
# obss/BIOBSS, sample_data/Polar_files/txt_files/sample_record/Polar_Sense_MAGN.txt @ 63155a7c, L1-3
POLAR_MAGN = """Phone timestamp;sensor timestamp [ns];X [G];Y [G];Z [G]
2022-04-25T11:39:38.385;704201974990461989;-1.2495;-0.4125;0.2475
2022-04-25T11:39:38.405;704201975010686474;-1.245;-0.4095;0.2505
"""


def test_polar_sensor_logger_published_lines(data_dir: DataDir, tmp_path: Path) -> None:
    acc = tmp_path / "Polar_Sense_A40F6F28_20220425_113903_ACC.txt"
    acc.write_text(POLAR_ACC)
    gyro = tmp_path / "Polar_Sense_GYRO.txt"  # BIOBSS renamed these two
    gyro.write_text(POLAR_GYRO)
    magn = tmp_path / "Polar_Sense_MAGN.txt"
    magn.write_text(POLAR_MAGN)
    for path in (acc, gyro, magn):
        assert detect_format(path) == "polar-sensor-logger"
        status, f = one(data_dir, path, tz="Europe/Helsinki")
        assert status == "imported", f.message  # type: ignore[attr-defined]
    np.testing.assert_allclose(
        stored(data_dir).values, [[-0.777, 0.436, -0.499], [-0.778, 0.437, -0.498]], atol=1e-6
    )
    np.testing.assert_allclose(stored(data_dir, "gyro").values[1], [0.0, 0.42, 2.1], atol=1e-6)
    np.testing.assert_allclose(
        stored(data_dir, "mag").values[0], [-1.2495, -0.4125, 0.2475], atol=1e-6
    )
    block = stored(data_dir)
    assert int(block.t_us[1] - block.t_us[0]) == 19_340  # the sensor clock's spacing (ns -> µs)
    # placed by the phone's arrival time (Helsinki, UTC+3 in April), not later than it
    assert block.t_us[0] <= utc_us("2022-04-25T08:39:36.978")
    from glutewake.store.catalog import open_read

    with open_read(data_dir) as con:
        devices = con.execute("SELECT DISTINCT device_id FROM recordings ORDER BY 1").fetchall()
    assert ("Polar_Sense_A40F6F28",) in devices


# --------------------------------------------------------------------------- Movesense iOS

# movesense-mobile-lib (Apache-2.0), IOS/MovesenseShowcase/MovesenseShowcaseTests/
# CsvEncodingTests.swift @ f307a7bb, L11-13: one "acc" event as the app's JSON encoder writes it
IOS_EVENT = (
    '{"acc":{"Timestamp":599025762,"ArrayAcc":[{"x":0.31347095966339111,"y":-0.31347095966339111,'
    '"z":9.9281759262084961},{"x":0.28475606441497803,"y":-0.31586387753486633,'
    '"z":9.949711799621582},{"x":0.33022132515907288,"y":-0.26800569891929626,'
    '"z":9.9353542327880859},{"x":0.33022132515907288,"y":-0.28236314654350281,'
    '"z":9.8922824859619141}]}}'
)


@pytest.mark.parametrize("wrapped", [False, True])
def test_movesense_ios_event_lines(data_dir: DataDir, tmp_path: Path, wrapped: bool) -> None:
    # the verbatim event, then two more 77 ms apart (the next packets of a 52 Hz stream)
    events = [IOS_EVENT] + [IOS_EVENT.replace("599025762", str(599025762 + 77 * k)) for k in (1, 2)]
    path = tmp_path / "20220301T101500Z_175030001234_acc_stream.json"
    if wrapped:  # RecorderFileJson.swift L26-36, L69, L181-193 (stopped: "]}" at the end)
        path.write_text('{"data": [\n' + ",\n".join(events) + "\n]}")
    else:  # the older app: one event per line (RecorderFileJson.swift L173-181, 907e1390)
        path.write_text("\n".join(events) + "\n")
    assert detect_format(path) == "movesense-json"
    status, f = one(data_dir, path)
    assert status == "imported", f.message  # type: ignore[attr-defined]
    block = stored(data_dir)
    assert len(block.t_us) == 12
    np.testing.assert_allclose(
        block.values[0], np.array([0.31347096, -0.31347096, 9.928176]) / G, rtol=1e-6
    )
    assert int(block.t_us[0]) == utc_us("2022-03-01T10:15:00")  # the stamp in the name (UTC)


# --------------------------------------------------------------------------- Axivity

# cwa-convert (digitalinteraction/openmovement Software/AX3/cwa-convert/c @ 5df5c910) run on the
# published AX3 recording muschellij2/read.cwa inst/extdata/ax3_testfile.cwa.gz @ 71441624: the
# first lines of its default output (= OMGUI's raw export), as quoted in the research notes
AX_DEFAULT = """2019-02-26 10:55:06.000,0.328125,0.984375,0.203125
2019-02-26 10:55:06.010,0.828125,-0.359375,-0.375000
2019-02-26 10:55:06.019,0.875000,-0.390625,-0.390625
"""
# -t:serial and -t:excel print the same instants as seconds / days (first line verbatim; the next
# two are the default output's rows 2-3 in that time form)
AX_SERIAL = """1551178506.0000,0.328125,0.984375,0.203125
1551178506.0100,0.828125,-0.359375,-0.375000
1551178506.0190,0.875000,-0.390625,-0.390625
"""
AX_EXCEL = """43522.454930555556,0.328125,0.984375,0.203125
43522.454930671294,0.828125,-0.359375,-0.375000
43522.454930775464,0.875000,-0.390625,-0.390625
"""
# -light -temp -batt -events: first two lines verbatim, the third the default row 3 with extras
AX_EXTRAS = """2019-02-26 10:55:06.000,0.328125,0.984375,0.203125,283,258,190,r
2019-02-26 10:55:06.010,0.828125,-0.359375,-0.375000,283,258,190,
2019-02-26 10:55:06.019,0.875000,-0.390625,-0.390625,283,258,190,
"""


@pytest.mark.parametrize("text", [AX_DEFAULT, AX_SERIAL, AX_EXCEL, AX_EXTRAS])
def test_axivity_cwa_convert_lines(data_dir: DataDir, tmp_path: Path, text: str) -> None:
    path = tmp_path / "ax3_testfile.csv"
    path.write_text(text)
    assert detect_format(path) == "axivity-csv"
    status, f = one(data_dir, path, tz="Europe/London")  # the device clock: local time
    assert status == "imported", f.message  # type: ignore[attr-defined]
    block = stored(data_dir)
    np.testing.assert_allclose(block.values[1], [0.828125, -0.359375, -0.375], atol=1e-6)
    # London is UTC in February: the device's 10:55:06 is 10:55:06Z, whichever time form
    assert int(block.t_us[0]) == pytest.approx(utc_us("2019-02-26T10:55:06"), abs=2)
    assert int(block.t_us[2] - block.t_us[0]) == pytest.approx(19_000, abs=2)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # -t:block (verbatim): packet times without milliseconds
        ("2019-02-26 10:55:07,0.328125,0.984375,0.203125\n" * 3, "-t:block"),
        # -v:int: raw integers (the default rows' values times 256, one g at the ±8 g range)
        ("2019-02-26 10:55:06.000,84,252,52\n2019-02-26 10:55:06.010,212,-92,-96\n", "-v:int"),
        # -t:secs: seconds since the recording's start
        ("0.0000,0.328125,0.984375,0.203125\n0.0100,0.828125,-0.359375,-0.375000\n", None),
    ],
)
def test_axivity_exports_that_cannot_be_placed_are_refused(
    data_dir: DataDir, tmp_path: Path, text: str, expected: str | None
) -> None:
    path = tmp_path / "ax.csv"
    path.write_text(text)
    f = import_files(
        data_dir, [path], participant_id="P01", tz="Europe/London", format="axivity-csv"
    ).files[0]
    assert f.status == "failed" and "\n" not in str(f.message)
    assert (expected or "-t:secs") in str(f.message)


# --------------------------------------------------------------------------- activPAL

# PALkitchen/activPAL (GPL-3, PAL Technologies' R package) inst/extdata/Test_Events.csv @ 353266e8
PAL_R = (
    '"Time","DataCount (samples)","Interval (s)","ActivityCode (0=sedentary 1=standing '
    '2=stepping 3.1=primary lying, 3.2=secondary lying 4=non-wear)","CumulativeStepCount",'
    '"Activity Score (MET.h)","Sum(Abs(DiffX)","Sum(Abs(DiffY)","Sum(Abs(DiffZ)"\n'
    "43428.3953935185,0,50.1,0,0,0.017395833333333333,6319,5768,4977\n"
    "43428.3959733796,501,25.4,1,0,0.009877777777777777,4400,5120,3840\n"
)
# Jakob-Arend/activPAL-bout-detection INPUT/group_2/
# SA006-AP840024 20Feb19 4-15pm for 7d-VANE-PB08101257-Events.csv @ 465a7979, L1-3
AREND = (
    '"Time","DataCount (samples)","Interval (s)","ActivityCode (0=sedentary, 1=standing, '
    '2=stepping)","CumulativeStepCount","Activity Score (MET.h)","Sum(Abs(DiffX)",'
    '"Sum(Abs(DiffY)","Sum(Abs(DiffZ)"\n'
    "43516.6774074074,0,0.6,1,0,0.00023333333333333333,149,201,218\n"
    "43516.6774143518,6,353.0,0,0,0.12256944444444444,19366,13894,17312\n"
)
# ADALabUCSD/DeepPostures (Apache-2.0) MSSE-2021/README.md @ 7a87157b, L67-70: the older
# 7-column export with Excel-style numbers (.4186111, 1.361111E-03)
DEEPPOSTURES = (
    '"Time","DataCount (samples)","Interval (s)","ActivityCode (0=sedentary, 1= standing, '
    '2=stepping)","CumulativeStepCount","Activity Score (MET.h)","Abs(sumDiff)"\n'
    "42633.4165162037,0,1205.6,0,0,.4186111,171\n"
    "42633.4304699074,12056,3.5,1,0,1.361111E-03,405\n"
    "42633.4305104167,12091,1.4,2,1,1.266667E-03,495\n"
)
# PALkitchen/activPAL inst/extdata/EventsEx1/Test1-EventsEx.csv @ 353266e8, L1-4
EVENTS_EX = (
    "sep=;\n"
    "Time;Time(approx);Data Count;Event Type;Duration (s);Waking Day;Cumulative Step Count;"
    "Activity Score (MET.h);AbsSumDiffX;AbsSumDiffY;AbsSumDiffZ;Time Upright (s);"
    "Time Upside Down (s);Time Back Lying (s);Time Front Lying (s);Time Left Lying (s);"
    "Time Right Lying (s)\n"
    "44129.9809722222;2020-10-25 23:32:36;0;0;30.5;1;0;0.010590277777777778;4739;5588;5204;0.0;"
    "0.0;30.4;0.0;0.0;0.0;\n"
    "44129.9813252315;2020-10-25 23:33:07;305;1;1.3;1;0;0.00050555555555555553;718;636;579;1.3;"
    "0.0;0.0;0.0;0.0;0.0;\n"
)


@pytest.mark.parametrize(
    ("text", "postures", "seconds", "first_local"),
    [
        (PAL_R, ["sitting", "standing"], [50.1, 25.4], "2018-11-24T09:29:22.000"),
        (AREND, ["standing", "sitting"], [0.6, 353.0], "2019-02-20T16:15:28.000"),
        (
            DEEPPOSTURES,
            ["sitting", "standing", "moving"],
            [1205.6, 3.5, 1.4],
            "2016-09-20T09:59:47.000",
        ),
        (EVENTS_EX, ["sitting", "standing"], [30.5, 1.3], "2020-10-25T23:32:36.000"),
    ],
)
def test_activpal_published_lines(
    data_dir: DataDir,
    tmp_path: Path,
    text: str,
    postures: list[str],
    seconds: list[float],
    first_local: str,
) -> None:
    path = tmp_path / "P-Events.csv"
    path.write_text(text)
    assert detect_format(path) == "activpal-events"
    status, f = one(data_dir, path, tz="UTC")
    assert status == "imported", f.message  # type: ignore[attr-defined]
    ref = pl.read_parquet(data_dir.root / f.recordings[0])  # type: ignore[attr-defined]
    assert ref["posture"].to_list() == postures
    assert ref["duration_s"].to_list() == seconds
    first = ref["start_time"][0].replace(tzinfo=None)
    assert abs((first - dt.datetime.fromisoformat(first_local)).total_seconds()) < 0.5


# --------------------------------------------------------------------------- layouts from code
# No published file of these was found; they follow the vendor's writer code line by line.


def _imu_rows(n: int, fields: int, decimal: str = ".") -> list[str]:
    rows = []
    for i in range(n):
        acc = [0.1 + 0.001 * (i % 7), -0.2, 9.79]  # m/s^2
        gyro = [1.5, -0.5, 0.25]  # deg/s
        magn = [22.0, -4.0, -41.0]  # µT
        values = (acc + gyro + magn)[: fields - 1]
        text = ",".join(f"{v:.6f}".replace(".", decimal) for v in values)
        rows.append(f"{100_000 + round(i * 1000 / 52)},{text}")
    return rows


@pytest.mark.parametrize("fields", [7, 10])
def test_movesense_android_imu_log(data_dir: DataDir, tmp_path: Path, fields: int) -> None:
    # ImuActivity.java (movesense-mobile-lib android/Showcaseapp, f307a7bb) L162: one header for
    # IMU6 and IMU9, rows "%d,%.6f,..." of 7 (IMU6) or 10 (IMU9) fields (L205-228); the file
    # name carries the UTC time the log was saved (CsvLogger.java L98-118)
    path = tmp_path / "2026-03-02_08-00-10_175030001234_ImuActivity.csv"
    header = "Timestamp,AccX,AccY,AccZ,GyroX,GyroY,GyroZ,MagnX,MagnY,MagnZ"
    path.write_text("\n".join([header, *_imu_rows(520, fields)]) + "\n")
    assert detect_format(path) == "movesense-csv"
    status, f = one(data_dir, path)
    assert status == "imported", f.message  # type: ignore[attr-defined]
    assert sorted(f.qc) == (["acc", "gyro"] if fields == 7 else ["acc", "gyro", "mag"])  # type: ignore[attr-defined]
    np.testing.assert_allclose(stored(data_dir, "gyro").values[0], [1.5, -0.5, 0.25])
    np.testing.assert_allclose(stored(data_dir).values[0], np.array([0.1, -0.2, 9.79]) / G,
                               rtol=1e-6)  # fmt: skip
    # the last sample lies at the time the log was saved (the name's, to the second)
    assert int(stored(data_dir).t_us[-1]) == utc_us("2026-03-02T08:00:10")


def test_movesense_ios_imu_csv(data_dir: DataDir, tmp_path: Path) -> None:
    # Recorder.swift (movesense-mobile-lib, f307a7bb) L56: imuHeader "timestamp,x,y,z,gx,gy,gz"
    path = tmp_path / "20260302T080000Z_175030001234_imu_stream.csv"
    path.write_text("\n".join(["timestamp,x,y,z,gx,gy,gz", *_imu_rows(520, 7)]) + "\n")
    assert detect_format(path) == "movesense-csv"
    status, f = one(data_dir, path)
    assert status == "imported", f.message  # type: ignore[attr-defined]
    np.testing.assert_allclose(stored(data_dir, "gyro").values[1], [1.5, -0.5, 0.25])
    assert int(stored(data_dir).t_us[0]) == utc_us("2026-03-02T08:00:00")


def test_activpal_header_block_and_semicolons(data_dir: DataDir, tmp_path: Path) -> None:
    # load.events.file.R (PALkitchen/activPAL, 353266e8) L17-44: a **header** ... **data** block
    # may precede the table, and a semicolon file after a "sep=" line is read with sep=";"
    body = AREND.replace(",", ";")
    path = tmp_path / "block-Events.csv"
    path.write_text("sep=;\n**header**\nSerial;AP840024\n**data**\n" + body)
    assert detect_format(path) == "activpal-events"
    status, f = one(data_dir, path, tz="UTC")
    assert status == "imported", f.message  # type: ignore[attr-defined]
    ref = pl.read_parquet(data_dir.root / f.recordings[0])  # type: ignore[attr-defined]
    assert ref["posture"].to_list() == ["standing", "sitting"]
