"""The ``glutewake`` command: a thin layer over the Python API.

Heavy modules (scipy, polars, duckdb, matplotlib, bleak) are imported inside the commands that
use them, so ``glutewake --help`` and quick commands start fast.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from glutewake import __version__
from glutewake.cli.common import (
    CliError,
    parse_date,
    parse_pain,
    parse_positive,
    parse_retries,
    parse_workers,
    print_table,
    progress_factory,
    show_progress,
)
from glutewake.cli.common import (
    data_dir as _data_dir,
)
from glutewake.store.private import restrict_umask

log = logging.getLogger("glutewake")


# --------------------------------------------------------------------------- commands


def cmd_demo(args: argparse.Namespace) -> int:
    from glutewake.demo import run_demo

    out = Path(args.out if args.out else (args.data or "glutewake-demo"))
    progress, bar = progress_factory(show_progress(args))
    if bar is not None:
        with bar:
            result = run_demo(out, seed=args.seed, days=args.days, progress=progress)
    else:
        result = run_demo(out, seed=args.seed, days=args.days, progress=progress)
    print_table(result.summary, title="glutewake demo: daily summary")
    print(f"database: {result.catalog}")
    for report in result.reports:
        print(f"report:   {report}")
    return 0


def cmd_process(args: argparse.Namespace) -> int:
    import dataclasses

    from glutewake.pipeline import process
    from glutewake.pipeline.parallel import TaskError, TaskRunner, keep_freed_memory

    data_dir = _data_dir(args)
    if not data_dir.exists():
        raise CliError(f"data directory {data_dir.root} does not exist")
    scheduler = args.scheduler or os.environ.get("GLUTEWAKE_SCHEDULER") or None
    if args.workers <= 1 and scheduler is None:
        keep_freed_memory()  # this process runs the tasks itself, and exits after them
    storage = args.storage or os.environ.get("GLUTEWAKE_STORAGE") or None
    if storage:
        data_dir = dataclasses.replace(data_dir, storage=storage)
    progress, bar = progress_factory(show_progress(args))
    try:
        with (
            TaskRunner(
                workers=args.workers,
                scheduler=scheduler,
                retries=args.retries,
                on_error=args.on_error,
            ) as runner,
            bar if bar is not None else contextlib.nullcontext(),
        ):
            try:
                runner.connect()
            except OSError as exc:
                raise CliError(f"cannot reach the Dask scheduler at {scheduler}: {exc}") from None
            summary = process(
                data_dir,
                progress=progress,
                redo=args.redo,
                runner=runner,
                wait_s=args.wait,
                on_wait=lambda why: print(
                    f"waiting up to {args.wait:g} s for the catalog: {why}", file=sys.stderr
                ),
            )
    except TaskError as exc:
        raise CliError(f"{exc} (nothing was written; --on-error skip writes the rest)") from None
    for warning in summary.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    print(
        f"processed {summary.spool_files} new spool file(s): {summary.recordings} recording(s), "
        f"{summary.samples:,} samples, {summary.participant_days} participant-day(s), "
        f"{summary.exercise_sessions} exercise session(s), {summary.contractions} contraction(s), "
        f"{summary.decode_errors} undecodable packet(s)"
    )
    if summary.retried:
        print(f"retried {summary.retried} task(s) that failed in an earlier run")
    for task, key, error in summary.failures:
        print(f"error: {task} task {key} failed: {error}", file=sys.stderr)
    if summary.failures:
        print(
            f"{len(summary.failures)} task(s) failed and were skipped (details and tracebacks: "
            "glutewake sql \"select * from task_failures\"); the next 'glutewake process' "
            "retries them",
            file=sys.stderr,
        )
        return 1
    return 0


def cmd_rebuild(args: argparse.Namespace) -> int:
    from glutewake.pipeline.rebuild import rebuild

    data_dir = _data_dir(args)
    if not data_dir.exists():
        raise CliError(f"data directory {data_dir.root} does not exist")
    progress, bar = progress_factory(show_progress(args))
    with bar if bar is not None else contextlib.nullcontext():
        summary = rebuild(data_dir, progress=progress, workers=args.workers)
    if summary.previous_catalog is not None:
        print(f"the previous catalog was moved to {summary.previous_catalog}")
    done = summary.process
    for warning in done.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    print(
        f"rebuilt {data_dir.catalog}: {summary.ledger_entries} bookkeeping entries replayed, "
        f"{summary.imported_recordings} imported recording(s), {done.spool_files} spool file(s) "
        f"decoded, {done.participant_days} participant-day(s) and {done.exercise_sessions} "
        "exercise session(s) derived"
    )
    for task, key, error in done.failures:
        print(f"error: {task} task {key} failed: {error}", file=sys.stderr)
    return 1 if done.failures else 0


def cmd_sql(args: argparse.Namespace) -> int:
    import dataclasses

    import duckdb

    from glutewake.store.catalog import damage_hint, open_read
    from glutewake.store.user_query import run_read_query

    data_dir = _data_dir(args)
    storage = args.storage or os.environ.get("GLUTEWAKE_STORAGE") or None
    if storage:
        data_dir = dataclasses.replace(data_dir, storage=storage)
    query = args.query
    if query == "-":
        query = sys.stdin.read()
    with open_read(data_dir) as con:
        try:
            frame = run_read_query(con, query)
        except duckdb.Error as exc:
            raise CliError(f"query failed: {_first_line(exc)}{damage_hint(exc)}") from exc
    if args.format == "csv":
        sys.stdout.write(frame.write_csv())
    elif args.format == "json":
        sys.stdout.write(frame.write_json() + "\n")
    else:
        print_table(frame)
    return 0


def _first_line(exc: Exception) -> str:
    """DuckDB's message, with its refusal of a file outside the allowed trees explained."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if "disabled by configuration" in text or "disabled through configuration" in text:
        text += (
            " (queries read the catalog and the Parquet files under the data directory's "
            "samples/ and reference/ only; no other files, extensions or network)"
        )
    return text


