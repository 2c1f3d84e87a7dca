"""What every command shares: argument types, the data directory, progress bars, tables."""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from collections.abc import Callable
from typing import Any


class CliError(Exception):
    """An error to report as one line, exit status 2."""


def parse_date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD)") from None


def parse_pain(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number 0-10") from None
    if not 0 <= value <= 10:
        raise argparse.ArgumentTypeError(f"pain {value} is outside 0-10")
    return value


def whole_number(minimum: int, what: str) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{what} must be at least {minimum}, not {value}")
        return value

    return parse


parse_workers = whole_number(1, "workers")
parse_retries = whole_number(0, "retries")


def parse_positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be positive")
    return value


# --------------------------------------------------------------------------- helpers


def data_dir(args: argparse.Namespace) -> Any:
    """The data directory the command's ``--data`` (or the environment) names."""
    from glutewake.store.datadir import DataDir

    return DataDir.resolve(getattr(args, "data", None))


def progress_factory(enabled: bool) -> tuple[Callable[[str, int], Callable[[int], None]], Any]:
    """A ``progress(description, total) -> advance`` hook drawing rich bars on a terminal."""
    if not enabled:
        return (lambda description, total: lambda n: None), None
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    bar = Progress(
        TextColumn("{task.description:<18}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        transient=False,
    )

    tasks: dict[str, Any] = {}

    def start(description: str, total: int) -> Callable[[int], None]:
        # a stage run again (process works in batches of participants) grows its own bar
        if description in tasks:
            task = tasks[description]
            done = bar.tasks[task].completed
            bar.update(task, total=(bar.tasks[task].total or 0) + total, completed=done)
        else:
            task = tasks[description] = bar.add_task(description, total=max(total, 1))
            if total == 0:
                bar.update(task, completed=1)
        return lambda n: bar.advance(task, n)

    return start, bar


def show_progress(args: argparse.Namespace) -> bool:
    return sys.stderr.isatty() and not args.quiet


def print_table(frame: Any, title: str | None = None) -> None:
    if not sys.stdout.isatty():
        import polars as pl

        with pl.Config(
            tbl_rows=-1,
            tbl_cols=-1,
            fmt_str_lengths=200,
            tbl_width_chars=60_000,
            tbl_hide_dataframe_shape=True,
            tbl_hide_column_data_types=True,
        ):
            if title:
                print(title)
            print(frame)
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, show_lines=False)
    for name in frame.columns:
        table.add_column(name, overflow="fold")
    for row in frame.iter_rows():
        table.add_row(*("" if v is None else fmt(v) for v in row))
    Console(soft_wrap=False).print(table)


def fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1e6 else f"{value:.6g}"
    return str(value)
