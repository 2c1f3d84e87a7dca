"""The process job: new spool data -> device decoders -> samples -> detectors -> catalog.

This is the one module that joins the parts. It is idempotent: every derived row is keyed by
recording or by participant and local day, and a re-run replaces exactly the rows it recomputes.
Decoding and detection happen before the catalog is opened for writing, so the write lock is held
for moments only (readers retry briefly meanwhile).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from glutewake.pipeline import emg_sessions, pending
from glutewake.pipeline.decode import decode_task, store_stream
from glutewake.pipeline.imported import IMPORTED_OP, imported_entry
from glutewake.pipeline.parallel import TaskFailure, TaskRunner
from glutewake.pipeline.rows import (
    ProcessError,
    ProcessSummary,
    ProgressHook,
    Recording,
    Rows,
    local_date,
    merge_rows,
    no_progress,
    record_failure,
)
from glutewake.pipeline.sitting import DAY_CONTEXT_S, THIGH_IMU_PROFILES, derive_sitting
from glutewake.pipeline.write import write_damage, write_rows
from glutewake.store import catalog, ledger
from glutewake.store.datadir import DataDir
from glutewake.store.quarantine import read_reports, report_rows
from glutewake.store.samples import NewRecording

if TYPE_CHECKING:
    from glutewake.ingest.importers import ImportSummary


@dataclass
class _Catalog:
    """How a run reaches the catalog: how long it waits for it, who is told about a wait, and
    the catalog state its results are computed on (see :mod:`glutewake.pipeline.pending`)."""

    data_dir: DataDir
    wait_s: float = 30.0
    on_wait: catalog.WaitHook | None = None
    state: list[int] = field(default_factory=list)

    def read(self) -> contextlib.AbstractContextManager[Any]:
        return catalog.open_read(self.data_dir, timeout_s=self.wait_s, on_wait=self.on_wait)

    def write(self, rows: Rows) -> None:
        """Write a run's rows, or keep them in ``pending/`` if the catalog stays busy."""
        try:
            write_rows(self.data_dir, rows, wait_s=self.wait_s, on_wait=self.on_wait)
        except catalog.CatalogBusyError as exc:
            path = pending.save(self.data_dir, rows, self.state)
            raise ProcessError(
                f"{exc}. This run's results are kept in {path}; the next 'glutewake process' "
                "writes them first"
            ) from exc
        self.state = pending.catalog_state(self.data_dir)

    def write_saved(self, summary: ProcessSummary) -> None:
        """Write the results earlier runs had to keep, if nothing was written since."""
        for path in pending.saved(self.data_dir):
            state, rows = pending.load(path)
            if state == pending.catalog_state(self.data_dir):
                write_rows(self.data_dir, rows, wait_s=self.wait_s, on_wait=self.on_wait)
                summary.warnings.append(f"wrote the results an earlier run kept in {path}")
            else:
                summary.warnings.append(
                    f"{path}: the catalog was written after these results were computed; "
                    "this run computes them again"
                )
            path.unlink()


def _known_state(
    data_dir: DataDir, via: _Catalog | None = None
) -> tuple[dict[str, tuple[int, int, int]], dict[str, str], dict]:
    """Spool files already processed, participants' time zones and device settings."""
    if not data_dir.catalog.exists():
        return {}, {}, {}
    with (via or _Catalog(data_dir)).read() as con:
        files = {
            str(path): (int(size), int(lo), int(hi))
            for path, size, lo, hi in con.execute(
                "SELECT path, size_bytes, min_conn_id, max_conn_id FROM spool_files"
            ).fetchall()
        }
        tzs = {
            str(p): str(tz)
            for p, tz in con.execute("SELECT participant_id, tz FROM participants").fetchall()
        }
        devices = {
            (str(p), str(d)): (placement, roles)
            for p, d, placement, roles in con.execute(
                "SELECT participant_id, device_id, placement, channel_roles FROM devices"
            ).fetchall()
        }
    return files, tzs, devices


