"""``glutewake scan``: list nearby wearables and the device profile that recognises each.

A profile recognises an advertisement by its local name (``DeviceProfile.name_prefixes``) or by
an advertised primary service UUID (``DeviceProfile.service_uuids``):
:func:`glutewake.devices.match_profile`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from glutewake.devices import DeviceProfile, available_profiles, match_profile
from glutewake.ingest.adapter import NoAdapterError, start_scanner

__all__ = [
    "NoAdapterError",
    "ScanResult",
    "available_profiles",
    "match_profile",
    "scan",
    "scan_async",
]

log = logging.getLogger(__name__)
log.addHandler(logging.NullHandler())


@dataclass(frozen=True)
class ScanResult:
    """One advertising device seen during a scan."""

    name: str | None
    address: str
    rssi: int
    profile: str | None  #: registry name of the profile that recognises it, or None


async def scan_async(
    timeout_s: float = 5.0,
    *,
    backend: Any = None,
    profiles: Sequence[DeviceProfile] | None = None,
) -> list[ScanResult]:
    """Scan for ``timeout_s`` with bleak (``backend`` overrides bleak's platform backend).

    Raises
    ------
    NoAdapterError
        If there is no usable Bluetooth adapter (the message says what to check).
    """
    from bleak import BleakScanner

    kwargs: dict[str, Any] = {} if backend is None else {"backend": backend}
    scanner = BleakScanner(**kwargs)
    await start_scanner(scanner)  # what BleakScanner.discover does, with the adapter check
    try:
        await asyncio.sleep(timeout_s)
    finally:
        await scanner.stop()
    found = scanner.discovered_devices_and_advertisement_data
    results = []
    for device, adv in found.values():
        name = adv.local_name or device.name
        profile = match_profile(name, adv.service_uuids, profiles)
        results.append(
            ScanResult(name, device.address, adv.rssi, profile.name if profile else None)
        )
    return sorted(results, key=lambda r: (r.profile is None, -r.rssi, r.address))


def scan(timeout_s: float = 5.0, *, simulate: str | None = None) -> list[ScanResult]:
    """List nearby supported wearables: name, address, RSSI, recognised profile.

    Parameters
    ----------
    timeout_s : float
        How long to listen for advertisements.
    simulate : str, optional
        Comma-separated profile names: scan an in-process bumble link on which virtual devices
        of these profiles advertise, instead of the computer's Bluetooth adapter.

    Returns
    -------
    list of ScanResult
        Recognised devices first, then by signal strength.

    Raises
    ------
    NoAdapterError
        If there is no usable Bluetooth adapter.

    Examples
    --------
    >>> [r.profile for r in scan(0.3, simulate="polar-pmd")]
    ['polar-pmd']
    """
    if timeout_s <= 0:
        raise ValueError(f"scan timeout must be positive, got {timeout_s}")
    if simulate is None:
        return asyncio.run(scan_async(timeout_s))
    names = [n.strip() for n in simulate.split(",") if n.strip()]
    return asyncio.run(_scan_simulated(names, timeout_s))


async def _scan_simulated(names: list[str], timeout_s: float) -> list[ScanResult]:
    from glutewake.ingest.ble_bumble_backend import BumbleBleakScanner, BumbleRadio
    from glutewake.ingest.simulated import start_virtual_peripherals

    async with BumbleRadio() as radio:
        await start_virtual_peripherals(radio, names)
        return await scan_async(timeout_s, backend=BumbleBleakScanner)
