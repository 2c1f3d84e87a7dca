"""The decoded-sample store: window reads, row-group pruning, channel alignment, old files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pyarrow.parquet as pq
import pytest

from glutewake.store import samples as sample_store
from glutewake.store.datadir import DataDir

DAY_US = 86_400_000_000
#: 2026-04-06 20:00 UTC
T0_US = 1_775_505_600_000_000


@pytest.fixture
def data_dir(tmp_path: Path) -> DataDir:
    return DataDir(tmp_path / "data").create()


def _write(data_dir: DataDir, name: str, t_us: np.ndarray, channels: tuple[str, ...]) -> None:
    values = np.stack([np.sin(t_us / 1e6 + k) for k in range(len(channels))], axis=1)
    sample_store.write_recording(
        data_dir,
        stream="acc",
        participant_id="P01",
        recording_name=name,
        t_us=t_us,
        values=values,
        channels=channels,
        sample_seq=np.arange(t_us.size, dtype=np.int64),
    )


def test_a_window_read_returns_exactly_the_samples_inside_it(data_dir: DataDir) -> None:
    # 10 Hz for 12 h across UTC midnight: two files, several row groups each
    t = T0_US + np.arange(432_000, dtype=np.int64) * 100_000
    _write(data_dir, "dev-c1", t, ("x", "y", "z"))
    files = sorted(data_dir.samples.rglob("*.parquet"))
    assert len(files) == 2
    assert pq.ParquetFile(files[0]).metadata.num_row_groups > 1
    lo, hi = T0_US + 3_600_000_000 + 50, T0_US + 9 * 3_600_000_000 + 7
    block = sample_store.read_samples(
        data_dir, stream="acc", participant_id="P01", start_us=lo, end_us=hi
    )
    assert block is not None
    inside = (t >= lo) & (t < hi)
    np.testing.assert_array_equal(block.t_us, t[inside])
    assert block.channels == ("x", "y", "z")
    np.testing.assert_array_equal(
        block.values[:, 1], np.sin(t[inside] / 1e6 + 1).astype(np.float32)
    )
    assert block.values.dtype == np.float32 and block.t_us.dtype == np.int64


def test_row_groups_outside_the_window_are_not_read(
    data_dir: DataDir, monkeypatch: pytest.MonkeyPatch
) -> None:
    t = T0_US + 4 * 3_600_000_000 + np.arange(400_000, dtype=np.int64) * 100_000  # one UTC day
    _write(data_dir, "dev-c1", t, ("x", "y", "z"))
    read: list[list[int]] = []
    original = pq.ParquetFile.read_row_groups

    def spy(self: pq.ParquetFile, groups: list[int], **kw: object) -> object:
        read.append(list(groups))
        return original(self, groups, **kw)

    monkeypatch.setattr(pq.ParquetFile, "read_row_groups", spy)
    block = sample_store.read_samples(
        data_dir, stream="acc", participant_id="P01", start_us=int(t[0]), end_us=int(t[1000])
    )
    assert block is not None and block.t_us.size == 1000
    assert read == [[0]]
    assert (
        sample_store.read_samples(
            data_dir, stream="acc", participant_id="P01", start_us=0, end_us=int(t[0])
        )
        is None
    )


def test_files_with_different_channels_are_aligned_by_name(data_dir: DataDir) -> None:
    t1 = T0_US + np.arange(100, dtype=np.int64) * 100_000
    t2 = t1[-1] + 100_000 + np.arange(50, dtype=np.int64) * 100_000
    _write(data_dir, "a-c1", t1, ("x", "y", "z"))
    _write(data_dir, "b-c1", t2, ("x", "y", "z", "temp"))
    block = sample_store.read_samples(
        data_dir, stream="acc", participant_id="P01", start_us=T0_US, end_us=T0_US + DAY_US
    )
    assert block is not None
    assert block.channels == ("x", "y", "z", "temp")
    np.testing.assert_array_equal(block.t_us, np.concatenate([t1, t2]))
    assert np.isnan(block.values[:100, 3]).all() and np.isfinite(block.values[100:]).all()


def test_overlapping_recordings_keep_time_strictly_increasing(data_dir: DataDir) -> None:
    t1 = T0_US + np.arange(100, dtype=np.int64) * 100_000
    _write(data_dir, "a-c1", t1, ("x", "y", "z"))
    _write(data_dir, "a-c2", t1[50:] + 50_000, ("x", "y", "z"))  # interleaves with the first
    block = sample_store.read_samples(
        data_dir, stream="acc", participant_id="P01", start_us=T0_US, end_us=T0_US + DAY_US
    )
    assert block is not None
    assert np.all(np.diff(block.t_us) > 0)
    np.testing.assert_array_equal(block.t_us[:100], t1)


def test_files_written_by_earlier_versions_still_read(data_dir: DataDir) -> None:
    # earlier versions wrote with polars' defaults (dictionaries, no delta encoding)
    t = T0_US + np.arange(1000, dtype=np.int64) * 100_000
    rel = data_dir.samples / "stream=acc/participant_id=P01/date=2026-04-06/old-c1.parquet"
    rel.parent.mkdir(parents=True)
    x = np.linspace(-1, 1, t.size, dtype=np.float32)
    pl.DataFrame(
        {"t_us": t, "sample_seq": np.arange(t.size), "x": x, "y": x, "z": x}
    ).write_parquet(rel, compression="zstd", statistics=True)
    block = sample_store.read_samples(
        data_dir, stream="acc", participant_id="P01", start_us=int(t[10]), end_us=int(t[20])
    )
    assert block is not None
    np.testing.assert_array_equal(block.t_us, t[10:20])
    np.testing.assert_array_equal(block.values[:, 0], x[10:20])


def test_a_corrupt_sample_file_is_named_in_the_error(data_dir: DataDir) -> None:
    t = T0_US + np.arange(1000, dtype=np.int64) * 100_000
    _write(data_dir, "dev-c1", t, ("x", "y", "z"))
    [path] = list(data_dir.samples.rglob("*.parquet"))
    path.write_bytes(path.read_bytes()[:-100])  # truncated: footer gone
    with pytest.raises(sample_store.SampleFileError, match=r"dev-c1\.parquet: not a readable"):
        sample_store.read_samples(
            data_dir, stream="acc", participant_id="P01", start_us=T0_US, end_us=T0_US + DAY_US
        )


def test_a_sample_file_without_time_column_is_named_in_the_error(data_dir: DataDir) -> None:
    rel = data_dir.samples / "stream=acc/participant_id=P01/date=2026-04-06/odd-c1.parquet"
    rel.parent.mkdir(parents=True)
    pl.DataFrame({"x": [1.0, 2.0]}).write_parquet(rel)
    with pytest.raises(sample_store.SampleFileError, match=r"odd-c1\.parquet: .*no t_us column"):
        sample_store.read_samples(
            data_dir, stream="acc", participant_id="P01", start_us=T0_US, end_us=T0_US + DAY_US
        )


def test_a_flipped_bit_in_a_sample_page_is_an_error_never_a_changed_sample(
    data_dir: DataDir,
) -> None:
    import random

    t_us = T0_US + np.arange(20_000, dtype=np.int64) * 20_000
    _write(data_dir, "dev-c1-acc", t_us, ("x", "y", "z"))
    [path] = (data_dir.root / "samples").rglob("*.parquet")
    clean = path.read_bytes()
    meta = pq.ParquetFile(path).metadata
    chunks = [meta.row_group(0).column(c) for c in range(meta.num_columns)]
    pages = [
        pos
        for c in chunks
        for pos in range(c.data_page_offset, c.data_page_offset + c.total_compressed_size)
    ]
    ref = sample_store.read_samples(
        data_dir, stream="acc", participant_id="P01", start_us=T0_US, end_us=T0_US + DAY_US
    )
    assert ref is not None
    errors = 0
    for pos in random.Random(3).sample(pages, 120):
        damaged = bytearray(clean)
        damaged[pos] ^= 1 << (pos % 8)
        path.write_bytes(bytes(damaged))
        try:
            got = sample_store.read_samples(
                data_dir, stream="acc", participant_id="P01", start_us=T0_US, end_us=T0_US + DAY_US
            )
        except sample_store.SampleFileError as exc:
            assert path.name in str(exc)
            errors += 1
            continue
        # a flip the reader cannot see (a page header's unused statistics) changes nothing
        assert got is not None and np.array_equal(got.t_us, ref.t_us)
        assert np.array_equal(got.values, ref.values)
    assert errors > 100
