"""Timeloop export: write the YAML files, read them back with yaml.safe_load, compare with the specs."""

from __future__ import annotations

import dataclasses
import math
import re
from pathlib import Path

import pytest
import yaml

from formulation.axes import DIMS, TENSOR_NAMES, TENSORS, Dim
from formulation.specs.loading import read_cases
from formulation.specs.types import Architecture, Layer, LevelMapping, Mapping, SpecError
from formulation.specs.timeloop_export import (
    TIMELOOP_COMMAND,
    arch_document,
    ert_document,
    export_timeloop,
    mapping_document,
    problem_document,
)
from formulation.model.validation import validate_mapping
from tests.conftest import CASES_FILE

TL_NAME = {Dim.N: "N", Dim.K: "M", Dim.C: "C", Dim.P: "P", Dim.Q: "Q", Dim.R: "R", Dim.S: "S"}
DIM_OF = {name: d for d, name in TL_NAME.items()}
YAML_FILES = ("arch.yaml", "problem.yaml", "mapping.yaml", "ERT.yaml")

# Hand anchors, the first case of each architecture, and cases with bypass, strides, batch, a
# rectangular layer and 2-D spatial fanouts (picked by property below, so the set adapts to the data).
ANCHORS = ("public-0000", "public-0001", "public-0002")


def cases_path() -> Path:
    """The reference cases copied into tests/data (see tests/data/PROVENANCE.md)."""
    return CASES_FILE


def _pick_cases(cases):
    chosen = {c.id: c for c in cases if c.id in ANCHORS}
    by_arch = {}
    for c in cases:
        by_arch.setdefault(c.arch.name, c)
    chosen.update({c.id: c for c in by_arch.values()})
    predicates = [
        lambda c: any(lm.keep != frozenset(TENSORS) for lm in c.mapping.levels),
        lambda c: c.layer.Wstride != c.layer.Hstride or c.layer.P != c.layer.Q or c.layer.R != c.layer.S,
        lambda c: c.layer.Wstride > 1,
        lambda c: c.layer.N > 1,
        lambda c: any(math.prod(lm.spatial_x) > 1 and math.prod(lm.spatial_y) > 1 for lm in c.mapping.levels),
        lambda c: any(sum(f > 1 for f in lm.spatial_x) > 1 for lm in c.mapping.levels),
    ]
    for arch_name in by_arch:
        for pred in predicates:
            hit = next((c for c in cases if c.arch.name == arch_name and pred(c)), None)
            if hit is not None:
                chosen[hit.id] = hit
    return sorted(chosen.values(), key=lambda c: c.id)


_CASES = _pick_cases(read_cases(cases_path()))


@pytest.fixture(params=_CASES, ids=[c.id for c in _CASES])
def exported(request, tmp_path):
    case = request.param
    paths = export_timeloop(case.layer, case.arch, case.mapping, tmp_path / "out")
    docs = {p.name: yaml.safe_load(p.read_text()) for p in paths if p.suffix == ".yaml"}
    return case, paths, docs


def parse_factors(text: str) -> dict[Dim, int]:
    out = {}
    for name, value in re.findall(r"([A-Za-z]+)\s*=\s*([0-9]+)", text):
        assert DIM_OF[name] not in out, f"dimension {name} given twice in {text!r}"
        out[DIM_OF[name]] = int(value)
    return out


def directives(docs, target: str, kind: str) -> list[dict]:
    return [d for d in docs["mapping.yaml"]["mapping"] if d["target"] == target and d["type"] == kind]


def walk_arch(doc) -> list[tuple[dict, list[str], int]]:
    """Components of an architecture document in tree order, with their node path and the
    instance count Timeloop derives from the ``[a..b]`` ranges of the node names."""
    out = []
    node = doc["architecture"]
    path: list[str] = []
    multiplication = 1
    while "subtree" in node:
        assert len(node["subtree"]) == 1  # Timeloop supports one subtree per level
        node = node["subtree"][0]
        path.append(node["name"])
        m = re.search(r"\[(\d+)\.\.(\d+)\]$", node["name"])
        if m:
            multiplication *= int(m.group(2)) - int(m.group(1)) + 1
        for comp in node.get("local", []):
            out.append((comp, list(path), multiplication))
    return out


# --------------------------------------------------------------------------------------------


def test_files_written_and_readme(exported):
    case, paths, docs = exported
    assert [p.name for p in paths] == [*YAML_FILES, "README.txt"]
    assert all(p.is_file() for p in paths)
    assert set(docs) == set(YAML_FILES)
    assert list(docs["arch.yaml"]) == ["architecture"]
    assert list(docs["problem.yaml"]) == ["problem"]
    assert list(docs["mapping.yaml"]) == ["mapping"]
    assert list(docs["ERT.yaml"]) == ["ERT"]
    readme = paths[-1].read_text()
    assert TIMELOOP_COMMAND in readme
    assert TIMELOOP_COMMAND == "timeloop-model arch.yaml problem.yaml mapping.yaml ERT.yaml"
    assert docs["arch.yaml"]["architecture"]["version"] == 0.3


