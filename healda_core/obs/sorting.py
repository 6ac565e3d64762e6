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


def chunk_bases(chunk_counts: list[Int[np.ndarray, " P"]]) -> tuple[Int[np.ndarray, " P"], list[np.ndarray]]:
    """Merge plan for chunks that were each sorted stably by key (:func:`counting_sort`).

    The element of chunk ``c`` at sorted position ``j`` with key ``k`` goes to ``bases[c][k] + j`` in the
    global stable order (ties: earlier chunks first, then chunk order), i.e. what one global
    :func:`counting_sort` of the concatenated keys gives. Returns the total counts and ``bases``.
    """
    total = np.sum(chunk_counts, axis=0, dtype=np.int64) if chunk_counts else np.zeros(0, np.int64)
    start = np.zeros_like(total)
    np.cumsum(total[:-1], out=start[1:])
    bases, before = [], np.zeros_like(total)
    for c in chunk_counts:
        local = np.zeros_like(total)
        np.cumsum(c[:-1], out=local[1:])
        bases.append(start + before - local)
        before += c
    return total, bases


def scatter_sorted(base: Int[np.ndarray, " P"], sorted_keys: Int[np.ndarray, " m"],
                   pairs: list[tuple[np.ndarray, np.ndarray]]) -> None:
    """``out[dest] = values`` for each ``(out, values)`` of one chunk, ``dest = base[key] + j`` (see
    :func:`chunk_bases`); distinct chunks write disjoint positions, so they may run concurrently."""
    dest = np.take(base, sorted_keys)
    dest += np.arange(sorted_keys.size, dtype=np.int64)
    for out, values in pairs:
        out[dest] = values
