"""One time budget for the exact mapper over many layers, on one process or several workers.

Layers differ by orders of magnitude in how long the mapper needs for its proof (on ResNet-18 and
the 16x16 ``simple`` hardware, two thirds of the layers prove in about 2 s and a few need tens of
seconds), and which ones are hard is not known in advance. :func:`map_layers` is the one scheduler
of such "layer tasks" (``optimize --method exact``, ``benchmarks mapper --network-time``, and
polishing, :mod:`search.polish`); it returns every layer's :class:`MapperResult` with its
certificate.

The searches run on ``jobs`` workers (:mod:`search.mapper.worker`: with ``jobs > 1`` on joblib's reusable
loky processes, with ``jobs=1`` in this process, one search after the other). A search that runs out
of its slice is *parked*, not lost: its open nodes, incumbent and counts come
back to this process (:class:`search.mapper.resume.OpenSearch`, a few MB) and a later slice, on any
worker, goes on from them (:func:`search.mapper.resume.search_layer`). Giving a layer its time in
several slices then costs next to nothing, so the rule need not guess in advance how hard a layer
is. The rule (:class:`Plan`, pure bookkeeping with the clock as an argument), whenever a worker is
free:

1. *First pass.* Start the next layer not started yet, hardest first (LPT, longest processing time
   first, on :meth:`search.mapper.space.Space.hardness`, the factor placements, which ranks layers
   as the mapspace size does but takes microseconds where the size takes seconds on deep
   hierarchies: on ResNet-18 it puts the four slow layers among the first five and the proofs of
   about 2 s last, where they fill the workers' ends), for :func:`slice_s` towards the first pass's
   deadline (``first_pass_share`` of the budget): the free worker time until then, less what the
   running slices hold, divided by the layers not started (with one worker: the time left divided
   by the layers left). An easy layer proves within it and leaves the rest. A layer not started
   by the deadline is not started at all (its answer is its seeds' alone, or none with
   ``seeds_after_stop=False``): each start costs its seeding and parking, about half a second, so
   starting every layer of MobileNetV2 took 7.8 s on two workers whatever the budget.
2. *Later passes.* Once every layer is started, resume the parked search that has been given the
   least time per unit of gap (its slices' seconds so far over its layer's gap, a gap under
   :data:`GAP_FLOOR` counted as that), for :func:`slice_s` towards the deadline over the parked
   searches; the slice goes depth first for its first :data:`LATER_BEST_FIRST_AFTER` and best first
   after (expanding the open node of least bound, which is what raises a layer's certified bound).
   So the time goes where the gap is, as a user wants the worst gap closed first, and a layer near
   its proof (gap at the floor) still gets its share. Measured on ResNet-18 on ``eyeriss-like``
   (120 s, 2 workers, load about 2, 2026-12-01): in rounds (the parked search with the fewest slices,
   largest gap first) all depth first, layer2_3x3 ended at 2.7% and layer1_3x3 at 1.9% (5 proven);
   by gap alone, still depth first, layer2_3x3 got 72 s instead of 30 s and the same bound (its
   open bound stays where depth first leaves it); in rounds with best first after half of every
   slice 2.5%; by gap with best first, floor 1e-4, 0.4% and 0.9% but 3 proven (two layers near their
   proof starved); floor 1%, 2.0% and 0.9%, 5 proven; floor 0.5%, **1.3%** and 0.9%, 5 proven
   (MobileNetV2 155 s: 27 of 31 as in rounds, conv1 0.1% against 0.3%; ResNet-18 on ``simple``:
   12 of 12 in 30.4 s against 31.3 s). A search
   that has not finished is parked again; slices under :data:`MIN_SLICE_S` are not run, and none
   is longer than :data:`MAX_SLICE_SHARE` of the budget (:data:`TAIL_SLICE_S` once there are no
   more open searches than workers), so that searches come back often enough for rule 2's shares and
   for rule 3 (parking costs about 0.1 s: a few MB pickled, the bound model rebuilt).
3. *Split.* When there are more free workers than parked searches (at the end, one slow layer on
   one worker while the others idle: on ResNet-18 layer2_3x3_s2, alone for its last 35 s), the
   parked search of largest gap is split in two (:meth:`search.mapper.resume.OpenSearch.split`:
   its open nodes' partial tilings dealt alternately, each part with the incumbent), and the parts
   are searched on different workers as searches of their own (each cuts with its own incumbent,
   which is safe: a part's incumbent is a real mapping, never below the layer's optimum). The
   layer is proven when every part is; its certificate combines the parts' (:func:`combine`).

Searches go depth first (the mapper's most promising batch first: it finds the incumbents that cut
most, and it is what proves fastest: measured on layer3_3x3, 1.5-s slices that each turned best first
halfway scored 12 times the mappings of one search and took 2.5 times as long), in the first
pass; a later slice turns best first after :data:`LATER_BEST_FIRST_AFTER` of it (rule 2: by then
the layers that prove fast have, and the rest need their bound raised), and a layer's last slice
(one that ends at the deadline) after :data:`RESUME_BEST_FIRST_AFTER` of it.

A layer's certificate is that of its one search (its counts and ``wall_s`` are cumulative over its
slices), or its parts' combined; nothing is searched twice. A stop
request (:mod:`search.stop`) ends the running searches with their best mappings; the layers not
started then run their seeds only (every layer gets a mapping) and no search gets more time.
"""