def _stored_recordings(
    data_dir: DataDir, redo: bool
) -> tuple[dict[str, list[Recording]], set[tuple[str, str]]]:
    """Recordings to derive again although no new spool data touches them, per participant.

    A device whose placement or channel roles changed after its data arrived
    (``devices.rederive_pending``): its recordings, and the other thigh ACC recordings of the
    days its ACC touches (a day is measured from what is worn on the thigh). With ``redo``:
    every imported recording (spool data is decoded again anyway).
    """
    if not data_dir.catalog.exists():
        return {}, set()
    with catalog.open_read(data_dir) as con:
        waiting = {
            (str(p), str(d))
            for p, d in con.execute(
                "SELECT participant_id, device_id FROM devices WHERE rederive_pending"
            ).fetchall()
        }
        query = """
            WITH pending AS (
                SELECT participant_id, device_id FROM devices WHERE rederive_pending),
            own AS (
                SELECT r.* FROM recordings r JOIN pending USING (participant_id, device_id)),
            touched AS (
                SELECT participant_id, min(start_time) - INTERVAL 1 DAY AS lo,
                       max(end_time) + INTERVAL 1 DAY AS hi
                FROM own WHERE stream = 'acc' GROUP BY participant_id)
            SELECT * FROM own
            UNION
            SELECT r.* FROM recordings r JOIN touched t USING (participant_id)
            WHERE r.stream = 'acc' AND r.end_time >= t.lo AND r.start_time <= t.hi
        """
        if redo:
            query += " UNION SELECT * FROM recordings WHERE profile LIKE 'import:%'"
        cols = [
            "recording_id",
            "participant_id",
            "device_id",
            "profile",
            "stream",
            "conn_id",
            "start_time",
            "end_time",
            "n_samples",
            "fs_hz",
            "channels",
            "unit",
            "exercise",
        ]
        rows = con.execute(f"SELECT {', '.join(cols)} FROM ({query}) ORDER BY ALL").fetchall()
    out: dict[str, list[Recording]] = {}
    epoch = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    for rid, pid, dev, profile, stream, conn, t0, t1, n, fs, channels, unit, ex in rows:
        out.setdefault(str(pid), []).append(
            Recording(
                recording_id=str(rid),
                participant_id=str(pid),
                device_id=str(dev),
                profile=str(profile),
                stream=str(stream),
                conn_id=int(conn),
                start_us=(t0 - epoch) // dt.timedelta(microseconds=1),
                end_us=(t1 - epoch) // dt.timedelta(microseconds=1),
                n_samples=int(n),
                fs_hz=float(fs),
                channels=tuple(str(channels).split(",")),
                unit=str(unit),
                exercise=ex,
                qc={},
            )
        )
    return out, waiting


def add_recordings(
    data_dir: DataDir,
    recordings: Iterable[NewRecording],
    *,
    extra_rows: Callable[[Any], None] | None = None,
    progress: ProgressHook = no_progress,
) -> ProcessSummary:
    """Store samples that did not come through the spool (imports) and derive what they touch.

    Samples go to the sample store exactly as decoded spool data does; the participant-days and
    sessions they touch are (re)derived; ``extra_rows(con)`` runs inside the same short write
    transaction (an importer records its file hashes there).
    """
    if not data_dir.exists():
        raise ProcessError(f"data directory {data_dir.root} does not exist")
    summary = ProcessSummary()
    _, tzs, devices = _known_state(data_dir)
    rows = Rows()
    for new in recordings:
        store_stream(data_dir, new, 0, rows, summary)
    # what the sample files alone cannot give back, for 'glutewake rebuild' (the ledger)
    entry = imported_entry(rows)
    _derive(data_dir, rows, tzs, devices, summary, progress, TaskRunner())

    def in_transaction(con: Any) -> None:
        ledger.append(con, IMPORTED_OP, entry)  # before the import's bookkeeping, as replayed
        if extra_rows is not None:
            extra_rows(con)

    write_rows(data_dir, rows, in_transaction)
    return summary


