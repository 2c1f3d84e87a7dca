"""Catalog opening, migrations, and the one-writer / many-readers discipline."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from glutewake.store.bookkeeping import (
    BookkeepingError,
    log_symptoms,
    set_phase,
    upsert_participant,
)
from glutewake.store.catalog import (
    SCHEMA_VERSION,
    CatalogBusyError,
    CatalogMissingError,
    open_read,
    open_write,
)
from glutewake.store.datadir import DataDir


def test_read_without_catalog_is_a_clear_error(tmp_path: Path) -> None:
    with (
        pytest.raises(CatalogMissingError, match="glutewake process"),
        open_read(DataDir(tmp_path)),
    ):
        pass


def test_migrations_are_applied_once(tmp_path: Path) -> None:
    d = DataDir(tmp_path)
    for _ in range(2):
        with open_write(d) as con:
            rows = con.execute("SELECT version FROM schema_version").fetchall()
    assert rows == [(v,) for v in range(1, SCHEMA_VERSION + 1)]
    assert oct(d.catalog.stat().st_mode & 0o777) == "0o600"


def test_bookkeeping_round_trip_and_errors(tmp_path: Path) -> None:
    d = DataDir(tmp_path)
    with open_write(d) as con:
        upsert_participant(con, "P01", "Europe/Berlin", goal_sitting_min=480)
        upsert_participant(con, "P01", "Europe/Berlin", notes="second call keeps the goal")
        set_phase(con, "P01", 1, dt.date(2026, 3, 1))
        set_phase(con, "P01", 2, dt.date(2026, 4, 1))
        log_symptoms(con, "P01", dt.date(2026, 3, 2), lower_back=4, hip=2)
        with pytest.raises(BookkeepingError, match="IANA"):
            upsert_participant(con, "P02", "Mars/Olympus")
        with pytest.raises(BookkeepingError, match="does not exist"):
            set_phase(con, "nobody", 1, dt.date(2026, 3, 1))
        with pytest.raises(BookkeepingError, match="0-10"):
            log_symptoms(con, "P01", dt.date(2026, 3, 2), knee=11)
        with pytest.raises(BookkeepingError, match="phase must be"):
            set_phase(con, "P01", 4, dt.date(2026, 3, 1))
    with open_read(d) as con:
        assert con.execute("SELECT goal_sitting_min, notes FROM participants").fetchall() == [
            (480.0, "second call keeps the goal")
        ]
        assert con.execute("SELECT count(*) FROM phases").fetchone() == (2,)


HOLD_WRITE = textwrap.dedent(
    """
    import sys, time
    from glutewake.store.datadir import DataDir
    from glutewake.store.catalog import open_write
    with open_write(DataDir(sys.argv[1])) as con:
        print("holding", flush=True)
        time.sleep(float(sys.argv[2]))
    """
)


def _hold_writer(tmp_path: Path, seconds: float) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD_WRITE, str(tmp_path), str(seconds)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "holding"
    return proc


def test_reader_retries_while_a_writer_holds_the_file_briefly(tmp_path: Path) -> None:
    d = DataDir(tmp_path)
    with open_write(d):
        pass
    proc = _hold_writer(tmp_path, 0.8)
    t0 = time.monotonic()
    with open_read(d, timeout_s=10) as con:
        assert con.execute("SELECT count(*) FROM participants").fetchone() == (0,)
    waited = time.monotonic() - t0
    proc.communicate(timeout=10)
    assert waited > 0.3  # it really had to wait for the writer to let go


def test_reader_gives_up_with_a_clear_error(tmp_path: Path) -> None:
    d = DataDir(tmp_path)
    with open_write(d):
        pass
    proc = _hold_writer(tmp_path, 5)
    try:
        with (
            # names the holder and what it does
            pytest.raises(CatalogBusyError, match=rf"process {proc.pid} \(.*\) is writing it"),
            open_read(d, timeout_s=0.5),
        ):
            pass
    finally:
        proc.kill()
        proc.communicate()


def test_reading_an_older_catalog_migrates_it_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from glutewake.store import catalog

    d = DataDir(tmp_path)
    with monkeypatch.context() as m:  # an older glutewake that knew only migration 1
        m.setattr(catalog, "MIGRATIONS", catalog.MIGRATIONS[:1])
        m.setattr(catalog, "SCHEMA_VERSION", 1)
        with open_write(d):
            pass
    with open_read(d) as con:
        versions = [
            v for (v,) in con.execute("SELECT version FROM schema_version ORDER BY 1").fetchall()
        ]
    assert versions == list(range(1, SCHEMA_VERSION + 1))
