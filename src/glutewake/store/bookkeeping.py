"""Bookkeeping: participants, phases, symptoms and devices researchers keep by hand, and the
record of which files were imported.

Functions taking a connection run inside the caller's write transaction (the pipeline's, for an
import's rows); :func:`write` opens the catalog briefly for one of them. This module and the
pipeline are the only writers of the catalog. Every change is also written to the ledger
(``DATA/bookkeeping.jsonl``, :mod:`glutewake.store.ledger`) with the exact values written, so
that ``glutewake rebuild`` can :func:`replay` it into a new catalog.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from glutewake.store import ledger
from glutewake.store.catalog import CatalogError, open_read, open_write
from glutewake.store.ids import InvalidIdError, check_participant_id, device_component

if TYPE_CHECKING:
    import duckdb

    from glutewake.store.datadir import DataDir

_P = ParamSpec("_P")
_T = TypeVar("_T")


def write(
    data_dir: DataDir,
    action: Callable[Concatenate[duckdb.DuckDBPyConnection, _P], _T],
    *args: _P.args,
    **kwargs: _P.kwargs,
) -> _T:
    """Open the catalog read-write briefly and run one bookkeeping ``action(con, ...)``.

    >>> write(DataDir("DATA"), set_phase, "P01", 2, dt.date(2026, 3, 1))  # doctest: +SKIP
    """
    with open_write(data_dir) as con:
        return action(con, *args, **kwargs)


class BookkeepingError(ValueError):
    """Invalid bookkeeping input (names the field and what was expected)."""


def check_tz(tz: str) -> str:
    """Return ``tz`` if it is an IANA time zone name, else raise :class:`BookkeepingError`.

    >>> check_tz("Europe/Berlin")
    'Europe/Berlin'
    """
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise BookkeepingError(
            f"time zone {tz!r} is not an IANA time zone name (e.g. 'Europe/Berlin')"
        ) from None
    return tz


def _unknown(participant_id: str) -> BookkeepingError:
    return BookkeepingError(
        f"participant {participant_id!r} does not exist (add it with 'glutewake participant add')"
    )


def _require_participant(con: duckdb.DuckDBPyConnection, participant_id: str) -> None:
    _check_id(participant_id)
    row = con.execute(
        "SELECT 1 FROM participants WHERE participant_id = ?", [participant_id]
    ).fetchone()
    if row is None:
        raise _unknown(participant_id)


def _check_id(participant_id: str) -> None:
    try:
        check_participant_id(participant_id)
    except InvalidIdError as exc:
        raise BookkeepingError(str(exc)) from None


def require_registered(data_dir: DataDir, participant_id: str) -> None:
    """Raise :class:`BookkeepingError` unless ``participant_id`` is valid and in the catalog."""
    _check_id(participant_id)
    if not data_dir.catalog.exists():
        raise _unknown(participant_id)
    with open_read(data_dir) as con:
        _require_participant(con, participant_id)


def upsert_participant(
    con: duckdb.DuckDBPyConnection,
    participant_id: str,
    tz: str,
    *,
    baseline_start: dt.date | None = None,
    baseline_end: dt.date | None = None,
    goal_sitting_min: float | None = None,
    goal_breaks_per_sitting_hour: float | None = None,
    notes: str | None = None,
) -> None:
    """Insert a participant or update its fields (on an open read-write connection).

    The id must follow the participant-ID rule (:func:`~glutewake.store.ids.check_participant_id`)
    and may not differ only in letter case from an existing id: the two would share their
    folders on a case-insensitive file system (macOS, Windows).
    """
    _check_id(participant_id)
    twin = con.execute(
        "SELECT participant_id FROM participants "
        "WHERE lower(participant_id) = lower(?) AND participant_id <> ?",
        [participant_id, participant_id],
    ).fetchone()
    if twin is not None:
        raise BookkeepingError(
            f"participant id {participant_id!r} differs only in letter case from the existing "
            f"{twin[0]!r}; their folders would be one on a case-insensitive file system"
        )
    check_tz(tz)
    if baseline_start and baseline_end and baseline_end < baseline_start:
        raise BookkeepingError("baseline end date is before its start date")
    _apply(
        con,
        "participant",
        {
            "participant_id": participant_id,
            "tz": tz,
            "baseline_start": baseline_start,
            "baseline_end": baseline_end,
            "goal_sitting_min": goal_sitting_min,
            "goal_breaks_per_sitting_hour": goal_breaks_per_sitting_hour,
            "notes": notes,
            "created_at": _now(),
        },
    )


def set_phase(
    con: duckdb.DuckDBPyConnection,
    participant_id: str,
    phase: int,
    start_date: dt.date,
    note: str | None = None,
) -> None:
    """Record that ``participant_id`` is in ``phase`` (1-3) from ``start_date`` on."""
    if phase not in (1, 2, 3):
        raise BookkeepingError(f"phase must be 1, 2 or 3, not {phase}")
    _require_participant(con, participant_id)
    _apply(
        con,
        "phase",
        {"participant_id": participant_id, "phase": phase, "start_date": start_date, "note": note},
    )


def log_symptoms(
    con: duckdb.DuckDBPyConnection,
    participant_id: str,
    local_date: dt.date,
    *,
    lower_back: int | None = None,
    hip: int | None = None,
    knee: int | None = None,
    note: str | None = None,
) -> None:
    """Record the day's 0-10 pain ratings (one row per participant and local day)."""
    for name, value in (("lower back", lower_back), ("hip", hip), ("knee", knee)):
        if value is not None and not 0 <= value <= 10:
            raise BookkeepingError(f"{name} pain must be 0-10, not {value}")
    if lower_back is None and hip is None and knee is None:
        raise BookkeepingError("give at least one pain rating (lower back, hip or knee)")
    _require_participant(con, participant_id)
    _apply(
        con,
        "symptoms",
        {
            "participant_id": participant_id,
            "local_date": local_date,
            "lower_back_pain": lower_back,
            "hip_pain": hip,
            "knee_pain": knee,
            "note": note,
            "logged_at": _now(),
        },
    )


