"""The discrete co-optimizer: rounding, local search against exhaustive enumeration, co-design
constraints, reproducibility, the Dask backend and interrupts.

The exhaustive tests enumerate every legal mapping of a small layer on a small architecture
(DRAM -> global buffer -> 2x2 PEs with a register file -> MACs) in the space the local search
moves in, evaluate all of them with the exact model, and check that ``optimize`` with the
hardware fixed lands within 1% of the optimum for energy, latency and EDP.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import replace

import numpy as np
import pytest

from formulation.axes import DIMS, N_DIMS, N_TENSORS, TENSORS, Tensor
from formulation.specs.catalog import load_arch
from formulation.model.encoding import MappingArrays, decode
from formulation.model.exact import evaluate_batch
from formulation.goals import Caps, Objective
from formulation.relaxed.problem import RelaxedProblem, default_structure
from formulation.specs.types import Architecture, Layer, Mac, Network, NetworkLayer, SpecError, StorageLevel, Technology
from formulation.technology import architecture_area_mm2
from formulation.specs.template import ArchTemplate, default_template
from formulation.model.validation import mapping_violations, validate_mapping
from search.design import Goal
from search.optimize import fixed_template, optimize, random_structure, structures_for_start
from search.outcome import OptimizeStatus
from search.rounding import fits_template, nearest_power_of_two, nearest_smooth, repair, round_hardware, round_layer
from search.sampling import sample_mappings
from search.tiling import prime_factors

FIELDS = ("temporal", "spatial_x", "spatial_y", "order", "keep")
W, I, O = Tensor.W, Tensor.I, Tensor.O


def _concat(parts: list[MappingArrays]) -> MappingArrays:
    return MappingArrays(*(np.concatenate([getattr(p, f) for p in parts]) for f in FIELDS))


def _same_arrays(a: MappingArrays, b: MappingArrays) -> bool:
    return all(np.array_equal(getattr(a, f), getattr(b, f)) for f in FIELDS)


def _assert_legal(layer: Layer, arch: Architecture, arrays: MappingArrays) -> None:
    assert not mapping_violations(layer, arch, arrays).any()
    for b in range(arrays.size):
        validate_mapping(layer, arch, decode(arrays, arch, b))


def tiny_arch(gb_words: int = 64, rf_words: int = 16, rf_keeps=frozenset(TENSORS), name: str = "tiny") -> Architecture:
    """DRAM -> GlobalBuffer -> 2x2 PEs, each a RegisterFile feeding one MAC."""
    dram = StorageLevel("DRAM", Technology.DRAM, None, 8, 4, 1, 1, 200.0, 200.0, 200.0, 200.0, 4, 4)
    glb = StorageLevel("GlobalBuffer", Technology.SRAM, gb_words, 8, 4, 1, 1, 6.0, 7.0, 7.0, 7.0, 8, 8)
    reg = StorageLevel("RegisterFile", Technology.SRAM, rf_words, 8, 1, 4, 2, 0.5, 0.6, 0.6, 0.6, keeps=rf_keeps)
    return Architecture(name, (dram, glb, reg), Mac(4, 2, 1.0))


def _with_sizes(arch: Architecture, **sizes: int) -> Architecture:
    levels = tuple(replace(lv, size_words=sizes.get(lv.name, lv.size_words)) for lv in arch.levels)
    return replace(arch, name=f"{arch.name}-tiny", levels=levels)


# ---- 1. rounding ----------------------------------------------------------------------------------

ROUNDING_LAYERS = [
    Layer("l1_3x3", N=1, C=64, K=64, P=56, Q=56, R=3, S=3),
    Layer("l2_s2", N=1, C=64, K=128, P=28, Q=28, R=3, S=3, Wstride=2, Hstride=2),
    Layer("conv1", N=1, C=3, K=64, P=112, Q=112, R=7, S=7, Wstride=2, Hstride=2),
    Layer("fc", N=1, C=512, K=1000, P=1, Q=1),
    Layer("dw", N=1, C=32, K=32, G=32, P=56, Q=56, R=3, S=3),
    Layer("batch", N=4, C=6, K=10, P=15, Q=9, R=5, S=1),
]


def _rounding_archs() -> list[Architecture]:
    simple, eyeriss = load_arch("simple"), load_arch("eyeriss-like")
    return [simple, eyeriss,
            # buffers a few words larger than one element of each tensor: almost every prime must move out
            _with_sizes(simple, GlobalBuffer=64, RegisterFile=4),
            _with_sizes(eyeriss, shared_glb=48, psum_spad=1, weights_spad=2, ifmap_spad=3)]


@pytest.mark.parametrize("arch", _rounding_archs(), ids=lambda a: a.name)
def test_round_layer_gives_legal_mappings_for_random_targets(arch, monkeypatch):
    import search.rounding

    dealt_illegal = []

    def spy(layer, arch, arrays):  # what round_layer deals before its repair
        dealt_illegal.append(bool(mapping_violations(layer, arch, arrays)[0]))
        return repair(layer, arch, arrays)

    monkeypatch.setattr(search.rounding, "repair", spy)
    template = default_template(arch)
    f = template.array_fanout_level
    rng = np.random.default_rng(11)
    levels = len(arch.levels)
    for layer in ROUNDING_LAYERS:
        logs = np.log(np.array(layer.dims, dtype=float))
        for k in range(12):
            structure = default_structure(template) if k == 0 else random_structure(template, rng)
            # targets anywhere in [0, ln D] per slot (they need not sum to ln D), sometimes all innermost
            xt = rng.uniform(0, 1, (levels, N_DIMS)) * logs
            if k % 4 == 1:
                xt[:] = 0
                xt[-1] = logs
            xs = np.zeros((levels, N_DIMS))
            xs[f] = rng.uniform(0, 1, N_DIMS) * logs
            arrays = round_layer(layer, arch, structure, f, xt, xs)
            assert arrays.size == 1
            _assert_legal(layer, arch, arrays)
            # spatial factors only at the array fanout, each dimension on the axis its structure gives it
            assert (arrays.spatial_x[0, np.arange(levels) != f] == 1).all()
            assert (arrays.spatial_y[0, np.arange(levels) != f] == 1).all()
            for d in DIMS:
                assert arrays.spatial_x[0, f, d] == 1 or d in structure.x_dims
                assert arrays.spatial_y[0, f, d] == 1 or d in structure.y_dims
            assert np.array_equal(arrays.order[0], structure.structure.order)
            assert np.array_equal(arrays.keep[0], structure.structure.keep)
    assert len(dealt_illegal) == 12 * len(ROUNDING_LAYERS)
    if arch.name.endswith("-tiny"):
        assert sum(dealt_illegal) > len(dealt_illegal) / 2  # the tiny buffers force repair most of the time
    else:
        assert any(dealt_illegal)  # the targets that put everything innermost do


def _random_illegal(layer: Layer, arch: Architecture, rng: np.random.Generator) -> MappingArrays:
    """Primes dealt to any slot at any level (spatial X/Y included, fanout or not), random orders and
    bypass: spatial overflow, dimensions on both axes and tile overflow all happen."""
    levels = len(arch.levels)
    tables = np.ones((3, levels, N_DIMS), dtype=np.int64)
    for d in DIMS:
        for p in prime_factors(layer.dims[d]):
            tables[rng.integers(3), rng.integers(levels), d] *= p
    order = np.stack([rng.permutation(N_DIMS) for _ in range(levels)])
    keep = np.array([[t in lv.keeps and (l == 0 or rng.random() < 0.7) for t in TENSORS]
                     for l, lv in enumerate(arch.levels)])
    return MappingArrays(tables[0][None], tables[1][None], tables[2][None], order[None], keep[None])


@pytest.mark.parametrize("arch", _rounding_archs(), ids=lambda a: a.name)
def test_repair_makes_any_mapping_legal_and_keeps_legal_ones(arch):
    rng = np.random.default_rng(5)
    illegal = 0
    for layer in ROUNDING_LAYERS:
        for _ in range(15):
            arrays = _random_illegal(layer, arch, rng)
            illegal += int(mapping_violations(layer, arch, arrays)[0])
            fixed = repair(layer, arch, arrays)
            _assert_legal(layer, arch, fixed)
            # repair never touches the loop orders or the bypass, and is a no-op on what it returns
            assert np.array_equal(fixed.order, arrays.order) and np.array_equal(fixed.keep, arrays.keep)
            assert _same_arrays(repair(layer, arch, fixed), fixed)
        legal = sample_mappings(layer, arch, 10, rng)
        for b in range(legal.size):
            one = legal.take(slice(b, b + 1))
            assert _same_arrays(repair(layer, arch, one), one)
    assert illegal >= 60  # most of the 90 random mappings needed repairing


def test_repair_reports_a_buffer_too_small_for_one_element():
    arch = _with_sizes(load_arch("simple"), RegisterFile=2)  # keeps W, I and O: needs 3 words
    layer = ROUNDING_LAYERS[0]
    arrays = _random_illegal(layer, arch, np.random.default_rng(0))
    arrays = replace(arrays, keep=np.ones_like(arrays.keep))
    with pytest.raises(SpecError, match="RegisterFile"):
        repair(layer, arch, arrays)


def _smooth(n: int) -> bool:
    return set(prime_factors(n)) <= {2, 3, 7}


def test_nearest_smooth_and_power_of_two_stay_in_range():
    rng = np.random.default_rng(3)
    for _ in range(400):
        lo = int(rng.integers(1, 200))
        hi = lo + int(rng.integers(0, 300))
        value = float(np.exp(rng.uniform(-1, 7)))
        n = nearest_smooth(value, lo, hi)
        assert lo <= n <= hi
        smooth = [m for m in range(lo, hi + 1) if _smooth(m)]
        if smooth:
            assert _smooth(n)
            best = min(abs(math.log(m) - math.log(max(value, 1.0))) for m in smooth)
            assert abs(math.log(n) - math.log(max(value, 1.0))) == pytest.approx(best)
        else:
            assert n == lo
        p = nearest_power_of_two(value, lo, hi)
        assert lo <= p <= hi
        if p not in (lo, hi):  # unclipped: a power of two, the nearest one in log terms
            assert p & (p - 1) == 0
            assert abs(math.log2(p) - math.log2(max(value, 1.0))) <= 0.5 + 1e-12
    assert nearest_smooth(45.0, 4, 64) == 48  # ln(48/45) < ln(45/42)
    assert nearest_smooth(12.0, 13, 13) == 13  # no smooth side in range: the lower end
    assert nearest_power_of_two(3000.0, 4096, 1 << 20) == 4096
    assert nearest_power_of_two(1e9, 16, 4096) == 4096


def test_round_hardware_fits_the_template():
    rng = np.random.default_rng(2)
    network = Network("two", (NetworkLayer(ROUNDING_LAYERS[0]), NetworkLayer(ROUNDING_LAYERS[3])))
    templates = [default_template(load_arch("simple")), default_template(load_arch("eyeriss-like")),
                 ArchTemplate("odd", load_arch("simple"), (5, 11), (13, 13), (("GlobalBuffer", 3000, 5000),
                                                                              ("RegisterFile", 17, 100)))]
    for template in templates:
        problem = RelaxedProblem(network, template)
        for _ in range(50):
            x = problem.initial_point()
            # anywhere in the box, and beyond it (a solver may stop slightly outside its bounds)
            hw = problem.variables.hardware
            x[hw] = rng.uniform(problem.lower[hw] - 0.5, problem.upper[hw] + 0.5)
            hw = round_hardware(problem, x)
            assert fits_template(template, hw)
            assert _smooth(hw.mesh_x) or hw.mesh_x == template.mesh_x_range[0]
            assert _smooth(hw.mesh_y) or hw.mesh_y == template.mesh_y_range[0]
            for name, lo, hi in template.size_ranges:
                size = hw.size_of(name)
                assert size & (size - 1) == 0 or size in (lo, hi)


# ---- 2. local search against exhaustive enumeration ------------------------------------------------

def _compositions(e: int, n: int) -> list[list[int]]:
    out = []
    for combo in itertools.combinations_with_replacement(range(n), e):
        v = [0] * n
        for i in combo:
            v[i] += 1
        out.append(v)
    return out


def _dim_options(bound: int, n_slots: int) -> np.ndarray:
    """Every way to deal ``bound``'s prime factors over ``n_slots`` slots, as factor vectors."""
    factors = prime_factors(bound)
    primes = sorted(set(factors))
    opts = []
    for combo in itertools.product(*[_compositions(factors.count(p), n_slots) for p in primes]):
        v = np.ones(n_slots, dtype=np.int64)
        for p, c in zip(primes, combo):
            v *= p ** np.array(c, dtype=np.int64)
        opts.append(v)
    return np.array(opts, dtype=np.int64).reshape(-1, n_slots)