def cmd_participant_add(args: argparse.Namespace) -> int:
    from glutewake.store.bookkeeping import add_participant

    add_participant(
        _data_dir(args),
        args.participant,
        args.tz,
        baseline_start=args.baseline_start,
        baseline_end=args.baseline_end,
        goal_sitting_min=args.goal_sitting_min,
        goal_breaks_per_sitting_hour=args.goal_breaks_per_hour,
        notes=args.notes,
    )
    print(f"participant {args.participant} ({args.tz}) saved")
    return 0


def cmd_participant_list(args: argparse.Namespace) -> int:
    from glutewake.store.catalog import open_read, query_frame

    with open_read(_data_dir(args)) as con:
        frame = query_frame(con, "SELECT * FROM participants ORDER BY participant_id")
    print_table(frame)
    return 0


def cmd_phase_set(args: argparse.Namespace) -> int:
    from glutewake.store.bookkeeping import set_phase, write

    write(_data_dir(args), set_phase, args.participant, args.phase, args.start, args.note)
    print(f"participant {args.participant}: phase {args.phase} from {args.start}")
    return 0


def cmd_symptom_log(args: argparse.Namespace) -> int:
    from glutewake.store.bookkeeping import log_symptoms, write

    day = args.date or dt.date.today()
    write(
        _data_dir(args),
        log_symptoms,
        args.participant,
        day,
        lower_back=args.lower_back,
        hip=args.hip,
        knee=args.knee,
        note=args.note,
    )
    print(f"participant {args.participant}: symptoms for {day} saved")
    return 0


def cmd_device_set(args: argparse.Namespace) -> int:
    from glutewake.devices import PROFILES
    from glutewake.ingest.importers import FORMATS
    from glutewake.store.bookkeeping import parse_channel_roles, set_device, write

    # imported devices carry the profile import:<format> (docs/import.md)
    known = sorted(PROFILES) + [f"import:{f}" for f in FORMATS]
    if args.profile not in known:
        raise CliError(f"unknown profile {args.profile!r} (known: {', '.join(known)})")
    roles = parse_channel_roles(args.channel_roles) if args.channel_roles else None
    write(
        _data_dir(args),
        set_device,
        args.participant,
        args.device,
        args.profile,
        placement=args.placement,
        channel_roles=roles,
    )
    print(f"participant {args.participant}: device {args.device} saved")
    return 0


def cmd_report_daily(args: argparse.Namespace) -> int:
    from glutewake.analytics.report import write_daily_report

    data_dir = _data_dir(args)
    out = Path(args.out) if args.out else None
    paths = write_daily_report(data_dir, args.participant, args.date, args.until, out=out)
    for path in paths:
        print(path)
    return 0


def cmd_scan(args: argparse.Namespace) -> int:
    from glutewake.ingest.scan import scan

    results = scan(args.timeout, simulate=args.simulate)
    if not results:
        print("no supported wearables found", file=sys.stderr)
        return 1
    for r in results:
        print(f"{r.address}  {r.rssi:>4} dBm  {r.profile or '-':<15} {r.name or ''}")
    return 0


