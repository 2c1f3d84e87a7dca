"""Axivity CSV, as Open Movement's tools write it from a ``.cwa`` recording.

``cwa-convert`` (OMGUI's raw "Export" runs ``cwa-convert -f:csv``: digitalinteraction/
openmovement ``Software/OM/omgui/ExportForm.cs`` L93-125) writes no header and one row per
sample (``Software/AX3/cwa-convert/c/main.c``, L617-664 time, L761-835 values, L851-887 extras)::

    2019-02-26 10:55:06.010,0.828125,-0.359375,-0.375000      default: -t:timestamp
    1551178506.0100,0.828125,-0.359375,-0.375000              -t:serial (seconds)
    43522.454930671296,0.828125,-0.359375,-0.375000           -t:excel (days)
    2019-02-26 10:55:06.010,0.8281,...,-0.3750,283,258,190,r  -light -temp -batt -events

The first field is the time, then accel x, y, z in g, then gyro x, y, z in deg/s (AX6) and
magnetometer x, y, z in µT (each ``%f``: with a decimal point), then any extras (light, temperature,
battery, event letters), which are not imported. Every time form is the **device's clock**:
``cwa-convert`` builds it with ``timegm`` from the device's date-time fields and prints it with
``gmtime`` (L555-563, L656-659), so serial seconds, Excel and Matlab day numbers are local
wall-clock time like the text form, and all need ``--tz``. OMGUI's "CSV (resampled)" export runs
``omconvert -csv-file`` (``Software/OM/omgui/MainForm.cs`` L4428-4449), which writes the header
``Time,Accel-X (g), Accel-Y (g), Accel-Z (g)`` (and ``, Gyro-X (d/s), ...``) above rows of the
same form (``Software/AX3/omconvert/calc-csv.c`` L177-230).

Refused with the reason: relative times (``-t:secs``, ``-t:days``, ``-t:sequence``), block
times without milliseconds (``-t:block``, one time per packet of ~100 samples) and raw integer
values (``-v:int``, whose scale depends on the device's range setting).
"""

from __future__ import annotations

import re
from pathlib import Path

from glutewake.ingest.importers._core import ReadContext, Source, need_tz
from glutewake.ingest.importers.csvio import CsvLayout, StreamColumns, TimeSpec, read_csv_batches
from glutewake.ingest.importers.errors import ImportFileError
from glutewake.ingest.importers.sniff import Head

NAME = "axivity-csv"
_TEXT_TIME = re.compile(r"^\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d(\.\d+)?$")
#: a value with a decimal point (``%f`` of C writes six decimals; other tools fewer)
_F6 = re.compile(r"^-?\d*\.\d+([eE][-+]?\d+)?$")
_INT = re.compile(r"^-?\d+$")
_NUMBER = re.compile(r"^-?\d+(\.\d+)?$")
_HEADER = re.compile(
    r"^time\s*,\s*accel-x\s*\(g\)\s*,\s*accel-y\s*\(g\)\s*,\s*accel-z\s*\(g\)", re.IGNORECASE
)
#: stream, channel columns and factor of each group of three value columns, in file order
_GROUPS = (
    ("acc", ("ax", "ay", "az"), 1.0),
    ("gyro", ("gx", "gy", "gz"), 1.0),
    ("mag", ("mx", "my", "mz"), 1e-2),
)
_US_PER_DAY = 86_400_000_000
#: Excel day 25569 is 1970-01-01; Matlab day numbers are 693960 more (main.c L642-649)
_EXCEL_1970 = 25569
_MATLAB_1970 = 25569 + 693960
#: plausible day numbers (2000-2100) of each day-count time form
_EXCEL_RANGE = (36526.0, 73051.0)
_MATLAB_RANGE = (_EXCEL_RANGE[0] + 693960, _EXCEL_RANGE[1] + 693960)
_ROWS_SNIFFED = 20


def _rows(head: Head) -> tuple[bool, list[list[str]]]:
    lines = [ln for ln in head.lines if ln.strip()]
    has_header = bool(lines) and bool(_HEADER.match(lines[0].strip()))
    body = lines[1:] if has_header else lines
    return has_header, [[f.strip() for f in ln.split(",")] for ln in body[:_ROWS_SNIFFED]]


def _n_axes(fields: list[str]) -> int:
    """Value columns (3, 6 or 9): the leading ``%f`` fields after the time (or integers, for
    ``-v:int``), in threes; extras (``%u`` light, temperature, battery) end the run."""
    if len(fields) < 2:
        return 0
    value = _F6 if _F6.match(fields[1]) else _INT
    n = 0
    for f in fields[1:]:
        if not value.match(f):
            break
        n += 1
    return min(9, n - n % 3)


