"""Polar PMD: vendor vectors, round trips, bad input, control point, and the demo path."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from glutewake.devices import get_profile, polar_pmd
from glutewake.devices._bits import unpack_fields, unpack_interleaved
from glutewake.devices.base import DecodeError, RecordKind, StreamSamples, VirtualDevice
from glutewake.devices.errors import (
    BitWidthError,
    BlockOverrunError,
    ControlPointError,
    MtuTruncatedError,
    PayloadLengthError,
    ReferenceSampleError,
    TimestampError,
    TruncatedPacketError,
    UnknownFrameTypeError,
    UnknownMeasurementTypeError,
)
from glutewake.devices.pmd_codec import (
    FramePlanner,
    encode_delta_frames,
    encode_delta_payloads,
    encode_frame,
    max_samples_fitting,
    min_frame_mtu,
)
from glutewake.devices.pmd_control import SettingType, Status

from ._sim import Spool, run_session, sine_acc

VECTORS = Path(__file__).resolve().parents[2] / ".." / "shared" / "vectors" / "polar_pmd.json"
CP = polar_pmd.PMD_CONTROL_POINT_UUID
DATA = polar_pmd.PMD_DATA_UUID
ACC_CFG = {"acc": {"sample_rate_hz": 52, "range_g": 8, "resolution_bits": 16}}
T0 = 1_780_000_000_000_000


def _vectors() -> dict[str, dict]:
    if not VECTORS.exists():
        pytest.skip("vendor vectors ../shared/vectors/polar_pmd.json not present")
    return {c["id"]: c for c in json.loads(VECTORS.read_text())}


def _prev(c: dict) -> int | None:
    return c["decoder_inputs"].get("previous_frame_timestamp_ns")


# ----------------------------------------------------------------------------- vendor vectors


def test_vector_acc_raw_type1_every_sample_and_timestamp() -> None:
    c = _vectors()["acc_raw_type1_52hz"]
    fr = polar_pmd.decode_frame(
        bytes.fromhex(c["frame_hex"]), sample_rate_hz=52, previous_timestamp_ns=0
    )
    assert fr.measurement_type == 2 and fr.frame_type == 0x01 and not fr.compressed
    assert fr.raw.tolist() == c["derived_independently"]["samples"]
    assert fr.timestamps_ns.tolist() == c["derived_independently"]["timestamps_ns"]
    assert len(fr) == c["vendor_asserted"]["n_samples"]
    assert fr.raw[0].tolist() == c["vendor_asserted"]["samples"]["0"]
    assert fr.raw[1].tolist() == c["vendor_asserted"]["samples"]["1"]
    assert int(fr.timestamps_ns[-1]) == c["vendor_asserted"]["timestamps_ns"]["last"]
    np.testing.assert_allclose(fr.values, fr.raw / 1000.0)  # mG -> g


def test_vector_acc_delta_type0_with_factor() -> None:
    c = _vectors()["acc_delta_type0_factor"]
    fr = polar_pmd.decode_frame(
        bytes.fromhex(c["frame_hex"]), factor=0.000244, previous_timestamp_ns=100
    )
    va = c["vendor_asserted"]
    assert fr.frame_type == 0x80 and len(fr) == va["n_samples"]
    assert fr.raw.tolist() == c["derived_independently"]["raw_counts"]
    assert fr.timestamps_ns.tolist() == c["derived_independently"]["timestamps_ns"]
    assert int(fr.timestamps_ns[0]) == va["timestamps_ns"]["first"]
    # vendor output rule: mG = trunc(float32(raw * factor * 1000))
    mg = np.trunc(np.float32(fr.raw) * np.float32(0.000244) * np.float32(1000)).astype(int)
    assert mg[0].tolist() == va["samples"]["0"] and mg[1].tolist() == va["samples"]["1"]
    assert np.trunc(fr.values * 1000)[:2].astype(int).tolist() == [
        va["samples"]["0"],
        va["samples"]["1"],
    ]
    assert np.abs(fr.values).max() * 1000 <= va["all_abs_values_le_mG"]


@pytest.mark.parametrize("case_id", ["acc_delta_type1_ts101", "acc_delta_type1_ts102"])
def test_vector_acc_delta_type1(case_id: str) -> None:
    c = _vectors()[case_id]
    fr = polar_pmd.decode_frame(bytes.fromhex(c["frame_hex"]), previous_timestamp_ns=100)
    va = c["vendor_asserted"]
    assert fr.raw.tolist() == [va["samples"]["0"], va["samples"]["1"]]
    assert fr.timestamps_ns.tolist() == [va["timestamps_ns"]["0"], va["timestamps_ns"]["1"]]
    np.testing.assert_allclose(fr.values, np.array([va["samples"]["0"], va["samples"]["1"]]) / 1000)


def test_vector_delta_payload_multiblock() -> None:
    c = _vectors()["delta_payload_multiblock_16bit"]
    payload = bytes.fromhex(c["payload_hex"])
    out = polar_pmd.decode_delta_payload(payload, channels=3, resolution_bits=16)
    assert out.shape == (c["vendor_asserted"]["n_samples"], 3)
    assert out.tolist() == c["derived_independently"]["samples"]
    # block headers as the vendor test asserts them
    pos, headers = 6, []
    while pos < len(payload):
        w, n = payload[pos], payload[pos + 1]
        headers.append([w, n])
        pos += 2 + (w * n * 3 + 7) // 8
    assert headers == c["vendor_asserted"]["block_headers"]


@pytest.mark.parametrize("case_id", ["delta_payload_32bit_realvector1", "delta_payload_32bit_b"])
def test_vector_delta_payload_32bit(case_id: str) -> None:
    c = _vectors()[case_id]
    out = polar_pmd.decode_delta_payload(
        bytes.fromhex(c["payload_hex"]), channels=3, resolution_bits=32
    )
    va = c["vendor_asserted"]
    assert out.shape == (va["n_samples"], 3)
    for row in ("0", "1"):
        assert out[int(row)].tolist() == [int(h, 16) for h in va["samples_bits"][row]]


def test_vector_gyro_type0_and_huge_timestamp() -> None:
    c = _vectors()["gyro_delta_type0"]
    fr = polar_pmd.decode_frame(bytes.fromhex(c["frame_hex"]), previous_timestamp_ns=100)
    va = c["vendor_asserted"]
    assert fr.measurement_type == 5
    assert fr.values.tolist() == [va["samples"]["0"], va["samples"]["1"]]
    assert int(fr.timestamps_ns[-1]) == va["timestamps_ns"]["last"] == 2**63 - 1


@pytest.mark.parametrize("factor", [1.0, 0.5])
def test_vector_gyro_type1_float(factor: float) -> None:
    c = _vectors()["gyro_delta_type1_float"]
    fr = polar_pmd.decode_frame(
        bytes.fromhex(c["frame_hex"]), previous_timestamp_ns=100, factor=factor
    )
    va = c["vendor_asserted"]
    for row in ("0", "1"):
        assert fr.raw[int(row)].tolist() == [int(h, 16) for h in va["samples_bits"][row]]
        expect = np.float32(va["samples_float32"][row]) * np.float32(factor)
        assert fr.values[int(row)].tolist() == expect.astype(np.float64).tolist()
    assert int(fr.timestamps_ns[1]) == va["timestamps_ns"]["1"]


def test_vector_mag() -> None:
    v = _vectors()
    c = v["mag_delta_type0"]
    fr = polar_pmd.decode_frame(bytes.fromhex(c["frame_hex"]), previous_timestamp_ns=100)
    assert fr.values.tolist() == [
        c["vendor_asserted"]["samples"]["0"],
        c["vendor_asserted"]["samples"]["1"],
    ]
    assert int(fr.timestamps_ns[1]) == 2_000_000_000
    c = v["mag_delta_type1_milligauss_status"]
    fr = polar_pmd.decode_frame(bytes.fromhex(c["frame_hex"]), previous_timestamp_ns=100)
    va = c["vendor_asserted"]
    assert fr.raw.shape == (2, 4)
    np.testing.assert_allclose(
        fr.values[:, :3], [va["samples_gauss"]["0"], va["samples_gauss"]["1"]], atol=1e-5
    )
    assert fr.values[:, 3].tolist() == [
        va["calibration_status_id"]["0"],
        va["calibration_status_id"]["1"],
    ]


def test_vector_settings_and_control_point() -> None:
    v = _vectors()
    c = v["settings_response_acc_like"]
    s = polar_pmd.parse_settings(bytes.fromhex(c["payload_hex"]))
    for name, vals in c["vendor_asserted"].items():
        assert s[SettingType[name]] == vals
    assert polar_pmd.encode_settings(s) == bytes.fromhex(c["payload_hex"])
    for cid in ("cp_response_success", "cp_response_error"):
        c = v[cid]
        r = polar_pmd.parse_notification(bytes.fromhex(c["payload_hex"]))
        va = c["vendor_asserted"]
        assert isinstance(r, polar_pmd.CpResponse)
        assert (r.op_code, r.measurement_type, r.status) == (
            va["op_code"],
            va["measurement_type"],
            va["status"],
        )
        assert r.parameters.hex().upper() == va["parameters_hex"]
        if "status_name" in va:
            assert r.status_name == va["status_name"]


# ----------------------------------------------------------------------------- inline cases


def test_inline_acc_type1_frame_and_first_frame_rule() -> None:
    frame = bytes.fromhex("02650000000000000081F1FF1400F00306017B0F08")
    fr = polar_pmd.decode_frame(frame, previous_timestamp_ns=100)
    assert fr.raw.tolist() == [[-15, 20, 1008], [-20, 17, 1008]]
    assert fr.timestamps_ns.tolist() == [100, 101]  # 100.5 rounds half to even
    # no previous frame: spacing 1e9 / fs back from the frame timestamp
    late = frame[:1] + (2_000_000_000).to_bytes(8, "little") + frame[9:]
    fr = polar_pmd.decode_frame(late, sample_rate_hz=52)
    assert fr.timestamps_ns.tolist() == [2_000_000_000 - 19_230_769, 2_000_000_000]
    # previous = 0 means "none", like the SDK
    fr0 = polar_pmd.decode_frame(late, sample_rate_hz=52, previous_timestamp_ns=0)
    assert fr0.timestamps_ns.tolist() == fr.timestamps_ns.tolist()
    # a frame timed before the device epoch is refused, not wrapped
    with pytest.raises(TimestampError, match="epoch"):
        polar_pmd.decode_frame(frame, sample_rate_hz=52)


def test_inline_multiblock_head() -> None:
    payload = bytes.fromhex("C9FF12001100030941FE2B0F9C0BBF15004F00")
    # reference + first block (3 bit x 9 samples); cut the rest of the vector
    out = polar_pmd.decode_delta_payload(payload[: 6 + 2 + 11], channels=3, resolution_bits=16)
    assert out[:2].tolist() == [[-55, 18, 17], [-54, 18, 18]]


def test_inline_control_point_messages() -> None:
    r = polar_pmd.parse_notification(bytes.fromhex("F001020000FFFFFF"))
    assert (
        isinstance(r, polar_pmd.CpResponse)
        and r.ok
        and not r.more
        and r.parameters == b"\xff\xff\xff"
    )
    r = polar_pmd.parse_notification(bytes.fromhex("F001060700"))
    assert isinstance(r, polar_pmd.CpResponse) and r.status == Status.ERROR_INVALID_RESOLUTION
    stopped = polar_pmd.parse_notification(bytes([0x01, 0x02, 0x05]))
    assert stopped == polar_pmd.MeasurementStopped((2, 5))
    assert polar_pmd.encode_measurement_stopped([2, 5]) == bytes([0x01, 0x02, 0x05])


@pytest.mark.parametrize("status", list(Status))
def test_every_status_round_trips(status: Status) -> None:
    data = polar_pmd.encode_response(2, 2, status)
    r = polar_pmd.parse_notification(data)
    assert isinstance(r, polar_pmd.CpResponse)
    assert (
        r.status == status and r.status_name == status.name and r.ok == (status == Status.SUCCESS)
    )


def test_start_stop_bytes_and_request_parsing() -> None:
    w = polar_pmd.PROFILE.start_writes(ACC_CFG)
    assert len(w) == 1 and w[0].char_uuid == CP and w[0].with_response
    assert w[0].data == bytes.fromhex("0202000134000101100002010800040103")
    req = polar_pmd.parse_request(w[0].data)
    assert req.op_code == 2 and req.measurement_type == 2
    assert req.settings[SettingType.SAMPLE_RATE] == [52] and req.settings[SettingType.RANGE] == [8]
    assert polar_pmd.PROFILE.stop_writes(ACC_CFG)[0].data == bytes.fromhex("0302")
    assert get_profile("polar-pmd") is polar_pmd.PROFILE
    # polar-ble-sdk BlePMDClient.kt PMD_SERVICE "FB005C80-02E7-F387-1CAD-8ACD2D8DF0C8"
    assert polar_pmd.PROFILE.service_uuids == ("fb005c80-02e7-f387-1cad-8acd2d8df0c8",)
    assert polar_pmd.PROFILE.required_mtu(ACC_CFG) == 79
    with pytest.raises(ValueError, match="unknown stream"):
        polar_pmd.PROFILE.start_writes({"ecg": {"sample_rate_hz": 130}})


def test_factor_setting_is_float32() -> None:
    b = polar_pmd.encode_settings({SettingType.FACTOR: [0.000244]})
    assert b[:2] == b"\x05\x01" and b[2:] == struct.pack("<f", 0.000244)
    assert polar_pmd.parse_settings(b)[SettingType.FACTOR][0] == pytest.approx(0.000244, rel=1e-6)


# ----------------------------------------------------------------------------- round trips

_i16 = st.integers(-32768, 32767)


@st.composite
def _samples(draw: st.DrawFn, bits: int, channels: int) -> np.ndarray:
    n = draw(st.integers(1, 90))
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    mode = draw(st.sampled_from(["walk", "uniform", "extremes"]))
    if mode == "extremes":
        vals = draw(
            st.lists(
                st.sampled_from([lo, hi, 0, -1, lo + 1, hi - 1]),
                min_size=n * channels,
                max_size=n * channels,
            )
        )
        return np.array(vals, dtype=np.int64).reshape(n, channels)
    if mode == "uniform":
        vals = draw(st.lists(st.integers(lo, hi), min_size=n * channels, max_size=n * channels))
        return np.array(vals, dtype=np.int64).reshape(n, channels)
    start = draw(st.lists(st.integers(lo // 2, hi // 2), min_size=channels, max_size=channels))
    steps = draw(st.lists(st.integers(-300, 300), min_size=n * channels, max_size=n * channels))
    walk = np.array(start)[None, :] + np.cumsum(np.array(steps).reshape(n, channels), axis=0)
    return np.clip(walk, lo, hi).astype(np.int64)


@settings(max_examples=100, deadline=None)
@given(data=st.data(), bits=st.sampled_from([8, 16, 24]), channels=st.integers(1, 4))
def test_delta_payload_round_trip(data: st.DataObject, bits: int, channels: int) -> None:
    raw = data.draw(_samples(bits, channels))
    enc = polar_pmd.encode_delta_payload(raw, resolution_bits=bits)
    out = polar_pmd.decode_delta_payload(enc, channels=channels, resolution_bits=bits)
    assert np.array_equal(out, raw)


@settings(max_examples=100, deadline=None)
@given(bits=st.lists(st.integers(0, 2**32 - 1), min_size=3, max_size=240))
def test_delta_payload_round_trip_32bit_patterns(bits: list[int]) -> None:
    raw = np.array(bits[: len(bits) // 3 * 3], dtype=np.int64).reshape(-1, 3)
    enc = polar_pmd.encode_delta_payload(raw, resolution_bits=32)
    assert np.array_equal(polar_pmd.decode_delta_payload(enc, channels=3, resolution_bits=32), raw)


_FRAME_KINDS = [
    (2, 0x00, 8),
    (2, 0x01, 16),
    (2, 0x02, 24),
    (2, 0x80, 16),
    (2, 0x81, 16),
    (5, 0x80, 16),
    (6, 0x80, 16),
    (6, 0x81, 16),
]


@settings(max_examples=120, deadline=None)
@given(data=st.data(), kind=st.sampled_from(_FRAME_KINDS), ts=st.integers(10**11, 2**62))
def test_frame_round_trip(data: st.DataObject, kind: tuple[int, int, int], ts: int) -> None:
    mt, ft, bits = kind
    ch = 4 if (mt, ft) == (6, 0x81) else 3
    raw = data.draw(_samples(bits, ch))
    frame = polar_pmd.encode_frame(mt, ft, raw, timestamp_ns=ts)
    fr = polar_pmd.decode_frame(frame, sample_rate_hz=52)
    assert (fr.measurement_type, fr.frame_type, fr.timestamp_ns) == (mt, ft, ts)
    assert np.array_equal(fr.raw, raw)
    assert int(fr.timestamps_ns[-1]) == ts


@settings(max_examples=100, deadline=None)
@given(vals=st.lists(st.floats(-4000, 4000, allow_nan=False, width=32), min_size=3, max_size=150))
def test_gyro_float_frame_round_trip(vals: list[float]) -> None:
    v = np.array(vals[: len(vals) // 3 * 3], dtype=np.float64).reshape(-1, 3)
    raw = polar_pmd.values_to_raw(v, 5, 0x81)
    fr = polar_pmd.decode_frame(
        polar_pmd.encode_frame(5, 0x81, raw, timestamp_ns=10**15), sample_rate_hz=52
    )
    assert fr.values.tolist() == v.tolist()


def test_values_to_raw_saturates_and_rounds() -> None:
    raw = polar_pmd.values_to_raw(np.array([[0.0004, -0.0006, 40.0]]), 2, 0x81)
    assert raw.tolist() == [[0, -1, 32767]]


# ----------------------------------------------------------------------------- bad input

GOOD = bytes.fromhex("02650000000000000081F1FF1400F00306017B0F08")


@pytest.mark.parametrize(
    ("data", "kwargs", "exc", "words"),
    [
        (GOOD[:7], {}, TruncatedPacketError, "header"),
        (bytes([0]) + GOOD[1:], {}, UnknownMeasurementTypeError, "ECG"),
        (bytes([0x2A]) + GOOD[1:], {}, UnknownMeasurementTypeError, "42"),
        (GOOD[:9] + b"\x83" + GOOD[10:], {}, UnknownFrameTypeError, "0x83"),
        (GOOD[:14], {}, ReferenceSampleError, "reference sample"),
        (GOOD[:-1], {}, BlockOverrunError, "announces"),
        (GOOD[:16] + b"\x00" + GOOD[17:], {}, BitWidthError, "bit width 0"),
        (GOOD[:16] + b"\x12" + GOOD[17:], {}, BitWidthError, "bit width 18"),
        (GOOD + b"\x06", {}, TruncatedPacketError, "header cut"),
        (
            bytes.fromhex("020000000000000000") + b"\x01" + b"\x01\x00\x02",
            {},
            PayloadLengthError,
            "whole number",
        ),
        (GOOD, {"previous_timestamp_ns": None}, TimestampError, "no sample rate"),
        (GOOD[:-1], {"att_mtu": len(GOOD) - 1 + 3}, MtuTruncatedError, "ATT MTU"),
    ],
)
def test_bad_frames_raise_specific_errors(data: bytes, kwargs: dict, exc: type, words: str) -> None:
    with pytest.raises(exc, match=words) as info:
        polar_pmd.decode_frame(data, **kwargs)
    assert isinstance(info.value, DecodeError)
    assert str(info.value).startswith("polar-pmd ")
    assert info.value.device == "polar-pmd" and info.value.stream in ("acc", "type0", "type42")


def test_bad_control_point_messages() -> None:
    with pytest.raises(ControlPointError, match="empty"):
        polar_pmd.parse_notification(b"")
    with pytest.raises(ControlPointError, match="0x77"):
        polar_pmd.parse_notification(b"\x77\x01")
    with pytest.raises(ControlPointError, match="unknown setting type 9"):
        polar_pmd.parse_settings(b"\x09\x01\x00")
    with pytest.raises(ControlPointError, match="cut"):
        polar_pmd.parse_settings(b"\x00\x02\x34\x00")


# ----------------------------------------------------------------------------- virtual device


def _dev(**kw: object) -> polar_pmd.PolarVirtualDevice:
    return polar_pmd.PolarVirtualDevice(sine_acc(T0, 30), **kw)  # type: ignore[arg-type]


def _status(resp: list[tuple[str, bytes]]) -> int:
    assert len(resp) == 1 and resp[0][0] == CP
    r = polar_pmd.parse_notification(resp[0][1])
    assert isinstance(r, polar_pmd.CpResponse)
    return r.status


def test_virtual_device_control_point_answers() -> None:
    dev = _dev()
    r = polar_pmd.parse_notification(
        dev.handle_write(CP, polar_pmd.encode_get_settings(2), T0)[0][1]
    )
    assert isinstance(r, polar_pmd.CpResponse) and r.ok
    s = r.settings()
    assert s[SettingType.SAMPLE_RATE] == [52] and s[SettingType.RESOLUTION] == [16]
    assert s[SettingType.RANGE] == [8] and s[SettingType.CHANNELS] == [3]

    def start(**over: int) -> int:
        base = {
            SettingType.SAMPLE_RATE: 52,
            SettingType.RESOLUTION: 16,
            SettingType.RANGE: 8,
            SettingType.CHANNELS: 3,
        }
        base.update({SettingType[k]: v for k, v in over.items()})
        return _status(
            dev.handle_write(CP, polar_pmd.encode_start(2, {k: [v] for k, v in base.items()}), T0)
        )

    assert start(SAMPLE_RATE=104) == Status.ERROR_INVALID_SAMPLE_RATE
    assert start(RESOLUTION=24) == Status.ERROR_INVALID_RESOLUTION
    assert start(RANGE=16) == Status.ERROR_INVALID_RANGE
    assert start(CHANNELS=2) == Status.ERROR_INVALID_NUMBER_OF_CHANNELS
    assert (
        _status(dev.handle_write(CP, polar_pmd.encode_start(0, {}), T0))
        == Status.ERROR_INVALID_MEASUREMENT_TYPE
    )
    assert (
        _status(dev.handle_write(CP, polar_pmd.encode_start(5, {}), T0))
        == Status.ERROR_NOT_SUPPORTED
    )
    assert _status(dev.handle_write(CP, b"\x02", T0)) == Status.ERROR_INVALID_LENGTH
    assert _status(dev.handle_write(CP, b"\x09\x02", T0)) == Status.ERROR_INVALID_OP_CODE
    assert (
        _status(dev.handle_write(CP, polar_pmd.encode_stop(2), T0)) == Status.ERROR_ALREADY_IN_STATE
    )
    ok = dev.handle_write(CP, polar_pmd.PROFILE.start_writes(ACC_CFG)[0].data, T0)
    r = polar_pmd.parse_notification(ok[0][1])
    assert (
        isinstance(r, polar_pmd.CpResponse) and r.ok and r.settings()[SettingType.FACTOR] == [1.0]
    )
    assert start() == Status.ERROR_ALREADY_IN_STATE
    assert dev.streaming == ("acc",)
    assert _status(dev.handle_write(CP, polar_pmd.encode_stop(2), T0)) == Status.SUCCESS
    assert dev.streaming == ()
    small = _dev(att_mtu=60)
    assert (
        _status(small.handle_write(CP, polar_pmd.PROFILE.start_writes(ACC_CFG)[0].data, T0))
        == Status.ERROR_INVALID_MTU
    )
    assert dev.read_value("00002a19-0000-1000-8000-00805f9b34fb") == bytes([90])
    assert polar_pmd.parse_features(dev.read_value(CP)) == (2,)


@pytest.mark.parametrize("mtu", [79, 100, 232, 512])
def test_virtual_frames_respect_mtu_and_are_compressed_acc(mtu: int) -> None:
    dev = _dev(att_mtu=mtu)
    dev.handle_write(CP, polar_pmd.PROFILE.start_writes(ACC_CFG)[0].data, T0)
    frames = [f for _, f in dev.poll(T0 + 30_000_000)]
    assert len(frames) > 5
    assert max(len(f) for f in frames) <= mtu - 3
    assert min(len(f) for f in frames) >= mtu - 3 - 8  # filled, not half empty
    assert all(f[0] == 2 and f[9] == 0x81 for f in frames)
    raw = np.concatenate([polar_pmd.decode_frame(f, sample_rate_hz=52).raw for f in frames])
    expect = np.rint(sine_acc(T0, 30).values * 1000)[: raw.shape[0]]
    assert np.array_equal(raw, expect)


def _decode_session(dev: polar_pmd.PolarVirtualDevice, duration_s: float, **kw: object):
    starts = [(w.char_uuid, w.data) for w in polar_pmd.PROFILE.start_writes(ACC_CFG)]
    sp = run_session(dev, starts, T0 - 500_000, T0 + int(duration_s * 1e6), **kw)  # type: ignore[arg-type]
    return sp, polar_pmd.PROFILE.decode_records(sp.records(), ACC_CFG)


def test_demo_path_true_signal_and_true_time() -> None:
    """decode_records(VirtualDevice output) gives back the true signal at the true times."""
    sig = sine_acc(T0, 600)
    dev = polar_pmd.PolarVirtualDevice(sig, clock_offset_us=-3_217_000, clock_drift_ppm=35.0)
    _, res = _decode_session(dev, 600)
    s = res.streams["acc"]
    assert res.errors == [] and res.gaps == []
    assert s.unit == "g" and s.fs_hz == 52 and s.channel_names == ("x", "y", "z")
    n = len(s)
    assert n > 0.97 * len(sig)
    assert np.array_equal(s.sample_seq, np.arange(n))
    assert np.abs(s.values - sig.values[:n]).max() <= 0.0005 + 1e-12  # mG quantisation
    err_us = s.t_us - sig.t_us[:n]
    # bias: the frame leaves one sample period after its last sample, plus the link's minimum
    # latency (7.5 ms in the simulation); spread: the clock model
    assert 0 < np.median(err_us) < 40_000
    assert np.ptp(err_us) < 5_000
    qc = res.qc["acc"]
    assert qc["packets_lost"] == 0 and qc["duplicates"] == 0
    # ~400 frames in 10 min: the envelope's ends are known to a few ms
    assert qc["clock_drift_ppm"] == pytest.approx(-35.0, abs=8.0)


def test_reconnect_resets_timestamps_and_records_gap() -> None:
    sig = sine_acc(T0, 120)
    dev = polar_pmd.PolarVirtualDevice(sig, clock_offset_us=1_000_000)
    starts = [(w.char_uuid, w.data) for w in polar_pmd.PROFILE.start_writes(ACC_CFG)]
    sp = run_session(dev, starts, T0 - 500_000, T0 + 50_000_000, conn_id=0)
    dev.link_lost(T0 + 50_000_000)
    sp.add(T0 + 50_000_000, RecordKind.DISCONNECT, "", b"", 0)
    run_session(dev, starts, T0 + 60_000_000, T0 + 119_000_000, spool=sp, conn_id=1, seed=5)
    res = polar_pmd.PROFILE.decode_records(sp.records(), ACC_CFG)
    s = res.streams["acc"]
    assert len(res.gaps) == 1 and res.gaps[0].reason == "disconnect"
    g = res.gaps[0]
    assert (
        T0 + 48_000_000 < g.start_us < T0 + 51_000_000
        and T0 + 59_000_000 < g.end_us < T0 + 62_000_000
    )
    # after the gap, the sample counter and the times stay true (not smeared across the hole)
    assert np.abs(s.values - sig.values[s.sample_seq]).max() <= 0.0005 + 1e-12
    assert np.abs(s.t_us - sig.t_us[s.sample_seq]).max() < 40_000
    jump = np.flatnonzero(np.diff(s.sample_seq) > 1)
    assert jump.size == 1
    assert np.diff(s.sample_seq)[jump[0]] == pytest.approx(
        (g.end_us - g.start_us) * 52 / 1e6, abs=3
    )


def test_packet_loss_detected_and_timed_from_rate() -> None:
    sig = sine_acc(T0, 120)
    dev = polar_pmd.PolarVirtualDevice(sig)
    starts = [(w.char_uuid, w.data) for w in polar_pmd.PROFILE.start_writes(ACC_CFG)]
    sp = run_session(dev, starts, T0 - 500_000, T0 + 120_000_000)
    recs = sp.records()
    data_idx = [i for i, u in enumerate(recs.char_uuid) if u == DATA]
    drop = {data_idx[20], data_idx[40], data_idx[41]}
    sp2 = Spool()
    for i in range(len(recs)):
        if i not in drop:
            sp2.add(
                int(recs.t_us[i]),
                RecordKind(int(recs.kind[i])),
                recs.char_uuid[i],
                recs.payload[i],
                0,
            )
    res = polar_pmd.PROFILE.decode_records(sp2.records(), ACC_CFG)
    s = res.streams["acc"]
    assert res.qc["acc"]["packets_lost"] == 3
    assert [g.reason for g in res.gaps] == ["packet_loss", "packet_loss"]
    # the sample counter skips exactly the lost samples: values match the true signal by seq
    assert np.abs(s.values - sig.values[s.sample_seq]).max() <= 0.0005 + 1e-12
    assert np.abs(s.t_us - sig.t_us[s.sample_seq]).max() < 40_000


def test_bad_packets_are_kept_as_errors_and_decoding_goes_on() -> None:
    sig = sine_acc(T0, 60)
    dev = polar_pmd.PolarVirtualDevice(sig)
    starts = [(w.char_uuid, w.data) for w in polar_pmd.PROFILE.start_writes(ACC_CFG)]
    sp = run_session(dev, starts, T0 - 500_000, T0 + 60_000_000, att_mtu=232)
    recs = sp.records()
    data_idx = [i for i, u in enumerate(recs.char_uuid) if u == DATA]
    payload = list(recs.payload)
    payload[data_idx[5]] = payload[data_idx[5]][:60]  # cut short
    payload[data_idx[7]] = b"\x02\x00"
    recs2 = type(recs)(recs.t_us, recs.kind, recs.char_uuid, payload, recs.conn_id)
    res = polar_pmd.PROFILE.decode_records(recs2, ACC_CFG)
    assert len(res.errors) == 2
    assert res.errors[0].payload == payload[data_idx[5]] and "polar-pmd acc" in res.errors[0].error
    assert res.qc["acc"]["decode_errors"] == 2
    assert len(res.streams["acc"]) > 2000


def test_mtu_truncated_notification_in_replay() -> None:
    sig = sine_acc(T0, 30)
    dev = polar_pmd.PolarVirtualDevice(sig, att_mtu=232)
    starts = [(w.char_uuid, w.data) for w in polar_pmd.PROFILE.start_writes(ACC_CFG)]
    # the device thinks MTU is 232, the link really is 100: every notification is cut at 97 bytes
    sp = run_session(dev, starts, T0 - 500_000, T0 + 30_000_000, att_mtu=100)
    recs = sp.records()
    payload = [
        p[:97] if u == DATA else p for p, u in zip(recs.payload, recs.char_uuid, strict=True)
    ]
    res = polar_pmd.PROFILE.decode_records(
        type(recs)(recs.t_us, recs.kind, recs.char_uuid, payload, recs.conn_id), ACC_CFG
    )
    assert res.errors and all("ATT MTU 100" in e.error for e in res.errors)
    assert "acc" not in res.streams


def test_device_stop_indication_ends_stream() -> None:
    sig = sine_acc(T0, 60)
    dev = polar_pmd.PolarVirtualDevice(sig)
    starts = [(w.char_uuid, w.data) for w in polar_pmd.PROFILE.start_writes(ACC_CFG)]
    sp = run_session(dev, starts, T0 - 500_000, T0 + 20_000_000)
    for u, d in dev.stop_by_device(T0 + 20_000_000):
        sp.add(T0 + 20_010_000, RecordKind.NOTIFY, u, d, 0)
    assert dev.streaming == ()
    run_session(dev, starts, T0 + 30_000_000, T0 + 59_000_000, spool=sp, conn_id=0)
    res = polar_pmd.PROFILE.decode_records(sp.records(), ACC_CFG)
    assert [g.reason for g in res.gaps] == ["device_stopped"]


def test_control_point_errors_reach_qc() -> None:
    sp = Spool()
    sp.add(T0, RecordKind.CONNECT, "", (232).to_bytes(2, "little"), 0)
    sp.add(
        T0 + 1, RecordKind.WRITE, CP, polar_pmd.encode_start(2, {SettingType.SAMPLE_RATE: [104]}), 0
    )
    sp.add(
        T0 + 2,
        RecordKind.NOTIFY,
        CP,
        polar_pmd.encode_response(2, 2, Status.ERROR_INVALID_SAMPLE_RATE),
        0,
    )
    res = polar_pmd.PROFILE.decode_records(sp.records(), ACC_CFG)
    assert res.qc["acc"]["control_point_errors"] == [
        "REQUEST_MEASUREMENT_START: ERROR_INVALID_SAMPLE_RATE"
    ]
    assert res.streams == {}


def test_gyro_factor_comes_from_the_start_response() -> None:
    acc = sine_acc(T0, 120)
    gyro_vals = 300.0 * np.sin(np.arange(len(acc))[:, None] / 52 * np.array([[0.5, 1.0, 2.0]]))
    gyro = StreamSamples(
        "gyro", acc.t_us, gyro_vals, ("x", "y", "z"), "deg/s", 52.0, acc.sample_seq
    )
    dev = polar_pmd.PolarVirtualDevice({"acc": acc, "gyro": gyro}, clock_offset_us=500_000)
    cfg = {**ACC_CFG, "gyro": {"sample_rate_hz": 52, "range_dps": 2000}}
    starts = [(w.char_uuid, w.data) for w in polar_pmd.PROFILE.start_writes(cfg)]
    sp = run_session(dev, starts, T0 - 500_000, T0 + 120_000_000)
    res = polar_pmd.PROFILE.decode_records(sp.records(), cfg)
    g = res.streams["gyro"]
    assert g.unit == "deg/s" and res.errors == []
    step = float(np.float32(2000 / 32768))
    assert np.abs(g.values - gyro_vals[g.sample_seq]).max() <= step / 2 + 1e-9
    # without the start response the factor is unknown (1.0): values come out in counts
    recs = sp.records()
    keep = [
        i
        for i in range(len(recs))
        if not (recs.char_uuid[i] == CP and recs.kind[i] == RecordKind.NOTIFY)
    ]
    bare = type(recs)(
        recs.t_us[keep],
        recs.kind[keep],
        [recs.char_uuid[i] for i in keep],
        [recs.payload[i] for i in keep],
        recs.conn_id[keep],
    )
    g2 = polar_pmd.PROFILE.decode_records(bare, cfg).streams["gyro"]
    np.testing.assert_allclose(g2.values * step, g.values[: len(g2)], atol=1e-9)


@settings(max_examples=60, deadline=None)
@given(data=st.data(), bits=st.sampled_from([8, 16, 24, 32]), channels=st.integers(1, 4))
def test_batch_encoder_matches_one_payload_encoder(
    data: st.DataObject, bits: int, channels: int
) -> None:
    raw = data.draw(_samples(bits, channels))
    n = raw.shape[0]
    cuts = (
        sorted(set(data.draw(st.lists(st.integers(1, max(1, n - 1)), max_size=6)))) if n > 1 else []
    )
    starts = np.array([0, *cuts], dtype=np.int64)
    counts = np.diff(np.append(starts, n))
    got = encode_delta_payloads(raw, starts, counts, bits)
    assert got == [
        polar_pmd.encode_delta_payload(raw[a : a + c], resolution_bits=bits)
        for a, c in zip(starts, counts, strict=True)
    ]


# ----------------------------------------------------------------------------- bulk paths


@settings(max_examples=40, deadline=None)
@given(data=st.data(), bits=st.sampled_from([8, 16, 32]), channels=st.integers(1, 4))
def test_batch_encoder_any_ranges_and_whole_frames(
    data: st.DataObject, bits: int, channels: int
) -> None:
    """Overlapping, gapped and out-of-order ranges; headers laid out in the same buffer."""
    raw = data.draw(_samples(bits, channels))
    n = raw.shape[0]
    starts = np.array(data.draw(st.lists(st.integers(0, n - 1), min_size=1, max_size=6)))
    counts = np.array([data.draw(st.integers(1, n - a)) for a in starts.tolist()])
    ts = np.array(
        data.draw(st.lists(st.integers(0, 2**63 - 1), min_size=starts.size, max_size=starts.size)),
        dtype=np.int64,
    )
    one = [
        polar_pmd.encode_delta_payload(raw[a : a + c], resolution_bits=bits)
        for a, c in zip(starts.tolist(), counts.tolist(), strict=True)
    ]
    assert encode_delta_payloads(raw, starts, counts, bits) == one
    frames = encode_delta_frames(
        raw, starts, counts, bits, None, measurement_type=2, frame_type=0x81, timestamp_ns=ts
    )
    assert frames == [
        encode_frame(2, 0x81, raw[a : a + c], timestamp_ns=int(t), resolution_bits=bits)
        for a, c, t in zip(starts.tolist(), counts.tolist(), ts.tolist(), strict=True)
    ]


def _reference_plan(w: np.ndarray, ch: int, res: int, budget: int, stop: int) -> tuple:
    """Frames cut one at a time with ``max_samples_fitting`` (the definition)."""
    cap = (budget * 8) // ch + 1
    a, starts, counts = 0, [], []
    while w.size - a >= 2:
        n = max_samples_fitting(w[a + 1 : min(w.size, a + 1 + cap)], ch, res, budget)
        if a + n >= min(stop, w.size):
            break
        starts.append(a)
        counts.append(n)
        a += n
    return starts, counts


@pytest.mark.parametrize("kind", ["noise", "flat", "steps", "wide"])
@pytest.mark.parametrize(("ch", "res"), [(3, 16), (1, 8), (4, 32)])
def test_frame_planner_cuts_frames_like_max_samples_fitting(kind: str, ch: int, res: int) -> None:
    rng = np.random.default_rng(len(kind) * ch + res)
    n = 12_000  # long enough for the fast path (frames that cannot see the end)
    top = min(res + 1, 32)
    w = {
        "noise": np.clip(np.rint(rng.normal(6, 2, n)), 1, top),
        "flat": 1 + (rng.random(n) < 0.01) * rng.integers(0, 4, n),  # blocks hit 255 samples
        "steps": np.repeat(rng.integers(1, 10, n // 40 + 1), 40)[:n],
        "wide": rng.integers(1, top + 1, n),
    }[kind].astype(np.int64)
    w[0] = 0
    for budget in (min_frame_mtu(ch, res) - 3 - 10, 100, 219, 509):
        stop = n - 7
        got = FramePlanner(w.astype(np.uint8), ch, res).plan(0, budget, stop=stop)
        assert got == _reference_plan(w, ch, res, budget, stop)
        assert len(got[0]) >= 3


def test_interleaved_unpack_matches_field_unpack() -> None:
    rng = np.random.default_rng(5)
    buf = rng.integers(0, 256, 4000, dtype=np.uint8)
    for ch, wmax in ((3, 17), (4, 14), (3, 32)):  # the last needs more than one 8-byte window
        w = rng.integers(1, wmax + 1, 300).astype(np.int64)
        start = np.cumsum(w * ch) - w * ch + 3
        fields = (start[:, None] + np.arange(ch) * w[:, None]).reshape(-1)
        want = unpack_fields(buf, fields, np.repeat(w, ch)).reshape(-1, ch)
        assert np.array_equal(unpack_interleaved(buf, start, w, ch), want)


def test_render_until_matches_stepping_with_two_streams() -> None:
    acc = sine_acc(T0, 120)
    gyro = StreamSamples(
        "gyro", acc.t_us, acc.values * 300.0, ("x", "y", "z"), "deg/s", 52.0, acc.sample_seq
    )
    cfg = {**ACC_CFG, "gyro": {"sample_rate_hz": 52, "range_dps": 2000}}

    def started() -> polar_pmd.PolarVirtualDevice:
        dev = polar_pmd.PolarVirtualDevice({"acc": acc, "gyro": gyro}, clock_drift_ppm=20.0)
        for w in polar_pmd.PROFILE.start_writes(cfg):
            dev.handle_write(w.char_uuid, w.data, T0)
        return dev

    end = T0 + 90_000_000
    stepped, dev = [], started()
    while (due := dev.next_due_us()) is not None and due < end:
        stepped += [(due, u, p) for u, p in dev.poll(due)]
    bulk = started()
    got = bulk.render_until(end)
    assert got == stepped
    assert {p[0] for _, _, p in got} == {2, 5}  # both streams, interleaved in send order
    assert bulk.next_due_us() == dev.next_due_us()
    assert bulk.poll(T0 + 120_000_000) == dev.poll(T0 + 120_000_000)
    assert bulk.render_until(end) == []


def test_render_until_is_optional_for_devices() -> None:
    class Stepped(VirtualDevice):
        def handle_write(self, char_uuid: str, data: bytes, now_us: int) -> list:
            return []

        def read_value(self, char_uuid: str) -> bytes:
            return b""

        def poll(self, now_us: int) -> list:
            return []

        def link_lost(self, now_us: int) -> None:
            pass

    with pytest.raises(NotImplementedError):
        Stepped().render_until(T0)
