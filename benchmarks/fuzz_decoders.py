"""Fuzz every device decoder with random and mutated packets: only DecodeError may come out.

For each decoder, >= 100,000 packets (default) are built from valid packets of every frame type
by bit flips, truncation, extension, byte insertion/deletion and random header fields, plus
purely random bytes. Every exception other than ``glutewake.devices.DecodeError`` is a failure.
The Polar batch decoder is also checked against the one-frame decoder: the same frames must be
accepted and give the same integers. Finally each profile's ``decode_records`` replays mutated
record streams (it must never raise).

Run: ``python benchmarks/fuzz_decoders.py [packets_per_decoder] [seed]``; exit status 1 on failure.
"""

from __future__ import annotations

import sys
import time
import traceback
from collections import Counter
from collections.abc import Callable

import numpy as np

from glutewake.devices import (
    ganglion,
    ganglion_virtual,
    glutewake_open,
    metawear,
    movesense,
    movesense_virtual,
    pmd_codec,
    polar_pmd,
)
from glutewake.devices.base import DecodeError, DeviceProfile, RawRecords, RecordKind

Rng = np.random.Generator


def mutate(rng: Rng, data: bytes) -> bytes:
    b = bytearray(data)
    op = rng.integers(0, 7)
    if op == 0 and b:  # bit flips
        for _ in range(int(rng.integers(1, 4))):
            i = int(rng.integers(0, len(b)))
            b[i] ^= 1 << int(rng.integers(0, 8))
    elif op == 1:  # truncate
        b = b[: int(rng.integers(0, len(b) + 1))]
    elif op == 2:  # extend
        b += rng.integers(0, 256, int(rng.integers(1, 20)), dtype=np.uint8).tobytes()
    elif op == 3 and b:  # delete a byte
        del b[int(rng.integers(0, len(b)))]
    elif op == 4:  # insert a byte
        b.insert(int(rng.integers(0, len(b) + 1)), int(rng.integers(0, 256)))
    elif op == 5 and b:  # random byte somewhere in the first 20 (headers, block headers)
        b[int(rng.integers(0, min(20, len(b))))] = int(rng.integers(0, 256))
    else:  # purely random
        b = bytearray(rng.integers(0, 256, int(rng.integers(0, 250)), dtype=np.uint8).tobytes())
    return bytes(b)


