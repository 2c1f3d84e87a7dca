"""The process job: new spool data -> device decoders -> samples -> detectors -> catalog.

This is the one module that joins the parts. It is idempotent: every derived row is keyed by
recording or by participant and local day, and a re-run replaces exactly the rows it recomputes.
Decoding and detection happen before the catalog is opened for writing, so the write lock is held
for moments only (readers retry briefly meanwhile).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import polars as pl

from glutewake import __version__
from glutewake.analytics import catalog
from glutewake.datadir import DataDir, safe_component
from glutewake.devices import RecordKind, get_profile
from glutewake.devices.base import Gap, RawRecords, StreamSamples
from glutewake.ingest import samples as sample_store
from glutewake.ingest.spool import (
    SpoolError,
    SpoolInfo,
    concat_records,
)
from glutewake.ingest.status import battery_levels
from glutewake.parallel import TaskFailure, TaskRunner

log = logging.getLogger(__name__)
log.addHandler(logging.NullHandler())

#: DISCONNECT payload of a clean stop by the host (anything else is a lost link)
HOST_STOP = "host_stop"
#: profiles whose accelerometer is worn on the thigh unless the devices table says otherwise
THIGH_IMU_PROFILES = frozenset({"polar-pmd", "movesense", "metawear"})
#: samples farther apart than this split a recording into separately analysed segments
SEGMENT_GAP_S = 1.0
#: context read on either side of a local day, so that posture sees across midnight and has
#: the walking (upright reference) and long still periods (non-wear) its methods need
DAY_CONTEXT_S = 3 * 3600


class ProcessError(RuntimeError):
    """The process job cannot go on (names what is wrong)."""


ProgressHook = Callable[[str, int], Callable[[int], None]]


def _no_progress(description: str, total: int) -> Callable[[int], None]:
    return lambda n: None


@dataclass
class ProcessSummary:
    """What one ``process`` run did."""

    spool_files: int = 0
    recordings: int = 0
    samples: int = 0
    decode_errors: int = 0
    participant_days: int = 0
    exercise_sessions: int = 0
    contractions: int = 0
    warnings: list[str] = field(default_factory=list)
    #: tasks that raised on every attempt: (task, key, error); kept in ``task_failures``
    failures: list[tuple[str, str, str]] = field(default_factory=list)
    #: earlier failures retried in this run
    retried: int = 0


@dataclass
class _Recording:
    recording_id: str
    participant_id: str
    device_id: str
    profile: str
    stream: str
    conn_id: int
    start_us: int
    end_us: int
    n_samples: int
    fs_hz: float
    channels: tuple[str, ...]
    unit: str
    exercise: str | None
    qc: dict[str, Any]


@dataclass
class _Rows:
    """Rows computed in this run, written in one short transaction."""

    spool_files: list[dict[str, Any]] = field(default_factory=list)
    recordings: list[_Recording] = field(default_factory=list)
    qc: list[dict[str, Any]] = field(default_factory=list)
    packet_errors: list[dict[str, Any]] = field(default_factory=list)
    devices: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    days: dict[str, set[dt.date]] = field(default_factory=dict)
    daily: list[pl.DataFrame] = field(default_factory=list)
    bouts: list[pl.DataFrame] = field(default_factory=list)
    periods: list[pl.DataFrame] = field(default_factory=list)
    mvc: list[dict[str, Any]] = field(default_factory=list)
    sessions: list[dict[str, Any]] = field(default_factory=list)
    contractions: list[dict[str, Any]] = field(default_factory=list)
    failures: list[dict[str, Any]] = field(default_factory=list)
    attempted: set[tuple[str, str]] = field(default_factory=set)
    #: connections decoded in this run (``participant/device-cN``): their connection-level QC
    #: rows (disconnect, battery) are replaced
    connections: set[str] = field(default_factory=set)


def _us_to_dt(t_us: int) -> dt.datetime:
    return dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(microseconds=int(t_us))


def _local_date(t_us: int, tz: str) -> dt.date:
    return _us_to_dt(t_us).astimezone(ZoneInfo(tz)).date()


def _day_bounds_us(day: dt.date, tz: str) -> tuple[int, int]:
    zone = ZoneInfo(tz)
    start = dt.datetime.combine(day, dt.time(), tzinfo=zone)
    end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), tzinfo=zone)
    epoch = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    return (start - epoch) // dt.timedelta(microseconds=1), (end - epoch) // dt.timedelta(
        microseconds=1
    )


def _known_state(data_dir: DataDir) -> tuple[dict[str, tuple[int, int, int]], dict[str, str], dict]:
    """Spool files already processed, participants' time zones and device settings."""
    if not data_dir.catalog.exists():
        return {}, {}, {}
    with catalog.open_read(data_dir) as con:
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


