"""What an imported stream must look like: refused with one line, or stored with QC flags.

An import never succeeds silently with data no sensor can produce. Per batch (vectorised):
values must be finite and within what any sensor of the stream reads, times within 2000-2100.
Per stream, once the file is read: the timestamps must advance (a file whose times are all
equal or run backwards has no rate), repeat or step back only rarely, and imply a rate a sensor
of that kind has; the signal must look like its stream (an accelerometer worn or lying still
reads about 1 g). What is wrong but usable is stored and flagged: ``qc`` rows of kind
``import_flag``, the file's warnings.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from glutewake.ingest.importers.errors import ImportFileError


class Batch(Protocol):
    """What is judged of a batch (``_core.Batch`` has it; no import, so no cycle)."""

    @property
    def t_us(self) -> NDArray[np.int64]: ...
    @property
    def values(self) -> NDArray[np.float64]: ...
    @property
    def first_line(self) -> int: ...
    @property
    def place(self) -> str: ...


class StreamQC(Protocol):
    """What is judged of a stream's timing (``_core.StreamQC`` has it)."""

    stream: str
    n_samples: int
    duplicate_times: int
    backward_jumps: int
    first_backward: str | None
    first_duplicate: str | None
    fs_stated_hz: float | None

    @property
    def fs_measured_hz(self) -> float | None: ...


#: |value| beyond which no sensor of the stream reads (project units): the largest common
#: ranges are ±200 g (ADXL375), ±4000 deg/s, ±50 gauss; surface EMG is millivolts
VALUE_LIMITS = {"acc": 200.0, "gyro": 10_000.0, "mag": 100.0, "emg": 1_000_000.0}
#: sampling rates a stream of each kind can have, Hz
RATE_LIMITS_HZ = {
    "acc": (1.0, 20_000.0),
    "gyro": (1.0, 20_000.0),
    "mag": (0.5, 20_000.0),
    "emg": (1.0, 100_000.0),
}
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
#: instants a recording can have: 2000-01-01 to 2100-01-01 UTC, µs
TIME_RANGE_US = (
    (dt.datetime(2000, 1, 1, tzinfo=dt.UTC) - _EPOCH) // dt.timedelta(microseconds=1),
    (dt.datetime(2100, 1, 1, tzinfo=dt.UTC) - _EPOCH) // dt.timedelta(microseconds=1),
)
#: backward steps beyond this share of all steps (and more than a few) refuse the file
MAX_BACKWARD_SHARE = 0.01
MAX_BACKWARD_FEW = 10
#: repeated times beyond this share of steps mean a time resolution coarser than the period
MAX_DUPLICATE_SHARE = 0.5
#: stated and measured rate may differ by this share before it is flagged
RATE_MISMATCH = 0.1
#: median vector magnitude an accelerometer that senses gravity shows (g): refused outside the
#: wide range, flagged outside the narrow one
ACC_REFUSE_G = (0.2, 5.0)
ACC_FLAG_G = (0.7, 1.4)
#: the Earth's field is 0.25-0.65 gauss; calibration offsets widen what a magnetometer shows
MAG_FLAG_GAUSS = (0.05, 5.0)
GYRO_FLAG_DPS = 500.0
#: a surface EMG's median |amplitude| below or above these (µV) suggests a wrong unit
EMG_FLAG_UV = (0.05, 10_000.0)
#: magnitudes are judged on at least this many samples, on at most about this many per batch
MIN_SAMPLES_JUDGED = 100
_SAMPLED_PER_BATCH = 65_536


def _iso(t_us: int) -> str:
    try:
        return (_EPOCH + dt.timedelta(microseconds=int(t_us))).isoformat(timespec="seconds")
    except OverflowError:
        return f"{t_us} µs since 1970"


