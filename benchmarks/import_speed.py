"""Import speed and memory: a 7-day 100 Hz accelerometer CSV through ``run_import``.

Writes (once, into ``--dir``) a generic-convention CSV (``t_us,acc_x[g],acc_y[g],acc_z[g]``, or
ISO 8601 times with ``--iso``), then runs, each in its own process so that peak memory is its
own: a plain ``polars.read_csv`` of the file, and ``run_import`` into a fresh data directory.
By default the participant has no time zone in the catalog, so the figure is the import itself
(parse, check timing, store samples, catalog write); ``--derive`` registers the participant and
the thigh placement, adding the sitting analysis of every local day. Prints rows/s, CPU seconds
and peak RSS. The modules an import uses (scipy among them) are loaded before the clock starts:
that one-off cost is not per row.

    python benchmarks/import_speed.py                 # 7 days at 100 Hz (60.5 M rows, ~2 GB)
    python benchmarks/import_speed.py --days 1        # quicker look
    python benchmarks/import_speed.py --axivity --days 1 --rounds 3
        # Axivity CSV (cwa-convert's default layout: local time text, %f values) against the
        # generic CSV of the same samples, imported alternately, CPU per row best of N
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import polars as pl

_T0_US = 1_772_352_000_000_000  # 2026-03-01T08:00:00Z


def write_csv(path: Path, days: float, fs_hz: float, iso: bool) -> int:
    """A day at a time, so that writing the file stays in bounded memory too."""
    n_total = int(days * 86_400 * fs_hz)
    per_day = int(86_400 * fs_hz)
    rng = np.random.default_rng(0)
    header = "time" if iso else "t_us"
    with open(path, "wb") as fh:
        fh.write(f"{header},acc_x[g],acc_y[g],acc_z[g]\n".encode())
        for lo in range(0, n_total, per_day):
            n = min(per_day, n_total - lo)
            idx = np.arange(lo, lo + n, dtype=np.int64)
            t_us = _T0_US + np.round(idx * 1e6 / fs_hz).astype(np.int64)
            acc = rng.normal(0.0, 0.02, size=(n, 3)) + np.array([0.0, 0.0, 1.0])
            frame = pl.DataFrame(
                {
                    header: t_us,
                    "x": acc[:, 0].round(4),
                    "y": acc[:, 1].round(4),
                    "z": acc[:, 2].round(4),
                }
            )
            if iso:
                frame = frame.with_columns(
                    pl.from_epoch(header, time_unit="us").dt.replace_time_zone("UTC")
                )
            frame.write_csv(fh, include_header=False, datetime_format="%Y-%m-%dT%H:%M:%S%.3fZ")
    return n_total


def write_axivity(path: Path, days: float, fs_hz: float) -> int:
    """cwa-convert's default CSV (local device time, six-decimal g) of the same signal, and a
    generic CSV of it next to it (``t_us`` and the same six-decimal values)."""
    n_total = int(days * 86_400 * fs_hz)
    per_day = int(86_400 * fs_hz)
    rng = np.random.default_rng(0)
    generic = path.with_name(path.stem + "-generic.csv")
    with open(path, "wb") as ax, open(generic, "wb") as gen:
        gen.write(b"t_us,acc_x[g],acc_y[g],acc_z[g]\n")
        for lo in range(0, n_total, per_day):
            n = min(per_day, n_total - lo)
            idx = np.arange(lo, lo + n, dtype=np.int64)
            t_us = _T0_US + np.round(idx * 1e6 / fs_hz).astype(np.int64)
            acc = rng.normal(0.0, 0.02, size=(n, 3)) + np.array([0.0, 0.0, 1.0])
            values = {"x": acc[:, 0], "y": acc[:, 1], "z": acc[:, 2]}
            frame = pl.DataFrame({"t": t_us, **values})
            frame.write_csv(gen, include_header=False, float_precision=6)
            local = pl.from_epoch(frame["t"], time_unit="us").dt.replace_time_zone("UTC")
            local = local.dt.convert_time_zone("Europe/Berlin").dt.replace_time_zone(None)
            frame.with_columns(local.dt.strftime("%Y-%m-%d %H:%M:%S%.3f").alias("t")).write_csv(
                ax, include_header=False, float_precision=6
            )
    return n_total


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def child_read_csv(path: Path) -> dict[str, float]:
    cpu, t = _cpu_s(), time.perf_counter()
    frame = pl.read_csv(path)
    elapsed = time.perf_counter() - t
    return {
        "rows": frame.height,
        "seconds": elapsed,
        "cpu_s": _cpu_s() - cpu,
        "peak_rss_mib": _peak_rss_mib(),
    }


def child_import(path: Path, data: Path, derive: bool, tz: str | None = None) -> dict[str, float]:
    from glutewake.pipeline import import_files as run_import
    from glutewake.store.bookkeeping import add_participant
    from glutewake.store.datadir import DataDir

    shutil.rmtree(data, ignore_errors=True)
    data_dir = DataDir(data).create()
    if derive:
        add_participant(data_dir, "B01", "Europe/Berlin")
    # load the modules an import touches first: the figure is the import, not Python's imports
    import glutewake.pipeline.emg_sessions
    import glutewake.signal.activation  # noqa: F401

    cpu, t = _cpu_s(), time.perf_counter()
    summary = run_import(
        data_dir, [path], participant_id="B01", placement="thigh" if derive else None, tz=tz
    )
    elapsed, cpu = time.perf_counter() - t, _cpu_s() - cpu
    if summary.failed:
        raise SystemExit(summary.failed[0].message)
    shutil.rmtree(data, ignore_errors=True)
    return {
        "rows": summary.rows,
        "seconds": elapsed,
        "cpu_s": cpu,
        "peak_rss_mib": _peak_rss_mib(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=float, default=7.0)
    parser.add_argument("--fs", type=float, default=100.0)
    parser.add_argument("--dir", default="/tmp/glutewake-import-bench")
    parser.add_argument("--iso", action="store_true", help="ISO 8601 time column, not t_us")
    parser.add_argument("--derive", action="store_true", help="also derive sitting per day")
    parser.add_argument(
        "--axivity", action="store_true", help="Axivity CSV against the same generic CSV"
    )
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds (--axivity)")
    parser.add_argument(
        "--baseline",
        metavar="SRC",
        help="another checkout's src folder, run interleaved with this one (--axivity)",
    )
    parser.add_argument("--child", nargs=2, metavar=("KIND", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    folder = Path(args.dir)
    if args.child:
        kind, path = args.child
        if kind == "read_csv":
            out = child_read_csv(Path(path))
        elif kind == "import-axivity":
            out = child_import(Path(path), folder / "data", False, tz="Europe/Berlin")
        else:
            out = child_import(Path(path), folder / "data", kind == "import-derive")
        print(json.dumps(out))
        return
    folder.mkdir(parents=True, exist_ok=True)
    if args.axivity:
        compare_axivity(folder, args.days, args.fs, args.rounds, args.baseline)
        return
    name = f"acc_{args.days:g}d_{args.fs:g}hz_{'iso' if args.iso else 'tus'}.csv"
    path = folder / name
    if not path.exists():
        t = time.perf_counter()
        n = write_csv(path, args.days, args.fs, args.iso)
        print(
            f"wrote {path} ({n:,} rows, {path.stat().st_size / 2**30:.2f} GiB) "
            f"in {time.perf_counter() - t:.0f} s"
        )
    size_gib = path.stat().st_size / 2**30
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"file: {path.name}, {size_gib:.2f} GiB; {os.cpu_count()} CPUs, load average {load}")
    kinds = ["read_csv", "import-derive" if args.derive else "import"]
    for kind in kinds:
        proc = subprocess.run(
            [sys.executable, __file__, "--dir", str(folder), "--child", kind, str(path)],
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            print(f"{kind}: failed\n{proc.stderr[-2000:]}")
            continue
        res = json.loads(proc.stdout.strip().splitlines()[-1])
        rate = res["rows"] / res["seconds"]
        label = "polars.read_csv" if kind == "read_csv" else f"glutewake {kind}"
        print(
            f"{label:<26} {res['rows']:>12,} rows  {res['seconds']:7.1f} s  "
            f"{rate / 1e6:6.2f} M rows/s  CPU {res['cpu_s']:6.1f} s  "
            f"peak RSS {res['peak_rss_mib']:6.0f} MiB"
        )


def _child(
    folder: Path, kind: str, path: Path, source: str | None = None
) -> dict[str, float] | None:
    """One import in its own process; ``source`` runs another checkout's ``src`` instead."""
    env = dict(os.environ)
    if source:
        env["PYTHONPATH"] = source
    proc = subprocess.run(
        [sys.executable, __file__, "--dir", str(folder), "--child", kind, str(path)],
        capture_output=True,
        text=True,
        check=False,
        env=env,
    )
    if proc.returncode != 0:
        print(f"{kind}: failed\n{proc.stderr[-2000:]}")
        return None
    return json.loads(proc.stdout.strip().splitlines()[-1])


