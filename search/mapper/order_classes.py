"""The order classes of one level that the level-order bound prices (:mod:`search.mapper.order_energy`).

A level's loop orders reach the counts only through the sets :func:`prefix_masks` computes: each
tensor's *prefix* (the active loops inside its first active ``Rel_t`` loop, the sets of
:func:`search.mapper.orders.order_key`), the windowed input's stride-change savings and the
innermost loop. :func:`prefix_classes` keeps the maximal classes, :func:`savings` and
:func:`level_savings` turn them into the products of a tiling's factors, and
:func:`deepest_relevant` gives the level ``m*`` each keeper pair is attached to. Why these sets
decide the counts, and why the maximal classes suffice, is the claim of
:mod:`search.mapper.order_energy` ("Claim", "Windowed inputs").
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from formulation.axes import DIMS, N_DIMS, N_TENSORS, RELEVANCE, Tensor, projection
from search.mapper.orders import level_orders, non_window_dims_of_inputs


def relevant_sets(windowed: tuple[bool, bool]) -> np.ndarray:
    """``Rel_t`` per tensor, ``[t, 7]``: the dimensions whose loops stop a tensor's prefix."""
    rel = RELEVANCE.copy()
    if any(windowed):
        nw = non_window_dims_of_inputs(windowed)
        rel[Tensor.I] = [int(d) in nw for d in DIMS]
    return rel


#: Rows of a class's masks (:func:`prefix_masks`): the prefix set of each tensor, then the inputs'
#: stride-change savings (module docstring, "Windowed inputs"), the same when a loop below the
#: level is active (innermost, moving nothing), then the innermost active loop.
STRIDE_ROW, STRIDE_BELOW_ROW, INNER_ROW = N_TENSORS, N_TENSORS + 1, N_TENSORS + 2


def input_axis() -> np.ndarray:
    """The input axis each dimension moves (``-1``: none, K), ``[7]``; the same for every stride."""
    proj = projection(1, 1, 1, 1)[Tensor.I]
    return np.where(proj.any(axis=0), proj.argmax(axis=0), -1)


def prefix_masks(perms: np.ndarray, active: tuple[int, ...], windowed: tuple[bool, bool]) -> np.ndarray:
    """Per permutation (innermost first) of a level whose active loops are ``active``, ``[n, 6, 7]``:
    rows ``0..2``, each tensor's prefix set (the active loops inside its first active ``Rel_t``
    loop); row ``STRIDE_ROW``, the input's loops over dimensions outside ``Rel_I`` that no loop
    inside them moves along another axis (the level walked alone, nothing moving below it), but
    for the first loop moving the input when the innermost loop moves nothing (then ``T_z = 0``
    and that loop's ``T`` is its own shift: a whole tile); row ``STRIDE_BELOW_ROW``, the same when
    the innermost loop is below the level (moving nothing); row ``INNER_ROW``, the innermost loop."""
    rel = relevant_sets(windowed)
    axis = input_axis()
    act = set(active)
    out = np.zeros((len(perms), INNER_ROW + 1, N_DIMS), dtype=bool)
    for i, perm in enumerate(perms):
        seq = [int(x) for x in perm if int(x) in act]
        for t in range(N_TENSORS):
            for d in seq:
                if rel[t, d]:
                    break
                out[i, t, d] = True
        moved: set[int] = set()
        still = bool(seq) and axis[seq[0]] < 0          # the innermost loop moves nothing
        for d in seq:
            if not rel[Tensor.I, d] and not (moved - {int(axis[d])}):
                first = axis[d] >= 0 and not moved          # the first loop moving the input
                out[i, STRIDE_ROW, d] = not (first and still)
                out[i, STRIDE_BELOW_ROW, d] = not first
            if axis[d] >= 0:
                moved.add(int(axis[d]))
        if seq:
            out[i, INNER_ROW, seq[0]] = True
    return out


@lru_cache(maxsize=4096)
def prefix_classes(active: tuple[int, ...], windowed: tuple[bool, bool]) -> np.ndarray:
    """The maximal classes of a level whose active loops are ``active`` (:func:`prefix_masks`): of the
    classes of :func:`search.mapper.orders.level_orders`, those whose saved sets no other class with
    the same innermost loop contains on every row (module docstring), one per distinct mask."""
    out = np.unique(prefix_masks(level_orders(active, windowed, True), active, windowed), axis=0)
    within = (out[:, None, :INNER_ROW] <= out[None, :, :INNER_ROW]).all(axis=(2, 3))   # [i, j]: i's sets in j's
    same = (out[:, None, INNER_ROW] == out[None, :, INNER_ROW]).all(axis=2)
    return out[~(within & same & ~np.eye(len(out), dtype=bool)).any(axis=1)]