def _select_conn(
    records: RawRecords, seq: np.ndarray, conn_id: int
) -> tuple[RawRecords, np.ndarray]:
    idx = np.flatnonzero(records.conn_id == conn_id)
    return (
        RawRecords(
            t_us=records.t_us[idx],
            kind=records.kind[idx],
            char_uuid=[records.char_uuid[i] for i in idx],
            payload=[records.payload[i] for i in idx],
            conn_id=records.conn_id[idx],
        ),
        seq[idx],
    )


def _decode_folder(
    data_dir: DataDir,
    folder: str,
    segments: list[str],
    known: dict[str, tuple[int, int, int]],
    rows: _Rows,
    summary: ProcessSummary,
) -> None:
    """Decode the connections touched by new segments of one device spool folder.

    ``folder`` and its finished ``segments`` (in record order) are relative to the data
    directory's store (the strings ``spool_files.path`` records).
    """
    store = data_dir.store
    sizes = {seg: store.size(seg) for seg in segments}
    new = [s for s in segments if s not in known or known[s][0] != sizes[s]]
    if not new:
        return
    loaded: dict[str, tuple[SpoolInfo, RawRecords, np.ndarray]] = {}
    for seg in new:
        try:
            loaded[seg] = store.read_spool_segment(seg)
        except SpoolError as exc:
            summary.warnings.append(str(exc))
    affected = {int(c) for _, recs, _ in loaded.values() for c in np.unique(recs.conn_id)}
    # older segments holding the start of an affected connection carry its settings exchange
    for seg in segments:
        if seg in loaded or seg not in known:
            continue
        _, lo, hi = known[seg]
        if any(lo <= c <= hi for c in affected):
            loaded[seg] = store.read_spool_segment(seg)
    ordered = sorted(loaded.items(), key=lambda kv: int(kv[1][2][0]))
    for seg, (info, recs, _) in ordered:
        if seg in new:
            rows.spool_files.append(
                {
                    "path": seg,
                    "participant_id": info.participant_id,
                    "device_id": info.device_id,
                    "profile": info.profile,
                    "n_records": len(recs),
                    "size_bytes": sizes[seg],
                    "first_time": _us_to_dt(int(recs.t_us.min())),
                    "last_time": _us_to_dt(int(recs.t_us.max())),
                    "min_conn_id": int(recs.conn_id.min()),
                    "max_conn_id": int(recs.conn_id.max()),
                    "processed_at": dt.datetime.now(dt.UTC),
                }
            )
    all_records = concat_records(r for _, (_, r, _) in ordered)
    all_seq = np.concatenate([s for _, (_, _, s) in ordered])
    infos = [i for _, (i, _, _) in ordered]
    conn_info: dict[int, SpoolInfo] = {}
    for info, (_, recs, _) in zip(infos, (v for _, v in ordered), strict=True):
        for c in np.unique(recs.conn_id):
            conn_info.setdefault(int(c), info)
    for conn_id in sorted(affected):
        info = conn_info[conn_id]
        records, _ = _select_conn(all_records, all_seq, conn_id)
        _decode_connection(data_dir, info, conn_id, records, rows, summary)


def _decode_connection(
    data_dir: DataDir,
    info: SpoolInfo,
    conn_id: int,
    records: RawRecords,
    rows: _Rows,
    summary: ProcessSummary,
) -> None:
    profile = get_profile(info.profile)
    result = profile.decode_records(records, info.config)
    for err in result.errors:
        rows.packet_errors.append(
            {
                "participant_id": info.participant_id,
                "device_id": info.device_id,
                "t": _us_to_dt(err.t_us),
                "char_uuid": err.char_uuid,
                "payload": err.payload,
                "error": err.error,
            }
        )
    summary.decode_errors += len(result.errors)
    exercise = info.labels.get("exercise")
    name = f"{safe_component(info.device_id)}-c{conn_id}"
    rows.connections.add(f"{info.participant_id}/{name}")
    for smp in result.streams.values():
        _store_stream(
            data_dir,
            NewRecording(
                participant_id=info.participant_id,
                device_id=info.device_id,
                profile=info.profile,
                recording_name=name,
                samples=smp,
                exercise=str(exercise) if exercise else None,
                qc=dict(result.qc.get(smp.stream, {})),
                config=info.config,
            ),
            conn_id,
            rows,
            summary,
        )
    for gap in result.gaps:
        rows.qc.append(_gap_row(info.participant_id, f"{name}-{gap.stream}", gap))
    ended = np.flatnonzero(records.kind == RecordKind.DISCONNECT)
    if ended.size:
        reason = records.payload[int(ended[-1])].decode("utf-8", "replace")
        if reason != HOST_STOP:  # the link was lost: the time until the next connection is a gap
            t_lost = int(records.t_us[int(ended[-1])])
            rows.qc.append(
                {
                    "participant_id": info.participant_id,
                    "recording_id": f"{info.participant_id}/{name}",
                    "local_date": None,
                    "kind": "disconnect",
                    "start_time": _us_to_dt(t_lost),
                    "end_time": _us_to_dt(t_lost),
                    "value": None,
                    "detail": reason or None,
                }
            )
    t_battery, pct_battery = battery_levels(records)
    for t_b, pct in zip(t_battery.tolist(), pct_battery.tolist(), strict=True):
        rows.qc.append(
            {
                "participant_id": info.participant_id,
                "recording_id": f"{info.participant_id}/{name}",
                "local_date": None,
                "kind": "battery",
                "start_time": _us_to_dt(t_b),
                "end_time": _us_to_dt(t_b),
                "value": float(pct),
                "detail": json.dumps({"device_id": info.device_id}),
            }
        )


