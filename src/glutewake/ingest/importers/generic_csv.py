"""The generic CSV convention (``docs/import.md``): a time column and ``name[unit]`` columns.

::

    # start: 2026-03-02T08:00:00+01:00      optional `key: value` lines first
    # fs_hz: 100
    # device: thigh-left
    time,acc_x[g],acc_y[g],acc_z[g],emg_glute_max_r[uV]
    2026-03-02T08:00:00.000+01:00,0.01,-0.98,0.12,4.1

Time column (one of): ``time`` (ISO 8601 text; offset or ``Z`` if stated, else ``--tz``),
``unix_s``/``unix_ms``/``unix_us``/``t_us`` (Unix epoch, UTC), ``elapsed_s``/``elapsed_ms``
(after the ``start`` line), or none at all (``start`` and ``fs_hz`` lines give each row's time).
The stream of a channel follows from its unit (g/mg/m/s^2 acc, deg/s/rad/s gyro, gauss/uT mag,
uV/mV emg); every channel of one stream must use the same unit.
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
    parse_unit,
)
from glutewake.ingest.importers.csvio import CsvLayout, StreamColumns, TimeSpec, read_csv_batches
from glutewake.ingest.importers.errors import ImportFileError
from glutewake.ingest.importers.sniff import Head

NAME = "generic-csv"
_CHANNEL = re.compile(r"^\s*([^\[\]]+?)\s*\[([^\]]+)\]\s*$")
_EPOCH_COLUMNS = {"unix_s": 1e6, "unix_ms": 1e3, "unix_us": 1.0, "t_us": 1.0, "t_ms": 1e3}
_ELAPSED_COLUMNS = {"elapsed_s": 1e6, "elapsed_ms": 1e3}
_OFFSET = re.compile(r"(Z|[+-]\d\d:?\d\d)$")
_TIME_NAMES = {"time", *_EPOCH_COLUMNS, *_ELAPSED_COLUMNS}


def _header(head: Head) -> tuple[dict[str, str], int, list[str]] | None:
    meta: dict[str, str] = {}
    for i, line in enumerate(head.lines):
        stripped = line.strip()
        if not stripped:
            continue
        if stripped.startswith("#"):
            key, _, value = stripped.lstrip("#").partition(":")
            if value:
                meta[key.strip().lower()] = value.strip()
            continue
        return meta, i, [c.strip() for c in stripped.split(",")]
    return None


def sniff(head: Head) -> bool:
    """A header line with a known time column name or ``name[unit]`` channels of known units."""
    found = _header(head)
    if found is None:
        return False
    meta, _, cols = found
    channels = [c for c in cols if c not in _TIME_NAMES]
    known = [m for c in channels if (m := _CHANNEL.match(c)) and parse_unit(m.group(2))]
    timed = any(c in _TIME_NAMES for c in cols) or "start" in meta
    return bool(channels) and timed and len(known) == len(channels)


def _start_us(path: Path, text: str, ctx: ReadContext) -> int:
    try:
        start = dt.datetime.fromisoformat(text)
    except ValueError:
        raise ImportFileError(
            f"{path}: 'start: {text}' is not an ISO 8601 date-time (e.g. 2026-03-02T08:00:00+01:00)"
        ) from None
    tz = None if start.tzinfo else need_tz(path, ctx, "the start time")
    return local_to_utc_us(start, tz)


def open_source(path: Path, head: Head, ctx: ReadContext) -> Source:
    """Read a generic CSV file (see the module docstring)."""
    found = _header(head)
    if found is None:
        raise ImportFileError(f"{path}: no header line found; expected e.g. time,acc_x[g],...")
    meta, header_idx, cols = found
    time_cols = [c for c in cols if c in _TIME_NAMES]
    if len(time_cols) > 1:
        raise ImportFileError(
            f"{path}: line {header_idx + 1}: more than one time column "
            f"({', '.join(time_cols)}); expected one"
        )
    by_stream: dict[str, list[tuple[str, str, str, float]]] = {}
    for c in cols:
        if c in _TIME_NAMES:
            continue
        m = _CHANNEL.match(c)
        unit = parse_unit(m.group(2)) if m else None
        if m is None or unit is None:
            raise ImportFileError(
                f"{path}: line {header_idx + 1}: column {c!r} is not NAME[UNIT] with a known unit "
                "(g, mg, m/s^2, deg/s, rad/s, gauss, uT, uV, mV)"
            )
        stream, factor = unit
        name = m.group(1)
        if name.lower().startswith(stream + "_"):
            name = name[len(stream) + 1 :]
        by_stream.setdefault(stream, []).append((c, name, m.group(2).strip(), factor))
    streams = []
    for stream, items in by_stream.items():
        units = {u for _, _, u, _ in items}
        if len(units) > 1:
            raise ImportFileError(
                f"{path}: line {header_idx + 1}: mixed units in the {stream} channels "
                f"({', '.join(sorted(units))}); expected one unit per stream"
            )
        streams.append(
            StreamColumns(
                stream,
                tuple(n for _, n, _, _ in items),
                tuple(c for c, _, _, _ in items),
                items[0][3],
            )
        )
    fs_hz: float | None = None
    if "fs_hz" in meta:
        try:
            fs_hz = float(meta["fs_hz"])
        except ValueError:
            raise ImportFileError(f"{path}: 'fs_hz: {meta['fs_hz']}' is not a number") from None
        if not fs_hz > 0:
            raise ImportFileError(f"{path}: 'fs_hz: {meta['fs_hz']}' must be positive")
    tcol = time_cols[0] if time_cols else None
    info: dict[str, object] = {}
    if tcol is None:
        if "start" not in meta or fs_hz is None:
            raise ImportFileError(
                f"{path}: no time column; expected a time/unix_s/elapsed_s column, or "
                "'# start:' and '# fs_hz:' lines"
            )
        spec = TimeSpec("rate", start_us=_start_us(path, meta["start"], ctx), fs_hz=fs_hz)
    elif tcol in _EPOCH_COLUMNS:
        spec = TimeSpec("epoch", column=tcol, scale_us=_EPOCH_COLUMNS[tcol])
        info["tz_source"] = "unix epoch (UTC)"
    elif tcol in _ELAPSED_COLUMNS:
        if "start" not in meta:
            raise ImportFileError(f"{path}: column {tcol!r} needs a '# start:' line")
        spec = TimeSpec(
            "elapsed",
            column=tcol,
            scale_us=_ELAPSED_COLUMNS[tcol],
            start_us=_start_us(path, meta["start"], ctx),
        )
    else:
        first = head.first_value(header_idx + 1, cols.index(tcol), ",")
        offset = bool(first and _OFFSET.search(first))
        tz = None if offset else need_tz(path, ctx, "the times in column 'time'")
        spec = TimeSpec("text", column=tcol, tz=tz)
        info["tz_source"] = "file" if offset else f"--tz {tz}"
    layout = CsvLayout(
        path=path,
        columns=tuple(cols),
        time=spec,
        streams=tuple(streams),
        separator=",",
        data_line0=header_idx + 1,
    )
    rates = {s.stream: fs_hz for s in streams} if fs_hz else {}
    flags: list[tuple[str, str]] = []
    return Source(
        read_csv_batches(layout, ctx.chunk_rows, flags),
        device_id=meta.get("device"),
        fs_hz=rates,
        info=info,
        flags=flags,
    )
