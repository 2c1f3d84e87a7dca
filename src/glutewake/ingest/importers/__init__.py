"""Import recordings researchers already have: vendor app exports, lab files, our own Parquet.

``run_import`` recognises each file's format from its content (or takes ``format=``), reads it in
bounded-memory chunks, checks its timing (gaps, clock jumps, irregular sampling: recorded as QC,
never resampled) and hands the chunks to the ``add_recordings`` callable its caller passes (the
CLI passes :func:`glutewake.pipeline.add_recordings`, which stores them like collected data,
derives what they touch, and writes the catalog rows, with the file's SHA-256 in
``import_files``, in one short transaction after the last chunk). Importers are a source: they
never import the pipeline, the analytics or the CLI, and write bookkeeping only through
:mod:`glutewake.store.bookkeeping`. A file already imported
for the participant is skipped; a malformed file fails alone with one message naming the file, the
line or record and what was expected, and the samples of any chunk already stored are removed.
The registry (:data:`FORMATS`) and the formats are described in ``docs/import.md``.

Heavy modules (polars, pyarrow, pyedflib) load only when an import runs, so the CLI starts fast.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from glutewake.ingest.importers.errors import ImportFileError, NoSamplesError

if TYPE_CHECKING:
    from glutewake.ingest.importers._core import Batch, ReadContext, Source, StreamChecker
    from glutewake.ingest.importers.sniff import Head
    from glutewake.store.datadir import DataDir
    from glutewake.store.samples import NewRecording

__all__ = [
    "FORMATS",
    "FileResult",
    "ImportFileError",
    "ImportSummary",
    "RecordingSink",
    "detect_format",
    "run_import",
]

log = logging.getLogger(__name__)
log.addHandler(logging.NullHandler())

ProgressHook = Callable[[str, int], Callable[[int], None]]

#: format name -> (module, sniff function, open function), in detection order (most specific
#: first); the open function is ``(path, head, ctx) -> Source``
_REGISTRY: dict[str, tuple[str, str, str]] = {
    "glutewake-spool": ("own_parquet", "sniff_spool", "open_spool"),
    "glutewake-samples": ("own_parquet", "sniff_samples", "open_samples"),
    "edf": ("edf", "sniff", "open_source"),
    "polar-sensor-logger": ("polar_logger", "sniff", "open_source"),
    "actigraph-csv": ("actigraph_csv", "sniff", "open_source"),
    "activpal-events": ("activpal", "sniff", ""),
    "movesense-json": ("movesense_json", "sniff", "open_source"),
    "movesense-csv": ("movesense_csv", "sniff", "open_source"),
    "generic-csv": ("generic_csv", "sniff", "open_source"),
    "axivity-csv": ("axivity_csv", "sniff", "open_source"),
}
#: the formats ``run_import`` and ``glutewake import --format`` accept
FORMATS: tuple[str, ...] = tuple(_REGISTRY)
#: formats that are an external reference, not samples
REFERENCE_FORMATS = frozenset({"activpal-events"})


def _no_progress(description: str, total: int) -> Callable[[int], None]:
    return lambda n: None


class SinkResult(Protocol):
    """What a :class:`RecordingSink` reports back (a ``ProcessSummary`` has these)."""

    warnings: list[str]
    participant_days: int
    exercise_sessions: int


class RecordingSink(Protocol):
    """Where an import's recordings go: stored, derived and written to the catalog.

    :func:`glutewake.pipeline.add_recordings` is the one the CLI passes. ``extra_rows(con)``
    must run inside the sink's catalog write transaction (the file's hash and QC rows).
    """

    def __call__(
        self,
        data_dir: DataDir,
        recordings: Iterable[NewRecording],
        *,
        extra_rows: Callable[[Any], None] | None = ...,
        progress: ProgressHook = ...,
    ) -> SinkResult: ...


@dataclass
class FileResult:
    """What happened to one file of an import call."""

    path: str
    status: str  #: 'imported', 'skipped' (already imported, or no samples) or 'failed'
    format: str | None = None
    sha256: str | None = None
    rows: int = 0
    recordings: list[str] = field(default_factory=list)
    message: str | None = None
    qc: dict[str, Any] = field(default_factory=dict)
    #: what was found odd but imported, one line each (also ``qc`` rows of kind ``import_flag``)
    flags: list[str] = field(default_factory=list)


@dataclass
class ImportSummary:
    """What one :func:`run_import` call did, file by file."""

    files: list[FileResult] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    participant_days: int = 0
    exercise_sessions: int = 0

    @property
    def imported(self) -> list[FileResult]:
        return [f for f in self.files if f.status == "imported"]

    @property
    def skipped(self) -> list[FileResult]:
        return [f for f in self.files if f.status == "skipped"]

    @property
    def failed(self) -> list[FileResult]:
        return [f for f in self.files if f.status == "failed"]

    @property
    def rows(self) -> int:
        return sum(f.rows for f in self.imported)


def _module(name: str) -> Any:
    import importlib

    return importlib.import_module(f"glutewake.ingest.importers.{name}")


def detect_format(path: str | os.PathLike[str]) -> str | None:
    """The format of a file recognised from its content, or None.

    Examples
    --------
    >>> detect_format("Polar_H10_0C301E3F_20260301080000_ACC.txt")  # doctest: +SKIP
    'polar-sensor-logger'
    """
    from glutewake.ingest.importers.sniff import Head

    head = Head.read(Path(path))
    return _detect(head)


def _detect(head: Head) -> str | None:
    for name, (module, sniff, _) in _REGISTRY.items():
        if getattr(_module(module), sniff)(head):
            return name
    return None


def file_sha256(path: Path) -> str:
    """SHA-256 of a file's bytes, read in blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(8 << 20):
            digest.update(block)
    return digest.hexdigest()


