"""A small simulated study rendered to device-native bytes in a data directory's spool.

Each participant wears a Polar Verity Sense on the thigh (PMD ACC at 52 Hz, delta-compressed
frames) from waking to bedtime, and does a daily glute exercise session with a glutewake-open EMG
board (glute max and hamstring, 1 kHz), preceded by an MVC trial. Their firing order and
activation improve over the days; sitting falls a little. The ground truth is returned so tests
can check what the pipeline recovers.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

from glutewake.devices import get_profile
from glutewake.devices.base import StreamSamples
from glutewake.simulate.spooling import Outage, already_spooled, spool_virtual_session
from glutewake.store.datadir import DataDir
from glutewake.store.spool import SpoolInfo

ACC_FS_HZ = 52.0
EMG_FS_HZ = 1000.0
EMG_CHANNELS = ("glute_max_r", "hamstring_r")
EMG_ROLES = (("glute_max_r", "glute_max", "right"), ("hamstring_r", "hamstring", "right"))


@dataclass(frozen=True)
class ParticipantPlan:
    """One simulated participant."""

    participant_id: str
    tz: str
    imu_address: str
    emg_address: str
    session_hour: float
    firing_latency_ms: tuple[float, float]  # first day, last day
    glute_pct_mvc: tuple[float, float]
    phases: tuple[tuple[int, int], ...]  # (phase, day offset from the first day)
    pain: tuple[int, int, int]  # lower back, hip, knee on the first day


DEFAULT_PARTICIPANTS = (
    ParticipantPlan(
        "P01",
        "Europe/Berlin",
        "A0:9E:1A:00:00:01",
        "C0:FF:EE:00:00:01",
        18.5,
        (35.0, -25.0),
        (22.0, 38.0),
        ((1, -14), (2, 2)),
        (5, 3, 2),
    ),
    ParticipantPlan(
        "P02",
        "America/New_York",
        "A0:9E:1A:00:00:02",
        "C0:FF:EE:00:00:02",
        7.5,
        (60.0, 40.0),
        (15.0, 20.0),
        ((1, -3),),
        (6, 4, 4),
    ),
)


@dataclass
class StudyTruth:
    """What was simulated, for checks and for the demo's bookkeeping."""

    first_day: dt.date
    days: int
    participants: tuple[ParticipantPlan, ...]
    sitting_min: dict[tuple[str, dt.date], float] = field(default_factory=dict)
    sessions: dict[tuple[str, dt.date], dict[str, float]] = field(default_factory=dict)
    #: true posture bouts per participant: (start_us, end_us, Posture code)
    bouts: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = field(default_factory=dict)

    def sitting_min_between(self, participant_id: str, day: dt.date, h0: float, h1: float) -> float:
        """True sitting minutes of a participant between local hours ``h0`` and ``h1``."""
        plan = next(p for p in self.participants if p.participant_id == participant_id)
        lo, hi = _local_us(day, h0, plan.tz), _local_us(day, h1, plan.tz)
        start, end, label = self.bouts[participant_id]
        overlap = np.clip(np.minimum(end, hi) - np.maximum(start, lo), 0, None)
        return float(overlap[label == 1].sum() / 60e6)


def _local_us(day: dt.date, hour: float, tz: str) -> int:
    moment = dt.datetime.combine(day, dt.time(), tzinfo=ZoneInfo(tz)) + dt.timedelta(hours=hour)
    return int(moment.timestamp() * 1_000_000)


def _stream(
    stream: str,
    t_us: np.ndarray,
    values: np.ndarray,
    names: tuple[str, ...],
    unit: str,
    fs_hz: float,
) -> StreamSamples:
    return StreamSamples(
        stream=stream,
        t_us=t_us.astype(np.int64),
        values=values.astype(np.float64),
        channel_names=names,
        unit=unit,
        fs_hz=fs_hz,
        sample_seq=np.arange(len(t_us), dtype=np.int64),
    )


