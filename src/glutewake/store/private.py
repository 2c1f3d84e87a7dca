"""Owner-only files and folders: health data is readable by its owner alone, whatever the umask.

Every folder glutewake creates is ``0700`` and every file ``0600``. ``Path.mkdir(mode=...,
parents=True)`` gives the mode to the last folder only (its parents get ``0777`` less the umask),
and libraries that write to a path (pyarrow, polars, matplotlib) create files ``0666`` less the
umask, so writers here create each folder and file themselves with the owner-only mode and set it
explicitly (a umask can only take bits away, and an existing file keeps its mode when rewritten).

The command line also sets the process umask to :data:`OWNER_ONLY_UMASK`
(:func:`restrict_umask`), which covers files other libraries create on their own (DuckDB's
write-ahead log and spill files, Dask's scratch space) and is inherited by worker processes.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

__all__ = [
    "DIR_MODE",
    "FILE_MODE",
    "OWNER_ONLY_UMASK",
    "copy_private",
    "private_dir",
    "private_tmp",
    "restrict_umask",
    "write_private_text",
]

DIR_MODE = 0o700
FILE_MODE = 0o600
#: the umask the command line runs with: no bits for group and others
OWNER_ONLY_UMASK = 0o077


def restrict_umask() -> int:
    """Add :data:`OWNER_ONLY_UMASK` to this process's umask; return the previous umask."""
    old = os.umask(OWNER_ONLY_UMASK)
    os.umask(old | OWNER_ONLY_UMASK)
    return old


def private_dir(path: str | os.PathLike[str]) -> Path:
    """Create ``path`` and any missing parents, each ``0700``; return it.

    Folders that exist already keep their mode (the data directory's root is ``0700``, which
    closes everything beneath it).
    """
    folder = Path(path)
    missing: list[Path] = []
    probe = folder
    while not probe.is_dir():
        missing.append(probe)
        if probe.parent == probe:
            break
        probe = probe.parent
    for part in reversed(missing):
        try:
            part.mkdir(mode=DIR_MODE)
        except FileExistsError:  # made by a concurrent writer meanwhile
            if not part.is_dir():
                raise
            continue
        os.chmod(part, DIR_MODE)
    return folder


@contextlib.contextmanager
def private_tmp(path: str | os.PathLike[str], *, suffix: str = ".tmp") -> Iterator[Path]:
    """Yield a temporary file beside ``path`` (created ``0600``) for a library to write into;
    then fsync it and rename it over ``path``. On an error the temporary file is removed.

    >>> with private_tmp(out / "table.parquet") as tmp:  # doctest: +SKIP
    ...     frame.write_parquet(tmp)
    """
    final = Path(path)
    private_dir(final.parent)
    tmp = final.with_name(final.name + suffix)
    os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE))
    os.chmod(tmp, FILE_MODE)  # a stale tmp file keeps its old mode through O_CREAT
    try:
        yield tmp
        os.chmod(tmp, FILE_MODE)  # in case the writer replaced the file instead of filling it
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def copy_private(source: str | os.PathLike[str], target: str | os.PathLike[str]) -> Path:
    """Copy a file's bytes (not its mode) to ``target``, owner-only and atomically."""
    final = Path(target)
    with private_tmp(final) as tmp, open(source, "rb") as src, open(tmp, "wb") as dst:
        shutil.copyfileobj(src, dst, 1024 * 1024)
    return final


def write_private_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically, owner-only; return the path."""
    final = Path(path)
    with private_tmp(final) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return final
