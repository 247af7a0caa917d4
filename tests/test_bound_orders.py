"""The loop-order cycle floor (formulation/bound/orders.py) against brute force.

Tiny layers on tiny three-level architectures whose DRAM bandwidth is one or two words per cycle
(so DRAM's reads decide the cycles) and whose buffers hold less than the tensors: every legal
mapping (:func:`test_search.enumerate_mappings`) takes at least the floor's cycles, and the floor
is above the bound's other cycle floors on several of them. The input halo term is checked
against the DRAM input reads of every mapping whose DRAM loops are over ``N P Q`` only and whose
buffer keeps the inputs.
"""

from __future__ import annotations

import numpy as np
import pytest

from formulation.axes import Dim, Tensor
from formulation.bound import orders
from formulation.bound.layer_terms import HardwareBox, compulsory_words, layer_terms
from formulation.model.exact import evaluate, evaluate_batch
from formulation.specs.catalog import load_network, load_template
from formulation.specs.loading import mapping_from_list
from formulation.specs.template import ArchTemplate, Hardware
from formulation.specs.types import Architecture, Layer, Mac, StorageLevel, Technology
from test_search import _evaluate_all, enumerate_mappings

ALL = frozenset(Tensor)


def narrow_arch(gb: int, rf: int, dram_bw: float = 1, gb_bw: float = 2, pes: tuple[int, int] = (2, 2),
                gb_keeps=ALL, rf_keeps=ALL) -> Architecture:
    """DRAM (``dram_bw`` words per cycle) -> a ``gb``-word buffer -> ``pes`` PEs with ``rf``-word register files."""
    n = pes[0] * pes[1]
    dram = StorageLevel("DRAM", Technology.DRAM, None, 8, 4, 1, 1, 200.0, 200.0, 200.0, 200.0, dram_bw, dram_bw)
    glb = StorageLevel("GlobalBuffer", Technology.SRAM, gb, 8, 4, 1, 1, 6.0, 7.0, 7.0, 7.0, gb_bw, gb_bw,
                       keeps=gb_keeps)
    reg = StorageLevel("RegisterFile", Technology.SRAM, rf, 8, 1, n, pes[0], 0.5, 0.6, 0.6, 0.6, keeps=rf_keeps)
    return Architecture("narrow", (dram, glb, reg), Mac(n, pes[0], 1.0))


LAYERS = (
    Layer("C4K4P4", N=1, C=4, K=4, P=4, Q=1),
    Layer("C2K4P4R3", N=1, C=2, K=4, P=4, Q=1, R=3),
    Layer("C2K2P4Q2R2", N=1, C=2, K=2, P=4, Q=2, R=2),
    Layer("N2C2K4P2Q2", N=2, C=2, K=4, P=2, Q=2),
    Layer("C4K2P3R3s2", N=1, C=4, K=2, P=3, Q=1, R=3, Wstride=2),
    Layer("C8K8P2", N=1, C=8, K=8, P=2, Q=1),
    Layer("C4K8P4", N=1, C=4, K=8, P=4, Q=1),
)
W, I, O = Tensor.W, Tensor.I, Tensor.O
VARIANTS = (
    dict(gb=4, rf=2), dict(gb=6, rf=1), dict(gb=2, rf=1), dict(gb=8, rf=3),
    dict(gb=5, rf=2, gb_bw=8, pes=(1, 2)), dict(gb=12, rf=4, pes=(4, 1)),
    dict(gb=4, rf=3, gb_keeps=frozenset({W, I})), dict(gb=8, rf=2, rf_keeps=frozenset({W, O})),
    dict(gb=6, rf=3, rf_keeps=frozenset({I, O})),
)


def _old_floor(layer: Layer, arch: Architecture, monkeypatch) -> float:
    """The bound's cycle floor at this point without the order term."""
    mx = arch.levels[2].mesh_x
    my = arch.levels[2].instances // mx
    sizes = (("GlobalBuffer", arch.levels[1].size_words, arch.levels[1].size_words),
             ("RegisterFile", arch.levels[2].size_words, arch.levels[2].size_words))
    template = ArchTemplate("narrow", arch, (mx, mx), (my, my), sizes)
    with monkeypatch.context() as m:
        m.setattr(orders, "applies", lambda *_: False)
        return layer_terms(layer, template, HardwareBox((mx, mx), (my, my), sizes)).cycles_floor


