"""Timeloop import: tutorial-style spec sets against timeloop-model v3.0.3, export round trips, rejections."""

from __future__ import annotations

import dataclasses
import json
import textwrap
from pathlib import Path

import pytest
import yaml

from codesign.cli import main
from formulation.axes import TENSOR_NAMES, Dim, Tensor
from formulation.model.exact import evaluate
from formulation.model.report import compare_with_reference, evaluation_record
from formulation.specs.loading import read_cases
from formulation.specs.timeloop_export import export_timeloop
from formulation.specs.timeloop_import import read_timeloop
from formulation.specs.timeloop_import.problem import problem_from_timeloop
from formulation.specs.types import SpecError
from tests.conftest import CASES_FILE

DATA = Path(__file__).parent / "data"
SPEC_DIRS = sorted(p for p in (DATA / "timeloop_specs").iterdir() if p.is_dir())


def _evaluate_dir(spec_dir: Path):
    """The imported evaluation and Timeloop's reference, its data-spaces renamed to ours (A -> Inputs ...)."""
    spec = read_timeloop(sorted(spec_dir.glob("*.yaml")))
    record = evaluation_record(evaluate(spec.layer, spec.arch, spec.mapping), spec.arch)
    ref = json.loads((spec_dir / "reference.json").read_text())
    for level in ref["levels"].values():
        level["tensors"] = {TENSOR_NAMES[spec.problem.tensor(name)]: t for name, t in level["tensors"].items()}
    return spec, record, ref


def test_there_are_eleven_spec_sets():
    assert [p.name for p in SPEC_DIRS] == ["conv1d-1level", "conv1d-2level-os", "conv1d-2level-ws",
                                           "conv2d-3level-bypass", "conv2d-3level-spatial", "depthwise-3level",
                                           "eyeriss-like-rs", "eyeriss-like-rs-dummy", "gemm-2level-bypass",
                                           "two-fanouts-p-r", "two-fanouts-qm-s"]


def test_depthwise_and_gemm_shapes_map_by_role():
    dw = read_timeloop(sorted((DATA / "timeloop_specs" / "depthwise-3level").glob("*.yaml")))
    assert (dw.layer.G, dw.layer.C, dw.layer.K, dw.layer.Wstride) == (8, 8, 8, 2)
    gemm = read_timeloop(sorted((DATA / "timeloop_specs" / "gemm-2level-bypass").glob("*.yaml")))
    assert (gemm.layer.P, gemm.layer.K, gemm.layer.C) == (8, 6, 12)
    assert gemm.mapping.levels[1].keep == frozenset({Tensor.I, Tensor.O})    # B (weights) bypasses the buffer


@pytest.mark.parametrize("spec_dir", SPEC_DIRS, ids=[p.name for p in SPEC_DIRS])
def test_imported_spec_gives_timeloops_numbers(spec_dir):
    spec, record, ref = _evaluate_dir(spec_dir)
    assert compare_with_reference(record, ref, energy_rtol=1e-9, cycles_rtol=0) == []
    assert record["cycles"] == ref["cycles"]
    assert record["macs"] == ref["macs"]
    assert record["energy_pJ"] == pytest.approx(ref["energy_pJ"], rel=1e-12)
    outermost = spec.arch.levels[0].name
    for level, ref_level in ref["levels"].items():
        for tensor, ref_t in ref_level["tensors"].items():
            got = record["levels"][level]["tensors"][tensor]
            # a grouped layer's record holds one group's tiles; Timeloop's outermost level holds all G groups
            groups = spec.layer.G if level == outermost else 1
            assert got["utilized_capacity"] * groups == ref_t["utilized_capacity"], (level, tensor)
            assert got["utilized_instances"] == ref_t["utilized_instances"], (level, tensor)


