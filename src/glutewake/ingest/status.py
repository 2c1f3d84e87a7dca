"""``glutewake status``: per participant and stream, how complete the collected data is.

Reads the collector's status files (``DATA/status/*.json``) and the spool itself (finished
segments plus the live journal, read-only, safe while a collector appends), decodes the spool with
each device's profile and reports per stream:

``samples_received``
    decoded samples in the spool.
``samples_expected``
    samples the stream's nominal rate gives over the time it was connected and streaming (per
    connection: first to last sample, inclusive).
``gaps``, ``gap_s``
    holes in the sample timeline longer than 2.5 sample periods (disconnects, lost packets,
    device stops): how many and their total length in seconds beyond one sample period.
``packets_lost``, ``duplicates``
    from the profile's sequence-number / timestamp checks (duplicates are dropped by decoding).
``last_data_age_s``
    seconds since the newest sample (``None`` without data).
``battery_pct``, ``battery_t_us``
    the newest battery level the spool holds (a READ of, or a notification from, the Battery
    Level characteristic) and its host time (``None`` if never recorded).
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from glutewake.devices import DeviceProfile, get_profile
from glutewake.devices.base import RawRecords, RecordKind
from glutewake.store.datadir import DataDir
from glutewake.store.spool import (
    JOURNAL_NAME,
    SpoolError,
    SpoolInfo,
    _journal_records,
    list_segments,
    read_segment,
    spool_folders,
)

log = logging.getLogger(__name__)
log.addHandler(logging.NullHandler())

BATTERY_LEVEL_UUID = "00002a19-0000-1000-8000-00805f9b34fb"
STATUS_KEYS = (
    "samples_received",
    "samples_expected",
    "gaps",
    "gap_s",
    "packets_lost",
    "duplicates",
    "last_data_age_s",
    "battery_pct",
)
#: a hole longer than this many sample periods counts as a gap
GAP_PERIODS = 2.5


def read_status_files(data_dir: DataDir) -> list[dict[str, Any]]:
    """The collector's per-device status JSONs (unreadable ones are skipped, logged)."""
    out = []
    for path in sorted((data_dir.root / "status").glob("*.json")):
        try:
            out.append(json.loads(path.read_text()))
        except (OSError, json.JSONDecodeError) as exc:
            log.warning("skipping unreadable status file %s: %s", path, exc)
    return out


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
            info, records, seq = read_segment(segment)
        except SpoolError as exc:
            log.warning("%s", exc)
            continue
        parts.append((records, seq))
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


def _connection_windows(records: RawRecords, now_us: int) -> list[tuple[int, int]]:
    """(start, end) host-time windows of each connection, from CONNECT/DISCONNECT records."""
    windows = []
    for conn in np.unique(records.conn_id):
        sel = records.conn_id == conn
        t = records.t_us[sel]
        kinds = records.kind[sel]
        start = (
            int(t[kinds == RecordKind.CONNECT][0])
            if (kinds == RecordKind.CONNECT).any()
            else int(t[0])
        )
        ended = kinds == RecordKind.DISCONNECT
        end = int(t[ended][-1]) if ended.any() else now_us
        windows.append((start, end))
    return windows


def stream_metrics(
    t_us: np.ndarray, fs_hz: float, windows: list[tuple[int, int]], lead_us: int = 100_000
) -> dict[str, Any]:
    """samples_received, samples_expected, gaps and gap_s of one stream's sample times.

    Each sample belongs to the latest connection that started before it (``lead_us`` absorbs
    clock-model error at the edges); a connection expects one sample per period from its first
    to its last sample.

    Examples
    --------
    >>> t = np.r_[np.arange(0, 1_000_000, 10_000), np.arange(3_000_000, 4_000_000, 10_000)]
    >>> m = stream_metrics(t, 100.0, [(0, 1_000_000), (2_900_000, 4_000_000)])
    >>> m["samples_received"], m["samples_expected"], m["gaps"], round(m["gap_s"], 2)
    (200, 200, 1, 2.0)
    """
    t = np.sort(np.asarray(t_us, np.int64))
    period_us = 1e6 / fs_hz if fs_hz > 0 else 0.0
    expected = 0
    if t.size and period_us:
        starts = np.sort(np.array([w[0] for w in windows] or [int(t[0])], np.int64))
        owner = np.searchsorted(starts, t + lead_us, side="right") - 1
        # t is sorted, so each owner's samples are one run: first and last via run boundaries
        change = np.flatnonzero(np.diff(owner)) + 1
        first = np.r_[0, change]
        last = np.r_[change - 1, t.size - 1]
        expected = int(np.sum(np.round((t[last] - t[first]) / period_us).astype(np.int64) + 1))
    step = np.diff(t)
    holes = step[step > GAP_PERIODS * period_us] if period_us else step[:0]
    return {
        "samples_received": int(t.size),
        "samples_expected": int(expected),
        "gaps": int(holes.size),
        "gap_s": float((holes - period_us).sum() / 1e6) if holes.size else 0.0,
    }


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