def _already_imported(data_dir: DataDir, participant_id: str) -> set[str]:
    from glutewake.store.bookkeeping import imported_hashes

    return imported_hashes(data_dir, participant_id)


def run_import(
    data_dir: DataDir | str | os.PathLike[str],
    paths: Sequence[str | os.PathLike[str]],
    *,
    participant_id: str,
    add_recordings: RecordingSink,
    format: str | None = None,
    tz: str | None = None,
    exercise: str | None = None,
    placement: str | None = None,
    device_id: str | None = None,
    progress: ProgressHook = _no_progress,
    chunk_rows: int = 4_000_000,
) -> ImportSummary:
    """Import files into a data directory as samples (or, for activPAL, a posture reference).

    Parameters
    ----------
    data_dir : DataDir or path
        Target data directory (created if missing).
    paths : sequence of paths
        Files to import; each is imported (or fails) on its own.
    participant_id : str
        Participant the files belong to.
    add_recordings : RecordingSink
        Stores, derives and writes each file's recordings; the CLI passes
        :func:`glutewake.pipeline.add_recordings` (:func:`glutewake.pipeline.import_files`
        is this function with it filled in).
    format : str, optional
        One of :data:`FORMATS`; default: recognised from each file's content.
    tz : str, optional
        IANA time zone of files whose times carry no zone or offset (required for those).
    exercise : str, optional
        Label the recordings as an exercise session (or ``mvc``), as ``collect --exercise``.
    placement : str, optional
        Register the device's placement (``thigh``, ``lower_back``, ...); the participant must
        exist in the catalog.
    device_id : str, optional
        Device id to store the samples under; default: the id the file states (serial number,
        Polar device id), else ``import-<format>``.
    progress : callable, optional
        ``progress(description, total)`` returns ``advance(n)``; the CLI passes a progress bar.
    chunk_rows : int
        Rows parsed per batch (bounds memory).

    Returns
    -------
    ImportSummary
        One :class:`FileResult` per path: imported, skipped (same SHA-256 already imported for
        this participant) or failed (with the message).

    Raises
    ------
    ImportFileError
        For problems of the call itself (unknown format name or time zone).

    Examples
    --------
    >>> from glutewake.pipeline import add_recordings
    >>> summary = run_import("DATA", ["Polar_H10_0C301E3F_20260301080000_ACC.txt"],
    ...                      participant_id="P01", add_recordings=add_recordings,
    ...                      tz="Europe/Berlin")  # doctest: +SKIP
    >>> [f.status for f in summary.files]  # doctest: +SKIP
    ['imported']
    """
    from glutewake.ingest.importers._core import ReadContext, check_tz
    from glutewake.store.datadir import DataDir, safe_component

    if format is not None and format not in _REGISTRY:
        raise ImportFileError(f"unknown format {format!r}; expected one of {', '.join(FORMATS)}")
    if tz is not None:
        check_tz(tz)
    try:
        safe_component(participant_id)
    except ValueError as exc:
        raise ImportFileError(str(exc)) from None
    if device_id is not None:
        try:
            safe_component(device_id)
        except ValueError as exc:
            raise ImportFileError(str(exc)) from None
    target = data_dir if isinstance(data_dir, DataDir) else DataDir.resolve(data_dir)
    if not target.exists():
        target.create()
    ctx = ReadContext(tz=tz, chunk_rows=chunk_rows)
    summary = ImportSummary()
    done = _already_imported(target, participant_id)
    for raw_path in paths:
        path = Path(raw_path)
        result = FileResult(path=str(raw_path), status="failed")
        summary.files.append(result)
        try:
            if not path.is_file():
                raise ImportFileError(f"{path}: no such file")
            result.sha256 = file_sha256(path)
            if result.sha256 in done:
                result.status = "skipped"
                result.message = "already imported for this participant (same SHA-256)"
                continue
            _import_one(
                target,
                path,
                result,
                ctx,
                participant_id,
                format,
                exercise,
                placement,
                device_id,
                progress,
                summary,
                add_recordings,
            )
            result.status = "imported"
            done.add(result.sha256)
        except NoSamplesError as exc:
            result.status = "skipped"
            result.message = str(exc)
        except ImportFileError as exc:
            result.message = str(exc)
        except Exception as exc:
            # whatever a reader library or the store raises still fails this file only
            log.debug("import of %s failed", path, exc_info=True)
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            result.message = f"{path}: {type(exc).__name__}: {first}"
    return summary


