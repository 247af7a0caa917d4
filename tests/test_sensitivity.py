"""The log-form model's analytic gradients against finite differences, and its values against the exact model."""

from __future__ import annotations

import numpy as np
import pytest

from formulation.model.exact import evaluate
from formulation.relaxed.sensitivity import Structure, point_of, relaxed_costs

STEP = 1e-4


def _central_differences(f, z):
    """Central differences of every quantity ``f(z)`` returns (a dict name -> Smooth), in one sweep."""
    names = list(f(z))
    grads = {name: np.zeros_like(z) for name in names}
    for i in range(len(z)):
        e = np.zeros_like(z)
        e[i] = STEP
        up, down = f(z + e), f(z - e)
        for name in names:
            grads[name][i] = (up[name].value - down[name].value) / (2 * STEP)
    return grads


def _quantities(costs):
    """Every smooth output the NLP uses, by name."""
    out = {"energy": costs.energy_pJ, "cycles": costs.cycles, "compute": costs.compute_cycles}
    out.update({f"bandwidth{i}": b for i, b in enumerate(costs.bandwidth_cycles)})
    out.update({f"capacity{l}": c for l, c in enumerate(costs.capacity_words)})
    for name, table in (("reads", costs.reads), ("fills", costs.fills), ("updates", costs.updates)):
        out.update({f"{name}{key}": v for key, v in table.items()})
    return out


@pytest.mark.parametrize("index", [0, 3, 17, 45, 90, 130, 171, 200, 240])
def test_gradients_match_finite_differences(reference_cases, index):
    case = reference_cases[index]
    structure = Structure.from_mapping(case.mapping, all_present=True)
    rng = np.random.default_rng(index)
    z0 = point_of(case.mapping, case.arch)
    z = z0 + rng.normal(0.0, 0.25, size=z0.shape)  # off the integer lattice, away from kinks

    def evaluate_at(zz):
        return _quantities(relaxed_costs(case.layer, case.arch, structure, zz, size_dependent_energy=True))

    base = evaluate_at(z)
    assert len(base) > 10
    # Output reads and fills are differences of large terms (updates - partition, arrivals -
    # partition) that cancel exactly for some loop orders; their finite differences then carry
    # the terms' round-off, about eps * largest count / STEP.
    roundoff = 1e-15 * max(abs(s.value) for s in base.values()) / STEP
    differences = _central_differences(evaluate_at, z)
    for name, smooth in base.items():
        fd = differences[name]
        scale = max(np.abs(fd).max(), np.abs(smooth.grad).max(), 1e5 * roundoff, 1e-9)
        assert np.allclose(smooth.grad, fd, atol=1e-5 * scale, rtol=1e-5), (case.id, name)


def test_relaxation_is_exact_or_an_upper_bound_at_integer_mappings(reference_cases):
    exact = checked = 0
    for case in reference_cases:
        if any(per_tensor["link_transfers"] for net in case.reference["networks"].values()
               for per_tensor in net.values()):
            continue  # the relaxation does not model neighbour forwarding (4 public cases)
        checked += 1
        costs = relaxed_costs(case.layer, case.arch, Structure.from_mapping(case.mapping),
                              point_of(case.mapping, case.arch))
        ev = evaluate(case.layer, case.arch, case.mapping)
        same = True
        for name, table in (("reads", costs.reads), ("fills", costs.fills), ("updates", costs.updates)):
            for (l, t), smooth in table.items():
                truth = float(getattr(ev, name)[0, l, t])
                # 1e-6: the smoothed max(0, x) in the halo term (eps = 1e-6 words)
                assert smooth.value >= truth * (1 - 1e-6) - 1e-6, (case.id, name, l, t)
                same &= abs(smooth.value - truth) <= 1e-6 * max(1.0, truth)
        exact += same
        assert costs.compute_cycles.value == pytest.approx(ev.compute_cycles[0])
    # Only Timeloop's special partial-reuse steps, spatial P+R sharing and link transfers differ.
    assert checked >= 240
    assert exact >= 0.9 * checked


def test_size_dependent_energy_grows_with_buffer_size(reference_cases):
    case = reference_cases[0]
    structure = Structure.from_mapping(case.mapping)
    z = point_of(case.mapping, case.arch)
    levels = len(case.arch.levels)
    costs = relaxed_costs(case.layer, case.arch, structure, z, size_dependent_energy=True)
    size_grad = costs.energy_pJ.grad[-levels:]
    assert size_grad[0] == 0.0  # DRAM energy does not depend on a size
    assert (size_grad[1:] > 0).all()
    plain = relaxed_costs(case.layer, case.arch, structure, z)
    assert costs.energy_pJ.value == pytest.approx(plain.energy_pJ.value)
