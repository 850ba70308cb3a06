"""HDBSCAN on a k-nearest-neighbour graph: the single-linkage tree without an n x n matrix.

The exact algorithm (Campello et al. 2013; ``hdbscan``'s generic path, which bandscape runs on a
precomputed matrix below :data:`backend.cluster.params.EXACT_MAX` materials) needs every pairwise
distance: core distances, the mutual-reachability graph
``mrd(a, b) = max(core(a), core(b), d(a, b))`` and its minimum spanning tree. Here:

1. **core distances** from the graph: the ``min_samples``-th nearest other point, exactly as the
   dense path counts it (``hdbscan``'s ``mutual_reachability``: the point itself is the 0-th);
2. **the spanning tree** of the mutual-reachability graph restricted to the kNN edges
   (Prim with a heap, breaking ties as ``hdbscan``'s dense Prim does; compiled:
   :mod:`backend.cluster.prim_kernel`). An edge missing from a kNN graph is longer than both of
   its ends' k-th neighbour, so inside dense regions the tree is the exact one; it can differ
   only in long edges between regions;
3. **components joined**: where the kNN graph is disconnected (well-separated clusters always
   are), the components are joined by a spanning tree over them, each join's end points found
   among samples of the two components (exact distances) and then moved to a closer pair by
   alternating nearest-point steps. These edges are the longest of the tree: they decide only
   how whole separated groups merge, the top of the hierarchy. A connected graph can still
   link two groups only by a detour (through background points whose neighbours lie in both),
   heavier than their true shortest link: the :data:`RECHECK_TOP` longest edges of the tree
   are cut and the parts joined the same way, a cut edge kept unless a join is shorter;
4. the tree in scipy's linkage format (``hdbscan``'s ``label``), which
   :func:`backend.cluster.algorithms.hdbscan_labels` condenses and cuts as for the exact path.

With a complete graph (k = n - 1) steps 1-2 are the exact algorithm (tested against it). Read
for facts: fast_hdbscan (Borůvka on kd-trees, Euclidean only) and scikit-learn's HDBSCAN
(``mst_from_mutual_reachability`` on dense or sparse precomputed input); this is neither.
"""

from __future__ import annotations

import numpy as np

from backend.cluster import private_api
from backend.cluster.knn import pair_distances
from backend.cluster.mst import prim_mst
from backend.errors import ParameterError

#: bumped when the tree this module builds changes (the key of the trees kept in the cache folder)
TREE_VERSION = 3
#: at most this many sampled points in all, for choosing the joins between components
JOIN_SAMPLE_MAX = 1500
JOIN_REFINE_STEPS = 3
#: a join's refinement searches at most this many points of each part (a part of 10^5 points
#: would cost a tenth of a second per step and join)
REFINE_MAX = 2000
#: the longest edges of the graph's tree cut and joined again as components (step 3): the
#: links between well-separated groups, which a kNN graph often reaches only by a detour
RECHECK_TOP = 256


def core_distances(graph: np.ndarray, min_samples: int) -> np.ndarray:
    """Core distance of every point (n,): the distance to its ``min_samples``-th nearest other
    point (the dense path's convention; capped at the last neighbour the graph has)."""
    k = graph.shape[1]
    ms = int(min_samples)
    if ms < 1:
        raise ParameterError(f"min_samples must be >= 1, got {min_samples}")
    if ms > k and k < len(graph) - 1:
        raise ParameterError(f"min_samples={ms} needs a neighbour graph of at least {ms} neighbours (it has {k})")
    return np.ascontiguousarray(graph["dist"][:, min(ms, k) - 1], dtype=np.float64)


def prim(graph: np.ndarray, core: np.ndarray):
    """Minimum spanning forest of the mutual-reachability weights on the graph's edges (both
    directions), by :func:`backend.cluster.prim_kernel.prim_forest`. Returns its edges (a, b, w)
    in the order added and the tree (root vertex) of every vertex."""
    # numba (~0.3 s to import, and compiling takes longer): only when a graph's tree is built
    from backend.cluster.prim_kernel import prim_forest

    indptr, nbr, wt = symmetric_edges(graph, core)
    return prim_forest(indptr, nbr, wt)


