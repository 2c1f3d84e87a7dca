"""Decode speed of compressed Polar PMD ACC frames (Verity Sense, 0x81) from a long recording.

Prints samples per second of:
- ``decode_frames``: the vectorized batch decoder the profile uses (goal >= 3 M samples/s);
- ``decode_frame``: one frame at a time (vendor rule timestamps included);
- ``PROFILE.decode_records``: the whole replay (routing, timestamps, clock model, gaps);
- a pure-Python reference decoder (bit by bit, as the vendor SDKs do), in the same run,
  checked to give identical integers.

Run: ``python benchmarks/decode_speed.py [hours]`` (default 8 h of 52 Hz ACC).
"""

from __future__ import annotations

import os
import sys
import time

import numpy as np

from glutewake.devices import polar_pmd
from glutewake.devices.base import RawRecords, RecordKind, StreamSamples

T0 = 1_780_000_000_000_000


def reference_decode(
    content: bytes, channels: int = 3, resolution_bits: int = 16
) -> list[list[int]]:
    """Pure-Python PMD delta decoding, one bit at a time (the reference)."""
    nbytes = (resolution_bits + 7) // 8
    ref = [
        int.from_bytes(content[i * nbytes : (i + 1) * nbytes], "little", signed=True)
        for i in range(channels)
    ]
    out = [ref]
    pos = channels * nbytes
    while pos < len(content):
        width, count = content[pos], content[pos + 1]
        pos += 2
        nb = (width * count * channels + 7) // 8
        bits = [(byte >> k) & 1 for byte in content[pos : pos + nb] for k in range(8)]
        pos += nb
        b = 0
        for _ in range(count):
            prev = out[-1]
            row = []
            for c in range(channels):
                v = 0
                for k in range(width):
                    v |= bits[b + k] << k
                b += width
                if v >> (width - 1):
                    v -= 1 << width
                row.append(prev[c] + v)
            out.append(row)
    return out


def recording(hours: float) -> tuple[list[bytes], RawRecords]:
    fs = 52.0
    n = int(hours * 3600 * fs)
    rng = np.random.default_rng(0)
    tt = np.arange(n) / fs
    # thigh-like: slow posture changes, gait bursts, sensor noise
    acc = np.stack(
        [
            np.cos(0.001 * tt) + 0.3 * np.sin(2 * np.pi * 1.8 * tt) * (np.sin(0.01 * tt) > 0.6),
            0.1 * np.sin(0.003 * tt),
            np.sin(0.001 * tt),
        ],
        axis=1,
    ) + rng.normal(0, 0.004, (n, 3))
    t_us = T0 + np.rint(tt * 1e6).astype(np.int64)
    sig = StreamSamples("acc", t_us, acc, ("x", "y", "z"), "g", fs, np.arange(n))
    dev = polar_pmd.PolarVirtualDevice(sig, att_mtu=232)
    start = polar_pmd.PROFILE.start_writes({"acc": {"sample_rate_hz": 52, "range_g": 8}})[0].data
    resp = dev.handle_write(polar_pmd.PMD_CONTROL_POINT_UUID, start, T0)
    frames: list[bytes] = []
    step = 60_000_000
    for now in range(T0 + step, int(t_us[-1]) + step, step):
        frames.extend(f for _, f in dev.poll(now))
    host = (
        T0
        + 30_000
        + np.arange(len(frames), dtype=np.int64) * int(3600e6 * hours / max(len(frames), 1))
    )
    k = len(frames)
    recs = RawRecords(
        t_us=np.concatenate([[T0, T0 + 1, T0 + 2], host]).astype(np.int64),
        kind=np.array(
            [RecordKind.CONNECT, RecordKind.WRITE, RecordKind.NOTIFY] + [RecordKind.NOTIFY] * k,
            dtype=np.int8,
        ),
        char_uuid=["", polar_pmd.PMD_CONTROL_POINT_UUID, polar_pmd.PMD_CONTROL_POINT_UUID]
        + [polar_pmd.PMD_DATA_UUID] * k,
        payload=[(232).to_bytes(2, "little"), start, resp[0][1], *frames],
        conn_id=np.zeros(k + 3, dtype=np.int64),
    )
    return frames, recs


def rate(n: int, seconds: float) -> str:
    return f"{n / seconds / 1e6:8.2f} M samples/s"


def main() -> None:
    hours = float(sys.argv[1]) if len(sys.argv) > 1 else 8.0
    t = time.perf_counter()
    frames, recs = recording(hours)
    print(
        f"recording: {hours:g} h ACC 52 Hz, {len(frames)} frames (0x81, MTU 232), "
        f"built in {time.perf_counter() - t:.1f} s"
    )

    best = cpu = 1e9
    for _ in range(5):
        t, c = time.perf_counter(), time.process_time()
        batch = polar_pmd.decode_frames(frames, measurement_type=2, frame_type=0x81)
        best = min(best, time.perf_counter() - t)
        cpu = min(cpu, time.process_time() - c)
    n = batch.raw.shape[0]
    print(f"decode_frames (vectorized batch): {rate(n, best)}   ({n} samples in {best:.3f} s)")
    # the machine is shared: CPU time of this process is the figure that does not depend on
    # what else runs (load average printed with it)
    print(
        f"  same, per CPU second:            {rate(n, cpu)}"
        f"   (load average {os.getloadavg()[0]:.1f})"
    )
    assert not batch.errors

    t = time.perf_counter()
    prev = None
    for f in frames:
        fr = polar_pmd.decode_frame(f, sample_rate_hz=52, previous_timestamp_ns=prev)
        prev = fr.timestamp_ns
    dt = time.perf_counter() - t
    print(f"decode_frame (one at a time):      {rate(n, dt)}")

    dt = dc = 1e9
    for _ in range(3):  # best of 3: the first call also pays for fresh memory pages
        t, c = time.perf_counter(), time.process_time()
        res = polar_pmd.PROFILE.decode_records(recs, {"acc": {"sample_rate_hz": 52, "range_g": 8}})
        dt, dc = min(dt, time.perf_counter() - t), min(dc, time.process_time() - c)
    print(f"PROFILE.decode_records (replay):   {rate(len(res.streams['acc']), dt)}")
    print(f"  same, per CPU second:            {rate(len(res.streams['acc']), dc)}")

    sub = frames[: max(1, len(frames) // 20)]
    t, c = time.perf_counter(), time.process_time()
    ref = [reference_decode(f[10:]) for f in sub]
    dt, dc = time.perf_counter() - t, time.process_time() - c
    m = sum(len(r) for r in ref)
    print(f"pure-Python reference decoder:     {rate(m, dt)}   (on {len(sub)} frames)")
    print(f"  same, per CPU second:            {rate(m, dc)}")
    flat = np.array([row for r in ref for row in r])
    assert np.array_equal(flat, batch.raw[: flat.shape[0]]), (
        "vectorized and reference decoders disagree"
    )
    print("reference and vectorized decoders agree on every sample")


if __name__ == "__main__":
    main()
