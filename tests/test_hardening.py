"""Inputs at the edge: YAML 1.2 and strict JSON, limits that keep the model's int64 counts exact, safe file
names, output directories, JSON without NaN, exit statuses."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import pytest

from codesign.cli import main
from formulation.axes import Tensor
from codesign.errors import EXIT_INTERNAL, one_line
from formulation.jsonsafe import json_text
from formulation.model.encoding import encode
from formulation.model.exact import evaluate_batch
from formulation.specs.catalog import load_arch
from formulation.specs.filenames import inside, safe_component, unique_components
from formulation.specs.loading import layer_from_dict, mapping_from_list
from formulation.specs.numbers import MAX_DIM, MAX_LAYER_MACS
from formulation.specs.safe_load import MAX_DEPTH, load_file, parse_json, parse_yaml
from formulation.specs.types import SpecError
from search.outdir import OutputDir


# ---- YAML 1.2 and JSON -------------------------------------------------------------------------------

@pytest.mark.parametrize("text, value", [
    ("5.12e2", 512.0), ("1e3", 1000.0), ("-2.5E-1", -0.25), ("0100", 100), ("0o17", 15), ("0x1F", 31),
    ("yes", "yes"), ("on", "on"), ("1:04", "1:04"), ("6_4", "6_4"), ("2001-12-14", "2001-12-14"),
    ("true", True), ("null", None), (".inf", math.inf), ("+12", 12),
])
def test_yaml_12_core_schema_numbers(text, value):
    assert parse_yaml(f"v: {text}\n", "t")["v"] == value


def test_yaml_nan_is_a_float_and_refused_by_the_spec_check():
    assert math.isnan(parse_yaml("v: .nan\n", "t")["v"])
    with pytest.raises(SpecError, match="C = nan: must be an integer"):
        layer_from_dict(parse_yaml("{N: 1, C: .nan, K: 1, P: 1, Q: 1}", "t"))


@pytest.mark.parametrize("text, message", [
    ("{a: 1, a: 2}", "given twice"), ("[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1), "nested deeper"),
    ("a: 1\n---\nb: 2\n", "more than one YAML document"), ("!!python/object/apply:os.system ['true']", "YAML"),
])
def test_yaml_refusals(text, message):
    with pytest.raises(SpecError, match=message):
        parse_yaml(text, "t")


def test_billion_laughs_is_refused_quickly():
    text = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 10)}]\n" for i in range(8))
    with pytest.raises(SpecError, match="expands to more than"):
        parse_yaml(text, "t")


@pytest.mark.parametrize("text, message", [
    ('{"a": NaN}', "NaN is not a JSON number"), ('{"a": Infinity}', "Infinity"), ('{"a": 1, "a": 2}', "twice"),
    ("[" * 5000 + "]" * 5000, "nested deeper"), ('{"a": 1', "not valid JSON"),
])
def test_json_refusals(text, message):
    with pytest.raises(SpecError, match=message):
        parse_json(text, "t")


def test_files_bytes_size_and_kind(tmp_path):
    (tmp_path / "bytes.yaml").write_bytes(bytes(range(256)))
    (tmp_path / "bom.yaml").write_bytes("\ufeffN: 1\n".encode())
    (tmp_path / "exp.json").write_text('{"C": 6.4e1}')
    with pytest.raises(SpecError, match="not UTF-8"):
        load_file(tmp_path / "bytes.yaml")
    assert load_file(tmp_path / "bom.yaml") == {"N": 1}
    assert load_file(tmp_path / "exp.json") == {"C": 64.0}
    with pytest.raises(SpecError, match="not a regular file"):
        load_file(tmp_path)


# ---- numbers -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("key, value, message", [
    ("C", True, "a boolean is not a number"), ("C", 2 ** 24 + 1, "at most 16,777,216"),
    ("K", 2 ** 61 - 1, "at most"), ("C", 2.5, "must be an integer"), ("C", "64", "must be an integer"),
])
def test_layer_numbers(key, value, message):
    doc = {"N": 1, "C": 64, "K": 64, "P": 56, "Q": 56, "R": 3, "S": 3, key: value}
    with pytest.raises(SpecError, match=message):
        layer_from_dict(doc)


def test_layer_counts_are_bounded_with_the_limit_in_the_message():
    with pytest.raises(SpecError, match=r"MACs = .*at most 1,099,511,627,776 \(2\^40\)"):
        layer_from_dict({"N": 2 ** 12, "C": 2 ** 12, "K": 2 ** 12, "P": 2 ** 5, "Q": 1})


def test_a_layer_at_the_limits_evaluates_without_overflow():
    """The largest MAC count the loader accepts, mapped on ``simple``: every count exact and non-negative.

    The layer has 2^40 MACs over dimensions up to 2^24 (P = 2^24 alone would also pass); the mapping
    keeps everything in DRAM except a 16x16 spatial fanout, so counts are as large as they get.
    """
    layer = layer_from_dict({"name": "big", "N": 1, "C": 2 ** 8, "K": 2 ** 8, "P": 2 ** 24, "Q": 1})
    assert layer.macs == MAX_LAYER_MACS and max(layer.dims) == MAX_DIM
    arch = load_arch("simple")
    mapping = mapping_from_list([
        {"target": "DRAM", "temporal": {"P": 2 ** 24}, "permutation": "PKCQRSN"},
        {"target": "GlobalBuffer", "temporal": {"C": 16}, "spatial": {"K": 16, "C": 16},
         "spatial_permutation": "KC", "split": 1, "permutation": "CKPQRSN"},
        {"target": "RegisterFile", "temporal": {"K": 16}, "permutation": "KCPQRSN"}], arch)
    ev = evaluate_batch(layer, arch, encode(mapping))
    for name in ("reads", "fills", "updates"):
        counts = np.asarray(getattr(ev, name))
        assert (counts >= 0).all(), name
    assert int(ev.reads[0, 2, Tensor.W]) == layer.macs  # every MAC reads one weight from its register file
    assert int(ev.cycles[0]) >= layer.macs // arch.mac.instances
    assert 0 < float(ev.utilization[0]) <= 1.0
    assert math.isfinite(float(ev.energy_pJ[0])) and float(ev.energy_pJ[0]) > 0


# ---- names and folders -------------------------------------------------------------------------------

HOSTILE = ["../x", "/abs", "a/../../b", "nul\x00x", "x" * 5000, "été-中", ".", "..", "", "CON", "a\\b",
           "dup/1", "dup_1", "DUP_1"]


def test_safe_components_stay_inside_and_are_distinct(tmp_path):
    names = unique_components(HOSTILE)
    assert len({n.lower() for n in names}) == len(HOSTILE)
    for name in names:
        assert name and len(name) <= 90 and not name.startswith(".") and "/" not in name and "\\" not in name
        assert all(ch.isascii() and (ch.isalnum() or ch in "._-") for ch in name)
        assert inside(tmp_path, tmp_path / name).resolve().parent == tmp_path.resolve()
    assert safe_component("layer1_3x3") == "layer1_3x3"  # safe names are kept
    with pytest.raises(SpecError, match="would leave"):
        inside(tmp_path, tmp_path / ".." / "x")


def test_export_timeloop_cases_with_hostile_ids_writes_only_under_out(tmp_path, capsys):
    case = json.loads((Path(__file__).parent / "data" / "timeloop_cases.jsonl").read_text().splitlines()[0])
    lines = [json.dumps({**case, "id": h[:1000]}) for h in HOSTILE if h and "\x00" not in h]
    (tmp_path / "c.jsonl").write_text("\n".join(lines) + "\n")
    out = tmp_path / "sub" / "out"
    assert main(["export-timeloop", "--cases", str(tmp_path / "c.jsonl"), "--out", str(out)]) == 0
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert all(out in p.parents or p == tmp_path / "c.jsonl" for p in written)
    assert len(list(out.iterdir())) == len(lines)


def test_output_dir_rules_and_atomic_replace(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(SpecError, match="not a directory"):
        OutputDir(tmp_path / "file", force=True).prepare()
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "mine.txt").write_text("x")
    with pytest.raises(SpecError, match="holds other files"):
        OutputDir(tmp_path / "other", force=True).prepare()
    old = tmp_path / "res"
    old.mkdir()
    (old / "result.json").write_text("old")
    (old / "stale.txt").write_text("old")
    with pytest.raises(SpecError, match="--force"):
        OutputDir(old, force=False).prepare()
    out = OutputDir(old, force=True)
    staging = out.prepare()
    (staging / "result.json").write_text("new")
    assert (old / "result.json").read_text() == "old"  # untouched until the commit
    out.commit()
    assert (old / "result.json").read_text() == "new" and not (old / "stale.txt").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file", "other", "res"]  # nothing left behind


def test_a_killed_runs_hidden_folders_are_reclaimed_by_the_next_run(tmp_path):
    import subprocess
    import sys

    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    child.kill()  # SIGKILL: no handler of the run could have cleaned up
    child.wait()
    dead = tmp_path / f".res.tmp-{child.pid}-abcd"
    parked = tmp_path / f".res.old-{child.pid}-efgh"
    live = tmp_path / f".res.tmp-{os.getpid()}-live"  # a run still going: left alone
    for folder in (dead, parked, live):
        folder.mkdir()
        (folder / "result.json").write_text("partial")
    other = tmp_path / f".other.tmp-{child.pid}-abcd"  # another --out's folder: not ours to touch
    other.mkdir()
    out = OutputDir(tmp_path / "res", force=False)
    staging = out.prepare()
    assert staging.name.startswith(f".res.tmp-{os.getpid()}-")
    assert not dead.exists() and not parked.exists()
    assert live.exists() and other.exists()
    out.discard()


# ---- exit statuses and JSON --------------------------------------------------------------------------

def test_json_text_never_writes_nan_or_infinity():
    text = json_text({"a": math.nan, "b": [math.inf, -math.inf, 1.5], "c": np.float64("nan"), "d": np.int64(3)})
    assert json.loads(text) == {"a": None, "b": [None, None, 1.5], "c": None, "d": 3}


def test_an_internal_error_is_one_line_exit_3_and_debug_shows_it(monkeypatch, capsys):
    import codesign.cli as cli

    def broken(args):
        raise ZeroDivisionError("boom")

    monkeypatch.setattr(cli, "cmd_network", broken)
    assert main(["network", "resnet18"]) == EXIT_INTERNAL
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "internal error: ZeroDivisionError: boom" in err and "--debug" in err
    with pytest.raises(ZeroDivisionError):
        main(["network", "resnet18", "--debug"])


def test_one_line_escapes_and_cuts():
    text = one_line("a\nb" + "x" * 1000)
    assert "\n" not in text and len(text) <= 500


@pytest.mark.parametrize("command", ["solve", "optimize"])
@pytest.mark.parametrize("extra, message", [
    (["--objective", "power"], "needs --latency-cap"), (["--pareto", "1"], "must be >= 2"),
    (["--pareto", "101"], "at most 100"), (["--area-budget", "nan"], "must be finite"),
    (["--objective", "speed"], "use one of"),
])
def test_solve_and_optimize_share_the_goal_checks(command, extra, message, capsys, tmp_path):
    argv = [command, "--network", "resnet18", *extra] + (["--out", str(tmp_path / "o")] if command == "optimize"
                                                          else [])
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not (tmp_path / "o").exists()


# ---- ONNX node names and sizes -----------------------------------------------------------------------

def _gemm_model(tmp_path, node_name: str, k: int):
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weight = numpy_helper.from_array(np.zeros((k, 4), dtype=np.float32), "w")
    graph = helper.make_graph([helper.make_node("Gemm", ["x", "w"], ["y"], name=node_name, transB=1)], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], [weight])
    path = tmp_path / "m.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


def test_hostile_onnx_node_names_become_safe_folders(tmp_path):
    from formulation.specs.onnx_import import network_from_onnx

    assert network_from_onnx(_gemm_model(tmp_path, "a\x1b[31mred", 8)).layers[0].layer.name == "Gemm0"
    layer = network_from_onnx(_gemm_model(tmp_path, "../../../escape", 8)).layers[0].layer
    assert layer.name == "../../../escape"  # the name is kept; only file names are sanitized
    assert inside(tmp_path, tmp_path / safe_component(layer.name)).parent == tmp_path


# ---- the energy bound behind "energy cap below the MAC energy" ---------------------------------------

def test_energy_bound_holds_for_relaxed_points_and_exact_mappings():
    from formulation.goals import Caps, Objective
    from formulation.relaxed.problem import RelaxedProblem
    from formulation.relaxed.solvers.base import certain_infeasibility, energy_bound_pJ
    from formulation.specs.catalog import load_template
    from formulation.specs.loading import network_from_dict
    from search.sampling import sample_mappings

    network = network_from_dict({"name": "n", "layers": [{"name": "a", "N": 1, "C": 8, "K": 12, "P": 6, "Q": 6,
                                                          "R": 3, "S": 3, "count": 2},
                                                         {"name": "b", "N": 1, "C": 16, "K": 4, "P": 1, "Q": 1}]})
    template = load_template("simple")
    problem = RelaxedProblem(network, template, Objective.EDP)
    bound = energy_bound_pJ(problem)
    rng = np.random.default_rng(0)
    for _ in range(40):
        x = problem.lower + rng.random(problem.n) * (problem.upper - problem.lower)
        assert problem.totals(x)["energy_pJ"].value >= bound * (1 - 1e-12)
    arch = template.base
    exact = sum(entry.count * evaluate_batch(entry.layer, arch, sample_mappings(entry.layer, arch, 200, rng))
                .energy_pJ.min() for entry in network.layers)
    assert exact >= bound
    capped = RelaxedProblem(network, template, Objective.EDP, caps=Caps(energy_pJ=bound * 0.99))
    assert certain_infeasibility(capped)[0] == "cap[energy_pJ]"
    assert certain_infeasibility(RelaxedProblem(network, template, Objective.EDP,
                                                caps=Caps(energy_pJ=bound * 1.01))) is None


def test_default_out_of_a_hostile_network_name_stays_under_out(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "n.json").write_text(json.dumps({"name": "../../escape", "layers": [
        {"name": "a", "N": 1, "C": 4, "K": 4, "P": 2, "Q": 2}]}))
    assert main(["optimize", "--network", "n.json", "--starts", "1", "--jobs", "1", "--max-evaluations", "50",
                 "--quiet"]) == 0
    assert not (tmp_path.parent / "escape").exists() and not (tmp_path / "out" / ".." / ".." / "escape").exists()
    (folder,) = (tmp_path / "out").iterdir()
    assert "escape" in folder.name and (folder / "result.json").exists()


# ---- Timeloop files pass the same limits ---------------------------------------------------------------

@pytest.mark.parametrize("file, old, new, message", [
    ("problem.yaml", "    P: 32", "    P: 2305843009213693951", "at most 16,777,216"),
    ("ERT.yaml", "energy: 512", "energy: .inf", "must be a finite number"),
    ("arch.yaml", None, None, "nested deeper"),
])
def test_timeloop_files_are_bounded_like_our_own(tmp_path, capsys, file, old, new, message):
    source = Path(__file__).parent / "data" / "timeloop_specs" / "conv1d-2level-os"
    paths = []
    for name in ("arch.yaml", "problem.yaml", "map.yaml", "ERT.yaml"):
        text = (source / name).read_text()
        if name == file:
            text = text.replace(old, new, 1) if old else "architecture: " + "[" * 500 + "]" * 500 + "\n"
        (tmp_path / name).write_text(text)
        paths.append(str(tmp_path / name))
    assert main(["evaluate", "--timeloop", *paths, "--json"]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_a_spec_error_quoting_a_line_break_stays_one_line():
    from formulation.specs.loading import layer_from_dict

    with pytest.raises(SpecError) as info:
        layer_from_dict({"\n": None, "N": 1, "C": 1, "K": 1, "P": 1, "Q": 1, "R": 1, "S": 1})
    message = str(info.value)
    assert "\n" not in message and "layer.\\n" in message and "unknown key" in message