def test_output_and_weight_stationary_differ_in_buffer_traffic():
    _, os_record, _ = _evaluate_dir(DATA / "timeloop_specs" / "conv1d-2level-os")
    _, ws_record, _ = _evaluate_dir(DATA / "timeloop_specs" / "conv1d-2level-ws")
    os_buf, ws_buf = os_record["levels"]["Buffer"]["tensors"], ws_record["levels"]["Buffer"]["tensors"]
    # output stationary: one output in the buffer, the 24 weights fetched again for each of 32 positions
    assert os_buf["Outputs"]["utilized_capacity"] == 1 and os_buf["Weights"]["fills"] == 24 * 32
    # weight stationary: one weight in the buffer, each fetched once
    assert ws_buf["Weights"]["utilized_capacity"] == 1 and ws_buf["Weights"]["fills"] == 24


def test_conv1d_maps_onto_p_and_r():
    spec = read_timeloop(sorted((DATA / "timeloop_specs" / "conv1d-1level").glob("*.yaml")))
    layer = spec.layer
    assert (layer.N, layer.C, layer.K, layer.P, layer.Q, layer.R, layer.S) == (1, 1, 1, 16, 1, 3, 1)
    assert dict(spec.problem.dims) == {"R": Dim.R, "P": Dim.P}
    # one level, one PE; the ERT's larger read energy (0.42 of 0.21/0.42) is charged, as Timeloop does
    assert spec.arch.levels[0].read_energy_pJ == 0.42
    assert spec.arch.levels[0].size_words == 64


def test_compound_component_and_ranges():
    spec = read_timeloop(sorted((DATA / "timeloop_specs" / "eyeriss-like-rs").glob("*.yaml")))
    names = [lv.name for lv in spec.arch.levels]
    assert names == ["DRAM", "shared_glb", "ifmap_spad", "weights_spad", "psum_spad"]
    assert [lv.instances for lv in spec.arch.levels] == [1, 1, 12, 12, 12]
    assert spec.arch.levels[1].read_energy_pJ == 27.4       # smartbuffer_SRAM priced by its ERT table
    assert spec.arch.levels[4].update_energy_pJ == 0.95     # 'update' is not a Timeloop action: write
    assert spec.arch.mac.instances == 12 and spec.arch.mac.mesh_x == 4


def test_two_fanouts_do_not_share_overlapping_windows():
    """Eyeriss with dummy buffers: Q spread at the global buffer, S at the dummy buffers (which keep
    nothing). PE (q, s) needs input row q + s; rows shared along diagonals are not multicast across
    the two fanouts, so each of the 12 PEs gets its rows on its own: the global buffer reads every
    ifmap-scratchpad fill (960), not the 480 distinct-row reads one combined fanout would need."""
    _, record, ref = _evaluate_dir(DATA / "timeloop_specs" / "eyeriss-like-rs-dummy")
    glb, spad = record["levels"]["shared_glb"]["tensors"], record["levels"]["ifmap_spad"]["tensors"]
    assert glb["Inputs"]["reads"] == spad["Inputs"]["fills"] == ref["levels"]["shared_glb"]["tensors"]["Inputs"]["reads"] == 960
    _, same_level, _ = _evaluate_dir(DATA / "timeloop_specs" / "eyeriss-like-rs")   # Q and S at one fanout
    assert same_level["levels"]["shared_glb"]["tensors"]["Inputs"]["reads"] == 480


def _pick_round_trip_cases():
    cases = read_cases(CASES_FILE)
    picked, archs = [], set()
    for c in cases:
        bypass = any(lm.keep != frozenset(Tensor) for lm in c.mapping.levels)
        if c.arch.name not in archs or (bypass and len(picked) < 6):
            picked.append(c)
            archs.add(c.arch.name)
    return picked[:8]


