"""Row-chunk thread parallelism for the vectorised observation stages.

NumPy ufuncs, ``np.take`` and healpy's ``ang2pix`` release the GIL on large arrays, so independent row
chunks run on every core from a plain thread pool (no process start-up, no copies of the inputs).
``HEALDA_THREADS`` caps the number of threads (default: the CPUs this process may run on).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
#: rows per chunk: large enough to amortise Python overhead, small enough to balance two cores
ROW_CHUNK = 1 << 21


def n_threads() -> int:
    """Worker threads: ``HEALDA_THREADS`` if set, else the CPUs available to this process."""
    try:
        avail = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        avail = os.cpu_count() or 1
    env = os.environ.get("HEALDA_THREADS", "").strip()
    return max(1, int(env)) if env.isdigit() else max(1, avail)


def row_slices(n: int, chunk: int | None = None) -> list[slice]:
    """``[0, n)`` cut into consecutive slices of at most ``chunk`` (default :data:`ROW_CHUNK`) rows."""
    chunk = chunk or ROW_CHUNK
    return [slice(s, min(n, s + chunk)) for s in range(0, n, chunk)]


def map_rows(fn: Callable[[slice], T], n: int, chunk: int | None = None) -> list[T]:
    """``[fn(s) for s in row_slices(n, chunk)]``, in order, on :func:`n_threads` threads."""
    slices = row_slices(n, chunk)
    workers = min(n_threads(), len(slices))
    if workers <= 1:
        return [fn(s) for s in slices]
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="healda-rows") as ex:
        return list(ex.map(fn, slices))
