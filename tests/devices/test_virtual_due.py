"""Every VirtualDevice says when its next notification is due, and that is exactly when it comes;
the offline spooler (bulk or stepped) writes exactly what stepping through a SpoolWriter writes."""

from __future__ import annotations

import struct
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from glutewake.devices import ganglion, glutewake_open, metawear, movesense, polar_pmd
from glutewake.devices.base import DeviceProfile, RecordKind, StreamSamples, VirtualDevice
from glutewake.devices.open_virtual import GlutewakeOpenVirtualDevice
from glutewake.simulate.spooling import (
    LinkModel,
    Outage,
    _connected_spans,
    _SegmentWriter,
    spool_virtual_session,
)
from glutewake.store.spool import SpoolInfo, SpoolWriter, list_segments, read_segment

T0 = 1_780_000_000_000_000


def _sig(stream: str, fs: float, ch: int, seconds: float, scale: float) -> StreamSamples:
    n = int(fs * seconds)
    rng = np.random.default_rng(3)
    t = T0 + np.rint(np.arange(n) * 1e6 / fs).astype(np.int64)
    v = np.cumsum(rng.normal(0, scale, (n, ch)), axis=0) * 0.05 + scale
    names = tuple(f"c{i}" for i in range(ch)) if ch != 3 else ("x", "y", "z")
    return StreamSamples(stream, t, v, names, "", fs, np.arange(n))


def _polar() -> tuple[VirtualDevice, list[tuple[str, bytes]]]:
    dev = polar_pmd.PolarVirtualDevice(_sig("acc", 52, 3, 150, 0.2))
    w = polar_pmd.PROFILE.start_writes({"acc": {"sample_rate_hz": 52, "range_g": 8}})
    return dev, [(x.char_uuid, x.data) for x in w]


def _open() -> tuple[VirtualDevice, list[tuple[str, bytes]]]:
    dev = GlutewakeOpenVirtualDevice(
        _sig("emg", 1000, 2, 5, 50.0), _sig("acc", 50, 3, 5, 0.5)
    )
    w = glutewake_open.PROFILE.start_writes(
        {"emg": {"fs_hz": 1000, "channels": 2}, "acc": {"fs_hz": 50}}
    )
    return dev, [(x.char_uuid, x.data) for x in w]


def _metawear() -> tuple[VirtualDevice, list[tuple[str, bytes]]]:
    dev = metawear.MetaWearVirtualDevice(_sig("acc", 100, 3, 10, 0.5))
    w = metawear.PROFILE.start_writes({"acc": {"sample_rate_hz": 100, "range_g": 8}})
    return dev, [(x.char_uuid, x.data) for x in w]


def _movesense() -> tuple[VirtualDevice, list[tuple[str, bytes]]]:
    sig = {s: _sig(s, 104, 3, 10, 1.0) for s in ("acc", "gyro", "mag")}
    dev = movesense.MovesenseVirtualDevice(sig)
    w = movesense.PROFILE.start_writes({"imu9": {"sample_rate_hz": 104}})
    return dev, [(x.char_uuid, x.data) for x in w]


def _ganglion() -> tuple[VirtualDevice, list[tuple[str, bytes]]]:
    dev = ganglion.GanglionVirtualDevice(_sig("emg", 200, 4, 10, 30.0))
    return dev, [(x.char_uuid, x.data) for x in ganglion.PROFILE.start_writes({"emg": {}})]


@pytest.mark.parametrize("make", [_polar, _open, _metawear, _movesense, _ganglion])
def test_next_due_is_exact_and_stepping_matches_fine_polling(
    make: Callable[[], tuple[VirtualDevice, list[tuple[str, bytes]]]],
) -> None:
    dev, writes = make()
    assert dev.next_due_us() is None  # nothing streaming yet
    for u, d in writes:
        dev.handle_write(u, d, T0)
    stepped: list[bytes] = []
    for _ in range(40):
        due = dev.next_due_us()
        assert due is not None
        assert dev.poll(due - 1) == []
        got = dev.poll(due)
        assert got
        stepped += [p for _, p in got]
    end = dev.next_due_us()
    assert end is not None
    fine_dev, _ = make()
    for u, d in writes:
        fine_dev.handle_write(u, d, T0)
    fine: list[bytes] = []
    for now in range(T0, end, 3_000):
        fine += [p for _, p in fine_dev.poll(now)]
    assert fine == stepped
    dev.link_lost(end)
    assert dev.next_due_us() is None


