"""The one thread count every runtime in this process (and the timing workers it starts) uses.

It lives in the environment, not a module global, because it must reach child processes: the timing workers and Ray's
actors read it when they load a runtime."""

from __future__ import annotations

import os

from bench.errors import BenchError

VARIABLE = "BENCH_THREADS"


def count() -> int:
    """One fixed thread count for every runtime, so timings compare like with like: the variable, else every core.
    A bad value is named in one line, not a traceback."""
    text = os.environ.get(VARIABLE) or str(os.cpu_count() or 1)
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise BenchError(f"environment variable {VARIABLE}: expected a whole number of 1 or more")
    return value


def use(n: int) -> None:
    os.environ[VARIABLE] = str(n)
