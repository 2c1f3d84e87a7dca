"""A file's samples handed to the sink chunk by chunk, and the catalog rows that go with them.

:class:`RecordingFeed` is what ``run_import`` passes to ``add_recordings``: an iterable of
:class:`~glutewake.store.samples.NewRecording` of bounded size, read, checked and stored one at a
time, and an ``extra_rows(con)`` that writes, in the sink's transaction, the file's
``import_files`` row, its QC (``import`` rows, ``import_flag`` rows for what was odd but kept),
and replaces an earlier, shorter import of the same recording (:mod:`.versions`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from glutewake.ingest.importers.errors import ImportFileError

if TYPE_CHECKING:
    from glutewake.ingest.importers._core import Batch, Source, StreamChecker
    from glutewake.store.samples import NewRecording


class FileResult(Protocol):
    """The parts of ``glutewake.ingest.importers.FileResult`` the feed fills in."""

    sha256: str | None
    rows: int
    recordings: list[str]
    qc: dict[str, Any]
    flags: list[str]


class RecordingFeed(Sequence["NewRecording"]):
    """A file's samples as recordings of bounded size, produced while the file is read.

    ``add_recordings`` iterates it once: each chunk is parsed, checked, stored and released
    before the next is read, so memory stays bounded whatever the file's length. The catalog
    rows (``extra_rows``) are written after the last chunk, with the file's complete QC; a parse
    error raises out of the iteration before anything reaches the catalog.
    """

    def __init__(
        self,
        source: Source,
        *,
        path: Path,
        fmt: str,
        result: FileResult,
        participant_id: str,
        device_id: str,
        prefix: str,
        exercise: str | None,
        advance: Callable[[int], None],
    ) -> None:
        self.source = source
        self.path = path
        self.fmt = fmt
        self.result = result
        self.participant_id = participant_id
        self.device_id = device_id
        self.prefix = prefix
        self.profile = f"import:{fmt}"
        self.exercise = exercise
        self.advance = advance
        self.checkers: dict[str, StreamChecker] = {}
        self.chunks: list[dict[str, Any]] = []
        #: recording ids of an earlier, shorter import this one replaced (files to delete)
        self.replaced: list[str] = []

    # Only iteration is used (add_recordings loops once); a streamed file has no length up front.
    def __len__(self) -> int:
        raise TypeError("a streamed import has no length before it is read")

    def __getitem__(self, i: int) -> NewRecording:  # type: ignore[override]
        raise TypeError("a streamed import can only be iterated")

    def __iter__(self) -> Iterator[NewRecording]:
        import numpy as np

        from glutewake.ingest.importers._core import STREAM_UNITS, StreamChecker, prefetch

        pending: dict[str, list[Batch]] = {}
        pending_rows: dict[str, int] = {}
        first_stream: str | None = None
        for batch in prefetch(self.source.batches):
            if batch.stream not in STREAM_UNITS:
                raise ImportFileError(
                    f"{self.path}: stream {batch.stream!r} is not one the project stores"
                )
            checker = self.checkers.get(batch.stream)
            if checker is None:
                checker = StreamChecker(
                    batch.stream, batch.channels, self.source.fs_hz.get(batch.stream)
                )
                self.checkers[batch.stream] = checker
            try:
                checker.add(batch)
            except ImportFileError as exc:
                raise ImportFileError(f"{self.path}: {exc}") from None
            first_stream = first_stream or batch.stream
            if batch.stream == first_stream:
                self.result.rows += len(batch)
                self.advance(len(batch))
            pending.setdefault(batch.stream, []).append(batch)
            pending_rows[batch.stream] = pending_rows.get(batch.stream, 0) + len(batch)
            while pending_rows[batch.stream] >= checker.chunk_rows:
                yield self._chunk(checker, pending[batch.stream], checker.chunk_rows, np)
                pending_rows[batch.stream] -= checker.chunk_rows
        if not self.checkers:
            raise ImportFileError(f"{self.path}: no samples (a header but no data rows)")
        self.result.flags.extend(msg for _, msg in self.source.flags)
        for checker in self.checkers.values():
            try:
                checker.finish()
            except ImportFileError as exc:
                raise ImportFileError(f"{self.path}: {exc}") from None
            self.result.flags.extend(msg for _, msg in checker.qc.flags)
        for stream, parts in pending.items():
            if pending_rows[stream] > 0:
                yield self._chunk(self.checkers[stream], parts, pending_rows[stream], np)
        if not self.chunks:
            raise ImportFileError(f"{self.path}: no samples (a header but no data rows)")

    def _chunk(
        self, checker: StreamChecker, parts: list[Batch], rows: int, np: Any
    ) -> NewRecording:
        """Take ``rows`` samples off the front of ``parts`` (in place) as one recording."""
        from glutewake.devices.base import Gap, StreamSamples
        from glutewake.ingest.importers._core import STREAM_UNITS, Batch
        from glutewake.store.samples import NewRecording

        qc = checker.qc
        t_parts, v_parts, s_parts = [], [], []
        seq_known = all(b.sample_seq is not None for b in parts)
        need = rows
        while need > 0:
            b = parts[0]
            take = min(need, len(b))
            t_parts.append(b.t_us[:take])
            v_parts.append(b.values[:take])
            if b.sample_seq is not None:
                s_parts.append(b.sample_seq[:take])
            if take == len(b):
                parts.pop(0)
            else:
                parts[0] = Batch(
                    b.stream,
                    b.t_us[take:],
                    b.values[take:],
                    b.channels,
                    b.first_line + take,
                    None if b.sample_seq is None else b.sample_seq[take:],
                )
            need -= take
        k = sum(1 for c in self.chunks if c["stream"] == qc.stream)
        first_seq = sum(c["rows"] for c in self.chunks if c["stream"] == qc.stream)
        # one part (a reader batch the size of a chunk, the usual case) is taken without a copy
        t_us = t_parts[0] if len(t_parts) == 1 else np.concatenate(t_parts)
        values = v_parts[0] if len(v_parts) == 1 else np.concatenate(v_parts)
        seq = (
            (s_parts[0] if len(s_parts) == 1 else np.concatenate(s_parts))
            if seq_known
            else np.arange(first_seq, first_seq + rows, dtype=np.int64)
        )
        name = f"{self.prefix}-{k:03d}"
        gaps_from = sum(c["gaps"] for c in self.chunks if c["stream"] == qc.stream)
        gaps = tuple(Gap(qc.stream, a, b, r) for a, b, r in qc.gap_list[gaps_from:])
        self.chunks.append(
            {
                "stream": qc.stream,
                "k": k,
                "rows": rows,
                "gaps": len(gaps),
                "recording_id": f"{self.participant_id}/{name}-{qc.stream}",
                "t0": int(t_us.min()),
                "t1": int(t_us.max()),
            }
        )
        self.result.recordings.append(f"{self.participant_id}/{name}-{qc.stream}")
        return NewRecording(
            participant_id=self.participant_id,
            device_id=self.device_id,
            profile=self.profile,
            recording_name=name,
            samples=StreamSamples(
                stream=qc.stream,
                t_us=t_us.astype(np.int64, copy=False),
                values=values.astype(np.float64, copy=False),
                channel_names=qc.channels,
                unit=STREAM_UNITS[qc.stream],
                fs_hz=qc.fs_hz,
                sample_seq=seq.astype(np.int64, copy=False),
            ),
            exercise=self.exercise,
            gaps=gaps,
            config={"import_format": self.fmt, "fs_hz": qc.fs_hz},
        )

    def spans(self) -> dict[str, tuple[int, int, float]]:
        """Each stream's first and last time (µs) and rate, once the file is read."""
        out: dict[str, tuple[int, int, float]] = {}
        for c in self.chunks:
            lo, hi, _ = out.get(c["stream"], (c["t0"], c["t1"], 0.0))
            fs = self.checkers[c["stream"]].qc.fs_hz
            out[c["stream"]] = (min(lo, c["t0"]), max(hi, c["t1"]), fs)
        return out

    def extra_rows(self, con: Any) -> None:
        """The file's hash, its per-recording QC and flags, in add_recordings' transaction;
        an earlier, shorter import of the same recording is removed (a longer one here)."""
        from glutewake.ingest.importers.versions import settle_versions
        from glutewake.store.bookkeeping import (
            insert_import_file,
            insert_import_flag,
            insert_import_qc,
        )

        result = self.result
        self.replaced = settle_versions(
            con, self.participant_id, self.device_id, self.fmt, self.spans(), self.path
        )
        result.qc = {s: c.qc.as_dict() for s, c in self.checkers.items()}
        insert_import_file(
            con,
            sha256=str(result.sha256),
            participant_id=self.participant_id,
            path=self.path,
            fmt=self.fmt,
            rows=result.rows,
            recordings=result.recordings,
        )
        info = {k: v for k, v in self.source.info.items() if k != "exercise"}
        n_chunks = {s: sum(1 for c in self.chunks if c["stream"] == s) for s in self.checkers}
        for c in self.chunks:
            qc = self.checkers[c["stream"]].qc
            detail = {
                **qc.as_dict(),
                **info,
                "format": self.fmt,
                "file": str(self.path),
                "sha256": result.sha256,
                "chunk": c["k"],
                "chunks": n_chunks[c["stream"]],
            }
            insert_import_qc(
                con,
                participant_id=self.participant_id,
                recording_id=c["recording_id"],
                start_us=c["t0"],
                end_us=c["t1"],
                fs_measured_hz=qc.fs_measured_hz,
                detail=detail,
            )
        first_of: dict[str, str] = {}
        for c in self.chunks:
            first_of.setdefault(c["stream"], c["recording_id"])
        file_flags = [(next(iter(first_of.values())), f, m) for f, m in self.source.flags]
        stream_flags = [
            (first_of[s], f, m) for s, ch in self.checkers.items() for f, m in ch.qc.flags
        ]
        for recording_id, flag, message in file_flags + stream_flags:
            insert_import_flag(
                con,
                participant_id=self.participant_id,
                recording_id=recording_id,
                flag=flag,
                message=message,
                file=self.path,
            )
