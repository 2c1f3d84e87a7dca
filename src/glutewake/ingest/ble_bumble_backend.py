"""A bleak backend on a bumble host over an in-process bumble link: BLE without a radio.

bumble runs a real controller model, L2CAP, ATT and GATT in Python. :class:`BumbleRadio` puts one
central (the host the collector runs on) and any number of peripherals on a
:class:`bumble.link.LocalLink`; :class:`BumbleBleakScanner` and :class:`BumbleBleakClient`
implement bleak's backend interfaces on that central. Passing them as ``backend=`` to
:class:`bleak.BleakScanner` / :class:`bleak.BleakClient` (and through ``bleak-retry-connector``)
makes the collector run the exact code it runs against hardware: discovery, MTU exchange, service
discovery, CCCD writes, control-point writes, notifications, disconnects.

This is the transport of the tests and of ``glutewake collect --simulate``.

Examples
--------
>>> import asyncio
>>> from glutewake.ingest.ble_bumble_backend import BumbleRadio
>>> async def main() -> int:
...     async with BumbleRadio() as radio:
...         return len(radio.peripherals)
>>> asyncio.run(main())
0
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from bleak.args import SizedBuffer
from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.backends.client import BaseBleakClient, NotifyCallback
from bleak.backends.descriptor import BleakGATTDescriptor
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData, AdvertisementDataCallback, BaseBleakScanner
from bleak.backends.service import BleakGATTService, BleakGATTServiceCollection
from bleak.exc import BleakDeviceNotFoundError, BleakError
from bleak.uuids import normalize_uuid_str
from bumble import hci
from bumble.controller import Controller
from bumble.core import UUID, AdvertisingData
from bumble.device import Advertisement, Connection, Device, Peer
from bumble.gatt_client import CharacteristicProxy, DescriptorProxy
from bumble.host import Host
from bumble.link import LocalLink
from bumble.transport.common import AsyncPipeSink

from glutewake.ingest.stopping import stop_step as _stop_step

log = logging.getLogger(__name__)
log.addHandler(logging.NullHandler())

_T = TypeVar("_T")
_BASE_SUFFIX = "-0000-1000-8000-00805f9b34fb"
CENTRAL_ADDRESS = "C0:00:00:00:00:01"
#: ATT MTU the central asks for (what BlueZ, CoreBluetooth and WinRT ask for, roughly)
DEFAULT_CENTRAL_MTU = 247

#: longest a single teardown step (a peripheral's stop, a disconnect) may take
STOP_STEP_S = 5.0

_current: BumbleRadio | None = None


async def stop_step(step: str, awaitable: Awaitable[Any], timeout_s: float = STOP_STEP_S) -> bool:
    """Await one teardown step; bounded (see :mod:`glutewake.ingest.stopping`), and a step
    that raises is only logged at debug level (a link already gone often makes them raise)."""
    return await _stop_step(step, awaitable, timeout_s, error_level=logging.DEBUG)


def bleak_uuid(uuid: UUID) -> str:
    """bumble UUID -> bleak's normalised lower-case 128-bit string."""
    return normalize_uuid_str(uuid.to_hex_str("-"))


def bumble_uuid(uuid: str) -> UUID:
    """UUID string -> bumble UUID, using the 16-bit form for Bluetooth SIG base UUIDs."""
    text = normalize_uuid_str(uuid)
    if text.startswith("0000") and text.endswith(_BASE_SUFFIX):
        return UUID.from_16_bits(int(text[4:8], 16))
    return UUID(text)


def current_radio() -> BumbleRadio:
    """The :class:`BumbleRadio` the bumble bleak backends use (set by ``async with radio``).

    Raises
    ------
    BleakError
        If no radio is running (the backends need one).
    """
    if _current is None:
        raise BleakError("no in-process bumble radio is running (use 'async with BumbleRadio()')")
    return _current


