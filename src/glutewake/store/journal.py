"""The spool journal's record format, and reading it back past damage.

Every record the collector receives is appended to ``journal.bin`` as::

    header  <q record_seq> <q t_us> <q conn_id> <b kind> <H uuid length> <I payload length>
    uuid    UTF-8
    payload the bytes as received
    crc     <I CRC-32 of header, uuid and payload>

The format has no sync marker, so a reader that meets a record whose CRC does not match (a
flipped bit on disk, a torn write) *resynchronises*: it looks at every following byte offset for
a header whose fields are plausible, whose record number follows the last good one, and whose CRC
matches, and goes on from there. A false match needs a 32-bit CRC to agree by chance on top of the
plausibility checks. What lies between two good records is reported as a :class:`JournalDamage`
(its bytes, and the record numbers and host times on either side), never silently dropped: record
numbers are consecutive, so the records lost in a damaged stretch are counted exactly.
"""

from __future__ import annotations

import mmap
import os
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from glutewake.devices.base import RawRecords

HEADER = struct.Struct("<qqqbHI")
CRC = struct.Struct("<I")
#: a header naming longer fields than these is not a record (UUID strings are 36 characters;
#: ATT values are at most 512 bytes, connection-event texts short)
MAX_UUID_BYTES = 64
MAX_PAYLOAD_BYTES = 1 << 16
#: RecordKind values (NOTIFY .. DISCONNECT)
_MAX_KIND = 4


def encode_record(
    seq: int, t_us: int, conn_id: int, kind: int, char_uuid: str, payload: bytes
) -> bytes:
    """One journal record, CRC included.

    >>> len(encode_record(0, 1, 1, 0, "u", b"ab")) == HEADER.size + 1 + 2 + CRC.size
    True
    """
    uuid_b = char_uuid.encode()
    body = HEADER.pack(seq, t_us, conn_id, kind, len(uuid_b), len(payload)) + uuid_b + payload
    return body + CRC.pack(zlib.crc32(body))


@dataclass(frozen=True)
class JournalRecord:
    seq: int
    t_us: int
    conn_id: int
    kind: int
    char_uuid: str
    payload: bytes


@dataclass(frozen=True)
class JournalDamage:
    """Bytes of a journal that hold no valid record.

    ``seq_before``/``t_before_us`` are the last good record before the stretch (or the caller's
    floor), ``seq_after``/``t_after_us`` the first good one after it (``None`` at the end).
    """

    offset: int
    length: int
    reason: str
    seq_before: int | None
    seq_after: int | None
    t_before_us: int | None
    t_after_us: int | None

    @property
    def records_lost(self) -> int | None:
        """Records whose bytes were in the stretch (``None`` when the end is unknown)."""
        if self.seq_before is None or self.seq_after is None:
            return None
        return max(0, self.seq_after - self.seq_before - 1)


def _record_at(buf: bytes | mmap.mmap, pos: int, after_seq: int | None) -> JournalRecord | None:
    """The valid record starting at ``pos``, or None."""
    seq, t_us, conn_id, kind, uuid_len, payload_len = HEADER.unpack_from(buf, pos)
    if not 0 <= kind <= _MAX_KIND or uuid_len > MAX_UUID_BYTES or payload_len > MAX_PAYLOAD_BYTES:
        return None
    if seq < 0 or (after_seq is not None and seq <= after_seq):
        return None
    start = pos + HEADER.size
    end = start + uuid_len + payload_len
    if end + CRC.size > len(buf):
        return None
    (crc,) = CRC.unpack_from(buf, end)
    if zlib.crc32(buf[pos:end]) != crc:
        return None
    try:
        uuid = bytes(buf[start : start + uuid_len]).decode()
    except UnicodeDecodeError:
        return None
    return JournalRecord(seq, t_us, conn_id, kind, uuid, bytes(buf[start + uuid_len : end]))


def _torn(buf: bytes | mmap.mmap, pos: int) -> bool:
    """Whether ``pos`` starts a plausible header whose record runs past the end (a torn write)."""
    if pos + HEADER.size > len(buf):
        return True
    _, _, _, kind, uuid_len, payload_len = HEADER.unpack_from(buf, pos)
    plausible = 0 <= kind <= _MAX_KIND and uuid_len <= MAX_UUID_BYTES
    size = HEADER.size + uuid_len + payload_len + CRC.size
    return plausible and payload_len <= MAX_PAYLOAD_BYTES and pos + size > len(buf)


