"""The raw spool: every GATT record a collector saw, append-only, crash-safe.

The spool is the record of truth: notification bytes exactly as received, the writes the host sent
(start/stop commands), reads, and connection events, each with its host receive time. Nothing is
decoded here, so a decoder fixed later can re-decode everything ever received.

Durability works in two layers, so that a hard kill loses at most ``journal_fsync_s`` (default 1 s)
of received data while the spool stays a small number of Parquet files:

* a **journal** (``journal.bin``) gets every record appended, CRC-protected, and is fsynced at least
  every ``journal_fsync_s``;
* every ``segment_s`` seconds or ``segment_bytes`` bytes the journal's records become a Parquet
  **segment**: written as ``*.tmp``, fsynced, renamed with :func:`os.replace`, the directory
  fsynced, and only then is the journal emptied.

On start, stale ``*.tmp`` files are removed, a journal left by a crash is turned into a segment
(a torn last record is dropped, everything before it kept) and record numbering resumes.
Files are created readable by their owner only.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import struct
import time
import zlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from glutewake import __version__
from glutewake.devices.base import RawRecords
from glutewake.store.private import FILE_MODE, private_dir

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
# record header: record_seq, t_us, conn_id, kind, uuid length, payload length;
# then the uuid, the payload and a CRC-32 of all before it
_HEADER = struct.Struct("<qqqbHI")
_CRC = struct.Struct("<I")
_META_PREFIX = "glutewake."


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
        return {
            f"{_META_PREFIX}participant_id": self.participant_id,
            f"{_META_PREFIX}device_id": self.device_id,
            f"{_META_PREFIX}profile": self.profile,
            f"{_META_PREFIX}config": json.dumps(self.config, sort_keys=True),
            f"{_META_PREFIX}labels": json.dumps(self.labels, sort_keys=True),
            f"{_META_PREFIX}version": __version__,
        }

    @classmethod
    def from_metadata(cls, meta: dict[bytes, bytes] | None, path: Path | str) -> SpoolInfo:
        if not meta:
            raise SpoolError(f"{path}: no glutewake metadata in the Parquet footer")
        text = {k.decode(): v.decode() for k, v in meta.items()}
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


def write_segment(
    folder: Path,
    info: SpoolInfo,
    records: RawRecords,
    record_seq: Sequence[int] | np.ndarray,
) -> Path:
    """Write one Parquet segment atomically (tmp, fsync, rename, fsync dir); return its path."""
    if len(records) == 0:
        raise ValueError("refusing to write an empty spool segment")
    seq = np.asarray(record_seq, dtype=np.int64)
    table = pa.table(
        {
            "record_seq": pa.array(seq, pa.int64()),
            "t_us": pa.array(records.t_us, pa.int64()),
            "kind": pa.array(records.kind, pa.int8()),
            "conn_id": pa.array(records.conn_id, pa.int64()),
            "char_uuid": pa.array(records.char_uuid, pa.string()),
            "payload": pa.array(records.payload, pa.binary()),
        },
        schema=SPOOL_SCHEMA,
    ).replace_schema_metadata(info.to_metadata())
    name = f"seg-{int(records.t_us[0]):017d}-{int(seq[0]):012d}{SEGMENT_SUFFIX}"
    final = folder / name
    tmp = folder / (name + ".tmp")
    fd = _open_private(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    with os.fdopen(fd, "wb") as fh:
        pq.write_table(table, fh, compression="zstd")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, final)
    _fsync_dir(folder)
    return final


def list_segments(folder: Path) -> list[Path]:
    """The finished segments of a spool folder, in record order."""
    return sorted(p for p in folder.glob(f"seg-*{SEGMENT_SUFFIX}") if p.is_file())


def read_segment(path: Path) -> tuple[SpoolInfo, RawRecords, np.ndarray]:
    """Read one segment: its :class:`SpoolInfo`, records and record numbers.

    Raises
    ------
    SpoolError
        If the file is not a readable spool segment (truncated, wrong schema, no metadata).
    """
    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowInvalid) as exc:
        raise SpoolError(f"{path}: not a readable Parquet spool segment ({exc})") from exc
    return segment_from_table(table, path)


def segment_from_table(
    table: pa.Table, path: Path | str
) -> tuple[SpoolInfo, RawRecords, np.ndarray]:
    """A spool segment already read as an Arrow table (``path`` names it in errors)."""
    missing = set(SPOOL_SCHEMA.names) - set(table.column_names)
    if missing:
        raise SpoolError(f"{path}: spool segment lacks columns {sorted(missing)}")
    info = SpoolInfo.from_metadata(table.schema.metadata, path)
    records = RawRecords(
        t_us=table["t_us"].to_numpy().astype(np.int64, copy=False),
        kind=table["kind"].to_numpy().astype(np.int8, copy=False),
        char_uuid=table["char_uuid"].to_pylist(),
        payload=table["payload"].to_pylist(),
        conn_id=table["conn_id"].to_numpy().astype(np.int64, copy=False),
    )
    return info, records, table["record_seq"].to_numpy().astype(np.int64, copy=False)


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


def _iter_journal(path: Path) -> Iterator[tuple[int, int, int, int, str, bytes]]:
    """Yield complete, CRC-valid journal records; stop at the first torn or corrupt one."""
    data = path.read_bytes()
    pos = 0
    while pos + _HEADER.size <= len(data):
        seq, t_us, conn_id, kind, uuid_len, payload_len = _HEADER.unpack_from(data, pos)
        end = pos + _HEADER.size + uuid_len + payload_len + _CRC.size
        if end > len(data):
            log.warning("%s: torn record at byte %d dropped (crash during write)", path, pos)
            return
        body = data[pos : end - _CRC.size]
        (crc,) = _CRC.unpack_from(data, end - _CRC.size)
        if zlib.crc32(body) != crc:
            log.warning("%s: corrupt record at byte %d; journal read stops there", path, pos)
            return
        start = pos + _HEADER.size
        uuid = data[start : start + uuid_len].decode()
        payload = data[start + uuid_len : start + uuid_len + payload_len]
        yield seq, t_us, conn_id, kind, uuid, payload
        pos = end


def _journal_records(path: Path) -> tuple[RawRecords, np.ndarray]:
    rows = list(_iter_journal(path))
    records = RawRecords(
        t_us=np.array([r[1] for r in rows], dtype=np.int64),
        kind=np.array([r[3] for r in rows], dtype=np.int8),
        char_uuid=[r[4] for r in rows],
        payload=[r[5] for r in rows],
        conn_id=np.array([r[2] for r in rows], dtype=np.int64),
    )
    return records, np.array([r[0] for r in rows], dtype=np.int64)


class SpoolWriter:
    """Append GATT records of one device to its spool folder, crash-safely.

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
        self.next_seq = self._recover()
        self._fd = _open_private(self._journal_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        self._pending: list[tuple[int, int, int, int, str, bytes]] = []
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
        last_seq = -1
        for seg in list_segments(self.folder)[-1:]:
            try:
                last_seq = int(pq.read_table(seg, columns=["record_seq"])["record_seq"][-1].as_py())
            except (OSError, pa.ArrowInvalid, IndexError) as exc:
                raise SpoolError(f"{seg}: last spool segment unreadable ({exc})") from exc
        if self._journal_path.exists() and self._journal_path.stat().st_size > 0:
            records, seq = _journal_records(self._journal_path)
            keep = seq > last_seq  # rows already in a segment (crash after rename) are dropped
            if keep.any():
                idx = np.flatnonzero(keep)
                kept = RawRecords(
                    t_us=records.t_us[idx],
                    kind=records.kind[idx],
                    char_uuid=[records.char_uuid[i] for i in idx],
                    payload=[records.payload[i] for i in idx],
                    conn_id=records.conn_id[idx],
                )
                write_segment(self.folder, self.info, kept, seq[idx])
                last_seq = int(seq[idx][-1])
                log.info("recovered %d records from a journal left by a crash", len(kept))
            self._journal_path.unlink()
            _fsync_dir(self.folder)
        return last_seq + 1

    def append(self, t_us: int, kind: int, char_uuid: str, payload: bytes, conn_id: int) -> None:
        """Append one record (journaled now, fsynced within ``journal_fsync_s``)."""
        uuid_b = char_uuid.encode()
        body = _HEADER.pack(self.next_seq, t_us, conn_id, kind, len(uuid_b), len(payload))
        body += uuid_b + bytes(payload)
        os.write(self._fd, body + _CRC.pack(zlib.crc32(body)))
        self._pending.append((self.next_seq, t_us, conn_id, int(kind), char_uuid, bytes(payload)))
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
        if self._pending and (
            now - self._segment_started >= self.segment_s
            or self._pending_bytes >= self.segment_bytes
        ):
            self.rotate()

    def rotate(self) -> Path | None:
        """Turn the journaled records into a Parquet segment now; return its path."""
        self._segment_started = self._clock()
        if not self._pending:
            return None
        rows = self._pending
        records = RawRecords(
            t_us=np.array([r[1] for r in rows], dtype=np.int64),
            kind=np.array([r[3] for r in rows], dtype=np.int8),
            char_uuid=[r[4] for r in rows],
            payload=[r[5] for r in rows],
            conn_id=np.array([r[2] for r in rows], dtype=np.int64),
        )
        path = write_segment(self.folder, self.info, records, [r[0] for r in rows])
        os.ftruncate(self._fd, 0)
        os.fsync(self._fd)
        self._last_fsync = self._clock()
        self._pending = []
        self._pending_bytes = 0
        self.segments_written += 1
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
