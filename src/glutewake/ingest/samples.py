"""Decoded samples on disk: hive-partitioned Parquet, one file per recording and UTC date.

``samples/stream=<S>/participant_id=<P>/date=<YYYY-MM-DD>/<recording>.parquet`` with columns
``t_us`` (int64, UTC µs), ``sample_seq`` (int64) and one float32 column per channel, named by the
channel and unit-free (the unit is the stream's: acc g, gyro deg/s, mag gauss, emg µV). Rows are
in arrival order, which is time order except after a device clock that jumped back (kept as
recorded, flagged in QC); zone maps prune time-range queries. Files are written tmp -> fsync ->
rename.
"""

from __future__ import annotations

import datetime as dt
import itertools
from dataclasses import dataclass

import numpy as np
import polars as pl
from numpy.typing import NDArray

from glutewake.datadir import DataDir, safe_component

_US_PER_DAY = 86_400_000_000


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
    base = f"samples/stream={stream}/participant_id={safe_component(participant_id)}"
    paths: list[str] = []
    for lo, hi in itertools.pairwise(bounds):
        if hi <= lo:
            continue
        day = dt.date(1970, 1, 1) + dt.timedelta(days=int(days[lo]))
        frame = pl.DataFrame(
            {
                "t_us": t_us[lo:hi],
                "sample_seq": sample_seq[lo:hi],
                **{
                    name: values[lo:hi, i].astype(np.float32, copy=False)
                    for i, name in enumerate(channels)
                },
            }
        )
        rel = f"{base}/date={day.isoformat()}/{safe_component(recording_name)}.parquet"
        # zstd level 1: half the CPU of the default level for ~1.5x the bytes of level 3
        store.write_parquet(rel, frame, compression="zstd", compression_level=1, statistics=True)
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
    pattern = f"{safe_component(device_id)}-*.parquet" if device_id else "*.parquet"
    store = data_dir.store
    base = f"samples/stream={stream}/participant_id={safe_component(participant_id)}"
    first = dt.date(1970, 1, 1) + dt.timedelta(days=start_us // _US_PER_DAY)
    last = dt.date(1970, 1, 1) + dt.timedelta(days=(end_us - 1) // _US_PER_DAY)
    files: list[str] = []
    day = first
    while day <= last:
        files.extend(store.glob(f"{base}/date={day.isoformat()}/{pattern}"))
        day += dt.timedelta(days=1)
    if not files:
        return None
    # files of different devices may carry different channel sets: align by name
    window = [("t_us", ">=", start_us), ("t_us", "<", end_us)]
    parts = [
        f
        for f in (pl.from_arrow(store.read_table(rel, filters=window)) for rel in files)
        if isinstance(f, pl.DataFrame) and f.height
    ]
    if not parts:
        return None
    parts.sort(key=lambda f: int(f["t_us"][0]))
    frame_df = pl.concat(parts, how="diagonal_relaxed")
    # overlapping recordings (a clock that jumped back, a re-imported span) would interleave:
    # keep only samples later than every sample before them, so time strictly increases
    t = frame_df["t_us"].to_numpy()
    if t.size > 1:
        keep = np.ones(t.size, dtype=bool)
        keep[1:] = t[1:] > np.maximum.accumulate(t)[:-1]
        if not keep.all():
            frame_df = frame_df.filter(pl.Series(keep))
    channels = tuple(c for c in frame_df.columns if c not in ("t_us", "sample_seq"))
    values = frame_df.select(channels).to_numpy().astype(np.float32, copy=False)
    return SampleBlock(
        t_us=frame_df["t_us"].to_numpy().astype(np.int64, copy=False),
        values=values,
        channels=channels,
    )


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

