"""One recording, imported twice: a partial file (an export taken while recording, a cut
copy) and later the complete one. Their bytes differ, so the file hash does not catch it.

Two imports are versions of one recording when they come from the same device in the same
format, hold the same streams, and each stream starts at the same instant (within two sample
periods). The longer version is kept: importing the complete file after the partial one
replaces the partial one (its recordings, QC and ``import_files`` row go, its sample files are
deleted after the commit); importing the partial file after the complete one, or the same
recording again, adds nothing (the file is skipped and says which file holds it). Imports that
merely overlap in time stay side by side: readers keep one sample per instant.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from glutewake.ingest.importers.errors import NoSamplesError

Spans = dict[str, tuple[int, int, float]]  #: stream -> (first µs, last µs, Hz)


class ContainedImportError(NoSamplesError):
    """The file is a shorter version of (or the same recording as) one already imported."""


def relation(new: Spans, old: Spans) -> str | None:
    """``"longer"`` if ``new`` extends ``old``, ``"contained"`` if ``old`` already holds it,
    None if they are not versions of one recording.

    >>> relation({"acc": (0, 10_000_000, 100.0)}, {"acc": (5_000, 4_000_000, 100.0)})
    'longer'
    >>> relation({"acc": (0, 4_000_000, 100.0)}, {"acc": (0, 10_000_000, 100.0)})
    'contained'
    >>> relation({"acc": (0, 4_000_000, 100.0)}, {"acc": (60_000_000, 90_000_000, 100.0)})
    """
    if not new or set(new) != set(old):
        return None
    longer = contained = True
    for stream, (lo, hi, fs) in new.items():
        o_lo, o_hi, o_fs = old[stream]
        period_us = 1e6 / max(fs, o_fs, 1e-9)
        if abs(lo - o_lo) > max(2 * period_us, 1000):
            return None
        longer = longer and hi > o_hi
        contained = contained and hi <= o_hi
    return "longer" if longer else "contained" if contained else None


def settle_versions(
    con: Any, participant_id: str, device_id: str, fmt: str, spans: Spans, path: Path
) -> list[str]:
    """Replace earlier, shorter imports of this recording; refuse it if one already holds it.

    Runs in the sink's write transaction. Returns the recording ids removed (their sample
    files are the caller's to delete after the commit); raises :class:`ContainedImportError`
    (the transaction rolls back, the file counts as skipped) when the recording is in already.
    """
    from glutewake.store.bookkeeping import forget_import, import_spans

    removed: list[str] = []
    earlier = import_spans(con, participant_id, device_id, fmt)
    for sha, old in earlier.items():
        found = relation(spans, old)
        if found == "contained":
            where = con.execute(
                "SELECT path FROM import_files WHERE participant_id = ? AND sha256 = ?",
                [participant_id, sha],
            ).fetchone()
            raise ContainedImportError(
                f"{path}: the same recording (device {device_id}, same start) is already "
                f"imported, as long or longer, from {where[0] if where else sha[:12]}"
            )
        if found == "longer":
            removed.extend(forget_import(con, participant_id, sha))
    return removed
