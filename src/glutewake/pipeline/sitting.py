"""Sitting: posture per participant-day (parallel tasks), then bouts and daily measures.

A task derives one local day's posture (with context either side) and hands back runs of the
epochs that start on that day. The bouts and daily measures are measured afterwards, here, from
the runs of all the days a bout touches, the stored ones included, so a bout that crosses
midnight is stored once, by the day it starts on, however the days were cut into tasks.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import functools
import json
from collections.abc import Iterator
from typing import Any

import numpy as np
import polars as pl

from glutewake import __version__
from glutewake.pipeline.parallel import TaskFailure, TaskRunner
from glutewake.pipeline.rows import (
    ProcessSummary,
    ProgressHook,
    Rows,
    day_bounds_us,
    json_default,
    merge_rows,
    record_failure,
    us_to_dt,
)
from glutewake.store import samples as sample_store
from glutewake.store.datadir import DataDir

#: profiles whose accelerometer is worn on the thigh unless the devices table says otherwise
THIGH_IMU_PROFILES = frozenset({"polar-pmd", "movesense", "metawear"})
#: samples farther apart than this split a recording into separately analysed segments
SEGMENT_GAP_S = 1.0
#: context read on either side of a local day, so that posture sees across midnight and has
#: the walking (upright reference) and long still periods (non-wear) its methods need
DAY_CONTEXT_S = 3 * 3600


def _posture_day(
    data_dir: DataDir,
    participant_id: str,
    device_id: str,
    fs_hz: float,
    day: dt.date,
    tz: str,
    rows: Rows,
) -> pl.DataFrame | None:
    """Posture of one participant's local day from thigh ACC, as runs (None without data).

    The day is read with :data:`DAY_CONTEXT_S` of context either side, but only the epochs
    that start on the day are kept: every epoch has one owner. The epoch grid of a segment
    that runs through the day's midnight is laid from the first sample of the day, so the day
    starts with a whole epoch and the previous day's last epoch ends where it starts.
    """
    from glutewake.analytics.daily_sitting import posture_runs
    from glutewake.signal.epochs import samples_per_epoch
    from glutewake.signal.posture import PostureParams, analyse_posture

    day_start, day_end = day_bounds_us(day, tz)
    block = sample_store.read_samples(
        data_dir,
        stream="acc",
        participant_id=participant_id,
        device_id=device_id,
        start_us=day_start - DAY_CONTEXT_S * 1_000_000,
        end_us=day_end + DAY_CONTEXT_S * 1_000_000,
    )
    if block is None:
        return None
    own_lo, own_hi = np.searchsorted(block.t_us, [day_start, day_end])
    if own_hi <= own_lo:  # only context: the day itself has no samples
        return None
    params = PostureParams()
    spe = samples_per_epoch(fs_hz, params.epoch_s)
    epoch_t: list[np.ndarray] = []
    epoch_code: list[np.ndarray] = []
    epoch_s = spe / fs_hz
    for lo, hi in sample_store.contiguous_spans(block.t_us, fs_hz, SEGMENT_GAP_S):
        if hi <= own_lo or lo >= own_hi:  # context only, separated by a gap: nothing to own
            continue
        if lo < own_lo:
            lo += (own_lo - lo) % spe
        if (hi - lo) < fs_hz * 10:  # under 10 s of data: no posture can be judged
            continue
        # float32 as stored: the epoch features widen it block by block, so a float64 copy of
        # the whole day would only cost memory traffic
        res = analyse_posture(block.values[lo:hi, :3], fs_hz, placement="thigh", params=params)
        epoch_s = float(res.epoch_s)
        # epochs start at their first sample's time, so clock drift never makes them overlap
        starts = block.t_us[lo + np.arange(len(res.posture)) * int(res.samples_per_epoch)]
        own = (starts >= day_start) & (starts < day_end)
        if not own.any():
            continue
        epoch_t.append(starts[own])
        epoch_code.append(np.asarray(res.posture, dtype=np.int8)[own])
        rows.qc.append(
            {
                "participant_id": participant_id,
                "recording_id": None,
                "local_date": day,
                "kind": "posture_segment",
                "start_time": us_to_dt(int(block.t_us[lo])),
                "end_time": us_to_dt(int(block.t_us[hi - 1])),
                "value": (block.t_us[hi - 1] - block.t_us[lo]) / 1e6,
                "detail": json.dumps(res.qc, default=json_default, sort_keys=True),
            }
        )
    if not epoch_t:
        return None
    return posture_runs(np.concatenate(epoch_t), np.concatenate(epoch_code), epoch_s, tz)


def _periods(runs: pl.DataFrame) -> pl.DataFrame:
    """Stored posture periods from runs (``duration_s`` is posture time: whole epochs)."""
    from glutewake.signal.posture import Posture

    names = {int(m.value): m.name.lower() for m in Posture}
    return runs.select(
        "start_us",
        "end_us",
        pl.col("posture").replace_strict(names, return_dtype=pl.Utf8),
        "duration_s",
        "local_date",
    )


def posture_task(
    data_dir: DataDir, pid: str, device_id: str, fs_hz: float, day: dt.date, tz: str
) -> Rows:
    """One participant-day's posture as runs of its own epochs (a pure task)."""
    rows = Rows()
    runs = _posture_day(data_dir, pid, device_id, fs_hz, day, tz, rows)
    if runs is not None:
        rows.posture_runs[(pid, device_id, day)] = runs
    return rows


