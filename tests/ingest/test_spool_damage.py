"""Fault injection into the spool: every damaged journal record and segment page is detected,
counted and reported; everything else is recovered exactly."""

from __future__ import annotations

import os
import random
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from glutewake.devices.base import RawRecords, RecordKind
from glutewake.ingest.status import stream_status
from glutewake.store import journal
from glutewake.store.datadir import DataDir
from glutewake.store.quarantine import QUARANTINE_DIR, DamageReport
from glutewake.store.spool import (
    JOURNAL_NAME,
    ROWS_PER_GROUP,
    SpoolError,
    SpoolInfo,
    SpoolWriter,
    concat_records,
    list_segments,
    read_segment,
    read_segment_parts,
    spool_folders,
    write_segment,
)

INFO = SpoolInfo("P01", "AA:BB", "glutewake-open", {"emg": {"fs_hz": 1000}}, {})
UUID = "47570002-6f70-656e-2d65-6d672d696d75"


def _payload(i: int) -> bytes:
    return bytes((i * 7 + k) % 256 for k in range(20 + i % 13))


def _crashed_journal(folder: Path, n: int) -> bytes:
    """A journal of ``n`` records left by a collector killed before rotating; its bytes."""
    w = SpoolWriter(folder, INFO, journal_fsync_s=0.0)
    for i in range(n):
        w.append(1_000_000 + i * 50_000, RecordKind.NOTIFY, UUID, _payload(i), 1)
    os.close(w._fd)  # a hard kill: no close(), no rotation
    return (folder / JOURNAL_NAME).read_bytes()


def _spooled(folder: Path) -> tuple[list[int], list[bytes]]:
    parts = [read_segment(p) for p in list_segments(folder)]
    records = concat_records(p[1] for p in parts)
    seq = [int(s) for p in parts for s in p[2]]
    return seq, records.payload


def _reports(folder: Path) -> list[DamageReport]:
    return [
        DamageReport.from_json(p.read_bytes())
        for p in sorted((folder / QUARANTINE_DIR).glob("*.json"))
    ]


def test_every_flipped_journal_byte_costs_exactly_its_record(tmp_path: Path) -> None:
    n = 12
    clean = _crashed_journal(tmp_path / "ref", n)
    starts = [0]
    for _ in range(n):
        start = starts[-1]
        _, _, _, _, uuid_len, payload_len = journal.HEADER.unpack_from(clean, start)
        starts.append(start + journal.HEADER.size + uuid_len + payload_len + journal.CRC.size)
    assert starts[-1] == len(clean)
    recovered = random.Random(4).sample(range(len(clean)), 25)
    for pos in range(len(clean)):
        damaged = bytearray(clean)
        damaged[pos] ^= 1 << (pos % 8)
        hit = next(k for k in range(n) if starts[k] <= pos < starts[k + 1])
        survivors = [k for k in range(n) if k != hit]
        read = journal.read_journal_bytes(bytes(damaged), seq_floor=-1)
        assert read.seq.tolist() == survivors, pos
        assert read.records.payload == [_payload(k) for k in survivors], pos
        [stretch] = read.damage
        # a record's loss is counted exactly from the numbers around it; the last one's
        # follower is unknown
        assert stretch.records_lost == (1 if hit < n - 1 else None), pos
        if pos not in recovered:
            continue
        # the collector's start-up recovery, end to end, at a sample of the positions
        folder = tmp_path / f"flip{pos}"
        folder.mkdir()
        (folder / JOURNAL_NAME).write_bytes(damaged)
        writer = SpoolWriter(folder, INFO)
        writer.close()
        seq, payloads = _spooled(folder)
        assert seq == survivors and payloads == [_payload(k) for k in survivors], pos
        [report] = _reports(folder)
        assert report.kind == "journal" and report.quarantined
        [part] = report.parts
        assert part.records_lost == stretch.records_lost
        assert part.start_us == (1_000_000 + (hit - 1) * 50_000 if hit else None)
        # the damaged journal is kept, byte for byte, beside its report
        assert (folder / QUARANTINE_DIR / report.file).read_bytes() == bytes(damaged)
        assert writer.next_seq == (n if hit < n - 1 else n - 1)


