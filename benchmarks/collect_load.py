"""Collector load: 2 kHz x 4-channel EMG plus 100 Hz accelerometer, one process, N seconds.

A virtual glutewake-open board streams EMG (2000 Hz, 4 channels) and ACC (100 Hz, 3 axes) over
the in-process bumble link; the real collector (bleak -> bumble backend -> GATT) writes the spool.
Prints the spool writer queue depth over the run (it must not grow), CPU use, and spool bytes per
hour. The process CPU includes the simulated device, its GATT server and both bumble stacks; the
collector's own share is the writer thread plus the notification callbacks, printed separately.

Run:  python benchmarks/collect_load.py [--seconds 300]
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import tempfile
import time
from pathlib import Path

from glutewake.ingest.ble_bumble_backend import BumbleBleakClient, BumbleBleakScanner, BumbleRadio
from glutewake.ingest.collector import (
    Backends,
    CollectorSettings,
    DeviceSpec,
    DeviceSupervisor,
    LiveQc,
    run_collection,
)
from glutewake.ingest.simulated import start_virtual_peripherals
from glutewake.store.datadir import DataDir

CONFIG = {"glutewake-open": {"emg": {"fs_hz": 2000, "channels": 4}, "acc": {"fs_hz": 100}}}


async def run(seconds: float, root: Path) -> dict[str, float]:
    data = DataDir(root)
    supervisors: list[DeviceSupervisor] = []
    depths: list[int] = []
    callback_s = [0.0]
    original = DeviceSupervisor._on_notify

    def timed(self: DeviceSupervisor, char: object, payload: bytearray) -> None:
        t0 = time.thread_time()  # CPU of this thread only: GIL waits are not the callback's cost
        original(self, char, payload)
        callback_s[0] += time.thread_time() - t0

    qc_s = [0.0]
    original_qc = LiveQc.evaluate

    def timed_qc(self: LiveQc) -> None:
        t0 = time.thread_time()
        original_qc(self)
        qc_s[0] += time.thread_time() - t0

    DeviceSupervisor._on_notify = timed  # type: ignore[method-assign]
    LiveQc.evaluate = timed_qc  # type: ignore[method-assign]
    try:
        async with BumbleRadio() as radio:
            peripherals = await start_virtual_peripherals(
                radio, ["glutewake-open"], config=CONFIG, duration_s=seconds
            )
            specs = [DeviceSpec(p.address, p.profile, p.config) for p in peripherals]

            async def sample_queue() -> None:
                while True:
                    await asyncio.sleep(1.0)
                    if supervisors:
                        depths.append(supervisors[0].writer_thread.depth())

            sampler = asyncio.create_task(sample_queue())
            cpu0 = time.process_time()
            wall0 = time.monotonic()
            await run_collection(
                data,
                "LOAD",
                specs,
                settings=CollectorSettings(status_interval_s=2.0),
                backends=Backends(BumbleBleakScanner, BumbleBleakClient),
                duration_s=seconds,
                on_supervisors=supervisors.extend,
            )
            wall = time.monotonic() - wall0
            cpu = time.process_time() - cpu0
            sampler.cancel()
    finally:
        DeviceSupervisor._on_notify = original  # type: ignore[method-assign]
        LiveQc.evaluate = original_qc  # type: ignore[method-assign]
    sup = supervisors[0]
    spool_bytes = sum(p.stat().st_size for p in data.spool.rglob("*") if p.is_file())
    half = max(1, len(depths) // 2)
    return {
        "wall_s": wall,
        "notifications": sup.status.notifications,
        "payload_bytes": sup.status.bytes,
        "queue_max": max(depths or [0]),
        "queue_mean_first_half": sum(depths[:half]) / half,
        "queue_mean_second_half": sum(depths[half:]) / max(1, len(depths) - half),
        "process_cpu_pct": 100.0 * cpu / wall,
        "writer_cpu_pct": 100.0 * sup.writer_thread.cpu_s / wall,
        "callback_cpu_pct": 100.0 * callback_s[0] / wall,
        "qc_cpu_pct": 100.0 * qc_s[0] / wall,
        "spool_bytes": spool_bytes,
        "spool_mb_per_hour": spool_bytes / wall * 3600 / 1e6,
        "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=300.0, help="collection length")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        r = asyncio.run(run(args.seconds, Path(tmp)))
    print(
        f"collected {r['wall_s']:.1f} s: {r['notifications']} notifications "
        f"({r['notifications'] / r['wall_s']:.0f}/s), {r['payload_bytes'] / 1e6:.2f} MB payload"
    )
    print(
        f"writer queue depth: max {r['queue_max']}, mean first half "
        f"{r['queue_mean_first_half']:.2f}, second half {r['queue_mean_second_half']:.2f}"
    )
    print(
        f"CPU % of one core: whole process {r['process_cpu_pct']:.1f} (simulated device + "
        f"both bumble stacks included); collector writer thread {r['writer_cpu_pct']:.2f}, "
        f"notification callbacks {r['callback_cpu_pct']:.2f}, live QC decoding "
        f"{r['qc_cpu_pct']:.2f} (every 30 s); collector total "
        f"{r['writer_cpu_pct'] + r['callback_cpu_pct'] + r['qc_cpu_pct']:.2f}"
    )
    print(
        f"spool: {r['spool_bytes'] / 1e6:.2f} MB -> {r['spool_mb_per_hour']:.1f} MB per hour "
        f"(zstd Parquet); max RSS {r['max_rss_mb']:.0f} MB"
    )


if __name__ == "__main__":
    main()