@pytest.mark.parametrize("case", _pick_round_trip_cases(), ids=lambda c: c.id)
def test_export_then_import_gives_the_same_case(case, tmp_path):
    export_timeloop(case.layer, case.arch, case.mapping, tmp_path)
    spec = read_timeloop(sorted(tmp_path.glob("*.yaml")))
    assert spec.mapping == case.mapping
    assert dataclasses.replace(spec.layer, name=case.layer.name) == dataclasses.replace(case.layer, G=1) \
        or case.layer.G > 1
    for mine, theirs in zip(spec.arch.levels, case.arch.levels):
        assert dataclasses.replace(mine, keeps=theirs.keeps) == theirs
    assert spec.arch.mac == case.arch.mac
    ours = evaluation_record(evaluate(spec.layer, spec.arch, spec.mapping), spec.arch)
    assert compare_with_reference(ours, case.reference) == []


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


GEMM = """
problem:
  shape:
    name: gemm-ABZ
    dimensions: [ M, N, K ]
    data-spaces:
      - {name: A, projection: [ [[M]], [[K]] ]}
      - {name: B, projection: [ [[N]], [[K]] ]}
      - {name: Z, projection: [ [[M]], [[N]] ], read-write: True}
  instance: {M: 5, N: 7, K: 11}
"""

DEPTHWISE = """
problem:
  shape:
    name: depthwise
    dimensions: [ C, R, S, N, P, Q ]
    data-spaces:
      - {name: Weights, projection: [ [[C]], [[R]], [[S]] ]}
      - {name: Inputs, projection: [ [[N]], [[C]], [[R], [P, 2]], [[S], [Q, 2]] ]}
      - {name: Outputs, projection: [ [[N]], [[C]], [[Q]], [[P]] ], read-write: True}
  instance: {C: 32, R: 3, S: 3, N: 1, P: 7, Q: 6}
"""


def test_gemm_maps_rows_to_p_columns_to_k_reduction_to_c():
    pm = problem_from_timeloop(yaml.safe_load(GEMM)["problem"])
    layer = pm.layer
    assert (layer.P, layer.K, layer.C, layer.N, layer.Q, layer.R, layer.S) == (5, 7, 11, 1, 1, 1, 1)
    assert dict(pm.tensors) == {"B": Tensor.W, "A": Tensor.I, "Z": Tensor.O}


def test_depthwise_maps_channels_to_groups_and_strides():
    layer = problem_from_timeloop(yaml.safe_load(DEPTHWISE)["problem"]).layer
    assert (layer.G, layer.C, layer.K, layer.dims[Dim.C], layer.dims[Dim.K]) == (32, 32, 32, 1, 1)
    assert (layer.Wstride, layer.Hstride, layer.P, layer.Q, layer.R, layer.S) == (2, 2, 7, 6, 3, 3)


def _spec_files(tmp_path: Path, base: str, replace: dict[str, str]) -> list[Path]:
    out = []
    for src in sorted((DATA / "timeloop_specs" / base).glob("*.yaml")):
        text = src.read_text()
        for old, new in replace.items():
            text = text.replace(old, new)
        out.append(_write(tmp_path, src.name, text))
    return out


