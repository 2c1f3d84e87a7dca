"""Per-repetition firing from the ``contractions`` table: did the glutes fire, and who led.

The pipeline stores each contraction with its session, side and repetition number (paired
across channels, docs/emg.md). For the reports' words ("the glutes fired on 9 of 12 reps; the
hamstrings fired first on 3") this module rebuilds one row per session, side and repetition:
whether a glute channel fired, and the glute onset minus the reference onset. It uses the same
channel preference as the pipeline: ``glute_max`` before other glute muscles, and the first of
hamstring, biceps femoris, semitendinosus, erector spinae as the reference.
"""

from __future__ import annotations

import polars as pl

from glutewake.analytics.evidence import ONSET_ERROR_MS

__all__ = ["REFERENCE_MUSCLES", "per_session", "repetition_table"]

GLUTE_MUSCLES = ("glute_max", "glute_med", "glute_min")
REFERENCE_MUSCLES = ("hamstring", "biceps_femoris", "semitendinosus", "erector_spinae")
_KEYS = ["session_id", "side", "repetition"]


def _rank(names: tuple[str, ...], other_prefix: str | None) -> pl.Expr:
    """Preference of a contraction's muscle: its place in ``names``, null if not wanted."""
    muscle = pl.col("muscle").fill_null("")
    ranks = {name: k for k, name in enumerate(names)}
    exact = muscle.replace_strict(ranks, default=None, return_dtype=pl.Int32)
    if other_prefix is None:
        return exact
    other = pl.when(muscle.str.starts_with(other_prefix)).then(pl.lit(len(names), pl.Int32))
    return exact.fill_null(other)


def _first_onset(c: pl.DataFrame, rank: pl.Expr, name: str) -> pl.DataFrame:
    return (
        c.with_columns(rank.alias("rank"))
        .filter(pl.col("rank").is_not_null())
        .sort("rank", "onset_time")
        .group_by(_KEYS, maintain_order=True)
        .agg(pl.col("onset_time").first().alias(name))
    )


def repetition_table(contractions: pl.DataFrame) -> pl.DataFrame:
    """One row per session, side and repetition: ``glute_fired`` and ``latency_ms``.

    Parameters
    ----------
    contractions : polars.DataFrame
        Rows of the ``contractions`` table (``session_id``, ``muscle``, ``side``,
        ``repetition``, ``onset_time``); rows without a repetition number are left out.

    Returns
    -------
    polars.DataFrame
        ``session_id, side, repetition, glute_fired, latency_ms``; ``latency_ms`` (glute onset
        minus reference onset, negative = glutes first) is null unless both fired.
    """
    schema = {"session_id": pl.String, "side": pl.String, "repetition": pl.Int64,
              "glute_fired": pl.Boolean, "latency_ms": pl.Float64}
    if contractions.height == 0:
        return pl.DataFrame(schema=schema)
    c = contractions.filter(pl.col("repetition").is_not_null()).with_columns(
        pl.col("side").fill_null(""), pl.col("repetition").cast(pl.Int64)
    )
    reps = c.select(_KEYS).unique(maintain_order=True)
    glute = _first_onset(c, _rank(GLUTE_MUSCLES, "glute"), "glute_onset")
    ref = _first_onset(c, _rank(REFERENCE_MUSCLES, None), "ref_onset")
    return (
        reps.join(glute, on=_KEYS, how="left")
        .join(ref, on=_KEYS, how="left")
        .select(
            *_KEYS,
            pl.col("glute_onset").is_not_null().alias("glute_fired"),
            ((pl.col("glute_onset") - pl.col("ref_onset")).dt.total_microseconds() / 1000.0)
            .alias("latency_ms"),
        )
        .cast(schema)  # type: ignore[arg-type]
        .sort(_KEYS)
    )


def per_session(reps: pl.DataFrame, error_ms: float = ONSET_ERROR_MS) -> pl.DataFrame:
    """Counts per session: repetitions, glutes fired, paired, hamstrings/glutes first.

    A repetition counts as led by one muscle only when its onset came more than ``error_ms``
    before the other's; closer onsets are "together" (inside the onset error).

    Returns
    -------
    polars.DataFrame
        ``session_id, reps, fired, paired, hamstrings_led, glutes_led``.
    """
    lat = pl.col("latency_ms")
    return reps.group_by("session_id", maintain_order=True).agg(
        pl.len().alias("reps"),
        pl.col("glute_fired").sum().alias("fired"),
        lat.is_not_null().sum().alias("paired"),
        (lat > error_ms).sum().alias("hamstrings_led"),
        (lat < -error_ms).sum().alias("glutes_led"),
    )
