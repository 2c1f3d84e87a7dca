"""One participant-ID rule at every entry point, and device ids that never share a folder.

A participant id becomes folder and file names; an id with ``/``, ``..``, spaces, an absolute
path, HTML or NUL must be refused wherever it can enter (command line, API, importers,
collector, reports, bookkeeping), and nothing may be written anywhere for it.
"""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from glutewake.analytics import api
from glutewake.analytics.export import export_tables
from glutewake.analytics.progress import write_progress_report
from glutewake.analytics.report import write_daily_report
from glutewake.ingest.collector import collect, status_path
from glutewake.ingest.importers import ImportFileError
from glutewake.ingest.importers.activpal import reference_path
from glutewake.pipeline import import_files
from glutewake.store import bookkeeping, samples
from glutewake.store.datadir import DataDir
from glutewake.store.ids import (
    InvalidIdError,
    check_participant_id,
    device_component,
    participant_component,
)
from tests.test_cli import _run

DAY = dt.date(2026, 3, 27)
BAD_IDS = [
    "../../x",
    "..",
    "a/b",
    "/tmp/evil",
    "P 01",
    " P01",
    "P01 ",
    "P01\n",
    "P\x0001",
    "<script>alert(1)</script>",
    "<b>P01</b>",
    "P01.html",
    "-P01",
    "_P01",
    "",
    "P" * 65,
    "Pé01",
    "P01\\x",
    "C:\\evil",
]
GOOD_IDS = ["P01", "p-01", "S_002", "0", "A" * 64, "study1-P01_b"]


@pytest.mark.parametrize("pid", GOOD_IDS)
def test_the_rule_accepts_plain_ids_unchanged(pid: str) -> None:
    assert check_participant_id(pid) == pid
    assert participant_component(pid) == pid


@pytest.mark.parametrize("pid", BAD_IDS)
def test_the_rule_rejects_everything_else_with_the_reason(pid: str) -> None:
    with pytest.raises(InvalidIdError, match=r"participant id .* is not valid: 1-64 letters"):
        check_participant_id(pid)
    with pytest.raises(InvalidIdError):
        DataDir(Path("/nonexistent")).spool_dir(pid, "A0:9E:1A:00:00:01")
    with pytest.raises(InvalidIdError):
        participant_component(pid)


