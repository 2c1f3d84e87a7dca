"""Movesense JSON, in the layouts the vendor's apps and tools write.

Every layout holds the sensor's measurement packets: ``{"Timestamp": <ms>, "ArrayAcc": [{"x":
.., "y": .., "z": ..}, ..], "ArrayGyro": [..], "ArrayMagn": [..]}``, acc in m/s², gyro in deg/s,
magnetometer in µT (Movesense device lib ``MovesenseCoreLib/resources/movesense-api/meas/
imu.yaml`` L185-237, ``acc.yaml`` L116-130, ``gyro.yaml`` L114-129, ``magn.yaml`` L112-126).
They are found wherever they lie in the document:

- **DataLogger**, fetched through the mobile library (the vendor's Android DataLoggerSample,
  ``"ToFile"``): one line, ``{"Meas":{"IMU9":[{"ArrayAcc":[..],"ArrayGyro":[..],"ArrayMagn":
  [..],"Timestamp":251818}, ..]}}`` (published export: tjrantal/movesenseJsonReader
  ``data/MovesenseLog_2_625.json``, 2.2 MB without a newline);
- **sbem2json** (the vendor's Python datalogger tool): ``{"Samples":[{"TimeDetailed":
  {"relativeTime":..,"utcTime":..}}, {"MeasIMU9":{"Timestamp":..,"ArrayAcc":[..]}}, ..]}``
  (sensein/movesense-py ``ms_json2csv.py``, reading ``content["Samples"]`` and ``TimeDetailed``);
- **iOS Showcase stream file** ``<resource>_stream.json``: one event per line,
  ``{"acc":{"Timestamp":..,"ArrayAcc":[..]}}`` (keys ``acc``, ``gyroscope``, ``magn``, ``imu``;
  ``ecg`` and ``heartRate`` are not samples the project stores). Older app versions write the
  lines alone (``RecorderFileJson.swift`` L173-181 in mikkojeronen/MovesenseShowcase-iOS);
  current ones wrap them as ``{"data": [`` / ``<event>,`` / ... / ``<event>`` / ``]}`` and never
  write the closing ``]}`` when the app stops without a proper stop (Movesense mobile lib
  ``IOS/MovesenseShowcase/.../recorder/RecorderFileJson.swift`` L26-36, L69-85, L181-193; the
  app's own converter accepts both, ``Recorder.swift`` L226-256). An unterminated file imports
  with a QC flag, as does a last line cut by the app's end;
- **MDS notifications** as custom loggers keep them: ``{"UtcTime": <µs>, "data": [{"Uri":
  "<serial>/Meas/IMU6/52", "Body": {<packet>}}, ..]}`` (not written by a vendor app).

``Timestamp`` is the packet's first sample; sample i lies ``i / fs`` later, ``fs`` measured
from the packet clock over the whole file (gaps left out), since no vendor file states the rate
(a ``/Meas/<X>/<rate>`` URI, where present, is recorded as the stated rate). Where the
recording lies in UTC: :mod:`glutewake.ingest.importers.movesense_clock`. The parse is
polars' JSON reader (vectorised); only a file it rejects is read again with :mod:`json`, to
name the line and position of the fault.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from glutewake.ingest.importers._core import Batch, ReadContext, Source
from glutewake.ingest.importers.errors import ImportFileError
from glutewake.ingest.importers.movesense_clock import (
    WallTime,
    name_serial,
    unwrap_ms,
    wall_time,
)
from glutewake.ingest.importers.sniff import Head

NAME = "movesense-json"
_G = 9.80665
#: packet array -> (stream, factor to the project unit)
ARRAYS = {"ArrayAcc": ("acc", 1 / _G), "ArrayGyro": ("gyro", 1.0), "ArrayMagn": ("mag", 1e-2)}
#: the iOS app's event keys (MovesenseCodingKeys.swift L114-191)
_EVENTS = frozenset({"acc", "gyroscope", "magn", "imu", "ecg", "heartRate"})
_RATE = re.compile(r"/Meas/\w+/(\d+(?:\.\d+)?)", re.IGNORECASE)
_SERIAL_URI = re.compile(r"^(\d{6,})/")
_WRAPPER = re.compile(rb'^\s*\{\s*"data"\s*:\s*\[\s*$')


def sniff(head: Head) -> bool:
    """JSON whose first keys are Movesense packets, a DataLogger ``Meas`` or an iOS event."""
    keys = head.json_keys()
    if not keys:
        return False
    if "Timestamp" in keys and any(k in ARRAYS for k in keys):
        return True
    first = keys[1] if keys[0] == "data" and len(keys) > 1 else keys[0]
    return first in _EVENTS or (keys[0] == "Meas" and len(keys) > 1)


@dataclass
class _Parsed:
    frame: pl.DataFrame
    layout: str
    #: the events and their line numbers (one-event-per-line layouts), for messages
    events: list[tuple[int, bytes]] | None
    flags: list[tuple[str, str]]


def _first_line(data: bytes) -> bytes:
    end = data.find(b"\n")
    return data if end < 0 else data[:end]


def _is_lines(data: bytes) -> bool:
    """One JSON object per line (the iOS stream file), with or without the ``data`` wrapper."""
    first = _first_line(data)
    if _WRAPPER.match(first):
        return True
    rest = data[len(first) :].strip()
    line = first.strip().rstrip(b",")
    if not rest or not line.startswith(b"{") or len(line) > (1 << 20):
        return False
    try:
        return isinstance(json.loads(line), dict)
    except ValueError:
        return False


def _events(data: bytes) -> tuple[list[tuple[int, bytes]], list[tuple[str, str]]]:
    """The events of a one-per-line file with their line numbers; the wrapper, trailing commas
    and a last line cut mid-event removed (the last two flagged)."""
    raw = data.split(b"\n")
    wrapped = bool(raw and _WRAPPER.match(raw[0]))
    numbered = [(i + 1, ln.strip()) for i, ln in enumerate(raw)]
    if wrapped:
        numbered = numbered[1:]
    numbered = [(n, ln) for n, ln in numbered if ln]
    flags: list[tuple[str, str]] = []
    closed = bool(numbered) and numbered[-1][1].replace(b" ", b"") in (b"]}", b"]")
    if closed:
        numbered = numbered[:-1]
    elif wrapped:
        flags.append(
            (
                "unterminated",
                'the closing "]}" is missing: the app stopped without ending the recording; '
                "the events written before that are imported",
            )
        )
    events = [(n, ln[:-1] if ln.endswith(b",") else ln) for n, ln in numbered]
    if events:
        last_n, last = events[-1]
        try:
            json.loads(last)
        except ValueError:
            events = events[:-1]
            flags.append(
                ("last_line_cut", f"line {last_n} (the last) is cut off mid-event: left out")
            )
    return events, flags


def _fault(path: Path, data: bytes, events: list[tuple[int, bytes]] | None) -> ImportFileError:
    """Name where a file polars rejected is wrong (the slow path, taken on failure only)."""
    if events is not None:
        for n, line in events:
            try:
                event = json.loads(line)
            except json.JSONDecodeError as exc:
                return ImportFileError(f"{path}: line {n}: not valid JSON ({exc.msg})")
            found = _value_fault(event)
            if found:
                return ImportFileError(f"{path}: line {n}: {found}")
        return ImportFileError(f"{path}: the events are not in the iOS app's layout")
    text = data.decode("utf-8", errors="replace")
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        if exc.pos >= len(text.rstrip()) - 1:
            return ImportFileError(
                f"{path}: line {exc.lineno}, column {exc.colno}: the file ends inside the JSON "
                f"document ({exc.msg}): it is truncated"
            )
        return ImportFileError(
            f"{path}: line {exc.lineno}, column {exc.colno}: not valid JSON ({exc.msg})"
        )
    found = _value_fault(doc)
    return ImportFileError(
        f"{path}: {found or 'the Movesense packets are not in a layout this importer knows'}"
    )


def _value_fault(doc: Any) -> str | None:
    """The first packet whose Timestamp or values are not numbers, or None."""
    for k, packet in enumerate(_walk_packets(doc)):
        stamp = packet.get("Timestamp")
        if not isinstance(stamp, int) or isinstance(stamp, bool):
            return f"packet {k + 1}: Timestamp is {stamp!r}; expected an integer (ms)"
        for key in ARRAYS:
            samples = packet.get(key)
            if samples is None:
                continue
            if not isinstance(samples, list):
                return f"packet {k + 1} (Timestamp {stamp}): {key} is not a list of samples"
            for s in samples:
                for axis in "xyz":
                    v = s.get(axis) if isinstance(s, dict) else None
                    if not isinstance(v, int | float) or isinstance(v, bool) or not np.isfinite(v):
                        return (
                            f"packet {k + 1} (Timestamp {stamp}): {key} {axis} is {v!r}; "
                            "expected a finite number"
                        )
    return None


def _walk_packets(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        if "Timestamp" in node and any(k in node for k in ARRAYS):
            yield node
            return
        for value in node.values():
            yield from _walk_packets(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk_packets(value)


def _parse(path: Path, data: bytes) -> _Parsed:
    if _is_lines(data):
        events, flags = _events(data)
        if not events:
            raise ImportFileError(f"{path}: no events (the recording holds no packets)")
        body = b"\n".join(ln for _, ln in events)
        try:
            frame = pl.read_ndjson(io.BytesIO(body), infer_schema_length=None)
        except pl.exceptions.PolarsError:
            raise _fault(path, data, events) from None
        layout = "iOS Showcase stream (one event per line)"
        return _Parsed(frame, layout, events, flags)
    try:
        frame = pl.read_json(io.BytesIO(data), infer_schema_length=None)
    except pl.exceptions.PolarsError:
        raise _fault(path, data, None) from None
    keys = frame.columns
    layout = (
        "DataLogger (Meas)"
        if "Meas" in keys
        else "sbem2json (Samples)"
        if "Samples" in keys
        else "JSON with Movesense packets"
    )
    return _Parsed(frame, layout, None, [])


def _has_field(dtype: Any, name: str) -> bool:
    while isinstance(dtype, pl.List):
        dtype = dtype.inner
    return isinstance(dtype, pl.Struct) and any(f.name == name for f in dtype.fields)


Path_ = tuple[str | None, ...]  # field names; None: the elements of a list


def _find(dtype: Any, path: Path_, want: frozenset[str], any_of: frozenset[str]) -> list[Path_]:
    """Paths to structs that hold every ``want`` field and one of ``any_of``."""
    if isinstance(dtype, pl.List):
        return _find(dtype.inner, (*path, None), want, any_of)
    if not isinstance(dtype, pl.Struct):
        return []
    names = {f.name for f in dtype.fields}
    if want <= names and (not any_of or names & any_of):
        return [path]
    return [p for f in dtype.fields for p in _find(f.dtype, (*path, f.name), want, any_of)]


def _select(frame: pl.DataFrame, path: Path_) -> pl.DataFrame:
    """The structs at ``path``, one row each, with the nearest enclosing ``Uri`` as ``_uri``."""
    cur = frame.select(pl.col(str(path[0])).alias("_v"))
    for step in path[1:]:
        if step is None:
            cur = cur.explode("_v")
            continue
        keep = [pl.col("_uri")] if "_uri" in cur.columns else []
        if _has_field(cur.schema["_v"], "Uri"):
            keep = [pl.col("_v").struct.field("Uri").cast(pl.String).alias("_uri")]
        cur = cur.select(pl.col("_v").struct.field(step).alias("_v"), *keep)
    return cur.filter(pl.col("_v").is_not_null()).unnest("_v")


def _path_text(path: Path_) -> str:
    return ".".join("[]" if p is None else p for p in path)


def _in_file_time(parsed: _Parsed) -> WallTime | None:
    frame = parsed.frame
    detailed = [
        p
        for c in frame.columns
        for p in _find(frame.schema[c], (c,), frozenset({"relativeTime", "utcTime"}), frozenset())
    ]
    if detailed:
        rows = _select(frame, detailed[0]).drop_nulls(["relativeTime", "utcTime"])
        if rows.height:
            utc_us = int(rows["utcTime"][0])
            relative_ms = int(rows["relativeTime"][0])
            return WallTime(
                utc_us - relative_ms * 1000, "clock", "/Time/Detailed (utcTime, relativeTime)"
            )
    if frame.height == 1:
        for key in frame.columns:
            value = frame[key][0]
            if key.lower() == "utctime" and isinstance(value, int | float):
                return WallTime(int(value), "first", "UtcTime field")
            if key.lower() == "starttime" and isinstance(value, str):
                import datetime as dt

                try:
                    start = dt.datetime.fromisoformat(value)
                except ValueError:
                    continue
                if start.tzinfo is not None:
                    epoch = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
                    return WallTime(
                        (start - epoch) // dt.timedelta(microseconds=1), "first", "StartTime field"
                    )
    return None


@dataclass
class _StreamPackets:
    stream: str
    key: str
    source: str
    stamps_ms: np.ndarray  # int64, one per packet, wrap undone
    counts: np.ndarray  # samples per packet
    values: np.ndarray  # (n, 3) in the file's unit
    uri: str | None


def _measured_rate_hz(stamps_ms: np.ndarray, counts: np.ndarray) -> float | None:
    """Samples per second between packets, leaving out gaps and clock jumps."""
    if stamps_ms.size < 2:
        return None
    steps = np.diff(stamps_ms).astype(np.float64)
    n = counts[:-1].astype(np.float64)
    per_sample = np.divide(steps, n, out=np.zeros_like(steps), where=n > 0)
    positive = per_sample[per_sample > 0]
    if positive.size == 0:
        return None
    typical = float(np.median(positive))
    good = (per_sample > 0) & (per_sample < 3 * typical)
    return 1000.0 * float(n[good].sum()) / float(steps[good].sum())


def _stream_packets(path: Path, parsed: _Parsed) -> list[_StreamPackets]:
    frame = parsed.frame
    found: dict[str, list[_StreamPackets]] = {}
    paths = [
        p
        for c in frame.columns
        for p in _find(frame.schema[c], (c,), frozenset({"Timestamp"}), frozenset(ARRAYS))
    ]
    for p in paths:
        packets = _select(frame, p)
        for key, (stream, _) in ARRAYS.items():
            if key not in packets.columns:
                continue
            part = packets.filter(pl.col(key).is_not_null())
            if part.height == 0:
                continue
            try:
                stamps = part["Timestamp"].cast(pl.Int64, strict=True).to_numpy()
                samples = part.select(pl.col(key)).explode(key).unnest(key)
                values = samples.select(
                    [pl.col(a).cast(pl.Float64, strict=True) for a in "xyz"]
                ).to_numpy()
            except pl.exceptions.PolarsError:
                raise _fault(path, path.read_bytes(), parsed.events) from None
            counts = part[key].list.len().to_numpy().astype(np.int64)
            if np.isnan(values).any():  # a sample without x, y or z
                raise _fault(path, path.read_bytes(), parsed.events)
            uri = part["_uri"].drop_nulls()[0] if "_uri" in part.columns else None
            found.setdefault(stream, []).append(
                _StreamPackets(
                    stream,
                    key,
                    _path_text(p),
                    unwrap_ms(stamps),
                    counts,
                    values,
                    uri if isinstance(uri, str) else None,
                )
            )
    # a log holding one sensor twice (e.g. /Meas/Acc and /Meas/IMU6) keeps the larger source
    return [max(parts, key=lambda s: len(s.values)) for parts in found.values()]


def open_source(path: Path, head: Head, ctx: ReadContext) -> Source:
    """Read a Movesense JSON file (see the module docstring)."""
    parsed = _parse(path, path.read_bytes())
    streams = _stream_packets(path, parsed)
    if not streams:
        raise ImportFileError(
            f"{path}: no acc, gyro or magnetometer packets (objects with Timestamp and "
            "ArrayAcc/ArrayGyro/ArrayMagn); ECG and heart-rate recordings are not samples the "
            "project stores"
        )
    anchor = wall_time(path, ctx, _in_file_time(parsed))
    rates: dict[str, float] = {}
    stated: dict[str, float] = {}
    t_ms: dict[str, np.ndarray] = {}
    for s in streams:
        fs = _measured_rate_hz(s.stamps_ms, s.counts)
        uri_rate = _RATE.search(s.uri) if s.uri else None
        if uri_rate:
            stated[s.stream] = float(uri_rate.group(1))
        if fs is None:
            fs = stated.get(s.stream)
        if fs is None and len(s.stamps_ms) > 1:
            raise ImportFileError(
                f"{path}: the {len(s.stamps_ms):,} {s.key} packets' Timestamps never increase "
                "(reversed or constant); expected the sensor's ms clock, packet by packet"
            )
        if fs is None:
            raise ImportFileError(
                f"{path}: one {s.key} packet and no /Meas/<X>/<rate> URI: the sampling rate "
                "cannot be known"
            )
        rates[s.stream] = fs
        starts = np.repeat(s.stamps_ms, s.counts).astype(np.float64)
        first_of_packet = np.repeat(np.cumsum(s.counts) - s.counts, s.counts)
        within = np.arange(len(starts)) - first_of_packet
        t_ms[s.stream] = starts + within * (1000.0 / fs)
    if anchor.at == "clock":
        offset_us = float(anchor.t_us)
    elif anchor.at == "first":
        offset_us = anchor.t_us - 1000.0 * min(float(t.min()) for t in t_ms.values())
    else:
        offset_us = anchor.t_us - 1000.0 * max(float(t.max()) for t in t_ms.values())
    serial = name_serial(path)
    if serial is None:
        uri = next((s.uri for s in streams if s.uri), None)
        m = _SERIAL_URI.match(uri) if uri else None
        serial = m.group(1) if m else None
    info: dict[str, Any] = {
        "layout": parsed.layout,
        "wall_time": anchor.source,
        "clock": "sensor ms packet clock; sample i of a packet at +i/fs (fs measured)",
        "packet_sources": {s.stream: s.source for s in streams},
        "fs_from_packets_hz": {k: round(v, 4) for k, v in rates.items()},
    }

    def batches() -> Iterator[Batch]:
        for s in streams:
            t_us = np.round(t_ms[s.stream] * 1000.0 + offset_us).astype(np.int64)
            values = s.values * ARRAYS[s.key][1]
            yield Batch(s.stream, t_us, values, ("x", "y", "z"), 1, place="sample")

    return Source(
        batches(),
        device_id=f"Movesense-{serial}" if serial else None,
        fs_hz=stated,
        info=info,
        flags=parsed.flags,
    )
