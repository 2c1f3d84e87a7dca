"""Where a Movesense recording lies in time, and which sensor wrote it.

A Movesense sensor time-stamps its packets with a millisecond clock that starts at its last
reset (``Timestamp``, "Local timestamp of first measurement", uint32 ms: Movesense device lib
``MovesenseCoreLib/resources/movesense-api/meas/acc.yaml`` L116-130). A file places that clock in
UTC in one of these ways, tried in this order:

1. ``--start`` given by the user (the first sample's wall time);
2. the file's own wall time: ``/Time/Detailed`` entries (``utcTime`` µs since 1970 and
   ``relativeTime`` ms on the packet clock, ``time.yaml`` L90-130), which the vendor's Python
   datalogger tool adds to every log (sensein/movesense-py ``datalogger_tool.py`` L40), or a
   ``UtcTime``/``StartTime`` field of an MDS notification log;
3. the stamp the app put in the file name:

   - iOS Showcase: ``<yyyyMMdd'T'HHmmssZZZZZ>_<serial>_<resource>_stream.json`` in UTC
     (Movesense mobile lib ``IOS/MovesenseShowcase/.../extensions/Date+iso8601.swift`` L19-26;
     ``recorder/Recorder.swift`` L138-160), taken when Record is pressed (L80-86): the first
     packet;
   - Android Showcase: ``<yyyy-MM-dd_HH-mm-ss>_<serial>_<Activity>.csv`` in UTC, taken when the
     log is saved at unsubscribe (``android/Showcaseapp/.../csv/CsvLogger.java`` L53-57,
     L98-118; ``LinearAccelerationTestActivity.java`` L262-271): the last sample;
   - DataLogger sample app: ``MovesenseLog_<id> <yyyy-MM-dd HH:mm:ss>.json``, the log entry's
     last modification in the phone's zone (``android/samples/DataLoggerSample/.../
     DataLoggerActivity.java`` L599-601, ``MdsLogbookEntriesResponse.java`` L25-42): the last
     sample, local time (``--tz``).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from glutewake.ingest.importers._core import ReadContext, local_to_utc_us, need_tz
from glutewake.ingest.importers.errors import ImportFileError

_IOS_STAMP = re.compile(r"(\d{8})T(\d{6})(Z|[+-]\d\d:?\d\d)?")
_IOS_NAME = re.compile(r"\d{8}T\d{6}(?:Z|[+-]\d\d:?\d\d)?_([0-9A-Za-z]+)_([A-Za-z]+)_stream\.")
_ANDROID_NAME = re.compile(
    r"(\d{4}-\d\d-\d\d)_(\d\d)-(\d\d)-(\d\d)_([0-9A-Za-z]+)_([A-Za-z]+)\.csv$", re.IGNORECASE
)
# the sample app writes "yyyy-MM-dd HH:mm:ss"; file managers may replace the colons
_DATALOGGER_NAME = re.compile(r"MovesenseLog_\d+[ _](\d{4}-\d\d-\d\d)[ _T](\d\d)\D(\d\d)\D(\d\d)")
#: the packet clock is uint32 ms: it wraps after 49.7 days
_WRAP_MS = 1 << 32


@dataclass(frozen=True)
class WallTime:
    """A UTC instant and whether it is the recording's first or last sample."""

    t_us: int
    at: str  #: "first" or "last"
    source: str


def name_serial(path: Path) -> str | None:
    """The sensor serial number an app put in the file name (or its recordings folder)."""
    for pattern in (_IOS_NAME, _ANDROID_NAME):
        m = pattern.search(path.name)
        if m:
            return m.group(1) if pattern is _IOS_NAME else m.group(5)
    # the iOS app's own folders: recordings/<date>/<serial>/<resource>/<resource>_stream.json
    if path.name.endswith("_stream.json") and path.parent.parent.name.isdigit():
        return path.parent.parent.name
    return None


def name_resource(path: Path) -> str | None:
    """The sensor resource an app put in the file name (``acc``, ``gyro``, ``magn``, ``imu``,
    an Android activity name, ...), lower case."""
    m = _IOS_NAME.search(path.name)
    if m:
        return m.group(2).lower()
    m = _ANDROID_NAME.search(path.name)
    if m:
        return m.group(6).lower()
    if path.name.endswith("_stream.json"):
        return path.name.removesuffix("_stream.json").lower()
    return None


def _ios_stamp(path: Path, ctx: ReadContext) -> WallTime | None:
    # the iOS app's folders: recordings/<start>/<serial>/<resource>/<resource>_stream.json
    for part in (path.name, *(p.name for p in list(path.parents)[:3])):
        m = _IOS_STAMP.search(part)
        if m is None:
            continue
        try:
            stamp = dt.datetime.strptime(m.group(1) + m.group(2), "%Y%m%d%H%M%S")
        except ValueError:
            continue
        zone = m.group(3)
        if zone:
            offset = dt.datetime.fromisoformat("2000-01-01T00:00:00" + zone.replace("Z", "+00:00"))
            t_us = local_to_utc_us(stamp.replace(tzinfo=offset.tzinfo), None)
            return WallTime(t_us, "first", f"recording start in the name ({m.group(0)})")
        tz = need_tz(path, ctx, "the start time in the file name")
        return WallTime(local_to_utc_us(stamp, tz), "first", f"recording start in the name ({tz})")
    return None


def _end_stamp(path: Path, ctx: ReadContext) -> WallTime | None:
    m = _ANDROID_NAME.search(path.name)
    if m:
        stamp = dt.datetime.strptime(
            f"{m.group(1)} {m.group(2)}{m.group(3)}{m.group(4)}", "%Y-%m-%d %H%M%S"
        )
        t_us = local_to_utc_us(stamp.replace(tzinfo=dt.UTC), None)
        return WallTime(t_us, "last", "log saved (UTC) in the Android app's file name")
    m = _DATALOGGER_NAME.search(path.name)
    if m:
        try:
            stamp = dt.datetime.strptime(
                f"{m.group(1)} {m.group(2)}{m.group(3)}{m.group(4)}", "%Y-%m-%d %H%M%S"
            )
        except ValueError:
            return None
        tz = need_tz(path, ctx, "the log's end time in the DataLogger file name")
        return WallTime(local_to_utc_us(stamp, tz), "last", f"log end in the file name ({tz})")
    return None


def wall_time(path: Path, ctx: ReadContext, in_file: WallTime | None) -> WallTime:
    """The wall time that places a file's packet clock (see the module docstring)."""
    if ctx.start_us is not None:
        return WallTime(ctx.start_us, "first", "--start")
    if in_file is not None:
        return in_file
    found = _end_stamp(path, ctx) or _ios_stamp(path, ctx)
    if found is None:
        raise ImportFileError(
            f"{path}: no wall time: the Movesense packet clock counts from the sensor's reset; "
            "give --start TIME (the first sample's date and time), or keep the app's file name "
            "(iOS <yyyyMMddTHHmmssZ>_<serial>_..., Android <yyyy-MM-dd_HH-mm-ss>_<serial>_..., "
            "DataLogger MovesenseLog_<id> <yyyy-MM-dd HH:mm:ss>)"
        )
    return found


def unwrap_ms(stamps: NDArray[np.int64]) -> NDArray[np.int64]:
    """Packet clock readings with the uint32 wrap (after 49.7 days) undone, in file order."""
    if stamps.size < 2:
        return stamps
    steps = np.diff(stamps)
    wraps = np.cumsum(steps < -(_WRAP_MS // 2))
    if not wraps[-1]:
        return stamps
    out = stamps.copy()
    out[1:] += wraps * _WRAP_MS
    return out
