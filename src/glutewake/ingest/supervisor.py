"""One device, kept connected and streaming: the supervisor of background collection.

The supervisor scans, connects through ``bleak-retry-connector``, checks the negotiated ATT MTU
against ``profile.required_mtu(config)``, reads battery and device information, subscribes to the
profile's notify characteristics, writes the start commands, and then watches: a disconnect leads
to a reconnect with exponential backoff (forever), a silent stream (watchdog) first gets its start
commands again (the device may have stopped on its own) and then a fresh connection. On stop it
sends the stop commands and disconnects. Every WRITE, READ, CONNECT and DISCONNECT is spooled
with the notifications.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import random
import struct
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from glutewake.devices import DeviceProfile
from glutewake.devices.base import RecordKind
from glutewake.ingest.adapter import NoAdapterError, start_scanner
from glutewake.ingest.spool_thread import CollectorError, LiveQc, SpoolWriterThread, catch_up
from glutewake.store.datadir import DataDir
from glutewake.store.ids import device_component, participant_component
from glutewake.store.spool import SpoolInfo, SpoolWriter

log = logging.getLogger(__name__)
log.addHandler(logging.NullHandler())

BATTERY_LEVEL_UUID = "00002a19-0000-1000-8000-00805f9b34fb"
#: Device Information characteristics read (and spooled) at every connection, where served:
#: decoders learn the firmware from them (an OpenBCI Ganglion's Software Revision String says
#: whether it sends firmware-2 deltas or firmware-3 absolute values)
DEVICE_INFO_UUIDS: dict[str, str] = {
    "manufacturer": "00002a29-0000-1000-8000-00805f9b34fb",
    "model": "00002a24-0000-1000-8000-00805f9b34fb",
    "serial": "00002a25-0000-1000-8000-00805f9b34fb",
    "firmware": "00002a26-0000-1000-8000-00805f9b34fb",  # Firmware Revision String
    "software": "00002a28-0000-1000-8000-00805f9b34fb",  # Software Revision String
}
#: stream configuration used when none is given (and for ``--simulate``)
DEFAULT_CONFIGS: dict[str, dict[str, Any]] = {
    "polar-pmd": {"acc": {"sample_rate_hz": 52, "range_g": 8, "resolution_bits": 16}},
    "glutewake-open": {"emg": {"fs_hz": 1000, "channels": ["glute_max_r", "biceps_femoris_r"]}},
    "ganglion": {"emg": {"channels": ["glute_max_r", "glute_max_l", "ch3", "ch4"]}},
    "movesense": {"acc": {"sample_rate_hz": 52}},
    "metawear": {"acc": {"sample_rate_hz": 100, "range_g": 16, "chip": "bmi160", "packed": True}},
}


class MtuTooSmallError(CollectorError):
    """The negotiated ATT MTU would cut the configured stream's notifications."""


class ProfileNotFoundError(CollectorError):
    """No registered profile recognises a device (pass ``profile=``)."""


class ConfigRejectedError(CollectorError):
    """The device profile rejects the stream configuration."""


@dataclass(frozen=True)
class CollectorSettings:
    """Timing of the supervisor (defaults suit real devices; tests shorten them).

    Attributes
    ----------
    watchdog_s : float
        No notification for this long = the stream is stalled.
    stream_restarts : int
        Times the start commands are re-sent on a stalled but connected link before the
        supervisor drops the link and reconnects.
    backoff_min_s, backoff_max_s, backoff_factor, backoff_jitter : float
        Reconnect delay: ``min * factor**k`` capped at ``max``, plus up to ``jitter`` (fraction).
        Reset after a connection that carried data.
    scan_timeout_s : float
        How long one scan looks for the device before the next backoff.
    connect_attempts : int
        ``max_attempts`` given to ``bleak_retry_connector.establish_connection``.
    gatt_timeout_s : float
        Longest a single read or write may take.
    battery_interval_s : float
        How often battery level is re-read during a connection.
    status_interval_s : float
        How often the status JSON files are written.
    qc_interval_s : float
        How often the newly received data is decoded for the live packet-loss count.
    mtu_failures : int
        Consecutive connections with a too-small MTU after which the device is given up.
    journal_fsync_s : float
        Spool loss bound after a hard kill (see :class:`SpoolWriter`).
    segment_s : float or None
        Parquet segment rotation; ``None``: the :class:`SpoolWriter` default. ``process`` sees
        collected data once its segment is written, so shorter segments mean fresher results.
    """

    watchdog_s: float = 5.0
    stream_restarts: int = 1
    backoff_min_s: float = 0.5
    backoff_max_s: float = 30.0
    backoff_factor: float = 2.0
    backoff_jitter: float = 0.1
    scan_timeout_s: float = 10.0
    connect_attempts: int = 3
    gatt_timeout_s: float = 10.0
    battery_interval_s: float = 300.0
    status_interval_s: float = 2.0
    qc_interval_s: float = 5.0
    mtu_failures: int = 3
    journal_fsync_s: float = 1.0
    segment_s: float | None = None


