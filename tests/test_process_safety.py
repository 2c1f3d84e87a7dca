"""``glutewake process`` leaves nothing behind and opens nothing to the network.

A SIGKILLed ``process --workers 2`` (or ``--scheduler local``) must take its worker processes
with it, and a local Dask cluster must listen on loopback only, speak TLS, and serve no
dashboard.
"""

from __future__ import annotations

import ipaddress
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from glutewake.pipeline.parallel import TaskRunner
from glutewake.simulate.study import StudyTruth
from glutewake.store.datadir import DataDir


def alive(proc: psutil.Process) -> bool:
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def listening(procs: list[psutil.Process]) -> set[tuple[int, str, int]]:
    """Listening TCP sockets of ``procs``: (pid, address, port)."""
    found: set[tuple[int, str, int]] = set()
    for proc in procs:
        try:
            for conn in proc.net_connections(kind="inet"):
                if conn.status == psutil.CONN_LISTEN:
                    found.add((proc.pid, conn.laddr.ip, conn.laddr.port))
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


def tree(proc: psutil.Process) -> list[psutil.Process]:
    try:
        return [proc, *proc.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


@pytest.fixture
def spooled(small_study: tuple[DataDir, StudyTruth], tmp_path: Path) -> DataDir:
    source, _ = small_study
    data_dir = DataDir(tmp_path / "data")
    shutil.copytree(source.root, data_dir.root)
    return data_dir


def start_process(data_dir: DataDir, *args: str) -> psutil.Popen:
    return psutil.Popen(
        [sys.executable, "-m", "glutewake", "process", "--data", str(data_dir.root), "-q", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def kill_mid_run(proc: psutil.Popen, workers: int) -> tuple[list[psutil.Process], set]:
    """Wait until ``workers`` task processes run, note listening sockets, SIGKILL the parent."""
    sockets: set[tuple[int, str, int]] = set()
    deadline = time.monotonic() + 90
    children: list[psutil.Process] = []
    while time.monotonic() < deadline:
        assert proc.poll() is None, "process ended before its workers were seen"
        children = tree(proc)[1:]
        sockets |= listening(tree(proc))
        busy = [c for c in children if alive(c) and c.cpu_times().user > 0.5]
        if len(busy) >= workers:
            break
        time.sleep(0.05)
    else:
        raise AssertionError("the workers never started")
    sockets |= listening(tree(proc))
    children = tree(proc)[1:]
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    return children, sockets


def wait_gone(procs: list[psutil.Process], timeout_s: float) -> list[psutil.Process]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        left = [p for p in procs if alive(p)]
        if not left:
            return []
        time.sleep(0.05)
    return [p for p in procs if alive(p)]


@pytest.mark.timeout(180)
def test_a_killed_process_leaves_no_pool_worker_behind(spooled: DataDir) -> None:
    proc = start_process(spooled, "--workers", "2")
    children, sockets = kill_mid_run(proc, workers=2)
    assert len(children) >= 2
    survivors = wait_gone(children, timeout_s=5.0)
    for leftover in survivors:  # do not leave them running if the test fails
        leftover.kill()
    assert survivors == [], [p.pid for p in survivors]
    assert sockets == set()  # a process pool talks over pipes: nothing listens at all


@pytest.mark.timeout(180)
def test_a_local_dask_cluster_listens_on_loopback_only_and_dies_with_its_parent(
    spooled: DataDir,
) -> None:
    pytest.importorskip("distributed")
    proc = start_process(spooled, "--scheduler", "local", "--workers", "2")
    children, sockets = kill_mid_run(proc, workers=2)
    assert sockets, "no listening socket seen: the check would prove nothing"
    addresses = {ip for _, ip, _ in sockets}
    assert all(ipaddress.ip_address(ip).is_loopback for ip in addresses), sockets
    survivors = wait_gone(children, timeout_s=10.0)
    for leftover in survivors:
        leftover.kill()
    assert survivors == [], [p.pid for p in survivors]


def test_the_local_cluster_speaks_tls_and_serves_no_dashboard() -> None:
    distributed = pytest.importorskip("distributed")
    import urllib.request

    with TaskRunner(workers=1, scheduler="local") as runner:
        client = runner.connect()
        address = client.scheduler.address
        assert address.startswith("tls://127.0.0.1:")
        # another user of the machine, with a key of their own or none, cannot connect
        from distributed.security import Security

        with pytest.raises(OSError):
            distributed.Client(address, security=Security.temporary(), timeout=3)
        with pytest.raises(OSError):
            distributed.Client(address.replace("tls://", "tcp://"), timeout=3)
        me = psutil.Process()
        ports = {port for _, ip, port in listening(tree(me))}
        pages = []
        for port in ports:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/status", timeout=2) as r:
                    pages.append((port, r.status))
            except Exception:
                continue
        assert pages == []  # no dashboard page on any port
        health = []
        for port in ports:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
                    health.append(r.read())
            except Exception:
                continue
        assert health, "the scheduler's HTTP server answers health checks only"
        for path in ("/json/identity.json", "/info/main/workers.html", "/metrics"):
            for port in ports:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2):
                        raise AssertionError(f"{path} is served on {port}")
                except AssertionError:
                    raise
                except Exception:
                    continue