def cmd_collect(args: argparse.Namespace) -> int:
    from glutewake.ingest.collector import collect

    if not args.device and not args.simulate:
        raise CliError("give --device ADDRESS_OR_NAME or --simulate PROFILE")
    labels: dict[str, str] = {}
    for item in args.label or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise CliError(f"--label {item!r} is not KEY=VALUE")
        labels[key] = value
    if args.exercise:
        labels["exercise"] = args.exercise
    config = None
    if args.config:
        text = args.config
        if text.startswith("@"):
            path = Path(text[1:])
            if not path.is_file():
                raise CliError(f"--config file {path} does not exist")
            text = path.read_text(encoding="utf-8")
        try:
            config = json.loads(text)
        except json.JSONDecodeError as exc:
            raise CliError(f"--config is not valid JSON: {exc}") from None
    settings = None
    if args.segment_s is not None:
        from glutewake.ingest.supervisor import CollectorSettings

        settings = CollectorSettings(segment_s=args.segment_s)
    return collect(
        _data_dir(args),
        participant_id=args.participant,
        devices=args.device,
        profile=args.profile,
        simulate=args.simulate,
        faults=args.faults,
        duration_s=args.duration,
        config=config,
        labels=labels or None,
        settings=settings,
        status_line=sys.stderr.isatty() and not args.quiet,
    )


def cmd_status(args: argparse.Namespace) -> int:
    from glutewake.ingest.status import stream_status

    streams = stream_status(_data_dir(args), rescan=args.rescan)
    if args.json:
        print(json.dumps(streams, indent=2, default=str))
        return 0
    if not streams:
        print("no streams collected yet")
        return 0
    import polars as pl

    print_table(pl.DataFrame(streams, infer_schema_length=None))
    return 0


