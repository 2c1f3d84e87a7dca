"""Virtual wearables for ``glutewake collect --simulate`` and ``glutewake scan --simulate``.

Each registered profile with a :class:`VirtualDevice` model gets plausible signals (a thigh
accelerometer at rest with small movements; EMG-like noise bursts) starting now, and is served
by a :class:`VirtualPeripheral` on an in-process bumble link. The peripheral serves the GATT
table the model states from the vendor's sources, not the profile's, so collecting from it
checks the profile against the vendor. Signals cover ``duration_s`` (plus a margin), or one
hour when collection is unbounded (the device then falls silent, which the collector's watchdog
reports).
"""

from __future__ import annotations

import importlib
from typing import Any

import numpy as np

from glutewake.devices import get_profile
from glutewake.devices.base import StreamSamples, VirtualDevice
from glutewake.ingest.ble_bumble_backend import BumbleRadio, utc_now_us
from glutewake.ingest.peripheral import FaultPlan, VirtualPeripheral

#: signal length when no duration is given
UNBOUNDED_SIGNAL_S = 3600.0
_MARGIN_S = 30.0


#: profiles ``--simulate`` has a virtual device for
SIMULATED_PROFILES = ("polar-pmd", "glutewake-open", "ganglion", "movesense", "metawear")


class SimulationError(ValueError):
    """A profile that has no virtual device model, or a config it cannot simulate."""


def _acc_signal(start_us: int, duration_s: float, fs_hz: float, seed: int) -> StreamSamples:
    rng = np.random.default_rng(seed)
    n = int(duration_s * fs_hz) + 1
    t_us = start_us + np.round(np.arange(n) * 1e6 / fs_hz).astype(np.int64)
    t_s = np.arange(n) / fs_hz
    # a seated thigh: gravity along x, a slow sway and sensor noise
    values = np.column_stack(
        [
            0.98 + 0.02 * np.sin(2 * np.pi * 0.05 * t_s),
            0.10 + 0.03 * np.sin(2 * np.pi * 0.11 * t_s + 1.0),
            0.15 + 0.01 * rng.standard_normal(n),
        ]
    ) + 0.005 * rng.standard_normal((n, 3))
    return StreamSamples(
        "acc", t_us, values, ("x", "y", "z"), "g", fs_hz, np.arange(n, dtype=np.int64)
    )


def _emg_signal(
    start_us: int, duration_s: float, fs_hz: float, channels: list[str], seed: int
) -> StreamSamples:
    rng = np.random.default_rng(seed)
    n = int(duration_s * fs_hz) + 1
    t_us = start_us + np.round(np.arange(n) * 1e6 / fs_hz).astype(np.int64)
    t_s = np.arange(n) / fs_hz
    # 3 s contraction cycles: 1 s bursts of ~150 uV RMS over 5 uV baseline noise
    envelope = 5.0 + 150.0 * (np.mod(t_s, 3.0) < 1.0)
    values = rng.standard_normal((n, len(channels))) * envelope[:, None]
    return StreamSamples(
        "emg", t_us, values, tuple(channels), "uV", fs_hz, np.arange(n, dtype=np.int64)
    )


def _acc_config(config: dict[str, Any]) -> dict[str, Any]:
    acc = config.get("acc")
    return acc if isinstance(acc, dict) else {}


def virtual_device_for(
    profile_name: str,
    config: dict[str, Any],
    *,
    start_us: int,
    duration_s: float,
    seed: int = 0,
) -> VirtualDevice:
    """A virtual device of ``profile_name`` streaming synthetic signals from ``start_us``.

    Raises
    ------
    SimulationError
        If the profile has no virtual device model here.
    """
    if profile_name == "polar-pmd":
        polar = importlib.import_module("glutewake.devices.polar_pmd")
        fs_hz = float(_acc_config(config).get("sample_rate_hz", 52))
        signal = _acc_signal(start_us, duration_s, fs_hz, seed)
        return polar.PolarVirtualDevice(signal)
    if profile_name == "glutewake-open":
        gw = importlib.import_module("glutewake.devices.open_virtual")
        emg_cfg = config.get("emg", {})
        fs_hz = float(emg_cfg.get("fs_hz", 1000))
        channels = emg_cfg.get("channels", 2)
        labels = (
            [f"ch{i}" for i in range(channels)] if isinstance(channels, int) else list(channels)
        )
        emg = _emg_signal(start_us, duration_s, fs_hz, labels, seed)
        acc = None
        if isinstance(config.get("acc"), dict):
            acc = _acc_signal(start_us, duration_s, float(config["acc"].get("fs_hz", 50)), seed + 1)
        return gw.GlutewakeOpenVirtualDevice(emg, acc)
    if profile_name == "ganglion":
        gv = importlib.import_module("glutewake.devices.ganglion_virtual")
        labels = list(config.get("emg", {}).get("channels", [f"ch{i + 1}" for i in range(4)]))
        emg = _emg_signal(start_us, duration_s, 200.0, labels, seed)
        firmware = config.get("firmware", "3.0.2")
        return gv.GanglionVirtualDevice(emg, firmware=str(firmware))
    if profile_name == "movesense":
        mv = importlib.import_module("glutewake.devices.movesense_virtual")
        first = next((c for c in config.values() if isinstance(c, dict)), {})
        fs_hz = float(first.get("sample_rate_hz", 52))
        acc = _acc_signal(start_us, duration_s, fs_hz, seed)
        zeros = np.zeros_like(acc.values)
        signals = {
            "acc": acc,
            "gyro": StreamSamples(
                "gyro", acc.t_us, zeros, acc.channel_names, "deg/s", fs_hz, acc.sample_seq
            ),
            "mag": StreamSamples(
                "mag", acc.t_us, zeros + 0.4, acc.channel_names, "gauss", fs_hz, acc.sample_seq
            ),
        }
        return mv.MovesenseVirtualDevice(signals)
    if profile_name == "metawear":
        mw = importlib.import_module("glutewake.devices.metawear_virtual")
        acc_cfg = _acc_config(config)
        fs_hz = float(acc_cfg.get("sample_rate_hz", 100))
        signal = _acc_signal(start_us, duration_s, fs_hz, seed)
        return mw.MetaWearVirtualDevice(signal, chip=str(acc_cfg.get("chip", "bmi160")))
    raise SimulationError(
        f"no virtual device model for profile {profile_name!r} (simulate: "
        f"{', '.join(SIMULATED_PROFILES)})"
    )


async def start_virtual_peripherals(
    radio: BumbleRadio,
    names: list[str],
    *,
    config: dict[str, Any] | None = None,
    faults: FaultPlan | None = None,
    duration_s: float | None = None,
    seed: int = 0,
    keep_log: bool = True,
) -> list[VirtualPeripheral]:
    """Start one advertising virtual peripheral per profile name on ``radio``.

    ``keep_log=False``: the peripherals count what they send instead of logging every
    notification (a long simulated collection stays flat in memory).
    """
    from glutewake.ingest.supervisor import config_for

    peripherals = []
    start_us = utc_now_us()
    length_s = (duration_s or UNBOUNDED_SIGNAL_S) + _MARGIN_S
    for k, name in enumerate(names):
        profile = get_profile(name)
        cfg = config_for(profile, config)
        device = virtual_device_for(
            name, cfg, start_us=start_us, duration_s=length_s, seed=seed + k
        )
        peripheral = VirtualPeripheral(
            radio, profile, device, config=cfg, faults=faults, keep_log=keep_log
        )
        await peripheral.start()
        peripherals.append(peripheral)
    return peripherals
