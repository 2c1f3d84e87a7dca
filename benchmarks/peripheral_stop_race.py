"""The race behind the rare ``collect --simulate`` stall (issue 4), reproduced on its own.

Each round: a bumble radio with one virtual Polar device; a bleak client (bumble backend)
connects and disconnects, and after a random 0-30 ms — while the peripheral starts advertising
again — ``VirtualPeripheral.stop()`` is called, as ``BumbleRadio.stop()`` does at the end of
every ``collect --simulate``. A stop that has not returned after 5 s is a hang. Prints
hangs/rounds::

    python benchmarks/peripheral_stop_race.py --rounds 200
    PYTHONPATH=/path/to/old/src python benchmarks/peripheral_stop_race.py   # another version

Before the fix (stop() cancelled its ``while True`` pump and awaited it; on Python 3.11 the
cancel is swallowed by ``asyncio.wait_for`` inside bumble's HCI command path when the command's
response is already in), about 1 round in 8 hung here.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import random
import time

from bleak import BleakClient

from glutewake.ingest.ble_bumble_backend import BumbleBleakClient, BumbleRadio
from glutewake.ingest.simulated import start_virtual_peripherals


async def _round(delay_s: float, hang_s: float) -> str:
    async with BumbleRadio() as radio:
        [per] = await start_virtual_peripherals(radio, ["polar-pmd"], duration_s=5)
        client = BleakClient(per.address, backend=BumbleBleakClient)
        await client.connect()
        await client.disconnect()
        await asyncio.sleep(delay_s)
        stopping = asyncio.ensure_future(per.stop())
        done, _ = await asyncio.wait({stopping}, timeout=hang_s)
        if not done:
            stopping.cancel()  # with the old stop() this does not end it either; leave it
            return "hang"
    return "ok"


async def main(rounds: int, seed: int, hang_s: float) -> None:
    rng = random.Random(seed)
    hangs: list[tuple[int, float]] = []
    t0 = time.monotonic()
    for k in range(rounds):
        delay_s = rng.uniform(0.0, 0.03)
        try:
            verdict = await asyncio.wait_for(_round(delay_s, hang_s), 4 * hang_s)
        except TimeoutError:
            verdict = "hang"
        if verdict != "ok":
            hangs.append((k, delay_s))
    print(
        f"VirtualPeripheral.stop() 0-30 ms after a disconnect: hangs {len(hangs)}/{rounds} "
        f"(stop delays of the hung rounds, ms: {[round(d * 1e3, 1) for _, d in hangs]}); "
        f"{time.monotonic() - t0:.0f} s"
    )


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=200)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--hang-s", type=float, default=5.0)
    args = ap.parse_args()
    logging.basicConfig(level=logging.CRITICAL)  # bumble logs the desynchronised HCI flow
    asyncio.run(main(args.rounds, args.seed, args.hang_s))