#: muscles an EMG channel role may name (glute_* are scored; the others are the reference)
MUSCLES = (
    "glute_max",
    "glute_med",
    "glute_min",
    "hamstring",
    "biceps_femoris",
    "semitendinosus",
    "erector_spinae",
)
_SIDES = {"left": "left", "l": "left", "right": "right", "r": "right"}


def parse_channel_roles(text: str) -> list[tuple[str, str, str]]:
    """``CHANNEL:MUSCLE:SIDE,...`` as ``(channel, muscle, side)`` triples, checked.

    >>> parse_channel_roles("glute_r:glute_max:right,ham_r:hamstring:r")
    [('glute_r', 'glute_max', 'right'), ('ham_r', 'hamstring', 'right')]
    """
    roles = []
    for item in text.split(","):
        parts = [p.strip() for p in item.split(":")]
        if len(parts) != 3 or not all(parts):
            raise BookkeepingError(f"channel role {item!r} is not CHANNEL:MUSCLE:SIDE")
        channel, muscle, side = parts
        if muscle.lower() not in MUSCLES:
            raise BookkeepingError(
                f"channel role {item!r}: muscle {muscle!r} is not one of {', '.join(MUSCLES)}"
            )
        if side.lower() not in _SIDES:
            raise BookkeepingError(f"channel role {item!r}: side {side!r} is not left or right")
        roles.append((channel, muscle.lower(), _SIDES[side.lower()]))
    channels = [c for c, _, _ in roles]
    if len(set(channels)) != len(channels):
        raise BookkeepingError(f"channel roles name a channel twice: {text!r}")
    return roles


