"""One budget over many layers (search.mapper.schedule): who gets a second pass, with what, and the merged certificate."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest

from formulation.goals import Objective
from formulation.model.encoding import encode
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


def test_only_unfinished_layers_get_more_passes_started_from_their_best(monkeypatch, proven):
    calls, done = [], []
    best = proven.certificate.best

    def fake(layer, arch, objective, *, time_limit_s, seed, start):
        calls.append((layer.name, time_limit_s, start))
        n = sum(1 for c in calls if c[0] == layer.name)
        if layer.name != "l1" or n >= 3:  # l1 is proven in its third pass
            return proven
        return _open(proven, lower=0.5 * best, best=2 * best) if n == 1 else _open(proven, 0.25 * best, 1.5 * best)

    monkeypatch.setattr(schedule, "map_layer", fake)
    results = schedule.map_layers(LAYERS, ARCH, Objective.EDP, time_limit_s=100.0,
                                  on_layer_done=lambda i, r: done.append((i, r)))
    assert [c[0] for c in calls] == ["l0", "l1", "l2", "l1", "l1"]
    # the first pass shares FIRST_PASS_SHARE of the budget; the later ones what is left
    assert calls[0][1] <= schedule.FIRST_PASS_SHARE * 100.0 / 3 + 1e-6
    assert calls[3][1] > calls[1][1]
    assert calls[3][2] is not None and (calls[3][2].temporal == encode(proven.mapping).temporal).all()
    cert = done[3][1].certificate                  # l1 after its second search
    assert cert.lower_bound == 0.5 * best          # the larger of the two passes' bounds
    assert cert.best == 1.5 * best                 # the better of the two
    assert (cert.evaluated, cert.seed_evaluations, cert.wall_s) == (14, 6, 2.0)
    assert results[1].status is MapperStatus.OPTIMAL and results[1].certificate.optimal
    assert results[0] is proven and results[2] is proven


def test_later_passes_take_the_layers_nearest_to_a_proof_first(monkeypatch, proven):
    order = []
    best = proven.certificate.best
    gaps = {"l0": 0.5, "l1": 0.9, "l2": 0.1}

    def fake(layer, arch, objective, *, time_limit_s, seed, start):
        order.append(layer.name)
        if len(order) > 3:
            return proven
        return _open(proven, lower=best / (1 + gaps[layer.name]), best=best)

    monkeypatch.setattr(schedule, "map_layer", fake)
    schedule.map_layers(LAYERS, ARCH, Objective.EDP, time_limit_s=100.0)
    assert order == ["l0", "l1", "l2", "l2", "l0", "l1"]


def test_a_second_pass_that_finds_nothing_better_keeps_the_first_mapping(monkeypatch, proven):
    best = proven.certificate.best
    runs = []

    def fake(layer, arch, objective, *, time_limit_s, seed, start):
        runs.append(layer.name)
        clock.now += time_limit_s  # each search uses all of its time
        if len(runs) == 1:
            return _open(proven, lower=0.5 * best, best=best)
        return replace(_open(proven, lower=0.75 * best, best=3 * best), mapping=None)

    class Clock:
        now = 0.0

        def monotonic(self):
            return self.now

    clock = Clock()
    monkeypatch.setattr(schedule, "map_layer", fake)
    monkeypatch.setattr(schedule, "time", clock)
    (result,) = schedule.map_layers(LAYERS[:1], ARCH, Objective.EDP, time_limit_s=10.0)
    assert len(runs) == 2 and clock.now == pytest.approx(10.0)
    assert result.mapping == proven.mapping
    assert result.certificate.best == best and result.certificate.lower_bound == 0.75 * best


def test_an_interrupted_layer_ends_the_search_time(monkeypatch, proven):
    limits = []

    def fake(layer, arch, objective, *, time_limit_s, seed, start):
        limits.append(time_limit_s)
        if layer.name == "l0":
            return replace(_open(proven, 0.0, proven.certificate.best), status=MapperStatus.INTERRUPTED)
        return _open(proven, 0.0, proven.certificate.best)

    monkeypatch.setattr(schedule, "map_layer", fake)
    results = schedule.map_layers(LAYERS, ARCH, Objective.EDP, time_limit_s=60.0)
    assert len(results) == 3 and limits[1:] == [0.0, 0.0]   # no search time after Ctrl-C, no second pass


def test_without_a_budget_every_layer_is_proven_in_one_pass():
    results = schedule.map_layers(LAYERS[:2], ARCH, Objective.ENERGY, time_limit_s=math.inf)
    alone = map_layer(LAYERS[0], ARCH, Objective.ENERGY)
    assert all(r.status is MapperStatus.OPTIMAL for r in results)
    assert results[0].certificate.best == alone.certificate.best
