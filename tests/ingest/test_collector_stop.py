"""The stop path always ends: the bumble link stall of issue 4 and the bounded shutdown.

Root cause of the rare stall: ``VirtualPeripheral.stop`` cancelled its ``while True`` pump and
awaited it. When the stop came while the pump was re-advertising (right after the collector's
own disconnect, i.e. at every stop), the cancel could land inside a bumble HCI command, which
bumble awaits with ``asyncio.wait_for(..., 10 s)``; on Python 3.11 ``wait_for`` returns the
result instead of raising when the response arrived just before the cancel, so the pump
swallowed its cancellation, looped on, and ``await task`` (hence ``collect``) never returned.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from bleak import BleakClient

from glutewake.ingest.ble_bumble_backend import BumbleBleakClient, BumbleRadio
from glutewake.ingest.peripheral import VirtualPeripheral
from glutewake.ingest.simulated import start_virtual_peripherals
from tests.ingest.test_ble_toy_profile import PROFILE, ToyVirtualDevice

ROOT = Path(__file__).resolve().parents[2]


class _SwallowingPeripheral(VirtualPeripheral):
    """Re-advertises on every tick like the real pump, and swallows a cancellation there the way
    Python 3.11's ``asyncio.wait_for`` does when the awaited HCI response is already in."""

    async def _advertise(self) -> None:
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.sleep(0.005)


async def test_peripheral_stop_ends_a_pump_that_swallows_its_cancellation() -> None:
    async with BumbleRadio() as radio:
        per = _SwallowingPeripheral(radio, PROFILE, ToyVirtualDevice(), config={"fs_hz": 100})
        await per.start()
        await asyncio.sleep(0.05)
        t0 = time.monotonic()
        await asyncio.wait_for(per.stop(), 5.0)  # the old stop() never returned here
        assert time.monotonic() - t0 < 1.0
        assert per._task is None and per not in radio.peripherals


@pytest.mark.ble_link
@pytest.mark.timeout(120)
async def test_peripheral_stop_right_after_a_disconnect_never_hangs() -> None:
    # the window of the original stall: stop within ~30 ms of the central's disconnect, while
    # the peripheral starts advertising again (about 1 in 8 of these hung before the fix)
    rng = random.Random(1)
    for _ in range(40):
        async with BumbleRadio() as radio:
            [per] = await start_virtual_peripherals(radio, ["polar-pmd"], duration_s=5)
            client = BleakClient(per.address, backend=BumbleBleakClient)
            await client.connect()
            await client.disconnect()
            await asyncio.sleep(rng.uniform(0.0, 0.03))
            stopping = asyncio.ensure_future(per.stop())
            done, _ = await asyncio.wait({stopping}, timeout=5.0)
            assert done, "VirtualPeripheral.stop() hung"
            stopping.result()


def _run_script(
    script: str, *args: str, timeout_s: float
) -> tuple[subprocess.CompletedProcess[str], float]:
    t0 = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script), *args],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        cwd=ROOT,
    )
    return proc, time.monotonic() - t0


@pytest.mark.ble_link
@pytest.mark.timeout(90)
def test_a_stuck_teardown_step_still_lets_collect_exit(tmp_path: Path) -> None:
    script = """
        import asyncio, sys
        from glutewake.store.datadir import DataDir
        from glutewake.ingest import ble_bumble_backend, collector, peripheral

        ble_bumble_backend.STOP_STEP_S = 0.5
        collector.STOP_STEP_S = 0.5

        async def stuck_stop(self):
            while True:  # never ends and swallows every cancellation
                try:
                    await asyncio.sleep(1)
                except asyncio.CancelledError:
                    pass

        peripheral.VirtualPeripheral.stop = stuck_stop
        code = collector.collect(DataDir(sys.argv[1]), participant_id="P01",
                                 simulate=["glutewake-open"], duration_s=2.0, status_line=False)
        print("exit", code)
        raise SystemExit(code)
    """
    data = tmp_path / "data"
    proc, wall_s = _run_script(script, str(data), timeout_s=60)
    assert proc.returncode == 0, proc.stderr
    assert "exit 0" in proc.stdout
    assert wall_s < 30  # 2 s of collection + bounded teardown steps (+ interpreter start)
    log_text = (data / "logs" / "collect.log").read_text()
    assert "stop step 'stop glutewake" in log_text and "did not finish" in log_text
    # the collection itself was flushed before the stuck step: its segments are in the spool
    assert list((data / "spool").glob("participant_id=P01/device=*/seg-*.parquet"))


def test_exit_deadline_ends_a_process_whose_stop_blocks() -> None:
    script = """
        import asyncio, time
        from glutewake.ingest.collector import run_to_exit

        stop = asyncio.Event()

        async def main():
            stop.set()
            await asyncio.sleep(0.05)
            time.sleep(60)  # blocks the event loop itself: only the deadline can end this
            return 0

        raise SystemExit(run_to_exit(main(), stop, deadline_s=1.0))
    """
    proc, wall_s = _run_script(script, timeout_s=30)
    assert proc.returncode == 4  # EXIT_STOP_STALLED
    assert wall_s < 15
    assert "most recent call first" in proc.stderr  # the stacks of the stalled process