def set_device(
    con: duckdb.DuckDBPyConnection,
    participant_id: str,
    device_id: str,
    profile: str,
    *,
    placement: str | None = None,
    channel_roles: Sequence[tuple[str, str, str]] | None = None,
) -> None:
    """Register a participant's device, its placement and (EMG) channel roles.

    ``channel_roles`` is a list of ``(channel label, muscle, side)``. A changed placement or
    set of roles on a device that already delivered data marks it ``rederive_pending``: the
    next ``process`` derives its sitting days and EMG sessions again with the new settings.
    """
    _require_participant(con, participant_id)
    try:
        device_component(device_id)
    except InvalidIdError as exc:
        raise BookkeepingError(str(exc)) from None
    roles = json.dumps([list(r) for r in channel_roles]) if channel_roles else None
    before = con.execute(
        "SELECT placement, channel_roles, first_seen FROM devices "
        "WHERE participant_id = ? AND device_id = ?",
        [participant_id, device_id],
    ).fetchone()
    changed = (
        before is not None
        and before[2] is not None
        and (
            (placement is not None and placement != before[0])
            or (roles is not None and roles != before[1])
        )
    )
    _apply(
        con,
        "device",
        {
            "device_id": device_id,
            "participant_id": participant_id,
            "profile": profile,
            "placement": placement,
            "channel_roles": roles,
            "rederive": bool(changed),
        },
    )


def register_placement(
    data_dir: DataDir,
    participant_id: str,
    device_id: str,
    profile: str,
    placement: str | None,
    channel_roles: Sequence[tuple[str, str, str]] | None = None,
) -> bool:
    """Register a device's placement and/or channel roles; True when the device was not in
    the catalog before."""
    with open_write(data_dir) as con:
        known = con.execute(
            "SELECT count(*) FROM devices WHERE participant_id = ? AND device_id = ?",
            [participant_id, device_id],
        ).fetchone()
        set_device(
            con,
            participant_id,
            device_id,
            profile,
            placement=placement,
            channel_roles=channel_roles,
        )
    return not (known and known[0])


def forget_unseen_device(data_dir: DataDir, participant_id: str, device_id: str) -> None:
    """Remove a registered device that never delivered data (an import that failed)."""
    with open_write(data_dir) as con:
        unseen = con.execute(
            "SELECT count(*) FROM devices WHERE participant_id = ? AND device_id = ? "
            "AND first_seen IS NULL",
            [participant_id, device_id],
        ).fetchone()
        if unseen and unseen[0]:
            _apply(con, "forget_device", {"participant_id": participant_id, "device_id": device_id})


def imported_hashes(data_dir: DataDir, participant_id: str) -> set[str]:
    """SHA-256 of every file already imported for a participant."""
    if not data_dir.catalog.exists():
        return set()
    with open_read(data_dir) as con:
        return {
            str(r[0])
            for r in con.execute(
                "SELECT sha256 FROM import_files WHERE participant_id = ?", [participant_id]
            ).fetchall()
        }


def insert_import_file(
    con: duckdb.DuckDBPyConnection,
    *,
    sha256: str,
    participant_id: str,
    path: Path,
    fmt: str,
    rows: int,
    recordings: Sequence[str],
) -> None:
    """Record one imported file (its hash makes a second import of it a no-op)."""
    _apply(
        con,
        "import_file",
        {
            "sha256": sha256,
            "participant_id": participant_id,
            "path": str(path),
            "format": fmt,
            "size_bytes": path.stat().st_size,
            "rows_read": rows,
            "recordings": ",".join(recordings),
            "imported_at": _now(),
        },
    )


def insert_import_qc(
    con: duckdb.DuckDBPyConnection,
    *,
    participant_id: str,
    recording_id: str,
    start_us: int,
    end_us: int,
    fs_measured_hz: float | None,
    detail: dict[str, Any],
) -> None:
    """One ``qc`` row of kind ``import`` for one recording of an imported file."""
    epoch = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    _apply(
        con,
        "import_qc",
        {
            "participant_id": participant_id,
            "recording_id": recording_id,
            "start_time": epoch + dt.timedelta(microseconds=int(start_us)),
            "end_time": epoch + dt.timedelta(microseconds=int(end_us)),
            "value": fs_measured_hz,
            "detail": json.dumps(detail, sort_keys=True, default=str),
        },
    )


