"""Polishing across starts and workers (search.polish_layers), the time plan (search.plan) and
``optimize --total-time`` (codesign.phases)."""

from __future__ import annotations

import json
import math
import threading
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from codesign.cli import main
from codesign.phases import record_bound
from formulation.goals import Objective
from formulation.model.exact import evaluate_batch
from formulation.model.validation import mapping_violations
from formulation.specs.catalog import load_arch, load_network
from formulation.specs.loading import layer_from_dict
from formulation.specs.template import Hardware, default_template
from formulation.specs.types import Network, NetworkLayer
from search.bnb import BoundResult
from search.design import Design, Goal, evaluate_design
from search.plan import FRONT_SEARCH_SHARE, SEARCH_SHARE, SEQUENTIAL_BOUND_SHARE, TimePlan, plan
from search.polish import polish
from search.polish_layers import mirrored, transferred
from search.sampling import sample_mappings

PW = {"name": "pw", "N": 1, "C": 8, "K": 16, "P": 4, "Q": 4}
FC = {"name": "fc", "N": 1, "C": 32, "K": 16, "P": 1, "Q": 1}


def _hw(template, mx, my):
    base = template.base_hardware()
    return Hardware(mx, my, base.sizes_words)


def test_a_mirrored_mapping_on_the_transposed_mesh_costs_the_same():
    """Without sliding windows (no links) the model reads X and Y factors only through their product and the
    fanout limits swap with the mesh: the mirror of a mapping on 8x4 PEs costs the same on 4x8."""
    template = default_template(load_arch("simple"))
    layer = layer_from_dict(PW)
    a, b = template.instantiate(_hw(template, 8, 4)), template.instantiate(_hw(template, 4, 8))
    batch = sample_mappings(layer, a, 30, np.random.default_rng(1))
    flipped = mirrored(batch)
    assert not mapping_violations(layer, b, flipped).any()
    ea, eb = evaluate_batch(layer, a, batch), evaluate_batch(layer, b, flipped)
    assert np.allclose(ea.energy_pJ, eb.energy_pJ, rtol=1e-12) and np.array_equal(ea.cycles, eb.cycles)
    assert (batch.spatial_x != batch.spatial_y).any()  # the test exercises a real swap


def test_transferred_mappings_are_legal_distinct_and_include_the_mirror():
    template = default_template(load_arch("simple"))
    layer = layer_from_dict(PW)
    a, b = template.instantiate(_hw(template, 8, 4)), template.instantiate(_hw(template, 4, 8))
    others = list(sample_mappings(layer, a, 6, np.random.default_rng(2)).take(slice(k, k + 1)) for k in range(6))
    own = sample_mappings(layer, b, 1, np.random.default_rng(3))
    moved = transferred(layer, b, own, others + others)  # duplicates of the input are dropped
    assert moved and len(moved) <= 2 * len(others)
    keys = {tuple(np.concatenate([m.temporal.ravel(), m.spatial_x.ravel(), m.spatial_y.ravel(), m.order.ravel(),
                                  m.keep.ravel().astype(np.int64)])) for m in [own] + moved}
    assert len(keys) == len(moved) + 1
    for m in moved:
        assert m.size == 1 and not mapping_violations(layer, b, m).any()
    # each legal mirror of another design's mapping is among them, at the same cost as on 8x4
    costs = {float(evaluate_batch(layer, b, m).energy_pJ[0]) for m in moved}
    for o in others:
        assert float(evaluate_batch(layer, a, o).energy_pJ[0]) in costs or \
            mapping_violations(layer, b, mirrored(o)).any()


def _network():
    return Network("two", (NetworkLayer(layer_from_dict(PW), 2), NetworkLayer(layer_from_dict(FC), 1)))


def _design(template, hw, seed):
    network = _network()
    arch = template.instantiate(hw)
    rng = np.random.default_rng(seed)
    maps = []
    for entry in network.layers:  # the worst of a few random legal mappings
        batch = sample_mappings(entry.layer, arch, 20, rng)
        ev = evaluate_batch(entry.layer, arch, batch)
        k = int(np.argmax(ev.energy_pJ * ev.cycles))
        maps.append(batch.take(slice(k, k + 1)))
    return evaluate_design(network, template, Design(hw, tuple(maps)), Goal(Objective.EDP))


