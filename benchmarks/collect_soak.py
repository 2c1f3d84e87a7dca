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

``--memory`` runs one long collection instead (4 simulated devices by default: two Polar
accelerometers, two glutewake-open EMG boards) and samples the collector's resident memory every
10 s: a background collector that runs for weeks must be flat. After it, the spool is grown to
``--spool-gb`` by copies of its own segments, and ``glutewake status`` is timed on it (it reads
the collector's counts, never the spool), next to ``status --rescan`` on the original spool (the
old way: decode everything). ``--segment-s 240`` rotates the spool every 4 minutes: 15 rotations
in the hour, the first one (which sets up the Parquet writer once, about 14 MB) inside the first
5 minutes, which the growth figure leaves out::

    python benchmarks/collect_soak.py --memory --minutes 62 --segment-s 240
"""

from __future__ import annotations

import argparse
import json
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


def _rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def _grow_spool(data: Path, target_bytes: int) -> int:
    """Copy the spool's segments (new names past the last record) until it holds
    ``target_bytes``; return its size."""
    from glutewake.store.spool import list_segments, parse_segment_name, segment_name

    folders = sorted(p for p in (data / "spool").glob("participant_id=*/device=*") if p.is_dir())
    size = sum(p.stat().st_size for p in (data / "spool").rglob("*") if p.is_file())
    originals = {f: list_segments(f) for f in folders}
    k = 0
    while size < target_bytes:
        k += 1
        for folder, segments in originals.items():
            for seg in segments:
                t0, seq0 = parse_segment_name(seg.name) or (0, 0)
                copy = folder / segment_name(t0 + k * 10**12, seq0 + k * 10**9)
                shutil.copyfile(seg, copy)
                size += copy.stat().st_size
    return size


def _best_of(n: int, fn: object) -> float:
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()  # type: ignore[operator]
        times.append(time.perf_counter() - t0)
    return min(times)


def memory_soak(args: argparse.Namespace) -> int:
    profiles = args.profile or ["polar-pmd", "polar-pmd", "glutewake-open", "glutewake-open"]
    data = Path(tempfile.mkdtemp(prefix="soak-memory-"))
    duration_s = args.minutes * 60
    cmd = [sys.executable, "-c", _CHILD, "collect", "--participant", "P01", "--data", str(data)]
    cmd += [a for p in profiles for a in ("--simulate", p)]
    cmd += ["--duration", f"{duration_s:g}"]
    if args.segment_s:
        cmd += ["--segment-s", f"{args.segment_s:g}"]
    print(f"collect --simulate {' '.join(profiles)} for {args.minutes:g} min into {data}")
    samples: list[tuple[float, float]] = []
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    while proc.poll() is None:
        time.sleep(10.0)
        rss = _rss_mb(proc.pid)
        if rss is not None and proc.poll() is None:
            elapsed = time.monotonic() - t0
            samples.append((elapsed, rss))
            if len(samples) % 30 == 0:
                print(f"  {elapsed / 60:5.1f} min  RSS {rss:6.1f} MB", flush=True)
    if proc.returncode != 0:
        print(proc.stderr.read().decode() if proc.stderr else "", file=sys.stderr)
        print(f"the collector exited {proc.returncode}")
        return 1
    settle_s = 300.0
    after = [(t, r) for t, r in samples if t >= settle_s]
    if not after:
        print("the run was shorter than the 5-min settling time")
        return 1
    t = [x for x, _ in after]
    r = [y for _, y in after]
    mean_t, mean_r = sum(t) / len(t), sum(r) / len(r)
    slope = sum((a - mean_t) * (b - mean_r) for a, b in zip(t, r, strict=True)) / max(
        sum((a - mean_t) ** 2 for a in t), 1e-9
    )
    print(
        f"RSS: {samples[0][1]:.1f} MB at {samples[0][0]:.0f} s, {r[0]:.1f} MB at 5 min, "
        f"{r[-1]:.1f} MB at the end ({t[-1] / 60:.1f} min); after the first 5 min: growth "
        f"{r[-1] - r[0]:+.1f} MB, max - min {max(r) - min(r):.1f} MB, trend "
        f"{slope * 60:+.3f} MB/min; load average {os.getloadavg()[0]:.2f}"
    )
    spool = data / "spool"
    spool_bytes = sum(p.stat().st_size for p in spool.rglob("*") if p.is_file())
    glutewake = [sys.executable, "-m", "glutewake", "status", "--data", str(data), "--json"]
    rescan_s = _best_of(
        1, lambda: subprocess.run([*glutewake, "--rescan"], capture_output=True, check=True)
    )
    grown = _grow_spool(data, int(args.spool_gb * 1e9))
    from glutewake.ingest.status import stream_status
    from glutewake.store.datadir import DataDir

    call_s = _best_of(5, lambda: stream_status(DataDir(data)))
    cli_s = _best_of(5, lambda: subprocess.run(glutewake, capture_output=True, check=True))
    rows = json.loads(subprocess.run(glutewake, capture_output=True, check=True).stdout)
    print(
        f"status with a {grown / 1e9:.2f} GB spool: stream_status() {call_s * 1000:.1f} ms, "
        f"'glutewake status --json' {cli_s * 1000:.0f} ms wall (a new Python process included; "
        f"best of 5); 'status --rescan' of the original {spool_bytes / 1e6:.1f} MB spool: "
        f"{rescan_s:.1f} s; load average {os.getloadavg()[0]:.2f}"
    )
    for row in rows:
        print(
            f"  {row['device_id']} {row['stream']}: received {row['samples_received']:,}, "
            f"expected {row['samples_expected']:,}, lost {row['samples_lost']:,} "
            f"({row['counted_from']})"
        )
    shutil.rmtree(data, ignore_errors=True)
    return 0


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
    ap.add_argument("--memory", action="store_true", help="one long run: memory and status time")
    ap.add_argument("--minutes", type=float, default=60.0, help="--memory: collection length")
    ap.add_argument("--spool-gb", type=float, default=1.0, help="--memory: spool size for status")
    ap.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) / "collect_soak")
    args = ap.parse_args()
    if args.memory:
        return memory_soak(args)
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