#: each ledger operation: its SQL and the order of its parameters (the values written to the
#: ledger, so that a replay writes exactly the same rows)
_SQL: dict[str, tuple[str, tuple[str, ...]]] = {
    "participant": (
        """
        INSERT INTO participants VALUES (?, ?, ?, ?, ?, ?, ?, ?)
        ON CONFLICT (participant_id) DO UPDATE SET
            tz = excluded.tz,
            baseline_start = coalesce(excluded.baseline_start, participants.baseline_start),
            baseline_end = coalesce(excluded.baseline_end, participants.baseline_end),
            goal_sitting_min = coalesce(excluded.goal_sitting_min, participants.goal_sitting_min),
            goal_breaks_per_sitting_hour = coalesce(excluded.goal_breaks_per_sitting_hour,
                                                    participants.goal_breaks_per_sitting_hour),
            notes = coalesce(excluded.notes, participants.notes)
        """,
        (
            "participant_id",
            "tz",
            "baseline_start",
            "baseline_end",
            "goal_sitting_min",
            "goal_breaks_per_sitting_hour",
            "notes",
            "created_at",
        ),
    ),
    "phase": (
        "INSERT OR REPLACE INTO phases VALUES (?, ?, ?, ?)",
        ("participant_id", "phase", "start_date", "note"),
    ),
    "symptoms": (
        "INSERT OR REPLACE INTO symptoms VALUES (?, ?, ?, ?, ?, ?, ?)",
        (
            "participant_id",
            "local_date",
            "lower_back_pain",
            "hip_pain",
            "knee_pain",
            "note",
            "logged_at",
        ),
    ),
    "device": (
        """
        INSERT INTO devices (device_id, participant_id, profile, placement, channel_roles)
        VALUES (?, ?, ?, ?, ?)
        ON CONFLICT (participant_id, device_id) DO UPDATE SET
            profile = excluded.profile,
            placement = coalesce(excluded.placement, devices.placement),
            channel_roles = coalesce(excluded.channel_roles, devices.channel_roles),
            rederive_pending = devices.rederive_pending OR coalesce(?, false)
        """,
        ("device_id", "participant_id", "profile", "placement", "channel_roles", "rederive"),
    ),
    "forget_device": (
        "DELETE FROM devices WHERE participant_id = ? AND device_id = ? AND first_seen IS NULL",
        ("participant_id", "device_id"),
    ),
    "import_file": (
        "INSERT OR REPLACE INTO import_files (sha256, participant_id, path, format, "
        "size_bytes, rows_read, recordings, imported_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (
            "sha256",
            "participant_id",
            "path",
            "format",
            "size_bytes",
            "rows_read",
            "recordings",
            "imported_at",
        ),
    ),
    "import_qc": (
        "INSERT INTO qc (participant_id, recording_id, local_date, kind, start_time, "
        "end_time, value, detail) VALUES (?, ?, NULL, 'import', ?, ?, ?, ?)",
        ("participant_id", "recording_id", "start_time", "end_time", "value", "detail"),
    ),
    "import_flag": (
        "INSERT INTO qc (participant_id, recording_id, local_date, kind, start_time, "
        "end_time, value, detail) VALUES (?, ?, NULL, 'import_flag', NULL, NULL, NULL, ?)",
        ("participant_id", "recording_id", "detail"),
    ),
}
#: operations of more than one statement: name -> function(con, row)
_MULTI: dict[str, Callable[[duckdb.DuckDBPyConnection, dict[str, Any]], None]] = {}
def _forget_import_rows(con: duckdb.DuckDBPyConnection, row: dict[str, Any]) -> None:
    ids = list(row.get("recordings") or [])
    if ids:
        con.execute("DELETE FROM qc WHERE list_contains(?, recording_id)", [ids])
        con.execute("DELETE FROM recordings WHERE list_contains(?, recording_id)", [ids])
    con.execute(
        "DELETE FROM import_files WHERE participant_id = ? AND sha256 = ?",
        [row["participant_id"], row["sha256"]],
    )


