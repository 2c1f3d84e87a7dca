"""Sensor orientation from the data: the upright reference direction of each mounting.

While a person walks, the segment the sensor sits on (thigh or pelvis) is, on average, upright,
so the mean gravity direction over walking epochs, in the sensor's own frame, is the segment's
long axis whatever way the sensor was put on (rotated, upside down, inside out). Walking is
recognised from movement alone (sustained acceleration variability), with no axis assumptions.

A recording is split into *mountings*: a new mounting starts after every non-wear period and
wherever the walking direction jumps by more than ``remount_angle_deg`` between consecutive
walking bouts (the sensor was moved on the body). Each mounting gets its own reference; a
mounting without walking borrows the nearest mounting's reference (flagged, lower confidence).
:func:`standing_reference` replaces a reference that the still postures contradict (standing
cannot read upright) by the direction of the cluster that sways like quiet standing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from glutewake.signal.runs import runs_of

__all__ = [
    "Orientation",
    "find_orientation",
    "inclination_deg",
    "standing_reference",
    "sway_deg",
    "unit_directions",
]


@dataclass(frozen=True)
class Orientation:
    """Upright reference per mounting.

    Attributes
    ----------
    mount_start_epoch : ndarray of int64, shape (n_mounts,)
        First epoch of each mounting (the first is 0).
    up_ref : ndarray, shape (n_mounts, 3)
        Unit vector of the segment's upright axis in the sensor frame (sign arbitrary:
        inclinations use the axis, not its sign).
    confidence : ndarray, shape (n_mounts,)
        0..1: walking time (saturating at ``full_confidence_s``) times the concentration of the
        walking directions (mean resultant length); 0 when borrowed or assumed.
    walking_epochs : ndarray of int64, shape (n_mounts,)
        Walking epochs behind each reference.
    source : tuple of str
        ``"walking"``, ``"borrowed"``, ``"prior"`` or ``"none"`` per mounting.
    walking : ndarray of bool, shape (n_epochs,)
        Epochs recognised as walking (sustained movement of walking intensity).
    """

    mount_start_epoch: np.ndarray
    up_ref: np.ndarray
    confidence: np.ndarray
    walking_epochs: np.ndarray
    source: tuple[str, ...]
    walking: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))

    def per_epoch(self, n_epochs: int) -> np.ndarray:
        """Reference vector for every epoch, shape (n_epochs, 3)."""
        bounds = np.append(self.mount_start_epoch, n_epochs)
        return np.repeat(self.up_ref, np.diff(bounds), axis=0)

    def as_dict(self, epoch_s: float) -> dict[str, object]:
        """Plain-Python form for QC ledgers (re-mount times in seconds from the start)."""
        return {
            "up_ref": self.up_ref.round(4).tolist(),
            "confidence": [round(float(c), 3) for c in self.confidence],
            "walking_epochs": [int(v) for v in self.walking_epochs],
            "source": list(self.source),
            "remount_s": [float(s * epoch_s) for s in self.mount_start_epoch[1:]],
        }


def unit_directions(mean_g: np.ndarray) -> np.ndarray:
    """Epoch means scaled to unit length (zero vectors stay zero)."""
    norm = np.linalg.norm(mean_g, axis=1, keepdims=True)
    return np.divide(mean_g, norm, out=np.zeros_like(mean_g, dtype=np.float64), where=norm > 0)


def inclination_deg(directions: np.ndarray, up_ref: np.ndarray) -> np.ndarray:
    """Angle in degrees between each direction's axis and the upright axis (0..90).

    ``up_ref`` is (3,) or (n, 3). The sign of either vector is ignored, so a sensor worn upside
    down gives the same inclination.
    """
    cos = directions @ up_ref if up_ref.ndim == 1 else np.einsum("ij,ij->i", directions, up_ref)
    return np.degrees(np.arccos(np.clip(np.abs(cos), 0.0, 1.0)))


def _angle(a: np.ndarray, b: np.ndarray) -> float:
    """Sign-free angle between two axes, degrees."""
    return float(np.degrees(np.arccos(min(1.0, abs(float(a @ b))))))


def _principal_axis(u: np.ndarray) -> tuple[np.ndarray, float]:
    """Dominant axis of a set of unit vectors (sign-free) and the mean resultant length."""
    scatter = u.T @ u
    _, vecs = np.linalg.eigh(scatter)
    axis = vecs[:, -1]
    signs = np.where(u @ axis >= 0, 1.0, -1.0)
    mean = (u * signs[:, None]).mean(axis=0)
    r = float(np.linalg.norm(mean))
    return (mean / r if r > 0 else axis), r


def _robust_axis(
    u: np.ndarray, weights: np.ndarray, keep_deg: float, mode_deg: float = 15.0
) -> tuple[np.ndarray, float]:
    """Densest direction of a set of unit vectors, weighted, then averaged within ``keep_deg``.

    The weight is the movement intensity, so the reference comes from the most vigorous
    sustained movement (walking, with heel strikes) rather than, say, smoother cycling.
    """
    pick = np.linspace(0, u.shape[0] - 1, min(u.shape[0], 2000)).astype(np.int64)
    pts, w = u[pick], weights[pick]
    cand = pts[np.linspace(0, pts.shape[0] - 1, min(pts.shape[0], 150)).astype(np.int64)]
    near = np.abs(cand @ pts.T) >= np.cos(np.radians(mode_deg))
    best = cand[int(np.argmax(near.astype(np.float64) @ w))]
    sel = inclination_deg(u, best) <= keep_deg
    axis, r = _principal_axis(u[sel])
    return axis, r * float(sel.mean())


def find_orientation(
    mean_g: np.ndarray,
    sd_g: np.ndarray,
    epoch_s: float,
    *,
    nonwear: np.ndarray | None = None,
    walk_sd_min_g: float = 0.15,
    walk_sd_max_g: float = 2.0,
    walk_min_s: float = 10.0,
    remount_angle_deg: float = 35.0,
    remount_confirm_s: float = 30.0,
    keep_deg: float = 30.0,
    full_confidence_s: float = 60.0,
    prior_up: np.ndarray | None = None,
) -> Orientation:
    """Find the upright reference of each mounting from walking periods.

    Parameters
    ----------
    mean_g, sd_g : ndarray, shape (n_epochs, 3)
        Calibrated per-epoch means and standard deviations.
    epoch_s : float
        Epoch length.
    nonwear : ndarray of bool, shape (n_epochs,), optional
        Non-wear epochs; each non-wear run ends a mounting and is never used as walking.
    walk_sd_min_g, walk_sd_max_g : float
        Range of the total standard deviation (root of the summed axis variances, rotation
        invariant) for walking epochs.
    walk_min_s : float
        Walking needs this many seconds of sustained movement.
    remount_angle_deg : float
        A change of walking direction larger than this between consecutive walking bouts is a
        re-mount candidate.
    remount_confirm_s : float
        ... confirmed once walking has kept the new direction this long (before any return to
        the old direction).
    keep_deg : float
        Walking epochs further than this from the dominant direction are ignored (robustness to
        cycling and other non-upright movement).
    full_confidence_s : float
        Walking time at which confidence saturates.
    prior_up : ndarray, shape (3,), optional
        Upright axis from a device profile, used only where no walking is found.

    Returns
    -------
    Orientation
    """
    n = mean_g.shape[0]
    u = unit_directions(np.asarray(mean_g, dtype=np.float64))
    sd_tot = np.sqrt(np.sum(np.asarray(sd_g, dtype=np.float64) ** 2, axis=1))
    nw = np.zeros(n, dtype=bool) if nonwear is None else np.asarray(nonwear, dtype=bool)
    moving = (sd_tot >= walk_sd_min_g) & (sd_tot <= walk_sd_max_g) & ~nw
    w_starts, w_ends = runs_of(moving)
    min_ep = max(1, round(walk_min_s / epoch_s))
    long_enough = (w_ends - w_starts) >= min_ep
    w_starts, w_ends = w_starts[long_enough], w_ends[long_enough]
    walking = np.zeros(n, dtype=bool)
    for s, e in zip(w_starts, w_ends, strict=True):
        walking[s:e] = True

    # Mount boundaries: after each non-wear run, and at walking-direction jumps.
    nw_starts, nw_ends = runs_of(nw)
    bounds = {0}
    bounds.update(int(e) for e in nw_ends if e < n)
    bounds.update(int(s) for s in nw_starts if s > 0)
    seg_edges = np.array([*sorted(bounds), n])
    bout_dirs = [_principal_axis(u[s:e])[0] for s, e in zip(w_starts, w_ends, strict=True)]
    bout_len_s = (w_ends - w_starts) * epoch_s
    bout_seg = np.searchsorted(seg_edges, w_starts, side="right") - 1
    # Reference per span of epochs; a mounting that is a whole segment reuses its segment's.
    axis_cache: dict[tuple[int, int], tuple[np.ndarray, float]] = {}

    def span_axis(lo: int, hi: int) -> tuple[np.ndarray, float]:
        if (lo, hi) not in axis_cache:
            sel = walking[lo:hi]
            axis_cache[lo, hi] = _robust_axis(u[lo:hi][sel], sd_tot[lo:hi][sel], keep_deg)
        return axis_cache[lo, hi]

    ref_prev: np.ndarray | None = None
    prev_end = 0
    for i, (s, e) in enumerate(zip(w_starts, w_ends, strict=True)):
        if i == 0 or bout_seg[i] != bout_seg[i - 1]:
            # Start each segment from its dominant walking direction, so that one odd first
            # bout cannot pass for a re-mount. Walking bouts never cross a segment edge (they
            # exclude non-wear), so the segment's walking epochs are exactly its bouts.
            seg = int(bout_seg[i])
            ref_prev = span_axis(int(seg_edges[seg]), int(seg_edges[seg + 1]))[0]
            prev_end = int(seg_edges[seg])
        assert ref_prev is not None
        if _angle(bout_dirs[i], ref_prev) <= remount_angle_deg:
            prev_end = int(e)
            continue
        # A new direction counts as a re-mount only when walking keeps that direction for at
        # least ``remount_confirm_s`` before any return to the old one; otherwise it was
        # movement that is not upright walking (a postural transition, cycling) and is ignored.
        total_s = 0.0
        for j in range(i, len(bout_dirs)):
            if bout_seg[j] != bout_seg[i] or _angle(bout_dirs[j], ref_prev) <= remount_angle_deg:
                break
            if _angle(bout_dirs[j], bout_dirs[i]) <= remount_angle_deg:
                total_s += float(bout_len_s[j])
        if total_s < remount_confirm_s:
            continue
        lo, hi = prev_end, int(s)
        cut = hi
        if hi > lo:
            # The re-mount is placed at the largest epoch-to-epoch jump between the two bouts.
            window = u[lo : hi + 1]
            cut = lo + 1 + int(np.argmax(inclination_deg(window[1:], window[:-1])))
        bounds.add(cut)
        ref_prev, prev_end = bout_dirs[i], int(e)

    starts = np.array(sorted(bounds), dtype=np.int64) if n else np.zeros(1, dtype=np.int64)
    ends = np.append(starts[1:], n)
    k = starts.size
    up = np.zeros((k, 3))
    conf = np.zeros(k)
    n_walk = np.zeros(k, dtype=np.int64)
    source: list[str] = ["none"] * k
    for i, (s, e) in enumerate(zip(starts, ends, strict=True)):
        sel = walking[s:e]
        n_walk[i] = int(sel.sum())
        if n_walk[i] >= min_ep:
            axis, r = span_axis(int(s), int(e))
            up[i] = axis
            conf[i] = r * min(1.0, n_walk[i] * epoch_s / full_confidence_s)
            source[i] = "walking"
    have = np.array([src == "walking" for src in source])
    for i in range(k):
        if have[i]:
            continue
        if have.any():
            cand = np.flatnonzero(have)
            j = cand[np.argmin(np.abs(cand - i))]
            up[i] = up[j]
            source[i] = "borrowed"
        elif prior_up is not None:
            p = np.asarray(prior_up, dtype=np.float64)
            up[i] = p / np.linalg.norm(p)
            source[i] = "prior"
        else:
            # No upright reference anywhere: the most common direction of the still epochs
            # is the best available guess (it makes that posture read as upright).
            s, e = starts[i], ends[i]
            still = (sd_tot[s:e] < walk_sd_min_g) & ~nw[s:e]
            pool = u[s:e][still] if still.any() else u[s:e]
            up[i] = _principal_axis(pool)[0] if pool.shape[0] else np.array([0.0, 0.0, 1.0])
    return Orientation(starts, up, conf, n_walk, tuple(source), walking)


def sway_deg(directions: np.ndarray, still: np.ndarray) -> np.ndarray:
    """Epoch-to-epoch change of direction (degrees) where an epoch and the one before it are
    both still, else NaN: the postural sway of quiet standing, absent in supported sitting."""
    n = directions.shape[0]
    out = np.full(n, np.nan)
    if n >= 2:
        cos = np.einsum("ij,ij->i", directions[1:], directions[:-1])
        ang = np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))
        both = still[1:] & still[:-1]
        out[1:][both] = ang[both]
    return out


def standing_reference(
    directions: np.ndarray,
    incl_deg: np.ndarray,
    still: np.ndarray,
    split_deg: float,
    *,
    stand_max_deg: float = 30.0,
    sway_ratio: float = 2.0,
    min_epochs: int = 30,
) -> np.ndarray | None:
    """A replacement upright reference when the walking reference is contradicted.

    With a valid reference, standing reads near upright. When even the least inclined still
    cluster of a mounting is far from upright (median beyond ``stand_max_deg``), the reference
    is stale (the sensor was moved on the body after the last walk, e.g. a phone taken out and
    pocketed again). Then the cluster that sways (quiet standing balances continuously;
    supported sitting does not) is taken as standing: if the inclined cluster's median sway is
    at least ``sway_ratio`` times the upright cluster's, its principal direction becomes the
    reference.

    Parameters
    ----------
    directions : ndarray, shape (n, 3)
        Unit epoch directions of one mounting.
    incl_deg : ndarray, shape (n,)
        Inclination from the current reference.
    still : ndarray of bool, shape (n,)
        Still, worn epochs.
    split_deg : float
        Current split between the upright and inclined clusters.
    stand_max_deg, sway_ratio, min_epochs : float, float, int
        See above; each cluster needs ``min_epochs`` still epochs.

    Returns
    -------
    ndarray, shape (3,), or None
        The new upright axis, or None when the reference stands.
    """
    upright = still & (incl_deg < split_deg)
    inclined = still & (incl_deg >= split_deg)
    if upright.sum() < min_epochs or inclined.sum() < min_epochs:
        return None
    if float(np.median(incl_deg[upright])) < stand_max_deg:
        return None
    sway = sway_deg(directions, still)
    s_up, s_in = sway[upright], sway[inclined]
    s_up, s_in = s_up[np.isfinite(s_up)], s_in[np.isfinite(s_in)]
    if s_up.size < min_epochs // 2 or s_in.size < min_epochs // 2:
        return None
    if float(np.median(s_in)) < sway_ratio * float(np.median(s_up)):
        return None
    return _principal_axis(directions[inclined])[0]
