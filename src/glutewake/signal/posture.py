"""Per-epoch posture from one body-worn accelerometer (thigh or waist), any orientation.

Pipeline for one contiguous segment (no gaps): per-epoch means and standard deviations
(:mod:`~glutewake.signal.epochs`) -> auto-calibration (:mod:`~glutewake.signal.calibration`)
-> non-wear (:mod:`~glutewake.signal.nonwear`) -> upright reference per mounting from walking
(:mod:`~glutewake.signal.orientation`; thigh: replaced from the swaying still cluster when
standing cannot read upright) -> inclination of the segment's long axis from that reference
plus movement intensity -> posture codes -> minimum-duration smoothing that keeps brief
stands between sitting (thigh; waist: transition step, sitting between lying) -> sit/upright
changes placed at the sample (thigh, :mod:`~glutewake.signal.edges`).
The method and its defaults are documented in ``docs/sitting.md``.
"""

from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass, field
from enum import IntEnum

import numpy as np
import numpy.typing as npt

from glutewake.signal.calibration import Calibration, apply_calibration, calibrate_from_epochs
from glutewake.signal.edges import change_points
from glutewake.signal.epochs import EpochFeatures, epoch_features
from glutewake.signal.nonwear import nonwear_mask
from glutewake.signal.orientation import (
    find_orientation,
    inclination_deg,
    standing_reference,
    unit_directions,
)
from glutewake.signal.placement import guess_placement
from glutewake.signal.runs import fill_short_runs, run_bounds, runs_of
from glutewake.signal.transitions import period_displacements

__all__ = [
    "PLACEMENTS",
    "Posture",
    "PostureParams",
    "PostureResult",
    "analyse_posture",
    "classify_epochs",
    "sitting_mask",
]

PLACEMENTS = ("thigh", "waist", "auto")


class Posture(IntEnum):
    """Posture codes stored per epoch (int8)."""

    NONWEAR = 0
    SITTING = 1
    STANDING = 2
    MOVING = 3
    LYING = 4
    CYCLING = 5


SEDENTARY = (Posture.SITTING, Posture.LYING)
#: moving average applied to the samples before placing a sit/upright change within an epoch
EDGE_SMOOTH_S = 0.25
UPRIGHT = (Posture.STANDING, Posture.MOVING, Posture.CYCLING)


