"""The literal reference simulator against Timeloop's numbers and against the vectorized model.

* Every small public reference case (at most ``SMALL_MACS`` MACs, link transfers excluded since the
  simulator does not model them) must be reproduced: reads, fills and updates exactly, cycles
  exactly, energy within 0.5%.
* On random tiny layers, architectures and mappings, :func:`formulation.model.exact.evaluate` must agree
  with :func:`formulation.model.simulate.simulate` exactly (energy to 1e-9 relative), wherever no link
  transfer is possible (the simulator does not model them; it flags where they could occur).
* A few hand-computed examples document the semantics.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from formulation.axes import DIMS, N_DIMS, TENSOR_NAMES, TENSORS, Dim, Tensor
from formulation.specs.loading import case_from_dict
from formulation.model.exact import evaluate
from formulation.model.simulate import MAX_MACS, TileHistory, simulate
from formulation.model.validation import validate_mapping
from formulation.specs.types import Architecture, Layer, LevelMapping, Mac, Mapping, StorageLevel, Technology
from search.tiling import prime_factors

SMALL_MACS = 50_000


def reference_cases_path() -> Path:
    """The Timeloop reference cases: the copy in tests/data, else the shared original."""
    local = Path(__file__).parent / "data" / "timeloop_cases.jsonl"
    if local.exists():
        return local
    return Path(__file__).resolve().parents[1].parent / "shared" / "timeloop-reference" / "cases.jsonl"


def _small_case_lines(link_transfers: bool) -> list[str]:
    path = reference_cases_path()
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        doc = json.loads(line)
        macs = math.prod(doc["layer"].get(k, 1) for k in "NCKPQRS")
        if macs <= SMALL_MACS and ("link_transfers" in doc["tags"]) == link_transfers:
            out.append(line)
    return out


SMALL_CASES = _small_case_lines(link_transfers=False)
SMALL_LINK_CASES = _small_case_lines(link_transfers=True)


def test_reference_cases_found():
    assert len(SMALL_CASES) >= 50 and len(SMALL_LINK_CASES) >= 1


@pytest.mark.parametrize("line", SMALL_CASES, ids=[json.loads(line)["id"] for line in SMALL_CASES])
def test_simulator_reproduces_timeloop(line):
    case = case_from_dict(json.loads(line))
    sim = simulate(case.layer, case.arch, case.mapping)
    ref = case.reference
    for l, level in enumerate(case.arch.levels):
        ref_tensors = ref["levels"][level.name]["tensors"]
        for t in TENSORS:
            expected = ref_tensors.get(TENSOR_NAMES[t], {"reads": 0, "fills": 0, "updates": 0})
            got = {"reads": sim.reads[l, t], "fills": sim.fills[l, t], "updates": sim.updates[l, t]}
            assert got == {k: expected[k] for k in got}, (level.name, TENSOR_NAMES[t])
            if TENSOR_NAMES[t] in ref_tensors:
                assert sim.utilized_instances[l] == expected["utilized_instances"]
        if Tensor.O in case.mapping.levels[l].keep:
            assert sim.output_partition[l] == ref_tensors["Outputs"]["partition_size"], level.name
    assert sim.cycles == ref["cycles"]
    assert sim.energy_pJ == pytest.approx(ref["energy_pJ"], rel=5e-3)


@pytest.mark.parametrize("line", SMALL_LINK_CASES, ids=[json.loads(line)["id"] for line in SMALL_LINK_CASES])
def test_link_transfer_cases_are_flagged(line):
    # Timeloop forwarded Inputs between neighbours here: the simulator must see the opportunity,
    # and the tensors without one must still match.
    case = case_from_dict(json.loads(line))
    sim = simulate(case.layer, case.arch, case.mapping)
    assert sim.link_candidates[Tensor.I] > 0
    for l, level in enumerate(case.arch.levels):
        for t in (Tensor.W, Tensor.O):
            assert sim.link_candidates[t] == 0
            expected = case.reference["levels"][level.name]["tensors"].get(TENSOR_NAMES[t], {})
            assert int(sim.reads[l, t]) == expected.get("reads", 0)
            assert int(sim.fills[l, t]) == expected.get("fills", 0)
            assert int(sim.updates[l, t]) == expected.get("updates", 0)


# --- Hand-computed examples ------------------------------------------------------------------------

def _two_level_arch(fanout_x: int = 1, fanout_y: int = 1) -> Architecture:
    def level(name: str, instances: int, mesh_x: int, size: int | None) -> StorageLevel:
        return StorageLevel(name=name, technology=Technology.DRAM if size is None else Technology.SRAM,
                            size_words=size, word_bits=8, block_size=1, instances=instances, mesh_x=mesh_x,
                            read_energy_pJ=1.0, write_energy_pJ=1.0, fill_energy_pJ=1.0, update_energy_pJ=1.0)

    return Architecture(name="tiny", levels=(level("DRAM", 1, 1, None), level("RF", 1, 1, 4096)),
                        mac=Mac(instances=fanout_x * fanout_y, mesh_x=fanout_x, energy_pJ=1.0))


def _factors(**kw: int) -> tuple[int, ...]:
    return tuple(kw.get(d.name, 1) for d in DIMS)


def _perm(innermost_first: str) -> tuple[Dim, ...]:
    head = tuple(Dim[c] for c in innermost_first)
    return head + tuple(d for d in DIMS if d not in head)


def test_sliding_window_keeps_the_halo():
    # A 1-D convolution: 3-wide input tiles at the RF, P walked at DRAM. The first tile arrives
    # whole (3), each of the 3 later P steps brings one new column.
    layer = Layer(name="conv1d", N=1, C=1, K=1, P=4, Q=1, R=3)
    mapping = Mapping(levels=(
        LevelMapping("DRAM", _factors(P=4), _perm("P")),
        LevelMapping("RF", _factors(R=3), _perm("R")),
    ))
    sim = simulate(layer, _two_level_arch(), mapping)
    assert sim.fills[1, Tensor.I] == 3 + 3 * 1
    assert sim.reads[0, Tensor.I] == 6


def test_stride_change_resets_the_translation():
    # Same layer with a K loop inside the P loop. Stepping K moves no input (translation 0), so the
    # next P step is a new translation: the whole tile is fetched again and the halo is lost.
    # Walk (P, K): (0,0) 3 words; (0,1) 0; (1,0) weight 3, whole tile 3; (1,1) weight 3, 0.
    layer = Layer(name="conv1d", N=1, C=1, K=2, P=4, Q=1, R=3)
    mapping = Mapping(levels=(
        LevelMapping("DRAM", _factors(P=4, K=2), _perm("KP")),
        LevelMapping("RF", _factors(R=3), _perm("R")),
    ))
    sim = simulate(layer, _two_level_arch(), mapping)
    assert sim.fills[1, Tensor.I] == 3 + 3 * 3
    # Outputs: 8 distinct elements at the RF, each arriving once (as a zero, elided).
    assert sim.output_partition[1] == 8
    assert sim.fills[1, Tensor.O] == 0


def test_tile_history_rule():
    h = TileHistory()
    a, b, c = frozenset({0, 1, 2}), frozenset({1, 2, 3}), frozenset({2, 3, 4})
    assert h.delta(a, (0,)) == a              # first tile: whole
    assert h.delta(b, (1,)) == {3}            # new translation +1 recorded
    assert h.delta(c, (2,)) == {4}            # same translation: difference only
    assert h.delta(a, (0,)) == a              # translation -2 differs: whole, translation forgotten
    assert h.delta(b, (1,)) == {3}            # a translation is recorded again


def test_spatial_p_and_r_share_input_columns():
    # P=2 and R=2 both spread over 4 MACs: inputs w = p + r take 3 distinct values, so the four
    # MACs read 3 words from DRAM (two of them get the same column: multicast).
    layer = Layer(name="pr", N=1, C=1, K=1, P=2, Q=1, R=2)
    mapping = Mapping(levels=(
        LevelMapping("DRAM", _factors(), _perm(""), keep=frozenset(TENSORS)),
        LevelMapping("RF", _factors(), _perm(""), spatial_x=_factors(P=2), spatial_y=_factors(R=2),
                     keep=frozenset({Tensor.W, Tensor.O})),
    ))
    sim = simulate(layer, _two_level_arch(2, 2), mapping)
    assert sim.reads[0, Tensor.I] == 3
    assert sim.reads[1, Tensor.W] == 2  # the two weights, each shared by the two P columns
    assert sim.updates[1, Tensor.O] == 2  # R is reduced spatially: 4 MAC results, 2 updates


def test_refuses_large_layers():
    layer = Layer(name="big", N=1, C=64, K=64, P=56, Q=56, R=3, S=3)
    assert layer.macs > MAX_MACS
    mapping = Mapping(levels=(LevelMapping("DRAM", layer.dims, _perm("")), LevelMapping("RF", _factors(), _perm(""))))
    with pytest.raises(ValueError, match="too large"):
        simulate(layer, _two_level_arch(), mapping)


# --- Random tiny problems: simulator == model -------------------------------------------------------

MAX_PROPERTY_MACS = 3000


@st.composite
def layers(draw) -> Layer:
    groups = draw(st.sampled_from([1, 1, 1, 1, 2, 3]))
    dim = st.integers(1, 4)
    window = draw(st.sampled_from(["1x1", "1x1", "any", "3x3"]))
    r, s = {"1x1": (1, 1), "3x3": (3, 3)}.get(window) or (draw(dim), draw(dim))
    return Layer(name="random", N=draw(dim), C=groups * draw(dim), K=groups * draw(dim), P=draw(dim), Q=draw(dim),
                 R=r, S=s, Wstride=draw(st.integers(1, 2)), Hstride=draw(st.integers(1, 2)),
                 Wdilation=draw(st.sampled_from([1, 1, 1, 2])), Hdilation=draw(st.sampled_from([1, 1, 1, 2])),
                 G=groups)


@st.composite
def architectures(draw, min_levels: int = 2, max_levels: int = 4, min_macs: int = 1) -> Architecture:
    n = draw(st.integers(min_levels, max_levels))
    energy = st.floats(0.0, 100.0, allow_nan=False, allow_infinity=False)
    bandwidth = st.one_of(st.none(), st.sampled_from([0.25, 0.5, 1, 1.5, 2, 3, 8]))
    mesh_x = mesh_y = 1
    levels = []
    for i in range(n):
        write = draw(energy)
        levels.append(StorageLevel(
            name=f"L{i}", technology=Technology.DRAM if i == 0 else Technology.SRAM,
            size_words=None if i == 0 else 1 << 24, word_bits=8, block_size=draw(st.sampled_from([1, 2, 4, 8])),
            instances=mesh_x * mesh_y, mesh_x=mesh_x, read_energy_pJ=draw(energy), write_energy_pJ=write,
            fill_energy_pJ=draw(st.one_of(st.just(write), energy)),
            update_energy_pJ=draw(st.one_of(st.just(write), energy)),
            read_bw_words=draw(bandwidth), write_bw_words=draw(bandwidth)))
        mesh_x *= draw(st.sampled_from([1, 1, 2, 3, 4]))
        mesh_y *= draw(st.sampled_from([1, 1, 2, 3]))
    if mesh_x * mesh_y < min_macs:  # widen the fanout to the MACs
        mesh_x *= 2
        mesh_y *= 2
    mac = Mac(instances=mesh_x * mesh_y, mesh_x=mesh_x, energy_pJ=draw(energy))
    return Architecture(name="random", levels=tuple(levels), mac=mac)


@st.composite
def mappings(draw, layer: Layer, arch: Architecture, prefer_spatial: bool = False) -> Mapping:
    """Random valid mappings: each prime factor of each dimension goes to a random temporal or
    spatial slot that still fits the fanout (with ``prefer_spatial``, spatial whenever one fits)."""
    n = len(arch.levels)
    temporal = [[1] * N_DIMS for _ in range(n)]
    sx = [[1] * N_DIMS for _ in range(n)]
    sy = [[1] * N_DIMS for _ in range(n)]
    for d in DIMS:
        for prime in prime_factors(layer.dims[d]):
            slots = [("t", l) for l in range(n)]
            for l in range(n):
                fan_x, fan_y = arch.fanout(l)
                if sy[l][d] == 1 and math.prod(sx[l]) * prime <= fan_x:
                    slots.append(("x", l))
                if sx[l][d] == 1 and math.prod(sy[l]) * prime <= fan_y:
                    slots.append(("y", l))
            if prefer_spatial and len(slots) > n:
                slots = slots[n:]
            kind, l = draw(st.sampled_from(slots))
            {"t": temporal, "x": sx, "y": sy}[kind][l][d] *= prime
    levels = []
    for l in range(n):
        keep = frozenset(TENSORS) if l == 0 else draw(st.frozensets(st.sampled_from(TENSORS)))
        x_dims = [d for d in DIMS if sx[l][d] > 1]
        y_dims = [d for d in DIMS if sy[l][d] > 1]
        rest = [d for d in DIMS if d not in x_dims and d not in y_dims]
        order = tuple(draw(st.permutations(x_dims))) + tuple(draw(st.permutations(y_dims))) + tuple(rest)
        levels.append(LevelMapping(target=arch.levels[l].name, temporal=tuple(temporal[l]),
                                   permutation=tuple(draw(st.permutations(DIMS))), spatial_x=tuple(sx[l]),
                                   spatial_y=tuple(sy[l]), keep=keep, spatial_order=order))
    return Mapping(levels=tuple(levels))


@st.composite
def problems(draw) -> tuple[Layer, Architecture, Mapping]:
    layer = draw(layers().filter(lambda lay: lay.macs <= MAX_PROPERTY_MACS))
    arch = draw(architectures())
    return layer, arch, draw(mappings(layer, arch))


def _assert_model_agrees(layer: Layer, arch: Architecture, mapping: Mapping) -> None:
    """Counts of every tensor where no link transfer is possible (``link_candidates == 0``) must be
    identical; energy and cycles too when that holds for all tensors. Link transfers are the one
    Timeloop effect the simulator leaves out (see :mod:`formulation.model.simulate`)."""
    validate_mapping(layer, arch, mapping)  # the strategies only build legal mappings
    sim = simulate(layer, arch, mapping)
    ev = evaluate(layer, arch, mapping)
    linkless = [t for t in TENSORS if sim.link_candidates[t] == 0]
    event(f"tensors without link candidates: {len(linkless)}")
    for name in ("reads", "fills", "updates"):
        np.testing.assert_array_equal(getattr(ev, name)[0][:, linkless], getattr(sim, name)[:, linkless],
                                      err_msg=name)
    np.testing.assert_array_equal(ev.utilized_instances[0], sim.utilized_instances)
    kept_o = np.array([Tensor.O in lm.keep for lm in mapping.levels])
    np.testing.assert_array_equal(ev.partition_size[0, :, Tensor.O] * kept_o, sim.output_partition)
    assert int(ev.compute_cycles[0]) == sim.compute_cycles
    if len(linkless) == len(TENSORS):
        np.testing.assert_array_equal(ev.level_cycles[0], sim.level_cycles)
        assert int(ev.cycles[0]) == sim.cycles
        np.testing.assert_allclose(ev.energy_pJ_by_tensor[0], sim.energy_pJ_by_tensor, rtol=1e-9, atol=1e-9)
        assert float(ev.energy_pJ[0]) == pytest.approx(sim.energy_pJ, rel=1e-9, abs=1e-9)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problems())
def test_model_agrees_with_simulator(problem):
    _assert_model_agrees(*problem)


@st.composite
def sliding_window_problems(draw) -> tuple[Layer, Architecture, Mapping]:
    """3x3 windows on a 2-level mesh with P and R (or Q and S) free to go spatial together."""
    stride = draw(st.integers(1, 2))
    layer = Layer(name="window", N=1, C=draw(st.integers(1, 2)), K=draw(st.integers(1, 2)), P=draw(st.integers(2, 4)),
                  Q=draw(st.integers(1, 4)), R=3, S=draw(st.sampled_from([1, 3])), Wstride=stride,
                  Hstride=draw(st.integers(1, 2)), Wdilation=draw(st.sampled_from([1, 2])))
    arch = draw(architectures(min_macs=4))
    return layer, arch, draw(mappings(layer, arch, prefer_spatial=draw(st.booleans())))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sliding_window_problems())
def test_model_agrees_with_simulator_on_sliding_windows(problem):
    _assert_model_agrees(*problem)
