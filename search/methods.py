"""The registry of search methods, by name (as Pyomo's ``SolverFactory`` holds solvers).

A method is a :class:`Method` subclass registered with :func:`register`; ``codesign optimize
--method NAME``, the benchmarks (``python -m benchmarks compare``) and notebooks all find it with
:func:`get_method`::

    from search.methods import RunOptions, get_method
    result = get_method("ga").run(network, template, goal, RunOptions(seed=0, time_limit_s=30))

Every method declares what it supports -- ``single`` (minimize the goal's objective), ``front``
(a latency/power Pareto front, ``--pareto N``), ``fixed_hardware`` (search mappings only on given
hardware), ``evaluation_budget`` (stop after ``RunOptions.max_evaluations`` model evaluations, so
the same seed gives the same result) -- and returns the one result type,
:class:`~search.outcome.OptimizeResult` (its ``front`` set by front runs). :meth:`Method.optimize`
checks the options against what the method supports (a one-line ``SpecError`` otherwise) and
dispatches to :meth:`Method.run` or :meth:`Method.pareto`.

**Adding a method** touches this file only (plus its tests): write a subclass with ``name``,
``description``, the capability flags and ``run`` (and ``pareto`` if ``front``), and decorate the
class with ``@register``. An implementation that needs an optional dependency (pymoo, BoTorch, ...)
is imported *inside* ``run``, so that importing the registry stays cheap and the dependency loads
only when the method is used.
A method whose optional dependency is missing reports one line (:func:`load`). Example::

    @register
    class Annealing(Method):
        name = "annealing"
        description = "simulated annealing over the shared genome"
        fixed_hardware = evaluation_budget = True

        def run(self, network, template, goal, options, on_start_done=None):
            from search.annealing import run_annealing

            return run_annealing(network, template, goal, seed=options.seed, time_limit_s=options.time_limit_s,
                                 max_evaluations=options.max_evaluations)

Registered here: ``codesign`` (this project's pipeline: relax, round, local search, from parallel
starts; its front is the ε-constraint sweep), and the baselines of :mod:`search.baselines` on the
same evaluator, legal space and result type: ``ga`` (front: NSGA-II), ``random``,
``weighted-sum`` (front: N weights) and ``bo``; and ``exact`` (:mod:`search.mapper`: the proven
best mapping per layer on fixed hardware, with a certificate per layer).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from types import MappingProxyType

from formulation.specs.template import ArchTemplate
from formulation.specs.types import Network, SpecError
from search.design import Goal
from search.optimize import optimize
from search.outcome import OptimizeResult, StartResult
from search.pareto import DesignFront, pareto_front


@dataclass(frozen=True)
class RunOptions:
    """How a method runs: the options ``codesign optimize`` passes on.

    ``time_limit_s`` is the whole run's wall-clock budget (a front run splits it over its runs);
    ``starts`` applies to methods with parallel starts (``codesign``); ``jobs`` is the number of
    worker processes; ``backend``/``scheduler`` choose joblib (``loky``) or a Dask cluster for the
    starts; ``max_evaluations`` (methods with ``evaluation_budget`` only) caps the exact-model
    mapping evaluations; ``solver`` is the backend of the continuous relaxation
    (:mod:`formulation.relaxed.solvers`) and ``model_hooks`` change its Pyomo model
    (:mod:`formulation.relaxed.hooks`), for the methods that solve one (``relaxation``:
    ``codesign``, ``weighted-sum``).
    """

    starts: int = 4
    jobs: int = 2
    seed: int = 0
    time_limit_s: float = 60.0
    fixed_hardware: bool = False
    backend: str = "loky"
    scheduler: str | None = None
    max_evaluations: int | None = None
    solver: str = "cyipopt"
    model_hooks: tuple = ()


#: Called with every finished start (codesign's progress bar ticks on it); a method whose progress is counted in
#: other units (:meth:`Method.progress_units`) calls it with None at each unit done.
OnStartDone = Callable[[StartResult | None], None]


class Method:
    """One search method: its name, what it supports, and how it runs (see the module docstring)."""

    name: str = ""
    description: str = ""
    single: bool = True             # minimizes the goal's objective
    front: bool = False             # computes a latency/power front (``--pareto N``)
    fixed_hardware: bool = True     # searches mappings only, on given hardware
    evaluation_budget: bool = False  # honours RunOptions.max_evaluations
    relaxation: bool = False        # solves the continuous relaxation (takes RunOptions.solver, model_hooks)

    def run(self, network: Network, template: ArchTemplate, goal: Goal, options: RunOptions,
            on_start_done: OnStartDone | None = None) -> OptimizeResult:
        raise SpecError(f"--method = {self.name!r}: does not minimize a single objective")

    def progress_units(self, network: Network, options: RunOptions, runs: int) -> tuple[int, str]:
        """How many calls of ``on_start_done`` a run of ``runs`` runs (a front has several) makes, and their unit."""
        return options.starts * runs, "start"

    def pareto(self, network: Network, template: ArchTemplate, goal: Goal, n_points: int, options: RunOptions,
               on_start_done: OnStartDone | None = None) -> OptimizeResult:
        raise SpecError(f"--pareto = {n_points}: method {self.name} does not compute fronts")

    def check(self, options: RunOptions, n_points: int | None = None) -> None:
        """A one-line :class:`SpecError` when ``options`` ask for something this method does not support."""
        if n_points is not None and not self.front:
            raise SpecError(f"--pareto = {n_points}: method {self.name} does not compute fronts")
        if n_points is None and not self.single:
            raise SpecError(f"--method = {self.name!r}: computes fronts only; give --pareto N")
        if options.fixed_hardware and not self.fixed_hardware:
            raise SpecError(f"--fixed-hardware = True: method {self.name} always searches the hardware")
        if (options.solver != RunOptions.solver or options.model_hooks) and not self.relaxation:
            raise SpecError(f"--method = {self.name!r}: does not solve the relaxation, so --solver and "
                            f"--model-hook do not apply")
        if options.max_evaluations is not None and not self.evaluation_budget:
            raise SpecError(f"--max-evaluations = {options.max_evaluations}: method {self.name} has only a "
                            f"time budget")

    def optimize(self, network: Network, template: ArchTemplate, goal: Goal, options: RunOptions,
                 n_points: int | None = None, on_start_done: OnStartDone | None = None) -> OptimizeResult:
        """:meth:`run`, or :meth:`pareto` with ``n_points``, after :meth:`check`."""
        self.check(options, n_points)
        if n_points is None:
            return self.run(network, template, goal, options, on_start_done)
        return self.pareto(network, template, goal, n_points, options, on_start_done)


_REGISTRY: dict[str, Method] = {}

#: The registered methods by name (read-only; add with :func:`register`).
METHODS = MappingProxyType(_REGISTRY)


def register(cls: type[Method]) -> type[Method]:
    """Register a :class:`Method` subclass under its ``name`` (a class decorator); the name must be new."""
    method = cls()
    if not method.name or not method.description:
        raise ValueError(f"{cls.__name__}: a method needs a name and a description")
    if method.name in _REGISTRY:
        raise ValueError(f"method {method.name!r} is already registered ({type(_REGISTRY[method.name]).__name__})")
    _REGISTRY[method.name] = method
    return cls


def get_method(name: str) -> Method:
    """The method registered as ``name``, or a one-line :class:`SpecError` listing the names."""
    method = _REGISTRY.get(name)
    if method is None:
        raise SpecError(f"--method = {name!r}: unknown method (available: {', '.join(sorted(_REGISTRY))})")
    return method


def load(module: str, attribute: str, method: str, hint: str = "") -> Callable:
    """``module.attribute``, imported now; a missing optional package becomes a one-line :class:`SpecError`."""
    try:
        return getattr(importlib.import_module(module), attribute)
    except ImportError as exc:
        raise SpecError(f"--method = {method!r}: needs {exc.name or 'a missing package'}"
                        + (f" ({hint})" if hint else "")) from None


# ---- the methods -------------------------------------------------------------------------------------------

@register
class Codesign(Method):
    name = "codesign"
    description = "relax (IPOPT), round, local search, from parallel starts; --pareto N: epsilon-constraint front"
    front = True
    relaxation = True
    evaluation_budget = True  # split evenly over the starts (search.optimize.split_evaluations)

    def run(self, network, template, goal, options, on_start_done=None):
        return optimize(network, template, goal, starts=options.starts, jobs=options.jobs, seed=options.seed,
                        solver=options.solver, fixed_hardware=options.fixed_hardware,
                        time_limit_s=options.time_limit_s, backend=options.backend, scheduler=options.scheduler,
                        on_start_done=on_start_done, model_hooks=options.model_hooks,
                        max_evaluations=options.max_evaluations)

    def pareto(self, network, template, goal, n_points, options, on_start_done=None):
        front = pareto_front(network, template, goal, n_points, starts=options.starts, jobs=options.jobs,
                             seed=options.seed, solver=options.solver, fixed_hardware=options.fixed_hardware,
                             time_limit_s=options.time_limit_s, backend=options.backend,
                             scheduler=options.scheduler, on_start_done=on_start_done,
                             model_hooks=options.model_hooks, max_evaluations=options.max_evaluations)
        return front.best_for(network, template, goal)


class Baseline(Method):
    """A method of :mod:`search.baselines`: ``run_<method>(network, template, goal, *, seed, time_limit_s,
    max_evaluations, fixed_hardware, jobs, ...)``; ``--starts`` does not apply (each is one run)."""

    evaluation_budget = True
    module = ""
    function = ""
    hint = ""

    def call(self, function: str, network, template, goal, options: RunOptions, **extra) -> OptimizeResult:
        fn = load(self.module, function, self.name, self.hint)
        return fn(network, template, goal, seed=options.seed, time_limit_s=options.time_limit_s,
                  max_evaluations=options.max_evaluations, fixed_hardware=options.fixed_hardware,
                  jobs=options.jobs, **extra)

    def run(self, network, template, goal, options, on_start_done=None):
        return self.call(self.function, network, template, goal, options)


@register
class GeneticAlgorithm(Baseline):
    name = "ga"
    description = "genetic algorithm (pymoo) on the whole-network genome; --pareto: NSGA-II on power vs latency"
    front = True
    module, function, hint = "search.baselines.ga", "run_ga", "pip install pymoo"

    def pareto(self, network, template, goal, n_points, options, on_start_done=None):
        """NSGA-II on (power, latency): its archive of non-dominated designs (``n_points`` does not bound it)."""
        result = self.call("run_ga_pareto", network, template, goal, options)
        front = DesignFront.from_designs("nsga2", result, [("nsga2", ev) for ev in result.extra.get("front", ())])
        return front.best_for(network, template, goal)


@register
class RandomSearch(Baseline):
    name = "random"
    description = "random legal designs, batched; keep the best"
    module, function = "search.baselines.random_search", "run_random_search"


@register
class WeightedSum(Baseline):
    name = "weighted-sum"
    description = "relaxation + local search under weighted sums of ln power and ln latency (5 weights; " \
                  "--pareto N: N weights)"
    front = True
    relaxation = True
    module, function = "search.baselines.weighted_sum", "run_weighted_sum"

    def run(self, network, template, goal, options, on_start_done=None):
        return self.call(self.function, network, template, goal, options, solver=options.solver,
                         model_hooks=options.model_hooks)

    def pareto(self, network, template, goal, n_points, options, on_start_done=None):
        """The weighted-sum sweep with ``n_points`` weights; every weight's design is a candidate."""
        if n_points < 2:
            raise SpecError(f"--pareto = {n_points}: the weighted-sum front needs at least 2 weights")
        result = self.call(self.function, network, template, goal, options, n_weights=n_points,
                           solver=options.solver, model_hooks=options.model_hooks)
        front = DesignFront.from_designs("weighted-sum", result,
                                         [(f"w={w:.3g}", ev) for w, ev in result.extra.get("weights", ())])
        return front.best_for(network, template, goal)


