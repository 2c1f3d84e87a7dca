"""The report and export commands: ``report daily|progress`` and ``export``.

:func:`glutewake.cli.build_parser` calls :func:`add_subcommands` (top-level ``export``) and
:func:`add_report_subcommands` (``report progress``, and ``--format`` for ``report daily``).
Heavy modules are imported inside the commands so ``glutewake --help`` stays fast.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from glutewake.cli.common import data_dir as _data_dir
from glutewake.cli.common import parse_date as _date

__all__ = [
    "add_report_subcommands",
    "add_subcommands",
    "export",
    "report_daily",
    "report_progress",
]


def _next_steps(args: argparse.Namespace) -> Path | None:
    value = getattr(args, "next_steps", None)
    return Path(value) if value else None


NEXT_STEPS_HELP = (
    "a next-steps rules file (TOML) laid over the built-in table: a clinician's wording, "
    "thresholds and rules (docs/reports.md)"
)


def report_daily(args: argparse.Namespace) -> int:
    """``glutewake report daily``: one report per local day (HTML, PDF or PNG)."""
    from glutewake.analytics.report import write_daily_report

    out = Path(args.out) if args.out else None
    paths = write_daily_report(
        _data_dir(args),
        args.participant,
        args.date,
        args.until,
        out=out,
        fmt=getattr(args, "format", "html") or "html",
        next_steps=_next_steps(args),
    )
    for path in paths:
        print(path)
    return 0


def report_progress(args: argparse.Namespace) -> int:
    """``glutewake report progress``: progression for a participant, or the cohort."""
    from glutewake.analytics.progress import write_progress_report

    path = write_progress_report(
        _data_dir(args),
        args.participant,
        out=Path(args.out) if args.out else None,
        start=args.start,
        end=args.until,
        fmt=args.format,
        next_steps=_next_steps(args),
    )
    print(path)
    return 0


def export(args: argparse.Namespace) -> int:
    """``glutewake export``: tables and views to Parquet or CSV files with a manifest."""
    from glutewake.analytics.export import export_tables

    participants = args.participant or None
    written = export_tables(
        _data_dir(args),
        Path(args.out),
        tables=args.table or None,
        fmt=args.format,
        participant=participants,
        start=args.start,
        end=args.until,
    )
    for path in written:
        print(path)
    return 0


def add_report_subcommands(
    report_sub: Any, common: argparse.ArgumentParser, daily: argparse.ArgumentParser | None = None
) -> None:
    """Add ``report progress`` to the ``report`` sub-parsers, and ``--format`` to ``daily``.

    Parameters
    ----------
    report_sub
        The ``add_subparsers()`` object of the ``report`` command.
    common
        The parent parser with ``--data``/``-v``/``-q``.
    daily
        The ``report daily`` parser, to gain ``--format`` and use :func:`report_daily`.
    """
    if daily is not None:
        daily.add_argument(
            "--format",
            choices=("html", "pdf", "png"),
            default="html",
            help="html (default, self-contained page) or a printable A4 pdf/png",
        )
        daily.add_argument("--next-steps", metavar="FILE", help=NEXT_STEPS_HELP)
        daily.set_defaults(func=report_daily)
    q = report_sub.add_parser(
        "progress",
        parents=[common],
        help="progression per week and phase (a participant, or the cohort)",
        description="Weekly and per-phase trends of sitting, prolonged bouts, activation "
        "quality, adherence and symptoms; how sitting and activation relate; readiness for "
        "the next phase; a projected recovery horizon (an estimate, not a diagnosis).",
    )
    q.add_argument("--participant", help="participant id (default: the whole cohort)")
    q.add_argument("--from", dest="start", type=_date, metavar="DATE", help="first local date")
    q.add_argument("--until", type=_date, metavar="DATE", help="last local date")
    q.add_argument("--out", metavar="FILE", help="output file (default DATA/reports/...)")
    q.add_argument("--format", choices=("html", "pdf", "png"), default="html")
    q.add_argument("--next-steps", metavar="FILE", help=NEXT_STEPS_HELP)
    q.set_defaults(func=report_progress)


def add_subcommands(sub: Any, common: argparse.ArgumentParser) -> None:
    """Add the top-level ``export`` command to the ``glutewake`` sub-parsers."""
    from glutewake.analytics.export import DEFAULT_TABLES, EXPORTABLE

    p = sub.add_parser(
        "export",
        parents=[common],
        help="export tables and views to Parquet or CSV",
        description="Write catalog tables and views to OUT/<table>.<format> plus manifest.json "
        f"(default tables: {', '.join(DEFAULT_TABLES)}).",
    )
    p.add_argument("--out", required=True, metavar="DIR", help="output folder")
    p.add_argument("--format", choices=("parquet", "csv"), default="parquet")
    p.add_argument(
        "--table",
        action="append",
        choices=tuple(EXPORTABLE),
        metavar="NAME",
        help="table or view to export (repeatable; default: the researcher set)",
    )
    p.add_argument("--participant", action="append", metavar="ID", help="repeatable")
    p.add_argument("--from", dest="start", type=_date, metavar="DATE", help="first local date")
    p.add_argument("--until", type=_date, metavar="DATE", help="last local date")
    p.set_defaults(func=export)
