"""The per-layer part of polishing: the exact mapper on each layer, one process or several, in a time budget.

Each layer is a task (:func:`polish_layer`): the exact mapper (:func:`search.mapper.map_layer`) on the
design's hardware, started from the design's own mapping and from the *transferred* mappings
(:func:`transferred`: the same layer's mapping in the other starts' designs, made legal for this
hardware), for the layer's own objective. Its candidates for the network combination are the
design's own mapping, the transferred ones and the mapper's answer.

Time. With ``jobs`` workers the layers run ``jobs`` at a time (:func:`run_layers`); a layer
started at time ``now`` gets ``min(deadline - now, free / layers_not_started)``, where ``free`` is
the worker time left before the deadline, ``jobs * (deadline - now)``, less what the running layers
still hold. In one process this is the sequential rule "the time left divided by the layers
left", and what a layer proven early does not use goes to the layers after it.

Stopping. A stop request (:mod:`search.stop`: the CLI's first SIGINT/SIGTERM, seen through the
run's stop file by the workers) ends the running mappers with their best mappings so far (a watcher
thread raises KeyboardInterrupt in the worker's main thread, which the mapper turns into its
``interrupted`` status with its best mapping; inside the compiled model the interrupt surfaces as
a SystemError the mapper does not catch, and that layer keeps only its other candidates) and starts
no further layer: those keep the design's mapping.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from formulation.goals import Objective
from formulation.model.encoding import MappingArrays, decode, encode
from formulation.model.validation import mapping_violations
from formulation.specs.types import Architecture, Layer, SpecError
from search.stop import stop_file, stop_requested, use_stop_file

#: How often a worker's watcher looks for the stop file (s).
STOP_POLL_S = 0.2


@dataclass(frozen=True)
class LayerTask:
    """One layer to polish: its starts (the design's mapping first, then the transferred ones)."""

    index: int
    layer: Layer
    starts: MappingArrays


@dataclass(frozen=True)
class LayerOutcome:
    """The mapper's answer for one layer (``mapping`` None when it found nothing or did not run)."""

    index: int
    mapping: MappingArrays | None
    proven: bool
    interrupted: bool
    wall_s: float
    round: int = 0


def stack(rows: list[MappingArrays], arch: Architecture | None = None) -> MappingArrays:
    """One batch from batches of mappings. Rows without a spatial order get their canonical one written out
    (through :func:`formulation.model.encoding.decode` on ``arch``) when others have one; without ``arch``
    the spatial orders are dropped unless every row has one."""
    if arch is not None and any(r.spatial_order is not None for r in rows):
        rows = [r if r.spatial_order is not None else
                stack([encode(decode(r, arch, k)) for k in range(r.size)]) for r in rows]
    orders = [r.spatial_order for r in rows]
    return MappingArrays(*(np.concatenate([getattr(r, f) for r in rows]) for f in
                           ("temporal", "spatial_x", "spatial_y", "order", "keep")),
                         None if any(o is None for o in orders) else np.concatenate(orders))


def mirrored(arrays: MappingArrays) -> MappingArrays:
    """``arrays`` with every spatial X factor swapped with its Y factor (the same dataflow on the transposed mesh)."""
    return MappingArrays(arrays.temporal.copy(), arrays.spatial_y.copy(), arrays.spatial_x.copy(),
                         arrays.order.copy(), arrays.keep.copy(), None)


def transferred(layer: Layer, arch: Architecture, own: MappingArrays,
                others: list[MappingArrays]) -> list[MappingArrays]:
    """Other designs' mappings of ``layer`` made legal on ``arch`` (:func:`search.rounding.repair`), each
    as it is and mirrored (X and Y swapped: another start may have found the transposed mesh), without
    duplicates of each other or of ``own``; the ones that cannot be repaired are left out."""
    from search.rounding import repair

    seen = {mapping_key(own)}
    out = []
    for other in others:
        for cand in (other, mirrored(other)):
            try:
                fixed = repair(layer, arch, cand.take(slice(0, 1)))
            except SpecError:
                continue
            key = mapping_key(fixed)
            if key in seen or mapping_violations(layer, arch, fixed).any():
                continue
            seen.add(key)
            out.append(fixed)
    return out


def mapping_key(arrays: MappingArrays) -> bytes:
    """The first mapping of ``arrays`` as bytes (factors, orders, keeps; not the spatial order): equal keys,
    equal mappings up to the spatial order."""
    return b"".join(np.ascontiguousarray(getattr(arrays, f)[0]).tobytes()
                    for f in ("temporal", "spatial_x", "spatial_y", "order", "keep"))


def polish_layer(task: LayerTask, arch: Architecture, objective: Objective, budget_s: float, seed: int,
                 stop_path: str | None = None) -> LayerOutcome:
    """The exact mapper on one layer for ``budget_s`` seconds from the task's starts (module docstring)."""
    from search.mapper.mapper import map_layer
    from search.mapper.result import MapperStatus

    t0 = time.monotonic()
    if multiprocessing.parent_process() is not None:  # a worker: the parent handles Ctrl-C, writes the stop file
        use_stop_file(stop_path)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    if budget_s <= 0 or stop_requested():
        return LayerOutcome(task.index, None, False, stop_requested(), 0.0)
    try:
        with stop_interrupts():
            r = map_layer(task.layer, arch, objective, time_limit_s=budget_s, seed=seed, start=task.starts)
    except (KeyboardInterrupt, SystemError):
        # the stop's interrupt arrived inside the compiled model (Numba reports it as SystemError, which the
        # mapper does not catch) or just after the mapper returned: the layer keeps its other candidates
        if not stop_requested():
            raise
        return LayerOutcome(task.index, None, False, True, time.monotonic() - t0)
    mapping = None if r.mapping is None else encode(r.mapping)
    return LayerOutcome(task.index, mapping, r.status is MapperStatus.OPTIMAL,
                        r.status is MapperStatus.INTERRUPTED, time.monotonic() - t0)


class stop_interrupts:
    """While active (main thread only), a stop request raises KeyboardInterrupt in the main thread: a watcher
    thread polls :func:`search.stop.stop_requested` and sends this process ``SIGUSR1``, whose handler raises
    it; the mapper turns it into its ``interrupted`` status with the best mapping so far."""

    def __enter__(self):
        self.done = threading.Event()
        self.active = threading.current_thread() is threading.main_thread() and hasattr(signal, "SIGUSR1")
        if self.active:
            self.previous = signal.signal(signal.SIGUSR1, _raise_interrupt)
            self.thread = threading.Thread(target=self._watch, daemon=True)
            self.thread.start()
        return self

    def _watch(self) -> None:
        while not self.done.wait(STOP_POLL_S):
            if stop_requested():
                os.kill(os.getpid(), signal.SIGUSR1)
                return

    def __exit__(self, *exc) -> None:
        if self.active:
            signal.signal(signal.SIGUSR1, signal.SIG_IGN)  # a late signal is dropped
            self.done.set()
            self.thread.join()
            signal.signal(signal.SIGUSR1, self.previous)


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt


def run_layers(tasks: list[LayerTask], arch: Architecture, objective: Objective, *, deadline: float, jobs: int,
               seed: int, on_done: Callable[[LayerOutcome], None] | None = None) -> list[LayerOutcome]:
    """Every task's outcome, in task order, with the time shares of the module docstring; ``deadline`` is a
    ``time.monotonic()`` value. ``jobs > 1`` runs the layers on joblib's reusable loky workers."""
    if jobs <= 1 or len(tasks) <= 1:
        return _run_here(tasks, arch, objective, deadline, seed, on_done)
    from concurrent.futures import FIRST_COMPLETED, wait

    from joblib.executor import get_memmapping_executor

    executor = get_memmapping_executor(jobs)  # joblib's own reusable workers: the search's, already warm
    pending = list(tasks)
    running: dict = {}  # future -> the monotonic time its budget ends
    outcomes: dict[int, LayerOutcome] = {}
    path = stop_file()
    while pending or running:
        while pending and len(running) < jobs:
            task = pending.pop(0)
            now = time.monotonic()
            if stop_requested():
                budget = 0.0
            else:
                free = jobs * (deadline - now) - sum(max(0.0, end - now) for end in running.values())
                budget = max(0.0, min(deadline - now, free / (len(pending) + 1)))
            running[executor.submit(polish_layer, task, arch, objective, budget, seed, path)] = now + budget
        finished, _ = wait(list(running), return_when=FIRST_COMPLETED)
        for future in finished:
            del running[future]
            out = future.result()
            outcomes[out.index] = out
            if on_done is not None:
                on_done(out)
    return [outcomes[t.index] for t in tasks]


def _run_here(tasks, arch, objective, deadline, seed, on_done) -> list[LayerOutcome]:
    """The tasks one after the other in this process; a Ctrl-C inside the mapper ends the rest at once."""
    out = []
    stopped = False
    for k, task in enumerate(tasks):
        left = deadline - time.monotonic()
        budget = 0.0 if stopped or stop_requested() else max(0.0, left / (len(tasks) - k))
        res = polish_layer(task, arch, objective, budget, seed)
        stopped = stopped or res.interrupted
        out.append(res)
        if on_done is not None:
            on_done(res)
    return out


__all__ = ["LayerTask", "LayerOutcome", "mapping_key", "mirrored", "polish_layer", "run_layers", "stack",
           "stop_interrupts", "transferred"]