@dataclass(frozen=True)
class NewRecording:
    """Samples of one stream from a source other than the spool (an importer), or decoded.

    ``recording_name`` must be unique per participant and stable across re-runs (e.g. built from
    a file hash), so that re-adding the same data replaces rather than duplicates it.
    """

    participant_id: str
    device_id: str
    profile: str
    recording_name: str
    samples: StreamSamples
    exercise: str | None = None
    qc: dict[str, Any] = field(default_factory=dict)
    gaps: tuple[Gap, ...] = ()
    config: dict[str, Any] = field(default_factory=dict)


def _gap_row(participant_id: str, recording_name: str, gap: Gap) -> dict[str, Any]:
    return {
        "participant_id": participant_id,
        "recording_id": f"{participant_id}/{recording_name}",
        "local_date": None,
        "kind": f"gap:{gap.reason}",
        "start_time": _us_to_dt(gap.start_us),
        "end_time": _us_to_dt(gap.end_us),
        "value": (gap.end_us - gap.start_us) / 1e6,
        "detail": None,
    }


def _store_stream(
    data_dir: DataDir, new: NewRecording, conn_id: int, rows: _Rows, summary: ProcessSummary
) -> None:
    """Write one stream's samples to the store and queue its catalog rows."""
    smp = new.samples
    if len(smp) == 0:
        return
    recording_name = f"{new.recording_name}-{smp.stream}"
    sample_store.write_recording(
        data_dir,
        stream=smp.stream,
        participant_id=new.participant_id,
        recording_name=recording_name,
        t_us=smp.t_us,
        values=smp.values,
        channels=smp.channel_names,
        sample_seq=smp.sample_seq,
    )
    start_us, end_us = int(smp.t_us.min()), int(smp.t_us.max())
    dev = rows.devices.setdefault(
        (new.participant_id, new.device_id),
        {"profile": new.profile, "config": new.config, "first": None, "last": None},
    )
    dev["first"] = start_us if dev["first"] is None else min(dev["first"], start_us)
    dev["last"] = end_us if dev["last"] is None else max(dev["last"], end_us)
    rows.recordings.append(
        _Recording(
            recording_id=f"{new.participant_id}/{recording_name}",
            participant_id=new.participant_id,
            device_id=new.device_id,
            profile=new.profile,
            stream=smp.stream,
            conn_id=conn_id,
            start_us=start_us,
            end_us=end_us,
            n_samples=len(smp),
            fs_hz=float(smp.fs_hz),
            channels=smp.channel_names,
            unit=smp.unit,
            exercise=new.exercise,
            qc=new.qc,
        )
    )
    for gap in new.gaps:
        if gap.stream == smp.stream:
            rows.qc.append(_gap_row(new.participant_id, recording_name, gap))
    summary.recordings += 1
    summary.samples += len(smp)


