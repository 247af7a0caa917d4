"""The direct rendering of the formulation: every row as a :class:`Smooth` over the whole ``x``.

Runs :mod:`formulation.relaxed.formulation`'s statement with
:class:`~formulation.relaxed.sensitivity.SmoothAlgebra`, layer by layer, without tapes: slow, and
the reference the tests and ``benchmarks/solve.py`` compare the compiled callbacks with.
"""

from __future__ import annotations

import numpy as np

from formulation.relaxed import formulation as F
from formulation.relaxed.compiled import constant_slots, local_index
from formulation.relaxed.sensitivity import Smooth, SmoothAlgebra


def _lift(s: Smooth, where: np.ndarray, n: int) -> Smooth:
    """A layer-local Smooth with its gradient scattered into the ``n`` variables (constants dropped)."""
    g = np.zeros(n)
    keep = where < n
    np.add.at(g, where[keep], s.grad[keep])
    return Smooth(s.value, g)


def layer_terms(problem, x: np.ndarray) -> list[tuple[Smooth, list[Smooth]]]:
    """Every layer's energy and row bodies as Smooth numbers over ``x``."""
    zconst, slot = constant_slots(problem.variables, problem.template)
    xe = np.concatenate([x, zconst])
    out = []
    for i, entry in enumerate(problem.network.layers):
        where = local_index(problem.variables, problem.template, i, slot)
        u = xe[where]
        energy, bodies = F.layer_statement(SmoothAlgebra(len(u)), u, entry.layer, problem.template,
                                           problem.structures[i])
        out.append((_lift(energy, where, problem.n), [_lift(b, where, problem.n) for b in bodies]))
    return out


def reference_totals(problem, x: np.ndarray) -> dict[str, Smooth]:
    """:meth:`RelaxedProblem.totals` through the statement (:func:`~formulation.relaxed.formulation.network_totals`)."""
    alg, _, _, _ = problem.hardware_smooth(x)
    lc = [Smooth(float(x[j]), np.eye(1, problem.n, j).ravel()) for j in problem.variables.lc]
    terms = layer_terms(problem, x)
    totals = F.network_totals([e for e, _ in terms], lc, [e.count for e in problem.network.layers],
                              problem.template.base.clock_GHz, alg)
    return {**totals, "area_mm2": problem.area(x)}


def reference_rows(problem, x: np.ndarray) -> list[Smooth]:
    """Every row of the formulation (user rows aside), in row order."""
    rows = [b for _, bodies in layer_terms(problem, x) for b in bodies]
    alg, mx, my, sizes = problem.hardware_smooth(x)
    totals = reference_totals(problem, x)
    area = F.area_mm2(alg, mx, my, sizes, problem.template)
    return rows + F.network_rows(alg, totals, area, problem.area_budget_mm2, problem.caps)


def reference_objective(problem, x: np.ndarray) -> Smooth:
    return F.objective(problem.hardware_smooth(x)[0], reference_totals(problem, x), problem.objective_kind)
