"""``glutewake status``: per participant and stream, how complete the collected data is.

The collector counts what each device delivered as it arrives (:class:`~glutewake.ingest.
spool_thread.LiveQc`) and keeps the counts in its status files (``DATA/status/*.json``), across
restarts; ``status`` only reads those files, so it answers in the same few milliseconds however
large the spool is. A device folder without them (a spool written by a simulator or an older
glutewake), or every folder with ``rescan``, is counted from the spool itself (finished segments
plus the live journal, read-only, safe while a collector appends). Per stream:

``samples_received``
    decoded samples (duplicates dropped).
``samples_expected``, ``samples_lost``
    samples the device sent or would have sent by its own clock at the nominal rate, from each
    start to its last sample, across link losses, reconnects and collector crashes; only a clean
    stop by the host closes a stretch (see :mod:`glutewake.ingest.stream_tally`). Their
    difference is what a dropped link, an out-of-range hour or a killed collector cost.
``gaps``, ``gap_s``
    holes longer than 2.5 sample periods inside those stretches: how many and their total
    length in seconds beyond one sample period.
``packets_lost``, ``duplicates``
    from the profile's sequence-number / timestamp checks (duplicates are dropped by decoding).
``last_data_age_s``
    seconds since the newest sample (``None`` without data).
``battery_pct``, ``battery_t_us``
    the newest battery level (a READ of, or a notification from, the Battery Level
    characteristic) and its host time (``None`` if never recorded).
``damaged_parts``, ``damaged_records``, ``damaged_s``
    damage found in the device's spool files (checksums that failed): the reports in its
    ``quarantine/`` folder, the records known lost and the time they covered.
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from glutewake.ingest.stream_tally import Counts, StreamTally
from glutewake.store.datadir import DataDir
from glutewake.store.quarantine import read_reports
from glutewake.store.storage import Store

if TYPE_CHECKING:
    from glutewake.devices import DeviceProfile

log = logging.getLogger(__name__)
log.addHandler(logging.NullHandler())

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
def read_status_files(data_dir: DataDir) -> list[dict[str, Any]]:
    """The collector's per-device status JSONs (unreadable ones are skipped, logged)."""
    out = []
    for path in sorted((data_dir.root / "status").glob("*.json")):
        try:
            out.append(json.loads(path.read_text()))
        except (OSError, json.JSONDecodeError) as exc:
            log.warning("skipping unreadable status file %s: %s", path, exc)
    return out


def stream_status(
    data_dir: DataDir,
    *,
    now_us: int | None = None,
    profiles: dict[str, DeviceProfile] | None = None,
    rescan: bool = False,
) -> list[dict[str, Any]]:
    """One dict per participant and stream: the completeness of the collected data.

    Reads the counts the collector keeps in its status files (small, so this takes the same
    time whatever the spool's size). A device folder without them (a spool written by a
    simulator or an older glutewake), or every folder with ``rescan``, is counted from the
    spool itself, decoded from the first record to the last.

    Parameters
    ----------
    data_dir : DataDir
        The data directory (read-only here).
    now_us : int, optional
        "Now" for ``last_data_age_s`` (default: the host clock).
    profiles : dict, optional
        Profiles by name that take precedence over the registry (tests, plug-ins).
    rescan : bool
        Count every folder from its spool instead of the collector's status files.

    Returns
    -------
    list of dict
        Keys: ``participant_id``, ``device_id``, ``profile``, ``stream``, ``fs_hz``, ``state``,
        :data:`STATUS_KEYS`, ``samples_lost``, ``battery_t_us``, ``decode_errors``,
        ``damaged_parts``, ``damaged_records``, ``damaged_s`` and ``counted_from`` (``collector``
        or ``spool``). Sorted by participant, device, stream.
    """
    now_us = time.time_ns() // 1000 if now_us is None else now_us
    by_folder = {}
    for status in read_status_files(data_dir):
        if status.get("spool_dir"):
            by_folder[str(Path(status["spool_dir"]).resolve())] = status
    rows: list[dict[str, Any]] = []
    for rel in Store.of(data_dir.root).spool_folders():
        folder = data_dir.root / rel
        status = by_folder.get(str(folder.resolve()), {})
        counts = None if rescan else _collector_counts(status)
        if counts is None:
            from glutewake.ingest.spool_scan import spool_counts  # numpy, pyarrow: only here

            counts = spool_counts(folder, status, profiles)
            if counts is None:
                continue
            source = "spool"
        else:
            source = "collector"
        profile_name, participant, device, battery, battery_t_us, tallies = counts
        base = {
            "participant_id": participant or folder.parent.name.partition("=")[2],
            "device_id": device or folder.name.partition("=")[2],
            "profile": profile_name,
            "state": _state(status, now_us),
            **_damage(folder),
        }
        for stream, tally in sorted(tallies.items()):
            figures = tally.status(now_us)
            rows.append(
                {
                    **base,
                    "stream": stream,
                    **figures,
                    "samples_lost": max(
                        0, figures["samples_expected"] - figures["samples_received"]
                    ),
                    "battery_pct": battery,
                    "battery_t_us": battery_t_us,
                    "counted_from": source,
                }
            )
    return sorted(rows, key=lambda r: (str(r["participant_id"]), str(r["device_id"]), r["stream"]))




def _collector_counts(status: dict[str, Any]) -> Counts | None:
    """What the collector's status file says, or None if it keeps no counts."""
    live = status.get("live_qc")
    if not isinstance(live, dict) or "streams" not in live:
        return None
    tallies = {name: StreamTally.from_json(raw) for name, raw in live["streams"].items()}
    decode_errors = int(live.get("decode_errors", 0))
    for tally in tallies.values():  # decode errors are per device: shown on every stream
        tally.decode_errors = decode_errors
    battery = status.get("battery_pct")
    return (
        status.get("profile"),
        status.get("participant_id"),
        status.get("device_id"),
        None if battery is None else int(battery),
        status.get("battery_t_us"),
        tallies,
    )


#: a status file older than this is not a running collector's
_STALE_S = 60.0


def _state(status: dict[str, Any], now_us: int) -> str | None:
    """The collector's state; ``... (collector not running)`` when its process is gone or its
    file went stale without a stop (a crash or a kill)."""
    state = status.get("state")
    if state is None or state in ("stopped", "failed"):
        return state
    pid = status.get("pid")
    alive = True
    if isinstance(pid, int):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            alive = False
        except OSError:
            pass  # another user's process: alive
    fresh = now_us - int(status.get("updated_t_us") or 0) <= _STALE_S * 1e6
    return state if alive and fresh else f"{state} (collector not running)"


def _damage(folder: Path) -> dict[str, Any]:
    """Damaged parts of a device's spool, from the reports in its ``quarantine/`` folder."""
    parts = [p for _, report in read_reports(Store.of(folder), "") for p in report.parts]
    known = [p.records_lost for p in parts if p.records_lost is not None]
    spans = [
        p.end_us - p.start_us for p in parts if p.start_us is not None and p.end_us is not None
    ]
    return {
        "damaged_parts": len(parts),
        "damaged_records": int(sum(known)),
        "damaged_s": sum(spans) / 1e6,
    }
