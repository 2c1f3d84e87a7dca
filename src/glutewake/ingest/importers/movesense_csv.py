"""Movesense CSV, as the Showcase apps write it.

- **iOS Showcase "convert to CSV"**, ``<yyyyMMddTHHmmssZ>_<serial>_<resource>_stream.csv``:
  header ``timestamp,x,y,z`` (acc, gyro, magn) or ``timestamp,x,y,z,gx,gy,gz`` (imu: acc then
  gyro), one row per sample with the packet clock in ms (Movesense mobile lib
  ``IOS/MovesenseShowcase/MovesenseShowcase/recorder/Recorder.swift`` L51-57, L195-196,
  L341-356). The sensor comes from ``<resource>`` in the name. Older app versions wrote one
  timestamp per packet and left it empty on the packet's other rows; those files are refused
  (import the recording's ``_stream.json`` instead).
- **Android Showcase**, ``<yyyy-MM-dd_HH-mm-ss>_<serial>_<Activity>.csv``: header
  ``Timestamp (ms),X: (m/s^2),Y: (m/s^2),Z: (m/s^2)`` (gyro ``(degree per second)``, magnetometer
  ``(microtesla)``), rows ``%d,%.6f,%.6f,%.6f, `` with a trailing empty field; IMU files have the
  header ``Timestamp,AccX,AccY,AccZ,GyroX,GyroY,GyroZ,MagnX,MagnY,MagnZ`` and 7 fields per row
  for IMU6, 10 for IMU9 (``android/Showcaseapp/.../tests/LinearAccelerationTestActivity.java``
  L196-206, ``AngularVelocityActivity.java`` L192-198, ``MagneticFieldTestActivity.java``
  L193-200, ``ImuActivity.java`` L162, L205-228). Numbers are formatted in the phone's locale
  (``String.format(Locale.getDefault(), ...)``), so a German phone writes ``-0,071787`` inside
  the comma-separated row; with exactly six decimals per number such rows are read back
  unambiguously.
- **Earlier glutewake convention**: a file whose name says Movesense, with a ``timestamp``
  column and axis columns (``x``, ``acc_x``, ``AccX``, ``gyro_x``, ``magn_x``, ...).

Units: acc m/s², gyro deg/s, magnetometer µT (converted to g, deg/s, gauss). Timestamps are the
sensor's ms packet clock, placed in UTC as :mod:`~glutewake.ingest.importers.movesense_clock`
describes (a Unix-ms column, in the earlier convention, is used as is).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from glutewake.ingest.importers._core import ReadContext, Source
from glutewake.ingest.importers.csvio import (
    FRACTION,
    CsvLayout,
    StreamColumns,
    TimeSpec,
    read_csv_batches,
)
from glutewake.ingest.importers.errors import ImportFileError
from glutewake.ingest.importers.movesense_clock import name_resource, name_serial, wall_time
from glutewake.ingest.importers.sniff import Head

NAME = "movesense-csv"
_G = 9.80665
_FACTORS = {"acc": 1 / _G, "gyro": 1.0, "mag": 1e-2}
_IOS_HEADERS = {"timestamp,x,y,z": 3, "timestamp,x,y,z,gx,gy,gz": 6}
_ANDROID_UNITS = {"m/s^2": "acc", "degree per second": "gyro", "microtesla": "mag"}
_ANDROID_SINGLE = re.compile(
    r"^Timestamp \(ms\),X: \(([^)]+)\),Y: \(([^)]+)\),Z: \(([^)]+)\)\s*$", re.IGNORECASE
)
_ANDROID_IMU = "timestamp,accx,accy,accz,gyrox,gyroy,gyroz,magnx,magny,magnz"
_AXIS = re.compile(r"^(acc|gyro|gyr|magn|mag)?[ _]?([xyz])(\s*[\[(].*[\])])?$", re.IGNORECASE)
_STREAM_PREFIX = {"acc": "acc", "gyro": "gyro", "gyr": "gyro", "magn": "mag", "mag": "mag"}
_IOS_RESOURCES = {"acc": "acc", "gyro": "gyro", "magn": "mag"}


def _header(head: Head) -> str:
    return head.lines[0].strip().replace(" ", "") if head.lines else ""


def sniff(head: Head) -> bool:
    """An Android Showcase header, an iOS header in a file named as the app names it, or the
    earlier convention (``timestamp`` and axis columns, "movesense" in the name)."""
    if not head.lines:
        return False
    first = head.lines[0].strip()
    if _ANDROID_SINGLE.match(first) or first.replace(" ", "").lower() == _ANDROID_IMU:
        return True
    name = head.path.name.lower()
    if _header(head).lower() in _IOS_HEADERS and (
        name.endswith("_stream.csv") or "movesense" in name
    ):
        return True
    if "movesense" not in name:
        return False
    cols = [c.strip().strip('"') for c in first.split(",")]
    return (
        any(c.lower() == "timestamp" for c in cols) and sum(bool(_AXIS.match(c)) for c in cols) >= 3
    )


@dataclass(frozen=True)
class _Columns:
    names: tuple[str, ...]
    streams: tuple[StreamColumns, ...]
    split: bool
    layout: str


def _data_fields(head: Head) -> tuple[int, list[str]]:
    line = head.lines[1] if len(head.lines) > 1 else ""
    fields = line.split(",")
    return len(fields), fields


def _with_fractions(
    names: list[str], value_cols: list[str], split: bool, trailing: bool
) -> tuple[str, ...]:
    out: list[str] = []
    for n in names:
        out.append(n)
        if split and n in value_cols:
            out.append(n + FRACTION)
    if trailing:
        out.append("_trailing")
    return tuple(out)


def _android(path: Path, head: Head) -> _Columns:
    first = head.lines[0].strip()
    n_fields, fields = _data_fields(head)
    single = _ANDROID_SINGLE.match(first)
    if single:
        units = {u.strip().lower() for u in single.groups()}
        stream = _ANDROID_UNITS.get(units.pop()) if len(units) == 1 else None
        if stream is None:
            raise ImportFileError(
                f"{path}: line 1: units {', '.join(single.groups())}; expected m/s^2, "
                "degree per second or microtesla"
            )
        groups = [(stream, ("x", "y", "z"))]
    else:
        groups = [("acc", ("x", "y", "z")), ("gyro", ("x", "y", "z")), ("mag", ("x", "y", "z"))]
    trailing = bool(fields) and fields[-1].strip() == ""
    values = n_fields - 1 - (1 if trailing else 0)
    n_axes = 3 * len(groups)
    if values in (n_axes, 2 * n_axes):
        split = values == 2 * n_axes
    elif not single and values in (6, 12):  # IMU6 rows under the shared IMU header
        groups, split = groups[:2], values == 12
    else:
        raise ImportFileError(
            f"{path}: line 2: {n_fields} fields; expected a timestamp and "
            f"{n_axes} values (Android Showcase layout)"
        )
    cols: list[str] = ["timestamp"]
    streams = []
    for stream, axes in groups:
        names = tuple(f"{stream}_{a}" for a in axes)
        cols.extend(names)
        streams.append(StreamColumns(stream, axes, names, _FACTORS[stream]))
    value_cols = [c for s in streams for c in s.columns]
    return _Columns(
        _with_fractions(cols, value_cols, split, trailing),
        tuple(streams),
        split,
        "Android Showcase CSV" + (" (decimal commas)" if split else ""),
    )


def _name_stream(path: Path) -> str | None:
    """The sensor named by the file: the iOS app's resource, else an _Acc/_Gyro/_Magn token."""
    resource = name_resource(path)
    if resource in _IOS_RESOURCES:
        return _IOS_RESOURCES[str(resource)]
    name = path.name.lower()
    return next(
        (s for t, s in (("acc", "acc"), ("gyro", "gyro"), ("magn", "mag")) if f"_{t}" in name), None
    )


