"""Movesense GATT sensor-data protocol: commands, payloads, two-part notifications, replay."""

from __future__ import annotations

import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from glutewake.devices import get_profile, movesense
from glutewake.devices import movesense_virtual as mv
from glutewake.devices.base import DecodeError, RawRecords, RecordKind, StreamSamples
from glutewake.devices.errors import (
    PayloadLengthError,
    SequenceError,
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
    # a reference of the user's choice (the vendor's clients use 99); 0 marks a free slot
    w99 = movesense.PROFILE.start_writes({"acc": {"sample_rate_hz": 52, "reference": 99}})
    assert w99[0].data == b"\x01\x63/Meas/Acc/52"
    with pytest.raises(ValueError, match=r"1\.\.255"):
        movesense.PROFILE.start_writes({"acc": {"reference": 0}})
    with pytest.raises(ValueError, match="same reference"):
        movesense.PROFILE.start_writes({"acc": {"reference": 7}, "imu9": {"reference": 7}})
    # at most 150 payload bytes + 2 per notification, whatever the measurement
    assert movesense.PROFILE.required_mtu({"imu9": {"sample_rate_hz": 104}}) == 155
    assert movesense.PROFILE.required_mtu({"acc": {"sample_rate_hz": 13}}) == 155


def test_acc_payload_layout() -> None:
    # timestamp 1000 ms, two samples of m/s²
    payload = struct.pack("<I6f", 1000, 0.0, 0.0, 9.80665, 1.0, -2.0, 3.5)
    md = movesense.decode_payload(payload, "acc")
    assert md.timestamp_ms == 1000 and len(md) == 2
    assert md.samples["acc"].tolist() == [[0.0, 0.0, np.float32(9.80665)], [1.0, -2.0, 3.5]]


@pytest.mark.parametrize(
    ("m", "rows", "sizes"),
    [("acc", 8, [102]), ("imu6", 6, [150]), ("imu6", 7, [152, 24]), ("imu9", 8, [152, 144])],
)
def test_payloads_over_150_bytes_are_split_and_joined(m: str, rows: int, sizes: list[int]) -> None:
    rng = np.random.default_rng(1)
    samples = {
        s: rng.normal(0, 5, (rows, 3)).astype(np.float32) for s in movesense.MEASUREMENTS[m][1]
    }
    pkts = mv.notifications(0x30, samples, 123_456)
    assert [len(p) for p in pkts] == sizes
    assert [p[0] for p in pkts] == [movesense.RESP_DATA, movesense.RESP_DATA_PART2][: len(pkts)]
    recs = RawRecords(
        T0 + np.arange(len(pkts)) * 1000,
        np.full(len(pkts), int(RecordKind.NOTIFY), dtype=np.int8),
        [N] * len(pkts),
        pkts,
        np.zeros(len(pkts), dtype=np.int64),
    )
    res = movesense.PROFILE.decode_records(recs, {m: {"sample_rate_hz": 104, "reference": 0x30}})
    assert res.errors == []
    for s, v in samples.items():
        scale = {"acc": 1 / 9.80665, "gyro": 1.0, "mag": 0.01}[s]
        np.testing.assert_allclose(res.streams[s].values, v.astype(np.float64) * scale, rtol=1e-12)


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
    pkts = mv.notifications(0x10, samples, ts)
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
    dev = movesense.MovesenseVirtualDevice(sig, clock_drift_ppm=30.0)
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
    dev = movesense.MovesenseVirtualDevice(sig)
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
    assert any("second part without the part before it" in m for m in msgs)
    assert [g.reason for g in res.gaps if g.stream == "acc"] == ["packet_loss", "packet_loss"]
    assert res.qc["acc"]["packets_lost"] == 2


def test_timestamp_wrap_and_command_result() -> None:
    sp = Spool()
    sp.add(T0, RecordKind.CONNECT, "", (185).to_bytes(2, "little"), 0)
    sp.add(T0 + 1, RecordKind.NOTIFY, N, movesense.encode_command_result(0x61, 200), 0)
    sp.add(T0 + 2, RecordKind.NOTIFY, N, b"\x01\x7bHello", 0)  # the answer to HELLO 00 7B
    for k in range(4):
        ts = (2**32 - 2 * 77 + k * 77) & 0xFFFFFFFF  # crosses the u32 wrap
        (pkt,) = mv.notifications(0x61, {"acc": np.full((1, 3), float(k))}, ts)
        sp.add(T0 + 10_000 + k * 77_000, RecordKind.NOTIFY, N, pkt, 0)
    res = movesense.PROFILE.decode_records(sp.records(), {"acc": {"sample_rate_hz": 13}})
    s = res.streams["acc"]
    assert np.all(np.diff(s.t_us) > 0) and res.gaps == [] and "command" not in res.qc
    sp.add(T0 + 500_000, RecordKind.NOTIFY, N, movesense.encode_command_result(0x61, 404), 0)
    res = movesense.PROFILE.decode_records(sp.records(), {"acc": {"sample_rate_hz": 13}})
    assert res.qc["command"]["errors"] == ["ref 97: status 404"]


def _other_client_recording(ref: int, path: bytes, payloads: list[bytes]) -> RawRecords:
    """A recording made by another client: its own SUBSCRIBE, then the sensor's notifications."""
    sp = Spool()
    sp.add(T0, RecordKind.CONNECT, "", (247).to_bytes(2, "little"), 0)
    sp.add(T0 + 1000, RecordKind.WRITE, movesense.WRITE_UUID, bytes((1, ref)) + path, 0)
    for k, p in enumerate(payloads):
        sp.add(T0 + 50_000 + k * 20_000, RecordKind.NOTIFY, N, p, 0)
    return sp.records()


def test_recording_made_with_reference_99_decodes() -> None:
    # the vendor's web client subscribes 01 63 "/Meas/Acc/<rate>" (index.html), its python
    # client 01 63 "/Meas/IMU9/104"; the firmware echoes 0x63 in every notification
    rows = [np.full((4, 3), float(k)) for k in range(5)]
    pk = [p for k, r in enumerate(rows) for p in mv.notifications(99, {"acc": r}, 1000 + 77 * k)]
    recs = _other_client_recording(99, b"/Meas/Acc/52", pk)
    # the configuration names the measurement only; the reference comes from the SUBSCRIBE
    res = movesense.PROFILE.decode_records(recs, {"acc": {"sample_rate_hz": 52}})
    assert res.errors == [] and len(res.streams["acc"]) == 20
    np.testing.assert_allclose(res.streams["acc"].values[::4, 0], np.arange(5) / 9.80665)
    # the rate too: 104 Hz in the path wins over the configured 52
    recs104 = _other_client_recording(99, b"/Meas/Acc/104", pk)
    assert movesense.PROFILE.decode_records(recs104, {"acc": {}}).streams["acc"].fs_hz == 104
    # without the SUBSCRIBE in the records, the configured reference says it
    no_write = RawRecords(
        recs.t_us[2:], recs.kind[2:], recs.char_uuid[2:], recs.payload[2:], recs.conn_id[2:]
    )
    res2 = movesense.PROFILE.decode_records(no_write, {"acc": {"sample_rate_hz": 52}})
    assert "emg" not in res2.streams and "acc" not in res2.streams
    assert {e.error for e in res2.errors} == {"movesense data: no subscription with reference 99"}
    res3 = movesense.PROFILE.decode_records(
        no_write, {"acc": {"sample_rate_hz": 52, "reference": 99}}
    )
    assert res3.errors == [] and len(res3.streams["acc"]) == 20


def test_data_part3_is_joined_like_part2() -> None:
    # 26 acc rows: 4 + 312 bytes, split 150 / 150 / 16 (DATA, DATA_PART2, DATA_PART3 = 4,
    # GATTSensorDataClient.cpp: "continue with Part2 & 3")
    vals = np.arange(78, dtype=np.float32).reshape(26, 3)
    payload = struct.pack("<I", 5000) + vals.tobytes()
    parts = [
        b"\x02\x63" + payload[:150],
        b"\x03\x63" + payload[150:300],
        b"\x04\x63" + payload[300:],
    ]
    recs = _other_client_recording(99, b"/Meas/Acc/208", parts)
    res = movesense.PROFILE.decode_records(recs, {"acc": {}})
    assert res.errors == [] and len(res.streams["acc"]) == 26
    np.testing.assert_allclose(res.streams["acc"].values, vals.astype(float) / 9.80665, rtol=1e-12)
    # a third part without the two before it, or after a first part alone, is an error
    for bad in ([parts[2]], [parts[0], parts[2]]):
        r = movesense.PROFILE.decode_records(
            _other_client_recording(99, b"/Meas/Acc/208", bad), {"acc": {}}
        )
        assert any("third part without the part before it" in e.error for e in r.errors)
        assert "acc" not in r.streams
    assert issubclass(SequenceError, DecodeError)


def test_virtual_sensor_answers_as_the_sample_firmware() -> None:
    sig = _signals(2, 52)
    dev = movesense.MovesenseVirtualDevice(sig)
    w = movesense.WRITE_UUID
    # HELLO is answered, a successful SUBSCRIBE is not (GATTSensorDataClient.cpp)
    assert dev.handle_write(w, b"\x00\x7b", T0) == [(N, b"\x01\x7bHello")]
    assert dev.handle_write(w, b"\x01\x63/Meas/IMU9/52", T0) == []
    for ref in (1, 2, 3):
        assert dev.handle_write(w, bytes((1, ref)) + b"/Meas/Acc/52", T0) == []
    # a fifth subscription finds no free slot: 507
    assert dev.handle_write(w, b"\x01\x05/Meas/Acc/52", T0) == [(N, b"\x01\x05\x01\xfb")]
    assert dev.handle_write(w, b"\x02\x01", T0) == []  # unsubscribe: silent
    refs = {p[1] for _, p in dev.poll(T0 + 1_000_000)}
    assert refs == {0x63, 2, 3}
    assert movesense.decode_command_status(b"\x01\xfb") == 507


def test_signalling_nan_bytes_do_not_raise() -> None:
    # 0x7F800001 is a signalling NaN in float32; widening it sets the FP invalid flag, which
    # pytest's warnings-as-errors would turn into a crash of decode_records
    payload = struct.pack("<I", 10) + bytes.fromhex("0100807f") * 3
    recs = _other_client_recording(0x61, b"/Meas/Acc/13", [b"\x02\x61" + payload])
    res = movesense.PROFILE.decode_records(recs, {"acc": {}})
    assert res.errors == [] and np.isnan(res.streams["acc"].values).all()
