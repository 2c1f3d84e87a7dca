"""Shared step of every profile: device sample times -> UTC via the fitted clock model."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from glutewake.devices.clock import ClockModel, clock_segments, fit_clock


def map_to_host(
    packet_device_us: NDArray[np.int64],
    packet_host_us: NDArray[np.int64],
    sample_device_us: NDArray[np.int64],
    sample_packet: NDArray[np.int64] | None,
    *,
    packet_rows: NDArray[np.int64] | None = None,
) -> tuple[NDArray[np.int64], dict[str, Any]]:
    """Fit the clock on (packet device time, host receive time) pairs and map every sample.

    Parameters
    ----------
    packet_device_us, packet_host_us : int64 (p,)
        Device time of each packet's newest sample and the host time it was received, in
        arrival order.
    sample_device_us : int64 (n,)
        Device time of every sample.
    sample_packet : int64 (n,) or None
        Index (into the packet arrays) of the packet that carried each sample; None when
        ``packet_rows`` says it instead (samples in packet order).
    packet_rows : int64 (p,) or None
        Samples each packet carried (used when ``sample_packet`` is None; the per-sample index
        is then built only if the device clock restarted).

    Returns
    -------
    (t_us, qc): UTC microseconds per sample and the clock figures for the QC ledger.
    """
    qc: dict[str, Any] = {
        "clock_offset_us": None,
        "clock_drift_ppm": None,
        "clock_segments": 0,
        "clock_latency_median_us": None,
    }
    if packet_device_us.size == 0:
        return np.zeros(0, dtype=np.int64), qc
    seg = clock_segments(packet_device_us)
    n_seg = int(seg.max()) + 1
    models: list[ClockModel] = []
    if n_seg == 1:  # one continuous device clock (the usual case): no masks
        models.append(fit_clock(packet_device_us, packet_host_us))
        t_us = models[0].to_host_us(sample_device_us)
    else:
        t_us = np.empty(sample_device_us.shape[0], dtype=np.int64)
        if sample_packet is None:
            if packet_rows is None:
                raise ValueError("map_to_host needs sample_packet or packet_rows")
            sample_packet = np.repeat(np.arange(packet_rows.size, dtype=np.int64), packet_rows)
        for s in range(n_seg):
            pm = seg == s
            m = fit_clock(packet_device_us[pm], packet_host_us[pm])
            models.append(m)
            sm = pm[sample_packet]
            t_us[sm] = m.to_host_us(sample_device_us[sm])
    big = max(models, key=lambda m: m.n_points)
    qc.update(
        clock_offset_us=float(big.offset_us),
        clock_drift_ppm=float(big.drift_ppm),
        clock_segments=len(models),
        clock_latency_median_us=float(big.median_latency_us),
    )
    return t_us, qc
