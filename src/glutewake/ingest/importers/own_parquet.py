"""The project's own Parquet: spool segments and sample files, re-imported elsewhere.

Spool segments (``seg-*.parquet``, footer key ``glutewake.profile``) are decoded with their device
profile, exactly as ``process`` would; a connection whose stream-settings exchange lies in an
earlier segment cannot be decoded alone, so import a device's segments in order in one call.
Sample files (``samples/stream=<S>/.../<name>.parquet``) are read row group by row group; the
stream comes from the ``stream=`` folder in the path, the unit from the stream.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from glutewake.ingest.importers._core import (
    STREAM_UNITS,
    Batch,
    ReadContext,
    Source,
)
from glutewake.ingest.importers.errors import ImportFileError, NoSamplesError
from glutewake.ingest.importers.sniff import Head

SPOOL = "glutewake-spool"
SAMPLES = "glutewake-samples"
_STREAM_DIR = re.compile(r"^stream=(\w+)$")


def _metadata(path: Path) -> tuple[dict[bytes, bytes], list[str]] | None:
    try:
        schema = pq.read_schema(path)
    except (OSError, pa.ArrowInvalid):
        return None
    return dict(schema.metadata or {}), list(schema.names)


def sniff_spool(head: Head) -> bool:
    """Parquet with the spool's footer metadata."""
    if head.raw[:4] != b"PAR1":
        return False
    found = _metadata(head.path)
    return found is not None and b"glutewake.profile" in found[0]


def sniff_samples(head: Head) -> bool:
    """Parquet with ``t_us`` and ``sample_seq`` columns and no spool metadata."""
    if head.raw[:4] != b"PAR1":
        return False
    found = _metadata(head.path)
    return (
        found is not None
        and {"t_us", "sample_seq"} <= set(found[1])
        and (b"glutewake.profile" not in found[0])
    )


def open_spool(path: Path, head: Head, ctx: ReadContext) -> Source:
    """Decode a spool segment with its device profile."""
    from glutewake.devices import get_profile
    from glutewake.store.spool import SpoolError, read_segment

    try:
        info, records, _ = read_segment(path)
    except SpoolError as exc:
        raise ImportFileError(str(exc)) from None
    try:
        profile = get_profile(info.profile)
    except KeyError:
        raise ImportFileError(f"{path}: unknown device profile {info.profile!r}") from None
    from glutewake.devices.base import RecordKind

    if not np.any(records.kind == RecordKind.NOTIFY):
        raise NoSamplesError(f"{path}: no notifications (connection and control records only)")
    result = profile.decode_records(records, info.config)
    if not result.streams:
        raise ImportFileError(
            f"{path}: no samples decoded from {len(records)} records ({len(result.errors)} "
            "undecodable); the stream settings may be in an earlier segment of the same device"
        )

    def batches() -> Iterator[Batch]:
        for smp in result.streams.values():
            yield Batch(
                smp.stream, smp.t_us, smp.values, smp.channel_names, 1, smp.sample_seq, "sample"
            )

    source_info: dict[str, object] = {
        "source_profile": info.profile,
        "source_participant": info.participant_id,
        "undecodable_records": len(result.errors),
    }
    if info.labels.get("exercise"):
        source_info["exercise"] = str(info.labels["exercise"])
    return Source(
        batches(),
        device_id=info.device_id,
        fs_hz={s.stream: float(s.fs_hz) for s in result.streams.values()},
        info=source_info,
    )


def open_samples(path: Path, head: Head, ctx: ReadContext) -> Source:
    """Read a sample file of the store (stream from its ``stream=`` folder)."""
    stream = next((m.group(1) for p in path.parts if (m := _STREAM_DIR.match(p))), None)
    if stream not in STREAM_UNITS:
        raise ImportFileError(
            f"{path}: a sample file must lie under a stream=<acc|gyro|mag|emg> folder so its "
            "stream and unit are known"
        )
    reader = pq.ParquetFile(path)
    channels = tuple(n for n in reader.schema_arrow.names if n not in ("t_us", "sample_seq"))
    if not channels:
        raise ImportFileError(f"{path}: no channel columns besides t_us and sample_seq")

    def batches() -> Iterator[Batch]:
        line = 1
        for rb in reader.iter_batches(batch_size=ctx.chunk_rows):
            t_us = rb.column("t_us").to_numpy(zero_copy_only=False).astype(np.int64, copy=False)
            seq = rb.column("sample_seq").to_numpy(zero_copy_only=False).astype(np.int64)
            try:
                values = np.column_stack(
                    [rb.column(c).to_numpy(zero_copy_only=False) for c in channels]
                ).astype(np.float64)
            except (TypeError, ValueError):
                raise ImportFileError(
                    f"{path}: row {line}: channel columns must be numeric"
                ) from None
            yield Batch(str(stream), t_us, values, channels, line, seq, "row")
            line += rb.num_rows

    # store files are <device>-c<conn>-<stream> (collected) or <device>-<hash>-<k>-<stream>
    stem = re.sub(rf"-{stream}$", "", path.stem)
    device = re.sub(r"-(c\d+|[0-9a-f]{12}-\d{3})$", "", stem) or None
    return Source(batches(), device_id=device, info={"source_file": path.name})
