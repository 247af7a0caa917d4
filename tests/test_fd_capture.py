"""The lock between output-capturing solves and process starts (formulation.fd_capture): the
branch-and-bound's node solves and the mapper's worker pools each hold it, so that polishing beside
the bound cannot start a process that inherits a solve's capture pipe."""

from __future__ import annotations

import threading
from unittest.mock import patch

import pyomo.environ as pyo

import search.mapper.schedule as schedule
from formulation.bound.layer_terms import HardwareBox
from formulation.bound.model import NodeModel
from formulation.fd_capture import FD_CAPTURE_LOCK
from formulation.goals import Objective
from test_bound import TINY_NETWORK, tiny_template
from tests.mapper_cases import tiny_arch


def _held_by_another_thread_or_us() -> bool:
    """Whether the lock is held (here or elsewhere): another thread cannot take it without waiting."""
    got: list[bool] = []

    def try_it() -> None:
        got.append(FD_CAPTURE_LOCK.acquire(blocking=False))
        if got[0]:
            FD_CAPTURE_LOCK.release()

    probe = threading.Thread(target=try_it)
    probe.start()
    probe.join()
    return not got[0]


def test_a_node_solve_holds_the_lock():
    solver_class = type(pyo.SolverFactory("cyipopt"))
    seen: list[bool] = []
    real = solver_class.solve

    def solve(self, *args, **kwargs):
        seen.append(_held_by_another_thread_or_us())
        return real(self, *args, **kwargs)

    template = tiny_template()
    with patch.object(solver_class, "solve", solve):
        value = NodeModel(TINY_NETWORK, template, Objective.EDP, None).solve(HardwareBox.of_template(template)).value
    assert seen and all(seen) and value > 0
    assert not _held_by_another_thread_or_us()


def test_the_mapper_workers_start_under_the_lock():
    seen: list[bool] = []

    class Recording(schedule.SyncManager):
        def start(self, *args, **kwargs):
            seen.append(_held_by_another_thread_or_us())
            return super().start(*args, **kwargs)

    layers = [entry.layer for entry in TINY_NETWORK.layers]
    with patch.object(schedule, "SyncManager", Recording):
        results = schedule.map_layers(layers, tiny_arch(), Objective.EDP, time_limit_s=5.0, jobs=2)
    assert seen == [True] and all(r is not None and r.mapping is not None for r in results)
    assert not _held_by_another_thread_or_us()


def test_a_ctrl_c_reported_by_the_capture_as_a_runtime_error_is_a_ctrl_c_again():
    """Pyomo reports an interrupt that landed while its output capture closed as a RuntimeError naming it:
    a node solve gives it back as KeyboardInterrupt (the stop it is); other errors stay errors."""
    import pytest

    solver_class = type(pyo.SolverFactory("cyipopt"))
    template = tiny_template()
    model = NodeModel(TINY_NETWORK, template, Objective.EDP, None)

    def interrupted(self, *args, **kwargs):
        raise RuntimeError("KeyboardInterrupt:  (4: <pyomo.common.tee.TeeStream object at 0x7f>@7f)")

    def broken(self, *args, **kwargs):
        raise RuntimeError("something else")

    with patch.object(solver_class, "solve", interrupted), pytest.raises(KeyboardInterrupt):
        model.solve(HardwareBox.of_template(template))
    with patch.object(solver_class, "solve", broken), pytest.raises(RuntimeError, match="something else"):
        model.solve(HardwareBox.of_template(template))
    assert not _held_by_another_thread_or_us()


def test_a_mapper_search_failing_once_the_run_stops_gives_no_answer(monkeypatch):
    """The stop's interrupt can land inside a library that reports it as another error: once a stop is
    requested a failed search answers nothing (its layer keeps its answer so far); before, it is a bug."""
    import pytest

    import search.mapper.resume as resume
    import search.mapper.worker as worker

    stopping = [False]

    def fails(*args, **kwargs):
        raise ValueError("an interrupt reported as another error")

    monkeypatch.setattr(resume, "search_layer", fails)
    monkeypatch.setattr(worker, "stop_requested", lambda: stopping[0])
    msg = ("start", 0, TINY_NETWORK.layers[0].layer, None, 1.0, 0, 0.5)
    with pytest.raises(ValueError):
        worker.search(msg, tiny_arch(), Objective.EDP)

    def fails_after_the_stop(*args, **kwargs):
        stopping[0] = True
        raise ValueError("an interrupt reported as another error")

    monkeypatch.setattr(resume, "search_layer", fails_after_the_stop)
    assert worker.search(msg, tiny_arch(), Objective.EDP) == (None, None)
