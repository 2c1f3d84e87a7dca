"""The mutated-import set: how many damaged files are refused, flagged, or imported silently.

Writes a valid file of each import format and every mutation of it
(:func:`glutewake.simulate.import_mutations.mutated_files`: NaN, ±inf, -1e20, 1.8e12, swapped
columns, reversed / constant / repeated / shuffled timestamps, time units off by 1000, values in
the wrong unit, cut off, ragged, empty, garbage), imports each for its own participant and prints
the outcome per format and mutation; then the two cases too large for the unit tests: a sample
file of 10^7 identical timestamps, and a partial file imported before the full one.

    python benchmarks/import_mutations.py            # the table and the totals
    python benchmarks/import_mutations.py --quiet    # totals only
"""

from __future__ import annotations

import argparse
import collections
import os
import resource
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq


def _outcome(f: object) -> str:
    status = getattr(f, "status")  # noqa: B009
    if status == "imported":
        return "flagged" if getattr(f, "flags") else "SILENT"  # noqa: B009
    return "refused" if status == "failed" else "skipped"


def mutation_table(folder: Path, quiet: bool) -> collections.Counter[str]:
    from glutewake.pipeline import import_files
    from glutewake.simulate.import_mutations import TZ, mutated_files
    from glutewake.store.bookkeeping import add_participant
    from glutewake.store.datadir import DataDir

    mutations = mutated_files(folder / "files")
    data_dir = DataDir(folder / "data").create()
    totals: collections.Counter[str] = collections.Counter()
    per_format: dict[str, collections.Counter[str]] = {}
    for i, m in enumerate(mutations):
        pid = f"M{i:03d}"
        add_participant(data_dir, pid, TZ)
        f = import_files(data_dir, [m.path], participant_id=pid, tz=TZ).files[0]
        kind = _outcome(f)
        totals[kind] += 1
        per_format.setdefault(m.fmt, collections.Counter())[kind] += 1
        if not quiet:
            said = (f.message or "; ".join(f.flags) or "").split(": ", 1)[-1]
            print(f"{kind:8} {m.fmt:20} {m.name:26} {said[:110]}")
    print(f"\n{len(mutations)} mutated files in {len(per_format)} formats:")
    for fmt, c in sorted(per_format.items()):
        print(
            f"  {fmt:20} {sum(c.values()):4}  "
            + ", ".join(f"{k} {v}" for k, v in sorted(c.items()))
        )
    print("  total               " + ", ".join(f"{k} {v}" for k, v in sorted(totals.items())))
    return totals


def identical_timestamps(folder: Path, n: int) -> None:
    from glutewake.pipeline import import_files
    from glutewake.store.bookkeeping import add_participant
    from glutewake.store.datadir import DataDir

    data_dir = DataDir(folder / "data-identical").create()
    add_participant(data_dir, "P01", "UTC")
    (folder / "stream=acc").mkdir(exist_ok=True)
    path = folder / "stream=acc" / "d1-c1-acc.parquet"
    table = pa.table(
        {
            "t_us": np.full(n, 1_772_438_400_000_000, dtype=np.int64),
            "sample_seq": np.arange(n, dtype=np.int64),
            "x": np.zeros(n, np.float32),
            "y": np.zeros(n, np.float32),
            "z": np.ones(n, np.float32),
        }
    )
    pq.write_table(table, path)
    del table
    t = time.perf_counter()
    f = import_files(data_dir, [path], participant_id="P01").files[0]
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\n{n:,} identical timestamps: {f.status} in {time.perf_counter() - t:.1f} s "
          f"(peak RSS {rss:.0f} MiB): {str(f.message).split(': ', 1)[-1]}")  # fmt: skip


def partial_then_full(folder: Path) -> None:
    from glutewake.pipeline import import_files
    from glutewake.store.bookkeeping import add_participant
    from glutewake.store.catalog import open_read
    from glutewake.store.datadir import DataDir

    data_dir = DataDir(folder / "data-versions").create()
    add_participant(data_dir, "P01", "UTC")
    t_us = 1_772_438_400_000_000 + np.arange(1000) * 20_000
    rows = [f"{t},0.01,0.02,0.99" for t in t_us]
    full, partial = folder / "full.csv", folder / "partial.csv"
    full.write_text("t_us,acc_x[g],acc_y[g],acc_z[g]\n" + "\n".join(rows) + "\n")
    partial.write_text("t_us,acc_x[g],acc_y[g],acc_z[g]\n" + "\n".join(rows[:500]) + "\n")
    for path in (partial, full, partial):
        f = import_files(data_dir, [path], participant_id="P01", device_id="d1").files[0]
        print(f"  {path.name:12} {f.status:8} {f.message or ''}")
    with open_read(data_dir) as con:
        n = con.execute("SELECT sum(n_samples) FROM recordings").fetchone()
    on_disk = sum(pq.read_metadata(p).num_rows for p in data_dir.samples.glob("**/*.parquet"))
    print(f"partial (500) then full (1,000 distinct times): {n[0] if n else 0:,} samples in "
          f"recordings, {on_disk:,} rows on disk")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quiet", action="store_true", help="totals only")
    parser.add_argument("--identical", type=int, default=10_000_000, help="rows of one time")
    args = parser.parse_args()
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"{os.cpu_count()} CPUs, load average {load}")
    folder = Path(tempfile.mkdtemp(prefix="glutewake-mutations-"))
    try:
        totals = mutation_table(folder, args.quiet)
        partial_then_full(folder)
        identical_timestamps(folder, args.identical)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    if totals["SILENT"]:
        raise SystemExit(f"{totals['SILENT']} mutated file(s) imported silently")


if __name__ == "__main__":
    main()