def compare_axivity(
    folder: Path, days: float, fs_hz: float, rounds: int, baseline: str | None = None
) -> None:
    """Axivity and generic CSV of the same samples, imported alternately; CPU per row.

    ``baseline``: another checkout's ``src`` folder, run interleaved with this one (before and
    after a change, in the same run)."""
    path = folder / f"axivity_{days:g}d_{fs_hz:g}hz.csv"
    generic = path.with_name(path.stem + "-generic.csv")
    if not (path.exists() and generic.exists()):
        n = write_axivity(path, days, fs_hz)
        print(f"wrote {path.name} and {generic.name} ({n:,} rows each)")
    best: dict[str, float] = {}
    sources = [("", None)] + ([("baseline ", baseline)] if baseline else [])
    for r in range(rounds):
        for (tag, source), (kind, file) in itertools.product(
            sources, (("import", generic), ("import-axivity", path))
        ):
            load = os.getloadavg()[0]
            res = _child(folder, kind, file, source)
            if res is None:
                return
            ns_row = 1e9 * res["cpu_s"] / res["rows"]
            label = tag + ("axivity-csv" if kind == "import-axivity" else "generic-csv")
            best[label] = min(best.get(label, float("inf")), ns_row)
            print(
                f"round {r + 1} {label:21} {res['rows']:>11,} rows  {res['seconds']:6.1f} s  "
                f"CPU {res['cpu_s']:6.1f} s = {ns_row:5.0f} ns/row  "
                f"({res['rows'] / res['seconds'] / 1e6:4.2f} M rows/s)  load {load:.1f}"
            )
    for tag, _ in sources:
        gen, ax = best[tag + "generic-csv"], best[tag + "axivity-csv"]
        print(
            f"{tag or 'this checkout '}best of {rounds}: generic {gen:.0f} ns/row, axivity "
            f"{ax:.0f} ns/row: {ax / gen:.2f}x the generic CSV's CPU per row"
        )


if __name__ == "__main__":
    main()