@register
class BayesianOptimization(Baseline):
    name = "bo"
    description = "Bayesian optimization (BoTorch GP) over the hardware, inner mapping search per point"
    module, function, hint = "search.baselines.bo", "run_bo", "install it with .venv/bin/pip install -e '.[bo]'"


@register
class Exact(Method):
    name = "exact"
    description = ("proven-optimal mapping of every layer by branch and bound on fixed hardware (energy, latency, "
                   "edp), with a certificate per layer; starts from the local search")

    def run(self, network, template, goal, options, on_start_done=None):
        if not options.fixed_hardware:
            raise SpecError("--method = 'exact': maps fixed hardware only; add --fixed-hardware --arch NAME")
        from search.mapper.network import map_network
        from search.mapper.result import MapperStatus

        done: set[int] = set()

        def layer_done(i: int, result) -> None:  # a tick per layer proven (or proven infeasible)
            if i not in done and result.status in (MapperStatus.OPTIMAL, MapperStatus.INFEASIBLE):
                done.add(i)
                if on_start_done is not None:
                    on_start_done(None)

        result = map_network(network, template, goal, time_limit_s=options.time_limit_s, seed=options.seed,
                             jobs=options.jobs, on_layer_done=layer_done)
        for _ in range(len(network.layers) - len(done)):  # the layers the budget left open end with the run
            if on_start_done is not None:
                on_start_done(None)
        return result

    def progress_units(self, network, options, runs):
        return len(network.layers), "layer"


__all__ = ["METHODS", "Baseline", "Method", "RunOptions", "get_method", "load", "register"]
