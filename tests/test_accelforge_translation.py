"""benchmarks.accelforge_run: accelforge spec writing and loop-tree translation (accelforge itself is never run here)."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import pytest
import yaml

from benchmarks.accelforge_run import (TENSOR_NAMES_AF, NotExpressible, arch_spec, mapping_from_loop_tree,
                                       parse_axes, restrict_axes, spec_text, workload_spec)
from benchmarks.external import rescore
from formulation.axes import DIMS, TENSORS, Tensor
from formulation.specs.catalog import builtin_mapping_path, load_arch, load_network
from formulation.specs.loading import mapping_from_list
from formulation.specs.types import SpecError

DATA = Path(__file__).parent / "data"


def _layer(name):
    return next(e.layer for e in load_network("resnet18").layers if e.layer.name == name)


def _loop_tree(layer, arch, mapping):
    """The accelforge loop tree of a Timeloop-style mapping: per level its storage node, then its loops."""
    tile = dict(zip(DIMS, layer.dims))
    nodes = []
    for i, lm in enumerate(mapping.levels):
        nodes.append({"type": "storage", "component": lm.target,
                      "tensors": [TENSOR_NAMES_AF[t] for t in TENSORS if t in lm.keep]})
        for d in reversed(lm.permutation):
            if lm.temporal[d] > 1:
                tile[d] //= lm.temporal[d]
                nodes.append({"type": "temporal", "rank": d.name.lower(), "tile_shape": tile[d]})
        for d in reversed(lm.spatial_order):
            for axis, f in (("X", lm.spatial_x[d]), ("Y", lm.spatial_y[d])):
                if f > 1:
                    tile[d] //= f
                    nodes.append({"type": "spatial", "rank": d.name.lower(), "tile_shape": tile[d], "axis": axis,
                                  "component": "PE"})
    return nodes + [{"type": "compute", "component": arch.mac.name}]


def test_loop_tree_of_a_timeloop_mapping_translates_back_exactly():
    arch, layer = load_arch("simple"), _layer("layer1_3x3")
    mapping = mapping_from_list(yaml.safe_load(builtin_mapping_path("resnet18_layer1_3x3_simple").read_text()), arch)
    back, notes = mapping_from_loop_tree(_loop_tree(layer, arch, mapping), layer, arch)
    assert notes == []
    for a, b in zip(back.levels, mapping.levels):
        assert (a.temporal, a.spatial_x, a.spatial_y, a.keep) == (b.temporal, b.spatial_x, b.spatial_y, b.keep)
        assert [d for d in a.permutation if a.temporal[d] > 1] == [d for d in b.permutation if b.temporal[d] > 1]
    assert rescore(layer, arch, back) == rescore(layer, arch, mapping)


def test_tensor_placed_below_a_level_loop_is_flagged_approximate():
    arch, layer = load_arch("simple"), _layer("layer1_3x3")
    mapping = mapping_from_list(yaml.safe_load(builtin_mapping_path("resnet18_layer1_3x3_simple").read_text()), arch)
    nodes = _loop_tree(layer, arch, mapping)
    rf = next(i for i, n in enumerate(nodes) if n.get("component") == "RegisterFile" and n["type"] == "storage")
    w_node = {"type": "storage", "component": "RegisterFile", "tensors": ["Wt"]}
    nodes[rf]["tensors"] = ["I", "O"]
    nodes.insert(rf + 2, w_node)                      # Weights held below the RegisterFile's first loop
    back, notes = mapping_from_loop_tree(nodes, layer, arch)
    assert len(notes) == 1 and "Wt placed below 1 loop(s) of RegisterFile" in notes[0]
    assert back.levels[2].keep == mapping.levels[2].keep


def test_dimension_on_both_axes_is_not_expressible():
    """accelforge's fc mapping on simple (C split 16 x 16 over both mesh axes), tests/data/accelforge/fc_simple.json."""
    found = json.loads((DATA / "accelforge" / "fc_simple.json").read_text())
    with pytest.raises(NotExpressible, match="C on both mesh axes"):
        mapping_from_loop_tree(found["mappings"][0]["nodes"], _layer("fc"), load_arch("simple"))
    bad = [{"type": "temporal", "rank": "k", "tile_shape": 3}]
    with pytest.raises(NotExpressible, match="no level holds data"):
        mapping_from_loop_tree(bad, _layer("fc"), load_arch("simple"))


def test_spec_of_a_strided_layer_and_the_simple_arch():
    wl = workload_spec(_layer("layer4_downsample"))        # 1x1, stride 2, 7x7 outputs, C 256, K 512
    assert wl["rank_sizes"] == {"K": 512, "C": 256, "P": 7, "Q": 7, "H": 13, "W": 13}
    assert wl["einsums"][0]["tensor_accesses"][0]["projection"] == {"C": "c", "H": "2*q", "W": "2*p"}
    nodes = arch_spec(load_arch("simple"))["nodes"]
    assert [n["name"] for n in nodes] == ["DRAM", "GlobalBuffer", "PE", "RegisterFile", "MACC"]
    assert nodes[0]["actions"][0] == {"name": "read", "energy": 512e-12, "bits_per_action": 64, "throughput": 1e9}
    assert nodes[2]["spatial"] == [{"name": "X", "fanout": 16}, {"name": "Y", "fanout": 16}]
    assert "- !Memory\n" in spec_text(_layer("fc"), load_arch("simple"))
    simple = load_arch("simple")
    two = dataclasses.replace(simple, levels=(simple.levels[0], dataclasses.replace(simple.levels[1], instances=4,
                                                                                    mesh_x=2), simple.levels[2]))
    assert two.fanout(0) == (2, 2) and two.fanout(1) == (8, 8)
    with pytest.raises(SpecError, match="one fanout"):
        arch_spec(two)


def test_axes_restriction_and_an_expressible_accelforge_mapping():
    """accelforge on fc with X forbidden k and Y forbidden c (tests/data/accelforge/fc_simple_axes.json)."""
    arch, fc = load_arch("simple"), _layer("fc")
    spatial = restrict_axes(arch_spec(arch), fc, parse_axes("X=C,Y=K"))["nodes"][2]["spatial"]
    assert spatial[0]["loop_bounds"] == [{"expression": "k", "operator": "==", "value": 1}]
    assert spatial[1]["loop_bounds"] == [{"expression": "c", "operator": "==", "value": 1}]
    with pytest.raises(SpecError, match="axes"):
        parse_axes("Z=K")
    found = json.loads((DATA / "accelforge" / "fc_simple_axes.json").read_text())
    mapping, notes = mapping_from_loop_tree(found["mappings"][0]["nodes"], fc, arch)
    assert notes == []
    got = rescore(fc, arch, mapping)
    assert got["fits"] and got["cycles"] == round(found["mappings"][0]["latency_s"] * 1e9)   # 64064 in both models
    assert math.prod(mapping.levels[1].spatial_x) == 16 and mapping.levels[2].keep == frozenset({Tensor.I})