@dataclass(frozen=True)
class PostureParams:
    """Documented, configurable defaults of the posture classifier (see docs/sitting.md).

    Attributes
    ----------
    epoch_s : float
        Classification epoch (1 s).
    thigh_sit_angle_deg : float
        Thigh: sitting when the thigh's long axis is at least this far from upright (45°, the
        thigh-inclinometer convention of activPAL and Acti4).
    waist_sit_angle_deg : float
        Waist: sitting when the pelvis is at least this far from upright and still (12°).
    waist_lie_angle_deg : float
        Waist: lying when at least this far from upright (60°).
    adaptive_split : bool
        Thigh: per mounting, replace the sitting angle by the Otsu split between the upright
        and the inclined clusters of still epochs when both are present
        (see :func:`split_angle_deg`).
    waist_adaptive_split : bool
        The same for the waist (off by default: on hapt, with the transition step, it
        changed pooled F1 by -0.001 and lowered transition precision from 0.87 to 0.82).
    thigh_split_min_deg, thigh_split_max_deg : float
        Range allowed for the thigh's adaptive split (25°..60°).
    waist_split_min_deg, waist_split_max_deg : float
        Range allowed for the waist's adaptive split (6°..30°).
    move_sd_g : float
        Moving when the total standard deviation (root of summed axis variances) exceeds this
        (0.1 g).
    still_sd_g : float
        Still (for calibration and non-wear) when every axis' standard deviation is below this
        (13 mg).
    walk_sd_min_g : float
        Walking (for the upright reference) needs at least this total standard deviation
        (0.15 g; postural transitions and fidgets are weaker).
    walk_min_s : float
        Movement must last this long to serve as walking for the upright reference (10 s;
        postural transitions last 2-8 s).
    remount_angle_deg : float
        Walking-direction change that makes a re-mount candidate (35°).
    remount_confirm_s : float
        Walking time in the new direction that confirms a re-mount (30 s).
    nonwear_min_s : float
        Shortest still period counted as non-wear (3600 s).
    cycling_min_s : float
        Thigh: movement with the thigh inclined must last this long to count as cycling rather
        than fidgeting while seated (10 s).
    cycling_angle_deg : float
        Thigh: sustained movement at least this far from upright (or beyond the sitting split
        if lower) is cycling (40°; the thigh swings through 30-90° on a bicycle).
    min_posture_s : float
        Postures lasting less than this are absorbed into the preceding posture (3 s) ...
    thigh_min_stand_s : float
        ... except, for the thigh, an upright period (standing, moving) between two sitting
        periods lasting at least this (1 s: any upright epoch): a brief stand is real
        posture, whether or not it counts as a break (that is the break rule's
        ``min_break_s``). A large value restores the old smoothing, which called stands of up
        to 3 s sitting.
    sample_edges : bool
        Thigh, with the samples: place each change between sitting and standing or moving at
        the sample where the thigh crosses the sitting angle (within the two epochs around
        the change; :mod:`~glutewake.signal.edges`), for :meth:`PostureResult.sample_mask`
        and :func:`sitting_mask`. Per-epoch posture is not changed.
    hysteresis_deg : float
        Dead band around the sitting angle: inside ``split ± hysteresis_deg`` an epoch keeps
        the previous decision (2°), so posture does not flicker at the threshold.
    sedentary_move_max_s : float
        Waist: movement no longer than this between two sedentary postures (sit-to-lie,
        lie-to-sit) stays sedentary (10 s).
    waist_use_transitions : bool
        Waist: decide sitting versus standing of each still period from the vertical
        displacement of the pelvis across the movements into and out of it (needs the
        samples; see :mod:`glutewake.signal.transitions`).
    transition_max_s : float
        Longest movement between two still periods treated as one postural transition (8 s).
    transition_min_m : float
        Net drop-in plus rise-out (metres) needed to overrule the inclination (0.15 m).
    transition_override_deg : float
        ... but only for periods whose inclination is within this of the split (6°).
    lying_bridge_max_s : float
        Waist: a standing period no longer than this between two lying periods, reached from
        and left to them within ``sedentary_move_max_s`` (a transition, no walking), is
        sitting (1800 s): getting up from lying to stand still and lie down again without a
        step is rare, sitting up on the bed or sofa is common, and an upright sitter's
        pelvis can read as upright as standing. 0 turns the rule off.
    lying_bridge_min_deg : float
        ... counting only clear lying, whose mean inclination is at least this (70°): a
        reclined sit can read 60-66° at the pelvis (HAPT) and must not anchor the rule.
    thigh_stand_max_deg : float
        Thigh: with a valid upright reference quiet standing reads near upright; when even the
        least inclined still cluster of a mounting reads beyond this (30°), the reference is
        stale (the sensor was moved on the body after the last walk) and ...
    stand_sway_ratio : float
        ... the still cluster whose epoch-to-epoch sway is at least this many times the other's
        (2) is taken as standing and its direction becomes the mounting's reference (see
        :func:`~glutewake.signal.orientation.standing_reference`). 90 turns the check off.
    auto_swing_deg : float
        ``placement="auto"``: thigh when the gravity direction sways by at least this much
        while walking (90th percentile, 14°), else waist (see :mod:`~glutewake.signal.placement`).
    calibrate : bool
        Run auto-calibration (identity when it cannot succeed).
    prior_up : tuple of float, optional
        Device-profile upright axis, used only for mountings with no walking at all.
    """

    epoch_s: float = 1.0
    thigh_sit_angle_deg: float = 45.0
    waist_sit_angle_deg: float = 12.0
    waist_lie_angle_deg: float = 60.0
    adaptive_split: bool = True
    thigh_split_min_deg: float = 25.0
    thigh_split_max_deg: float = 60.0
    waist_adaptive_split: bool = False
    waist_split_min_deg: float = 6.0
    waist_split_max_deg: float = 30.0
    move_sd_g: float = 0.1
    still_sd_g: float = 0.013
    walk_sd_min_g: float = 0.15
    walk_min_s: float = 10.0
    remount_angle_deg: float = 35.0
    remount_confirm_s: float = 30.0
    nonwear_min_s: float = 3600.0
    cycling_min_s: float = 10.0
    cycling_angle_deg: float = 40.0
    min_posture_s: float = 3.0
    thigh_min_stand_s: float = 1.0
    sample_edges: bool = True
    hysteresis_deg: float = 2.0
    sedentary_move_max_s: float = 10.0
    waist_use_transitions: bool = True
    transition_max_s: float = 8.0
    transition_min_m: float = 0.15
    transition_override_deg: float = 6.0
    lying_bridge_max_s: float = 1800.0
    thigh_stand_max_deg: float = 30.0
    stand_sway_ratio: float = 2.0
    lying_bridge_min_deg: float = 70.0
    auto_swing_deg: float = 14.0
    calibrate: bool = True
    prior_up: tuple[float, float, float] | None = None

    def __post_init__(self) -> None:
        for name in ("epoch_s", "move_sd_g", "still_sd_g", "nonwear_min_s"):
            value = getattr(self, name)
            if not np.isfinite(value) or value <= 0:
                raise ValueError(f"PostureParams.{name} must be positive, got {value!r}")
        for name in ("thigh_sit_angle_deg", "waist_sit_angle_deg", "waist_lie_angle_deg"):
            value = getattr(self, name)
            if not 0 < value < 90:
                raise ValueError(f"PostureParams.{name} must be in (0, 90) degrees, got {value!r}")
        if self.waist_lie_angle_deg <= self.waist_sit_angle_deg:
            raise ValueError("PostureParams.waist_lie_angle_deg must exceed waist_sit_angle_deg")
        if not self.lying_bridge_max_s >= 0:
            raise ValueError(
                f"PostureParams.lying_bridge_max_s must be >= 0, got {self.lying_bridge_max_s!r}"
            )
        for name in ("lying_bridge_min_deg", "thigh_stand_max_deg"):
            value = getattr(self, name)
            if not 0 < value <= 90:
                raise ValueError(f"PostureParams.{name} must be in (0, 90] degrees, got {value!r}")
        if not self.thigh_min_stand_s >= 0:
            raise ValueError(
                f"PostureParams.thigh_min_stand_s must be >= 0, got {self.thigh_min_stand_s!r}"
            )
        if not (np.isfinite(self.stand_sway_ratio) and self.stand_sway_ratio > 0):
            raise ValueError(
                f"PostureParams.stand_sway_ratio must be positive, got {self.stand_sway_ratio!r}"
            )