def symmetric_edges(graph: np.ndarray, core: np.ndarray):
    """The graph's edges in both directions, each pair once, as CSR arrays (indptr, neighbour,
    mutual-reachability weight), neighbours ascending within a row."""
    n, k = graph.shape
    a = np.repeat(np.arange(n, dtype=np.int64), k)
    b = graph["idx"].astype(np.int64).ravel()
    w = np.maximum(np.maximum(core[a], core[b]), graph["dist"].ravel())
    rows, cols, ww = np.concatenate([a, b]), np.concatenate([b, a]), np.concatenate([w, w])
    key = rows * n + cols
    order = np.argsort(key, kind="stable")
    key = key[order]
    first = np.ones(len(key), dtype=bool)
    first[1:] = key[1:] != key[:-1]
    sel = order[first]
    rows, cols, ww = rows[sel], cols[sel], ww[sel]
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=n), out=indptr[1:])
    return indptr, cols, ww


def _mrd_to(X, core, i: int, cand: np.ndarray, p: float) -> np.ndarray:
    d = pair_distances(X, np.array([i]), cand[None, :], p=p)[0]
    return np.maximum(np.maximum(d, core[i]), core[cand])


def _sample_distances(X: np.ndarray, sample: np.ndarray, p: float) -> np.ndarray:
    """Distances (m, m) between the sampled rows, float32 (only to rank candidate joins)."""
    Y = np.ascontiguousarray(X[sample], dtype=np.float32)
    out = np.empty((len(Y), len(Y)), dtype=np.float32)
    step = max(1, 2_000_000 // max(1, Y.size))
    for s in range(0, len(Y), step):
        d = np.abs(Y[s:s + step, None, :] - Y[None])
        if p == 2:
            out[s:s + step] = np.sqrt((d * d).sum(-1))
        else:
            np.power(d, np.float32(p), out=d)
            out[s:s + step] = d.sum(-1) ** np.float32(1.0 / p)
    return out.astype(np.float64)


def _some(members: np.ndarray, keep: int, rng) -> np.ndarray:
    """``members``, or REFINE_MAX of them (``keep`` among them) when there are more."""
    if len(members) <= REFINE_MAX:
        return members
    return np.union1d(rng.choice(members, REFINE_MAX, replace=False), [keep])


def join_components(X: np.ndarray, core: np.ndarray, roots: np.ndarray, *, p: float, seed: int = 0,
                    known=None):
    """Edges (a, b, w) that join the components (vertices with the same root) into one tree:
    see step 3 of the module docstring. ``X`` (n, d) are the points, ``core`` (n,) their core
    distances; ``known`` (a, b, w): edges between components measured already (the graph's
    edges cut off the tree), candidates besides the sampled pairs."""
    comps, comp_of = np.unique(roots, return_inverse=True)
    c = len(comps)
    if c <= 1:
        return np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0)
    rng = np.random.default_rng(seed)
    sizes = np.bincount(comp_of, minlength=c)
    members = np.split(np.argsort(comp_of, kind="stable"), np.cumsum(sizes)[:-1])
    best, where = _closest_sampled_pairs(X, core, members, sizes, p, rng)
    if known is not None:
        _take_known_edges(best, where, comp_of, known)
    # a spanning tree over the components (dense Prim on c vertices)
    parent, _ = prim_mst(np.minimum(best, best.T))
    out_a, out_b, out_w = [], [], []
    for child in range(c):
        par = parent[child]
        if par < 0:
            continue
        x, y = where[child, par]
        x, y, w = _refined_join(X, core, x, y, mine=members[child], other=members[par], p=p, rng=rng)
        out_a.append(x)
        out_b.append(y)
        out_w.append(w)
    return np.array(out_a, np.int64), np.array(out_b, np.int64), np.array(out_w)