def test_factor_products_equal_layer_dims(exported):
    case, _, docs = exported
    instance = docs["problem.yaml"]["problem"]["instance"]
    product = {d: 1 for d in DIMS}
    for directive in docs["mapping.yaml"]["mapping"]:
        if directive["type"] in ("temporal", "spatial"):
            factors = parse_factors(directive["factors"])
            assert set(factors) == set(DIMS), "every directive lists all seven dimensions"
            for d, f in factors.items():
                product[d] *= f
    for d in DIMS:
        assert product[d] == case.layer.dims[d], d
        assert product[d] == instance[TL_NAME[d]], d


def test_temporal_factors_and_permutations_match(exported):
    case, _, docs = exported
    for lm in case.mapping.levels:
        (temporal,) = directives(docs, lm.target, "temporal")
        assert parse_factors(temporal["factors"]) == {d: lm.temporal[d] for d in DIMS}
        assert temporal["permutation"] == "".join(TL_NAME[d] for d in lm.permutation)
        assert sorted(temporal["permutation"]) == sorted("CMRSNPQ")


def test_spatial_split_reproduces_x_and_y(exported):
    case, _, docs = exported
    for i, lm in enumerate(case.mapping.levels):
        spatial = directives(docs, lm.target, "spatial")
        fan_x, fan_y = case.arch.fanout(i)
        if fan_x * fan_y == 1:
            assert spatial == [], "Timeloop rejects a spatial directive on a level without fanout"
            continue
        (sp,) = spatial
        factors = parse_factors(sp["factors"])
        assert factors == {d: lm.spatial[d] for d in DIMS}
        perm = [DIM_OF[ch] for ch in sp["permutation"]]
        assert sorted(perm) == sorted(DIMS)
        split = sp["split"]
        x_dims = [d for d in perm[:split] if factors[d] > 1]
        y_dims = [d for d in perm[split:] if factors[d] > 1]
        # each factor lands on the axis the mapping put it on ...
        assert {d: factors[d] for d in x_dims} == {d: lm.spatial_x[d] for d in DIMS if lm.spatial_x[d] > 1}
        assert {d: factors[d] for d in y_dims} == {d: lm.spatial_y[d] for d in DIMS if lm.spatial_y[d] > 1}
        # ... in the mapping's order along that axis (innermost first)
        assert x_dims == [d for d in lm.spatial_order if lm.spatial_x[d] > 1]
        assert y_dims == [d for d in lm.spatial_order if lm.spatial_y[d] > 1]
        assert math.prod(factors[d] for d in x_dims) <= fan_x
        assert math.prod(factors[d] for d in y_dims) <= fan_y


def test_bypass_and_keep_lists_match(exported):
    case, _, docs = exported
    for lm in case.mapping.levels:
        (bp,) = directives(docs, lm.target, "bypass")
        assert bp["keep"] == [TENSOR_NAMES[t] for t in TENSORS if t in lm.keep]
        assert bp["bypass"] == [TENSOR_NAMES[t] for t in TENSORS if t not in lm.keep]
    assert directives(docs, case.mapping.levels[0].target, "bypass")[0]["bypass"] == []
    targets = [d["target"] for d in docs["mapping.yaml"]["mapping"]]
    assert set(targets) == {lv.name for lv in case.arch.levels}


def test_architecture_round_trip(exported):
    case, _, docs = exported
    comps = walk_arch(docs["arch.yaml"])
    arch = case.arch
    assert [c["name"] for c, _, _ in comps] == [lv.name for lv in arch.levels] + [arch.mac.name]
    for (comp, _, multiplication), level in zip(comps, arch.levels):
        a = comp["attributes"]
        assert comp["class"] == level.technology.value
        assert a["word-bits"] == level.word_bits
        assert a["block-size"] == level.block_size
        assert a["width"] == level.word_bits * level.block_size  # one vector access = one block
        assert a["instances"] == level.instances == multiplication
        assert a["meshX"] == level.mesh_x
        if level.size_words is None:
            assert "depth" not in a and "entries" not in a
        else:
            assert a["depth"] * a["block-size"] == level.size_words
        assert a.get("read_bandwidth") == level.read_bw_words
        assert a.get("write_bandwidth") == level.write_bw_words
    mac, _, multiplication = comps[-1]
    assert mac["class"] == "intmac"
    assert mac["attributes"] == {"instances": arch.mac.instances, "meshX": arch.mac.mesh_x,
                                 "word-bits": arch.mac.word_bits}
    assert arch.mac.instances == multiplication