def _slots(arch: Architecture) -> list[tuple[int, int]]:
    """(kind, level) with kind 0 temporal, 1 spatial X, 2 spatial Y: the slots the local search uses."""
    levels = len(arch.levels)
    slots = [(0, l) for l in range(levels)]
    for l in range(levels):
        fan_x, fan_y = arch.fanout(l)
        slots += [(1, l)] if fan_x > 1 else []
        slots += [(2, l)] if fan_y > 1 else []
    return slots


def enumerate_mappings(layer: Layer, arch: Architecture) -> MappingArrays:
    """Every legal mapping of the local search's space, up to loop orders that change no count.

    Factors: every distribution of every dimension's primes over the temporal slot of each level
    and the X/Y slots of each fanout, kept when the spatial factors fit (one mesh axis per
    dimension). Bypass: every subset of each inner level's ``keeps`` (the outermost keeps all).
    Capacity: what :func:`mapping_violations` accepts. Orders: at every level but the innermost,
    every permutation of the dimensions with a temporal factor above one (innermost first), the
    others after them in a fixed order; the innermost level keeps one order.
    :func:`test_orders_of_unit_loops_and_of_the_innermost_level_change_no_count` checks that
    those restrictions lose nothing.
    """
    levels = len(arch.levels)
    slots = _slots(arch)
    per_dim = [_dim_options(b, len(slots)) for b in layer.dims]
    index = np.stack([g.ravel() for g in np.meshgrid(*[np.arange(len(o)) for o in per_dim], indexing="ij")], axis=1)
    tables = np.ones((3, len(index), levels, N_DIMS), dtype=np.int64)
    for d in range(N_DIMS):
        chosen = per_dim[d][index[:, d]]
        for s, (kind, l) in enumerate(slots):
            tables[kind, :, l, d] *= chosen[:, s]
    temporal, sx, sy = tables
    ok = np.ones(len(index), dtype=bool)
    for l in range(levels):
        fan_x, fan_y = arch.fanout(l)
        ok &= (sx[:, l].prod(axis=1) <= fan_x) & (sy[:, l].prod(axis=1) <= fan_y)
        ok &= ~((sx[:, l] > 1) & (sy[:, l] > 1)).any(axis=1)
    temporal, sx, sy = temporal[ok], sx[ok], sy[ok]
    n = len(temporal)
    free = [(l, t) for l in range(1, levels) for t in TENSORS if t in arch.levels[l].keeps]
    identity = np.broadcast_to(np.arange(N_DIMS), (n, levels, N_DIMS)).copy()
    parts = []
    for bits in itertools.product((False, True), repeat=len(free)):
        keep = np.zeros((levels, N_TENSORS), dtype=bool)
        keep[0] = True
        for (l, t), b in zip(free, bits):
            keep[l, t] = b
        arrays = MappingArrays(temporal, sx, sy, identity, np.broadcast_to(keep, (n, levels, N_TENSORS)).copy())
        parts.append(arrays.take(np.flatnonzero(~mapping_violations(layer, arch, arrays))))
    base = _concat(parts)
    ordered = list(range(levels - 1))
    active = base.temporal[:, ordered] > 1
    keys = (active * (1 << np.arange(N_DIMS))).sum(axis=-1)
    groups, inverse = np.unique(keys, axis=0, return_inverse=True)
    inverse = inverse.ravel()
    out = []
    for g, key in enumerate(groups):
        members = np.flatnonzero(inverse == g)
        per_level = []
        for code in key:
            act = [d for d in range(N_DIMS) if code >> d & 1]
            rest = [d for d in range(N_DIMS) if not code >> d & 1]
            per_level.append([list(p) + rest for p in itertools.permutations(act)])
        combos = np.array(list(itertools.product(*per_level)), dtype=np.int64)  # [c, len(ordered), 7]
        sub = base.take(np.repeat(members, len(combos)))
        order = sub.order.copy()
        order[:, ordered] = np.tile(combos, (len(members), 1, 1))
        out.append(replace(sub, order=order))
    return _concat(out)


