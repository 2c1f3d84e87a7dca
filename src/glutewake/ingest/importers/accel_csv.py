"""Raw accelerometer CSV from research devices: ActiGraph (ActiLife export) and Axivity.

ActiGraph: a ten-line preamble (``... ActiGraph ... date format M/d/yyyy at 30 Hz ...``,
``Serial Number:``, ``Start Time``, ``Start Date``, a dashed line), then optionally a header line
``Timestamp,Accelerometer X,Accelerometer Y,Accelerometer Z`` and rows in g. Without a timestamp
column, each row's time is the header's start plus its index over the stated rate. Times are the
device's local clock: ``--tz`` is required.

Axivity (OMGUI / ``cwa-convert`` CSV): no header; ``YYYY-MM-DD hh:mm:ss.fff,x,y,z`` in g (AX6 adds
``gx,gy,gz`` in deg/s), or Unix seconds in the first column. Local times need ``--tz``.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

from glutewake.ingest.importers._core import (
    ReadContext,
    Source,
    local_to_utc_us,
    need_tz,
)
from glutewake.ingest.importers.csvio import CsvLayout, StreamColumns, TimeSpec, read_csv_batches
from glutewake.ingest.importers.errors import ImportFileError
from glutewake.ingest.importers.sniff import Head

ACTIGRAPH = "actigraph-csv"
AXIVITY = "axivity-csv"

_AG_FIRST = re.compile(r"ActiGraph", re.IGNORECASE)
_AG_RATE = re.compile(r"at\s+(\d+(?:\.\d+)?)\s*Hz", re.IGNORECASE)
_AG_DATEFMT = re.compile(r"date format\s+(\S+)", re.IGNORECASE)
_NUM = re.compile(r"^\s*[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?\s*$")
_AX_TIME = re.compile(r"^\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d(\.\d+)?$")


def sniff_actigraph(head: Head) -> bool:
    """The ActiLife preamble's first line names ActiGraph."""
    return (
        bool(head.lines) and head.lines[0].startswith("-") and bool(_AG_FIRST.search(head.lines[0]))
    )


def sniff_axivity(head: Head) -> bool:
    """No header; a local date-time (or Unix seconds) then 3 or 6 numbers on every line."""
    lines = [ln for ln in head.lines[:20] if ln.strip()]
    if not lines:
        return False
    for line in lines:
        fields = line.split(",")
        if len(fields) not in (4, 7) or not all(_NUM.match(f) for f in fields[1:]):
            return False
        first = fields[0].strip()
        if not (_AX_TIME.match(first) or (_NUM.match(first) and float(first) > 1e8)):
            return False
    return True


def _java_to_strftime(fmt: str) -> str:
    out = fmt.replace("yyyy", "%Y").replace("MM", "%m").replace("dd", "%d")
    out = re.sub(r"(?<!%)M", "%m", out)
    return re.sub(r"(?<![%d])d", "%d", out)


