"""ActiGraph raw accelerometer CSV, as ActiLife (or ``omconvert -csv-format:ag``) exports it.

ActiGraph: a ten-line preamble (``... ActiGraph ... date format M/d/yyyy at 30 Hz ...``,
``Serial Number:``, ``Start Time``, ``Start Date``, a dashed line), then optionally a header line
``Timestamp,Accelerometer X,Accelerometer Y,Accelerometer Z`` and rows in g. Without a timestamp
column, each row's time is the header's start plus its index over the stated rate. Times are the
device's local clock: ``--tz`` is required.

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

NAME = "actigraph-csv"

_AG_FIRST = re.compile(r"ActiGraph", re.IGNORECASE)
_AG_RATE = re.compile(r"at\s+(\d+(?:\.\d+)?)\s*Hz", re.IGNORECASE)
_AG_DATEFMT = re.compile(r"date format\s+(\S+)", re.IGNORECASE)
_NUM = re.compile(r"^\s*[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?\s*$")


def sniff(head: Head) -> bool:
    """The ActiLife preamble's first line names ActiGraph."""
    return (
        bool(head.lines) and head.lines[0].startswith("-") and bool(_AG_FIRST.search(head.lines[0]))
    )


def _java_to_strftime(fmt: str) -> str:
    out = fmt.replace("yyyy", "%Y").replace("MM", "%m").replace("dd", "%d")
    out = re.sub(r"(?<!%)M", "%m", out)
    return re.sub(r"(?<![%d])d", "%d", out)


def open_source(path: Path, head: Head, ctx: ReadContext) -> Source:
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
    flags: list[tuple[str, str]] = []
    return Source(
        read_csv_batches(layout, ctx.chunk_rows, flags),
        device_id=meta.get("Serial Number") or None,
        fs_hz={"acc": fs_hz},
        info={"tz_source": f"--tz {tz}", "header": meta},
        flags=flags,
    )