from __future__ import annotations

import math
import queue
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from multiprocessing.managers import SyncManager

import numpy as np

from formulation.goals import Objective
from formulation.pareto import non_dominated
from formulation.model.encoding import MappingArrays
from formulation.specs.types import Architecture, Layer
from formulation.fd_capture import FD_CAPTURE_LOCK
from search.mapper.mapper import map_layer
from search.mapper.result import MapperResult, MapperStatus
from search.stop import LOKY_WORKER_KWARGS, leave_signals_to_the_parent, stop_file, stop_requested

#: Share of a finite budget for the first pass over every layer (module docstring).
FIRST_PASS_SHARE = 0.3
#: A parked search is resumed only for at least this long (s).
MIN_SLICE_S = 0.5
#: A layer's last slice on the workers turns best first after this share of it (module docstring).
RESUME_BEST_FIRST_AFTER = 0.8
#: On workers, a slice after the first pass lasts at most this share of the budget (module docstring, rule 3).
MAX_SLICE_SHARE = 0.1
#: ... and at most this long (s) once there are no more open searches than workers (rule 3).
TAIL_SLICE_S = 5.0
#: Later slices go to the least time given per unit of gap; a gap under this counts as this (rule 2).
GAP_FLOOR = 0.005
#: A later slice that is not a layer's last turns best first after this share of it (rule 2).
LATER_BEST_FIRST_AFTER = 0.5


def map_layers(layers: Sequence[Layer], arch: Architecture, objective: Objective, *, time_limit_s: float = math.inf,
               seed: int = 0, starts: Sequence[MappingArrays | None] | None = None,
               first_pass_share: float = FIRST_PASS_SHARE, jobs: int = 1, seeds_after_stop: bool = True,
               on_layer_done: Callable[[int, MapperResult], None] | None = None) -> list[MapperResult | None]:
    """:func:`search.mapper.map_layer` for every layer within one budget of ``time_limit_s`` seconds
    (module docstring), on ``jobs`` workers (one: this process). ``starts[i]`` (optional) seeds layer
    ``i``'s first search; ``on_layer_done(i, result)`` is called after each search (or slice) of layer
    ``i`` with the layer's answer so far. After a stop (Ctrl-C, or a layer's status ``interrupted``) the
    layers not searched yet get no search time (their starts and seeds only; with
    ``seeds_after_stop=False`` not even that: their answer is ``None``) and no search gets more time."""
    from search.mapper.space import space_for

    t0 = time.monotonic()
    deadline = t0 + time_limit_s
    starts = list(starts) if starts is not None else [None] * len(layers)
    jobs = max(1, min(jobs, len(layers)))
    plan = Plan([float(space_for(layer, arch).hardness()) for layer in layers], t0, deadline, jobs, first_pass_share)
    with (_Workers(jobs, arch, objective) if jobs > 1 else _InProcess(arch, objective)) as pool:
        idle = list(range(jobs))
        while True:
            now = time.monotonic()
            for w in list(idle):
                stop = stop_requested() or plan.stopped
                action = None if stop and not seeds_after_stop else plan.next_for(w, now, stop)
                if action is not None:
                    idle.remove(w)
                    i = action.task
                    pool.send(w, ("resume", i, action.search, action.budget_s, action.best_first_after)
                              if action.kind == "resume" else
                              ("start", i, layers[i], starts[i], action.budget_s, seed, action.best_first_after))
            if not plan.busy():
                break
            w, _, result, open_search = pool.receive()
            idle.append(w)
            i = plan.finished(w, result, open_search)
            if result is not None and on_layer_done is not None:
                on_layer_done(i, plan.result(i))
    return [plan.result(i) or (map_layer(layer, arch, objective, time_limit_s=0.0, seed=seed, start=starts[i])
                               if seeds_after_stop else None) for i, layer in enumerate(layers)]


