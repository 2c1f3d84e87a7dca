"""Decode tasks: one device spool folder's new connections to samples and catalog rows."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
from typing import Any

import numpy as np

from glutewake.devices import RecordKind, get_profile
from glutewake.devices.base import Gap, RawRecords
from glutewake.ingest.spool_scan import battery_levels
from glutewake.pipeline.rows import ProcessSummary, Recording, Rows, us_to_dt
from glutewake.store import samples as sample_store
from glutewake.store.datadir import DataDir
from glutewake.store.ids import device_component
from glutewake.store.quarantine import QUARANTINE_DIR, move_aside, new_report, write_report
from glutewake.store.samples import NewRecording
from glutewake.store.spool import (
    SegmentRead,
    SpoolError,
    SpoolInfo,
    concat_records,
    read_store_segment,
    unreadable_segment_report,
)
from glutewake.store.storage import Store

#: DISCONNECT payload of a clean stop by the host (anything else is a lost link)
HOST_STOP = "host_stop"


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
    rows: Rows,
    summary: ProcessSummary,
) -> None:
    """Decode the connections touched by new segments of one device spool folder.

    ``folder`` and its finished ``segments`` (in record order) are relative to the data
    directory's store (the strings ``spool_files.path`` records). A segment that cannot be read
    at all is moved aside and reported (:mod:`glutewake.store.quarantine`); one with damaged row
    groups is reported and its intact rows decoded; either way the rest of the folder goes on.
    """
    store = data_dir.store
    sizes: dict[str, int] = {}
    for seg in segments:
        with contextlib.suppress(FileNotFoundError):  # moved aside meanwhile
            sizes[seg] = store.size(seg)
    segments = [s for s in segments if s in sizes]
    new = [s for s in segments if s not in known or known[s][0] != sizes[s]]
    if not new:
        return
    loaded: dict[str, SegmentRead] = {}
    unreadable: dict[str, str] = {}
    for seg in new:
        _load(store, seg, loaded, unreadable)
    affected = {int(c) for got in loaded.values() for c in np.unique(got.records.conn_id)}
    # older segments holding the start of an affected connection carry its settings exchange
    for seg in segments:
        if seg in loaded or seg not in known:
            continue
        _, lo, hi = known[seg]
        if any(lo <= c <= hi for c in affected):
            _load(store, seg, loaded, unreadable)
    _report_damage(store, folder, segments, loaded, unreadable, summary)
    if not loaded:
        return
    ordered = sorted(loaded.items(), key=lambda kv: int(kv[1].seq[0]))
    for seg, got in ordered:
        if seg in new:
            recs = got.records
            rows.spool_files.append(
                {
                    "path": seg,
                    "participant_id": got.info.participant_id,
                    "device_id": got.info.device_id,
                    "profile": got.info.profile,
                    "n_records": len(recs),
                    "size_bytes": sizes[seg],
                    "first_time": us_to_dt(int(recs.t_us.min())),
                    "last_time": us_to_dt(int(recs.t_us.max())),
                    "min_conn_id": int(recs.conn_id.min()),
                    "max_conn_id": int(recs.conn_id.max()),
                    "processed_at": dt.datetime.now(dt.UTC),
                }
            )
    all_records = concat_records(got.records for _, got in ordered)
    all_seq = np.concatenate([got.seq for _, got in ordered])
    conn_info: dict[int, SpoolInfo] = {}
    for _, got in ordered:
        for c in np.unique(got.records.conn_id):
            conn_info.setdefault(int(c), got.info)
    for conn_id in sorted(affected):
        info = conn_info[conn_id]
        records, _ = _select_conn(all_records, all_seq, conn_id)
        _decode_connection(data_dir, info, conn_id, records, rows, summary)


def _load(
    store: Store, seg: str, loaded: dict[str, SegmentRead], unreadable: dict[str, str]
) -> None:
    """Read one segment into ``loaded``, or note why it cannot be read in ``unreadable``."""
    try:
        got = read_store_segment(store, seg)
    except SpoolError as exc:
        if store.exists(seg):  # else: moved aside by an earlier attempt of this task
            unreadable[seg] = str(exc).removeprefix(f"{seg}: ")
        return
    if len(got.records):
        loaded[seg] = got
    else:
        unreadable[seg] = "; ".join(sorted({p.reason for p in got.damaged})) or "no records"


def _report_damage(
    store: Store,
    folder: str,
    segments: list[str],
    loaded: dict[str, SegmentRead],
    unreadable: dict[str, str],
    summary: ProcessSummary,
) -> None:
    """Move unreadable segments aside and write the reports of damaged ones."""
    names = [s.rsplit("/", 1)[-1] for s in segments]
    owner = next(iter(loaded.values())).info if loaded else None
    for seg, reason in unreadable.items():
        name = seg.rsplit("/", 1)[-1]
        report = unreadable_segment_report(store, folder, name, reason, names, owner)
        move_aside(store, folder, name, report)
        summary.warnings.append(
            f"{seg}: {reason}; moved to {folder}/{QUARANTINE_DIR}/ (recorded in spool_damage)"
        )
    for seg, got in loaded.items():
        if not got.damaged:
            continue
        name = seg.rsplit("/", 1)[-1]
        report = new_report(
            name,
            original=name,
            kind="segment",
            quarantined=False,
            owner=(got.info.participant_id, got.info.device_id),
            parts=tuple(got.damaged),
        )
        write_report(store, folder, report)
        lost = sum(p.records_lost or 0 for p in got.damaged)
        summary.warnings.append(
            f"{seg}: {len(got.damaged)} of {got.row_groups} row group(s) failed their checks "
            f"({lost} record(s) lost, recorded in spool_damage); the rest was decoded"
        )


def _decode_connection(
    data_dir: DataDir,
    info: SpoolInfo,
    conn_id: int,
    records: RawRecords,
    rows: Rows,
    summary: ProcessSummary,
) -> None:
    profile = get_profile(info.profile)
    result = profile.decode_records(records, info.config)
    for err in result.errors:
        rows.packet_errors.append(
            {
                "participant_id": info.participant_id,
                "device_id": info.device_id,
                "t": us_to_dt(err.t_us),
                "char_uuid": err.char_uuid,
                "payload": err.payload,
                "error": err.error,
            }
        )
    summary.decode_errors += len(result.errors)
    exercise = info.labels.get("exercise")
    name = f"{device_component(info.device_id)}-c{conn_id}"
    rows.connections.add(f"{info.participant_id}/{name}")
    for smp in result.streams.values():
        store_stream(
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
        rows.qc.append(gap_row(info.participant_id, f"{name}-{gap.stream}", gap))
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
                    "start_time": us_to_dt(t_lost),
                    "end_time": us_to_dt(t_lost),
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
                "start_time": us_to_dt(t_b),
                "end_time": us_to_dt(t_b),
                "value": float(pct),
                "detail": json.dumps({"device_id": info.device_id}),
            }
        )


def gap_row(participant_id: str, recording_name: str, gap: Gap) -> dict[str, Any]:
    return {
        "participant_id": participant_id,
        "recording_id": f"{participant_id}/{recording_name}",
        "local_date": None,
        "kind": f"gap:{gap.reason}",
        "start_time": us_to_dt(gap.start_us),
        "end_time": us_to_dt(gap.end_us),
        "value": (gap.end_us - gap.start_us) / 1e6,
        "detail": None,
    }


def store_stream(
    data_dir: DataDir, new: NewRecording, conn_id: int, rows: Rows, summary: ProcessSummary
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
        Recording(
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
            rows.qc.append(gap_row(new.participant_id, recording_name, gap))
    summary.recordings += 1
    summary.samples += len(smp)


def decode_task(
    data_dir: DataDir, folder: str, segments: list[str], known: dict[str, tuple[int, int, int]]
) -> tuple[Rows, ProcessSummary]:
    """One device folder's new connections, decoded (a pure task: it returns its rows)."""
    rows, summary = Rows(), ProcessSummary()
    _decode_folder(data_dir, folder, segments, known, rows, summary)
    return rows, summary
