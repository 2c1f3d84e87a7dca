"""Polar PMD control point: requests, responses, settings TLVs, the measurement-stopped message.

Host -> device (write with response to the control point)::

    [op code][measurement type][settings TLV ...]
    op 0x01 get measurement settings, 0x02 start (with the chosen settings), 0x03 stop

Device -> host (indication on the control point)::

    [0xF0][op code][measurement type][status][more][parameters ...]   a response
    [0x01][measurement type ...]                                         measurement stopped
    (a read of the control point returns [0x0F][feature bit mask ...])

Settings TLV: ``[setting type][count][count x value]``, little-endian, value sizes
SAMPLE_RATE 2, RESOLUTION 2, RANGE 2, RANGE_MILLIUNIT 4, CHANNELS 1, FACTOR 4 (float32),
SECURITY 16. A get-settings response lists the supported values; a start request carries one
value per setting (never FACTOR); a start response carries the FACTOR the data must be
multiplied by. As in Polar's SDK (``PmdSetting.kt``), integer values are signed (two's
complement of their field size: a RANGE_MILLIUNIT of ``FF FF FF FF`` is -1) and FACTOR is the
IEEE-754 float whose bits the four bytes hold.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

from glutewake.devices.errors import ControlPointError
from glutewake.devices.pmd_codec import DEVICE, stream_name

RESPONSE_CODE = 0xF0
MEASUREMENT_STOPPED_CODE = 0x01
FEATURES_CODE = 0x0F


class OpCode(IntEnum):
    """Control-point request op codes."""

    GET_MEASUREMENT_SETTINGS = 0x01
    REQUEST_MEASUREMENT_START = 0x02
    STOP_MEASUREMENT = 0x03
    GET_SDK_MODE_SETTINGS = 0x04
    GET_MEASUREMENT_STATUS = 0x05


class Status(IntEnum):
    """Control-point response status codes."""

    SUCCESS = 0
    ERROR_INVALID_OP_CODE = 1
    ERROR_INVALID_MEASUREMENT_TYPE = 2
    ERROR_NOT_SUPPORTED = 3
    ERROR_INVALID_LENGTH = 4
    ERROR_INVALID_PARAMETER = 5
    ERROR_ALREADY_IN_STATE = 6
    ERROR_INVALID_RESOLUTION = 7
    ERROR_INVALID_SAMPLE_RATE = 8
    ERROR_INVALID_RANGE = 9
    ERROR_INVALID_MTU = 10
    ERROR_INVALID_NUMBER_OF_CHANNELS = 11
    ERROR_INVALID_STATE = 12
    ERROR_DEVICE_IN_CHARGER = 13
    ERROR_DISK_FULL = 14


def status_name(status: int) -> str:
    """Name of a status code (``UNKNOWN_STATUS_n`` for codes outside the specification)."""
    try:
        return Status(status).name
    except ValueError:
        return f"UNKNOWN_STATUS_{status}"


class SettingType(IntEnum):
    """Settings TLV types."""

    SAMPLE_RATE = 0
    RESOLUTION = 1
    RANGE = 2
    RANGE_MILLIUNIT = 3
    CHANNELS = 4
    FACTOR = 5
    SECURITY = 6


SETTING_SIZES: dict[int, int] = {0: 2, 1: 2, 2: 2, 3: 4, 4: 1, 5: 4, 6: 16}

Settings = dict[SettingType, list[float]]


def parse_settings(data: bytes, *, stream: str = "control") -> Settings:
    """Parse a settings TLV list.

    Returns
    -------
    dict SettingType -> list of values (FACTOR as float, SECURITY as unsigned int, the others
    as signed int of their field size, as Polar's SDK reads them).

    Raises
    ------
    ControlPointError
        Unknown setting type or a value list cut short.

    Examples
    --------
    >>> s = parse_settings(bytes.fromhex("00013400010110000204F500F401E803D007040103"))
    >>> {k.name: v for k, v in s.items()}
    {'SAMPLE_RATE': [52], 'RESOLUTION': [16], 'RANGE': [245, 500, 1000, 2000], 'CHANNELS': [3]}
    """
    out: Settings = {}
    pos = 0
    n = len(data)
    while pos < n:
        if pos + 2 > n:
            raise ControlPointError(DEVICE, stream, f"settings TLV header cut at byte {pos}")
        t, count = data[pos], data[pos + 1]
        if t not in SETTING_SIZES:
            raise ControlPointError(DEVICE, stream, f"unknown setting type {t} at byte {pos}")
        size = SETTING_SIZES[t]
        pos += 2
        if pos + size * count > n:
            raise ControlPointError(
                DEVICE, stream, f"setting {SettingType(t).name} announces {count} values, data cut"
            )
        vals: list[float] = []
        for _ in range(count):
            chunk = data[pos : pos + size]
            if t == SettingType.FACTOR:
                vals.append(struct.unpack("<f", chunk)[0])
            else:
                vals.append(int.from_bytes(chunk, "little", signed=t != SettingType.SECURITY))
            pos += size
        out.setdefault(SettingType(t), []).extend(vals)
    return out


def encode_settings(settings: Mapping[Any, Sequence[float]]) -> bytes:
    """Encode settings as a TLV list (the inverse of :func:`parse_settings`).

    Examples
    --------
    >>> encode_settings({SettingType.SAMPLE_RATE: [52], SettingType.RESOLUTION: [16]}).hex()
    '0001340001011000'
    """
    parts: list[bytes] = []
    for t, vals in settings.items():
        ti = int(t)
        size = SETTING_SIZES[ti]
        parts.append(bytes((ti, len(vals))))
        for v in vals:
            if ti == SettingType.FACTOR:
                parts.append(struct.pack("<f", float(v)))
            else:
                iv = int(v)
                if not -(1 << (8 * size - 1)) <= iv < (1 << (8 * size)):
                    raise ValueError(f"{SettingType(ti).name} value {iv} does not fit {size} bytes")
                parts.append(iv.to_bytes(size, "little", signed=iv < 0))
    return b"".join(parts)


@dataclass(frozen=True)
class CpRequest:
    """A host request written to the control point."""

    op_code: int
    measurement_type: int
    settings: Settings = field(default_factory=dict)


@dataclass(frozen=True)
class CpResponse:
    """A control-point response (first byte 0xF0)."""

    op_code: int
    measurement_type: int
    status: int
    more: bool
    parameters: bytes

    @property
    def ok(self) -> bool:
        """Whether the status is SUCCESS."""
        return self.status == Status.SUCCESS

    @property
    def status_name(self) -> str:
        """Name of the status code."""
        return status_name(self.status)

    def settings(self) -> Settings:
        """The parameters parsed as settings (get-settings and start responses)."""
        return parse_settings(self.parameters, stream=stream_name(self.measurement_type))


@dataclass(frozen=True)
class MeasurementStopped:
    """Device-initiated notice that measurements stopped (e.g. the sensor was put on charge)."""

    measurement_types: tuple[int, ...]


def encode_get_settings(measurement_type: int) -> bytes:
    """Request the supported settings of a measurement.

    Examples
    --------
    >>> encode_get_settings(2).hex()
    '0102'
    """
    return bytes((OpCode.GET_MEASUREMENT_SETTINGS, measurement_type))


def encode_start(measurement_type: int, settings: Mapping[Any, Sequence[float]]) -> bytes:
    """Start a measurement with one chosen value per setting.

    FACTOR is never sent (it comes back in the start response), as in Polar's SDK
    (``PmdSetting.serializeSelected``).

    Examples
    --------
    >>> encode_start(2, {SettingType.SAMPLE_RATE: [52], SettingType.RESOLUTION: [16],
    ...                  SettingType.RANGE: [8], SettingType.CHANNELS: [3]}).hex()
    '0202000134000101100002010800040103'
    """
    chosen = {t: v for t, v in settings.items() if int(t) != SettingType.FACTOR}
    return bytes((OpCode.REQUEST_MEASUREMENT_START, measurement_type)) + encode_settings(chosen)


def encode_stop(measurement_type: int) -> bytes:
    """Stop a measurement.

    Examples
    --------
    >>> encode_stop(2).hex()
    '0302'
    """
    return bytes((OpCode.STOP_MEASUREMENT, measurement_type))


def parse_request(data: bytes) -> CpRequest:
    """Parse a host write to the control point.

    Raises
    ------
    ControlPointError
        Empty/short writes or malformed settings.
    """
    if len(data) < 2:
        raise ControlPointError(
            DEVICE, "control", f"request of {len(data)} bytes (need op code + type)"
        )
    mtype = data[1] & 0x3F
    settings = (
        parse_settings(data[2:], stream=stream_name(mtype))
        if data[0] == OpCode.REQUEST_MEASUREMENT_START
        else {}
    )
    return CpRequest(data[0], mtype, settings)


def encode_response(
    op_code: int, measurement_type: int, status: int, parameters: bytes = b"", *, more: bool = False
) -> bytes:
    """Encode a control-point response as the device sends it.

    Examples
    --------
    >>> encode_response(1, 6, Status.ERROR_INVALID_RESOLUTION).hex()
    'f001060700'
    """
    return bytes((RESPONSE_CODE, op_code, measurement_type, int(status), int(more))) + parameters


def encode_measurement_stopped(measurement_types: Sequence[int]) -> bytes:
    """Encode the device-initiated measurement-stopped indication."""
    return bytes((MEASUREMENT_STOPPED_CODE, *measurement_types))


def parse_notification(data: bytes) -> CpResponse | MeasurementStopped:
    """Parse an indication received on the control point.

    Raises
    ------
    ControlPointError
        Too short, or an unknown first byte.

    Examples
    --------
    >>> r = parse_notification(bytes.fromhex("F001020000FFFFFF"))
    >>> r.ok, r.op_code, r.measurement_type, r.more, r.parameters.hex()
    (True, 1, 2, False, 'ffffff')
    >>> parse_notification(bytes.fromhex("F001060700")).status_name
    'ERROR_INVALID_RESOLUTION'
    """
    if not data:
        raise ControlPointError(DEVICE, "control", "empty control-point indication")
    if data[0] == RESPONSE_CODE:
        if len(data) < 4:
            raise ControlPointError(DEVICE, "control", f"response of {len(data)} bytes (need >= 4)")
        if data[3] != Status.SUCCESS:  # the SDK ignores "more" and parameters of an error
            return CpResponse(data[1], data[2] & 0x3F, data[3], False, b"")
        more = len(data) > 4 and data[4] != 0
        return CpResponse(data[1], data[2] & 0x3F, data[3], more, bytes(data[5:]))
    if data[0] == MEASUREMENT_STOPPED_CODE:
        return MeasurementStopped(tuple(b & 0x3F for b in data[1:]))
    raise ControlPointError(DEVICE, "control", f"unknown control-point indication 0x{data[0]:02X}")


def encode_features(measurement_types: Sequence[int]) -> bytes:
    """Value of a control-point read: 0x0F then a bit mask, bit n = measurement type n."""
    mask = 0
    for t in measurement_types:
        mask |= 1 << t
    return bytes((FEATURES_CODE,)) + mask.to_bytes(2, "little")


def parse_features(data: bytes) -> tuple[int, ...]:
    """Measurement types listed in a control-point read value."""
    if len(data) < 2 or data[0] != FEATURES_CODE:
        raise ControlPointError(DEVICE, "control", "control-point read is not a feature list")
    mask = int.from_bytes(data[1:], "little")
    return tuple(t for t in range(8 * (len(data) - 1)) if mask >> t & 1)
