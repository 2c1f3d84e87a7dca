"""The process job on a 2-worker Dask LocalCluster gives the same catalog as serial."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from distributed import LocalCluster

from glutewake.pipeline import process
from glutewake.pipeline.parallel import TaskFailure, TaskRunner
from glutewake.store.datadir import DataDir
from tests.test_pipeline import _table_rows

TABLES = (
    ("recordings", "recording_id"),
    ("daily_sitting", "ALL"),
    ("sitting_bouts", "ALL"),
    ("posture_periods", "ALL"),
    ("mvc_references", "ALL"),
    ("exercise_sessions", "ALL"),
    ("contractions", "ALL"),
    ("qc", "ALL"),
    ("packet_errors", "ALL"),
)


@pytest.fixture(scope="module")
def cluster() -> object:
    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
    ) as local:
        yield local


def _double(value: int) -> int:
    return 2 * value


def _explode(value: int) -> int:
    raise KeyError(value)


def test_dask_cluster_gives_the_same_catalog_as_serial(
    small_study: tuple[DataDir, object],
    serial_catalog: DataDir,
    cluster: LocalCluster,
    tmp_path: Path,
) -> None:
    source, _ = small_study
    on_cluster = DataDir(tmp_path / "dask")
    shutil.copytree(source.root, on_cluster.root)
    with TaskRunner(scheduler=cluster.scheduler_address) as runner:
        summary = process(on_cluster, runner=runner)
        # the tasks really ran on the cluster's workers
        assert runner._client is not None
        assert len(runner._client.scheduler_info()["workers"]) == 2
    assert summary.failures == [] and summary.participant_days == 1
    for table, order in TABLES:
        expected = _table_rows(serial_catalog, table, order)
        assert _table_rows(on_cluster, table, order) == expected, table


def test_dask_failures_come_back_named_and_in_order(cluster: LocalCluster) -> None:
    with TaskRunner(scheduler=cluster.scheduler_address, retries=1) as runner:
        done: list[int] = []
        out = runner.map(_double, [(1,), (2,), (3,)], ["a", "b", "c"], done.append)
        assert out == [2, 4, 6] and done == [1, 1, 1]
        out = runner.map(_explode, [(7,)], ["seven"])
    [failure] = out
    assert isinstance(failure, TaskFailure)
    assert failure.key == "seven" and failure.error == "KeyError: 7" and failure.attempts == 2


def test_unreachable_scheduler_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from glutewake.cli import main
    from glutewake.pipeline import parallel

    monkeypatch.setattr(parallel, "CONNECT_TIMEOUT_S", 1.0)
    data = DataDir(tmp_path / "d").create()
    (data.spool / "participant_id=P" / "device=D").mkdir(parents=True)
    with pytest.raises(SystemExit) as exc:
        main(["process", "--data", str(data.root), "--scheduler", "tcp://127.0.0.1:9", "-q"])
    err = capsys.readouterr().err
    assert exc.value.code == 2
    assert "cannot reach the Dask scheduler at tcp://127.0.0.1:9" in err
    assert len(err.strip().splitlines()) == 1


def _malloc_env() -> tuple[str | None, ...]:
    import os

    names = ("MALLOC_MMAP_MAX_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_ARENA_MAX")
    return tuple(os.environ.get(name) for name in names)


def _worker_settings() -> tuple[bool, str]:
    import dask

    return (
        bool(dask.config.get("distributed.worker.profile.enabled")),
        str(dask.config.get("distributed.admin.tick.interval")),
    )


def test_local_cluster_workers_start_keeping_freed_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    # Dask's nanny alone would set MALLOC_TRIM_THRESHOLD_, which makes every large array cost
    # fresh page faults; the local cluster glutewake starts also switches mmap off, so freed
    # memory is reused. (A nanny also sets these in the parent's own environment, as an
    # earlier cluster in this test process did.)
    monkeypatch.delenv("MALLOC_TRIM_THRESHOLD_", raising=False)
    monkeypatch.delenv("MALLOC_MMAP_MAX_", raising=False)
    monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)
    with TaskRunner(workers=1, scheduler="local") as runner:
        assert runner.map(_malloc_env, [()], ["env"]) == [("0", str(2**31 - 1), "1")]
        # and without the statistical profiler (the GIL every 10 ms) or 50 loop checks a second
        assert runner.map(_worker_settings, [()], ["settings"]) == [(False, "200ms")]