def derive_sitting(
    data_dir: DataDir,
    rows: Rows,
    todo: dict[tuple[str, str, dt.date], float],
    tzs: dict[str, str],
    summary: ProcessSummary,
    progress: ProgressHook,
    runner: TaskRunner,
) -> None:
    """Posture per participant, device and local day (parallel tasks), then bouts and daily
    measures of every day the new posture touches, with the stored posture of its neighbours
    (:func:`glutewake.analytics.sitting_days.measure_days`)."""
    order = sorted(todo)
    tasks = [(data_dir, pid, dev, todo[(pid, dev, day)], day, tzs[pid]) for pid, dev, day in order]
    keys = [f"{pid}/{dev}/{day.isoformat()}" for pid, dev, day in order]
    advance = progress("sitting", len(tasks))
    for (pid, dev, day), key, out in zip(
        order, keys, runner.map(posture_task, tasks, keys, advance), strict=True
    ):
        rows.attempted.add(("sitting", key))
        if isinstance(out, TaskFailure):
            args = {"device_id": dev, "local_date": day.isoformat(), "fs_hz": todo[(pid, dev, day)]}
            record_failure(rows, summary, "sitting", out, pid, args)
        else:
            merge_rows(rows, out)
    measure_sitting(data_dir, rows, summary)


def measure_sitting(data_dir: DataDir, rows: Rows, summary: ProcessSummary) -> None:
    """Bouts and daily measures for the participants with new posture in ``rows``."""
    from glutewake.analytics.daily_sitting import merge_sources
    from glutewake.analytics.sitting_days import measure_days
    from glutewake.signal.posture import PostureParams

    by_day: dict[tuple[str, dt.date], list[tuple[tuple[bool, str], pl.DataFrame]]] = {}
    profiles = _device_profiles(data_dir, rows)
    for (pid, dev, day), runs in rows.posture_runs.items():
        by_day.setdefault((pid, day), []).append((_source_priority(profiles, pid, dev), runs))
    fresh: dict[str, dict[dt.date, pl.DataFrame]] = {}
    for (pid, day), sources in sorted(by_day.items()):
        fresh.setdefault(pid, {})[day] = merge_sources([r for _, r in sorted(sources)])
    if not fresh:
        return
    params = PostureParams()
    param_text = json.dumps(dataclasses.asdict(params), default=json_default, sort_keys=True)
    with _stored_posture(data_dir, sorted(fresh)) as stored:
        for pid, days in fresh.items():
            measured = measure_days(
                days, stored.days(pid), functools.partial(stored.load, pid), params.epoch_s
            )
            rows.days.setdefault(pid, set()).update(days)
            rows.sitting_days.setdefault(pid, set()).update(measured.days)
            label = [
                pl.lit(pid).alias("participant_id"),
                pl.lit(__version__).alias("glutewake_version"),
                pl.lit(param_text).alias("params"),
            ]
            rows.daily.append(measured.daily.with_columns(label))
            rows.bouts.append(measured.bouts.with_columns(label))
            for runs in days.values():
                rows.periods.append(_periods(runs).with_columns(label[0]))


def _source_priority(
    profiles: dict[tuple[str, str], str], pid: str, device_id: str
) -> tuple[bool, str]:
    """Where thigh sources overlap in time, collected data wins over imported, then the device
    id decides (docs/sitting.md, "Several thigh sources"): the same whatever ran first."""
    return profiles.get((pid, device_id), "").startswith("import:"), device_id


def _device_profiles(data_dir: DataDir, rows: Rows) -> dict[tuple[str, str], str]:
    profiles = {key: str(dev["profile"]) for key, dev in rows.devices.items()}
    if data_dir.catalog.exists():
        from glutewake.store.catalog import open_read

        with open_read(data_dir) as con:
            for pid, dev, profile in con.execute(
                "SELECT participant_id, device_id, profile FROM devices"
            ).fetchall():
                profiles.setdefault((str(pid), str(dev)), str(profile))
    for rec in rows.recordings:
        profiles.setdefault((rec.participant_id, rec.device_id), rec.profile)
    return profiles


class _StoredPosture:
    """The catalog's stored posture runs (``posture_periods``), read on demand."""

    def __init__(self, con: Any, participants: list[str]) -> None:
        self._con = con
        self._days: dict[str, set[dt.date]] = {p: set() for p in participants}
        if con is None:
            return
        for pid, day in con.execute(
            "SELECT DISTINCT participant_id, local_date FROM posture_periods "
            "WHERE participant_id IN (SELECT unnest(?))",
            [participants],
        ).fetchall():
            self._days[str(pid)].add(day)

    def days(self, pid: str) -> set[dt.date]:
        return self._days.get(pid, set())

    def load(self, pid: str, days: list[dt.date]) -> dict[dt.date, pl.DataFrame]:
        from glutewake.signal.posture import Posture
        from glutewake.store.catalog import query_frame

        codes = {m.name.lower(): int(m.value) for m in Posture}
        frame = query_frame(
            self._con,
            "SELECT local_date, epoch_us(start_time) AS start_us, epoch_us(end_time) AS end_us, "
            "posture, duration_s FROM posture_periods WHERE participant_id = ? "
            "AND local_date IN (SELECT unnest(?)) ORDER BY start_time",
            [pid, days],
        ).with_columns(pl.col("posture").replace_strict(codes, return_dtype=pl.Int8))
        parts = frame.partition_by("local_date", as_dict=True)
        return {day: part for (day,), part in parts.items()}


@contextlib.contextmanager
def _stored_posture(data_dir: DataDir, participants: list[str]) -> Iterator[_StoredPosture]:
    from glutewake.store.catalog import open_read

    if not data_dir.catalog.exists():
        yield _StoredPosture(None, participants)
        return
    with open_read(data_dir) as con:
        yield _StoredPosture(con, participants)