def add_recordings(
    data_dir: DataDir,
    recordings: Iterable[NewRecording],
    *,
    extra_rows: Callable[[Any], None] | None = None,
    progress: ProgressHook = _no_progress,
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
    rows = _Rows()
    for new in recordings:
        _store_stream(data_dir, new, 0, rows, summary)
    _derive(data_dir, rows, tzs, devices, summary, progress, TaskRunner())
    _write(data_dir, rows, extra_rows)
    return summary


def _posture_day(
    data_dir: DataDir,
    participant_id: str,
    device_id: str,
    fs_hz: float,
    day: dt.date,
    tz: str,
    rows: _Rows,
) -> bool:
    """Posture, bouts and the daily measures of one participant's local day from thigh ACC."""
    from glutewake.analytics.daily_sitting import daily_sitting, sitting_bout_table
    from glutewake.signal.posture import Posture, PostureParams, analyse_posture

    day_start, day_end = _day_bounds_us(day, tz)
    block = sample_store.read_samples(
        data_dir,
        stream="acc",
        participant_id=participant_id,
        device_id=device_id,
        start_us=day_start - DAY_CONTEXT_S * 1_000_000,
        end_us=day_end + DAY_CONTEXT_S * 1_000_000,
    )
    if block is None:
        return False
    params = PostureParams()
    epoch_t: list[np.ndarray] = []
    epoch_code: list[np.ndarray] = []
    epoch_s = 1.0
    for lo, hi in sample_store.contiguous_spans(block.t_us, fs_hz, SEGMENT_GAP_S):
        if (hi - lo) < fs_hz * 10:  # under 10 s of data: no posture can be judged
            continue
        # float32 as stored: the epoch features widen it block by block, so a float64 copy of
        # the whole day would only cost memory traffic
        res = analyse_posture(block.values[lo:hi, :3], fs_hz, placement="thigh", params=params)
        epoch_s = float(res.epoch_s)
        n = len(res.posture)
        # epochs start at their first sample's time, so clock drift never makes them overlap
        first = lo + np.arange(n) * int(res.samples_per_epoch)
        starts = block.t_us[np.minimum(first, hi - 1)]
        epoch_t.append(starts)
        epoch_code.append(np.asarray(res.posture, dtype=np.int8))
        rows.qc.append(
            {
                "participant_id": participant_id,
                "recording_id": None,
                "local_date": day,
                "kind": "posture_segment",
                "start_time": _us_to_dt(int(block.t_us[lo])),
                "end_time": _us_to_dt(int(block.t_us[hi - 1])),
                "value": (block.t_us[hi - 1] - block.t_us[lo]) / 1e6,
                "detail": json.dumps(res.qc, default=_json_default, sort_keys=True),
            }
        )
    if not epoch_t:
        return False
    t_all = np.concatenate(epoch_t)
    codes = np.concatenate(epoch_code)
    param_text = json.dumps(dataclasses.asdict(params), default=_json_default, sort_keys=True)
    daily = daily_sitting(t_all, codes, epoch_s, tz).filter(pl.col("local_date") == day)
    bouts = sitting_bout_table(t_all, codes, epoch_s, tz).filter(pl.col("local_date") == day)
    in_day = (t_all >= day_start) & (t_all < day_end)
    periods = _posture_periods(t_all[in_day], codes[in_day], epoch_s, Posture)
    rows.daily.append(
        daily.with_columns(
            pl.lit(participant_id).alias("participant_id"),
            pl.lit(__version__).alias("glutewake_version"),
            pl.lit(param_text).alias("params"),
        )
    )
    rows.bouts.append(
        bouts.with_columns(
            pl.lit(participant_id).alias("participant_id"),
            pl.lit(__version__).alias("glutewake_version"),
            pl.lit(param_text).alias("params"),
        )
    )
    rows.periods.append(
        periods.with_columns(
            pl.lit(participant_id).alias("participant_id"), pl.lit(day).alias("local_date")
        )
    )
    return True


def _posture_periods(
    t_us: np.ndarray, codes: np.ndarray, epoch_s: float, enum: Any
) -> pl.DataFrame:
    """Run-length encode epochs into periods of one posture (contiguous in time)."""
    if len(t_us) == 0:
        return pl.DataFrame(schema={"start_us": pl.Int64, "end_us": pl.Int64, "posture": pl.Utf8})
    step_us = round(epoch_s * 1e6)
    new_run = np.ones(len(t_us), dtype=bool)
    new_run[1:] = (codes[1:] != codes[:-1]) | (np.diff(t_us) > step_us * 1.5)
    starts = np.flatnonzero(new_run)
    ends = np.concatenate((starts[1:], [len(t_us)])) - 1
    names = {int(m.value): m.name.lower() for m in enum}
    return pl.DataFrame(
        {
            "start_us": t_us[starts],
            "end_us": t_us[ends] + step_us,
            "posture": [names.get(int(c), str(int(c))) for c in codes[starts]],
        }
    )


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, dt.date | dt.datetime):
        return obj.isoformat()
    return str(obj)


