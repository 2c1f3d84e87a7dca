"""A batched, bounded-memory reader for delimited text with a known layout.

Every text format (Polar Sensor Logger, Movesense CSV, ActiGraph/Axivity CSV, the generic
convention) is described as a :class:`CsvLayout`; :func:`read_csv_batches` parses it with polars'
streaming CSV reader, converts time and units vectorised, and yields :class:`Batch` es. When polars
rejects a value, a second, string-typed pass finds the first offending line so that the message
names it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import polars as pl

from glutewake.ingest.importers._core import Batch
from glutewake.ingest.importers.errors import ImportFileError
from glutewake.ingest.importers.localtime import LocalTimes, to_utc

TimeKind = Literal["text", "epoch", "elapsed", "rate", "anchored"]


@dataclass(frozen=True)
class TimeSpec:
    """How a row's instant is found.

    ``text``: column of date-time text (``fmt`` strftime or None to infer); ``tz`` None means the
    text carries its offset. ``epoch``: numeric column, ``scale_us`` µs per unit, plus
    ``offset_us`` (counting local wall-clock time in ``tz`` where ``tz`` is set, else UTC).
    ``elapsed``: numeric seconds-like column (``scale_us``) after ``start_us``.
    ``rate``: no column; row i is at ``start_us + i / fs_hz``. ``anchored``: a device clock column
    (``column``, ``scale_us``, ``offset_us``) placed in UTC by the host clock column ``anchor``
    (text, ``fmt``, ``tz``): the offset is the 1st percentile of host minus device time in the
    first batch (the least-delayed arrivals), so sample spacing stays the device's.
    """

    kind: TimeKind
    column: str | None = None
    fmt: str | None = None
    tz: str | None = None
    scale_us: float = 1.0
    offset_us: int = 0
    start_us: int = 0
    fs_hz: float = 0.0
    anchor: str | None = None
    #: the text is always ``YYYY-MM-DD hh:mm:ss.fff`` (23 characters, ``T`` allowed): read by
    #: position, about 2.5x cheaper than ``strptime``; a row that differs fails with its line
    fixed_ms: bool = False


@dataclass(frozen=True)
class StreamColumns:
    """One stream's channel columns and the factor to project units."""

    stream: str
    channels: tuple[str, ...]
    columns: tuple[str, ...]
    factor: float = 1.0


@dataclass(frozen=True)
class CsvLayout:
    """Where the data is in a delimited text file and what it means."""

    path: Path
    columns: tuple[str, ...]
    time: TimeSpec
    streams: tuple[StreamColumns, ...]
    separator: str = ","
    #: lines before the first data row (preamble plus the header line, if any)
    data_line0: int = 1
    #: True when the file's own header line (the last of ``data_line0``) names the columns
    has_header: bool = True
    decimal_comma: bool = False
    #: numbers written with a decimal comma in a comma-separated file (a phone's locale): each
    #: channel column ``c`` is followed by its fraction digits in column ``c + FRACTION``
    split_decimals: bool = False
    #: data rows to read (set when the file's last line is cut off: it is left out)
    n_rows: int | None = None


#: suffix of the fraction-digits column of a number split by a decimal comma
FRACTION = "#fraction"
#: prefix of columns read only so that a row with too many fields is noticed
_UNUSED = "#unused:"


def _schema(layout: CsvLayout) -> dict[str, pl.DataType]:
    numeric = {c for s in layout.streams for c in s.columns}
    schema: dict[str, pl.DataType] = {}
    for name in layout.columns:
        if name in numeric and not layout.split_decimals:
            schema[name] = pl.Float64()
        elif name == layout.time.column and layout.time.kind in ("epoch", "anchored"):
            schema[name] = pl.Int64() if layout.time.scale_us <= 1 else pl.Float64()
        elif name == layout.time.column and layout.time.kind == "elapsed":
            schema[name] = pl.Float64()
        else:
            schema[name] = pl.String()
    return schema


def _scan(layout: CsvLayout, schema: dict[str, pl.DataType]) -> pl.LazyFrame:
    return pl.scan_csv(
        layout.path,
        separator=layout.separator,
        has_header=False,
        skip_lines=layout.data_line0,
        schema=schema,
        decimal_comma=layout.decimal_comma,
        truncate_ragged_lines=False,
        raise_if_empty=False,
        quote_char='"',
        n_rows=layout.n_rows,
    )