@dataclass(frozen=True)
class PostureResult:
    """Posture of one contiguous segment.

    Attributes
    ----------
    epoch_s : float
        Epoch length actually used (whole samples: ``round(fs_hz * epoch_s) / fs_hz``).
    samples_per_epoch : int
    posture : ndarray of int8, shape (n_epochs,)
        :class:`Posture` codes. Samples after the last complete epoch take its code in
        :func:`sitting_mask`.
    inclination_deg : ndarray of float32, shape (n_epochs,)
        Angle of the segment's long axis from the mounting's upright reference.
    qc : dict
        Ledger: placement, calibration, orientation (reference, confidence, re-mount times),
        non-wear seconds, parameters.
    edge_epoch, edge_sample : ndarray of int64
        Sit/upright changes placed within the samples (thigh, when the samples were given):
        the change between epochs ``edge_epoch - 1`` and ``edge_epoch`` happens at sample
        ``edge_sample`` (at most one epoch either side of the epoch boundary).
    """

    epoch_s: float
    samples_per_epoch: int
    posture: np.ndarray
    inclination_deg: np.ndarray
    qc: dict[str, object] = field(default_factory=dict)
    edge_epoch: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    edge_sample: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    def sample_mask(self, n_samples: int, codes: tuple[int, ...] = tuple(SEDENTARY)) -> np.ndarray:
        """Per-sample boolean mask of the given posture codes (default sitting or lying).

        Each sample takes its epoch's posture, except around the sit/upright changes placed
        within the samples (``edge_sample``), where it takes the posture of its side of the
        change.
        """
        ep = np.isin(self.posture, np.asarray(codes, dtype=np.int8))
        out = np.zeros(n_samples, dtype=bool)
        if ep.size == 0:
            return out
        spe = self.samples_per_epoch
        m = min(n_samples, ep.size * spe)
        out[:m] = np.repeat(ep, spe)[:m]
        out[m:] = ep[-1]
        # one short slice per change (at most an epoch of samples each), not per sample
        for b, at in zip(self.edge_epoch.tolist(), self.edge_sample.tolist(), strict=True):
            boundary = b * spe
            if at < boundary:
                out[at:boundary] = ep[b]
            elif at > boundary:
                out[boundary:at] = ep[b - 1]
        return out


