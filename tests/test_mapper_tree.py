"""The tree search's expansions cut to the time left (search.mapper.tree._Search.run)."""

from __future__ import annotations

import math
import time
from unittest.mock import patch

import numpy as np

import search.mapper.tree as tree
from formulation.goals import Objective
from formulation.specs.types import Layer
from search.mapper import map_layer
from search.mapper.leaves import Rules
from search.mapper.objective import objective_of
from tests.mapper_cases import brute_force, tiny_arch

LAYER = Layer("tiny", N=1, K=4, C=2, P=3, Q=2, R=2, S=1)
ARCH = tiny_arch(3, (2, 2), glb_words=64, rf_words=8)


def test_an_expansion_takes_as_many_parents_as_its_share_of_the_time_left():
    """Unmeasured or without a time limit an expansion takes up to MAX_ROWS children; measured, the
    parents whose children are expected to take at most EXPAND_SHARE of the time left (between
    EXPAND_MIN_S and EXPAND_MAX_S), and at least one parent."""
    now = time.monotonic()
    search = tree._Search(LAYER, ARCH, Objective.EDP, Rules(), now + 10.0, math.inf)
    f = 50
    assert search._parents_per_expansion(0, f, now) == tree.MAX_ROWS // f
    search._measured(0, 1000, 10.0)                      # 10 ms per child
    step = search._parents_per_expansion(0, f, now)
    budget = min(tree.EXPAND_MAX_S, max(tree.EXPAND_MIN_S, tree.EXPAND_SHARE * 10.0))
    assert step == max(1, int(budget / (0.01 * f))) and step * f * 0.01 <= budget
    assert search._parents_per_expansion(0, f, now + 9.99) == max(1, int(tree.EXPAND_MIN_S / (0.01 * f)))
    search._measured(0, 10, 100.0)                       # one parent's children alone exceed the budget
    assert search._parents_per_expansion(0, f, now) == 1
    search._measured(0, 1000, 0.0)                       # a fast measure halves the estimate at most
    assert search.row_seconds[0] == 5.0
    unlimited = tree._Search(LAYER, ARCH, Objective.EDP, Rules(), math.inf, math.inf)
    unlimited._measured(0, 1000, 10.0)
    assert unlimited._parents_per_expansion(0, f, now) == tree.MAX_ROWS // f


def test_expansions_cut_to_one_parent_still_prove_the_brute_force_optimum():
    """With every measured expansion cut to a single parent row (and MAX_ROWS small, so that a depth
    is expanded more than once) the search expands the same parent rows in more expansions, proves
    the brute-force optimum, and its counts add up to the mapspace."""
    energy, cycles, _ = brute_force(LAYER, ARCH)
    values = np.where(np.isfinite(energy), objective_of(Objective.EDP, energy, cycles, ARCH.clock_GHz), np.inf)
    expand = tree._Search.expand

    def run(cut: bool) -> tuple[list[int], object]:
        parents: list[int] = []

        def counting(self, node):
            parents.append(node[1].shape[0])
            return expand(self, node)
        small = 1e-12 if cut else tree.EXPAND_MAX_S
        with patch.object(tree._Search, "expand", counting), patch.object(tree, "MAX_ROWS", 64), \
                patch.object(tree, "EXPAND_MAX_S", small), patch.object(tree, "EXPAND_MIN_S", min(small, tree.EXPAND_MIN_S)):
            result = map_layer(LAYER, ARCH, Objective.EDP, time_limit_s=600.0, seed_samples=4)
        return parents, result

    whole, _ = run(False)
    parts, result = run(True)
    assert len(parts) > len(whole) and sum(parts) == sum(whole)
    cert = result.certificate
    assert result.status.value == "optimal"
    assert math.isclose(cert.best, values.min(), rel_tol=1e-9)
    assert cert.evaluated + sum(cert.pruned.values()) == cert.mapspace