def test_energy_table_round_trip(exported):
    case, _, docs = exported
    ert = docs["ERT.yaml"]["ERT"]
    assert ert["version"] == 0.2
    # Timeloop matches a table to the component named by the key's last dotted part.
    tables = {key.rsplit(".", 1)[-1]: actions for key, actions in ert["tables"].items()}
    assert len(tables) == len(ert["tables"]) == len(case.arch.levels) + 1

    def energy(actions, name):
        (entry,) = actions[name]
        return entry["energy"]

    for level in case.arch.levels:
        actions = tables[level.name]
        assert energy(actions, "read") == level.read_energy_pJ
        assert energy(actions, "write") == level.write_energy_pJ
        assert energy(actions, "random_fill") == energy(actions, "fill") == level.fill_energy_pJ
        assert energy(actions, "random_update") == energy(actions, "update") == level.update_energy_pJ
    mac = tables[case.arch.mac.name]
    assert energy(mac, "mac_random") == energy(mac, "mac") == case.arch.mac.energy_pJ
    paths = {comp["name"]: ".".join(path + [comp["name"]]) for comp, path, _ in walk_arch(docs["arch.yaml"])}
    assert set(ert["tables"]) == set(paths.values())


def test_problem_dims_and_strides(exported):
    case, _, docs = exported
    problem = docs["problem.yaml"]["problem"]
    layer = case.layer
    assert problem["shape"]["dimensions"] == ["C", "M", "R", "S", "N", "P", "Q"]
    assert problem["instance"] == {"C": layer.C, "M": layer.K, "R": layer.R, "S": layer.S, "N": layer.N,
                                   "P": layer.P, "Q": layer.Q, "Wstride": layer.Wstride,
                                   "Hstride": layer.Hstride, "Wdilation": 1, "Hdilation": 1}
    spaces = {ds["name"]: ds for ds in problem["shape"]["data-spaces"]}
    assert list(spaces) == ["Weights", "Inputs", "Outputs"]
    assert spaces["Outputs"]["read-write"] is True
    assert spaces["Inputs"]["projection"][2] == [["R", "Wdilation"], ["P", "Wstride"]]
    assert spaces["Inputs"]["projection"][3] == [["S", "Hdilation"], ["Q", "Hstride"]]
    assert spaces["Outputs"]["projection"] == [[["N"]], [["M"]], [["Q"]], [["P"]]]
    assert {c["name"] for c in problem["shape"]["coefficients"]} == {"Wstride", "Hstride", "Wdilation", "Hdilation"}


def test_pure_functions_match_written_files(exported):
    case, _, docs = exported
    assert docs["arch.yaml"] == arch_document(case.arch)
    assert docs["problem.yaml"] == problem_document(case.layer)
    assert docs["mapping.yaml"] == mapping_document(case.arch, case.mapping)
    assert docs["ERT.yaml"] == ert_document(case.arch)


# --------------------------------------------------------------------------------------------
# grouped convolutions, unusual sizes, errors


def _simple_case():
    return next(c for c in _CASES if c.arch.name.startswith("simple-16x16"))


def _all_at_outermost(layer: Layer, arch: Architecture) -> Mapping:
    """Every loop at the outermost level; the inner levels keep everything with unit tiles."""
    levels = []
    for i, level in enumerate(arch.levels):
        temporal = layer.dims if i == 0 else (1,) * len(DIMS)
        levels.append(LevelMapping(target=level.name, temporal=tuple(temporal), permutation=DIMS))
    return Mapping(levels=tuple(levels))


@pytest.mark.parametrize("C,K,G", [(32, 48, 4), (16, 16, 16)], ids=["grouped", "depthwise"])
def test_grouped_layer_exports_one_group(tmp_path, C, K, G):
    arch = _simple_case().arch
    layer = Layer(name="grouped", N=1, C=C, K=K, P=4, Q=3, R=3, S=1, Wstride=2, Hstride=1, G=G)
    mapping = _all_at_outermost(layer, arch)
    validate_mapping(layer, arch, mapping)
    paths = export_timeloop(layer, arch, mapping, tmp_path)
    problem_text = (tmp_path / "problem.yaml").read_text()
    instance = yaml.safe_load(problem_text)["problem"]["instance"]
    assert instance["C"] == C // G and instance["M"] == K // G
    assert (instance["P"], instance["Q"], instance["R"], instance["S"]) == (4, 3, 3, 1)
    assert (instance["Wstride"], instance["Hstride"]) == (2, 1)
    comments = [line for line in problem_text.splitlines() if line.startswith("#")]
    assert any(f"G = {G}" in line for line in comments)
    assert any(f"C = C/G = {C // G}" in line and f"M = K/G = {K // G}" in line for line in comments)
    readme = paths[-1].read_text()
    assert f"G = {G}" in readme and "ONE group" in readme and f"multiply Timeloop's energy and cycles by {G}" in readme
    # the mapping covers one group exactly
    product = {d: 1 for d in DIMS}
    for directive in yaml.safe_load((tmp_path / "mapping.yaml").read_text())["mapping"]:
        if directive["type"] != "bypass":
            for d, f in parse_factors(directive["factors"]).items():
                product[d] *= f
    assert product == {d: layer.dims[d] for d in DIMS}
    assert product[Dim.C] == C // G and product[Dim.K] == K // G


