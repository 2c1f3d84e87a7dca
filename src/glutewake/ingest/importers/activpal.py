"""activPAL event files, as PAL Technologies' software exports them: an external reference.

Two exports are read, with what may precede their table:

- ``Events.csv``: one header line of double-quoted names, some holding commas, then unquoted
  numbers (PALkitchen/activPAL ``inst/extdata/Test_Events.csv`` L1-3, PAL Technologies' R
  package; Jakob-Arend/activPAL-bout-detection ``...-Events.csv`` L1-3)::

      "Time","DataCount (samples)","Interval (s)","ActivityCode (0=sedentary, 1=standing,
      2=stepping)","CumulativeStepCount","Activity Score (MET.h)",...   (one line, wrapped here)
      43516.6774074074,0,0.6,1,0,0.00023333333333333333,149,201,218

- ``EventsEx.csv``: a first line ``sep=;``, a ``;``-separated header with ``Event Type``,
  ``Duration (s)``, ``Cumulative Step Count``, ... and rows ending in ``;`` (one field more than
  the header) (PALkitchen/activPAL ``inst/extdata/EventsEx1/Test1-EventsEx.csv`` L1-4, read by
  ``R/load.events.extended.file.R`` L26-53);
- either may be ``;``-separated after a ``sep=`` line, or start with a ``**header**`` ...
  ``**data**`` block, which the vendor's loaders skip (``R/load.events.file.R`` L17-44).

``Time`` is an Excel serial day number (origin 1899-12-30) on the device's clock, read as local
time in ``--tz`` (every vendor and CRAN parser applies no zone: ``R/load.events.file.R`` L65);
the event lasts ``Interval (s)`` / ``Duration (s)``. Activity codes (``R/activity.overlay.chart.R``
L1-6): 0 sedentary, 1 standing, 2 stepping, 2.1 cycling, 3 / 3.1 / 3.2 lying, 4 non-wear,
5 travelling. ``CumulativeStepCount`` counts one for every two steps ("One step in cumulative
steps is equivalent to two actual steps", ``R/load.events.file.R`` L122-124; the CRAN package
activpalProcessing doubles it too): stored doubled, as steps.

Events are not samples: they are kept as a reference table of posture periods
(``reference/source=activpal/participant_id=<P>/<hash>.parquet`` in the data directory) whose
columns match ``posture_periods``, so a study can compare the two with one join.
"""

from __future__ import annotations

import csv
import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from glutewake.ingest.importers._core import ReadContext, need_tz
from glutewake.ingest.importers.errors import ImportFileError
from glutewake.ingest.importers.sniff import Head
from glutewake.store.datadir import DataDir
from glutewake.store.ids import participant_component
from glutewake.store.private import private_tmp

NAME = "activpal-events"
#: activPAL activity codes -> the project's posture names
POSTURES = {
    0.0: "sitting",
    1.0: "standing",
    2.0: "moving",
    2.1: "cycling",
    3.0: "lying",
    3.1: "lying",
    3.2: "lying",
    4.0: "nonwear",
    5.0: "travelling",
}
_EXCEL_EPOCH = dt.datetime(1899, 12, 30)
#: lines searched for the header (after a sep= line and a **header** block)
_HEADER_LINES = 5
#: header name prefixes (lower case, spaces removed) of the columns read
_COLUMNS = {
    "duration": ("interval", "duration"),
    "code": ("activitycode", "eventtype"),
    "steps": ("cumulativestep",),
}
#: Excel days of 2000-01-01 and 2100-01-01: event times outside are not a device's clock
_EXCEL_RANGE = (36526.0, 73051.0)


@dataclass(frozen=True)
class _Table:
    line: int  #: 0-based index of the header line
    sep: str
    names: list[str]
    columns: dict[str, str | None]  #: time, duration, code, steps -> header name


def _key(name: str) -> str:
    return name.strip().lower().replace(" ", "")


def _cells(line: str, sep: str) -> list[str]:
    return [c.strip() for c in next(csv.reader([line], delimiter=sep, quotechar='"'), [])]


def _first_cell(line: str, sep: str | None) -> str:
    cells = _cells(line, sep or ("," if line.count(",") >= line.count(";") else ";"))
    return cells[0].lower() if cells else ""


