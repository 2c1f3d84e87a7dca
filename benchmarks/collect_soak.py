"""Soak test of ``glutewake collect --simulate``: does the process always exit on time?

Runs ``collect --simulate PROFILE --duration D`` again and again, one process at a time, each
with a hard timeout. A run that has not exited ``--hang-s`` seconds after its duration is a
*hang*: its stacks are dumped (``py-spy dump`` of every thread, and Python's own
``faulthandler`` on SIGUSR1) into ``--out``, then it is killed. A run that exits but takes
noticeably longer than its duration is *slow* (a bounded teardown step fired). Prints per run
the wall time and at the end the counts::

    python benchmarks/collect_soak.py --runs 60 --duration 5 --profile polar-pmd
    python benchmarks/collect_soak.py --runs 60 --asyncio-debug   # PYTHONASYNCIODEBUG=1
    python benchmarks/collect_soak.py --runs 40 --duration 14 --profile glutewake-open \
        --segment-s 2 --load          # as tests/test_collect_process_sql.py: process + sql
                                      # run against the data directory while collecting

The collector's own log (``DATA/logs/collect.log``) of every hung or slow run is kept too.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

_CHILD = (
    "import faulthandler, signal, sys;"
    "faulthandler.register(signal.SIGUSR1, all_threads=True);"
    "from glutewake.cli import main;"
    "sys.argv[0] = 'glutewake';"
    "raise SystemExit(main())"
)


def _dump(proc: subprocess.Popen[bytes], out: Path, run: int) -> None:
    """Stacks of a hung collector: py-spy (native-free) and faulthandler (all threads)."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    try:
        res = subprocess.run(
            [spy, "dump", "--pid", str(proc.pid), "--locals"],
            capture_output=True,
            text=True,
            timeout=30,
        )
        (out / f"run{run:03d}-pyspy.txt").write_text(res.stdout + res.stderr)
    except (OSError, subprocess.TimeoutExpired) as exc:
        (out / f"run{run:03d}-pyspy.txt").write_text(f"py-spy failed: {exc}\n")
    proc.send_signal(signal.SIGUSR1)  # faulthandler writes to the child's stderr
    time.sleep(1.0)


def _load(data: Path, stop: threading.Event) -> None:
    """``glutewake process`` then ``glutewake sql`` on ``data``, again and again, until ``stop``."""
    glutewake = [sys.executable, "-m", "glutewake"]
    subprocess.run(
        [*glutewake, "participant", "add", "P01", "--tz", "Europe/Berlin", "--data", str(data)],
        capture_output=True,
    )
    while not stop.wait(1.0):
        subprocess.run([*glutewake, "process", "--data", str(data), "-q"], capture_output=True)
        subprocess.run(
            [*glutewake, "sql", "--data", str(data), "select count(*) from recordings"],
            capture_output=True,
        )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--duration", type=float, default=5.0)
    ap.add_argument("--profile", action="append", default=None)
    ap.add_argument("--faults", default=None)
    ap.add_argument("--hang-s", type=float, default=25.0, help="past the duration = a hang")
    ap.add_argument("--slow-s", type=float, default=3.0, help="past the duration = slow")
    ap.add_argument("--segment-s", type=float, default=None)
    ap.add_argument(
        "--load",
        action="store_true",
        help="run 'glutewake process' and 'glutewake sql' on the data directory, one after "
        "the other, while each collector runs (the load of tests/test_collect_process_sql.py)",
    )
    ap.add_argument("--asyncio-debug", action="store_true")
    ap.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) / "collect_soak")
    args = ap.parse_args()
    profiles = args.profile or ["polar-pmd"]
    args.out.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    if args.asyncio_debug:
        env["PYTHONASYNCIODEBUG"] = "1"
    hangs, slow, failed = [], [], []
    walls = []
    for run in range(1, args.runs + 1):
        data = Path(tempfile.mkdtemp(prefix="soak-"))
        cmd = [sys.executable, "-c", _CHILD, "collect", "--participant", "P01", "--data", str(data)]
        cmd += [a for p in profiles for a in ("--simulate", p)]
        cmd += ["--duration", f"{args.duration:g}"]
        if args.faults:
            cmd += ["--faults", args.faults]
        if args.segment_s:
            cmd += ["--segment-s", f"{args.segment_s:g}"]
        stderr_path = args.out / f"run{run:03d}-stderr.txt"
        t0 = time.monotonic()
        with open(stderr_path, "wb") as err:
            proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err, env=env)
            stop_load = threading.Event()
            loader = threading.Thread(target=_load, args=(data, stop_load), daemon=True)
            if args.load:
                loader.start()
            try:
                code = proc.wait(timeout=args.duration + args.hang_s)
            except subprocess.TimeoutExpired:
                _dump(proc, args.out, run)
                proc.kill()
                proc.wait()
                code = None
            wall = time.monotonic() - t0
            stop_load.set()
            if args.load:
                loader.join()
        walls.append(wall)
        keep = False
        if code is None:
            hangs.append(run)
            keep = True
            verdict = "HANG"
        elif code != 0:
            failed.append(run)
            keep = True
            verdict = f"exit {code}"
        elif wall > args.duration + args.slow_s:
            slow.append(run)
            keep = True
            verdict = "slow"
        else:
            verdict = "ok"
        print(f"run {run:3d}: {wall:6.2f} s  {verdict}", flush=True)
        log = data / "logs" / "collect.log"
        if keep and log.exists():
            shutil.copy(log, args.out / f"run{run:03d}-collect.log")
        if not keep:
            stderr_path.unlink(missing_ok=True)
        shutil.rmtree(data, ignore_errors=True)
    n = args.runs
    over = sorted(w - args.duration for w in walls)
    print(
        f"\n{n} runs of collect --simulate {' '.join(profiles)} --duration {args.duration:g}: "
        f"hangs {len(hangs)}/{n} {hangs}, slow (> +{args.slow_s:g} s) {len(slow)}/{n} {slow}, "
        f"nonzero exit {len(failed)}/{n} {failed}; wall minus duration: median "
        f"{over[len(over) // 2]:.2f} s, max {over[-1]:.2f} s; dumps and logs in {args.out}"
    )
    return 1 if hangs or failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