@pytest.mark.parametrize("layer", LAYERS, ids=lambda l: l.name)
def test_no_mapping_is_faster_than_the_order_floor(layer, monkeypatch):
    raised = 0
    for variant in VARIANTS:
        for bw in (1, 2):
            arch = narrow_arch(dram_bw=bw, **variant)
            _, cycles = _evaluate_all(layer, arch, enumerate_mappings(layer, arch))
            mx = arch.levels[2].mesh_x
            floor = orders.order_floor(layer, arch, (mx, arch.levels[2].instances // mx))
            assert floor <= cycles.min() * (1 + 1e-12), (variant, bw, floor, cycles.min())
            raised += floor > _old_floor(layer, arch, monkeypatch) * (1 + 1e-9)
    if layer.name in ("C4K8P4", "C2K2P4Q2R2", "C8K8P2"):
        assert raised >= 2, raised  # the term is what decides the floor on some of these points


HALO_CASES = (
    (Layer("H1", N=1, C=1, K=1, P=4, Q=4, R=3, S=3), 12),
    (Layer("H2", N=2, C=1, K=1, P=4, Q=2, R=2, S=3), 7),
    (Layer("H3", N=1, C=2, K=1, P=4, Q=4, R=3, S=2), 14),
)


@pytest.mark.parametrize("layer,gb", HALO_CASES, ids=lambda c: getattr(c, "name", str(c)))
def test_halo_reads_bound_every_mapping_with_x_loops_at_dram_and_inputs_in_the_buffer(layer, gb):
    arch = narrow_arch(gb, 64, pes=(1, 1))
    space = enumerate_mappings(layer, arch)
    t = space.temporal
    x_only = (t[:, 0, [Dim.K, Dim.C, Dim.R, Dim.S]] == 1).all(axis=1) & (t[:, 0, [Dim.N, Dim.P, Dim.Q]].prod(axis=1) >= 2)
    chosen = np.flatnonzero(x_only & space.keep[:, 1, Tensor.I].astype(bool))
    ev = evaluate_batch(layer, arch, space.take(chosen))
    reads = ev.reads[:, 0, Tensor.I][ev.fits]
    assert len(reads) > 0
    extra = orders.halo_reads(layer, gb)
    assert extra > 0
    assert compulsory_words(layer)[Tensor.I] + extra <= reads.min()


def test_the_overlap_fraction_is_the_halo_over_the_plane():
    """For a 3x3 window with stride 1 over a 56-wide plane, two tiles share at most the 2-column halo of 58 columns."""
    layer = Layer("l", N=1, C=4, K=4, P=56, Q=56, R=3, S=3)
    assert orders.overlap_fraction(layer) == pytest.approx(2 / 58)
    assert orders.overlap_fraction(Layer("pointwise", N=1, C=4, K=4, P=8, Q=8)) == 0.0


def test_the_floor_rises_at_the_small_buffer_corner_and_stays_below_the_hand_mappings():
    """ResNet-18's stage-1 3x3 layer at 64x64 PEs, 4 Ki words and 16-word files: one tensor is read
    twice, so the floor exceeds the compulsory DRAM reads over DRAM's bandwidth, and the hand
    mapping of tests/test_bound_corner.py (37,632 cycles) stays above it."""
    template = load_template("simple")
    layer = next(e.layer for e in load_network("resnet18").layers if e.layer.name == "layer1_3x3")
    arch = template.instantiate(Hardware(64, 64, (("GlobalBuffer", 4096), ("RegisterFile", 16))))
    words = compulsory_words(layer)
    compulsory = (words[Tensor.W] + words[Tensor.I]) / arch.levels[0].read_bw_words
    floor = orders.order_floor(layer, arch, (64, 64))
    assert compulsory * 1.1 < floor <= 37_632


def test_other_templates_and_grouped_layers_get_no_term():
    eyeriss = load_template("eyeriss-like")
    assert not orders.applies(eyeriss.base, eyeriss.array_levels)
    arch = narrow_arch(4, 2)
    assert orders.order_floor(Layer("dw", N=1, C=4, K=4, G=4, P=4, Q=1, R=3), arch, (2, 2)) == 0.0


RESIDENT = [{"target": "DRAM", "temporal": {"Q": 56}, "permutation": "Q"},
            {"target": "GlobalBuffer", "temporal": {"P": 56}, "permutation": "P", "spatial": {"K": 64, "C": 64},
             "spatial_permutation": "KC", "split": 1, "keep": ["Inputs"]},
            {"target": "RegisterFile", "temporal": {"R": 3, "S": 3}, "permutation": "RS",
             "keep": ["Weights", "Inputs", "Outputs"]}]


def test_a_resident_filter_mapping_meets_the_floor_where_the_buffer_holds_three_input_rows():
    """At 64x64 PEs, an 11,584-word buffer and 19-word files, K64 x C64 PEs each keeping its 3x3
    filter, a 3x3 input window and one output, with the buffer holding three rows of every input
    channel, read every weight and input from DRAM once: the floor there may not exceed it, and is
    the compulsory reads' time (the weights' case of the order term has nothing more to charge)."""
    template = load_template("simple")
    layer = next(e.layer for e in load_network("resnet18").layers if e.layer.name == "layer1_3x3")
    arch = template.instantiate(Hardware(64, 64, (("GlobalBuffer", 11_584), ("RegisterFile", 19))))
    result = evaluate(layer, arch, mapping_from_list(RESIDENT, arch))
    assert bool(result.fits[0])
    words = compulsory_words(layer)
    assert int(result.reads[0][0][Tensor.W]) == words[Tensor.W] and int(result.reads[0][0][Tensor.I]) == words[Tensor.I]
    floor = orders.order_floor(layer, arch, (64, 64))
    assert floor <= float(result.cycles[0])
    assert floor == pytest.approx((words[Tensor.W] + words[Tensor.I]) / arch.levels[0].read_bw_words)
