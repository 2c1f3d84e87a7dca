"""Tasks run with single-threaded BLAS, however they are run (OpenBLAS's idle threads spin)."""

from __future__ import annotations

import numpy as np
import pytest
from threadpoolctl import threadpool_info, threadpool_limits

from glutewake.parallel import TaskRunner


def blas_threads(_: int) -> list[int]:
    """A task: the thread counts of the BLAS libraries loaded in the process running it."""
    import scipy.linalg  # noqa: F401  (loads scipy's own OpenBLAS too)

    np.ones((4, 4)) @ np.ones((4, 4))
    return sorted({int(i["num_threads"]) for i in threadpool_info() if i["user_api"] == "blas"})


@pytest.mark.parametrize("workers", [1, 2])
def test_tasks_see_one_blas_thread_and_the_caller_keeps_its_own(workers: int) -> None:
    with threadpool_limits(limits=2, user_api="blas"):
        with TaskRunner(workers=workers) as runner:
            seen = runner.map(blas_threads, [(0,), (1,), (2,)], ["a", "b", "c"])
        assert seen == [[1], [1], [1]]
        mine = {int(i["num_threads"]) for i in threadpool_info() if i["user_api"] == "blas"}
        assert mine == {2}