@pytest.mark.parametrize("replace, needle", [
    ({"          - [ [P] ]\n        read-write": "          - [ [R] ]\n        read-write"}, "custom shape"),
    ({"class: regfile": "class: smartbuffer_RF", "name: PE.Buffer": "name: PE.Other"},
     "component Buffer: class = 'smartbuffer_RF': a compound component needs an ERT entry"),
    ({"block-size: 1\n            word-bits: 8": "block-size: 1\n            word-bits: 8\n            metadata_datawidth: 4"},
     "sparse"),
    ({"    P: 16\n": "    P: 16\n    densities: {Weights: 0.5}\n"}, "sparse"),
    ({"width: 8\n": "width: 16\n"}, "width = 16"),
    ({"factors: R=3 P=16": "factors: R=3 P=0"}, "0 is for the mapper"),
    ({"type: temporal": "type: sequential"}, "sequential"),
])
def test_what_does_not_map_is_one_line(tmp_path, replace, needle, capsys):
    files = _spec_files(tmp_path, "conv1d-1level", replace)
    assert main(["evaluate", "--timeloop", *map(str, files)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("codesign: error:") and needle in err and err.count("\n") == 1


def test_missing_energy_table_is_named(capsys):
    src = DATA / "timeloop_specs" / "eyeriss-like-rs"
    files = [src / "arch.yaml", src / "problem.yaml", src / "map.yaml"]
    assert main(["evaluate", "--timeloop", *map(str, files)]) == 2
    assert "component shared_glb: class = 'smartbuffer_SRAM': a compound component needs an ERT entry" \
        in capsys.readouterr().err
    src = DATA / "timeloop_specs" / "conv1d-1level"
    assert main(["evaluate", "--timeloop", str(src / "arch.yaml"), str(src / "problem.yaml"),
                 str(src / "map.yaml")]) == 2
    assert "component Buffer: energy = None" in capsys.readouterr().err


def test_group_dimension_must_be_outermost(tmp_path):
    problem = _write(tmp_path, "problem.yaml", DEPTHWISE.replace("C: 32", "C: 4").replace("P: 7, Q: 6", "P: 2, Q: 2"))
    arch = DATA / "timeloop_specs" / "conv1d-1level" / "arch.yaml"
    ert = DATA / "timeloop_specs" / "conv1d-1level" / "ERT.yaml"
    good = _write(tmp_path, "map.yaml", "mapping:\n- {target: Buffer, type: temporal, "
                                        "factors: C=4 R=3 S=3 P=2 Q=2 N=1, permutation: RSPQNC}\n")
    spec = read_timeloop([arch, problem, good, ert])
    assert spec.layer.G == 4 and spec.mapping.levels[0].temporal[Dim.P] == 2
    bad = _write(tmp_path, "map.yaml", "mapping:\n- {target: Buffer, type: temporal, "
                                       "factors: C=4 R=3 S=3 P=2 Q=2 N=1, permutation: RSCPQN}\n")
    with pytest.raises(SpecError, match="group dimension C must be the outermost"):
        read_timeloop([arch, problem, bad, ert])


def test_cli_evaluate_timeloop_json_and_arch_option(capsys):
    src = DATA / "timeloop_specs" / "conv2d-3level-bypass"
    ref = json.loads((src / "reference.json").read_text())
    assert main(["evaluate", "--timeloop", *map(str, sorted(src.glob("*.yaml"))), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["cycles"] == ref["cycles"] and out["timeloop_names"]["dimensions"]["M"] == "K"
    # the same files through --layer/--arch/--mapping (with the ERT via --timeloop)
    assert main(["evaluate", "--layer", str(src / "problem.yaml"), "--arch", str(src / "arch.yaml"),
                 "--mapping", str(src / "map.yaml"), "--timeloop", str(src / "ERT.yaml"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["energy_pJ"] == pytest.approx(ref["energy_pJ"], rel=1e-12)


def test_v02_flat_and_v04_nodes_architectures(tmp_path):
    src = DATA / "timeloop_specs" / "conv2d-3level-spatial"
    flat = _write(tmp_path, "flat.yaml", """
        arch:
          arithmetic: {name: MACC, instances: 16, meshX: 4, word-bits: 8}
          storage:
            - {name: RegisterFile, technology: regfile, entries: 64, instances: 16, meshX: 4, word-bits: 8, block-size: 1}
            - {name: GlobalBuffer, technology: SRAM, entries: 8192, word-bits: 8, block-size: 8, read_bandwidth: 16, write_bandwidth: 16}
            - {name: DRAM, technology: DRAM, word-bits: 8, block-size: 8}
        """)
    nodes = _write(tmp_path, "nodes.yaml", """
        architecture:
          version: 0.4
          nodes:
            - !Container {name: System}
            - !Component {name: DRAM, class: DRAM, attributes: {width: 64, datawidth: 8, depth: 100}}
            - !Component {name: GlobalBuffer, class: SRAM, attributes: {depth: 1024, width: 64, datawidth: 8,
                          read_bandwidth: 16, write_bandwidth: 16}}
            - !Container {name: PE, spatial: {meshX: 4, meshY: 4}}
            - !Component {name: RegisterFile, class: regfile, attributes: {depth: 64, width: 8, datawidth: 8}}
            - !Component {name: MACC, class: intmac, attributes: {datawidth: 8}}
        """)
    tree = read_timeloop(sorted(src.glob("*.yaml")))
    ref = json.loads((src / "reference.json").read_text())
    for arch_file in (flat, nodes):
        spec = read_timeloop([arch_file, src / "problem.yaml", src / "map.yaml", src / "ERT.yaml"])
        assert spec.arch.levels == tree.arch.levels
        record = evaluation_record(evaluate(spec.layer, spec.arch, spec.mapping), spec.arch)
        assert compare_with_reference(record, ref, energy_rtol=1e-9, cycles_rtol=0) == []


def test_v04_problem_and_mapping_forms(tmp_path):
    """v0.4 spellings: data_spaces / read_write, projections as expressions, factors and permutations as lists."""
    src = DATA / "timeloop_specs" / "conv2d-3level-spatial"
    problem = _write(tmp_path, "problem.yaml", """
        problem:
          version: 0.4
          shape:
            name: CNN_Layer
            dimensions: [C, M, R, S, N, P, Q]
            coefficients: [{name: Wstride, default: 1}, {name: Hstride, default: 1},
                           {name: Wdilation, default: 1}, {name: Hdilation, default: 1}]
            data_spaces:
              - {name: Weights, projection: [C, M, R, S]}
              - {name: Inputs, projection: [N, C, "R*Wdilation + P*Wstride", "S*Hdilation + Q*Hstride"]}
              - {name: Outputs, projection: "[ N, M, Q, P ]", read_write: true}
          instance: {C: 16, M: 16, R: 3, S: 3, N: 1, P: 14, Q: 14, Wstride: 2}
        """)
    mapping = _write(tmp_path, "map.yaml", """
        mapping:
          - {target: DRAM, type: temporal, factors: [C=2, M=2, Q=2], permutation: [C, Q, M]}
          - {target: GlobalBuffer, type: temporal, factors: [M=2, P=14, Q=7], permutation: [P, Q, M]}
          - {target: GlobalBuffer, type: spatial, factors: [C=4, M=4], permutation: [M, C], split: 1}
          - {target: RegisterFile, type: temporal, factors: [C=2, R=3, S=3], permutation: [R, S, C]}
          - {target: RegisterFile, type: dataspace, keep: [Weights, Inputs, Outputs], bypass: []}
        """)
    spec = read_timeloop([src / "arch.yaml", problem, mapping, src / "ERT.yaml"])
    record = evaluation_record(evaluate(spec.layer, spec.arch, spec.mapping), spec.arch)
    ref = json.loads((src / "reference.json").read_text())
    assert compare_with_reference(record, ref, energy_rtol=1e-9, cycles_rtol=0) == []


def test_v04_front_end_dump_of_a_tree(tmp_path):
    """The tree the v0.4 front-end dumps: ranges from 1, v0.4 attribute names, a clock, extra attributes."""
    src = DATA / "timeloop_specs" / "conv2d-3level-spatial"
    arch = _write(tmp_path, "arch.yaml", """
        dumped_by_timeloop_front_end: true
        architecture:
            version: '0.4'
            subtree:
              - name: System[1..1]
                attributes: {version: '0.4', technology: "45nm", global_cycle_seconds: 5e-10}
                local:
                  - name: DRAM[1..1]
                    class: DRAM
                    attributes: {type: LPDDR4, width: 64, depth: 64000, datawidth: 8, n_banks: 2,
                                 cluster_size: 1, reduction_supported: true, multiple_buffering: 1,
                                 min_utilization: 0, has_power_gating: false}
                  - name: GlobalBuffer[1..1]
                    class: SRAM
                    attributes: {depth: 1024, width: 64, datawidth: 8, read_bandwidth: 16, write_bandwidth: 16,
                                 multiple_buffering: 1, min_utilization: 0}
                subtree:
                  - name: PE[1..16]
                    local:
                      - name: RegisterFile[1..1]
                        class: regfile
                        attributes: {depth: 64, width: 8, datawidth: 8, meshX: 4}
                      - name: MACC[1..1]
                        class: intmac
                        attributes: {width: 8, meshX: 4}
        """)
    spec = read_timeloop([arch, src / "problem.yaml", src / "map.yaml", src / "ERT.yaml"])
    assert spec.arch.clock_GHz == pytest.approx(2.0)
    assert [lv.instances for lv in spec.arch.levels] == [1, 1, 16]
    record = evaluation_record(evaluate(spec.layer, spec.arch, spec.mapping), spec.arch)
    ref = json.loads((src / "reference.json").read_text())
    assert compare_with_reference(record, ref, energy_rtol=1e-9, cycles_rtol=0) == []


def test_network_and_arch_loaders_accept_timeloop_files(tmp_path, capsys):
    from formulation.specs.catalog import load_arch, load_network

    src = DATA / "timeloop_specs" / "conv2d-3level-bypass"
    spec = read_timeloop(sorted(src.glob("*.yaml")))
    net = load_network(str(src / "problem.yaml"))
    assert len(net.layers) == 1 and dataclasses.replace(net.layers[0].layer, name="x") == \
        dataclasses.replace(spec.layer, name="x")
    combined = _write(tmp_path, "arch_ert.yaml", (src / "arch.yaml").read_text() + (src / "ERT.yaml").read_text())
    assert load_arch(str(combined)).levels == spec.arch.levels
    # a Timeloop architecture with a mapping in this project's format
    ours = _write(tmp_path, "ours.yaml", yaml.safe_dump([
        {"target": "DRAM", "temporal": {"C": 2, "K": 2, "Q": 2}, "permutation": "QKC"},
        {"target": "GlobalBuffer", "temporal": {"K": 4, "P": 8, "Q": 4}, "permutation": "PQK", "bypass": ["Weights"]},
        {"target": "RegisterFile", "temporal": {"C": 4, "R": 3, "S": 3}, "permutation": "RSC", "bypass": ["Outputs"]}]))
    assert main(["evaluate", "--layer", str(src / "problem.yaml"), "--arch", str(combined), "--mapping", str(ours),
                 "--json"]) == 0
    ref = json.loads((src / "reference.json").read_text())
    assert json.loads(capsys.readouterr().out)["energy_pJ"] == pytest.approx(ref["energy_pJ"], rel=1e-12)


def test_compact_factors_as_timeloop_mapper_writes_them(tmp_path):
    """timeloop-mapper's map.yaml writes factors as "C2 M2 ..." (no '='); they read as "C=2 M=2 ..."."""
    src = DATA / "timeloop_specs" / "conv2d-3level-spatial"
    text = (src / "map.yaml").read_text()
    compact = _write(tmp_path, "map.yaml", text.replace("=", ""))
    assert "C=" not in compact.read_text() and "C2 M2" in compact.read_text()
    files = [src / "arch.yaml", src / "problem.yaml", src / "ERT.yaml"]
    assert read_timeloop([*files, compact]).mapping == read_timeloop([*files, src / "map.yaml"]).mapping
    bad = _write(tmp_path, "bad.yaml", text.replace("C=2 M=2", "C=2 M=two", 1))
    with pytest.raises(SpecError, match=r"factors = .*DIM=FACTOR"):
        read_timeloop([*files, bad])