def hysteresis(values: np.ndarray, threshold: np.ndarray | float, band: float) -> np.ndarray:
    """``values >= threshold`` with a dead band: inside ``threshold ± band`` the previous
    state is kept (the first epochs use the plain comparison)."""
    thr = np.broadcast_to(np.asarray(threshold, dtype=np.float64), values.shape)
    plain = values >= thr
    if band <= 0 or values.size == 0:
        return plain
    decided = (values >= thr + band) | (values < thr - band)
    idx = np.where(decided, np.arange(values.size), -1)
    np.maximum.accumulate(idx, out=idx)
    out = plain.copy()
    has = idx >= 0
    out[has] = plain[idx[has]]
    return out


def _absorb_between(
    posture: np.ndarray, code: int, between: tuple[int, ...], max_len: int
) -> np.ndarray:
    """Runs of ``code`` no longer than ``max_len`` flanked by ``between`` codes take the
    preceding posture."""
    starts, ends, values = run_bounds(posture)
    if starts.size < 3:
        return posture
    inner = np.arange(1, starts.size - 1)
    ok = (values[inner] == code) & ((ends - starts)[inner] <= max_len)
    ok &= np.isin(values[inner - 1], between) & np.isin(values[inner + 1], between)
    if not ok.any():
        return posture
    new_values = values.copy()
    new_values[inner[ok]] = values[inner[ok] - 1]
    return np.repeat(new_values, ends - starts).astype(posture.dtype, copy=False)


def _bridge_lying(
    posture: np.ndarray, incl_deg: np.ndarray, lying_min_deg: float, max_move: int, max_len: int
) -> tuple[np.ndarray, int]:
    """Standing runs of at most ``max_len`` epochs between two clear lying runs (mean
    inclination >= ``lying_min_deg``) become sitting when what separates them from the lying
    on each side is at most ``max_move`` epochs of short runs (a transition, not a walk)."""
    starts, ends, values = run_bounds(posture)
    k = starts.size
    if k < 3:
        return posture, 0
    lens = ends - starts
    # Only clear lying anchors the rule: a reclined sit can read 60-70° at the pelvis.
    run_incl = np.add.reduceat(incl_deg.astype(np.float64), starts) / lens
    anchor = (values == Posture.LYING) & (run_incl >= lying_min_deg)
    substantial = anchor | (lens > max_move)
    idx = np.arange(k)
    prev = np.maximum.accumulate(np.where(substantial, idx, -1))
    nxt = np.minimum.accumulate(np.where(substantial, idx, k)[::-1])[::-1]
    # The substantial runs strictly before and after each run.
    before = np.r_[-1, prev[:-1]]
    after = np.r_[nxt[1:], k]
    has_b, has_a = before >= 0, after < k
    bi, ai = np.clip(before, 0, k - 1), np.clip(after, 0, k - 1)
    lying_before = has_b & anchor[bi] & ((starts - ends[bi]) <= max_move)
    lying_after = has_a & anchor[ai] & ((starts[ai] - ends) <= max_move)
    ok = (values == Posture.STANDING) & (lens <= max_len) & lying_before & lying_after
    if not ok.any():
        return posture, 0
    new_values = values.copy()
    new_values[ok] = Posture.SITTING
    return np.repeat(new_values, lens).astype(posture.dtype, copy=False), int(ok.sum())


