"""What every device profile provides, and the containers that cross the devices boundary.

A *profile* is one device family's protocol: its GATT layout, the bytes that start and stop its
streams, and the decoders that turn the raw records the collector spooled back into samples with
UTC timestamps and project units. Profiles import nothing else of the package.

The collector stores every GATT exchange as a :class:`RawRecords` row (notifications received,
writes sent, reads, connection events), never decoded, so a decoder fixed later can re-decode
everything ever received. A profile's :meth:`DeviceProfile.decode_records` replays those rows in
order, which is how it learns the stream settings (Polar's settings/start exchange, the
glutewake-open configuration read) that the data frames need.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

import numpy as np
from numpy.typing import NDArray


class RecordKind(IntEnum):
    """What a spooled record is. Stored as ``int8`` in the spool."""

    NOTIFY = 0  #: a notification/indication received from the device
    WRITE = 1  #: bytes the host wrote to a characteristic (control point, command)
    READ = 2  #: the value of a characteristic read by the host
    CONNECT = 3  #: link up; ``payload`` holds the negotiated ATT MTU as uint16 LE
    DISCONNECT = 4  #: link down (payload: UTF-8 reason, may be empty)


@dataclass(frozen=True)
class RawRecords:
    """A batch of spooled GATT records of one device, in host order.

    Attributes
    ----------
    t_us : int64 (n,)
        Host clock time (UTC µs since the Unix epoch) when the record was received or sent.
    kind : int8 (n,)
        :class:`RecordKind` values.
    char_uuid : list[str]
        Lower-case 128-bit UUID string of the characteristic ('' for connection events).
    payload : list[bytes]
        The bytes exactly as received or written.
    conn_id : int64 (n,)
        Connection counter: increments on every (re)connect. Decoders reset per-stream state
        (e.g. Polar's previous-frame timestamp) when it changes.
    """

    t_us: NDArray[np.int64]
    kind: NDArray[np.int8]
    char_uuid: list[str]
    payload: list[bytes]
    conn_id: NDArray[np.int64]

    def __len__(self) -> int:
        return int(self.t_us.shape[0])


@dataclass(frozen=True)
class StreamSamples:
    """Decoded samples of one stream (e.g. ``acc``, ``gyro``, ``emg``).

    Attributes
    ----------
    stream : str
        Stream name: ``acc`` (g), ``gyro`` (deg/s), ``mag`` (gauss), ``emg`` (µV).
    t_us : int64 (n,)
        UTC microseconds since the Unix epoch, after the profile's clock model.
    values : float64 (n, channels)
        Values in project units.
    channel_names : tuple[str, ...]
        One name per column (``x``/``y``/``z`` or the EMG channel labels).
    unit : str
        ``g``, ``deg/s``, ``gauss`` or ``uV``.
    fs_hz : float
        Nominal sampling rate from the stream settings.
    sample_seq : int64 (n,)
        Device sample counter where the device provides one (else a running index), kept so
        that gaps stay visible downstream.
    """

    stream: str
    t_us: NDArray[np.int64]
    values: NDArray[np.float64]
    channel_names: tuple[str, ...]
    unit: str
    fs_hz: float
    sample_seq: NDArray[np.int64]

    def __len__(self) -> int:
        return int(self.t_us.shape[0])


@dataclass(frozen=True)
class PacketError:
    """A record that could not be decoded; its bytes are kept, decoding went on."""

    t_us: int
    char_uuid: str
    payload: bytes
    error: str


@dataclass(frozen=True)
class Gap:
    """A span of a stream with no data (disconnect, dropped packets)."""

    stream: str
    start_us: int
    end_us: int
    reason: str  #: 'disconnect', 'packet_loss', 'device_stopped', ...


@dataclass
class DecodeResult:
    """What :meth:`DeviceProfile.decode_records` returns.

    ``qc`` holds per-stream counters at least: ``packets``, ``packets_lost``, ``duplicates``,
    ``reordered``, and the clock model's ``clock_offset_us``, ``clock_drift_ppm``.
    """

    streams: dict[str, StreamSamples] = field(default_factory=dict)
    errors: list[PacketError] = field(default_factory=list)
    gaps: list[Gap] = field(default_factory=list)
    qc: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass(frozen=True)
class GattWrite:
    """One write the host performs (start/stop sequences)."""

    char_uuid: str
    data: bytes
    with_response: bool = True


class DeviceProfile(ABC):
    """One device family's protocol, registered by :attr:`name`."""

    #: registry name, e.g. ``polar-pmd``
    name: str
    #: advertised names / name prefixes this profile recognises in a scan
    name_prefixes: tuple[str, ...] = ()
    #: primary service UUIDs (lower case)
    service_uuids: tuple[str, ...] = ()
    #: characteristics the collector subscribes to (lower case UUIDs)
    notify_uuids: tuple[str, ...] = ()
    #: those of :attr:`notify_uuids` a conforming device may lack (e.g. a stream it does not
    #: have); the collector skips them when absent instead of failing
    optional_notify_uuids: tuple[str, ...] = ()

    @abstractmethod
    def start_writes(self, config: dict[str, Any]) -> list[GattWrite]:
        """Writes that start the configured streams, in order."""

    @abstractmethod
    def stop_writes(self, config: dict[str, Any]) -> list[GattWrite]:
        """Writes that stop the streams (sent before a clean disconnect)."""

    @abstractmethod
    def required_mtu(self, config: dict[str, Any]) -> int:
        """Smallest ATT MTU at which no notification of the configured streams is cut."""

    @abstractmethod
    def decode_records(self, records: RawRecords, config: dict[str, Any]) -> DecodeResult:
        """Decode spooled records into samples; never raises on bad packets (they go to errors)."""


class DecodeError(ValueError):
    """A packet that cannot be decoded. Subclasses say what was wrong.

    The message names the device family, the stream and the problem.
    """

    def __init__(self, device: str, stream: str, problem: str) -> None:
        self.device = device
        self.stream = stream
        self.problem = problem
        super().__init__(f"{device} {stream}: {problem}")


@dataclass(frozen=True)
class GattCharacteristic:
    """One characteristic a device serves: its UUID and GATT properties.

    ``properties`` holds any of ``read``, ``write``, ``write-without-response``, ``notify`` and
    ``indicate``.
    """

    uuid: str
    properties: frozenset[str]


@dataclass(frozen=True)
class GattService:
    """One primary service a device serves."""

    uuid: str
    characteristics: tuple[GattCharacteristic, ...]


@dataclass(frozen=True)
class GattLayout:
    """A device's own GATT table and advertisement, as its vendor defines them.

    A virtual device states this itself (from the vendor's documents, not from the decoder
    module), so that a peripheral serving it and a collector using the profile meet only where
    both agree with the vendor.
    """

    services: tuple[GattService, ...]
    advertised_name: str
    advertised_services: tuple[str, ...] = ()


def characteristic(uuid: str, *properties: str) -> GattCharacteristic:
    """A :class:`GattCharacteristic` (UUID lower-cased).

    >>> characteristic("ABCD", "read", "notify").properties == {"read", "notify"}
    True
    """
    known = {"read", "write", "write-without-response", "notify", "indicate"}
    unknown = set(properties) - known
    if unknown:
        raise ValueError(f"unknown GATT properties {sorted(unknown)} (known: {sorted(known)})")
    return GattCharacteristic(uuid.lower(), frozenset(properties))


class VirtualDevice(ABC):
    """Byte-level model of one device, driven by known signals (simulators and tests).

    The same model serves the offline simulator (which writes its bytes to the spool exactly as
    the collector would) and the in-process BLE peripheral (which serves them over a real GATT
    link), so both exercise the decoders users run. Time arguments are true UTC microseconds;
    the model applies its own clock offset and drift to the device timestamps it encodes.
    """

    @abstractmethod
    def handle_write(self, char_uuid: str, data: bytes, now_us: int) -> list[tuple[str, bytes]]:
        """Apply a host write; return the notifications it triggers (e.g. a control response)."""

    @abstractmethod
    def read_value(self, char_uuid: str) -> bytes:
        """Value of a readable characteristic (battery, configuration, device information)."""

    @abstractmethod
    def poll(self, now_us: int) -> list[tuple[str, bytes]]:
        """Data notifications that became due since the last poll, in send order."""

    @abstractmethod
    def link_lost(self, now_us: int) -> None:
        """The link dropped: running streams stop, as on the real device."""

    def gatt_layout(self) -> GattLayout | None:
        """The device's own GATT table and advertisement (None: serve the profile's layout).

        Models of vendors' devices state it from the vendor's sources; a peripheral serving the
        model then exposes exactly these services, so a profile with a wrong UUID finds nothing.
        """
        return None

    def next_due_us(self) -> int | None:
        """True time at which the next data notification becomes due (None: nothing streaming).

        Lets offline simulators step from notification to notification instead of polling.
        """
        raise NotImplementedError

    def render_until(self, end_us: int) -> list[tuple[int, str, bytes]]:
        """Every data notification due before ``end_us``, rendered in one bulk pass (optional).

        Returns ``(due_us, char_uuid, payload)`` in send order: exactly what stepping
        ``due = next_due_us()`` then ``poll(due)`` while ``due < end_us`` would send, with the
        notifications of one step sharing its ``due_us``. Devices without a bulk path raise
        NotImplementedError and are stepped instead.
        """
        raise NotImplementedError
