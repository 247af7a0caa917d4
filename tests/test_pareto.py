"""formulation.pareto: the one non-dominated filter and the 2-D hypervolume, against brute force."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from formulation.pareto import hypervolume_2d, non_dominated

POINTS = st.lists(st.tuples(st.integers(1, 6), st.integers(1, 6), st.integers(1, 6)), min_size=0, max_size=12)


def _brute_force(points: np.ndarray) -> set[int]:
    """Rows no other row strictly dominates, the first of equal rows."""
    keep = set()
    for i, p in enumerate(points):
        dominated = any(np.all(q <= p) and np.any(q < p) for q in points)
        duplicate_before = any(np.array_equal(points[j], p) for j in range(i))
        if not dominated and not duplicate_before:
            keep.add(i)
    return keep


@settings(max_examples=60, deadline=None)
@given(POINTS, st.integers(2, 3))
def test_non_dominated_is_the_brute_force_set(rows, k):
    points = np.array(rows, dtype=float).reshape(-1, 3)[:, :k]
    kept = non_dominated(points)
    assert set(kept.tolist()) == _brute_force(points)
    assert sorted(map(tuple, points[kept])) == list(map(tuple, points[kept]))  # lexicographic order


def test_non_dominated_drops_non_finite_rows_and_applies_the_tolerance():
    pts = np.array([[1, 5], [2, 2], [3, 3], [5, 1], [2, 2], [np.inf, 0], [np.nan, 0.5]])
    assert list(non_dominated(pts)) == [0, 1, 3]
    close = [(1.0, 10.0), (2.0, 10.0 * (1 - 1e-13)), (3.0, 9.0)]
    assert list(non_dominated(close)) == [0, 1, 2]
    assert list(non_dominated(close, rel_tol=1e-12)) == [0, 2]  # within the tolerance of the first point
    assert list(non_dominated(np.zeros((0, 2)))) == []


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 9), st.integers(0, 9)), max_size=8))
def test_hypervolume_counts_the_dominated_unit_cells(rows):
    ref = (10, 10)
    cells = sum(any(x <= cx and y <= cy for x, y in rows) for cx in range(10) for cy in range(10))
    assert hypervolume_2d(rows, ref) == cells
    assert hypervolume_2d([(11, 1), (1, 10)], ref) == 0.0  # outside the box


@settings(max_examples=80, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([1.0, 2.0, 3.0, 4.0, np.inf, np.nan]),
                          st.sampled_from([1.0, 2.0, 3.0, 4.0, np.inf])), min_size=0, max_size=14))
def test_the_two_objective_sweep_keeps_the_rows_and_order_of_the_general_filter(rows):
    points = np.array(rows, dtype=float).reshape(-1, 2)
    general = non_dominated(np.column_stack([points, np.zeros(len(points))]))  # a third, constant objective
    assert non_dominated(points).tolist() == general.tolist()