# --------------------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    """The ``glutewake`` argument parser with every command."""
    from glutewake.cli import import_command, reports

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--data",
        metavar="DIR",
        default=argparse.SUPPRESS,
        help="data directory (default: $GLUTEWAKE_DATA, else the per-user data folder)",
    )
    common.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=argparse.SUPPRESS,
        help="more log output (-vv: debug, and tracebacks on errors)",
    )
    common.add_argument(
        "-q", "--quiet", action="store_true", default=argparse.SUPPRESS, help="no progress bars"
    )

    parser = argparse.ArgumentParser(
        prog="glutewake",
        description="Sitting and glute activation from commodity wearables: collect, process, "
        "query and report.",
        parents=[common],
    )
    parser.add_argument("--version", action="version", version=f"glutewake {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser(
        "demo",
        parents=[common],
        help="build a small simulated study and run the whole pipeline",
        description="Simulate 2 participants x N days (thigh IMU all day as Polar PMD bytes, glute "
        "and hamstring EMG sessions as glutewake-open bytes), spool them as the collector would, "
        "process them, and write the database and daily reports.",
    )
    p.add_argument("--out", metavar="DIR", help="demo data directory (default ./glutewake-demo)")
    p.add_argument("--seed", type=int, default=7, help="simulator seed (default 7)")
    p.add_argument("--days", type=int, default=3, help="days per participant (default 3)")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser(
        "process",
        parents=[common],
        help="decode new spool data, run detectors, update the catalog (idempotent)",
    )
    p.add_argument("--redo", action="store_true", help="re-decode and re-derive everything")
    p.add_argument(
        "--wait",
        type=parse_positive,
        default=600.0,
        metavar="SECONDS",
        help="how long to wait for the catalog while another process has it open, a read-only "
        "query included (default 600; 'inf': no limit); finished results are kept if it runs out",
    )
    p.add_argument(
        "--workers",
        type=parse_workers,
        default=1,
        metavar="N",
        help="processes to use (default 1; results are identical for any N); with "
        "--scheduler local, the local Dask cluster's worker count",
    )
    p.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="run the tasks on a Dask cluster: its scheduler address (tcp://host:8786) or "
        "'local' (default $GLUTEWAKE_SCHEDULER; needs the cluster extra; docs/cluster.md)",
    )
    p.add_argument(
        "--storage",
        metavar="URL",
        help="where spool/ and samples/ live if not in the data directory: a shared path or an "
        "fsspec URL such as s3://bucket/study (default $GLUTEWAKE_STORAGE; docs/cluster.md)",
    )
    p.add_argument(
        "--retries",
        type=parse_retries,
        default=1,
        metavar="N",
        help="extra attempts for a failing task (default 1)",
    )
    p.add_argument(
        "--on-error",
        choices=("skip", "stop"),
        default="skip",
        help="a task that still fails: skip it (record it in task_failures, write the rest, "
        "exit 1; default) or stop (write nothing)",
    )
    p.set_defaults(func=cmd_process)

    p = sub.add_parser(
        "rebuild",
        parents=[common],
        help="recreate the catalog from the bookkeeping ledger, the spool and the samples",
        description="Recreate the catalog: the old one is moved aside (never deleted), the "
        "bookkeeping ledger (bookkeeping.jsonl) is replayed, every spool file is decoded again "
        "and every day derived again. Use it when catalog.duckdb is damaged or lost.",
    )
    p.add_argument("--workers", type=parse_workers, default=1, metavar="N", help="processes to use")
    p.set_defaults(func=cmd_rebuild)

    p = sub.add_parser(
        "sql",
        parents=[common],
        help="run a read-only SQL query on the catalog",
        description="Run a read-only SQL query on the catalog (tables and views: docs/schema.md) "
        "and the Parquet files under the data directory's samples/ and reference/. Only queries "
        "run (SELECT, WITH, SHOW, DESCRIBE, SUMMARIZE, EXPLAIN); COPY, EXPORT, ATTACH, INSTALL, "
        "SET and anything that writes are refused. Ctrl-C stops a running query.",
    )
    p.add_argument("query", help="SQL text, or - to read it from standard input")
    p.add_argument("--format", choices=("table", "csv", "json"), default="table")
    p.add_argument(
        "--storage",
        metavar="PATH",
        help="a local folder holding samples/ elsewhere (as for process; default "
        "$GLUTEWAKE_STORAGE): its Parquet files become readable too",
    )
    p.set_defaults(func=cmd_sql)

    p = sub.add_parser("participant", parents=[common], help="participants: add, list")
    psub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    q = psub.add_parser("add", parents=[common], help="add or update a participant")
    q.add_argument("participant", help="pseudonymous participant id")
    q.add_argument("--tz", required=True, help="IANA time zone, e.g. Europe/Berlin")
    q.add_argument("--baseline-start", type=parse_date, metavar="DATE")
    q.add_argument("--baseline-end", type=parse_date, metavar="DATE")
    q.add_argument(
        "--goal-sitting-min", type=parse_positive, metavar="MIN", help="daily sitting goal"
    )
    q.add_argument(
        "--goal-breaks-per-hour",
        type=parse_positive,
        metavar="N",
        help="goal: breaks per sitting hour",
    )
    q.add_argument("--notes")
    q.set_defaults(func=cmd_participant_add)
    q = psub.add_parser("list", parents=[common], help="list participants")
    q.set_defaults(func=cmd_participant_list)

    p = sub.add_parser("phase", parents=[common], help="rehabilitation phase history")
    psub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    q = psub.add_parser("set", parents=[common], help="record a phase change")
    q.add_argument("participant")
    q.add_argument("phase", type=int, choices=(1, 2, 3))
    q.add_argument("--from", dest="start", type=parse_date, required=True, metavar="DATE")
    q.add_argument("--note")
    q.set_defaults(func=cmd_phase_set)

    p = sub.add_parser("symptom", parents=[common], help="self-reported symptoms")
    psub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    q = psub.add_parser("log", parents=[common], help="log 0-10 pain ratings for a day")
    q.add_argument("participant")
    q.add_argument("--date", type=parse_date, help="local date (default today)")
    q.add_argument("--lower-back", type=parse_pain, metavar="0-10")
    q.add_argument("--hip", type=parse_pain, metavar="0-10")
    q.add_argument("--knee", type=parse_pain, metavar="0-10")
    q.add_argument("--note")
    q.set_defaults(func=cmd_symptom_log)

    p = sub.add_parser("device", parents=[common], help="devices, placements, channel roles")
    psub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    q = psub.add_parser("set", parents=[common], help="register a participant's device")
    q.add_argument("participant")
    q.add_argument("device", help="device id (BLE address or name as spooled, or as imported)")
    q.add_argument(
        "--profile",
        required=True,
        help="device profile (polar-pmd, glutewake-open, movesense, metawear, ganglion) or "
        "import:<format> for an imported device (e.g. import:edf)",
    )
    q.add_argument("--placement", help="thigh, lower_back, glute, ...")
    q.add_argument(
        "--channel-roles",
        metavar="CH:MUSCLE:SIDE,...",
        help="EMG channel roles, e.g. ch1:glute_max:right,ch2:hamstring:right; changing them "
        "(or the placement) after data arrived re-derives the device's sessions and days at "
        "the next process",
    )
    q.set_defaults(func=cmd_device_set)

    p = sub.add_parser("report", parents=[common], help="HTML reports")
    psub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    q = psub.add_parser("daily", parents=[common], help="the daily sedentary report")
    q.add_argument("--participant", required=True)
    q.add_argument("--date", type=parse_date, required=True, help="local date YYYY-MM-DD")
    q.add_argument("--until", type=parse_date, help="last date of a range (one report per day)")
    q.add_argument("--out", metavar="FILE", help="output file (single day) or folder (range)")
    q.set_defaults(func=cmd_report_daily)
    reports.add_report_subcommands(psub, common, q)

    p = sub.add_parser("scan", parents=[common], help="list nearby supported wearables")
    p.add_argument(
        "--timeout", type=parse_positive, default=5.0, help="seconds to scan (default 5)"
    )
    p.add_argument("--simulate", metavar="PROFILE", help="scan in-process virtual devices")
    p.set_defaults(func=cmd_scan)

    p = sub.add_parser(
        "collect",
        parents=[common],
        help="collect from wearables in the background (reconnects forever)",
    )
    p.add_argument("--participant", required=True)
    p.add_argument("--device", action="append", metavar="ADDRESS_OR_NAME", help="repeatable")
    p.add_argument("--profile", help="device profile (default: recognised from the device)")
    p.add_argument(
        "--simulate", action="append", metavar="PROFILE", help="collect from a virtual device"
    )
    p.add_argument("--faults", metavar="SPEC", help="fault injection for --simulate")
    p.add_argument(
        "--duration", type=parse_positive, metavar="SECONDS", help="stop after this long"
    )
    p.add_argument("--exercise", help="label the recording as an exercise session (or 'mvc')")
    p.add_argument(
        "--label", action="append", metavar="KEY=VALUE", help="extra recording label (repeatable)"
    )
    p.add_argument(
        "--segment-s",
        type=parse_positive,
        metavar="SECONDS",
        help="rotate spool segments this often (default 3600; process sees finished segments)",
    )
    p.add_argument(
        "--config",
        metavar="JSON|@FILE",
        help='stream settings, e.g. \'{"acc": {"sample_rate_hz": 52, "range_g": 8}}\'',
    )
    p.set_defaults(func=cmd_collect)

    reports.add_subcommands(sub, common)
    import_command.add_import_command(sub, common)

    p = sub.add_parser("status", parents=[common], help="collection health per stream")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument(
        "--rescan",
        action="store_true",
        help="count every device from its whole spool instead of the collector's running "
        "counts (slow on a large spool)",
    )
    p.set_defaults(func=cmd_status)
    return parser


