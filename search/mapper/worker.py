"""The worker side of :mod:`search.mapper.schedule`: a loop that runs layer searches and hands back the open ones.

:func:`serve` runs in a worker process for the whole of one :func:`search.mapper.schedule.map_layers`
call. It reads messages from its own inbox and answers on the shared outbox:

* ``("start", i, layer, start, budget_s, seed, best_first_after)``: a new search of layer ``i``
  (:func:`search.mapper.resume.search_layer` from the ``start`` mappings);
* ``("resume", i, open_search, budget_s, best_first_after)``: ``budget_s`` more seconds on an open
  search (:class:`search.mapper.resume.OpenSearch`, pickled with its open nodes, incumbent and counts:
  nothing is searched again, whichever worker ran it before);
* ``("quit",)``: end the loop.

Each search answers ``(worker, i, result, open_search)``: ``result`` the :class:`MapperResult` (``None``
when a stop's interrupt landed inside the compiled model, where the mapper cannot catch it),
``open_search`` the search to go on with, or ``None`` when it is finished (proven, or stopped). An
unexpected error answers ``(worker, i, "error", traceback)`` and ends the loop.

Stopping: as in every worker of the project, the parent handles Ctrl-C and writes the run's stop file
(:mod:`search.stop`); :class:`search.stop.stop_interrupts` turns it into a KeyboardInterrupt in this
process, which the mapper turns into its ``interrupted`` status with its best mapping. A search
started after the stop (budget 0) runs its seeds only, without the watcher, so that the layer still
gets a mapping.
"""

from __future__ import annotations

import multiprocessing
import traceback

from formulation.goals import Objective
from formulation.specs.types import Architecture
from search.stop import leave_signals_to_the_parent, stop_interrupts, stop_requested, use_stop_file


def serve(inbox, outbox, worker: int, arch: Architecture, objective: Objective, stop_path: str | None) -> int:
    """The worker loop (module docstring); returns how many searches it ran."""
    if multiprocessing.parent_process() is not None:  # a worker: the parent handles signals, writes the stop file
        use_stop_file(stop_path)
        leave_signals_to_the_parent()
    runs = 0
    while True:
        msg = inbox.get()
        if msg[0] == "quit":
            return runs
        try:
            result, state = search(msg, arch, objective)
        except Exception:  # noqa: BLE001  (reported to the parent, which raises it)
            outbox.put((worker, msg[1], "error", traceback.format_exc()))
            return runs
        runs += 1
        outbox.put((worker, msg[1], result, state))


def search(msg, arch: Architecture, objective: Objective):
    """One message's search: (result or None, open search or None); also what a worker in the parent
    process runs (:mod:`search.mapper.schedule`, ``jobs=1``)."""
    from search.mapper.resume import search_layer

    if msg[0] == "start":
        _, _, layer, start, budget, seed, best_first_after = msg
        if budget <= 0 or stop_requested():  # seeds only, not interrupted: the layer gets a mapping
            return search_layer(layer, arch, objective, time_limit_s=0.0, seed=seed, start=start)
        run = lambda: search_layer(layer, arch, objective, time_limit_s=budget, seed=seed,  # noqa: E731
                                   start=start, best_first_after=best_first_after)
    else:
        _, _, state, budget, best_first_after = msg
        if stop_requested():
            return None, None
        run = lambda: search_layer(state.search.layer, arch, objective, resume=state,  # noqa: E731
                                   time_limit_s=budget, best_first_after=best_first_after)
    try:
        with stop_interrupts():
            return run()
    except (KeyboardInterrupt, Exception):
        # the stop's interrupt can land anywhere: inside the compiled model (Numba reports it as SystemError,
        # which the mapper does not catch), inside a library that reports it as another error, or just
        # after the mapper returned. Once the run is stopping, this search gives no answer (the layer keeps
        # its answer so far); before that, an error is a bug and goes to the parent
        if not stop_requested():
            raise
        return None, None


__all__ = ["search", "serve"]
