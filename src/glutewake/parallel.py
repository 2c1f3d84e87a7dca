"""Run independent tasks serially or in a process pool, with results in input order."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

_T = TypeVar("_T")


def run_tasks(
    fn: Callable[..., _T],
    args: Sequence[tuple[Any, ...]],
    workers: int,
    advance: Callable[[int], None],
) -> list[_T]:
    """Run ``fn(*a)`` for every ``a``, in a process pool if ``workers > 1``; results in order.

    ``fn`` must be a module-level function and its arguments picklable. ``advance(1)`` is called
    as each task finishes (for progress bars).
    """
    if workers <= 1 or len(args) <= 1:
        out = []
        for a in args:
            out.append(fn(*a))
            advance(1)
        return out
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    results: dict[int, _T] = {}
    # spawn, not fork: the parent may hold polars/duckdb threads that fork would copy mid-state
    with ProcessPoolExecutor(
        max_workers=min(workers, len(args)), mp_context=multiprocessing.get_context("spawn")
    ) as pool:
        futures = {pool.submit(fn, *a): i for i, a in enumerate(args)}
        for fut in as_completed(futures):
            results[futures[fut]] = fut.result()
            advance(1)
    return [results[i] for i in range(len(args))]
