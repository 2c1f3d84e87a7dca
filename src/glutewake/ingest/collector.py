"""Background BLE collection: ``glutewake collect``.

:func:`collect` runs one :class:`~glutewake.ingest.supervisor.DeviceSupervisor` per device in one
asyncio loop (scan, connect through ``bleak-retry-connector``, MTU check, reads, subscribe, start
commands, reconnect forever with backoff, watchdog, stream restarts), one spool writer thread
(:mod:`glutewake.ingest.spool_thread`), and the outputs: a small JSON per device under
``DATA/status/`` every few seconds (read by ``glutewake status``), a rotating log file in
``DATA/logs/`` and, on a terminal, a live status line. SIGINT/SIGTERM send the stop commands,
disconnect, flush the spool and exit 0.

The notification callback does nothing but put ``(payload, host time, characteristic)`` on a
queue; the writer thread appends it to the device's :class:`SpoolWriter`, together with every
WRITE, READ, CONNECT and DISCONNECT.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import logging.handlers
import os
import signal
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any

from glutewake.devices import get_profile
from glutewake.ingest.adapter import NoAdapterError
from glutewake.ingest.spool_thread import CollectorError, LiveQc, SpoolWriterThread
from glutewake.ingest.stopping import stop_step as _stop_step
from glutewake.ingest.supervisor import (
    DEFAULT_CONFIGS,
    Backends,
    Backoff,
    CollectorSettings,
    ConfigRejectedError,
    DeviceSpec,
    DeviceState,
    DeviceSupervisor,
    MtuTooSmallError,
    ProfileNotFoundError,
    config_for,
    status_path,
    utc_now_us,
)
from glutewake.store.datadir import DataDir
from glutewake.store.ids import check_participant_id
from glutewake.store.private import FILE_MODE, private_dir

__all__ = [
    "DEFAULT_CONFIGS",
    "EXIT_DEVICE_FAILED",
    "EXIT_NEVER_CONNECTED",
    "EXIT_OK",
    "EXIT_STOP_STALLED",
    "Backends",
    "Backoff",
    "CollectorError",
    "CollectorSettings",
    "ConfigRejectedError",
    "DeviceSpec",
    "DeviceState",
    "DeviceSupervisor",
    "LiveQc",
    "MtuTooSmallError",
    "NoAdapterError",
    "ProfileNotFoundError",
    "SpoolWriterThread",
    "collect",
    "config_for",
    "run_collection",
    "run_to_exit",
    "status_path",
    "stop_step",
    "utc_now_us",
    "write_status",
]

log = logging.getLogger(__name__)
log.addHandler(logging.NullHandler())

LOG_NAME = "collect.log"

EXIT_OK = 0
EXIT_DEVICE_FAILED = 3
#: the stop did not finish within :data:`EXIT_DEADLINE_S`; the process was ended regardless
EXIT_STOP_STALLED = 4
#: a device was never connected during the run: nothing was collected from it
EXIT_NEVER_CONNECTED = 5

#: how long supervisors get, after a stop, to send stop commands and close their links
STOP_GRACE_S = 10.0
#: longest any other single step of the stop path may take (each is logged if it runs over)
STOP_STEP_S = 10.0
#: longest the spool writer may take to write what is queued and close its segments
SPOOL_CLOSE_S = 60.0
#: last resort: a process whose stop has not finished this long after it began ends anyway
#: (the journal already holds, fsynced, everything received up to a second before)
EXIT_DEADLINE_S = STOP_GRACE_S * 2 + STOP_STEP_S * 4 + SPOOL_CLOSE_S


async def stop_step(step: str, awaitable: Awaitable[Any], timeout_s: float) -> bool:
    """Await one step of the stop path; bounded (see :mod:`glutewake.ingest.stopping`)."""
    return await _stop_step(step, awaitable, timeout_s)


async def in_daemon_thread(fn: Callable[[], None], *, name: str) -> None:
    """Run blocking ``fn`` on its own daemon thread and await it.

    Unlike :func:`asyncio.to_thread` (the loop's default executor, which the interpreter joins
    at exit), a call that never returns cannot keep the process from exiting.
    """
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()

    def settle(exc: BaseException | None) -> None:
        if done.done():
            return
        if exc is None:
            done.set_result(None)
        else:
            done.set_exception(exc)

    def run() -> None:
        error: BaseException | None = None
        try:
            fn()
        except BaseException as exc:  # handed to the awaiting task
            error = exc
        with contextlib.suppress(RuntimeError):  # the loop is gone: nobody is waiting
            loop.call_soon_threadsafe(settle, error)

    threading.Thread(target=run, name=f"glutewake-{name}", daemon=True).start()
    await asyncio.shield(done)


# --------------------------------------------------------------------------- status output
def write_status(path: Path, status: dict[str, Any]) -> None:
    """Write a status JSON atomically, readable by the owner only."""
    private_dir(path.parent)
    tmp = path.with_suffix(".json.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(status, fh, indent=1, sort_keys=True)
    os.replace(tmp, path)


def _status_line(snaps: Sequence[dict[str, Any]]) -> str:
    parts = []
    for s in snaps:
        age = s["last_data_age_s"]
        battery = "?" if s["battery_pct"] is None else f"{s['battery_pct']}%"
        parts.append(
            f"{s['name'] or s['target']} [{s['state']}] data age "
            f"{'-' if age is None else f'{age:.1f}s'} rate {s['rate_hz']:.1f}/s "
            f"lost {'-' if s['packets_lost'] is None else s['packets_lost']} "
            f"reconnects {s['reconnects']} battery {battery}"
        )
    return " | ".join(parts)


# --------------------------------------------------------------------------- the collection
async def run_collection(
    data_dir: DataDir,
    participant_id: str,
    specs: Sequence[DeviceSpec],
    *,
    settings: CollectorSettings | None = None,
    backends: Backends | None = None,
    duration_s: float | None = None,
    labels: dict[str, Any] | None = None,
    stop: asyncio.Event | None = None,
    status_line: bool = False,
    handle_signals: bool = False,
    on_supervisors: Callable[[list[DeviceSupervisor]], None] | None = None,
) -> int:
    """Collect from ``specs`` until ``stop`` is set, ``duration_s`` passes, or a signal.

    The async core of :func:`collect` (tests call it with their own backends and profiles).

    Returns
    -------
    int
        0 on a clean stop, 3 if any device had to be given up, 5 if a device was never
        connected (nothing was collected from it).

    Raises
    ------
    NoAdapterError
        If no scan could start for want of a usable Bluetooth adapter (one line saying so).
    """
    if not specs:
        raise ValueError("no devices to collect from")
    check_participant_id(participant_id)
    settings = settings or CollectorSettings()
    backends = backends or Backends()
    stop = stop or asyncio.Event()
    data_dir.create()
    writer_thread = SpoolWriterThread()
    writer_thread.start()
    supervisors = [
        DeviceSupervisor(
            spec,
            data_dir=data_dir,
            participant_id=participant_id,
            labels=dict(labels or {}),
            writer_thread=writer_thread,
            settings=settings,
            backends=backends,
            stop=stop,
        )
        for spec in specs
    ]
    if on_supervisors is not None:
        on_supervisors(supervisors)
    loop = asyncio.get_running_loop()
    installed: list[signal.Signals] = []
    if handle_signals:
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, stop.set)
                installed.append(sig)
    live = None
    if status_line and sys.stderr.isatty():
        from rich.console import Console
        from rich.live import Live

        live = Live("", console=Console(stderr=True), refresh_per_second=2, transient=True)
        live.start()

    published: dict[int, Path] = {}

    def publish(sup: DeviceSupervisor, snap: dict[str, Any]) -> None:
        # keyed by target until the device is found, then by its address (old file removed)
        path = status_path(data_dir, participant_id, snap["device_id"])
        old = published.get(id(sup))
        with contextlib.suppress(OSError):
            write_status(path, snap)
            if old is not None and old != path:
                old.unlink(missing_ok=True)
            published[id(sup)] = path

    async def evaluate_qc() -> None:
        for sup in supervisors:
            if sup.live_qc is not None:
                await in_daemon_thread(sup.live_qc.evaluate, name="live-qc")

    async def report() -> None:
        next_qc = time.monotonic() + settings.qc_interval_s
        while True:
            if time.monotonic() >= next_qc:
                next_qc = time.monotonic() + settings.qc_interval_s
                await evaluate_qc()
            depth = writer_thread.depth()
            snaps = [s.snapshot(depth) for s in supervisors]
            for sup, snap in zip(supervisors, snaps, strict=True):
                publish(sup, snap)
            if live is not None:
                from rich.text import Text

                live.update(Text(_status_line(snaps)))  # plain text: names may hold [brackets]
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), settings.status_interval_s)
            if stop.is_set():
                return

    async def deadline() -> None:
        if duration_s is not None:
            await asyncio.sleep(duration_s)
            stop.set()

    tasks = [asyncio.create_task(s.run(), name=f"supervise-{s.spec.target}") for s in supervisors]
    reporter = asyncio.create_task(report())
    timer = asyncio.create_task(deadline())
    try:
        # supervisors return on stop, or when their device is given up; a supervisor stuck in a
        # GATT operation that never completes must not keep the process from stopping
        stopping = asyncio.create_task(stop.wait())
        await asyncio.wait([*tasks, stopping], return_when=asyncio.FIRST_COMPLETED)
        while not all(t.done() for t in tasks) and not stop.is_set():
            await asyncio.wait([*tasks, stopping], return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        pending = [t for t in tasks if not t.done()]
        if pending:
            _, late = await asyncio.wait(pending, timeout=STOP_GRACE_S)
            for task in late:
                log.warning(
                    "%s did not stop within %.0f s; cancelling it", task.get_name(), STOP_GRACE_S
                )
        for task in tasks:
            if task.done() and not task.cancelled() and task.exception() is not None:
                raise task.exception()  # type: ignore[misc]
    finally:
        # every step of the stop is bounded: a step that never finishes is logged by name and
        # the stop goes on, so what was received is flushed and the process exits
        stop.set()
        timer.cancel()
        for task in tasks:
            if not task.done():
                task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            _, stuck = await asyncio.wait(tasks, timeout=STOP_GRACE_S)
            for task in stuck:
                log.warning("%s did not end when cancelled; going on without it", task.get_name())
        await stop_step("status reporter", asyncio.shield(reporter), STOP_STEP_S)
        for sig in installed:
            loop.remove_signal_handler(sig)
        if live is not None:
            live.stop()
        try:  # a spool that failed is an error of the run (CollectorError); a stuck one is not
            await asyncio.wait_for(
                in_daemon_thread(writer_thread.close, name="spool-close"), SPOOL_CLOSE_S
            )
        except TimeoutError:
            log.warning(
                "stop step 'spool writer close' did not finish within %.0f s; the journal keeps "
                "what was received and becomes a segment on the next start",
                SPOOL_CLOSE_S,
            )
        await stop_step("final live QC", evaluate_qc(), STOP_STEP_S)
        for sup in supervisors:
            publish(sup, sup.snapshot(0))
    no_adapter = next((s.no_adapter for s in supervisors if s.no_adapter), None)
    if no_adapter is not None:
        raise NoAdapterError(no_adapter)
    if any(s.status.failed for s in supervisors):
        return EXIT_DEVICE_FAILED
    never = [s.spec.target for s in supervisors if not s.ever_connected]
    if never:
        log.error(
            "never connected to %s: nothing was collected from %s",
            ", ".join(never),
            "it" if len(never) == 1 else "them",
        )
        return EXIT_NEVER_CONNECTED
    return EXIT_OK


class _ForwardToRoot(logging.Handler):
    """Pass records on to the root handlers only at the level the application chose for root.

    The log file wants INFO from the package; the terminal should stay at the application's
    level, so the package logger stops propagating and forwards through this handler.
    """

    def emit(self, record: logging.LogRecord) -> None:
        root = logging.getLogger()
        if record.levelno < root.getEffectiveLevel():
            return
        for handler in root.handlers:
            if record.levelno >= handler.level:
                handler.handle(record)


class _PrivateRotatingFileHandler(logging.handlers.RotatingFileHandler):
    """A rotating log whose every file (the first and each one after a rollover) is ``0600``."""

    def _open(self) -> Any:
        fd = os.open(self.baseFilename, os.O_WRONLY | os.O_CREAT | os.O_APPEND, FILE_MODE)
        os.chmod(self.baseFilename, FILE_MODE)  # a log written by an older version
        return os.fdopen(fd, "a", encoding=self.encoding, errors=self.errors)


def _attach_log_file(data_dir: DataDir) -> Callable[[], None]:
    """Log the package at INFO to a rotating file in ``DATA/logs``; return the undo function."""
    private_dir(data_dir.logs)
    path = data_dir.logs / LOG_NAME
    handler = _PrivateRotatingFileHandler(
        path, maxBytes=5 * 1024 * 1024, backupCount=5, encoding="utf-8"
    )
    handler.setFormatter(
        logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(process)d] %(message)s")
    )
    handler.setLevel(logging.INFO)
    forward = _ForwardToRoot()
    package_log = logging.getLogger("glutewake")
    saved = (package_log.level, package_log.propagate)
    package_log.addHandler(handler)
    package_log.addHandler(forward)
    package_log.propagate = False
    if package_log.getEffectiveLevel() > logging.INFO:
        package_log.setLevel(logging.INFO)

    def undo() -> None:
        package_log.removeHandler(handler)
        package_log.removeHandler(forward)
        package_log.setLevel(saved[0])
        package_log.propagate = saved[1]
        handler.close()

    return undo


def collect(
    data_dir: DataDir,
    *,
    participant_id: str,
    devices: list[str] | None = None,
    profile: str | None = None,
    simulate: list[str] | None = None,
    faults: str | None = None,
    duration_s: float | None = None,
    config: dict[str, Any] | None = None,
    labels: dict[str, Any] | None = None,
    status_line: bool = True,
    settings: CollectorSettings | None = None,
) -> int:
    """Collect from BLE wearables into the spool until SIGINT/SIGTERM or ``duration_s``.

    Parameters
    ----------
    data_dir : DataDir
        Where the spool, status files and logs go.
    participant_id : str
        Who wears the devices.
    devices : list of str, optional
        Bluetooth addresses or advertised names (a name also matches as a prefix).
    profile : str, optional
        Registry name of the device profile; default: recognised from the advertisement.
    simulate : list of str, optional
        Profile names to run as in-process virtual devices over bumble instead of ``devices``.
    faults : str, optional
        Fault injection for ``simulate`` (see :func:`glutewake.ingest.peripheral.parse_faults`),
        e.g. ``"linkloss@20s:5s,drop=0.01,dup=0.005,reorder=0.005,stop@40s,mtu=23"``.
    duration_s : float, optional
        Stop after this long (default: run until a signal).
    config : dict, optional
        Stream configuration, either one config or one per profile name.
    labels : dict, optional
        Free-form labels stored with every spool segment (e.g. placement).
    status_line : bool
        Show a live status line when stderr is a terminal.
    settings : CollectorSettings, optional
        Supervisor timing.

    Returns
    -------
    int
        Exit code: 0 clean stop, 3 a device was given up (e.g. MTU too small), 5 a device was
        never connected.

    Raises
    ------
    ValueError
        If neither or both of ``devices`` and ``simulate`` are given, or ``faults`` without
        ``simulate``.
    InvalidIdError
        If ``participant_id`` breaks the participant-ID rule (docs/storage.md).
    NoAdapterError
        If there is no usable Bluetooth adapter.
    """
    check_participant_id(participant_id)
    if bool(devices) == bool(simulate):
        raise ValueError("give either devices (addresses or names) or simulate (profile names)")
    if faults and not simulate:
        raise ValueError("faults can only be injected into simulated devices (simulate=...)")
    if duration_s is not None and duration_s <= 0:
        raise ValueError(f"duration_s must be positive, got {duration_s}")
    fixed_profile = get_profile(profile) if profile else None
    data_dir.create()
    detach_log = _attach_log_file(data_dir)
    try:
        stop = asyncio.Event()
        if simulate:
            coro = _collect_simulated(
                data_dir,
                participant_id,
                simulate,
                faults,
                duration_s,
                config,
                labels,
                status_line,
                settings,
                stop,
            )
        else:
            specs = [DeviceSpec(d, fixed_profile, config) for d in devices or []]
            coro = run_collection(
                data_dir,
                participant_id,
                specs,
                settings=settings,
                duration_s=duration_s,
                labels=labels,
                stop=stop,
                status_line=status_line,
                handle_signals=True,
            )
        return run_to_exit(coro, stop)
    finally:
        detach_log()


def run_to_exit(
    main: Coroutine[Any, Any, int], stop: asyncio.Event, *, deadline_s: float | None = None
) -> int:
    """Run ``main`` on a new event loop like :func:`asyncio.run`, with a stop that always ends.

    Once ``stop`` is set (or ``main`` ends) the call has ``deadline_s`` (default
    :data:`EXIT_DEADLINE_S`) to return; past that the stacks of all threads go to stderr, the
    reason to the log, and the process ends with :data:`EXIT_STOP_STALLED`. The loop's own
    teardown is bounded too: tasks left over are cancelled and waited for at most
    :data:`STOP_STEP_S`, and the default executor is not joined.

    Parameters
    ----------
    main : coroutine
        The collection (``run_collection(..., stop=stop)`` or the simulated variant).
    stop : asyncio.Event
        The event that asks ``main`` to stop; setting it arms the deadline.
    deadline_s : float, optional
        Seconds from the stop to a forced exit.

    Returns
    -------
    int
        What ``main`` returned.

    Examples
    --------
    >>> stop = asyncio.Event()
    >>> async def main() -> int:
    ...     stop.set()
    ...     return 0
    >>> run_to_exit(main(), stop)
    0
    """
    deadline = _ExitDeadline(EXIT_DEADLINE_S if deadline_s is None else deadline_s)

    async def armed() -> int:
        async def arm_on_stop() -> None:
            await stop.wait()
            deadline.arm()

        arming = asyncio.create_task(arm_on_stop(), name="exit-deadline")
        try:
            return await main
        finally:
            deadline.arm()  # main has ended (or failed): what is left is teardown
            arming.cancel()

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        return loop.run_until_complete(armed())
    finally:
        try:
            _cancel_leftovers(loop)
            loop.run_until_complete(
                stop_step("async generators shutdown", loop.shutdown_asyncgens(), STOP_STEP_S)
            )
        finally:
            asyncio.set_event_loop(None)
            loop.close()
            deadline.cancel()  # the stop finished: an in-process caller goes on


class _ExitDeadline:
    """Ends the process if it is still alive ``deadline_s`` after :meth:`arm` (daemon timer)."""

    def __init__(self, deadline_s: float) -> None:
        self.deadline_s = deadline_s
        self._timer: threading.Timer | None = None

    def arm(self) -> None:
        if self._timer is not None:
            return
        self._timer = threading.Timer(self.deadline_s, self._expire)
        self._timer.daemon = True
        self._timer.name = "glutewake-exit-deadline"
        self._timer.start()

    def cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()

    def _expire(self) -> None:
        import faulthandler

        log.error(
            "the stop did not finish within %.0f s of being asked for; ending the process "
            "(the stacks of all threads are on stderr)",
            self.deadline_s,
        )
        with contextlib.suppress(Exception):
            faulthandler.dump_traceback(file=sys.stderr, all_threads=True)
        os._exit(EXIT_STOP_STALLED)


def _cancel_leftovers(loop: asyncio.AbstractEventLoop) -> None:
    """Cancel the tasks still pending when the main coroutine returned; wait a bounded time."""
    leftovers = [t for t in asyncio.all_tasks(loop) if not t.done()]
    if not leftovers:
        return
    for task in leftovers:
        task.cancel()
    done, stuck = loop.run_until_complete(asyncio.wait(leftovers, timeout=STOP_STEP_S))
    for task in done:
        if not task.cancelled() and task.exception() is not None:
            log.debug("%s ended with %r during teardown", task.get_name(), task.exception())
    for task in stuck:
        log.warning("%s did not end when cancelled at exit; leaving it", task.get_name())


async def _collect_simulated(
    data_dir: DataDir,
    participant_id: str,
    names: list[str],
    faults: str | None,
    duration_s: float | None,
    config: dict[str, Any] | None,
    labels: dict[str, Any] | None,
    status_line: bool,
    settings: CollectorSettings | None,
    stop: asyncio.Event | None = None,
) -> int:
    from glutewake.ingest.ble_bumble_backend import (
        BumbleBleakClient,
        BumbleBleakScanner,
        BumbleRadio,
    )
    from glutewake.ingest.peripheral import parse_faults
    from glutewake.ingest.simulated import start_virtual_peripherals

    plan = parse_faults(faults)
    async with BumbleRadio() as radio:
        peripherals = await start_virtual_peripherals(
            radio, names, config=config, faults=plan, duration_s=duration_s, keep_log=False
        )
        specs = [DeviceSpec(p.address, p.profile, p.config) for p in peripherals]
        return await run_collection(
            data_dir,
            participant_id,
            specs,
            settings=settings,
            backends=Backends(BumbleBleakScanner, BumbleBleakClient),
            duration_s=duration_s,
            labels={"simulated": True, **(labels or {})},
            stop=stop,
            status_line=status_line,
            handle_signals=True,
        )