def process(
    data_dir: DataDir,
    *,
    progress: ProgressHook = _no_progress,
    redo: bool = False,
    workers: int = 1,
    runner: TaskRunner | None = None,
    batch_participants: int = 100,
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
        Re-decode every spool file and re-derive every day, not only what is new.
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
            )
    summary = ProcessSummary()
    known, tzs, devices = _known_state(data_dir)
    failed = _known_failures(data_dir)
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
    participants = sorted(set(by_participant) | {str(f["participant_id"]) for f in failed})
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
        )
    return summary


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
) -> None:
    """Decode, derive and write one batch of participants; ``failed`` are their earlier
    failures (decoding retries itself: a failed folder's segments were never marked done)."""
    rows = _Rows()
    retry = [f for f in failed if f["task"] != "decode"]
    # largest folders first (most segments), so that no long task starts last and keeps one
    # worker busy while the others wait for the next stage
    by_size = sorted(folders, key=lambda f: -len(segments.get(f, [])))
    tasks = [(data_dir, f, segments.get(f, []), known_by_folder.get(f, {})) for f in by_size]
    decoded = dict(zip(by_size, runner.map(_decode_task, tasks, by_size, decode_bar), strict=True))
    outcomes = [decoded[f] for f in folders]  # merged in folder order, however they ran
    for folder, outcome in zip(folders, outcomes, strict=True):
        rows.attempted.add(("decode", folder))
        if isinstance(outcome, TaskFailure):
            _record_failure(rows, summary, "decode", outcome, _folder_participant(folder), {})
            continue
        part, part_summary = outcome
        _merge(rows, part)
        summary.decode_errors += part_summary.decode_errors
        summary.recordings += part_summary.recordings
        summary.samples += part_summary.samples
        summary.warnings += part_summary.warnings
    summary.spool_files += len(rows.spool_files)
    if not rows.spool_files and not retry and not rows.failures:
        return
    _derive(data_dir, rows, tzs, devices, summary, progress, runner, retry)
    summary.retried += len({(f["task"], f["key"]) for f in failed} & rows.attempted)
    _write(data_dir, rows)


def _folder_participant(folder: str) -> str | None:
    for part in folder.split("/"):
        if part.startswith("participant_id="):
            return part.removeprefix("participant_id=")
    return None


def _known_failures(data_dir: DataDir) -> list[dict[str, Any]]:
    """Failed tasks of earlier runs, to be retried."""
    if not data_dir.catalog.exists():
        return []
    with catalog.open_read(data_dir) as con:
        return [
            {"task": str(t), "key": str(k), "participant_id": p, "args": json.loads(a or "{}")}
            for t, k, p, a in con.execute(
                "SELECT task, task_key, participant_id, args FROM task_failures ORDER BY ALL"
            ).fetchall()
        ]


def _record_failure(
    rows: _Rows,
    summary: ProcessSummary,
    task: str,
    failure: TaskFailure,
    participant_id: str | None,
    args: dict[str, Any],
) -> None:
    rows.failures.append(
        {
            "task": task,
            "task_key": failure.key,
            "participant_id": participant_id,
            "args": json.dumps(args, default=_json_default, sort_keys=True),
            "error": failure.error,
            "traceback": failure.traceback,
            "attempts": failure.attempts,
        }
    )
    summary.failures.append((task, failure.key, failure.error))


def _decode_task(
    data_dir: DataDir, folder: str, segments: list[str], known: dict[str, tuple[int, int, int]]
) -> tuple[_Rows, ProcessSummary]:
    """One device folder's new connections, decoded (a pure task: it returns its rows)."""
    rows, summary = _Rows(), ProcessSummary()
    _decode_folder(data_dir, folder, segments, known, rows, summary)
    return rows, summary


def _posture_task(
    data_dir: DataDir, pid: str, device_id: str, fs_hz: float, day: dt.date, tz: str
) -> _Rows:
    """One participant-day's posture, bouts and daily measures (a pure task)."""
    rows = _Rows()
    if _posture_day(data_dir, pid, device_id, fs_hz, day, tz, rows):
        rows.days.setdefault(pid, set()).add(day)
    return rows


def _merge(into: _Rows, part: _Rows) -> None:
    for f in dataclasses.fields(_Rows):
        mine, theirs = getattr(into, f.name), getattr(part, f.name)
        if isinstance(mine, list):
            mine.extend(theirs)
        elif f.name == "days":
            for pid, days in theirs.items():
                mine.setdefault(pid, set()).update(days)
        else:
            mine.update(theirs)


