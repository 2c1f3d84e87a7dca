"""Participant bookkeeping researchers keep by hand: participants, phases, symptoms, placements."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from glutewake.analytics.catalog import CatalogError, open_write

if TYPE_CHECKING:
    import duckdb

    from glutewake.datadir import DataDir


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


def _require_participant(con: duckdb.DuckDBPyConnection, participant_id: str) -> None:
    row = con.execute(
        "SELECT 1 FROM participants WHERE participant_id = ?", [participant_id]
    ).fetchone()
    if row is None:
        raise BookkeepingError(
            f"participant {participant_id!r} does not exist "
            "(add it with 'glutewake participant add')"
        )


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
    """Insert a participant or update its fields (on an open read-write connection)."""
    if not participant_id or participant_id.strip() != participant_id:
        raise BookkeepingError(f"participant id {participant_id!r} must be non-empty, no spaces")
    check_tz(tz)
    if baseline_start and baseline_end and baseline_end < baseline_start:
        raise BookkeepingError("baseline end date is before its start date")
    con.execute(
        """
        INSERT INTO participants VALUES (?, ?, ?, ?, ?, ?, ?, now())
        ON CONFLICT (participant_id) DO UPDATE SET
            tz = excluded.tz,
            baseline_start = coalesce(excluded.baseline_start, participants.baseline_start),
            baseline_end = coalesce(excluded.baseline_end, participants.baseline_end),
            goal_sitting_min = coalesce(excluded.goal_sitting_min, participants.goal_sitting_min),
            goal_breaks_per_sitting_hour = coalesce(excluded.goal_breaks_per_sitting_hour,
                                                    participants.goal_breaks_per_sitting_hour),
            notes = coalesce(excluded.notes, participants.notes)
        """,
        [
            participant_id,
            tz,
            baseline_start,
            baseline_end,
            goal_sitting_min,
            goal_breaks_per_sitting_hour,
            notes,
        ],
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
    con.execute(
        "INSERT OR REPLACE INTO phases VALUES (?, ?, ?, ?)",
        [participant_id, phase, start_date, note],
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
    con.execute(
        "INSERT OR REPLACE INTO symptoms VALUES (?, ?, ?, ?, ?, ?, now())",
        [participant_id, local_date, lower_back, hip, knee, note],
    )


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

    ``channel_roles`` is a list of ``(channel label, muscle, side)``.
    """
    _require_participant(con, participant_id)
    roles = json.dumps([list(r) for r in channel_roles]) if channel_roles else None
    con.execute(
        """
        INSERT INTO devices (device_id, participant_id, profile, placement, channel_roles)
        VALUES (?, ?, ?, ?, ?)
        ON CONFLICT (participant_id, device_id) DO UPDATE SET
            profile = excluded.profile,
            placement = coalesce(excluded.placement, devices.placement),
            channel_roles = coalesce(excluded.channel_roles, devices.channel_roles)
        """,
        [device_id, participant_id, profile, placement, roles],
    )


def add_participant(data_dir: DataDir, participant_id: str, tz: str, **fields: object) -> None:
    """Open the catalog briefly and add or update one participant."""
    check_tz(tz)
    with open_write(data_dir) as con:
        upsert_participant(con, participant_id, tz, **fields)  # type: ignore[arg-type]


__all__ = [
    "BookkeepingError",
    "CatalogError",
    "add_participant",
    "check_tz",
    "log_symptoms",
    "set_device",
    "set_phase",
    "upsert_participant",
]
