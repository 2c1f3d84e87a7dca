"""Real device profiles end to end: virtual Polar Verity Sense and glutewake-open boards served
over bumble, collected by the real collector through bleak, decoded back from the spool and
compared with the signals the virtual devices were driven by."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from glutewake.devices.base import (
    DeviceProfile,
    RawRecords,
    RecordKind,
    StreamSamples,
    VirtualDevice,
)
from glutewake.devices.open_virtual import GlutewakeOpenVirtualDevice
from glutewake.ingest.ble_bumble_backend import (
    BumbleBleakClient,
    BumbleBleakScanner,
    BumbleRadio,
    utc_now_us,
)
from glutewake.ingest.collector import (
    EXIT_OK,
    Backends,
    CollectorSettings,
    DeviceSpec,
    DeviceSupervisor,
    run_collection,
)
from glutewake.ingest.peripheral import FaultPlan, VirtualPeripheral
from glutewake.store.datadir import DataDir
from glutewake.store.spool import concat_records, list_segments, read_segment, spool_folders

# These tests run in CI's own BLE step (.ci/run). The rare "link stall" they used to hit was a
# virtual peripheral whose stop never returned (see tests/ingest/test_collector_stop.py); the
# 60 s timeout stays as a guard, so that a regression fails instead of hanging the suite.
pytestmark = [pytest.mark.ble_link, pytest.mark.timeout(60)]


polar = pytest.importorskip("glutewake.devices.polar_pmd")
gw_open = pytest.importorskip("glutewake.devices.glutewake_open")

SETTINGS = CollectorSettings(
    watchdog_s=1.0,
    backoff_min_s=0.1,
    backoff_max_s=0.4,
    scan_timeout_s=1.0,
    status_interval_s=0.5,
    qc_interval_s=0.5,
    journal_fsync_s=0.2,
)


async def run_device(
    tmp_path: Path,
    profile: DeviceProfile,
    device: VirtualDevice,
    config: dict[str, Any],
    faults: FaultPlan,
    duration_s: float,
    central_mtu: int = 247,
) -> tuple[VirtualPeripheral, DeviceSupervisor, Any]:
    data = DataDir(tmp_path / "data")
    sups: list[DeviceSupervisor] = []
    async with BumbleRadio(central_mtu=central_mtu) as radio:
        per = VirtualPeripheral(
            radio,
            profile,
            device,
            config=config,
            faults=faults,
        )
        await per.start()
        code = await run_collection(
            data,
            "P07",
            [DeviceSpec(per.address, profile, config)],
            settings=SETTINGS,
            backends=Backends(BumbleBleakScanner, BumbleBleakClient),
            duration_s=duration_s,
            on_supervisors=sups.extend,
        )
    assert code == EXIT_OK
    [folder] = spool_folders(data.spool)
    records = concat_records(read_segment(s)[1] for s in list_segments(folder))
    data_uuids = set(profile.notify_uuids) - {w.char_uuid for w in profile.start_writes(config)}
    spooled = [
        p
        for p, u, k in zip(records.payload, records.char_uuid, records.kind, strict=True)
        if k == RecordKind.NOTIFY and u in data_uuids
    ]
    assert Counter(spooled) == Counter(s.payload for s in per.sent)  # each sent frame once
    return per, sups[0], records


def ramp_signal(
    stream: str,
    start_us: int,
    n: int,
    fs_hz: float,
    step: float,
    channels: tuple[str, ...],
    unit: str,
) -> StreamSamples:
    """Channel 0 is a ramp of one quantisation step per sample: a sample's value is its index."""
    k = np.arange(n)
    t_us = start_us + np.round(k * 1e6 / fs_hz).astype(np.int64)
    cols = [k * step] + [
        0.25 * np.sin(2 * np.pi * 0.7 * k / fs_hz + c) for c in range(1, len(channels))
    ]
    return StreamSamples(stream, t_us, np.column_stack(cols), channels, unit, fs_hz, k)