def _waist_transitions(
    posture: np.ndarray,
    still_low: np.ndarray,
    acc_g: npt.ArrayLike,
    feats: EpochFeatures,
    p: PostureParams,
    margin_deg: np.ndarray,
) -> tuple[np.ndarray, int]:
    """Sit or stand per still period from the pelvis drop into it and the rise out of it."""
    starts, ends = runs_of(still_low)
    keep = (ends - starts) >= 2
    starts, ends = starts[keep], ends[keep]
    if starts.size == 0:
        return posture, 0
    max_gap = max(1, round(p.transition_max_s / feats.epoch_s))
    into, out = period_displacements(
        acc_g if isinstance(acc_g, np.ndarray) else np.asarray(acc_g),  # memmaps stay lazy
        feats.fs_hz,
        feats.samples_per_epoch,
        starts,
        ends,
        max_gap_epochs=max_gap,
    )
    # Sitting evidence: a drop into the period and a rise out of it (metres, summed).
    evidence = np.nansum(np.c_[-into, out], axis=1)
    # Evidence decides only where the inclination is ambiguous (near the split).
    med_margin = np.array([np.median(margin_deg[s:e]) for s, e in zip(starts, ends, strict=True)])
    decided = (np.abs(evidence) >= p.transition_min_m) & (
        np.abs(med_margin) < p.transition_override_deg
    )
    out_posture = posture.copy()
    for s, e, ev in zip(starts[decided], ends[decided], evidence[decided], strict=True):
        seg = out_posture[s:e]
        movable = (seg == Posture.SITTING) | (seg == Posture.STANDING)
        seg[movable] = Posture.SITTING if ev > 0 else Posture.STANDING
    return out_posture, int(decided.sum())


def _stands_between_sitting(posture: np.ndarray, min_len: int) -> np.ndarray:
    """Epochs of upright runs (standing, moving, cycling) of at least ``min_len`` epochs with
    sitting on both sides: a brief stand, which the minimum-posture smoothing must not absorb."""
    up = np.isin(posture, UPRIGHT)
    starts, ends = runs_of(up)
    n = posture.size
    inside = (starts > 0) & (ends < n) & ((ends - starts) >= min_len)
    s, e = starts[inside], ends[inside]
    ok = (posture[s - 1] == Posture.SITTING) & (posture[e] == Posture.SITTING)
    marks = np.zeros(n + 1, dtype=np.int64)
    np.add.at(marks, s[ok], 1)
    np.add.at(marks, e[ok], -1)
    return np.cumsum(marks[:-1]) > 0


def _sustained(mask: np.ndarray, min_len: int) -> np.ndarray:
    starts, ends = runs_of(mask)
    keep = (ends - starts) >= min_len
    marks = np.zeros(mask.size + 1, dtype=np.int64)
    np.add.at(marks, starts[keep], 1)
    np.add.at(marks, ends[keep], -1)
    return np.cumsum(marks[:-1]) > 0


