"""One budget over many layers (search.mapper.schedule): who gets a second pass, with what, and the merged certificate."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest

from formulation.goals import Objective
from formulation.specs.types import Layer
from search.mapper import map_layer
from search.mapper import schedule
from search.mapper.result import MapperStatus
from tests.mapper_cases import tiny_arch

ARCH = tiny_arch(3, (2, 2))
LAYERS = [Layer(f"l{i}", N=1, K=2, C=2, P=2, Q=1, R=1, S=1) for i in range(3)]


@pytest.fixture(scope="module")
def proven():
    return map_layer(LAYERS[0], ARCH, Objective.EDP, seed_samples=8)


def _open(result, lower: float, best: float):
    """``result`` made into an unfinished search with the given bound and best value."""
    cert = replace(result.certificate, optimal=False, lower_bound=lower, best=best, remaining=5, evaluated=7,
                   seed_evaluations=3, wall_s=1.0)
    return replace(result, status=MapperStatus.TIME_LIMIT, certificate=cert)


def test_in_one_process_an_interrupted_layer_ends_the_search_time(monkeypatch, proven):
    """``jobs=1`` runs the same plan in this process: after a search answers ``interrupted`` the layers not
    started get their seeds only (budget 0) and no parked search is resumed."""
    import search.mapper.worker as worker

    messages = []

    def fake(msg, arch, objective):
        messages.append((msg[0], msg[1], msg[4] if msg[0] == "start" else msg[3]))
        if len(messages) == 1:
            return replace(_open(proven, 0.0, proven.certificate.best), status=MapperStatus.INTERRUPTED), None
        return _open(proven, 0.0, proven.certificate.best), object()   # parked, never resumed

    monkeypatch.setattr(worker, "search", fake)
    results = schedule.map_layers(LAYERS, ARCH, Objective.EDP, time_limit_s=60.0, jobs=1)
    assert len(results) == 3 and all(r is not None for r in results)
    assert [m[0] for m in messages] == ["start"] * 3 and messages[0][2] > 0
    assert [m[2] for m in messages[1:]] == [0.0, 0.0]


def test_without_a_budget_every_layer_is_proven_in_one_pass():
    results = schedule.map_layers(LAYERS[:2], ARCH, Objective.ENERGY, time_limit_s=math.inf)
    alone = map_layer(LAYERS[0], ARCH, Objective.ENERGY)
    assert all(r.status is MapperStatus.OPTIMAL for r in results)
    assert results[0].certificate.best == alone.certificate.best


# ---- workers (jobs > 1): the time-share rule as pure bookkeeping, then the real workers -------------------

def test_a_slice_shares_the_free_worker_time_and_never_passes_the_deadline():
    assert schedule.slice_s(0.0, 60.0, 1, 0.0, 3) == pytest.approx(20.0)       # one worker: time left / layers left
    assert schedule.slice_s(0.0, 60.0, 2, 0.0, 3) == pytest.approx(40.0)       # two: twice the worker time
    assert schedule.slice_s(0.0, 60.0, 2, 0.0, 1) == pytest.approx(60.0)       # ... but never past the deadline
    assert schedule.slice_s(10.0, 60.0, 2, 30.0, 2) == pytest.approx(35.0)     # what running slices hold is not free
    assert schedule.slice_s(70.0, 60.0, 2, 0.0, 2) == 0.0
    assert schedule.slice_s(0.0, math.inf, 2, 5.0, 4) == math.inf


def _answer(result, gap: float):
    """``result`` as an unfinished search whose gap is ``gap``."""
    best = result.certificate.best
    return _open(result, lower=best / (1 + gap), best=best)


class _Parked:
    """A parked search for the plan: a name; it splits into two while it has more than one row."""

    def __init__(self, name: str, rows: int = 1) -> None:
        self.name, self.rows = name, rows

    def split(self):
        if self.rows < 2:
            return None
        return _Parked(self.name + "a", (self.rows + 1) // 2), _Parked(self.name + "b", self.rows // 2)


def test_the_plan_starts_the_hardest_first_then_resumes_the_largest_gap_on_any_worker(proven):
    plan = schedule.Plan([1.0, 50.0, 7.0], t0=0.0, deadline=100.0, jobs=2, first_pass_share=0.3)
    a = plan.next_for(0, 0.0)
    b = plan.next_for(1, 0.0)
    assert (a.kind, a.task, b.kind, b.task) == ("start", 1, "start", 2)
    assert a.budget_s == pytest.approx(20.0)            # 2 workers x 30 s of first pass over 3 layers
    assert b.budget_s == pytest.approx(20.0)            # (60 - the 20 s layer 1 holds) / 2 layers left
    assert a.best_first_after == math.inf               # not a last slice: depth first
    assert plan.finished(1, _answer(proven, 0.05), _Parked("2")) == 2          # parked
    c = plan.next_for(1, 5.0)
    assert (c.kind, c.task) == ("start", 0) and c.budget_s == pytest.approx(25.0)  # min(25 s left, (50 - 15) / 1)
    assert plan.finished(1, proven, None) == 0          # proven in its first slice
    assert plan.finished(0, _answer(proven, 0.01), _Parked("1")) == 1
    # every layer started: the parked ones, largest gap first, from their open searches, on either worker,
    # for at most TAIL_SLICE_S (no more open searches than workers)
    d = plan.next_for(1, 20.0)
    assert (d.kind, d.task) == ("resume", 2) and d.search.name == "2"
    assert d.budget_s == pytest.approx(schedule.TAIL_SLICE_S)
    assert d.best_first_after == schedule.LATER_BEST_FIRST_AFTER   # a later slice: best first for its second part
    e = plan.next_for(0, 20.0)
    assert (e.kind, e.task) == ("resume", 1) and e.search.name == "1"
    assert plan.parked == {}
    assert plan.finished(1, proven, None) == 2
    assert plan.result(2) is proven and plan.result(0) is proven
    f = plan.next_for(1, 95.0)                         # nothing parked
    assert f is None
    plan.finished(0, _answer(proven, 0.01), _Parked("1"))
    g = plan.next_for(0, 95.0)                         # the last slice, to the deadline: best first at its end
    assert g.budget_s == pytest.approx(5.0) and g.best_first_after == schedule.RESUME_BEST_FIRST_AFTER


def test_the_plan_splits_a_parked_search_when_workers_would_idle(proven):
    plan = schedule.Plan([2.0, 1.0], t0=0.0, deadline=100.0, jobs=2)
    plan.next_for(0, 0.0)
    plan.next_for(1, 0.0)
    plan.finished(1, proven, None)
    plan.finished(0, _answer(proven, 0.02), _Parked("x", rows=5))
    first = plan.next_for(0, 40.0)                       # two free workers, one parked search: split it
    second = plan.next_for(1, 40.0)
    assert (first.kind, first.task, second.kind, second.task) == ("resume", 0, "resume", 0)
    assert {first.search.name, second.search.name} == {"xa", "xb"}
    # the layer is proven only when both parts are; its counts are the parts' sums
    plan.finished(0, proven, None)
    assert plan.result(0).status is MapperStatus.TIME_LIMIT
    plan.finished(1, proven, None)
    combined = plan.result(0)
    assert combined.status is MapperStatus.OPTIMAL and combined.certificate.optimal
    assert combined.certificate.evaluated == 2 * proven.certificate.evaluated


def test_combined_parts_keep_the_least_bound_and_the_best_mapping(proven):
    best = proven.certificate.best
    low = _open(proven, lower=0.5 * best, best=2 * best)
    high = _open(proven, lower=0.8 * best, best=best)
    both = schedule.combine([low, high])
    assert both.status is MapperStatus.TIME_LIMIT and not both.certificate.optimal
    assert both.certificate.lower_bound == 0.5 * best and both.certificate.best == best
    assert both.certificate.evaluated == 14 and both.certificate.remaining == 10
    assert schedule.combine([proven, low]).certificate.lower_bound == 0.5 * best
    done = schedule.combine([proven, proven])
    assert done.status is MapperStatus.OPTIMAL and done.certificate.lower_bound == best


def test_the_plan_gives_no_slice_too_short_to_run_and_none_after_a_stop(proven):
    plan = schedule.Plan([2.0, 1.0], t0=0.0, deadline=10.0, jobs=2)
    plan.next_for(0, 0.0)
    plan.finished(0, _answer(proven, 0.1), _Parked("0"))
    assert plan.next_for(0, 10.0 - schedule.MIN_SLICE_S / 4).kind == "start"   # a layer not started gets its seeds
    plan.finished(0, _answer(proven, 0.1), _Parked("1"))
    assert plan.next_for(0, 10.0 - schedule.MIN_SLICE_S / 4) is None             # ... a parked one no sliver
    stopped = schedule.Plan([1.0, 2.0, 3.0], t0=0.0, deadline=100.0, jobs=2)
    stopped.next_for(0, 0.0)
    stopped.finished(0, replace(_answer(proven, 0.1), status=MapperStatus.INTERRUPTED), None)
    seeds = stopped.next_for(0, 1.0)
    assert seeds.kind == "start" and seeds.budget_s == 0.0                     # after Ctrl-C: seeds only
    assert schedule.Plan([1.0], 0.0, 100.0, 2).next_for(0, 0.0, stop=True).budget_s == 0.0
    late = schedule.Plan([2.0, 1.0], t0=0.0, deadline=10.0, jobs=2)
    assert late.next_for(0, 10.0) is None and late.next_for(1, 12.0) is None    # no layer starts after the deadline
    assert not late.busy() and late.result(0) is None and late.result(1) is None


def test_an_open_search_goes_on_after_pickling_to_the_same_optimum():
    import pickle

    from search.mapper.resume import search_layer

    layer = Layer("g", N=1, K=4, C=4, P=2, Q=2, R=1, S=1)
    whole = map_layer(layer, ARCH, Objective.EDP)
    first, state = search_layer(layer, ARCH, Objective.EDP, time_limit_s=0.0)
    assert first.status is MapperStatus.TIME_LIMIT and state is not None
    again = pickle.loads(pickle.dumps(state))            # as a worker gets it
    result, left = search_layer(layer, ARCH, Objective.EDP, resume=again, time_limit_s=math.inf)
    assert left is None and result.status is MapperStatus.OPTIMAL
    assert result.certificate.best == pytest.approx(whole.certificate.best, rel=1e-12)
    assert result.certificate.evaluated >= first.certificate.evaluated
    cert = result.certificate
    assert cert.mapspace == cert.evaluated + sum(cert.pruned.values())


@pytest.mark.parametrize("jobs", [1, 2])
def test_workers_prove_every_layer_going_on_from_parked_searches(jobs):
    layers = [Layer("a", N=1, K=4, C=4, P=2, Q=2, R=1, S=1), Layer("b", N=1, K=2, C=8, P=2, Q=1, R=1, S=1),
              Layer("c", N=1, K=8, C=2, P=1, Q=2, R=1, S=1)]
    done = []
    # no first pass: every layer gets its seeds only, is parked, and its search goes on in a later slice
    results = schedule.map_layers(layers, ARCH, Objective.EDP, time_limit_s=120.0, jobs=jobs, first_pass_share=0.0,
                                  on_layer_done=lambda i, r: done.append((i, r.status)))
    assert sorted(i for i, s in done if s is MapperStatus.OPTIMAL) == [0, 1, 2]
    assert len(done) > 3                                  # some layer was parked before its proof
    for layer, r in zip(layers, results):
        alone = map_layer(layer, ARCH, Objective.EDP)
        assert r.status is MapperStatus.OPTIMAL and r.certificate.optimal
        assert r.certificate.best == pytest.approx(alone.certificate.best, rel=1e-12)
        assert r.certificate.mapspace == r.certificate.evaluated + sum(r.certificate.pruned.values())


def test_the_two_parts_of_a_split_search_prove_the_same_optimum_and_count_the_mapspace_once():
    import pickle

    from search.mapper.resume import search_layer

    layer = Layer("h", N=1, K=4, C=8, P=4, Q=1, R=3, S=1)
    whole = map_layer(layer, ARCH, Objective.EDP)
    _, state = search_layer(layer, ARCH, Objective.EDP, time_limit_s=0.0)
    root = state.stack.pop()
    state.stack.append(state.search.expand(root))        # an open node of many partial tilings
    a, b = state.split()
    assert len(a.stack[0][1]) + len(b.stack[0][1]) == len(state.stack[0][1]) and len(b.stack[0][1]) > 0
    parts = [search_layer(layer, ARCH, Objective.EDP, resume=pickle.loads(pickle.dumps(p)), time_limit_s=math.inf)[0]
             for p in (a, b)]
    both = schedule.combine(parts)
    assert both.status is MapperStatus.OPTIMAL and both.certificate.optimal
    assert both.certificate.best == pytest.approx(whole.certificate.best, rel=1e-12)
    cert = both.certificate
    assert cert.mapspace == cert.evaluated + sum(cert.pruned.values())


def test_later_slices_go_where_the_gap_is_and_no_open_layer_is_starved(proven):
    """Time per unit of gap first: over many slices the layers' shares follow their gaps (0.2, 0.01,
    0.05), the least gap still gets slices, and a gap under GAP_FLOOR counts as the floor."""
    plan = schedule.Plan([3.0, 2.0, 1.0], t0=0.0, deadline=3000.0, jobs=2, first_pass_share=0.01)
    gaps = (0.2, 0.01, 0.05)
    for w in (0, 1):
        plan.next_for(w, 0.0)
    plan.finished(0, _answer(proven, gaps[0]), _Parked("0"))
    plan.finished(1, _answer(proven, gaps[1]), _Parked("1"))
    plan.next_for(0, 10.0)
    plan.finished(0, _answer(proven, gaps[2]), _Parked("2"))
    first = dict(plan.given)
    for _ in range(40):                                   # one worker, one slice after the other
        action = plan.next_for(0, 20.0)
        plan.finished(0, _answer(proven, gaps[action.task]), _Parked(str(action.task)))
    later = [plan.given[(i, 0)] - first[(i, 0)] for i in range(3)]
    assert later[0] > later[2] > later[1] > 0
    ratio = [plan.given[(i, 0)] / gaps[i] for i in range(3)]
    assert max(ratio) - min(ratio) <= plan.max_slice_s / min(gaps) + 1e-9   # within one slice of even
    assert action.budget_s == pytest.approx(0.1 * 3000.0)  # three open searches, two workers: MAX_SLICE_SHARE
    low = schedule.Plan([2.0, 1.0], t0=0.0, deadline=3000.0, jobs=1)
    low.next_for(0, 0.0)
    low.finished(0, _answer(proven, 0.0), _Parked("0"))     # open at gap 0: counts as GAP_FLOOR
    low.next_for(0, 0.0)
    low.finished(0, _answer(proven, 2 * schedule.GAP_FLOOR), _Parked("1"))
    picks = []
    for _ in range(6):
        action = low.next_for(0, 900.0)
        picks.append(action.task)
        low.finished(0, _answer(proven, (0.0, 2 * schedule.GAP_FLOOR)[action.task]), _Parked(str(action.task)))
    assert 0 in picks and picks.count(1) > picks.count(0)