def test_journal_resynchronises_past_a_damaged_stretch(tmp_path: Path) -> None:
    clean = _crashed_journal(tmp_path, 40)
    damaged = bytearray(clean)
    damaged[300:700] = bytes(random.Random(1).randrange(256) for _ in range(400))
    (tmp_path / JOURNAL_NAME).write_bytes(damaged)
    contents = journal.read_journal(tmp_path / JOURNAL_NAME)
    [stretch] = contents.damage
    lost = set(range(40)) - set(contents.seq.tolist())
    assert stretch.seq_before is not None and stretch.seq_after is not None
    assert lost == set(range(stretch.seq_before + 1, stretch.seq_after))
    assert stretch.records_lost == len(lost) > 0
    assert contents.seq.tolist() == sorted(contents.seq.tolist())
    assert contents.records.payload == [_payload(int(s)) for s in contents.seq]


def test_torn_tail_is_reported_as_a_torn_write(tmp_path: Path) -> None:
    clean = _crashed_journal(tmp_path, 5)
    (tmp_path / JOURNAL_NAME).write_bytes(clean + clean[:20])
    SpoolWriter(tmp_path, INFO).close()
    assert _spooled(tmp_path)[0] == [0, 1, 2, 3, 4]
    [report] = _reports(tmp_path)
    assert "torn record" in report.parts[0].reason


def _segment(folder: Path, n: int) -> tuple[Path, RawRecords]:
    rng = np.random.default_rng(5)
    records = RawRecords(
        t_us=1_700_000_000_000_000 + np.arange(n, dtype=np.int64) * 20_000,
        kind=np.zeros(n, np.int8),
        char_uuid=[UUID] * n,
        payload=[rng.integers(0, 256, 90, dtype=np.uint8).tobytes() for _ in range(n)],
        conn_id=np.ones(n, np.int64),
    )
    return write_segment(folder, INFO, records, np.arange(n)), records


def test_flipped_segment_bytes_are_detected_and_the_rest_recovered(tmp_path: Path) -> None:
    n = ROWS_PER_GROUP * 5 + 17
    path, records = _segment(tmp_path, n)
    data = path.read_bytes()
    truth = {
        s: (int(t), p) for s, t, p in zip(range(n), records.t_us, records.payload, strict=True)
    }
    whole = partial = harmless = 0
    positions = random.Random(2).sample(range(len(data)), 400)
    for pos in positions:
        damaged = bytearray(data)
        damaged[pos] ^= 1 << (pos % 8)
        try:
            got = read_segment_parts(pa.BufferReader(bytes(damaged)), path.name)
        except SpoolError:
            whole += 1  # footer, schema or metadata damaged: the file is moved aside
            continue
        # whatever was read is exactly what was written, and what was not read is reported
        assert got.info == INFO
        kept = {
            int(s): (int(t), p)
            for s, t, p in zip(got.seq, got.records.t_us, got.records.payload, strict=True)
        }
        assert all(truth[s] == v for s, v in kept.items()), pos
        assert len(kept) == len(got.seq)
        lost = sum(p.records_lost or 0 for p in got.damaged)
        assert len(kept) + lost == n, pos
        partial += bool(got.damaged)
        # a flip the reader cannot see (an unused bit of a page header's own statistics)
        # changed nothing it returns: every record, intact
        harmless += not got.damaged
        for part in got.damaged:  # the lost stretch comes from the footer statistics
            assert part.span_from == "row group statistics"
            assert part.start_us is not None and part.end_us is not None
            assert part.start_us >= int(records.t_us[0]) and part.end_us <= int(records.t_us[-1])
    assert whole + partial + harmless == len(positions)
    assert harmless < len(positions) // 20
    assert partial > whole  # most of a file is data pages: one row group lost, not the file