def _evaluate_all(layer: Layer, arch: Architecture, space: MappingArrays, chunk: int = 8192):
    energy, cycles = np.empty(space.size), np.empty(space.size)
    for s in range(0, space.size, chunk):
        ev = evaluate_batch(layer, arch, space.take(slice(s, s + chunk)))
        energy[s:s + chunk], cycles[s:s + chunk] = ev.energy_pJ, ev.cycles
    return energy, cycles


# Small enough to enumerate in a few seconds (2e5-4e5 mappings each), large enough that plain
# descent from the relaxation's rounding stalls above the optimum on some of them.
EXHAUSTIVE_CASES = {
    "C4K4P4": (Layer("C4K4P4", N=1, C=4, K=4, P=4, Q=1), tiny_arch(64, 16)),
    "C2K4P4R3": (Layer("C2K4P4R3", N=1, C=2, K=4, P=4, Q=1, R=3), tiny_arch(32, 8)),
    "C4K2P2Q2R3-rfWO": (Layer("C4K2P2Q2R3", N=1, C=4, K=2, P=2, Q=2, R=3), tiny_arch(32, 8, frozenset({W, O}))),
}


def test_enumeration_counts_a_hand_checked_case():
    """C=4 on a 2x2 array, nothing else: 4 = 2*2 over slots DRAM, GB, RF, X, Y."""
    layer = Layer("c4", N=1, C=4, K=1, P=1, Q=1)
    arch = tiny_arch(64, 16)
    space = enumerate_mappings(layer, arch)
    # 15 distributions of two 2s over 5 slots, minus the one with both on X and both on Y (fanout 2),
    # minus X and Y together (one axis per dimension): 12. Orders: one active loop per level at most.
    # Bypass: 2^6 subsets, all fitting (tiles are at most 4 words).
    assert space.size == 12 * 64
    assert not mapping_violations(layer, arch, space).any()
    assert len({tuple(np.concatenate([getattr(space, f)[b].ravel() for f in FIELDS]).tolist())
                for b in range(space.size)}) == space.size