def slice_s(now: float, deadline: float, jobs: int, held_s: float, waiting: int) -> float:
    """A slice (module docstring, rules 1 and 2): ``min(deadline - now, (jobs * (deadline - now)
    - held_s) / waiting)`` and at least 0, where ``held_s`` is the time the running slices still hold and
    ``waiting`` counts the layers waiting for time (this one included). With one worker and nothing
    running it is the sequential rule, the time left divided by the layers left."""
    left = deadline - now
    if not math.isfinite(left):
        return left
    return max(0.0, min(left, (jobs * left - held_s) / max(1, waiting)))


@dataclass(frozen=True)
class Action:
    """What a free worker does next: ``start`` a search of layer ``task`` or ``resume`` the parked part
    ``part`` of its search (``search``, taken off the parked ones), for ``budget_s`` seconds."""

    kind: str
    task: int
    budget_s: float
    best_first_after: float = math.inf
    part: int = 0
    search: object = None


def combine(parts: Sequence[MapperResult]) -> MapperResult:
    """One layer's answer from the answers of the parts its search was split into
    (:meth:`search.mapper.resume.OpenSearch.split`): the best part's mapping; optimal when every part
    is; the lower bound the least of the parts' (every mapping not evaluated or cut lies in an open node
    of some part, above that part's bound; the others are no better than some part's best) and of the
    best; the counts and ``wall_s`` (search time over the workers) summed."""
    if len(parts) == 1:
        return parts[0]
    certs = [r.certificate for r in parts]
    optimal = all(c.optimal for c in certs)
    best = min(c.best for c in certs)
    lower = best if optimal else min(best, min(c.lower_bound for c in certs))
    pruned = {rule: sum(c.pruned.get(rule, 0) for c in certs) for rule in certs[0].pruned}
    cert = replace(certs[0], optimal=optimal, lower_bound=lower, best=best, pruned=pruned,
                   evaluated=sum(c.evaluated for c in certs), remaining=sum(c.remaining for c in certs),
                   wall_s=sum(c.wall_s for c in certs), seed_evaluations=sum(c.seed_evaluations for c in certs))
    winner = min(parts, key=lambda r: (r.mapping is None, r.certificate.best))
    if any(r.status is MapperStatus.INTERRUPTED for r in parts):
        status = MapperStatus.INTERRUPTED
    elif optimal:
        status = MapperStatus.OPTIMAL if winner.mapping is not None else MapperStatus.INFEASIBLE
    else:
        status = MapperStatus.TIME_LIMIT
    points = sorted(set().union(*(r.pareto for r in parts)))
    pareto = tuple(points[j] for j in non_dominated(np.array([[c, e] for e, c in points]))) if points else ()
    return replace(winner, status=status, certificate=cert, pareto=pareto)