def test_ungrouped_layer_has_no_group_note(tmp_path):
    case = _simple_case()
    paths = export_timeloop(case.layer, case.arch, case.mapping, tmp_path)
    assert "group" not in (tmp_path / "problem.yaml").read_text().lower()
    assert "group" not in paths[-1].read_text().lower()


def test_fanout_level_gets_spatial_directive_with_unit_factors(tmp_path):
    case = _simple_case()
    mapping = _all_at_outermost(case.layer, case.arch)
    doc = mapping_document(case.arch, mapping)["mapping"]
    spatial = [d for d in doc if d["type"] == "spatial"]
    fanning = [lv.name for i, lv in enumerate(case.arch.levels) if math.prod(case.arch.fanout(i)) > 1]
    assert [d["target"] for d in spatial] == fanning
    for d in spatial:
        assert set(parse_factors(d["factors"]).values()) == {1}
        assert d["split"] == 0


def test_size_not_multiple_of_block_uses_entries():
    arch = _simple_case().arch
    i = next(i for i, lv in enumerate(arch.levels) if lv.size_words is not None and lv.block_size > 1)
    odd = dataclasses.replace(arch.levels[i], size_words=arch.levels[i].block_size * 10 + 1)
    arch = dataclasses.replace(arch, levels=arch.levels[:i] + (odd,) + arch.levels[i + 1:])
    comp = next(c for c, _, _ in walk_arch(arch_document(arch)) if c["name"] == odd.name)
    assert comp["attributes"]["entries"] == odd.size_words
    assert "depth" not in comp["attributes"]


def test_mac_with_its_own_fanout_gets_its_own_node():
    arch = _simple_case().arch
    last = arch.levels[-1]
    shrunk = dataclasses.replace(last, instances=last.instances // 4, mesh_x=last.mesh_x // 2)
    arch = dataclasses.replace(arch, levels=arch.levels[:-1] + (shrunk,))
    comps = walk_arch(arch_document(arch))
    names = [c["name"] for c, _, _ in comps]
    assert names == [lv.name for lv in arch.levels] + [arch.mac.name]
    for comp, path, multiplication in comps:
        assert comp["attributes"]["instances"] == multiplication
    assert comps[-1][1] != comps[-2][1]  # MACs in a deeper node than the last storage level


def test_mapping_errors_are_spec_errors():
    case = _simple_case()
    bad_target = Mapping(levels=(dataclasses.replace(case.mapping.levels[0], target="nope"),)
                         + case.mapping.levels[1:])
    with pytest.raises(SpecError, match="target"):
        mapping_document(case.arch, bad_target)
    with pytest.raises(SpecError, match="levels"):
        mapping_document(case.arch, Mapping(levels=case.mapping.levels[:-1]))
    i = next(i for i in range(len(case.arch.levels)) if math.prod(case.arch.fanout(i)) == 1)
    lm = case.mapping.levels[i]
    spread = dataclasses.replace(lm, spatial_x=tuple(2 if d == Dim.K else 1 for d in DIMS))
    with pytest.raises(SpecError, match="no fanout"):
        mapping_document(case.arch, Mapping(levels=case.mapping.levels[:i] + (spread,) + case.mapping.levels[i + 1:]))


def test_unsafe_level_name_is_rejected():
    arch = _simple_case().arch
    dotted = dataclasses.replace(arch.levels[0], name="main.memory")
    arch = dataclasses.replace(arch, levels=(dotted,) + arch.levels[1:])
    with pytest.raises(SpecError, match="main.memory"):
        arch_document(arch)
    with pytest.raises(SpecError):
        ert_document(arch)


def test_export_rejects_invalid_mapping(tmp_path):
    case = _simple_case()
    wrong = Layer(name="other", N=1, C=case.layer.C * 2, K=case.layer.K, P=case.layer.P, Q=case.layer.Q,
                  R=case.layer.R, S=case.layer.S)
    with pytest.raises(SpecError):
        export_timeloop(wrong, case.arch, case.mapping, tmp_path / "x")
    assert not (tmp_path / "x").exists()
