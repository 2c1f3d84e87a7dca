"""Device protocols: bytes from real wearables to samples with UTC time and project units.

Profiles are registered by name and imported on first use, so importing this package is cheap.

>>> from glutewake.devices import get_profile
>>> get_profile("polar-pmd").name
'polar-pmd'
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Iterable, Sequence

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

log = logging.getLogger(__name__)
log.addHandler(logging.NullHandler())

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


def available_profiles() -> list[DeviceProfile]:
    """Every registered profile whose module can be imported (others are skipped, logged)."""
    profiles: list[DeviceProfile] = []
    for name in PROFILES:
        try:
            profiles.append(get_profile(name))
        except (ImportError, AttributeError) as exc:
            log.debug("profile %s unavailable: %s", name, exc)
    return profiles


def match_profile(
    name: str | None,
    service_uuids: Iterable[str] = (),
    profiles: Sequence[DeviceProfile] | None = None,
) -> DeviceProfile | None:
    """The profile that recognises an advertisement, by name prefix first, then service UUID.

    Examples
    --------
    >>> from glutewake.devices.base import DeviceProfile
    >>> class P(DeviceProfile):
    ...     name = "demo"; name_prefixes = ("Demo",); service_uuids = ("abcd",)
    ...     start_writes = stop_writes = required_mtu = decode_records = None
    >>> match_profile("Demo 12", (), [P()]).name
    'demo'
    >>> match_profile("Other", ["ABCD"], [P()]).name
    'demo'
    """
    candidates = list(available_profiles() if profiles is None else profiles)
    if name:
        for profile in candidates:
            if any(name.startswith(prefix) for prefix in profile.name_prefixes):
                return profile
    advertised = {u.lower() for u in service_uuids}
    for profile in candidates:
        if advertised & {u.lower() for u in profile.service_uuids}:
            return profile
    return None


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
    "available_profiles",
    "get_profile",
    "match_profile",
]