def _derive(
    data_dir: DataDir,
    rows: _Rows,
    tzs: dict[str, str],
    devices: dict[tuple[str, str], tuple[str | None, str | None]],
    summary: ProcessSummary,
    progress: ProgressHook,
    runner: TaskRunner,
    retry: Sequence[dict[str, Any]] = (),
) -> None:
    missing_tz = sorted({r.participant_id for r in rows.recordings} - set(tzs))
    for pid in missing_tz:
        summary.warnings.append(
            f"participant {pid!r} has no time zone in the catalog, so its local days are not "
            f"derived yet: run 'glutewake participant add {pid} --tz ZONE', then 'process --redo'"
        )
    todo: dict[tuple[str, str, dt.date], float] = {}
    for rec in rows.recordings:
        tz = tzs.get(rec.participant_id)
        if tz is None or rec.stream != "acc":
            continue
        placement = devices.get((rec.participant_id, rec.device_id), (None, None))[0]
        default_thigh = rec.profile in THIGH_IMU_PROFILES or rec.profile.startswith("import:")
        if (placement is None and not default_thigh) or (
            placement is not None and placement != "thigh"
        ):
            continue
        day = _local_date(rec.start_us, tz)
        last = _local_date(rec.end_us, tz)
        while day <= last:
            todo[(rec.participant_id, rec.device_id, day)] = rec.fs_hz
            day += dt.timedelta(days=1)
    for f in retry:
        if f["task"] == "sitting" and f["participant_id"] in tzs:
            a = f["args"]
            key = (f["participant_id"], a["device_id"], dt.date.fromisoformat(a["local_date"]))
            todo.setdefault(key, float(a["fs_hz"]))
    _derive_sitting(data_dir, rows, todo, tzs, summary, progress, runner)
    emg = [r for r in rows.recordings if r.stream == "emg" and r.participant_id in tzs]
    seen = {r.recording_id for r in emg}
    for f in retry:
        if f["task"] == "emg" and f["key"] not in seen and f["participant_id"] in tzs:
            a = dict(f["args"])
            a["channels"] = tuple(a["channels"])
            emg.append(_Recording(**a))
    _derive_emg(data_dir, rows, emg, tzs, devices, summary, progress, runner)
    summary.participant_days += sum(len(v) for v in rows.days.values())
    summary.exercise_sessions += len(rows.sessions)
    summary.contractions += len(rows.contractions)


def _derive_sitting(
    data_dir: DataDir,
    rows: _Rows,
    todo: dict[tuple[str, str, dt.date], float],
    tzs: dict[str, str],
    summary: ProcessSummary,
    progress: ProgressHook,
    runner: TaskRunner,
) -> None:
    """Posture, bouts and daily measures: one task per participant, device and local day."""
    order = sorted(todo)
    tasks = [(data_dir, pid, dev, todo[(pid, dev, day)], day, tzs[pid]) for pid, dev, day in order]
    keys = [f"{pid}/{dev}/{day.isoformat()}" for pid, dev, day in order]
    advance = progress("sitting", len(tasks))
    for (pid, dev, day), key, out in zip(
        order, keys, runner.map(_posture_task, tasks, keys, advance), strict=True
    ):
        rows.attempted.add(("sitting", key))
        if isinstance(out, TaskFailure):
            args = {"device_id": dev, "local_date": day.isoformat(), "fs_hz": todo[(pid, dev, day)]}
            _record_failure(rows, summary, "sitting", out, pid, args)
        else:
            _merge(rows, out)


def _derive_emg(
    data_dir: DataDir,
    rows: _Rows,
    emg: list[_Recording],
    tzs: dict[str, str],
    devices: dict[tuple[str, str], tuple[str | None, str | None]],
    summary: ProcessSummary,
    progress: ProgressHook,
    runner: TaskRunner,
) -> None:
    """MVC trials first (their references score the sessions), then the exercise sessions."""
    from glutewake import emg_sessions

    if not emg:
        return
    mvc = emg_sessions.known_mvc(data_dir)
    advance = progress("glute activation", len(emg))
    mvc_recs = sorted(
        (r for r in emg if r.exercise == emg_sessions.MVC_LABEL), key=lambda r: r.start_us
    )
    session_recs = sorted(
        (r for r in emg if r.exercise != emg_sessions.MVC_LABEL), key=lambda r: r.start_us
    )
    for recs in (mvc_recs, session_recs):
        tasks = [
            (
                data_dir,
                r,
                tzs[r.participant_id],
                devices.get((r.participant_id, r.device_id), (None, None))[1],
                mvc.get(r.participant_id, {}),
            )
            for r in recs
        ]
        keys = [r.recording_id for r in recs]
        outcomes = runner.map(emg_sessions.emg_task, tasks, keys, advance)
        for rec, out in zip(recs, outcomes, strict=True):
            rows.attempted.add(("emg", rec.recording_id))
            if isinstance(out, TaskFailure):
                args = dataclasses.asdict(rec)
                _record_failure(rows, summary, "emg", out, rec.participant_id, args)
                continue
            rows.mvc.extend(out.mvc)
            rows.sessions.extend(out.sessions)
            rows.contractions.extend(out.contractions)
            rows.qc.extend(out.qc)
            emg_sessions.add_mvc(mvc, out.mvc)


