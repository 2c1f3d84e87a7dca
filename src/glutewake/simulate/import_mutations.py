"""Damaged and implausible import files: the fault-injection set for the importers.

:func:`mutated_files` writes a short, valid file of each format (:mod:`.vendor_files`) and,
from it, files with one thing wrong each: values that are not finite or no sensor reads,
columns swapped, timestamps reversed, constant, repeated, out of order or in a wrong unit,
signals in the wrong unit or from the wrong sensor, cut off, ragged, empty. An import must
refuse each with one line, or import it with a QC flag saying what is odd: never succeed
silently (``tests/ingest/test_import_mutations.py``, ``benchmarks/import_mutations.py``).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from glutewake.simulate import vendor_files as vf

TZ = "Europe/Berlin"


@dataclass(frozen=True)
class Mutation:
    """One damaged file: its format, what was done to it, and where it is."""

    fmt: str
    name: str
    path: Path


@dataclass(frozen=True)
class _Text:
    """Where a text format keeps its rows, times and values."""

    fmt: str
    header_lines: int
    sep: str
    time_col: int | None
    value_cols: tuple[int, ...]


RowEdit = Callable[[list[list[str]], _Text], list[list[str]] | None]


def _set_value(value: str) -> RowEdit:
    def edit(rows: list[list[str]], spec: _Text) -> list[list[str]]:
        rows[len(rows) // 2][spec.value_cols[1]] = value
        return rows

    return edit


def _swap_time_value(rows: list[list[str]], spec: _Text) -> list[list[str]] | None:
    if spec.time_col is None:
        return None
    t, v = spec.time_col, spec.value_cols[2]
    for r in rows:
        r[t], r[v] = r[v], r[t]
    return rows


def _reverse(rows: list[list[str]], spec: _Text) -> list[list[str]] | None:
    return rows[::-1] if spec.time_col is not None else None


def _constant_time(rows: list[list[str]], spec: _Text) -> list[list[str]] | None:
    if spec.time_col is None:
        return None
    for r in rows:
        r[spec.time_col] = rows[0][spec.time_col]
    return rows


def _every_row_twice(rows: list[list[str]], spec: _Text) -> list[list[str]] | None:
    return [r for r in rows for _ in (0, 1)] if spec.time_col is not None else None


def _one_repeat(rows: list[list[str]], spec: _Text) -> list[list[str]] | None:
    if spec.time_col is None:
        return None
    k = len(rows) // 3
    return [*rows[: k + 1], list(rows[k]), *rows[k + 1 :]]


def _one_step_back(rows: list[list[str]], spec: _Text) -> list[list[str]] | None:
    if spec.time_col is None:
        return None
    k = len(rows) // 2
    rows[k], rows[k + 1] = rows[k + 1], rows[k]
    return rows


def _shuffle(rows: list[list[str]], spec: _Text) -> list[list[str]] | None:
    if spec.time_col is None:
        return None
    order = np.random.default_rng(1).permutation(len(rows))
    return [rows[i] for i in order]


def _scale_values(factor: float) -> RowEdit:
    def edit(rows: list[list[str]], spec: _Text) -> list[list[str]]:
        for r in rows:
            for c in spec.value_cols:
                r[c] = _scaled(r[c], factor)
        return rows

    return edit


def _scaled(text: str, factor: float) -> str:
    value = float(text.replace(",", "."))
    out = value * factor
    return str(round(out)) if "." not in text and "e" not in text.lower() else f"{out:.6f}"


def _constant_channel(rows: list[list[str]], spec: _Text) -> list[list[str]]:
    for r in rows:
        r[spec.value_cols[0]] = rows[0][spec.value_cols[0]]
    return rows


def _empty_cell(rows: list[list[str]], spec: _Text) -> list[list[str]]:
    rows[len(rows) // 2][spec.value_cols[0]] = ""
    return rows


def _extra_field(rows: list[list[str]], spec: _Text) -> list[list[str]]:
    rows[len(rows) // 2].append("7")
    return rows


def _missing_field(rows: list[list[str]], spec: _Text) -> list[list[str]]:
    row = rows[len(rows) // 2]
    del row[spec.value_cols[-1]]  # a row that lost a value (its later fields move left)
    return rows


def _no_rows(rows: list[list[str]], spec: _Text) -> list[list[str]]:
    return []


_ROW_EDITS: dict[str, RowEdit] = {
    "nan": _set_value("NaN"),
    "plus_inf": _set_value("inf"),
    "minus_inf": _set_value("-inf"),
    "minus_1e20": _set_value("-1e20"),
    "plus_1_8e12": _set_value("1.8e12"),
    "text_in_number": _set_value("n/a"),
    "swapped_time_and_value": _swap_time_value,
    "reversed_rows": _reverse,
    "constant_time": _constant_time,
    "every_row_twice": _every_row_twice,
    "one_repeated_row": _one_repeat,
    "one_step_back": _one_step_back,
    "shuffled_rows": _shuffle,
    "values_x1000": _scale_values(1000.0),
    "values_x9_8": _scale_values(9.80665),
    "values_x0_001": _scale_values(0.001),
    "constant_channel": _constant_channel,
    "empty_cell": _empty_cell,
    "extra_field": _extra_field,
    "missing_field": _missing_field,
    "header_only": _no_rows,
}


def _mutate_text(base: Path, spec: _Text, folder: Path) -> list[Mutation]:
    lines = base.read_text(encoding="utf-8").splitlines()
    head, body = lines[: spec.header_lines], lines[spec.header_lines :]
    out = []
    for name, edit in _ROW_EDITS.items():
        rows = edit([ln.split(spec.sep) for ln in body], spec)
        if rows is None:
            continue
        path = folder / f"{name}-{base.name}"
        path.write_text("\n".join([*head, *(spec.sep.join(r) for r in rows)]) + "\n")
        out.append(Mutation(spec.fmt, name, path))
    out.extend(_file_mutations(base, spec.fmt, folder))
    return out


def _file_mutations(base: Path, fmt: str, folder: Path) -> list[Mutation]:
    """Byte-level damage any format can suffer."""
    data = base.read_bytes()
    out = []
    cut = data[: int(len(data) * 0.6)]
    cut = cut[: cut.rfind(b"\n") + 4] if b"\n" in cut else cut
    for name, content in (
        ("cut_off", cut),
        ("zero_bytes", b""),
        ("garbage", bytes(np.random.default_rng(2).integers(0, 256, 4096, dtype=np.uint8))),
    ):
        path = folder / f"{name}-{base.name}"
        path.write_bytes(content)
        out.append(Mutation(fmt, name, path))
    return out


def _mutate_packets(base: Path, fmt: str, folder: Path, lines: bool) -> list[Mutation]:
    """Movesense JSON: damage inside the packets (values, Timestamps, order)."""
    text = base.read_text(encoding="utf-8")
    if lines:
        events = [json.loads(ln.rstrip(",")) for ln in text.splitlines()[1:-1]]
        packets = [next(iter(e.values())) for e in events]
    else:
        doc = json.loads(text)
        packets = doc["Meas"]["IMU9"]

    def write(name: str, packets_out: list[dict[str, object]]) -> Mutation:
        path = folder / f"{name}-{base.name}"
        if lines:
            body = [json.dumps({"acc": p}) for p in packets_out]
            path.write_text('{"data": [\n' + ",\n".join(body) + "\n]}")
        else:
            path.write_text(json.dumps({"Meas": {"IMU9": packets_out}}, separators=(",", ":")))
        return Mutation(fmt, name, path)

    def copy() -> list[dict[str, object]]:
        return json.loads(json.dumps(packets))

    out = []
    for name, value in (("nan", float("nan")), ("plus_inf", float("inf")),
                        ("minus_1e20", -1e20), ("text_in_number", "n/a")):  # fmt: skip
        ps = copy()
        ps[len(ps) // 2]["ArrayAcc"][1]["y"] = value  # type: ignore[index]
        out.append(write(name, ps))
    ps = copy()
    out.append(write("reversed_packets", ps[::-1]))
    ps = copy()
    for p in ps:
        p["Timestamp"] = ps[0]["Timestamp"]
    out.append(write("constant_timestamp", ps))
    ps = copy()
    out.append(write("every_packet_twice", [p for p in ps for _ in (0, 1)]))
    ps = copy()
    for p in ps:
        for s in p["ArrayAcc"]:  # type: ignore[attr-defined]
            s["x"], s["y"], s["z"] = s["x"] / vf.G, s["y"] / vf.G, s["z"] / vf.G
    out.append(write("acc_in_g_not_m_s2", ps))
    ps = copy()
    for p in ps:
        p["Timestamp"] = int(p["Timestamp"]) * 1000  # type: ignore[call-overload]
    out.append(write("timestamp_in_us", ps))
    out.extend(_file_mutations(base, fmt, folder))
    return out


def _mutate_parquet(base: Path, folder: Path) -> list[Mutation]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pq.read_table(base)
    t = table.column("t_us").to_numpy()
    x = table.column("x").to_numpy().astype(np.float32)
    out = []

    def write(name: str, t_us: np.ndarray, xs: np.ndarray) -> None:
        path = folder / "stream=acc" / f"{name}-{base.name}"
        path.parent.mkdir(exist_ok=True)
        columns = {n: table.column(n) for n in table.column_names}
        columns["t_us"] = pa.array(t_us.astype(np.int64))
        columns["x"] = pa.array(xs.astype(np.float32))
        pq.write_table(pa.table(columns), path)
        out.append(Mutation("glutewake-samples", name, path))

    bad = x.copy()
    bad[len(bad) // 2] = np.nan
    write("nan", t, bad)
    bad = x.copy()
    bad[len(bad) // 2] = np.inf
    write("plus_inf", t, bad)
    write("reversed_times", t[::-1].copy(), x)
    write("constant_times", np.full_like(t, t[0]), x)
    write("times_1970", t - t[0], x)
    write("times_in_ms", t // 1000, x)
    write("every_time_twice", np.repeat(t[: len(t) // 2], 2)[: len(t)], x)
    cut = base.read_bytes()
    path = folder / "stream=acc" / f"cut_off-{base.name}"
    path.write_bytes(cut[: len(cut) // 2])
    out.append(Mutation("glutewake-samples", "cut_off", path))
    return out


def _mutate_edf(base: Path, folder: Path) -> list[Mutation]:
    data = bytearray(base.read_bytes())
    out = []
    cases: dict[str, bytes] = {
        "cut_off": bytes(data[: len(data) - 700]),
        "record_count_not_a_number": bytes(data[:236] + b"ab      " + data[244:]),
        "discontinuous_edf_d": bytes(data[:192] + b"EDF+D" + data[197:]),
    }
    for name, content in cases.items():
        path = folder / f"{name}-{base.name}"
        path.write_bytes(content)
        out.append(Mutation("edf", name, path))
    return out


def _activpal(base: Path, folder: Path) -> list[Mutation]:
    lines = base.read_text().splitlines()
    head, body = lines[:1], [ln.split(",") for ln in lines[1:]]
    out = []

    def write(name: str, rows: list[list[str]]) -> None:
        path = folder / f"{name}-{base.name}"
        path.write_text("\n".join([*head, *(",".join(r) for r in rows)]) + "\n")
        out.append(Mutation("activpal-events", name, path))

    k = len(body) - 2  # an event with one after it
    for name, col, value in (("nan_time", 0, "NaN"), ("negative_interval", 2, "-5.0"),
                             ("unknown_code", 3, "7"), ("time_1970", 0, "25569.0"),
                             ("text_in_number", 2, "n/a")):  # fmt: skip
        rows = [list(r) for r in body]
        rows[k][col] = value
        write(name, rows)
    write("reversed_events", body[::-1])
    rows = [list(r) for r in body]
    rows[k][2] = str(float(rows[k][2]) + 600.0)  # an event that runs into the next
    write("overlapping_events", rows)
    out.extend(_file_mutations(base, "activpal-events", folder))
    return out


def mutated_files(folder: Path) -> list[Mutation]:
    """Write the mutation set into ``folder`` (each format's base file and its mutations)."""
    from glutewake.pipeline import import_files
    from glutewake.store.bookkeeping import add_participant
    from glutewake.store.datadir import DataDir

    folder.mkdir(parents=True, exist_ok=True)
    start = dt.datetime(2026, 3, 2, 9, 0)
    rec26 = vf.thigh_recording(3, 26.0, start=start, tz=TZ, seed=4)
    rec25 = vf.thigh_recording(3, 25.0, start=start, tz=TZ, seed=4)
    rec30 = vf.thigh_recording(3, 30.0, start=start, tz=TZ, seed=4)
    out: list[Mutation] = []

    def base(name: str) -> Path:
        sub = folder / name
        sub.mkdir(exist_ok=True)
        return sub

    texts = [
        (vf.write_generic_csv(rec26, base("generic")), _Text("generic-csv", 1, ",", 0, (1, 2, 3))),
        (vf.write_polar_sensor_logger(rec26, base("polar")),
         _Text("polar-sensor-logger", 1, ";", 1, (2, 3, 4))),
        (vf.write_movesense_android_csv(rec26, base("android")),
         _Text("movesense-csv", 1, ",", 0, (1, 2, 3))),
        (vf.write_movesense_ios_csv(rec26, base("ios-csv")),
         _Text("movesense-csv", 1, ",", 0, (1, 2, 3))),
        (vf.write_axivity_csv(rec25, base("axivity")), _Text("axivity-csv", 0, ",", 0, (1, 2, 3))),
        (vf.write_actigraph_csv(rec30, base("actigraph")),
         _Text("actigraph-csv", 11, ",", None, (0, 1, 2))),
    ]  # fmt: skip
    for path, spec in texts:
        out.extend(m for m in _mutate_text(path, spec, path.parent) if m.path != path)
    ios = vf.write_movesense_ios_json(rec26, base("ios-json"))
    out.extend(_mutate_packets(ios, "movesense-json", ios.parent, lines=True))
    logger = vf.write_movesense_datalogger(rec26, base("datalogger"))
    out.extend(_mutate_packets(logger, "movesense-json", logger.parent, lines=False))
    edf = vf.write_edf(base("edf"), start, rec=rec26)
    out.extend(_mutate_edf(edf, edf.parent))
    pal = vf.write_activpal_events(rec26, base("activpal"))
    out.extend(_activpal(pal, pal.parent))
    # a sample file of the store, as another data directory holds it
    store = DataDir(folder / "store").create()
    add_participant(store, "X01", TZ)
    import_files(store, [texts[0][0]], participant_id="X01")
    sample = next(store.samples.glob("stream=acc/**/*.parquet"))
    out.extend(_mutate_parquet(sample, base("samples")))
    return out
