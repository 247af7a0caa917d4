"""What a search run returns, and the budget that decides when it stops.

Every search method (:mod:`search.methods`) returns one :class:`OptimizeResult`. Its status is
honest about what was shown:

* ``converged``: the method ended on its own stopping rule (local search: no move improves and
  the kicks are spent; GA: no new offspring) -- a local optimum, not a proof;
* ``evaluation_limit``: its evaluation (or generation) budget ended it;
* ``time_limit``: the wall-clock budget ended it (at least one start was cut short);
* ``interrupted``: the user stopped it (Ctrl-C); the best design so far is kept;
* ``infeasible``: no design within the area budget and caps was found;
* ``optimal``: reserved for a result *proven* optimal (by a bound); no method proves it yet.

:class:`Budget` is the wall time and the number of exact-model mapping evaluations a run may use;
it counts what was used and records why the run stopped (``stopped_by``: ``time``,
``evaluations``, ``converged``, or a method's own reason such as ``generations``).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING

from search.stop import stop_requested

if TYPE_CHECKING:
    from search.design import Evaluated
    from search.pareto import DesignFront


class OptimizeStatus(str, Enum):
    OPTIMAL = "optimal"                    # proven optimal (the exact mapper on energy or latency)
    CONVERGED = "converged"                # the method's own stopping rule ended it: a local optimum, no proof
    EVALUATION_LIMIT = "evaluation_limit"  # stopped by its evaluation (or generation) budget
    TIME_LIMIT = "time_limit"              # stopped by the time limit; the best design so far is reported
    INTERRUPTED = "interrupted"            # stopped by the user; the best design so far is reported
    INFEASIBLE = "infeasible"              # no design found within the budget and caps


#: What each status means, as the ``codesign optimize`` summary prints it.
STATUS_MEANING = {
    OptimizeStatus.OPTIMAL: "proven optimal",
    OptimizeStatus.CONVERGED: "the search ended on its own: a local optimum, not proven optimal",
    OptimizeStatus.EVALUATION_LIMIT: "stopped by its evaluation budget; best design so far",
    OptimizeStatus.TIME_LIMIT: "stopped by the time limit; best design so far",
    OptimizeStatus.INTERRUPTED: "interrupted; best design so far",
    OptimizeStatus.INFEASIBLE: "no design within the budget and caps was found",
}

#: How bad a status is when several runs are combined into one (a front's sweep): the worst one wins.
STATUS_RANK = {OptimizeStatus.OPTIMAL: 0, OptimizeStatus.CONVERGED: 0, OptimizeStatus.EVALUATION_LIMIT: 1,
               OptimizeStatus.TIME_LIMIT: 1, OptimizeStatus.INFEASIBLE: 1, OptimizeStatus.INTERRUPTED: 2}


def worse_status(a: OptimizeStatus, b: OptimizeStatus) -> OptimizeStatus:
    """The worse of two statuses by :data:`STATUS_RANK` (``a`` on a tie)."""
    return a if STATUS_RANK[a] >= STATUS_RANK[b] else b


@dataclass(frozen=True)
class StartResult:
    """One start (or one sub-run: a weight, a baseline's single run) of a method."""

    start: int
    best: Evaluated | None
    relaxed_objective: float | None
    solver_status: str
    evaluations: int
    wall_s: float
    message: str = ""
    timed_out: bool = False


@dataclass(frozen=True)
class OptimizeResult:
    """The one result type of every search method; ``front`` is set by front runs (``--pareto``)."""

    status: OptimizeStatus
    method: str
    best: Evaluated | None
    starts: tuple[StartResult, ...]
    wall_s: float
    evaluations: int
    binding: tuple[str, ...] = ()
    extra: dict = field(default_factory=dict)
    front: DesignFront | None = None


class Budget:
    """Wall time and exact-model evaluations a run may use; counts the evaluations and records why it stopped.

    ``time_limit_s`` is measured from construction; ``max_evaluations`` ``None`` or ``inf`` means no
    evaluation budget. :meth:`exhausted` is the check a method makes between steps: it sets
    ``stopped_by`` to ``evaluations`` or ``time`` when the budget is used up. ``stopped_by`` is
    ``None`` while nothing stopped the run (:attr:`reason` then reads ``converged``).
    """

    TIME = "time"
    EVALUATIONS = "evaluations"
    CONVERGED = "converged"
    INTERRUPTED = "interrupted"

    def __init__(self, time_limit_s: float = math.inf, max_evaluations: float | None = None):
        self.t0 = time.monotonic()
        self.time_limit_s = float(time_limit_s)
        self.max_evaluations = math.inf if max_evaluations is None else max_evaluations
        self.evaluations = 0
        self.stopped_by: str | None = None

    @property
    def deadline(self) -> float:
        """The ``time.monotonic()`` value at which the time budget ends."""
        return self.t0 + self.time_limit_s

    def elapsed(self) -> float:
        return time.monotonic() - self.t0

    def remaining_s(self) -> float:
        return max(0.0, self.time_limit_s - self.elapsed())

    def remaining_evaluations(self) -> float:
        return self.max_evaluations - self.evaluations

    def charge(self, evaluations: int) -> None:
        """Count ``evaluations`` more mapping evaluations."""
        self.evaluations += int(evaluations)

    def out_of_time(self) -> bool:
        """The wall time is used up, or a stop was requested (:mod:`search.stop`: SIGINT/SIGTERM)."""
        return time.monotonic() > self.deadline or stop_requested()

    def exhausted(self) -> bool:
        """True (and ``stopped_by`` set) when the evaluations or the wall time are used up, or a stop was
        requested. The evaluations are checked first and only between steps, so under an evaluation
        budget a run takes the same steps on every run and machine."""
        if self.remaining_evaluations() <= 0:
            self.stopped_by = self.EVALUATIONS
            return True
        if stop_requested():
            self.stopped_by = self.INTERRUPTED
            return True
        if self.out_of_time():
            self.stopped_by = self.TIME
            return True
        return False

    def stop(self, reason: str) -> None:
        """Record that the run stopped for ``reason``."""
        self.stopped_by = reason

    @property
    def reason(self) -> str:
        return self.stopped_by or self.CONVERGED

    @property
    def timed_out(self) -> bool:
        return self.stopped_by == self.TIME


__all__ = ["Budget", "OptimizeResult", "OptimizeStatus", "STATUS_MEANING", "STATUS_RANK", "StartResult", "worse_status"]
