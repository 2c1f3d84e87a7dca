"""The raw spool: every GATT record a collector saw, append-only, crash-safe, checked.

The spool is the record of truth: notification bytes exactly as received, the writes the host sent
(start/stop commands), reads, and connection events, each with its host receive time. Nothing is
decoded here, so a decoder fixed later can re-decode everything ever received.

Durability works in two layers, so that a hard kill loses at most ``journal_fsync_s`` (default 1 s)
of received data while the spool stays a small number of Parquet files:

* a **journal** (``journal.bin``, format in :mod:`glutewake.store.journal`) gets every record
  appended with a CRC-32, and is fsynced at least every ``journal_fsync_s``;
* every ``segment_s`` seconds or ``segment_bytes`` bytes the journal's records become a Parquet
  **segment**: streamed from the journal (nothing is held in memory meanwhile) into ``*.tmp`` in
  row groups of :data:`ROWS_PER_GROUP` records, fsynced, renamed with :func:`os.replace`, the
  directory fsynced, and only then is the journal emptied.

Every byte is checked on the way back. Journal records carry a CRC; a reader resynchronises past
a damaged one and counts what it lost. Segments carry Parquet page checksums (verified on every
read) and a CRC of their glutewake metadata, and are cut into row groups so that a damaged page
costs its row group, not the file: :func:`read_segment_parts` returns what is intact and
describes the rest. Damage is moved aside and reported (:mod:`glutewake.store.quarantine`),
never silently dropped. Segments written before checksums existed still read.

On start, stale ``*.tmp`` files are removed, a journal left by a crash is turned into a segment
(a torn last record or damaged records are reported, the journal moved aside, everything valid
kept) and record numbering resumes. Files are created readable by their owner only.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import os
import re
import struct
import time
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from glutewake import __version__
from glutewake.devices.base import RawRecords
from glutewake.store import journal as jr
from glutewake.store.private import FILE_MODE, private_dir
from glutewake.store.quarantine import DamagedPart, DamageReport, move_aside, new_report
from glutewake.store.storage import SEGMENT_GLOB, Store

log = logging.getLogger(__name__)
log.addHandler(logging.NullHandler())

SEGMENT_SUFFIX = ".parquet"
JOURNAL_NAME = "journal.bin"
SPOOL_SCHEMA = pa.schema(
    [
        pa.field("record_seq", pa.int64(), nullable=False),
        pa.field("t_us", pa.int64(), nullable=False),
        pa.field("kind", pa.int8(), nullable=False),
        pa.field("conn_id", pa.int64(), nullable=False),
        pa.field("char_uuid", pa.string(), nullable=False),
        pa.field("payload", pa.binary(), nullable=False),
    ]
)
#: records per Parquet row group of a segment: a damaged page costs at most this many records
#: (13 s of 1 kHz glutewake-open EMG, 9 min of a 52 Hz Polar accelerometer; files grow about
#: 3 %), and the footer's statistics still say which record numbers and times they were
ROWS_PER_GROUP = 256
#: ``pyarrow.parquet`` writer options of spool segments
SEGMENT_OPTIONS: dict[str, Any] = {"compression": "zstd", "write_page_checksum": True}
_DEFAULT_SEGMENT_US = 3_600_000_000
_META_PREFIX = "glutewake."
_META_CRC = f"{_META_PREFIX}metadata_crc32"
_SEGMENT_NAME = re.compile(r"seg-(\d+)-(\d+)(?:-f([0-9a-f]{8}))?\.parquet$")
_PARQUET_TAIL = struct.Struct("<I4s")


class SpoolError(RuntimeError):
    """A spool file that cannot be read (names the file and what was wrong)."""


@dataclass(frozen=True)
class SpoolInfo:
    """Who and what a spool folder belongs to, stored in every segment's Parquet metadata."""

    participant_id: str
    device_id: str
    profile: str
    config: dict[str, Any]
    labels: dict[str, Any]

    def to_metadata(self) -> dict[str, str]:
        meta = {
            f"{_META_PREFIX}participant_id": self.participant_id,
            f"{_META_PREFIX}device_id": self.device_id,
            f"{_META_PREFIX}profile": self.profile,
            f"{_META_PREFIX}config": json.dumps(self.config, sort_keys=True),
            f"{_META_PREFIX}labels": json.dumps(self.labels, sort_keys=True),
            f"{_META_PREFIX}version": __version__,
        }
        # the footer has no checksum of its own: a flipped bit in a participant id would
        # silently move the data to someone else
        meta[_META_CRC] = str(_metadata_crc(meta))
        return meta

    @classmethod
    def from_metadata(cls, meta: dict[bytes, bytes] | None, path: Path | str) -> SpoolInfo:
        if not meta:
            raise SpoolError(f"{path}: no glutewake metadata in the Parquet footer")
        try:
            text = {k.decode(): v.decode() for k, v in meta.items()}
        except UnicodeDecodeError as exc:
            raise SpoolError(f"{path}: spool metadata corrupt ({exc})") from exc
        if _META_CRC in text and text[_META_CRC] != str(_metadata_crc(text)):
            raise SpoolError(f"{path}: spool metadata fails its CRC (damaged footer)")
        try:
            return cls(
                participant_id=text[f"{_META_PREFIX}participant_id"],
                device_id=text[f"{_META_PREFIX}device_id"],
                profile=text[f"{_META_PREFIX}profile"],
                config=json.loads(text[f"{_META_PREFIX}config"]),
                labels=json.loads(text.get(f"{_META_PREFIX}labels", "{}")),
            )
        except (KeyError, json.JSONDecodeError) as exc:
            raise SpoolError(f"{path}: spool metadata incomplete or corrupt ({exc})") from exc