def cut_last_line(path: Path, separator: str, n_fields: int) -> tuple[int, int] | None:
    """``(line number, fields)`` of a last line cut off mid-row, or None.

    A writer that was stopped (an app killed, a copy interrupted) leaves a last line without
    its line break and with fewer fields than the rows before it; such a line is left out of
    the import and flagged. A last line without a line break but with every field is kept.
    """
    with open(path, "rb") as fh:
        fh.seek(0, 2)
        size = fh.tell()
        fh.seek(max(0, size - 65536))
        tail = fh.read()
        if not tail or tail.endswith((b"\n", b"\r")):
            return None
        last = tail.rsplit(b"\n", 1)[-1].decode("utf-8", errors="replace")
        fields = last.count(separator) + 1
        if fields >= n_fields:
            return None
        fh.seek(0)
        breaks = 0
        while block := fh.read(8 << 20):
            breaks += block.count(b"\n")
    return breaks + 1, fields


#: characters of ``YYYY-MM-DD hh:mm:ss.fff``
_FIXED_MS_CHARS = 23


def _fixed_ms_exprs(column: str) -> tuple[pl.Expr, pl.Expr]:
    """Naive µs of ``YYYY-MM-DD hh:mm:ss.fff`` text read by position, and whether each row
    has that shape (digits where digits go, 23 characters)."""
    c = pl.col(column)

    def part(start: int, length: int) -> pl.Expr:
        return c.str.slice(start, length).cast(pl.Int64, strict=False)

    # dates repeat for a whole day of rows: the cache parses each once
    day = c.str.slice(0, 10).str.to_date("%Y-%m-%d", strict=False, cache=True)
    hh, mm, ss, ms = part(11, 2), part(14, 2), part(17, 2), part(20, 3)
    t_us = (
        day.cast(pl.Int64) * 86_400_000_000
        + hh * 3_600_000_000
        + mm * 60_000_000
        + ss * 1_000_000
        + ms * 1_000
    )
    ok = (
        (c.str.len_bytes() == _FIXED_MS_CHARS)
        & day.is_not_null()
        & (hh < 24)
        & (mm < 60)
        & (ss < 61)
        & ms.is_not_null()
        & (c.str.slice(19, 1) == ".")
    ).fill_null(False)
    return t_us.alias("_t_us"), ok.alias("_t_ok")