def test_other_starts_mappings_are_taken_when_they_are_better_without_running_the_mapper():
    template = default_template(load_arch("simple"))
    network = _network()
    poor = _design(template, _hw(template, 8, 4), 5)
    good_hw = _hw(template, 4, 8)
    arch = template.instantiate(good_hw)
    good = []
    for entry in network.layers:  # the best of many random mappings on the transposed mesh
        batch = sample_mappings(entry.layer, arch, 400, np.random.default_rng(7))
        ev = evaluate_batch(entry.layer, arch, batch)
        k = int(np.argmin(ev.energy_pJ * ev.cycles))
        good.append(batch.take(slice(k, k + 1)))
    other = evaluate_design(network, template, Design(good_hw, tuple(good)), Goal(Objective.EDP))
    assert other.score.edp < poor.score.edp
    best, report = polish(network, template, Goal(Objective.EDP), poor, time_limit_s=0.0, others=(other,))
    assert report.transferred >= 1 and report.proven == ()
    assert best.score.edp == pytest.approx(other.score.edp, rel=1e-12)  # its mirrors, at the same cost
    assert report.after == best.score.edp < report.before == poor.score.edp


@pytest.mark.parametrize("jobs", [1, 2])
def test_polishing_on_workers_is_legal_and_never_worse(jobs):
    template = default_template(load_arch("simple"))
    network = _network()
    start = _design(template, template.base_hardware(), 11)
    other = _design(template, template.base_hardware(), 12)
    done = []
    best, report = polish(network, template, Goal(Objective.EDP), start, time_limit_s=8.0, jobs=jobs,
                          others=(other,), on_layer_done=done.append)
    assert set(done) == {"pw", "fc"} and report.rounds >= 1
    assert report.after == best.score.edp <= min(start.score.edp, other.score.edp)
    arch = template.instantiate(best.design.hardware)
    for entry, m in zip(network.layers, best.design.mappings):
        assert not mapping_violations(entry.layer, arch, m).any()
    again = evaluate_design(network, template, best.design, Goal(Objective.EDP))
    assert again.score.edp == pytest.approx(report.after, rel=1e-12)


def test_a_stop_request_ends_the_workers_mappers_early(tmp_path):
    """The workers see the stop file and their mappers end with their best mappings (no 60 s wait)."""
    from search import stop

    network = load_network("resnet18")
    network = Network("r18-two", network.layers[2:4])  # stage 2's 3x3 layers: not proven in 60 s each
    template = default_template(load_arch("simple"))
    goal = Goal(Objective.EDP)
    arch = template.instantiate(template.base_hardware())
    maps = tuple(sample_mappings(e.layer, arch, 1, np.random.default_rng(0)) for e in network.layers)
    start = evaluate_design(network, template, Design(template.base_hardware(), maps), goal)
    stop.reset()
    stop.use_stop_file(str(tmp_path / ".stop"))
    timer = threading.Timer(6.0, stop.request_stop)
    timer.start()
    t0 = time.monotonic()
    try:
        best, report = polish(network, template, goal, start, time_limit_s=120.0, jobs=2)
    finally:
        timer.cancel()
        stop.reset()
    assert time.monotonic() - t0 < 40.0  # each layer would run its 120 s: the stop ended the mappers
    assert best.score.edp <= start.score.edp


budgets = st.floats(0.0, 1000.0)


@settings(max_examples=60, deadline=None)
@given(st.floats(1.0, 3600.0), st.one_of(st.none(), budgets), st.one_of(st.none(), budgets),
       st.one_of(st.none(), budgets), st.integers(1, 4), st.floats(0.0, 4000.0), st.booleans())