def build_study(
    data_dir: DataDir,
    *,
    seed: int = 7,
    days: int = 3,
    first_day: dt.date = dt.date(2026, 3, 27),
    participants: tuple[ParticipantPlan, ...] = DEFAULT_PARTICIPANTS,
    imu_hours: tuple[float, float] = (5.75, 24.75),
    n_reps: int = 12,
    workers: int = 1,
    advance: Callable[[int], None] = lambda n: None,
) -> StudyTruth:
    """Spool a simulated study into ``data_dir``; devices already spooled are left as they are.

    Parameters
    ----------
    imu_hours : (float, float)
        Local hours of each day during which the thigh sensor streams (the rest it is charging,
        with no link); the default streams from 05:45 to 00:45 the next day.
    n_reps : int
        Repetitions per exercise session.
    workers : int
        Processes to render participants in (the result does not depend on it).
    advance : callable
        ``advance(1)`` is called after each participant rendered.
    """
    from glutewake.pipeline.parallel import run_tasks

    rng = np.random.default_rng(seed)
    seeds = [int(rng.integers(0, 2**31)) for _ in participants]
    tasks = [
        (data_dir, plan, k, seeds[k], days, first_day, imu_hours, n_reps)
        for k, plan in enumerate(participants)
    ]
    truth = StudyTruth(first_day=first_day, days=days, participants=participants)
    for part in run_tasks(_spool_participant, tasks, workers, advance):
        truth.sitting_min.update(part.sitting_min)
        truth.sessions.update(part.sessions)
        truth.bouts.update(part.bouts)
    return truth


def _spool_participant(
    data_dir: DataDir,
    plan: ParticipantPlan,
    k: int,
    p_seed: int,
    days: int,
    first_day: dt.date,
    imu_hours: tuple[float, float],
    n_reps: int,
) -> StudyTruth:
    """Render one participant's thigh IMU and EMG sessions into the spool (a pure task)."""
    from glutewake.devices.open_virtual import GlutewakeOpenVirtualDevice
    from glutewake.devices.polar_pmd import PolarVirtualDevice
    from glutewake.simulate.emg import simulate_exercise_session
    from glutewake.simulate.posture import simulate_thigh_days

    truth = StudyTruth(first_day=first_day, days=days, participants=(plan,))
    rng = np.random.default_rng(p_seed)
    polar = get_profile("polar-pmd")
    gw_open = get_profile("glutewake-open")
    acc_config = {"acc": {"sample_rate_hz": int(ACC_FS_HZ), "range_g": 8, "resolution_bits": 16}}
    emg_config = {"emg": {"fs_hz": int(EMG_FS_HZ), "channels": list(EMG_CHANNELS)}}
    start = _local_us(first_day, 0.0, plan.tz)
    end = _local_us(first_day + dt.timedelta(days=days), 0.0, plan.tz)
    sim = simulate_thigh_days(
        (end - start) / 86_400e6, ACC_FS_HZ, start_us=start, tz=plan.tz, seed=p_seed
    )
    truth.bouts[plan.participant_id] = (
        np.asarray(sim.bout_start_us),
        np.asarray(sim.bout_end_us),
        np.asarray(sim.bout_label),
    )
    for d in range(days):
        day = first_day + dt.timedelta(days=d)
        lo, hi = _local_us(day, 0, plan.tz), _local_us(day + dt.timedelta(days=1), 0, plan.tz)
        sel = (sim.t_us >= lo) & (sim.t_us < hi)
        truth.sitting_min[(plan.participant_id, day)] = float(
            np.count_nonzero(sim.labels[sel] == 1) / ACC_FS_HZ / 60
        )
    # the sensor charges outside imu_hours (no link), and is out of range once on day two
    outages = [Outage(start, _local_us(first_day, imu_hours[0], plan.tz))]
    for d in range(days):
        day = first_day + dt.timedelta(days=d)
        outages.append(
            Outage(
                _local_us(day, imu_hours[1], plan.tz),
                _local_us(day + dt.timedelta(days=1), imu_hours[0], plan.tz),
            )
        )
    if days > 1:
        gap_start = _local_us(first_day + dt.timedelta(days=1), 15.0 + k, plan.tz)
        outages.append(Outage(gap_start, gap_start + 20 * 60_000_000))
    clock_offset_us = int(rng.integers(-400_000, 400_000))
    clock_drift_ppm = float(rng.uniform(-30, 30))
    imu_folder = data_dir.spool_dir(plan.participant_id, plan.imu_address)
    if not already_spooled(imu_folder):
        device = PolarVirtualDevice(
            {"acc": _stream("acc", sim.t_us, sim.acc_g, ("x", "y", "z"), "g", ACC_FS_HZ)},
            clock_offset_us=clock_offset_us,
            clock_drift_ppm=clock_drift_ppm,
        )
        spool_virtual_session(
            imu_folder,
            SpoolInfo(plan.participant_id, plan.imu_address, polar.name, acc_config, {}),
            polar,
            device,
            start_us=start,
            end_us=end,
            first_conn_id=1,
            rng=np.random.default_rng(p_seed + 1),
            outages=outages,
        )
    del sim
    _spool_sessions(
        data_dir,
        plan,
        truth,
        gw_open,
        emg_config,
        p_seed,
        GlutewakeOpenVirtualDevice,
        simulate_exercise_session,
        n_reps,
    )
    return truth


