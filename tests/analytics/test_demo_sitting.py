"""The catalog invariants of issue 15 on the 14-day demo (every participant, two DST changes)."""

from __future__ import annotations

import pytest

from glutewake.store.datadir import DataDir
from tests.test_sitting_ownership import check_invariants, sitting_tables


@pytest.mark.slow
@pytest.mark.timeout(900)  # may be the test that builds the demo
def test_demo_bouts_are_stored_once_and_add_up(demo: DataDir) -> None:
    tables = sitting_tables(demo)
    assert tables["sitting_bouts"]["participant_id"].n_unique() >= 2
    assert check_invariants(tables) >= 1