def walk(rng: Rng, n: int, ch: int, lo: int, hi: int) -> np.ndarray:
    start = rng.integers(lo // 2, hi // 2, ch)
    steps = rng.integers(
        -int(rng.choice([3, 100, 3000, 70000])), 1 + int(rng.choice([3, 100, 3000, 70000])), (n, ch)
    )
    return np.clip(start + np.cumsum(steps, axis=0), lo, hi).astype(np.int64)


def polar_seeds(rng: Rng) -> list[bytes]:
    out = []
    for mt, ft in pmd_codec.LAYOUTS:
        lay = pmd_codec.LAYOUTS[(mt, ft)]
        for _ in range(20):
            n = int(rng.integers(1, 80))
            bits = lay.resolution_bits
            raw = (
                rng.integers(0, 2**32, (n, lay.channels))
                if bits == 32
                else walk(rng, n, lay.channels, -(1 << (bits - 1)), (1 << (bits - 1)) - 1)
            )
            out.append(
                polar_pmd.encode_frame(mt, ft, raw, timestamp_ns=int(rng.integers(10**11, 2**62)))
            )
    return out


def run(name: str, seeds: list[bytes], fn: Callable[[bytes], object], n: int, rng: Rng) -> bool:
    counts: Counter[str] = Counter()
    bad: list[str] = []
    t = time.perf_counter()
    for i in range(n):
        data = mutate(rng, seeds[i % len(seeds)])
        try:
            fn(data)
            counts["decoded"] += 1
        except DecodeError as err:
            counts[type(err).__name__] += 1
        except Exception:
            counts["CRASH"] += 1
            if len(bad) < 3:
                bad.append(f"{data.hex()}\n{traceback.format_exc()}")
    dt = time.perf_counter() - t
    detail = ", ".join(f"{k} {v}" for k, v in counts.most_common())
    print(f"{name:28s} {n:8d} packets in {dt:5.1f} s: {detail}")
    for b in bad:
        print("  CRASH on", b)
    return counts["CRASH"] == 0


def polar_batch_agrees(rng: Rng, n: int) -> bool:
    """decode_frames accepts exactly the frames decode_delta_payload accepts, same values."""
    seeds = [f for f in polar_seeds(rng) if f[9] == 0x81 and f[0] == 2]
    frames = [
        mutate(rng, seeds[i % len(seeds)]) if rng.random() < 0.5 else seeds[i % len(seeds)]
        for i in range(n)
    ]
    batch = polar_pmd.decode_frames(frames, measurement_type=2, frame_type=0x81)
    rows = dict(
        zip(
            batch.frame_index.tolist(),
            np.split(batch.raw, np.cumsum(batch.frame_rows)[:-1]),
            strict=True,
        )
    )
    mismatch = 0
    for i, fr in enumerate(frames):
        try:
            if (
                len(fr) < 11
                or (fr[0] & 0x3F) != 2
                or fr[9] != 0x81
                or int.from_bytes(fr[1:9], "little") >= 2**63
            ):
                raise DecodeError("x", "y", "z")
            ref = polar_pmd.decode_delta_payload(fr[10:], channels=3, resolution_bits=16)
        except DecodeError as err:
            if i in rows:
                mismatch += 1
                print(f"  batch accepted, one-frame refused ({err}): {fr.hex()}")
            continue
        if i not in rows or not np.array_equal(rows[i], ref):
            mismatch += 1
            print(f"  batch {'refused' if i not in rows else 'differs'}: {fr.hex()}")
    print(
        f"{'polar batch vs one-frame':28s} {n:8d} frames: {len(rows)} accepted, "
        f"{mismatch} disagreements"
    )
    return mismatch == 0


def records_fuzz(
    rng: Rng,
    profile: DeviceProfile,
    config: dict,
    uuids: list[str],
    seeds: list[bytes],
    n_streams: int,
    label: str = "",
) -> bool:
    crashes = 0
    for _ in range(n_streams):
        k = int(rng.integers(1, 120))
        payload = [mutate(rng, seeds[int(rng.integers(0, len(seeds)))]) for _ in range(k)]
        kind = rng.choice(
            [RecordKind.NOTIFY] * 6
            + [RecordKind.WRITE, RecordKind.READ, RecordKind.CONNECT, RecordKind.DISCONNECT],
            k,
        )
        recs = RawRecords(
            t_us=np.sort(rng.integers(1_700_000_000_000_000, 1_700_000_100_000_000, k)).astype(
                np.int64
            ),
            kind=kind.astype(np.int8),
            char_uuid=[uuids[int(rng.integers(0, len(uuids)))] for _ in range(k)],
            payload=payload,
            conn_id=np.cumsum(rng.random(k) < 0.05).astype(np.int64),
        )
        try:
            profile.decode_records(recs, config)
        except Exception:
            crashes += 1
            if crashes <= 2:
                traceback.print_exc()
    name = f"{profile.name} decode_records{label}"
    print(f"{name:28s} {n_streams:8d} record streams: {crashes} crashes")
    return crashes == 0


def main() -> int:
    import argparse

    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("packets", nargs="?", type=int, default=100_000, help="per decoder")
    parser.add_argument("seed", nargs="?", type=int, default=0)
    args = parser.parse_args()
    n, seed = args.packets, args.seed
    rng = np.random.default_rng(seed)
    ok = True

    pseeds = polar_seeds(rng)
    cp = [
        polar_pmd.encode_response(
            2, 2, 0, polar_pmd.encode_settings({polar_pmd.SettingType.FACTOR: [1.0]})
        ),
        bytes.fromhex("F001020000000134000101100002010800040103"),
        polar_pmd.encode_measurement_stopped([2, 5]),
        polar_pmd.encode_start(
            2, {polar_pmd.SettingType.SAMPLE_RATE: [52], polar_pmd.SettingType.RANGE: [8]}
        ),
    ]
    ok &= run(
        "polar decode_frame",
        pseeds,
        lambda d: polar_pmd.decode_frame(d, sample_rate_hz=52, previous_timestamp_ns=10**11),
        n,
        rng,
    )
    ok &= run(
        "polar control point",
        cp,
        lambda d: (polar_pmd.parse_notification(d), polar_pmd.parse_request(d)),
        n,
        rng,
    )
    ok &= polar_batch_agrees(rng, min(n, 50_000))

    gseeds = [
        glutewake_open.encode_packet(
            int(rng.integers(1, 3)),
            seq=int(rng.integers(0, 65536)),
            t_dev_us=int(rng.integers(0, 2**40)),
            raw=walk(rng, int(rng.integers(1, 60)), int(rng.integers(1, 8)), -32768, 32767),
        )
        for _ in range(50)
    ]
    cfg = glutewake_open.OpenConfig(("a", "b"), 1000, 0.5, 3, 50, 1 / 4096).encode()
    ok &= run(
        "glutewake-open decode_packet",
        gseeds,
        lambda d: glutewake_open.decode_packet(d, att_mtu=247),
        n,
        rng,
    )
    ok &= run("glutewake-open config", [cfg], glutewake_open.OpenConfig.decode, n, rng)

    mseeds = [
        metawear.encode_notification(
            walk(rng, 1 if reg == 4 else 3, 3, -32768, 32767), register=reg
        )
        for reg in (0x04, 0x1C, 0x05)
        for _ in range(10)
    ]
    ok &= run(
        "metawear decode_notification",
        mseeds,
        lambda d: metawear.decode_notification(d, range_g=8),
        n,
        rng,
    )

    sseeds = []
    for m in ("acc", "imu6", "imu9"):
        for _ in range(10):
            k = int(rng.integers(1, 9))
            s = {x: rng.normal(0, 10, (k, 3)) for x in movesense.MEASUREMENTS[m][1]}
            sseeds.append(
                b"".join(
                    p[2:]
                    for p in movesense_virtual.notifications(0x61, s, int(rng.integers(0, 2**32)))
                )
            )
    ok &= run(
        "movesense decode_payload",
        sseeds,
        lambda d: [movesense.decode_payload(d, m) for m in ("acc", "imu6", "imu9")],
        n,
        rng,
    )

    messages = [b"\xcfstop running\n", b"\xce" + b"accelerometer enabl", b"\xc9123Z"]
    gan = (
        [ganglion_virtual.raw_packet(rng.integers(-(1 << 23), 1 << 23, 4))]
        + [
            ganglion_virtual.delta_packet(
                int(rng.integers(1, 201)), rng.integers(-(1 << 17), 1 << 17, (2, 4))
            )
            for _ in range(30)
        ]
        + messages
    )
    gan3 = [
        ganglion_virtual.msb_packet(
            int(rng.integers(0, 200)), rng.integers(-(1 << 23), 1 << 23, (2, 4))
        )
        for _ in range(30)
    ] + messages
    ok &= run("ganglion decode_packet fw2", gan, ganglion.decode_packet, n, rng)
    ok &= run(
        "ganglion decode_packet fw3", gan3, lambda d: ganglion.decode_packet(d, firmware=3), n, rng
    )

    n_streams = max(20, n // 500)
    ok &= records_fuzz(
        rng,
        polar_pmd.PROFILE,
        {"acc": {"sample_rate_hz": 52}},
        [polar_pmd.PMD_DATA_UUID, polar_pmd.PMD_CONTROL_POINT_UUID, ""],
        pseeds + cp,
        n_streams,
    )
    ok &= records_fuzz(
        rng,
        glutewake_open.PROFILE,
        {"emg": {"fs_hz": 1000, "channels": 2}},
        [
            glutewake_open.EMG_DATA_UUID,
            glutewake_open.ACC_DATA_UUID,
            glutewake_open.CONFIG_UUID,
            glutewake_open.COMMAND_UUID,
        ],
        [*gseeds, cfg],
        n_streams,
    )
    ok &= records_fuzz(
        rng,
        metawear.PROFILE,
        {"acc": {"sample_rate_hz": 100, "range_g": 8}},
        [metawear.NOTIFY_UUID, metawear.COMMAND_UUID],
        mseeds,
        n_streams,
    )
    ok &= records_fuzz(
        rng,
        movesense.PROFILE,
        {"imu9": {"sample_rate_hz": 52}},
        [movesense.NOTIFY_UUID, movesense.WRITE_UUID],
        [b"\x02\x69" + s for s in sseeds]
        + [b"\x03\x69" + s[:40] for s in sseeds]
        + [b"\x04\x63" + s[:20] for s in sseeds]
        + [b"\x01\x63/Meas/IMU9/104", b"\x01\x61/Meas/Acc/52", b"\x02\x63", b"\x01\x63Hello"],
        n_streams,
    )
    revisions = [b"3.0.2", b"2.0.1", b"3", b"Simblee"]
    gan_uuids = [
        ganglion.RECEIVE_UUID,
        ganglion.SEND_UUID,
        ganglion.SOFTWARE_REVISION_UUID,
        ganglion.FIRMWARE_REVISION_UUID,
    ]
    for cfg in ({"emg": {}}, {"emg": {}, "firmware": "3.0.2"}, {"emg": {}, "firmware": 2}):
        ok &= records_fuzz(
            rng,
            ganglion.PROFILE,
            cfg,
            gan_uuids,
            gan + gan3 + revisions + [b"b", b"s"],
            n_streams,
            f" fw {cfg.get('firmware', '?')}",
        )
    print("RESULT:", "only DecodeError raised, no crash" if ok else "FAILURES (see above)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