def classify_epochs(
    feats: EpochFeatures,
    *,
    placement: str = "thigh",
    params: PostureParams | None = None,
    temperature_c: np.ndarray | None = None,
    acc_g: npt.ArrayLike | None = None,
) -> PostureResult:
    """Posture per epoch from precomputed epoch features (see :func:`analyse_posture`).

    ``acc_g`` (the samples the features came from; a memory map will do) enables the
    waist's transition step, which reads only short windows around postural transitions.

    Use this with :class:`glutewake.signal.epochs.EpochFeatureAccumulator` to process a long
    recording chunk by chunk; the result equals :func:`analyse_posture` on the whole array.
    """
    p = params or PostureParams()
    if placement not in PLACEMENTS:
        raise ValueError(f"placement must be one of {PLACEMENTS}, got {placement!r}")
    epoch_s = feats.epoch_s
    n = feats.n_epochs
    if n and not (np.all(np.isfinite(feats.mean_g)) and np.all(np.isfinite(feats.sd_g))):
        raise ValueError("acc_g contains NaN or infinite values; split the segment at them")
    if p.calibrate and n:
        cal = calibrate_from_epochs(feats.mean_g, feats.sd_g, still_sd_g=p.still_sd_g)
        mean_g, sd_g = apply_calibration(feats.mean_g, feats.sd_g, cal)
    else:
        cal = calibrate_from_epochs(np.zeros((0, 3)), np.zeros((0, 3)))
        mean_g, sd_g = feats.mean_g, feats.sd_g
    nonwear = nonwear_mask(
        sd_g,
        epoch_s,
        still_sd_g=p.still_sd_g,
        min_duration_s=p.nonwear_min_s,
        temperature_c=temperature_c,
    )
    orient = find_orientation(
        mean_g,
        sd_g,
        epoch_s,
        nonwear=nonwear,
        walk_sd_min_g=p.walk_sd_min_g,
        walk_min_s=p.walk_min_s,
        remount_angle_deg=p.remount_angle_deg,
        remount_confirm_s=p.remount_confirm_s,
        prior_up=None if p.prior_up is None else np.asarray(p.prior_up, dtype=np.float64),
    )
    dirs = unit_directions(mean_g)
    incl = inclination_deg(dirs, orient.per_epoch(n)) if n else np.zeros(0)
    up_ref = orient.up_ref.copy()  # per mounting; the stale-reference check may replace one
    sd_tot = np.sqrt(np.sum(sd_g**2, axis=1))
    moving = sd_tot > p.move_sd_g
    swing = float("nan")
    if placement != "auto":
        resolved = placement
    elif acc_g is not None:
        resolved, swing = guess_placement(
            acc_g,
            feats.fs_hz,
            feats.samples_per_epoch,
            orient.walking,
            threshold_deg=p.auto_swing_deg,
        )
    else:
        resolved = _guess_placement(incl, moving, sd_tot)
    still = ~moving & ~nonwear
    bounds = np.append(orient.mount_start_epoch, n)
    split = np.empty(n)
    splits: list[float] = []
    restood: list[bool] = []
    for m, (s, e) in enumerate(itertools.pairwise(bounds)):
        if resolved == "thigh":
            default, lo, hi = p.thigh_sit_angle_deg, p.thigh_split_min_deg, p.thigh_split_max_deg
            pool = incl[s:e][still[s:e]]
        else:
            default, lo, hi = p.waist_sit_angle_deg, p.waist_split_min_deg, p.waist_split_max_deg
            pool = incl[s:e][still[s:e] & (incl[s:e] < p.waist_lie_angle_deg)]
        adaptive = p.adaptive_split if resolved == "thigh" else p.waist_adaptive_split
        value = split_angle_deg(pool, default, lo, hi) if adaptive else default
        new_up = None
        if resolved == "thigh" and p.thigh_stand_max_deg < 90:
            new_up = standing_reference(
                dirs[s:e],
                incl[s:e],
                still[s:e],
                value,
                stand_max_deg=p.thigh_stand_max_deg,
                sway_ratio=p.stand_sway_ratio,
            )
        if new_up is not None:
            up_ref[m] = new_up
            incl[s:e] = inclination_deg(dirs[s:e], new_up)
            pool = incl[s:e][still[s:e]]
            value = split_angle_deg(pool, default, lo, hi) if adaptive else default
        restood.append(new_up is not None)
        split[s:e] = value
        splits.append(value)
    posture = np.full(n, Posture.STANDING, dtype=np.int8)
    inclined = hysteresis(incl, split, p.hysteresis_deg)
    if resolved == "thigh":
        cyc_ep = max(1, round(p.cycling_min_s / epoch_s))
        cycling = _sustained((incl >= np.minimum(split, p.cycling_angle_deg)) & moving, cyc_ep)
        posture[inclined] = Posture.SITTING
        posture[~inclined & moving] = Posture.MOVING
        posture[cycling] = Posture.CYCLING
    else:
        posture[moving] = Posture.MOVING
        posture[~moving & inclined] = Posture.SITTING
        posture[incl >= p.waist_lie_angle_deg] = Posture.LYING
    min_ep = max(1, round(p.min_posture_s / epoch_s))
    posture[nonwear] = Posture.NONWEAR
    keep = nonwear
    if resolved == "thigh":
        min_stand = max(1, round(p.thigh_min_stand_s / epoch_s))
        keep = nonwear | _stands_between_sitting(posture, min_stand)
    posture = fill_short_runs(posture, min_ep, protect=keep)
    if resolved == "waist" and acc_g is not None and p.waist_use_transitions:
        posture, n_decided = _waist_transitions(
            posture, still & (incl < p.waist_lie_angle_deg), acc_g, feats, p, incl - split
        )
    else:
        n_decided = 0
    n_bridged = 0
    if resolved == "waist" and p.lying_bridge_max_s > 0:
        posture, n_bridged = _bridge_lying(
            posture,
            incl,
            p.lying_bridge_min_deg,
            max(1, round(p.sedentary_move_max_s / epoch_s)),
            max(1, round(p.lying_bridge_max_s / epoch_s)),
        )
    if resolved == "waist":
        # Getting from sitting to lying (or back) is movement that never passes through
        # upright: brief movement between two sedentary postures stays sedentary.
        posture = _absorb_between(
            posture,
            Posture.MOVING,
            (Posture.SITTING, Posture.LYING),
            max(1, round(p.sedentary_move_max_s / epoch_s)),
        )
    edge_epoch = edge_sample = np.zeros(0, dtype=np.int64)
    if resolved == "thigh" and acc_g is not None and p.sample_edges:
        edge_epoch, edge_sample = _sample_edges(
            posture,
            acc_g,
            feats.samples_per_epoch,
            up_ref,
            orient.mount_start_epoch,
            split,
            cal,
            feats.fs_hz,
        )
    qc: dict[str, object] = {
        "placement": resolved,
        "placement_requested": placement,
        "gait_swing_deg": swing,
        "n_epochs": n,
        "epoch_s": epoch_s,
        "calibration": cal.as_dict(),
        "orientation": orient.as_dict(epoch_s),
        "nonwear_s": float(nonwear.sum() * epoch_s),
        "split_angle_deg": splits,
        "reference_from_standing": restood,
        "periods_decided_by_transitions": n_decided,
        "periods_sitting_between_lying": n_bridged,
        "params": asdict(p),
    }
    return PostureResult(
        epoch_s,
        feats.samples_per_epoch,
        posture,
        incl.astype(np.float32),
        qc,
        edge_epoch,
        edge_sample,
    )