class BumbleRadio:
    """The in-process "air": a bumble LocalLink, the host's central device, and peripherals.

    Parameters
    ----------
    central_mtu : int
        ATT MTU the central requests on every connection.
    connect_timeout_s : float
        Longest a connection attempt may take before it is abandoned.
    """

    def __init__(
        self, *, central_mtu: int = DEFAULT_CENTRAL_MTU, connect_timeout_s: float = 5.0
    ) -> None:
        self.link = LocalLink()
        self.central_mtu = central_mtu
        self.connect_timeout_s = connect_timeout_s
        self._controller = Controller("central", link=self.link, public_address=CENTRAL_ADDRESS)
        self.central = Device(
            name="glutewake-host",
            address=hci.Address(CENTRAL_ADDRESS),
            host=Host(self._controller, AsyncPipeSink(self._controller)),
        )
        self.peripherals: list[Any] = []
        self._scan_listeners: dict[int, Callable[[Advertisement], None]] = {}
        self._scan_users = 0
        self._scan_lock = asyncio.Lock()
        self.connect_lock = asyncio.Lock()
        self._address_counter = itertools.count(2)
        self._token = itertools.count()
        self._started = False

    async def start(self) -> None:
        """Power the central on and make this the radio the backends use."""
        global _current
        if _current is not None and _current is not self:
            raise BleakError("another BumbleRadio is already running in this process")
        if not self._started:
            await self.central.power_on()
            self.central.on("advertisement", self._on_advertisement)
            self._started = True
        _current = self

    async def stop(self) -> None:
        """Stop every peripheral, disconnect everything and release the radio.

        Every step is bounded (:func:`stop_step`): a stuck one is logged and skipped.
        """
        global _current
        try:
            for peripheral in list(self.peripherals):
                name = getattr(peripheral, "name", "peripheral")
                await stop_step(f"stop {name}", peripheral.stop(), 4 * STOP_STEP_S)
            for connection in list(self.central.connections.values()):
                await stop_step(
                    f"central: disconnect {connection.peer_address}",
                    connection.disconnect(),
                    STOP_STEP_S,
                )
        finally:
            if _current is self:
                _current = None

    async def __aenter__(self) -> BumbleRadio:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def new_address(self) -> str:
        """A fresh static random address for a peripheral."""
        n = next(self._address_counter)
        return "C0:DE:00:00:{:02X}:{:02X}".format(*divmod(n, 256))

    def new_device(self, name: str, address: str) -> Device:
        """A bumble device with its own controller on this radio's link (for peripherals)."""
        controller = Controller(name, link=self.link, public_address=address)
        return Device(
            name=name,
            address=hci.Address(address),
            host=Host(controller, AsyncPipeSink(controller)),
        )

    # scanning is shared: several bleak scanners may run at once on the one central
    def add_scan_listener(self, callback: Callable[[Advertisement], None]) -> int:
        token = next(self._token)
        self._scan_listeners[token] = callback
        return token

    def remove_scan_listener(self, token: int) -> None:
        self._scan_listeners.pop(token, None)

    async def acquire_scan(self, active: bool) -> None:
        async with self._scan_lock:
            self._scan_users += 1
            if self._scan_users == 1:
                await self.central.start_scanning(active=active, filter_duplicates=False)

    async def release_scan(self) -> None:
        async with self._scan_lock:
            self._scan_users = max(0, self._scan_users - 1)
            if self._scan_users == 0 and self.central.is_scanning:
                await self.central.stop_scanning()

    def _on_advertisement(self, advertisement: Advertisement) -> None:
        for callback in list(self._scan_listeners.values()):
            callback(advertisement)

    async def connect(self, address: str, timeout_s: float) -> Connection:
        """Open an LE connection to ``address`` (one attempt at a time, like a real adapter).

        Raises
        ------
        BleakDeviceNotFoundError
            If the peer did not answer within ``timeout_s`` (not advertising, out of range).
        """
        timeout_s = min(timeout_s, self.connect_timeout_s)
        async with self.connect_lock:
            task = asyncio.ensure_future(
                self.central.connect(
                    hci.Address(address),
                    transport=hci.PhysicalTransport.LE,
                    timeout=None,
                )
            )
            try:
                return await asyncio.wait_for(task, timeout_s)
            except TimeoutError:
                # bumble's controller model ignores LE Create Connection Cancel; clear the
                # pending request by hand so the next attempt can start
                self._controller.pending_le_connection = None
                raise BleakDeviceNotFoundError(
                    address, f"no connectable advertisement from {address} in {timeout_s:.1f} s"
                ) from None


