"""``stream_status`` against spools written by the real collector, and its gap arithmetic."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from glutewake.ingest.peripheral import FaultPlan
from glutewake.ingest.status import STATUS_KEYS, read_spool, stream_metrics, stream_status
from tests.ingest.test_ble_toy_profile import PROFILE
from tests.ingest.test_collector import CFG, collect_toy


def test_stream_metrics_counts_holes_and_expected_samples() -> None:
    period = 10_000
    t = np.r_[np.arange(0, 100) * period, np.arange(150, 300) * period]
    t = np.delete(t, [120, 121, 122])  # three lost samples inside the second connection
    m = stream_metrics(t, 100.0, [(0, 1_000_000), (1_400_000, 3_000_000)])
    assert m["samples_received"] == 247
    assert m["samples_expected"] == 250  # both connections, first to last sample inclusive
    assert m["gaps"] == 2
    # the disconnect hole is 0.5 s of missing samples; the lost run 0.03 s
    assert abs(m["gap_s"] - (0.5 + 0.03)) < 1e-9


def test_stream_metrics_without_data() -> None:
    m = stream_metrics(np.empty(0, np.int64), 52.0, [])
    assert (m["samples_received"], m["samples_expected"], m["gaps"], m["gap_s"]) == (0, 0, 0, 0.0)


async def test_status_of_a_collected_spool(tmp_path: Path) -> None:
    _, (per,), _, data = await collect_toy(
        tmp_path, FaultPlan(link_losses=((0.8, 0.4),)), duration_s=2.2
    )
    [row] = stream_status(data, profiles={"toy": PROFILE})
    assert set(STATUS_KEYS) <= set(row)
    assert (row["participant_id"], row["profile"], row["stream"]) == ("P01", "toy", "toy")
    sent_samples = 10 * len(per.sent)
    assert row["samples_received"] == sent_samples
    assert row["samples_expected"] == sent_samples  # nothing lost while connected
    assert row["gaps"] == 1 and 0.4 <= row["gap_s"] <= 1.5
    assert row["packets_lost"] == 0 and row["duplicates"] == 0
    assert row["battery_pct"] == 87
    assert row["state"] == "stopped"
    assert 0 <= row["last_data_age_s"] < 5


def test_read_spool_merges_segments_and_journal_once(tmp_path: Path) -> None:
    from glutewake.devices.base import RecordKind
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
