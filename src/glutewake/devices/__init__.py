"""Device protocols: bytes from real wearables to samples with UTC time and project units.

Profiles are registered by name and imported on first use, so importing this package is cheap.

>>> from glutewake.devices import get_profile
>>> get_profile("polar-pmd").name
'polar-pmd'
"""

from __future__ import annotations

import importlib

from glutewake.devices.base import (
    DecodeError,
    DecodeResult,
    DeviceProfile,
    Gap,
    GattWrite,
    PacketError,
    RawRecords,
    RecordKind,
    StreamSamples,
    VirtualDevice,
)

#: registry name -> "module:attribute" of the profile instance
PROFILES: dict[str, str] = {
    "polar-pmd": "glutewake.devices.polar_pmd:PROFILE",
    "glutewake-open": "glutewake.devices.glutewake_open:PROFILE",
    "movesense": "glutewake.devices.movesense:PROFILE",
    "metawear": "glutewake.devices.metawear:PROFILE",
    "ganglion": "glutewake.devices.ganglion:PROFILE",
}


def get_profile(name: str) -> DeviceProfile:
    """Return the registered profile called ``name``.

    Raises
    ------
    KeyError
        If no profile has that name; the message lists the known ones.
    """
    try:
        target = PROFILES[name]
    except KeyError:
        known = ", ".join(sorted(PROFILES))
        raise KeyError(f"unknown device profile {name!r} (known: {known})") from None
    module_name, attr = target.split(":")
    profile = getattr(importlib.import_module(module_name), attr)
    assert isinstance(profile, DeviceProfile)
    return profile


__all__ = [
    "PROFILES",
    "DecodeError",
    "DecodeResult",
    "DeviceProfile",
    "Gap",
    "GattWrite",
    "PacketError",
    "RawRecords",
    "RecordKind",
    "StreamSamples",
    "VirtualDevice",
    "get_profile",
]
