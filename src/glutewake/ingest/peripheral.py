"""A bumble GATT server that serves any device profile from a :class:`VirtualDevice`, with faults.

The peripheral serves the GATT table and advertisement the device model states itself
(:meth:`VirtualDevice.gatt_layout`, taken from the vendor's sources, never from the decoder
module), so a profile whose UUIDs differ from the vendor's finds nothing, exactly as with the
real wearable; models without a layout of their own (test toys) get one derived from the
profile. A Battery Service and a Device Information Service are added where the model has none,
and the peripheral pumps the virtual device's notifications onto the link. Every byte goes
through bumble's real ATT/GATT, so a notification longer than the negotiated MTU is cut exactly
as a real stack cuts it.

Faults (see :func:`parse_faults`) reproduce what background collection meets in the field: link
loss, out-of-range periods, dropped, duplicated and reordered notifications, a device that stops
its stream on its own, and a peer that only supports a small MTU.

The peripheral keeps a ground-truth log (:attr:`VirtualPeripheral.sent`) of every data
notification it put on the link while a subscriber was connected, so tests can check that the
spool holds each exactly once. ``keep_log=False`` keeps only the counts (``sent_count``,
``dropped_count``): ``collect --simulate`` runs for hours and its memory must stay flat.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bumble import data_types, gatt
from bumble.core import AdvertisingData
from bumble.device import Connection, Device

from glutewake.devices.base import (
    DeviceProfile,
    GattLayout,
    GattService,
    VirtualDevice,
    characteristic,
)
from glutewake.ingest.ble_bumble_backend import (
    STOP_STEP_S,
    BumbleRadio,
    bumble_uuid,
    stop_step,
    utc_now_us,
)

log = logging.getLogger(__name__)
log.addHandler(logging.NullHandler())

BATTERY_SERVICE_UUID = "0000180f-0000-1000-8000-00805f9b34fb"
BATTERY_LEVEL_UUID = "00002a19-0000-1000-8000-00805f9b34fb"
DEVICE_INFO_SERVICE_UUID = "0000180a-0000-1000-8000-00805f9b34fb"
#: Device Information characteristics (Bluetooth SIG assigned numbers): manufacturer name,
#: model number, serial number, firmware revision, software revision
DEVICE_INFO_UUIDS: dict[str, str] = {
    "manufacturer": "00002a29-0000-1000-8000-00805f9b34fb",
    "model": "00002a24-0000-1000-8000-00805f9b34fb",
    "serial": "00002a25-0000-1000-8000-00805f9b34fb",
    "firmware": "00002a26-0000-1000-8000-00805f9b34fb",
    "software": "00002a28-0000-1000-8000-00805f9b34fb",
}
#: battery level of a virtual device at start when nothing else says, in %
DEFAULT_BATTERY_PCT = 87
#: how fast a virtual device's battery drains by default: 6 %/h, a day-long wearable
BATTERY_DRAIN_PCT_PER_MIN = 0.1
#: HCI reason codes used for link loss (supervision timeout) and device-side termination
REASON_CONNECTION_TIMEOUT = 0x08
REASON_REMOTE_USER_TERMINATED = 0x13
_STANDARD_UUIDS = {BATTERY_LEVEL_UUID, *DEVICE_INFO_UUIDS.values()}


class FaultSpecError(ValueError):
    """A ``--faults`` specification that cannot be parsed (names the bad item)."""


@dataclass(frozen=True)
class FaultPlan:
    """What goes wrong, and when (times in seconds after the peripheral starts).

    Attributes
    ----------
    link_losses : tuple of (at_s, unreachable_s)
        The link drops at ``at_s``; the device then stays unreachable (no advertising, as when
        out of range) for ``unreachable_s`` seconds (0: reconnectable at once).
    stops : tuple of float
        The device stops its streams on its own at these times (link stays up).
    drop_p, dup_p, reorder_p : float
        Per data notification: probability it is lost, sent twice, or swapped with the next.
    max_mtu : int or None
        Largest ATT MTU the device accepts (23 is the BLE minimum).
    seed : int
        Seed of the random faults.
    battery_pct : int or None
        Battery level at start (None: the peripheral's default).
    battery_drain_pct_per_min : float or None
        How fast the battery level falls (None: the peripheral's default).
    """

    link_losses: tuple[tuple[float, float], ...] = ()
    stops: tuple[float, ...] = ()
    drop_p: float = 0.0
    dup_p: float = 0.0
    reorder_p: float = 0.0
    max_mtu: int | None = None
    seed: int = 0
    battery_pct: int | None = None
    battery_drain_pct_per_min: float | None = None


_TIME = re.compile(r"^([0-9]*\.?[0-9]+)(ms|s|min)?$")


def _seconds(text: str, item: str) -> float:
    match = _TIME.match(text.strip())
    if not match:
        raise FaultSpecError(f"fault {item!r}: {text!r} is not a time (e.g. 20s, 500ms, 2min)")
    value = float(match.group(1))
    return value * {"ms": 1e-3, "s": 1.0, "min": 60.0, None: 1.0}[match.group(2)]


def _probability(text: str, item: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise FaultSpecError(f"fault {item!r}: {text!r} is not a probability") from None
    if not 0.0 <= value < 1.0:
        raise FaultSpecError(f"fault {item!r}: probability must be in [0, 1), got {value}")
    return value


def parse_faults(spec: str | None) -> FaultPlan:
    """Parse a ``--faults`` specification.

    Comma-separated items:

    ``linkloss@T`` or ``linkloss@T:D``
        link lost at time T; with D the device is then unreachable for D (out of range).
    ``range@T:D``
        out of range from T for D (same as ``linkloss@T:D``).
    ``stop@T``
        the device stops its stream on its own at T.
    ``drop=P``, ``dup=P``, ``reorder=P``
        per-notification probability of loss, duplication, reordering.
    ``mtu=N``
        the device supports at most ATT MTU N.
    ``seed=N``
        seed of the random faults.
    ``battery=N``, ``drain=R``
        battery level N % at start, falling R % per minute (a fast-draining battery).

    Times take ``ms``, ``s`` (default) or ``min``.

    Examples
    --------
    >>> plan = parse_faults("linkloss@20s:5s,drop=0.01,stop@40s,mtu=23")
    >>> plan.link_losses, plan.stops, plan.drop_p, plan.max_mtu
    (((20.0, 5.0),), (40.0,), 0.01, 23)
    >>> plan = parse_faults("battery=60,drain=2.5")
    >>> plan.battery_pct, plan.battery_drain_pct_per_min
    (60, 2.5)

    Raises
    ------
    FaultSpecError
        If an item is unknown or malformed.
    """
    if not spec:
        return FaultPlan()
    losses: list[tuple[float, float]] = []
    stops: list[float] = []
    values: dict[str, Any] = {}
    for raw in spec.split(","):
        item = raw.strip()
        if not item:
            continue
        if "@" in item:
            kind, _, when = item.partition("@")
            at_text, _, dur_text = when.partition(":")
            at_s = _seconds(at_text, item)
            if kind in ("linkloss", "range"):
                if kind == "range" and not dur_text:
                    raise FaultSpecError(f"fault {item!r}: range needs a duration (range@T:D)")
                losses.append((at_s, _seconds(dur_text, item) if dur_text else 0.0))
            elif kind == "stop" and not dur_text:
                stops.append(at_s)
            else:
                raise FaultSpecError(f"unknown timed fault {item!r} (linkloss@, range@, stop@)")
        elif "=" in item:
            key, _, value = item.partition("=")
            key = key.strip()
            if key in ("drop", "dup", "reorder"):
                values[f"{key}_p"] = _probability(value, item)
            elif key in ("mtu", "seed"):
                try:
                    number = int(value)
                except ValueError:
                    raise FaultSpecError(f"fault {item!r}: {value!r} is not an integer") from None
                if key == "mtu" and not 23 <= number <= 517:
                    raise FaultSpecError(f"fault {item!r}: ATT MTU must be in 23..517")
                values["max_mtu" if key == "mtu" else "seed"] = number
            elif key == "battery":
                try:
                    level = int(value)
                except ValueError:
                    raise FaultSpecError(f"fault {item!r}: {value!r} is not an integer") from None
                if not 0 <= level <= 100:
                    raise FaultSpecError(f"fault {item!r}: battery level must be in 0..100 %")
                values["battery_pct"] = level
            elif key == "drain":
                try:
                    rate = float(value)
                except ValueError:
                    raise FaultSpecError(f"fault {item!r}: {value!r} is not a number") from None
                if not 0.0 <= rate <= 100.0 or not math.isfinite(rate):
                    raise FaultSpecError(f"fault {item!r}: drain must be 0..100 % per minute")
                values["battery_drain_pct_per_min"] = rate
            else:
                raise FaultSpecError(
                    f"unknown fault {item!r} (drop=, dup=, reorder=, mtu=, seed=, battery=, drain=)"
                )
        else:
            raise FaultSpecError(f"unknown fault {item!r}")
    return FaultPlan(link_losses=tuple(sorted(losses)), stops=tuple(sorted(stops)), **values)


@dataclass(frozen=True)
class SentNotification:
    """One notification the peripheral put on the link (ground truth for tests)."""

    t_us: int
    connection: int  #: 1-based count of connections the peripheral has had
    char_uuid: str
    payload: bytes
    duplicate: bool = False  #: a deliberate second copy (fault ``dup``)


@dataclass
class _Link:
    connection: Connection
    index: int
    subscribed: set[str] = field(default_factory=set)


class VirtualPeripheral:
    """A bumble peripheral on a :class:`BumbleRadio` serving ``profile`` from ``device``.

    Parameters
    ----------
    radio : BumbleRadio
        The in-process link the peripheral joins.
    profile : DeviceProfile
        Used only where the device model states no GATT layout of its own: then its services,
        notify characteristics, the characteristics its start/stop writes go to and its name
        prefix make the layout.
    device : VirtualDevice
        The byte-level model that answers writes and reads, produces notifications and (through
        :meth:`VirtualDevice.gatt_layout`) says what it serves and advertises.
    config : dict
        The stream configuration the collector will use (to find the write characteristics).
    name, address : str, optional
        Advertised name (default: the profile's first name prefix + address suffix) and
        static address (default: a fresh one from the radio).
    faults : FaultPlan
        What goes wrong, and when.
    tick_s : float
        How often the device model is polled for due notifications.
    clock : callable
        UTC microseconds "now" given to the device model.
    device_info : dict, optional
        Device Information Service strings (``manufacturer``, ``model``, ``serial``,
        ``firmware``; ``software`` only when given), used where the device model has no Device
        Information Service of its own.
    battery_pct : int, optional
        Battery level at start, in %. Default: ``faults.battery_pct``, else the device model's
        ``battery_percent``, else 87.
    battery_drain_pct_per_min : float, optional
        How fast the level falls, in % per minute (default: ``faults.battery_drain_pct_per_min``,
        else :data:`BATTERY_DRAIN_PCT_PER_MIN`). The Battery Level characteristic (read and
        notify) serves the current level; each change is notified to a subscribed central and
        logged in :attr:`VirtualPeripheral.battery_log`.
    read_uuids : tuple of str
        Further readable characteristics of the profile's service (beyond the profile's own
        ``read_uuids`` attribute, if any), served from ``device.read_value``.
    """

    def __init__(
        self,
        radio: BumbleRadio,
        profile: DeviceProfile,
        device: VirtualDevice,
        *,
        config: dict[str, Any] | None = None,
        name: str | None = None,
        address: str | None = None,
        faults: FaultPlan | None = None,
        tick_s: float = 0.01,
        clock: Callable[[], int] = utc_now_us,
        device_info: dict[str, str] | None = None,
        battery_pct: int | None = None,
        battery_drain_pct_per_min: float | None = None,
        read_uuids: tuple[str, ...] = (),
        keep_log: bool = True,
    ) -> None:
        self.radio = radio
        self.profile = profile
        self.device = device
        self.config = dict(config or {})
        self.address = address or radio.new_address()
        self.faults = faults or FaultPlan()
        self.tick_s = tick_s
        self.clock = clock
        self.device_info = {
            "manufacturer": "glutewake virtual devices",
            "model": profile.name,
            "serial": self.address.replace(":", ""),
            "firmware": "sim-1",
            **(device_info or {}),
        }
        start_pct = battery_pct if battery_pct is not None else self.faults.battery_pct
        if start_pct is None:
            start_pct = int(getattr(device, "battery_percent", DEFAULT_BATTERY_PCT))
        if not 0 <= start_pct <= 100:
            raise ValueError(f"battery_pct must be in 0..100 %, got {start_pct}")
        drain = battery_drain_pct_per_min
        if drain is None:
            drain = self.faults.battery_drain_pct_per_min
        if drain is None:
            drain = BATTERY_DRAIN_PCT_PER_MIN
        if drain < 0:
            raise ValueError(f"battery_drain_pct_per_min must be >= 0, got {drain}")
        self.battery_start_pct = int(start_pct)
        self.battery_drain_pct_per_min = float(drain)
        #: (utc t_us, level %) at start and at every change of the served battery level
        self.battery_log: list[tuple[int, int]] = []
        self.extra_read_uuids = tuple(u.lower() for u in read_uuids)
        self.layout = device.gatt_layout() or self._profile_layout()
        self.name = name or self.layout.advertised_name
        self.keep_log = keep_log
        self.sent: list[SentNotification] = []
        self.dropped: list[SentNotification] = []
        self.sent_count = 0
        self.dropped_count = 0
        #: (utc t_us, event, detail) for 'connect', 'disconnect', 'unreachable', 'reachable', 'stop'
        self.events: list[tuple[int, str, str]] = []
        self.connection_count = 0
        self._rng = random.Random(self.faults.seed)
        self._bumble: Device = radio.new_device(self.name, self.address)
        self._chars: dict[str, gatt.Characteristic[Any]] = {}
        self._link: _Link | None = None
        self._held: tuple[str, bytes] | None = None
        self._unreachable_until = 0.0
        self._started_mono = 0.0
        self._task: asyncio.Task[None] | None = None
        #: the pump and sender loops run while this is set; stop() clears it and lets them end
        self._running = False
        #: notifications for the sender; None wakes it to see a stop
        self._out: asyncio.Queue[tuple[str, bytes, bool] | None] = asyncio.Queue()
        self._sender: asyncio.Task[None] | None = None
        self._build_gatt()

    # ---------------------------------------------------------------- GATT layout
    def _profile_layout(self) -> GattLayout:
        """A layout derived from the profile, for device models that state none (test toys)."""
        notify = [u.lower() for u in self.profile.notify_uuids]
        writes = self._write_uuids()
        reads = self._read_uuids()
        own: list[str] = []
        for uuid in [*notify, *writes, *reads]:
            if uuid not in own and uuid not in _STANDARD_UUIDS:
                own.append(uuid)
        chars = []
        for uuid in own:
            props = ["notify"] if uuid in notify else []
            if uuid in writes:
                props += ["write", "write-without-response", "read"]
            elif uuid in reads:
                props.append("read")
            chars.append(characteristic(uuid, *props))
        service = self.profile.service_uuids[0]
        prefix = self.profile.name_prefixes[0] if self.profile.name_prefixes else self.profile.name
        return GattLayout(
            (GattService(service, tuple(chars)),),
            f"{prefix} {self.address.replace(':', '')[-4:]}",
            (service,),
        )

    def _write_uuids(self) -> list[str]:
        uuids: list[str] = []
        for method in (self.profile.start_writes, self.profile.stop_writes):
            try:
                writes = method(self.config)
            except Exception as exc:  # a profile that needs a config we do not have
                log.debug("%s: %s(config) failed: %s", self.profile.name, method.__name__, exc)
                continue
            for write in writes:
                if write.char_uuid.lower() not in uuids:
                    uuids.append(write.char_uuid.lower())
        uuids.extend(u.lower() for u in getattr(self.profile, "write_uuids", ()) if u not in uuids)
        return uuids

    def _read_uuids(self) -> list[str]:
        own = [u.lower() for u in getattr(self.profile, "read_uuids", ())]
        return own + [u for u in self.extra_read_uuids if u not in own]

    @property
    def battery_pct(self) -> int:
        """The battery level served now, in % (falls from the start level once started)."""
        if not self._started_mono:
            return self.battery_start_pct
        used = self.battery_drain_pct_per_min * (time.monotonic() - self._started_mono) / 60.0
        # ceil: the start level holds until a whole percent is used, like a fuel gauge
        return max(0, min(100, math.ceil(self.battery_start_pct - used - 1e-9)))

    def _update_battery(self) -> None:
        level = self.battery_pct
        if self.battery_log and self.battery_log[-1][1] == level:
            return
        self.battery_log.append((self.clock(), level))
        if hasattr(self.device, "battery_percent"):  # keep the device model's own reads in step
            self.device.battery_percent = level
        if self._link is not None:
            self._out.put_nowait((BATTERY_LEVEL_UUID, bytes([level]), False))

    def _read(self, uuid: str) -> bytes:
        if uuid == BATTERY_LEVEL_UUID:
            self._update_battery()
            return bytes([self.battery_pct])
        try:
            return bytes(self.device.read_value(uuid))
        except Exception:
            for key, info_uuid in DEVICE_INFO_UUIDS.items():
                if uuid == info_uuid:
                    return self.device_info.get(key, "").encode()
            return b""

    def _build_gatt(self) -> None:
        props = gatt.Characteristic.Properties
        perms = gatt.Characteristic.Permissions
        flag_of = {
            "read": props.READ,
            "write": props.WRITE,
            "write-without-response": props.WRITE_WITHOUT_RESPONSE,
            "notify": props.NOTIFY,
            # served as notify too: bleak subscribes to either, and bumble's server sends this
            # peripheral's control responses with notify_subscribers
            "indicate": props.NOTIFY | props.INDICATE,
        }
        services = []
        for svc in self.layout.services:
            characteristics: list[gatt.Characteristic[Any]] = []
            for ch in svc.characteristics:
                flags = props(0)
                for p in ch.properties:
                    flags |= flag_of[p]
                permissions = perms(0)
                if "read" in ch.properties:
                    permissions |= perms.READABLE
                if ch.properties & {"write", "write-without-response"}:
                    permissions |= perms.WRITEABLE
                characteristics.append(
                    self._characteristic(ch.uuid, flags, permissions or perms.READABLE)
                )
            services.append(gatt.Service(bumble_uuid(svc.uuid), characteristics))
        served = {svc.uuid for svc in self.layout.services}
        if BATTERY_LEVEL_UUID not in self._chars:
            battery = self._characteristic(
                BATTERY_LEVEL_UUID, props.READ | props.NOTIFY, perms.READABLE
            )
            services.append(gatt.Service(bumble_uuid(BATTERY_SERVICE_UUID), [battery]))
        if DEVICE_INFO_SERVICE_UUID not in served:
            info = [
                self._characteristic(DEVICE_INFO_UUIDS[k], props.READ, perms.READABLE)
                for k in self.device_info
                if k in DEVICE_INFO_UUIDS
            ]
            services.append(gatt.Service(bumble_uuid(DEVICE_INFO_SERVICE_UUID), info))
        self._bumble.add_services(services)
        if self.faults.max_mtu is not None:
            self._bumble.gatt_server.max_mtu = self.faults.max_mtu

    def _characteristic(
        self, uuid: str, flags: gatt.Characteristic.Properties, perms: gatt.Attribute.Permissions
    ) -> gatt.Characteristic[Any]:
        def read(_connection: Connection) -> bytes:
            return self._read(uuid)

        def write(_connection: Connection, value: bytes) -> None:
            self._on_write(uuid, bytes(value))

        char: gatt.Characteristic[Any] = gatt.Characteristic(
            bumble_uuid(uuid), flags, perms, gatt.CharacteristicValue(read=read, write=write)
        )
        self._chars[uuid] = char
        return char

    # ---------------------------------------------------------------- life cycle
    @property
    def connected(self) -> bool:
        return self._link is not None

    async def start(self) -> None:
        """Power on, advertise, and start pumping the device's notifications."""
        await self._bumble.power_on()
        self._bumble.on("connection", self._on_connection)
        self._started_mono = time.monotonic()
        self._update_battery()
        await self._advertise()
        self.radio.peripherals.append(self)
        self._running = True
        self._sender = asyncio.create_task(self._send_loop(), name=f"{self.name}-send")
        self._task = asyncio.create_task(self._pump(), name=f"{self.name}-pump")

    async def stop(self) -> None:
        """Stop pumping, drop the link and leave the radio (each step bounded in time).

        The pump and sender loops are asked to end and allowed to finish the step they are in,
        rather than cancelled: cancelling a task inside a bumble HCI command both desynchronises
        the host's command flow and, on Python 3.11, can be swallowed outright (bumble awaits
        each command with ``asyncio.wait_for``, which returns the result instead of raising if
        the response arrived just before the cancel), leaving a ``while True`` loop running
        and ``await task`` waiting forever.
        """
        self._running = False
        self._out.put_nowait(None)  # the sender may be waiting for the next notification
        for task in (self._task, self._sender):
            if task is None:
                continue
            done, _ = await asyncio.wait({task}, timeout=STOP_STEP_S)
            if not done:
                log.warning(
                    "%s: %s did not end within %.1f s; cancelling it",
                    self.name,
                    task.get_name(),
                    STOP_STEP_S,
                )
                task.cancel()
                await asyncio.wait({task}, timeout=STOP_STEP_S)
            if task.done() and not task.cancelled() and task.exception() is not None:
                log.warning("%s: %s failed: %r", self.name, task.get_name(), task.exception())
        self._task = self._sender = None
        if self._link is not None:
            await stop_step(
                f"{self.name}: disconnect",
                self._link.connection.disconnect(REASON_REMOTE_USER_TERMINATED),
                STOP_STEP_S,
            )
        await stop_step(
            f"{self.name}: stop advertising", self._bumble.stop_advertising(), STOP_STEP_S
        )
        if self in self.radio.peripherals:
            self.radio.peripherals.remove(self)

    async def _advertise(self) -> None:
        if self._bumble.is_advertising:
            return
        uuids = [bumble_uuid(u) for u in self.layout.advertised_services]
        short = [u for u in uuids if len(u.to_bytes()) == 2]
        services: list[Any] = []
        if short:
            services.append(data_types.CompleteListOf16BitServiceUUIDs(short))
        if len(short) < len(uuids):
            long = [u for u in uuids if len(u.to_bytes()) != 2]
            services.append(data_types.CompleteListOf128BitServiceUUIDs(long))
        name = data_types.CompleteLocalName(self.name)
        adv = AdvertisingData([name, *services])
        scan = AdvertisingData([])
        if len(bytes(adv)) > 31:  # legacy advertising limit: the UUIDs go to the scan response
            adv, scan = AdvertisingData([name]), AdvertisingData(services)
        await self._bumble.start_advertising(
            advertising_data=bytes(adv),
            scan_response_data=bytes(scan),
            advertising_interval_min=20,
            advertising_interval_max=20,
        )

    def _on_connection(self, connection: Connection) -> None:
        self.connection_count += 1
        self._link = _Link(connection, self.connection_count)
        self.events.append((self.clock(), "connect", connection.peer_address.to_string(False)))
        connection.on("connection_att_mtu_update", lambda: self._on_mtu(connection))
        self._on_mtu(connection)
        connection.on("disconnection", lambda reason: self._on_disconnection(connection, reason))

    def _on_mtu(self, connection: Connection) -> None:
        # device models that size their frames to the link (e.g. Polar) need the negotiated MTU
        if hasattr(self.device, "att_mtu"):
            self.device.att_mtu = int(connection.att_mtu)

    def _on_disconnection(self, connection: Connection, reason: int) -> None:
        if self._link is None or self._link.connection is not connection:
            return
        now_us = self.clock()
        self._link = None
        self._held = None
        while not self._out.empty():  # what was queued for the old link never reaches the air
            self._out.get_nowait()
        if not self._running:
            self._out.put_nowait(None)  # a stop's wake-up must survive the purge
        self.device.link_lost(now_us)
        self.events.append((now_us, "disconnect", f"0x{reason:02X}"))

    # ---------------------------------------------------------------- data path
    def _on_write(self, uuid: str, data: bytes) -> None:
        for char_uuid, payload in self.device.handle_write(uuid, data, self.clock()):
            self._out.put_nowait((char_uuid.lower(), payload, False))

    async def _send_loop(self) -> None:
        while self._running:
            item = await self._out.get()
            if item is None:
                continue
            uuid, payload, is_data = item
            await self._transmit(uuid, payload, is_data)

    async def _transmit(self, uuid: str, payload: bytes, is_data: bool) -> None:
        link = self._link
        char = self._chars.get(uuid)
        if link is None or char is None:
            return
        if not is_data:
            await self._bumble.notify_subscribers(char, payload)
            return
        if self._rng.random() < self.faults.drop_p:
            self.dropped_count += 1
            if self.keep_log:
                self.dropped.append(SentNotification(self.clock(), link.index, uuid, payload))
            return
        if self._held is None and self._rng.random() < self.faults.reorder_p:
            self._held = (uuid, payload)
            return
        await self._notify_data(link, char, uuid, payload)
        if self._rng.random() < self.faults.dup_p:
            await self._notify_data(link, char, uuid, payload, duplicate=True)
        if self._held is not None:
            held_uuid, held_payload = self._held
            self._held = None
            await self._notify_data(link, self._chars[held_uuid], held_uuid, held_payload)

    async def _notify_data(
        self,
        link: _Link,
        char: gatt.Characteristic[Any],
        uuid: str,
        payload: bytes,
        duplicate: bool = False,
    ) -> None:
        subscribers = self._bumble.gatt_server.subscribers.get(link.connection, {})
        cccd = subscribers.get(char.handle) if isinstance(subscribers, dict) else None
        if not cccd or not cccd[0] & 0x01:
            return
        await self._bumble.notify_subscribers(char, payload)
        self.sent_count += 1
        if self.keep_log:
            self.sent.append(SentNotification(self.clock(), link.index, uuid, payload, duplicate))

    async def _pump(self) -> None:
        losses = list(self.faults.link_losses)
        stops = list(self.faults.stops)
        # data: notifications the model polls out on characteristics that take no writes (a
        # control point's or command characteristic's responses come from handle_write)
        notifying = [
            (ch.uuid, ch.properties)
            for svc in self.layout.services
            for ch in svc.characteristics
            if ch.properties & {"notify", "indicate"}
        ]
        data_uuids = {u for u, p in notifying if not p & {"write", "write-without-response"}}
        if not data_uuids:
            data_uuids = {u for u, _ in notifying}
        while self._running:
            elapsed = time.monotonic() - self._started_mono
            now_us = self.clock()
            while losses and losses[0][0] <= elapsed:
                _, unreachable_s = losses.pop(0)
                await self._lose_link(unreachable_s)
            while stops and stops[0] <= elapsed:
                stops.pop(0)
                self._device_stop(now_us)
            if (
                self._link is None
                and self._unreachable_until
                and time.monotonic() >= self._unreachable_until
            ):
                self._unreachable_until = 0.0
                self.events.append((now_us, "reachable", ""))
            if self._link is None and not self._unreachable_until:
                await self._advertise()
            self._update_battery()
            for uuid, payload in self.device.poll(now_us):
                uuid = uuid.lower()
                self._out.put_nowait((uuid, payload, uuid in data_uuids))
            await asyncio.sleep(self.tick_s)

    async def _lose_link(self, unreachable_s: float) -> None:
        now_us = self.clock()
        if unreachable_s > 0:
            self._unreachable_until = time.monotonic() + unreachable_s
            self.events.append((now_us, "unreachable", f"{unreachable_s:g}s"))
            with contextlib.suppress(Exception):
                await self._bumble.stop_advertising()
        if self._link is not None:
            with contextlib.suppress(Exception):
                await self._link.connection.disconnect(REASON_CONNECTION_TIMEOUT)

    def _device_stop(self, now_us: int) -> None:
        """The device stops streaming on its own (e.g. a Polar "measurement stopped")."""
        self.events.append((now_us, "stop", ""))
        stop = getattr(self.device, "stop_by_device", None) or getattr(
            self.device, "device_stop", None
        )
        if callable(stop):
            for uuid, payload in stop(now_us) or []:
                self._out.put_nowait((uuid.lower(), payload, False))
        else:
            self.device.link_lost(now_us)
