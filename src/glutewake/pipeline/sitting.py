"""Sitting tasks: posture, bouts and daily measures of one participant's local day."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
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
) -> bool:
    """Posture, bouts and the daily measures of one participant's local day from thigh ACC."""
    from glutewake.analytics.daily_sitting import daily_sitting, sitting_bout_table
    from glutewake.signal.posture import Posture, PostureParams, analyse_posture

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
        return False
    params = PostureParams()
    epoch_t: list[np.ndarray] = []
    epoch_code: list[np.ndarray] = []
    epoch_s = 1.0
    for lo, hi in sample_store.contiguous_spans(block.t_us, fs_hz, SEGMENT_GAP_S):
        if (hi - lo) < fs_hz * 10:  # under 10 s of data: no posture can be judged
            continue
        # float32 as stored: the epoch features widen it block by block, so a float64 copy of
        # the whole day would only cost memory traffic
        res = analyse_posture(block.values[lo:hi, :3], fs_hz, placement="thigh", params=params)
        epoch_s = float(res.epoch_s)
        n = len(res.posture)
        # epochs start at their first sample's time, so clock drift never makes them overlap
        first = lo + np.arange(n) * int(res.samples_per_epoch)
        starts = block.t_us[np.minimum(first, hi - 1)]
        epoch_t.append(starts)
        epoch_code.append(np.asarray(res.posture, dtype=np.int8))
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
        return False
    t_all = np.concatenate(epoch_t)
    codes = np.concatenate(epoch_code)
    param_text = json.dumps(dataclasses.asdict(params), default=json_default, sort_keys=True)
    daily = daily_sitting(t_all, codes, epoch_s, tz).filter(pl.col("local_date") == day)
    bouts = sitting_bout_table(t_all, codes, epoch_s, tz).filter(pl.col("local_date") == day)
    in_day = (t_all >= day_start) & (t_all < day_end)
    periods = _posture_periods(t_all[in_day], codes[in_day], epoch_s, Posture)
    rows.daily.append(
        daily.with_columns(
            pl.lit(participant_id).alias("participant_id"),
            pl.lit(__version__).alias("glutewake_version"),
            pl.lit(param_text).alias("params"),
        )
    )
    rows.bouts.append(
        bouts.with_columns(
            pl.lit(participant_id).alias("participant_id"),
            pl.lit(__version__).alias("glutewake_version"),
            pl.lit(param_text).alias("params"),
        )
    )
    rows.periods.append(
        periods.with_columns(
            pl.lit(participant_id).alias("participant_id"), pl.lit(day).alias("local_date")
        )
    )
    return True


def _posture_periods(
    t_us: np.ndarray, codes: np.ndarray, epoch_s: float, enum: Any
) -> pl.DataFrame:
    """Run-length encode epochs into periods of one posture (contiguous in time)."""
    if len(t_us) == 0:
        return pl.DataFrame(schema={"start_us": pl.Int64, "end_us": pl.Int64, "posture": pl.Utf8})
    step_us = round(epoch_s * 1e6)
    new_run = np.ones(len(t_us), dtype=bool)
    new_run[1:] = (codes[1:] != codes[:-1]) | (np.diff(t_us) > step_us * 1.5)
    starts = np.flatnonzero(new_run)
    ends = np.concatenate((starts[1:], [len(t_us)])) - 1
    names = {int(m.value): m.name.lower() for m in enum}
    return pl.DataFrame(
        {
            "start_us": t_us[starts],
            "end_us": t_us[ends] + step_us,
            "posture": [names.get(int(c), str(int(c))) for c in codes[starts]],
        }
    )


def posture_task(
    data_dir: DataDir, pid: str, device_id: str, fs_hz: float, day: dt.date, tz: str
) -> Rows:
    """One participant-day's posture, bouts and daily measures (a pure task)."""
    rows = Rows()
    if _posture_day(data_dir, pid, device_id, fs_hz, day, tz, rows):
        rows.days.setdefault(pid, set()).add(day)
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
    """Posture, bouts and daily measures: one task per participant, device and local day."""
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
