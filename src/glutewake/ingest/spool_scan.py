"""Counting a device's collection from its spool: every record decoded again (the slow way).

``glutewake status`` reads the collector's running counts; this is its fallback for spools
without them (written by a simulator or an older glutewake) and what ``status --rescan`` uses.
It also holds the battery readings of a spool, which ``process`` records in the ``qc`` table.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from glutewake.devices import DeviceProfile, get_profile
from glutewake.devices.base import RawRecords, RecordKind
from glutewake.ingest.spool_thread import LiveQc
from glutewake.ingest.stream_tally import Counts
from glutewake.store.spool import (
    JOURNAL_NAME,
    SpoolError,
    SpoolInfo,
    _journal_records,
    list_segments,
    read_segment_parts,
)

log = logging.getLogger(__name__)
log.addHandler(logging.NullHandler())

BATTERY_LEVEL_UUID = "00002a19-0000-1000-8000-00805f9b34fb"


def read_spool(folder: Path) -> tuple[SpoolInfo | None, RawRecords]:
    """All records of one device spool: segments plus the live journal, each once, in order.

    Safe while a collector appends: the journal is read first, then the segments, and records
    that a concurrent rotation put in both are kept once (by record number).
    """
    journal = folder / JOURNAL_NAME
    j_records: RawRecords | None = None
    j_seq = np.empty(0, np.int64)
    if journal.exists():
        try:
            j_records, j_seq = _journal_records(journal)
        except OSError:  # rotated away between exists() and read
            j_records = None
    info: SpoolInfo | None = None
    parts: list[tuple[RawRecords, np.ndarray]] = []
    for segment in list_segments(folder):
        try:
            got = read_segment_parts(segment, str(segment))  # intact row groups of damaged ones
        except SpoolError as exc:
            log.warning("%s", exc)
            continue
        info = got.info
        parts.append((got.records, got.seq))
    if j_records is not None and len(j_records):
        parts.append((j_records, j_seq))
    if not parts:
        return info, _take(
            RawRecords(np.empty(0, np.int64), np.empty(0, np.int8), [], [], np.empty(0, np.int64)),
            np.empty(0, np.int64),
        )
    seq_all = np.concatenate([s for _, s in parts])
    merged = RawRecords(
        t_us=np.concatenate([r.t_us for r, _ in parts]),
        kind=np.concatenate([r.kind for r, _ in parts]),
        char_uuid=[u for r, _ in parts for u in r.char_uuid],
        payload=[p for r, _ in parts for p in r.payload],
        conn_id=np.concatenate([r.conn_id for r, _ in parts]),
    )
    _, first = np.unique(seq_all, return_index=True)  # sorted by record number, each once
    return info, _take(merged, first)


def _take(records: RawRecords, idx: np.ndarray) -> RawRecords:
    return RawRecords(
        t_us=records.t_us[idx],
        kind=records.kind[idx],
        char_uuid=[records.char_uuid[i] for i in idx],
        payload=[records.payload[i] for i in idx],
        conn_id=records.conn_id[idx],
    )


def battery_levels(records: RawRecords) -> tuple[np.ndarray, np.ndarray]:
    """Battery levels recorded in a device's spool records, in record order.

    Every READ of the standard Battery Level characteristic (on connect and periodically) and
    every Battery Level notification is one reading; empty payloads and values above 100 %
    (invalid for that characteristic) are left out.

    Parameters
    ----------
    records : RawRecords
        Spooled records of one device (any number of connections).

    Returns
    -------
    t_us : int64 ndarray
        Host time of each reading (UTC µs).
    battery_pct : int16 ndarray
        The level, in %.

    Examples
    --------
    >>> from glutewake.devices.base import RecordKind
    >>> recs = RawRecords(
    ...     t_us=np.array([10, 20, 30], np.int64),
    ...     kind=np.array([RecordKind.READ, RecordKind.NOTIFY, RecordKind.NOTIFY], np.int8),
    ...     char_uuid=[BATTERY_LEVEL_UUID, "other", BATTERY_LEVEL_UUID],
    ...     payload=[bytes([87]), b"x", bytes([86])],
    ...     conn_id=np.ones(3, np.int64),
    ... )
    >>> t_us, pct = battery_levels(recs)
    >>> t_us.tolist(), pct.tolist()
    ([10, 30], [87, 86])
    """
    kinds = np.asarray(records.kind)
    candidates = np.flatnonzero((kinds == RecordKind.READ) | (kinds == RecordKind.NOTIFY))
    idx = [
        int(i)
        for i in candidates
        if records.char_uuid[i].lower() == BATTERY_LEVEL_UUID
        and records.payload[i]
        and records.payload[i][0] <= 100
    ]
    t_us = np.asarray(records.t_us, np.int64)[idx]
    pct = np.array([records.payload[i][0] for i in idx], np.int16)
    return t_us, pct


def spool_counts(
    folder: Path, status: dict[str, Any], profiles: dict[str, DeviceProfile] | None
) -> Counts | None:
    """Count a folder from its whole spool (segments and live journal): ``status``'s
    :data:`~glutewake.ingest.stream_tally.Counts`, None if it holds nothing to count."""
    info, records = read_spool(folder)
    profile_name = info.profile if info else status.get("profile")
    config = info.config if info else status.get("config") or {}
    if not profile_name or not len(records):
        return None
    try:
        profile = (profiles or {}).get(profile_name) or get_profile(profile_name)
    except (KeyError, ImportError) as exc:
        log.warning("%s: cannot decode (%s)", folder, exc)
        return None
    qc = LiveQc(profile, config)
    for i in range(len(records)):
        qc.feed(
            i,
            int(records.t_us[i]),
            int(records.kind[i]),
            records.char_uuid[i],
            records.payload[i],
            int(records.conn_id[i]),
        )
    qc.evaluate()
    for tally in qc.tallies.values():
        tally.decode_errors = qc.decode_errors
    # the spool is the record of the battery (value and time); the status file only covers a
    # collector that has read the battery but whose journal is not readable yet
    battery_t, battery_v = battery_levels(records)
    battery: int | None = int(battery_v[-1]) if battery_v.size else None
    battery_t_us: int | None = int(battery_t[-1]) if battery_t.size else None
    if battery is None and status.get("battery_pct") is not None:
        battery = int(status["battery_pct"])
        battery_t_us = status.get("battery_t_us")
    participant = info.participant_id if info else status.get("participant_id")
    device = info.device_id if info else status.get("device_id")
    return profile_name, participant, device, battery, battery_t_us, qc.tallies