def _frame(records: list[dict[str, Any]]) -> pl.DataFrame:
    return pl.DataFrame(records, infer_schema_length=None)


def _write(data_dir: DataDir, rows: _Rows, extra_rows: Callable[[Any], None] | None = None) -> None:
    """Replace the derived rows this run recomputed, in one short read-write transaction."""
    recs = pl.DataFrame(
        [
            {
                "recording_id": r.recording_id,
                "participant_id": r.participant_id,
                "device_id": r.device_id,
                "profile": r.profile,
                "stream": r.stream,
                "conn_id": r.conn_id,
                "start_time": _us_to_dt(r.start_us),
                "end_time": _us_to_dt(r.end_us),
                "n_samples": r.n_samples,
                "fs_hz": r.fs_hz,
                "channels": ",".join(r.channels),
                "unit": r.unit,
                "exercise": r.exercise,
                "packets": r.qc.get("packets"),
                "packets_lost": r.qc.get("packets_lost"),
                "duplicates": r.qc.get("duplicates"),
                "decode_errors": r.qc.get("decode_errors"),
                "clock_offset_us": r.qc.get("clock_offset_us"),
                "clock_drift_ppm": r.qc.get("clock_drift_ppm"),
                "glutewake_version": __version__,
            }
            for r in rows.recordings
        ],
        infer_schema_length=None,
    )
    day_keys = pl.DataFrame(
        [{"participant_id": p, "local_date": d} for p, days in rows.days.items() for d in days],
        schema={"participant_id": pl.Utf8, "local_date": pl.Date},
    )
    with catalog.open_write(data_dir) as con:
        con.execute("BEGIN TRANSACTION")
        try:
            if rows.spool_files:
                con.register("new_spool", _frame(rows.spool_files))
                con.execute("INSERT OR REPLACE INTO spool_files SELECT * FROM new_spool")
            for (pid, device_id), dev in rows.devices.items():
                con.execute(
                    """
                    INSERT INTO devices (device_id, participant_id, profile, config,
                                         first_seen, last_seen)
                    VALUES (?, ?, ?, ?, ?, ?)
                    ON CONFLICT (participant_id, device_id) DO UPDATE SET
                        profile = excluded.profile, config = excluded.config,
                        first_seen = least(devices.first_seen, excluded.first_seen),
                        last_seen = greatest(devices.last_seen, excluded.last_seen)
                    """,
                    [
                        device_id,
                        pid,
                        dev["profile"],
                        json.dumps(dev["config"], sort_keys=True),
                        _us_to_dt(dev["first"]) if dev["first"] is not None else None,
                        _us_to_dt(dev["last"]) if dev["last"] is not None else None,
                    ],
                )
            if recs.height:
                con.register("new_recordings", recs)
                con.execute(
                    "DELETE FROM qc WHERE recording_id IN (SELECT recording_id FROM new_recordings)"
                )
                con.execute("INSERT OR REPLACE INTO recordings SELECT * FROM new_recordings")
            if rows.connections:
                con.register(
                    "decoded_connections",
                    pl.DataFrame({"recording_id": sorted(rows.connections)}),
                )
                con.execute(
                    "DELETE FROM qc WHERE kind IN ('disconnect', 'battery') AND recording_id IN "
                    "(SELECT recording_id FROM decoded_connections)"
                )
            con.register("day_keys", day_keys)
            for table in ("daily_sitting", "sitting_bouts", "posture_periods"):
                con.execute(
                    f"DELETE FROM {table} WHERE (participant_id, local_date) IN "
                    "(SELECT (participant_id, local_date) FROM day_keys)"
                )
            con.execute(
                "DELETE FROM qc WHERE kind = 'posture_segment' AND (participant_id, local_date) IN "
                "(SELECT (participant_id, local_date) FROM day_keys)"
            )
            _insert_by_name(con, "daily_sitting", rows.daily)
            _insert_by_name(
                con,
                "sitting_bouts",
                [
                    _times(b).with_columns((pl.col("duration_s") / 60).alias("duration_min"))
                    for b in rows.bouts
                ],
            )
            _insert_by_name(
                con,
                "posture_periods",
                [
                    _times(p).with_columns(
                        (
                            (pl.col("end_time") - pl.col("start_time")).dt.total_microseconds()
                            / 1e6
                        ).alias("duration_s")
                    )
                    for p in rows.periods
                ],
            )
            if rows.qc:
                _insert_by_name(con, "qc", [_frame(rows.qc)])
            _disconnect_gaps(con, sorted(rows.devices))
            if rows.packet_errors:
                con.register("new_errors", _frame(rows.packet_errors))
                con.execute(
                    "DELETE FROM packet_errors WHERE (participant_id, device_id, t) IN "
                    "(SELECT (participant_id, device_id, t) FROM new_errors)"
                )
                con.execute("INSERT INTO packet_errors SELECT * FROM new_errors")
            from glutewake.emg_sessions import write_sessions

            write_sessions(con, rows)
            _write_failures(con, rows)
            if extra_rows is not None:
                extra_rows(con)
            con.execute("COMMIT")
        except Exception:
            con.execute("ROLLBACK")
            raise