def _closest_sampled_pairs(X: np.ndarray, core: np.ndarray, members: list, sizes: np.ndarray, p: float, rng):
    """For every pair of the c components (``members``: each one's points), the smallest mutual
    reachability between points sampled from them (in proportion to their ``sizes``, every
    component at least one point; ranked in float32): ``best`` (c, c) and ``where`` (c, c, 2),
    the pair of points (inf where the pair was not sampled)."""
    c = len(members)
    per = np.maximum(1, (JOIN_SAMPLE_MAX * sizes) // int(sizes.sum()))
    samples = [m if len(m) <= k else rng.choice(m, k, replace=False) for m, k in zip(members, per)]
    sample = np.concatenate(samples)
    owner = np.repeat(np.arange(c), [len(s) for s in samples])
    D = _sample_distances(X, sample, p)
    M = np.maximum(np.maximum(D, core[sample][:, None]), core[sample][None, :])
    M[owner[:, None] == owner[None, :]] = np.inf
    m = len(sample)
    order = np.argsort(M, axis=None, kind="stable")
    keys = (owner[:, None] * c + owner[None, :]).ravel()[order]
    uniq, pos = np.unique(keys, return_index=True)
    flat = order[pos]
    ca, cb = np.divmod(uniq, c)
    keep = ca != cb
    ca, cb, flat = ca[keep], cb[keep], flat[keep]
    best = np.full((c, c), np.inf)
    where = np.zeros((c, c, 2), dtype=np.int64)
    best[ca, cb] = M.ravel()[flat]
    where[ca, cb, 0] = sample[flat // m]
    where[ca, cb, 1] = sample[flat % m]
    return best, where


def _take_known_edges(best: np.ndarray, where: np.ndarray, comp_of: np.ndarray, known) -> None:
    """Lower ``best``/``where`` (see :func:`_closest_sampled_pairs`) in place with the measured
    edges ``known`` (a, b, w) that are shorter than the sampled pairs."""
    for a, b, w in zip(*known):
        u, v = comp_of[int(a)], comp_of[int(b)]
        if u != v and w < best[u, v]:
            best[u, v] = best[v, u] = w
            where[u, v] = int(a), int(b)
            where[v, u] = int(b), int(a)


def _refined_join(X: np.ndarray, core: np.ndarray, x, y, *, mine: np.ndarray, other: np.ndarray, p: float,
                  rng) -> tuple[int, int, float]:
    """The join (x of ``mine``, y of ``other``) moved by alternating nearest-point steps to a
    closer pair between the two components (each step can only lower the weight), among at most
    REFINE_MAX points of a large part: (x, y, its mutual reachability)."""
    w = float(_mrd_to(X, core, int(x), np.array([y]), p)[0])
    other, mine = _some(other, y, rng), _some(mine, x, rng)
    for _ in range(JOIN_REFINE_STEPS):
        y = other[int(np.argmin(_mrd_to(X, core, int(x), other, p)))]
        x = mine[int(np.argmin(_mrd_to(X, core, int(y), mine, p)))]
    w = min(w, float(_mrd_to(X, core, int(x), np.array([y]), p)[0]))
    return int(x), int(y), w


def _kruskal(parts: np.ndarray, a: np.ndarray, b: np.ndarray, order: np.ndarray) -> np.ndarray:
    """Indices of the edges (a, b), taken in ``order``, that join different parts (``parts``
    (n,): a part per vertex) into one tree: Kruskal with a union-find on the parts."""
    parent: dict = {}

    def find(x):
        root = x
        while parent.get(root, root) != root:
            root = parent[root]
        while parent.get(x, x) != root:
            parent[x], x = root, parent[x]
        return root

    out = []
    for e in order:
        u, v = find(int(parts[a[e]])), find(int(parts[b[e]]))
        if u != v:
            parent[u] = v
            out.append(int(e))
    return np.array(out, dtype=np.int64)


def _component_labels(n: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    # scipy.sparse: ~0.3 s to import; only for a graph
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    adj = coo_matrix((np.ones(len(a)), (a, b)), shape=(n, n))
    return connected_components(adj, directed=False)[1]


def spanning_tree(graph: np.ndarray, min_samples: int, X: np.ndarray | None = None, *, p: float = 0.2,
                  recheck_top: int = RECHECK_TOP) -> np.ndarray:
    """The mutual-reachability minimum spanning tree of the kNN ``graph`` (n, k): (n - 1, 3)
    edges ``[a, b, weight]`` sorted by weight (ties as ``hdbscan`` orders them: the same sort of
    Prim's edges). ``X`` (the points) joins disconnected components (step 3) and re-checks
    the ``recheck_top`` longest edges (step 3 too); without it parts join at the root, at twice
    the longest edge."""
    n = len(graph)
    core = core_distances(graph, min_samples)
    ta, tb, tw, roots = prim(graph, core)
    complete = graph.shape[1] >= n - 1  # then the tree is the exact one: nothing to re-check
    recheck = X is not None and recheck_top > 0 and len(ta) > 1 and not complete
    if X is None and len(ta) < n - 1:
        # no points to measure: the parts join at the root, above every measured edge
        tops = np.unique(roots)
        top = 2 * float(tw.max()) if len(tw) and np.isfinite(tw).any() else 1.0
        ja, jb, jw = np.full(len(tops) - 1, tops[0]), tops[1:], np.full(len(tops) - 1, top)
        ta, tb, tw = np.concatenate([ta, ja]), np.concatenate([tb, jb]), np.concatenate([tw, jw])
    elif recheck or len(ta) < n - 1:
        # the longest edges of the graph's tree may be detours (the shortest link between two
        # regions can be missing from a kNN graph): cut them, join the parts again from
        # measured pairs, and keep a cut edge unless a join is strictly shorter (in its place
        # in Prim's order, so that ties stay as hdbscan breaks them)
        keep = np.ones(len(ta), dtype=bool)
        if recheck:
            keep[np.argsort(tw, kind="stable")[-min(int(recheck_top), len(ta)):]] = False
        cut = np.flatnonzero(~keep)
        parts = _component_labels(n, ta[keep], tb[keep]) if len(cut) else roots
        ja, jb, jw = join_components(X, core, parts, p=p, known=(ta[cut], tb[cut], tw[cut]))
        is_join = np.r_[np.zeros(len(cut), bool), np.ones(len(ja), bool)]
        ca, cb, cw = np.r_[ta[cut], ja], np.r_[tb[cut], jb], np.r_[tw[cut], jw]
        # (a join must be shorter beyond rounding: its distance is summed in another order)
        accepted = _kruskal(parts, ca, cb, np.lexsort((is_join, cw * (1 + 1e-9 * is_join))))
        keep[cut[accepted[accepted < len(cut)]]] = True
        joins = accepted[accepted >= len(cut)]
        ta, tb, tw = np.r_[ta[keep], ca[joins]], np.r_[tb[keep], cb[joins]], np.r_[tw[keep], cw[joins]]
    mst = np.column_stack([ta, tb, tw]).astype(np.float64)
    return mst[np.argsort(mst.T[2]), :]


def graph_single_linkage_tree(graph: np.ndarray, min_samples: int, X: np.ndarray | None = None,
                              *, p: float = 0.2) -> np.ndarray:
    """HDBSCAN's single-linkage tree (n - 1, 4) from a kNN graph, read-only: the input of
    :func:`backend.cluster.algorithms.hdbscan_labels`, as
    :func:`backend.cluster.algorithms.single_linkage_tree` gives it from a full matrix."""
    tree = private_api.hdbscan_label_spanning_tree(spanning_tree(graph, min_samples, X, p=p))
    tree.setflags(write=False)
    return tree


def subgraph(graph: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """The graph between the points ``rows`` only, renumbered 0..len(rows)-1: each row keeps its
    neighbours that are among ``rows`` (in order), the rest of the row padded with the point
    itself at an infinite distance (so a point with fewer than min_samples kept neighbours has
    an infinite core distance)."""
    rows = np.asarray(rows)
    new_of = np.full(len(graph), -1, dtype=np.int64)
    new_of[rows] = np.arange(len(rows))
    g = graph[rows]
    mapped = new_of[g["idx"]]
    keep = mapped >= 0
    # stable left-compaction of the kept neighbours of every row
    order = np.argsort(~keep, axis=1, kind="stable")
    mapped = np.take_along_axis(mapped, order, 1)
    dist = np.take_along_axis(g["dist"], order, 1)
    kept = np.take_along_axis(keep, order, 1)
    out = np.empty(g.shape, dtype=graph.dtype)
    out["idx"] = np.where(kept, mapped, np.arange(len(rows))[:, None])
    out["dist"] = np.where(kept, dist, np.inf)
    return out