def _ad_from_bumble(advertisement: Advertisement) -> tuple[str | None, AdvertisementData]:
    data = advertisement.data
    name = data.get(AdvertisingData.COMPLETE_LOCAL_NAME) or data.get(
        AdvertisingData.SHORTENED_LOCAL_NAME
    )
    uuids: list[str] = []
    for ad_type in (
        AdvertisingData.COMPLETE_LIST_OF_16_BIT_SERVICE_CLASS_UUIDS,
        AdvertisingData.INCOMPLETE_LIST_OF_16_BIT_SERVICE_CLASS_UUIDS,
        AdvertisingData.COMPLETE_LIST_OF_128_BIT_SERVICE_CLASS_UUIDS,
        AdvertisingData.INCOMPLETE_LIST_OF_128_BIT_SERVICE_CLASS_UUIDS,
    ):
        for uuid in data.get(ad_type) or []:
            uuids.append(bleak_uuid(uuid))
    local_name = str(name) if name is not None else None
    tx_power = data.get(AdvertisingData.TX_POWER_LEVEL)
    return local_name, AdvertisementData(
        local_name=local_name,
        manufacturer_data={},
        service_data={},
        service_uuids=uuids,
        tx_power=int(tx_power) if isinstance(tx_power, int) else None,
        rssi=int(advertisement.rssi),
        platform_data=(advertisement,),
    )


class BumbleBleakScanner(BaseBleakScanner):
    """bleak scanner backend on the current :class:`BumbleRadio` (``BleakScanner(backend=...)``)."""

    def __init__(
        self,
        detection_callback: AdvertisementDataCallback | None,
        service_uuids: list[str] | None,
        scanning_mode: str = "active",
        **kwargs: Any,
    ) -> None:
        super().__init__(detection_callback, service_uuids)
        self._active = scanning_mode != "passive"
        self._token: int | None = None

    async def start(self) -> None:
        radio = current_radio()
        self.seen_devices = {}
        self._token = radio.add_scan_listener(self._on_advertisement)
        await radio.acquire_scan(self._active)

    async def stop(self) -> None:
        if self._token is None:
            return
        radio = current_radio()
        radio.remove_scan_listener(self._token)
        self._token = None
        await radio.release_scan()

    def _on_advertisement(self, advertisement: Advertisement) -> None:
        name, adv = _ad_from_bumble(advertisement)
        if not self.is_allowed_uuid(adv.service_uuids):
            return
        address = advertisement.address.to_string(False)
        device = self.create_or_update_device(address, address, name, address, adv)
        self.call_detection_callbacks(device, adv)