def test_segments_without_checksums_still_read(tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    path, records = _segment(tmp_path, 300)
    old = tmp_path / "seg-01700000000000000-000000000000.parquet"  # the old name: no CRC
    pq.write_table(pq.read_table(path), old, compression="zstd")  # no page checksums
    path.unlink()
    info, got, seq = read_segment(old)
    assert info == INFO and got.payload == records.payload and seq.tolist() == list(range(300))


def test_damaged_metadata_never_moves_data_to_another_participant(tmp_path: Path) -> None:
    path, _ = _segment(tmp_path, 10)
    data = path.read_bytes()
    at = data.rfind(b"P01")
    damaged = data[:at] + b"P02" + data[at + 3 :]
    with pytest.raises(SpoolError, match=r"footer|metadata"):
        read_segment_parts(pa.BufferReader(damaged), path.name)


def test_collector_starts_past_an_unreadable_last_segment(tmp_path: Path) -> None:
    w = SpoolWriter(tmp_path, INFO)
    for i in range(5):
        w.append(1_000 + i, RecordKind.NOTIFY, UUID, b"x", 1)
    w.close()
    [seg] = list_segments(tmp_path)
    seg.write_bytes(seg.read_bytes()[:100])  # truncated on disk
    w2 = SpoolWriter(tmp_path, INFO)  # must start, not raise
    w2.append(2_000, RecordKind.NOTIFY, UUID, b"y", 2)
    w2.close()
    assert not seg.exists() and (tmp_path / QUARANTINE_DIR / seg.name).exists()
    seq, payloads = _spooled(tmp_path)
    assert payloads == [b"y"] and seq[0] > 4  # never a record number used twice
    [report] = _reports(tmp_path)
    assert report.parts[0].part == "whole file" and report.parts[0].start_us == 1_000


def test_a_damaged_journal_record_shows_in_status_as_damage_and_loss(
    small_study: tuple[DataDir, object], tmp_path: Path
) -> None:
    source, _ = small_study
    data_dir = DataDir(tmp_path / "study")
    shutil.copytree(source.root, data_dir.root)
    folder = next(f for f in spool_folders(data_dir.spool) if "C0-FF-EE" in f.name)
    [before] = [r for r in stream_status(data_dir) if r["stream"] == "emg"]
    # the EMG board's records as a crashed collector leaves them: all in the journal
    parts = [read_segment(p) for p in list_segments(folder)]
    info = parts[0][0]
    lines = []
    for _, recs, seq in parts:
        for i in range(len(recs)):
            lines.append(
                journal.encode_record(
                    int(seq[i]),
                    int(recs.t_us[i]),
                    int(recs.conn_id[i]),
                    int(recs.kind[i]),
                    recs.char_uuid[i],
                    recs.payload[i],
                )
            )
    for path in list_segments(folder):
        path.unlink()
    hit = len(lines) // 2  # a data notification in the middle of the exercise session
    offset = sum(len(line) for line in lines[:hit]) + journal.HEADER.size + 40
    data = bytearray(b"".join(lines))
    data[offset] ^= 0x10
    (folder / JOURNAL_NAME).write_bytes(bytes(data))

    SpoolWriter(folder, info).close()  # a collector starting: the journal is recovered

    [after] = [r for r in stream_status(data_dir) if r["stream"] == "emg"]
    assert (after["damaged_parts"], after["damaged_records"]) == (1, 1)
    samples_per_packet = before["samples_received"] - after["samples_received"]
    assert samples_per_packet > 0  # the damaged packet's samples are missing ...
    # ... and counted as lost: the device's clock ran on through them
    assert after["samples_lost"] - before["samples_lost"] == samples_per_packet
    assert after["samples_expected"] == before["samples_expected"]
