"""A bounded step of a stop path: however a step behaves, the stop goes on."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from typing import Any

log = logging.getLogger(__name__)
log.addHandler(logging.NullHandler())


async def stop_step(
    step: str, awaitable: Awaitable[Any], timeout_s: float, *, error_level: int = logging.WARNING
) -> bool:
    """Await one step of a stop path for at most ``timeout_s``; log it by name if it runs over.

    A step that runs over is cancelled and the stop goes on, so a stuck step can never keep the
    process from exiting; a step that raises is logged at ``error_level``. Returns whether the
    step finished.
    """
    # asyncio.wait, not wait_for: on Python 3.11 wait_for waits for a timed-out step to finish
    # cancelling, which a step that swallows its cancellation never does
    task = asyncio.ensure_future(awaitable)
    try:
        done, _ = await asyncio.wait({task}, timeout=timeout_s)
    except asyncio.CancelledError:
        task.cancel()
        raise
    if not done:
        task.cancel()
        log.warning("stop step %r did not finish within %.1f s; going on", step, timeout_s)
        return False
    if task.cancelled():
        log.warning("stop step %r was cancelled; going on", step)
        return False
    exc = task.exception()
    if exc is not None:  # the stop goes on whatever one step does
        log.log(error_level, "stop step %r failed: %s: %s", step, type(exc).__name__, exc)
        return False
    return True
