"""The exact mapper's first incumbent (search.mapper.seed): descents from several candidates."""

from __future__ import annotations

import numpy as np
import pytest

from formulation.goals import Objective
from formulation.model.exact import evaluate_batch
from formulation.model.validation import mapping_violations
from formulation.specs.catalog import load_arch
from formulation.specs.types import Layer
from search.mapper.bounds import objective_of
from search.mapper.seed import seed_incumbent
from search.sampling import sample_mappings

LAYER = Layer("conv", N=1, C=8, K=16, P=14, Q=14, R=3, S=3, Wstride=2, Hstride=2)


def _values(layer, arch, arrays, objective):
    ev = evaluate_batch(layer, arch, arrays)
    return np.where(ev.fits, objective_of(objective, ev.energy_pJ, ev.cycles, arch.clock_GHz), np.inf)


@pytest.mark.parametrize("objective", [Objective.EDP, Objective.ENERGY])
def test_seed_is_legal_deterministic_and_no_worse_than_samples_or_start(objective):
    arch = load_arch("simple")
    samples = sample_mappings(LAYER, arch, 300, np.random.default_rng(0))  # the seed's own first draw
    sample_values = _values(LAYER, arch, samples, objective)
    start = sample_mappings(LAYER, arch, 3, np.random.default_rng(7))
    start_best = float(_values(LAYER, arch, start, objective).min())
    best, scored = seed_incumbent(LAYER, arch, objective, samples=300, seed=0, start=start, descents=3)
    again, _ = seed_incumbent(LAYER, arch, objective, samples=300, seed=0, start=start, descents=3)
    value = float(_values(LAYER, arch, best, objective)[0])
    assert not mapping_violations(LAYER, arch, best).any()
    assert value <= min(start_best, float(sample_values.min()))
    assert value == float(_values(LAYER, arch, again, objective)[0])
    assert scored >= 300 + start.size
    one, _ = seed_incumbent(LAYER, arch, objective, samples=300, seed=0, descents=1)
    assert value <= float(_values(LAYER, arch, one, objective)[0])  # the best sample is among the descended


def test_respread_reaches_the_whole_array_from_a_partial_local_optimum():
    """From a legal mapping on part of the array, the transplants of whole-array assignments, descended,
    give a legal mapping no worse than it (here strictly better and on more processing elements)."""
    from search.mapper.seed import _pes, _respread

    arch = load_arch("eyeriss-like")
    layer = Layer("expand", N=1, K=96, C=24, P=14, Q=14, R=1, S=1)
    samples = sample_mappings(layer, arch, 200, np.random.default_rng(3))
    values = _values(layer, arch, samples, Objective.EDP)
    i = int(np.argmin(np.where(_pes(samples) < 168, values, np.inf)))
    base, value = samples.take(slice(i, i + 1)), float(values[i])
    best, scored = _respread(layer, arch, Objective.EDP, base, value, np.random.default_rng(0), 40)
    new = float(_values(layer, arch, best, Objective.EDP)[0])
    assert not mapping_violations(layer, arch, best).any()
    assert scored > 0 and new < value
    assert _pes(best)[0] > _pes(base)[0]


def test_same_seed_and_budget_give_the_same_first_incumbent(monkeypatch):
    """The seeds draw a number of samples fixed by the budget (search.mapper.mapper.sample_chunks), never
    by the clock: two searches with the same seed and budget start from the identical incumbent, even
    when the machine is slowed down in between (a clock-timed sampling draws fewer mappings then)."""
    import time as time_module

    import search.mapper.mapper as mapper_module

    arch = load_arch("simple")
    seen = []

    def recording(*args, **kwargs):
        best, scored = seed_incumbent(*args, **kwargs)
        seen.append((best, scored, kwargs["chunks"]))
        return best, scored

    monkeypatch.setattr(mapper_module, "seed_incumbent", recording)
    mapper_module.map_layer(LAYER, arch, Objective.EDP, time_limit_s=1.0, seed=5, seed_samples=300)
    import search.mapper.seed as seed_module

    real_scores = seed_module.evaluate_batch

    def slowed(*args, **kwargs):  # every scoring of the seeds costs 5 ms more: a loaded machine
        time_module.sleep(0.005)
        return real_scores(*args, **kwargs)

    monkeypatch.setattr("search.mapper.seed.evaluate_batch", slowed)
    mapper_module.map_layer(LAYER, arch, Objective.EDP, time_limit_s=1.0, seed=5, seed_samples=300)
    (a, n_a, chunks_a), (b, n_b, chunks_b) = seen
    assert chunks_a == chunks_b == mapper_module.sample_chunks(1.0) >= 1
    assert n_a == n_b
    for field in ("temporal", "spatial_x", "spatial_y", "order", "keep"):
        assert np.array_equal(getattr(a, field), getattr(b, field))


def test_sample_chunks_follow_the_budget_only():
    from search.mapper.mapper import SAMPLE_MAX_S, SAMPLE_RATE, SAMPLE_SHARE, sample_chunks
    from search.mapper.seed import CHUNK

    assert sample_chunks(float("inf")) == 0 and sample_chunks(0.0) == 0
    assert sample_chunks(1000.0) == round(SAMPLE_RATE * SAMPLE_MAX_S / CHUNK)
    assert sample_chunks(2.0) == round(SAMPLE_RATE * SAMPLE_SHARE * 2.0 / CHUNK)
    budgets = [0.5, 1.0, 3.0, 6.0, 10.0, 100.0]
    assert [sample_chunks(b) for b in budgets] == sorted(sample_chunks(b) for b in budgets)