_MULTI["forget_import"] = _forget_import_rows
OPERATIONS = frozenset(_SQL) | frozenset(_MULTI)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _apply(con: duckdb.DuckDBPyConnection, op: str, row: dict[str, Any]) -> None:
    """Run one operation and write it to the ledger (:mod:`glutewake.store.ledger`)."""
    replay(con, op, row)
    ledger.append(con, op, row)


def replay(con: duckdb.DuckDBPyConnection, op: str, row: dict[str, Any]) -> None:
    """Write one ledger entry's change to the catalog (no ledger entry is written).

    Raises
    ------
    BookkeepingError
        If ``op`` is not a bookkeeping operation.
    """
    if op in _MULTI:
        _MULTI[op](con, row)
        return
    if op not in _SQL:
        raise BookkeepingError(f"unknown bookkeeping operation {op!r}")
    sql, names = _SQL[op]
    con.execute(sql, [row.get(name) for name in names])


def insert_import_flag(
    con: duckdb.DuckDBPyConnection,
    *,
    participant_id: str,
    recording_id: str,
    flag: str,
    message: str,
    file: Path,
) -> None:
    """One ``qc`` row of kind ``import_flag``: something odd an import kept (not silently)."""
    detail = json.dumps({"flag": flag, "message": message, "file": str(file)}, sort_keys=True)
    _apply(
        con,
        "import_flag",
        {"participant_id": participant_id, "recording_id": recording_id, "detail": detail},
    )


def import_spans(
    con: duckdb.DuckDBPyConnection, participant_id: str, device_id: str, fmt: str
) -> dict[str, dict[str, tuple[int, int, float]]]:
    """Earlier imports of a device in one format: sha256 -> stream -> (first µs, last µs, Hz)."""
    rows = con.execute(
        """
        SELECT f.sha256, r.stream, min(epoch_us(r.start_time)), max(epoch_us(r.end_time)),
               max(r.fs_hz)
        FROM import_files f
        JOIN recordings r ON r.participant_id = f.participant_id
            AND list_contains(string_split(f.recordings, ','), r.recording_id)
        WHERE f.participant_id = ? AND f.format = ? AND r.device_id = ?
        GROUP BY ALL
        """,
        [participant_id, fmt, device_id],
    ).fetchall()
    spans: dict[str, dict[str, tuple[int, int, float]]] = {}
    for sha, stream, lo, hi, fs in rows:
        spans.setdefault(str(sha), {})[str(stream)] = (int(lo), int(hi), float(fs))
    return spans


def forget_import(con: duckdb.DuckDBPyConnection, participant_id: str, sha256: str) -> list[str]:
    """Remove an imported file's recordings, their QC and its ``import_files`` row (a longer
    version of the same recording replaces it); returns the recording ids removed, whose
    sample files the caller deletes after the commit."""
    row = con.execute(
        "SELECT recordings FROM import_files WHERE participant_id = ? AND sha256 = ?",
        [participant_id, sha256],
    ).fetchone()
    if row is None:
        return []
    ids = [r for r in str(row[0] or "").split(",") if r]
    # through the ledger: a rebuild must not bring the replaced version back
    entry = {"participant_id": participant_id, "sha256": sha256, "recordings": ids}
    _apply(con, "forget_import", entry)
    return ids


def add_participant(data_dir: DataDir, participant_id: str, tz: str, **fields: object) -> None:
    """Open the catalog briefly and add or update one participant."""
    _check_id(participant_id)
    check_tz(tz)
    with open_write(data_dir) as con:
        upsert_participant(con, participant_id, tz, **fields)  # type: ignore[arg-type]


__all__ = [
    "BookkeepingError",
    "CatalogError",
    "add_participant",
    "check_tz",
    "forget_import",
    "forget_unseen_device",
    "import_spans",
    "imported_hashes",
    "insert_import_file",
    "insert_import_flag",
    "insert_import_qc",
    "log_symptoms",
    "parse_channel_roles",
    "register_placement",
    "replay",
    "require_registered",
    "set_device",
    "set_phase",
    "upsert_participant",
    "write",
]