@dataclass
class ValueLedger:
    """What one stream's values looked like, kept in bounded memory across batches."""

    stream: str
    channels: tuple[str, ...]
    unit: str
    minimum: np.ndarray | None = None
    maximum: np.ndarray | None = None
    #: (median magnitude of a batch's sample, samples in the batch)
    medians: list[tuple[float, int]] = field(default_factory=list)

    def add(self, batch: Batch) -> None:
        """Refuse non-finite or impossible values and times; note the batch's magnitudes."""
        values, t_us = batch.values, batch.t_us
        if values.size == 0:
            return
        bad = ~np.isfinite(values)
        if bad.any():
            self._refuse(batch, bad, "expected a finite number")
        limit = VALUE_LIMITS.get(self.stream)
        if limit is not None:
            beyond = np.abs(values) > limit
            if beyond.any():
                self._refuse(
                    batch,
                    beyond,
                    f"beyond ±{limit:g} {self.unit}, which no {self.stream} sensor reads "
                    "(a wrong unit, or columns swapped?)",
                )
        lo, hi = TIME_RANGE_US
        outside = (t_us < lo) | (t_us >= hi)
        if outside.any():
            i = int(np.flatnonzero(outside)[0])
            raise ImportFileError(
                f"{batch.place} {batch.first_line + i}: time {_iso(int(t_us[i]))} lies outside "
                "2000-2100: not a recording's clock (the time read from another column, a wrong "
                "time unit, or a device clock never set?)"
            )
        lo_v, hi_v = values.min(axis=0), values.max(axis=0)
        self.minimum = lo_v if self.minimum is None else np.minimum(self.minimum, lo_v)
        self.maximum = hi_v if self.maximum is None else np.maximum(self.maximum, hi_v)
        step = max(1, len(values) // _SAMPLED_PER_BATCH)
        part = values[::step]
        magnitude = (
            np.sqrt((part**2).sum(axis=1))
            if self.stream != "emg" and part.shape[1] == 3
            else np.abs(part).mean(axis=1)
        )
        self.medians.append((float(np.median(magnitude)), len(values)))

    def _refuse(self, batch: Batch, bad: np.ndarray, expected: str) -> None:
        row, col = (int(v[0]) for v in np.nonzero(bad))
        value = float(batch.values[row, col])
        raise ImportFileError(
            f"{batch.place} {batch.first_line + row}: {self.stream} channel "
            f"{self.channels[col]!r} is {value:g} {self.unit}; {expected}"
        )

    def median_magnitude(self) -> float | None:
        """The samples' median magnitude (weighted median of the batches' medians)."""
        if not self.medians:
            return None
        meds = np.array([m for m, _ in self.medians])
        weights = np.array([n for _, n in self.medians], dtype=np.float64)
        order = np.argsort(meds)
        cum = np.cumsum(weights[order])
        return float(meds[order][np.searchsorted(cum, cum[-1] / 2)])


def verdict(qc: StreamQC, ledger: ValueLedger, *, complete: bool = True) -> list[tuple[str, str]]:
    """Refuse a stream whose timing or signal is impossible; flag what is odd but usable.

    Returns ``(flag, message)`` pairs; raises :class:`ImportFileError` for a refusal.
    ``complete`` False: judged on the samples read so far (the file is longer).
    """
    stream, n = qc.stream, qc.n_samples
    steps = max(n - 1, 0)
    flags: list[tuple[str, str]] = []
    if n == 1:
        raise ImportFileError(f"{stream}: only one sample; a rate needs at least two")
    advancing = steps - qc.duplicate_times - qc.backward_jumps
    if steps and advancing == 0:
        how = "are all equal" if qc.backward_jumps == 0 else "never increase"
        first = "" if complete else "first "
        raise ImportFileError(
            f"{stream}: the {first}{n:,} timestamps {how}; expected times that increase sample by "
            "sample (a constant or reversed time column?)"
        )
    if qc.backward_jumps > max(MAX_BACKWARD_FEW, MAX_BACKWARD_SHARE * steps):
        raise ImportFileError(
            f"{stream}: the time steps back {qc.backward_jumps:,} times in {steps:,} steps "
            f"(first at {qc.first_backward}); expected times in order (rows out of order, or "
            "the file reversed?)"
        )
    if qc.duplicate_times > MAX_DUPLICATE_SHARE * steps:
        raise ImportFileError(
            f"{stream}: {qc.duplicate_times:,} of {steps:,} timestamps repeat the one before "
            f"(first at {qc.first_duplicate}): the times are coarser than the sampling and "
            "cannot place the samples"
        )
    if qc.backward_jumps:
        flags.append(
            (
                "clock_jumps_back",
                f"{stream}: the time steps back {qc.backward_jumps} time(s) "
                f"(first at {qc.first_backward}); the samples are kept as recorded",
            )
        )
    if qc.duplicate_times:
        flags.append(
            (
                "duplicate_times",
                f"{stream}: {qc.duplicate_times:,} timestamps repeat the one before "
                f"(first at {qc.first_duplicate})",
            )
        )
    measured = qc.fs_measured_hz
    lo, hi = RATE_LIMITS_HZ.get(stream, (0.0, float("inf")))
    if measured is not None and not lo <= measured <= hi:
        raise ImportFileError(
            f"{stream}: the timestamps imply {measured:,.4g} Hz; a {stream} stream runs at "
            f"{lo:g}-{hi:,.0f} Hz (a wrong time unit?)"
        )
    stated = qc.fs_stated_hz
    if stated and measured and abs(measured - stated) > RATE_MISMATCH * stated:
        flags.append(
            (
                "rate_mismatch",
                f"{stream}: the file states {stated:g} Hz, its timestamps give {measured:.4g} Hz",
            )
        )
    flags.extend(_signal_flags(qc, ledger))
    return flags


def _signal_flags(qc: StreamQC, ledger: ValueLedger) -> list[tuple[str, str]]:
    stream, unit = qc.stream, ledger.unit
    flags: list[tuple[str, str]] = []
    if ledger.minimum is not None and ledger.maximum is not None and qc.n_samples > 1:
        flat = [
            c
            for c, a, b in zip(ledger.channels, ledger.minimum, ledger.maximum, strict=True)
            if a == b
        ]
        if flat:
            flags.append(
                (
                    "constant_channel",
                    f"{stream}: channel(s) {', '.join(flat)} hold one value throughout",
                )
            )
    median = ledger.median_magnitude()
    if median is None or qc.n_samples < MIN_SAMPLES_JUDGED:
        return flags
    if stream == "acc" and ledger.minimum is not None and len(ledger.channels) == 3:
        if not ACC_REFUSE_G[0] <= median <= ACC_REFUSE_G[1]:
            raise ImportFileError(
                f"acc: the acceleration's median magnitude is {median:.3g} g; an accelerometer "
                f"that senses gravity reads about 1 g (m/s^2 read as g, gyro or linear "
                "acceleration columns, or a wrong unit?)"
            )
        if not ACC_FLAG_G[0] <= median <= ACC_FLAG_G[1]:
            flags.append(
                (
                    "acc_magnitude",
                    f"acc: median magnitude {median:.3g} g, where a worn sensor reads about 1 g",
                )
            )
    elif stream == "mag" and not MAG_FLAG_GAUSS[0] <= median <= MAG_FLAG_GAUSS[1]:
        flags.append(
            (
                "mag_magnitude",
                f"mag: median magnitude {median:.3g} gauss, where the Earth's field is 0.25-0.65",
            )
        )
    elif stream == "gyro" and median > GYRO_FLAG_DPS:
        flags.append(
            (
                "gyro_magnitude",
                f"gyro: median rotation {median:.4g} {unit}, far above body movement (wrong unit?)",
            )
        )
    elif stream == "emg" and not EMG_FLAG_UV[0] <= median <= EMG_FLAG_UV[1]:
        flags.append(
            (
                "emg_amplitude",
                f"emg: median |amplitude| {median:.3g} µV, outside surface EMG's "
                f"{EMG_FLAG_UV[0]:g}-{EMG_FLAG_UV[1]:g} µV (a wrong unit?)",
            )
        )
    return flags
