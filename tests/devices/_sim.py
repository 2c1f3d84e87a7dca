"""Drive a VirtualDevice the way the collector would and spool what it sees (test helper)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from glutewake.devices.base import RawRecords, RecordKind, StreamSamples, VirtualDevice


@dataclass
class Spool:
    t_us: list[int] = field(default_factory=list)
    kind: list[int] = field(default_factory=list)
    char_uuid: list[str] = field(default_factory=list)
    payload: list[bytes] = field(default_factory=list)
    conn_id: list[int] = field(default_factory=list)

    def add(self, t: int, kind: RecordKind, uuid: str, data: bytes, conn: int) -> None:
        self.t_us.append(int(t))
        self.kind.append(int(kind))
        self.char_uuid.append(uuid)
        self.payload.append(bytes(data))
        self.conn_id.append(conn)

    def records(self) -> RawRecords:
        order = np.argsort(np.array(self.t_us, dtype=np.int64), kind="stable")
        return RawRecords(
            t_us=np.array(self.t_us, dtype=np.int64)[order],
            kind=np.array(self.kind, dtype=np.int8)[order],
            char_uuid=[self.char_uuid[i] for i in order],
            payload=[self.payload[i] for i in order],
            conn_id=np.array(self.conn_id, dtype=np.int64)[order],
        )


def sine_acc(t0_us: int, duration_s: float, fs_hz: float = 52.0, seed: int = 0) -> StreamSamples:
    """A smooth 3-axis thigh-like acceleration signal in g at the nominal rate."""
    rng = np.random.default_rng(seed)
    n = int(duration_s * fs_hz)
    t_us = t0_us + np.rint(np.arange(n) * 1e6 / fs_hz).astype(np.int64)
    tt = np.arange(n) / fs_hz
    vals = np.stack(
        [
            0.98 * np.cos(0.05 * tt) + 0.05 * np.sin(2 * np.pi * 1.8 * tt),
            0.15 * np.sin(0.07 * tt),
            0.98 * np.sin(0.05 * tt) + 0.01 * rng.standard_normal(n),
        ],
        axis=1,
    )
    return StreamSamples(
        "acc", t_us, vals, ("x", "y", "z"), "g", fs_hz, np.arange(n, dtype=np.int64)
    )


def run_session(
    dev: VirtualDevice,
    writes: list[tuple[str, bytes]],
    t_start_us: int,
    t_end_us: int,
    *,
    spool: Spool | None = None,
    conn_id: int = 0,
    att_mtu: int = 232,
    poll_us: int = 20_000,
    seed: int = 1,
    outlier_rate: float = 0.02,
) -> Spool:
    """Connect, write, poll until t_end with random BLE latency, and spool everything."""
    rng = np.random.default_rng(seed)
    sp = spool if spool is not None else Spool()
    sp.add(t_start_us, RecordKind.CONNECT, "", att_mtu.to_bytes(2, "little"), conn_id)
    t = t_start_us + 1000
    for uuid, data in writes:
        sp.add(t, RecordKind.WRITE, uuid, data, conn_id)
        for nu, nd in dev.handle_write(uuid, data, t):
            sp.add(t + 15_000, RecordKind.NOTIFY, nu, nd, conn_id)
        t += 30_000
    now = t
    last_rx = 0
    while now <= t_end_us:
        for nu, nd in dev.poll(now):
            lat = 7_500 + rng.exponential(8_000)
            if rng.random() < outlier_rate:
                lat += rng.uniform(100_000, 800_000)
            # one link delivers in order: a delayed packet holds back the ones behind it
            last_rx = max(last_rx + 50, now + int(lat))
            sp.add(last_rx, RecordKind.NOTIFY, nu, nd, conn_id)
        now += poll_us
    return sp
