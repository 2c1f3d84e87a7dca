"""How task processes are set up: one BLAS thread (OpenBLAS's idle threads spin), and freed
memory kept for reuse."""

from __future__ import annotations

import platform
import subprocess
import sys

import numpy as np
import pytest
from threadpoolctl import threadpool_info, threadpool_limits

from glutewake.pipeline.parallel import TaskRunner


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


_KEPT_MB = """
import os, sys
import numpy as np
from glutewake.pipeline.parallel import keep_freed_memory
if sys.argv[1] == "keep":
    assert keep_freed_memory()
def rss_mb():
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
a = np.ones(25_000_000)  # 200 MB
held = rss_mb()
del a
print(held - rss_mb())
"""


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="a glibc malloc setting")
def test_freed_memory_is_kept_for_reuse_instead_of_returned() -> None:
    def released_mb(mode: str) -> float:
        out = subprocess.run(
            [sys.executable, "-c", _KEPT_MB, mode], capture_output=True, text=True, check=True
        )
        return float(out.stdout.strip())

    # returned to the kernel (and faulted in, zeroed, on the next allocation) by default
    assert released_mb("default") > 150
    assert released_mb("keep") < 5