def test_orders_of_unit_loops_and_of_the_innermost_level_change_no_count():
    """The enumeration's two order restrictions, checked with the exact model on random mappings."""
    rng = np.random.default_rng(4)
    cases = [EXHAUSTIVE_CASES["C2K4P4R3"], EXHAUSTIVE_CASES["C4K2P2Q2R3-rfWO"],
             (ROUNDING_LAYERS[1], load_arch("simple")), (ROUNDING_LAYERS[0], load_arch("eyeriss-like"))]
    for layer, arch in cases:
        base = sample_mappings(layer, arch, 1500, rng)
        levels = len(arch.levels)
        unit_moved = base.order.copy()
        inner_moved = base.order.copy()
        for b in range(base.size):
            for l in range(levels):
                row = base.order[b, l]
                act = [d for d in row if base.temporal[b, l, d] > 1]
                unit = list(rng.permutation([d for d in row if base.temporal[b, l, d] == 1]))
                at = set(rng.choice(N_DIMS, len(act), replace=False).tolist())
                a, u = iter(act), iter(unit)
                unit_moved[b, l] = [next(a) if k in at else next(u) for k in range(N_DIMS)]
            inner_moved[b, levels - 1] = rng.permutation(N_DIMS)
        assert not np.array_equal(unit_moved, base.order)
        ref = evaluate_batch(layer, arch, base)
        for order in (unit_moved, inner_moved):
            ev = evaluate_batch(layer, arch, replace(base, order=order))
            for name in ("reads", "fills", "updates", "energy_pJ", "cycles"):
                assert np.array_equal(getattr(ev, name), getattr(ref, name)), (layer.name, arch.name, name)


