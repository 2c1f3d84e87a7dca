"""Drive a byte-level virtual device offline and spool what a collector would have received.

The records are those a collector would spool, on a virtual clock: connect (MTU), the profile's
start writes and the device's answers, every data notification at its host receive time (device
send time plus a seeded BLE latency), link losses, and the stop writes. So a simulated study goes
through exactly the decoders and the pipeline that real data does.

Devices with a bulk path (:meth:`VirtualDevice.render_until`) render a whole connected span in one
vectorised pass; others are stepped notification by notification. The records go straight into
Parquet segments cut where :class:`~glutewake.store.spool.SpoolWriter` would cut them (same
numbering, names and contents): an offline run has no crash to survive, so the writer's
per-record journal would only cost time.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from glutewake.devices.base import DeviceProfile, RawRecords, RecordKind, VirtualDevice
from glutewake.store.spool import SpoolInfo, SpoolWriter, list_segments, write_segment


@dataclass(frozen=True)
class Outage:
    """A span with no link (out of range, Bluetooth off): ``[start_us, end_us)``."""

    start_us: int
    end_us: int


@dataclass(frozen=True)
class LinkModel:
    """BLE delivery latency: a fixed part plus an exponential tail (seeded)."""

    base_latency_us: int = 7_500
    mean_extra_latency_us: float = 6_000.0
    mtu: int = 247
    #: host polling step where the device model cannot say when its next notification is due;
    #: notifications then arrive in bursts at these steps, as they do at BLE connection events
    poll_step_us: int = 250_000


class _SegmentWriter:
    """Records of an offline run written as the segments a :class:`SpoolWriter` would write.

    The writer opens at virtual time ``started_us``; a segment closes on the record that is
    ``segment_s`` of virtual time after the previous cut (or the opening), or that brings the
    pending payload bytes to ``segment_bytes``.
    """

    def __init__(self, folder: Path, info: SpoolInfo, *, started_us: int) -> None:
        # a SpoolWriter opened and closed at once does the start-up work (stale files, a
        # crashed journal, record numbering) and tells the rotation settings
        probe = SpoolWriter(folder, info, journal_fsync_s=float("inf"), clock=lambda: 0.0)
        self.folder, self.info = probe.folder, info
        self.next_seq, self.segment_s, self.segment_bytes = (
            probe.next_seq,
            probe.segment_s,
            probe.segment_bytes,
        )
        probe.close()
        self._started_s = started_us / 1e6
        self._t: list[int] = []
        self._kind: list[int] = []
        self._uuid: list[str] = []
        self._payload: list[bytes] = []
        self._conn: list[int] = []
        self._bytes = 0

    def append(self, t_us: int, kind: int, char_uuid: str, payload: bytes, conn_id: int) -> None:
        """Add one record; close the segment where the SpoolWriter would."""
        self._t.append(t_us)
        self._kind.append(kind)
        self._uuid.append(char_uuid)
        self._payload.append(payload)
        self._conn.append(conn_id)
        self._bytes += len(payload)
        now_s = t_us / 1e6
        if now_s - self._started_s >= self.segment_s or self._bytes >= self.segment_bytes:
            self._started_s = now_s
            self._flush()

    def extend(
        self, t_us: list[int], kind: int, uuids: list[str], payloads: list[bytes], conn_id: int
    ) -> None:
        """Add many records (non-decreasing times), cut exactly as appending them one by one."""
        now_s = np.asarray(t_us, dtype=np.int64) / 1e6  # the same doubles as t_us / 1e6
        size = np.cumsum([len(p) for p in payloads])
        i, n = 0, len(t_us)
        while i < n:
            before = int(size[i - 1]) if i else 0
            cut = (now_s[i:] - self._started_s >= self.segment_s) | (
                self._bytes + (size[i:] - before) >= self.segment_bytes
            )
            j = i + int(np.argmax(cut)) + 1 if cut.any() else n
            self._t += t_us[i:j]
            self._kind += [kind] * (j - i)
            self._uuid += uuids[i:j]
            self._payload += payloads[i:j]
            self._conn += [conn_id] * (j - i)
            self._bytes += int(size[j - 1]) - before
            if cut.any():
                self._started_s = float(now_s[j - 1])
                self._flush()
            i = j

    def _flush(self) -> None:
        n = len(self._t)
        if not n:
            return
        records = RawRecords(
            t_us=np.array(self._t, dtype=np.int64),
            kind=np.array(self._kind, dtype=np.int8),
            char_uuid=self._uuid,
            payload=self._payload,
            conn_id=np.array(self._conn, dtype=np.int64),
        )
        write_segment(self.folder, self.info, records, np.arange(self.next_seq, self.next_seq + n))
        self.next_seq += n
        self._t, self._kind, self._uuid, self._payload, self._conn = [], [], [], [], []
        self._bytes = 0

    def close(self) -> None:
        """Write what is pending as the last segment."""
        self._flush()


def spool_virtual_session(
    folder: Path,
    info: SpoolInfo,
    profile: DeviceProfile,
    device: VirtualDevice,
    *,
    start_us: int,
    end_us: int,
    first_conn_id: int,
    rng: np.random.Generator,
    outages: Sequence[Outage] = (),
    link: LinkModel = LinkModel(),
) -> int:
    """Connect, stream from ``start_us`` to ``end_us`` (minus outages), and spool it all.

    Returns the next unused connection number. Segments rotate every hour of virtual time,
    as the collector's do.
    """
    spans = _connected_spans(start_us, end_us, outages)
    # the collector starts (and opens its writer) when the first connection comes up
    writer = _SegmentWriter(folder, info, started_us=spans[0][0] if spans else start_us)
    conn_id = first_conn_id
    last_t = start_us

    def put(t_us: int, kind: int, uuid: str, payload: bytes) -> None:
        nonlocal last_t
        t_us = max(t_us, last_t)  # the host's receive clock is monotonic
        last_t = t_us
        writer.append(t_us, kind, uuid, payload, conn_id)

    try:
        for span_start, span_end in spans:
            put(span_start, RecordKind.CONNECT, "", struct.pack("<H", link.mtu))
            t = span_start + 20_000
            for write in profile.start_writes(info.config):
                put(t, RecordKind.WRITE, write.char_uuid, write.data)
                for uuid, answer in device.handle_write(write.char_uuid, write.data, t):
                    put(t + link.base_latency_us, RecordKind.NOTIFY, uuid, answer)
                t += 30_000
            try:
                rendered = device.render_until(span_end)
            except NotImplementedError:
                rendered = None
            if rendered:
                rx_us = np.maximum.accumulate(np.maximum(_received(rendered, rng, link), last_t))
                last_t = int(rx_us[-1])  # the host's receive clock is monotonic
                uuids, payloads = [r[1] for r in rendered], [r[2] for r in rendered]
                writer.extend(rx_us.tolist(), RecordKind.NOTIFY, uuids, payloads, conn_id)
            while rendered is None:
                try:
                    due = device.next_due_us()
                except NotImplementedError:
                    due = t + link.poll_step_us
                if due is None or due >= span_end:
                    break
                t = due
                latency = link.base_latency_us + int(rng.exponential(link.mean_extra_latency_us))
                for uuid, payload in device.poll(due):
                    put(due + latency, RecordKind.NOTIFY, uuid, payload)
            if span_end >= end_us:
                for write in profile.stop_writes(info.config):
                    put(span_end, RecordKind.WRITE, write.char_uuid, write.data)
                    device.handle_write(write.char_uuid, write.data, span_end)
                put(span_end + 50_000, RecordKind.DISCONNECT, "", b"host_stop")
            else:
                device.link_lost(span_end)
                put(span_end + 2_000_000, RecordKind.DISCONNECT, "", b"supervision timeout")
            conn_id += 1
    finally:
        writer.close()
    return conn_id


def _received(
    rendered: list[tuple[int, str, bytes]], rng: np.random.Generator, link: LinkModel
) -> NDArray[np.int64]:
    """Host receive times of bulk-rendered notifications (before the monotonic clamp).

    One latency per step (the notifications sharing a due time), drawn from ``rng`` in step
    order, exactly as stepping draws one per ``poll``: both paths spool the same records.
    """
    due = np.fromiter((r[0] for r in rendered), dtype=np.int64, count=len(rendered))
    step = np.ones(due.size, dtype=bool)
    step[1:] = due[1:] != due[:-1]
    extra = rng.exponential(link.mean_extra_latency_us, size=int(step.sum()))
    latency = link.base_latency_us + extra.astype(np.int64)  # int() truncates the same way
    return due + latency[np.cumsum(step) - 1]


def _connected_spans(
    start_us: int, end_us: int, outages: Sequence[Outage]
) -> list[tuple[int, int]]:
    spans = []
    t = start_us
    for out in sorted(outages, key=lambda o: o.start_us):
        if out.end_us <= t or out.start_us >= end_us:
            continue
        if out.start_us > t:
            spans.append((t, out.start_us))
        t = max(t, out.end_us)
    if t < end_us:
        spans.append((t, end_us))
    return spans


def already_spooled(folder: Path) -> bool:
    """True if the folder already holds segments (the demo does not spool twice)."""
    return folder.is_dir() and bool(list_segments(folder))