def _time_form(first: str) -> str | None:
    if _TEXT_TIME.match(first):
        return "text"
    if not _NUMBER.match(first):
        return None
    value = float(first)
    if value >= 1e8:
        return "serial"
    if _MATLAB_RANGE[0] <= value < _MATLAB_RANGE[1]:
        return "matlab"
    if _EXCEL_RANGE[0] <= value < _EXCEL_RANGE[1] and len(first.partition(".")[2]) == 12:
        return "excel"
    return "relative"


def sniff(head: Head) -> bool:
    """cwa-convert rows (a time, then 3, 6 or 9 ``%f`` values, then extras) with or without
    omconvert's header."""
    has_header, rows = _rows(head)
    if not rows:
        return False
    width = len(rows[0])
    for fields in rows:
        if len(fields) != width or _n_axes(fields) < 3 or _time_form(fields[0]) is None:
            return False
    # a time text, serial seconds or day number first; plain numbers could be anything else
    return has_header or _time_form(rows[0][0]) != "relative"


def open_source(path: Path, head: Head, ctx: ReadContext) -> Source:
    """Read an Axivity CSV export (see the module docstring)."""
    has_header, rows = _rows(head)
    if not rows:
        raise ImportFileError(f"{path}: no data rows")
    first = rows[0]
    n_axes = _n_axes(first)
    form = _time_form(first[0])
    if n_axes < 3 or form is None:
        raise ImportFileError(
            f"{path}: line {2 if has_header else 1}: expected a time and accel x, y, z "
            "(cwa-convert -f:csv)"
        )
    if _INT.match(first[1]):
        raise ImportFileError(
            f"{path}: integer values (cwa-convert -v:int, raw units whose scale depends on the "
            "device's range); re-export with float values in g (the default)"
        )
    if form == "relative":
        raise ImportFileError(
            f"{path}: line {2 if has_header else 1}: time {first[0]!r} counts from the "
            "recording's start (cwa-convert -t:secs, -t:days or -t:sequence); re-export with "
            "the default -t:timestamp"
        )
    if form == "text" and not any("." in r[0] for r in rows):
        raise ImportFileError(
            f"{path}: times without milliseconds (cwa-convert -t:block: one time per packet "
            "of samples) cannot place the samples; re-export with the default -t:timestamp"
        )
    tz = need_tz(path, ctx, "Axivity times (the device's clock)")
    value_cols = [c for _, cols, _ in _GROUPS[: n_axes // 3] for c in cols]
    extras = [f"_extra{k}" for k in range(len(first) - 1 - n_axes)]
    columns = ("time", *value_cols, *extras)
    streams = tuple(
        StreamColumns(stream, ("x", "y", "z"), cols, factor)
        for stream, cols, factor in _GROUPS[: n_axes // 3]
    )
    if form == "text":
        fmt = "%Y-%m-%d %H:%M:%S%.f" if " " in first[0] else "%Y-%m-%dT%H:%M:%S%.f"
        # cwa-convert always writes milliseconds ("%03d", main.c L654-660): read by position
        fixed = all(len(r[0]) == 23 for r in rows)
        spec = TimeSpec("text", column="time", fmt=fmt, tz=tz, fixed_ms=fixed)
    elif form == "serial":
        spec = TimeSpec("epoch", column="time", scale_us=1e6, tz=tz)
    else:
        days_1970 = _EXCEL_1970 if form == "excel" else _MATLAB_1970
        spec = TimeSpec(
            "epoch",
            column="time",
            scale_us=_US_PER_DAY,
            offset_us=-days_1970 * _US_PER_DAY,
            tz=tz,
        )
    layout = CsvLayout(
        path=path,
        columns=columns,
        time=spec,
        streams=streams,
        data_line0=1 if has_header else 0,
        has_header=has_header,
    )
    info: dict[str, object] = {
        "tz_source": f"--tz {tz} (device clock)",
        "time_form": {
            "text": "timestamp",
            "serial": "serial seconds",
            "excel": "Excel days",
            "matlab": "Matlab days",
        }[form],
        "layout": "omconvert CSV" if has_header else "cwa-convert CSV",
    }
    if extras:
        info["extra_columns_not_imported"] = len(extras)
    flags: list[tuple[str, str]] = []
    return Source(read_csv_batches(layout, ctx.chunk_rows, flags), info=info, flags=flags)
