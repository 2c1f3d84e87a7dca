"""Decoded samples on disk: hive-partitioned Parquet, one file per recording and UTC date.

``samples/stream=<S>/participant_id=<P>/date=<YYYY-MM-DD>/<recording>.parquet`` with columns
``t_us`` (int64, UTC µs), ``sample_seq`` (int64) and one float32 column per channel, named by the
channel and unit-free (the unit is the stream's: acc g, gyro deg/s, mag gauss, emg µV). Rows are
in arrival order, which is time order except after a device clock that jumped back (kept as
recorded, flagged in QC); zone maps prune time-range queries. Files are written tmp -> fsync ->
rename.

Encoding (:data:`PARQUET_OPTIONS`): zstd level 1, no dictionaries, ``t_us`` and ``sample_seq``
delta-encoded (evenly spaced integers shrink to a few bits each), row groups of 131,072 rows so
that reading one local day skips the row groups outside it; columns are declared non-null, so
no definition levels are stored. On a 1.7 M-row day of thigh ACC this writes a file 2.4 times
smaller than polars' defaults did, in 45 % of the CPU time, that reads in 53 % of the time.
Every page carries a CRC-32 that every read verifies: a flipped bit on disk is a
:class:`SampleFileError` naming the file, never a silently changed sample (files written before
checksums still read).
"""

from __future__ import annotations

import datetime as dt
import itertools
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
from numpy.typing import NDArray

from glutewake.devices.base import Gap, StreamSamples
from glutewake.store.datadir import DataDir
from glutewake.store.ids import check_component, device_component, participant_component
from glutewake.store.storage import Store

_US_PER_DAY = 86_400_000_000

#: how sample files are written (``pyarrow.parquet.write_table`` options)
PARQUET_OPTIONS: dict[str, object] = {
    "compression": "zstd",
    "compression_level": 1,
    "use_dictionary": False,
    "column_encoding": {"t_us": "DELTA_BINARY_PACKED", "sample_seq": "DELTA_BINARY_PACKED"},
    "row_group_size": 1 << 17,
    "write_statistics": True,
    # every page carries a CRC-32, verified on every read: a flipped bit on disk is an error
    # naming the file, never a silently changed sample
    "write_page_checksum": True,
}


@dataclass(frozen=True)
class NewRecording:
    """Samples of one stream from a source other than the spool (an importer), or decoded.

    ``recording_name`` must be unique per participant and stable across re-runs (e.g. built from
    a file hash), so that re-adding the same data replaces rather than duplicates it.
    """

    participant_id: str
    device_id: str
    profile: str
    recording_name: str
    samples: StreamSamples
    exercise: str | None = None
    qc: dict[str, Any] = field(default_factory=dict)
    gaps: tuple[Gap, ...] = ()
    config: dict[str, Any] = field(default_factory=dict)


class SampleFileError(RuntimeError):
    """A file in the sample store cannot be read as samples (names the file and why)."""


@dataclass(frozen=True)
class SampleBlock:
    """Samples of one stream read back from the store, sorted by time."""

    t_us: NDArray[np.int64]
    values: NDArray[np.float32]
    channels: tuple[str, ...]


def _utc_dates(t_us: NDArray[np.int64]) -> NDArray[np.int64]:
    return np.floor_divide(t_us, _US_PER_DAY)


def write_recording(
    data_dir: DataDir,
    *,
    stream: str,
    participant_id: str,
    recording_name: str,
    t_us: NDArray[np.int64],
    values: NDArray[np.floating],
    channels: tuple[str, ...],
    sample_seq: NDArray[np.int64],
) -> list[str]:
    """Write one recording's samples, split by UTC date; replace earlier files of the same name.

    Returns the files written, relative to the data directory's store.
    """
    # rows stay in arrival order: sorted by time, except after a clock that jumped back, which
    # readers resolve (read_samples keeps the earlier span) instead of interleaving two spans
    days = _utc_dates(t_us)
    cuts = np.flatnonzero(np.diff(days)) + 1
    bounds = np.concatenate(([0], cuts, [len(t_us)]))
    store = data_dir.store
    base = f"samples/stream={stream}/participant_id={participant_component(participant_id)}"
    paths: list[str] = []
    for lo, hi in itertools.pairwise(bounds):
        if hi <= lo:
            continue
        day = dt.date(1970, 1, 1) + dt.timedelta(days=int(days[lo]))
        columns: dict[str, np.ndarray] = {
            "t_us": t_us[lo:hi],
            "sample_seq": sample_seq[lo:hi],
            **{
                name: values[lo:hi, i].astype(np.float32, copy=False)
                for i, name in enumerate(channels)
            },
        }
        # declared non-null: Parquet then stores no definition levels (cheaper both ways)
        schema = pa.schema(
            [
                pa.field(name, pa.from_numpy_dtype(col.dtype), nullable=False)
                for name, col in columns.items()
            ]
        )
        table = pa.table(columns, schema=schema)
        rel = f"{base}/date={day.isoformat()}/{check_component(recording_name)}.parquet"
        store.write_parquet(rel, table, **PARQUET_OPTIONS)
        paths.append(rel)
    return paths