def stream_status(
    data_dir: DataDir,
    *,
    now_us: int | None = None,
    profiles: dict[str, DeviceProfile] | None = None,
) -> list[dict[str, Any]]:
    """One dict per participant and stream: the completeness of the collected data.

    Parameters
    ----------
    data_dir : DataDir
        The data directory (read-only here).
    now_us : int, optional
        "Now" for ``last_data_age_s`` (default: the host clock).
    profiles : dict, optional
        Profiles by name that take precedence over the registry (tests, plug-ins).

    Returns
    -------
    list of dict
        Keys: ``participant_id``, ``device_id``, ``profile``, ``stream``, ``fs_hz``, ``state``,
        and :data:`STATUS_KEYS`; plus ``battery_t_us`` and ``decode_errors``. Sorted by
        participant, device, stream.
    """
    now_us = time.time_ns() // 1000 if now_us is None else now_us
    by_folder = {}
    for status in read_status_files(data_dir):
        if status.get("spool_dir"):
            by_folder[str(Path(status["spool_dir"]).resolve())] = status
    rows: list[dict[str, Any]] = []
    for folder in spool_folders(data_dir.spool):
        status = by_folder.get(str(folder.resolve()), {})
        info, records = read_spool(folder)
        profile_name = info.profile if info else status.get("profile")
        config = info.config if info else status.get("config") or {}
        participant = info.participant_id if info else status.get("participant_id")
        device = info.device_id if info else status.get("device_id")
        if participant is None:
            participant = folder.parent.name.partition("=")[2]
        if device is None:
            device = folder.name.partition("=")[2]
        base = {
            "participant_id": participant,
            "device_id": device,
            "profile": profile_name,
            "state": status.get("state"),
        }
        # the spool is the record (value and time); the status file only covers a collector
        # that has read the battery but whose journal is not readable yet
        battery_t, battery_v = battery_levels(records)
        battery: int | None = int(battery_v[-1]) if battery_v.size else None
        battery_t_us: int | None = int(battery_t[-1]) if battery_t.size else None
        if battery is None and status.get("battery_pct") is not None:
            battery = int(status["battery_pct"])
            battery_t_us = status.get("battery_t_us")
        if not profile_name or not len(records):
            continue
        try:
            profile = (profiles or {}).get(profile_name) or get_profile(profile_name)
        except (KeyError, ImportError) as exc:
            log.warning("%s: cannot decode (%s)", folder, exc)
            continue
        result = profile.decode_records(records, config)
        windows = _connection_windows(records, now_us)
        for stream, samples in sorted(result.streams.items()):
            qc = result.qc.get(stream, {})
            metrics = stream_metrics(samples.t_us, samples.fs_hz, windows)
            last = int(samples.t_us.max()) if len(samples) else None
            rows.append(
                {
                    **base,
                    "stream": stream,
                    "fs_hz": float(samples.fs_hz),
                    **metrics,
                    "packets_lost": int(qc.get("packets_lost", 0)),
                    "duplicates": int(qc.get("duplicates", 0)),
                    "last_data_age_s": None if last is None else (now_us - last) / 1e6,
                    "battery_pct": battery,
                    "battery_t_us": battery_t_us,
                    "decode_errors": len(result.errors),
                }
            )
    return sorted(rows, key=lambda r: (str(r["participant_id"]), str(r["device_id"]), r["stream"]))