class BumbleBleakClient(BaseBleakClient):
    """bleak client backend on the current :class:`BumbleRadio` (``BleakClient(backend=...)``)."""

    def __init__(
        self,
        address_or_ble_device: BLEDevice | str,
        *,
        disconnected_callback: Callable[[], None] | None = None,
        timeout: float = 10.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            address_or_ble_device, disconnected_callback=disconnected_callback, timeout=timeout
        )
        self._name = (
            address_or_ble_device.name if isinstance(address_or_ble_device, BLEDevice) else None
        )
        self._connection: Connection | None = None
        self._peer: Peer | None = None
        self._disconnected: asyncio.Future[int] | None = None
        self._solicited = False
        self._subscriptions: dict[int, Callable[[bytes], None]] = {}

    @property
    def name(self) -> str:
        return self._name or self.address

    @property
    def mtu_size(self) -> int:
        if self._peer is None:
            raise BleakError("not connected")
        return int(self._peer.gatt_client.mtu)

    @property
    def is_connected(self) -> bool:
        return self._disconnected is not None and not self._disconnected.done()

    async def connect(self, pair: bool, **kwargs: Any) -> None:
        radio = current_radio()
        timeout_s = float(kwargs.get("timeout", self._timeout))
        connection = await radio.connect(self.address, timeout_s)
        loop = asyncio.get_running_loop()
        self._disconnected = loop.create_future()
        self._solicited = False
        self._connection = connection
        connection.on("disconnection", self._on_disconnection)
        self._peer = Peer(connection)
        try:
            await self._guard(self._peer.request_mtu(radio.central_mtu))
            self.services = await self._guard(self._discover())
        except BaseException:
            with contextlib.suppress(Exception):
                await self.disconnect()
            raise

    async def _discover(self) -> BleakGATTServiceCollection:
        assert self._peer is not None
        collection = BleakGATTServiceCollection()
        await self._peer.discover_services()
        for service in self._peer.services:
            await service.discover_characteristics()
            bleak_service = BleakGATTService(service, service.handle, bleak_uuid(service.uuid))
            collection.add_service(bleak_service)
            for char in service.characteristics:
                await char.discover_descriptors()
                bleak_char = BleakGATTCharacteristic(
                    char,
                    char.handle,
                    bleak_uuid(char.uuid),
                    [str(p.name).lower().replace("_", "-") for p in char.properties],  # type: ignore[misc]
                    lambda: self.mtu_size - 3,
                    bleak_service,
                )
                collection.add_characteristic(bleak_char)
                for desc in char.descriptors:
                    collection.add_descriptor(
                        BleakGATTDescriptor(desc, desc.handle, bleak_uuid(desc.type), bleak_char)
                    )
        return collection

    def _on_disconnection(self, reason: int) -> None:
        if self._disconnected is not None and not self._disconnected.done():
            self._disconnected.set_result(reason)
        self._subscriptions.clear()
        log.debug("%s: disconnected (reason 0x%02X)", self.address, reason)
        if not self._solicited and self._disconnected_callback is not None:
            self._disconnected_callback()

    async def _guard(self, awaitable: Awaitable[_T]) -> _T:
        """Await a GATT operation, failing fast with BleakError if the link drops meanwhile."""
        if self._disconnected is None or self._disconnected.done():
            if asyncio.iscoroutine(awaitable):
                awaitable.close()
            raise BleakError(f"{self.address}: not connected")
        operation = asyncio.ensure_future(awaitable)
        both: set[asyncio.Future[Any]] = {operation, self._disconnected}
        done, _ = await asyncio.wait(both, return_when=asyncio.FIRST_COMPLETED)
        if operation in done:
            return operation.result()
        operation.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await operation
        raise BleakError(f"{self.address}: Disconnected during a GATT operation")

    async def disconnect(self) -> None:
        if self._connection is None or self._disconnected is None or self._disconnected.done():
            return
        self._solicited = True
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._connection.disconnect(), 2.0)
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(asyncio.shield(self._disconnected), 2.0)

    async def pair(self, *args: Any, **kwargs: Any) -> None:
        raise NotImplementedError("pairing is not modelled by the in-process bumble backend")

    async def unpair(self) -> None:
        raise NotImplementedError("pairing is not modelled by the in-process bumble backend")

    async def read_gatt_char(
        self, characteristic: BleakGATTCharacteristic, *, use_cached: bool = False, **kwargs: Any
    ) -> bytearray:
        proxy: CharacteristicProxy[bytes] = characteristic.obj
        return bytearray(await self._guard(proxy.read_value()))

    async def read_gatt_descriptor(
        self, descriptor: BleakGATTDescriptor, *, use_cached: bool = False, **kwargs: Any
    ) -> bytearray:
        proxy: DescriptorProxy = descriptor.obj
        return bytearray(await self._guard(proxy.read_value()))

    async def write_gatt_char(
        self, characteristic: BleakGATTCharacteristic, data: SizedBuffer, response: bool
    ) -> None:
        proxy: CharacteristicProxy[bytes] = characteristic.obj
        await self._guard(proxy.write_value(bytes(data), with_response=response))

    async def write_gatt_descriptor(
        self, descriptor: BleakGATTDescriptor, data: SizedBuffer
    ) -> None:
        proxy: DescriptorProxy = descriptor.obj
        await self._guard(proxy.write_value(bytes(data), with_response=True))

    async def start_notify(
        self, characteristic: BleakGATTCharacteristic, callback: NotifyCallback, **kwargs: Any
    ) -> None:
        if characteristic.handle in self._subscriptions:
            raise BleakError(f"notifications already started on {characteristic.uuid}")
        proxy: CharacteristicProxy[bytes] = characteristic.obj

        def on_value(value: bytes) -> None:
            callback(bytearray(value))

        self._subscriptions[characteristic.handle] = on_value
        try:
            await self._guard(proxy.subscribe(on_value, prefer_notify=True))
        except BaseException:
            self._subscriptions.pop(characteristic.handle, None)
            raise

    async def stop_notify(self, characteristic: BleakGATTCharacteristic) -> None:
        on_value = self._subscriptions.pop(characteristic.handle, None)
        if on_value is None:
            return
        proxy: CharacteristicProxy[bytes] = characteristic.obj
        await self._guard(proxy.unsubscribe(on_value))


def utc_now_us() -> int:
    """Host wall clock, UTC microseconds since the Unix epoch."""
    return time.time_ns() // 1000