def _table(head: Head) -> _Table | None:
    """Where the events table starts: its header line, separator and the columns read."""
    lines = head.lines
    i, sep = 0, None
    if lines and _key(lines[0]).startswith("sep="):
        sep, i = lines[0].strip()[4:5] or None, 1
    if i < len(lines) and _first_cell(lines[i], sep) == "**header**":
        ends = (j for j in range(i + 1, len(lines)) if _first_cell(lines[j], sep) == "**data**")
        end = next(ends, None)
        if end is None:
            return None
        i = end + 1
    for j in range(i, min(i + _HEADER_LINES, len(lines))):
        line = lines[j]
        this_sep = sep or (";" if line.count(";") > line.count(",") else ",")
        names = _cells(line, this_sep)
        while names and names[-1] == "":
            names.pop()
        if not names or not _key(names[0]).startswith("time"):
            continue
        found: dict[str, str | None] = {"time": names[0]}
        for what, prefixes in _COLUMNS.items():
            found[what] = next((n for n in names if _key(n).startswith(prefixes)), None)
        if found["code"] is not None:
            return _Table(j, this_sep, names, found)
    return None


def sniff(head: Head) -> bool:
    """A header with ``Time`` first and an ``ActivityCode`` or ``Event Type`` column."""
    return _table(head) is not None


def read_events(
    path: Path, head: Head, ctx: ReadContext, flags: list[tuple[str, str]] | None = None
) -> pl.DataFrame:
    """The file's events as posture periods (UTC start/end, duration, posture, code, steps).

    A last line cut off mid-row is left out, with a ``last_line_cut`` entry in ``flags``.
    """
    from glutewake.ingest.importers.csvio import cut_last_line

    table = _table(head)
    if table is None:
        raise ImportFileError(
            f"{path}: no activPAL header (Time, ..., ActivityCode or Event Type, ...)"
        )
    cols = table.columns
    if cols["duration"] is None:
        raise ImportFileError(
            f"{path}: line {table.line + 1}: no 'Interval (s)' or 'Duration (s)' column"
        )
    tz = need_tz(path, ctx, "activPAL event times (device local clock)")
    names = list(table.names)
    first_row = head.lines[table.line + 1] if len(head.lines) > table.line + 1 else ""
    extra = len(_cells(first_row, table.sep)) - len(names)
    # EventsEx rows end with the separator: one empty field more than the header
    names += [f"_extra{k}" for k in range(max(extra, 0))]
    cut = cut_last_line(path, table.sep, len(names))
    if cut is not None and flags is not None:
        flags.append(
            (
                "last_line_cut",
                f"line {cut[0]} (the last) has {cut[1]} of {len(names)} fields and no line "
                "break: the file was cut off there; that event is left out",
            )
        )
    try:
        raw = pl.read_csv(
            path,
            separator=table.sep,
            has_header=False,
            skip_rows=table.line + 1,
            schema={f"c{k}": pl.String() for k in range(len(names))},
            quote_char='"',
            truncate_ragged_lines=False,
            n_rows=None if cut is None else max(0, cut[0] - 2 - table.line),
        )
    except pl.exceptions.PolarsError as exc:
        raise ImportFileError(
            f"{path}: rows after line {table.line + 1} do not have the header's "
            f"{len(table.names)} {table.sep!r}-separated fields ({str(exc).splitlines()[0]})"
        ) from None
    raw.columns = names
    read = {k: v for k, v in cols.items() if v is not None}
    parsed = raw.select(
        [
            pl.col(str(name))
            .str.replace_all("#", "")
            .str.strip_chars()
            .cast(pl.Float64, strict=False)
            .alias(k)
            for k, name in read.items()
        ]
    )
    for k, name in read.items():
        bad = parsed[k].is_null() | ~parsed[k].is_finite()
        if bad.any():
            row = int(bad.arg_true()[0])
            raise ImportFileError(
                f"{path}: line {table.line + 2 + row}: column {name!r} holds "
                f"{raw[str(name)][row]!r}; expected a number"
            )
    _check_events(path, table, parsed)
    codes = parsed["code"].to_numpy()
    known = np.isin(np.round(codes, 1), np.array(list(POSTURES)))
    if not known.all():
        row = int(np.flatnonzero(~known)[0])
        raise ImportFileError(
            f"{path}: line {table.line + 2 + row}: activity code {codes[row]:g} is not one of "
            f"{', '.join(f'{c:g}' for c in POSTURES)}"
        )
    local = pl.lit(_EXCEL_EPOCH) + pl.duration(microseconds=(pl.col("time") * 86_400e6).round(0))
    start = local.dt.replace_time_zone(tz, ambiguous="earliest", non_existent="null")
    out = parsed.with_columns(start.alias("start_time")).with_columns(
        (
            pl.col("start_time") + pl.duration(microseconds=(pl.col("duration") * 1e6).round(0))
        ).alias("end_time"),
        pl.col("duration").alias("duration_s"),
        pl.col("code").round(1).replace_strict(POSTURES, return_dtype=pl.String).alias("posture"),
        pl.col("code").alias("activpal_code"),
    )
    if out["start_time"].null_count():
        row = int(out["start_time"].is_null().arg_true()[0])
        raise ImportFileError(
            f"{path}: line {table.line + 2 + row}: local time does not exist in {tz}"
        )
    cols_out = ["start_time", "end_time", "duration_s", "posture", "activpal_code"]
    if "steps" in parsed.columns:
        # the file counts one for every two steps (module docstring)
        out = out.with_columns(
            (pl.col("steps").round(0).cast(pl.Int64) * 2).alias("cumulative_steps")
        )
        cols_out.append("cumulative_steps")
    return out.select(cols_out).with_columns(
        pl.col("start_time").dt.convert_time_zone("UTC"),
        pl.col("end_time").dt.convert_time_zone("UTC"),
    )


