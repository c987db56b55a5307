"""The one thread count every runtime in this process (and the timing workers it starts) uses.

It lives in the environment, not a module global, because it must reach child processes: the timing workers and Ray's
actors read it when they load a runtime."""

from __future__ import annotations

import os

VARIABLE = "BENCH_THREADS"


def count() -> int:
    """One fixed thread count for every runtime, so timings compare like with like."""
    return int(os.environ.get(VARIABLE) or os.cpu_count() or 1)


def use(n: int) -> None:
    os.environ[VARIABLE] = str(n)