def _spool_sessions(
    data_dir: DataDir,
    plan: ParticipantPlan,
    truth: StudyTruth,
    profile: object,
    config: dict[str, Any],
    p_seed: int,
    device_cls: type,
    simulate_session: Callable[..., object],
    n_reps: int,
) -> None:
    """One MVC trial and one exercise session per day on the EMG board."""
    from glutewake.devices.base import DeviceProfile

    assert isinstance(profile, DeviceProfile)
    folder = data_dir.spool_dir(plan.participant_id, plan.emg_address)
    if already_spooled(folder):
        return
    conn_id = 1
    days = truth.days
    for d in range(days):
        day = truth.first_day + dt.timedelta(days=d)
        frac = d / max(days - 1, 1)
        latency = plan.firing_latency_ms[0] + frac * (
            plan.firing_latency_ms[1] - plan.firing_latency_ms[0]
        )
        pct = plan.glute_pct_mvc[0] + frac * (plan.glute_pct_mvc[1] - plan.glute_pct_mvc[0])
        session = simulate_session(
            n_reps=n_reps,
            fs_hz=EMG_FS_HZ,
            firing_latency_ms=latency,
            glute_pct_mvc=pct,
            seed=p_seed + 100 + d,
        )
        truth.sessions[(plan.participant_id, day)] = {
            "firing_latency_ms": latency,
            "glute_pct_mvc": pct,
        }
        t0 = _local_us(day, plan.session_hour, plan.tz)
        exercise = "glute_bridge" if d % 2 == 0 else "clamshell"
        for label, emg, start_us in (
            ("mvc", session.mvc_emg_uv, t0),  # type: ignore[attr-defined]
            (exercise, session.emg_uv, t0 + 120_000_000),  # type: ignore[attr-defined]
        ):
            n = emg.shape[0]
            t_us = start_us + np.round(np.arange(n) * 1e6 / EMG_FS_HZ).astype(np.int64)
            device = device_cls(
                _stream("emg", t_us, emg, EMG_CHANNELS, "uV", EMG_FS_HZ),
                clock_drift_ppm=15.0,
            )
            conn_id = spool_virtual_session(
                folder,
                SpoolInfo(
                    plan.participant_id, plan.emg_address, profile.name, config, {"exercise": label}
                ),
                profile,
                device,
                start_us=start_us - 500_000,
                end_us=int(t_us[-1]) + 200_000,
                first_conn_id=conn_id,
                rng=np.random.default_rng(p_seed + 200 + d),
            )


def register_study(data_dir: DataDir, truth: StudyTruth) -> None:
    """Enter the study's bookkeeping in the catalog: participants (time zone, baseline, goals),
    devices and EMG channel roles, phase history and daily symptom ratings."""
    from glutewake.store import bookkeeping

    bookkeeping.write(data_dir, _register, truth)


def _register(con: Any, truth: StudyTruth) -> None:
    from glutewake.store import bookkeeping

    for plan in truth.participants:
        pid = plan.participant_id
        bookkeeping.upsert_participant(
            con,
            pid,
            plan.tz,
            baseline_start=truth.first_day,
            baseline_end=truth.first_day,
            goal_sitting_min=7 * 60.0,
            goal_breaks_per_sitting_hour=3.0,
        )
        bookkeeping.set_device(con, pid, plan.imu_address, "polar-pmd", placement="thigh")
        bookkeeping.set_device(
            con,
            pid,
            plan.emg_address,
            "glutewake-open",
            placement="glute",
            channel_roles=EMG_ROLES,
        )
        for phase, offset in plan.phases:
            bookkeeping.set_phase(con, pid, phase, truth.first_day + dt.timedelta(days=offset))
        back, hip, knee = plan.pain
        for d in range(truth.days):
            bookkeeping.log_symptoms(
                con,
                pid,
                truth.first_day + dt.timedelta(days=d),
                lower_back=max(back - d, 0),
                hip=max(hip - d // 2, 0),
                knee=knee,
            )
