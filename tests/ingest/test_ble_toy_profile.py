"""A tiny test-only device profile (and its virtual device) for the BLE machinery tests.

The toy device streams one int16 channel; every notification carries a packet sequence number and
the device time of its first sample, and each sample's value is its global sample index modulo
2**15, so a decoded sample tells exactly which true sample it is.
"""

from __future__ import annotations

import struct
from typing import Any

import numpy as np

from glutewake.devices.base import (
    DecodeResult,
    DeviceProfile,
    Gap,
    GattWrite,
    PacketError,
    RawRecords,
    RecordKind,
    StreamSamples,
    VirtualDevice,
)

SERVICE = "a0e70001-5a1d-4b3c-9e2f-6c7d8e9f0a1b"
CONTROL = "a0e70002-5a1d-4b3c-9e2f-6c7d8e9f0a1b"
DATA = "a0e70003-5a1d-4b3c-9e2f-6c7d8e9f0a1b"
CONFIG = "a0e70004-5a1d-4b3c-9e2f-6c7d8e9f0a1b"
_HEAD = struct.Struct("<IqB")  # seq, device t_us of first sample, n samples


class ToyProfile(DeviceProfile):
    name = "toy"
    name_prefixes = ("Toy",)
    service_uuids = (SERVICE,)
    notify_uuids = (CONTROL, DATA)
    read_uuids = (CONFIG,)

    def start_writes(self, config: dict[str, Any]) -> list[GattWrite]:
        fs_hz = int(config.get("fs_hz", 100))
        return [GattWrite(CONTROL, b"\x01" + struct.pack("<H", fs_hz))]

    def stop_writes(self, config: dict[str, Any]) -> list[GattWrite]:
        return [GattWrite(CONTROL, b"\x00")]

    def required_mtu(self, config: dict[str, Any]) -> int:
        return 3 + _HEAD.size + 2 * int(config.get("per_packet", 10))

    def decode_records(self, records: RawRecords, config: dict[str, Any]) -> DecodeResult:
        res = DecodeResult()
        fs_hz = float(config.get("fs_hz", 100))
        t_all: list[np.ndarray] = []
        v_all: list[np.ndarray] = []
        seen: set[int] = set()
        lost = dups = reordered = packets = 0
        last_seq: int | None = None
        last_conn: int | None = None
        for i in range(len(records)):
            if records.kind[i] != RecordKind.NOTIFY or records.char_uuid[i] != DATA:
                continue
            payload = records.payload[i]
            try:
                seq, t0, n = _HEAD.unpack_from(payload)
                if len(payload) != _HEAD.size + 2 * n:
                    raise ValueError("length does not match sample count")
            except (struct.error, ValueError) as exc:
                res.errors.append(PacketError(int(records.t_us[i]), DATA, payload, str(exc)))
                continue
            packets += 1
            if seq in seen:
                dups += 1
                continue
            seen.add(seq)
            conn = int(records.conn_id[i])
            if last_seq is not None and conn == last_conn:
                if seq < last_seq:
                    reordered += 1
                elif seq > last_seq + 1:
                    lost += seq - last_seq - 1
            last_seq, last_conn = max(seq, last_seq or 0), conn
            values = np.frombuffer(payload, "<i2", n, _HEAD.size).astype(np.float64)
            t_all.append(t0 + np.round(np.arange(n) * 1e6 / fs_hz).astype(np.int64))
            v_all.append(values)
        if t_all:
            t = np.concatenate(t_all)
            v = np.concatenate(v_all)
            order = np.argsort(t, kind="stable")
            t, v = t[order], v[order]
            step = np.diff(t)
            for k in np.flatnonzero(step > 1.5e6 / fs_hz):
                res.gaps.append(Gap("toy", int(t[k]), int(t[k + 1]), "packet_loss"))
            res.streams["toy"] = StreamSamples(
                "toy", t, v[:, None], ("x",), "uV", fs_hz, np.arange(t.size, dtype=np.int64)
            )
        res.qc["toy"] = {
            "packets": packets,
            "packets_lost": lost,
            "duplicates": dups,
            "reordered": reordered,
            "clock_offset_us": 0,
            "clock_drift_ppm": 0.0,
        }
        return res


class ToyVirtualDevice(VirtualDevice):
    """Streams sample k (value k mod 2**15) at device time k / fs_hz from the epoch."""

    def __init__(self, per_packet: int = 10) -> None:
        self.per_packet = per_packet
        self.fs_hz = 100
        self.running = False
        self.next_sample = 0
        self.seq = 0

    def handle_write(self, char_uuid: str, data: bytes, now_us: int) -> list[tuple[str, bytes]]:
        if char_uuid == CONTROL and data[:1] == b"\x01":
            self.fs_hz = struct.unpack_from("<H", data, 1)[0]
            self.running = True
            # a (re)started stream begins at the current time, like a real sensor
            self.next_sample = int(now_us * self.fs_hz // 1_000_000) + 1
        elif char_uuid == CONTROL and data[:1] == b"\x00":
            self.running = False
        return [(CONTROL, b"\xf0" + data[:1] + b"\x00")]

    def read_value(self, char_uuid: str) -> bytes:
        if char_uuid == CONFIG:
            return struct.pack("<H", self.fs_hz)
        raise KeyError(char_uuid)

    def poll(self, now_us: int) -> list[tuple[str, bytes]]:
        out: list[tuple[str, bytes]] = []
        if not self.running:
            return out
        n = self.per_packet
        while (self.next_sample + n - 1) * 1_000_000 // self.fs_hz <= now_us:
            k = np.arange(self.next_sample, self.next_sample + n)
            t0 = self.next_sample * 1_000_000 // self.fs_hz
            payload = _HEAD.pack(self.seq, t0, n) + (k % 32768).astype("<i2").tobytes()
            out.append((DATA, payload))
            self.seq += 1
            self.next_sample += n
        return out

    def link_lost(self, now_us: int) -> None:
        self.running = False


PROFILE = ToyProfile()


def test_toy_round_trip() -> None:
    dev = ToyVirtualDevice()
    dev.handle_write(CONTROL, b"\x01" + struct.pack("<H", 100), 1_000_000_000_000)
    notes = dev.poll(1_000_000_500_000)
    assert len(notes) == 5
    recs = RawRecords(
        t_us=np.full(len(notes), 1_000_000_500_000, np.int64),
        kind=np.zeros(len(notes), np.int8),
        char_uuid=[u for u, _ in notes],
        payload=[p for _, p in notes],
        conn_id=np.ones(len(notes), np.int64),
    )
    res = PROFILE.decode_records(recs, {"fs_hz": 100})
    toy = res.streams["toy"]
    assert len(toy) == 50
    idx = toy.t_us * 100 // 1_000_000
    np.testing.assert_array_equal(toy.values[:, 0], idx % 32768)
    assert np.all(np.diff(idx) == 1)
    assert res.qc["toy"]["packets_lost"] == 0


def test_toy_decoder_counts_loss_and_duplicates() -> None:
    dev = ToyVirtualDevice()
    dev.handle_write(CONTROL, b"\x01" + struct.pack("<H", 100), 0)
    notes = dev.poll(1_000_000)
    payloads = [p for _, p in notes]
    kept = [payloads[0], payloads[0], payloads[2], *payloads[3:]]
    n = len(kept)
    recs = RawRecords(
        np.arange(n, dtype=np.int64), np.zeros(n, np.int8), [DATA] * n, kept, np.ones(n, np.int64)
    )
    qc = PROFILE.decode_records(recs, {}).qc["toy"]
    assert qc["duplicates"] == 1
    assert qc["packets_lost"] == 1