@dataclass
class DeviceSpec:
    """One device to collect from: an address or advertised name, and optionally its profile."""

    target: str
    profile: DeviceProfile | None = None
    config: dict[str, Any] | None = None


@dataclass
class Backends:
    """bleak backends (``None``: bleak's platform backend)."""

    scanner: Any = None
    client: Any = None

    def scanner_kwargs(self) -> dict[str, Any]:
        return {} if self.scanner is None else {"backend": self.scanner}

    def client_kwargs(self) -> dict[str, Any]:
        return {} if self.client is None else {"backend": self.client}


STATUS_DIRNAME = "status"


def status_path(data_dir: DataDir, participant_id: str, device_id: str) -> Path:
    """Where the collector writes one device's status JSON.

    A participant id holds no ``.``, so the first ``.`` ends it: no two (participant, device)
    pairs share a file.
    """
    name = f"{participant_component(participant_id)}.{device_component(device_id)}.json"
    return data_dir.root / STATUS_DIRNAME / name


def _previous_status(path: Path) -> dict[str, Any] | None:
    """The status file an earlier run left (None if none or unreadable)."""
    try:
        raw = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return raw if isinstance(raw, dict) else None


def utc_now_us() -> int:
    """Host wall clock as UTC microseconds since the Unix epoch."""
    return time.time_ns() // 1000


def config_for(profile: DeviceProfile, config: dict[str, Any] | None) -> dict[str, Any]:
    """The stream configuration of ``profile``: ``config[profile.name]`` if keyed by profile,
    else ``config`` itself, else the profile's default."""
    if config:
        if profile.name in config and isinstance(config[profile.name], dict):
            return dict(config[profile.name])
        return dict(config)
    default = getattr(profile, "default_config", None) or DEFAULT_CONFIGS.get(profile.name, {})
    return json.loads(json.dumps(default))


class Backoff:
    """Exponential reconnect delay with jitter.

    >>> b = Backoff(0.5, 4.0, 2.0, 0.0)
    >>> [b.next() for _ in range(5)]
    [0.5, 1.0, 2.0, 4.0, 4.0]
    """

    def __init__(
        self, min_s: float, max_s: float, factor: float, jitter: float, seed: int | None = None
    ) -> None:
        self.min_s, self.max_s, self.factor, self.jitter = min_s, max_s, factor, jitter
        self._k = 0
        self._rng = random.Random(seed)

    def next(self) -> float:
        delay = min(self.max_s, self.min_s * self.factor**self._k)
        self._k += 1
        return delay * (1.0 + self.jitter * self._rng.random())

    def reset(self) -> None:
        self._k = 0


def _looks_like_address(text: str) -> bool:
    """A MAC address (``AA:BB:CC:DD:EE:FF``) rather than a device name."""
    parts = text.split(":")
    return len(parts) == 6 and all(
        len(p) == 2 and all(c in "0123456789abcdefABCDEF" for c in p) for p in parts
    )


