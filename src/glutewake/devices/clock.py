"""Device clock anchored to host receive times, with drift, robust to latency outliers.

Every notification gives one pair: the device-clock time of the newest sample it carries and the
host-clock time it was received. A packet can only arrive *after* it was sent, so
``host - device = offset + drift * t + latency`` with ``latency >= 0``: the true clock relation
is the **lower envelope** of the points, and latency spikes (connection-interval waits,
retransmissions, a busy host) only push points up, never down. The fit is the line that stays
below every point and minimises the summed vertical distance to them: a linear program whose
solution is the edge of the points' lower convex hull spanning the mean device time. The
remaining bias is the minimum transport latency (typically one connection interval, 7.5-50 ms),
which no host-side method can observe; ``min_latency_us`` lets a caller remove a known value.

Pure numpy; no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

#: samples mapped per pass of :meth:`ClockModel.to_host_us`
_CHUNK = 1 << 16


@dataclass(frozen=True)
class ClockModel:
    """``host_us = device_us + offset_us + drift_ppm * 1e-6 * (device_us - ref_device_us)``.

    Attributes
    ----------
    ref_device_us : int
        Device time the offset refers to (the first point of the fit).
    offset_us : float
        Host minus device clock at ``ref_device_us`` (lower envelope, minus ``min_latency_us``).
    drift_ppm : float
        How much faster the host clock runs than the device clock, in parts per million.
    n_points : int
        Pairs the model was fitted on.
    span_s : float
        Device-time span of those pairs.
    median_latency_us : float
        Median height of the points above the envelope (the typical transport latency beyond
        the minimum), a quality figure for the QC ledger.
    """

    ref_device_us: int
    offset_us: float
    drift_ppm: float
    n_points: int
    span_s: float
    median_latency_us: float

    def to_host_us(self, device_us: ArrayLike) -> NDArray[np.int64]:
        """Map device-clock microseconds to host-clock (UTC) microseconds.

        Examples
        --------
        >>> m = ClockModel(0, 1000.0, 0.0, 1, 0.0, 0.0)
        >>> m.to_host_us([5]).tolist()
        [1005]
        """
        d = np.asarray(device_us, dtype=np.int64)
        if d.ndim != 1 or d.size <= _CHUNK:
            return d + self._correction(d)
        out = np.empty_like(d)
        for i in range(0, d.size, _CHUNK):  # day-long arrays: temporaries stay in cache
            part = d[i : i + _CHUNK]
            np.add(part, self._correction(part), out=out[i : i + _CHUNK])
        return out

    def to_host_us_into(self, device_us: NDArray[np.int64], out: NDArray[np.int64]) -> None:
        """:meth:`to_host_us` of a 1-D int64 array, written into ``out`` (same length)."""
        for i in range(0, device_us.size, _CHUNK):
            part = device_us[i : i + _CHUNK]
            np.add(part, self._correction(part), out=out[i : i + _CHUNK])

    def _correction(self, d: NDArray[np.int64]) -> NDArray[np.int64]:
        rel = (d - self.ref_device_us).astype(np.float64)
        return np.rint(self.offset_us + self.drift_ppm * 1e-6 * rel).astype(np.int64)


def _lower_hull(x_arr: NDArray[np.float64], y_arr: NDArray[np.float64]) -> list[int]:
    """Indices of the lower convex hull of points sorted by x (monotone chain)."""
    x, y = x_arr.tolist(), y_arr.tolist()  # Python floats: the same doubles, fast to index
    hull: list[int] = []
    for i in range(len(x)):
        while len(hull) >= 2:
            a, b = hull[-2], hull[-1]
            cross = (x[b] - x[a]) * (y[i] - y[a]) - (y[b] - y[a]) * (x[i] - x[a])
            if cross <= 0:
                hull.pop()
            else:
                break
        hull.append(i)
    return hull


def fit_clock(
    device_us: ArrayLike,
    host_us: ArrayLike,
    *,
    bin_s: float = 1.0,
    min_span_for_drift_s: float = 60.0,
    max_abs_drift_ppm: float = 1000.0,
    min_latency_us: float = 0.0,
) -> ClockModel:
    """Fit the device-to-host clock relation as the lower envelope of (device, host) pairs.

    Parameters
    ----------
    device_us, host_us : int64 arrays (n,)
        Device-clock time of the newest sample in each packet and host receive time, both in
        microseconds (device time already converted to the Unix epoch where the device has one).
    bin_s : float
        Points are first reduced to the lowest one per ``bin_s`` of device time, which bounds
        the hull computation for day-long recordings (error <= drift * bin_s, 1 µs at 1000 ppm).
    min_span_for_drift_s : float
        Below this span drift is not identifiable against latency jitter: it is fixed at 0.
    max_abs_drift_ppm : float
        A fitted drift beyond this (no crystal is that bad) means the envelope was dominated by
        too few points; the fit falls back to zero drift.
    min_latency_us : float
        Known minimum transport latency to subtract from the offset.

    Returns
    -------
    ClockModel

    Raises
    ------
    ValueError
        If there are no points or the arrays differ in length.

    Examples
    --------
    >>> import numpy as np
    >>> dev = np.arange(0, 600_000_000, 1_000_000)
    >>> host = dev + 5_000 + dev // 100_000 + 300  # 10 ppm drift, 300 µs minimum latency
    >>> m = fit_clock(dev, host)
    >>> round(m.drift_ppm, 3), round(m.offset_us)
    (10.0, 5300)
    """
    d = np.asarray(device_us, dtype=np.int64).reshape(-1)
    h = np.asarray(host_us, dtype=np.int64).reshape(-1)
    if d.shape != h.shape:
        raise ValueError(f"device_us has {d.size} points but host_us has {h.size}")
    if d.size == 0:
        raise ValueError("cannot fit a clock model to zero points")
    order = np.argsort(d, kind="stable")
    d, h = d[order], h[order]
    ref = int(d[0])
    x = (d - ref).astype(np.float64)
    y = (h - d).astype(np.float64)
    span_s = float(x[-1]) / 1e6

    # lowest point per bin
    bins = np.floor(x / (bin_s * 1e6)).astype(np.int64)
    o = np.lexsort((y, bins))
    first = np.ones(o.size, dtype=bool)
    first[1:] = bins[o][1:] != bins[o][:-1]
    xb, yb = x[o][first], y[o][first]

    offset = float(yb.min())
    drift = 0.0
    if span_s >= min_span_for_drift_s and xb.size >= 2:
        hull = _lower_hull(xb, yb)
        xh, yh = xb[hull], yb[hull]
        xm = float(x.mean())
        k = int(np.searchsorted(xh, xm, side="right")) - 1
        k = min(max(k, 0), len(hull) - 2)
        slope = (yh[k + 1] - yh[k]) / (xh[k + 1] - xh[k])
        if abs(slope) * 1e6 <= max_abs_drift_ppm:
            drift = float(slope * 1e6)
            offset = float(yh[k] - slope * xh[k])
    offset -= min_latency_us
    resid = y - (offset + drift * 1e-6 * x)
    return ClockModel(
        ref_device_us=ref,
        offset_us=offset,
        drift_ppm=drift,
        n_points=int(d.size),
        span_s=span_s,
        median_latency_us=float(np.median(resid)),
    )


def clock_segments(device_us: ArrayLike) -> NDArray[np.int64]:
    """Label runs of a continuous device clock: a new segment starts where device time goes back.

    A device clock that restarts (a reboot, a clock set by the phone app) makes one model wrong
    for both sides; each segment gets its own fit.
    """
    d = np.asarray(device_us, dtype=np.int64).reshape(-1)
    if d.size == 0:
        return np.zeros(0, dtype=np.int64)
    back = np.concatenate([[False], np.diff(d) < 0])
    return np.cumsum(back).astype(np.int64)
