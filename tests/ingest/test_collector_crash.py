"""``collect --simulate`` in a subprocess: read concurrently, SIGKILL it, restart, check the spool.

The collector's loss bound after a hard kill comes from the SpoolWriter journal (every record is
appended as it is dequeued, CRC-protected, fsynced at least every second); on restart the journal
becomes a segment. The test proves it from outside: after the kill and a restart every segment
reads, record numbers are unique and increasing, the data of the killed run has no hole, and its
newest record is less than one second older than the kill.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from glutewake.devices.base import RecordKind
from glutewake.ingest.spool_scan import read_spool
from glutewake.ingest.status import stream_status
from glutewake.store.datadir import DataDir
from glutewake.store.spool import list_segments, read_segment, spool_folders

gw_open = pytest.importorskip("glutewake.devices.glutewake_open")

# runs the collector over the in-process bumble link (see test_collector.py)
pytestmark = pytest.mark.ble_link

REPO = Path(__file__).resolve().parents[2]
SCRIPT = """
import sys
from glutewake.store.datadir import DataDir
from glutewake.ingest.collector import CollectorSettings, collect

code = collect(
    DataDir.resolve(sys.argv[1]), participant_id="P01", simulate=["glutewake-open"],
    duration_s=float(sys.argv[2]), status_line=False,
    settings=CollectorSettings(status_interval_s=0.2, backoff_min_s=0.1),
)
sys.exit(code)
"""


def start_collector(data: DataDir, duration_s: float, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    with log.open("ab") as err:
        return subprocess.Popen(
            [sys.executable, "-c", SCRIPT, str(data.root), str(duration_s)],
            cwd=REPO,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=err,
        )


def wait_for_data(data: DataDir, proc: subprocess.Popen[bytes], timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the collector exited early"
        for path in (data.root / "status").glob("*.json"):
            try:
                if json.loads(path.read_text()).get("notifications", 0) > 20:
                    return
            except (OSError, json.JSONDecodeError):
                pass
        time.sleep(0.1)
    raise AssertionError("the collector did not start streaming")


def test_concurrent_read_then_sigkill_loses_under_one_second(tmp_path: Path) -> None:
    data = DataDir(tmp_path / "data")
    log = tmp_path / "stderr.txt"
    proc = start_collector(data, 60.0, log)
    try:
        wait_for_data(data, proc)
        # while it collects, the spool reads concurrently (segments + live journal)
        first = stream_status(data, rescan=True)
        time.sleep(0.4)
        second = stream_status(data, rescan=True)
        [row1], [row2] = first, second
        assert row1["stream"] == "emg" and row1["samples_received"] > 0
        assert row2["samples_received"] > row1["samples_received"]
        assert row2["last_data_age_s"] < 1.0
        time.sleep(random.Random().uniform(0.0, 1.0))  # a random moment
        t_kill_us = time.time_ns() // 1000
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    assert proc.returncode == -signal.SIGKILL
    [folder] = spool_folders(data.spool)
    assert (folder / "journal.bin").exists()  # the kill left a journal behind

    time.sleep(1.0)  # the collector stays dead a while: data the device sent is lost
    restart = start_collector(data, 1.5, log)
    assert restart.wait(60) == 0, log.read_text()
    assert not (folder / "journal.bin").exists() and not list(folder.glob("*.tmp"))

    seqs = []
    for segment in list_segments(folder):
        _, _, seq = read_segment(segment)  # every segment reads cleanly
        seqs.append(seq)
    seq_all = np.concatenate(seqs)
    assert np.all(np.diff(seq_all) == 1)  # unique, increasing, nothing skipped

    _, records = read_spool(folder)
    killed = records.conn_id == records.conn_id.min()
    notify = killed & (records.kind == RecordKind.NOTIFY)
    last_before_kill = int(records.t_us[notify].max())
    assert t_kill_us - last_before_kill < 1_000_000  # < 1 s of received data missing
    assert not (records.kind[killed] == RecordKind.DISCONNECT).any()  # it died mid-stream
    # no hole in what the killed run received: packet sequence numbers are contiguous
    uuids = np.array(records.char_uuid, dtype=object)
    emg = notify & (uuids == gw_open.EMG_DATA_UUID)
    seq16 = np.array(
        [int.from_bytes(p[2:4], "little") for p, m in zip(records.payload, emg, strict=True) if m]
    )
    assert seq16.size > 20 and np.all(np.diff(seq16) % 65536 == 1)
    # the restarted run resumed the numbering of connections
    assert records.conn_id.max() > records.conn_id.min()

    # status shows what the kill cost: the device's clock ran on while nobody listened, from
    # the killed run's last sample to the restarted run's first (1 kHz EMG)
    emg_t = np.sort(gw_open.PROFILE.decode_records(records, {}).streams["emg"].t_us)
    hole_s = float(np.diff(emg_t).max()) / 1e6
    assert hole_s > 1.0
    [row] = stream_status(data)
    assert row["counted_from"] == "collector"  # carried across the kill by the status file
    assert row["samples_lost"] == pytest.approx(hole_s * 1000, rel=0.02)
    [scan] = stream_status(data, rescan=True)
    assert row["samples_received"] == scan["samples_received"] == emg_t.size
    assert row["samples_expected"] == scan["samples_expected"]


def test_sigterm_stops_streams_flushes_and_exits_cleanly(tmp_path: Path) -> None:
    data = DataDir(tmp_path / "data")
    log = tmp_path / "stderr.txt"
    proc = start_collector(data, 60.0, log)
    try:
        wait_for_data(data, proc)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0, log.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    [folder] = spool_folders(data.spool)
    assert not (folder / "journal.bin").exists()  # everything flushed into segments
    _, records = read_spool(folder)
    writes = [
        p for p, k in zip(records.payload, records.kind, strict=True) if k == RecordKind.WRITE
    ]
    stop = gw_open.PROFILE.stop_writes({"emg": {"fs_hz": 1000}})[0].data
    assert writes[-1] == stop  # the stream was stopped before disconnecting
    assert records.kind[-1] == RecordKind.DISCONNECT and records.payload[-1] == b"host_stop"
    status = json.loads(next((data.root / "status").glob("*.json")).read_text())
    assert status["state"] == "stopped" and status["notifications"] > 20
    log_file = data.logs / "collect.log"
    assert "link down (host_stop)" in log_file.read_text()
    assert log_file.stat().st_mode & 0o077 == 0
