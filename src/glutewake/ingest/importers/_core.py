"""What every importer shares: the batch container, units, time zones, timing QC and chunking.

A format reader turns a file into :class:`Batch` es (samples of one stream in project units, UTC
µs). :class:`StreamChecker` checks each batch's timing as it arrives (gaps, backward clock jumps,
irregular sampling: recorded, never corrected); the importer hands the batches on in chunks of
bounded size, so a file of any length passes through bounded memory.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
from numpy.typing import NDArray

from glutewake.ingest.importers.errors import ImportFileError

#: project unit of each stream
STREAM_UNITS = {"acc": "g", "gyro": "deg/s", "mag": "gauss", "emg": "uV"}

#: unit spelling (lower case) -> (stream, factor to the project unit)
UNIT_FACTORS: dict[str, tuple[str, float]] = {
    "g": ("acc", 1.0),
    "mg": ("acc", 1e-3),
    "m/s^2": ("acc", 1 / 9.80665),
    "m/s2": ("acc", 1 / 9.80665),
    "m/s²": ("acc", 1 / 9.80665),
    "deg/s": ("gyro", 1.0),
    "dps": ("gyro", 1.0),
    "°/s": ("gyro", 1.0),
    "rad/s": ("gyro", 180.0 / math.pi),
    "gauss": ("mag", 1.0),
    "g_mag": ("mag", 1.0),
    "ut": ("mag", 1e-2),
    "µt": ("mag", 1e-2),
    "mt": ("mag", 10.0),
    "nt": ("mag", 1e-5),
    "uv": ("emg", 1.0),
    "µv": ("emg", 1.0),
    "mv": ("emg", 1e3),
    "v": ("emg", 1e6),
    "nv": ("emg", 1e-3),
}

#: a step longer than this many nominal periods is a gap (one lost sample makes 2 periods)
GAP_PERIODS = 1.5
#: steps longer than this many periods are left out of the measured rate
RATE_GAP_PERIODS = 3.0
#: a step off the nominal period by more than this share counts as irregular sampling
IRREGULAR_SHARE = 0.25
#: at most this many gaps per stream are stored as QC rows (all are counted)
MAX_GAP_ROWS = 1000
#: values per stored chunk: one recording row and sample write each (bounds memory)
CHUNK_VALUES = 12_000_000
#: samples after which a stream whose times never advanced is refused without reading on
EARLY_VERDICT_SAMPLES = 100_000

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


@dataclass(frozen=True)
class Batch:
    """Samples of one stream read from a file, in project units and UTC µs.

    ``first_line`` is the 1-based line (or record) of the file the batch starts at, so that QC
    and messages can point into the file.
    """

    stream: str
    t_us: NDArray[np.int64]
    values: NDArray[np.float64]
    channels: tuple[str, ...]
    first_line: int = 0
    #: the device's sample counter where the file has one (else a running index is used)
    sample_seq: NDArray[np.int64] | None = None
    #: what ``first_line`` counts: "line" of a text file, or "sample" of the stream
    place: str = "line"

    def __len__(self) -> int:
        return int(self.t_us.shape[0])


@dataclass
class Source:
    """What a format reader found in one file: its batches and what the file states."""

    batches: Iterator[Batch]
    #: device id stated by the file (serial number, device name), else None
    device_id: str | None = None
    #: sampling rate stated by the file, per stream
    fs_hz: dict[str, float] = field(default_factory=dict)
    #: facts worth keeping with the recording (time zone source, header fields, ...)
    info: dict[str, Any] = field(default_factory=dict)
    #: things found wrong but imported anyway: (flag, one-line explanation), shown as warnings
    flags: list[tuple[str, str]] = field(default_factory=list)


@dataclass(frozen=True)
class ReadContext:
    """Options of one import call that readers need."""

    tz: str | None = None
    chunk_rows: int = 4_000_000
    #: ``--start``: UTC µs of the first sample, for files whose clock is only relative
    start_us: int | None = None


def check_tz(tz: str) -> ZoneInfo:
    """The zone for an IANA name, or :class:`ImportFileError` saying it is unknown."""
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise ImportFileError(
            f"unknown time zone {tz!r}: give an IANA name such as Europe/Berlin"
        ) from None


def need_tz(path: Path, ctx: ReadContext, what: str) -> str:
    """The call's ``tz`` for a file whose times carry no zone, or a clear error asking for it."""
    if ctx.tz is None:
        raise ImportFileError(
            f"{path}: {what} carry no time zone or UTC offset; give --tz ZONE "
            "(the IANA zone the recording's clock was set to, e.g. Europe/Berlin)"
        )
    return ctx.tz


