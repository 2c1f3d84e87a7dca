"""Imported recordings in the bookkeeping ledger: what a rebuild needs beyond their samples.

The sample files of an import hold its samples; the catalog rows that describe them (the
``recordings`` row with its sampling rate, channels, unit and QC counts, the ``qc`` rows of its
gaps, the device it came from) were computed from the original file, which may be gone by the
time the catalog has to be rebuilt. :func:`imported_entry` turns them into one ledger entry, and
:func:`rows_from_entry` back into the same :class:`Rows` for :func:`~glutewake.pipeline.write.
write_rows`, so a rebuild writes exactly the rows the import wrote.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

from glutewake.pipeline.rows import Recording, Rows

#: the ledger operation of an import's recordings
IMPORTED_OP = "imported_recordings"
_TIMES = ("start_time", "end_time")


def imported_entry(rows: Rows) -> dict[str, Any]:
    """The ledger entry of the recordings, QC rows and devices an import stored."""
    return {
        "recordings": [dataclasses.asdict(r) for r in rows.recordings],
        "qc": [dict(q) for q in rows.qc],
        "devices": [[pid, dev, dict(info)] for (pid, dev), info in rows.devices.items()],
    }


def rows_from_entry(entry: dict[str, Any]) -> Rows:
    """The :class:`Rows` an :func:`imported_entry` was made of (as read back from JSON)."""
    rows = Rows()
    for raw in entry.get("recordings", []):
        rows.recordings.append(Recording(**{**raw, "channels": tuple(raw["channels"])}))
    for raw in entry.get("qc", []):
        q = dict(raw)
        for key in _TIMES:
            if isinstance(q.get(key), str):
                q[key] = dt.datetime.fromisoformat(q[key])
        if isinstance(q.get("local_date"), str):
            q["local_date"] = dt.date.fromisoformat(q["local_date"])
        rows.qc.append(q)
    for pid, dev, info in entry.get("devices", []):
        rows.devices[(str(pid), str(dev))] = dict(info)
    return rows