def read_samples(
    data_dir: DataDir,
    *,
    stream: str,
    participant_id: str,
    start_us: int,
    end_us: int,
    device_id: str | None = None,
) -> SampleBlock | None:
    """Samples of one stream and participant with ``start_us <= t_us < end_us`` (None if none).

    Only the date partitions that can hold the range are read; ``device_id`` restricts the read
    to one device's recordings (files are named ``<device>-c<conn>.parquet``).
    """
    pattern = f"{device_component(device_id)}-*.parquet" if device_id else "*.parquet"
    store = data_dir.store
    base = f"samples/stream={stream}/participant_id={participant_component(participant_id)}"
    first = dt.date(1970, 1, 1) + dt.timedelta(days=start_us // _US_PER_DAY)
    last = dt.date(1970, 1, 1) + dt.timedelta(days=(end_us - 1) // _US_PER_DAY)
    files: list[str] = []
    day = first
    while day <= last:
        files.extend(store.glob(f"{base}/date={day.isoformat()}/{pattern}"))
        day += dt.timedelta(days=1)
    if not files:
        return None
    parts = [part for part in (_read_window(store, rel, start_us, end_us) for rel in files) if part]
    if not parts:
        return None
    parts.sort(key=lambda part: int(part[0][0]))
    # files of different devices may carry different channel sets: align by name (NaN where a
    # file lacks a channel)
    channels = tuple(dict.fromkeys(name for _, cols in parts for name in cols))
    t = np.concatenate([t_part for t_part, _ in parts])
    values = np.full((t.size, len(channels)), np.nan, dtype=np.float32)
    row = 0
    for t_part, cols in parts:
        for name, column in cols.items():
            values[row : row + t_part.size, channels.index(name)] = column
        row += t_part.size
    # overlapping recordings (a clock that jumped back, a re-imported span) would interleave:
    # keep only samples later than every sample before them, so time strictly increases
    if t.size > 1:
        keep = np.ones(t.size, dtype=bool)
        keep[1:] = t[1:] > np.maximum.accumulate(t)[:-1]
        if not keep.all():
            t, values = t[keep], values[keep]
    return SampleBlock(t_us=t, values=values, channels=channels)


def _read_window(
    store: Store, rel: str, start_us: int, end_us: int
) -> tuple[NDArray[np.int64], dict[str, NDArray[np.float32]]] | None:
    """``(t_us, {channel: values})`` of one sample file's rows in ``[start_us, end_us)``,
    reading only the row groups whose time statistics overlap the window."""
    try:
        with store.open_parquet(rel) as parquet:
            meta = parquet.metadata
            names = parquet.schema_arrow.names
            if "t_us" not in names:
                raise SampleFileError(f"{rel}: sample file has no t_us column (has {names})")
            t_col = names.index("t_us")
            groups = []
            for g in range(meta.num_row_groups):
                chunk = meta.row_group(g).column(t_col)
                # a damaged type field makes pyarrow abort the process on .statistics
                stats = chunk.statistics if chunk.physical_type == "INT64" else None
                unknown = stats is None or not stats.has_min_max
                if unknown or (stats.max >= start_us and stats.min < end_us):  # type: ignore[union-attr]
                    groups.append(g)
            if not groups:
                return None
            channels = [n for n in names if n not in ("t_us", "sample_seq")]
            table = parquet.read_row_groups(groups, columns=["t_us", *channels], use_threads=False)
    except (OSError, pa.ArrowException) as exc:
        raise SampleFileError(f"{rel}: not a readable Parquet sample file ({exc})") from exc
    t = table.column("t_us").to_numpy().astype(np.int64, copy=False)
    inside = (t >= start_us) & (t < end_us)
    if not inside.any():
        return None
    everything = bool(inside.all())
    cols = {}
    for name in channels:
        column = table.column(name).to_numpy().astype(np.float32, copy=False)
        cols[name] = column if everything else column[inside]
    return (t if everything else t[inside]), cols


def contiguous_spans(
    t_us: NDArray[np.int64], fs_hz: float, max_gap_s: float
) -> list[tuple[int, int]]:
    """Index ranges ``[lo, hi)`` of runs of samples without a gap longer than ``max_gap_s``
    (or three sample periods, if longer).

    >>> contiguous_spans(np.array([0, 10_000, 20_000, 5_000_000, 5_010_000]), 100.0, 1.0)
    [(0, 3), (3, 5)]
    """
    if len(t_us) == 0:
        return []
    limit_us = max(max_gap_s * 1e6, 3e6 / fs_hz)
    breaks = np.flatnonzero(np.diff(t_us) > limit_us) + 1
    bounds = np.concatenate(([0], breaks, [len(t_us)]))
    return [(int(a), int(b)) for a, b in itertools.pairwise(bounds) if b > a]
