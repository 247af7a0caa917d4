"""How ``codesign optimize --total-time T`` shares one wall-clock budget among search, polishing and the bound.

The pipeline has three phases: the co-design search (relaxation, rounding, local search; its own
``--time-limit``), polishing of the best design's mappings by the exact mapper (``--polish-time``,
:mod:`search.polish`) and the branch-and-bound for the lower bound (``--bound-time``,
:mod:`search.bnb`). With ``--total-time T`` (:func:`plan`):

* the search gets :data:`SEARCH_SHARE` of ``T``; it usually ends sooner (on ResNet-18 its starts
  converge in 10-30 s), and what it leaves goes to the next phases;
* after it, polishing and the bound run **at the same time** until ``T`` less a reserve for writing
  the result (:data:`WRITE_RESERVE_S`): the mapper on ``jobs`` workers, the bound in the main
  process. Both are CPU-bound and single-threaded per process, so on two cores running them
  together wastes nothing, where in turn the bound would idle a core and polishing would wait for
  it; the bound prunes with the search's incumbent (a design's value, so pruning stays safe) and its
  gap is taken against the polished design at the end;
* with one job they run one after the other instead: polishing first, then the bound for
  :data:`SEQUENTIAL_BOUND_SHARE` of what is left after the search;
* the bound has no node budget unless ``--bound-nodes`` is given (it stops on time);
* a front (``--pareto N``) is N + 2 searches one after the other, each as hard as a single design's,
  so the sweep gets :data:`FRONT_SEARCH_SHARE` instead (on ResNet-18 at 300 s: 150 s, about 20 s a
  run, the time a single design's starts take to converge; with 44 s, 6 s a run, VGG-16's
  least-latency run once ended at 36.7 ms where 22.4 ms is reached in 6 s on a quiet machine), and
  polishing of its points and their band run in turn (the band needs the polished points).

A phase's own option given explicitly (``--time-limit``, ``--polish-time``, ``--bound-time``) is
kept as given; the plan fills in only the ones left out. Without ``--total-time`` nothing changes:
the search runs ``--time-limit`` (default 60 s), then polishing ``--polish-time`` (default 0), then
the bound ``--bound-time`` (default 30 s, at most ``--bound-nodes``, default 40).
"""

from __future__ import annotations

from dataclasses import dataclass

#: Share of ``--total-time`` the search may use (it usually converges before).
SEARCH_SHARE = 0.15
#: Share of ``--total-time`` a front's sweep (``--pareto``) may use.
FRONT_SEARCH_SHARE = 0.5
#: With one job or a front, the bound's share of the time left after the search (polishing gets the rest first).
SEQUENTIAL_BOUND_SHARE = 0.25
#: Seconds kept at the end for writing the result (Timeloop YAML per layer, the plot), at most
#: this share of the total.
WRITE_RESERVE_S = 8.0
WRITE_RESERVE_SHARE = 0.05


@dataclass(frozen=True)
class TimePlan:
    """The budget of each phase, seconds; ``None`` for a phase the plan leaves to the time left.

    ``total_s`` is the whole run's budget (``None`` without ``--total-time``); ``search_s`` the
    search's; ``polish_s`` and ``bound_s`` are fixed values, or ``None`` to be taken from
    :meth:`window` once the search has ended; ``concurrent`` says whether polishing and the bound
    run at the same time.
    """

    total_s: float | None
    search_s: float
    polish_s: float | None
    bound_s: float | None
    concurrent: bool = False

    def __post_init__(self) -> None:
        for name in ("search_s", "polish_s", "bound_s", "total_s"):
            value = getattr(self, name)
            if value is not None and not value >= 0:
                raise ValueError(f"{name} = {value!r}: needs a number >= 0")

    def window(self, elapsed_s: float) -> float:
        """Seconds left for polishing and the bound after ``elapsed_s`` of the run (search included):
        the total less the write reserve, less what was used."""
        if self.total_s is None:
            return 0.0
        reserve = min(WRITE_RESERVE_S, WRITE_RESERVE_SHARE * self.total_s)
        return max(0.0, self.total_s - reserve - elapsed_s)

    def phases(self, elapsed_s: float) -> tuple[float, float]:
        """(polish seconds, bound seconds) once the search has taken ``elapsed_s`` (module docstring)."""
        left = self.window(elapsed_s)
        if self.concurrent:
            polish = left if self.polish_s is None else self.polish_s
            bound = left if self.bound_s is None else self.bound_s
            return polish, bound
        if self.polish_s is None and self.bound_s is None:
            bound = SEQUENTIAL_BOUND_SHARE * left
            return left - bound, bound
        if self.polish_s is None:
            return max(0.0, left - self.bound_s), self.bound_s
        if self.bound_s is None:
            return self.polish_s, max(0.0, left - self.polish_s)
        return self.polish_s, self.bound_s


def plan(total_s: float | None, *, search_s: float | None, polish_s: float | None, bound_s: float | None,
         jobs: int, front: bool = False, default_search_s: float = 60.0, default_polish_s: float = 0.0,
         default_bound_s: float = 30.0) -> TimePlan:
    """The plan for ``--total-time total_s`` with the phases' own options (``None``: not given), ``jobs``
    and whether the run is a front (``--pareto``).

    Without ``total_s`` every phase takes its option or its default, one after the other.
    """
    if total_s is None:
        return TimePlan(None, default_search_s if search_s is None else search_s,
                        default_polish_s if polish_s is None else polish_s,
                        default_bound_s if bound_s is None else bound_s)
    search = (FRONT_SEARCH_SHARE if front else SEARCH_SHARE) * total_s if search_s is None else search_s
    return TimePlan(total_s, search, polish_s, bound_s, concurrent=jobs > 1 and not front)


__all__ = ["TimePlan", "plan", "SEARCH_SHARE", "FRONT_SEARCH_SHARE", "SEQUENTIAL_BOUND_SHARE", "WRITE_RESERVE_S"]