def savings(temporal_level: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """``prod_{d in set} t_d`` of each saved set (rows ``0 .. STRIDE_BELOW_ROW``), ``[r, o, 5]``, and the
    innermost loop's dimension, ``[r, o]`` (``-1``: none), for one level's factors ``[r, 7]`` and
    masks ``[o, 6, 7]`` (:func:`prefix_masks`)."""
    t = temporal_level.astype(np.float64)
    saved = np.where(masks[None, :, :INNER_ROW], t[:, None, None, :], 1.0).prod(axis=3)
    inner = np.where(masks[:, INNER_ROW].any(axis=1), masks[:, INNER_ROW].argmax(axis=1), -1)
    return saved, np.broadcast_to(inner[None], saved.shape[:2])


def deepest_relevant(temporal: np.ndarray, rel: np.ndarray) -> np.ndarray:
    """``m*[b, t, c]``: the deepest level ``< c`` with an active loop over ``Rel_t`` (``-1``: none),
    for ``c = 0 .. L`` (``m*`` at ``c = 0`` is always ``-1``)."""
    b, L, _ = temporal.shape
    has = ((temporal[:, :, None, :] > 1) & rel[None, None]).any(axis=3)      # [b, L, t]
    out = np.full((b, N_TENSORS, L + 1), -1, dtype=np.int64)
    for c in range(1, L + 1):
        out[:, :, c] = np.where(has[:, :c], np.arange(c)[None, :, None], -1).max(axis=1)
    return out


@lru_cache(maxsize=4096)
def representative_masks(active: tuple[int, ...], windowed: tuple[bool, bool], rule2: bool) -> np.ndarray:
    """:func:`prefix_masks` of the representatives :func:`search.mapper.orders.level_orders` lists."""
    return prefix_masks(level_orders(active, windowed, rule2), active, windowed)


def level_groups(temporal: np.ndarray, level: int, classes_of) -> tuple[list[tuple[np.ndarray, np.ndarray]], int]:
    """The rows grouped by their active loops at ``level``: ``[(rows, masks)]`` with each group's class
    masks ``classes_of(active)`` (:func:`prefix_masks` rows), and the most classes of a group, to which
    every per-order array is padded (:func:`pad_orders`), so all users share one column order."""
    code = (temporal[:, level] > 1) @ (1 << np.arange(N_DIMS))
    groups = [(np.flatnonzero(code == c), classes_of(tuple(d for d in range(N_DIMS) if int(c) >> d & 1)))
              for c in np.unique(code)]
    return groups, max(len(masks) for _, masks in groups)


def pad_orders(values: np.ndarray, n: int) -> np.ndarray:
    """``values[r, k, ...]`` padded to ``n`` orders by repeating its first (a repeat changes no minimum)."""
    return np.concatenate([values, np.repeat(values[:, :1], n - values.shape[1], axis=1)], axis=1)


def level_savings(temporal: np.ndarray, windowed: tuple[bool, bool], level: int,
                  rule2: bool | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`savings` over each row's orders at ``level`` (``saved[b, o, 5]``, ``inner[b, o]``), and
    how many each row has, ``[b]`` (the others repeat its first): the maximal classes
    (:func:`prefix_classes`) when ``rule2`` is ``None``, else the representatives of
    ``level_orders(active, windowed, rule2)`` in their order."""
    b = temporal.shape[0]
    groups, n = level_groups(temporal, level, lambda a: prefix_classes(a, windowed) if rule2 is None
                             else representative_masks(a, windowed, rule2))
    saved = np.ones((b, n, INNER_ROW))
    inner = np.full((b, n), -1, dtype=np.int64)
    count = np.zeros(b, dtype=np.int64)
    for rows, masks in groups:
        val, inn = savings(temporal[rows, level], masks)                        # [r, k, 5], [r, k]
        saved[rows], inner[rows] = pad_orders(val, n), pad_orders(inn, n)
        count[rows] = val.shape[1]
    return saved, inner, count