def test_the_plan_keeps_given_budgets_and_shares_the_rest(total, search, polish_s, bound, jobs, elapsed, front):
    p = plan(total, search_s=search, polish_s=polish_s, bound_s=bound, jobs=jobs, front=front)
    share = FRONT_SEARCH_SHARE if front else SEARCH_SHARE
    assert p.search_s == (share * total if search is None else search)
    assert p.concurrent == (jobs > 1 and not front)  # a front's band needs its polished points: in turn
    window = p.window(elapsed)
    assert 0.0 <= window <= max(0.0, total - elapsed)
    pol, bnd = p.phases(elapsed)
    assert pol >= 0 and bnd >= 0
    if polish_s is not None:
        assert pol == polish_s
    if bound is not None:
        assert bnd == bound
    if p.concurrent:  # at the same time: each takes the whole window unless given
        assert (polish_s is not None or pol == window) and (bound is not None or bnd == window)
    elif polish_s is None and bound is None:  # in turn: the two shares fill the window
        assert pol + bnd == pytest.approx(window) and bnd == pytest.approx(SEQUENTIAL_BOUND_SHARE * window)


def test_without_a_total_every_phase_takes_its_option_or_default():
    assert plan(None, search_s=None, polish_s=None, bound_s=None, jobs=2) == TimePlan(None, 60.0, 0.0, 30.0)
    assert plan(None, search_s=5.0, polish_s=7.0, bound_s=0.0, jobs=2) == TimePlan(None, 5.0, 7.0, 0.0)
    with pytest.raises(ValueError):
        TimePlan(10.0, -1.0, None, None)


def _bound(lower, incumbent, tol=0.01):
    return BoundResult(lower, incumbent, incumbent / lower - 1, tol, 3, 1, 1.0, False, None)


def test_a_bound_computed_beside_polishing_gets_the_final_designs_gap(capsys):
    class Args:
        gap_tolerance = "0.01"

    doc = {"status": "converged", "totals": {"feasible": True, "edp": 100.0}}
    out = record_bound(doc, _bound(95.0, 130.0), Args(), Goal(Objective.EDP))  # pruned with the search's 130
    assert out.incumbent == 100.0 and doc["gap"] == pytest.approx(100.0 / 95.0 - 1) and doc["status"] == "converged"
    doc = {"status": "converged", "totals": {"feasible": True, "edp": 100.0}}
    record_bound(doc, _bound(99.5, 130.0), Args(), Goal(Objective.EDP))
    assert doc["status"] == "optimal" and doc["gap"] == pytest.approx(100.0 / 99.5 - 1)
    doc = {"status": "interrupted", "totals": None}
    assert record_bound(doc, None, Args(), Goal(Objective.EDP)) is None
    assert doc["lower_bound"] is None and "interrupted" in doc["bound"]["covers"]


@pytest.mark.parametrize("extra, message", [
    (["--total-time", "0"], "--total-time"),
    (["--total-time", "abc"], "--total-time"),
    (["--total-time", "30", "--max-evaluations", "100"], "--total-time"),
])
def test_bad_total_time_is_one_line_exit_2(tmp_path, capsys, extra, message):
    code = main(["optimize", "--network", "resnet18", "--arch-template", "simple", "--out", str(tmp_path / "o"),
                 "--quiet"] + extra)
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()


def test_total_time_runs_search_polish_and_bound_and_says_how(tmp_path, capsys):
    net = tmp_path / "net.json"
    net.write_text(json.dumps({"name": "two", "layers": [PW, FC]}))
    code = main(["optimize", "--network", str(net), "--arch-template", "simple", "--area-budget", "2",
                 "--starts", "2", "--jobs", "2", "--total-time", "40", "--out", str(tmp_path / "o"), "--quiet"])
    out, err = capsys.readouterr()
    assert code == 0, err
    doc = json.loads((tmp_path / "o" / "result.json").read_text())
    assert doc["total_time_s"] == 40.0 and doc["time_limit_s"] == pytest.approx(SEARCH_SHARE * 40)
    assert doc["polish"] is not None and doc["polish"]["after"] <= doc["polish"]["before"]
    assert doc["totals"]["edp"] == pytest.approx(doc["polish"]["after"], rel=1e-9)
    assert doc["lower_bound"] is not None and doc["lower_bound"] <= doc["totals"]["edp"] * (1 + 1e-9)
    assert doc["gap"] == pytest.approx(max(0.0, doc["totals"]["edp"] / doc["lower_bound"] - 1), rel=1e-9)
    assert doc["polish"]["wall_s"] <= 40.0 and doc["bound"]["wall_s"] <= 40.0
    assert "at the same time" in out and "polish: edp" in out and "lower bound" in out


