"""Run independent tasks serially, in a process pool, or on a Dask cluster.

Every task is a module-level function with picklable arguments that returns its rows instead of
writing them, so the caller can gather the results and write the catalog in one step (DuckDB has
one writer). :class:`TaskRunner` keeps going past a failed task: the failure comes back as a
:class:`TaskFailure` naming the task and its error, after the configured retries.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

_T = TypeVar("_T")

log = logging.getLogger(__name__)
log.addHandler(logging.NullHandler())

#: how long to wait for a Dask scheduler to answer before giving up
CONNECT_TIMEOUT_S = 30.0
#: the only interface a local Dask cluster listens on
LOOPBACK = "127.0.0.1"


class TaskError(RuntimeError):
    """A task failed and the runner was told to stop (``on_error="stop"``)."""


@dataclass(frozen=True)
class TaskFailure:
    """A task that raised on every attempt."""

    key: str
    error: str
    traceback: str
    attempts: int


#: thread pools of native libraries, for libraries a worker process loads later
_ONE_THREAD_ENV = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def _single_threaded_blas() -> Any:
    """Limit the BLAS libraries loaded so far to one thread (a context manager that restores
    them; the limit applies on creation). Costs about 1 ms.

    The tasks' matrix products are small, and OpenBLAS's idle worker threads spin while they
    wait: in a measured serial run they burned 10 % of all CPU time for no work, and with one
    task per core they take cycles from the other workers.
    """
    # numpy and scipy each bring their own OpenBLAS, loaded on import: load both first so that
    # a task importing scipy does not start a fresh, multi-threaded one
    import numpy  # noqa: F401
    import scipy.linalg  # noqa: F401
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1, user_api="blas")


#: glibc malloc for processes that run tasks: large blocks from the heap instead of fresh
#: mmaps, and no trimming, so a freed array's pages are reused by the next instead of being
#: returned to the kernel and faulted in (zeroed) again. Measured on one participant-week:
#: 60 % fewer page faults, 9 % less CPU, 15 % more peak memory (the heap keeps its peak).
#: One arena: a Dask worker runs its tasks in a second thread, and glibc's per-thread arenas
#: (64 MiB heaps, released when empty) would fault the memory in again regardless.
#: Each setting: (mallopt parameter, environment variable, value).
_MALLOC_SETTINGS = (
    (-4, "MALLOC_MMAP_MAX_", 0),  # M_MMAP_MAX
    (-1, "MALLOC_TRIM_THRESHOLD_", 2**31 - 1),  # M_TRIM_THRESHOLD
    (-8, "MALLOC_ARENA_MAX", 1),  # M_ARENA_MAX
)
#: the same settings as environment variables, read by glibc when a process starts
MALLOC_ENV = {name: str(value) for _, name, value in _MALLOC_SETTINGS}


def keep_freed_memory() -> bool:
    """Apply :data:`MALLOC_ENV` to this process, now (glibc only; False elsewhere).

    For processes that exist to run tasks (the CLI's serial ``process``, pool and Dask workers,
    on their first task): their memory then stays at its peak until they exit. A thread that
    already has an arena keeps it; the environment set before a process starts covers those.
    """
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    try:
        mallopt = ctypes.CDLL(name).mallopt if name else None
    except (OSError, AttributeError):  # not glibc (musl, macOS)
        mallopt = None
    if mallopt is None:
        return False
    return all(bool(mallopt(option, value)) for option, _, value in _MALLOC_SETTINGS)


def _pool_worker_init(parent_alive: Any = None) -> None:
    os.environ.update(_ONE_THREAD_ENV)
    if parent_alive is not None:
        exit_with_parent(parent_alive)


def exit_with_parent(parent_alive: Any) -> None:
    """End this process the moment its parent dies, however it dies (``SIGKILL`` included).

    ``parent_alive`` is the read end of a pipe whose only write end the parent holds: when the
    parent process ends, the kernel closes it and the read returns end-of-file. A daemon thread
    waits for that and exits the process at once (``os._exit``: no cleanup that could block).
    Unlike ``PR_SET_PDEATHSIG``, which fires when the *thread* that started the child ends, this
    follows the parent process, and it works on every platform.
    """

    def wait() -> None:
        with contextlib.suppress(EOFError, OSError):
            parent_alive.recv_bytes()
        os._exit(_ORPHAN_EXIT)

    threading.Thread(target=wait, name="glutewake-parent-watch", daemon=True).start()


#: exit status of a task process whose parent died (EX_SOFTWARE)
_ORPHAN_EXIT = 70


_worker_memory_kept = False


def _run_task(fn: Callable[..., _T], *args: Any) -> _T:
    """Run one task in a worker process (pool or Dask, local or remote): one task per core,
    so one thread; and the worker exists to run tasks, so it keeps freed memory."""
    global _worker_memory_kept
    if not _worker_memory_kept:
        _worker_memory_kept = True
        keep_freed_memory()
    _single_threaded_blas()  # again per task: earlier tasks may have loaded more libraries
    return fn(*args)


def _describe(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


@dataclass
class TaskRunner:
    """Where and how tasks run.

    Parameters
    ----------
    workers : int
        Processes on this machine (1 = in this process). Ignored when ``scheduler`` is set.
    scheduler : str or None
        Address of a Dask distributed scheduler (``tcp://host:8786``), or ``"local"`` for a
        local cluster of ``workers`` single-threaded processes; needs the ``cluster`` extra.
        Workers must see the data directory at the same path (a shared filesystem). Use the
        runner as a context manager (or call :meth:`close`) to release the connection.
    retries : int
        Extra attempts for a task that raises before it counts as failed.
    on_error : {"skip", "stop"}
        ``skip``: record the failure and go on; ``stop``: raise :class:`TaskError` at the first
        failed task (after its retries).
    """

    workers: int = 1
    scheduler: str | None = None
    retries: int = 1
    on_error: str = "skip"
    _client: Any = field(default=None, init=False, repr=False)
    _pool: Any = field(default=None, init=False, repr=False)
    _cluster: Any = field(default=None, init=False, repr=False)
    #: the pipe whose closing (this process ending) ends the pool's workers
    _lifeline: Any = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.on_error not in ("skip", "stop"):
            raise ValueError(f"on_error must be 'skip' or 'stop', not {self.on_error!r}")
        if self.workers < 1 or self.retries < 0:
            raise ValueError("workers must be >= 1 and retries >= 0")

    def __enter__(self) -> TaskRunner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the process pool, or disconnect from the Dask scheduler (and stop a local
        cluster this runner started)."""
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None
        if self._lifeline is not None:
            for end in self._lifeline:
                end.close()
            self._lifeline = None
        if self._client is not None:
            self._client.close()
            self._client = None
        if self._cluster is not None:
            self._cluster.close()
            self._cluster = None

    def _process_pool(self) -> Any:
        # one pool for the runner's lifetime: each spawned worker pays the numpy/scipy/polars
        # imports once, not once per stage of the process job
        if self._pool is None:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            context = multiprocessing.get_context("spawn")
            if self._lifeline is None:
                # workers get the read end; only this process holds the write end, so they
                # see end-of-file and exit when it dies, even by SIGKILL (no orphans)
                self._lifeline = context.Pipe(duplex=False)
            # spawn, not fork: the parent may hold polars/duckdb threads that fork would copy
            # mid-state
            self._pool = ProcessPoolExecutor(
                max_workers=self.workers,
                mp_context=context,
                initializer=_pool_worker_init,
                initargs=(self._lifeline[0],),
            )
        return self._pool

    def connect(self) -> Any:
        """Connect to the Dask scheduler now (starting the local cluster if asked) and return
        the client; ``None`` without a scheduler. Raises ``OSError`` if it cannot be reached."""
        return None if self.scheduler is None else self._dask_client()

    def _dask_client(self) -> Any:
        if self._client is not None:
            return self._client
        try:
            from distributed import Client, LocalCluster
        except ImportError:
            raise RuntimeError(
                "running on a Dask cluster needs the cluster extra: "
                "pip install 'glutewake[cluster]'"
            ) from None
        # distributed sets its loggers to INFO on import; follow the application's level instead
        level = logging.getLogger().getEffectiveLevel()
        logging.getLogger("distributed").setLevel(level)
        address = str(self.scheduler)
        security = None
        if address == "local":
            import dask
            from distributed.security import Security

            # Dask's nanny sets MALLOC_TRIM_THRESHOLD_ alone for its workers, which switches
            # off glibc's adaptive mmap threshold: every large numpy array then costs fresh
            # page faults (measured: twice the system time and ~1.5x the wall time of a pool
            # worker on these tasks). With mmap off as well, freed memory is reused instead.
            # Remote clusters: see docs/cluster.md.
            environ = dict(dask.config.get("distributed.nanny.pre-spawn-environ", {}))
            environ.update(MALLOC_ENV)
            settings = {
                "distributed.nanny.pre-spawn-environ": environ,
                # the workers' statistical profiler samples the task thread every 10 ms and
                # holds the GIL to do it: about a tenth of a worker's time outside the tasks
                # in a py-spy profile of these runs (the dashboard's profile page goes empty)
                "distributed.worker.profile.enabled": False,
                # five servers (scheduler, two nannies, two workers per 2-core machine) each
                # checked their event loop 50 times a second and polled psutil twice: on two
                # cores that took 5 % of the run's CPU from the tasks (11.0 -> 6.9 CPU-s in the
                # coordinator for the cohort benchmark)
                "distributed.admin.tick.interval": "200ms",
                "distributed.admin.system-monitor.interval": "2s",
                # the HTTP servers Dask always starts answer health checks only: no task names
                # (they hold participant ids), no metrics
                "distributed.scheduler.http.routes": ["distributed.http.health"],
                "distributed.worker.http.routes": ["distributed.http.health"],
            }
            # nothing beyond loopback, no dashboard, and mutual TLS with a key made for this
            # run and kept in memory: another user of the machine cannot reach the scheduler
            # (which runs whatever it is sent) nor read what passes between its processes
            security = Security.temporary()
            with dask.config.set(settings):
                # one single-threaded worker process per core asked for: the tasks are
                # numpy-bound and each holds a participant-day in memory
                self._cluster = LocalCluster(
                    n_workers=self.workers,
                    threads_per_worker=1,
                    processes=True,
                    host=LOOPBACK,
                    protocol="tls://",
                    security=security,
                    dashboard_address=None,
                    scheduler_kwargs={"dashboard_address": f"{LOOPBACK}:0", "dashboard": False},
                    silence_logs=level,
                )
            address = self._cluster.scheduler_address
            log.info("local Dask cluster at %s (loopback only, TLS, no dashboard)", address)
        self._client = Client(
            address, set_as_default=False, timeout=CONNECT_TIMEOUT_S, security=security
        )
        return self._client

    def map(
        self,
        fn: Callable[..., _T],
        args: Sequence[tuple[Any, ...]],
        keys: Sequence[str],
        advance: Callable[[int], None] = lambda n: None,
    ) -> list[_T | TaskFailure]:
        """``fn(*a)`` for every ``a``; results (or failures) in input order.

        ``keys`` name the tasks in failures, logs and the Dask dashboard; ``advance(1)`` is
        called as each task finishes.
        """
        if len(keys) != len(args):
            raise ValueError("one key per task is needed")
        if not args:
            return []
        if self.scheduler is not None:
            return self._map_dask(fn, args, keys, advance)
        if self.workers <= 1 or len(args) == 1:
            return [self._serial_one(fn, a, k, advance) for a, k in zip(args, keys, strict=True)]
        return self._map_pool(fn, args, keys, advance)

    def _failed(self, key: str, exc: BaseException, attempts: int) -> TaskFailure:
        failure = TaskFailure(
            key=key,
            error=_describe(exc),
            traceback="".join(traceback.format_exception(exc)),
            attempts=attempts,
        )
        log.warning("task %s failed after %d attempt(s): %s", key, attempts, failure.error)
        if self.on_error == "stop":
            raise TaskError(f"task {key} failed: {failure.error}") from exc
        return failure

    def _serial_one(
        self, fn: Callable[..., _T], a: tuple[Any, ...], key: str, advance: Callable[[int], None]
    ) -> _T | TaskFailure:
        for attempt in range(1, self.retries + 2):
            try:
                with _single_threaded_blas():
                    out = fn(*a)
            except Exception as exc:  # a task's own error: retried, then reported, never lost
                if attempt > self.retries:
                    advance(1)
                    return self._failed(key, exc, attempt)
                log.info("task %s failed (attempt %d), retrying: %s", key, attempt, exc)
                continue
            advance(1)
            return out
        raise AssertionError("unreachable")

    def _map_pool(
        self,
        fn: Callable[..., _T],
        args: Sequence[tuple[Any, ...]],
        keys: Sequence[str],
        advance: Callable[[int], None],
    ) -> list[_T | TaskFailure]:
        from concurrent.futures import Future, wait
        from concurrent.futures.process import BrokenProcessPool

        results: dict[int, _T | TaskFailure] = {}
        attempts = dict.fromkeys(range(len(args)), 1)
        pool = self._process_pool()
        pending: dict[Future[_T], int] = {
            pool.submit(_run_task, fn, *a): i for i, a in enumerate(args)
        }
        submitted_to = dict.fromkeys(pending, pool)
        while pending:
            done, _ = wait(pending, return_when="FIRST_COMPLETED")
            for fut in done:
                i = pending.pop(fut)
                exc = fut.exception()
                if isinstance(exc, BrokenProcessPool) and submitted_to.pop(fut) is pool:
                    # a worker died (killed, out of memory): every task in flight is lost with
                    # it; a fresh pool takes the retries
                    log.warning("a worker process died; restarting the pool")
                    pool.shutdown(wait=False, cancel_futures=True)
                    self._pool = None
                    pool = self._process_pool()
                if exc is None:
                    results[i] = fut.result()
                elif attempts[i] <= self.retries:
                    attempts[i] += 1
                    log.info("task %s failed, retrying: %s", keys[i], exc)
                    retry = pool.submit(_run_task, fn, *args[i])
                    pending[retry] = i
                    submitted_to[retry] = pool
                    continue
                else:
                    try:
                        results[i] = self._failed(keys[i], exc, attempts[i])
                    except TaskError:
                        for other in pending:
                            other.cancel()
                        raise
                advance(1)
        return [results[i] for i in range(len(args))]

    def _map_dask(
        self,
        fn: Callable[..., _T],
        args: Sequence[tuple[Any, ...]],
        keys: Sequence[str],
        advance: Callable[[int], None],
    ) -> list[_T | TaskFailure]:
        import uuid

        from distributed import as_completed

        client = self._dask_client()
        results: dict[int, _T | TaskFailure] = {}
        run = uuid.uuid4().hex[:8]
        # unique keys: Dask would otherwise hand back a cached result of an earlier run
        dask_keys = [f"{getattr(fn, '__name__', 'task')}-{k}-{run}" for k in keys]
        futures = [
            client.submit(_run_task, fn, *a, key=dk, pure=False, retries=self.retries)
            for a, dk in zip(args, dask_keys, strict=True)
        ]
        index = {fut.key: i for i, fut in enumerate(futures)}
        try:
            for fut in as_completed(futures, loop=client.loop):
                i = index[fut.key]
                if fut.status == "error":
                    results[i] = self._failed(keys[i], fut.exception(), self.retries + 1)
                else:
                    results[i] = fut.result()
                advance(1)
        finally:
            client.cancel(futures)
        return [results[i] for i in range(len(args))]


def run_tasks(
    fn: Callable[..., _T],
    args: Sequence[tuple[Any, ...]],
    workers: int,
    advance: Callable[[int], None],
) -> list[_T]:
    """Run ``fn(*a)`` for every ``a`` (in a process pool if ``workers > 1``); stop at an error.

    For work where one failure invalidates the whole (rendering a simulated study); the process
    job uses :class:`TaskRunner`, which records failures and goes on.
    """
    try:
        with TaskRunner(workers=workers, retries=0, on_error="stop") as runner:
            out = runner.map(fn, args, [str(i) for i in range(len(args))], advance)
    except TaskError as err:  # the task's own exception, as callers of this function expect
        raise (err.__cause__ or err) from None
    return [r for r in out if not isinstance(r, TaskFailure)]
