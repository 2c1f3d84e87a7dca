"""OpenBCI Ganglion: packet formats, delta chain, dropped packets, replay of a virtual board."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from glutewake.devices import ganglion, get_profile
from glutewake.devices.base import DecodeError, RawRecords, StreamSamples
from glutewake.devices.errors import (
    PayloadLengthError,
    TruncatedPacketError,
    UnknownMeasurementTypeError,
)

from ._sim import run_session

T0 = 1_780_000_000_000_000
CFG = {"emg": {"channels": ["glute_max_r", "glute_max_l", "biceps_femoris_r", "biceps_femoris_l"]}}


def test_raw_packet_layout() -> None:
    pkt = ganglion.encode_raw_packet([1, -1, 0x123456, -(1 << 23)])
    assert len(pkt) == 20 and pkt[0] == 0
    assert pkt[1:13].hex() == "000001" + "ffffff" + "123456" + "800000"
    p = ganglion.decode_packet(pkt)
    assert p.kind == "raw" and p.values.tolist() == [[1, -1, 0x123456, -(1 << 23)]]


def test_19bit_packet_is_msb_first() -> None:
    d = np.array([[1, 0, 0, 0], [0, 0, 0, -1]])
    pkt = ganglion.encode_delta_packet(101, d)
    assert len(pkt) == 20
    bits = "".join(f"{b:08b}" for b in pkt[1:])
    assert bits[:19] == "0" * 18 + "1" and bits[-19:] == "1" * 19
    assert ganglion.decode_packet(pkt).values.tolist() == d.tolist()


@settings(max_examples=120, deadline=None)
@given(
    pid=st.integers(1, 200),
    vals=st.lists(
        st.integers(-(1 << 17), (1 << 17) - 1) | st.sampled_from([-(1 << 17), (1 << 17) - 1]),
        min_size=8,
        max_size=8,
    ),
    acc=st.integers(-128, 127),
)
def test_delta_round_trip(pid: int, vals: list[int], acc: int) -> None:
    d = np.array(vals).reshape(2, 4)
    p = ganglion.decode_packet(ganglion.encode_delta_packet(pid, d, accel_byte=acc))
    assert p.packet_id == pid and p.values.tolist() == d.tolist()
    assert p.kind == ("delta18" if pid <= 100 else "delta19")
    assert p.accel_byte == (acc if pid <= 100 else None)


@settings(max_examples=100, deadline=None)
@given(vals=st.lists(st.integers(-(1 << 23), (1 << 23) - 1), min_size=4, max_size=4))
def test_raw_round_trip(vals: list[int]) -> None:
    assert ganglion.decode_packet(ganglion.encode_raw_packet(vals)).values.tolist() == [vals]


@pytest.mark.parametrize(
    ("data", "exc", "words"),
    [
        (bytes(19), TruncatedPacketError, "19 bytes"),
        (bytes(21), PayloadLengthError, "21 bytes"),
        (bytes((250,)) + bytes(19), UnknownMeasurementTypeError, "250"),
    ],
)
def test_bad_packets(data: bytes, exc: type, words: str) -> None:
    with pytest.raises(exc, match=words) as info:
        ganglion.decode_packet(data)
    assert isinstance(info.value, DecodeError) and str(info.value).startswith("ganglion emg")


def test_ids_and_commands() -> None:
    assert get_profile("ganglion") is ganglion.PROFILE
    assert ganglion.next_packet_id(0) == 101 and ganglion.next_packet_id(200) == 101
    assert ganglion.next_packet_id(100, bits=18) == 1 and ganglion.next_packet_id(0, bits=18) == 1
    assert [w.data for w in ganglion.PROFILE.start_writes(CFG)] == [b"b"]
    assert [w.data for w in ganglion.PROFILE.stop_writes(CFG)] == [b"s"]
    with pytest.raises(ValueError, match="4 channel"):
        ganglion.PROFILE.start_writes({"emg": {"channels": ["a"]}})


def _emg(duration_s: float) -> StreamSamples:
    n = int(duration_s * 200)
    rng = np.random.default_rng(2)
    t = T0 + np.arange(n) * 5000
    return StreamSamples(
        "emg",
        t,
        rng.normal(0, 40, (n, 4)),
        tuple(CFG["emg"]["channels"]),
        "uV",
        200.0,
        np.arange(n),
    )


def test_replay_virtual_board() -> None:
    emg = _emg(60)
    dev = ganglion.GanglionVirtualDevice(emg)
    writes = [(w.char_uuid, w.data) for w in ganglion.PROFILE.start_writes(CFG)]
    sp = run_session(dev, writes, T0 - 100_000, T0 + 60_000_000, poll_us=10_000, att_mtu=23)
    res = ganglion.PROFILE.decode_records(sp.records(), CFG)
    s = res.streams["emg"]
    assert res.errors == [] and res.gaps == [] and s.channel_names == tuple(CFG["emg"]["channels"])
    assert np.abs(s.values - emg.values[: len(s)]).max() <= ganglion.UV_PER_COUNT / 2 + 1e-9
    assert np.array_equal(s.sample_seq, np.arange(len(s)))
    err = s.t_us - emg.t_us[: len(s)]
    assert 0 < np.median(err) < 30_000 and np.ptp(err) < 12_000


def test_dropped_packets_detected_from_ids() -> None:
    emg = _emg(20)
    dev = ganglion.GanglionVirtualDevice(emg)
    writes = [(w.char_uuid, w.data) for w in ganglion.PROFILE.start_writes(CFG)]
    recs = run_session(
        dev, writes, T0 - 100_000, T0 + 20_000_000, poll_us=10_000, att_mtu=23
    ).records()
    data = [i for i, u in enumerate(recs.char_uuid) if u == ganglion.RECEIVE_UUID]
    drop = {data[300], data[301], data[302]}
    keep = [i for i in range(len(recs)) if i not in drop]
    r2 = RawRecords(
        recs.t_us[keep],
        recs.kind[keep],
        [recs.char_uuid[i] for i in keep],
        [recs.payload[i] for i in keep],
        recs.conn_id[keep],
    )
    res = ganglion.PROFILE.decode_records(r2, CFG)
    s = res.streams["emg"]
    assert res.qc["emg"]["packets_lost"] == 3 and res.qc["emg"]["chain_breaks"] == 1
    assert [g.reason for g in res.gaps] == ["packet_loss"]
    jump = np.flatnonzero(np.diff(s.sample_seq) > 1)
    assert jump.size == 1 and np.diff(s.sample_seq)[jump[0]] == 7
    # before the hole values are exact; after it they carry the lost deltas' constant offset
    k = jump[0] + 1
    assert np.abs(s.values[:k] - emg.values[s.sample_seq[:k]]).max() <= ganglion.UV_PER_COUNT
    off = s.values[k:] - emg.values[s.sample_seq[k:]]
    assert np.ptp(off, axis=0).max() <= 2 * ganglion.UV_PER_COUNT


def test_delta_before_raw_is_a_sequence_error() -> None:
    emg = _emg(2)
    dev = ganglion.GanglionVirtualDevice(emg)
    writes = [(w.char_uuid, w.data) for w in ganglion.PROFILE.start_writes(CFG)]
    recs = run_session(
        dev, writes, T0 - 100_000, T0 + 2_000_000, poll_us=10_000, att_mtu=23
    ).records()
    first = next(i for i, u in enumerate(recs.char_uuid) if u == ganglion.RECEIVE_UUID)
    keep = [i for i in range(len(recs)) if i != first]
    r2 = RawRecords(
        recs.t_us[keep],
        recs.kind[keep],
        [recs.char_uuid[i] for i in keep],
        [recs.payload[i] for i in keep],
        recs.conn_id[keep],
    )
    res = ganglion.PROFILE.decode_records(r2, CFG)
    assert res.errors and all("before any raw packet" in e.error for e in res.errors)
    assert "emg" not in res.streams


def test_virtual_board_clips_deltas_it_cannot_send() -> None:
    n = 20
    vals = np.zeros((n, 4))
    vals[5:, 0] = 4000.0  # a 4 mV step: 2.1 M counts, far beyond a 19-bit delta
    emg = StreamSamples(
        "emg", T0 + np.arange(n) * 5000, vals, tuple("abcd"), "uV", 200.0, np.arange(n)
    )
    dev = ganglion.GanglionVirtualDevice(emg)
    dev.handle_write(ganglion.SEND_UUID, b"b", T0)
    pk = dev.poll(T0 + n * 5000)
    lim = (1 << 18) - 1
    deltas = [ganglion.decode_packet(p).values for _, p in pk[1:]]
    assert min(int(d.min()) for d in deltas) == -lim - 1  # clipped at the 19-bit rail
