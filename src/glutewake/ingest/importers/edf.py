"""EDF, EDF+ (continuous) and BDF files from lab EMG and IMU systems, read with ``pyedflib``.

Signals are grouped into streams by their physical dimension (uV/mV/V EMG, g/mg/m/s^2 acc,
deg/s gyro, gauss/uT mag); signals of other dimensions (annotations, %, bpm) are skipped and
listed in the QC. A signal's stored channel name is its label (as ``pyedflib.EdfReader.getLabel``
returns it: right-stripped, UTF-8 or latin-1) in lower case with other characters as ``_`` and
a leading type word of its stream dropped: ``EMG Glute R`` is ``glute_r``, ``Accel X`` is ``x``
(:func:`channel_name`); these are the names ``--channel-roles`` refers to. All signals of one
stream must share a sampling rate. The EDF start date and time are the recording's local clock:
``--tz`` is required. The header's record count is checked against the file size first, so a
truncated file is reported with the record where it ends.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from glutewake.ingest.importers._core import (
    Batch,
    ReadContext,
    Source,
    local_to_utc_us,
    need_tz,
    parse_unit,
)
from glutewake.ingest.importers.errors import ImportFileError
from glutewake.ingest.importers.sniff import Head

NAME = "edf"
_SAFE = re.compile(r"[^a-z0-9]+")


def sniff(head: Head) -> bool:
    """EDF starts with ``0`` and 7 spaces; BDF with byte 255 and ``BIOSEMI``."""
    raw = head.raw
    return raw[:8] == b"0       " or raw[:8] == b"\xffBIOSEMI"


def _check_size(path: Path) -> None:
    size = path.stat().st_size
    with open(path, "rb") as fh:
        fixed = fh.read(256)
        if len(fixed) < 256:
            raise ImportFileError(f"{path}: {len(fixed)} bytes; an EDF header alone is 256 bytes")
        try:
            n_records = int(fixed[236:244].decode("ascii").strip())
            n_signals = int(fixed[252:256].decode("ascii").strip())
        except ValueError:
            raise ImportFileError(
                f"{path}: header bytes 236-256 (record and signal counts) are "
                "not numbers; expected an EDF/BDF header"
            ) from None
        sig_header = fh.read(256 * n_signals)
    if fixed[192:197] in (b"EDF+D", b"BDF+D"):
        raise ImportFileError(
            f"{path}: EDF+D/BDF+D (discontinuous records) is not supported; "
            "export the recording as continuous EDF+C"
        )
    if len(sig_header) < 256 * n_signals:
        raise ImportFileError(f"{path}: the signal headers are cut ({n_signals} signals declared)")
    width = 3 if fixed[:1] == b"\xff" else 2
    spr_field = sig_header[216 * n_signals : 224 * n_signals]
    try:
        spr = [int(spr_field[i * 8 : i * 8 + 8].decode("ascii").strip()) for i in range(n_signals)]
    except ValueError:
        raise ImportFileError(f"{path}: samples-per-record fields are not numbers") from None
    record_bytes = sum(spr) * width
    header_bytes = 256 * (n_signals + 1)
    if n_records >= 0 and record_bytes > 0:
        have = (size - header_bytes) // record_bytes
        if have < n_records:
            raise ImportFileError(
                f"{path}: truncated: the header declares {n_records} data records, the file holds "
                f"{have} complete ones (record {have + 1} is cut or missing)"
            )


#: leading signal-type words dropped from a channel's name (EDF+ labels are "<type> <name>",
#: e.g. "EMG Glute R"; the stream already says the type), per stream
_TYPE_WORDS = {
    "emg": ("emg_",),
    "acc": ("accelerometer_", "accel_", "acc_"),
    "gyro": ("gyroscope_", "gyro_", "gyr_"),
    "mag": ("magnetometer_", "magn_", "mag_"),
}


def channel_name(label: str, stream: str, used: set[str]) -> str:
    """The stored name of an EDF signal: its label in lower case, runs of other characters as
    ``_``, a leading type word of its stream dropped, made unique with ``_2``, ``_3``, ...

    >>> channel_name("EMG Glute R", "emg", set())
    'glute_r'
    >>> channel_name("Accel X", "acc", set())
    'x'
    """
    name = _SAFE.sub("_", label.strip().lower()).strip("_") or "ch"
    for word in _TYPE_WORDS.get(stream, ()):
        if name.startswith(word) and len(name) > len(word):
            name = name[len(word) :]
            break
    base, k = name, 2
    while name in used:
        name, k = f"{base}_{k}", k + 1
    used.add(name)
    return name


def open_source(path: Path, head: Head, ctx: ReadContext) -> Source:
    """Read an EDF/EDF+/BDF file (see the module docstring)."""
    import pyedflib

    _check_size(path)
    try:
        reader = pyedflib.EdfReader(str(path))
    except OSError as exc:
        raise ImportFileError(f"{path}: not a readable EDF/BDF file ({exc})") from None
    try:
        start = reader.getStartdatetime()
        tz = need_tz(path, ctx, "EDF start date and time (local clock)")
        start_us = local_to_utc_us(start.replace(tzinfo=None), tz)
        groups: dict[str, list[tuple[int, str, float]]] = {}
        skipped: list[str] = []
        used: set[str] = set()
        for i in range(reader.signals_in_file):
            dim = reader.getPhysicalDimension(i)
            label = reader.getLabel(i)
            unit = parse_unit(dim) if dim else None
            if unit is None:
                skipped.append(f"{label} [{dim}]")
                continue
            stream, factor = unit
            groups.setdefault(stream, []).append((i, channel_name(label, stream, used), factor))
        if not groups:
            raise ImportFileError(
                f"{path}: no signal with a dimension the project uses (uV/mV, g, deg/s, gauss); "
                f"found {', '.join(skipped) or 'none'}"
            )
        rates: dict[str, float] = {}
        for stream, sigs in groups.items():
            fs = {float(reader.getSampleFrequency(i)) for i, _, _ in sigs}
            if len(fs) > 1:
                raise ImportFileError(
                    f"{path}: the {stream} signals have different sampling rates "
                    f"({', '.join(f'{f:g}' for f in sorted(fs))} Hz); expected one rate per stream"
                )
            rates[stream] = fs.pop()
        lengths = {
            s: min(int(reader.getNSamples()[i]) for i, _, _ in sigs) for s, sigs in groups.items()
        }
        device = (reader.getEquipment() or "").strip() or None
    except ImportFileError:
        reader.close()
        raise

    def batches() -> Iterator[Batch]:
        try:
            for stream, sigs in groups.items():
                fs_hz = rates[stream]
                n_total = lengths[stream]
                for lo in range(0, n_total, ctx.chunk_rows):
                    n = min(ctx.chunk_rows, n_total - lo)
                    cols = [reader.readSignal(i, lo, n) * f for i, _, f in sigs]
                    values = np.column_stack(cols).astype(np.float64, copy=False)
                    idx = np.arange(lo, lo + n, dtype=np.float64)
                    t_us = start_us + np.round(idx * 1e6 / fs_hz).astype(np.int64)
                    channels = tuple(name for _, name, _ in sigs)
                    yield Batch(stream, t_us, values, channels, first_line=lo + 1, place="sample")
        finally:
            reader.close()

    info: dict[str, object] = {"tz_source": f"--tz {tz}", "start_local": start.isoformat()}
    if skipped:
        info["skipped_signals"] = skipped
    return Source(batches(), device_id=device, fs_hz=rates, info=info)
