"""benchmarks external: timeloop-mapper's stored output read back and re-scored, its inputs, the ratio table.

Nothing here runs Timeloop: the mapper outputs under tests/data/timeloop_mapper/ were written by
timeloop-mapper v3.0.3 once (tests/data/PROVENANCE.md).
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pytest

from benchmarks import mapper as mapper_benchmark
from benchmarks.external import rescore, spatial_utilization
from benchmarks.external_table import format_table, latest_run, ratio_rows, tool_values
from benchmarks.timeloop_mapper import (constraints_document, max_spatial_utilization, parse_stats,
                                        read_mapper_output)
from formulation.axes import Dim, Tensor
from formulation.specs.catalog import load_arch, load_network
from formulation.specs.loading import mapping_from_list
from formulation.specs.types import Layer, SpecError
from search.results import mapping_list
from search.sampling import sample_mappings

DATA = Path(__file__).parent / "data"
MAPPER_OUT = DATA / "timeloop_mapper"
EXTERNAL = DATA / "external"
OUTPUTS = [("simple-layer1_3x3-guided", "simple", "layer1_3x3"), ("eyeriss-like-fc-guided", "eyeriss-like", "fc")]


def _layer(name: str) -> Layer:
    return next(e.layer for e in load_network("resnet18").layers if e.layer.name == name)


@pytest.mark.parametrize("directory, arch_name, layer_name", OUTPUTS, ids=[o[0] for o in OUTPUTS])
def test_stored_mapper_output_rescores_to_timeloops_numbers(directory, arch_name, layer_name):
    arch, layer = load_arch(arch_name), _layer(layer_name)
    out = read_mapper_output(MAPPER_OUT / directory, layer, arch)
    ours = rescore(layer, arch, out.mapping)
    assert ours["fits"]
    assert ours["cycles"] == out.cycles
    assert abs(ours["energy_pJ"] - out.energy_pJ) <= 0.005 * out.energy_lines
    # guided: the spatial factors fill as much of the array as the layer allows
    assert spatial_utilization(arch, out.mapping) == pytest.approx(max_spatial_utilization(layer, arch))


def test_stored_mapping_keeps_timeloops_loops_and_bypasses():
    arch, layer = load_arch("eyeriss-like"), _layer("fc")
    out = read_mapper_output(MAPPER_OUT / "eyeriss-like-fc-guided", layer, arch)
    glb = out.mapping.levels[1]
    # timeloop-mapper.map.yaml: shared_glb spatial "C8 M10 ..." permutation CMRSNPQ split 1 -> C on X, K (M) on Y
    assert (glb.spatial_x[Dim.C], glb.spatial_y[Dim.K]) == (8, 10)
    assert math.prod(glb.spatial_x) == 8 and math.prod(glb.spatial_y) == 10
    assert glb.keep == frozenset({Tensor.I, Tensor.O})
    assert [lv.keep for lv in out.mapping.levels[2:]] == [frozenset({Tensor.O}), frozenset({Tensor.W}),
                                                          frozenset({Tensor.I})]
    # the project's mapping format round trip: the stored mapping is the mapping
    assert mapping_from_list(mapping_list(arch, out.mapping), arch) == out.mapping


def test_parse_stats_sums_every_total_energy_line():
    text = (MAPPER_OUT / "simple-layer1_3x3-guided" / "timeloop-mapper.stats.txt").read_text()
    energy, lines, cycles, util = parse_stats(text)
    summary_uJ = float(text.split("Summary Stats")[1].split("Energy:")[1].split("uJ")[0])
    assert energy / 1e6 == pytest.approx(summary_uJ, abs=0.005)
    assert lines > 10 and util == 1.0 and cycles > 0
    with pytest.raises(SpecError, match="stats"):
        parse_stats("Summary Stats\nUtilization: 0.5\n")


def test_missing_output_is_one_line_error(tmp_path):
    with pytest.raises(SpecError, match="no valid mapping"):
        read_mapper_output(tmp_path, _layer("fc"), load_arch("simple"))


def test_max_spatial_utilization_known_values():
    simple, eyeriss = load_arch("simple"), load_arch("eyeriss-like")
    layers = {e.layer.name: e.layer for e in load_network("resnet18").layers}
    # simple 16x16: every conv fills the array (e.g. K 16 x C 16); fc: C 16 x K 10 (1000 has no 16 below 16)
    assert {n: max_spatial_utilization(lay, simple) for n, lay in layers.items()} == {
        n: (160 / 256 if n == "fc" else 1.0) for n in layers}
    assert max_spatial_utilization(layers["layer4_downsample"], eyeriss) == pytest.approx(112 / 168)


def test_no_sampled_mapping_beats_max_spatial_utilization():
    """The enumeration's maximum is an upper bound: no legal mapping (random samples) uses more of the array."""
    rng = np.random.default_rng(0)
    for arch_name in ("simple", "eyeriss-like"):
        arch = load_arch(arch_name)
        for entry in load_network("resnet18").layers:
            if entry.layer.name not in ("conv1", "layer2_3x3", "layer4_downsample", "fc"):
                continue
            top = max_spatial_utilization(entry.layer, arch)
            arrays = sample_mappings(entry.layer, arch, 2000, rng)
            fanouts = math.prod(fx * fy for fx, fy in map(arch.fanout, range(len(arch.levels))))
            used = arrays.spatial.reshape(arrays.size, -1).prod(axis=1) / fanouts
            assert used.max() <= top + 1e-12


