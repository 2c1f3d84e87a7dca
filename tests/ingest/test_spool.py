"""The spool keeps every record exactly once, survives crashes, and is private to its owner."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import numpy as np
import pytest

from glutewake.devices.base import RecordKind
from glutewake.store.spool import (
    JOURNAL_NAME,
    SpoolError,
    SpoolInfo,
    SpoolWriter,
    concat_records,
    list_segments,
    read_segment,
)

INFO = SpoolInfo("P01", "AA-BB", "glutewake-open", {"emg": {"fs_hz": 1000}}, {"exercise": "bridge"})
UUID = "0000aaaa-0000-1000-8000-00805f9b34fb"


def _read_all(folder: Path) -> tuple[np.ndarray, list[bytes], np.ndarray]:
    parts = [read_segment(p) for p in list_segments(folder)]
    recs = concat_records(p[1] for p in parts)
    seq = np.concatenate([p[2] for p in parts]) if parts else np.empty(0, np.int64)
    return recs.t_us, recs.payload, seq


def test_round_trip_and_metadata(tmp_path: Path) -> None:
    with SpoolWriter(tmp_path, INFO, segment_bytes=50) as w:
        for i in range(100):
            w.append(1_000 + i, RecordKind.NOTIFY, UUID, bytes([i, i + 1]), conn_id=1)
    t_us, payload, seq = _read_all(tmp_path)
    assert list(t_us) == [1_000 + i for i in range(100)]
    assert payload == [bytes([i, i + 1]) for i in range(100)]
    assert list(seq) == list(range(100))
    assert len(list_segments(tmp_path)) > 1  # rotated by size
    info, _, _ = read_segment(list_segments(tmp_path)[0])
    assert info == INFO
    assert not (tmp_path / JOURNAL_NAME).exists()


def test_files_are_owner_only(tmp_path: Path) -> None:
    with SpoolWriter(tmp_path, INFO) as w:
        w.append(1, RecordKind.NOTIFY, UUID, b"x", 1)
    for path in list_segments(tmp_path):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_crash_recovery_keeps_journal_and_drops_torn_record(tmp_path: Path) -> None:
    w = SpoolWriter(tmp_path, INFO, journal_fsync_s=0.0)
    for i in range(10):
        w.append(100 + i, RecordKind.NOTIFY, UUID, b"abc", 1)
    # simulate a hard kill mid-write: half a record at the journal's end, no close()
    os.write(w._fd, b"\x01\x02\x03")
    os.close(w._fd)
    (tmp_path / "seg-stale.parquet.tmp").write_bytes(b"garbage")
    w2 = SpoolWriter(tmp_path, INFO)
    assert w2.next_seq == 10
    assert not list(tmp_path.glob("*.tmp"))
    w2.append(200, RecordKind.NOTIFY, UUID, b"new", 2)
    w2.close()
    t_us, payload, seq = _read_all(tmp_path)
    assert list(t_us) == [*range(100, 110), 200]
    assert list(seq) == list(range(11))
    assert payload[-1] == b"new"


def test_corrupt_segment_is_named(tmp_path: Path) -> None:
    bad = tmp_path / "seg-00000000000000001-000000000000.parquet"
    bad.write_bytes(b"PAR1 not really")
    with pytest.raises(SpoolError, match=bad.name):
        read_segment(bad)