# --------------------------------------------------------------------------- one device
@dataclass
class DeviceState:
    """What the status JSON and live line show for one device."""

    target: str
    participant_id: str
    profile: str | None = None
    address: str | None = None
    name: str | None = None
    state: str = "starting"
    conn_id: int = 0
    mtu: int | None = None
    battery_pct: int | None = None
    battery_t_us: int | None = None
    device_info: dict[str, str] = field(default_factory=dict)
    connected_since_us: int | None = None
    connected_s: float = 0.0
    last_data_us: int | None = None
    notifications: int = 0
    bytes: int = 0
    reconnects: int = 0
    stream_restarts: int = 0
    last_error: str | None = None
    spool_dir: str | None = None
    failed: bool = False


class DeviceSupervisor:
    """Keeps one device connected and streaming, forever (until ``stop`` is set)."""

    def __init__(
        self,
        spec: DeviceSpec,
        *,
        data_dir: DataDir,
        participant_id: str,
        labels: dict[str, Any],
        writer_thread: SpoolWriterThread,
        settings: CollectorSettings,
        backends: Backends,
        stop: asyncio.Event,
    ) -> None:
        self.spec = spec
        self.data_dir = data_dir
        self.participant_id = participant_id
        self.labels = labels
        self.writer_thread = writer_thread
        self.settings = settings
        self.backends = backends
        self.stop = stop
        self.profile = spec.profile
        self.config: dict[str, Any] = {}
        self.status = DeviceState(target=spec.target, participant_id=participant_id)
        self.backoff = Backoff(
            settings.backoff_min_s,
            settings.backoff_max_s,
            settings.backoff_factor,
            settings.backoff_jitter,
        )
        self.writer: SpoolWriter | None = None
        self.live_qc: LiveQc | None = None
        # an earlier run's counts, carried in this run's status file until the spool opens:
        # the first status writes (while scanning) must not erase them
        self._carried = _previous_status(status_path(data_dir, participant_id, spec.target)) or {}
        self.last_rx_mono = 0.0
        self._link_down = asyncio.Event()
        self._conn_id = 0
        self._mtu_failures = 0
        self._sessions = 0
        #: why no scan could start, if there was never a usable adapter in this run
        self.no_adapter: str | None = None
        self._scanned = False
        self._rate_mark = (time.monotonic(), 0)
        self.rate_hz = 0.0
        #: monotonic times of link-up and link-down, for tests and the status file
        self.link_events: list[tuple[float, str]] = []

    @property
    def ever_connected(self) -> bool:
        """Whether the device was connected at least once in this run."""
        return self._sessions > 0

    # ---- records
    def _record(self, kind: RecordKind, uuid: str, payload: bytes, t_us: int | None = None) -> None:
        if self.writer is None:
            return
        self.writer_thread.put(
            (
                self.writer,
                utc_now_us() if t_us is None else t_us,
                int(kind),
                uuid,
                payload,
                self._conn_id,
            )
        )

    def _on_notify(self, characteristic: Any, data: bytearray) -> None:
        # the BLE callback: timestamp, enqueue, count; nothing that can block
        t_us = time.time_ns() // 1000
        assert self.writer is not None
        self.writer_thread.put(
            (self.writer, t_us, 0, characteristic.uuid, bytes(data), self._conn_id)
        )
        self.last_rx_mono = time.monotonic()
        self.status.last_data_us = t_us
        self.status.notifications += 1
        self.status.bytes += len(data)

    def _on_battery(self, _characteristic: Any, data: bytearray) -> None:
        # Battery Level notification: spooled as received, but it is not stream data, so it
        # must not feed the watchdog (a silent stream with a chatty battery is still stalled)
        t_us = time.time_ns() // 1000
        self._record(RecordKind.NOTIFY, BATTERY_LEVEL_UUID, bytes(data), t_us)
        self._note_battery(bytes(data), t_us)

    def _note_battery(self, value: bytes, t_us: int) -> None:
        if not value:
            return
        if value[0] > 100:  # Battery Level is 0..100 %; keep the bytes in the spool, not here
            log.warning("%s: battery level %d %% out of range", self.spec.target, value[0])
            return
        self.status.battery_pct = int(value[0])
        self.status.battery_t_us = t_us

    def _on_disconnected(self, _client: Any) -> None:
        self._link_down.set()

    # ---- discovery
    def _matches(self, device: Any, adv: Any) -> bool:
        target = self.spec.target
        if device.address.lower() == target.lower():
            return True
        name = adv.local_name or device.name or ""
        return bool(name) and (name == target or name.startswith(target))

    async def _find(self) -> tuple[Any, Any] | None:
        from bleak import BleakScanner

        found: asyncio.Future[tuple[Any, Any]] = asyncio.get_running_loop().create_future()

        def on_adv(device: Any, adv: Any) -> None:
            if not found.done() and self._matches(device, adv):
                found.set_result((device, adv))

        scanner = BleakScanner(on_adv, **self.backends.scanner_kwargs())
        await start_scanner(scanner)
        self._scanned = True
        try:
            stop_wait = asyncio.ensure_future(self.stop.wait())
            both: set[asyncio.Future[Any]] = {found, stop_wait}
            done, _ = await asyncio.wait(
                both,
                timeout=self.settings.scan_timeout_s,
                return_when=asyncio.FIRST_COMPLETED,
            )
            stop_wait.cancel()
            return found.result() if found in done else None
        finally:
            if not found.done():
                found.cancel()
            await scanner.stop()

    async def _known_to_os(self) -> tuple[Any, Any] | None:
        """A device the OS still holds a connection to does not advertise: ask BlueZ for it.

        After a crash BlueZ may keep the link up; ``bleak_retry_connector.get_device`` finds
        such a device by address (only with bleak's platform backend, on Linux).
        """
        if self.backends.client is not None or not _looks_like_address(self.spec.target):
            return None
        from types import SimpleNamespace

        from bleak_retry_connector import get_device

        try:
            device = await get_device(self.spec.target)
        except Exception as exc:  # no BlueZ, no D-Bus: nothing to find
            log.debug("get_device(%s) failed: %s", self.spec.target, exc)
            return None
        if device is None:
            return None
        return device, SimpleNamespace(local_name=device.name, service_uuids=[])

    def _resolve_profile(self, device: Any, adv: Any) -> DeviceProfile:
        if self.profile is None:
            from glutewake.devices import match_profile

            profile = match_profile(adv.local_name or device.name, adv.service_uuids)
            if profile is None:
                raise ProfileNotFoundError(
                    f"no device profile recognises {device.address} ({adv.local_name!r}); "
                    "pass a profile explicitly"
                )
            self.profile = profile
        return self.profile

    def _open_spool(self, address: str) -> None:
        if self.writer is not None:
            return
        assert self.profile is not None
        folder = self.data_dir.spool_dir(self.participant_id, address)
        info = SpoolInfo(self.participant_id, address, self.profile.name, self.config, self.labels)
        if self.settings.segment_s is None:
            self.writer = SpoolWriter(folder, info, journal_fsync_s=self.settings.journal_fsync_s)
        else:
            self.writer = SpoolWriter(
                folder,
                info,
                segment_s=self.settings.segment_s,
                journal_fsync_s=self.settings.journal_fsync_s,
            )
        self.live_qc = LiveQc(self.profile, self.config)
        previous = _previous_status(status_path(self.data_dir, self.participant_id, address))
        if previous is not None and previous.get("spool_dir") == str(folder):
            # counts continue across runs: what a crashed run spooled after its last status
            # file is counted now, and the time it was away shows as expected, not received
            self.live_qc.restore(previous.get("live_qc") or {})
            catch_up(self.live_qc, folder)
        self.writer_thread.add(self.writer, self.live_qc)
        self._conn_id = self.writer.last_conn_id
        self.status.spool_dir = str(folder)

    # ---- main loop
    async def run(self) -> None:
        from bleak import BleakClient
        from bleak.exc import BleakError
        from bleak_retry_connector import establish_connection

        while not self.stop.is_set():
            self.status.state = "scanning"
            client = None
            had_data = False
            try:
                hit = await self._find()
                if self.stop.is_set():
                    break
                if hit is None:
                    hit = await self._known_to_os()
                if hit is None:
                    raise CollectorError(f"{self.spec.target}: not found in a scan")
                device, adv = hit
                profile = self._resolve_profile(device, adv)
                if not self.config:
                    self.config = self._checked_config(profile)
                self.status.profile = profile.name
                self.status.address = device.address
                self.status.name = adv.local_name or device.name
                self._open_spool(device.address)
                self.status.state = "connecting"
                self._link_down.clear()
                client = await establish_connection(
                    BleakClient,
                    device,
                    self.status.name or device.address,
                    disconnected_callback=self._on_disconnected,
                    max_attempts=self.settings.connect_attempts,
                    **self.backends.client_kwargs(),
                )
                had_data = await self._session(client)
            except ProfileNotFoundError as exc:
                self._fail(str(exc))
                return
            except NoAdapterError as exc:
                if not self._scanned:
                    # never had a working adapter in this run: nothing to wait for; the
                    # collection reports it once (run_collection raises it)
                    self.no_adapter = str(exc)
                    self.status.failed = True
                    self.status.state = "failed"
                    self.status.last_error = str(exc)
                    log.info("%s: %s", self.spec.target, exc)
                    return
                # the adapter went away mid-run (bluetoothd restarted, a dongle reset): wait
                self.status.last_error = str(exc)
                log.warning("%s: %s; retrying", self.spec.target, exc)
            except MtuTooSmallError as exc:
                self._mtu_failures += 1
                self.status.last_error = str(exc)
                log.error("%s", exc)
                if self._mtu_failures >= self.settings.mtu_failures:
                    self._fail(f"{exc} (gave up after {self._mtu_failures} connections)")
                    return
            except ConfigRejectedError as exc:
                self._fail(str(exc))
                return
            except (BleakError, CollectorError, TimeoutError, OSError, EOFError) as exc:
                self.status.last_error = f"{type(exc).__name__}: {exc}"
                log.warning("%s: %s", self.spec.target, self.status.last_error)
            except Exception as exc:  # a bug must not end collection: log it, back off, go on
                self.status.last_error = f"{type(exc).__name__}: {exc}"
                log.exception("%s: unexpected error", self.spec.target)
            finally:
                if client is not None:
                    await self._close_link(client)
            if self.stop.is_set():
                break
            if had_data:
                self.backoff.reset()
            delay = self.backoff.next()
            self.status.state = "backoff"
            log.info("%s: reconnecting in %.2f s", self.spec.target, delay)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop.wait(), delay)
        self.status.state = "stopped"

    def _checked_config(self, profile: DeviceProfile) -> dict[str, Any]:
        """The device's stream configuration, checked by the profile before any connection."""
        config = config_for(profile, self.spec.config)
        try:
            profile.start_writes(config)
            profile.stop_writes(config)
            profile.required_mtu(config)
        except (ValueError, KeyError, TypeError) as exc:
            raise ConfigRejectedError(
                f"{self.spec.target}: {profile.name} rejects the configuration {config!r}: {exc}"
            ) from exc
        return config

    def _fail(self, message: str) -> None:
        self.status.failed = True
        self.status.state = "failed"
        self.status.last_error = message
        log.error("%s: %s", self.spec.target, message)

    async def _gatt(self, awaitable: Any) -> Any:
        return await asyncio.wait_for(awaitable, self.settings.gatt_timeout_s)

    async def _session(self, client: Any) -> bool:
        """One connection: set up, stream, watch. Returns whether any data arrived."""
        assert self.profile is not None
        self._conn_id += 1
        self._sessions += 1
        self.status.conn_id = self._conn_id
        self.status.reconnects = self._sessions - 1
        acquire_mtu = getattr(getattr(client, "_backend", None), "_acquire_mtu", None)
        if acquire_mtu is not None:  # BlueZ reports 23 until asked
            with contextlib.suppress(Exception):
                await acquire_mtu()
        mtu = int(client.mtu_size)
        self.status.mtu = mtu
        self._record(RecordKind.CONNECT, "", struct.pack("<H", mtu))
        self.link_events.append((time.monotonic(), "up"))
        connected_mono = time.monotonic()
        self.status.connected_since_us = utc_now_us()
        self.status.state = "connected"
        rx_at_start = self.status.notifications
        try:
            need = self.profile.required_mtu(self.config)
            if mtu < need:
                raise MtuTooSmallError(
                    f"{self.spec.target}: negotiated ATT MTU {mtu} < {need} needed by "
                    f"{self.profile.name} with this configuration (notifications would be cut)"
                )
            self._mtu_failures = 0
            await self._read_info(client)
            await self._subscribe_battery(client)
            await self._subscribe(client)
            await self._start_streams(client)
            self.status.state = "streaming"
            await self._watch(client)
        finally:
            self.status.connected_s += time.monotonic() - connected_mono
            self.status.connected_since_us = None
        return self.status.notifications > rx_at_start

    async def _read_info(self, client: Any) -> None:
        assert self.profile is not None
        uuids = [BATTERY_LEVEL_UUID, *DEVICE_INFO_UUIDS.values()]
        uuids += [u.lower() for u in getattr(self.profile, "read_uuids", ())]
        # every readable characteristic of the profile's own services (configuration, features):
        # decoders learn stream settings from them, so they go to the spool before any data
        own_services = {u.lower() for u in self.profile.service_uuids}
        for service in client.services:
            if service.uuid in own_services:
                uuids += [c.uuid for c in service.characteristics if "read" in c.properties]
        for uuid in dict.fromkeys(uuids):
            await self._read(client, uuid)

    async def _read(self, client: Any, uuid: str) -> bytes | None:
        char = client.services.get_characteristic(uuid)
        if char is None or "read" not in char.properties:
            return None
        value = bytes(await self._gatt(client.read_gatt_char(char)))
        t_us = utc_now_us()
        self._record(RecordKind.READ, uuid, value, t_us)
        if uuid == BATTERY_LEVEL_UUID:
            self._note_battery(value, t_us)
        for key, info_uuid in DEVICE_INFO_UUIDS.items():
            if uuid == info_uuid:
                self.status.device_info[key] = value.decode("utf-8", "replace")
        return value

    async def _subscribe_battery(self, client: Any) -> None:
        """Battery Level notifications where the device offers them (besides the periodic read)."""
        from bleak.exc import BleakError

        char = client.services.get_characteristic(BATTERY_LEVEL_UUID)
        if char is None or "notify" not in char.properties:
            return
        try:
            await self._gatt(client.start_notify(char, self._on_battery))
        except (BleakError, CollectorError, OSError, EOFError, ValueError) as exc:
            # the periodic read still tracks the battery; a dead link shows up in what follows
            log.warning("%s: battery notifications unavailable: %s", self.spec.target, exc)

    async def _subscribe(self, client: Any) -> None:
        """Enable notifications; safe to repeat (a live subscription is stopped first)."""
        assert self.profile is not None
        optional = {u.lower() for u in self.profile.optional_notify_uuids}
        for uuid in self.profile.notify_uuids:
            char = client.services.get_characteristic(uuid)
            if char is None and uuid.lower() in optional:
                log.info("%s: device has no %s (optional)", self.spec.target, uuid)
                continue
            if char is None:
                raise CollectorError(
                    f"{self.spec.target}: no characteristic {uuid} ({self.profile.name})"
                )
            with contextlib.suppress(Exception):
                await self._gatt(client.stop_notify(char))
            await self._gatt(client.start_notify(char, self._on_notify))

    async def _start_streams(self, client: Any) -> None:
        assert self.profile is not None
        for write in self.profile.start_writes(self.config):
            await self._write(client, write.char_uuid, write.data, write.with_response)
        self.last_rx_mono = time.monotonic()

    async def _write(self, client: Any, uuid: str, data: bytes, response: bool) -> None:
        # recorded before sending, so the device's response always follows it in the spool
        self._record(RecordKind.WRITE, uuid.lower(), bytes(data))
        await self._gatt(client.write_gatt_char(uuid, data, response=response))

    async def _watch(self, client: Any) -> None:
        tick_s = min(0.25, self.settings.watchdog_s / 4)
        restarts = 0
        rx_seen = self.status.notifications
        next_battery = time.monotonic() + self.settings.battery_interval_s
        while True:
            if self.stop.is_set():
                await self._stop_streams(client)
                return
            if self._link_down.is_set() or not client.is_connected:
                return
            now = time.monotonic()
            if self.status.notifications != rx_seen:
                rx_seen = self.status.notifications
                restarts = 0
            if now - self.last_rx_mono > self.settings.watchdog_s:
                if restarts < self.settings.stream_restarts:
                    restarts += 1
                    self.status.stream_restarts += 1
                    log.warning(
                        "%s: no data for %.1f s; restarting the stream",
                        self.spec.target,
                        now - self.last_rx_mono,
                    )
                    await self._subscribe(client)
                    await self._start_streams(client)
                else:
                    log.warning("%s: stream still silent; reconnecting", self.spec.target)
                    self.status.last_error = "watchdog: no data"
                    return
            if now >= next_battery:
                next_battery = now + self.settings.battery_interval_s
                await self._read(client, BATTERY_LEVEL_UUID)
            waiters = {
                asyncio.ensure_future(self.stop.wait()),
                asyncio.ensure_future(self._link_down.wait()),
            }
            await asyncio.wait(waiters, timeout=tick_s, return_when=asyncio.FIRST_COMPLETED)
            for task in waiters:
                task.cancel()

    async def _stop_streams(self, client: Any) -> None:
        assert self.profile is not None
        self.status.state = "stopping"
        for write in self.profile.stop_writes(self.config):
            try:
                await self._write(client, write.char_uuid, write.data, write.with_response)
            except Exception as exc:  # the link may be going down as we stop
                log.warning("%s: stop command failed: %s", self.spec.target, exc)
                break
        # let the device's answer to the stop command reach the spool
        await asyncio.sleep(0.05)

    async def _close_link(self, client: Any) -> None:
        solicited = client.is_connected
        if solicited:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(client.disconnect(), self.settings.gatt_timeout_s)
        reason = (
            ("host_stop" if self.stop.is_set() else (self.status.last_error or "host_disconnect"))
            if solicited
            else "link_lost"
        )
        self._record(RecordKind.DISCONNECT, "", reason.encode())
        self.link_events.append((time.monotonic(), "down"))
        log.info("%s: link down (%s)", self.spec.target, reason)

    # ---- status
    def snapshot(self, depth: int) -> dict[str, Any]:
        now_mono = time.monotonic()
        mark_t, mark_n = self._rate_mark
        if now_mono - mark_t >= 1.0:
            self.rate_hz = (self.status.notifications - mark_n) / (now_mono - mark_t)
            self._rate_mark = (now_mono, self.status.notifications)
        s = self.status
        now_us = utc_now_us()
        connected_s = s.connected_s
        if s.connected_since_us is not None:
            connected_s += (now_us - s.connected_since_us) / 1e6
        return {
            "participant_id": s.participant_id,
            "device_id": s.address or s.target,
            "target": s.target,
            "address": s.address,
            "name": s.name,
            "profile": s.profile,
            "config": self.config,
            "state": s.state,
            "failed": s.failed,
            "conn_id": s.conn_id,
            "mtu": s.mtu,
            "battery_pct": s.battery_pct,
            "battery_t_us": s.battery_t_us,
            "device_info": s.device_info,
            "connected_s": round(connected_s, 3),
            "last_data_t_us": s.last_data_us,
            "last_data_age_s": None
            if s.last_data_us is None
            else round((now_us - s.last_data_us) / 1e6, 3),
            "notifications": s.notifications,
            "bytes": s.bytes,
            "rate_hz": round(self.rate_hz, 2),
            "reconnects": s.reconnects,
            "packets_lost": None if self.live_qc is None else self.live_qc.packets_lost,
            "duplicates": None if self.live_qc is None else self.live_qc.duplicates,
            "stream_restarts": s.stream_restarts,
            "last_error": s.last_error,
            "queue_depth": depth,
            "spool_dir": s.spool_dir or self._carried.get("spool_dir"),
            "live_qc": (
                self._carried.get("live_qc") if self.live_qc is None else self.live_qc.state()
            ),
            "pid": os.getpid(),
            "updated_t_us": now_us,
        }
