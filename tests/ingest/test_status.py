"""``glutewake status``: the collector's running counts, the spool scan, and their arithmetic."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from glutewake.devices.base import RecordKind
from glutewake.ingest import spool_scan
from glutewake.ingest.peripheral import FaultPlan
from glutewake.ingest.spool_scan import read_spool
from glutewake.ingest.status import STATUS_KEYS, stream_status
from glutewake.ingest.stream_tally import StreamTally, add_until_stops
from tests.ingest.test_ble_toy_profile import PROFILE
from tests.ingest.test_collector import CFG, collect_toy


def test_tally_counts_a_link_loss_as_loss_and_a_clean_stop_as_none() -> None:
    period = 10_000
    tally = StreamTally()
    first = np.arange(0, 100) * period
    second = np.delete(np.arange(150, 300) * period, [20, 21, 22])  # 3 samples lost
    tally.add(first, 100.0)
    tally.add(second, 100.0)
    # from the first sample to the last, across the 0.5-s link loss, one per period
    assert (tally.received, tally.expected) == (247, 300)
    assert tally.gaps == 2 and tally.gap_s == pytest.approx(0.5 + 0.03)
    add_until_stops(tally, np.arange(300, 310) * period, 100.0, [3_100_000])
    tally.add(np.arange(1000, 1010) * period, 100.0)  # 7 s later, after the clean stop
    assert (tally.received, tally.expected, tally.gaps) == (267, 320, 2)


def test_tally_survives_a_restart_and_a_clock_step_back() -> None:
    tally = StreamTally()
    tally.add(np.arange(0, 50) * 10_000, 100.0)
    restored = StreamTally.from_json(json.loads(json.dumps(tally.to_json())))
    assert restored == tally
    restored.add(np.arange(45, 80) * 10_000, 100.0)  # the device clock stepped back 50 ms
    assert (restored.received, restored.expected, restored.gaps) == (85, 85, 0)
    # expected samples do not wander with the clock model: jitter of a fraction of a period (as
    # between decoding windows) over an hour of 1 kHz samples leaves nothing counted as lost
    hour = StreamTally()
    t = np.arange(3_600_000) * 1000 + np.random.default_rng(0).integers(-300, 300, 3_600_000)
    for lo in range(0, t.size, 5_000):
        hour.add(t[lo : lo + 5_000], 1000.0)
    assert (hour.received, hour.expected, hour.gaps) == (3_600_000, 3_600_000, 0)


async def test_status_of_a_collected_spool(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _, (per,), _, data = await collect_toy(
        tmp_path, FaultPlan(link_losses=((0.8, 0.4),)), duration_s=2.2
    )
    rescanned = stream_status(data, profiles={"toy": PROFILE}, rescan=True)

    # the collector's counts are read from its status file, never from the spool
    def no_spool_reads(folder: Path) -> None:
        raise AssertionError("status read the spool")

    monkeypatch.setattr(spool_scan, "read_spool", no_spool_reads)
    [row] = stream_status(data)
    assert set(STATUS_KEYS) <= set(row)
    assert (row["participant_id"], row["profile"], row["stream"]) == ("P01", "toy", "toy")
    assert row["counted_from"] == "collector"
    sent_samples = 10 * len(per.sent)
    assert row["samples_received"] == sent_samples
    # the link loss shows: expected runs on across it at 100 Hz
    assert row["gaps"] == 1 and 0.4 <= row["gap_s"] <= 1.5
    assert row["samples_lost"] == pytest.approx(row["gap_s"] * 100, abs=2)
    assert row["samples_expected"] == row["samples_received"] + row["samples_lost"]
    assert row["packets_lost"] == 0 and row["duplicates"] == 0
    assert row["battery_pct"] == 87
    assert row["state"] == "stopped"
    assert 0 <= row["last_data_age_s"] < 5
    assert row["damaged_parts"] == 0
    # counting the spool from scratch gives the same figures
    [scan] = rescanned
    assert scan["counted_from"] == "spool"
    for key in ("samples_received", "samples_expected", "gaps", "packets_lost", "duplicates"):
        assert scan[key] == row[key], key


def test_read_spool_merges_segments_and_journal_once(tmp_path: Path) -> None:
    from glutewake.store.spool import SpoolInfo, SpoolWriter

    info = SpoolInfo("P01", "dev", "toy", CFG, {})
    writer = SpoolWriter(tmp_path, info)
    for i in range(5):
        writer.append(1_000 + i, RecordKind.NOTIFY, "u", bytes([i]), 1)
    writer.rotate()
    for i in range(5, 8):
        writer.append(1_000 + i, RecordKind.NOTIFY, "u", bytes([i]), 1)
    # a collector still running: 5 records in a segment, 3 only in the journal
    got_info, records = read_spool(tmp_path)
    assert got_info is not None and got_info.profile == "toy"
    assert records.payload == [bytes([i]) for i in range(8)]
    writer.close()