def match_truth(
    decoded: StreamSamples, truth: StreamSamples, step: float, tol: float, clock_tol_us: int
) -> np.ndarray:
    """True sample index of every decoded sample (from the ramp); checks values, times, once."""
    idx = np.rint(decoded.values[:, 0] / step).astype(np.int64)
    assert np.unique(idx).size == idx.size, "a sample appears twice"
    assert idx.min() >= 0 and idx.max() < len(truth)
    np.testing.assert_allclose(decoded.values, truth.values[idx], atol=tol)
    assert np.abs(decoded.t_us - truth.t_us[idx]).max() <= clock_tol_us
    return idx


def runs(idx: np.ndarray) -> list[tuple[int, int]]:
    breaks = np.flatnonzero(np.diff(idx) != 1)
    starts = np.r_[0, breaks + 1]
    ends = np.r_[breaks, idx.size - 1]
    return [(int(idx[a]), int(idx[b])) for a, b in zip(starts, ends, strict=True)]


async def test_polar_verity_sense_through_link_loss(tmp_path: Path) -> None:
    config = {"acc": {"sample_rate_hz": 52, "range_g": 8, "resolution_bits": 16}}
    truth = ramp_signal("acc", utc_now_us(), 1560, 52.0, 0.001, ("x", "y", "z"), "g")
    device = polar.PolarVirtualDevice(truth, clock_offset_us=123_456, clock_drift_ppm=20.0)
    unreachable_s = 0.5
    # MTU 79 (the profile's minimum for ACC): ~0.4 s frames keep the test short
    per, sup, records = await run_device(
        tmp_path,
        polar.PROFILE,
        device,
        config,
        FaultPlan(link_losses=((1.6, unreachable_s),), dup_p=0.25, seed=2),
        duration_s=4.0,
        central_mtu=79,
    )
    res = polar.PROFILE.decode_records(records, config)
    assert res.errors == []
    n_dup = sum(s.duplicate for s in per.sent)
    assert res.qc["acc"]["duplicates"] == n_dup  # duplicated frames are dropped, and counted
    assert sup.live_qc is not None and sup.live_qc.duplicates == n_dup
    acc = res.streams["acc"]
    idx = match_truth(acc, truth, 0.001, tol=0.0006, clock_tol_us=150_000)  # ACC is sent in mG
    # every sample the sensor sent while connected: one contiguous run per connection
    connections = runs(idx)
    assert len(connections) == 2
    (_, end1), (start2, _) = connections
    down_us = next(t for t, e, _ in per.events if e == "disconnect")
    up_us = [t for t, e, _ in per.events if e == "connect"][1]
    hole_s = (start2 - end1) / 52.0
    assert (up_us - down_us) / 1e6 - 0.1 <= hole_s <= (up_us - down_us) / 1e6 + 1.0
    assert hole_s >= unreachable_s
    assert records.kind.tolist().count(RecordKind.CONNECT) == 2
    assert sup.status.battery_pct == 90  # served by the Polar model


