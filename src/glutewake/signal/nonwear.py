"""Non-wear detection: long periods in which the sensor does not move at all.

A worn sensor picks up small movements (breathing, fidgeting, postural sway) within minutes
even in deep sitting; a sensor on a table does not. Non-wear is therefore a run of still epochs
(every axis' standard deviation below a threshold) lasting at least a minimum duration.
Temperature, where a device has it, can confirm: a skin-worn device is warm.
"""

from __future__ import annotations

import numpy as np

from glutewake.signal.runs import runs_of

__all__ = ["nonwear_mask"]


def nonwear_mask(
    sd_g: np.ndarray,
    epoch_s: float,
    *,
    still_sd_g: float = 0.013,
    min_duration_s: float = 3600.0,
    temperature_c: np.ndarray | None = None,
    worn_min_temperature_c: float = 28.0,
) -> np.ndarray:
    """Epochs in which the sensor was not worn.

    Parameters
    ----------
    sd_g : ndarray, shape (n_epochs, 3)
        Per-epoch standard deviation of each axis, g.
    epoch_s : float
        Epoch length.
    still_sd_g : float
        Still when every axis is below this (default 13 mg, as actipy / van Hees).
    min_duration_s : float
        Shortest still run counted as non-wear (default 60 min).
    temperature_c : ndarray, shape (n_epochs,), optional
        Device temperature per epoch. When given, a still run only counts as non-wear if its
        median temperature is below ``worn_min_temperature_c``, and a still run of at least a
        quarter of ``min_duration_s`` does count if it is that cold.
    worn_min_temperature_c : float
        Temperature below which a device is taken to be off the skin.

    Returns
    -------
    ndarray of bool, shape (n_epochs,)

    Examples
    --------
    >>> sd = np.full((7200, 3), 0.001); sd[:100] = 0.2
    >>> int(nonwear_mask(sd, 1.0).sum())
    7100
    """
    sd_g = np.asarray(sd_g)
    if sd_g.ndim != 2 or sd_g.shape[1] != 3:
        raise ValueError(f"sd_g must have shape (n_epochs, 3), got {sd_g.shape}")
    if epoch_s <= 0:
        raise ValueError(f"epoch_s must be positive, got {epoch_s!r}")
    still = np.all(sd_g < still_sd_g, axis=1)
    starts, ends = runs_of(still)
    dur_s = (ends - starts) * epoch_s
    if temperature_c is None:
        keep = dur_s >= min_duration_s
    else:
        temp = np.asarray(temperature_c, dtype=np.float64)
        if temp.shape != (sd_g.shape[0],):
            raise ValueError(f"temperature_c must have shape ({sd_g.shape[0]},), got {temp.shape}")
        cold = np.array(
            [
                np.nanmedian(temp[s:e]) < worn_min_temperature_c
                for s, e in zip(starts, ends, strict=True)
            ],
            dtype=bool,
        )
        keep = cold & (dur_s >= min_duration_s / 4)
    out = np.zeros(sd_g.shape[0], dtype=bool)
    if keep.any():
        marks = np.zeros(sd_g.shape[0] + 1, dtype=np.int64)
        np.add.at(marks, starts[keep], 1)
        np.add.at(marks, ends[keep], -1)
        out = np.cumsum(marks[:-1]) > 0
    return out
