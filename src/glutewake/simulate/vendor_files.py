"""A simulated thigh recording written the way each vendor's app or tool writes its files.

For testing the importers against the layouts real users bring (``docs/import.md``): every
writer renders the same :class:`ThighRecording` (the seeded thigh simulator's acceleration and
its ground truth) in one vendor layout, byte for byte as the vendor's writer would, citing the
vendor source or the published example file it follows. Nothing here is copied from those
files beyond the few header lines a format is defined by.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
from numpy.typing import NDArray

from glutewake.signal.posture import Posture

G = 9.80665  #: m/s² per g, as the importers convert
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
#: Movesense sensors report the Earth's field in µT; a plausible constant one
_MAGN_UT = np.array([22.0, -4.0, -41.0])


@dataclass(frozen=True)
class ThighRecording:
    """Simulated thigh acceleration with its truth (UTC µs, g, local zone)."""

    t_us: NDArray[np.int64]
    acc_g: NDArray[np.float64]
    fs_hz: float
    tz: str
    labels: NDArray[np.int8]

    @property
    def n(self) -> int:
        return int(self.t_us.size)

    @property
    def sitting_min(self) -> float:
        """True minutes sitting."""
        return float(np.count_nonzero(self.labels == Posture.SITTING) / self.fs_hz / 60)

    def local(self, t_us: int) -> dt.datetime:
        """The participant's wall-clock time of an instant (naive)."""
        return _utc(t_us).astimezone(ZoneInfo(self.tz)).replace(tzinfo=None)


def _local_offset_us(rec: ThighRecording) -> int:
    """The zone's UTC offset at the recording's start (the recordings here cross no change)."""
    offset = _utc(int(rec.t_us[0])).astimezone(ZoneInfo(rec.tz)).utcoffset()
    return (offset or dt.timedelta(0)) // dt.timedelta(microseconds=1)


def _utc(t_us: int) -> dt.datetime:
    return _EPOCH + dt.timedelta(microseconds=int(t_us))


def thigh_recording(
    minutes: float, fs_hz: float, *, start: dt.datetime, tz: str, seed: int = 3
) -> ThighRecording:
    """``minutes`` of simulated thigh acceleration from the local wall-clock time ``start``."""
    from glutewake.simulate.posture import simulate_thigh_days

    start_us = (start.replace(tzinfo=ZoneInfo(tz)) - _EPOCH) // dt.timedelta(microseconds=1)
    sim = simulate_thigh_days(minutes / 1440, fs_hz, start_us=start_us, tz=tz, seed=seed)
    return ThighRecording(
        sim.t_us.astype(np.int64), sim.acc_g.astype(np.float64), fs_hz, tz, sim.labels
    )


def _fixed(values: NDArray[np.float64], decimals: int, decimal: str = ".") -> NDArray[np.str_]:
    text = np.char.mod(f"%.{decimals}f", values)
    return np.char.replace(text, ".", decimal) if decimal != "." else text


def _join(columns: list[NDArray[np.str_]], sep: str) -> list[str]:
    out = columns[0].astype(object)
    for col in columns[1:]:
        out = out + sep + col.astype(object)
    return list(out)


def _write_lines(path: Path, lines: list[str], *, end: str = "\n") -> Path:
    path.write_text(end.join(lines) + end, encoding="utf-8")
    return path


# --------------------------------------------------------------------------- Polar