@pytest.mark.parametrize("case", sorted(EXHAUSTIVE_CASES))
def test_fixed_hardware_search_is_within_one_percent_of_exhaustive(case):
    layer, arch = EXHAUSTIVE_CASES[case]
    space = enumerate_mappings(layer, arch)
    assert 100_000 < space.size < 500_000
    energy, cycles = _evaluate_all(layer, arch, space)
    optimum = {Objective.ENERGY: energy.min(), Objective.LATENCY: cycles.min() / (arch.clock_GHz * 1e9),
               Objective.EDP: (energy * cycles).min() / (arch.clock_GHz * 1e9)}
    network = Network(case, (NetworkLayer(layer),))
    template = fixed_template(arch)
    for objective, best in optimum.items():
        result = optimize(network, template, Goal(objective), fixed_hardware=True, jobs=1, seed=0,
                          time_limit_s=600)
        assert result.status is OptimizeStatus.CONVERGED
        found = result.best.score.value(objective)
        mapping = result.best.design.mappings[0]
        _assert_legal(layer, arch, mapping)
        # the search's space is the enumerated one: nothing it finds can beat the enumeration
        assert found >= best * (1 - 1e-9), (case, objective)
        assert found <= best * 1.01, (case, objective, found / best)


# ---- 3. co-design respects the budget and caps -------------------------------------------------------

