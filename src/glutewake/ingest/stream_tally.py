"""What a stream delivered against what its device sent: counts kept as data arrives.

A :class:`StreamTally` is updated with each batch of decoded samples (the collector's live QC
decodes what arrived every ``qc_interval_s``) and holds only counters, so it costs the same after
a minute as after a month, and it survives restarts in the collector's status file.

*Expected* samples follow the device's own clock: from the first sample after a start to the
latest sample, one per sample period (the nominal rate), across link losses, reconnects and
collector crashes alike. Only a clean stop by the host (a ``host_stop`` disconnect) closes that
stretch, and the next one opens at the first sample after it. So what a kill, an out-of-range
hour or a dropped link cost is ``samples_expected - samples_received``; a stop the user asked for
costs nothing.

The loss is counted hole by hole: a hole of ``d`` between two samples inside a stretch, longer
than :data:`GAP_PERIODS` sample periods, is a *gap* that lost ``round(d / period) - 1``
samples. That is the first-to-last count, but immune to the few microseconds the clock model
moves a sample between two decoding windows (a span of a day would otherwise round to a sample
more or less than arrived).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # numpy loads when samples are counted: `glutewake status` only reads counts
    import numpy as np
    from numpy.typing import NDArray

#: a hole longer than this many sample periods counts as a gap
GAP_PERIODS = 2.5


@dataclass
class StreamTally:
    """Running counts of one stream (all times are the decoded UTC µs of samples).

    Examples
    --------
    >>> import numpy as np
    >>> tally = StreamTally()
    >>> tally.add(np.arange(0, 1_000_000, 10_000), 100.0)  # 1 s at 100 Hz
    >>> tally.add(np.arange(3_000_000, 4_000_000, 10_000), 100.0)  # after a 2-s link loss
    >>> tally.received, tally.expected, tally.gaps, round(tally.gap_s, 2)
    (200, 400, 1, 2.0)
    >>> tally.stop()  # a clean stop: the next start costs nothing
    >>> tally.add(np.arange(9_000_000, 9_500_000, 10_000), 100.0)
    >>> tally.received, tally.expected, tally.gaps
    (250, 450, 1)
    """

    fs_hz: float = 0.0
    received: int = 0
    #: samples missing in the gaps so far
    lost: int = 0
    #: first sample of the open stretch (None: none open, e.g. after a clean stop)
    open_first_us: int | None = None
    last_us: int | None = None
    gaps: int = 0
    gap_s: float = 0.0
    packets_lost: int = 0
    duplicates: int = 0
    decode_errors: int = 0

    @property
    def period_us(self) -> float:
        return 1e6 / self.fs_hz if self.fs_hz > 0 else 0.0

    @property
    def expected(self) -> int:
        """Samples the device sent (or would have) from each start to its last sample."""
        return self.received + self.lost

    def add(self, t_us: NDArray[np.int64], fs_hz: float) -> None:
        """Count newly decoded samples (each sample once: the caller passes only new ones)."""
        import numpy as np

        if fs_hz > 0:
            self.fs_hz = float(fs_hz)
        t = np.sort(np.asarray(t_us, np.int64))
        if not t.size:
            return
        if self.open_first_us is not None and self.last_us is not None:
            # the hole from the last counted sample is inside the open stretch
            steps = np.diff(t, prepend=np.int64(self.last_us))
        else:
            self.open_first_us = int(t[0])
            steps = np.diff(t)
        if self.period_us:
            holes = steps[steps > GAP_PERIODS * self.period_us]
            self.gaps += int(holes.size)
            self.gap_s += float((holes - self.period_us).sum() / 1e6)
            self.lost += int((np.round(holes / self.period_us) - 1).sum())
        self.received += int(t.size)
        # a device clock that stepped back does not move the stretch's end back
        self.last_us = int(t[-1]) if self.last_us is None else max(self.last_us, int(t[-1]))

    def stop(self) -> None:
        """A clean stop by the host: close the open stretch at its last sample."""
        self.open_first_us = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> StreamTally:
        known = {k: raw[k] for k in cls.__dataclass_fields__ if k in raw}
        return cls(**known)

    def status(self, now_us: int) -> dict[str, Any]:
        """The ``glutewake status`` figures of this stream."""
        return {
            "fs_hz": self.fs_hz,
            "samples_received": self.received,
            "samples_expected": self.expected,
            "gaps": self.gaps,
            "gap_s": self.gap_s,
            "packets_lost": self.packets_lost,
            "duplicates": self.duplicates,
            "last_data_age_s": None if self.last_us is None else (now_us - self.last_us) / 1e6,
            "decode_errors": self.decode_errors,
        }


#: what ``glutewake status`` knows of one device: profile, participant, device, battery %, its
#: time, and the tally of each stream
Counts = tuple[str | None, str | None, str | None, int | None, int | None, dict[str, StreamTally]]


def add_until_stops(
    tally: StreamTally, t_us: NDArray[np.int64], fs_hz: float, stops_us: list[int]
) -> None:
    """Count ``t_us`` into ``tally`` with the clean stops at ``stops_us`` (host times, sorted)
    closing the open stretch between the samples before and after each."""
    import numpy as np

    t = np.sort(np.asarray(t_us, np.int64))
    lo = 0
    for stop_us in stops_us:
        hi = int(np.searchsorted(t, stop_us, side="right"))
        tally.add(t[lo:hi], fs_hz)
        tally.stop()
        lo = hi
    tally.add(t[lo:], fs_hz)