def write_polar_sensor_logger(rec: ThighRecording, folder: Path, device: str = "A40F6F28") -> Path:
    """Polar Sensor Logger ACC file.

    Layout of the published export obss/BIOBSS ``sample_data/ik_d1_25042022_forearm_left/
    Polar_Sense_A40F6F28_20220425_113903_ACC.txt`` (L1-3)::

        Phone timestamp;sensor timestamp [ns];X [mg];Y [mg];Z [mg]
        2022-04-25T11:39:36.978;704201974831254116;-777;436;-499

    The sensor clock is ns since 2000-01-01 (Polar BLE SDK ``PolarAccelerometerData.kt``
    L4-24), and in that file it reads the phone's local time; the phone time is local, with
    milliseconds, when the frame arrived (here 36 samples a frame, 30-80 ms late).
    """
    local0 = rec.local(int(rec.t_us[0]))
    name = f"Polar_Sense_{device}_{local0:%Y%m%d}_{local0:%H%M%S}_ACC.txt"
    local_us = rec.t_us + _local_offset_us(rec)
    sensor_ns = (local_us - 946_684_800_000_000) * 1000
    frame_end = np.minimum((np.arange(rec.n) // 36 + 1) * 36 - 1, rec.n - 1)
    rng = np.random.default_rng(7)
    latency_us = rng.integers(30_000, 80_000, rec.n // 36 + 1)[np.arange(rec.n) // 36]
    phone_us = local_us[frame_end] + latency_us
    phone = np.datetime_as_string(phone_us.astype("datetime64[us]"), unit="ms").astype(object)
    mg = np.round(rec.acc_g * 1000).astype(np.int64).astype(str)
    lines = ["Phone timestamp;sensor timestamp [ns];X [mg];Y [mg];Z [mg]"]
    lines += _join([phone.astype(str), sensor_ns.astype(str), mg[:, 0], mg[:, 1], mg[:, 2]], ";")
    return _write_lines(folder / name, lines)


# --------------------------------------------------------------------------- Movesense


def _packets(rec: ThighRecording, per: int, boot_ms: int) -> list[tuple[int, slice]]:
    """(sensor ms Timestamp of the first sample, sample slice) per packet; the sensor clock
    counts ms since its reset (``boot_ms`` before the recording)."""
    t0 = int(rec.t_us[0])
    out = []
    for lo in range(0, rec.n - rec.n % per, per):
        stamp = boot_ms + (int(rec.t_us[lo]) - t0) // 1000
        out.append((stamp, slice(lo, lo + per)))
    return out


def _vectors(values: NDArray[np.float64]) -> list[dict[str, float]]:
    return [{"x": float(x), "y": float(y), "z": float(z)} for x, y, z in values]


def _imu(rec: ThighRecording, seed: int) -> tuple[NDArray[np.float64], ...]:
    rng = np.random.default_rng(seed)
    acc = rec.acc_g * G
    gyro = rng.normal(0.0, 1.5, acc.shape)
    magn = _MAGN_UT + rng.normal(0.0, 0.3, acc.shape)
    return acc, gyro, magn


def write_movesense_datalogger(rec: ThighRecording, folder: Path, log_id: int = 2) -> Path:
    """Movesense DataLogger log as the vendor's Android DataLoggerSample saves it.

    One line without a line break, ``{"Meas":{"IMU9":[{"ArrayAcc":[..8..],"ArrayGyro":[..],
    "ArrayMagn":[..],"Timestamp":ms}, ..]}}`` (published export: tjrantal/movesenseJsonReader
    ``data/MovesenseLog_2_625.json``: 8 samples a packet, Timestamp last, acc in m/s²); named
    ``"MovesenseLog_" + id + " " + <last modification, yyyy-MM-dd HH:mm:ss, phone zone>``
    (movesense-mobile-lib ``android/samples/DataLoggerSample/.../DataLoggerActivity.java``
    L599-601, ``MdsLogbookEntriesResponse.java`` L25-42).
    """
    acc, gyro, magn = _imu(rec, 11)
    packets = [
        {
            "ArrayAcc": _vectors(acc[s]),
            "ArrayGyro": _vectors(gyro[s]),
            "ArrayMagn": _vectors(magn[s]),
            "Timestamp": stamp,
        }
        for stamp, s in _packets(rec, 8, 251_818)
    ]
    end = rec.local(int(rec.t_us[(len(packets) * 8) - 1]))
    name = f"MovesenseLog_{log_id} {end:%Y-%m-%d %H:%M:%S}.json"
    text = json.dumps({"Meas": {"IMU9": packets}}, separators=(",", ":"))
    (folder / name).write_text(text, encoding="utf-8")
    return folder / name


def write_movesense_sbem2json(rec: ThighRecording, folder: Path) -> Path:
    """A DataLogger log converted by the vendor's ``sbem2json`` (Python datalogger tool).

    ``{"Samples":[{"TimeDetailed":{"relativeTime":..,"utcTime":..}},{"MeasIMU6":{"Timestamp":
    ..,"ArrayAcc":[..],"ArrayGyro":[..]}}, ..]}``: the layout the vendor's converter reads
    (sensein/movesense-py ``ms_json2csv.py``: ``content["Samples"]``, one-key entries,
    ``TimeDetailed`` with ``utcTime`` µs and ``relativeTime`` ms; the tool adds
    ``/Time/Detailed`` to every log, ``datalogger_tool.py`` L40). No real converted file was
    published; the field names are Movesense's (``time.yaml`` L90-130, ``imu.yaml``).
    """
    acc, gyro, _ = _imu(rec, 12)
    boot_ms = 3_600_123
    packets = _packets(rec, 8, boot_ms)
    rel_ms = boot_ms - 40  # the time entry is logged just before the first packet
    utc_us = int(rec.t_us[0]) - 40_000
    samples: list[dict[str, object]] = [
        {"TimeDetailed": {"relativeTime": rel_ms, "utcTime": utc_us}}
    ]
    samples += [
        {
            "MeasIMU6": {
                "Timestamp": stamp,
                "ArrayAcc": _vectors(acc[s]),
                "ArrayGyro": _vectors(gyro[s]),
            }
        }
        for stamp, s in packets
    ]
    path = folder / "Movesense_log_3_1.json"
    path.write_text(json.dumps({"Samples": samples}, separators=(",", ":")), encoding="utf-8")
    return path


def _ios_stamp(rec: ThighRecording) -> str:
    # Record is pressed a moment before the first packet arrives (Recorder.swift L80-86)
    pressed = _utc(int(rec.t_us[0]) - 400_000)
    return f"{pressed:%Y%m%dT%H%M%S}Z"


def write_movesense_ios_json(
    rec: ThighRecording,
    folder: Path,
    serial: str = "175030001234",
    *,
    wrapped: bool = True,
    stopped: bool = True,
) -> Path:
    """The iOS Showcase app's shared stream file ``<start>_<serial>_acc_stream.json``.

    One event per line, ``{"acc":{"Timestamp":..,"ArrayAcc":[..]}}`` (the event line of
    movesense-mobile-lib ``IOS/MovesenseShowcase/MovesenseShowcaseTests/CsvEncodingTests.swift``
    L11-13). The current app wraps them: ``{"data": [`` LF, each event but the last followed
    by ``,`` LF, then the last, LF, ``]}``; the closing ``]}`` is missing when the app was not
    stopped (``stopped=False``) (``recorder/RecorderFileJson.swift`` L26-36, L69-85, L181-193).
    Older app versions write the lines alone (``wrapped=False``: mikkojeronen/
    MovesenseShowcase-iOS ``RecorderFileJson.swift`` L173-181). The name carries the record
    start in UTC (``Date+iso8601.swift`` L19-26, ``Recorder.swift`` L138-160).
    """
    acc = rec.acc_g.astype(np.float32).astype(np.float64) * np.float32(G)
    events = [
        json.dumps(
            {"acc": {"Timestamp": stamp, "ArrayAcc": _vectors(acc[s])}}, separators=(",", ":")
        )
        for stamp, s in _packets(rec, 4, 599_025_762)
    ]
    path = folder / f"{_ios_stamp(rec)}_{serial}_acc_stream.json"
    if not wrapped:
        return _write_lines(path, events)
    body = '{"data": [\n' + "".join(e + ",\n" for e in events[:-1])
    if stopped:
        body += events[-1] + "\n]}"
    path.write_text(body, encoding="utf-8")
    return path


def write_movesense_ios_csv(
    rec: ThighRecording, folder: Path, serial: str = "175030001234"
) -> Path:
    """The iOS Showcase app's CSV conversion ``<start>_<serial>_acc_stream.csv``.

    Header ``timestamp,x,y,z``; one row per sample, ``ts + UInt32(i * (ts - prevTs) / count)``
    with ``prevTs`` the previous packet's, so the first packet is left out; values are Swift
    ``Float`` text (movesense-mobile-lib ``recorder/Recorder.swift`` L51-57, L195-196,
    L311-319, L341-356).
    """
    import polars as pl

    acc = (rec.acc_g * G).astype(np.float32)
    packets = _packets(rec, 4, 599_025_762)
    rows_t, rows_v = [], []
    for (prev, _), (stamp, s) in itertools.pairwise(packets):
        count = s.stop - s.start
        rows_t.append(stamp + (np.arange(count) * (stamp - prev) / count).astype(np.int64))
        rows_v.append(acc[s])
    frame = pl.DataFrame(
        {
            "timestamp": np.concatenate(rows_t),
            "x": np.concatenate(rows_v)[:, 0],
            "y": np.concatenate(rows_v)[:, 1],
            "z": np.concatenate(rows_v)[:, 2],
        }
    )
    path = folder / f"{_ios_stamp(rec)}_{serial}_acc_stream.csv"
    frame.write_csv(path)
    return path


def write_movesense_android_csv(
    rec: ThighRecording, folder: Path, serial: str = "175030001234", *, decimal: str = "."
) -> Path:
    """The Android Showcase app's accelerometer log.

    ``<yyyy-MM-dd_HH-mm-ss, UTC, when saved>_<serial>_LinearAccelerationTestActivity.csv``,
    header ``Timestamp (ms),X: (m/s^2),Y: (m/s^2),Z: (m/s^2)``, rows
    ``String.format(Locale.getDefault(), "%d,%.6f,%.6f,%.6f, ", timestamp + round(1000/rate*i),
    ..)`` (movesense-mobile-lib ``android/Showcaseapp/.../csv/CsvLogger.java`` L53-57,
    L98-118; ``tests/LinearAccelerationTestActivity.java`` L196-206, L262-271). A phone in a
    German locale writes ``decimal=","``.
    """
    acc = rec.acc_g * G
    per = 8
    stamps = []
    for stamp, s in _packets(rec, per, 1_234_567):
        stamps.append(stamp + np.round(1000.0 / rec.fs_hz * np.arange(s.stop - s.start)))
    t_ms = np.concatenate(stamps).astype(np.int64)
    m = t_ms.size
    cols = [t_ms.astype(str)] + [_fixed(acc[:m, k], 6, decimal) for k in range(3)]
    lines = ["Timestamp (ms),X: (m/s^2),Y: (m/s^2),Z: (m/s^2)"]
    lines += [row + ", " for row in _join(cols, ",")]
    saved = _utc(int(rec.t_us[m - 1]) + 2_000_000)
    name = f"{saved:%Y-%m-%d_%H-%M-%S}_{serial}_LinearAccelerationTestActivity.csv"
    return _write_lines(folder / name, lines)


# --------------------------------------------------------------------------- ActiGraph, Axivity


def write_actigraph_csv(rec: ThighRecording, folder: Path, serial: str = "NEO1F18120387") -> Path:
    """ActiLife's raw CSV export: the ten-line preamble, ``Accelerometer X,Y,Z`` header and
    rows in g without a time column (published sample: ADALabUCSD/DeepPostures
    ``MSSE-2021/README.md``, "First few lines of a sample csv file"); times follow from
    ``Start Date``/``Start Time`` and the rate in the first line."""
    start = rec.local(int(rec.t_us[0]))
    head = [
        "------------ Data File Created By ActiGraph GT3X+ ActiLife v6.13.3 Firmware v3.2.1 "
        f"date format M/d/yyyy at {rec.fs_hz:g} Hz  Filter Normal -----------",
        f"Serial Number: {serial}",
        f"Start Time {start:%H:%M:%S}",
        f"Start Date {start.month}/{start.day}/{start.year}",
        "Epoch Period (hh:mm:ss) 00:00:00",
        "Download Time 10:31:05",
        f"Download Date {start.month}/{start.day}/{start.year}",
        "Current Memory Address: 0",
        "Current Battery Voltage: 4.07     Mode = 12",
        "--------------------------------------------------",
        "Accelerometer X,Accelerometer Y,Accelerometer Z",
    ]
    rows = _join([_fixed(rec.acc_g[:, k], 3) for k in range(3)], ",")
    return _write_lines(folder / f"{serial} ({start:%Y-%m-%d})RAW.csv", head + rows)


def write_axivity_csv(
    rec: ThighRecording,
    folder: Path,
    *,
    time_form: str = "timestamp",
    extras: bool = False,
    header: bool = False,
) -> Path:
    """``cwa-convert -f:csv`` output (what OMGUI's raw export runs).

    No header; the device's local time as ``%04d-%02d-%02d %02d:%02d:%02d.%03d`` (milliseconds
    truncated), ``-t:serial`` ``%0.4f`` seconds or ``-t:excel`` ``%0.12f`` days, then
    ``%f`` x, y, z in g; ``extras`` adds ``-light -temp -batt -events`` (``,%u`` each and the
    event letters) (digitalinteraction/openmovement ``Software/AX3/cwa-convert/c/main.c``
    L617-664, L761-835, L851-887). ``header`` writes omconvert's resampled-CSV header line
    (``Software/AX3/omconvert/calc-csv.c`` L177-180).
    """
    wall_us = rec.t_us + _local_offset_us(rec)
    if time_form == "timestamp":
        text = np.datetime_as_string((wall_us // 1000).astype("datetime64[ms]"), unit="ms")
        times = np.char.replace(text, "T", " ")
    elif time_form == "serial":
        times = _fixed(wall_us / 1e6, 4)
    elif time_form == "excel":
        times = _fixed(wall_us / 86_400e6 + 25569.0, 12)
    else:
        raise ValueError(f"time_form {time_form!r}")
    cols = [times] + [_fixed(rec.acc_g[:, k], 6) for k in range(3)]
    if extras:
        cols += [np.full(rec.n, v) for v in ("283", "258", "190")]
        events = np.full(rec.n, "", dtype=object)
        events[0] = "r"
        cols.append(events.astype(str))
    lines = _join(cols, ",")
    if header:
        lines = ["Time,Accel-X (g), Accel-Y (g), Accel-Z (g)", *lines]
    suffix = {"timestamp": "", "serial": "-serial", "excel": "-excel"}[time_form]
    return _write_lines(folder / f"thigh-AX3{suffix}{'-extras' if extras else ''}.csv", lines)


# --------------------------------------------------------------------------- activPAL


#: posture -> activPAL activity code (PALkitchen/activPAL R/activity.overlay.chart.R L1-6)
_ACTIVPAL_CODE = {
    Posture.SITTING: "0",
    Posture.STANDING: "1",
    Posture.MOVING: "2",
    Posture.CYCLING: "2.1",
    Posture.LYING: "3.1",
    Posture.NONWEAR: "4",
}


def activpal_events(rec: ThighRecording) -> list[tuple[dt.datetime, float, str, int]]:
    """The recording's true postures as activPAL events: (local start, seconds, code, strides)."""
    labels = rec.labels
    change = np.flatnonzero(np.diff(labels)) + 1
    starts = np.concatenate(([0], change))
    ends = np.concatenate((change, [rec.n]))
    strides = 0
    out = []
    for a, b in zip(starts, ends, strict=True):
        code = _ACTIVPAL_CODE[Posture(int(labels[a]))]
        seconds = round((b - a) / rec.fs_hz, 1)
        out.append((rec.local(int(rec.t_us[a])), seconds, code, strides))
        if code == "2":
            strides += int(seconds * 0.9)  # about 1.8 steps/s while stepping, one count a stride
    return out


def _excel_days(local: dt.datetime) -> float:
    return (local - dt.datetime(1899, 12, 30)).total_seconds() / 86_400


def write_activpal_events(rec: ThighRecording, folder: Path, *, extended: bool = False) -> Path:
    """PAL software events export.

    ``Events.csv``: the quoted header of PALkitchen/activPAL ``inst/extdata/Test_Events.csv``
    (L1, one name holding a comma) and unquoted rows of Excel day numbers (device local time),
    samples at 10 Hz, interval, code, cumulative strides, MET.h and the three sums.
    ``extended``: ``EventsEx.csv`` with ``sep=;``, the ``;``-separated header of
    ``inst/extdata/EventsEx1/Test1-EventsEx.csv`` (L1-2) and rows ending in ``;``.
    """
    events = activpal_events(rec)
    if extended:
        lines = [
            "sep=;",
            "Time;Time(approx);Data Count;Event Type;Duration (s);Waking Day;"
            "Cumulative Step Count;Activity Score (MET.h);AbsSumDiffX;AbsSumDiffY;AbsSumDiffZ;"
            "Time Upright (s);Time Upside Down (s);Time Back Lying (s);Time Front Lying (s);"
            "Time Left Lying (s);Time Right Lying (s)",
        ]
        count = 0
        for start, seconds, code, strides in events:
            upright = seconds if code in ("1", "2", "2.1") else 0.0
            lines.append(
                f"{_excel_days(start):.10f};{start:%Y-%m-%d %H:%M:%S};{count};{code};{seconds};1;"
                f"{strides};0.010590277777777778;4739;5588;5204;{upright:.1f};0.0;0.0;0.0;0.0;0.0;"
            )
            count += round(seconds * 10)
        return _write_lines(folder / "Test-AP840024-EventsEx.csv", lines)
    lines = [
        '"Time","DataCount (samples)","Interval (s)","ActivityCode (0=sedentary 1=standing '
        '2=stepping 3.1=primary lying, 3.2=secondary lying 4=non-wear)","CumulativeStepCount",'
        '"Activity Score (MET.h)","Sum(Abs(DiffX)","Sum(Abs(DiffY)","Sum(Abs(DiffZ)"'
    ]
    count = 0
    for start, seconds, code, strides in events:
        lines.append(
            f"{_excel_days(start):.10f},{count},{seconds},{code},{strides},"
            "0.017395833333333333,6319,5768,4977"
        )
        count += round(seconds * 10)
    return _write_lines(folder / "SA006-AP840024 2Mar26-Events.csv", lines)


# --------------------------------------------------------------------------- EDF, generic CSV


def write_generic_csv(rec: ThighRecording, folder: Path) -> Path:
    """The project's generic CSV convention (``docs/import.md``): ``t_us`` and ``acc_*[g]``."""
    cols = [rec.t_us.astype(str)] + [_fixed(rec.acc_g[:, k], 5) for k in range(3)]
    lines = ["t_us,acc_x[g],acc_y[g],acc_z[g]", *_join(cols, ",")]
    return _write_lines(folder / "thigh-generic.csv", lines)


def write_edf(
    folder: Path,
    start: dt.datetime,
    *,
    rec: ThighRecording | None = None,
    emg_uv: NDArray[np.float64] | None = None,
    emg_fs_hz: int = 1000,
    labels: tuple[str, ...] = ("EMG Glute R", "EMG Hamstring R"),
    name: str = "lab-session.edf",
) -> Path:
    """An EDF+ file as a lab EMG system with an IMU writes it (with pyedflib, the EDF+ library
    the project reads with): EMG signals in µV labelled ``EMG <site>`` (EDF+ labels are
    ``<signal type> <specification>``, edfplus.info "EDF+ texts"), the thigh IMU's
    ``Accel X/Y/Z`` in g, starting at the local wall-clock time ``start``."""
    import pyedflib

    heads: list[dict[str, str | int | float | None]] = []
    columns: list[NDArray[np.float64]] = []
    if emg_uv is not None:
        seconds = emg_uv.shape[0] // emg_fs_hz
        for k, label in enumerate(labels):
            heads.append(
                {
                    "label": label,
                    "dimension": "uV",
                    "sample_frequency": emg_fs_hz,
                    "physical_max": 5000,
                    "physical_min": -5000,
                    "digital_max": 32767,
                    "digital_min": -32768,
                }
            )
            columns.append(np.ascontiguousarray(emg_uv[: seconds * emg_fs_hz, k]))
    if rec is not None:
        fs_acc = int(rec.fs_hz)
        seconds = rec.n // fs_acc
        for k, axis in enumerate("XYZ"):
            heads.append(
                {
                    "label": f"Accel {axis}",
                    "dimension": "g",
                    "sample_frequency": fs_acc,
                    "physical_max": 8,
                    "physical_min": -8,
                    "digital_max": 32767,
                    "digital_min": -32768,
                }
            )
            columns.append(np.ascontiguousarray(rec.acc_g[: seconds * fs_acc, k]))
    path = folder / name
    writer = pyedflib.EdfWriter(str(path), len(heads), file_type=pyedflib.FILETYPE_EDFPLUS)
    try:
        writer.setSignalHeaders(heads)
        writer.setStartdatetime(start)
        writer.setEquipment("LabEMG-8")
        writer.writeSamples(columns)
    finally:
        writer.close()
    return path
