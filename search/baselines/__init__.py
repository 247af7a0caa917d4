"""Baseline co-design methods, all on the same evaluator, legal space, budget and result type.

Every method is a function

    run_<method>(network, template, goal, *, seed, time_limit_s, max_evaluations=None,
                 fixed_hardware=False, jobs=1, on_progress=None) -> OptimizeResult

* **Evaluator**: the exact model (:func:`formulation.model.exact.evaluate_batch`); ``evaluations``
  counts the layer mappings it evaluated.
* **Legal space**: mesh sides are integers in the template's ranges, buffer sizes powers of two
  in range (or the range's ends); mappings are divisor tilings whose spatial factors fit the
  mesh, with any loop order and bypass where ``keeps`` allows; every reported design is legal
  and, unless the status is INFEASIBLE, within the area budget and caps.
* **Budget**: ``time_limit_s`` (wall) and/or ``max_evaluations``. With an evaluation budget the
  same seed gives the same result; a wall-time budget may cut at a different point.
* **Result**: :class:`~search.optimize.OptimizeResult` with ``method`` naming the method and
  ``extra["history"]`` the best-so-far trace ``[(wall_s, evaluations, best objective)]``;
  ``extra["stopped_by"]`` says what ended the run; the status follows it (:mod:`search.outcome`):
  ``evaluation_limit`` (evaluation or generation budget), ``time_limit`` (wall time), ``converged``
  (the method's own end), ``interrupted``, ``infeasible``.
  ``on_progress`` receives a :class:`~search.baselines.evaluation.Progress` after every batch,
  generation or finished weight. Pareto methods (``nsga2``, ``weighted-sum``) also return
  ``extra["front"]``: non-dominated (power, latency) designs, fastest first, and report as
  ``best`` the front design with the best goal objective.

``fixed_hardware=True`` pins the hardware to the template's base hardware on the legal grid (the
architecture itself for :func:`search.optimize.fixed_template`) and searches mappings only.

Importing this package is cheap: the methods (and pymoo) load on first use of a name below. The
methods are registered by name for ``codesign optimize --method`` in :mod:`search.methods`.
"""

import importlib

_WHERE = {
    "run_ga": "search.baselines.ga",
    "run_ga_pareto": "search.baselines.ga",
    "run_random_search": "search.baselines.random_search",
    "run_weighted_sum": "search.baselines.weighted_sum",
    "run_bo": "search.baselines.bo",
    "Progress": "search.baselines.evaluation",
}


def __getattr__(name: str):
    if name in _WHERE:
        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["Progress", "run_bo", "run_ga", "run_ga_pareto", "run_random_search", "run_weighted_sum"]