def derive_recordings(
    data_dir: DataDir,
    recordings: Sequence[Recording],
    *,
    progress: ProgressHook = no_progress,
    runner: TaskRunner | None = None,
) -> ProcessSummary:
    """Derive the participant-days and exercise sessions of recordings whose rows are already
    in the catalog (a rebuild's imported recordings), from their sample files."""
    summary = ProcessSummary()
    _, tzs, devices = _known_state(data_dir)
    rows = Rows(recordings=list(recordings))
    _derive(data_dir, rows, tzs, devices, summary, progress, runner or TaskRunner())
    rows.recordings = []  # written already (with their QC rows, which a rewrite would replace)
    write_rows(data_dir, rows)
    return summary


def process(
    data_dir: DataDir,
    *,
    progress: ProgressHook = no_progress,
    redo: bool = False,
    workers: int = 1,
    runner: TaskRunner | None = None,
    batch_participants: int = 100,
    wait_s: float = 600.0,
    on_wait: catalog.WaitHook | None = None,
) -> ProcessSummary:
    """Decode new spool data, run the detectors, and update the catalog; idempotent.

    Parameters
    ----------
    data_dir : DataDir
        The deployment's data directory.
    progress : callable, optional
        ``progress(description, total)`` returns an ``advance(n)`` callable; the CLI passes a
        progress bar.
    redo : bool
        Re-decode every spool file and re-derive every day, not only what is new: the days of
        every thigh recording in the catalog are derived again, imported ones included (how an
        older catalog gets today's sitting figures; see the changelog in docs/schema.md).
    workers : int
        Processes on this machine, when no ``runner`` is given.
    runner : TaskRunner, optional
        Where the tasks run (processes or a Dask cluster), their retries, and whether a failed
        task stops the run. Tasks: one per device spool folder (decoding), per participant-day
        (sitting) and per EMG recording; results are identical for every runner. A task that
        fails on every attempt is reported in ``summary.failures`` and the ``task_failures``
        table, everything else is written, and the next run retries it.
    batch_participants : int
        Participants decoded, derived and written together: the rows waiting for the catalog
        stay bounded by one batch (tasks within a batch still run in parallel).
    wait_s : float
        How long to wait for the catalog when another process has it open (``math.inf``: as
        long as it takes). A read-only query blocks the write too: DuckDB allows no writer while
        any process has the file open. If the wait runs out, the batch's finished results are
        kept in ``DATA/pending/`` (:mod:`glutewake.pipeline.pending`) and the next run writes
        them first.
    on_wait : callable, optional
        Told once per wait what the run waits for (the CLI prints it).

    Returns
    -------
    ProcessSummary
        Counts of what was decoded and derived, failures, and warnings worth showing.
    """
    if not data_dir.exists():
        raise ProcessError(f"data directory {data_dir.root} does not exist")
    if runner is None:
        with TaskRunner(workers=workers) as own:
            return process(
                data_dir,
                progress=progress,
                redo=redo,
                runner=own,
                batch_participants=batch_participants,
                wait_s=wait_s,
                on_wait=on_wait,
            )
    summary = ProcessSummary()
    if not data_dir.catalog.exists() and (data_dir.root / ledger.LEDGER_NAME).exists():
        summary.warnings.append(
            f"{data_dir.catalog} is missing but {ledger.LEDGER_NAME} holds the bookkeeping: "
            "'glutewake rebuild' would have brought participants, phases and symptoms back"
        )
    via = _Catalog(data_dir, wait_s, on_wait)
    via.write_saved(summary)
    before = pending.catalog_state(data_dir)
    known, tzs, devices = _known_state(data_dir, via)
    failed = _known_failures(via)
    via.state = pending.catalog_state(data_dir)
    if via.state != before:  # written while being read: no basis to keep results on
        via.state = []
    if redo:
        known = {}
    # each decode task gets its own folder's entries only: the whole study's would be pickled
    # and shipped with every task
    known_by_folder: dict[str, dict[str, tuple[int, int, int]]] = {}
    for seg, entry in known.items():
        known_by_folder.setdefault(seg.rsplit("/", 1)[0], {})[seg] = entry
    folders = data_dir.store.spool_folders()
    # listed once here, not again by each decode task
    segments = data_dir.store.spool_segments()
    by_participant: dict[str, list[str]] = {}
    for folder in folders:
        by_participant.setdefault(_folder_participant(folder) or "", []).append(folder)
    again, pending_devices = _stored_recordings(data_dir, redo)
    participants = sorted(
        set(by_participant) | {str(f["participant_id"]) for f in failed} | set(again)
    )
    decode_bar = progress("decoding spool", len(folders))
    # a batch of participants is decoded, derived and written before the next starts, so the
    # rows held in this process stay bounded however large the study
    for lo in range(0, len(participants), batch_participants):
        batch = set(participants[lo : lo + batch_participants])
        _process_batch(
            data_dir,
            [f for p in sorted(batch) for f in by_participant.get(p, [])],
            segments,
            known_by_folder,
            tzs,
            devices,
            [f for f in failed if str(f["participant_id"]) in batch],
            summary,
            progress,
            decode_bar,
            runner,
            (
                [r for p in sorted(batch) for r in again.get(p, [])],
                {d for d in pending_devices if d[0] in batch},
            ),
            via,
        )
    _sync_damage(via, summary)
    return summary