def test_hardware_steps_stay_in_the_template_and_the_budget():
    from search.refine import hardware_steps

    template = default_template(load_arch("simple"))
    hw = template.base_hardware()
    budget = 1.0
    steps = hardware_steps(template, hw, budget)
    assert steps and hw not in steps and len(set(steps)) == len(steps)
    from formulation.technology import architecture_area_mm2
    from search.rounding import fits_template

    for h in steps:
        assert fits_template(template, h) and architecture_area_mm2(template.instantiate(h)) <= budget
        differs = [h.mesh_x != hw.mesh_x, h.mesh_y != hw.mesh_y] + \
            [a != b for (_, a), (_, b) in zip(h.sizes_words, hw.sizes_words)]
        assert sum(differs) == 1  # one variable at a time
    gb = dict(hw.sizes_words)["GlobalBuffer"]
    assert any(dict(h.sizes_words)["GlobalBuffer"] == round(0.75 * gb) for h in steps)


def test_hardware_steps_keep_the_best_screened_design(monkeypatch):
    import search.refine as refine

    monkeypatch.setattr(refine, "MIN_STEPS_S", 0.0)
    monkeypatch.setattr(refine, "screen_seconds", lambda _t: 0.6)
    template = default_template(load_arch("simple"))
    network = _network()
    goal = Goal(Objective.EDP, 1.0)
    start = _design(template, template.base_hardware(), 21)
    best, report = refine.polish_with_hardware_steps(network, template, goal, start, time_limit_s=6.0, jobs=1)
    tried = report.hardware_tried
    base = template.base_hardware()
    assert tried[0]["mesh_x"] == base.mesh_x and tried[0]["mesh_y"] == base.mesh_y and len(tried) >= 2
    assert report.after == best.score.edp <= min(t["value"] for t in tried if t["value"] is not None) * (1 + 1e-12)
    assert best.score.edp <= start.score.edp and best.score.feasible
    hw = best.design.hardware
    assert any(t["mesh_x"] == hw.mesh_x and t["mesh_y"] == hw.mesh_y and
               all(t[n] == v for n, v in hw.sizes_words) for t in tried)
    arch = template.instantiate(hw)
    for entry, m in zip(network.layers, best.design.mappings):
        assert not mapping_violations(entry.layer, arch, m).any()
    assert evaluate_design(network, template, best.design, goal).score.edp == pytest.approx(report.after, rel=1e-12)


