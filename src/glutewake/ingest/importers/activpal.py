"""activPAL event files (PAL software ``Events.csv`` export): an external posture reference.

::

    "Time","DataCount (samples)","Interval (s)","ActivityCode (0=sedentary 1= standing
    2=stepping)","CumulativeStepCount",...       (one header line, wrapped here)
    46082.3333333333,0,1800.5,0,0,...

``Time`` is an Excel serial day number on the device's local clock (``--tz`` required);
``Interval (s)`` the event's length; ``ActivityCode`` 0 sedentary, 1 standing, 2 stepping,
2.1 cycling, 3.1/3.2 lying, 4 non-wear, 5 travelling. Events are not samples: they are kept as a
reference table of posture periods (``reference/source=activpal/participant_id=<P>/<hash>.parquet``
in the data directory) whose columns match ``posture_periods``, so a study can compare the two
with one join.
"""

from __future__ import annotations

import datetime as dt
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


def _header(head: Head) -> tuple[int, str, list[str]] | None:
    for i, line in enumerate(head.lines[:5]):
        sep = ";" if line.count(";") > line.count(",") else ","
        cols = [c.strip().strip('"') for c in line.split(sep)]
        if (
            cols
            and cols[0].lower().startswith("time")
            and any(c.lower().startswith("activitycode") for c in cols)
        ):
            return i, sep, cols
    return None


def sniff(head: Head) -> bool:
    """A header with ``Time`` first and an ``ActivityCode`` column."""
    return _header(head) is not None


def read_events(path: Path, head: Head, ctx: ReadContext) -> pl.DataFrame:
    """The file's events as posture periods (UTC start/end, duration, posture, code, steps)."""
    found = _header(head)
    if found is None:
        raise ImportFileError(f"{path}: no activPAL header (Time, ..., ActivityCode ...)")
    idx, sep, cols = found
    need = {
        "time": cols[0],
        "interval": next((c for c in cols if c.lower().startswith("interval")), None),
        "code": next(c for c in cols if c.lower().startswith("activitycode")),
    }
    if need["interval"] is None:
        raise ImportFileError(f"{path}: line {idx + 1}: no 'Interval (s)' column")
    steps_col = next((c for c in cols if c.lower().startswith("cumulativestep")), None)
    tz = need_tz(path, ctx, "activPAL event times (device local clock)")
    strings = {c: pl.String() for c in cols}
    try:
        raw = pl.read_csv(
            path,
            separator=sep,
            has_header=False,
            skip_rows=idx + 1,
            schema=strings,
            quote_char='"',
        )
    except pl.exceptions.PolarsError as exc:
        raise ImportFileError(f"{path}: {str(exc).splitlines()[0]}") from None
    parsed = raw.select(
        [
            pl.col(str(need[k])).str.strip_chars().cast(pl.Float64, strict=False).alias(k)
            for k in ("time", "interval", "code")
        ]
        + (
            [pl.col(steps_col).str.strip_chars().cast(pl.Float64, strict=False).alias("steps")]
            if steps_col
            else []
        )
    )
    for k in ("time", "interval", "code"):
        bad = parsed[k].is_null()
        if bad.any():
            row = int(bad.arg_true()[0])
            raise ImportFileError(
                f"{path}: line {idx + 2 + row}: column {need[k]!r} holds "
                f"{raw[str(need[k])][row]!r}; expected a number"
            )
    codes = parsed["code"].to_numpy()
    known = np.isin(np.round(codes, 1), np.array(list(POSTURES)))
    if not known.all():
        row = int(np.flatnonzero(~known)[0])
        raise ImportFileError(
            f"{path}: line {idx + 2 + row}: activity code {codes[row]:g} is not one of "
            f"{', '.join(f'{c:g}' for c in POSTURES)}"
        )
    local = pl.lit(_EXCEL_EPOCH) + pl.duration(microseconds=(pl.col("time") * 86_400e6).round(0))
    start = local.dt.replace_time_zone(tz, ambiguous="earliest", non_existent="null")
    out = parsed.with_columns(start.alias("start_time")).with_columns(
        (
            pl.col("start_time") + pl.duration(microseconds=(pl.col("interval") * 1e6).round(0))
        ).alias("end_time"),
        pl.col("interval").alias("duration_s"),
        pl.col("code").round(1).replace_strict(POSTURES, return_dtype=pl.String).alias("posture"),
        pl.col("code").alias("activpal_code"),
    )
    if out["start_time"].null_count():
        row = int(out["start_time"].is_null().arg_true()[0])
        raise ImportFileError(f"{path}: line {idx + 2 + row}: local time does not exist in {tz}")
    cols_out = ["start_time", "end_time", "duration_s", "posture", "activpal_code"]
    if steps_col:
        out = out.with_columns(
            pl.col("steps").cast(pl.Int64, strict=False).alias("cumulative_steps")
        )
        cols_out.append("cumulative_steps")
    return out.select(cols_out).with_columns(
        pl.col("start_time").dt.convert_time_zone("UTC"),
        pl.col("end_time").dt.convert_time_zone("UTC"),
    )


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
