"""Polar Sensor Logger app exports (``Polar_<model>_<id>_<yyyymmdd>_<hhmmss>_ACC.txt`` etc.).

``;``-separated text, one file per stream, header as the app writes it::

    Phone timestamp;sensor timestamp [ns];X [mg];Y [mg];Z [mg]      (ACC, milli-g)
    Phone timestamp;sensor timestamp [ns];X [dps];Y [dps];Z [dps]   (GYRO, deg/s)
    Phone timestamp;sensor timestamp [ns];X [G];Y [G];Z [G]         (MAGN, gauss)

``Phone timestamp`` is the phone's local clock when the frame arrived (ISO text, no zone: ``--tz``
is required); ``sensor timestamp [ns]`` is the sensor's own clock per sample. Samples keep the
sensor clock's spacing and are placed in UTC by the least-delayed phone arrivals (the 1st
percentile of phone minus sensor time over the first chunk); nothing is resampled.
"""

from __future__ import annotations

import re
from pathlib import Path

from glutewake.ingest.importers._core import ReadContext, Source, need_tz
from glutewake.ingest.importers.csvio import CsvLayout, StreamColumns, TimeSpec, read_csv_batches
from glutewake.ingest.importers.errors import ImportFileError
from glutewake.ingest.importers.sniff import Head

NAME = "polar-sensor-logger"
# the app names files Polar_<model>_<device id>_<yyyymmdd>_<hhmmss>_<STREAM>.txt (published
# export: obss/BIOBSS sample_data/ik_d1_25042022_forearm_left/
# Polar_Sense_A40F6F28_20220425_113903_ACC.txt); one joined date-time group is accepted too
_FILE = re.compile(r"^(Polar_[^_]+_[0-9A-Fa-f]+)(?:_\d+)+_([A-Z]+)\.", re.IGNORECASE)
_COL = re.compile(r"^\s*([^\[]+?)\s*\[([^\]]+)\]\s*$")
#: the app's unit spellings (case matters: G is gauss in a MAG file)
_UNITS = {
    "mg": ("acc", 1e-3),
    "g": ("acc", 1.0),
    "dps": ("gyro", 1.0),
    "deg/s": ("gyro", 1.0),
    "G": ("mag", 1.0),
    "mG": ("mag", 1e-3),
    "gauss": ("mag", 1.0),
    "uT": ("mag", 1e-2),
}
_OFFSET = re.compile(r"(Z|[+-]\d\d:?\d\d)$")


def sniff(head: Head) -> bool:
    """The app's header line: ``Phone timestamp;sensor timestamp [ns];...``."""
    return bool(head.lines) and head.lines[0].lower().startswith("phone timestamp;sensor timestamp")


def open_source(path: Path, head: Head, ctx: ReadContext) -> Source:
    """Read one Polar Sensor Logger stream file (see the module docstring)."""
    cols = [c.strip() for c in head.lines[0].split(";")]
    if len(cols) < 3 or cols[1].lower() != "sensor timestamp [ns]":
        raise ImportFileError(
            f"{path}: line 1: expected 'Phone timestamp;sensor timestamp [ns];"
            "X [unit];Y [unit];Z [unit]'"
        )
    name_match = _FILE.match(path.name)
    file_stream = name_match.group(2).upper() if name_match else None
    channels: list[tuple[str, str, str]] = []
    for c in cols[2:]:
        m = _COL.match(c)
        if m is None:
            raise ImportFileError(
                f"{path}: line 1: column {c!r} has no [unit]; expected e.g. 'X [mg]'"
            )
        channels.append((c, m.group(1).lower(), m.group(2).strip()))
    units = {u for _, _, u in channels}
    if len(units) > 1:
        raise ImportFileError(
            f"{path}: line 1: mixed units ({', '.join(sorted(units))}); "
            "expected one unit for X, Y and Z"
        )
    unit = units.pop()
    if unit == "G" and file_stream == "ACC":
        unit = "g"
    if unit not in _UNITS:
        raise ImportFileError(
            f"{path}: line 1: unit {unit!r} is not one the project imports from Polar Sensor "
            "Logger (ACC mg, GYRO dps, MAG G); ECG/PPG/HR files are not imported"
        )
    stream, factor = _UNITS[unit]
    first = head.first_value(1, 0, ";")
    offset = bool(first and _OFFSET.search(first))
    tz = None if offset else need_tz(path, ctx, "Polar Sensor Logger phone timestamps")
    spec = TimeSpec(
        "anchored",
        column=cols[1],
        scale_us=1e-3,
        anchor=cols[0],
        fmt=None,
        tz=tz,
    )
    layout = CsvLayout(
        path=path,
        columns=tuple(cols),
        time=spec,
        streams=(
            StreamColumns(
                stream, tuple(n for _, n, _ in channels), tuple(c for c, _, _ in channels), factor
            ),
        ),
        separator=";",
        data_line0=1,
    )
    flags: list[tuple[str, str]] = []
    return Source(
        read_csv_batches(layout, ctx.chunk_rows, flags),
        flags=flags,
        device_id=name_match.group(1) if name_match else None,
        info={
            "tz_source": "file" if offset else f"--tz {tz}",
            "clock": "sensor timestamps anchored to phone arrival times",
        },
    )