def test_guided_constraints_floor_and_architecture_bypasses():
    eyeriss = load_arch("eyeriss-like")
    free = constraints_document(_layer("fc"), eyeriss, "free")["mapspace_constraints"]
    guided = constraints_document(_layer("fc"), eyeriss, "guided")["mapspace_constraints"]
    assert [c["target"] for c in free] == ["shared_glb", "psum_spad", "weights_spad", "ifmap_spad"]
    assert free[0]["bypass"] == ["Weights"]
    floor = guided[-1]
    assert floor["type"] == "utilization" and floor["target"] == "ifmap_spad"
    assert floor["min"] == pytest.approx(80 / 168)
    assert constraints_document(_layer("conv1"), load_arch("simple"), "free") == {"mapspace_constraints": []}
    with pytest.raises(SpecError, match="mode"):
        constraints_document(_layer("fc"), eyeriss, "greedy")


def test_ratio_rows_external_over_mapper():
    mapper = latest_run(EXTERNAL / "mapper.json", "resnet18", "simple")
    external = latest_run(EXTERNAL / "external.json", "resnet18", "simple")
    assert mapper["date"] == "2026-11-30T13:17:32+00:00"       # the later of the two stored runs
    rows = {r["layer"]: r for r in ratio_rows(mapper, external)}
    assert list(rows) == ["conv1", "layer1_3x3", "fc"]
    best = {r["layer"]: r["certificate"]["best"] for r in mapper["layers"]}
    l1 = next(r for r in external["layers"] if r["layer"] == "layer1_3x3")["timeloop_mapper"]
    assert rows["layer1_3x3"]["ratios"]["timeloop-mapper guided"] == l1["guided"]["edp"] / best["layer1_3x3"]
    assert rows["layer1_3x3"]["ratios"]["timeloop-mapper free"] > 1
    assert rows["conv1"]["ratios"] == {"timeloop-mapper free": None, "timeloop-mapper guided": None}
    assert rows["fc"]["ratios"]["timeloop-mapper guided"] is None             # the failed run
    assert set(tool_values(external)) == {"timeloop-mapper free", "timeloop-mapper guided"}
    table = format_table(list(rows.values())).splitlines()
    assert table[0].endswith("| timeloop-mapper free / mapper | timeloop-mapper guided / mapper |")
    assert table[3].startswith("| layer1_3x3 |") and f"{rows['layer1_3x3']['ratios']['timeloop-mapper free']:.3f}" in table[3]
    assert latest_run(EXTERNAL / "mapper.json", "resnet18", "eyeriss-like") is None


