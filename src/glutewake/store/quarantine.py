"""Damage is data: spool files that failed their checks, moved aside and described.

A spool file that cannot be read at all (zero bytes, truncated, no valid footer) is moved into
its device folder's ``quarantine/`` folder, never deleted; a segment of which only some row
groups fail their page checksums stays where it is (its good rows are data) and a journal with
damaged records is moved aside once its good records are in a segment. Either way a *damage
report* - ``quarantine/<file>.json`` - says what was found: the file, each damaged part, why, how
many records it held, and the stretch of time they covered (exact from the row group's
statistics or the neighbouring journal records, else estimated from the file name and the
neighbouring segments). The reports are the durable record: ``glutewake process`` loads them
into the ``spool_damage`` table, ``glutewake status`` counts them, and ``glutewake rebuild``
finds them again.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from glutewake.store.storage import Store

log = logging.getLogger(__name__)
log.addHandler(logging.NullHandler())

QUARANTINE_DIR = "quarantine"
REPORT_SUFFIX = ".json"


@dataclass(frozen=True)
class DamagedPart:
    """One damaged part of a file: the whole file, a row group, or a stretch of bytes."""

    part: str
    reason: str
    #: records the part held (``None``: unknown)
    records_lost: int | None
    #: the host-time stretch the lost records covered (UTC µs; ``None``: unknown)
    start_us: int | None
    end_us: int | None
    #: how the stretch was found: ``row group statistics``, ``neighbouring records``, ...
    span_from: str


@dataclass(frozen=True)
class DamageReport:
    """What was found wrong with one spool file (the JSON beside it in ``quarantine/``)."""

    #: the file's name where it is now: in ``quarantine/`` if ``quarantined``, else in the
    #: device folder
    file: str
    #: its name in the device folder when the damage was found
    original: str
    kind: str  #: ``segment`` or ``journal``
    quarantined: bool
    participant_id: str
    device_id: str
    detected_at: str
    parts: tuple[DamagedPart, ...] = field(default_factory=tuple)

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), sort_keys=True, indent=1).encode()

    @classmethod
    def from_json(cls, text: bytes | str) -> DamageReport:
        raw: dict[str, Any] = json.loads(text)
        parts = tuple(DamagedPart(**p) for p in raw.pop("parts", []))
        return cls(**raw, parts=parts)


def new_report(
    file: str,
    *,
    original: str,
    kind: str,
    quarantined: bool,
    owner: tuple[str, str],
    parts: tuple[DamagedPart, ...],
) -> DamageReport:
    """A report detected now; ``owner`` is ``(participant_id, device_id)``."""
    return DamageReport(
        file=file,
        original=original,
        kind=kind,
        quarantined=quarantined,
        participant_id=owner[0],
        device_id=owner[1],
        detected_at=now_iso(),
        parts=parts,
    )


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="microseconds")


def report_name(file: str) -> str:
    return f"{QUARANTINE_DIR}/{file}{REPORT_SUFFIX}"


def write_report(store: Store, folder: str, report: DamageReport) -> None:
    """Write (or replace) ``folder/quarantine/<file>.json`` atomically.

    A report that already exists for the same file keeps its ``detected_at``, so that finding
    the same damage again changes nothing.
    """
    rel = _join(folder, report_name(report.file))
    if store.exists(rel):
        try:
            old = DamageReport.from_json(store.read_bytes(rel))
        except (ValueError, TypeError, KeyError, OSError):
            old = None
        if old is not None:
            report = DamageReport(
                **{**asdict(report), "detected_at": old.detected_at, "parts": report.parts}
            )
    store.write_bytes(rel, report.to_json())


def move_aside(store: Store, folder: str, name: str, report: DamageReport) -> None:
    """Write the report, then move ``folder/name`` into ``folder/quarantine/`` (never deleted).

    The report goes first: a crash between the two steps leaves the file in place with its
    report, and the next reader finds the damage again and moves it then.
    """
    write_report(store, folder, report)
    store.move(_join(folder, name), _join(folder, f"{QUARANTINE_DIR}/{report.file}"))
    log.warning(
        "%s: %s; moved to %s/",
        _join(folder, name),
        "; ".join(p.reason for p in report.parts),
        _join(folder, QUARANTINE_DIR),
    )


def read_reports(store: Store, pattern: str) -> list[tuple[str, DamageReport]]:
    """``(device folder, report)`` for every report matching ``pattern`` (a glob of device
    folders relative to the store, e.g. ``spool/participant_id=*/device=*``; ``""``: the store
    is one device folder); unreadable reports are logged and skipped."""
    out = []
    prefix = f"{pattern}/" if pattern else ""
    for rel in store.glob(f"{prefix}{QUARANTINE_DIR}/*{REPORT_SUFFIX}"):
        folder = rel.rsplit(f"{QUARANTINE_DIR}/", 1)[0].rstrip("/")
        try:
            out.append((folder, DamageReport.from_json(store.read_bytes(rel))))
        except (ValueError, TypeError, KeyError, OSError) as exc:
            log.warning("%s: unreadable damage report (%s)", rel, exc)
    return out


def report_rows(folder: str, report: DamageReport) -> list[dict[str, Any]]:
    """One ``spool_damage`` row per damaged part (times as UTC datetimes)."""
    where = f"{QUARANTINE_DIR}/{report.file}" if report.quarantined else report.file
    return [
        {
            "file": _join(folder, where),
            "part": p.part,
            "original_path": _join(folder, report.original),
            "quarantined": report.quarantined,
            "participant_id": report.participant_id,
            "device_id": report.device_id,
            "kind": report.kind,
            "reason": p.reason,
            "records_lost": p.records_lost,
            "start_time": _utc(p.start_us),
            "end_time": _utc(p.end_us),
            "span_from": p.span_from,
            "detected_at": dt.datetime.fromisoformat(report.detected_at),
        }
        for p in report.parts
    ]


def _utc(t_us: int | None) -> dt.datetime | None:
    if t_us is None:
        return None
    return dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(microseconds=int(t_us))


def _join(folder: str, name: str) -> str:
    return f"{folder}/{name}" if folder else name
