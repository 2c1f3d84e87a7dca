"""How weekly sitting and weekly activation quality go together, and whether that can be said.

* within one participant: Pearson's r across their weeks (scipy);
* within participants of a cohort: the repeated-measures correlation (``pingouin.rm_corr``: one
  common slope, an intercept per participant);
* across participants: a linear mixed model (``statsmodels`` ``MixedLM``: activation quality on
  the participant's mean sitting and its weekly deviation, random intercept per participant).

Every result carries the weeks and participants behind it. A relation is *stated* (``judged``)
only when its 95 % confidence interval excludes zero; otherwise the text says that no relation
can be stated yet and, for one participant, about how many more weeks would be needed
(:func:`glutewake.analytics.evidence.correlation_weeks_needed`).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import polars as pl

from glutewake.analytics.evidence import correlation_weeks_needed

__all__ = ["Relation", "across_participants", "paired_weeks", "within_participants"]


@dataclass(frozen=True)
class Relation:
    """How weekly sitting and weekly activation quality go together.

    ``estimate`` is a correlation (``r``) or, for the mixed model, the change in activation
    quality (points) per hour/day more sitting; ``None`` when it could not be estimated, and
    ``text`` then says why. ``judged`` is True only when the 95 % interval excludes zero: only
    then does ``text`` state a relation.
    """

    method: str
    estimate: float | None
    ci95: tuple[float, float] | None
    p_value: float | None
    n_weeks: int
    n_participants: int
    text: str
    extra: dict[str, float] = field(default_factory=dict)
    judged: bool = False


def paired_weeks(weekly: pl.DataFrame) -> pl.DataFrame:
    """Weeks with both a sitting mean (valid days) and an activation quality mean."""
    return weekly.filter(
        pl.col("sitting_min").is_not_null()
        & pl.col("activation_quality").is_not_null()
        & (pl.col("valid_days") > 0)
        & (pl.col("scored_sessions") > 0)
    ).with_columns((pl.col("sitting_min") / 60.0).alias("sitting_h"))


def _excludes_zero(ci: tuple[float, float]) -> bool:
    return ci[0] > 0 or ci[1] < 0


def _direction(r: float) -> str:
    strength = "strongly" if abs(r) >= 0.5 else "moderately" if abs(r) >= 0.3 else "weakly"
    way = "less sitting went with better activation" if r < 0 else (
        "more sitting went with better activation"
    )
    return f"{strength} related: {way}"


def within_participants(weekly: pl.DataFrame, *, min_weeks: int = 3) -> Relation:
    """Correlation of weekly sitting with weekly activation quality within participants.

    One participant: Pearson's r across their weeks. Several (at least 3 with two or more paired
    weeks each): the repeated-measures correlation (``pingouin.rm_corr``), which removes the
    differences between participants and keeps the common within-person association.

    Parameters
    ----------
    weekly : polars.DataFrame
        Rows of the ``weekly_progress`` view.
    min_weeks : int
        Paired weeks needed for one participant's correlation.
    """
    if weekly["participant_id"].n_unique() <= 1:
        return _one_participant(paired_weeks(weekly), min_weeks)
    paired = paired_weeks(weekly)
    counts = paired.group_by("participant_id").len()
    usable = counts.filter(pl.col("len") >= 2)["participant_id"].to_list()
    paired = paired.filter(pl.col("participant_id").is_in(usable))
    n_weeks, n_people = paired.height, len(usable)
    method = "repeated-measures correlation (pingouin.rm_corr)"
    if n_people < 3:
        return Relation(
            method, None, None, None, n_weeks, n_people,
            f"{n_people} participant(s) have two or more weeks with both valid sitting days and "
            "scored exercise sessions: the repeated-measures correlation needs at least 3.",
        )
    import pingouin

    frame = paired.select("participant_id", "sitting_h", "activation_quality").to_pandas()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pandas/pingouin deprecation chatter
        res = pingouin.rm_corr(
            data=frame, x="sitting_h", y="activation_quality", subject="participant_id"
        )
    r = float(res["r"].iloc[0])
    lo, hi = (float(v) for v in res["CI95"].iloc[0])
    p = float(res["pval"].iloc[0])
    figures = (f"r = {r:.2f}, 95% CI {lo:.2f} to {hi:.2f}, p = {p:.3g}; {n_weeks} weeks from "
               f"{n_people} participants")
    judged = _excludes_zero((lo, hi))
    text = (
        f"Within participants, weekly sitting and activation quality were {_direction(r)} "
        f"({figures})."
        if judged else
        f"Within participants, no relation between weekly sitting and activation quality can be "
        f"stated yet: the 95% interval includes none ({figures}). Not enough data yet: more "
        "weeks or participants are needed."
    )
    return Relation(method, r, (lo, hi), p, n_weeks, n_people, text, judged=judged)


def _one_participant(one: pl.DataFrame, min_weeks: int) -> Relation:
    """Pearson's r across one participant's paired weeks."""
    method = "Pearson correlation across weeks"
    needed = max(min_weeks, 3)
    if one.height < needed or one["sitting_h"].std() == 0 or (
        one["activation_quality"].std() == 0
    ):
        return Relation(
            method, None, None, None, one.height, 1 if one.height else 0,
            f"Only {one.height} week(s) with both valid sitting days and scored exercise "
            f"sessions: at least {needed} (that differ) are needed to relate sitting to "
            f"activation. Not enough data yet: {max(needed - one.height, 1)} more week(s) "
            "needed.",
        )
    from scipy import stats

    res = stats.pearsonr(one["sitting_h"].to_numpy(), one["activation_quality"].to_numpy())
    r, p = float(res.statistic), float(res.pvalue)
    ci = res.confidence_interval(0.95)
    lo, hi = float(ci.low), float(ci.high)
    figures = f"r = {r:.2f}, 95% CI {lo:.2f} to {hi:.2f}, p = {p:.3g}; {one.height} weeks"
    judged = _excludes_zero((lo, hi))
    if judged:
        text = (f"Across this participant's weeks, sitting and activation quality were "
                f"{_direction(r)} ({figures}). A correlation is not a cause.")
    else:
        more = correlation_weeks_needed(r, one.height)
        text = (f"No relation between weekly sitting and activation quality can be stated yet: "
                f"the 95% interval includes none ({figures}). Not enough data yet: about "
                f"{more} more week(s) would be needed to tell a relation of this size from "
                "none.")
    return Relation(method, r, (lo, hi), p, one.height, 1, text, judged=judged)


def across_participants(weekly: pl.DataFrame, *, min_participants: int = 5) -> Relation:
    """Mixed model of weekly activation quality on sitting, across participants.

    ``activation_quality ~ sitting_between + sitting_within + week`` with a random intercept
    per participant (statsmodels ``MixedLM``, REML): ``sitting_between`` is the participant's
    mean sitting (h/day, centred on the cohort), ``sitting_within`` the week's deviation from
    it, ``week`` the week number. ``estimate`` is the between-participant slope: points of
    activation quality per hour/day more sitting; the within slope is in ``extra``. Each slope
    is stated as a relation only when its 95 % interval excludes zero.
    """
    paired = paired_weeks(weekly)
    counts = paired.group_by("participant_id").len().filter(pl.col("len") >= 2)
    paired = paired.filter(pl.col("participant_id").is_in(counts["participant_id"].to_list()))
    n_people, n_weeks = counts.height, paired.height
    method = "linear mixed model (statsmodels MixedLM, random intercept per participant)"
    if n_people < min_participants:
        return Relation(
            method, None, None, None, n_weeks, n_people,
            f"{n_people} participant(s) with two or more paired weeks: the model across "
            f"participants needs at least {min_participants}. Not enough data yet: "
            f"{min_participants - n_people} more participant(s) needed.",
        )
    import statsmodels.formula.api as smf

    frame = paired.with_columns(
        pl.col("sitting_h").mean().over("participant_id").alias("person_mean")
    ).with_columns(
        (pl.col("person_mean") - pl.col("person_mean").mean()).alias("sitting_between"),
        (pl.col("sitting_h") - pl.col("person_mean")).alias("sitting_within"),
        pl.col("week_index").cast(pl.Float64).alias("week"),
    ).select(
        "participant_id", "activation_quality", "sitting_between", "sitting_within", "week"
    ).to_pandas()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = smf.mixedlm(
            "activation_quality ~ sitting_between + sitting_within + week",
            frame,
            groups=frame["participant_id"],
        )
        fit = model.fit(reml=True)
    converged = bool(fit.converged) and not any(
        "converge" in str(w.message).lower() for w in caught
    )
    params, ci, pvals = fit.params, fit.conf_int(), fit.pvalues
    between = float(params["sitting_between"])
    within = float(params["sitting_within"])
    lo, hi = (float(v) for v in ci.loc["sitting_between"])
    w_lo, w_hi = (float(v) for v in ci.loc["sitting_within"])
    p, p_within = float(pvals["sitting_between"]), float(pvals["sitting_within"])
    between_judged = _excludes_zero((lo, hi)) and converged
    within_judged = _excludes_zero((w_lo, w_hi)) and converged
    b_fig = f"{between:+.1f} points (95% CI {lo:+.1f} to {hi:+.1f}, p = {p:.3g})"
    w_fig = f"{within:+.1f} points (95% CI {w_lo:+.1f} to {w_hi:+.1f}, p = {p_within:.3g})"
    text = (
        (f"Across participants, each hour per day more sitting went with {b_fig}"
         if between_judged else
         f"Across participants, no relation can be stated yet: each hour per day more sitting "
         f"went with {b_fig}, an interval that includes none")
        + "; "
        + (f"within a participant, a week with an hour more sitting than their usual went with "
           f"{w_fig}" if within_judged else
           f"within a participant, no relation can be stated yet ({w_fig})")
        + f". Adjusted for week number; {n_weeks} weeks from {n_people} participants."
        + ("" if converged else " The model fit did not fully converge, so nothing is stated "
           "from it.")
    )
    return Relation(
        method, between, (lo, hi), p, n_weeks, n_people, text,
        extra={
            "within_slope": within,
            "within_p": p_within,
            "week_slope": float(params["week"]),
            "converged": float(converged),
            "within_judged": float(within_judged),
        },
        judged=between_judged,
    )