async def test_glutewake_open_emg_with_device_stop_and_faults(tmp_path: Path) -> None:
    config = {"emg": {"fs_hz": 1000, "channels": ["glute_max_r", "biceps_femoris_r"]}}
    truth = ramp_signal(
        "emg", utc_now_us(), 30_000, 1000.0, 0.5, ("glute_max_r", "biceps_femoris_r"), "uV"
    )
    device = GlutewakeOpenVirtualDevice(truth)
    # duplicates are left out here: see test_glutewake_open_duplicated_start_packet below
    faults = FaultPlan(stops=(1.0,), drop_p=0.08, seed=5)
    per, sup, records = await run_device(
        tmp_path, gw_open.PROFILE, device, config, faults, duration_s=4.0
    )
    res = gw_open.PROFILE.decode_records(records, config)
    emg = res.streams["emg"]
    idx = match_truth(emg, truth, 0.5, tol=0.26, clock_tol_us=50_000)  # 0.5 uV per LSB
    assert sup.status.stream_restarts >= 1  # restarted after the device stopped on its own
    qc = res.qc["emg"]
    assert sup.live_qc is not None and sup.live_qc.packets_lost <= qc["packets_lost"] + 1
    # a lost packet shows in the sequence numbers when packets of the same run arrive before
    # and after it (the decoder cannot see the loss of a run's first or last packet)
    boundaries = sorted(t for t, e, _ in per.events if e in ("stop", "disconnect", "connect"))
    sent_t = np.array([s.t_us for s in per.sent])

    def detectable(t_us: int) -> bool:
        prv = max((b for b in boundaries if b < t_us), default=0)
        nxt = min((b for b in boundaries if b > t_us), default=np.iinfo(np.int64).max)
        return bool(
            ((sent_t > t_us) & (sent_t < nxt)).any() and ((sent_t < t_us) & (sent_t > prv)).any()
        )

    n_detectable = sum(detectable(d.t_us) for d in per.dropped)
    assert n_detectable > 0 and qc["packets_lost"] >= n_detectable
    # the configuration characteristic was read before any data (decoders rely on it)
    kinds = list(records.kind)
    first_data = kinds.index(RecordKind.NOTIFY)
    reads = [
        u
        for u, k in zip(records.char_uuid[:first_data], kinds[:first_data], strict=True)
        if k == RecordKind.READ
    ]
    assert gw_open.CONFIG_UUID in reads
    assert len(runs(idx)) >= 2  # the device stop left a hole


def test_glutewake_open_duplicated_start_packet_decodes_once() -> None:
    config = {"emg": {"fs_hz": 1000, "channels": ["a", "b"]}}
    truth = ramp_signal("emg", 1_800_000_000_000_000, 2000, 1000.0, 0.5, ("a", "b"), "uV")
    device = GlutewakeOpenVirtualDevice(truth)
    [(cmd_uuid, start)] = [(w.char_uuid, w.data) for w in gw_open.PROFILE.start_writes(config)]
    t0 = int(truth.t_us[0])
    rows: list[tuple[int, int, str, bytes]] = [
        (t0, RecordKind.READ, gw_open.CONFIG_UUID, device.read_value(gw_open.CONFIG_UUID)),
        (t0, RecordKind.WRITE, cmd_uuid, start),
    ]
    rows += [(t0, RecordKind.NOTIFY, u, p) for u, p in device.handle_write(cmd_uuid, start, t0)]
    packets = device.poll(t0 + 500_000)
    packets.insert(1, packets[0])  # the link layer delivers the first packet twice
    rows += [(t0 + 500_000, RecordKind.NOTIFY, u, p) for u, p in packets]
    records = RawRecords(
        np.array([r[0] for r in rows], np.int64),
        np.array([r[1] for r in rows], np.int8),
        [r[2] for r in rows],
        [r[3] for r in rows],
        np.ones(len(rows), np.int64),
    )
    emg = gw_open.PROFILE.decode_records(records, config).streams["emg"]
    idx = np.rint(emg.values[:, 0] / 0.5).astype(np.int64)
    assert np.unique(idx).size == idx.size


# ------------------------------------------------------------------------------------------------
# the vendors' GATT tables: the virtual devices serve what the vendors define (their own
# constants, not the profiles'), so a profile that disagrees with the vendor cannot collect
# ------------------------------------------------------------------------------------------------


class _PmdWithWrongUuids(polar.PolarPmdProfile):  # type: ignore[name-defined,misc]
    """The profile as it was before issue 14: a UUID tail no Polar device uses."""

    service_uuids = ("fb005c80-02e7-f387-1cad-8acc2d9d7b11",)
    notify_uuids = (
        "fb005c81-02e7-f387-1cad-8acc2d9d7b11",
        "fb005c82-02e7-f387-1cad-8acc2d9d7b11",
    )


