"""The collector's spool writer thread and its live count of what each device delivered.

The BLE callbacks put records on an unbounded queue; one thread appends them to each device's
:class:`SpoolWriter` (so a slow disk never stalls the BLE event loop) and feeds :class:`LiveQc`,
which decodes what arrived every so often to count samples received and expected, gaps, and lost
and duplicated packets while collecting (what ``glutewake status`` shows).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from glutewake.devices import DeviceProfile
from glutewake.devices.base import RawRecords, RecordKind
from glutewake.ingest.stream_tally import StreamTally, add_until_stops
from glutewake.store.spool import (
    SpoolError,
    SpoolWriter,
    list_segments,
    parse_segment_name,
    read_segment_parts,
)

log = logging.getLogger(__name__)
log.addHandler(logging.NullHandler())


class CollectorError(RuntimeError):
    """A device that cannot be collected from (the message says which and why)."""


# --------------------------------------------------------------------------- live QC
#: (record_seq, t_us, kind, char_uuid, payload, conn_id)
_Row = tuple[int, int, int, str, bytes, int]
#: the DISCONNECT payload the supervisor spools for a stop the user asked for
HOST_STOP = b"host_stop"
#: setup records (reads, writes, control answers) of a connection kept for decoding the next
#: window; older ones are superseded by newer (a stream restart sends the settings again)
MAX_SETUP_RECORDS = 64
_BATTERY_UUID = "00002a19-0000-1000-8000-00805f9b34fb"


class LiveQc:
    """What one device delivered, counted while collecting; flat in memory, restartable.

    The writer thread feeds it every record it spools; :meth:`evaluate` (off the event loop)
    decodes what arrived since the last evaluation with the device's profile and adds it to one
    :class:`~glutewake.ingest.stream_tally.StreamTally` per stream (samples received and
    expected, gaps, lost and duplicated packets). Between evaluations it keeps the connection's
    setup records (capped at :data:`MAX_SETUP_RECORDS`) and the last data packet of each
    characteristic, so that the next window decodes and losses across its edge are seen.

    :meth:`state` is what the collector writes into the device's status file;
    :meth:`restore` and :func:`catch_up` continue from it after a restart, so the counts span
    every run, and the time a crashed collector was away shows as samples expected but not
    received.
    """

    def __init__(self, profile: DeviceProfile, config: dict[str, Any]) -> None:
        self.profile = profile
        self.config = config
        writes = {w.char_uuid.lower() for w in profile.start_writes(config)}
        self.data_uuids = {u.lower() for u in profile.notify_uuids} - writes
        self.tallies: dict[str, StreamTally] = {}
        self.decode_errors = 0
        #: records up to this number are counted (their successors may still be in the spool)
        self.counted_through_seq = -1
        self._rows: list[_Row] = []
        self._lock = threading.Lock()

    @property
    def packets_lost(self) -> int:
        return sum(t.packets_lost for t in self.tallies.values())

    @property
    def duplicates(self) -> int:
        return sum(t.duplicates for t in self.tallies.values())

    def feed(self, seq: int, t_us: int, kind: int, uuid: str, payload: bytes, conn_id: int) -> None:
        with self._lock:
            self._rows.append((seq, t_us, kind, uuid, payload, conn_id))

    def _is_data(self, row: _Row) -> bool:
        return row[2] == RecordKind.NOTIFY and row[3] in self.data_uuids

    def evaluate(self) -> None:
        """Decode the window, add it to the tallies, slide the window."""
        with self._lock:
            rows = list(self._rows)
        if not rows or rows[-1][0] <= self.counted_through_seq:
            return
        # the window starts with what the last one kept (counted already), then what is new
        n_kept = next((i for i, r in enumerate(rows) if r[0] > self.counted_through_seq), 0)
        fresh = rows[n_kept:]
        stops = sorted(
            r[1] for r in fresh if r[2] == RecordKind.DISCONNECT and bytes(r[4]) == HOST_STOP
        )
        result = base = None
        try:
            if any(self._is_data(r) for r in fresh):
                result = self.profile.decode_records(_records(rows), self.config)
                # the kept packets decoded alone: their samples, counted last time, are the
                # first ones of the stream (samples come in arrival order), so only those
                # after them are new; counting by position, not by time, stays exact when the
                # clock model moves a sample's time between windows
                if any(self._is_data(r) for r in rows[:n_kept]):
                    base = self.profile.decode_records(_records(rows[:n_kept]), self.config)
        except Exception:  # a decoder bug must not stop collection; the spool keeps the bytes
            log.exception("live QC decode failed")
            return
        kept = self._kept(rows)
        with self._lock:
            if result is not None:
                for stream, samples in result.streams.items():
                    tally = self.tallies.setdefault(stream, StreamTally())
                    done = len(base.streams[stream]) if base and stream in base.streams else 0
                    add_until_stops(tally, samples.t_us[done:], samples.fs_hz, stops)
                    qc = result.qc.get(stream, {})
                    tally.packets_lost += int(qc.get("packets_lost", 0))
                    tally.duplicates += int(qc.get("duplicates", 0))
                self.decode_errors += len(result.errors)
            if stops:
                for stream, tally in self.tallies.items():
                    if result is None or stream not in result.streams:
                        tally.stop()
            self.counted_through_seq = rows[-1][0]
            self._rows = kept + self._rows[len(rows) :]

    def _kept(self, rows: list[_Row]) -> list[_Row]:
        """What the next window needs of this one: the last connection's setup records and
        the last data packet of each characteristic."""
        last_conn = rows[-1][5]
        last_data: dict[str, int] = {}
        setup: list[int] = []
        for i, row in enumerate(rows):
            if row[5] != last_conn:
                continue
            if self._is_data(row):
                last_data[row[3]] = i
            elif row[3] != _BATTERY_UUID:
                setup.append(i)
        keep = set(setup[-MAX_SETUP_RECORDS:]) | set(last_data.values())
        return [row for i, row in enumerate(rows) if i in keep]

    def state(self) -> dict[str, Any]:
        """The counts and the records the next window needs, as JSON-able values."""
        with self._lock:
            counted = self.counted_through_seq
            return {
                "profile": self.profile.name,
                "counted_through_seq": counted,
                "decode_errors": self.decode_errors,
                "streams": {name: t.to_json() for name, t in sorted(self.tallies.items())},
                "window": [
                    [seq, t, kind, uuid, payload.hex(), conn]
                    for seq, t, kind, uuid, payload, conn in self._rows
                    if seq <= counted
                ],
            }

    def restore(self, state: dict[str, Any]) -> None:
        """Continue from a :meth:`state` written by an earlier run (of the same profile)."""
        if state.get("profile") != self.profile.name:
            return
        with self._lock:
            self.counted_through_seq = int(state.get("counted_through_seq", -1))
            self.decode_errors = int(state.get("decode_errors", 0))
            self.tallies = {
                name: StreamTally.from_json(raw) for name, raw in state.get("streams", {}).items()
            }
            self._rows = [
                (int(seq), int(t), int(kind), str(uuid), bytes.fromhex(payload), int(conn))
                for seq, t, kind, uuid, payload, conn in state.get("window", [])
            ] + self._rows


def _records(rows: list[_Row]) -> RawRecords:
    return RawRecords(
        t_us=np.array([r[1] for r in rows], np.int64),
        kind=np.array([r[2] for r in rows], np.int8),
        char_uuid=[r[3] for r in rows],
        payload=[r[4] for r in rows],
        conn_id=np.array([r[5] for r in rows], np.int64),
    )


def catch_up(qc: LiveQc, folder: Path) -> int:
    """Feed ``qc`` the spooled records it has not counted (those a crashed collector wrote
    after its last status file), then evaluate; returns how many there were.

    Only the segments that can hold them are read: the last one or two. Call it for a ``qc``
    restored from a status file only (a fresh one would count the whole spool).
    """
    after = qc.counted_through_seq
    segments = list_segments(folder)
    starts = [parse_segment_name(p.name) for p in segments]
    first = 0
    for k, parsed in enumerate(starts):
        if parsed is not None and parsed[1] <= after + 1:
            first = k
    fed = 0
    for path in segments[first:]:
        try:
            got = read_segment_parts(path, str(path))
        except SpoolError as exc:
            log.warning("%s", exc)
            continue
        recs = got.records
        for i in np.flatnonzero(got.seq > after):
            qc.feed(
                int(got.seq[i]),
                int(recs.t_us[i]),
                int(recs.kind[i]),
                recs.char_uuid[i],
                recs.payload[i],
                int(recs.conn_id[i]),
            )
            fed += 1
    if fed:
        qc.evaluate()
    return fed


# --------------------------------------------------------------------------- spool writer thread
_Item = tuple[SpoolWriter, int, int, str, bytes, int]
_STOP = object()


class SpoolWriterThread:
    """One thread that appends queued records to their device's :class:`SpoolWriter`.

    The queue is unbounded so that the BLE callback never blocks; :attr:`max_depth` records how
    far it ever grew (the load benchmark checks it stays small).
    """

    def __init__(self, poll_s: float = 0.2) -> None:
        self.queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.poll_s = poll_s
        self.writers: list[SpoolWriter] = []
        #: live QC fed with every record spooled for a writer
        self.taps: dict[SpoolWriter, LiveQc] = {}
        self.records_written = 0
        self.max_depth = 0
        self.error: BaseException | None = None
        #: CPU seconds the writer thread used (set when it ends)
        self.cpu_s = 0.0
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="glutewake-spool", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def add(self, writer: SpoolWriter, tap: LiveQc | None = None) -> None:
        with self._lock:
            self.writers.append(writer)
            if tap is not None:
                self.taps[writer] = tap

    def put(self, item: _Item) -> None:
        self.queue.put(item)

    def depth(self) -> int:
        depth = self.queue.qsize()
        self.max_depth = max(self.max_depth, depth)
        return depth

    def _run(self) -> None:
        try:
            while True:
                try:
                    item = self.queue.get(timeout=self.poll_s)
                except queue.Empty:
                    with self._lock:
                        writers = list(self.writers)
                    for writer in writers:
                        writer.maybe_sync()  # the journal fsync bound holds when data stops too
                    continue
                if item is _STOP:
                    self.cpu_s = time.thread_time()
                    return
                writer, t_us, kind, uuid, payload, conn_id = item
                writer.append(t_us, kind, uuid, payload, conn_id)
                self.records_written += 1
                tap = self.taps.get(writer)
                if tap is not None:
                    tap.feed(writer.next_seq - 1, t_us, kind, uuid, payload, conn_id)
        except BaseException as exc:  # surfaced by close(); collection cannot go on without a spool
            self.error = exc
            log.exception("spool writer thread failed")

    def close(self) -> None:
        """Write everything queued, close every spool (segments written), stop the thread."""
        self.queue.put(_STOP)
        self._thread.join()
        with self._lock:
            writers = list(self.writers)
        for writer in writers:
            writer.close()
        if self.error is not None:
            raise CollectorError(f"spool writer failed: {self.error}") from self.error