def _metadata_crc(meta: dict[str, str]) -> int:
    items = sorted((k, v) for k, v in meta.items() if k.startswith(_META_PREFIX) and k != _META_CRC)
    return zlib.crc32("\n".join(f"{k}={v}" for k, v in items).encode())


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _open_private(path: Path, flags: int) -> int:
    fd = os.open(path, flags, FILE_MODE)
    os.chmod(path, FILE_MODE)  # an existing file keeps its mode through O_CREAT
    return fd


def segment_name(t0_us: int, seq0: int, footer_crc: int | None = None) -> str:
    """A segment's file name: its first record's host time and number (so names sort in record
    order), and the CRC-32 of its Parquet footer.

    The footer (schema, row counts, statistics, our metadata) has no checksum of its own, and
    pyarrow ends the whole process on some damaged footers instead of raising; the name is the
    one place a checksum of it can travel atomically with the file.
    """
    crc = "" if footer_crc is None else f"-f{footer_crc:08x}"
    return f"seg-{int(t0_us):017d}-{int(seq0):012d}{crc}{SEGMENT_SUFFIX}"


def parse_segment_name(name: str) -> tuple[int, int] | None:
    """``(first t_us, first record_seq)`` from a segment's file name, or None.

    >>> parse_segment_name("spool/x/seg-00000000000001000-000000000007-f0badf00d.parquet")
    (1000, 7)
    """
    m = _SEGMENT_NAME.search(name)
    return (int(m.group(1)), int(m.group(2))) if m else None


def _footer_crc_in_name(name: str) -> int | None:
    m = _SEGMENT_NAME.search(name)
    return int(m.group(3), 16) if m and m.group(3) else None


def _footer_crc(fh: BinaryIO | pa.NativeFile) -> int:
    """CRC-32 of a Parquet file's footer (``fh`` is left at its start)."""
    fh.seek(0, 2)
    size = fh.tell()
    if size < 12:
        raise SpoolError(f"{size} bytes: too short for a Parquet file")
    fh.seek(size - _PARQUET_TAIL.size)
    length, magic = _PARQUET_TAIL.unpack(fh.read(_PARQUET_TAIL.size))
    if magic != b"PAR1" or length > size - 12:
        raise SpoolError("no Parquet footer at the end (truncated?)")
    fh.seek(size - _PARQUET_TAIL.size - length)
    crc = zlib.crc32(fh.read(length))
    fh.seek(0)
    return crc


