"""Import recordings researchers already have: vendor app exports, lab files, our own Parquet.

``run_import`` recognises each file's format from its content (or takes ``format=``), reads it in
bounded-memory chunks, refuses what no sensor could have recorded and flags what is odd but usable
(:mod:`.validate`), checks its timing (gaps, clock jumps, irregular sampling: recorded as QC,
never resampled) and hands the chunks to the ``add_recordings`` callable its caller passes (the
CLI passes :func:`glutewake.pipeline.add_recordings`, which stores them like collected data,
derives what they touch, and writes the catalog rows, with the file's SHA-256 in
``import_files``, in one short transaction after the last chunk). Importers are a source: they
never import the pipeline, the analytics or the CLI, and write bookkeeping only through
:mod:`glutewake.store.bookkeeping`. A file already imported
for the participant is skipped, and so is a shorter version of a recording already imported; a
longer one replaces it (:mod:`.versions`). A malformed file fails alone with one message naming
the file, the line or record and what was expected, and the samples of any chunk already stored
are removed.
The registry (:data:`FORMATS`) and the formats are described in ``docs/import.md``.

Heavy modules (polars, pyarrow, pyedflib) load only when an import runs, so the CLI starts fast.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from glutewake.ingest.importers.errors import ImportFileError, NoSamplesError

if TYPE_CHECKING:
    from glutewake.ingest.importers._core import ReadContext, Source
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
    start: str | None = None,
    channel_roles: str | Sequence[tuple[str, str, str]] | None = None,
    progress: ProgressHook = _no_progress,
    chunk_rows: int = 4_000_000,
) -> ImportSummary:
    """Import files into a data directory as samples (or, for activPAL, a posture reference).

    Parameters
    ----------
    data_dir : DataDir or path
        Target data directory; its catalog must hold the participant.
    paths : sequence of paths
        Files to import; each is imported (or fails) on its own.
    participant_id : str
        Participant the files belong to: a registered id (``glutewake participant add``), as
        for every other command; a typo fails the call instead of storing data under it.
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
    start : str, optional
        ISO 8601 date and time of the first sample (with an offset, else read in ``tz``), for
        files whose clock only counts from the sensor's reset (Movesense); it overrides the
        time a file or its name states.
    channel_roles : str or sequence of (channel, muscle, side), optional
        EMG channel roles (``"glute_r:glute_max:right,ham_r:hamstring:right"``), registered for
        the device before the import derives its sessions, as ``device set --channel-roles``.
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
        For problems of the call itself (unknown format name or time zone, an invalid device
        id, a participant id that breaks the rule or is not in the catalog, a ``start`` that is
        not a date-time, channel roles that are not ``CHANNEL:MUSCLE:SIDE``).

    Examples
    --------
    >>> from glutewake.pipeline import add_recordings
    >>> summary = run_import("DATA", ["Polar_H10_0C301E3F_20260301080000_ACC.txt"],
    ...                      participant_id="P01", add_recordings=add_recordings,
    ...                      tz="Europe/Berlin")  # doctest: +SKIP
    >>> [f.status for f in summary.files]  # doctest: +SKIP
    ['imported']
    """
    from glutewake.ingest.importers._core import ReadContext, check_tz, parse_start
    from glutewake.store.bookkeeping import (
        BookkeepingError,
        parse_channel_roles,
        require_registered,
    )
    from glutewake.store.datadir import DataDir
    from glutewake.store.ids import InvalidIdError, check_participant_id, device_component

    if format is not None and format not in _REGISTRY:
        raise ImportFileError(f"unknown format {format!r}; expected one of {', '.join(FORMATS)}")
    if tz is not None:
        check_tz(tz)
    try:
        check_participant_id(participant_id)
        if device_id is not None:
            device_component(device_id)
    except InvalidIdError as exc:
        raise ImportFileError(str(exc)) from None
    target = data_dir if isinstance(data_dir, DataDir) else DataDir.resolve(data_dir)
    try:
        require_registered(target, participant_id)
    except BookkeepingError as exc:
        raise ImportFileError(str(exc)) from None
    roles: list[tuple[str, str, str]] | None = None
    if channel_roles is not None:
        try:
            roles = (
                parse_channel_roles(channel_roles)
                if isinstance(channel_roles, str)
                else parse_channel_roles(",".join(":".join(r) for r in channel_roles))
            )
        except BookkeepingError as exc:
            raise ImportFileError(str(exc)) from None
    start_us = parse_start(start, tz) if start is not None else None
    ctx = ReadContext(tz=tz, chunk_rows=chunk_rows, start_us=start_us)
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
                _Device(device_id, placement, roles),
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
    wanted: _Device,
    progress: ProgressHook,
    summary: ImportSummary,
    add_recordings: RecordingSink,
) -> None:
    from glutewake.ingest.importers.feed import RecordingFeed
    from glutewake.ingest.importers.sniff import Head
    from glutewake.store.ids import device_component

    head = Head.read(path)
    fmt = format or _detect(head)
    if fmt is None:
        raise ImportFileError(
            f"{path}: format not recognised from its content; expected one of "
            f"{', '.join(FORMATS)} (docs/import.md), or give --format"
        )
    result.format = fmt
    if fmt in REFERENCE_FORMATS:
        _import_reference(data_dir, path, head, result, ctx, participant_id, summary)
        return
    module, _, opener = _REGISTRY[fmt]
    source: Source = getattr(_module(module), opener)(path, head, ctx)
    device = wanted.device_id or source.device_id or f"import-{fmt}"
    try:
        prefix = f"{device_component(device)}-{str(result.sha256)[:12]}"
    except ValueError:
        device = f"import-{fmt}"
        prefix = f"{device}-{str(result.sha256)[:12]}"
    label = exercise or source.info.get("exercise")
    feed = RecordingFeed(
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
    # placement and roles must be in the catalog before add_recordings reads the devices table
    created = (
        _register_device(data_dir, participant_id, device, feed.profile, wanted, path)
        if wanted.placement or wanted.roles
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
    _remove_recordings(data_dir, participant_id, feed.replaced)
    if feed.replaced:
        result.message = f"replaced {len(feed.replaced)} recording(s) of a shorter version"
    summary.warnings.extend(f"{path}: {flag}" for flag in result.flags)
    if wanted.roles and "emg" in feed.checkers:
        stored = feed.checkers["emg"].qc.channels
        unknown = [c for c, _, _ in wanted.roles if c not in stored]
        if unknown:
            summary.warnings.append(
                f"{path}: channel roles name {', '.join(unknown)}, which the file's EMG "
                f"channels ({', '.join(stored)}) do not include"
            )
    summary.warnings.extend(w for w in added.warnings if w not in summary.warnings)
    summary.participant_days += added.participant_days
    summary.exercise_sessions += added.exercise_sessions


def _estimated_rows(path: Path, head: Head) -> int:
    if not head.is_text or not head.lines:
        return 0
    mean_line = max(1.0, len(head.raw) / max(len(head.lines), 1))
    return int(path.stat().st_size / mean_line)


def _remove_samples(data_dir: DataDir, participant_id: str, prefix: str) -> None:
    """Delete sample files a failed commit may have written (nothing stays for that file)."""
    from glutewake.store.ids import participant_component

    pid = participant_component(participant_id)
    store = data_dir.store
    for rel in store.glob(f"samples/stream=*/participant_id={pid}/date=*/{prefix}-*.parquet"):
        store.remove(rel)


@dataclass(frozen=True)
class _Device:
    """What the call says about the device: its id, placement and EMG channel roles."""

    device_id: str | None
    placement: str | None
    roles: list[tuple[str, str, str]] | None


def _remove_recordings(data_dir: DataDir, participant_id: str, recording_ids: list[str]) -> None:
    """Delete the sample files of recordings a longer version replaced (after its commit)."""
    from glutewake.store.ids import check_component, participant_component

    pid = participant_component(participant_id)
    store = data_dir.store
    for rid in recording_ids:
        name = rid.split("/", 1)[-1]
        stream = name.rsplit("-", 1)[-1]
        pattern = f"samples/stream={stream}/participant_id={pid}/date=*/{check_component(name)}"
        for rel in store.glob(f"{pattern}.parquet"):
            store.remove(rel)


def _register_device(
    data_dir: DataDir, participant_id: str, device: str, profile: str, wanted: _Device, path: Path
) -> bool:
    """Register the placement and roles; True when the device was not in the catalog before."""
    from glutewake.store.bookkeeping import BookkeepingError, register_placement

    try:
        return register_placement(
            data_dir, participant_id, device, profile, wanted.placement, wanted.roles
        )
    except BookkeepingError as exc:
        raise ImportFileError(
            f"{path}: --placement and --channel-roles need a known participant: {exc}"
        ) from None


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
    summary: ImportSummary,
) -> None:
    from glutewake.ingest.importers import activpal
    from glutewake.store.bookkeeping import write

    flags: list[tuple[str, str]] = []
    periods = activpal.read_events(path, head, ctx, flags)
    if periods.height == 0:
        raise ImportFileError(f"{path}: no events after the header")
    replaced = activpal.settle_reference_versions(data_dir, participant_id, periods, path)
    target = activpal.reference_path(data_dir, participant_id, str(result.sha256))
    result.rows = periods.height
    result.recordings = [str(target.relative_to(data_dir.root))]
    result.qc = {"reference_minutes": activpal.sitting_minutes(periods)}
    activpal.write_reference(target, periods)
    try:
        write(
            data_dir,
            _reference_rows,
            sha256=str(result.sha256),
            participant_id=participant_id,
            path=path,
            fmt=str(result.format),
            rows=result.rows,
            recordings=result.recordings,
            replaced=[sha for sha, _ in replaced],
            flags=flags,
        )
    except BaseException:
        target.unlink(missing_ok=True)
        raise
    for _, old in replaced:
        old.unlink(missing_ok=True)
    result.flags = [message for _, message in flags]
    summary.warnings.extend(f"{path}: {message}" for message in result.flags)
    if replaced:
        result.message = "replaced a shorter version of the same events file"


def _reference_rows(
    con: Any,
    *,
    replaced: list[str],
    participant_id: str,
    flags: list[tuple[str, str]],
    **row: Any,
) -> None:
    """The reference file's ``import_files`` row and flags; shorter versions' rows removed."""
    from glutewake.store.bookkeeping import forget_import, insert_import_file, insert_import_flag

    for sha in replaced:
        forget_import(con, participant_id, sha)
    insert_import_file(con, participant_id=participant_id, **row)
    for flag, message in flags:
        insert_import_flag(
            con,
            participant_id=participant_id,
            recording_id=row["recordings"][0],
            flag=flag,
            message=message,
            file=row["path"],
        )