class Plan:
    """The workers' time-share rule (module docstring) over ``len(hardness)`` layers, with a budget from
    ``t0`` to ``deadline`` (``time.monotonic()`` values): :meth:`next_for` says what a free worker runs,
    :meth:`finished` records a search's answer. Pure bookkeeping: no processes, the clock is an argument
    (a parked search is opaque here but for its ``split()``)."""

    def __init__(self, hardness: Sequence[float], t0: float, deadline: float, jobs: int,
                 first_pass_share: float = FIRST_PASS_SHARE) -> None:
        n = len(hardness)
        self.order = sorted(range(n), key=lambda i: (-hardness[i], i))
        self.deadline, self.jobs = deadline, jobs
        finite = math.isfinite(deadline)
        self.first_deadline = t0 + first_pass_share * (deadline - t0) if finite else deadline
        self.max_slice_s = MAX_SLICE_SHARE * (deadline - t0) if finite else math.inf
        self.started = [False] * n
        self.parts: list[dict[int, MapperResult]] = [{} for _ in range(n)]  # layer -> part -> its answer
        self.parked: dict[tuple[int, int], object] = {}        # (layer, part) -> its open search
        self.running: dict[int, tuple[tuple[int, int], float]] = {}  # worker -> ((layer, part), end of slice)
        self.given: dict[tuple[int, int], float] = {}           # (layer, part) -> seconds of its slices so far
        self.stopped = False

    def result(self, i: int) -> MapperResult | None:
        """Layer ``i``'s answer so far (its parts' answers combined), None before its first answer."""
        return combine(list(self.parts[i].values())) if self.parts[i] else None

    def gap(self, i: int) -> float:
        r = self.result(i)
        return math.inf if r is None else r.certificate.gap

    def next_for(self, worker: int, now: float, stop: bool = False) -> Action | None:
        """What ``worker`` (free) runs next, or None (module docstring, rules 1-3)."""
        unstarted = [i for i in self.order if not self.started[i]]
        if stop or self.stopped:  # seeds only for the layers not started: each gets a mapping
            return self._run(worker, Action("start", unstarted[0], 0.0), now) if unstarted else None
        if unstarted and now >= self.deadline:  # out of time: no layer starts late (rule 1)
            return None
        if unstarted:
            end = self.first_deadline
            held = sum(max(0.0, min(e, end) - now) for _, e in self.running.values())
            return self._run(worker, Action("start", unstarted[0], slice_s(now, end, self.jobs, held, len(unstarted))),
                             now)
        if not self.parked:
            return None
        if self.jobs - len(self.running) > len(self.parked):  # more free workers than parked searches: split
            self._split(max(self.parked, key=lambda key: (self.gap(key[0]), -key[0], key[1])))
        held = sum(max(0.0, e - now) for _, e in self.running.values())
        cap = TAIL_SLICE_S if len(self.parked) + len(self.running) <= self.jobs else self.max_slice_s
        budget = min(cap, slice_s(now, self.deadline, self.jobs, held, len(self.parked)))
        if budget < MIN_SLICE_S:
            return None
        i, part = min(self.parked, key=lambda key: (self.given.get(key, 0.0) / max(self.gap(key[0]), GAP_FLOOR),
                                                    -self.gap(key[0]), key[0], key[1]))
        return self._run(worker, Action("resume", i, budget, part=part, search=self.parked.pop((i, part))), now)

    def _split(self, key: tuple[int, int]) -> None:
        halves = self.parked[key].split()
        if halves is not None:
            i = key[0]
            new = max(self.parts[i]) + 1
            self.parked[key], self.parked[(i, new)] = halves
            self.given[(i, new)] = self.given.get(key, 0.0)
            origin = self.parts[i][key[1]]  # until the new part answers: its origin's bounds, its counts once
            self.parts[i][new] = replace(origin, certificate=replace(
                origin.certificate, evaluated=0, pruned={}, remaining=0, wall_s=0.0, seed_evaluations=0))

    def _run(self, worker: int, action: Action, now: float) -> Action:
        if now + action.budget_s >= self.deadline - MIN_SLICE_S:  # the layer's last slice: raise its bound
            action = replace(action, best_first_after=RESUME_BEST_FIRST_AFTER)
        elif action.kind == "resume":
            action = replace(action, best_first_after=LATER_BEST_FIRST_AFTER)
        self.started[action.task] = True
        key = (action.task, action.part)
        self.given[key] = self.given.get(key, 0.0) + action.budget_s
        self.running[worker] = ((action.task, action.part), now + action.budget_s)
        return action

    def finished(self, worker: int, result: MapperResult | None, open_search=None) -> int:
        """Record the answer of ``worker``'s search (``open_search``: to go on with, parked); returns its layer."""
        (i, part), _ = self.running.pop(worker)
        if result is not None:
            self.parts[i][part] = result
            self.stopped = self.stopped or result.status is MapperStatus.INTERRUPTED
        if open_search is not None:
            self.parked[(i, part)] = open_search
        return i

    def busy(self) -> bool:
        return bool(self.running)