SMALL_NET = Network("small", (
    NetworkLayer(Layer("c1", N=1, C=3, K=8, P=14, Q=14, R=3, S=3, Wstride=2, Hstride=2)),
    NetworkLayer(Layer("c2", N=1, C=8, K=16, P=7, Q=7, R=3, S=3), count=2),
    NetworkLayer(Layer("fc", N=1, C=16, K=10, P=1, Q=1)),
))


def _assert_design_legal(network: Network, template: ArchTemplate, result, goal: Goal) -> None:
    best = result.best
    hw = best.design.hardware
    assert fits_template(template, hw)
    arch = template.instantiate(hw)
    area = architecture_area_mm2(arch)
    assert best.score.area_mm2 == pytest.approx(area)
    if goal.area_budget_mm2 is not None:
        assert area <= goal.area_budget_mm2 * (1 + 1e-9)
    energy = latency = 0.0
    for entry, mapping in zip(network.layers, best.design.mappings):
        _assert_legal(entry.layer, arch, mapping)
        ev = evaluate_batch(entry.layer, arch, mapping)
        energy += entry.count * float(ev.energy_pJ[0])
        latency += entry.count * float(ev.cycles[0]) / (arch.clock_GHz * 1e9)
    assert best.score.energy_pJ == pytest.approx(energy, rel=1e-12)
    assert best.score.latency_s == pytest.approx(latency, rel=1e-12)
    caps = goal.caps
    assert caps.latency_s is None or latency <= caps.latency_s * (1 + 1e-9)
    assert caps.energy_pJ is None or energy <= caps.energy_pJ * (1 + 1e-9)
    assert caps.power_mW is None or energy / latency * 1e-9 <= caps.power_mW * (1 + 1e-9)
    assert best.score.feasible


def test_codesign_respects_area_budget_and_caps():
    template = default_template(load_arch("simple"))
    free = optimize(SMALL_NET, template, Goal(Objective.EDP), jobs=1, seed=0, starts=2, time_limit_s=600)
    assert free.status is OptimizeStatus.CONVERGED
    _assert_design_legal(SMALL_NET, template, free, Goal(Objective.EDP))
    unconstrained = free.best.score
    goals = [
        # a budget below the unconstrained design's area, so it binds
        Goal(Objective.EDP, area_budget_mm2=0.6 * unconstrained.area_mm2),
        # energy under a latency cap and a budget
        Goal(Objective.ENERGY, area_budget_mm2=unconstrained.area_mm2, caps=Caps(latency_s=1.5 * unconstrained.latency_s)),
        # latency under a power cap
        Goal(Objective.LATENCY, caps=Caps(power_mW=0.8 * unconstrained.power_mW)),
    ]
    results = []
    for goal in goals:
        result = optimize(SMALL_NET, template, goal, jobs=1, seed=0, starts=2, time_limit_s=600)
        assert result.status is OptimizeStatus.CONVERGED, goal
        _assert_design_legal(SMALL_NET, template, result, goal)
        for start in result.starts:  # every start's design, not only the best, keeps the budget and caps
            if start.best is not None and start.best.score.feasible:
                _assert_design_legal(SMALL_NET, template, replace(result, best=start.best), goal)
        results.append(result)
    assert results[0].best.score.area_mm2 > 0.5 * goals[0].area_budget_mm2  # it uses the area it is given


