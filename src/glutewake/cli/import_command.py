"""``glutewake import PATH... --participant ID``: files from apps and lab systems.

The importer (:mod:`glutewake.ingest.importers`) reads the files; this command hands what it
reads to the pipeline (:func:`glutewake.pipeline.add_recordings`) and prints what happened.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from glutewake.cli.common import data_dir as _data_dir
from glutewake.cli.common import progress_factory, show_progress
from glutewake.ingest.importers import FORMATS


def _cmd_import(args: argparse.Namespace) -> int:
    from glutewake.ingest.importers import run_import
    from glutewake.pipeline import add_recordings

    progress, bar = progress_factory(show_progress(args))
    kwargs: dict[str, Any] = {
        "participant_id": args.participant,
        "format": args.format,
        "tz": args.tz,
        "exercise": args.exercise,
        "placement": args.placement,
        "device_id": args.device,
        "start": args.start,
        "channel_roles": args.channel_roles,
        "progress": progress,
        # the importer is a source: the pipeline stores and derives what it reads
        "add_recordings": add_recordings,
    }
    if bar is not None:
        with bar:
            summary = run_import(_data_dir(args), args.paths, **kwargs)
    else:
        summary = run_import(_data_dir(args), args.paths, **kwargs)
    for f in summary.files:
        if f.status == "imported":
            what = (
                _reference_minutes(f.qc["reference_minutes"])
                if "reference_minutes" in f.qc
                else f"{len(f.recordings)} recording(s)"
            )
            note = f"; {f.message}" if f.message else ""
            print(f"imported {f.path} ({f.format}): {f.rows:,} rows, {what}{note}")
        elif f.status == "skipped":
            print(f"skipped  {f.path}: {f.message}")
        else:
            print(f"failed   {f.message}", file=sys.stderr)
    for warning in summary.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    print(
        f"{len(summary.imported)} imported, {len(summary.skipped)} already imported, "
        f"{len(summary.failed)} failed; {summary.participant_days} participant-day(s), "
        f"{summary.exercise_sessions} exercise session(s) derived"
    )
    return 1 if summary.failed else 0


def _reference_minutes(minutes: dict[str, float]) -> str:
    order = ("sitting", "standing", "moving", "cycling", "lying", "travelling", "nonwear")
    parts = [f"{p} {minutes[p]:,.1f}" for p in order if p in minutes]
    return "minutes: " + ", ".join(parts)


def add_import_command(sub: Any, common: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Register ``glutewake import PATH... --participant ID ...`` on a subparsers object."""
    p: argparse.ArgumentParser = sub.add_parser(
        "import",
        parents=[common],
        help="import recordings from apps and lab files (formats: docs/import.md)",
        description="Import files as samples (like collected data) and derive what they touch. "
        "Formats are recognised from content: " + ", ".join(FORMATS) + ". Importing the same "
        "file twice adds nothing. A malformed file fails alone; exit status 1 if any failed.",
    )
    p.add_argument("paths", nargs="+", metavar="PATH", help="files to import")
    p.add_argument("--participant", required=True, help="participant id")
    p.add_argument("--format", choices=FORMATS, help="skip detection and read as this format")
    p.add_argument(
        "--tz",
        metavar="ZONE",
        help="IANA zone of files whose times have no zone/offset (required for those)",
    )
    p.add_argument(
        "--exercise", metavar="LABEL", help="label the recordings as an exercise session (or 'mvc')"
    )
    p.add_argument("--placement", metavar="P", help="register the device placement (thigh, ...)")
    p.add_argument(
        "--device",
        metavar="ID",
        help="device id to store under (default: from the file, else import-<format>)",
    )
    p.add_argument(
        "--start",
        metavar="TIME",
        help="ISO 8601 date and time of the first sample (with an offset, else in --tz), for "
        "files whose clock counts from the sensor's reset (Movesense); overrides the file's",
    )
    p.add_argument(
        "--channel-roles",
        metavar="CH:MUSCLE:SIDE,...",
        help="EMG channel roles of the imported device, e.g. glute_r:glute_max:right,"
        "hamstring_r:hamstring:right (stored channel names: docs/import.md)",
    )
    p.set_defaults(func=_cmd_import)
    return p