def _ios(path: Path, head: Head) -> _Columns:
    n_axes = _IOS_HEADERS[_header(head).lower()]
    if n_axes == 6:
        groups = [("acc", "x", "y", "z"), ("gyro", "gx", "gy", "gz")]
    else:
        stream = _name_stream(path)
        if stream is None:
            raise ImportFileError(
                f"{path}: the file name does not say which sensor wrote x, y, z; expected the "
                "app's name <start>_<serial>_<acc|gyro|magn>_stream.csv"
            )
        groups = [(stream, "x", "y", "z")]
    cols = ["timestamp"]
    streams = []
    for stream, *names in groups:
        cols.extend(names)
        streams.append(StreamColumns(stream, ("x", "y", "z"), tuple(names), _FACTORS[stream]))
    return _Columns(tuple(cols), tuple(streams), False, "iOS Showcase CSV")


def _earlier(path: Path, head: Head) -> _Columns:
    cols = [c.strip().strip('"') for c in head.lines[0].split(",")]
    name_stream = _name_stream(path)
    by_stream: dict[str, list[tuple[str, str]]] = {}
    for c in cols:
        m = _AXIS.match(c)
        if not m:
            continue
        stream = _STREAM_PREFIX.get((m.group(1) or "").lower(), name_stream)
        if stream is None:
            raise ImportFileError(
                f"{path}: line 1: column {c!r} does not say its sensor and the "
                "file name has no _Acc/_Gyro/_Magn"
            )
        by_stream.setdefault(stream, []).append((c, m.group(2).lower()))
    if not by_stream or any(len(v) != 3 for v in by_stream.values()):
        raise ImportFileError(
            f"{path}: line 1: columns {cols}; expected timestamp and x, y, z of each sensor"
        )
    names = ["timestamp" if c.lower() == "timestamp" else c for c in cols]
    streams = tuple(
        StreamColumns(s, tuple(a for _, a in items), tuple(c for c, _ in items), _FACTORS[s])
        for s, items in by_stream.items()
    )
    return _Columns(tuple(names), streams, False, "Movesense CSV (earlier glutewake convention)")


