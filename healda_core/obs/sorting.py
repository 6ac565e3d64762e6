"""O(N) stable sort of observations by flat pixel id (no comparison sort of records).

LSD radix sort on 16-bit digits: NumPy's ``argsort(kind="stable")`` on ``uint16`` keys is itself a radix
sort (O(N)), so two passes cover keys below 2**32. Counts come from ``bincount``.
"""

from __future__ import annotations

import numpy as np
from jaxtyping import Int


def counting_sort(keys: Int[np.ndarray, " n"], n_buckets: int) -> tuple[Int[np.ndarray, " n"], Int[np.ndarray, " P"]]:
    """Stable order of ``keys`` (ints in ``[0, n_buckets)``) and the per-bucket counts.

    Returns:
        order: (N,) int64 permutation with ``keys[order]`` non-decreasing, ties in input order.
        counts: (n_buckets,) int64.
    """
    keys = np.asarray(keys)
    if keys.size and (int(keys.min()) < 0 or int(keys.max()) >= n_buckets):
        raise ValueError(f"keys must lie in [0, {n_buckets})")
    if n_buckets > 1 << 32:
        raise ValueError("counting_sort supports at most 2**32 buckets")
    counts = np.bincount(keys, minlength=n_buckets).astype(np.int64)
    order = np.argsort((keys & 0xFFFF).astype(np.uint16), kind="stable")
    if n_buckets > 1 << 16:
        hi = np.take((keys >> 16).astype(np.uint16), order)
        order = np.take(order, np.argsort(hi, kind="stable"))
    return order.astype(np.int64, copy=False), counts