def _sample_edges(
    posture: np.ndarray,
    acc_g: npt.ArrayLike,
    spe: int,
    up_ref: np.ndarray,
    mount_start_epoch: np.ndarray,
    split: np.ndarray,
    cal: Calibration,
    fs_hz: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Thigh: the sample at which each change between sitting and standing or moving happens
    (:func:`glutewake.signal.edges.change_points`), searched in the two epochs around the
    change, or up to the middle of a one-epoch posture shared with the next change."""
    sit = posture == Posture.SITTING
    upright = (posture == Posture.STANDING) | (posture == Posture.MOVING)
    b = np.flatnonzero((sit[:-1] & upright[1:]) | (upright[:-1] & sit[1:])) + 1
    if b.size == 0:
        return b.astype(np.int64), b.astype(np.int64)
    lo = (b - 1) * spe
    hi = (b + 1) * spe
    shared_before = np.r_[False, np.diff(b) == 1]
    lo[shared_before] += spe // 2
    hi[np.r_[np.diff(b) == 1, False]] -= spe - spe // 2
    at = change_points(
        acc_g,
        lo,
        hi,
        sit[b - 1],
        up_ref[np.searchsorted(mount_start_epoch, b, side="right") - 1],
        split[b],
        gain=cal.gain,
        offset_g=cal.offset_g,
        smooth_samples=max(1, round(EDGE_SMOOTH_S * fs_hz)),
    )
    return b.astype(np.int64), at


def split_angle_deg(
    incl_deg: np.ndarray,
    default_deg: float,
    lo_deg: float,
    hi_deg: float,
    *,
    min_epochs: int = 30,
    min_separation_deg: float = 15.0,
) -> float:
    """Per-mounting split between the upright and the inclined cluster of still epochs.

    Otsu's two-class split of the inclination histogram (1° bins), restricted to
    ``[lo_deg, hi_deg]``. The default is kept when either side has fewer than ``min_epochs``
    epochs or the class means are closer than ``min_separation_deg`` (one posture only).
    """
    x = incl_deg[np.isfinite(incl_deg)]
    if x.size < 2 * min_epochs:
        return default_deg
    hist = np.bincount(np.minimum(x.astype(np.int64), 90), minlength=91).astype(np.float64)
    centres = np.arange(91) + 0.5
    w0 = np.cumsum(hist)
    s0 = np.cumsum(hist * centres)
    total_w, total_s = w0[-1], s0[-1]
    w1 = total_w - w0
    with np.errstate(divide="ignore", invalid="ignore"):
        m0 = s0 / w0
        m1 = (total_s - s0) / w1
        between = w0 * w1 * (m0 - m1) ** 2
    cand = np.arange(91) + 1.0  # split after bin k: threshold k + 1
    ok = (cand >= lo_deg) & (cand <= hi_deg) & (w0 >= min_epochs) & (w1 >= min_epochs)
    ok &= np.isfinite(between) & ((m1 - m0) >= min_separation_deg)
    if not ok.any():
        return default_deg
    best = np.max(between[ok])
    # Between two well-separated clusters the criterion is flat across the empty gap: take
    # the middle of the plateau rather than its first bin.
    plateau = np.flatnonzero(ok & (between >= best * (1 - 1e-9)))
    return float(cand[plateau].mean())


def _guess_placement(incl: np.ndarray, moving: np.ndarray, sd_tot: np.ndarray) -> str:
    """Thigh or waist from the data: a thigh spends still time far from upright (sitting)."""
    still = ~moving
    if not still.any():
        return "thigh"
    share_far = float(np.mean(incl[still] >= 45.0))
    share_mid = float(np.mean((incl[still] >= 12.0) & (incl[still] < 45.0)))
    return "thigh" if share_far >= share_mid else "waist"


def analyse_posture(
    acc_g: npt.ArrayLike,
    fs_hz: float,
    *,
    placement: str = "thigh",
    params: PostureParams | None = None,
    temperature_c: np.ndarray | None = None,
) -> PostureResult:
    """Posture per epoch for one contiguous segment of tri-axial acceleration.

    Parameters
    ----------
    acc_g : array_like, shape (n, 3)
        Acceleration in g, any sensor orientation, no gaps.
    fs_hz : float
        Sampling rate.
    placement : {"thigh", "waist", "auto"}
        Where the sensor is worn. ``"auto"`` guesses from the share of still time spent far
        from upright (documented in docs/sitting.md).
    params : PostureParams, optional
        Thresholds; defaults documented on :class:`PostureParams`.
    temperature_c : ndarray, shape (n_epochs,), optional
        Device temperature per epoch, used by non-wear detection.

    Returns
    -------
    PostureResult

    Raises
    ------
    ValueError
        On a wrong shape, non-finite values, bad sampling rate or unknown placement.

    Examples
    --------
    >>> acc = np.tile([0.0, 0.0, 1.0], (3000, 1))
    >>> res = analyse_posture(acc, 50.0)
    >>> res.posture.shape
    (60,)
    """
    p = params or PostureParams()
    if placement not in PLACEMENTS:
        raise ValueError(f"placement must be one of {PLACEMENTS}, got {placement!r}")
    feats = epoch_features(acc_g, fs_hz, p.epoch_s)
    return classify_epochs(
        feats, placement=placement, params=p, temperature_c=temperature_c, acc_g=acc_g
    )


def sitting_mask(acc_g: npt.ArrayLike, fs_hz: float, *, placement: str = "thigh") -> np.ndarray:
    """True where the wearer is sitting or lying (sedentary posture), per sample.

    Parameters
    ----------
    acc_g : array_like, shape (n, 3)
        Acceleration in g, any sensor orientation.
    fs_hz : float
        Sampling rate.
    placement : {"thigh", "waist", "auto"}
        Sensor placement (front of the thigh / front trouser pocket, or belt / hip).

    Returns
    -------
    ndarray of bool, shape (n,)

    Examples
    --------
    >>> sitting_mask(np.tile([0.0, 0.0, 1.0], (500, 1)), 50.0).shape
    (500,)
    """
    arr = np.asarray(acc_g)
    res = analyse_posture(arr, fs_hz, placement=placement)
    return res.sample_mask(arr.shape[0])
