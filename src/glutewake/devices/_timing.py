"""Shared step of every profile: device sample times -> UTC via the fitted clock model."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from glutewake.devices.clock import ClockModel, clock_segments, fit_clock


@dataclass(frozen=True)
class HostClock:
    """Clock models of one recording: one per run of a continuous device clock.

    Attributes
    ----------
    segment : int64 (p,)
        Clock segment of each packet (see :func:`clock_segments`).
    models : list of ClockModel
        The model of each segment.
    """

    segment: NDArray[np.int64]
    models: list[ClockModel]

    @property
    def qc(self) -> dict[str, Any]:
        """Clock figures for the QC ledger (from the segment with the most packets)."""
        if not self.models:
            return {
                "clock_offset_us": None,
                "clock_drift_ppm": None,
                "clock_segments": 0,
                "clock_latency_median_us": None,
            }
        big = max(self.models, key=lambda m: m.n_points)
        return {
            "clock_offset_us": float(big.offset_us),
            "clock_drift_ppm": float(big.drift_ppm),
            "clock_segments": len(self.models),
            "clock_latency_median_us": float(big.median_latency_us),
        }

    def map_into(
        self,
        sample_device_us: NDArray[np.int64],
        sample_segment: NDArray[np.int64] | None,
        out: NDArray[np.int64],
    ) -> None:
        """Write the host time of each sample into ``out``; ``sample_segment`` (the clock segment
        of each sample) may be None when there is one segment."""
        if len(self.models) == 1:
            self.models[0].to_host_us_into(sample_device_us, out)
            return
        if sample_segment is None:
            raise ValueError("several clock segments: sample_segment is needed")
        for s in np.unique(sample_segment).tolist():
            sm = sample_segment == s
            out[sm] = self.models[s].to_host_us(sample_device_us[sm])


def fit_host_clock(
    packet_device_us: NDArray[np.int64], packet_host_us: NDArray[np.int64]
) -> HostClock:
    """Fit one clock model per continuous device-clock segment of the packets.

    Parameters
    ----------
    packet_device_us, packet_host_us : int64 (p,)
        Device time of each packet's newest sample and the host time it was received, in
        arrival order.
    """
    if packet_device_us.size == 0:
        return HostClock(np.zeros(0, dtype=np.int64), [])
    seg = clock_segments(packet_device_us)
    n_seg = int(seg.max()) + 1
    if n_seg == 1:  # one continuous device clock (the usual case): no masks
        return HostClock(seg, [fit_clock(packet_device_us, packet_host_us)])
    models = []
    for s in range(n_seg):
        pm = seg == s
        models.append(fit_clock(packet_device_us[pm], packet_host_us[pm]))
    return HostClock(seg, models)


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
    clock = fit_host_clock(packet_device_us, packet_host_us)
    if not clock.models:
        return np.zeros(0, dtype=np.int64), clock.qc
    if len(clock.models) == 1:
        return clock.models[0].to_host_us(sample_device_us), clock.qc
    t_us = np.empty(sample_device_us.shape[0], dtype=np.int64)
    if sample_packet is None:
        if packet_rows is None:
            raise ValueError("map_to_host needs sample_packet or packet_rows")
        sample_packet = np.repeat(np.arange(packet_rows.size, dtype=np.int64), packet_rows)
    clock.map_into(sample_device_us, clock.segment[sample_packet], t_us)
    return t_us, clock.qc