def test_hardware_steps_screen_the_bounds_point_once_and_not_a_near_one(monkeypatch):
    """The bound's point (:class:`search.refine.BoundHint`) is screened once, before the neighbours,
    marked ``source: bound``; a point within ``NEAR_RATIO`` of a screened one is not; the result is
    the best screened design."""
    import search.refine as refine
    from dataclasses import replace

    monkeypatch.setattr(refine, "MIN_STEPS_S", 0.0)
    monkeypatch.setattr(refine, "screen_seconds", lambda _t: 0.6)
    template = default_template(load_arch("simple"))
    base = template.base_hardware()
    far = replace(base, mesh_x=base.mesh_x // 2, sizes_words=tuple((n, v // 4) for n, v in base.sizes_words))
    near = replace(base, sizes_words=tuple((n, round(v * 1.05)) for n, v in base.sizes_words))
    assert far not in refine.hardware_steps(template, base, 1.0)
    for point in (far, near):
        start = _design(template, base, 21)
        best, report = refine.polish_with_hardware_steps(_network(), template, Goal(Objective.EDP, 1.0), start,
                                                         time_limit_s=6.0, jobs=1, hint=lambda: point)
        tried = report.hardware_tried
        from_bound = [t for t in tried if t["source"] == "bound"]
        if point is far:
            assert len(from_bound) == 1 and tried[1] is from_bound[0]
            assert (from_bound[0]["mesh_x"], from_bound[0]["mesh_y"]) == (far.mesh_x, far.mesh_y)
            assert all(from_bound[0][n] == v for n, v in far.sizes_words)
        else:
            assert not from_bound and len(tried) >= 2
        assert report.after == best.score.edp <= min(t["value"] for t in tried if t["value"] is not None)


def test_no_bound_point_is_screened_after_one_that_did_not_pay(monkeypatch):
    """A hint that moves (a new point each time it is asked) gets at most ``MAX_BOUND_POINTS`` screens,
    and none after a bound point that was not better than the best before it."""
    import search.refine as refine
    from dataclasses import replace

    monkeypatch.setattr(refine, "MIN_STEPS_S", 0.0)
    monkeypatch.setattr(refine, "screen_seconds", lambda _t: 0.4)
    template = default_template(load_arch("simple"))
    base = template.base_hardware()
    points = [replace(base, mesh_x=mx, mesh_y=my, sizes_words=tuple((n, v // d) for n, v in base.sizes_words))
              for mx, my, d in ((4, 4, 8), (8, 4, 4), (4, 8, 2), (8, 8, 8), (4, 6, 4))]
    asked = iter(points * 50)
    _, report = refine.polish_with_hardware_steps(_network(), template, Goal(Objective.EDP, 1.0),
                                                  _design(template, base, 21), time_limit_s=8.0, jobs=1,
                                                  hint=lambda: next(asked))
    best, failed, screened = math.inf, False, 0
    for t in report.hardware_tried:
        if t["source"] == "bound":
            assert not failed
            screened += 1
            failed = not (t["value"] is not None and t["value"] < best)
        if t["value"] is not None:
            best = min(best, t["value"])
    assert 1 <= screened <= refine.MAX_BOUND_POINTS


def test_the_bound_hint_gives_a_boxs_optimistic_hardware_within_the_budget():
    """:class:`search.refine.BoundHint`: the last box offered, at its largest mesh and smallest buffers,
    or nothing when that point breaks the area budget."""
    from formulation.bound.layer_terms import HardwareBox
    from formulation.technology import architecture_area_mm2
    from search.refine import BoundHint

    template = default_template(load_arch("simple"))
    box = HardwareBox((4, 8), (6, 8), tuple((n, lo, 2 * lo) for n, lo, _ in template.size_ranges))
    area = architecture_area_mm2(template.instantiate(box.optimistic_hardware()))
    hint = BoundHint(template, area * 1.01)
    assert hint.hardware() is None
    hint.offer(box)
    assert hint.hardware() == Hardware(8, 8, tuple((n, lo) for n, lo, _ in template.size_ranges))
    hint.offer(HardwareBox.of_template(template))
    assert hint.hardware() is None  # the template's largest mesh breaks that budget
    assert BoundHint(template, area * 0.99).hardware() is None
    small = BoundHint(template, area * 0.99)
    small.offer(box)
    assert small.hardware() is None


def test_stacked_batches_keep_every_mapping_and_its_spatial_order():
    """``MappingArrays.concat`` (through ``stack``): the mappings of every part, in order; spatial orders
    kept only when every part has them, written out canonically by ``stack`` when ``arch`` is given."""
    from formulation.model.encoding import MappingArrays, decode, encode
    from search.polish_layers import stack

    arch = load_arch("simple")
    layer = layer_from_dict(PW)
    batch = sample_mappings(layer, arch, 6, np.random.default_rng(2))
    plain, ordered = batch.take(slice(0, 2)), encode([decode(batch, arch, k) for k in range(2, 6)])
    assert ordered.spatial_order is not None and plain.spatial_order is None
    both = MappingArrays.concat([plain, ordered])
    assert both.size == 6 and both.spatial_order is None and np.array_equal(both.temporal, batch.temporal)
    assert MappingArrays.concat([ordered, ordered]).spatial_order.shape[0] == 8
    assert MappingArrays.concat([ordered], spatial_order=False).spatial_order is None
    written = stack([plain, ordered], arch)
    assert written.size == 6 and written.spatial_order is not None
    assert np.array_equal(written.spatial_order[2:], ordered.spatial_order)
    ea, eb = evaluate_batch(layer, arch, written), evaluate_batch(layer, arch, batch)
    assert np.allclose(ea.energy_pJ, eb.energy_pJ, rtol=1e-12) and np.array_equal(ea.cycles, eb.cycles)


def _short_pipeline(tmp_path, jobs: int) -> int:
    """``codesign optimize --total-time 14`` on the two-layer network into ``tmp_path / "o"``: its exit status."""
    net = tmp_path / "net.json"
    net.write_text(json.dumps({"name": "two", "layers": [PW, FC]}))
    return main(["optimize", "--network", str(net), "--arch-template", "simple", "--area-budget", "2",
                 "--starts", "1", "--jobs", str(jobs), "--total-time", "14", "--time-limit", "3", "--polish-time", "2",
                 "--bound-time", "3", "--out", str(tmp_path / "o"), "--quiet"])


@pytest.mark.parametrize("jobs", [1, 2])
def test_the_bound_beside_polishing_hands_its_least_box_to_the_hardware_steps(tmp_path, monkeypatch, jobs):
    """``codesign optimize --total-time``: on two jobs (the bound beside polishing) the box the
    branch-and-bound offers reaches the hardware steps' ``hint`` as that box's largest mesh and
    smallest buffers; on one (in turn, polishing first) the whole template's box does."""
    import search.bnb
    import search.refine
    from formulation.bound.layer_terms import HardwareBox
    from formulation.specs.catalog import load_template

    template = load_template("simple")
    box = HardwareBox((8, 12), (8, 10), tuple((n, lo, 2 * lo) for n, lo, _ in template.size_ranges))
    real_bound, real_steps, seen = search.bnb.branch_and_bound, search.refine.polish_with_hardware_steps, []

    def offering(*args, on_least=None, **kwargs):
        if on_least is not None:  # beside polishing; the bound after polishing has no one to hand it to
            on_least(box)
        return real_bound(*args, **kwargs)

    def steps(*args, hint=None, **kwargs):
        deadline = time.monotonic() + 10
        while hint() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        seen.append(hint())
        return real_steps(*args, **kwargs)

    monkeypatch.setattr(search.bnb, "branch_and_bound", offering)
    monkeypatch.setattr(search.refine, "polish_with_hardware_steps", steps)
    code = _short_pipeline(tmp_path, jobs)
    assert code == 0
    offered = box if jobs == 2 else HardwareBox.of_template(template)
    assert seen == [Hardware(offered.mesh_x[1], offered.mesh_y[1], tuple((n, lo) for n, lo, _ in offered.sizes))]


def _failing(*_args, **_kwargs):
    raise RuntimeError("injected failure")


@pytest.mark.parametrize("jobs", [1, 2])  # 1: polishing, then the bound; 2: side by side
@pytest.mark.parametrize("phase", ["polishing", "lower bound"])
def test_a_bug_in_polishing_or_the_bound_keeps_the_design_writes_the_result_and_exits_3(tmp_path, capsys, monkeypatch,
                                                                                         phase, jobs):
    import search.bnb
    import search.refine

    if phase == "polishing":
        monkeypatch.setattr(search.refine, "polish_with_hardware_steps", _failing)
    else:
        monkeypatch.setattr(search.bnb, "branch_and_bound", _failing)
    code = _short_pipeline(tmp_path, jobs)
    out, err = capsys.readouterr()
    assert code == 3
    failed = [line for line in err.splitlines() if "injected failure" in line]
    assert len(failed) == 1 and f"{phase} failed (RuntimeError: injected failure)" in failed[0]
    doc = json.loads((tmp_path / "o" / "result.json").read_text())
    assert doc["totals"]["feasible"] and doc["hardware"] is not None and len(doc["layers"]) == 2
    if phase == "polishing":  # the search's design is kept and the bound still ran
        assert doc["polish"]["error"] == "RuntimeError: injected failure"
        assert doc["polish"]["after"] == doc["polish"]["before"] == pytest.approx(doc["totals"]["edp"], rel=1e-12)
        assert doc["lower_bound"] is not None and doc["lower_bound"] <= doc["totals"]["edp"] * (1 + 1e-9)
        assert "polish: failed" in out
    else:  # polishing still ran; no bound, and the document says why
        assert doc["polish"]["error"] is None and doc["polish"]["after"] <= doc["polish"]["before"]
        assert doc["lower_bound"] is None and doc["gap"] is None
        assert doc["bound"]["covers"] == "no bound: internal error (RuntimeError: injected failure)"
