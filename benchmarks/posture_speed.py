"""Speed and memory of the posture pipeline on 7 days of 100 Hz tri-axial data (60.5 M samples).

Times calibration, non-wear, orientation, posture, bouts and the daily measures on a
simulated week (float64 (n, 3) input, as a decoder hands it over), and in the same run one
plain numpy pass over the same array (per-second means of each axis) for the ratio. Peak
memory beyond the input is measured with tracemalloc in a separate repetition so that
tracing does not slow the timed run.

Run from the repository root: ``python benchmarks/posture_speed.py [--days 7] [--fs 100]``.
Goals (issue 5): < 3 s, < 1 GB beyond the input, <= 5x the plain pass.
"""

from __future__ import annotations

import argparse
import time
import tracemalloc

import numpy as np

from glutewake.analytics.daily_sitting import daily_sitting
from glutewake.signal.bouts import sitting_bouts
from glutewake.signal.posture import analyse_posture
from glutewake.simulate.posture import simulate_thigh_days

START_US = 1_780_000_000_000_000


def pipeline(acc_g: np.ndarray, fs_hz: float, tz: str) -> tuple[int, int]:
    res = analyse_posture(acc_g, fs_hz)
    bouts = sitting_bouts(res.posture, res.epoch_s)
    epoch_us = round(res.epoch_s * 1e6)
    epoch_start_us = START_US + np.arange(res.posture.size, dtype=np.int64) * epoch_us
    days = daily_sitting(epoch_start_us, res.posture, res.epoch_s, tz)
    return len(bouts), days.height


def plain_pass(acc_g: np.ndarray, fs_hz: float) -> np.ndarray:
    spe = round(fs_hz)
    n = acc_g.shape[0] // spe * spe
    return acc_g[:n].reshape(-1, spe, 3).mean(axis=1)


def _timed(fn, *args) -> float:  # type: ignore[no-untyped-def]
    t = time.perf_counter()
    fn(*args)
    return time.perf_counter() - t


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--days", type=float, default=7.0)
    ap.add_argument("--fs", type=float, default=100.0)
    ap.add_argument("--tz", default="Europe/London")
    ap.add_argument("--repeat", type=int, default=3, help="timed repetitions (best is kept)")
    args = ap.parse_args(argv)

    t0 = time.perf_counter()
    sim = simulate_thigh_days(args.days, args.fs, start_us=START_US, tz=args.tz, seed=7)
    acc = np.ascontiguousarray(sim.acc_g, dtype=np.float64)
    del sim
    print(
        f"input: {acc.shape[0] / 1e6:.1f} M samples x 3, float64, {acc.nbytes / 2**30:.2f} GiB "
        f"(simulated in {time.perf_counter() - t0:.1f} s)"
    )
    plain_pass(acc, args.fs)  # warm up page cache / allocator
    t = time.perf_counter()
    plain_pass(acc, args.fs)
    plain_s = time.perf_counter() - t

    runs = []
    for _ in range(args.repeat):
        t = time.perf_counter()
        n_bouts, n_days = pipeline(acc, args.fs, args.tz)
        runs.append(time.perf_counter() - t)
    pipe_s = min(runs)
    plain_s = min(plain_s, *(_timed(plain_pass, acc, args.fs) for _ in range(args.repeat - 1)))

    tracemalloc.start()
    pipeline(acc, args.fs, args.tz)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()

    print(f"plain numpy pass (per-second means): {plain_s:.2f} s best of {args.repeat}")
    print(
        f"posture pipeline: {pipe_s:.2f} s best of {len(runs)} (first {runs[0]:.2f} s; "
        f"{n_bouts} sitting bouts, {n_days} local days)"
    )
    print(f"ratio to plain pass: {pipe_s / plain_s:.1f}x   (goal <= 5x)")
    print(f"peak memory beyond the input: {peak / 2**20:.0f} MiB   (goal < 1024 MiB)")
    print(f"wall time goal < 3 s: {'met' if pipe_s < 3 else 'NOT met'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
