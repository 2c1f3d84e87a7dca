"""Spool and samples in an fsspec store (object-store stand-in: fsspec's memory filesystem)."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import fsspec
import pytest
from distributed import LocalCluster

from glutewake.pipeline import process
from glutewake.pipeline.parallel import TaskRunner
from glutewake.store.catalog import open_read
from glutewake.store.datadir import DataDir
from glutewake.store.storage import StorageError, Store
from tests.test_cluster import TABLES
from tests.test_pipeline import _table_rows


def _memory_copy(source: DataDir, catalog_root: Path) -> DataDir:
    """The study's spool uploaded to a fresh memory:// store; the catalog folder stays local."""
    url = f"memory://glutewake-{uuid.uuid4().hex}"
    fs = fsspec.filesystem("memory")
    for f in sorted(source.spool.rglob("*.parquet")):
        fs.pipe_file(f"{url}/{f.relative_to(source.root).as_posix()}", f.read_bytes())
    data_dir = DataDir(catalog_root, storage=url).create()
    shutil.copy(source.catalog, data_dir.catalog)  # the bookkeeping (participants, devices)
    return data_dir


def test_process_reads_and_writes_an_object_store(
    small_study: tuple[DataDir, object], serial_catalog: DataDir, tmp_path: Path
) -> None:
    source, _ = small_study
    data_dir = _memory_copy(source, tmp_path / "catalog")
    summary = process(data_dir)
    assert summary.failures == [] and summary.participant_days == 1
    for table, order in TABLES:
        assert _table_rows(data_dir, table, order) == _table_rows(serial_catalog, table, order)
    # the samples went to the store, none to the local folder
    store = data_dir.store
    written = store.glob("samples/stream=*/participant_id=*/date=*/*.parquet")
    assert {p.split("/")[1] for p in written} == {"stream=acc", "stream=emg"}
    assert not list(data_dir.samples.rglob("*.parquet"))
    # spool_files records store-relative paths, and a second run finds nothing new
    with open_read(data_dir) as con:
        paths = [p for (p,) in con.execute("SELECT path FROM spool_files").fetchall()]
    assert paths and all(p.startswith("spool/participant_id=P01/device=") for p in paths)
    assert process(data_dir).spool_files == 0


def test_dask_workers_share_the_store(
    small_study: tuple[DataDir, object], serial_catalog: DataDir, tmp_path: Path
) -> None:
    source, _ = small_study
    data_dir = _memory_copy(source, tmp_path / "catalog")
    # thread workers share this process's memory filesystem, as machines share a bucket
    with (
        LocalCluster(n_workers=2, processes=False, dashboard_address=":0") as cluster,
        TaskRunner(scheduler=cluster.scheduler_address) as runner,
    ):
        summary = process(data_dir, runner=runner)
    assert summary.failures == []
    for table, order in TABLES:
        assert _table_rows(data_dir, table, order) == _table_rows(serial_catalog, table, order)


def test_store_writes_whole_files_and_names_bad_urls(tmp_path: Path) -> None:
    local = Store.of(tmp_path)
    local.write_bytes("a/b/c.bin", b"xyz")
    assert (tmp_path / "a/b/c.bin").read_bytes() == b"xyz"
    assert not list(tmp_path.rglob("*.tmp"))
    assert local.glob("a/*/*.bin") == ["a/b/c.bin"] and local.size("a/b/c.bin") == 3
    assert oct((tmp_path / "a/b/c.bin").stat().st_mode & 0o777) == "0o600"
    local.remove("a/b/c.bin")
    local.remove("a/b/c.bin")
    assert local.glob("a/*/*.bin") == []
    assert Store.of(f"file://{tmp_path}").local
    with pytest.raises(StorageError, match="nosuchproto://x"):
        Store.of("nosuchproto://x").glob("*")
