"""Exercise sessions and MVC trials: EMG recordings -> contractions and activation quality.

Part of the process job (it joins the sample store, the EMG detectors and the catalog rows).
An EMG recording labelled ``mvc`` gives each channel's MVC reference for that local day; any
other label is an exercise session, scored against the latest MVC reference of the same
participant and day (or earlier days, if none that day).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import numpy as np
import polars as pl

from glutewake import __version__
from glutewake.pipeline.parallel import TaskFailure, TaskRunner
from glutewake.pipeline.rows import ProcessSummary, ProgressHook, Recording, Rows, record_failure
from glutewake.store import samples as sample_store

if TYPE_CHECKING:
    from glutewake.store.datadir import DataDir

log = logging.getLogger(__name__)
log.addHandler(logging.NullHandler())

MVC_LABEL = "mvc"
_MUSCLES = (
    ("glute_max", "glute_max"),
    ("gluteus_maximus", "glute_max"),
    ("glute_med", "glute_med"),
    ("gluteus_medius", "glute_med"),
    ("hamstring", "hamstring"),
    ("biceps_femoris", "hamstring"),
    ("semitendinosus", "hamstring"),
    ("erector_spinae", "erector_spinae"),
)
_SIDE = re.compile(r"(?:^|[_\-\s])(l|r|left|right)$", re.IGNORECASE)


def infer_role(channel: str) -> tuple[str, str] | None:
    """(muscle, side) from a channel label such as ``glute_max_r`` or ``biceps_femoris_left``.

    >>> infer_role("glute_max_r")
    ('glute_max', 'right')
    >>> infer_role("ch1") is None
    True
    """
    name = channel.lower()
    muscle = next((m for prefix, m in _MUSCLES if name.startswith(prefix)), None)
    side_match = _SIDE.search(name)
    if muscle is None:
        return None
    side = "right"
    if side_match:
        side = "left" if side_match.group(1).lower().startswith("l") else "right"
    return muscle, side


def channel_roles(channels: Sequence[str], registered: str | None) -> list[tuple[str, str]] | None:
    """Roles per channel: from the devices table (JSON) where set, else from the labels."""
    table: dict[str, tuple[str, str]] = {}
    if registered:
        for ch, muscle, side in json.loads(registered):
            table[str(ch)] = (str(muscle), str(side))
    roles = []
    for ch in channels:
        role = table.get(ch) or infer_role(ch)
        if role is None:
            return None
        roles.append(role)
    return roles


def _us_to_dt(t_us: int) -> dt.datetime:
    return dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(microseconds=int(t_us))


def _none_if_nan(value: float) -> float | None:
    return None if value is None or not np.isfinite(value) else float(value)


@dataclasses.dataclass
class EmgRows:
    """Catalog rows from one EMG recording (what :func:`emg_task` returns)."""

    mvc: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    sessions: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    contractions: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    qc: list[dict[str, Any]] = dataclasses.field(default_factory=list)


MvcByChannel = dict[str, list[tuple[dt.date, float]]]


def known_mvc(data_dir: DataDir) -> dict[str, MvcByChannel]:
    """MVC references already in the catalog: participant -> channel -> [(date, µV)]."""
    from glutewake.store.catalog import open_read

    out: dict[str, MvcByChannel] = {}
    if not data_dir.catalog.exists():
        return out
    with open_read(data_dir) as con:
        for pid, day, ch, mvc in con.execute(
            "SELECT participant_id, local_date, channel, mvc_uv FROM mvc_references"
        ).fetchall():
            out.setdefault(str(pid), {}).setdefault(str(ch), []).append((day, float(mvc)))
    return out


def add_mvc(known: dict[str, MvcByChannel], rows: Sequence[dict[str, Any]]) -> None:
    """Add newly computed MVC rows to ``known`` (in place)."""
    for row in rows:
        known.setdefault(row["participant_id"], {}).setdefault(row["channel"], []).append(
            (row["local_date"], float(row["mvc_uv"]))
        )


def emg_task(
    data_dir: DataDir,
    rec: Any,
    tz: str,
    registered_roles: str | None,
    mvc: MvcByChannel,
) -> EmgRows:
    """One EMG recording: its MVC references (label ``mvc``) or its exercise session.

    A pure task (it reads the sample store and returns rows), so recordings can be processed
    in any order and in parallel once the MVC references they are scored against are known.
    ``mvc`` holds the participant's references per channel.
    """
    from glutewake.signal.activation import mvc_reference, session_activation
    from glutewake.signal.emg import DetectionParams

    out = EmgRows()
    block = sample_store.read_samples(
        data_dir,
        stream="emg",
        participant_id=rec.participant_id,
        device_id=rec.device_id,
        start_us=rec.start_us,
        end_us=rec.end_us + 1,
    )
    if block is None:
        return out
    cols = [block.channels.index(c) for c in rec.channels if c in block.channels]
    emg = block.values[:, cols].astype(np.float64)
    names = [block.channels[i] for i in cols]
    day = _us_to_dt(rec.start_us).astimezone(ZoneInfo(tz)).date()
    if len(emg) < rec.fs_hz * 2:
        out.qc.append(_qc(rec, day, "emg_too_short", len(emg) / rec.fs_hz))
        return out
    if rec.exercise == MVC_LABEL:
        ref = mvc_reference(emg, rec.fs_hz)
        for name, value in zip(names, np.atleast_1d(ref), strict=True):
            out.mvc.append(
                {
                    "participant_id": rec.participant_id,
                    "local_date": day,
                    "channel": name,
                    "mvc_uv": float(value),
                    "recording_id": rec.recording_id,
                }
            )
        return out
    roles = channel_roles(names, registered_roles)
    if roles is None or not any(m.startswith("glute") for m, _ in roles):
        out.qc.append(
            _qc(
                rec,
                day,
                "emg_roles_unknown",
                None,
                "channel roles unknown: set them with 'glutewake device set --channel-roles'",
            )
        )
        return out
    refs: list[float | None] = []
    for name in names:
        earlier = [v for d, v in sorted(mvc.get(name, [])) if d <= day]
        refs.append(earlier[-1] if earlier else None)
    params = DetectionParams()
    param_text = json.dumps(dataclasses.asdict(params), sort_keys=True, default=str)
    found = detect_by_span(emg, rec.fs_hz, block.t_us, params)
    act = session_activation(emg, rec.fs_hz, roles=roles, mvc_uv=refs, contractions=found)
    _session_rows(rec, day, names, act, found, block.t_us, out, param_text)
    return out


#: samples farther apart than this are analysed as separate spans (a lost link, a stopped
#: stream): detection must not run its filters and merge rules across the gap
EMG_GAP_S = 0.1


def detect_by_span(emg: np.ndarray, fs_hz: float, t_us: np.ndarray, params: Any) -> Any:
    """Contractions detected in each contiguous span of a recording, as one result.

    Indices refer to the whole array. Spans shorter than 2 s (too short for the noise
    estimate) are left out, unless all are. Without gaps this is exactly
    ``detect_contractions``.
    """
    from glutewake.signal.emg import detect_contractions

    spans = sample_store.contiguous_spans(t_us, fs_hz, EMG_GAP_S)
    if len(spans) <= 1:
        return detect_contractions(emg, fs_hz, params=params)
    parts = [
        (lo, detect_contractions(emg[lo:hi], fs_hz, params=params))
        for lo, hi in spans
        if hi - lo >= 2 * fs_hz
    ]
    if not parts:  # only short pieces: better one pass over them than nothing
        return detect_contractions(emg, fs_hz, params=params)
    onset = np.concatenate([p.onset_idx + lo for lo, p in parts])
    offset = np.concatenate([p.offset_idx + lo for lo, p in parts])
    channel = np.concatenate([p.channel for _, p in parts])
    order = np.lexsort((onset, channel))

    def joined(name: str) -> np.ndarray:
        return np.concatenate([getattr(p, name) for _, p in parts])[order]

    mains = [p.mains_hz for _, p in parts if p.mains_hz is not None]
    return dataclasses.replace(
        parts[0][1],
        onset_idx=onset[order],
        offset_idx=offset[order],
        channel=channel[order],
        confidence=joined("confidence"),
        peak_uv=joined("peak_uv"),
        mean_uv=joined("mean_uv"),
        time_to_peak_s=joined("time_to_peak_s"),
        noise_uv=np.median(np.stack([p.noise_uv for _, p in parts]), axis=0),
        mains_hz=max(set(mains), key=mains.count) if mains else None,
    )


def _qc(
    rec: Any, day: dt.date, kind: str, value: float | None, detail: str | None = None
) -> dict[str, Any]:
    return {
        "participant_id": rec.participant_id,
        "recording_id": rec.recording_id,
        "local_date": day,
        "kind": kind,
        "start_time": _us_to_dt(rec.start_us),
        "end_time": _us_to_dt(rec.end_us),
        "value": value,
        "detail": detail,
    }


def _session_rows(
    rec: Any,
    day: dt.date,
    names: list[str],
    act: Any,
    found: Any,
    t_us: np.ndarray,
    rows: Any,
    param_text: str,
) -> None:
    glute = [i for i, (m, _) in enumerate(act.roles) if m.startswith("glute")]
    glute_pct = [act.channels[i].peak_pct_mvc for i in glute]
    glute_pct_finite = [v for v in glute_pct if np.isfinite(v)]
    rows.sessions.append(
        {
            "session_id": rec.recording_id,
            "participant_id": rec.participant_id,
            "local_date": day,
            "start_time": _us_to_dt(rec.start_us),
            "end_time": _us_to_dt(rec.end_us),
            "exercise": rec.exercise,
            "phase": None,
            "repetitions": int(act.n_reps),
            "glute_fired_share": _none_if_nan(act.glute_fired_share),
            "firing_order_ms": _none_if_nan(act.median_latency_ms),
            "glute_hamstring_ratio": _none_if_nan(act.glute_hamstring_ratio),
            "coactivation": _none_if_nan(act.coactivation_index),
            "peak_cv": _none_if_nan(act.cv_peak_glute),
            "symmetry": _none_if_nan(act.symmetry_pct),
            "glute_peak_pct_mvc": float(np.median(glute_pct_finite)) if glute_pct_finite else None,
            "activation_quality": _none_if_nan(act.quality),
            "glutewake_version": __version__,
            "params": param_text,
        }
    )
    confidence = {
        (int(c), int(o)): float(p)
        for c, o, p in zip(found.channel, found.onset_idx, found.confidence, strict=True)
    }
    onset = np.asarray(act.onset_idx)
    offset = np.asarray(act.offset_idx)
    reps, chans = np.nonzero(onset >= 0)
    fs = float(rec.fs_hz)
    for r, c in zip(reps.tolist(), chans.tolist(), strict=True):
        on, off = int(onset[r, c]), int(offset[r, c])
        muscle, side = act.roles[c]
        rows.contractions.append(
            {
                "session_id": rec.recording_id,
                "participant_id": rec.participant_id,
                "channel": names[c],
                "muscle": muscle,
                "side": side,
                "onset_time": _us_to_dt(int(t_us[on])),
                "offset_time": _us_to_dt(int(t_us[min(off, len(t_us) - 1)])),
                "duration_ms": (off - on + 1) / fs * 1e3,
                "time_to_peak_ms": _none_if_nan(float(act.time_to_peak_s[r, c]) * 1e3),
                "peak_uv": float(act.peak_uv[r, c]),
                "mean_uv": float(act.mean_uv[r, c]),
                "peak_pct_mvc": _none_if_nan(float(act.peak_pct_mvc[r, c])),
                "confidence": confidence.get((c, on)),
                "repetition": r + 1,
            }
        )


def write_sessions(con: Any, rows: Any) -> None:
    """Replace MVC references, sessions and contractions recomputed in this run."""
    if rows.mvc:
        con.register("new_mvc", pl.DataFrame(rows.mvc, infer_schema_length=None))
        con.execute("INSERT OR REPLACE INTO mvc_references SELECT * FROM new_mvc")
    if not rows.sessions:
        return
    sessions = pl.DataFrame(rows.sessions, infer_schema_length=None)
    con.register("new_sessions", sessions)
    con.execute(
        "DELETE FROM contractions WHERE session_id IN (SELECT session_id FROM new_sessions)"
    )
    con.execute("INSERT OR REPLACE INTO exercise_sessions BY NAME SELECT * FROM new_sessions")
    if rows.contractions:
        con.register("new_contractions", pl.DataFrame(rows.contractions, infer_schema_length=None))
        con.execute("INSERT INTO contractions BY NAME SELECT * FROM new_contractions")
    con.execute(
        """
        UPDATE exercise_sessions s SET phase = (
            SELECT p.phase FROM phases p
            WHERE p.participant_id = s.participant_id AND p.start_date <= s.local_date
            ORDER BY p.start_date DESC LIMIT 1)
        WHERE s.session_id IN (SELECT session_id FROM new_sessions)
        """
    )


def derive_emg(
    data_dir: DataDir,
    rows: Rows,
    emg: list[Recording],
    tzs: dict[str, str],
    devices: dict[tuple[str, str], tuple[str | None, str | None]],
    summary: ProcessSummary,
    progress: ProgressHook,
    runner: TaskRunner,
) -> None:
    """MVC trials first (their references score the sessions), then the exercise sessions."""
    if not emg:
        return
    mvc = known_mvc(data_dir)
    advance = progress("glute activation", len(emg))
    mvc_recs = sorted(
        (r for r in emg if r.exercise == MVC_LABEL), key=lambda r: r.start_us
    )
    session_recs = sorted(
        (r for r in emg if r.exercise != MVC_LABEL), key=lambda r: r.start_us
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
        outcomes = runner.map(emg_task, tasks, keys, advance)
        for rec, out in zip(recs, outcomes, strict=True):
            rows.attempted.add(("emg", rec.recording_id))
            if isinstance(out, TaskFailure):
                args = dataclasses.asdict(rec)
                record_failure(rows, summary, "emg", out, rec.participant_id, args)
                continue
            rows.mvc.extend(out.mvc)
            rows.sessions.extend(out.sessions)
            rows.contractions.extend(out.contractions)
            rows.qc.extend(out.qc)
            add_mvc(mvc, out.mvc)
