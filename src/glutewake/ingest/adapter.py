"""No usable Bluetooth adapter: recognising it, and saying so in one line.

bleak reports a missing Bluetooth stack in several ways, depending on how much of it is missing
(bleak 3.x, ``bleak/backends/bluezdbus/manager.py`` ``BlueZManager.async_init`` and
``get_default_adapter``; ``bleak/exc.py``):

* no D-Bus system bus (a container, a minimal install): ``dbus_fast`` cannot connect to its socket
  and the ``FileNotFoundError`` (or ``ConnectionRefusedError``) comes through unchanged;
* D-Bus without BlueZ (``bluetoothd`` not running): the ``GetManagedObjects`` call fails with
  ``BleakDBusError`` ``org.freedesktop.DBus.Error.ServiceUnknown``;
* BlueZ without an adapter, with an adapter that is off or cannot be central, or D-Bus refusing
  access: ``BleakBluetoothNotAvailableError`` with its ``reason`` (also what the macOS and
  Windows backends raise);
* a named adapter that does not exist: ``BleakError("adapter 'hci1' not found")``.

:func:`start_scanner` starts a ``BleakScanner`` and turns these into :class:`NoAdapterError`,
whose message is the one line ``scan`` and ``collect`` print.
"""

from __future__ import annotations

from typing import Any

from glutewake.ingest.spool_thread import CollectorError

__all__ = ["NO_ADAPTER", "NoAdapterError", "no_adapter_message", "start_scanner"]

#: the start of the message for a missing adapter or Bluetooth stack
NO_ADAPTER = "no Bluetooth adapter found: is BlueZ running?"
_BLUEZ_ABSENT = {
    "org.freedesktop.DBus.Error.ServiceUnknown",
    "org.freedesktop.DBus.Error.NameHasNoOwner",
    "org.bluez.Error.NotReady",
}


class NoAdapterError(CollectorError):
    """No usable Bluetooth adapter (the message is one line saying what to check)."""


def no_adapter_message(exc: BaseException) -> str | None:
    """The one-line message if ``exc``, raised while starting a scan, means no usable adapter.

    Returns ``None`` for any other error.

    Examples
    --------
    >>> no_adapter_message(FileNotFoundError(2, "No such file or directory"))
    'no Bluetooth adapter found: is BlueZ running? (the D-Bus system bus is not reachable: ...'
    """
    from bleak.exc import (
        BleakBluetoothNotAvailableError,
        BleakBluetoothNotAvailableReason,
        BleakDBusError,
        BleakError,
    )

    if isinstance(exc, BleakBluetoothNotAvailableError):
        reason = exc.reason
        if reason == BleakBluetoothNotAvailableReason.POWERED_OFF:
            return "the Bluetooth adapter is powered off: turn it on (bluetoothctl power on)"
        if reason in (
            BleakBluetoothNotAvailableReason.DENIED_BY_USER,
            BleakBluetoothNotAvailableReason.DENIED_BY_SYSTEM,
            BleakBluetoothNotAvailableReason.DENIED_BY_UNKNOWN,
        ):
            return f"access to Bluetooth was denied: {exc.args[0]}"
        return f"{NO_ADAPTER} ({exc.args[0]})"
    if isinstance(exc, BleakDBusError) and exc.dbus_error in _BLUEZ_ABSENT:
        return f"{NO_ADAPTER} (BlueZ does not answer on D-Bus: {exc.dbus_error})"
    if isinstance(exc, FileNotFoundError | ConnectionRefusedError):
        return f"{NO_ADAPTER} (the D-Bus system bus is not reachable: {exc})"
    if isinstance(exc, PermissionError):
        return f"access to Bluetooth was denied: the D-Bus system bus refused us ({exc})"
    if isinstance(exc, BleakError) and "adapter" in str(exc) and "not found" in str(exc):
        return f"{NO_ADAPTER} ({exc})"
    return None


async def start_scanner(scanner: Any) -> None:
    """``await scanner.start()``, raising :class:`NoAdapterError` where there is no adapter.

    Raises
    ------
    NoAdapterError
        If the scan cannot start for want of a usable adapter (see :func:`no_adapter_message`).
    """
    try:
        await scanner.start()
    except Exception as exc:
        message = no_adapter_message(exc)
        if message is None:
            raise
        raise NoAdapterError(message) from exc
