"""A failing task is retried, then recorded and skipped; the next run retries it."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from glutewake.cli import main
from glutewake.pipeline import emg_sessions, process
from glutewake.pipeline import sitting as pipeline
from glutewake.pipeline.parallel import TaskError, TaskFailure, TaskRunner
from glutewake.store.catalog import open_read
from glutewake.store.datadir import DataDir
from tests.test_pipeline import _table_rows


@pytest.fixture()
def study_copy(small_study: tuple[DataDir, object], tmp_path: Path) -> DataDir:
    source, _ = small_study
    data_dir = DataDir(tmp_path / "study")
    shutil.copytree(source.root, data_dir.root)
    return data_dir


@pytest.fixture()
def reference(serial_catalog: DataDir) -> DataDir:
    return serial_catalog


def _failures(data_dir: DataDir) -> list[tuple[Any, ...]]:
    with open_read(data_dir) as con:
        return con.execute(
            "SELECT task, task_key, participant_id, error, attempts, runs FROM task_failures"
        ).fetchall()


def _count(data_dir: DataDir, table: str) -> int:
    with open_read(data_dir) as con:
        return int(con.execute(f"SELECT count(*) FROM {table}").fetchone()[0])  # type: ignore[index]


def test_failed_day_is_recorded_skipped_and_retried_next_run(
    study_copy: DataDir, reference: DataDir, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []

    def broken_day(data_dir: DataDir, pid: str, *args: Any) -> bool:
        calls.append(pid)
        raise OSError("sample file unreadable")

    monkeypatch.setattr(pipeline, "_posture_day", broken_day)
    summary = process(study_copy, runner=TaskRunner(retries=2))
    assert len(calls) == 3  # first attempt and two retries
    [(task, key, error)] = summary.failures
    assert task == "sitting" and key.startswith("P01/") and key.endswith("/2026-03-27")
    assert error == "OSError: sample file unreadable"
    # everything else was written
    assert _count(study_copy, "daily_sitting") == 0
    assert _count(study_copy, "exercise_sessions") == _count(reference, "exercise_sessions") > 0
    assert _failures(study_copy) == [("sitting", key, "P01", error, 3, 1)]

    # nothing new in the spool, but the failed day is retried (and fails again)
    summary = process(study_copy, runner=TaskRunner(retries=0))
    assert summary.spool_files == 0 and summary.retried == 1
    assert _failures(study_copy) == [("sitting", key, "P01", error, 1, 2)]

    monkeypatch.undo()
    summary = process(study_copy)
    assert summary.failures == [] and summary.retried == 1 and summary.participant_days == 1
    assert _failures(study_copy) == []
    for table in ("daily_sitting", "sitting_bouts", "posture_periods", "exercise_sessions"):
        assert _table_rows(study_copy, table, "ALL") == _table_rows(reference, table, "ALL")
    # and then there is nothing left to do
    summary = process(study_copy)
    assert summary.retried == 0 and summary.participant_days == 0


def test_failed_emg_recording_is_retried_from_the_catalog(
    study_copy: DataDir, reference: DataDir, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_task = emg_sessions.emg_task

    def broken(data_dir: DataDir, rec: Any, *args: Any) -> Any:
        if rec.exercise != emg_sessions.MVC_LABEL:
            raise ValueError("detector blew up")
        return real_task(data_dir, rec, *args)

    monkeypatch.setattr(emg_sessions, "emg_task", broken)
    summary = process(study_copy)
    assert [f[0] for f in summary.failures] == ["emg"]
    assert _count(study_copy, "exercise_sessions") == 0
    assert _count(study_copy, "mvc_references") == _count(reference, "mvc_references") > 0
    monkeypatch.undo()
    summary = process(study_copy)
    assert summary.failures == [] and summary.exercise_sessions == 1
    for table in ("exercise_sessions", "contractions"):
        assert _table_rows(study_copy, table, "ALL") == _table_rows(reference, table, "ALL")
    assert _failures(study_copy) == []


def test_a_task_that_fails_once_is_retried_within_the_run(
    study_copy: DataDir, reference: DataDir, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_day = pipeline._posture_day
    calls: list[int] = []

    def flaky(*args: Any) -> bool:
        calls.append(1)
        if len(calls) == 1:
            raise TimeoutError("shared filesystem hiccup")
        return real_day(*args)

    monkeypatch.setattr(pipeline, "_posture_day", flaky)
    summary = process(study_copy)  # default: one retry
    assert summary.failures == [] and len(calls) == 2
    assert _table_rows(study_copy, "daily_sitting", "ALL") == _table_rows(
        reference, "daily_sitting", "ALL"
    )


def test_on_error_stop_writes_nothing(
    study_copy: DataDir, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken_day(*args: Any) -> bool:
        raise OSError("sample file unreadable")

    monkeypatch.setattr(pipeline, "_posture_day", broken_day)
    with pytest.raises(TaskError, match=r"task P01/.*/2026-03-27 failed: OSError"):
        process(study_copy, runner=TaskRunner(retries=0, on_error="stop"))
    assert _count(study_copy, "recordings") == 0 and _count(study_copy, "spool_files") == 0


def test_cli_reports_failures_and_exits_1(
    study_copy: DataDir, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def broken_day(*args: Any) -> bool:
        raise OSError("sample file unreadable")

    monkeypatch.setattr(pipeline, "_posture_day", broken_day)
    code = main(["process", "--data", str(study_copy.root), "-q", "--retries", "0"])
    err = capsys.readouterr().err
    assert code == 1
    assert "error: sitting task P01/" in err and "OSError: sample file unreadable" in err
    assert "1 task(s) failed" in err and "task_failures" in err


def _fails_until_marker(marker: str) -> str:
    path = Path(marker)
    if not path.exists():
        path.write_text("tried")
        raise RuntimeError("first attempt fails")
    return "ok"


def _dies_until_marker(marker: str) -> str:
    path = Path(marker)
    if not path.exists():
        path.write_text("died")
        os._exit(3)  # a worker killed mid-task (e.g. by the out-of-memory killer)
    return "survived"


def _always_fails(value: int) -> int:
    raise ValueError(f"bad value {value}")


def _square(value: int) -> int:
    return value * value


def test_pool_retries_and_reports_failures_in_order(tmp_path: Path) -> None:
    runner = TaskRunner(workers=2, retries=1)
    out = runner.map(
        _fails_until_marker, [(str(tmp_path / "a"),), (str(tmp_path / "b"),)], ["a", "b"]
    )
    assert out == ["ok", "ok"]
    done: list[int] = []
    out2 = TaskRunner(workers=2, retries=0).map(
        _always_fails, [(1,), (2,)], ["one", "two"], done.append
    )
    assert [type(o) for o in out2] == [TaskFailure, TaskFailure]
    assert [o.key for o in out2 if isinstance(o, TaskFailure)] == ["one", "two"]
    assert out2[1].error == "ValueError: bad value 2"  # type: ignore[union-attr]
    assert "_always_fails" in out2[1].traceback  # type: ignore[union-attr]
    assert done == [1, 1]
    assert TaskRunner(workers=2).map(_square, [(k,) for k in range(5)], list("abcde")) == [
        0,
        1,
        4,
        9,
        16,
    ]


def test_a_dead_worker_is_replaced_and_its_task_retried(tmp_path: Path) -> None:
    with TaskRunner(workers=2, retries=1) as runner:
        marker = str(tmp_path / "m")
        out = runner.map(_dies_until_marker, [(marker,), (marker,)], ["x", "y"])
        assert out == ["survived", "survived"]
        # the replacement pool keeps working for later stages
        assert runner.map(_square, [(3,), (4,)], ["a", "b"]) == [9, 16]


def test_run_tasks_raises_the_task_s_own_error() -> None:
    from glutewake.pipeline.parallel import run_tasks

    with pytest.raises(ValueError, match="bad value 2"):
        run_tasks(_always_fails, [(2,)], 1, lambda n: None)
    with pytest.raises(ValueError, match="bad value"):
        run_tasks(_always_fails, [(1,), (2,)], 2, lambda n: None)


def test_runner_rejects_bad_settings() -> None:
    with pytest.raises(ValueError, match="on_error"):
        TaskRunner(on_error="ignore")
    with pytest.raises(ValueError, match="one key per task"):
        TaskRunner().map(_square, [(1,)], [])
