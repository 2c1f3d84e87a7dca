"""The collector's spool writer thread and its live packet-loss count.

The BLE callbacks put records on an unbounded queue; one thread appends them to each device's
:class:`SpoolWriter` (so a slow disk never stalls the BLE event loop) and feeds :class:`LiveQc`,
which decodes what arrived every so often to count lost and duplicated packets while collecting.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq

from glutewake.devices import DeviceProfile
from glutewake.devices.base import RawRecords, RecordKind
from glutewake.store.spool import SpoolWriter, list_segments

log = logging.getLogger(__name__)
log.addHandler(logging.NullHandler())


class CollectorError(RuntimeError):
    """A device that cannot be collected from (the message says which and why)."""


# --------------------------------------------------------------------------- live QC
_Row = tuple[int, int, str, bytes, int]


class LiveQc:
    """Packet loss and duplicates of one device while collecting, for the status line and file.

    The writer thread feeds it every record it spools; :meth:`evaluate` (off the event loop)
    decodes what arrived since the last evaluation with the device's profile, keeping the
    connection's setup records (reads, writes, control-point answers) and the last data packet
    of each characteristic so that losses across the window edge are still seen.
    """

    def __init__(self, profile: DeviceProfile, config: dict[str, Any]) -> None:
        self.profile = profile
        self.config = config
        writes = {w.char_uuid.lower() for w in profile.start_writes(config)}
        self.data_uuids = {u.lower() for u in profile.notify_uuids} - writes
        self.packets_lost = 0
        self.duplicates = 0
        self.decode_errors = 0
        self._rows: list[_Row] = []
        self._lock = threading.Lock()

    def feed(self, t_us: int, kind: int, uuid: str, payload: bytes, conn_id: int) -> None:
        with self._lock:
            self._rows.append((t_us, kind, uuid, payload, conn_id))

    def evaluate(self) -> None:
        """Decode the window, add its losses and duplicates to the totals, slide the window."""
        with self._lock:
            rows = list(self._rows)
        if not any(r[1] == RecordKind.NOTIFY and r[2] in self.data_uuids for r in rows):
            return
        records = RawRecords(
            t_us=np.array([r[0] for r in rows], np.int64),
            kind=np.array([r[1] for r in rows], np.int8),
            char_uuid=[r[2] for r in rows],
            payload=[r[3] for r in rows],
            conn_id=np.array([r[4] for r in rows], np.int64),
        )
        try:
            result = self.profile.decode_records(records, self.config)
        except Exception:  # a decoder bug must not stop collection; the spool keeps the bytes
            log.exception("live QC decode failed")
            return
        last_conn = rows[-1][4]
        last_data: dict[str, int] = {}
        for i, row in enumerate(rows):
            if row[1] == RecordKind.NOTIFY and row[2] in self.data_uuids and row[4] == last_conn:
                last_data[row[2]] = i
        keep_data = set(last_data.values())
        kept = [
            row
            for i, row in enumerate(rows)
            if row[4] == last_conn
            and (i in keep_data or not (row[1] == RecordKind.NOTIFY and row[2] in self.data_uuids))
        ]
        with self._lock:
            self.packets_lost += sum(int(q.get("packets_lost", 0)) for q in result.qc.values())
            self.duplicates += sum(int(q.get("duplicates", 0)) for q in result.qc.values())
            self.decode_errors += len(result.errors)
            self._rows = kept + self._rows[len(rows) :]


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
                    tap.feed(t_us, kind, uuid, payload, conn_id)
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


def _last_conn_id(folder: Path) -> int:
    segments = list_segments(folder)
    if not segments:
        return 0
    column = pq.read_table(segments[-1], columns=["conn_id"])["conn_id"]
    return int(column[-1].as_py()) if len(column) else 0