def _write_failures(con: Any, rows: _Rows) -> None:
    """Clear the failures of tasks that ran in this run and record the ones that failed again."""
    failed_again = {(f["task"], f["task_key"]) for f in rows.failures}
    succeeded = sorted(rows.attempted - failed_again)
    if succeeded:
        con.register(
            "succeeded_tasks", pl.DataFrame(succeeded, schema=["task", "task_key"], orient="row")
        )
        con.execute(
            "DELETE FROM task_failures WHERE (task, task_key) IN "
            "(SELECT (task, task_key) FROM succeeded_tasks)"
        )
        con.unregister("succeeded_tasks")
    if not rows.failures:
        return
    now = dt.datetime.now(dt.UTC)
    frame = pl.DataFrame(rows.failures, infer_schema_length=None).with_columns(
        pl.lit(now).alias("now")
    )
    con.register("new_failures", frame)
    con.execute(
        """
        INSERT INTO task_failures
        SELECT task, task_key, participant_id, args, error, traceback, attempts, 1, now, now
        FROM new_failures
        ON CONFLICT (task, task_key) DO UPDATE SET
            participant_id = excluded.participant_id, args = excluded.args,
            error = excluded.error, traceback = excluded.traceback,
            attempts = excluded.attempts, runs = task_failures.runs + 1,
            last_failed_at = excluded.last_failed_at
        """
    )
    con.unregister("new_failures")


def _disconnect_gaps(con: Any, devices: list[tuple[str, str]]) -> None:
    """Recompute the devices' ``gap:disconnect`` rows: from the end of a connection whose link
    was lost to the first sample of the same stream's next connection."""
    if not devices:
        return
    con.register(
        "gap_devices",
        pl.DataFrame(devices, schema=["participant_id", "device_id"], orient="row"),
    )
    con.execute(
        """
        DELETE FROM qc WHERE kind = 'gap:disconnect' AND recording_id IN (
            SELECT recording_id FROM recordings
            WHERE (participant_id, device_id) IN
                (SELECT (participant_id, device_id) FROM gap_devices))
        """
    )
    con.execute(
        """
        INSERT INTO qc
        SELECT r.participant_id, r.recording_id, NULL, 'gap:disconnect', r.end_time, r.next_start,
               epoch(r.next_start) - epoch(r.end_time), d.detail
        FROM (
            SELECT *, lead(start_time) OVER (
                PARTITION BY participant_id, device_id, stream ORDER BY start_time) AS next_start
            FROM recordings
            WHERE (participant_id, device_id) IN
                (SELECT (participant_id, device_id) FROM gap_devices)
        ) r
        JOIN qc d ON d.kind = 'disconnect'
            AND d.recording_id = regexp_replace(r.recording_id, '-' || r.stream || '$', '')
        WHERE r.next_start IS NOT NULL
        """
    )
    con.unregister("gap_devices")


def _times(frame: pl.DataFrame) -> pl.DataFrame:
    """``start_us``/``end_us`` columns to UTC timestamps named ``start_time``/``end_time``."""
    return frame.with_columns(
        pl.from_epoch("start_us", time_unit="us").dt.replace_time_zone("UTC").alias("start_time"),
        pl.from_epoch("end_us", time_unit="us").dt.replace_time_zone("UTC").alias("end_time"),
    ).drop("start_us", "end_us")


def _insert_by_name(con: Any, table: str, frames: list[pl.DataFrame]) -> None:
    frames = [f for f in frames if f.height]
    if not frames:
        return
    data = pl.concat(frames, how="diagonal_relaxed")
    columns = [c for c in catalog_columns(con, table) if c in data.columns]
    con.register("incoming", data.select(columns))
    cols = ", ".join(columns)
    con.execute(f"INSERT INTO {table} ({cols}) SELECT {cols} FROM incoming")
    con.unregister("incoming")


def catalog_columns(con: Any, table: str) -> list[str]:
    return [
        str(r[0])
        for r in con.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = ? "
            "ORDER BY ordinal_position",
            [table],
        ).fetchall()
    ]
