"""Every GATT UUID and protocol constant, in the decoders and in the virtual devices, against the
vendors' own strings written out here.

The strings below are copied from the vendors' sources (each cited: repository, commit, file,
line), not from the project. The decoder modules and the virtual devices state their constants
independently of each other; both are compared with these strings, so a typo in either fails
here, and the end-to-end tests (a virtual device served over bumble, collected with the
profile) fail where the two disagree.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from glutewake.devices import (
    ganglion,
    ganglion_virtual,
    glutewake_open,
    metawear,
    metawear_virtual,
    movesense,
    movesense_virtual,
    pmd_codec,
    pmd_control,
    polar_pmd,
    polar_virtual,
)
from glutewake.devices.base import DeviceProfile, GattLayout, StreamSamples, VirtualDevice
from glutewake.devices.open_virtual import GlutewakeOpenVirtualDevice

# --- polarofficial/polar-ble-sdk @ 8fb5311c8f63fd58fdd03df1b46cbb2e8f05209e ---------------------
# sources/Android/android-communications/library/src/main/java/com/polar/androidcommunications/
# api/ble/model/gatt/client/pmd/BlePMDClient.kt L519, L522, L525:
#   val PMD_DATA: UUID = UUID.fromString("FB005C82-02E7-F387-1CAD-8ACD2D8DF0C8")
#   val PMD_CP: UUID = UUID.fromString("FB005C81-02E7-F387-1CAD-8ACD2D8DF0C8")
#   val PMD_SERVICE: UUID = UUID.fromString("FB005C80-02E7-F387-1CAD-8ACD2D8DF0C8")
# and sources/iOS/ios-communications/Sources/iOSCommunications/ble/api/model/gatt/client/pmd/
# BlePmdClient.swift L86-88 (the same three strings, CBUUID(string: ...)).
PMD_SERVICE = "FB005C80-02E7-F387-1CAD-8ACD2D8DF0C8"
PMD_CP = "FB005C81-02E7-F387-1CAD-8ACD2D8DF0C8"
PMD_DATA = "FB005C82-02E7-F387-1CAD-8ACD2D8DF0C8"
# .../pmd/PmdMeasurementType.kt L6, L8, L9: ACC(2u), GYRO(5u), MAGNETOMETER(6u); L4-16 all of
# ECG(0u) … OFFLINE_HR(14u)
PMD_TYPES = {"acc": 2, "gyro": 5, "mag": 6}
PMD_ALL_TYPES = {
    "ECG": 0,
    "PPG": 1,
    "ACC": 2,
    "PPI": 3,
    "GYRO": 5,
    "MAG": 6,  # MAGNETOMETER
    "SKIN_TEMP": 7,
    "SDK_MODE": 9,
    "LOCATION": 10,
    "PRESSURE": 11,
    "TEMPERATURE": 12,
    "OFFLINE_RECORDING": 13,
    "OFFLINE_HR": 14,
}
# .../pmd/PmdControlPointCommand.kt L5-7: GET_MEASUREMENT_SETTINGS(1),
# REQUEST_MEASUREMENT_START(2), STOP_MEASUREMENT(3); L17 ONLINE_MEASUREMENT_STOPPED(1)
PMD_OPS = {"GET_MEASUREMENT_SETTINGS": 1, "REQUEST_MEASUREMENT_START": 2, "STOP_MEASUREMENT": 3}
# .../pmd/PmdControlPointResponse.kt L5 CONTROL_POINT_RESPONSE_CODE = 0xF0; L16-30 status codes
PMD_RESPONSE_CODE = 0xF0
PMD_STATUS = [
    "SUCCESS",
    "ERROR_INVALID_OP_CODE",
    "ERROR_INVALID_MEASUREMENT_TYPE",
    "ERROR_NOT_SUPPORTED",
    "ERROR_INVALID_LENGTH",
    "ERROR_INVALID_PARAMETER",
    "ERROR_ALREADY_IN_STATE",
    "ERROR_INVALID_RESOLUTION",
    "ERROR_INVALID_SAMPLE_RATE",
    "ERROR_INVALID_RANGE",
    "ERROR_INVALID_MTU",
    "ERROR_INVALID_NUMBER_OF_CHANNELS",
    "ERROR_INVALID_STATE",
    "ERROR_DEVICE_IN_CHARGER",
    "ERROR_DISK_FULL",
]
# .../pmd/PmdSetting.kt L13-19 (types) and typeToFieldSize L126-136 (value bytes)
PMD_SETTING_BYTES = {0: 2, 1: 2, 2: 2, 3: 4, 4: 1, 5: 4, 6: 16}
# documentation/TimeSystemExplained.md: PMD timestamps are ns since 2000-01-01T00:00:00Z
PMD_EPOCH = np.datetime64("2000-01-01T00:00:00", "us")

# --- OpenBCI/OpenBCI_JavaScript_Utilities @ 33168c6, src/constants.js L483-486 ------------------
#   const simbleeUuidService = 'fe84';
#   const simbleeUuidReceive = '2d30c082f39f4ce6923f3484ea480596';
#   const simbleeUuidSend = '2d30c083f39f4ce6923f3484ea480596';
#   const simbleeUuidDisconnect = '2d30c084f39f4ce6923f3484ea480596';
GANGLION_SERVICE_16 = "fe84"
GANGLION_RECEIVE = "2d30c082f39f4ce6923f3484ea480596"
GANGLION_SEND = "2d30c083f39f4ce6923f3484ea480596"
GANGLION_DISCONNECT = "2d30c084f39f4ce6923f3484ea480596"
# brainflow-dev/brainflow @ 9097190, src/board_controller/openbci/ganglion_native.cpp L9-11:
#   #define GANGLION_WRITE_CHAR "2d30c083-f39f-4ce6-923f-3484ea480596"
#   #define GANGLION_NOTIFY_CHAR "2d30c082-f39f-4ce6-923f-3484ea480596"
#   #define GANGLION_SOFTWARE_REVISION "00002a28-0000-1000-8000-00805f9b34fb"
BRAINFLOW_WRITE = "2d30c083-f39f-4ce6-923f-3484ea480596"
BRAINFLOW_NOTIFY = "2d30c082-f39f-4ce6-923f-3484ea480596"
BRAINFLOW_SOFTWARE_REVISION = "00002a28-0000-1000-8000-00805f9b34fb"
# OpenBCI/OpenBCI_Ganglion_Library @ b6058e6, Definitions_Ganglion.h L36-37:
#   #define START_DATA_STREAM 'b'   #define STOP_DATA_STREAM 's'
GANGLION_START, GANGLION_STOP = b"b", b"s"

# --- movesense-device-lib (mirror alexisduque/movesense-device-lib @ 07177ff) -------------------
# samples/gatt_sensordata_app/GATTSensorDataClient.cpp L24, L25, L27 (least significant byte
# first): the 12 bytes all three share, then each one's last four
_MOVESENSE_BASE = [0xF0, 0xE8, 0x50, 0x70, 0x0E, 0x63, 0x31, 0xB4, 0x5D, 0x4D, 0x85, 0x71]
MOVESENSE_SERVICE_BYTES = [*_MOVESENSE_BASE, 0x52, 0x22, 0x80, 0x34]
MOVESENSE_COMMAND_BYTES = [*_MOVESENSE_BASE, 0x01, 0x00, 0x80, 0x34]
MOVESENSE_DATA_BYTES = [*_MOVESENSE_BASE, 0x02, 0x00, 0x80, 0x34]
# and python_client/movesense_sensor_data.py L20-26 WRITE_/NOTIFY_CHARACTERISTIC_UUID:
MOVESENSE_WRITE = "34800001-7185-4d5d-b431-630e7050e8f0"
MOVESENSE_NOTIFY = "34800002-7185-4d5d-b431-630e7050e8f0"
# GATTSensorDataClient.cpp L148-161: enum Commands {HELLO = 0, SUBSCRIBE = 1, UNSUBSCRIBE = 2,
# FETCH_LOG = 3}; enum Responses {COMMAND_RESULT = 1, DATA = 2, DATA_PART2 = 3, DATA_PART3 = 4}
MOVESENSE_COMMANDS = {"HELLO": 0, "SUBSCRIBE": 1, "UNSUBSCRIBE": 2}
MOVESENSE_RESPONSES = {"COMMAND_RESULT": 1, "DATA": 2, "DATA_PART2": 3, "DATA_PART3": 4}
# L622 (onNotify): size_t firstPartLen = (length>150) ? 150 : length;
MOVESENSE_SPLIT = 150

# --- mbientlab/MetaWear-SDK-Cpp @ f67699e, src/metawear/impl/cpp/metawearboard.cpp L245-251 ----
#   METAWEAR_SERVICE_NOTIFY_CHAR = { 0x326a900085cb9195, 0xd9dd464cfbbae75a,
#                                    0x326a900685cb9195, 0xd9dd464cfbbae75a };
#   METAWEAR_COMMAND_CHAR = { <service>, 0x326a900185cb9195, 0xd9dd464cfbbae75a };
METAWEAR_SERVICE = (0x326A900085CB9195, 0xD9DD464CFBBAE75A)
METAWEAR_NOTIFY = (0x326A900685CB9195, 0xD9DD464CFBBAE75A)
METAWEAR_COMMAND = (0x326A900185CB9195, 0xD9DD464CFBBAE75A)
# src/metawear/core/module.h: MBL_MW_MODULE_SWITCH = 1, LED, ACCELEROMETER (= 3);
# src/metawear/sensor/cpp/accelerometer_bosch_register.h: POWER_MODE = 1, DATA_INTERRUPT_ENABLE,
# DATA_CONFIG, DATA_INTERRUPT (= 4); BMI160 PACKED_ACC_DATA (= 0x1C); BMI270 PACKED_ACC_DATA = 0x5
METAWEAR_MODULE_ACC = 3
METAWEAR_REGISTERS = {"POWER_MODE": 1, "ENABLE": 2, "CONFIG": 3, "DATA": 4}
METAWEAR_PACKED = {"bmi160": 0x1C, "bmi270": 0x05}
# accelerometer_bosch.cpp L66-67: FSR_BITMASKS[4]= {0x3, 0x5, 0x8, 0xc},
# BMI270_FSR_BITMASKS[4]= {0x0, 0x1, 0x2, 0x3} for 2, 4, 8, 16 g
METAWEAR_RANGES = {"bmi160": [0x3, 0x5, 0x8, 0xC], "bmi270": [0x0, 0x1, 0x2, 0x3]}


def _dashed(hex32: str) -> str:
    h = hex32.lower()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _uuid16(short: str) -> str:
    return f"0000{short.lower()}-0000-1000-8000-00805f9b34fb"


def _from_lsb_bytes(b: list[int]) -> str:
    return _dashed(bytes(reversed(b)).hex())


def _from_u64_pair(pair: tuple[int, int]) -> str:
    return _dashed(f"{pair[0]:016x}{pair[1]:016x}")


def test_polar_pmd_uuids_are_the_sdks() -> None:
    want = (PMD_SERVICE.lower(), PMD_CP.lower(), PMD_DATA.lower())
    got_decoder = (
        polar_pmd.PMD_SERVICE_UUID,
        polar_pmd.PMD_CONTROL_POINT_UUID,
        polar_pmd.PMD_DATA_UUID,
    )
    got_virtual = (polar_virtual.PMD_SERVICE, polar_virtual.PMD_CP, polar_virtual.PMD_DATA)
    assert got_decoder == want
    assert got_virtual == want
    assert polar_pmd.PROFILE.service_uuids == (want[0],)
    assert set(polar_pmd.PROFILE.notify_uuids) == {want[1], want[2]}


def test_polar_protocol_constants_are_the_sdks() -> None:
    for stream, t in PMD_TYPES.items():
        assert pmd_codec.STREAM_TYPES[stream] == t
    assert {m.name: int(m) for m in pmd_codec.MeasurementType} == PMD_ALL_TYPES
    assert {k: int(pmd_control.OpCode[k]) for k in PMD_OPS} == PMD_OPS
    assert pmd_control.RESPONSE_CODE == PMD_RESPONSE_CODE
    assert [s.name for s in pmd_control.Status] == PMD_STATUS
    assert [int(s) for s in pmd_control.Status] == list(range(len(PMD_STATUS)))
    assert pmd_control.SETTING_SIZES == PMD_SETTING_BYTES
    epoch_us = int(PMD_EPOCH.astype(np.int64))
    assert epoch_us == pmd_codec.PMD_EPOCH_UNIX_US
    # the virtual device's own statements of the same facts
    v = polar_virtual
    assert v._TYPES == PMD_TYPES and v._SETTING_BYTES == PMD_SETTING_BYTES
    assert tuple(PMD_OPS.values()) == (v._OP_GET_SETTINGS, v._OP_START, v._OP_STOP)
    assert v._RESPONSE == PMD_RESPONSE_CODE and epoch_us == v._EPOCH_UNIX_US
    named = {
        "SUCCESS": v._SUCCESS,
        "ERROR_INVALID_OP_CODE": v._INVALID_OP_CODE,
        "ERROR_INVALID_MEASUREMENT_TYPE": v._INVALID_MEASUREMENT_TYPE,
        "ERROR_NOT_SUPPORTED": v._NOT_SUPPORTED,
        "ERROR_INVALID_LENGTH": v._INVALID_LENGTH,
        "ERROR_INVALID_PARAMETER": v._INVALID_PARAMETER,
        "ERROR_ALREADY_IN_STATE": v._ALREADY_IN_STATE,
        "ERROR_INVALID_RESOLUTION": v._INVALID_RESOLUTION,
        "ERROR_INVALID_SAMPLE_RATE": v._INVALID_SAMPLE_RATE,
        "ERROR_INVALID_RANGE": v._INVALID_RANGE,
        "ERROR_INVALID_MTU": v._INVALID_MTU,
        "ERROR_INVALID_NUMBER_OF_CHANNELS": v._INVALID_NUMBER_OF_CHANNELS,
    }
    assert all(PMD_STATUS.index(k) == code for k, code in named.items())


def test_ganglion_constants_are_openbcis_and_brainflows() -> None:
    assert (
        _dashed(GANGLION_RECEIVE) == BRAINFLOW_NOTIFY and _dashed(GANGLION_SEND) == BRAINFLOW_WRITE
    )
    for mod_service, mod_receive, mod_send in (
        (ganglion.SERVICE_UUID, ganglion.RECEIVE_UUID, ganglion.SEND_UUID),
        (ganglion_virtual.SERVICE, ganglion_virtual.RECEIVE, ganglion_virtual.SEND),
    ):
        assert mod_service == _uuid16(GANGLION_SERVICE_16)
        assert (mod_receive, mod_send) == (BRAINFLOW_NOTIFY, BRAINFLOW_WRITE)
    assert _dashed(GANGLION_DISCONNECT) == ganglion_virtual.DISCONNECT
    assert ganglion.SOFTWARE_REVISION_UUID == BRAINFLOW_SOFTWARE_REVISION
    assert ganglion_virtual.SOFTWARE_REVISION == BRAINFLOW_SOFTWARE_REVISION
    assert (ganglion.CMD_START, ganglion.CMD_STOP) == (GANGLION_START, GANGLION_STOP)
    assert (ganglion_virtual.START, ganglion_virtual.STOP) == (GANGLION_START, GANGLION_STOP)


def test_movesense_constants_are_the_firmwares() -> None:
    service = _from_lsb_bytes(MOVESENSE_SERVICE_BYTES)
    command = _from_lsb_bytes(MOVESENSE_COMMAND_BYTES)
    data = _from_lsb_bytes(MOVESENSE_DATA_BYTES)
    assert (command, data) == (MOVESENSE_WRITE, MOVESENSE_NOTIFY)  # firmware == sample client
    assert (
        service,
        command,
        data,
    ) == (movesense.SERVICE_UUID, movesense.WRITE_UUID, movesense.NOTIFY_UUID)
    v = movesense_virtual
    assert (service, command, data) == (v.SERVICE, v.COMMAND, v.DATA)
    assert tuple(MOVESENSE_COMMANDS.values()) == (
        movesense.CMD_HELLO,
        movesense.CMD_SUBSCRIBE,
        movesense.CMD_UNSUBSCRIBE,
    )
    assert tuple(MOVESENSE_COMMANDS.values()) == (v.HELLO, v.SUBSCRIBE, v.UNSUBSCRIBE)
    assert tuple(MOVESENSE_RESPONSES.values()) == (
        movesense.RESP_COMMAND_RESULT,
        movesense.RESP_DATA,
        movesense.RESP_DATA_PART2,
        movesense.RESP_DATA_PART3,
    )
    assert (v.COMMAND_RESULT, v.DATA_PART1, v.DATA_PART2) == (1, 2, 3)
    assert movesense.SPLIT_PAYLOAD_BYTES == MOVESENSE_SPLIT == v.SPLIT_BYTES


def test_metawear_constants_are_the_sdks() -> None:
    service = _from_u64_pair(METAWEAR_SERVICE)
    notify = _from_u64_pair(METAWEAR_NOTIFY)
    command = _from_u64_pair(METAWEAR_COMMAND)
    assert (
        service,
        notify,
        command,
    ) == (metawear.SERVICE_UUID, metawear.NOTIFY_UUID, metawear.COMMAND_UUID)
    v = metawear_virtual
    assert (service, notify, command) == (v.SERVICE, v.NOTIFY, v.COMMAND)
    assert metawear.MODULE_ACC == v.ACCELEROMETER == METAWEAR_MODULE_ACC
    r = METAWEAR_REGISTERS
    assert (r["POWER_MODE"], r["ENABLE"], r["CONFIG"], r["DATA"]) == (
        metawear.REG_POWER,
        metawear.REG_INTERRUPT_ENABLE,
        metawear.REG_CONFIG,
        metawear.REG_DATA,
    )
    assert tuple(r.values()) == (
        v.POWER_MODE,
        v.DATA_INTERRUPT_ENABLE,
        v.DATA_CONFIG,
        v.DATA_INTERRUPT,
    )
    assert tuple(METAWEAR_PACKED.values()) == (
        metawear.REG_PACKED_BMI160,
        metawear.REG_PACKED_BMI270,
    )
    assert v.PACKED == METAWEAR_PACKED
    for chip, table in (("bmi160", metawear.BMI160_RANGE), ("bmi270", metawear.BMI270_RANGE)):
        assert [table[g] for g in (2, 4, 8, 16)] == METAWEAR_RANGES[chip]
        assert sorted(v.RANGES[chip]) == sorted(METAWEAR_RANGES[chip])
        assert [v.RANGES[chip][c] for c in METAWEAR_RANGES[chip]] == [2, 4, 8, 16]


def test_glutewake_open_constants_are_its_published_specification() -> None:
    """glutewake-open's specification is docs/devices.md (its GATT layout table)."""
    doc = (Path(__file__).resolve().parents[2] / "docs" / "devices.md").read_text()
    table = dict(re.findall(r"^\| ([A-Za-z -]+?) \| `([0-9a-f-]{36})` \|", doc, re.M))
    assert table["glutewake-open service"] == glutewake_open.SERVICE_UUID
    assert table["EMG data"] == glutewake_open.EMG_DATA_UUID
    assert table["ACC data"] == glutewake_open.ACC_DATA_UUID
    assert table["configuration"] == glutewake_open.CONFIG_UUID
    assert table["command"] == glutewake_open.COMMAND_UUID


