"""Every VirtualDevice says when its next notification is due, and that is exactly when it comes."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from glutewake.devices import ganglion, glutewake_open, metawear, movesense, polar_pmd
from glutewake.devices.base import StreamSamples, VirtualDevice

T0 = 1_780_000_000_000_000


def _sig(stream: str, fs: float, ch: int, seconds: float, scale: float) -> StreamSamples:
    n = int(fs * seconds)
    rng = np.random.default_rng(3)
    t = T0 + np.rint(np.arange(n) * 1e6 / fs).astype(np.int64)
    v = np.cumsum(rng.normal(0, scale, (n, ch)), axis=0) * 0.05 + scale
    names = tuple(f"c{i}" for i in range(ch)) if ch != 3 else ("x", "y", "z")
    return StreamSamples(stream, t, v, names, "", fs, np.arange(n))


def _polar() -> tuple[VirtualDevice, list[tuple[str, bytes]]]:
    dev = polar_pmd.PolarVirtualDevice(_sig("acc", 52, 3, 150, 0.2))
    w = polar_pmd.PROFILE.start_writes({"acc": {"sample_rate_hz": 52, "range_g": 8}})
    return dev, [(x.char_uuid, x.data) for x in w]


def _open() -> tuple[VirtualDevice, list[tuple[str, bytes]]]:
    dev = glutewake_open.GlutewakeOpenVirtualDevice(
        _sig("emg", 1000, 2, 5, 50.0), _sig("acc", 50, 3, 5, 0.5)
    )
    w = glutewake_open.PROFILE.start_writes(
        {"emg": {"fs_hz": 1000, "channels": 2}, "acc": {"fs_hz": 50}}
    )
    return dev, [(x.char_uuid, x.data) for x in w]


def _metawear() -> tuple[VirtualDevice, list[tuple[str, bytes]]]:
    dev = metawear.MetaWearVirtualDevice(_sig("acc", 100, 3, 10, 0.5))
    w = metawear.PROFILE.start_writes({"acc": {"sample_rate_hz": 100, "range_g": 8}})
    return dev, [(x.char_uuid, x.data) for x in w]


def _movesense() -> tuple[VirtualDevice, list[tuple[str, bytes]]]:
    sig = {s: _sig(s, 104, 3, 10, 1.0) for s in ("acc", "gyro", "mag")}
    dev = movesense.MovesenseVirtualDevice(sig)
    w = movesense.PROFILE.start_writes({"imu9": {"sample_rate_hz": 104}})
    return dev, [(x.char_uuid, x.data) for x in w]


def _ganglion() -> tuple[VirtualDevice, list[tuple[str, bytes]]]:
    dev = ganglion.GanglionVirtualDevice(_sig("emg", 200, 4, 10, 30.0))
    return dev, [(x.char_uuid, x.data) for x in ganglion.PROFILE.start_writes({"emg": {}})]


@pytest.mark.parametrize("make", [_polar, _open, _metawear, _movesense, _ganglion])
def test_next_due_is_exact_and_stepping_matches_fine_polling(
    make: Callable[[], tuple[VirtualDevice, list[tuple[str, bytes]]]],
) -> None:
    dev, writes = make()
    assert dev.next_due_us() is None  # nothing streaming yet
    for u, d in writes:
        dev.handle_write(u, d, T0)
    stepped: list[bytes] = []
    for _ in range(40):
        due = dev.next_due_us()
        assert due is not None
        assert dev.poll(due - 1) == []
        got = dev.poll(due)
        assert got
        stepped += [p for _, p in got]
    end = dev.next_due_us()
    assert end is not None
    fine_dev, _ = make()
    for u, d in writes:
        fine_dev.handle_write(u, d, T0)
    fine: list[bytes] = []
    for now in range(T0, end, 3_000):
        fine += [p for _, p in fine_dev.poll(now)]
    assert fine == stepped
    dev.link_lost(end)
    assert dev.next_due_us() is None
