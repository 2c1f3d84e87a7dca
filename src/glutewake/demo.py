"""``glutewake demo``: a small simulated study through the same path as real data.

Simulate -> spool (device-native bytes, as the collector writes them) -> ``process`` -> catalog ->
daily reports. Re-running it on the same folder adds nothing: the spool is only rendered for
devices that have none yet, and ``process`` is idempotent.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from glutewake.analytics.report import write_daily_report
from glutewake.pipeline import ProgressHook, process
from glutewake.simulate.sample_data import load_sample_data, sample_data_path
from glutewake.simulate.study import build_study, register_study
from glutewake.store.catalog import open_read, query_frame
from glutewake.store.datadir import DataDir


class DemoError(RuntimeError):
    """The demo cannot run (names what is wrong)."""


@dataclass(frozen=True)
class DemoResult:
    """What the demo made."""

    data_dir: DataDir
    summary: pl.DataFrame
    catalog: Path
    reports: list[Path]


def _no_progress(description: str, total: int) -> Callable[[int], None]:
    return lambda n: None


def run_demo(
    out: Path,
    *,
    seed: int = 7,
    days: int = 3,
    progress: ProgressHook = _no_progress,
) -> DemoResult:
    """Build the demo study in ``out`` and run the whole pipeline on it.

    Parameters
    ----------
    out : Path
        Data directory to build (created; re-running on it changes nothing).
    seed : int
        Simulator seed.
    days : int
        Days per participant.
    progress : callable
        Progress hook, as for :func:`glutewake.pipeline.process`.
    """
    if days < 1:
        raise DemoError("the demo needs at least one day")
    if out.exists() and not out.is_dir():
        raise DemoError(f"{out} exists and is not a folder")
    data_dir = DataDir(out.absolute()).create()
    from glutewake.simulate.study import DEFAULT_PARTICIPANTS

    first_day = dt.date(2026, 3, 27)
    workers = min(os.cpu_count() or 1, 4)
    advance = progress("simulating devices", len(DEFAULT_PARTICIPANTS))
    truth = build_study(
        data_dir, seed=seed, days=days, first_day=first_day, workers=workers, advance=advance
    )
    register_study(data_dir, truth)
    sample = sample_data_path()
    if sample is not None:  # the bundled real-format recording joins the study as S01
        load_sample_data(sample, data_dir)
    process(data_dir, progress=progress, workers=workers)
    with open_read(data_dir) as con:
        summary = query_frame(
            con,
            "SELECT participant_id, local_date, phase, round(wear_min / 60, 1) AS wear_h, "
            "round(sitting_min / 60, 1) AS sitting_h, bouts_30min, "
            "round(longest_bout_min) AS longest_bout_min, "
            "round(breaks_per_sitting_hour, 1) AS breaks_per_h, exercise_sessions, "
            "round(activation_quality) AS activation_quality "
            "FROM daily_summary ORDER BY participant_id, local_date",
        )
    with open_read(data_dir) as con:
        days_with_data = con.execute(
            "SELECT DISTINCT participant_id, local_date FROM daily_sitting ORDER BY ALL"
        ).fetchall()
    reports: list[Path] = []
    advance = progress("daily reports", len(days_with_data))
    for participant_id, day in days_with_data:
        reports += write_daily_report(data_dir, str(participant_id), day)
        advance(1)
    return DemoResult(data_dir=data_dir, summary=summary, catalog=data_dir.catalog, reports=reports)
