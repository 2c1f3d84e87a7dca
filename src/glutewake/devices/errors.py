"""The specific ways a device packet can be undecodable.

Every class derives from :class:`glutewake.devices.base.DecodeError`, whose message names the
device family, the stream and the problem, e.g.
``polar-pmd acc: delta block 3 announces 54 bytes but 12 remain``.
"""

from __future__ import annotations

from glutewake.devices.base import DecodeError


class TruncatedPacketError(DecodeError):
    """The packet ends before its fixed header or before a field it announces."""


class MtuTruncatedError(TruncatedPacketError):
    """The packet is exactly ATT MTU - 3 bytes long and cut short: the link MTU is too small."""


class PayloadLengthError(DecodeError):
    """The payload is not a whole number of samples, or its length contradicts its header."""


class UnknownMeasurementTypeError(DecodeError):
    """A measurement/stream/packet type this decoder does not know."""


class UnknownFrameTypeError(DecodeError):
    """A frame type this decoder does not know for a known measurement type."""


class BlockOverrunError(DecodeError):
    """A compressed block header announces more bytes than the payload holds."""


class BitWidthError(DecodeError):
    """A compressed block announces a bit width that cannot occur."""


class ReferenceSampleError(DecodeError):
    """The reference (first, uncompressed) sample of a compressed frame is cut short."""


class TimestampError(DecodeError):
    """Sample timestamps cannot be derived from what the packet and the caller provide."""


class ControlPointError(DecodeError):
    """A control-point/command message that is malformed."""


class SequenceError(DecodeError):
    """A continuation packet (second part, delta packet) without the packet it continues."""


class UnknownFirmwareError(DecodeError):
    """The packet format depends on a firmware version that neither the configuration, nor a
    revision string read from the device, nor the stream itself tells."""


__all__ = [
    "BitWidthError",
    "BlockOverrunError",
    "ControlPointError",
    "DecodeError",
    "MtuTruncatedError",
    "PayloadLengthError",
    "ReferenceSampleError",
    "SequenceError",
    "TimestampError",
    "TruncatedPacketError",
    "UnknownFirmwareError",
    "UnknownFrameTypeError",
    "UnknownMeasurementTypeError",
]
