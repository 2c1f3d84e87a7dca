"""The command line: help everywhere, one-line errors, read-only SQL, bookkeeping."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from glutewake import __version__
from glutewake.cli import build_parser, main


def _subcommand_paths() -> list[list[str]]:
    paths: list[list[str]] = []

    def walk(parser: object, prefix: list[str]) -> None:
        for action in getattr(parser, "_actions", []):
            choices = getattr(action, "choices", None)
            if isinstance(choices, dict):
                for name, sub in choices.items():
                    paths.append([*prefix, name])
                    walk(sub, [*prefix, name])

    walk(build_parser(), [])
    return paths


def test_every_command_has_help(capsys: pytest.CaptureFixture[str]) -> None:
    paths = _subcommand_paths()
    assert ["demo"] in paths and ["sql"] in paths and ["participant", "add"] in paths
    for path in paths:
        with pytest.raises(SystemExit) as exc:
            main([*path, "--help"])
        assert exc.value.code == 0
        out = capsys.readouterr().out
        assert out.startswith("usage: glutewake " + " ".join(path)), path


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--version"])
    assert capsys.readouterr().out.strip() == f"glutewake {__version__}"


def test_python_dash_m_runs_the_same_cli() -> None:
    res = subprocess.run(
        [sys.executable, "-m", "glutewake", "--version"], capture_output=True, text=True, check=True
    )
    assert res.stdout.strip() == f"glutewake {__version__}"


def _run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        code = main(args)
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def test_errors_are_one_line_without_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = _run(["sql", "--data", str(tmp_path / "none"), "select 1"], capsys)
    assert code == 2
    assert err.strip().count("\n") == 0 and "no catalog" in err and "Traceback" not in err
    code, _, err = _run(
        ["participant", "add", "P1", "--tz", "Nowhere/City", "--data", str(tmp_path)], capsys
    )
    assert code == 2 and "IANA" in err
    code, _, err = _run(["symptom", "log", "P1", "--hip", "12", "--data", str(tmp_path)], capsys)
    assert code == 2 and "outside 0-10" in err


def test_bookkeeping_and_sql_formats(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = str(tmp_path)
    assert (
        _run(["participant", "add", "P01", "--tz", "Europe/Berlin", "--data", data], capsys)[0] == 0
    )
    assert (
        _run(["phase", "set", "P01", "2", "--from", "2026-03-01", "--data", data], capsys)[0] == 0
    )
    assert (
        _run(
            ["symptom", "log", "P01", "--date", "2026-03-02", "--hip", "3", "--data", data], capsys
        )[0]
        == 0
    )
    code, out, _ = _run(
        ["sql", "--data", data, "--format", "json", "select participant_id, tz from participants"],
        capsys,
    )
    assert code == 0
    assert json.loads(out) == [{"participant_id": "P01", "tz": "Europe/Berlin"}]
    code, out, _ = _run(
        ["sql", "--data", data, "--format", "csv", "select phase, start_date from phases"], capsys
    )
    assert out.splitlines() == ["phase,start_date", "2,2026-03-01"]
    code, out, _ = _run(["sql", "--data", data, "select hip_pain from symptoms"], capsys)
    assert code == 0 and "hip_pain" in out and "3" in out


def test_sql_is_read_only(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = str(tmp_path)
    _run(["participant", "add", "P01", "--tz", "UTC", "--data", data], capsys)
    code, _, err = _run(["sql", "--data", data, "delete from participants"], capsys)
    assert code == 2 and "read-only" in err.lower()
    code, out, _ = _run(
        ["sql", "--data", data, "--format", "csv", "select count(*) as n from participants"], capsys
    )
    assert out.splitlines() == ["n", "1"]


def test_bad_sql_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = str(tmp_path)
    _run(["participant", "add", "P01", "--tz", "UTC", "--data", data], capsys)
    code, _, err = _run(["sql", "--data", data, "select * from no_such_table"], capsys)
    assert code == 2 and "query failed" in err and err.count("\n") == 1


def test_help_starts_fast_without_heavy_imports() -> None:
    code = (
        "import sys, glutewake.cli as c\n"
        "heavy = [m for m in ('scipy', 'polars', 'duckdb', 'matplotlib', 'bleak', 'numpy') "
        "if m in sys.modules]\n"
        "print(heavy)\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert res.stdout.strip() == "[]"
