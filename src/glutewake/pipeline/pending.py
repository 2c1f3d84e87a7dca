"""Finished results that could not be written yet: kept in ``DATA/pending/``, written next run.

``process`` computes everything before it opens the catalog for writing. When another process
keeps the catalog open for longer than ``--wait`` (a long query holds it read-only, and DuckDB
then allows no writer), the run's rows are saved here instead of thrown away, and the next
``process`` writes them before anything else - if the catalog has not been written since they
were computed (then they may be stale: they are dropped and that run computes them again).

The file is plain JSON (tagged values for times, bytes, sets and tables as Arrow IPC), never
code: reading one runs nothing.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import io
import json
import logging
import os
import time
from pathlib import Path
from typing import Any

import polars as pl

from glutewake.pipeline.rows import Recording, Rows
from glutewake.store.datadir import DataDir

log = logging.getLogger(__name__)
log.addHandler(logging.NullHandler())

PENDING_DIR = "pending"


def catalog_state(data_dir: DataDir) -> list[int]:
    """What changes when the catalog is written: sizes and modification times of its files."""
    out = []
    for path in (data_dir.catalog, data_dir.catalog.with_name(data_dir.catalog.name + ".wal")):
        try:
            st = path.stat()
            out += [st.st_size, st.st_mtime_ns]
        except FileNotFoundError:
            out += [-1, -1]
    return out


def _enc(value: Any) -> Any:
    if isinstance(value, pl.DataFrame):
        buf = io.BytesIO()
        value.write_ipc(buf)
        return {"__frame__": base64.b64encode(buf.getvalue()).decode()}
    if isinstance(value, Recording):
        return {"__recording__": _enc(dataclasses.asdict(value))}
    if isinstance(value, dt.datetime):
        return {"__datetime__": value.isoformat()}
    if isinstance(value, dt.date):
        return {"__date__": value.isoformat()}
    if isinstance(value, bytes | bytearray):
        return {"__bytes__": bytes(value).hex()}
    if isinstance(value, set | frozenset):
        return {"__set__": [_enc(v) for v in value]}
    if isinstance(value, tuple):
        return {"__tuple__": [_enc(v) for v in value]}
    if isinstance(value, dict):
        return {"__items__": [[_enc(k), _enc(v)] for k, v in value.items()]}
    if isinstance(value, list):
        return [_enc(v) for v in value]
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    return value


def _dec(value: Any) -> Any:
    if isinstance(value, list):
        return [_dec(v) for v in value]
    if not isinstance(value, dict):
        return value
    [(tag, inner)] = value.items()
    if tag == "__frame__":
        return pl.read_ipc(io.BytesIO(base64.b64decode(inner)))
    if tag == "__recording__":
        return Recording(**_dec(inner))
    if tag == "__datetime__":
        return dt.datetime.fromisoformat(inner)
    if tag == "__date__":
        return dt.date.fromisoformat(inner)
    if tag == "__bytes__":
        return bytes.fromhex(inner)
    if tag == "__set__":
        return {_dec(v) for v in inner}
    if tag == "__tuple__":
        return tuple(_dec(v) for v in inner)
    if tag == "__items__":
        return {_dec(k): _dec(v) for k, v in inner}
    raise ValueError(f"unknown tag {tag!r}")


def save(data_dir: DataDir, rows: Rows, state: list[int]) -> Path:
    """Keep a run's rows (computed when the catalog was in ``state``); return the file."""
    folder = data_dir.root / PENDING_DIR
    folder.mkdir(mode=0o700, exist_ok=True)
    path = folder / f"process-{time.time_ns()}-{os.getpid()}.json"
    body = {
        "catalog_state": state,
        "rows": {f.name: _enc(getattr(rows, f.name)) for f in dataclasses.fields(Rows)},
    }
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(body, fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    return path


def load(path: Path) -> tuple[list[int], Rows]:
    """A saved run: the catalog state it was computed on, and its rows."""
    body = json.loads(path.read_text())
    rows = Rows(**{name: _dec(v) for name, v in body["rows"].items()})
    return list(body["catalog_state"]), rows


def saved(data_dir: DataDir) -> list[Path]:
    """Saved runs, oldest first."""
    folder = data_dir.root / PENDING_DIR
    if not folder.is_dir():
        return []
    return sorted(folder.glob("process-*.json"), key=lambda p: int(p.name.split("-")[1]))