def scan(
    buf: bytes | mmap.mmap, *, seq_floor: int | None = None, t_floor_us: int | None = None
) -> Iterator[JournalRecord | JournalDamage]:
    """Every valid record of a journal's bytes, and every damaged stretch between them, in order.

    ``seq_floor``/``t_floor_us`` (the last record already in a segment) stand in for the record
    before a stretch at the very start.
    """
    n = len(buf)
    pos = 0
    last_seq: int | None = None  # the validity check uses the journal's own records only
    before_seq, before_t = seq_floor, t_floor_us
    bad_start: int | None = None
    while pos + HEADER.size + CRC.size <= n:
        rec = _record_at(buf, pos, last_seq if bad_start is not None else None)
        if rec is None:
            if bad_start is None:
                bad_start = pos
            pos += 1
            continue
        if bad_start is not None:
            yield JournalDamage(
                bad_start,
                pos - bad_start,
                "checksum mismatch",
                before_seq,
                rec.seq,
                before_t,
                rec.t_us,
            )
            bad_start = None
        yield rec
        last_seq = rec.seq
        before_seq, before_t = rec.seq, rec.t_us
        pos += HEADER.size + len(rec.char_uuid.encode()) + len(rec.payload) + CRC.size
    start = bad_start if bad_start is not None else pos
    if start < n:
        reason = (
            "torn record at the end (a crash during its write)"
            if _torn(buf, start)
            else "unreadable bytes at the end"
        )
        yield JournalDamage(start, n - start, reason, before_seq, None, before_t, None)


@dataclass
class JournalContents:
    """A journal read back: its valid records (in order), their numbers, and its damage."""

    records: RawRecords
    seq: np.ndarray
    damage: list[JournalDamage]


def records_from_rows(rows: list[JournalRecord]) -> tuple[RawRecords, np.ndarray]:
    """Rows of :class:`JournalRecord` as :class:`RawRecords` and their record numbers."""
    records = RawRecords(
        t_us=np.array([r.t_us for r in rows], dtype=np.int64),
        kind=np.array([r.kind for r in rows], dtype=np.int8),
        char_uuid=[r.char_uuid for r in rows],
        payload=[r.payload for r in rows],
        conn_id=np.array([r.conn_id for r in rows], dtype=np.int64),
    )
    return records, np.array([r.seq for r in rows], dtype=np.int64)


def read_journal(path: Path) -> JournalContents:
    """Read a whole journal (a live one too: a record being written shows as a torn end)."""
    return read_journal_bytes(path.read_bytes())


def read_journal_bytes(data: bytes, *, seq_floor: int | None = None) -> JournalContents:
    """A journal's bytes read back (``seq_floor``: the record before them, as for :func:`scan`)."""
    rows: list[JournalRecord] = []
    damage: list[JournalDamage] = []
    for item in scan(data, seq_floor=seq_floor):
        (rows if isinstance(item, JournalRecord) else damage).append(item)  # type: ignore[arg-type]
    records, seq = records_from_rows(rows)
    return JournalContents(records, seq, damage)


class MappedJournal:
    """A journal file mapped read-only (no copy in the heap), for scanning once.

    >>> import tempfile
    >>> p = Path(tempfile.mkdtemp()) / "journal.bin"
    >>> _ = p.write_bytes(encode_record(0, 1, 1, 0, "u", b"x"))
    >>> with MappedJournal(p) as buf:
    ...     [r.payload for r in scan(buf)]
    [b'x']
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd = -1
        self._map: mmap.mmap | None = None

    def __enter__(self) -> bytes | mmap.mmap:
        self._fd = os.open(self.path, os.O_RDONLY)
        size = os.fstat(self._fd).st_size
        if size == 0:
            return b""
        self._map = mmap.mmap(self._fd, size, access=mmap.ACCESS_READ)
        return self._map

    def __exit__(self, *exc: object) -> None:
        if self._map is not None:
            self._map.close()
        os.close(self._fd)
