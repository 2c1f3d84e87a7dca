"""The 14-day demo study (``glutewake demo --days 14``), built once per test session.

Building it runs the whole pipeline on about 40 simulated participant-days and takes a couple
of minutes; to reuse a demo folder already built with the same command, point
``GLUTEWAKE_TEST_DEMO`` at it (the tests only read it: reports go to temporary folders).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from glutewake.store.datadir import DataDir

DEMO_DAYS = 14


@pytest.fixture(scope="session")
def demo(tmp_path_factory: pytest.TempPathFactory) -> DataDir:
    """The data directory of ``glutewake demo --days 14`` (seed 7)."""
    given = os.environ.get("GLUTEWAKE_TEST_DEMO")
    if given and (Path(given) / "catalog.duckdb").exists():
        return DataDir(Path(given).absolute())
    from glutewake.demo import run_demo

    return run_demo(tmp_path_factory.mktemp("demo") / "demo", days=DEMO_DAYS).data_dir