def _time_expr(spec: TimeSpec) -> pl.Expr | None:
    if spec.kind == "text" and spec.fixed_ms:
        return _fixed_ms_exprs(str(spec.column))[0]
    if spec.kind == "text":
        # local times are parsed naive and placed in UTC with numpy (localtime.to_utc): far
        # cheaper per row than polars' zone conversion, and it gives both readings of a
        # repeated hour in one pass
        parsed = (
            pl.col(str(spec.column))
            .str.strip_chars()
            .str.to_datetime(
                spec.fmt,
                time_unit="us",
                strict=True,
                time_zone=None if spec.tz else "UTC",
                cache=False,
            )
        )
        return parsed.dt.epoch("us").alias("_t_us")
    if spec.kind in ("epoch", "elapsed", "anchored"):
        col = pl.col(str(spec.column))
        base = spec.offset_us if spec.kind != "elapsed" else spec.start_us
        if spec.scale_us == 1:
            return (col.cast(pl.Int64) + base).alias("_t_us")
        if spec.scale_us < 1:
            return (col.cast(pl.Int64) // round(1 / spec.scale_us) + base).alias("_t_us")
        return ((col * spec.scale_us).round(0).cast(pl.Int64) + base).alias("_t_us")
    return None


class _FoldResolver:
    """Places local times in the hour repeated when clocks go back, by their order in the file.

    Read as first occurrences, the repeat shows as a step back in UTC; from that step until
    the times leave the repeated hour, rows are the second occurrence. State carries across
    batches.
    """

    def __init__(self) -> None:
        self.prev_early: int | None = None
        self.in_second = False

    def resolve(self, early: np.ndarray, late: np.ndarray) -> np.ndarray:
        amb = early != late
        n = len(early)
        if n == 0 or (not amb.any() and not self.in_second):
            self.in_second = False
            if n:
                self.prev_early = int(early[-1])
            return early
        prev = early[0] if self.prev_early is None else self.prev_early
        back = np.diff(early, prepend=np.int64(prev)) < 0
        cum = np.cumsum(back & amb)
        reset = np.maximum.accumulate(np.where(~amb, np.arange(n), -1))
        base = np.where(reset >= 0, cum[np.maximum(reset, 0)], -int(self.in_second))
        second = amb & (cum - base > 0)
        self.in_second = bool(second[-1])
        self.prev_early = int(early[-1])
        return np.where(second, late, early)


def _anchor_expr(spec: TimeSpec) -> pl.Expr:
    parsed = (
        pl.col(str(spec.anchor))
        .str.strip_chars()
        .str.to_datetime(
            spec.fmt,
            time_unit="us",
            strict=True,
            time_zone=None if spec.tz else "UTC",
            cache=False,
        )
    )
    return parsed.dt.epoch("us").alias("_anchor_us")


def _local_to_utc(
    layout: CsvLayout, naive: np.ndarray, rows_done: int, column: str | None
) -> LocalTimes:
    """UTC readings of a chunk's local times; a time the zone skipped fails with its line."""
    tz = str(layout.time.tz)
    found = to_utc(naive, tz)
    if found.missing is not None:
        row = int(np.flatnonzero(found.missing)[0])
        raise ImportFileError(
            f"{layout.path}: line {_line(layout, rows_done + row)}: column {column!r} holds a "
            f"local time that does not exist in {tz} (skipped when clocks went forward); "
            f"expected a local time that exists in {tz}"
        )
    return found


def _value_expr(layout: CsvLayout, column: str) -> pl.Expr:
    if not layout.split_decimals:
        return pl.col(column)
    # "-0" and "071787" are -0.071787: joined as text, so the sign of a zero integer part stays
    joined = pl.concat_str(
        [pl.col(column).str.strip_chars(), pl.lit("."), pl.col(column + FRACTION).str.strip_chars()]
    )
    return joined.cast(pl.Float64, strict=True).alias(column)


def read_csv_batches(
    layout: CsvLayout,
    chunk_rows: int = 1_000_000,
    flags: list[tuple[str, str]] | None = None,
) -> Iterator[Batch]:
    """Yield the file's samples stream by stream and chunk by chunk, in file order.

    Raises :class:`ImportFileError` naming the file, the line and what was expected when a value
    does not parse, a value is missing, or a time is invalid.
    A last line cut off mid-row is left out, with a ``last_line_cut`` entry in ``flags``.
    """
    cut = cut_last_line(layout.path, layout.separator, len(layout.columns))
    if cut is not None:
        line, fields = cut
        layout = dataclasses.replace(layout, n_rows=max(0, line - 1 - layout.data_line0))
        if flags is not None:
            flags.append(
                (
                    "last_line_cut",
                    f"line {line} (the last) has {fields} of {len(layout.columns)} fields and no "
                    "line break: the file was cut off there; that line is left out",
                )
            )
    schema = _schema(layout)
    needed = [c for s in layout.streams for c in s.columns]
    exprs = [_value_expr(layout, c) for c in needed]
    t_expr = _time_expr(layout.time)
    if t_expr is not None:
        exprs.append(t_expr)
    if layout.time.kind == "text" and layout.time.fixed_ms:
        exprs.append(_fixed_ms_exprs(str(layout.time.column))[1])
    # local wall-clock times (text, or numbers counting local time) are placed in UTC here
    fold = _FoldResolver() if layout.time.tz and layout.time.kind in ("text", "epoch") else None
    if layout.time.kind == "anchored":
        exprs.append(_anchor_expr(layout.time))
    # every column is read, used or not: polars checks a row's field count only against the
    # columns it parses, and a row with more fields than the header must fail, not pass
    used = set(needed) | {layout.time.column, layout.time.anchor}
    if layout.split_decimals:
        used |= {c + FRACTION for c in needed}
    exprs += [pl.col(c).alias(f"{_UNUSED}{c}") for c in layout.columns if c not in used]
    lf = _scan(layout, schema).select(exprs)
    rows_done = 0
    anchor_offset: int | None = None
    try:
        for frame in lf.collect_batches(chunk_size=chunk_rows):
            if frame.height == 0:
                continue
            if "_t_ok" in frame.columns:
                if not frame["_t_ok"].all():
                    raise _bad_fixed_time(layout, rows_done + int((~frame["_t_ok"]).arg_true()[0]))
                frame = frame.drop("_t_ok")
            _check_nulls(layout, frame, rows_done)
            if layout.time.kind == "rate":
                idx = np.arange(rows_done, rows_done + frame.height, dtype=np.float64)
                t_us = layout.time.start_us + np.round(idx * 1e6 / layout.time.fs_hz).astype(
                    np.int64
                )
            else:
                t_us = frame["_t_us"].to_numpy().astype(np.int64, copy=False)
            if fold is not None:
                local = _local_to_utc(layout, t_us, rows_done, layout.time.column)
                t_us = fold.resolve(local.early, local.late)
            if layout.time.kind == "anchored":
                if anchor_offset is None:
                    anchor = frame["_anchor_us"].to_numpy().astype(np.int64, copy=False)
                    if layout.time.tz:
                        anchor = _local_to_utc(layout, anchor, rows_done, layout.time.anchor).early
                    diff = anchor - t_us
                    anchor_offset = int(np.percentile(diff, 1))
                t_us = t_us + anchor_offset
            first_line = layout.data_line0 + rows_done + 1
            for s in layout.streams:
                values = frame.select(s.columns).to_numpy().astype(np.float64, copy=False)
                if s.factor != 1.0:
                    values = values * s.factor
                yield Batch(s.stream, t_us, values, s.channels, first_line)
            rows_done += frame.height
    except pl.exceptions.PolarsError as exc:
        raise _diagnose(layout, exc) from None


def _bad_fixed_time(layout: CsvLayout, row: int) -> ImportFileError:
    """The message for a row whose time is not ``YYYY-MM-DD hh:mm:ss.fff`` (read again)."""
    strings: dict[str, pl.DataType] = {c: pl.String() for c in layout.columns}
    value = _scan(layout, strings).slice(row, 1).collect()[str(layout.time.column)][0]
    return ImportFileError(
        f"{layout.path}: line {_line(layout, row)}: column {layout.time.column!r} holds "
        f"{value!r}; expected a date-time like 2019-02-26 10:55:06.010, as on the rows before"
    )


def _line(layout: CsvLayout, row: int) -> int:
    return layout.data_line0 + row + 1


def _check_nulls(layout: CsvLayout, frame: pl.DataFrame, rows_done: int) -> None:
    if sum(frame.null_count().row(0)) == 0:
        return
    for name in frame.columns:
        if name.startswith(_UNUSED):  # empty extras (event letters, a trailing field) are fine
            continue
        nulls = frame[name].is_null()
        if nulls.any():
            row = int(nulls.arg_true()[0])
            col = (
                name
                if not name.startswith("_")
                else (layout.time.column or layout.time.anchor or "time")
            )
            raise ImportFileError(
                f"{layout.path}: line {_line(layout, rows_done + row)}: column {col!r} is empty; "
                "expected a value on every row"
            )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _diagnose(layout: CsvLayout, exc: BaseException) -> ImportFileError:
    """Find the first line polars could not take, with a string-typed streaming pass."""
    strings: dict[str, pl.DataType] = {c: pl.String() for c in layout.columns}
    numeric = [c for s in layout.streams for c in s.columns]
    spec = layout.time
    checks: list[tuple[str, pl.Expr, str]] = []
    for c in numeric:
        text = pl.col(c).str.strip_chars()
        if layout.split_decimals:
            text = pl.concat_str([text, pl.lit("."), pl.col(c + FRACTION).str.strip_chars()])
        checks.append((c, text.cast(pl.Float64, strict=False), "a number"))
    if spec.kind in ("epoch", "anchored", "elapsed") and spec.column:
        checks.append(
            (
                spec.column,
                pl.col(spec.column).str.strip_chars().cast(pl.Float64, strict=False),
                "a number (time)",
            )
        )
    for col in (spec.column if spec.kind == "text" else None, spec.anchor):
        if col:
            want = f"a date-time like {spec.fmt}" if spec.fmt else "an ISO 8601 date-time"
            parsed_dt = (
                pl.col(col)
                .str.strip_chars()
                .str.to_datetime(
                    spec.fmt, time_unit="us", strict=False, time_zone=None if spec.tz else "UTC"
                )
            )
            checks.append((col, parsed_dt, want))
    try:
        lf = _scan(layout, strings).with_row_index("_row")
        bad = pl.lit(False)
        for c, parsed, _ in checks:
            bad = bad | (parsed.is_null() & pl.col(c).is_not_null())
        hit = lf.filter(bad).head(1).collect()
    except pl.exceptions.PolarsError:
        hit = None
    if hit is not None and hit.height:
        row = int(hit["_row"][0])
        for c, parsed, want in checks:
            value = hit[c][0]
            ok = hit.select(parsed.is_not_null())[0, 0]
            if value is not None and not ok:
                return ImportFileError(
                    f"{layout.path}: line {_line(layout, row)}: column {c!r} holds {value!r}; "
                    f"expected {want}"
                )
    ragged = _ragged_line(layout)
    if ragged is not None:
        line, n_fields = ragged
        return ImportFileError(
            f"{layout.path}: line {line}: {n_fields} fields; expected {len(layout.columns)} "
            f"({layout.separator.join(layout.columns)})"
        )
    return ImportFileError(f"{layout.path}: {_first_line(exc)}")


def _ragged_line(layout: CsvLayout) -> tuple[int, int] | None:
    """The first data line with a field count other than the layout's (quotes aside)."""
    try:
        lines = pl.scan_csv(
            layout.path,
            has_header=False,
            separator="\x1f",
            quote_char=None,
            skip_lines=layout.data_line0,
            schema={"line": pl.String()},
            n_rows=layout.n_rows,
        )
        hit = (
            lines.with_row_index("_row")
            .with_columns(
                (pl.col("line").str.count_matches(layout.separator, literal=True) + 1).alias("n")
            )
            .filter(pl.col("line").is_not_null() & (pl.col("n") != len(layout.columns)))
            .head(1)
            .collect()
        )
    except pl.exceptions.PolarsError:
        return None
    if hit.height == 0:
        return None
    return _line(layout, int(hit["_row"][0])), int(hit["n"][0])
