"""EMG from an EDF file: channel roles given on ``import`` or set afterwards give the session.

Run through the command line as a user would: ``participant add``, ``import``, ``device set
--profile import:edf --channel-roles``, ``process`` and ``process --redo``.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from glutewake.cli import main
from glutewake.simulate import vendor_files as vf
from glutewake.simulate.emg import simulate_exercise_session
from glutewake.store.catalog import open_read
from glutewake.store.datadir import DataDir

TZ = "Europe/Berlin"
ROLES = "glute_r:glute_max:right,hamstring_r:hamstring:right"


@pytest.fixture
def study(tmp_path: Path) -> tuple[DataDir, Path]:
    data = tmp_path / "data"
    assert main(["participant", "add", "P01", "--tz", TZ, "--data", str(data)]) == 0
    session = simulate_exercise_session(n_reps=8, fs_hz=1000, seed=1)
    edf = vf.write_edf(tmp_path, dt.datetime(2026, 3, 2, 17, 30), emg_uv=session.emg_uv)
    return DataDir(data), edf


def sessions(data_dir: DataDir) -> list[tuple[str, int]]:
    with open_read(data_dir) as con:
        return [
            (str(s), int(r))
            for s, r in con.execute(
                "SELECT session_id, repetitions FROM exercise_sessions ORDER BY 1"
            ).fetchall()
        ]


def qc_kinds(data_dir: DataDir) -> list[str]:
    with open_read(data_dir) as con:
        return [str(k) for (k,) in con.execute("SELECT kind FROM qc ORDER BY 1").fetchall()]


def import_cmd(data_dir: DataDir, edf: Path, *extra: str) -> list[str]:
    return [
        "import", str(edf), "--participant", "P01", "--tz", TZ, "--exercise", "glute_bridge",
        "--data", str(data_dir.root), *extra,
    ]  # fmt: skip


def test_roles_given_on_import(study: tuple[DataDir, Path]) -> None:
    data_dir, edf = study
    assert main(import_cmd(data_dir, edf, "--channel-roles", ROLES)) == 0
    found = sessions(data_dir)
    assert len(found) == 1 and found[0][1] == 8
    assert "emg_roles_unknown" not in qc_kinds(data_dir)
    with open_read(data_dir) as con:
        dev = con.execute("SELECT device_id, profile, channel_roles FROM devices").fetchall()
    assert dev[0][:2] == ("LabEMG-8", "import:edf") and "glute_max" in str(dev[0][2])


def test_roles_set_after_the_import_then_process(
    study: tuple[DataDir, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    data_dir, edf = study
    assert main(import_cmd(data_dir, edf)) == 0
    assert sessions(data_dir) == []
    assert "emg_roles_unknown" in qc_kinds(data_dir)  # the hint to set them
    # the profile the docs name for imported devices, and the stored channel names
    args = ["device", "set", "P01", "LabEMG-8", "--profile", "import:edf", "--data",
            str(data_dir.root), "--channel-roles", ROLES]  # fmt: skip
    assert main(args) == 0
    with open_read(data_dir) as con:
        assert con.execute("SELECT rederive_pending FROM devices").fetchone() == (True,)
    assert main(["process", "--data", str(data_dir.root)]) == 0
    found = sessions(data_dir)
    assert len(found) == 1 and found[0][1] == 8
    assert "emg_roles_unknown" not in qc_kinds(data_dir)
    with open_read(data_dir) as con:
        assert con.execute("SELECT rederive_pending FROM devices").fetchone() == (False,)
        n_contractions = con.execute("SELECT count(*) FROM contractions").fetchone()
    # nothing pending: a second process derives nothing again; --redo derives the same
    assert main(["process", "--data", str(data_dir.root)]) == 0
    assert main(["process", "--redo", "--data", str(data_dir.root)]) == 0
    assert sessions(data_dir) == found
    with open_read(data_dir) as con:
        assert con.execute("SELECT count(*) FROM contractions").fetchone() == n_contractions
    capsys.readouterr()


def test_redo_alone_derives_imported_sessions(study: tuple[DataDir, Path]) -> None:
    data_dir, edf = study
    assert main(import_cmd(data_dir, edf)) == 0
    with open_read(data_dir) as con:
        assert con.execute("SELECT count(*) FROM exercise_sessions").fetchone() == (0,)
    # roles written straight into the catalog (as an older glutewake would have): no pending
    # flag, so only --redo, which derives every imported recording again, picks them up
    from glutewake.store.catalog import open_write

    with open_write(data_dir) as con:
        con.execute(
            "UPDATE devices SET channel_roles = ? WHERE device_id = 'LabEMG-8'",
            ['[["glute_r","glute_max","right"],["hamstring_r","hamstring","right"]]'],
        )
    assert main(["process", "--data", str(data_dir.root)]) == 0
    assert sessions(data_dir) == []
    assert main(["process", "--redo", "--data", str(data_dir.root)]) == 0
    assert len(sessions(data_dir)) == 1


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--profile", "import:nonsense"], "unknown profile 'import:nonsense'"),
        (["--profile", "import:edf", "--channel-roles", "glute_r:glute_max"],
         "is not CHANNEL:MUSCLE:SIDE"),
        (["--profile", "import:edf", "--channel-roles", "glute_r:quads:right"],
         "muscle 'quads' is not one of"),
        (["--profile", "import:edf", "--channel-roles", "glute_r:glute_max:up"],
         "side 'up' is not left or right"),
    ],
)  # fmt: skip
def test_device_set_refuses_with_one_line(
    study: tuple[DataDir, Path],
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    expected: str,
) -> None:
    data_dir, _ = study
    with pytest.raises(SystemExit) as exit_:
        main(["device", "set", "P01", "LabEMG-8", "--data", str(data_dir.root), *args])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and expected in err and len(err.strip().splitlines()) == 1


def test_roles_naming_missing_channels_warn(
    study: tuple[DataDir, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    data_dir, edf = study
    assert main(import_cmd(data_dir, edf, "--channel-roles", "emg_glute_r:glute_max:right")) == 0
    err = capsys.readouterr().err
    assert "emg_glute_r" in err and "glute_r, hamstring_r" in err


def test_changed_placement_derives_the_day_again(tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert main(["participant", "add", "P01", "--tz", TZ, "--data", str(data)]) == 0
    rec = vf.thigh_recording(60, 26.0, start=dt.datetime(2026, 3, 2, 9, 0), tz=TZ)
    path = vf.write_generic_csv(rec, tmp_path)
    assert main(["import", str(path), "--participant", "P01", "--device", "d1",
                 "--data", str(data)]) == 0  # fmt: skip
    data_dir = DataDir(data)

    def days() -> list[tuple[dt.date, float]]:
        with open_read(data_dir) as con:
            return con.execute("SELECT local_date, sitting_min FROM daily_sitting").fetchall()

    before = days()
    assert len(before) == 1
    assert main(["device", "set", "P01", "d1", "--profile", "import:generic-csv",
                 "--placement", "lower_back", "--data", str(data)]) == 0  # fmt: skip
    assert main(["process", "--data", str(data)]) == 0
    assert days() == []  # not on the thigh: no sitting from it
    assert main(["device", "set", "P01", "d1", "--profile", "import:generic-csv",
                 "--placement", "thigh", "--data", str(data)]) == 0  # fmt: skip
    assert main(["process", "--data", str(data)]) == 0
    assert days() == before