# ------------------------------------------------------------------------------------------------
# what each virtual device serves covers what its profile needs (else collection fails)
# ------------------------------------------------------------------------------------------------

T0 = 1_780_000_000_000_000


def _signal(stream: str, fs: float, channels: int) -> StreamSamples:
    n = 50
    return StreamSamples(
        stream,
        T0 + np.rint(np.arange(n) * 1e6 / fs).astype(np.int64),
        np.zeros((n, channels)),
        tuple(f"c{k}" for k in range(channels)),
        "g" if stream != "emg" else "uV",
        fs,
        np.arange(n),
    )


def _pairs() -> list[tuple[DeviceProfile, VirtualDevice, dict]]:
    acc52, acc100 = _signal("acc", 52, 3), _signal("acc", 100, 3)
    imu = {s: _signal(s, 104, 3) for s in ("acc", "gyro", "mag")}
    return [
        (polar_pmd.PROFILE, polar_pmd.PolarVirtualDevice(acc52), {"acc": {"sample_rate_hz": 52}}),
        (ganglion.PROFILE, ganglion.GanglionVirtualDevice(_signal("emg", 200, 4)), {"emg": {}}),
        (
            movesense.PROFILE,
            movesense.MovesenseVirtualDevice(imu),
            {"imu9": {"sample_rate_hz": 104}},
        ),
        (
            metawear.PROFILE,
            metawear.MetaWearVirtualDevice(acc100),
            {"acc": {"sample_rate_hz": 100}},
        ),
        (
            glutewake_open.PROFILE,
            GlutewakeOpenVirtualDevice(_signal("emg", 1000, 2)),
            {"emg": {"fs_hz": 1000, "channels": 2}},
        ),
    ]


@pytest.mark.parametrize("pair", _pairs(), ids=lambda p: p[0].name)
def test_virtual_device_serves_what_its_profile_uses(pair: tuple) -> None:
    profile, device, config = pair
    layout = device.gatt_layout()
    assert isinstance(layout, GattLayout)
    chars = {c.uuid: c.properties for s in layout.services for c in s.characteristics}
    assert profile.service_uuids[0] in {s.uuid for s in layout.services}
    for uuid in profile.notify_uuids:
        if uuid not in chars:  # e.g. glutewake-open's ACC on a board without an IMU
            assert uuid in profile.optional_notify_uuids, uuid
            continue
        assert chars[uuid] & {"notify", "indicate"}, uuid
    for w in profile.start_writes(config) + profile.stop_writes(config):
        need = "write" if w.with_response else "write-without-response"
        assert need in chars[w.char_uuid], (w.char_uuid, need)
    assert any(layout.advertised_name.startswith(p) for p in profile.name_prefixes)
