"""The answer of the exact mapper: the best mapping and its certificate."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import Enum

from formulation.goals import Objective
from formulation.specs.types import Mapping


class MapperStatus(str, Enum):
    OPTIMAL = "optimal"          # the whole mapspace was covered: best is the optimum
    TIME_LIMIT = "time_limit"    # the budget ended first: best so far, a valid lower bound and the gap
    INTERRUPTED = "interrupted"  # stopped by the user: best so far; the bound is the root's
    INFEASIBLE = "infeasible"    # no legal mapping exists (every keep choice overflows)


@dataclass(frozen=True)
class Certificate:
    """What the search proved for one layer.

    ``best`` and ``lower_bound`` are in the objective's unit (pJ, s or pJ·s): no mapping of the
    mapspace has an objective below ``lower_bound``; ``optimal`` means none is better than ``best``
    by more than the relative tolerance :data:`search.mapper.tree.TOL` (1e-8); ``gap = best / lower_bound - 1``. ``mapspace``
    counts every mapping of :class:`search.mapper.space.Space`; ``evaluated`` those the exact model
    scored during the exhaustive search; ``pruned[rule]`` those each rule cut, so that
    ``mapspace = evaluated + sum(pruned) + remaining`` (``remaining`` is 0 when optimal).
    ``seed_evaluations`` counts the random mappings scored to start with an incumbent.
    """

    objective: Objective
    optimal: bool
    lower_bound: float
    best: float
    mapspace: int
    evaluated: int
    pruned: dict[str, int]
    remaining: int
    wall_s: float
    seed_evaluations: int = 0

    def __post_init__(self) -> None:
        if self.optimal and self.remaining:
            raise ValueError(f"remaining = {self.remaining}: an optimal certificate covers the whole mapspace")
        if math.isfinite(self.best) and self.lower_bound > self.best * (1 + 1e-9):
            raise ValueError(f"lower_bound = {self.lower_bound}: above best = {self.best}")

    @property
    def gap(self) -> float:
        if self.optimal:
            return 0.0
        if not math.isfinite(self.best) or self.lower_bound <= 0:
            return math.inf
        return self.best / self.lower_bound - 1.0

    def to_json(self) -> dict:
        def num(x: float):
            return x if math.isfinite(x) else None
        return {"objective": self.objective.value, "optimal": self.optimal, "lower_bound": num(self.lower_bound),
                "best": num(self.best), "gap": num(self.gap), "mapspace": self.mapspace, "evaluated": self.evaluated,
                "pruned": dict(self.pruned), "remaining": self.remaining, "seed_evaluations": self.seed_evaluations,
                "wall_s": round(self.wall_s, 3)}


@dataclass(frozen=True)
class MapperResult:
    """The best mapping (``None`` when infeasible), its energy and cycles, and the certificate."""

    status: MapperStatus
    mapping: Mapping | None
    energy_pJ: float
    cycles: int
    certificate: Certificate
    #: (energy_pJ, cycles) of the non-dominated mappings evaluated; the layer's proven front when
    #: the search ran with ``front=True`` and the status is optimal
    pareto: tuple[tuple[float, int], ...] = field(default=())


__all__ = ["MapperStatus", "Certificate", "MapperResult"]
