"""OpenBCI Ganglion: packet formats, delta chain, dropped packets, replay of a virtual board."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from glutewake.devices import ganglion, get_profile
from glutewake.devices import ganglion_virtual as gv
from glutewake.devices.base import DecodeError, RawRecords, RecordKind, StreamSamples
from glutewake.devices.errors import (
    PayloadLengthError,
    TruncatedPacketError,
    UnknownMeasurementTypeError,
)

from ._sim import run_session

T0 = 1_780_000_000_000_000
CFG = {"emg": {"channels": ["glute_max_r", "glute_max_l", "biceps_femoris_r", "biceps_femoris_l"]}}


def test_raw_packet_layout() -> None:
    pkt = gv.raw_packet([1, -1, 0x123456, -(1 << 23)])
    assert len(pkt) == 20 and pkt[0] == 0
    assert pkt[1:13].hex() == "000001" + "ffffff" + "123456" + "800000"
    assert pkt[13:] == b"ABCDEFG"  # the firmware's padding
    p = ganglion.decode_packet(pkt)
    assert p.kind == "raw" and p.values.tolist() == [[1, -1, 0x123456, -(1 << 23)]]


def test_19bit_packet_is_msb_first_with_the_sign_in_bit_0() -> None:
    d = np.array([[2, 0, 0, 0], [0, 0, 0, -1]])
    pkt = gv.delta_packet(101, d)
    assert len(pkt) == 20
    bits = "".join(f"{b:08b}" for b in pkt[1:])
    assert bits[:19] == "0" * 17 + "10" and bits[-19:] == "1" * 19
    assert ganglion.decode_packet(pkt).values.tolist() == d.tolist()


def test_odd_positive_and_even_negative_deltas_are_rounded_towards_zero() -> None:
    d = np.array([[1, 3, -2, -4], [0, (1 << 19) - 1, -(1 << 19), 7]])
    got = ganglion.decode_packet(gv.delta_packet(150, d)).values
    assert got.tolist() == [[0, 2, -1, -3], [0, (1 << 19) - 2, -(1 << 19) + 1, 6]]
    assert got.tolist() == ganglion.transmitted_delta(d, bits=19).tolist()
    # beyond the field the board's delta wraps (the raw packet later puts the chain right)
    wrapped = ganglion.decode_packet(gv.delta_packet(150, [[1 << 19, 0, 0, 0], [0, 0, 0, 0]]))
    assert wrapped.values[0, 0] == 0


@settings(max_examples=120, deadline=None)
@given(pid=st.integers(1, 200), data=st.data(), acc=st.integers(-128, 127))
def test_delta_round_trip(pid: int, data: st.DataObject, acc: int) -> None:
    w = 18 if pid <= 100 else 19
    # the values the board can send exactly: non-negative even, negative odd
    half = st.integers(-(1 << (w - 1)), (1 << (w - 1)) - 1).map(lambda k: 2 * k + (k < 0))
    vals = data.draw(
        st.lists(
            half | st.sampled_from([-(1 << w) + 1, (1 << w) - 2, 0, -1]), min_size=8, max_size=8
        )
    )
    d = np.array(vals).reshape(2, 4)
    p = ganglion.decode_packet(gv.delta_packet(pid, d, accel_byte=acc))
    assert p.packet_id == pid and p.values.tolist() == d.tolist()
    assert p.kind == ("delta18" if pid <= 100 else "delta19")
    assert p.accel_byte == (acc if pid <= 100 else None)


@settings(max_examples=100, deadline=None)
@given(vals=st.lists(st.integers(-(1 << 23), (1 << 23) - 1), min_size=4, max_size=4))
def test_raw_round_trip(vals: list[int]) -> None:
    assert ganglion.decode_packet(gv.raw_packet(vals)).values.tolist() == [vals]


@pytest.mark.parametrize("firmware", [2, 3])
@pytest.mark.parametrize(
    ("data", "exc", "words"),
    [
        (bytes(19), TruncatedPacketError, "19 bytes"),
        (bytes(21), PayloadLengthError, "21 bytes"),
        (b"", TruncatedPacketError, "empty"),
        (bytes((250,)) + bytes(19), UnknownMeasurementTypeError, "250"),
        (bytes((208,)) + bytes(3), UnknownMeasurementTypeError, "208"),
        (bytes((206,)) + bytes(20), PayloadLengthError, "at most 20"),
    ],
)
def test_bad_packets(data: bytes, exc: type, words: str, firmware: int) -> None:
    with pytest.raises(exc, match=words) as info:
        ganglion.decode_packet(data, firmware=firmware)
    assert isinstance(info.value, DecodeError) and str(info.value).startswith("ganglion emg")


def test_firmware3_sends_no_packet_200_and_only_firmware_2_or_3_exist() -> None:
    with pytest.raises(UnknownMeasurementTypeError, match="200 is not sent by firmware 3"):
        ganglion.decode_packet(bytes((200,)) + bytes(19), firmware=3)
    with pytest.raises(ValueError, match="2 or 3"):
        ganglion.decode_packet(bytes(20), firmware=4)
    with pytest.raises(ValueError, match=r"neither 2\.x nor 3\.x"):
        ganglion.PROFILE.start_writes({"emg": {}, "firmware": "1.0.0"})


@pytest.mark.parametrize("firmware", [2, 3])
def test_short_impedance_and_message_packets_are_not_errors(firmware: int) -> None:
    # OpenBCI_Ganglion_Library: ASCII messages go out as serialIndex bytes (ids 206, 207:
    # ID_MULTI_PACKET, ID_MULTI_PACKET_STOP), impedance as digits then 'Z' (ids 201-205);
    # every 's' is answered with "stop running\n" in a 14-byte 207 packet
    for pkt in (b"\xcfstop running\n", bytes.fromhex("CF65640A"), b"\xc9123Z"):
        p = ganglion.decode_packet(pkt, firmware=firmware)
        assert p.values.shape == (0, 4) and p.kind == ("impedance" if pkt[0] < 206 else "message")


def test_ids_and_commands() -> None:
    assert get_profile("ganglion") is ganglion.PROFILE
    # the board's cycle: raw 0, then 101..200 (1..100 with the accelerometer), then raw again
    assert ganglion.next_packet_id(0) == 101 and ganglion.next_packet_id(200) == 0
    assert ganglion.next_packet_id(100, bits=18) == 0 and ganglion.next_packet_id(0, bits=18) == 1
    assert ganglion.next_packet_id(57) == 158 and ganglion.next_packet_id(157, bits=18) == 58
    # brainflow ganglion_native.cpp send_command: simpleble_peripheral_write_command (no response)
    assert [(w.data, w.with_response) for w in ganglion.PROFILE.start_writes(CFG)] == [
        (b"b", False)
    ]
    assert [(w.data, w.with_response) for w in ganglion.PROFILE.stop_writes(CFG)] == [(b"s", False)]
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


def _drop(recs: RawRecords, drop: set[int]) -> RawRecords:
    keep = [i for i in range(len(recs)) if i not in drop]
    return RawRecords(
        recs.t_us[keep],
        recs.kind[keep],
        [recs.char_uuid[i] for i in keep],
        [recs.payload[i] for i in keep],
        recs.conn_id[keep],
    )


def _board_records(emg: StreamSamples, firmware: str = "2.0.1") -> RawRecords:
    dev = ganglion.GanglionVirtualDevice(emg, firmware=firmware)
    writes = [(w.char_uuid, w.data) for w in ganglion.PROFILE.start_writes(CFG)]
    t_end = int(emg.t_us[-1]) + 5000
    return run_session(dev, writes, T0 - 100_000, t_end, poll_us=10_000, att_mtu=23).records()


def test_replay_virtual_board() -> None:
    emg = _emg(60)
    res = ganglion.PROFILE.decode_records(_board_records(emg), CFG)
    s = res.streams["emg"]
    assert res.errors == [] and res.gaps == [] and s.channel_names == tuple(CFG["emg"]["channels"])
    assert np.array_equal(s.sample_seq, np.arange(len(s)))
    err_counts = np.abs(s.values - emg.values[: len(s)]) / ganglion.UV_PER_COUNT
    # raw packets (every 201st sample) are exact; in between the board's sign-in-bit-0
    # rounding adds at most one count per sample
    at_raw = np.arange(0, len(s), ganglion.CYCLE_SAMPLES)
    assert err_counts[at_raw].max() <= 0.5 + 1e-6
    within = np.arange(len(s)) % ganglion.CYCLE_SAMPLES
    assert np.all(err_counts <= within[:, None] + 0.5 + 1e-6)
    assert 0 < np.median(err_counts) < 20  # a random walk of +-1 steps, not a bias
    err = s.t_us - emg.t_us[: len(s)]
    assert 0 < np.median(err) < 30_000 and np.ptp(err) < 12_000


def test_dropped_packets_detected_from_the_cycle_position() -> None:
    emg = _emg(20)
    recs = _board_records(emg)
    data = [i for i, u in enumerate(recs.char_uuid) if u == ganglion.RECEIVE_UUID]
    assert [recs.payload[data[k]][0] for k in (0, 1, 100, 101, 102)] == [0, 101, 200, 0, 101]
    # packets 250-252 are delta packets 48-50 of the third cycle (raw at 202, next at 303)
    res = ganglion.PROFILE.decode_records(_drop(recs, {data[250], data[251], data[252]}), CFG)
    s = res.streams["emg"]
    assert res.qc["emg"]["packets_lost"] == 3 and res.qc["emg"]["chain_breaks"] == 1
    assert [g.reason for g in res.gaps] == ["packet_loss"]
    jump = np.flatnonzero(np.diff(s.sample_seq) > 1)
    assert jump.size == 1 and np.diff(s.sample_seq)[jump[0]] == 7
    # after the hole values carry the lost deltas' constant offset until the next raw packet
    k = jump[0] + 1
    nxt = int(np.searchsorted(s.sample_seq, 3 * ganglion.CYCLE_SAMPLES))
    off = (s.values[k:nxt] - emg.values[s.sample_seq[k:nxt]]) / ganglion.UV_PER_COUNT
    assert np.abs(off).max() > 100  # a real offset: the lost deltas are large
    before = (s.values[k - 1] - emg.values[s.sample_seq[k - 1]]) / ganglion.UV_PER_COUNT
    assert np.abs(off - before).max() > 100
    resync = (s.values[nxt] - emg.values[s.sample_seq[nxt]]) / ganglion.UV_PER_COUNT
    assert np.abs(resync).max() <= 0.5 + 1e-6  # the raw packet puts the chain right


def test_a_lost_raw_packet_costs_one_sample() -> None:
    emg = _emg(5)
    recs = _board_records(emg)
    data = [i for i, u in enumerate(recs.char_uuid) if u == ganglion.RECEIVE_UUID]
    assert recs.payload[data[101]][0] == 0
    res = ganglion.PROFILE.decode_records(_drop(recs, {data[101]}), CFG)
    s = res.streams["emg"]
    assert res.qc["emg"]["packets_lost"] == 1 and res.qc["emg"]["chain_breaks"] == 1
    assert 201 not in s.sample_seq.tolist() and 202 in s.sample_seq.tolist()
    assert np.diff(s.sample_seq).max() == 2 and len(res.gaps) == 1
    # and two packets lost across the raw packet: 200 and 0 (three samples)
    res = ganglion.PROFILE.decode_records(_drop(recs, {data[100], data[101]}), CFG)
    assert res.qc["emg"]["packets_lost"] == 2
    assert np.diff(res.streams["emg"].sample_seq).max() == 4


def test_delta_before_raw_is_a_sequence_error() -> None:
    emg = _emg(2)
    recs = _board_records(emg)
    first = next(i for i, u in enumerate(recs.char_uuid) if u == ganglion.RECEIVE_UUID)
    res = ganglion.PROFILE.decode_records(_drop(recs, {first}), {**CFG, "firmware": "2.0.1"})
    # the whole first cycle (100 delta packets) cannot be placed; the next raw packet restarts
    assert len(res.errors) == 100
    assert all("before any raw packet" in e.error for e in res.errors)
    s = res.streams["emg"]
    assert s.sample_seq[0] == 0 and 190 < len(s) <= 400 - 201
    assert np.abs(s.values[0] - emg.values[201]).max() <= ganglion.UV_PER_COUNT / 2 + 1e-9


def test_virtual_board_wraps_deltas_beyond_19_bits_and_the_raw_packet_recovers() -> None:
    n = 2 * ganglion.CYCLE_SAMPLES
    vals = np.zeros((n, 4))
    vals[5:, 0] = 4000.0  # a 4 mV step: 2.1 M counts, beyond a 19-bit delta
    emg = StreamSamples(
        "emg", T0 + np.arange(n) * 5000, vals, tuple("abcd"), "uV", 200.0, np.arange(n)
    )
    dev = ganglion.GanglionVirtualDevice(emg, firmware="2.0.1")
    dev.handle_write(ganglion.SEND_UUID, b"b", T0)
    pk = [p for _, p in dev.poll(T0 + n * 5000)]
    step = int(dev.counts[5, 0])
    d = ganglion.decode_packet(pk[3]).values  # samples 5 and 6
    assert d[0, 0] == ganglion.transmitted_delta(-step, bits=19) and d[0, 0] != -step
    recs = RawRecords(
        T0 + np.arange(len(pk)) * 10_000,
        np.full(len(pk), int(RecordKind.NOTIFY), dtype=np.int8),
        [ganglion.RECEIVE_UUID] * len(pk),
        pk,
        np.zeros(len(pk), dtype=np.int64),
    )
    s = ganglion.PROFILE.decode_records(recs, {"emg": {}}).streams["emg"]
    assert abs(s.values[10, 0] - 4000.0) > 100  # garbage after the wrapped delta...
    assert abs(s.values[ganglion.CYCLE_SAMPLES, 0] - 4000.0) < 0.01  # ...until the raw packet


def test_stop_and_restart_in_one_connection_is_not_packet_loss() -> None:
    emg = _emg(30)
    dev = ganglion.GanglionVirtualDevice(emg, firmware="2.0.1")
    start = [(ganglion.SEND_UUID, b"b")]
    sp = run_session(dev, start, T0 - 100_000, T0 + 10_000_000, poll_us=10_000, att_mtu=23)
    # the host stops the board at 10 s and starts it again at 20 s (same connection)
    sp.add(T0 + 10_050_000, RecordKind.WRITE, ganglion.SEND_UUID, b"s", 0)
    dev.handle_write(ganglion.SEND_UUID, b"s", T0 + 10_050_000)
    run_session(dev, start, T0 + 20_000_000, T0 + 30_000_000, spool=sp, poll_us=10_000, att_mtu=23)
    res = ganglion.PROFILE.decode_records(sp.records(), CFG)
    s = res.streams["emg"]
    assert res.errors == [] and res.qc["emg"]["packets_lost"] == 0
    assert [g.reason for g in res.gaps] == ["stopped"]
    gap = res.gaps[0]
    assert 9_900_000 < gap.start_us - T0 < 10_100_000 and 19_900_000 < gap.end_us - T0 < 20_100_000
    # each stretch is timed on its own: the samples after the restart land at their true times
    late = s.t_us > T0 + 15_000_000
    first = int(np.searchsorted(emg.t_us, T0 + 20_001_000))
    truth = slice(first, first + int(late.sum()))
    assert np.abs(np.median(s.t_us[late] - emg.t_us[truth])) < 30_000
    assert np.abs(s.values[late] - emg.values[truth]).max() < 201 * ganglion.UV_PER_COUNT


# ---------------------------------------------------------------------------------------------
# Firmware 3: absolute most-significant bits, ids 0-99 (18-bit) and 100-199 (19-bit)
# ---------------------------------------------------------------------------------------------


def _fw3_records(
    emg: StreamSamples, *, accelerometer: bool = False, revisions: dict[str, bytes] | None = None
) -> RawRecords:
    """A firmware-3 board replayed as the collector spools it, with revision-string READs."""
    dev = ganglion.GanglionVirtualDevice(emg, firmware="3.0.2", accelerometer=accelerometer)
    writes = [(w.char_uuid, w.data) for w in ganglion.PROFILE.start_writes(CFG)]
    sp = run_session(dev, writes, T0 - 100_000, int(emg.t_us[-1]) + 5000, poll_us=10_000)
    for k, (uuid, value) in enumerate((revisions or {}).items()):
        sp.add(T0 - 99_000 + k, RecordKind.READ, uuid, value, 0)
    return sp.records()


def _sent_indices(n: int) -> np.ndarray:
    """Sample indices a firmware-3 board sends: each 201-sample cycle but its sample 200."""
    k = np.arange(n)
    return k[k % ganglion.CYCLE_SAMPLES != ganglion.CYCLE_SAMPLES - 1]


@pytest.mark.parametrize("accelerometer", [False, True], ids=["19bit", "18bit"])
def test_firmware3_board_replay_from_its_software_revision(accelerometer: bool) -> None:
    emg = _emg(30)
    recs = _fw3_records(
        emg, accelerometer=accelerometer, revisions={ganglion.SOFTWARE_REVISION_UUID: b"3.0.2"}
    )
    first_ids = [
        p[0]
        for p, u in zip(recs.payload, recs.char_uuid, strict=True)
        if u == ganglion.RECEIVE_UUID
    ]
    assert first_ids[:2] == ([255, 0] if accelerometer else [99, 100])  # the first cycle
    res = ganglion.PROFILE.decode_records(recs, CFG)
    s = res.streams["emg"]
    assert res.errors == [] and res.gaps == [] and res.qc["emg"]["packets_lost"] == 0
    assert res.qc["emg"]["firmware"] == 3 and res.qc["emg"]["firmware_from"] == "software revision"
    sent = _sent_indices(len(emg))[: len(s)]
    assert s.sample_seq.tolist() == sent.tolist()  # sample 200 of each cycle never arrives
    # the board sends the top 18/19 bits: values are the samples rounded down to 128/64 counts
    step = 128 if accelerometer else 64
    counts = np.clip(np.rint(emg.values[sent] / ganglion.UV_PER_COUNT), -(1 << 23), (1 << 23) - 1)
    expected = np.floor(counts / step) * step
    np.testing.assert_array_equal(np.rint(s.values / ganglion.UV_PER_COUNT), expected)
    err = s.t_us - emg.t_us[sent]
    assert 0 < np.median(err) < 30_000 and np.ptp(err) < 12_000


@pytest.mark.parametrize(
    ("revisions", "source"),
    [
        ({ganglion.FIRMWARE_REVISION_UUID: b"3.0.1"}, "firmware revision"),
        (  # both served: the Software Revision String, which the Ganglion firmware sets, wins
            {ganglion.SOFTWARE_REVISION_UUID: b"3.0.0", ganglion.FIRMWARE_REVISION_UUID: b"2.1"},
            "software revision",
        ),
        (  # a Software Revision String that names no Ganglion firmware: the other one decides
            {ganglion.SOFTWARE_REVISION_UUID: b"S130", ganglion.FIRMWARE_REVISION_UUID: b"3"},
            "firmware revision",
        ),
    ],
)
def test_firmware_from_whichever_revision_string_the_board_serves(
    revisions: dict[str, bytes], source: str
) -> None:
    res = ganglion.PROFILE.decode_records(_fw3_records(_emg(3), revisions=revisions), CFG)
    assert res.errors == [] and res.qc["emg"]["firmware_from"] == source
    assert len(res.streams["emg"]) > 500


def test_config_firmware_wins_over_the_revision_read() -> None:
    recs = _fw3_records(_emg(3), revisions={ganglion.SOFTWARE_REVISION_UUID: b"2.0.1"})
    wrong = ganglion.PROFILE.decode_records(recs, CFG)  # read as firmware-2 deltas: no raw packet
    assert "emg" not in wrong.streams and wrong.errors
    right = ganglion.PROFILE.decode_records(recs, {**CFG, "firmware": "3.0.2"})
    assert right.errors == [] and right.qc["emg"]["firmware_from"] == "config"
    assert right.qc["emg"]["firmware"] == 3 and len(right.streams["emg"]) > 500


@pytest.mark.parametrize("accelerometer", [False, True], ids=["19bit", "18bit"])
def test_firmware3_without_a_known_firmware_is_a_clear_error_not_garbage(
    accelerometer: bool,
) -> None:
    emg = _emg(5)
    recs = _fw3_records(emg, accelerometer=accelerometer)
    # drop the first cycle's odd first packet: the stream then opens with id 0 (18-bit) or 100
    data = [i for i, u in enumerate(recs.char_uuid) if u == ganglion.RECEIVE_UUID]
    res = ganglion.PROFILE.decode_records(_drop(recs, {data[0]}), CFG)
    assert "emg" not in res.streams
    [err] = res.errors
    assert err.error.startswith("ganglion emg: firmware unknown")
    assert "firmware='3.0.2'" in err.error
    assert res.qc["emg"]["undecoded_packets"] == len(data) - 1
    # read as firmware 2, an 18-bit stream's id 0 would have passed for a raw packet
    assert recs.payload[data[1]][0] == (0 if accelerometer else 100)


def test_firmware3_lost_packets_and_the_unsent_sample() -> None:
    emg = _emg(8)
    recs = _fw3_records(emg, revisions={ganglion.SOFTWARE_REVISION_UUID: b"3.0.2"})
    data = [i for i, u in enumerate(recs.char_uuid) if u == ganglion.RECEIVE_UUID]
    ids = [recs.payload[i][0] for i in data]
    assert ids[99:101] == [198, 100] and ids[199:201] == [199, 100]
    # lose packets 150-151 (mid-cycle), 199-200 (across the second wrap) and 99 (the first
    # cycle's last, whose successor restarts the regular numbering)
    lost_packets = (99, 150, 151, 199, 200)
    res = ganglion.PROFILE.decode_records(_drop(recs, {data[k] for k in lost_packets}), CFG)
    s = res.streams["emg"]
    assert res.errors == [] and res.qc["emg"]["packets_lost"] == 5
    assert [g.reason for g in res.gaps] == ["packet_loss"] * 3
    sent = _sent_indices(len(emg))
    lost = {k for p in lost_packets for k in sent[2 * p : 2 * p + 2].tolist()}
    kept = [k for k in sent[: len(s) + len(lost)].tolist() if k not in lost]
    assert s.sample_seq.tolist() == kept
    counts = np.rint(emg.values[s.sample_seq] / ganglion.UV_PER_COUNT)
    assert np.abs(np.rint(s.values / ganglion.UV_PER_COUNT) - counts).max() <= 64


def test_firmware2_board_still_decodes_without_firmware_information() -> None:
    res = ganglion.PROFILE.decode_records(_board_records(_emg(3)), CFG)
    assert res.errors == [] and res.qc["emg"]["firmware"] == 2
    assert res.qc["emg"]["firmware_from"] == "raw packet"


@settings(max_examples=150, deadline=None)
@given(
    pid=st.integers(0, 199),
    vals=st.lists(st.integers(-(1 << 23), (1 << 23) - 1), min_size=8, max_size=8),
)
def test_firmware3_round_trip_keeps_the_top_bits(pid: int, vals: list[int]) -> None:
    bits = 18 if pid < 100 else 19
    p = ganglion.decode_packet(gv.msb_packet(pid, np.reshape(vals, (2, 4))), firmware=3)
    step = 1 << (25 - bits)  # the board drops 6 (18-bit) or 5 (19-bit) bits and keeps the sign
    assert p.kind == f"msb{bits}" and p.packet_id == pid
    assert p.values.reshape(-1).tolist() == [(v // step) * step for v in vals]