def test_codesign_reports_an_impossible_budget():
    template = default_template(load_arch("simple"))
    goal = Goal(Objective.EDP, area_budget_mm2=1e-4)  # below the smallest hardware of the template
    result = optimize(SMALL_NET, template, goal, jobs=1, seed=0, starts=2, time_limit_s=600)
    assert result.status is OptimizeStatus.INFEASIBLE
    assert result.best is None
    assert result.binding and "area" in result.binding[0]


# ---- 4. reproducibility ------------------------------------------------------------------------------

def _same_design(a, b) -> bool:
    return (a.design.hardware == b.design.hardware and len(a.design.mappings) == len(b.design.mappings)
            and all(_same_arrays(x, y) for x, y in zip(a.design.mappings, b.design.mappings)))


@pytest.fixture(scope="module")
def small_template():
    return default_template(load_arch("simple"))


@pytest.fixture(scope="module")
def loky_seed0(small_template):
    return optimize(SMALL_NET, small_template, Goal(Objective.EDP, area_budget_mm2=0.5), jobs=2, seed=0,
                    starts=2, time_limit_s=600)


def test_same_seed_gives_the_same_design(small_template, loky_seed0):
    goal = Goal(Objective.EDP, area_budget_mm2=0.5)
    again = optimize(SMALL_NET, small_template, goal, jobs=1, seed=0, starts=2, time_limit_s=600)
    for result in (loky_seed0, again):
        assert result.status is OptimizeStatus.CONVERGED
    assert _same_design(again.best, loky_seed0.best)
    for a, b in zip(again.starts, loky_seed0.starts):
        assert a.start == b.start and _same_design(a.best, b.best)
        assert a.evaluations == b.evaluations
    # another seed draws other structures for starts 1.. (start 0 is the default structure), so its
    # design may differ
    other = [s.structure.order for s in structures_for_start(SMALL_NET, small_template, 1, 1)]
    this = [s.structure.order for s in structures_for_start(SMALL_NET, small_template, 0, 1)]
    assert any(not np.array_equal(a, b) for a, b in zip(this, other))


# ---- 5. Dask backend ---------------------------------------------------------------------------------

def test_dask_backend_matches_loky(small_template, loky_seed0):
    distributed = pytest.importorskip("dask.distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=":0") as cluster:
        result = optimize(SMALL_NET, small_template, Goal(Objective.EDP, area_budget_mm2=0.5), jobs=2, seed=0,
                          starts=2, time_limit_s=600, backend="dask", scheduler=cluster.scheduler_address)
    assert result.status is OptimizeStatus.CONVERGED
    assert _same_design(result.best, loky_seed0.best)
    assert [s.start for s in result.starts] == [s.start for s in loky_seed0.starts]
    for a, b in zip(result.starts, loky_seed0.starts):
        assert _same_design(a.best, b.best)


# ---- 6. interrupts -----------------------------------------------------------------------------------

@pytest.mark.filterwarnings("ignore:.*tasks which were still being processed:UserWarning")  # joblib cancels the rest
@pytest.mark.parametrize("jobs", [1, 2])
def test_interrupt_keeps_the_best_design_so_far(small_template, jobs):
    seen = []

    def interrupt(start_result):
        seen.append(start_result)
        raise KeyboardInterrupt

    goal = Goal(Objective.EDP, area_budget_mm2=0.5)
    result = optimize(SMALL_NET, small_template, goal, jobs=jobs, seed=0, time_limit_s=600, on_start_done=interrupt)
    assert result.status is OptimizeStatus.INTERRUPTED
    assert len(seen) == 1 and len(result.starts) == 1
    assert result.best is seen[0].best
    _assert_design_legal(SMALL_NET, small_template, result, goal)
