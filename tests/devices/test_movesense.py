"""Movesense GATT sensor-data protocol: commands, payloads, two-part notifications, replay."""

from __future__ import annotations

import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from glutewake.devices import get_profile, movesense
from glutewake.devices.base import DecodeError, RawRecords, RecordKind, StreamSamples
from glutewake.devices.errors import (
    PayloadLengthError,
    TruncatedPacketError,
    UnknownMeasurementTypeError,
)

from ._sim import Spool, run_session

T0 = 1_780_000_000_000_000
N = movesense.NOTIFY_UUID


def test_commands_and_registry() -> None:
    assert get_profile("movesense") is movesense.PROFILE
    w = movesense.PROFILE.start_writes({"imu9": {"sample_rate_hz": 104}})
    assert w[0].char_uuid == movesense.WRITE_UUID
    assert w[0].data == b"\x01\x69/Meas/IMU9/104"
    assert movesense.PROFILE.stop_writes({"imu9": {}})[0].data == b"\x02\x69"
    assert (
        movesense.PROFILE.start_writes({"acc": {"sample_rate_hz": 13}})[0].data
        == b"\x01\x61/Meas/Acc/13"
    )
    with pytest.raises(ValueError, match="sample rate"):
        movesense.PROFILE.start_writes({"acc": {"sample_rate_hz": 50}})
    with pytest.raises(ValueError, match="unknown measurement"):
        movesense.PROFILE.start_writes({"ecg": {}})


def test_acc_payload_layout() -> None:
    # timestamp 1000 ms, two samples of m/s²
    payload = struct.pack("<I6f", 1000, 0.0, 0.0, 9.80665, 1.0, -2.0, 3.5)
    md = movesense.decode_payload(payload, "acc")
    assert md.timestamp_ms == 1000 and len(md) == 2
    assert md.samples["acc"].tolist() == [[0.0, 0.0, np.float32(9.80665)], [1.0, -2.0, 3.5]]


def test_imu9_two_part_notification_round_trip() -> None:
    rng = np.random.default_rng(1)
    samples = {s: rng.normal(0, 5, (8, 3)).astype(np.float32) for s in ("acc", "gyro", "mag")}
    pkts = movesense.encode_notifications(0x69, "imu9", 123_456, samples, att_mtu=185)
    assert [p[0] for p in pkts] == [movesense.RESP_DATA, movesense.RESP_DATA_PART2]
    assert all(len(p) <= 185 - 3 for p in pkts)
    md = movesense.decode_payload(pkts[0][2:] + pkts[1][2:], "imu9")
    for s in samples:
        assert np.array_equal(md.samples[s], samples[s])
    # a big MTU needs one notification
    assert len(movesense.encode_notifications(0x69, "imu9", 0, samples, att_mtu=512)) == 1


@settings(max_examples=100, deadline=None)
@given(
    m=st.sampled_from(["acc", "imu6", "imu9"]),
    n=st.integers(1, 8),
    ts=st.integers(0, 2**32 - 1),
    data=st.data(),
)
def test_payload_round_trip(m: str, n: int, ts: int, data: st.DataObject) -> None:
    f32 = st.floats(width=32, allow_nan=False, allow_infinity=False)
    samples = {
        s: np.array(
            data.draw(st.lists(f32, min_size=3 * n, max_size=3 * n)), dtype=np.float32
        ).reshape(n, 3)
        for s in movesense.MEASUREMENTS[m][1]
    }
    pkts = movesense.encode_notifications(0x10, m, ts, samples, att_mtu=247)
    md = movesense.decode_payload(b"".join(p[2:] for p in pkts), m)
    assert md.timestamp_ms == ts
    for s, v in samples.items():
        assert np.array_equal(md.samples[s], v)


@pytest.mark.parametrize(
    ("payload", "m", "exc", "words"),
    [
        (b"\x00\x00", "acc", TruncatedPacketError, "timestamp"),
        (struct.pack("<I4f", 0, 1, 2, 3, 4), "acc", PayloadLengthError, "whole number"),
        (
            struct.pack("<I9f", 0, 1, 2, 3, 4, 5, 6, 7, 8, 9),
            "imu6",
            PayloadLengthError,
            "whole number",
        ),
        (struct.pack("<I3f", 0, 1, 2, 3), "ecg", UnknownMeasurementTypeError, "unknown"),
    ],
)
def test_bad_payloads(payload: bytes, m: str, exc: type, words: str) -> None:
    with pytest.raises(exc, match=words) as info:
        movesense.decode_payload(payload, m)
    assert isinstance(info.value, DecodeError) and str(info.value).startswith("movesense ")