def _check_events(path: Path, table: _Table, parsed: pl.DataFrame) -> None:
    """Refuse times no activPAL clock shows, negative lengths and events out of order."""
    line0 = table.line + 2
    time = parsed["time"].to_numpy()
    duration = parsed["duration"].to_numpy()
    outside = (time < _EXCEL_RANGE[0]) | (time >= _EXCEL_RANGE[1])
    if outside.any():
        row = int(np.flatnonzero(outside)[0])
        raise ImportFileError(
            f"{path}: line {line0 + row}: time {time[row]:g} is not an Excel day number "
            "between 2000 and 2100 (36526-73051); expected the PAL software's Time column"
        )
    if (duration < 0).any():
        row = int(np.flatnonzero(duration < 0)[0])
        raise ImportFileError(
            f"{path}: line {line0 + row}: event length {duration[row]:g} s is negative"
        )
    back = np.flatnonzero(np.diff(time) < 0)
    if back.size:
        row = int(back[0]) + 1
        raise ImportFileError(
            f"{path}: line {line0 + row}: the event starts before the one above it; "
            "expected events in time order"
        )
    # an event ends where the next starts (to the 0.1 s the lengths are written with)
    overlap_s = (time[:-1] - time[1:]) * 86_400 + duration[:-1]
    if (overlap_s > 1.0).any():
        row = int(np.flatnonzero(overlap_s > 1.0)[0]) + 1
        raise ImportFileError(
            f"{path}: line {line0 + row}: the event starts {overlap_s[row - 1]:.1f} s before "
            "the one above it ends; expected each event to start where the last one ended"
        )


def settle_reference_versions(
    data_dir: DataDir, participant_id: str, periods: pl.DataFrame, path: Path
) -> list[tuple[str, Path]]:
    """Earlier reference files this one extends (same first event, ends later): their file
    hashes and paths, to be replaced. Refuses (as skipped) a file an earlier one holds."""
    from glutewake.ingest.importers.versions import ContainedImportError

    folder = reference_path(data_dir, participant_id, "x" * 16).parent
    if not folder.is_dir():
        return []
    start, end = periods["start_time"].min(), periods["end_time"].max()
    replaced: list[tuple[str, Path]] = []
    for old in sorted(folder.glob("*.parquet")):
        span = pl.read_parquet(old, columns=["start_time", "end_time"]).select(
            pl.col("start_time").min(), pl.col("end_time").max()
        )
        old_start, old_end = span.row(0)
        if old_start != start:
            continue
        if end > old_end:
            replaced.append((_sha_of(data_dir, participant_id, old), old))
        else:
            raise ContainedImportError(
                f"{path}: the same activPAL events (same first event) are already imported, as "
                f"long or longer ({old.relative_to(data_dir.root)})"
            )
    return replaced


def _sha_of(data_dir: DataDir, participant_id: str, reference: Path) -> str:
    from glutewake.store.catalog import open_read

    rel = str(reference.relative_to(data_dir.root))
    with open_read(data_dir) as con:
        row = con.execute(
            "SELECT sha256 FROM import_files WHERE participant_id = ? AND recordings = ?",
            [participant_id, rel],
        ).fetchone()
    return str(row[0]) if row else ""


def sitting_minutes(periods: pl.DataFrame) -> dict[str, float]:
    """Minutes per posture in a reference table (what the file says, for the import summary)."""
    totals = periods.group_by("posture").agg(pl.col("duration_s").sum() / 60)
    return {str(p): round(float(m), 3) for p, m in totals.iter_rows()}


def reference_path(data_dir: DataDir, participant_id: str, sha256: str) -> Path:
    """Where a reference file's periods are stored in the data directory."""
    return (
        data_dir.root
        / "reference"
        / "source=activpal"
        / f"participant_id={participant_component(participant_id)}"
        / f"{sha256[:16]}.parquet"
    )


def write_reference(path: Path, periods: pl.DataFrame) -> None:
    """Write periods atomically (tmp, fsync, rename), readable by the owner only."""
    with private_tmp(path) as tmp:
        periods.write_parquet(tmp, compression="zstd", statistics=True)
