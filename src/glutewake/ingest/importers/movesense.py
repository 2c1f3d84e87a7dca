"""Movesense Showcase app exports, JSON and CSV.

JSON: the sensor's measurement packets as the app stores them, anywhere in the document::

    {"UtcTime": 1772352000000000,                       optional: wall time of the first packet
     "data": [{"Uri": "ECKI/Meas/IMU9/52",
               "Body": {"Timestamp": 123456, "ArrayAcc": [{"x": .., "y": .., "z": ..}, ..],
                        "ArrayGyro": [..], "ArrayMagn": [..]}}, ..]}

``Timestamp`` is the sensor's millisecond clock at the packet's first sample; sample i of a packet
lies ``i / fs`` later (``fs`` from the ``/Meas/<X>/<rate>`` resource, else from the packet
spacing). Acc is m/s², gyro deg/s, magnetometer µT (converted to g, deg/s, gauss).

CSV: a header with a ``timestamp`` column (sensor ms, or Unix ms) and axis columns named ``x``,
``accx``, ``acc_x``, ``gyro_x``, ``magn_x``, ... (the stream comes from the prefix or from the
file name: ``..._Acc_..``, ``..._Gyro_..``, ``..._Magn_..``).

The sensor clock is relative: the wall time comes from the JSON's ``UtcTime`` (µs) or
``StartTime`` (ISO 8601) field, or from a ``YYYYMMDDThhmmss[Z]`` stamp in the file name (a stamp
without ``Z`` is local time and needs ``--tz``).
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from glutewake.ingest.importers._core import (
    Batch,
    ReadContext,
    Source,
    local_to_utc_us,
    need_tz,
)
from glutewake.ingest.importers.csvio import CsvLayout, StreamColumns, TimeSpec, read_csv_batches
from glutewake.ingest.importers.errors import ImportFileError
from glutewake.ingest.importers.sniff import Head

JSON_NAME = "movesense-json"
CSV_NAME = "movesense-csv"
_G = 9.80665
_ARRAYS = {"ArrayAcc": ("acc", 1 / _G), "ArrayGyro": ("gyro", 1.0), "ArrayMagn": ("mag", 1e-2)}
_RATE = re.compile(r"/Meas/\w+/(\d+(?:\.\d+)?)", re.IGNORECASE)
_STAMP = re.compile(r"(\d{8})T?(\d{6})(Z?)")
_AXIS = re.compile(r"^(acc|gyro|gyr|magn|mag)?[ _]?([xyz])(\s*[\[(].*[\])])?$", re.IGNORECASE)
_STREAM_PREFIX = {"acc": "acc", "gyro": "gyro", "gyr": "gyro", "magn": "mag", "mag": "mag"}
_FACTORS = {"acc": 1 / _G, "gyro": 1.0, "mag": 1e-2}


def sniff_json(head: Head) -> bool:
    """JSON text mentioning Movesense measurement arrays."""
    text = "\n".join(head.lines).lstrip()
    return text[:1] in "{[" and text[:1] != "" and any(k in text for k in _ARRAYS)


def sniff_csv(head: Head) -> bool:
    """A ``timestamp`` column and axis columns, in a file whose name says Movesense."""
    if not head.lines or "movesense" not in head.path.name.lower():
        return False
    cols = [c.strip().strip('"') for c in head.lines[0].split(",")]
    return (
        any(c.lower() == "timestamp" for c in cols) and sum(bool(_AXIS.match(c)) for c in cols) >= 3
    )


def _start_from_name(path: Path, ctx: ReadContext) -> int | None:
    m = _STAMP.search(path.name)
    if m is None:
        return None
    try:
        stamp = dt.datetime.strptime(m.group(1) + m.group(2), "%Y%m%d%H%M%S")
    except ValueError:
        return None
    if m.group(3):
        return local_to_utc_us(stamp.replace(tzinfo=dt.UTC), None)
    return local_to_utc_us(stamp, need_tz(path, ctx, "the file name's start time"))


def _start_from_json(doc: Any) -> int | None:
    if not isinstance(doc, dict):
        return None
    for key, value in doc.items():
        k = key.lower()
        if k == "utctime" and isinstance(value, int | float):
            return int(value)
        if k == "starttime" and isinstance(value, str):
            try:
                start = dt.datetime.fromisoformat(value)
            except ValueError:
                return None
            if start.tzinfo is None:
                return None
            return local_to_utc_us(start, None)
    return None


def _packets(node: Any, uri: str | None, out: list[tuple[str | None, dict[str, Any]]]) -> None:
    if isinstance(node, dict):
        here = node.get("Uri", uri) if isinstance(node.get("Uri"), str) else uri
        if "Timestamp" in node and any(k in node for k in _ARRAYS):
            out.append((here, node))
            return
        for value in node.values():
            _packets(value, here, out)
    elif isinstance(node, list):
        for value in node:
            _packets(value, uri, out)


def open_json(path: Path, head: Head, ctx: ReadContext) -> Source:
    """Read a Movesense Showcase JSON export (see the module docstring)."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ImportFileError(f"{path}: line {exc.lineno}: not valid JSON ({exc.msg})") from None
    found: list[tuple[str | None, dict[str, Any]]] = []
    _packets(doc, None, found)
    if not found:
        raise ImportFileError(
            f"{path}: no Movesense packets (objects with Timestamp and "
            "ArrayAcc/ArrayGyro/ArrayMagn)"
        )
    start_us = _start_from_json(doc)
    if start_us is None:
        start_us = _start_from_name(path, ctx)
    if start_us is None:
        raise ImportFileError(
            f"{path}: no wall time: expected a UtcTime (µs) or StartTime (ISO 8601 with offset) "
            "field, or a YYYYMMDDThhmmss[Z] stamp in the file name"
        )
    t0_ms = min(int(p["Timestamp"]) for _, p in found)
    streams: dict[str, tuple[list[np.ndarray], list[np.ndarray]]] = {}
    rates: dict[str, float] = {}
    for key, (stream, factor) in _ARRAYS.items():
        packets = [(u, p) for u, p in found if key in p]
        if not packets:
            continue
        stated = next((float(m.group(1)) for u, _ in packets if u and (m := _RATE.search(u))), None)
        per_packet = [len(p[key]) for _, p in packets]
        stamps = np.array([int(p["Timestamp"]) for _, p in packets], dtype=np.float64)
        if stated is None:
            if len(stamps) < 2:
                raise ImportFileError(
                    f"{path}: one {key} packet and no /Meas/<X>/<rate> Uri: "
                    "the sampling rate cannot be known"
                )
            spacing = np.median(np.diff(np.sort(stamps)))
            stated = 1000.0 * float(np.median(per_packet)) / float(spacing)
        rates[stream] = stated
        ts: list[np.ndarray] = []
        vals: list[np.ndarray] = []
        for i, (_, p) in enumerate(packets):
            try:
                arr = np.array([[s["x"], s["y"], s["z"]] for s in p[key]], dtype=np.float64)
            except (KeyError, TypeError, ValueError):
                raise ImportFileError(
                    f"{path}: packet {i + 1} (Timestamp {p['Timestamp']}): {key} samples must be "
                    "objects with numeric x, y, z"
                ) from None
            offs = (stamps[i] - t0_ms) * 1000.0 + np.arange(len(arr)) * 1e6 / stated
            ts.append(start_us + np.round(offs).astype(np.int64))
            vals.append(arr.reshape(-1, 3) * factor)
        streams[stream] = (ts, vals)

    def batches() -> Iterator[Batch]:
        for stream, (ts, vals) in streams.items():
            yield Batch(stream, np.concatenate(ts), np.concatenate(vals), ("x", "y", "z"), 1)

    return Source(batches(), fs_hz=rates, info={"clock": "sensor ms clock from the wall time"})