def files_under(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code, _, err = _run(args, capsys)
    return code, err


@pytest.fixture
def study(serial_catalog: DataDir, tmp_path: Path) -> DataDir:
    """A processed study (copy) inside ``tmp_path/a/b/data``: room for '../..' to escape to."""
    data_dir = DataDir(tmp_path / "a" / "b" / "data")
    shutil.copytree(serial_catalog.root, data_dir.root)
    return data_dir


@pytest.mark.parametrize("pid", ["../../x", "/tmp/glutewake-evil", "P 01", "<b>x</b>", "P\x0001"])
def test_every_command_refuses_a_bad_id_and_writes_nothing(
    study: DataDir, tmp_path: Path, pid: str, capsys: pytest.CaptureFixture[str]
) -> None:
    data = str(study.root)
    csv = tmp_path / "acc.csv"
    csv.write_text("time,acc_x[g],acc_y[g],acc_z[g]\n2026-03-27T08:00:00+00:00,0,0,1\n")
    before = files_under(tmp_path)
    commands = [
        ["participant", "add", pid, "--tz", "UTC"],
        ["phase", "set", pid, "2", "--from", "2026-03-27"],
        ["symptom", "log", pid, "--hip", "3"],
        ["device", "set", pid, "A0:9E:1A:00:00:01", "--profile", "polar-pmd"],
        ["report", "daily", "--participant", pid, "--date", "2026-03-27"],
        ["report", "daily", "--participant", pid, "--date", "2026-03-27", "--format", "png"],
        ["report", "progress", "--participant", pid],
        ["export", "--out", str(tmp_path / "export"), "--participant", pid],
        ["import", str(csv), "--participant", pid],
        ["collect", "--participant", pid, "--simulate", "polar-pmd", "--duration", "1"],
    ]
    for command in commands:
        code, err = run_cli([*command, "--data", data], capsys)
        assert code == 2, (command, err)
        assert err.count("\n") == 1 and "participant id" in err and "not valid" in err, err
    assert files_under(tmp_path) == before
    assert not Path("/tmp/glutewake-evil").exists()


def test_the_api_and_library_entry_points_refuse_a_bad_id(study: DataDir, tmp_path: Path) -> None:
    pid = "../../x"
    for reader in (api.daily_summary, api.sitting_bouts, api.contractions, api.weekly_progress):
        with pytest.raises(api.ApiError, match="not valid"):
            reader(study, pid)
    with pytest.raises(api.ApiError, match="not valid"):
        api.daily_summary(study, ["P01", pid])
    before = files_under(tmp_path)
    calls = [
        lambda: write_daily_report(study, pid, DAY),
        lambda: write_progress_report(study, pid),
        lambda: export_tables(study, tmp_path / "export", participant=pid),
        lambda: bookkeeping.add_participant(study, pid, "UTC"),
        lambda: bookkeeping.write(study, bookkeeping.set_phase, pid, 2, DAY),
        lambda: collect(study, participant_id=pid, simulate=["polar-pmd"], duration_s=1),
        lambda: status_path(study, pid, "A0:9E:1A:00:00:01"),
        lambda: reference_path(study, pid, "0" * 64),
        lambda: samples.read_samples(study, stream="acc", participant_id=pid, start_us=0, end_us=1),
        lambda: samples.write_recording(
            study,
            stream="acc",
            participant_id=pid,
            recording_name="x-c1-acc",
            t_us=np.zeros(1, np.int64),
            values=np.zeros((1, 3)),
            channels=("x", "y", "z"),
            sample_seq=np.zeros(1, np.int64),
        ),
    ]
    for call in calls:
        with pytest.raises(ValueError, match=r"participant id .* not valid"):
            call()
    with pytest.raises(ImportFileError, match="not valid"):
        import_files(study, [tmp_path / "x.csv"], participant_id=pid)
    assert files_under(tmp_path) == before


def test_the_traversal_of_the_issue_writes_no_report_outside(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``participant add ../../x`` then ``report daily`` wrote x-DATE.html above the data."""
    data = tmp_path / "a" / "b" / "data"
    assert (
        run_cli(["participant", "add", "../../x", "--tz", "UTC", "--data", str(data)], capsys)[0]
        == 2
    )
    assert (
        run_cli(
            [
                "report",
                "daily",
                "--participant",
                "../../x",
                "--date",
                "2026-03-27",
                "--data",
                str(data),
            ],
            capsys,
        )[0]
        == 2
    )
    assert not list(tmp_path.rglob("x-*"))


def test_ids_that_would_share_a_folder_cannot_both_exist(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = str(tmp_path / "data")
    code, err = run_cli(["participant", "add", "P 01", "--tz", "UTC", "--data", data], capsys)
    assert code == 2 and "not valid" in err
    assert run_cli(["participant", "add", "P-01", "--tz", "UTC", "--data", data], capsys)[0] == 0
    # a case-insensitive file system (macOS, Windows) would give p-01 the folder of P-01
    code, err = run_cli(["participant", "add", "p-01", "--tz", "UTC", "--data", data], capsys)
    assert code == 2 and "differs only in letter case from the existing 'P-01'" in err
    assert (
        run_cli(["participant", "add", "P-01", "--tz", "Europe/Berlin", "--data", data], capsys)[0]
        == 0
    )  # updating the same id is fine
    assert api.participants(data)["participant_id"].to_list() == ["P-01"]


def test_import_to_an_unknown_participant_fails_like_every_command(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    csv = tmp_path / "acc.csv"
    rows = [f"2026-03-27T08:00:{s:02d}+00:00,0,0,1" for s in range(60)]
    csv.write_text("time,acc_x[g],acc_y[g],acc_z[g]\n" + "\n".join(rows) + "\n")
    assert (
        run_cli(["participant", "add", "P01", "--tz", "UTC", "--data", str(data)], capsys)[0] == 0
    )
    code, err = run_cli(["import", str(csv), "--participant", "NOPE", "--data", str(data)], capsys)
    assert code == 2 and err.count("\n") == 1
    assert "participant 'NOPE' does not exist" in err
    assert not list((data / "samples").rglob("*.parquet"))
    assert api.sql(data, "SELECT count(*) AS n FROM recordings")["n"][0] == 0
    code, _ = run_cli(["import", str(csv), "--participant", "P01", "--data", str(data)], capsys)
    assert code == 0
    assert len(list((data / "samples").rglob("*.parquet"))) == 1


def test_device_ids_map_to_folder_names_one_to_one() -> None:
    assert device_component("A0:9E:1A:12:34:56") == "A0-9E-1A-12-34-56"  # as before
    assert device_component("import-generic-csv") == "import-generic-csv"
    # the pairs safe_component used to merge
    pairs = [
        ("A0:9E:1A:12:34:56", "A0-9E-1A-12-34-56"),
        ("Polar Sense", "Polar-Sense"),
        ("a/b", "a-b"),
        ("..x", "x"),
        ("x~", "x~7E"),
    ]
    for one, other in pairs:
        assert device_component(one) != device_component(other), (one, other)
    for name in ("..", ".", "../etc", "a/../../b", "x\x00y", "<b>"):
        out = device_component(name)
        assert "/" not in out and "\\" not in out and "\x00" not in out
        assert not out.startswith(".") and out not in (".", "..")


@given(st.lists(st.text(min_size=1, max_size=30), min_size=2, max_size=8, unique=True))
def test_no_two_device_ids_share_a_name(ids: list[str]) -> None:
    names = [device_component(i) for i in ids]
    assert len(set(names)) == len(names)
    for name in names:
        assert "/" not in name and "\\" not in name and "\x00" not in name
        assert name not in (".", "..") and not name.startswith((".", "-"))


def test_two_devices_that_collided_now_keep_separate_spool_folders(tmp_path: Path) -> None:
    data_dir = DataDir(tmp_path)
    one = data_dir.spool_dir("P01", "A0:9E:1A:12:34:56")
    other = data_dir.spool_dir("P01", "A0-9E-1A-12-34-56")
    assert one != other
    assert one.name == "device=A0-9E-1A-12-34-56"  # existing data folders keep their names
