"""The one write step: the rows a run computed go into the catalog in one short transaction."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from typing import Any

import polars as pl

from glutewake import __version__
from glutewake.pipeline.rows import Rows, us_to_dt
from glutewake.store import catalog, ledger
from glutewake.store.datadir import DataDir


def _frame(records: list[dict[str, Any]]) -> pl.DataFrame:
    return pl.DataFrame(records, infer_schema_length=None)


def write_rows(
    data_dir: DataDir,
    rows: Rows,
    extra_rows: Callable[[Any], None] | None = None,
    *,
    wait_s: float = 30.0,
    on_wait: catalog.WaitHook | None = None,
) -> None:
    """Replace the derived rows this run recomputed, in one short read-write transaction
    (waiting up to ``wait_s`` for the catalog; ``on_wait`` is told what it waits for)."""
    recs = pl.DataFrame(
        [
            {
                "recording_id": r.recording_id,
                "participant_id": r.participant_id,
                "device_id": r.device_id,
                "profile": r.profile,
                "stream": r.stream,
                "conn_id": r.conn_id,
                "start_time": us_to_dt(r.start_us),
                "end_time": us_to_dt(r.end_us),
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
    day_keys = _day_keys(rows.days)
    sitting_keys = _day_keys(rows.sitting_days)
    with (
        catalog.open_write(data_dir, timeout_s=wait_s, on_wait=on_wait) as con,
        ledger.transaction(con),
    ):
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
                        us_to_dt(dev["first"]) if dev["first"] is not None else None,
                        us_to_dt(dev["last"]) if dev["last"] is not None else None,
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
            con.register("sitting_keys", sitting_keys)
            for table, keys in (
                ("daily_sitting", "sitting_keys"),
                ("sitting_bouts", "sitting_keys"),
                ("posture_periods", "day_keys"),
            ):
                con.execute(
                    f"DELETE FROM {table} WHERE (participant_id, local_date) IN "
                    f"(SELECT (participant_id, local_date) FROM {keys})"
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
                    _times(b).with_columns(
                        (pl.col("duration_s") / 60).alias("duration_min"),
                        (pl.col("sitting_s") / 60).alias("sitting_min"),
                    )
                    for b in rows.bouts
                ],
            )
            _insert_by_name(con, "posture_periods", [_times(p) for p in rows.periods])
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
            _clear_rederived(con, rows)
            from glutewake.pipeline.emg_sessions import write_sessions

            write_sessions(con, rows)
            _write_failures(con, rows)
            if extra_rows is not None:
                extra_rows(con)
            con.execute("COMMIT")
        except Exception:
            con.execute("ROLLBACK")
            raise


def _day_keys(days: dict[str, set[dt.date]]) -> pl.DataFrame:
    return pl.DataFrame(
        [{"participant_id": p, "local_date": d} for p, ds in days.items() for d in ds],
        schema={"participant_id": pl.Utf8, "local_date": pl.Date},
    )


def _clear_rederived(con: Any, rows: Rows) -> None:
    """Rows of EMG recordings derived again go before their new ones are written (roles that
    no longer allow a session leave none); devices whose re-derivation ran are done."""
    if rows.rederived_emg:
        con.register("rederived", pl.DataFrame({"id": sorted(rows.rederived_emg)}))
        con.execute(
            "DELETE FROM qc WHERE kind IN ('emg_too_short', 'emg_roles_unknown') "
            "AND recording_id IN (SELECT id FROM rederived)"
        )
        con.execute("DELETE FROM contractions WHERE session_id IN (SELECT id FROM rederived)")
        con.execute("DELETE FROM exercise_sessions WHERE session_id IN (SELECT id FROM rederived)")
        con.unregister("rederived")
    for pid, device_id in sorted(rows.rederived_devices):
        con.execute(
            "UPDATE devices SET rederive_pending = false "
            "WHERE participant_id = ? AND device_id = ?",
            [pid, device_id],
        )
def write_damage(
    data_dir: DataDir,
    rows: list[dict[str, Any]],
    *,
    wait_s: float = 30.0,
    on_wait: catalog.WaitHook | None = None,
) -> None:
    """Replace ``spool_damage`` with ``rows`` (every damage report's parts) in one transaction."""
    with catalog.open_write(data_dir, timeout_s=wait_s, on_wait=on_wait) as con:
        con.execute("BEGIN TRANSACTION")
        try:
            con.execute("DELETE FROM spool_damage")
            if rows:
                _insert_by_name(con, "spool_damage", [_frame(rows)])
            con.execute("COMMIT")
        except Exception:
            con.execute("ROLLBACK")
            raise


def _write_failures(con: Any, rows: Rows) -> None:
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
