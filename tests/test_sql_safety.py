"""``glutewake sql`` and ``api.sql`` only read: every way a statement could write a file, open
another database, read outside the data folder, load an extension or reach the network is
refused with one line, nothing on disk changes, and Ctrl-C stops a running query at once."""

from __future__ import annotations

import _thread
import hashlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import duckdb
import polars as pl
import pytest

from glutewake.analytics import api
from glutewake.store.catalog import open_read, table_columns
from glutewake.store.datadir import DataDir
from glutewake.store.user_query import QueryRefusedError
from tests.test_cli import _run as run_cli

SLOW_QUERY = "SELECT sum(hash(range)) FROM range(40000000000)"  # minutes of work


def tree_digest(*roots: Path) -> dict[str, tuple[int, int, str]]:
    """Every file under ``roots``: (mode, size, SHA-256); folders: (mode, 0, '')."""
    out: dict[str, tuple[int, int, str]] = {}
    for root in roots:
        if not root.exists():
            continue
        out[str(root)] = (root.stat().st_mode, 0, "")
        for path in sorted(root.rglob("*")):
            st = path.stat()
            if path.is_dir():
                out[str(path)] = (st.st_mode, 0, "")
            else:
                digest = hashlib.sha256(path.read_bytes()).hexdigest()
                out[str(path)] = (st.st_mode, st.st_size, digest)
    return out


@pytest.fixture
def processed(serial_catalog: DataDir, tmp_path: Path) -> DataDir:
    """A processed study (copy), with an activPAL reference file and a second database beside."""
    data_dir = DataDir(tmp_path / "data")
    shutil.copytree(serial_catalog.root, data_dir.root)
    ref = data_dir.root / "reference" / "source=activpal" / "participant_id=P01"
    ref.mkdir(parents=True)
    pl.DataFrame({"posture": ["sitting", "standing"], "duration_s": [60.0, 30.0]}).write_parquet(
        ref / "0123456789abcdef.parquet"
    )
    other = duckdb.connect(str(tmp_path / "other.duckdb"))
    other.execute("CREATE TABLE t AS SELECT range AS x FROM range(5)")
    other.close()
    return data_dir


def attacks(data_dir: DataDir, tmp_path: Path) -> list[str]:
    """The statements of issue 16, and their relatives."""
    segment = next(data_dir.spool.rglob("seg-*.parquet"))
    sample = next(data_dir.samples.rglob("*.parquet"))
    return [
        f"COPY (SELECT 1 AS a) TO '{segment}' (FORMAT parquet)",  # the record of truth
        f"COPY (SELECT 1 AS a) TO '{sample}' (FORMAT parquet)",  # inside a readable tree
        f"COPY (SELECT 1 AS a) TO '{tmp_path / 'anywhere.csv'}'",
        f"COPY participants TO '{tmp_path / 'people.csv'}'",
        f"EXPORT DATABASE '{tmp_path / 'dump'}'",
        f"ATTACH '{tmp_path / 'other.duckdb'}' AS other (READ_ONLY false)",
        f"ATTACH '{tmp_path / 'other.duckdb'}' AS other (READ_ONLY false); DELETE FROM other.t",
        "SELECT * FROM read_text('/etc/shadow')",
        "SELECT * FROM read_text('/etc/passwd')",
        "SELECT * FROM glob('/*')",
        f"SELECT * FROM read_parquet('{data_dir.samples}/../spool/*/*/*.parquet')",
        f"SELECT * FROM read_blob('{data_dir.root}/catalog.lock')",
        "INSTALL httpfs",
        "LOAD httpfs",
        "SELECT * FROM read_parquet('https://example.com/x.parquet')",
        "SET enable_external_access = true",
        "SET lock_configuration = false",
        f"EXPLAIN ANALYZE COPY (SELECT 1) TO '{tmp_path / 'explained.csv'}'",
        "DELETE FROM participants",
        "CREATE TABLE x AS SELECT 1",
        "CALL enable_logging(storage = 'file', storage_path = '/tmp/glutewake-log')",
        "SELECT 1; DROP TABLE participants",
    ]