async def test_a_profile_with_other_uuids_than_the_vendor_finds_nothing(tmp_path: Path) -> None:
    truth = ramp_signal("acc", utc_now_us(), 600, 52.0, 0.001, ("x", "y", "z"), "g")
    profile = _PmdWithWrongUuids()
    data = DataDir(tmp_path / "data")
    sups: list[DeviceSupervisor] = []
    async with BumbleRadio() as radio:
        per = VirtualPeripheral(radio, profile, polar.PolarVirtualDevice(truth))
        await per.start()
        await run_collection(
            data,
            "P07",
            [DeviceSpec(per.address, profile, {"acc": {"sample_rate_hz": 52}})],
            settings=SETTINGS,
            backends=Backends(BumbleBleakScanner, BumbleBleakClient),
            duration_s=2.0,
            on_supervisors=sups.extend,
        )
    assert per.sent == [] and sups[0].status.notifications == 0
    assert "no characteristic fb005c81-02e7-f387-1cad-8acc2d9d7b11" in str(
        sups[0].status.last_error
    )


def test_scan_and_collect_simulate_polar_with_the_sdk_uuids(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from glutewake.cli import main
    from glutewake.store.bookkeeping import add_participant

    assert main(["scan", "--simulate", "polar-pmd", "--timeout", "0.5"]) == 0
    assert "polar-pmd" in capsys.readouterr().out
    data = tmp_path / "data"
    add_participant(DataDir(data), "P01", "Europe/Berlin")
    code = main(
        ["collect", "--data", str(data), "--participant", "P01", "--simulate", "polar-pmd",
         "--duration", "4", "-q"]
    )  # fmt: skip
    assert code == 0
    [folder] = spool_folders(DataDir(data).spool)
    records = concat_records(read_segment(s)[1] for s in list_segments(folder))
    # polar-ble-sdk BlePMDClient.kt PMD_CP / PMD_DATA
    sdk_cp, sdk_data = (
        "fb005c81-02e7-f387-1cad-8acd2d8df0c8",
        "fb005c82-02e7-f387-1cad-8acd2d8df0c8",
    )
    kinds = Counter((int(k), u) for k, u in zip(records.kind, records.char_uuid, strict=True) if u)
    assert (
        kinds[(int(RecordKind.WRITE), sdk_cp)] >= 1 and kinds[(int(RecordKind.READ), sdk_cp)] >= 1
    )
    assert kinds[(int(RecordKind.NOTIFY), sdk_data)] >= 2  # ~1.3 s of ACC per frame at MTU 247
    res = polar.PROFILE.decode_records(records, {"acc": {"sample_rate_hz": 52, "range_g": 8}})
    assert res.errors == [] and len(res.streams["acc"]) > 100


async def test_ganglion_firmware3_is_told_by_its_software_revision(tmp_path: Path) -> None:
    """The collector reads and spools the Device Information revision strings; a firmware-3
    board then decodes with no firmware in the configuration."""
    from glutewake.devices import ganglion

    config = {"emg": {"channels": ["a", "b", "c", "d"]}}
    truth = ramp_signal("emg", utc_now_us(), 1200, 200.0, 2.0, ("a", "b", "c", "d"), "uV")
    device = ganglion.GanglionVirtualDevice(truth, firmware="3.0.2")
    _per, sup, records = await run_device(
        tmp_path, ganglion.PROFILE, device, config, FaultPlan(), duration_s=3.0
    )
    reads = {
        u: bytes(p)
        for u, p, k in zip(records.char_uuid, records.payload, records.kind, strict=True)
        if k == RecordKind.READ
    }
    assert reads[ganglion.SOFTWARE_REVISION_UUID] == b"3.0.2"
    assert ganglion.FIRMWARE_REVISION_UUID not in reads  # the board serves no 0x2A26 here
    assert sup.status.device_info["software"] == "3.0.2"
    res = ganglion.PROFILE.decode_records(records, config)
    assert res.errors == [] and res.qc["emg"]["firmware_from"] == "software revision"
    # 19-bit most significant bits: values are floor(count / 64) * 64 counts
    match_truth(res.streams["emg"], truth, 2.0, tol=64 * ganglion.UV_PER_COUNT, clock_tol_us=60_000)
