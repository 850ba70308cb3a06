"""Prim's algorithm on a sparse graph, compiled with numba: the kernel of
:func:`backend.cluster.graph_hdbscan.prim`.

This module imports numba (~0.3 s, and compiling takes longer the first time on a host; the
compiled code is cached beside the module): :mod:`backend.cluster.graph_hdbscan` imports it only
when a graph's tree is built. The heap is two arrays (weight, vertex) ordered by weight, then
vertex; its push and pop are inlined into the loop.
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True, inline="always")
def _heap_push(hk, hv, size, w, v):
    """Add (w, v) to the heap of ``size`` entries; return its new size."""
    i = size
    hk[i] = w
    hv[i] = v
    while i > 0:
        par = (i - 1) // 2
        if hk[par] < hk[i] or (hk[par] == hk[i] and hv[par] <= hv[i]):
            break
        hk[i], hk[par] = hk[par], hk[i]
        hv[i], hv[par] = hv[par], hv[i]
        i = par
    return size + 1


@numba.njit(cache=True, inline="always")
def _heap_pop(hk, hv, size):
    """Remove the smallest (weight, vertex) of the heap of ``size`` > 0 entries; return it and
    the heap's new size."""
    k0, v0 = hk[0], hv[0]
    size -= 1
    hk[0], hv[0] = hk[size], hv[size]
    i = 0
    while True:
        left = 2 * i + 1
        if left >= size:
            break
        c = left
        r = left + 1
        if r < size and (hk[r] < hk[left] or (hk[r] == hk[left] and hv[r] < hv[left])):
            c = r
        if hk[i] < hk[c] or (hk[i] == hk[c] and hv[i] <= hv[c]):
            break
        hk[i], hk[c] = hk[c], hk[i]
        hv[i], hv[c] = hv[c], hv[i]
        i = c
    return k0, v0, size


@numba.njit(cache=True)
def prim_forest(indptr, nbr, wt):
    """Prim's algorithm on the CSR graph (``indptr`` (n + 1,), ``nbr``, ``wt``), as ``hdbscan``'s
    dense ``mst_linkage_core`` runs it: grown from vertex 0; a vertex's best edge changes only
    for a strictly smaller weight (the earliest source wins); the next vertex is the one with the
    smallest weight, the lowest index on ties (a heap keyed by (weight, vertex)). A disconnected
    graph gives a forest (the next tree starts at the lowest vertex not yet reached). Returns the
    edges (a, b, w) in the order added and the root of every vertex's tree."""
    n = len(indptr) - 1
    in_tree = np.zeros(n, dtype=np.bool_)
    best = np.full(n, np.inf)
    src = np.zeros(n, dtype=np.int64)
    cap = len(nbr) + n + 1
    hk = np.empty(cap, dtype=np.float64)
    hv = np.empty(cap, dtype=np.int64)
    size = 0
    out_a = np.empty(n - 1, dtype=np.int64)
    out_b = np.empty(n - 1, dtype=np.int64)
    out_w = np.empty(n - 1, dtype=np.float64)
    m = 0
    roots = np.empty(n, dtype=np.int64)
    root = 0
    current = 0
    next_start = 0
    while True:
        in_tree[current] = True
        roots[current] = root
        for e in range(indptr[current], indptr[current + 1]):
            j = nbr[e]
            if not in_tree[j] and wt[e] < best[j]:
                best[j] = wt[e]
                src[j] = current
                size = _heap_push(hk, hv, size, wt[e], j)
        # pop until a vertex not in the tree (or none)
        found = -1
        while size > 0:
            k0, v0, size = _heap_pop(hk, hv, size)
            if not in_tree[v0] and k0 == best[v0]:
                found = v0
                break
        if found >= 0:
            out_a[m], out_b[m], out_w[m] = src[found], found, best[found]
            m += 1
            current = found
            continue
        while next_start < n and in_tree[next_start]:
            next_start += 1
        if next_start >= n:
            break
        root = next_start
        current = next_start
    return out_a[:m], out_b[:m], out_w[:m], roots
