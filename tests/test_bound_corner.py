"""The lower bound at ResNet-18's small-buffer corner against hand mappings there.

The network bound of the ResNet-18 EDP benchmark is decided at 64x64 PEs with a GlobalBuffer of
4 Ki words and register files of 16 words (benchmarks/README.md, "The small-buffer corner"). A
term that raises it must stay below every legal mapping there; these hand mappings of the 3x3
layers of stages 1 to 3 (spatial K16 S3 on mesh X and C64 on mesh Y, every PE keeping a 4x3 block
of weights and a 3-word input window, outputs reduced into the buffer) are faster and cheaper
there than the exact mapper's answers in 15-20 s, so each must lie on or above its layer's
energy-cycles front at that hardware point. The
first one is also stored with timeloop-model v3.0.3's answer (``tests/data/corner_layer1_3x3.json``,
provenance in ``tests/data/PROVENANCE.md``), which the exact model must reproduce.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from formulation.bound.layer_terms import HardwareBox, layer_terms
from formulation.model.exact import evaluate
from formulation.specs.catalog import load_network, load_template
from formulation.specs.loading import mapping_from_list
from formulation.specs.template import Hardware

POINT = Hardware(64, 64, (("GlobalBuffer", 4096), ("RegisterFile", 16)))


def _hand(dram: dict, dram_order: str, buffer_p: int) -> list:
    return [{"target": "DRAM", "temporal": dram, "permutation": dram_order},
            {"target": "GlobalBuffer", "temporal": {"P": buffer_p}, "permutation": "P",
             "spatial": {"K": 16, "S": 3, "C": 64}, "spatial_permutation": "KSC", "split": 2,
             "keep": ["Inputs", "Outputs"]},
            {"target": "RegisterFile", "temporal": {"K": 4, "R": 3}, "permutation": "RK",
             "keep": ["Weights", "Inputs"]}]


HAND = {"layer1_3x3": _hand({"P": 4, "Q": 56}, "QP", 14),
        "layer2_3x3": _hand({"C": 2, "K": 2, "P": 4, "Q": 28}, "QPKC", 7),
        "layer3_3x3": _hand({"C": 4, "K": 4, "P": 2, "Q": 14}, "QPKC", 7)}


@pytest.mark.parametrize("name", sorted(HAND))
def test_hand_mappings_at_the_corner_lie_above_the_front(name):
    template = load_template("simple")
    layer = next(e.layer for e in load_network("resnet18").layers if e.layer.name == name)
    arch = template.instantiate(POINT)
    result = evaluate(layer, arch, mapping_from_list(HAND[name], arch))
    assert bool(result.fits[0])
    cycles, energy = float(result.cycles[0]), float(result.energy_pJ[0])
    box = HardwareBox((64, 64), (64, 64), tuple((n, v, v) for n, v in POINT.sizes_words))
    terms = layer_terms(layer, template, box)
    assert terms.cycles_floor <= cycles
    allowed = min((e for c, e in terms.front if c <= cycles * (1 + 1e-12)), default=math.inf)
    assert allowed <= energy * (1 + 1e-12), (name, cycles, energy, allowed)


def test_the_first_hand_mapping_is_timeloops():
    """The stored Timeloop run is the same mapping on the same hardware, and the exact model agrees with it."""
    doc = json.loads((Path(__file__).parent / "data" / "corner_layer1_3x3.json").read_text())
    arch = load_template("simple").instantiate(POINT)
    stored = [{k: v for k, v in level.items() if k != "bypass"} for level in doc["input"]["mapping"]]
    ours = [{k: v for k, v in level.items() if k != "keep"} for level in HAND["layer1_3x3"]]
    assert stored == ours
    for level, hand in zip(doc["input"]["mapping"], HAND["layer1_3x3"]):
        kept = set(hand.get("keep", ("Weights", "Inputs", "Outputs")))
        assert set(level.get("bypass", ())) == {"Weights", "Inputs", "Outputs"} - kept
    assert [lv["name"] for lv in doc["input"]["arch"]["levels"]] == [lv.name for lv in arch.levels]
    assert [lv.get("size") for lv in doc["input"]["arch"]["levels"]] == [lv.size_words for lv in arch.levels]
    layer = next(e.layer for e in load_network("resnet18").layers if e.layer.name == "layer1_3x3")
    result = evaluate(layer, arch, mapping_from_list(HAND["layer1_3x3"], arch))
    assert float(result.cycles[0]) == doc["timeloop"]["cycles"]
    assert float(result.energy_pJ[0]) == pytest.approx(doc["timeloop"]["energy_pJ"], rel=1e-9)
