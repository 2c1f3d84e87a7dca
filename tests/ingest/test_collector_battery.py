"""Battery level through the real link: read on connect, re-read periodically, notifications.

The virtual peripheral's battery drains (fault items ``battery=N,drain=R``); the collector must
spool every level it read or was notified of, with its time, and ``stream_status`` must report
the newest one. Battery notifications must not keep a stalled data stream looking alive.
"""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

import numpy as np
import pytest

from glutewake.devices.base import RawRecords, RecordKind
from glutewake.ingest.ble_bumble_backend import BumbleRadio
from glutewake.ingest.collector import EXIT_OK, DeviceSpec, DeviceSupervisor, run_collection
from glutewake.ingest.peripheral import (
    BATTERY_LEVEL_UUID,
    FaultPlan,
    FaultSpecError,
    VirtualPeripheral,
    parse_faults,
)
from glutewake.ingest.spool_scan import battery_levels
from glutewake.ingest.status import stream_status
from glutewake.store.datadir import DataDir
from tests.ingest.test_ble_toy_profile import PROFILE, ToyVirtualDevice
from tests.ingest.test_collector import BUMBLE, CFG, FAST, spool_records


async def collect_battery(
    tmp_path: Path, faults: FaultPlan, duration_s: float, battery_interval_s: float
) -> tuple[int, VirtualPeripheral, DeviceSupervisor, DataDir]:
    data = DataDir(tmp_path / "data")
    sups: list[DeviceSupervisor] = []
    settings = dataclasses.replace(FAST, battery_interval_s=battery_interval_s)
    async with BumbleRadio() as radio:
        per = VirtualPeripheral(radio, PROFILE, ToyVirtualDevice(), config=CFG, faults=faults)
        await per.start()
        code = await run_collection(
            data,
            "P01",
            [DeviceSpec(per.address, PROFILE, CFG)],
            settings=settings,
            backends=BUMBLE,
            duration_s=duration_s,
            on_supervisors=sups.extend,
        )
    return code, per, sups[0], data


def battery_records(records: RawRecords, kind: RecordKind) -> list[tuple[int, int]]:
    return [
        (int(t), p[0])
        for t, k, u, p in zip(
            records.t_us, records.kind, records.char_uuid, records.payload, strict=True
        )
        if k == kind and u == BATTERY_LEVEL_UUID
    ]


@pytest.mark.ble_link
@pytest.mark.timeout(60)
async def test_battery_read_on_connect_periodically_and_notified(tmp_path: Path) -> None:
    # 90 % falling 60 %/min: a new level every second, over a link that drops once
    faults = FaultPlan(battery_pct=90, battery_drain_pct_per_min=60.0, link_losses=((1.2, 0.3),))
    code, per, sup, data = await collect_battery(tmp_path, faults, 3.5, battery_interval_s=0.5)
    assert code == EXIT_OK
    [(_, records)] = spool_records(data)
    truth = dict(per.battery_log)  # t_us -> level, at start and at every change
    assert len(truth) >= 3 and per.battery_log[0][1] == 90
    levels_true = [v for _, v in per.battery_log]
    assert levels_true == sorted(levels_true, reverse=True)

    def levels_near(t_us: int) -> set[int]:
        """Levels the device served in the second before host time ``t_us`` (the record's
        host time is when the value arrived, a little after the device served it)."""
        before = [v for t, v in per.battery_log if t <= t_us - 1_000_000]
        during = {v for t, v in per.battery_log if t_us - 1_000_000 < t <= t_us}
        return during | set(before[-1:])

    reads = battery_records(records, RecordKind.READ)
    notes = battery_records(records, RecordKind.NOTIFY)
    # read on each of the two connections, and re-read about every 0.5 s in between
    assert len(reads) >= 5
    conn_of_read = [
        int(c)
        for c, k, u in zip(records.conn_id, records.kind, records.char_uuid, strict=True)
        if k == RecordKind.READ and u == BATTERY_LEVEL_UUID
    ]
    assert set(conn_of_read) == {1, 2}
    # every recorded value is the level the device had at (or just before) its host time
    for t_us, pct in reads + notes:
        assert pct in levels_near(t_us), (t_us, pct, per.battery_log)
    # the level changes while connected arrive as notifications
    assert len(notes) >= 1 and {p for _, p in notes} <= set(levels_true[1:])

    t_levels, pct_levels = battery_levels(records)
    assert len(pct_levels) == len(reads) + len(notes)
    assert np.all(np.diff(t_levels) >= 0)
    [row] = stream_status(data, profiles={"toy": PROFILE})
    assert row["battery_pct"] == int(pct_levels[-1]) < 90
    assert row["battery_t_us"] == int(t_levels[-1])
    assert sup.status.battery_pct == row["battery_pct"]
    snap = sup.snapshot(0)
    assert (snap["battery_pct"], snap["battery_t_us"]) == (row["battery_pct"], row["battery_t_us"])


@pytest.mark.ble_link
@pytest.mark.timeout(60)
async def test_battery_notifications_do_not_hide_a_stalled_stream(tmp_path: Path) -> None:
    # the stream stops at 0.8 s while the battery keeps notifying every 0.1 s: the watchdog
    # must still see a silent stream and restart it
    faults = FaultPlan(stops=(0.8,), battery_pct=100, battery_drain_pct_per_min=600.0)
    code, per, sup, data = await collect_battery(tmp_path, faults, 3.0, battery_interval_s=300)
    assert code == EXIT_OK
    [(_, records)] = spool_records(data)
    stop_us = next(t for t, e, _ in per.events if e == "stop")
    assert sum(1 for t, _ in battery_records(records, RecordKind.NOTIFY) if t > stop_us) >= 5
    assert sup.status.stream_restarts >= 1


def test_battery_levels_skip_other_and_invalid_records() -> None:
    recs = RawRecords(
        t_us=np.array([1, 2, 3, 4, 5], np.int64),
        kind=np.array([2, 2, 0, 1, 2], np.int8),  # READ, READ, NOTIFY, WRITE, READ
        char_uuid=[BATTERY_LEVEL_UUID, BATTERY_LEVEL_UUID, BATTERY_LEVEL_UUID.upper(), "x", "y"],
        payload=[bytes([80]), b"", bytes([250]), bytes([70]), bytes([60])],
        conn_id=np.ones(5, np.int64),
    )
    t_us, pct = battery_levels(recs)
    assert t_us.tolist() == [1] and pct.tolist() == [80]


async def test_virtual_battery_drains_and_serves_the_current_level() -> None:
    async with BumbleRadio() as radio:
        per = VirtualPeripheral(
            radio,
            PROFILE,
            ToyVirtualDevice(),
            config=CFG,
            battery_pct=50,
            battery_drain_pct_per_min=1200.0,  # 20 %/s
        )
        assert per.battery_pct == 50
        await per.start()
        await asyncio.sleep(0.3)
        served = per._read(BATTERY_LEVEL_UUID)[0]
    assert 40 <= served <= 46
    assert per.battery_log[0][1] == 50 and per.battery_log[-1][1] == served


def test_parse_battery_faults() -> None:
    plan = parse_faults("battery=42,drain=0.5")
    assert (plan.battery_pct, plan.battery_drain_pct_per_min) == (42, 0.5)
    with pytest.raises(FaultSpecError, match="battery=101"):
        parse_faults("battery=101")
    with pytest.raises(FaultSpecError, match="drain=-1"):
        parse_faults("drain=-1")
