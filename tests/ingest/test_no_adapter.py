"""Without a usable Bluetooth adapter, ``scan`` and ``collect`` say so in one line and fail.

The failures are injected where bleak raises them: a scanner backend whose ``start`` raises what
bleak 3.x raises in each situation (``bleak/backends/bluezdbus/manager.py``): the D-Bus socket
missing (``FileNotFoundError`` from ``dbus_fast``), BlueZ not running (``BleakDBusError``
``ServiceUnknown``), no adapter or one switched off (``BleakBluetoothNotAvailableError``).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import bleak
import pytest
from bleak.backends.scanner import BaseBleakScanner
from bleak.exc import (
    BleakBluetoothNotAvailableError,
    BleakBluetoothNotAvailableReason,
    BleakDBusError,
)

from glutewake.cli import main
from glutewake.ingest.adapter import NO_ADAPTER, NoAdapterError
from glutewake.ingest.collector import (
    EXIT_NEVER_CONNECTED,
    Backends,
    CollectorSettings,
    DeviceSpec,
    run_collection,
)
from glutewake.ingest.scan import scan_async
from glutewake.store.datadir import DataDir

FAST = CollectorSettings(
    backoff_min_s=0.05, backoff_max_s=0.1, scan_timeout_s=0.2, status_interval_s=0.1
)

FAILURES: dict[str, tuple[BaseException, str]] = {
    "no D-Bus": (
        FileNotFoundError(2, "No such file or directory"),
        f"{NO_ADAPTER} (the D-Bus system bus is not reachable: "
        "[Errno 2] No such file or directory)",
    ),
    "no BlueZ": (
        BleakDBusError("org.freedesktop.DBus.Error.ServiceUnknown", ["bluez is not running"]),
        f"{NO_ADAPTER} (BlueZ does not answer on D-Bus: org.freedesktop.DBus.Error.ServiceUnknown)",
    ),
    "no adapter": (
        BleakBluetoothNotAvailableError(
            "No Bluetooth adapters found.", BleakBluetoothNotAvailableReason.NO_BLUETOOTH
        ),
        f"{NO_ADAPTER} (No Bluetooth adapters found.)",
    ),
    "adapter off": (
        BleakBluetoothNotAvailableError(
            "No powered Bluetooth adapters found.", BleakBluetoothNotAvailableReason.POWERED_OFF
        ),
        "the Bluetooth adapter is powered off: turn it on (bluetoothctl power on)",
    ),
}


def failing_backend(exc: BaseException) -> type[BaseBleakScanner]:
    class NoRadio(BaseBleakScanner):
        started = 0

        def __init__(self, detection_callback: Any, service_uuids: Any, *a: Any, **k: Any):
            super().__init__(detection_callback, service_uuids)

        async def start(self) -> None:
            NoRadio.started += 1
            raise exc

        async def stop(self) -> None:
            raise AssertionError("a scan that never started is not stopped")

    return NoRadio


class QuietRadio(BaseBleakScanner):
    """An adapter that works but hears nothing (the device is away)."""

    def __init__(self, detection_callback: Any, service_uuids: Any, *a: Any, **k: Any):
        super().__init__(detection_callback, service_uuids)

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass


@pytest.mark.parametrize("case", list(FAILURES))
async def test_scan_names_the_missing_adapter(case: str) -> None:
    exc, message = FAILURES[case]
    with pytest.raises(NoAdapterError) as info:
        await scan_async(0.1, backend=failing_backend(exc))
    assert str(info.value) == message


async def test_other_scan_errors_are_not_mistaken_for_a_missing_adapter() -> None:
    with pytest.raises(RuntimeError, match="a bug"):
        await scan_async(0.1, backend=failing_backend(RuntimeError("a bug")))


@pytest.mark.parametrize("case", list(FAILURES))
async def test_collection_stops_at_once_with_the_reason(case: str, tmp_path: Path) -> None:
    exc, message = FAILURES[case]
    backend = failing_backend(exc)
    specs = [DeviceSpec("Polar Sense"), DeviceSpec("A0:9E:1A:00:00:01")]
    with pytest.raises(NoAdapterError) as info:
        await run_collection(
            DataDir(tmp_path / "data"),
            "P01",
            specs,
            settings=FAST,
            backends=Backends(scanner=backend),
            duration_s=30.0,  # not waited for
        )
    assert str(info.value) == message
    assert backend.started == 2  # one attempt per device, no retry loop


async def test_collect_that_never_connects_does_not_exit_0(tmp_path: Path) -> None:
    code = await run_collection(
        DataDir(tmp_path / "data"),
        "P01",
        [DeviceSpec("Polar Sense")],
        settings=FAST,
        backends=Backends(scanner=QuietRadio),
        duration_s=1.0,
    )
    assert code == EXIT_NEVER_CONNECTED


@pytest.mark.parametrize(
    "command",
    [
        ["scan", "--timeout", "0.2"],
        ["collect", "--participant", "P01", "--device", "Polar", "--duration", "5"],
    ],
)
def test_the_commands_print_one_line_and_fail(
    command: list[str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    exc, message = FAILURES["no D-Bus"]
    backend = failing_backend(exc)
    monkeypatch.setattr(bleak, "get_platform_scanner_backend_type", lambda: (backend, "NoRadio"))
    try:
        code = main([*command, "--data", str(tmp_path / "data")])
    except SystemExit as stop:
        code = int(stop.code or 0)
    _, err = capsys.readouterr()
    assert code != 0
    assert err == f"glutewake: error: {message}\n"


def _system_bus_present() -> bool:
    address = os.environ.get("DBUS_SYSTEM_BUS_ADDRESS", "")
    return bool(address) or any(
        os.path.exists(p)
        for p in ("/run/dbus/system_bus_socket", "/var/run/dbus/system_bus_socket")
    )


@pytest.mark.skipif(
    sys.platform != "linux" or _system_bus_present(),
    reason="needs a Linux machine without a D-Bus system bus (as in CI containers)",
)
def test_the_real_scan_on_a_machine_without_dbus(tmp_path: Path) -> None:
    res = subprocess.run(
        [sys.executable, "-m", "glutewake", "scan", "--timeout", "0.5"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.returncode == 2
    assert res.stderr.startswith(f"glutewake: error: {NO_ADAPTER}")
    assert res.stderr.count("\n") == 1