def open_actigraph(path: Path, head: Head, ctx: ReadContext) -> Source:
    """Read an ActiLife raw CSV export (see the module docstring)."""
    lines = head.lines
    first = lines[0]
    rate = _AG_RATE.search(first)
    datefmt = _AG_DATEFMT.search(first)
    if rate is None:
        raise ImportFileError(
            f"{path}: line 1: no sampling rate ('at N Hz') in the ActiGraph header"
        )
    fs_hz = float(rate.group(1))
    date_fmt = _java_to_strftime(datefmt.group(1)) if datefmt else "%m/%d/%Y"
    meta: dict[str, str] = {}
    dashes = None
    for i, line in enumerate(lines[1:12], start=1):
        if line.startswith("---"):
            dashes = i
            break
        for key in ("Serial Number", "Start Time", "Start Date"):
            if line.startswith(key):
                meta[key] = line[len(key) :].lstrip(" :").strip()
    if dashes is None:
        raise ImportFileError(
            f"{path}: the ActiGraph header has no closing dashed line within its first 12 lines"
        )
    tz = need_tz(path, ctx, "ActiGraph times (device local clock)")
    nxt = lines[dashes + 1] if len(lines) > dashes + 1 else ""
    has_header = not _NUM.match(nxt.split(",")[-1] or "x")
    cols = [c.strip() for c in nxt.split(",")] if has_header else []
    data_line0 = dashes + 1 + (1 if has_header else 0)
    if not has_header:
        width = len(nxt.split(","))
        cols = (["Timestamp"] if width == 4 else []) + [
            "Accelerometer X",
            "Accelerometer Y",
            "Accelerometer Z",
        ]
        if width not in (3, 4):
            raise ImportFileError(
                f"{path}: line {data_line0 + 1}: {width} fields; expected 3 "
                "(x,y,z) or 4 (timestamp,x,y,z)"
            )
    axes = ["Accelerometer X", "Accelerometer Y", "Accelerometer Z"]
    missing = [a for a in axes if a not in cols]
    if missing:
        raise ImportFileError(
            f"{path}: line {data_line0}: columns {cols}; expected {', '.join(axes)} "
            "(and optionally Timestamp)"
        )
    if "Timestamp" in cols:
        spec = TimeSpec("text", column="Timestamp", fmt=f"{date_fmt} %H:%M:%S%.f", tz=tz)
    else:
        try:
            start = dt.datetime.strptime(
                f"{meta['Start Date']} {meta['Start Time']}", f"{date_fmt} %H:%M:%S"
            )
        except (KeyError, ValueError):
            raise ImportFileError(
                f"{path}: no Timestamp column and no readable 'Start Date'/'Start Time' header "
                f"lines (date format {date_fmt})"
            ) from None
        spec = TimeSpec("rate", start_us=local_to_utc_us(start, tz), fs_hz=fs_hz)
    layout = CsvLayout(
        path=path,
        columns=tuple(cols),
        time=spec,
        streams=(StreamColumns("acc", ("x", "y", "z"), tuple(axes)),),
        data_line0=data_line0,
    )
    return Source(
        read_csv_batches(layout, ctx.chunk_rows),
        device_id=meta.get("Serial Number") or None,
        fs_hz={"acc": fs_hz},
        info={"tz_source": f"--tz {tz}", "header": meta},
    )


def open_axivity(path: Path, head: Head, ctx: ReadContext) -> Source:
    """Read an Axivity CSV export (see the module docstring)."""
    lines = [ln for ln in head.lines if ln.strip()]
    if not lines:
        raise ImportFileError(f"{path}: empty file")
    fields = lines[0].split(",")
    width = len(fields)
    if width not in (4, 7):
        raise ImportFileError(
            f"{path}: line 1: {width} fields; expected time,x,y,z (or time,ax,ay,az,gx,gy,gz)"
        )
    cols = ["time", "ax", "ay", "az"] + (["gx", "gy", "gz"] if width == 7 else [])
    streams = [StreamColumns("acc", ("x", "y", "z"), ("ax", "ay", "az"))]
    if width == 7:
        streams.append(StreamColumns("gyro", ("x", "y", "z"), ("gx", "gy", "gz")))
    info: dict[str, object] = {}
    if _AX_TIME.match(fields[0].strip()):
        tz = need_tz(path, ctx, "Axivity times (device local clock)")
        fmt = "%Y-%m-%d %H:%M:%S%.f" if " " in fields[0] else "%Y-%m-%dT%H:%M:%S%.f"
        spec = TimeSpec("text", column="time", fmt=fmt, tz=tz)
        info["tz_source"] = f"--tz {tz}"
    else:
        spec = TimeSpec("epoch", column="time", scale_us=1e6)
        info["tz_source"] = "unix epoch (UTC)"
    layout = CsvLayout(
        path=path,
        columns=tuple(cols),
        time=spec,
        streams=tuple(streams),
        data_line0=0,
        has_header=False,
    )
    return Source(read_csv_batches(layout, ctx.chunk_rows), info=info)
