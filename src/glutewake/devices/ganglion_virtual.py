"""Byte-level model of an OpenBCI Ganglion running firmware 2 or 3 (simulators and tests).

The model follows OpenBCI's firmware source, OpenBCI/OpenBCI_Ganglion_Library
(``OpenBCI_Ganglion_Library.cpp``; firmware 3.0.2 at commit b6058e6, firmware 2.0.1 at 4e19bd3),
and states every constant itself instead of importing :mod:`.ganglion`, so that a wrong
constant or layout in the decoder makes the tests that replay this model fail:

- after ``b`` (``startRunning``) the ADC's ``sampleCounter`` starts at 0 and counts to 200;
- firmware 2 (``processData``, ``buildRawPacket``, ``sendRawPacket``, ``compressData19``): at
  counter 0 a raw packet (id 0, four 24-bit big-endian counts, padding ``ABCDEFG``), then on
  every even counter a packet of the two samples' deltas ``previous - sample`` with the sign
  written into bit 0, low 19 bits (ids 101..200; 18 bits and ids 1..100 with the
  accelerometer on), MSB first from byte 1: 201 samples per cycle;
- firmware 3 (``compressData18``/``compressData19``, ``sendCompressedPacket18``/``19``): each
  sample's sign is written into bit 6 (18-bit) or 5 (19-bit), the value shifted right by as
  much, and the low 18/19 bits packed MSB first, the even-counter sample first; the id is the
  ring level (0..99), plus 100 for 19-bit packets. The ring level is reset with the counter
  when it passes 200, so sample 200 of each cycle is packed but never sent (200 of 201 samples
  go out). ``startRunning`` sets the ring level to 0xFF, and the id is its low byte (a ``char``),
  so the first cycle after ``b`` is numbered 99, 100, ..., 198 (19-bit) or 255, 0, ..., 98
  (18-bit). This is how the firmware source reads; it has not been checked on a board.

The accelerometer (``n``/``N``) is fixed per model (``accelerometer=``): switching it while
streaming makes the firmware pack one pair in two widths, which is not modelled. Its byte 19
(18-bit packets whose ring level ends in 1, 2, 3: x, y, z) is 0 here.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from glutewake.devices.base import (
    GattLayout,
    GattService,
    StreamSamples,
    VirtualDevice,
    characteristic,
)

# OpenBCI/OpenBCI_JavaScript_Utilities src/constants.js: simbleeUuidService 'fe84',
# simbleeUuidReceive, simbleeUuidSend, simbleeUuidDisconnect; brainflow-dev/brainflow
# src/board_controller/openbci/ganglion_native.cpp GANGLION_NOTIFY_CHAR / GANGLION_WRITE_CHAR
SERVICE = "0000fe84-0000-1000-8000-00805f9b34fb"
RECEIVE = "2d30c082-f39f-4ce6-923f-3484ea480596"
SEND = "2d30c083-f39f-4ce6-923f-3484ea480596"
DISCONNECT = "2d30c084-f39f-4ce6-923f-3484ea480596"
# Device Information (Bluetooth SIG): the firmware sets SimbleeBLE.manufacturerName,
# modelNumber, hardwareRevision and softwareRevision (makeUniqueId); brainflow reads the
# Software Revision String GANGLION_SOFTWARE_REVISION to tell firmware 3 from 2
DEVICE_INFO = "0000180a-0000-1000-8000-00805f9b34fb"
MANUFACTURER = "00002a29-0000-1000-8000-00805f9b34fb"
MODEL = "00002a24-0000-1000-8000-00805f9b34fb"
HARDWARE_REVISION = "00002a27-0000-1000-8000-00805f9b34fb"
SOFTWARE_REVISION = "00002a28-0000-1000-8000-00805f9b34fb"
# Definitions_Ganglion.h: START_DATA_STREAM 'b', STOP_DATA_STREAM 's'
START, STOP = b"b", b"s"
#: sendRawPacket: bytes 13..19 of a firmware-2 raw packet are 'A' + 0 .. 'A' + 6
RAW_PADDING = bytes(range(ord("A"), ord("A") + 7))
#: processData: the sample counter runs 0..200
CYCLE_SAMPLES = 201
FS_HZ = 200.0
#: brainflow ganglion_native.h eeg_scale: 1.2e6 / (8388607 * 1.5 * 51) µV per count
UV_PER_COUNT = 1.2e6 / (8388607.0 * 1.5 * 51.0)


def _msb_first(fields: list[int], width: int) -> bytes:
    """Fields of ``width`` bits back to back, most significant bit first, zero-padded."""
    acc = 0
    for f in fields:
        acc = (acc << width) | (f & ((1 << width) - 1))
    nbits = width * len(fields)
    pad = -nbits % 8
    return (acc << pad).to_bytes((nbits + pad) // 8, "big")


def raw_packet(sample: ArrayLike) -> bytes:
    """Firmware 2, id 0: four 24-bit counts big-endian (``buildRawPacket``), then the padding.

    >>> raw_packet([1, -1, 0x123456, -(1 << 23)]).hex()
    '00000001ffffff12345680000041424344454647'
    """
    s = [int(v) for v in np.asarray(sample, dtype=np.int64).reshape(4)]
    if min(s) < -(1 << 23) or max(s) >= (1 << 23):
        raise ValueError("raw samples exceed 24 bits")
    return b"\x00" + b"".join((v & 0xFFFFFF).to_bytes(3, "big") for v in s) + RAW_PADDING


def delta_packet(packet_id: int, deltas: ArrayLike, *, accel_byte: int = 0) -> bytes:
    """Firmware 2, ids 1..100 (18-bit) or 101..200 (19-bit): deltas (2, 4), previous − sample.

    ``compressData18``/``19``: ``bitWrite(delta, 0, bitRead(delta, 31))`` then the low bits,
    first sample then second, MSB first; 18-bit packets end with the accelerometer byte. A
    delta beyond the field wraps, as on the board.
    """
    if not 1 <= packet_id <= 200:
        raise ValueError("firmware-2 delta packet ids are 1..200")
    w = 18 if packet_id <= 100 else 19
    d = [int(v) for v in np.asarray(deltas, dtype=np.int64).reshape(8)]
    fields = [(v & ~1) | (1 if v < 0 else 0) for v in d]
    tail = bytes((accel_byte & 0xFF,)) if w == 18 else b""
    return bytes((packet_id,)) + _msb_first(fields, w) + tail


def msb_packet(packet_id: int, samples: ArrayLike, *, bits: int | None = None) -> bytes:
    """Firmware 3: two absolute samples (2, 4) in 18 bits (ids 0..99) or 19 bits (100..199).

    ``compressData18``/``19``: ``bitWrite(x, k, bitRead(x, 31)); x >>= k`` with k = 6 (18-bit)
    or 5 (19-bit), the low 18/19 bits packed MSB first, the even sample first; 18-bit packets
    end with byte 19 (the accelerometer's, 0 here). ``bits`` overrides the width the id implies
    (the first packet after ``b`` carries id 99 in 19 bits or 255 in 18 bits).
    """
    w = bits if bits is not None else (18 if packet_id < 100 else 19)
    if w not in (18, 19) or not 0 <= packet_id <= 0xFF:
        raise ValueError("firmware-3 packets are 18 or 19 bits with a one-byte id")
    k = 24 - w
    s = [int(v) for v in np.asarray(samples, dtype=np.int64).reshape(8)]
    if min(s) < -(1 << 23) or max(s) >= (1 << 23):
        raise ValueError("samples exceed 24 bits")
    fields = [((v & ~(1 << k)) | ((1 if v < 0 else 0) << k)) >> k for v in s]
    return bytes((packet_id,)) + _msb_first(fields, w) + (b"\x00" if w == 18 else b"")


class GanglionVirtualDevice(VirtualDevice):
    """A Ganglion streaming a known 4-channel EMG signal (µV, 200 Hz, true ``t_us``).

    Parameters
    ----------
    emg : StreamSamples
        The signal at the electrodes; its ``t_us`` are the board's sampling instants (the
        Ganglion reports no clock of its own).
    firmware : str
        The Software Revision String the board serves: ``"3.0.2"`` (the current release) or
        ``"2.0.1"``; its first digit picks the packet format.
    accelerometer : bool
        Accelerometer on (18-bit packets) or off (19-bit, the firmware's default).
    """

    def __init__(
        self, emg: StreamSamples, *, firmware: str = "3.0.2", accelerometer: bool = False
    ) -> None:
        if emg.values.shape[1] != 4:
            raise ValueError("GanglionVirtualDevice: 4 channels")
        if firmware[:1] not in ("2", "3"):
            raise ValueError(f"GanglionVirtualDevice: firmware 2.x or 3.x, got {firmware!r}")
        self.emg = emg
        self.firmware = firmware
        self.accelerometer = accelerometer
        self.counts: NDArray[np.int64] = np.clip(
            np.rint(emg.values / UV_PER_COUNT), -(1 << 23), (1 << 23) - 1
        ).astype(np.int64)
        self._running = False
        self._next = 0  # index of the next signal sample the ADC takes
        self._counter = 0  # sampleCounter of that sample
        self._ring = 0  # ringBufferLevel

    @property
    def _fw3(self) -> bool:
        return self.firmware.startswith("3")

    def gatt_layout(self) -> GattLayout:
        """Simblee service 0xFE84 (receive: notify; send: written without response, as
        brainflow's ``simpleble_peripheral_write_command`` does) and Device Information."""
        suffix = f"{self.emg.t_us.size & 0xFFFF:04x}"
        ganglion = GattService(
            SERVICE,
            (
                characteristic(RECEIVE, "notify"),
                characteristic(SEND, "write-without-response"),
                characteristic(DISCONNECT, "write-without-response"),
            ),
        )
        info = GattService(
            DEVICE_INFO,
            tuple(
                characteristic(u, "read")
                for u in (MANUFACTURER, MODEL, HARDWARE_REVISION, SOFTWARE_REVISION)
            ),
        )
        # advdata: "Ganglion 1.3 (XXXX)" (firmware 3), "Ganglion-XXXX" (firmware 2)
        name = f"Ganglion 1.3 ({suffix})" if self._fw3 else f"Ganglion-{suffix}"
        return GattLayout((ganglion, info), name, (SERVICE,))

    def read_value(self, char_uuid: str) -> bytes:
        """Device Information strings, as ``makeUniqueId`` sets them."""
        values = {
            MANUFACTURER: "openbci.com",
            MODEL: "Ganglion",
            HARDWARE_REVISION: "1.0.1",
            SOFTWARE_REVISION: self.firmware,
        }
        try:
            return values[char_uuid.lower()].encode()
        except KeyError:
            raise KeyError(f"GanglionVirtualDevice: {char_uuid} is not readable") from None

    def handle_write(self, char_uuid: str, data: bytes, now_us: int) -> list[tuple[str, bytes]]:
        """``b`` starts (``startRunning``), ``s`` stops."""
        if char_uuid.lower() != SEND:
            return []
        if data == START and not self._running:
            self._running = True
            self._next = int(np.searchsorted(self.emg.t_us, now_us, side="left"))
            self._counter = 0
            self._ring = 0xFF if self._fw3 else 0
        elif data == STOP:
            self._running = False
        return []

    def poll(self, now_us: int) -> list[tuple[str, bytes]]:
        """Packets completed by ``now_us``."""
        if not self._running:
            return []
        avail = int(np.searchsorted(self.emg.t_us, now_us, side="right"))
        out: list[tuple[str, bytes]] = []
        while (pkt := self._packet(avail)) is not None:
            out.append((RECEIVE, pkt))
        return out

    def _packet(self, avail: int) -> bytes | None:
        """The next packet if its samples are taken by sample index ``avail``, else None."""
        if self._fw3:
            if self._counter == CYCLE_SAMPLES - 1:  # sample 200: packed, never sent
                if avail - self._next < 1:
                    return None
                self._next += 1
                self._counter, self._ring = 0, 0
            if avail - self._next < 2:
                return None
            pair = self.counts[self._next : self._next + 2]
            # radioBuffer[0] is a char: the id is the low byte of ring level (+ 100)
            pid = (self._ring + (0 if self.accelerometer else 100)) & 0xFF
            self._next += 2
            self._counter += 2
            self._ring += 1
            return msb_packet(pid, pair, bits=18 if self.accelerometer else 19)
        if self._counter == 0:
            if avail - self._next < 1:
                return None
            pkt = raw_packet(self.counts[self._next])
            self._next += 1
            self._counter, self._ring = 1, 1
            return pkt
        if avail - self._next < 2:
            return None
        d = self.counts[self._next - 1 : self._next + 1] - self.counts[self._next : self._next + 2]
        pid = self._ring + (0 if self.accelerometer else 100)
        self._next += 2
        self._counter = (self._counter + 2) % CYCLE_SAMPLES
        self._ring += 1
        return delta_packet(pid, d)

    def next_due_us(self) -> int | None:
        """True time of the next packet's last sample (a sample the firmware drops included)."""
        if not self._running:
            return None
        if self._fw3:
            last = self._next + (2 if self._counter == CYCLE_SAMPLES - 1 else 1)
        else:
            last = self._next + (0 if self._counter == 0 else 1)
        return int(self.emg.t_us[last]) if last < len(self.emg) else None

    def link_lost(self, now_us: int) -> None:
        """Streaming stops with the link."""
        self._running = False
