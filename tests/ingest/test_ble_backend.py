"""The bumble-backed bleak backend and the virtual peripheral, through bleak's public API."""

from __future__ import annotations

import asyncio
import struct

import pytest
from bleak import BleakClient, BleakScanner
from bleak.exc import BleakError

from glutewake.ingest.ble_bumble_backend import BumbleBleakClient, BumbleBleakScanner, BumbleRadio
from glutewake.ingest.peripheral import FaultPlan, FaultSpecError, VirtualPeripheral, parse_faults
from glutewake.ingest.scan import match_profile, scan, scan_async
from tests.ingest.test_ble_toy_profile import (
    CONFIG,
    CONTROL,
    DATA,
    PROFILE,
    SERVICE,
    ToyVirtualDevice,
)

BATTERY = "00002a19-0000-1000-8000-00805f9b34fb"


async def connected(
    radio: BumbleRadio, faults: FaultPlan | None = None
) -> tuple[VirtualPeripheral, BleakClient]:
    per = VirtualPeripheral(radio, PROFILE, ToyVirtualDevice(), config={}, faults=faults)
    await per.start()
    device = await BleakScanner.find_device_by_address(
        per.address, timeout=2.0, backend=BumbleBleakScanner
    )
    assert device is not None
    client = BleakClient(device, backend=BumbleBleakClient)
    await client.connect()
    return per, client


async def test_gatt_round_trip_through_bleak() -> None:
    async with BumbleRadio() as radio:
        per, client = await connected(radio)
        assert client.is_connected and client.mtu_size == 247
        service = client.services.get_service(SERVICE)
        assert service is not None
        props = {c.uuid: set(c.properties) for c in service.characteristics}
        assert {"notify", "write"} <= props[CONTROL] and "notify" in props[DATA]
        assert client.services.get_characteristic(DATA).descriptors  # CCCD discovered
        got: list[bytes] = []
        responses: list[bytes] = []
        await client.start_notify(DATA, lambda _c, d: got.append(bytes(d)))
        await client.start_notify(CONTROL, lambda _c, d: responses.append(bytes(d)))
        await client.write_gatt_char(CONTROL, b"\x01" + struct.pack("<H", 100), response=True)
        assert await client.read_gatt_char(BATTERY) == bytearray([87])
        assert await client.read_gatt_char(CONFIG) == struct.pack("<H", 100)
        await asyncio.sleep(0.35)
        assert responses == [b"\xf0\x01\x00"]
        assert len(got) >= 2 and got == [s.payload for s in per.sent]
        with pytest.raises(BleakError, match="already started"):
            await client.start_notify(DATA, lambda _c, d: None)
        await client.stop_notify(DATA)
        n = len(got)
        await asyncio.sleep(0.25)
        assert len(got) == n  # unsubscribed: the CCCD write reached the server
        await client.disconnect()
        assert not client.is_connected


async def test_link_loss_calls_disconnected_callback_and_fails_pending_io() -> None:
    async with BumbleRadio() as radio:
        # the loss comes 1 s after the peripheral starts: well after the connection is set up,
        # even on a loaded machine (at 0.3 s it sometimes hit service discovery)
        per, client = await connected(radio, FaultPlan(link_losses=((1.0, 5.0),)))
        lost = asyncio.Event()
        client._backend.set_disconnected_callback(lost.set)
        await asyncio.wait_for(lost.wait(), 3.0)
        assert not client.is_connected
        with pytest.raises(BleakError):
            await client.read_gatt_char(BATTERY)
        # unreachable now: a new connection attempt fails fast instead of hanging
        radio.connect_timeout_s = 0.3
        with pytest.raises(BleakError):
            await BleakClient(per.address, backend=BumbleBleakClient).connect()


async def test_small_mtu_cuts_long_notifications_silently() -> None:
    """Why the collector checks the MTU: at 23 a 33-byte notification arrives as 20 bytes."""
    async with BumbleRadio() as radio:
        per, client = await connected(radio, FaultPlan(max_mtu=23))
        assert client.mtu_size == 23
        got: list[bytes] = []
        await client.start_notify(DATA, lambda _c, d: got.append(bytes(d)))
        await client.write_gatt_char(CONTROL, b"\x01" + struct.pack("<H", 100), response=True)
        await asyncio.sleep(0.3)
        assert got and all(len(g) == 20 for g in got)
        assert all(len(s.payload) == 33 for s in per.sent)
        await client.disconnect()


async def test_scan_recognises_profiles_by_name_and_service() -> None:
    async with BumbleRadio() as radio:
        toy = VirtualPeripheral(radio, PROFILE, ToyVirtualDevice(), config={})
        other = VirtualPeripheral(radio, PROFILE, ToyVirtualDevice(), config={}, name="Sensor X")
        for p in (toy, other):
            await p.start()
        results = await scan_async(0.3, backend=BumbleBleakScanner, profiles=[PROFILE])
    by_address = {r.address: r for r in results}
    assert by_address[toy.address].profile == "toy"  # name prefix "Toy"
    assert by_address[toy.address].name == toy.name
    assert by_address[other.address].profile == "toy"  # advertised service UUID
    assert all(r.rssi < 0 for r in results)


def test_match_profile_unknown_is_none() -> None:
    assert match_profile("Fitbit", ["0000180d-0000-1000-8000-00805f9b34fb"], [PROFILE]) is None


def test_scan_simulated_registered_profiles() -> None:
    pytest.importorskip("glutewake.devices.glutewake_open")
    results = scan(0.3, simulate="polar-pmd,glutewake-open")
    assert sorted(r.profile for r in results) == ["glutewake-open", "polar-pmd"]


def test_parse_faults() -> None:
    plan = parse_faults(
        "linkloss@20s:5s, range@1min:500ms, linkloss@3, drop=0.01,dup=0.005,"
        "reorder=0.005,stop@40s,mtu=23,seed=4"
    )
    assert plan.link_losses == ((3.0, 0.0), (20.0, 5.0), (60.0, 0.5))
    assert plan.stops == (40.0,)
    assert (plan.drop_p, plan.dup_p, plan.reorder_p, plan.max_mtu, plan.seed) == (
        0.01,
        0.005,
        0.005,
        23,
        4,
    )
    assert parse_faults(None) == FaultPlan()


@pytest.mark.parametrize(
    "spec, problem",
    [
        ("drop=1.5", "probability"),
        ("mtu=10", "23..517"),
        ("linkloss@soon", "not a time"),
        ("range@3s", "needs a duration"),
        ("explode@3s", "unknown timed fault"),
        ("jitter=3", "unknown fault"),
    ],
)
def test_parse_faults_rejects(spec: str, problem: str) -> None:
    with pytest.raises(FaultSpecError, match=problem):
        parse_faults(spec)