def _reference_spool(
    folder: Path,
    info: SpoolInfo,
    profile: DeviceProfile,
    device: VirtualDevice,
    *,
    start_us: int,
    end_us: int,
    outages: list[Outage],
    rng: np.random.Generator,
) -> None:
    """The spooler as it was before its bulk path: poll stepping through a SpoolWriter."""
    link = LinkModel()
    spans = _connected_spans(start_us, end_us, outages)
    now = [spans[0][0] / 1e6]
    writer = SpoolWriter(folder, info, journal_fsync_s=float("inf"), clock=lambda: now[0])
    last = [start_us]
    conn = 1

    def put(t: int, kind: int, uuid: str, payload: bytes) -> None:
        last[0] = max(t, last[0])
        now[0] = last[0] / 1e6
        writer.append(last[0], kind, uuid, payload, conn)

    for a, b in spans:
        put(a, RecordKind.CONNECT, "", struct.pack("<H", link.mtu))
        t = a + 20_000
        for w in profile.start_writes(info.config):
            put(t, RecordKind.WRITE, w.char_uuid, w.data)
            for u, ans in device.handle_write(w.char_uuid, w.data, t):
                put(t + link.base_latency_us, RecordKind.NOTIFY, u, ans)
            t += 30_000
        while (due := device.next_due_us()) is not None and due < b:
            lat = link.base_latency_us + int(rng.exponential(link.mean_extra_latency_us))
            for u, p in device.poll(due):
                put(due + lat, RecordKind.NOTIFY, u, p)
        if b >= end_us:
            for w in profile.stop_writes(info.config):
                put(b, RecordKind.WRITE, w.char_uuid, w.data)
                device.handle_write(w.char_uuid, w.data, b)
            put(b + 50_000, RecordKind.DISCONNECT, "", b"host_stop")
        else:
            device.link_lost(b)
            put(b + 2_000_000, RecordKind.DISCONNECT, "", b"supervision timeout")
        conn += 1
    writer.close()


def _segments(folder: Path) -> list[tuple]:
    out = []
    for path in list_segments(folder):
        info, rec, seq = read_segment(path)
        out.append(
            (
                path.name,
                info,
                rec.t_us.tolist(),
                rec.kind.tolist(),
                rec.char_uuid,
                rec.payload,
                rec.conn_id.tolist(),
                seq.tolist(),
            )
        )
    return out


@pytest.mark.parametrize("bulk", [True, False])
def test_spooler_writes_what_stepping_through_the_spool_writer_writes(
    tmp_path: Path, bulk: bool
) -> None:
    """Bulk rendering (Polar) and stepping (open board) give byte-identical spool segments."""
    if bulk:
        hours = 2.3
        cfg: dict = {"acc": {"sample_rate_hz": 52, "range_g": 8, "resolution_bits": 16}}
        profile: DeviceProfile = polar_pmd.PROFILE

        def make() -> VirtualDevice:
            sig = _sig("acc", 52, 3, hours * 3600 + 5, 0.2)
            return polar_pmd.PolarVirtualDevice(sig, clock_drift_ppm=-12.0)
    else:
        hours = 0.01
        cfg = {"emg": {"fs_hz": 1000, "channels": 2}, "acc": {"fs_hz": 50}}
        profile = glutewake_open.PROFILE

        def make() -> VirtualDevice:
            return GlutewakeOpenVirtualDevice(
                _sig("emg", 1000, 2, 40, 50.0), _sig("acc", 50, 3, 40, 0.5)
            )

    end = T0 + int(hours * 3600e6)
    outages = [Outage(T0 + int(hours * 1200e6), T0 + int(hours * 1500e6))]
    info = SpoolInfo("P01", "dev", profile.name, cfg, {})
    spool_virtual_session(
        tmp_path / "new", info, profile, make(), start_us=T0, end_us=end, first_conn_id=1,
        rng=np.random.default_rng(4), outages=outages,
    )  # fmt: skip
    _reference_spool(
        tmp_path / "ref", info, profile, make(), start_us=T0, end_us=end, outages=outages,
        rng=np.random.default_rng(4),
    )  # fmt: skip
    got, want = _segments(tmp_path / "new"), _segments(tmp_path / "ref")
    assert got == want
    assert len(want) >= (3 if bulk else 1) and sum(len(s[2]) for s in want) > 100


def test_bulk_segment_cuts_match_the_spool_writer_by_time_and_bytes(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    t = (T0 + np.cumsum(rng.integers(0, 900_000_000, 500))).tolist()
    payloads = [bytes(int(k)) for k in rng.integers(0, 300, 500)]
    info = SpoolInfo("P01", "dev", "x", {}, {})
    now = [(t[0] - 5) / 1e6]
    ref = SpoolWriter(
        tmp_path / "ref",
        info,
        segment_bytes=5000,
        journal_fsync_s=float("inf"),
        clock=lambda: now[0],
    )
    for a, p in zip(t, payloads, strict=True):
        now[0] = a / 1e6
        ref.append(a, RecordKind.NOTIFY, "u", p, 1)
    ref.close()
    bulk = _SegmentWriter(tmp_path / "bulk", info, started_us=t[0] - 5)
    bulk.segment_bytes = 5000
    bulk.extend(t[:200], RecordKind.NOTIFY, ["u"] * 200, payloads[:200], 1)
    bulk.append(t[200], RecordKind.NOTIFY, "u", payloads[200], 1)
    bulk.extend(t[201:], RecordKind.NOTIFY, ["u"] * 299, payloads[201:], 1)
    bulk.close()
    got, want = _segments(tmp_path / "bulk"), _segments(tmp_path / "ref")
    assert got == want
    assert len(want) > 20  # cut by size and by time