class _InProcess:
    """One worker in this process, with :class:`_Workers`' interface: a message sent is searched when its
    answer is received (:func:`search.mapper.worker.search`; Ctrl-C ends it with its best mapping)."""

    def __init__(self, arch: Architecture, objective: Objective) -> None:
        self.arch, self.objective, self.pending = arch, objective, None

    def __enter__(self) -> _InProcess:
        return self

    def send(self, worker: int, message: tuple) -> None:
        self.pending = message

    def receive(self) -> tuple:
        from search.mapper.worker import search

        msg, self.pending = self.pending, None
        result, open_search = search(msg, self.arch, self.objective)
        return 0, msg[1], result, open_search

    def __exit__(self, *exc) -> None:
        return None


class _Workers:
    """``jobs`` loops of :func:`search.mapper.worker.serve` on joblib's reusable loky executor, each with its
    own inbox, one outbox. Every mapper run reuses the executor of the one before; ``joblib.Parallel`` (the
    search) passes the executor other arguments (its workers' thread limits), so the first mapper run after
    a search starts new workers."""

    def __init__(self, jobs: int, arch: Architecture, objective: Objective) -> None:
        self.jobs, self.arch, self.objective = jobs, arch, objective

    def __enter__(self) -> _Workers:
        from joblib.executor import get_memmapping_executor

        from search.mapper.worker import serve

        with FD_CAPTURE_LOCK:  # processes start here: not while a solve beside us captures the output
            self.manager = SyncManager()  # multiprocessing.Manager(), its server leaving signals to us
            self.manager.start(leave_signals_to_the_parent)
            self.inboxes = [self.manager.Queue() for _ in range(self.jobs)]
            self.outbox = self.manager.Queue()
            executor = get_memmapping_executor(self.jobs, **LOKY_WORKER_KWARGS)
            self.loops = [executor.submit(serve, inbox, self.outbox, w, self.arch, self.objective, stop_file())
                          for w, inbox in enumerate(self.inboxes)]
        return self

    def send(self, worker: int, message: tuple) -> None:
        self.inboxes[worker].put(message)

    def receive(self) -> tuple:
        """The next answer ``(worker, layer, result, open_search)``; a worker's error is raised here."""
        while True:
            try:
                msg = self.outbox.get(timeout=1.0)
            except queue.Empty:
                for loop in self.loops:
                    if loop.done():
                        loop.result()  # raises the worker's error, if it died of one
                        raise RuntimeError("a mapper worker ended early")
                continue
            if isinstance(msg[2], str):
                raise RuntimeError(f"mapper worker {msg[0]} failed on layer {msg[1]}:\n{msg[3]}")
            return msg

    def __exit__(self, exc_type, *exc) -> None:
        """Ends the loops (waits for them after a normal end; after an error or a second Ctrl-C a running
        search ends at its slice's end, when its answer finds the queues gone)."""
        try:
            for inbox in self.inboxes:
                inbox.put(("quit",))
            if exc_type is None:
                for loop in self.loops:
                    loop.result()
        except (OSError, EOFError):
            if exc_type is None:
                raise
        finally:
            self.manager.shutdown()


__all__ = ["FIRST_PASS_SHARE", "Action", "Plan", "combine", "map_layers", "slice_s"]