def _signals(duration_s: float, fs: int) -> dict[str, StreamSamples]:
    n = int(duration_s * fs)
    tt = np.arange(n) / fs
    t = T0 + np.rint(tt * 1e6).astype(np.int64)
    out = {}
    for k, (s, u) in enumerate((("acc", "g"), ("gyro", "deg/s"), ("mag", "gauss"))):
        v = np.stack([np.sin(0.3 * tt + k), np.cos(0.2 * tt), 0.5 * np.sin(2 * tt)], axis=1) * (
            1 + 20 * (s == "gyro")
        )
        out[s] = StreamSamples(s, t, v, ("x", "y", "z"), u, fs, np.arange(n))
    return out


def test_replay_imu9_two_part_virtual_sensor() -> None:
    sig = _signals(120, 104)
    dev = movesense.MovesenseVirtualDevice(sig, clock_drift_ppm=30.0, att_mtu=185)
    cfg = {"imu9": {"sample_rate_hz": 104}}
    writes = [(w.char_uuid, w.data) for w in movesense.PROFILE.start_writes(cfg)]
    sp = run_session(dev, writes, T0 - 200_000, T0 + 120_000_000, poll_us=10_000, att_mtu=185)
    res = movesense.PROFILE.decode_records(sp.records(), cfg)
    assert res.errors == [] and res.gaps == []
    for s in ("acc", "gyro", "mag"):
        out = res.streams[s]
        n = len(out)
        assert n > 0.98 * len(sig[s])
        np.testing.assert_allclose(out.values, sig[s].values[:n], rtol=1e-6, atol=1e-6)
        err = out.t_us - sig[s].t_us[:n]
        assert 0 < np.median(err) < 30_000 and np.ptp(err) < 4_000  # ms timestamps + clock model
    # 2 min of ms-resolution timestamps pin drift to ~+-20 ppm; the time error above is what counts
    assert res.qc["acc"]["clock_drift_ppm"] == pytest.approx(-30.0, abs=25.0)


def test_lost_second_part_and_orphan_part2_are_errors() -> None:
    sig = _signals(5, 104)
    dev = movesense.MovesenseVirtualDevice(sig, att_mtu=185)
    cfg = {"imu9": {"sample_rate_hz": 104}}
    writes = [(w.char_uuid, w.data) for w in movesense.PROFILE.start_writes(cfg)]
    recs = run_session(
        dev, writes, T0 - 200_000, T0 + 5_000_000, poll_us=10_000, att_mtu=185
    ).records()
    parts = [
        i
        for i, p in enumerate(recs.payload)
        if recs.char_uuid[i] == N and p[0] == movesense.RESP_DATA_PART2
    ]
    firsts = [
        i
        for i, p in enumerate(recs.payload)
        if recs.char_uuid[i] == N and p[0] == movesense.RESP_DATA
    ]
    drop = {parts[3], firsts[10]}
    keep = [i for i in range(len(recs)) if i not in drop]
    r2 = RawRecords(
        recs.t_us[keep],
        recs.kind[keep],
        [recs.char_uuid[i] for i in keep],
        [recs.payload[i] for i in keep],
        recs.conn_id[keep],
    )
    res = movesense.PROFILE.decode_records(r2, cfg)
    msgs = sorted(e.error for e in res.errors)
    assert len(msgs) == 2
    assert any("first part without its second part" in m for m in msgs)
    assert any("second part without a first part" in m for m in msgs)
    assert [g.reason for g in res.gaps if g.stream == "acc"] == ["packet_loss", "packet_loss"]
    assert res.qc["acc"]["packets_lost"] == 2


def test_timestamp_wrap_and_command_result() -> None:
    sp = Spool()
    sp.add(T0, RecordKind.CONNECT, "", (185).to_bytes(2, "little"), 0)
    sp.add(T0 + 1, RecordKind.NOTIFY, N, movesense.encode_command_result(0x61, 200), 0)
    for k in range(4):
        ts = (2**32 - 2 * 77 + k * 77) & 0xFFFFFFFF  # crosses the u32 wrap
        (pkt,) = movesense.encode_notifications(
            0x61, "acc", ts, {"acc": np.full((1, 3), float(k))}, att_mtu=185
        )
        sp.add(T0 + 10_000 + k * 77_000, RecordKind.NOTIFY, N, pkt, 0)
    res = movesense.PROFILE.decode_records(sp.records(), {"acc": {"sample_rate_hz": 13}})
    s = res.streams["acc"]
    assert np.all(np.diff(s.t_us) > 0) and res.gaps == []
    sp.add(T0 + 500_000, RecordKind.NOTIFY, N, movesense.encode_command_result(0x61, 404), 0)
    res = movesense.PROFILE.decode_records(sp.records(), {"acc": {"sample_rate_hz": 13}})
    assert res.qc["command"]["errors"] == ["ref 97: status 404"]