def test_every_attack_is_refused_in_one_line_and_nothing_changes(
    processed: DataDir, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = tree_digest(tmp_path)
    for statement in attacks(processed, tmp_path):
        code, out, err = run_cli(["sql", "--data", str(processed.root), statement], capsys)
        assert code == 2, (statement, out, err)
        assert err.count("\n") == 1 and err.startswith("glutewake: error: "), (statement, err)
        assert "refused" in err or "disabled by configuration" in err, (statement, err)
        assert out == ""
        with pytest.raises((QueryRefusedError, duckdb.Error)):
            api.sql(processed, statement)
    assert tree_digest(tmp_path) == before  # the data folder, the other database, the targets
    for name in ("anywhere.csv", "people.csv", "dump", "explained.csv"):
        assert not (tmp_path / name).exists()


def test_refusals_say_why(processed: DataDir, tmp_path: Path) -> None:
    reasons = {
        "COPY participants TO 'x.csv'": "COPY reads or writes files",
        "EXPORT DATABASE 'x'": "EXPORT DATABASE writes files",
        "ATTACH 'x.duckdb'": "ATTACH opens another database",
        "INSTALL httpfs": "INSTALL and LOAD",
        "SET threads = 1": "change settings",
        "DELETE FROM participants": "the catalog is read-only",
        "EXPLAIN ANALYZE DELETE FROM participants": "refused DELETE",
    }
    for statement, reason in reasons.items():
        with pytest.raises(QueryRefusedError, match=reason):
            api.sql(processed, statement)
    with pytest.raises(duckdb.Error, match="disabled by configuration"):
        api.sql(processed, "SELECT * FROM read_text('/etc/shadow')")


def test_a_raw_api_connection_is_confined_too(processed: DataDir, tmp_path: Path) -> None:
    """What api.connection hands out cannot leave the data folder, even without the check."""
    with api.connection(processed) as con:
        for statement in (
            f"COPY (SELECT 1) TO '{tmp_path / 'x.csv'}'",
            f"ATTACH '{tmp_path / 'other.duckdb'}' AS o (READ_ONLY false)",
            f"COPY (SELECT 1) TO '{next(processed.spool.rglob('seg-*.parquet'))}'",
            "SELECT * FROM glob('/*')",
            "INSTALL httpfs",
            "SET enable_external_access = true",
            "DELETE FROM participants",
        ):
            with pytest.raises(duckdb.Error):
                con.execute(statement)
    assert not (tmp_path / "x.csv").exists()


def test_ordinary_queries_still_work(
    processed: DataDir, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with open_read(processed) as con:
        relations = sorted(table_columns(con))
    assert {"daily_summary", "participants", "recordings", "weekly_progress"} <= set(relations)
    for name in relations:
        frame = api.sql(processed, f"SELECT count(*) AS n FROM {name}")
        assert frame.height == 1
    assert api.sql(processed, "SELECT count(*) AS n FROM recordings")["n"][0] > 0
    samples = f"{processed.samples}/stream=acc/*/*/*.parquet"
    frame = api.sql(
        processed,
        f"SELECT participant_id, count(*) AS n FROM read_parquet('{samples}', "
        "hive_partitioning = true) GROUP BY ALL",
    )
    assert frame["participant_id"].to_list() == ["P01"] and frame["n"][0] > 100_000
    reference = f"{processed.root}/reference/*/*/*.parquet"
    frame = api.sql(processed, f"SELECT count(*) AS n FROM read_parquet('{reference}')")
    assert frame["n"][0] == 2
    for query in (
        "SHOW TABLES",
        "DESCRIBE daily_summary",
        "SUMMARIZE participants",
        "EXPLAIN SELECT * FROM daily_summary",
        "FROM participants",
        "WITH x AS (SELECT 1 AS a) SELECT * FROM x",
        "SELECT * FROM pragma_table_info('participants')",
    ):
        assert api.sql(processed, query).height > 0, query
    # the documented relative form, from the folder above the data directory
    monkeypatch.chdir(processed.root.parent)
    code, out, err = run_cli(
        [
            "sql",
            "--data",
            "data",
            "--format",
            "csv",
            "SELECT count(*) AS n FROM read_parquet('data/samples/stream=acc/*/*/*.parquet')",
        ],
        capsys,
    )
    assert code == 0, err
    assert int(out.splitlines()[1]) > 100_000


def test_samples_in_a_storage_location_are_readable(
    processed: DataDir, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    storage = tmp_path / "shared"
    shutil.copytree(processed.samples, storage / "samples")
    query = f"SELECT count(*) AS n FROM read_parquet('{storage}/samples/stream=acc/*/*/*.parquet')"
    code, _, err = run_cli(["sql", "--data", str(processed.root), query], capsys)
    assert code == 2 and "disabled by configuration" in err  # not without --storage
    code, out, err = run_cli(
        ["sql", "--data", str(processed.root), "--storage", str(storage), "--format", "csv", query],
        capsys,
    )
    assert code == 0, err
    assert int(out.splitlines()[1]) > 100_000


class _ProxyWatch:
    """A local HTTP(S) proxy that only records who connects (and hangs up on them)."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.server.settimeout(0.2)
        self.port = self.server.getsockname()[1]
        self.requests: list[bytes] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.server.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(2)
                try:
                    self.requests.append(conn.recv(200))
                except OSError:
                    self.requests.append(b"")

    def env(self) -> dict[str, str]:
        url = f"http://127.0.0.1:{self.port}"
        return {
            **os.environ,
            "HTTP_PROXY": url,
            "HTTPS_PROXY": url,
            "http_proxy": url,
            "https_proxy": url,
            "ALL_PROXY": url,
        }

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.server.close()


NETWORK_SCRIPT = """
import sys
from glutewake.cli import main
for statement in sys.argv[2:]:
    try:
        code = main(["sql", "--data", sys.argv[1], statement])
    except SystemExit as exc:
        code = exc.code
    print("exit", code, flush=True)
"""

CONTROL_SCRIPT = """
import duckdb
try:
    duckdb.connect().execute("INSTALL httpfs")
except Exception as exc:
    print(type(exc).__name__)
"""


def test_no_network_connection_is_attempted(processed: DataDir) -> None:
    statements = [
        "INSTALL httpfs",
        "FORCE INSTALL httpfs FROM core",
        "LOAD httpfs",
        "SELECT * FROM read_parquet('https://example.com/x.parquet')",
        "SELECT * FROM read_csv('http://example.com/x.csv')",
        "ATTACH 'https://example.com/x.duckdb' AS remote",
        "SELECT * FROM read_json('s3://bucket/x.json')",
    ]
    proxy = _ProxyWatch()
    try:
        res = subprocess.run(
            [sys.executable, "-c", NETWORK_SCRIPT, str(processed.root), *statements],
            env=proxy.env(),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert res.stdout.split("\n")[:-1] == ["exit 2"] * len(statements), res.stderr
        assert proxy.requests == []
        # the control: the same environment without glutewake's confinement does reach out
        subprocess.run(
            [sys.executable, "-c", CONTROL_SCRIPT],
            env=proxy.env(),
            capture_output=True,
            timeout=120,
            check=True,
        )
        deadline = time.monotonic() + 10
        while not proxy.requests and time.monotonic() < deadline:
            time.sleep(0.05)
        assert proxy.requests and b"httpfs" in proxy.requests[0]
    finally:
        proxy.close()


def test_ctrl_c_stops_a_running_sql_at_once(processed: DataDir) -> None:
    import psutil

    proc = psutil.Popen(
        [sys.executable, "-m", "glutewake", "sql", "--data", str(processed.root), SLOW_QUERY],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # well into the query: the imports cost about 1 s of CPU, the query burns the rest
        deadline = time.monotonic() + 60
        while proc.cpu_times().user < 4.0 and time.monotonic() < deadline:
            assert proc.poll() is None
            time.sleep(0.1)
        sent = time.monotonic()
        proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=30)
        took_s = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    _, err = proc.communicate()
    assert code == 130 and err.strip() == "glutewake: interrupted"
    assert took_s < 2.0, took_s


def test_interrupt_stops_an_api_query(processed: DataDir) -> None:
    timer = threading.Timer(1.0, _thread.interrupt_main)
    timer.start()
    started = time.monotonic()
    try:
        with pytest.raises(KeyboardInterrupt):
            api.sql(processed, SLOW_QUERY)
    finally:
        timer.cancel()
    assert time.monotonic() - started < 3.0
    assert api.sql(processed, "SELECT 1 AS one")["one"][0] == 1  # the catalog is free again
