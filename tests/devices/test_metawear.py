"""MetaWear: vendor vectors, commands, round trips, bad input, and replay of a virtual board."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from glutewake.devices import get_profile, metawear
from glutewake.devices.base import DecodeError, RawRecords, StreamSamples
from glutewake.devices.errors import (
    PayloadLengthError,
    TruncatedPacketError,
    UnknownFrameTypeError,
    UnknownMeasurementTypeError,
)

from ._sim import run_session

VECTORS = Path(__file__).resolve().parents[2] / ".." / "shared" / "vectors" / "metawear.json"
T0 = 1_780_000_000_000_000


def _vectors() -> dict[str, dict]:
    if not VECTORS.exists():
        pytest.skip("vendor vectors ../shared/vectors/metawear.json not present")
    return {c["id"]: c for c in json.loads(VECTORS.read_text())}


@pytest.mark.parametrize(
    "case_id",
    ["metawear_acc_bmi160_single", "metawear_acc_bmi160_packed", "metawear_acc_bmi270_packed"],
)
def test_vendor_data_vectors(case_id: str) -> None:
    c = _vectors()[case_id]
    g = metawear.decode_notification(bytes.fromhex(c["notification_hex"]), range_g=c["range_g"])
    assert metawear.lsb_per_g(c["range_g"]) == c["lsb_per_g"]
    assert np.round(g, 3).tolist() == c["vendor_asserted"]["samples_g"]
    raw = metawear.decode_raw(bytes.fromhex(c["notification_hex"]))
    reg = bytes.fromhex(c["notification_hex"])[1]
    assert metawear.encode_notification(raw, register=reg) == bytes.fromhex(c["notification_hex"])


def test_vendor_command_vectors() -> None:
    va = _vectors()["metawear_acc_commands"]["vendor_asserted"]
    for hz, b in va["bmi160_odr_byte"].items():
        assert metawear.acc_conf_byte(float(hz)) == int(b, 16)
    for r, b in va["bmi160_range_byte"].items():
        assert metawear.BMI160_RANGE[int(r[:-1])] == int(b, 16)
        assert metawear.lsb_per_g(int(r[:-1])) == va["bmi160_lsb_per_g"][r]
    w = metawear.PROFILE.start_writes(
        {"acc": {"sample_rate_hz": 100, "range_g": 16, "packed": False}}
    )
    assert w[0].data == bytes.fromhex(va["bmi160_config_odr_100Hz_range_16g"].replace(" ", ""))
    assert w[1].data == bytes.fromhex(va["subscribe_acc"].replace(" ", ""))
    assert w[2].data == bytes.fromhex(va["enable_sampling"].replace(" ", ""))
    assert w[3].data == bytes.fromhex("030101")
    w = metawear.PROFILE.start_writes({"acc": {"sample_rate_hz": 200, "range_g": 8}})
    assert w[0].data == bytes.fromhex(va["bmi160_config_odr_200Hz_range_8g"].replace(" ", ""))
    assert w[1].data == bytes.fromhex(va["subscribe_packed_bmi160"].replace(" ", ""))
    w = metawear.PROFILE.start_writes(
        {"acc": {"sample_rate_hz": 100, "range_g": 8, "chip": "bmi270"}}
    )
    assert w[1].data == bytes.fromhex(va["subscribe_packed_bmi270"].replace(" ", ""))
    s = metawear.PROFILE.stop_writes({"acc": {"packed": False}})
    assert s[1].data == bytes.fromhex(va["disable_sampling"].replace(" ", ""))
    assert s[2].data == bytes.fromhex(va["unsubscribe_acc"].replace(" ", ""))


def test_inline_vectors_and_registry() -> None:
    assert get_profile("metawear") is metawear.PROFILE
    g = metawear.decode_notification(
        bytes.fromhex("031C62B7530DE9FD16D04D0E57028AFFA1050A01"), range_g=8
    )
    assert np.round(g, 3).tolist() == [
        [-4.539, 0.833, -0.131],
        [-2.995, 0.894, 0.146],
        [-0.029, 0.352, 0.065],
    ]
    assert metawear.PROFILE.required_mtu({"acc": {}}) == 23
    with pytest.raises(ValueError, match="range_g"):
        metawear.PROFILE.start_writes({"acc": {"range_g": 3}})
    with pytest.raises(ValueError, match="sample rate"):
        metawear.PROFILE.start_writes({"acc": {"sample_rate_hz": 99}})


@settings(max_examples=150, deadline=None)
@given(
    vals=st.lists(
        st.sampled_from([-32768, 32767, 0]) | st.integers(-32768, 32767), min_size=9, max_size=9
    ),
    reg=st.sampled_from([0x04, 0x1C, 0x05]),
    rng=st.sampled_from([2, 4, 8, 16]),
)
def test_round_trip(vals: list[int], reg: int, rng: int) -> None:
    raw = np.array(vals[: 3 if reg == 0x04 else 9], dtype=np.int64).reshape(-1, 3)
    data = metawear.encode_notification(raw, register=reg)
    assert np.array_equal(metawear.decode_raw(data), raw)
    assert np.array_equal(metawear.decode_notification(data, range_g=rng), raw / (32768 / rng))


@pytest.mark.parametrize(
    ("data", "exc", "words"),
    [
        (b"\x03", TruncatedPacketError, "module"),
        (bytes.fromhex("1104aabb"), UnknownMeasurementTypeError, "module 0x11"),
        (bytes.fromhex("0307aabb"), UnknownFrameTypeError, "0x07"),
        (bytes.fromhex("030416C494A22A"), TruncatedPacketError, "carries 6"),
        (bytes.fromhex("030416C494A22AD000"), PayloadLengthError, "carries 6"),
        (bytes.fromhex("031C62B7530DE9FD16D04D0E57028AFFA105"), TruncatedPacketError, "carries 18"),
    ],
)
def test_bad_notifications(data: bytes, exc: type, words: str) -> None:
    with pytest.raises(exc, match=words) as info:
        metawear.decode_raw(data)
    assert isinstance(info.value, DecodeError) and str(info.value).startswith("metawear acc")


def _acc(duration_s: float, fs: float, drift_ppm: float = 0.0) -> StreamSamples:
    n = int(duration_s * fs)
    tt = np.arange(n) / fs * (1 + drift_ppm * 1e-6)
    vals = np.stack([np.cos(0.2 * tt), 0.3 * np.sin(3 * tt), np.sin(0.2 * tt)], axis=1)
    return StreamSamples(
        "acc", T0 + np.rint(tt * 1e6).astype(np.int64), vals, ("x", "y", "z"), "g", fs, np.arange(n)
    )


def test_replay_of_virtual_board_recovers_signal_and_times() -> None:
    cfg = {"acc": {"sample_rate_hz": 100, "range_g": 8, "packed": True}}
    sig = _acc(180, 100, drift_ppm=3000)  # the sensor's rate is 0.3 % off nominal
    dev = metawear.MetaWearVirtualDevice(sig)
    writes = [(w.char_uuid, w.data) for w in metawear.PROFILE.start_writes(cfg)]
    sp = run_session(dev, writes, T0 - 300_000, T0 + 180_000_000, poll_us=10_000, att_mtu=23)
    res = metawear.PROFILE.decode_records(sp.records(), cfg)
    s = res.streams["acc"]
    assert res.errors == [] and res.gaps == []
    assert np.abs(s.values - sig.values[: len(s)]).max() <= 0.5 / 4096 + 1e-12
    err = s.t_us - sig.t_us[: len(s)]
    assert 0 < np.median(err) < 40_000 and np.ptp(err) < 15_000
    assert res.qc["acc"]["clock_drift_ppm"] == pytest.approx(3000, abs=100)


def test_lost_notifications_advance_the_counter() -> None:
    cfg = {"acc": {"sample_rate_hz": 50, "range_g": 16, "packed": False}}
    sig = _acc(60, 50)
    dev = metawear.MetaWearVirtualDevice(sig)
    writes = [(w.char_uuid, w.data) for w in metawear.PROFILE.start_writes(cfg)]
    sp = run_session(
        dev, writes, T0 - 300_000, T0 + 60_000_000, poll_us=10_000, att_mtu=23, outlier_rate=0.0
    )
    recs = sp.records()
    data = [i for i, u in enumerate(recs.char_uuid) if u == metawear.NOTIFY_UUID]
    drop = set(data[1000:1100])  # 2 s of silence
    keep = [i for i in range(len(recs)) if i not in drop]
    r2 = RawRecords(
        recs.t_us[keep],
        recs.kind[keep],
        [recs.char_uuid[i] for i in keep],
        [recs.payload[i] for i in keep],
        recs.conn_id[keep],
    )
    res = metawear.PROFILE.decode_records(r2, cfg)
    s = res.streams["acc"]
    assert [g.reason for g in res.gaps] == ["packet_loss"]
    assert res.qc["acc"]["packets_lost"] == pytest.approx(100, abs=2)
    assert np.abs(s.values - sig.values[s.sample_seq]).max() < 0.01