def _setup_logging(verbosity: int) -> None:
    level = logging.WARNING if verbosity == 0 else logging.INFO if verbosity == 1 else logging.DEBUG
    logging.basicConfig(
        level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )


def _fail(message: str) -> NoReturn:
    print(f"glutewake: error: {message}", file=sys.stderr)
    raise SystemExit(2)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    for name, default in (("data", None), ("verbose", 0), ("quiet", False)):
        if not hasattr(args, name):
            setattr(args, name, default)
    if args.data is None and os.environ.get("GLUTEWAKE_DATA"):
        args.data = os.environ["GLUTEWAKE_DATA"]
    # health data: whatever this process and its workers create (DuckDB's log and spill files,
    # Dask's scratch space included) is the owner's alone
    restrict_umask()
    _setup_logging(args.verbose)
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        print("glutewake: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # one clear line; -vv shows the traceback
        if args.verbose >= 2:
            raise
        if not _expected(exc):
            from glutewake.store.catalog import damage_hint

            log.debug("unexpected error", exc_info=True)
            hint = damage_hint(exc) or " (run with -vv for the traceback)"
            _fail(f"{type(exc).__name__}: {exc}{hint}")
        _fail(str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else str(exc))


def _expected(exc: Exception) -> bool:
    """Errors that are the user's input or environment, reported without a type name."""
    from glutewake.store.catalog import CatalogError

    expected: tuple[type[Exception], ...] = (
        CliError,
        CatalogError,
        FileNotFoundError,
        PermissionError,
        KeyError,
    )
    names = {
        "BookkeepingError",
        "ProcessError",
        "SpoolError",
        "DemoError",
        "ReportError",
        "ExportError",
        "ApiError",
        "CohortError",
        "ImportFileError",
        "StorageError",
        "InvalidIdError",
        "NoAdapterError",
    }
    return (
        isinstance(exc, expected)
        or type(exc).__name__ in names
        or any(c.__name__ in names for c in type(exc).__mro__)
    )