def open_csv(path: Path, head: Head, ctx: ReadContext) -> Source:
    """Read a Movesense Showcase CSV export (see the module docstring)."""
    cols = [c.strip().strip('"') for c in head.lines[0].split(",")]
    tcol = next((c for c in cols if c.lower() == "timestamp"), None)
    if tcol is None:
        raise ImportFileError(f"{path}: line 1: no 'timestamp' column")
    name_stream = next(
        (
            s
            for token, s in (("acc", "acc"), ("gyro", "gyro"), ("magn", "mag"))
            if f"_{token}" in path.name.lower()
        ),
        None,
    )
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
    first = head.first_value(1, cols.index(tcol), ",")
    try:
        first_ms = float(first) if first is not None else None
    except ValueError:
        raise ImportFileError(f"{path}: line 2: timestamp {first!r} is not a number") from None
    if first_ms is not None and first_ms > 1e12:
        spec = TimeSpec("epoch", column=tcol, scale_us=1e3)
    else:
        start_us = _start_from_name(path, ctx)
        if start_us is None:
            raise ImportFileError(
                f"{path}: sensor-clock timestamps and no YYYYMMDDThhmmss[Z] "
                "stamp in the file name to place them in time"
            )
        spec = TimeSpec(
            "epoch", column=tcol, scale_us=1e3, offset_us=start_us - round((first_ms or 0.0) * 1e3)
        )
    streams = tuple(
        StreamColumns(s, tuple(a for _, a in items), tuple(c for c, _ in items), _FACTORS[s])
        for s, items in by_stream.items()
    )
    layout = CsvLayout(path=path, columns=tuple(cols), time=spec, streams=streams, data_line0=1)
    return Source(read_csv_batches(layout, ctx.chunk_rows))