def _last_value(path: Path, column: int) -> str | None:
    """Field ``column`` of the file's last non-empty line, read from its end."""
    with open(path, "rb") as fh:
        fh.seek(0, 2)
        size = fh.tell()
        fh.seek(max(0, size - 65536))
        tail = fh.read().decode("utf-8", errors="replace").splitlines()
    lines = [ln for ln in tail if ln.strip()]
    if not lines:
        return None
    fields = lines[-1].split(",")
    return fields[column].strip() if column < len(fields) else None


def _ms(path: Path, text: str | None, where: str) -> float:
    try:
        return float(text) if text is not None else float("nan")
    except ValueError:
        raise ImportFileError(f"{path}: {where}: timestamp {text!r} is not a number") from None


def open_source(path: Path, head: Head, ctx: ReadContext) -> Source:
    """Read a Movesense CSV file (see the module docstring)."""
    first = head.lines[0].strip()
    if _ANDROID_SINGLE.match(first) or first.replace(" ", "").lower() == _ANDROID_IMU:
        found = _android(path, head)
    elif _header(head).lower() in _IOS_HEADERS:
        found = _ios(path, head)
    else:
        found = _earlier(path, head)
    first_ts = head.first_value(1, 0, ",")
    if first_ts == "":
        raise ImportFileError(
            f"{path}: line 2: empty timestamp (an older iOS app's CSV, one timestamp per "
            "packet); import the recording's _stream.json file instead"
        )
    first_ms = _ms(path, first_ts, "line 2")
    info: dict[str, object] = {"layout": found.layout}
    if first_ms > 1e12:  # Unix ms (earlier convention)
        spec = TimeSpec("epoch", column="timestamp", scale_us=1e3)
        info["wall_time"] = "Unix ms column"
    else:
        anchor = wall_time(path, ctx, None)
        last = anchor.at == "last"
        ref_ms = _ms(path, _last_value(path, 0), "last line") if last else first_ms
        spec = TimeSpec(
            "epoch", column="timestamp", scale_us=1e3, offset_us=anchor.t_us - round(ref_ms * 1e3)
        )
        info["wall_time"] = anchor.source
        info["clock"] = "sensor ms packet clock"
    layout = CsvLayout(
        path=path,
        columns=found.names,
        time=spec,
        streams=found.streams,
        data_line0=1,
        split_decimals=found.split,
    )
    serial = name_serial(path)
    flags: list[tuple[str, str]] = []
    return Source(
        read_csv_batches(layout, ctx.chunk_rows, flags),
        flags=flags,
        device_id=f"Movesense-{serial}" if serial else None,
        info=info,
    )
