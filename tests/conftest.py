"""Shared fixtures: a small simulated study spooled as device-native bytes (built once)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from glutewake.simulate.study import DEFAULT_PARTICIPANTS, StudyTruth, build_study, register_study
from glutewake.store.datadir import DataDir

STUDY_DAY = dt.date(2026, 3, 27)
SHARED = Path(__file__).resolve().parents[1].parent / "shared"


@pytest.fixture(scope="session")
def small_study(tmp_path_factory: pytest.TempPathFactory) -> tuple[DataDir, StudyTruth]:
    """P01 (Berlin): 3 h of thigh IMU in the morning, an MVC trial and one exercise session.

    Spooled and registered, not processed. Tests that change it must work on a copy.
    """
    data_dir = DataDir(tmp_path_factory.mktemp("study")).create()
    truth = build_study(
        data_dir,
        seed=3,
        days=1,
        first_day=STUDY_DAY,
        participants=DEFAULT_PARTICIPANTS[:1],
        imu_hours=(8.0, 11.0),
        n_reps=8,
    )
    register_study(data_dir, truth)
    return data_dir, truth



@pytest.fixture(scope="session")
def serial_catalog(
    small_study: tuple[DataDir, StudyTruth], tmp_path_factory: pytest.TempPathFactory
) -> DataDir:
    """A copy of ``small_study`` processed serially: the reference other runners must match."""
    import shutil

    from glutewake.pipeline import process

    source, _ = small_study
    data_dir = DataDir(tmp_path_factory.mktemp("serial") / "study")
    shutil.copytree(source.root, data_dir.root)
    process(data_dir)
    return data_dir