def parse_start(text: str, tz: str | None) -> int:
    """UTC µs of ``--start``: ISO 8601 with an offset, or local time in ``tz``."""
    try:
        start = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise ImportFileError(
            f"--start {text!r} is not an ISO 8601 date-time (e.g. 2026-03-02T08:00:00+01:00)"
        ) from None
    if start.tzinfo is None and tz is None:
        raise ImportFileError(
            f"--start {text!r} has no UTC offset; add one (+01:00, Z) or give --tz ZONE"
        )
    return local_to_utc_us(start, tz)


def local_to_utc_us(local: dt.datetime, tz: str | None) -> int:
    """UTC µs of a datetime; naive ones are read in ``tz`` (which must then be given)."""
    if local.tzinfo is None:
        if tz is None:
            raise ValueError("naive time without a zone")
        local = local.replace(tzinfo=ZoneInfo(tz))
    return (local - _EPOCH) // dt.timedelta(microseconds=1)


def parse_unit(unit: str) -> tuple[str, float] | None:
    """``(stream, factor)`` for a unit spelling, None when it is not one the project knows."""
    key = unit.strip().lower().replace(" ", "")
    if key in UNIT_FACTORS:
        return UNIT_FACTORS[key]
    return None


# --------------------------------------------------------------------------- timing QC


@dataclass
class StreamQC:
    """Timing of one stream as found in the file (nothing is corrected)."""

    stream: str
    channels: tuple[str, ...]
    n_samples: int = 0
    first_us: int | None = None
    last_us: int | None = None
    period_us: float | None = None
    fs_stated_hz: float | None = None
    regular_sum_us: float = 0.0
    regular_n: int = 0
    irregular_steps: int = 0
    duplicate_times: int = 0
    backward_jumps: int = 0
    gaps: int = 0
    gap_s: float = 0.0
    gap_list: list[tuple[int, int, str]] = field(default_factory=list)
    max_step_us: int = 0
    #: where the first backward step and the first repeated time are ("line 12", "sample 7")
    first_backward: str | None = None
    first_duplicate: str | None = None
    #: what was found odd but imported: (flag, message), from validate.verdict
    flags: list[tuple[str, str]] = field(default_factory=list)

    @property
    def fs_measured_hz(self) -> float | None:
        """Rate from the timestamps: mean step over runs without gaps or jumps."""
        if self.regular_n == 0 or self.regular_sum_us <= 0:
            return None
        return 1e6 * self.regular_n / self.regular_sum_us

    @property
    def fs_hz(self) -> float:
        """The stated rate where the file states one, else the measured rate."""
        if self.fs_stated_hz:
            return float(self.fs_stated_hz)
        measured = self.fs_measured_hz
        if measured is None:
            return 1e6 / self.period_us if self.period_us else 0.0
        return measured

    def as_dict(self) -> dict[str, Any]:
        """The QC ledger for the catalog (``qc`` row detail)."""
        measured = self.fs_measured_hz
        steps = max(self.n_samples - 1, 1)
        return {
            "n_samples": self.n_samples,
            "fs_stated_hz": self.fs_stated_hz,
            "fs_measured_hz": None if measured is None else round(measured, 6),
            "irregular_steps": self.irregular_steps,
            "irregular_share": round(self.irregular_steps / steps, 6),
            "duplicate_times": self.duplicate_times,
            "clock_jumps_back": self.backward_jumps,
            "gaps": self.gaps,
            "gap_s": round(self.gap_s, 6),
            "max_step_s": self.max_step_us / 1e6,
            "resampled": False,
            "flags": [f for f, _ in self.flags],
        }


