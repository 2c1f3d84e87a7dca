"""glutewake-open: packet layout, round trips, bad input, sequence QC and the demo path."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from glutewake.devices import get_profile
from glutewake.devices import glutewake_open as go
from glutewake.devices.base import DecodeError, RawRecords, RecordKind, StreamSamples
from glutewake.devices.errors import (
    ControlPointError,
    MtuTruncatedError,
    PayloadLengthError,
    TimestampError,
    TruncatedPacketError,
    UnknownMeasurementTypeError,
)
from glutewake.devices.open_virtual import GlutewakeOpenVirtualDevice

from ._sim import Spool, run_session

T0 = 1_780_000_000_000_000
CFG = {"emg": {"fs_hz": 1000, "channels": ["glute_max_r", "biceps_femoris_r"]}}


def _emg(duration_s: float, fs: int = 1000, seed: int = 0) -> StreamSamples:
    n = int(duration_s * fs)
    rng = np.random.default_rng(seed)
    burst = (np.sin(2 * np.pi * 0.25 * np.arange(n) / fs) > 0.5)[:, None]
    vals = rng.normal(0, 20, (n, 2)) * (1 + 10 * burst)
    t = T0 + np.rint(np.arange(n) * 1e6 / fs).astype(np.int64)
    return StreamSamples(
        "emg", t, vals, ("glute_max_r", "biceps_femoris_r"), "uV", fs, np.arange(n)
    )


def _acc(duration_s: float, fs: int = 50) -> StreamSamples:
    n = int(duration_s * fs)
    tt = np.arange(n) / fs
    vals = np.stack([np.cos(0.1 * tt), 0.1 * np.sin(tt), np.sin(0.1 * tt)], axis=1)
    t = T0 + np.rint(tt * 1e6).astype(np.int64)
    return StreamSamples("acc", t, vals, ("x", "y", "z"), "g", fs, np.arange(n))


def test_documented_layout_example() -> None:
    # the worked example in docs/devices.md
    pkt = go.encode_packet(
        go.STREAM_EMG, seq=0x0102, t_dev_us=5_000_000, raw=[[100, -100], [-32768, 32767]], flags=3
    )
    assert pkt.hex() == "0103020140" + "4b4c0000000000" + "0202" + "64009cff" + "0080ff7f"
    p = go.decode_packet(pkt)
    assert (p.stream, p.flags, p.seq, p.t_dev_us) == ("emg", 3, 0x0102, 5_000_000)
    assert p.raw.tolist() == [[100, -100], [-32768, 32767]]


def test_uuids_commands_and_registry() -> None:
    assert get_profile("glutewake-open") is go.PROFILE
    assert go.SERVICE_UUID == "47570001-6f70-656e-2d65-6d672d696d75"
    assert go.PROFILE.notify_uuids == (go.EMG_DATA_UUID, go.ACC_DATA_UUID, go.COMMAND_UUID)
    w = go.PROFILE.start_writes({**CFG, "acc": {"fs_hz": 50}})
    assert [x.data.hex() for x in w] == ["0103e8033200"]
    assert go.PROFILE.stop_writes(CFG)[0].data == bytes((0x02, 0x01))
    assert go.PROFILE.required_mtu(CFG) == 3 + 14 + 2 * 2 * 10
    assert go.PROFILE.required_mtu({"emg": {"fs_hz": 2000, "channels": 8}}) == 3 + 14 + 2 * 8 * 20
    with pytest.raises(ValueError, match="unknown stream"):
        go.PROFILE.start_writes({"ppg": {}})


def test_config_characteristic_round_trip() -> None:
    c = go.OpenConfig(("glute_max_r", "biceps_femoris_r"), 1000, 0.5, 3, 50, 1 / 4096)
    b = c.encode()
    assert b[:4] == bytes((1, 2)) + (1000).to_bytes(2, "little")
    assert go.OpenConfig.decode(b) == go.OpenConfig(
        ("glute_max_r", "biceps_femoris_r"), 1000, 0.5, 3, 50, float(np.float32(1 / 4096))
    )
    with pytest.raises(ControlPointError, match="version 2"):
        go.OpenConfig.decode(bytes((2,)) + b[1:])
    with pytest.raises(ControlPointError, match="labels announce"):
        go.OpenConfig.decode(b[:-1])


@settings(max_examples=150, deadline=None)
@given(
    raw=hnp.arrays(
        np.int16,
        st.tuples(st.integers(1, 60), st.integers(1, 8)),
        elements=st.sampled_from([-32768, 32767, 0, -1]) | st.integers(-32768, 32767),
    ),
    sid=st.sampled_from([1, 2]),
    seq=st.integers(0, 65535),
    t=st.integers(0, 2**62 - 1),
    flags=st.integers(0, 3),
)
def test_packet_round_trip(raw: np.ndarray, sid: int, seq: int, t: int, flags: int) -> None:
    p = go.decode_packet(go.encode_packet(sid, seq=seq, t_dev_us=t, raw=raw, flags=flags))
    assert (p.stream_id, p.seq, p.t_dev_us, p.flags) == (sid, seq, t, flags)
    assert np.array_equal(p.raw, raw)


GOOD = go.encode_packet(1, seq=1, t_dev_us=10, raw=[[1, 2], [3, 4]])


@pytest.mark.parametrize(
    ("data", "mtu", "exc", "words"),
    [
        (GOOD[:10], None, TruncatedPacketError, "14-byte header"),
        (b"\x07" + GOOD[1:], None, UnknownMeasurementTypeError, "0x07"),
        (GOOD[:12] + b"\x00" + GOOD[13:], None, PayloadLengthError, "0 samples"),
        (GOOD[:-2], None, TruncatedPacketError, "announces"),
        (GOOD + b"\x00\x00", None, PayloadLengthError, "announces 22"),
        (GOOD[:-2], len(GOOD) - 2 + 3, MtuTruncatedError, "ATT MTU"),
        (GOOD[:4] + (2**63).to_bytes(8, "little") + GOOD[12:], None, TimestampError, "since boot"),
    ],
)
def test_bad_packets(data: bytes, mtu: int | None, exc: type, words: str) -> None:
    with pytest.raises(exc, match=words) as info:
        go.decode_packet(data, att_mtu=mtu)
    assert isinstance(info.value, DecodeError) and str(info.value).startswith("glutewake-open ")


def test_virtual_device_commands() -> None:
    dev = GlutewakeOpenVirtualDevice(_emg(5))
    assert go.OpenConfig.decode(dev.read_value(go.CONFIG_UUID)).emg_channels == (
        "glute_max_r",
        "biceps_femoris_r",
    )
    assert dev.read_value(go.BATTERY_LEVEL_UUID) == bytes([80])

    def status(data: bytes) -> int:
        ((uuid, resp),) = dev.handle_write(go.COMMAND_UUID, data, T0)
        assert uuid == go.COMMAND_UUID
        return go.parse_response(resp)[1]

    assert status(go.encode_start(emg_fs_hz=500)) == go.STATUS_INVALID_PARAMETER
    assert status(go.encode_start(emg=False, acc=True)) == go.STATUS_INVALID_PARAMETER  # no IMU
    assert status(b"\x01\x01") == go.STATUS_INVALID_LENGTH
    assert status(b"\x09") == go.STATUS_UNKNOWN_OP
    assert status(go.encode_start(emg_fs_hz=1000)) == go.STATUS_OK
    assert dev.streaming == ("emg",)
    pkts = dev.poll(T0 + 1_000_000)
    assert len(pkts) == 20 and all(u == go.EMG_DATA_UUID and len(p) <= 247 - 3 for u, p in pkts)
    first = go.decode_packet(pkts[0][1])
    assert first.flags & go.FLAG_START and first.seq == 0 and first.raw.shape == (50, 2)
    assert go.decode_packet(pkts[1][1]).flags & go.FLAG_START == 0
    assert status(go.encode_stop()) == go.STATUS_OK
    assert dev.streaming == () and dev.poll(T0 + 2_000_000) == []


@pytest.mark.parametrize("mtu", [23, 60, 185, 247, 512])
def test_packets_respect_mtu(mtu: int) -> None:
    dev = GlutewakeOpenVirtualDevice(_emg(2), att_mtu=mtu)
    dev.handle_write(go.COMMAND_UUID, go.encode_start(), T0)
    pk = dev.poll(T0 + 1_000_000)
    assert pk and max(len(p) for _, p in pk) <= mtu - 3


def _session(dev: GlutewakeOpenVirtualDevice, cfg: dict, dur_s: float, **kw: object) -> Spool:
    writes = [(w.char_uuid, w.data) for w in go.PROFILE.start_writes(cfg)]
    sp = run_session(
        dev, writes, T0 - 300_000, T0 + int(dur_s * 1e6), poll_us=10_000, att_mtu=247, **kw
    )  # type: ignore[arg-type]
    sp.add(T0 - 200_000, RecordKind.READ, go.CONFIG_UUID, dev.read_value(go.CONFIG_UUID), 0)
    return sp


def test_demo_path_emg_and_acc_true_values_and_times() -> None:
    emg, acc = _emg(120), _acc(120)
    dev = GlutewakeOpenVirtualDevice(emg, acc, clock_drift_ppm=-25.0, emg_uv_per_lsb=0.25)
    cfg = {**CFG, "acc": {"fs_hz": 50}}
    res = go.PROFILE.decode_records(_session(dev, cfg, 120).records(), cfg)
    assert res.errors == [] and res.gaps == []
    s = res.streams["emg"]
    assert (
        s.unit == "uV"
        and s.channel_names == ("glute_max_r", "biceps_femoris_r")
        and s.fs_hz == 1000
    )
    assert np.array_equal(s.sample_seq, np.arange(len(s)))
    assert len(s) > 0.98 * len(emg)
    assert np.abs(s.values - emg.values[: len(s)]).max() <= 0.125 + 1e-9  # half an LSB (0.25 µV)
    err = s.t_us - emg.t_us[: len(s)]
    assert 0 < np.median(err) < 25_000 and np.ptp(err) < 3_000
    a = res.streams["acc"]
    assert a.unit == "g" and a.channel_names == ("x", "y", "z")
    assert np.abs(a.values - acc.values[: len(a)]).max() <= 0.5 / 4096 + 1e-12
    qc = res.qc["emg"]
    assert (qc["packets_lost"], qc["duplicates"], qc["reordered"]) == (0, 0, 0)
    assert qc["clock_drift_ppm"] == pytest.approx(25.0, abs=5.0)


def _mutate(recs: RawRecords, order: list[int]) -> RawRecords:
    """Rebuild records in the given index order (host times kept in arrival order)."""
    return RawRecords(
        t_us=np.sort(recs.t_us[order]),
        kind=recs.kind[order],
        char_uuid=[recs.char_uuid[i] for i in order],
        payload=[recs.payload[i] for i in order],
        conn_id=recs.conn_id[order],
    )


def test_loss_duplicates_and_reorder_from_sequence_numbers() -> None:
    emg = _emg(20)
    dev = GlutewakeOpenVirtualDevice(emg)
    recs = _session(dev, CFG, 20).records()
    data_idx = [i for i, u in enumerate(recs.char_uuid) if u == go.EMG_DATA_UUID]
    order = list(range(len(recs)))
    lost = {data_idx[30], data_idx[31], data_idx[100]}
    order = [i for i in order if i not in lost]
    pos = order.index(data_idx[50])
    order.insert(pos + 1, data_idx[50])  # duplicate
    p60, p61 = order.index(data_idx[60]), order.index(data_idx[61])
    order[p60], order[p61] = order[p61], order[p60]  # reorder
    res = go.PROFILE.decode_records(_mutate(recs, order), CFG)
    qc = res.qc["emg"]
    assert (qc["packets_lost"], qc["duplicates"], qc["reordered"]) == (3, 1, 1)
    assert [g.reason for g in res.gaps] == ["packet_loss", "packet_loss"]
    s = res.streams["emg"]
    # reordered packet put back in place; lost samples skipped in the counter
    assert np.abs(s.values - emg.values[s.sample_seq]).max() <= 0.25 + 1e-9
    assert np.all(np.diff(s.t_us) > 0)
    assert int(np.sum(np.diff(s.sample_seq) - 1)) == 3 * 50


def test_sequence_wraps_at_65536() -> None:
    sp = Spool()
    sp.add(T0, RecordKind.CONNECT, "", (247).to_bytes(2, "little"), 0)
    for k in range(6):
        seq = (65533 + k) & 0xFFFF
        pkt = go.encode_packet(1, seq=seq, t_dev_us=1_000_000 + k * 2_000, raw=[[k, k], [k, k]])
        sp.add(T0 + 10_000 + k * 2_000, RecordKind.NOTIFY, go.EMG_DATA_UUID, pkt, 0)
    res = go.PROFILE.decode_records(sp.records(), CFG)
    assert res.qc["emg"]["packets_lost"] == 0 and res.gaps == []
    assert res.streams["emg"].sample_seq.tolist() == list(range(12))


def test_bad_packet_kept_and_decoding_continues() -> None:
    dev = GlutewakeOpenVirtualDevice(_emg(5))
    recs = _session(dev, CFG, 5).records()
    payload = list(recs.payload)
    k = [i for i, u in enumerate(recs.char_uuid) if u == go.EMG_DATA_UUID][10]
    payload[k] = payload[k][:100]
    res = go.PROFILE.decode_records(
        RawRecords(recs.t_us, recs.kind, recs.char_uuid, payload, recs.conn_id), CFG
    )
    assert len(res.errors) == 1 and res.errors[0].payload == payload[k]
    assert "glutewake-open emg" in res.errors[0].error
    assert res.qc["emg"]["packets_lost"] == 1  # the bad packet's seq is a hole
    assert len(res.streams["emg"]) > 4000


def test_documented_config_example() -> None:
    c = go.OpenConfig(("gmax", "bf"), 1000, 0.5, 3, 50, 1 / 4096)
    assert c.encode() == bytes.fromhex(
        "0102E8030000003F033200000080390767 6D61782C6266".replace(" ", "")
    )