class SegmentSink:
    """Records streamed into one new segment, a row group at a time (bounded memory).

    Written as ``*.tmp`` and, on :meth:`finish`, fsynced and renamed to :func:`segment_name` of
    its first record; nothing is written for no records.
    """

    def __init__(self, folder: Path, info: SpoolInfo) -> None:
        self.folder = folder
        self.schema = SPOOL_SCHEMA.with_metadata(info.to_metadata())
        self.rows = 0
        self._first: tuple[int, int] | None = None
        self._rows: list[tuple[int, int, int, int, str, bytes]] = []
        self._tmp = folder / f"seg-writing-{os.getpid()}-{id(self):x}{SEGMENT_SUFFIX}.tmp"
        self._fh: BinaryIO | None = None
        self._writer: pq.ParquetWriter | None = None

    def add(
        self, seq: int, t_us: int, kind: int, conn_id: int, char_uuid: str, payload: bytes
    ) -> None:
        if self._first is None:
            self._first = (t_us, seq)
        self._rows.append((seq, t_us, kind, conn_id, char_uuid, payload))
        if len(self._rows) >= ROWS_PER_GROUP:
            self._flush()

    def add_records(self, records: RawRecords, record_seq: Sequence[int] | np.ndarray) -> None:
        seq = np.asarray(record_seq, dtype=np.int64)
        for lo in range(0, len(records), ROWS_PER_GROUP):
            hi = min(lo + ROWS_PER_GROUP, len(records))
            if self._first is None:
                self._first = (int(records.t_us[lo]), int(seq[lo]))
            self._write(
                self._table(
                    seq[lo:hi],
                    records.t_us[lo:hi],
                    records.kind[lo:hi],
                    records.conn_id[lo:hi],
                    records.char_uuid[lo:hi],
                    records.payload[lo:hi],
                )
            )

    def _flush(self) -> None:
        if not self._rows:
            return
        seq, t_us, kind, conn, uuid, payload = zip(*self._rows, strict=True)
        self._write(self._table(seq, t_us, kind, conn, list(uuid), list(payload)))
        self._rows = []

    def _table(
        self,
        seq: Sequence[int] | np.ndarray,
        t_us: Sequence[int] | np.ndarray,
        kind: Sequence[int] | np.ndarray,
        conn_id: Sequence[int] | np.ndarray,
        char_uuid: list[str],
        payload: list[bytes],
    ) -> pa.Table:
        """The columns built from their buffers: ``pa.array`` would import pandas (50 MB of a
        collector's memory) on its first call."""
        columns = [
            _fixed(seq, np.int64, pa.int64()),
            _fixed(t_us, np.int64, pa.int64()),
            _fixed(kind, np.int8, pa.int8()),
            _fixed(conn_id, np.int64, pa.int64()),
            _variable([u.encode() for u in char_uuid], pa.string()),
            _variable(payload, pa.binary()),
        ]
        return pa.Table.from_arrays(columns, schema=self.schema)

    def _write(self, table: pa.Table) -> None:
        if self._writer is None:
            fd = _open_private(self._tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
            self._fh = os.fdopen(fd, "wb")
            self._writer = pq.ParquetWriter(self._fh, self.schema, **SEGMENT_OPTIONS)
        self._writer.write_table(table, row_group_size=ROWS_PER_GROUP)
        self.rows += table.num_rows

    def finish(self) -> Path | None:
        """Close, fsync and rename the segment into place; return its path (None if empty)."""
        self._flush()
        if self._writer is None or self._fh is None or self._first is None:
            return None
        self._writer.close()
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self._fh.close()
        with open(self._tmp, "rb") as written:
            crc = _footer_crc(written)
        final = self.folder / segment_name(*self._first, crc)
        os.replace(self._tmp, final)
        _fsync_dir(self.folder)
        return final

    def abort(self) -> None:
        with contextlib.suppress(Exception):
            if self._writer is not None:
                self._writer.close()
        with contextlib.suppress(Exception):
            if self._fh is not None:
                self._fh.close()
        self._tmp.unlink(missing_ok=True)


def _fixed(values: Sequence[int] | np.ndarray, dtype: type, arrow_type: pa.DataType) -> pa.Array:
    data: np.ndarray = np.ascontiguousarray(values, dtype=dtype)
    return pa.Array.from_buffers(arrow_type, len(data), [None, pa.py_buffer(data)])


def _variable(values: list[bytes], arrow_type: pa.DataType) -> pa.Array:
    offsets = np.zeros(len(values) + 1, dtype=np.int32)
    np.cumsum([len(v) for v in values], out=offsets[1:])
    return pa.Array.from_buffers(
        arrow_type, len(values), [None, pa.py_buffer(offsets), pa.py_buffer(b"".join(values))]
    )


def write_segment(
    folder: Path,
    info: SpoolInfo,
    records: RawRecords,
    record_seq: Sequence[int] | np.ndarray,
) -> Path:
    """Write one Parquet segment atomically (tmp, fsync, rename, fsync dir); return its path."""
    if len(records) == 0:
        raise ValueError("refusing to write an empty spool segment")
    sink = SegmentSink(folder, info)
    try:
        sink.add_records(records, record_seq)
        path = sink.finish()
    except BaseException:
        sink.abort()
        raise
    assert path is not None
    return path


def list_segments(folder: Path) -> list[Path]:
    """The finished segments of a spool folder, in record order."""
    return sorted(p for p in folder.glob(SEGMENT_GLOB) if p.is_file())


@dataclass
class SegmentRead:
    """What a segment still holds: its info, the records of every intact row group (in order),
    their numbers, and the row groups that failed their checks."""

    info: SpoolInfo
    records: RawRecords
    seq: np.ndarray
    damaged: list[DamagedPart] = field(default_factory=list)
    row_groups: int = 0


def read_segment_parts(source: str | Path | BinaryIO | pa.NativeFile, name: str) -> SegmentRead:
    """Read a segment row group by row group, verifying page checksums; keep what is intact.

    ``name`` names the file in errors and reports.

    Raises
    ------
    SpoolError
        If the file cannot be opened as a spool segment at all (empty, truncated, damaged footer
        or metadata, wrong columns): the caller moves it aside.
    """
    expected = _footer_crc_in_name(name)
    if expected is not None:
        _verify_footer(source, name, expected)
    try:
        parquet = pq.ParquetFile(source, page_checksum_verification=True)
        meta = parquet.metadata
        schema = parquet.schema_arrow
    except (OSError, pa.ArrowException, ValueError) as exc:
        raise SpoolError(f"{name}: not a readable Parquet spool segment ({exc})") from exc
    with parquet:
        _check_schema(schema, name)
        info = SpoolInfo.from_metadata(schema.metadata, name)
        tables: list[pa.Table] = []
        damaged: list[DamagedPart] = []
        for g in range(meta.num_row_groups):
            try:
                table = parquet.read_row_group(g, columns=SPOOL_SCHEMA.names, use_threads=False)
                _check_against_footer(table, meta.row_group(g))
                tables.append(table)
            except (OSError, pa.ArrowException, ValueError) as exc:
                damaged.append(_row_group_damage(meta, schema.names, g, str(exc)))
    if damaged:
        log.warning("%s: %d of %d row groups damaged", name, len(damaged), meta.num_row_groups)
    table = pa.concat_tables(tables) if tables else SPOOL_SCHEMA.empty_table()
    records, seq = _records_of(table)
    return SegmentRead(info, records, seq, damaged, meta.num_row_groups)


def _verify_footer(source: str | Path | BinaryIO | pa.NativeFile, name: str, expected: int) -> None:
    """Raise :class:`SpoolError` unless the footer's CRC-32 is the one in the file's name."""
    try:
        if isinstance(source, str | Path):
            with open(source, "rb") as fh:
                crc = _footer_crc(fh)
        else:
            crc = _footer_crc(source)
    except (OSError, SpoolError) as exc:
        raise SpoolError(f"{name}: not a readable Parquet spool segment ({exc})") from exc
    if crc != expected:
        raise SpoolError(f"{name}: the Parquet footer fails its checksum (damaged)")


def _check_schema(schema: pa.Schema, name: str) -> None:
    """Raise :class:`SpoolError` unless every spool column is there with its type.

    Checked before any column metadata is touched: a flipped bit in a footer's type field
    makes pyarrow abort the process when it reads that column's statistics.
    """
    missing = set(SPOOL_SCHEMA.names) - set(schema.names)
    if missing:
        raise SpoolError(f"{name}: spool segment lacks columns {sorted(missing)}")
    wrong = [f.name for f in SPOOL_SCHEMA if schema.field(f.name).type != f.type]
    if wrong:
        raise SpoolError(f"{name}: spool segment columns {wrong} have the wrong type (damaged)")


def _check_against_footer(table: pa.Table, rg: pq.RowGroupMetaData) -> None:
    """Raise ValueError unless a row group has as many rows as every count in its footer entry.

    Page checksums cover the data; this covers a damaged row count in the (unchecksummed)
    footer, which would otherwise make pyarrow return fewer rows without complaint. Each
    column chunk repeats the count, so one damaged copy is always outvoted.
    """
    counts = {rg.num_rows, *(rg.column(c).num_values for c in range(rg.num_columns))}
    if counts != {table.num_rows}:
        raise ValueError(f"{table.num_rows} rows read, the footer's counts say {sorted(counts)}")


def _row_group_damage(
    meta: pq.FileMetaData, names: list[str], group: int, error: str
) -> DamagedPart:
    """A damaged row group, described from the footer: its records and time stretch."""
    rg = meta.row_group(group)
    start, end = _int64_range(rg, names.index("t_us")) or (None, None)
    # the count most copies in the footer agree on (one per column chunk, one for the group)
    counts = [rg.num_rows, *(rg.column(c).num_values for c in range(rg.num_columns))]
    return DamagedPart(
        part=f"row group {group + 1} of {meta.num_row_groups}",
        reason=f"failed its checks: {error.splitlines()[0][:200]}",
        records_lost=int(max(set(counts), key=counts.count)),
        start_us=start,
        end_us=end,
        span_from="row group statistics" if start is not None else "unknown",
    )


def _int64_range(rg: pq.RowGroupMetaData, column: int) -> tuple[int, int] | None:
    """``(min, max)`` of an int64 column chunk from the footer statistics, None if unknown.

    The chunk's physical type is checked first: pyarrow aborts the process when it reads the
    statistics of a chunk whose type field was damaged.
    """
    try:
        chunk = rg.column(column)
        if chunk.physical_type != "INT64":
            return None
        stats = chunk.statistics
        if stats is None or not stats.has_min_max:
            return None
        return int(stats.min), int(stats.max)
    except (OSError, pa.ArrowException, ValueError, TypeError):
        return None


def _records_of(table: pa.Table) -> tuple[RawRecords, np.ndarray]:
    records = RawRecords(
        t_us=table["t_us"].to_numpy().astype(np.int64, copy=False),
        kind=table["kind"].to_numpy().astype(np.int8, copy=False),
        char_uuid=table["char_uuid"].to_pylist(),
        payload=table["payload"].to_pylist(),
        conn_id=table["conn_id"].to_numpy().astype(np.int64, copy=False),
    )
    return records, table["record_seq"].to_numpy().astype(np.int64, copy=False)


def read_store_segment(store: Store, rel: str) -> SegmentRead:
    """:func:`read_segment_parts` of a segment in a store (local or fsspec), by relative path."""
    if store.local:
        return read_segment_parts(Path(store.location) / rel, rel)
    with store.open_binary(rel) as fh:
        return read_segment_parts(fh, rel)


def read_segment(path: Path) -> tuple[SpoolInfo, RawRecords, np.ndarray]:
    """Read one whole, intact segment: its :class:`SpoolInfo`, records and record numbers.

    Raises
    ------
    SpoolError
        If the file is not a readable spool segment or any part of it fails its checks.
    """
    got = read_segment_parts(path, str(path))
    if got.damaged:
        raise SpoolError(f"{path}: {got.damaged[0].part}: {got.damaged[0].reason}")
    return got.info, got.records, got.seq


def unreadable_segment_report(
    store: Store,
    folder: str,
    name: str,
    reason: str,
    segments: Sequence[str],
    owner: SpoolInfo | None = None,
) -> DamageReport:
    """The report of a segment that cannot be read at all.

    Its lost stretch starts at the time in its name and ends at the earliest of: the next
    segment's first record, when the file was last written (after its last record), and its
    start plus the longest stretch between two segment starts in the folder (the rotation
    period). An estimate: ``span_from`` says so.
    """
    parsed = parse_segment_name(name)
    start_us = parsed[0] if parsed else None
    named = sorted(p for s in segments if (p := parse_segment_name(s)))
    later = [p for p in named if parsed and p[1] > parsed[1]]
    ends = [later[0][0]] if later else []
    with contextlib.suppress(OSError):
        mtime = store.mtime_us(f"{folder}/{name}" if folder else name)
        if mtime is not None:
            ends.append(mtime)
    if start_us is not None:
        # no longer than the longest stretch between two segments' starts (the rotation
        # period; 1 h, the default, if the folder tells nothing)
        others = [p for p in named if p != parsed]
        steps = [b[0] - a[0] for a, b in itertools.pairwise(others)]
        ends.append(start_us + max([*steps, _DEFAULT_SEGMENT_US]))
    end_us = min(ends) if ends else None
    if start_us is not None and end_us is not None:
        end_us = max(end_us, start_us)
    ids = (owner.participant_id, owner.device_id) if owner else _folder_ids(store.location, folder)
    return new_report(
        name,
        original=name,
        kind="segment",
        quarantined=True,
        owner=ids,
        parts=(
            DamagedPart(
                part="whole file",
                reason=reason,
                records_lost=None,
                start_us=start_us,
                end_us=end_us,
                span_from="file name, next segment and file time" if parsed else "unknown",
            ),
        ),
    )


def _folder_ids(root: str, folder: str) -> tuple[str, str]:
    """``(participant_id, device_id)`` from a device spool folder's path (as safe names)."""
    participant = device = ""
    for part in f"{root}/{folder}".split("/"):
        if part.startswith("participant_id="):
            participant = part.removeprefix("participant_id=")
        elif part.startswith("device="):
            device = part.removeprefix("device=")
    return participant, device


def concat_records(parts: Iterable[RawRecords]) -> RawRecords:
    """Join record batches in the given order."""
    parts = list(parts)
    if not parts:
        return RawRecords(
            t_us=np.empty(0, np.int64),
            kind=np.empty(0, np.int8),
            char_uuid=[],
            payload=[],
            conn_id=np.empty(0, np.int64),
        )
    return RawRecords(
        t_us=np.concatenate([p.t_us for p in parts]),
        kind=np.concatenate([p.kind for p in parts]),
        char_uuid=[u for p in parts for u in p.char_uuid],
        payload=[b for p in parts for b in p.payload],
        conn_id=np.concatenate([p.conn_id for p in parts]),
    )


def _journal_records(path: Path) -> tuple[RawRecords, np.ndarray]:
    """The valid records of a (possibly live) journal and their numbers."""
    contents = jr.read_journal(path)
    return contents.records, contents.seq


def _last_ids(folder: Path, info: SpoolInfo) -> tuple[int, int, int | None, int]:
    """``(record_seq, conn_id, t_us)`` of the last record in a folder's readable segments (-1,
    0 and None if none), read from the footer statistics, and the lowest number new records may
    take minus one.

    A segment at the end that cannot be read at all is moved aside (the collector must start
    regardless). What it held is unknown, so new records are numbered 2**32 past its first one:
    no number is ever used twice, while a journal's records (newer than the readable segments)
    are still recovered.
    """
    floor = -1
    for seg in reversed(list_segments(folder)):
        try:
            expected = _footer_crc_in_name(seg.name)
            if expected is not None:
                _verify_footer(seg, seg.name, expected)
            with pq.ParquetFile(seg) as parquet:
                meta = parquet.metadata
                _check_schema(parquet.schema_arrow, seg.name)
            names = parquet.schema_arrow.names
            columns = [names.index(c) for c in ("record_seq", "conn_id", "t_us")]
            seq, conn, t_us = -1, 0, 0
            for g in range(meta.num_row_groups):
                rg = meta.row_group(g)
                ranges = [_int64_range(rg, c) for c in columns]
                if any(r is None for r in ranges):
                    raise SpoolError(f"{seg.name}: row group {g + 1} has no usable statistics")
                seqs, conns, times = (r for r in ranges if r is not None)
                seq, conn, t_us = max(seq, seqs[1]), max(conn, conns[1]), max(t_us, times[1])
            if seq < 0:
                raise SpoolError(f"{seg.name}: no records")
            return seq, conn, t_us, max(seq, floor)
        except (
            SpoolError,
            OSError,
            pa.ArrowException,
            ValueError,
            AttributeError,
            TypeError,
        ) as exc:
            store = Store.of(folder)
            names_now = [p.name for p in list_segments(folder)]
            report = unreadable_segment_report(
                store, "", seg.name, f"unreadable ({exc})", names_now, info
            )
            move_aside(store, "", seg.name, report)
            parsed = parse_segment_name(seg.name)
            floor = max(floor, (parsed[1] if parsed else 0) + (1 << 32))
    return -1, 0, None, floor


class SpoolWriter:
    """Append GATT records of one device to its spool folder, crash-safely, in flat memory.

    Parameters
    ----------
    folder : Path
        The device's spool folder (``DataDir.spool_dir``); created if missing.
    info : SpoolInfo
        Participant, device, profile and stream configuration, stored with every segment.
    segment_s, segment_bytes : float, int
        Rotate the journal into a Parquet segment after this long or this many payload bytes.
    journal_fsync_s : float
        Longest time a received record may sit in the journal without an fsync: the loss bound
        after a hard kill.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from glutewake.devices.base import RecordKind
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> w = SpoolWriter(d, SpoolInfo("P01", "dev", "polar-pmd", {}, {}))
    >>> w.append(1_700_000_000_000_000, RecordKind.NOTIFY, "abc", b"\\x02\\x00", 1)
    >>> w.close()
    >>> len(list_segments(d))
    1
    """

    def __init__(
        self,
        folder: Path,
        info: SpoolInfo,
        *,
        segment_s: float = 3600.0,
        segment_bytes: int = 32 * 1024 * 1024,
        journal_fsync_s: float = 1.0,
        clock: Any = time.monotonic,
    ) -> None:
        self.folder = Path(folder)
        self.info = info
        self.segment_s = segment_s
        self.segment_bytes = segment_bytes
        self.journal_fsync_s = journal_fsync_s
        self._clock = clock
        private_dir(self.folder)
        self._journal_path = self.folder / JOURNAL_NAME
        #: connection counter of the last record already spooled (0: none)
        self.last_conn_id = 0
        #: damage found in journals at start-up or rotation (also reported in quarantine/)
        self.damage: list[DamageReport] = []
        self.next_seq = self._recover()
        self._fd = _open_private(self._journal_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        self._pending_records = 0
        self._pending_bytes = 0
        self._last_fsync = self._clock()
        self._segment_started = self._clock()
        self.segments_written = 0
        self.records_written = 0

    def _recover(self) -> int:
        """Remove stale tmp files, turn a crashed journal into a segment, return the next seq."""
        for tmp in self.folder.glob("*.tmp"):
            log.info("removing stale temporary spool file %s", tmp)
            tmp.unlink()
        last_seq, self.last_conn_id, last_t, floor = _last_ids(self.folder, self.info)
        if self._journal_path.exists() and self._journal_path.stat().st_size > 0:
            last_seq, _ = self._journal_to_segment(last_seq, last_t, recovering=True)
        elif self._journal_path.exists():
            self._journal_path.unlink()
            _fsync_dir(self.folder)
        return max(last_seq, floor) + 1

    def _journal_to_segment(
        self, last_seq: int, last_t: int | None, *, recovering: bool
    ) -> tuple[int, Path | None]:
        """Stream the journal's valid records newer than ``last_seq`` into a segment; report
        and move aside a journal with damage, else remove it. Returns the last record number
        spooled and the new segment."""
        sink = SegmentSink(self.folder, self.info)
        damage: list[jr.JournalDamage] = []
        try:
            with jr.MappedJournal(self._journal_path) as buf:
                for item in jr.scan(buf, seq_floor=last_seq, t_floor_us=last_t):
                    if isinstance(item, jr.JournalDamage):
                        damage.append(item)
                        continue
                    # rows already in a segment (a crash after its rename) are skipped
                    if item.seq > last_seq:
                        sink.add(
                            item.seq,
                            item.t_us,
                            item.kind,
                            item.conn_id,
                            item.char_uuid,
                            item.payload,
                        )
                        last_seq = item.seq
                        self.last_conn_id = item.conn_id
            path = sink.finish()
        except BaseException:
            sink.abort()
            raise
        if path is not None and recovering:
            log.info("recovered %d records from a journal left by a crash", sink.rows)
        if damage:
            self._quarantine_journal(damage)
        elif recovering:
            self._journal_path.unlink()
            _fsync_dir(self.folder)
        return last_seq, path

    def _quarantine_journal(self, damage: list[jr.JournalDamage]) -> None:
        name = f"journal-{time.time_ns() // 1000:017d}.bin"
        parts = tuple(
            DamagedPart(
                part=f"bytes {d.offset}-{d.offset + d.length - 1}",
                reason=d.reason,
                records_lost=d.records_lost,
                start_us=d.t_before_us,
                end_us=d.t_after_us if d.t_after_us is not None else d.t_before_us,
                span_from="neighbouring records",
            )
            for d in damage
        )
        report = new_report(
            name,
            original=JOURNAL_NAME,
            kind="journal",
            quarantined=True,
            owner=(self.info.participant_id, self.info.device_id),
            parts=parts,
        )
        move_aside(Store.of(self.folder), "", JOURNAL_NAME, report)
        self.damage.append(report)

    def append(self, t_us: int, kind: int, char_uuid: str, payload: bytes, conn_id: int) -> None:
        """Append one record (journaled now, fsynced within ``journal_fsync_s``)."""
        os.write(
            self._fd,
            jr.encode_record(self.next_seq, t_us, conn_id, int(kind), char_uuid, bytes(payload)),
        )
        self._pending_records += 1
        self._pending_bytes += len(payload)
        self.next_seq += 1
        self.records_written += 1
        self.maybe_sync()

    def maybe_sync(self) -> None:
        """fsync the journal if the loss bound is due; rotate to a segment if one is due."""
        now = self._clock()
        if now - self._last_fsync >= self.journal_fsync_s:
            os.fsync(self._fd)
            self._last_fsync = now
        if self._pending_records and (
            now - self._segment_started >= self.segment_s
            or self._pending_bytes >= self.segment_bytes
        ):
            self.rotate()

    def rotate(self) -> Path | None:
        """Turn the journaled records into a Parquet segment now; return its path.

        The records are read back from the journal (fsynced first), not kept in memory: a
        collector's memory stays flat however long its segments are.
        """
        self._segment_started = self._clock()
        if not self._pending_records:
            return None
        os.fsync(self._fd)
        first_new = self.next_seq - self._pending_records
        _, path = self._journal_to_segment(first_new - 1, None, recovering=False)
        if self._journal_path.exists():  # no damage: the journal stays, emptied
            os.ftruncate(self._fd, 0)
            os.fsync(self._fd)
        else:  # moved aside with its damage: a fresh journal
            os.close(self._fd)
            self._fd = _open_private(self._journal_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
            _fsync_dir(self.folder)
        self._last_fsync = self._clock()
        self._pending_records = 0
        self._pending_bytes = 0
        self.segments_written += path is not None
        return path

    def close(self) -> None:
        """Write what is pending as a segment and close the journal."""
        if self._fd < 0:
            return
        self.rotate()
        os.close(self._fd)
        self._fd = -1
        with contextlib.suppress(FileNotFoundError):
            if self._journal_path.stat().st_size == 0:
                self._journal_path.unlink()
                _fsync_dir(self.folder)

    def __enter__(self) -> SpoolWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def spool_folders(spool_root: Path) -> list[Path]:
    """Every device spool folder under ``spool_root`` (``participant_id=*/device=*``)."""
    return sorted(p for p in spool_root.glob("participant_id=*/device=*") if p.is_dir())