class StreamChecker:
    """Checks one stream batch by batch (values, gaps, jumps, rate); keeps no samples."""

    def __init__(self, stream: str, channels: tuple[str, ...], fs_stated_hz: float | None):
        from glutewake.ingest.importers.validate import ValueLedger

        self.qc = StreamQC(stream=stream, channels=channels, fs_stated_hz=fs_stated_hz)
        self.ledger = ValueLedger(stream, channels, STREAM_UNITS.get(stream, ""))
        if fs_stated_hz:
            self.qc.period_us = 1e6 / fs_stated_hz
        #: rows per stored chunk (one recording row and one sample write each)
        self.chunk_rows = max(1, CHUNK_VALUES // max(len(channels), 1))
        #: steps so far whose time advanced
        self.advancing = 0

    def add(self, batch: Batch) -> None:
        """Check a batch's values and timing against what came before it."""
        qc = self.qc
        if batch.channels != qc.channels:
            raise ImportFileError(
                f"line {batch.first_line}: {qc.stream} channels changed from "
                f"{','.join(qc.channels)} to {','.join(batch.channels)}"
            )
        n = len(batch)
        if n == 0:
            return
        self.ledger.add(batch)
        t = batch.t_us
        prev = qc.last_us
        steps = np.diff(t) if prev is None else np.diff(t, prepend=np.int64(prev))
        if qc.period_us is None:
            positive = steps[steps > 0]
            if positive.size:
                qc.period_us = float(np.median(positive))
        if steps.size:
            self._count_repeats(steps, batch, prev)
            self.advancing += int(np.count_nonzero(steps > 0))
        if qc.period_us is not None and steps.size:
            self._check_steps(steps, t, prev)
        if qc.first_us is None:
            qc.first_us = int(t[0])
        qc.last_us = int(t[-1])
        qc.n_samples += n
        if self.advancing == 0 and qc.n_samples >= EARLY_VERDICT_SAMPLES:
            # times that never advance: refused now, not after storing them all
            self.finish(complete=False)

    def finish(self, *, complete: bool = True) -> None:
        """Judge the whole stream (refused with :class:`ImportFileError`, or flagged)."""
        from glutewake.ingest.importers.validate import verdict

        self.qc.flags = verdict(self.qc, self.ledger, complete=complete)

    def _count_repeats(self, steps: NDArray[np.int64], batch: Batch, prev: int | None) -> None:
        """Count backward steps and repeated times, and where the first of each is."""
        qc = self.qc
        back = np.flatnonzero(steps < 0)
        same = np.flatnonzero(steps == 0)
        qc.backward_jumps += len(back)
        qc.duplicate_times += len(same)
        # step i ends at sample i + 1 of the batch, or sample i when it starts at ``prev``
        offset = 0 if prev is None else 1
        if back.size and qc.first_backward is None:
            qc.first_backward = f"{batch.place} {batch.first_line + int(back[0]) + 1 - offset}"
        if same.size and qc.first_duplicate is None:
            qc.first_duplicate = f"{batch.place} {batch.first_line + int(same[0]) + 1 - offset}"

    def _check_steps(
        self, steps: NDArray[np.int64], t: NDArray[np.int64], prev: int | None
    ) -> None:
        """Count gaps and off-period steps (few passes, no copies)."""
        qc = self.qc
        period = float(qc.period_us or 1.0)
        tol = IRREGULAR_SHARE * period
        n_dup = int(np.count_nonzero(steps == 0))
        odd = np.flatnonzero((steps > GAP_PERIODS * period) | (steps < 0))
        gap_steps = steps[odd]
        is_gap = gap_steps > 0
        # every gap, jump and duplicate is also off-period: count those among the rest
        off = int(np.count_nonzero((steps < period - tol) | (steps > period + tol)))
        n_special = len(odd) + n_dup
        qc.gaps += int(is_gap.sum())
        qc.gap_s += float(gap_steps[is_gap].sum()) / 1e6
        # the rate counts every step except long gaps and backward jumps, so that jitter
        # (a step pushed past the gap threshold) does not bias it
        out = np.flatnonzero((steps < 0) | (steps > RATE_GAP_PERIODS * period))
        qc.regular_sum_us += float(steps.sum(dtype=np.float64)) - float(steps[out].sum())
        qc.regular_n += steps.size - len(out)
        qc.irregular_steps += off - n_special + n_dup
        qc.max_step_us = max(qc.max_step_us, int(steps.max()))
        room = MAX_GAP_ROWS - len(qc.gap_list)
        # step i runs from sample i-1 (or the previous batch's last) to sample i
        offset = 0 if prev is None else 1
        for i in odd[:room] if room > 0 else ():
            j = int(i) + 1 - offset
            a = int(t[j - 1]) if j > 0 else int(prev if prev is not None else t[0])
            b = int(t[j])
            qc.gap_list.append((min(a, b), max(a, b), "gap" if b > a else "clock_jump_back"))


def prefetch(batches: Iterator[Batch], depth: int = 1) -> Iterator[Batch]:
    """Read the next batch in a thread while the caller stores the current one.

    Parsing (polars, pyedflib) and storing (Parquet encoding) both release the GIL, so they
    overlap; at most ``depth`` batches wait in the queue, which keeps memory bounded. An error
    raised by the reader is raised here, at the batch where it happened.
    """
    import queue
    import threading

    slots: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: tuple[str, Any]) -> bool:
        while not stop.is_set():
            try:
                slots.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def work() -> None:
        try:
            for batch in batches:
                if not put(("batch", batch)):
                    return
            put(("end", None))
        except BaseException as exc:  # handed to the consumer, raised there
            put(("error", exc))

    thread = threading.Thread(target=work, name="glutewake-import-reader", daemon=True)
    thread.start()
    try:
        while True:
            kind, item = slots.get()
            if kind == "end":
                return
            if kind == "error":
                raise item
            yield item
    finally:
        stop.set()
        thread.join(timeout=5)