def _damage_key(row: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(row[c] for c in ("file", "part", "reason", "records_lost", "quarantined"))


def _sync_damage(via: _Catalog, summary: ProcessSummary) -> None:
    """Make ``spool_damage`` what the damage reports in the spool say (written only if changed).

    The reports (``quarantine/*.json`` in the device folders) are the durable record: the
    collector writes them for damaged journals, decode tasks for damaged segments.
    """
    data_dir = via.data_dir
    rows = [
        row
        for folder, report in read_reports(data_dir.store, "spool/participant_id=*/device=*")
        for row in report_rows(folder, report)
    ]
    known: set[tuple[Any, ...]] = set()
    if data_dir.catalog.exists():
        with via.read() as con:
            frame = catalog.query_frame(con, "SELECT * FROM spool_damage")
        known = {_damage_key(r) for r in frame.iter_rows(named=True)}
    if {_damage_key(r) for r in rows} == known:
        return
    write_damage(data_dir, rows, wait_s=via.wait_s, on_wait=via.on_wait)
    summary.damaged_parts = len(rows)


def _process_batch(
    data_dir: DataDir,
    folders: list[str],
    segments: dict[str, list[str]],
    known_by_folder: dict[str, dict[str, tuple[int, int, int]]],
    tzs: dict[str, str],
    devices: dict[tuple[str, str], tuple[str | None, str | None]],
    failed: list[dict[str, Any]],
    summary: ProcessSummary,
    progress: ProgressHook,
    decode_bar: Callable[[int], None],
    runner: TaskRunner,
    stored: tuple[list[Recording], set[tuple[str, str]]],
    via: _Catalog,
) -> None:
    """Decode, derive and write one batch of participants; ``failed`` are their earlier
    failures (decoding retries itself: a failed folder's segments were never marked done);
    ``stored`` the recordings to derive again from the store and the pending devices they
    serve (:func:`_stored_recordings`)."""
    rows = Rows()
    retry = [f for f in failed if f["task"] != "decode"]
    # largest folders first (most segments), so that no long task starts last and keeps one
    # worker busy while the others wait for the next stage
    by_size = sorted(folders, key=lambda f: -len(segments.get(f, [])))
    tasks = [(data_dir, f, segments.get(f, []), known_by_folder.get(f, {})) for f in by_size]
    decoded = dict(zip(by_size, runner.map(decode_task, tasks, by_size, decode_bar), strict=True))
    outcomes = [decoded[f] for f in folders]  # merged in folder order, however they ran
    for folder, outcome in zip(folders, outcomes, strict=True):
        rows.attempted.add(("decode", folder))
        if isinstance(outcome, TaskFailure):
            record_failure(rows, summary, "decode", outcome, _folder_participant(folder), {})
            continue
        part, part_summary = outcome
        merge_rows(rows, part)
        summary.decode_errors += part_summary.decode_errors
        summary.recordings += part_summary.recordings
        summary.samples += part_summary.samples
        summary.warnings += part_summary.warnings
    summary.spool_files += len(rows.spool_files)
    again, pending_devices = stored
    if (
        not rows.spool_files
        and not retry
        and not rows.failures
        and not again
        and not pending_devices
    ):
        return
    rows.rederived_devices |= pending_devices
    _derive(data_dir, rows, tzs, devices, summary, progress, runner, retry, again)
    summary.retried += len({(f["task"], f["key"]) for f in failed} & rows.attempted)
    via.write(rows)


def _folder_participant(folder: str) -> str | None:
    for part in folder.split("/"):
        if part.startswith("participant_id="):
            return part.removeprefix("participant_id=")
    return None


def _known_failures(via: _Catalog) -> list[dict[str, Any]]:
    """Failed tasks of earlier runs, to be retried."""
    if not via.data_dir.catalog.exists():
        return []
    with via.read() as con:
        return [
            {"task": str(t), "key": str(k), "participant_id": p, "args": json.loads(a or "{}")}
            for t, k, p, a in con.execute(
                "SELECT task, task_key, participant_id, args FROM task_failures ORDER BY ALL"
            ).fetchall()
        ]


def _on_thigh(
    rec: Recording, devices: dict[tuple[str, str], tuple[str | None, str | None]]
) -> bool:
    """An accelerometer recording worn on the thigh (registered so, or by its profile)."""
    if rec.stream != "acc":
        return False
    placement = devices.get((rec.participant_id, rec.device_id), (None, None))[0]
    if placement is not None:
        return placement == "thigh"
    return rec.profile in THIGH_IMU_PROFILES or rec.profile.startswith("import:")


def _read_days(rec: Recording, tz: str) -> list[dt.date]:
    """Every local day whose read window (the day and its context) holds the recording: a
    day's posture near midnight depends on its context, so it must not depend on whether the
    neighbouring day's samples arrived in the same run."""
    context_us = DAY_CONTEXT_S * 1_000_000
    day, last = local_date(rec.start_us - context_us, tz), local_date(rec.end_us + context_us, tz)
    days = []
    while day <= last:
        days.append(day)
        day += dt.timedelta(days=1)
    return days


def _catalog_acc_recordings(data_dir: DataDir, participants: list[str]) -> list[Recording]:
    """The accelerometer recordings the catalog holds for ``participants``."""
    if not participants or not data_dir.catalog.exists():
        return []
    with catalog.open_read(data_dir) as con:
        found = con.execute(
            "SELECT recording_id, participant_id, device_id, profile, epoch_us(start_time), "
            "epoch_us(end_time), fs_hz FROM recordings "
            "WHERE stream = 'acc' AND participant_id IN (SELECT unnest(?)) ORDER BY ALL",
            [participants],
        ).fetchall()
    return [
        Recording(
            recording_id=str(rid),
            participant_id=str(pid),
            device_id=str(dev),
            profile=str(profile),
            stream="acc",
            conn_id=0,
            start_us=int(t0),
            end_us=int(t1),
            n_samples=0,
            fs_hz=float(fs),
            channels=(),
            unit="g",
            exercise=None,
            qc={},
        )
        for rid, pid, dev, profile, t0, t1, fs in found
    ]


def _derive(
    data_dir: DataDir,
    rows: Rows,
    tzs: dict[str, str],
    devices: dict[tuple[str, str], tuple[str | None, str | None]],
    summary: ProcessSummary,
    progress: ProgressHook,
    runner: TaskRunner,
    retry: Sequence[dict[str, Any]] = (),
    again: Sequence[Recording] = (),
) -> None:
    recordings = [*rows.recordings, *again]
    missing_tz = sorted({r.participant_id for r in recordings} - set(tzs))
    for pid in missing_tz:
        summary.warnings.append(
            f"participant {pid!r} has no time zone in the catalog, so its local days are not "
            f"derived yet: run 'glutewake participant add {pid} --tz ZONE', then 'process --redo'"
        )
    todo: dict[tuple[str, str, dt.date], float] = {}
    for rec in again:
        tz = tzs.get(rec.participant_id)
        if tz is not None and rec.stream == "acc":
            # the day is measured again from what is on the thigh now, or emptied if nothing is
            day, last = local_date(rec.start_us, tz), local_date(rec.end_us, tz)
            while day <= last:
                rows.days.setdefault(rec.participant_id, set()).add(day)
                rows.sitting_days.setdefault(rec.participant_id, set()).add(day)
                day += dt.timedelta(days=1)
    for rec in recordings:
        tz = tzs.get(rec.participant_id)
        if tz is None or not _on_thigh(rec, devices):
            continue
        for day in _read_days(rec, tz):
            todo[(rec.participant_id, rec.device_id, day)] = rec.fs_hz
    # sources merge: a day is measured from every thigh source that covers it, so the other
    # sources of the days touched are read again too (docs/sitting.md, "Several thigh sources")
    touched = {(pid, day) for pid, _, day in todo}
    for rec in _catalog_acc_recordings(data_dir, sorted({pid for pid, _ in touched})):
        tz = tzs.get(rec.participant_id)
        if tz is None or not _on_thigh(rec, devices):
            continue
        for day in _read_days(rec, tz):
            if (rec.participant_id, day) in touched:
                todo.setdefault((rec.participant_id, rec.device_id, day), rec.fs_hz)
    for f in retry:
        if f["task"] == "sitting" and f["participant_id"] in tzs:
            a = f["args"]
            key = (f["participant_id"], a["device_id"], dt.date.fromisoformat(a["local_date"]))
            todo.setdefault(key, float(a["fs_hz"]))
    derive_sitting(data_dir, rows, todo, tzs, summary, progress, runner)
    emg = [r for r in recordings if r.stream == "emg" and r.participant_id in tzs]
    rows.rederived_emg |= {r.recording_id for r in again if r.stream == "emg"}
    seen = {r.recording_id for r in emg}
    for f in retry:
        if f["task"] == "emg" and f["key"] not in seen and f["participant_id"] in tzs:
            a = dict(f["args"])
            a["channels"] = tuple(a["channels"])
            emg.append(Recording(**a))
    emg_sessions.derive_emg(data_dir, rows, emg, tzs, devices, summary, progress, runner)
    summary.participant_days += sum(len(v) for v in rows.days.values())
    summary.exercise_sessions += len(rows.sessions)
    summary.contractions += len(rows.contractions)


def import_files(
    data_dir: DataDir | str | os.PathLike[str],
    paths: Sequence[str | os.PathLike[str]],
    **options: Any,
) -> ImportSummary:
    """Import files and derive what they touch: the importers' source fed into this pipeline.

    :func:`glutewake.ingest.importers.run_import` with :func:`add_recordings` as its sink; the
    keyword ``options`` are ``run_import``'s (``participant_id``, ``format``, ``tz``, ...).

    Examples
    --------
    >>> summary = import_files("DATA", ["Polar_H10_0C301E3F_20260301080000_ACC.txt"],
    ...                        participant_id="P01", tz="Europe/Berlin")  # doctest: +SKIP
    """
    from glutewake.ingest.importers import run_import

    return run_import(data_dir, paths, add_recordings=add_recordings, **options)