def _import_one(
    data_dir: DataDir,
    path: Path,
    result: FileResult,
    ctx: ReadContext,
    participant_id: str,
    format: str | None,
    exercise: str | None,
    placement: str | None,
    device_id: str | None,
    progress: ProgressHook,
    summary: ImportSummary,
    add_recordings: RecordingSink,
) -> None:
    from glutewake.ingest.importers.sniff import Head
    from glutewake.store.datadir import safe_component

    head = Head.read(path)
    fmt = format or _detect(head)
    if fmt is None:
        raise ImportFileError(
            f"{path}: format not recognised from its content; expected one of "
            f"{', '.join(FORMATS)} (docs/import.md), or give --format"
        )
    result.format = fmt
    if fmt in REFERENCE_FORMATS:
        _import_reference(data_dir, path, head, result, ctx, participant_id)
        return
    module, _, opener = _REGISTRY[fmt]
    source: Source = getattr(_module(module), opener)(path, head, ctx)
    device = device_id or source.device_id or f"import-{fmt}"
    try:
        prefix = f"{safe_component(device)}-{str(result.sha256)[:12]}"
    except ValueError:
        device = f"import-{fmt}"
        prefix = f"{device}-{str(result.sha256)[:12]}"
    label = exercise or source.info.get("exercise")
    feed = _RecordingFeed(
        source,
        path=path,
        fmt=fmt,
        result=result,
        participant_id=participant_id,
        device_id=device,
        prefix=prefix,
        exercise=str(label) if label else None,
        advance=progress(f"reading {path.name}", _estimated_rows(path, head)),
    )
    # the placement must be in the catalog before add_recordings reads the devices table
    created = (
        _register_device(data_dir, participant_id, device, feed.profile, placement, path)
        if placement
        else False
    )
    try:
        added = add_recordings(data_dir, feed, extra_rows=feed.extra_rows, progress=progress)
    except BaseException:
        # samples of the chunks stored before the failure: nothing stays for a failed file
        _remove_samples(data_dir, participant_id, prefix)
        if created:
            _unregister_device(data_dir, participant_id, device)
        raise
    summary.warnings.extend(w for w in added.warnings if w not in summary.warnings)
    summary.participant_days += added.participant_days
    summary.exercise_sessions += added.exercise_sessions


def _estimated_rows(path: Path, head: Head) -> int:
    if not head.is_text or not head.lines:
        return 0
    mean_line = max(1.0, len(head.raw) / max(len(head.lines), 1))
    return int(path.stat().st_size / mean_line)


class _RecordingFeed(Sequence["NewRecording"]):
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
        for stream, checker in self.checkers.items():
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

    def extra_rows(self, con: Any) -> None:
        """The file's hash and its per-recording QC, in add_recordings' transaction."""
        from glutewake.store.bookkeeping import insert_import_file, insert_import_qc

        result = self.result
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


def _remove_samples(data_dir: DataDir, participant_id: str, prefix: str) -> None:
    """Delete sample files a failed commit may have written (nothing stays for that file)."""
    from glutewake.store.datadir import safe_component

    pid = safe_component(participant_id)
    store = data_dir.store
    for rel in store.glob(f"samples/stream=*/participant_id={pid}/date=*/{prefix}-*.parquet"):
        store.remove(rel)


def _register_device(
    data_dir: DataDir, participant_id: str, device: str, profile: str, placement: str, path: Path
) -> bool:
    """Register the placement; True when the device was not in the catalog before."""
    from glutewake.store.bookkeeping import BookkeepingError, register_placement

    try:
        return register_placement(data_dir, participant_id, device, profile, placement)
    except BookkeepingError as exc:
        raise ImportFileError(f"{path}: --placement needs a known participant: {exc}") from None


def _unregister_device(data_dir: DataDir, participant_id: str, device: str) -> None:
    from glutewake.store.bookkeeping import forget_unseen_device

    forget_unseen_device(data_dir, participant_id, device)


def _import_reference(
    data_dir: DataDir,
    path: Path,
    head: Head,
    result: FileResult,
    ctx: ReadContext,
    participant_id: str,
) -> None:
    from glutewake.ingest.importers import activpal
    from glutewake.store.bookkeeping import insert_import_file, write

    periods = activpal.read_events(path, head, ctx)
    if periods.height == 0:
        raise ImportFileError(f"{path}: no events after the header")
    target = activpal.reference_path(data_dir, participant_id, str(result.sha256))
    result.rows = periods.height
    result.recordings = [str(target.relative_to(data_dir.root))]
    activpal.write_reference(target, periods)
    try:
        write(
            data_dir,
            insert_import_file,
            sha256=str(result.sha256),
            participant_id=participant_id,
            path=path,
            fmt=str(result.format),
            rows=result.rows,
            recordings=result.recordings,
        )
    except BaseException:
        target.unlink(missing_ok=True)
        raise
