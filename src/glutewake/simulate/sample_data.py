"""The bundled sample recording (``sample_data/``): how it was made, and how to load it.

``python -m glutewake.simulate.sample_data sample_data`` regenerates it: participant S01 wearing a
Polar Verity Sense on the thigh for two hours one morning and doing one glute-bridge session
(with an MVC trial) on a glutewake-open EMG board — spool segments of device-native notification
bytes, exactly as the collector writes them, plus ``study.json`` with the bookkeeping a researcher
would enter (time zone, devices and channel roles, phase).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
from pathlib import Path
from typing import Any

from glutewake.simulate.study import EMG_ROLES, ParticipantPlan, build_study
from glutewake.store.datadir import DataDir
from glutewake.store.private import copy_private

SAMPLE_DAY = dt.date(2026, 3, 26)
SAMPLE_PLAN = ParticipantPlan(
    "S01",
    "Europe/London",
    "A0:9E:1A:00:00:10",
    "C0:FF:EE:00:00:10",
    10.25,
    (20.0, 20.0),
    (25.0, 25.0),
    ((1, -10),),
    (4, 2, 1),
)


def sample_data_path() -> Path | None:
    """The bundled ``sample_data`` folder (inside an installed wheel, or the source checkout)."""
    here = Path(__file__).resolve()
    for candidate in (here.parents[1] / "sample_data", here.parents[3] / "sample_data"):
        if (candidate / "study.json").is_file():
            return candidate
    return None


def write_sample_data(folder: Path, *, seed: int = 11) -> None:
    """Write the sample recording's spool and ``study.json`` into ``folder`` (replaced)."""
    if folder.exists():
        shutil.rmtree(folder)
    data_dir = DataDir(folder)
    data_dir.spool.mkdir(parents=True)
    build_study(
        data_dir,
        seed=seed,
        days=1,
        first_day=SAMPLE_DAY,
        participants=(SAMPLE_PLAN,),
        imu_hours=(8.0, 10.0),
        n_reps=10,
    )
    study = {
        "participants": [{"participant_id": SAMPLE_PLAN.participant_id, "tz": SAMPLE_PLAN.tz}],
        "devices": [
            {
                "participant_id": SAMPLE_PLAN.participant_id,
                "device_id": SAMPLE_PLAN.imu_address,
                "profile": "polar-pmd",
                "placement": "thigh",
            },
            {
                "participant_id": SAMPLE_PLAN.participant_id,
                "device_id": SAMPLE_PLAN.emg_address,
                "profile": "glutewake-open",
                "placement": "glute",
                "channel_roles": [list(r) for r in EMG_ROLES],
            },
        ],
        "phases": [
            {
                "participant_id": SAMPLE_PLAN.participant_id,
                "phase": phase,
                "start_date": (SAMPLE_DAY + dt.timedelta(days=offset)).isoformat(),
            }
            for phase, offset in SAMPLE_PLAN.phases
        ],
    }
    (folder / "study.json").write_text(json.dumps(study, indent=2) + "\n", encoding="utf-8")


def load_sample_data(sample: Path, data_dir: DataDir) -> None:
    """Copy the sample spool into ``data_dir`` and enter its bookkeeping in the catalog."""
    from glutewake.store import bookkeeping

    study = json.loads((sample / "study.json").read_text(encoding="utf-8"))
    data_dir.create()
    for folder in sorted((sample / "spool").glob("participant_id=*/device=*")):
        target = data_dir.spool / folder.relative_to(sample / "spool")
        if not target.exists():
            # the bytes, not the installed files' modes: the copy is owner-only like all data
            for file in sorted(p for p in folder.iterdir() if p.is_file()):
                copy_private(file, target / file.name)
    bookkeeping.write(data_dir, _register, study)


def _register(con: Any, study: dict[str, Any]) -> None:
    from glutewake.store import bookkeeping

    for p in study["participants"]:
        bookkeeping.upsert_participant(con, p["participant_id"], p["tz"])
    for d in study["devices"]:
        roles = [tuple(r) for r in d.get("channel_roles", [])] or None
        bookkeeping.set_device(
            con,
            d["participant_id"],
            d["device_id"],
            d["profile"],
            placement=d.get("placement"),
            channel_roles=roles,
        )
    for ph in study["phases"]:
        bookkeeping.set_phase(
            con, ph["participant_id"], ph["phase"], dt.date.fromisoformat(ph["start_date"])
        )


def main() -> None:
    parser = argparse.ArgumentParser(description="Regenerate the bundled sample recording.")
    parser.add_argument("folder", type=Path)
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()
    write_sample_data(args.folder, seed=args.seed)


if __name__ == "__main__":
    main()
