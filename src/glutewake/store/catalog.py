"""The DuckDB catalog: schema, forward migrations, and the one-writer discipline.

DuckDB allows one read-write process *or* many read-only processes on a file, never both. So:

* the collector never opens the catalog;
* batch jobs (``process``, bookkeeping commands) take ``catalog.lock`` (a file lock), then open
  the file read-write with a bounded retry, and keep it open only for the write itself;
* every read path opens it read-only with a bounded retry (a writer holds it for moments only),
  confined (:func:`open_read`): no files but the data directory's sample and reference trees, no
  writes, no other databases, no extensions, no network, and settings locked.

Migrations are applied in order on every read-write open; ``schema_version`` records them.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from glutewake import __version__
from glutewake.store.ledger import LEDGER_NAME

if TYPE_CHECKING:
    import duckdb
    import polars as pl

    from glutewake.store.datadir import DataDir

log = logging.getLogger(__name__)
log.addHandler(logging.NullHandler())


#: appended to errors that mean the catalog file itself is damaged
REBUILD_HINT = (
    " (if the file is damaged or lost, 'glutewake rebuild' recreates it from the spool, the "
    f"samples and {LEDGER_NAME})"
)


def damage_hint(exc: BaseException) -> str:
    """:data:`REBUILD_HINT` if ``exc`` says the catalog file is damaged, else ``""``."""
    text = str(exc)
    damaged = ("Corrupt database file", "not a valid DuckDB database file", "checksum")
    return REBUILD_HINT if any(d in text for d in damaged) and "rebuild" not in text else ""


class CatalogError(RuntimeError):
    """The catalog cannot be opened or used (names the file and the reason)."""


class CatalogBusyError(CatalogError):
    """Another process holds the catalog and the bounded retry ran out."""


class CatalogMissingError(CatalogError):
    """No catalog exists yet in the data directory."""


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    sql: str


# Researcher-facing tables; every column is documented in docs/schema.md (a test checks it).
MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "initial schema",
        """
        CREATE TABLE participants (
            participant_id VARCHAR PRIMARY KEY,
            tz VARCHAR NOT NULL,
            baseline_start DATE,
            baseline_end DATE,
            goal_sitting_min DOUBLE,
            goal_breaks_per_sitting_hour DOUBLE,
            notes VARCHAR,
            created_at TIMESTAMPTZ NOT NULL
        );
        CREATE TABLE devices (
            device_id VARCHAR NOT NULL,
            participant_id VARCHAR NOT NULL,
            profile VARCHAR NOT NULL,
            placement VARCHAR,
            channel_roles VARCHAR,
            config VARCHAR,
            first_seen TIMESTAMPTZ,
            last_seen TIMESTAMPTZ,
            PRIMARY KEY (participant_id, device_id)
        );
        CREATE TABLE phases (
            participant_id VARCHAR NOT NULL,
            phase TINYINT NOT NULL CHECK (phase BETWEEN 1 AND 3),
            start_date DATE NOT NULL,
            note VARCHAR,
            PRIMARY KEY (participant_id, start_date)
        );
        CREATE TABLE symptoms (
            participant_id VARCHAR NOT NULL,
            local_date DATE NOT NULL,
            lower_back_pain TINYINT CHECK (lower_back_pain BETWEEN 0 AND 10),
            hip_pain TINYINT CHECK (hip_pain BETWEEN 0 AND 10),
            knee_pain TINYINT CHECK (knee_pain BETWEEN 0 AND 10),
            note VARCHAR,
            logged_at TIMESTAMPTZ NOT NULL,
            PRIMARY KEY (participant_id, local_date)
        );
        CREATE TABLE spool_files (
            path VARCHAR PRIMARY KEY,
            participant_id VARCHAR NOT NULL,
            device_id VARCHAR NOT NULL,
            profile VARCHAR NOT NULL,
            n_records BIGINT NOT NULL,
            size_bytes BIGINT NOT NULL,
            first_time TIMESTAMPTZ,
            last_time TIMESTAMPTZ,
            min_conn_id BIGINT,
            max_conn_id BIGINT,
            processed_at TIMESTAMPTZ NOT NULL
        );
        CREATE TABLE recordings (
            recording_id VARCHAR PRIMARY KEY,
            participant_id VARCHAR NOT NULL,
            device_id VARCHAR NOT NULL,
            profile VARCHAR NOT NULL,
            stream VARCHAR NOT NULL,
            conn_id BIGINT NOT NULL,
            start_time TIMESTAMPTZ NOT NULL,
            end_time TIMESTAMPTZ NOT NULL,
            n_samples BIGINT NOT NULL,
            fs_hz DOUBLE NOT NULL,
            channels VARCHAR NOT NULL,
            unit VARCHAR NOT NULL,
            exercise VARCHAR,
            packets BIGINT,
            packets_lost BIGINT,
            duplicates BIGINT,
            decode_errors BIGINT,
            clock_offset_us DOUBLE,
            clock_drift_ppm DOUBLE,
            glutewake_version VARCHAR NOT NULL
        );
        CREATE TABLE posture_periods (
            participant_id VARCHAR NOT NULL,
            local_date DATE NOT NULL,
            start_time TIMESTAMPTZ NOT NULL,
            end_time TIMESTAMPTZ NOT NULL,
            posture VARCHAR NOT NULL,
            duration_s DOUBLE NOT NULL
        );
        CREATE TABLE sitting_bouts (
            participant_id VARCHAR NOT NULL,
            local_date DATE NOT NULL,
            start_time TIMESTAMPTZ NOT NULL,
            end_time TIMESTAMPTZ NOT NULL,
            duration_min DOUBLE NOT NULL,
            glutewake_version VARCHAR NOT NULL,
            params VARCHAR NOT NULL
        );
        CREATE TABLE daily_sitting (
            participant_id VARCHAR NOT NULL,
            local_date DATE NOT NULL,
            wear_min DOUBLE NOT NULL,
            sitting_min DOUBLE NOT NULL,
            sitting_pct DOUBLE,
            standing_min DOUBLE NOT NULL,
            moving_min DOUBLE NOT NULL,
            lying_min DOUBLE NOT NULL,
            cycling_min DOUBLE,
            nonwear_min DOUBLE,
            sitting_bouts INTEGER NOT NULL,
            bouts_30min INTEGER NOT NULL,
            bouts_60min INTEGER NOT NULL,
            longest_bout_min DOUBLE NOT NULL,
            mean_bout_min DOUBLE,
            breaks INTEGER NOT NULL,
            breaks_per_sitting_hour DOUBLE,
            valid_day BOOLEAN NOT NULL,
            glutewake_version VARCHAR NOT NULL,
            params VARCHAR NOT NULL,
            PRIMARY KEY (participant_id, local_date)
        );
        CREATE TABLE mvc_references (
            participant_id VARCHAR NOT NULL,
            local_date DATE NOT NULL,
            channel VARCHAR NOT NULL,
            mvc_uv DOUBLE NOT NULL,
            recording_id VARCHAR NOT NULL,
            PRIMARY KEY (participant_id, local_date, channel)
        );
        CREATE TABLE exercise_sessions (
            session_id VARCHAR PRIMARY KEY,
            participant_id VARCHAR NOT NULL,
            local_date DATE NOT NULL,
            start_time TIMESTAMPTZ NOT NULL,
            end_time TIMESTAMPTZ NOT NULL,
            exercise VARCHAR,
            phase TINYINT,
            repetitions INTEGER NOT NULL,
            glute_fired_share DOUBLE,
            firing_order_ms DOUBLE,
            glute_hamstring_ratio DOUBLE,
            coactivation DOUBLE,
            peak_cv DOUBLE,
            symmetry DOUBLE,
            glute_peak_pct_mvc DOUBLE,
            activation_quality DOUBLE,
            glutewake_version VARCHAR NOT NULL,
            params VARCHAR NOT NULL
        );
        CREATE TABLE contractions (
            session_id VARCHAR NOT NULL,
            participant_id VARCHAR NOT NULL,
            channel VARCHAR NOT NULL,
            muscle VARCHAR,
            side VARCHAR,
            onset_time TIMESTAMPTZ NOT NULL,
            offset_time TIMESTAMPTZ NOT NULL,
            duration_ms DOUBLE NOT NULL,
            time_to_peak_ms DOUBLE,
            peak_uv DOUBLE NOT NULL,
            mean_uv DOUBLE NOT NULL,
            peak_pct_mvc DOUBLE,
            confidence DOUBLE,
            repetition INTEGER
        );
        CREATE TABLE qc (
            participant_id VARCHAR NOT NULL,
            recording_id VARCHAR,
            local_date DATE,
            kind VARCHAR NOT NULL,
            start_time TIMESTAMPTZ,
            end_time TIMESTAMPTZ,
            value DOUBLE,
            detail VARCHAR
        );
        CREATE TABLE import_files (
            sha256 VARCHAR NOT NULL,
            participant_id VARCHAR NOT NULL,
            path VARCHAR NOT NULL,
            format VARCHAR NOT NULL,
            size_bytes BIGINT NOT NULL,
            rows_read BIGINT,
            recordings VARCHAR,
            imported_at TIMESTAMPTZ NOT NULL,
            PRIMARY KEY (sha256, participant_id)
        );
        CREATE TABLE packet_errors (
            participant_id VARCHAR NOT NULL,
            device_id VARCHAR NOT NULL,
            t TIMESTAMPTZ NOT NULL,
            char_uuid VARCHAR NOT NULL,
            payload BLOB NOT NULL,
            error VARCHAR NOT NULL
        );
        CREATE VIEW daily_summary AS
        WITH sessions AS (
            SELECT participant_id, local_date,
                   count(*) AS exercise_sessions,
                   sum(repetitions) AS exercise_repetitions,
                   avg(activation_quality) AS activation_quality,
                   avg(firing_order_ms) AS firing_order_ms
            FROM exercise_sessions GROUP BY ALL
        )
        SELECT d.participant_id, d.local_date,
               (SELECT p.phase FROM phases p
                WHERE p.participant_id = d.participant_id AND p.start_date <= d.local_date
                ORDER BY p.start_date DESC LIMIT 1) AS phase,
               d.wear_min, d.sitting_min, d.sitting_pct, d.standing_min, d.moving_min,
               d.lying_min, d.sitting_bouts, d.bouts_30min, d.bouts_60min,
               d.longest_bout_min, d.mean_bout_min, d.breaks, d.breaks_per_sitting_hour,
               d.valid_day,
               coalesce(s.exercise_sessions, 0) AS exercise_sessions,
               coalesce(s.exercise_repetitions, 0) AS exercise_repetitions,
               s.activation_quality, s.firing_order_ms,
               y.lower_back_pain, y.hip_pain, y.knee_pain
        FROM daily_sitting d
        LEFT JOIN sessions s USING (participant_id, local_date)
        LEFT JOIN symptoms y USING (participant_id, local_date);
        """,
    ),
    Migration(
        2,
        "daily_summary over every day with data; daily_qc, weekly_progress, phase_progress views",
        """
        -- a day without sitting bouts has no longest bout (the sitting measures give NULL)
        ALTER TABLE daily_sitting ALTER COLUMN longest_bout_min DROP NOT NULL;

        CREATE OR REPLACE VIEW daily_summary AS
        WITH sessions AS (
            SELECT participant_id, local_date,
                   count(*) AS exercise_sessions,
                   sum(repetitions) AS exercise_repetitions,
                   avg(activation_quality) AS activation_quality,
                   avg(firing_order_ms) AS firing_order_ms,
                   avg(glute_fired_share) AS glute_fired_share,
                   avg(glute_peak_pct_mvc) AS glute_peak_pct_mvc
            FROM exercise_sessions GROUP BY ALL
        ),
        days AS (
            SELECT participant_id, local_date FROM daily_sitting
            UNION SELECT participant_id, local_date FROM exercise_sessions
            UNION SELECT participant_id, local_date FROM symptoms
        ),
        baseline AS (
            SELECT d.participant_id, avg(d.sitting_min) AS baseline_sitting_min
            FROM daily_sitting d JOIN participants p ON p.participant_id = d.participant_id
            WHERE d.valid_day AND d.local_date BETWEEN p.baseline_start AND p.baseline_end
            GROUP BY ALL
        )
        SELECT k.participant_id, k.local_date, ph.phase,
               d.wear_min, d.sitting_min, d.sitting_pct, d.standing_min, d.moving_min,
               d.lying_min, d.sitting_bouts, d.bouts_30min, d.bouts_60min,
               d.longest_bout_min, d.mean_bout_min, d.breaks, d.breaks_per_sitting_hour,
               coalesce(d.valid_day, false) AS valid_day,
               CAST(coalesce(s.exercise_sessions, 0) AS BIGINT) AS exercise_sessions,
               CAST(coalesce(s.exercise_repetitions, 0) AS BIGINT) AS exercise_repetitions,
               s.activation_quality, s.firing_order_ms,
               y.lower_back_pain, y.hip_pain, y.knee_pain,
               d.participant_id IS NOT NULL AS has_sitting_data,
               s.glute_fired_share, s.glute_peak_pct_mvc,
               d.sitting_min - b.baseline_sitting_min AS sitting_vs_baseline_min,
               d.sitting_min - p.goal_sitting_min AS sitting_vs_goal_min
        FROM days k
        LEFT JOIN daily_sitting d
            ON d.participant_id = k.participant_id AND d.local_date = k.local_date
        LEFT JOIN sessions s
            ON s.participant_id = k.participant_id AND s.local_date = k.local_date
        LEFT JOIN symptoms y
            ON y.participant_id = k.participant_id AND y.local_date = k.local_date
        LEFT JOIN participants p ON p.participant_id = k.participant_id
        LEFT JOIN baseline b ON b.participant_id = k.participant_id
        -- the phase in force: the latest phase row starting on or before the day (an ASOF
        -- join keeps the participant/date filters pushed down into every table scan)
        ASOF LEFT JOIN phases ph
            ON ph.participant_id = k.participant_id AND k.local_date >= ph.start_date;

        CREATE VIEW daily_qc AS
        WITH ledger AS (
            SELECT q.participant_id,
                   CAST(coalesce(q.local_date, timezone(p.tz, q.start_time)) AS DATE)
                       AS local_date,
                   q.kind, q.value
            FROM qc q JOIN participants p ON p.participant_id = q.participant_id
            WHERE q.kind LIKE 'gap:%' OR q.kind = 'battery'
        ),
        per_day AS (
            SELECT participant_id, local_date,
                   count(*) FILTER (WHERE kind LIKE 'gap:%') AS data_gaps,
                   coalesce(sum(value) FILTER (WHERE kind LIKE 'gap:%'), 0) / 60 AS gap_min,
                   max(value) FILTER (WHERE kind LIKE 'gap:%') / 60 AS longest_gap_min,
                   min(value) FILTER (WHERE kind = 'battery') AS battery_min_pct
            FROM ledger GROUP BY ALL
        ),
        days AS (
            SELECT participant_id, local_date FROM daily_sitting
            UNION SELECT participant_id, local_date FROM per_day
        )
        SELECT k.participant_id, k.local_date, d.wear_min,
               coalesce(d.valid_day, false) AS valid_day,
               CAST(coalesce(g.data_gaps, 0) AS BIGINT) AS data_gaps,
               coalesce(g.gap_min, 0) AS gap_min,
               g.longest_gap_min, g.battery_min_pct
        FROM days k
        LEFT JOIN daily_sitting d
            ON d.participant_id = k.participant_id AND d.local_date = k.local_date
        LEFT JOIN per_day g
            ON g.participant_id = k.participant_id AND g.local_date = k.local_date;

        CREATE VIEW weekly_progress AS
        WITH days AS (
            SELECT *, CAST(date_trunc('week', local_date) AS DATE) AS week_start
            FROM daily_summary
        ),
        starts AS (
            SELECT participant_id,
                   CAST(date_trunc('week', least(min(local_date), coalesce(
                       (SELECT min(start_date) FROM phases ph
                        WHERE ph.participant_id = days.participant_id), min(local_date))))
                        AS DATE) AS first_week
            FROM days GROUP BY participant_id
        ),
        sessions AS (
            SELECT participant_id, CAST(date_trunc('week', local_date) AS DATE) AS week_start,
                   count(activation_quality) AS scored_sessions,
                   avg(activation_quality) AS activation_quality,
                   avg(glute_fired_share) AS glute_fired_share,
                   avg(firing_order_ms) AS firing_order_ms,
                   avg(glute_hamstring_ratio) AS glute_hamstring_ratio,
                   avg(peak_cv) AS peak_cv,
                   avg(glute_peak_pct_mvc) AS glute_peak_pct_mvc
            FROM exercise_sessions GROUP BY ALL
        ),
        weeks AS (
            SELECT participant_id, week_start,
                   arg_max(phase, local_date) AS phase,
                   count(*) AS days_with_data,
                   count(*) FILTER (WHERE valid_day) AS valid_days,
                   avg(sitting_min) FILTER (WHERE valid_day) AS sitting_min,
                   avg(sitting_pct) FILTER (WHERE valid_day) AS sitting_pct,
                   avg(bouts_30min) FILTER (WHERE valid_day) AS bouts_30min,
                   avg(bouts_60min) FILTER (WHERE valid_day) AS bouts_60min,
                   avg(longest_bout_min) FILTER (WHERE valid_day) AS longest_bout_min,
                   avg(breaks_per_sitting_hour) FILTER (WHERE valid_day)
                       AS breaks_per_sitting_hour,
                   avg(sitting_vs_baseline_min) FILTER (WHERE valid_day)
                       AS sitting_vs_baseline_min,
                   count(*) FILTER (WHERE exercise_sessions > 0) AS exercise_days,
                   CAST(sum(exercise_sessions) AS BIGINT) AS exercise_sessions,
                   avg(lower_back_pain) AS lower_back_pain,
                   avg(hip_pain) AS hip_pain,
                   avg(knee_pain) AS knee_pain,
                   count(*) FILTER (WHERE lower_back_pain IS NOT NULL OR hip_pain IS NOT NULL
                                    OR knee_pain IS NOT NULL) AS symptom_days
            FROM days GROUP BY ALL
        )
        SELECT w.participant_id, w.week_start,
               CAST((w.week_start - st.first_week) // 7 + 1 AS INTEGER) AS week_index,
               w.phase, w.days_with_data, w.valid_days, w.sitting_min, w.sitting_pct,
               w.bouts_30min, w.bouts_60min, w.longest_bout_min, w.breaks_per_sitting_hour,
               w.sitting_vs_baseline_min, w.exercise_days, w.exercise_sessions,
               coalesce(s.scored_sessions, 0) AS scored_sessions,
               s.activation_quality, s.glute_fired_share, s.firing_order_ms,
               s.glute_hamstring_ratio, s.peak_cv, s.glute_peak_pct_mvc,
               w.lower_back_pain, w.hip_pain, w.knee_pain, w.symptom_days
        FROM weeks w
        JOIN starts st ON st.participant_id = w.participant_id
        LEFT JOIN sessions s
            ON s.participant_id = w.participant_id AND s.week_start = w.week_start;

        CREATE VIEW phase_progress AS
        WITH last_day AS (
            SELECT participant_id, max(local_date) AS last_date
            FROM daily_summary GROUP BY participant_id
        ),
        periods AS (
            SELECT ph.participant_id, ph.phase, ph.start_date,
                   CAST(lead(ph.start_date) OVER (PARTITION BY ph.participant_id
                                                  ORDER BY ph.start_date) - 1 AS DATE)
                       AS end_date,
                   l.last_date
            FROM phases ph LEFT JOIN last_day l ON l.participant_id = ph.participant_id
        ),
        spans AS (
            SELECT *, greatest(CAST(coalesce(end_date, last_date, start_date) - start_date + 1
                                    AS INTEGER), 1) AS days_in_phase
            FROM periods
        ),
        days AS (
            SELECT sp.participant_id, sp.start_date,
                   count(*) AS days_with_data,
                   count(*) FILTER (WHERE d.valid_day) AS valid_days,
                   count(DISTINCT date_trunc('week', d.local_date)) AS weeks_with_data,
                   avg(d.sitting_min) FILTER (WHERE d.valid_day) AS sitting_min,
                   avg(d.bouts_30min) FILTER (WHERE d.valid_day) AS bouts_30min,
                   avg(d.longest_bout_min) FILTER (WHERE d.valid_day) AS longest_bout_min,
                   avg(d.breaks_per_sitting_hour) FILTER (WHERE d.valid_day)
                       AS breaks_per_sitting_hour,
                   avg(d.sitting_vs_baseline_min) FILTER (WHERE d.valid_day)
                       AS sitting_vs_baseline_min,
                   regr_slope(d.sitting_min, d.local_date - sp.start_date)
                       FILTER (WHERE d.valid_day) * 7 AS sitting_min_slope_per_week,
                   count(*) FILTER (WHERE d.exercise_sessions > 0) AS exercise_days,
                   avg(d.lower_back_pain) AS lower_back_pain,
                   avg(d.hip_pain) AS hip_pain,
                   avg(d.knee_pain) AS knee_pain,
                   count(*) FILTER (WHERE d.lower_back_pain IS NOT NULL
                                    OR d.hip_pain IS NOT NULL OR d.knee_pain IS NOT NULL)
                       AS symptom_days,
                   regr_slope((coalesce(d.lower_back_pain, 0) + coalesce(d.hip_pain, 0)
                               + coalesce(d.knee_pain, 0))
                              / nullif((d.lower_back_pain IS NOT NULL)::INT
                                       + (d.hip_pain IS NOT NULL)::INT
                                       + (d.knee_pain IS NOT NULL)::INT, 0),
                              d.local_date - sp.start_date) * 7 AS pain_slope_per_week
            FROM spans sp JOIN daily_summary d
                ON d.participant_id = sp.participant_id
               AND d.local_date BETWEEN sp.start_date
                                    AND coalesce(sp.end_date, DATE '9999-12-31')
            GROUP BY sp.participant_id, sp.start_date
        ),
        sessions AS (
            SELECT sp.participant_id, sp.start_date,
                   count(*) AS exercise_sessions,
                   count(s.activation_quality) AS scored_sessions,
                   avg(s.activation_quality) AS activation_quality,
                   regr_slope(s.activation_quality, s.local_date - sp.start_date) * 7
                       AS activation_quality_slope_per_week,
                   avg(s.glute_fired_share) AS glute_fired_share,
                   avg(s.firing_order_ms) AS firing_order_ms,
                   avg(s.glute_hamstring_ratio) AS glute_hamstring_ratio,
                   avg(s.peak_cv) AS peak_cv,
                   avg(s.glute_peak_pct_mvc) AS glute_peak_pct_mvc,
                   regr_slope(s.glute_peak_pct_mvc, s.local_date - sp.start_date) * 7
                       AS glute_peak_pct_mvc_slope_per_week
            FROM spans sp JOIN exercise_sessions s
                ON s.participant_id = sp.participant_id
               AND s.local_date BETWEEN sp.start_date
                                    AND coalesce(sp.end_date, DATE '9999-12-31')
            GROUP BY sp.participant_id, sp.start_date
        )
        SELECT sp.participant_id, sp.phase, sp.start_date, sp.end_date, sp.days_in_phase,
               coalesce(d.days_with_data, 0) AS days_with_data,
               coalesce(d.valid_days, 0) AS valid_days,
               coalesce(d.weeks_with_data, 0) AS weeks_with_data,
               d.sitting_min, d.bouts_30min, d.longest_bout_min, d.breaks_per_sitting_hour,
               d.sitting_vs_baseline_min, d.sitting_min_slope_per_week,
               coalesce(s.exercise_sessions, 0) AS exercise_sessions,
               coalesce(d.exercise_days, 0) AS exercise_days,
               coalesce(s.exercise_sessions, 0) * 7.0 / sp.days_in_phase AS sessions_per_week,
               coalesce(d.exercise_days, 0) * 7.0 / sp.days_in_phase AS exercise_days_per_week,
               coalesce(s.scored_sessions, 0) AS scored_sessions,
               s.activation_quality, s.activation_quality_slope_per_week,
               s.glute_fired_share, s.firing_order_ms, s.glute_hamstring_ratio, s.peak_cv,
               s.glute_peak_pct_mvc, s.glute_peak_pct_mvc_slope_per_week,
               d.lower_back_pain, d.hip_pain, d.knee_pain,
               coalesce(d.symptom_days, 0) AS symptom_days, d.pain_slope_per_week
        FROM spans sp
        LEFT JOIN days d ON d.participant_id = sp.participant_id AND d.start_date = sp.start_date
        LEFT JOIN sessions s
            ON s.participant_id = sp.participant_id AND s.start_date = sp.start_date;
        """,
    ),
    Migration(
        3,
        "daily_summary pushes filters down (ASOF phase join, no baseline join); "
        "baseline_sitting view; weekly/phase progress compare with it",
        """
        CREATE OR REPLACE VIEW daily_summary AS
        WITH sessions AS (
            SELECT participant_id, local_date,
                   count(*) AS exercise_sessions,
                   sum(repetitions) AS exercise_repetitions,
                   avg(activation_quality) AS activation_quality,
                   avg(firing_order_ms) AS firing_order_ms,
                   avg(glute_fired_share) AS glute_fired_share,
                   avg(glute_peak_pct_mvc) AS glute_peak_pct_mvc
            FROM exercise_sessions GROUP BY ALL
        ),
        days AS (
            SELECT participant_id, local_date FROM daily_sitting
            UNION SELECT participant_id, local_date FROM exercise_sessions
            UNION SELECT participant_id, local_date FROM symptoms
        )
        SELECT k.participant_id, k.local_date, ph.phase,
               d.wear_min, d.sitting_min, d.sitting_pct, d.standing_min, d.moving_min,
               d.lying_min, d.sitting_bouts, d.bouts_30min, d.bouts_60min,
               d.longest_bout_min, d.mean_bout_min, d.breaks, d.breaks_per_sitting_hour,
               coalesce(d.valid_day, false) AS valid_day,
               CAST(coalesce(s.exercise_sessions, 0) AS BIGINT) AS exercise_sessions,
               CAST(coalesce(s.exercise_repetitions, 0) AS BIGINT) AS exercise_repetitions,
               s.activation_quality, s.firing_order_ms,
               y.lower_back_pain, y.hip_pain, y.knee_pain,
               d.participant_id IS NOT NULL AS has_sitting_data,
               s.glute_fired_share, s.glute_peak_pct_mvc
        FROM days k
        LEFT JOIN daily_sitting d
            ON d.participant_id = k.participant_id AND d.local_date = k.local_date
        LEFT JOIN sessions s
            ON s.participant_id = k.participant_id AND s.local_date = k.local_date
        LEFT JOIN symptoms y
            ON y.participant_id = k.participant_id AND y.local_date = k.local_date
        -- the phase in force: the latest phase row starting on or before the day (an ASOF
        -- join keeps the participant/date filters pushed down into every table scan)
        ASOF LEFT JOIN phases ph
            ON ph.participant_id = k.participant_id AND k.local_date >= ph.start_date;

        CREATE VIEW baseline_sitting AS
        SELECT p.participant_id, count(d.local_date) AS baseline_days,
               avg(d.sitting_min) AS baseline_sitting_min,
               avg(d.bouts_30min) AS baseline_bouts_30min,
               avg(d.breaks_per_sitting_hour) AS baseline_breaks_per_sitting_hour,
               p.goal_sitting_min, p.goal_breaks_per_sitting_hour
        FROM participants p
        LEFT JOIN daily_sitting d
            ON d.participant_id = p.participant_id AND d.valid_day
           AND d.local_date BETWEEN p.baseline_start AND p.baseline_end
        GROUP BY p.participant_id, p.goal_sitting_min, p.goal_breaks_per_sitting_hour;

        CREATE OR REPLACE VIEW weekly_progress AS
        WITH days AS (
            SELECT *, CAST(date_trunc('week', local_date) AS DATE) AS week_start
            FROM daily_summary
        ),
        starts AS (
            SELECT participant_id,
                   CAST(date_trunc('week', least(min(local_date), coalesce(
                       (SELECT min(start_date) FROM phases ph
                        WHERE ph.participant_id = days.participant_id), min(local_date))))
                        AS DATE) AS first_week
            FROM days GROUP BY participant_id
        ),
        sessions AS (
            SELECT participant_id, CAST(date_trunc('week', local_date) AS DATE) AS week_start,
                   count(activation_quality) AS scored_sessions,
                   avg(activation_quality) AS activation_quality,
                   avg(glute_fired_share) AS glute_fired_share,
                   avg(firing_order_ms) AS firing_order_ms,
                   avg(glute_hamstring_ratio) AS glute_hamstring_ratio,
                   avg(peak_cv) AS peak_cv,
                   avg(glute_peak_pct_mvc) AS glute_peak_pct_mvc
            FROM exercise_sessions GROUP BY ALL
        ),
        weeks AS (
            SELECT participant_id, week_start,
                   arg_max(phase, local_date) AS phase,
                   count(*) AS days_with_data,
                   count(*) FILTER (WHERE valid_day) AS valid_days,
                   avg(sitting_min) FILTER (WHERE valid_day) AS sitting_min,
                   avg(sitting_pct) FILTER (WHERE valid_day) AS sitting_pct,
                   avg(bouts_30min) FILTER (WHERE valid_day) AS bouts_30min,
                   avg(bouts_60min) FILTER (WHERE valid_day) AS bouts_60min,
                   avg(longest_bout_min) FILTER (WHERE valid_day) AS longest_bout_min,
                   avg(breaks_per_sitting_hour) FILTER (WHERE valid_day)
                       AS breaks_per_sitting_hour,
                   count(*) FILTER (WHERE exercise_sessions > 0) AS exercise_days,
                   CAST(sum(exercise_sessions) AS BIGINT) AS exercise_sessions,
                   avg(lower_back_pain) AS lower_back_pain,
                   avg(hip_pain) AS hip_pain,
                   avg(knee_pain) AS knee_pain,
                   count(*) FILTER (WHERE lower_back_pain IS NOT NULL OR hip_pain IS NOT NULL
                                    OR knee_pain IS NOT NULL) AS symptom_days
            FROM days GROUP BY ALL
        )
        SELECT w.participant_id, w.week_start,
               CAST((w.week_start - st.first_week) // 7 + 1 AS INTEGER) AS week_index,
               w.phase, w.days_with_data, w.valid_days, w.sitting_min, w.sitting_pct,
               w.bouts_30min, w.bouts_60min, w.longest_bout_min, w.breaks_per_sitting_hour,
               w.sitting_min - b.baseline_sitting_min AS sitting_vs_baseline_min,
               w.exercise_days, w.exercise_sessions,
               coalesce(s.scored_sessions, 0) AS scored_sessions,
               s.activation_quality, s.glute_fired_share, s.firing_order_ms,
               s.glute_hamstring_ratio, s.peak_cv, s.glute_peak_pct_mvc,
               w.lower_back_pain, w.hip_pain, w.knee_pain, w.symptom_days
        FROM weeks w
        JOIN starts st ON st.participant_id = w.participant_id
        LEFT JOIN baseline_sitting b ON b.participant_id = w.participant_id
        LEFT JOIN sessions s
            ON s.participant_id = w.participant_id AND s.week_start = w.week_start;

        CREATE OR REPLACE VIEW phase_progress AS
        WITH last_day AS (
            SELECT participant_id, max(local_date) AS last_date
            FROM daily_summary GROUP BY participant_id
        ),
        periods AS (
            SELECT ph.participant_id, ph.phase, ph.start_date,
                   CAST(lead(ph.start_date) OVER (PARTITION BY ph.participant_id
                                                  ORDER BY ph.start_date) - 1 AS DATE)
                       AS end_date,
                   l.last_date
            FROM phases ph LEFT JOIN last_day l ON l.participant_id = ph.participant_id
        ),
        spans AS (
            SELECT *, greatest(CAST(coalesce(end_date, last_date, start_date) - start_date + 1
                                    AS INTEGER), 1) AS days_in_phase
            FROM periods
        ),
        days AS (
            SELECT sp.participant_id, sp.start_date,
                   count(*) AS days_with_data,
                   count(*) FILTER (WHERE d.valid_day) AS valid_days,
                   count(DISTINCT date_trunc('week', d.local_date)) AS weeks_with_data,
                   avg(d.sitting_min) FILTER (WHERE d.valid_day) AS sitting_min,
                   avg(d.bouts_30min) FILTER (WHERE d.valid_day) AS bouts_30min,
                   avg(d.longest_bout_min) FILTER (WHERE d.valid_day) AS longest_bout_min,
                   avg(d.breaks_per_sitting_hour) FILTER (WHERE d.valid_day)
                       AS breaks_per_sitting_hour,
                   regr_slope(d.sitting_min, d.local_date - sp.start_date)
                       FILTER (WHERE d.valid_day) * 7 AS sitting_min_slope_per_week,
                   count(*) FILTER (WHERE d.exercise_sessions > 0) AS exercise_days,
                   avg(d.lower_back_pain) AS lower_back_pain,
                   avg(d.hip_pain) AS hip_pain,
                   avg(d.knee_pain) AS knee_pain,
                   count(*) FILTER (WHERE d.lower_back_pain IS NOT NULL
                                    OR d.hip_pain IS NOT NULL OR d.knee_pain IS NOT NULL)
                       AS symptom_days,
                   regr_slope((coalesce(d.lower_back_pain, 0) + coalesce(d.hip_pain, 0)
                               + coalesce(d.knee_pain, 0))
                              / nullif((d.lower_back_pain IS NOT NULL)::INT
                                       + (d.hip_pain IS NOT NULL)::INT
                                       + (d.knee_pain IS NOT NULL)::INT, 0),
                              d.local_date - sp.start_date) * 7 AS pain_slope_per_week
            FROM spans sp JOIN daily_summary d
                ON d.participant_id = sp.participant_id
               AND d.local_date BETWEEN sp.start_date
                                    AND coalesce(sp.end_date, DATE '9999-12-31')
            GROUP BY sp.participant_id, sp.start_date
        ),
        sessions AS (
            SELECT sp.participant_id, sp.start_date,
                   count(*) AS exercise_sessions,
                   count(s.activation_quality) AS scored_sessions,
                   avg(s.activation_quality) AS activation_quality,
                   regr_slope(s.activation_quality, s.local_date - sp.start_date) * 7
                       AS activation_quality_slope_per_week,
                   avg(s.glute_fired_share) AS glute_fired_share,
                   avg(s.firing_order_ms) AS firing_order_ms,
                   avg(s.glute_hamstring_ratio) AS glute_hamstring_ratio,
                   avg(s.peak_cv) AS peak_cv,
                   avg(s.glute_peak_pct_mvc) AS glute_peak_pct_mvc,
                   regr_slope(s.glute_peak_pct_mvc, s.local_date - sp.start_date) * 7
                       AS glute_peak_pct_mvc_slope_per_week
            FROM spans sp JOIN exercise_sessions s
                ON s.participant_id = sp.participant_id
               AND s.local_date BETWEEN sp.start_date
                                    AND coalesce(sp.end_date, DATE '9999-12-31')
            GROUP BY sp.participant_id, sp.start_date
        )
        SELECT sp.participant_id, sp.phase, sp.start_date, sp.end_date, sp.days_in_phase,
               coalesce(d.days_with_data, 0) AS days_with_data,
               coalesce(d.valid_days, 0) AS valid_days,
               coalesce(d.weeks_with_data, 0) AS weeks_with_data,
               d.sitting_min, d.bouts_30min, d.longest_bout_min, d.breaks_per_sitting_hour,
               d.sitting_min - b.baseline_sitting_min AS sitting_vs_baseline_min,
               d.sitting_min_slope_per_week,
               coalesce(s.exercise_sessions, 0) AS exercise_sessions,
               coalesce(d.exercise_days, 0) AS exercise_days,
               coalesce(s.exercise_sessions, 0) * 7.0 / sp.days_in_phase AS sessions_per_week,
               coalesce(d.exercise_days, 0) * 7.0 / sp.days_in_phase AS exercise_days_per_week,
               coalesce(s.scored_sessions, 0) AS scored_sessions,
               s.activation_quality, s.activation_quality_slope_per_week,
               s.glute_fired_share, s.firing_order_ms, s.glute_hamstring_ratio, s.peak_cv,
               s.glute_peak_pct_mvc, s.glute_peak_pct_mvc_slope_per_week,
               d.lower_back_pain, d.hip_pain, d.knee_pain,
               coalesce(d.symptom_days, 0) AS symptom_days, d.pain_slope_per_week
        FROM spans sp
        LEFT JOIN days d ON d.participant_id = sp.participant_id AND d.start_date = sp.start_date
        LEFT JOIN baseline_sitting b ON b.participant_id = sp.participant_id
        LEFT JOIN sessions s
            ON s.participant_id = sp.participant_id AND s.start_date = sp.start_date;
        """,
    ),
    Migration(
        4,
        "process tasks that failed (retried by the next process run)",
        """
        CREATE TABLE task_failures (
            task TEXT NOT NULL,
            task_key TEXT NOT NULL,
            participant_id TEXT,
            args JSON,
            error TEXT NOT NULL,
            traceback TEXT,
            attempts INTEGER NOT NULL,
            runs INTEGER NOT NULL,
            first_failed_at TIMESTAMPTZ NOT NULL,
            last_failed_at TIMESTAMPTZ NOT NULL,
            PRIMARY KEY (task, task_key)
        );
        """,
    ),
    Migration(
        5,
        "sitting: one owner per bout (start day, whole length); short stands counted "
        "(daily_sitting.short_stands, sitting_bouts.sitting_min/short_stands/ends_in_break, "
        "daily_summary.short_stands); rows written before are NULL there: process --redo",
        """
        ALTER TABLE daily_sitting ADD COLUMN short_stands INTEGER;
        ALTER TABLE sitting_bouts ADD COLUMN sitting_min DOUBLE;
        ALTER TABLE sitting_bouts ADD COLUMN short_stands INTEGER;
        ALTER TABLE sitting_bouts ADD COLUMN ends_in_break BOOLEAN;

        CREATE OR REPLACE VIEW daily_summary AS
        WITH sessions AS (
            SELECT participant_id, local_date,
                   count(*) AS exercise_sessions,
                   sum(repetitions) AS exercise_repetitions,
                   avg(activation_quality) AS activation_quality,
                   avg(firing_order_ms) AS firing_order_ms,
                   avg(glute_fired_share) AS glute_fired_share,
                   avg(glute_peak_pct_mvc) AS glute_peak_pct_mvc
            FROM exercise_sessions GROUP BY ALL
        ),
        days AS (
            SELECT participant_id, local_date FROM daily_sitting
            UNION SELECT participant_id, local_date FROM exercise_sessions
            UNION SELECT participant_id, local_date FROM symptoms
        )
        SELECT k.participant_id, k.local_date, ph.phase,
               d.wear_min, d.sitting_min, d.sitting_pct, d.standing_min, d.moving_min,
               d.lying_min, d.sitting_bouts, d.bouts_30min, d.bouts_60min,
               d.longest_bout_min, d.mean_bout_min, d.breaks, d.breaks_per_sitting_hour,
               coalesce(d.valid_day, false) AS valid_day,
               CAST(coalesce(s.exercise_sessions, 0) AS BIGINT) AS exercise_sessions,
               CAST(coalesce(s.exercise_repetitions, 0) AS BIGINT) AS exercise_repetitions,
               s.activation_quality, s.firing_order_ms,
               y.lower_back_pain, y.hip_pain, y.knee_pain,
               d.participant_id IS NOT NULL AS has_sitting_data,
               s.glute_fired_share, s.glute_peak_pct_mvc,
               d.short_stands
        FROM days k
        LEFT JOIN daily_sitting d
            ON d.participant_id = k.participant_id AND d.local_date = k.local_date
        LEFT JOIN sessions s
            ON s.participant_id = k.participant_id AND s.local_date = k.local_date
        LEFT JOIN symptoms y
            ON y.participant_id = k.participant_id AND y.local_date = k.local_date
        ASOF LEFT JOIN phases ph
            ON ph.participant_id = k.participant_id AND k.local_date >= ph.start_date;
        """,
    ),
    Migration(
        6,
        "devices: derivations waiting for a changed placement or channel roles",
        """
        ALTER TABLE devices ADD COLUMN rederive_pending BOOLEAN DEFAULT false;
        """,
    ),
    Migration(
        7,
        "spool_damage (damaged spool files, moved aside or partly read); daily_qc counts it",
        """
        CREATE TABLE spool_damage (
            file VARCHAR NOT NULL,
            part VARCHAR NOT NULL,
            original_path VARCHAR NOT NULL,
            quarantined BOOLEAN NOT NULL,
            participant_id VARCHAR NOT NULL,
            device_id VARCHAR NOT NULL,
            kind VARCHAR NOT NULL,
            reason VARCHAR NOT NULL,
            records_lost BIGINT,
            start_time TIMESTAMPTZ,
            end_time TIMESTAMPTZ,
            span_from VARCHAR NOT NULL,
            detected_at TIMESTAMPTZ NOT NULL,
            PRIMARY KEY (file, part)
        );

        CREATE OR REPLACE VIEW daily_qc AS
        WITH ledger AS (
            SELECT q.participant_id,
                   CAST(coalesce(q.local_date, timezone(p.tz, q.start_time)) AS DATE)
                       AS local_date,
                   q.kind, q.value
            FROM qc q JOIN participants p ON p.participant_id = q.participant_id
            WHERE q.kind LIKE 'gap:%' OR q.kind = 'battery'
        ),
        per_day AS (
            SELECT participant_id, local_date,
                   count(*) FILTER (WHERE kind LIKE 'gap:%') AS data_gaps,
                   coalesce(sum(value) FILTER (WHERE kind LIKE 'gap:%'), 0) / 60 AS gap_min,
                   max(value) FILTER (WHERE kind LIKE 'gap:%') / 60 AS longest_gap_min,
                   min(value) FILTER (WHERE kind = 'battery') AS battery_min_pct
            FROM ledger GROUP BY ALL
        ),
        -- each damaged part's estimated stretch, in local wall time, cut at local midnights
        damage AS (
            SELECT d.participant_id, timezone(p.tz, d.start_time) AS start_local,
                   timezone(p.tz, coalesce(d.end_time, d.start_time)) AS end_local
            FROM spool_damage d JOIN participants p ON p.participant_id = d.participant_id
            WHERE d.start_time IS NOT NULL
        ),
        damage_days AS (
            SELECT participant_id, CAST(g.day AS DATE) AS local_date,
                   count(*) AS damaged_parts,
                   sum(greatest(epoch(least(end_local, g.day + INTERVAL 1 DAY))
                                - epoch(greatest(start_local, g.day)), 0)) / 60 AS damage_min
            FROM damage, unnest(generate_series(date_trunc('day', start_local),
                                                date_trunc('day', end_local),
                                                INTERVAL 1 DAY)) AS g(day)
            GROUP BY ALL
        ),
        days AS (
            SELECT participant_id, local_date FROM daily_sitting
            UNION SELECT participant_id, local_date FROM per_day
            UNION SELECT participant_id, local_date FROM damage_days
        )
        SELECT k.participant_id, k.local_date, d.wear_min,
               coalesce(d.valid_day, false) AS valid_day,
               CAST(coalesce(g.data_gaps, 0) AS BIGINT) AS data_gaps,
               coalesce(g.gap_min, 0) AS gap_min,
               g.longest_gap_min, g.battery_min_pct,
               CAST(coalesce(x.damaged_parts, 0) AS BIGINT) AS damaged_parts,
               coalesce(x.damage_min, 0) AS damage_min
        FROM days k
        LEFT JOIN daily_sitting d
            ON d.participant_id = k.participant_id AND d.local_date = k.local_date
        LEFT JOIN per_day g
            ON g.participant_id = k.participant_id AND g.local_date = k.local_date
        LEFT JOIN damage_days x
            ON x.participant_id = k.participant_id AND x.local_date = k.local_date;
        """,
    ),
)

SCHEMA_VERSION = MIGRATIONS[-1].version


def _is_lock_conflict(exc: Exception) -> bool:
    text = str(exc).lower()
    return "lock" in text or "conflicting" in text or "being used" in text


#: told what the catalog waits for, once, when a wait begins (e.g. prints it)
WaitHook = Callable[[str], None]


def _holder(exc: Exception, *, read_only: bool) -> str:
    """Who holds the catalog file, from DuckDB's lock error, and why that blocks us."""
    text = str(exc)
    found = re.search(r"held in (.+?) \(PID (\d+)\)", text)
    who = f"process {found.group(2)} ({Path(found.group(1)).name})" if found else "a process"
    if read_only:
        return f"{who} is writing it (nobody can open a DuckDB file while it is written)"
    if "read-only mode" in text:
        return (
            f"{who} has it open read-only (a query: 'glutewake sql', a report, a notebook); "
            "DuckDB lets no process write a file that another has open, even read-only"
        )
    return f"{who} has it open read-write"


def _connect(
    path: str,
    *,
    read_only: bool,
    timeout_s: float,
    on_wait: WaitHook | None = None,
    waited_s: float = 0.0,
) -> duckdb.DuckDBPyConnection:
    """Connect, retrying while another process holds the file (``waited_s``: time already
    spent waiting for it elsewhere, for the message)."""
    import duckdb

    deadline = time.monotonic() + timeout_s
    delay = 0.02
    told = False
    while True:
        try:
            return duckdb.connect(path, read_only=read_only)
        except (duckdb.IOException, duckdb.ConnectionException) as exc:
            if not _is_lock_conflict(exc):
                raise CatalogError(f"cannot open catalog {path}: {exc}{REBUILD_HINT}") from exc
            holder = _holder(exc, read_only=read_only)
            if time.monotonic() >= deadline:
                mode = "read-only" if read_only else "read-write"
                raise CatalogBusyError(
                    f"cannot open catalog {path} {mode}: {holder}; gave up after "
                    f"{round(timeout_s + waited_s, 1):g} s"
                ) from exc
            if on_wait is not None and not told:
                on_wait(f"catalog {path}: {holder}")
                told = True
            time.sleep(max(0.0, min(delay, deadline - time.monotonic())))
            delay = min(delay * 2, 0.5)


def _migrate(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(
        "CREATE TABLE IF NOT EXISTS schema_version ("
        "version INTEGER PRIMARY KEY, description VARCHAR NOT NULL, "
        "applied_at TIMESTAMPTZ NOT NULL, glutewake_version VARCHAR NOT NULL)"
    )
    row = con.execute("SELECT coalesce(max(version), 0) FROM schema_version").fetchone()
    current = int(row[0]) if row else 0
    if current > SCHEMA_VERSION:
        raise CatalogError(
            f"catalog schema version {current} is newer than this glutewake ({SCHEMA_VERSION}); "
            "upgrade glutewake"
        )
    for migration in MIGRATIONS:
        if migration.version <= current:
            continue
        log.info("applying catalog migration %d: %s", migration.version, migration.description)
        con.execute("BEGIN TRANSACTION")
        try:
            con.execute(migration.sql)
            con.execute(
                "INSERT INTO schema_version VALUES (?, ?, now(), ?)",
                [migration.version, migration.description, __version__],
            )
            con.execute("COMMIT")
        except Exception:
            con.execute("ROLLBACK")
            raise


@contextlib.contextmanager
def open_write(
    data_dir: DataDir, *, timeout_s: float = 30.0, on_wait: WaitHook | None = None
) -> Iterator[duckdb.DuckDBPyConnection]:
    """Open the catalog read-write under the writers' lock, migrating it; keep it briefly.

    ``timeout_s`` bounds the whole wait (for the lock, then the file; ``math.inf``: no bound);
    ``on_wait`` is told once what it waits for.

    Raises
    ------
    CatalogBusyError
        If another writer holds the lock, or any process holds the file (a read-only query
        too: DuckDB allows no writer then), for longer than ``timeout_s``.
    """
    from filelock import FileLock, Timeout

    data_dir.create()
    started = time.monotonic()
    deadline = started + timeout_s
    lock = FileLock(str(data_dir.lock), mode=0o600)
    try:
        try:
            lock.acquire(timeout=0)
        except Timeout:
            if on_wait is not None:
                on_wait(f"another glutewake job is writing {data_dir.catalog}")
            lock.acquire(timeout=-1 if math.isinf(timeout_s) else timeout_s)
    except Timeout as exc:
        raise CatalogBusyError(
            f"another glutewake job is writing {data_dir.catalog} (lock {data_dir.lock}); "
            f"gave up after {timeout_s:g} s"
        ) from exc
    try:
        con = _connect(
            str(data_dir.catalog),
            read_only=False,
            timeout_s=max(0.0, deadline - time.monotonic()),
            on_wait=on_wait,
            waited_s=time.monotonic() - started,
        )
        os.chmod(data_dir.catalog, 0o600)  # new, or written 0644 by an older glutewake
        try:
            _migrate(con)
            yield con
        finally:
            con.close()
    finally:
        lock.release()


@contextlib.contextmanager
def open_read(
    data_dir: DataDir, *, timeout_s: float = 10.0, on_wait: WaitHook | None = None
) -> Iterator[duckdb.DuckDBPyConnection]:
    """Open the catalog read-only with a bounded retry (writers hold it only briefly), confined.

    The connection reads the catalog and the Parquet files under the data directory's
    ``samples/`` and ``reference/`` trees (and those of a local ``data_dir.storage``), and nothing
    else: DuckDB's ``enable_external_access`` is off with those trees as ``allowed_directories``,
    extensions are neither installed nor loaded, and ``lock_configuration`` keeps any statement
    from changing that. The catalog itself is opened read-only, so it cannot change either; what
    a statement may still do inside the allowed trees (``COPY ... TO`` a file there) is refused
    by :func:`glutewake.store.user_query.check_read_only`, which every path that runs user SQL
    applies.

    Raises
    ------
    CatalogMissingError
        If the data directory has no catalog yet.
    CatalogBusyError
        If it stays locked by a writer for longer than ``timeout_s``.
    """
    if not data_dir.catalog.exists():
        if (data_dir.root / LEDGER_NAME).exists():
            raise CatalogMissingError(f"no catalog at {data_dir.catalog}{REBUILD_HINT}")
        raise CatalogMissingError(
            f"no catalog at {data_dir.catalog} (run 'glutewake process' or 'glutewake demo' first)"
        )
    con = _connect(str(data_dir.catalog), read_only=True, timeout_s=timeout_s, on_wait=on_wait)
    if _schema_version(con) < SCHEMA_VERSION:
        # a catalog written by an older glutewake: migrate it forward once, briefly, then read
        con.close()
        log.info("catalog %s predates schema %d; migrating it", data_dir.catalog, SCHEMA_VERSION)
        with open_write(data_dir, timeout_s=timeout_s):
            pass
        con = _connect(str(data_dir.catalog), read_only=True, timeout_s=timeout_s)
    try:
        _confine(con, readable_trees(data_dir))
        yield con
    finally:
        con.close()


def readable_trees(data_dir: DataDir) -> list[str]:
    """Folders a read-only catalog connection may read Parquet from (with a trailing separator).

    The sample and reference trees of the data directory and of a local ``storage`` location,
    each as given and with symbolic links resolved. Not the spool: it is the record of truth and
    only the pipeline reads it.
    """
    roots = [data_dir.root]
    if data_dir.storage:
        store = data_dir.store
        if store.local:
            roots.append(Path(store.location))
    trees: list[str] = []
    for root in roots:
        for name in ("samples", "reference"):
            for folder in (root.absolute() / name, (root / name).resolve()):
                text = str(folder).rstrip(os.sep) + os.sep
                if text not in trees:
                    trees.append(text)
    return trees


def _sql_text(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _confine(con: duckdb.DuckDBPyConnection, trees: list[str]) -> None:
    """Lock a read-only connection's DuckDB instance down (see :func:`open_read`)."""

    def setting(name: str) -> object:
        row = con.execute("SELECT current_setting(?)", [name]).fetchone()
        return row[0] if row else None

    if setting("lock_configuration"):
        # DuckDB shares one instance among a process's connections to a file: a connection
        # opened earlier has confined it already, unless someone locked it open
        if setting("enable_external_access"):
            raise CatalogError(
                "the catalog is open in this process with external access enabled and the "
                "configuration locked; close that connection first"
            )
        return
    # allowed_directories can only be set while external access is still on
    listed = ", ".join(_sql_text(t) for t in trees)
    con.execute(f"SET allowed_directories = [{listed}]")
    for statement in (
        "SET enable_external_access = false",
        "SET autoinstall_known_extensions = false",
        "SET autoload_known_extensions = false",
        "SET allow_community_extensions = false",
        "SET allow_persistent_secrets = false",
        "SET lock_configuration = true",
    ):
        con.execute(statement)


def _schema_version(con: duckdb.DuckDBPyConnection) -> int:
    try:
        rows = con.execute("SELECT coalesce(max(version), 0) FROM schema_version").fetchall()
    except Exception:  # no schema_version table: not migrated at all
        return 0
    return int(rows[0][0]) if rows else 0


def table_columns(con: duckdb.DuckDBPyConnection) -> dict[str, list[str]]:
    """Every table and view of the main schema with its columns, in order."""
    rows = con.execute(
        "SELECT table_name, column_name FROM information_schema.columns "
        "WHERE table_schema = 'main' ORDER BY table_name, ordinal_position"
    ).fetchall()
    out: dict[str, list[str]] = {}
    for table, column in rows:
        out.setdefault(str(table), []).append(str(column))
    return out


def query_frame(
    con: duckdb.DuckDBPyConnection, sql: str, params: list[object] | None = None
) -> pl.DataFrame:
    """Run ``sql`` with ``params`` and return the result as a polars DataFrame."""
    import polars as pl

    relation = con.sql(sql, params=params or None)
    if relation is None:  # a statement without a result set
        return pl.DataFrame()
    return relation.pl()