def test_mapper_report_prints_the_table_without_running(capsys):
    status = mapper_benchmark.main(["--report", "--output", str(EXTERNAL / "mapper.json"),
                                    "--external", str(EXTERNAL / "external.json")])
    out = capsys.readouterr().out
    assert status == 0
    row = next(line for line in out.splitlines() if line.startswith("| fc |"))
    ratio = 2186.557621248 / json.loads((EXTERNAL / "mapper.json").read_text())[-1]["layers"][2]["certificate"]["best"]
    assert f"{ratio:.3f}" in row and row.rstrip().endswith("| - |")
    assert mapper_benchmark.main(["--report", "--arch", "eyeriss-like", "--output", str(EXTERNAL / "mapper.json"),
                                  "--external", str(EXTERNAL / "external.json")]) == 2
    assert "no edp run for resnet18 on eyeriss-like" in capsys.readouterr().err
    assert math.isfinite(ratio)


def test_later_runs_replace_earlier_values_per_tool_and_layer():
    stored = json.loads((EXTERNAL / "external.json").read_text())[0]
    accel_only = {"network": "resnet18", "arch": "simple", "layers": [],
                  "accelforge": {"layers": [{"layer": "fc", "edp": None}, {"layer": "layer1_3x3", "edp": 2.0e5}]}}
    rerun = {"layers": [{"layer": "fc", "timeloop_mapper": {"free": {"ok": True, "edp": 2000.0}}}],
             "accelforge": {"axes": "X=K,Y=C", "layers": [{"layer": "fc", "edp": 2100.0}]}}
    values = tool_values([stored, accel_only, rerun])
    assert values["accelforge X=K,Y=C"] == {"fc": 2100.0}
    assert values["timeloop-mapper free"] == {"layer1_3x3": 469044.2692067328, "fc": 2000.0}
    assert values["timeloop-mapper guided"]["layer1_3x3"] == 197576.88139284478    # kept from the first run
    assert values["accelforge"] == {"fc": None, "layer1_3x3": 2.0e5}
    mapper = latest_run(EXTERNAL / "mapper.json", "resnet18", "simple")
    rows = {r["layer"]: r["ratios"] for r in ratio_rows(mapper, [stored, accel_only, rerun])}
    assert rows["fc"]["accelforge"] is None and rows["fc"]["timeloop-mapper free"] == 2000.0 / 2180.9355696128005


def test_grouped_layer_output_rescores_per_group():
    """Depthwise: Timeloop maps one group (C/G, K/G); the model's one-group numbers equal Timeloop's."""
    arch = load_arch("simple")
    layer = next(e.layer for e in load_network("mobilenetv2").layers if e.layer.name == "dw96_s2_56")
    assert layer.G == 96
    out = read_mapper_output(MAPPER_OUT / "simple-mobilenetv2-dw96_s2_56-guided", layer, arch)
    one = rescore(dataclasses.replace(layer, C=1, K=1, G=1), arch, out.mapping)
    assert one["cycles"] == out.cycles and abs(one["energy_pJ"] - out.energy_pJ) <= 0.005 * out.energy_lines
    whole = rescore(layer, arch, out.mapping)
    # the model runs the 96 groups one after another: close to, not exactly, 96 x one group
    assert whole["cycles"] == pytest.approx(96 * out.cycles, rel=0.01)
    assert whole["energy_pJ"] == pytest.approx(96 * out.energy_pJ, rel=0.01)


def test_timeloop_mapping_file_with_a_grouped_layer_of_ours():
    """read_timeloop(map.yaml, layer=grouped): the export's problem is one group, the mapping too."""
    from formulation.specs.timeloop_import import read_timeloop

    arch = load_arch("simple")
    layer = next(e.layer for e in load_network("mobilenetv2").layers if e.layer.name == "dw96_s2_56")
    spec = read_timeloop([MAPPER_OUT / "simple-mobilenetv2-dw96_s2_56-guided" / "timeloop-mapper.map.yaml"],
                         layer=layer, arch=arch)
    assert spec.mapping == read_mapper_output(MAPPER_OUT / "simple-mobilenetv2-dw96_s2_56-guided", layer, arch).mapping
