"""``codesign optimize`` end to end on a two-layer network and a small template (seconds per run).

The runs are module-scoped fixtures shared by the tests; every run uses a generous time limit, so
no start is cut short and the same seed must give the same design.
"""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from formulation.specs.catalog import load_arch
from formulation.specs.loading import arch_from_dict, read_cases
from formulation.technology import architecture_area_mm2
from codesign.cli import main
from search.results import RESULT_KEYS, arch_document
from tests.conftest import CASES_FILE

NETWORK = {"name": "tiny", "layers": [
    {"name": "conv_a", "N": 1, "C": 16, "K": 32, "P": 14, "Q": 14, "R": 3, "S": 3},
    {"name": "fc_b", "N": 1, "C": 64, "K": 48, "P": 1, "Q": 1, "count": 2},
]}
TEMPLATE = {"arch": "simple", "mesh_x": [2, 16], "mesh_y": [2, 16],
            "sizes": {"GlobalBuffer": [1024, 65536], "RegisterFile": [16, 512]}}
BUDGET = 0.1  # mm2: binds (the unconstrained EDP optimum takes ~0.15 mm2; the template spans 0.02-1.2 mm2)
# The time limit is far above the seconds a start takes, so no start is cut short (even on a loaded machine).
COMMON = ["--starts", "2", "--jobs", "2", "--time-limit", "300", "--seed", "3", "--quiet", "--bound-nodes", "40",
          "--bound-time", "300"]


@pytest.fixture(scope="module")
def specs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("specs")
    (folder / "tiny.yaml").write_text(yaml.safe_dump(NETWORK))
    (folder / "small-template.yaml").write_text(yaml.safe_dump(TEMPLATE))
    (folder / "case.json").write_text(CASES_FILE.read_text().splitlines()[0])
    return folder


def optimize(out: Path, specs: Path, *extra: str) -> int:
    return main(["optimize", "--network", str(specs / "tiny.yaml"), "--arch-template",
                 str(specs / "small-template.yaml"), "--area-budget", str(BUDGET), "--out", str(out),
                 *COMMON, *extra])


@pytest.fixture(scope="module")
def base_run(specs, tmp_path_factory):
    """One run shared by the tests; under pytest-xdist, by every worker of the session (a file lock)."""
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        out = tmp_path_factory.mktemp("base")
        assert optimize(out, specs) == 0
        return out
    session = tmp_path_factory.getbasetemp().parent  # .../pytest-N, shared by this session's workers
    out = session / "optimize-base-run"
    with open(session / "optimize-base-run.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (out / "result.json").exists():
            assert optimize(out, specs) == 0
    return out


def load(out: Path) -> dict:
    return json.loads((out / "result.json").read_text())


def without_wall_times(doc):
    if isinstance(doc, dict):
        return {k: without_wall_times(v) for k, v in doc.items() if k not in ("wall_s", "evaluations_per_s")}
    if isinstance(doc, list):
        return [without_wall_times(v) for v in doc]
    return doc


def test_result_json_has_the_documented_keys(base_run):
    doc = load(base_run)
    assert set(RESULT_KEYS) <= set(doc)
    assert doc["method"] == "codesign" and doc["seed"] == 3
    # optimal only when the branch-and-bound proves the gap within its tolerance
    assert 0 < doc["lower_bound"] <= doc["totals"]["edp"]
    assert doc["gap"] == pytest.approx(doc["totals"]["edp"] / doc["lower_bound"] - 1)
    assert doc["status"] == ("optimal" if doc["gap"] <= doc["bound"]["gap_tolerance"] else "converged")
    assert doc["evaluations"] > 0 and doc["wall_s"] > 0
    assert doc["evaluations_per_s"] == pytest.approx(doc["evaluations"] / doc["wall_s"])
    assert {"mesh_x", "mesh_y", "buffers_words", "area_mm2"} <= set(doc["hardware"])
    assert {"latency_s", "energy_pJ", "power_mW", "area_mm2", "edp"} <= set(doc["totals"])
    assert [e["name"] for e in doc["layers"]] == ["conv_a", "fc_b"]
    assert [e["count"] for e in doc["layers"]] == [1, 2]
    for entry in doc["layers"]:
        assert set(entry["case"]) == {"id", "layer_name", "arch_name", "layer", "arch", "mapping"}
        assert [m["target"] for m in entry["case"]["mapping"]] == ["DRAM", "GlobalBuffer", "RegisterFile"]
    totals = doc["totals"]
    assert totals["energy_pJ"] == pytest.approx(sum(e["count"] * e["energy_pJ"] for e in doc["layers"]), rel=1e-12)
    assert totals["latency_s"] == pytest.approx(sum(e["count"] * e["cycles"] for e in doc["layers"]) * 1e-9,
                                                rel=1e-12)
    assert totals["edp"] == pytest.approx(totals["energy_pJ"] * totals["latency_s"], rel=1e-12)
    assert totals["power_mW"] == pytest.approx(totals["energy_pJ"] / totals["latency_s"] * 1e-9, rel=1e-12)


def test_layer_cases_re_evaluate_to_the_recorded_numbers(base_run, capsys):
    doc = load(base_run)
    lines = (base_run / "layers.jsonl").read_text().splitlines()
    assert [json.loads(line) for line in lines] == [e["case"] for e in doc["layers"]]
    capsys.readouterr()
    assert main(["evaluate", "--cases", str(base_run / "layers.jsonl")]) == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["id"] for r in records] == ["conv_a", "fc_b"]
    for record, entry in zip(records, doc["layers"]):
        assert record["cycles"] == entry["cycles"]
        assert record["energy_pJ"] == entry["energy_pJ"]


def test_area_budget_holds_and_binds(base_run, specs, tmp_path):
    doc = load(base_run)
    assert main(["optimize", "--network", str(specs / "tiny.yaml"), "--arch-template",
                 str(specs / "small-template.yaml"), "--out", str(tmp_path), *COMMON]) == 0
    free = load(tmp_path)
    assert free["goal"]["area_budget_mm2"] is None
    assert free["totals"]["area_mm2"] > BUDGET  # without the budget the optimum is larger
    assert free["totals"]["edp"] <= doc["totals"]["edp"] * (1 + 1e-9)
    assert doc["goal"]["area_budget_mm2"] == BUDGET
    assert doc["totals"]["area_mm2"] <= BUDGET
    for case in read_cases(base_run / "layers.jsonl"):
        assert architecture_area_mm2(case.arch) == pytest.approx(doc["hardware"]["area_mm2"], rel=1e-12)
        assert case.arch.mac.instances == doc["hardware"]["mesh_x"] * doc["hardware"]["mesh_y"]


def test_same_seed_gives_the_same_result(base_run, specs, tmp_path):
    assert optimize(tmp_path, specs) == 0
    assert without_wall_times(load(tmp_path)) == without_wall_times(load(base_run))
    assert (tmp_path / "layers.jsonl").read_text() == (base_run / "layers.jsonl").read_text()


def test_existing_result_needs_force(base_run, specs, capsys):
    before = (base_run / "result.json").read_bytes()
    capsys.readouterr()
    assert optimize(base_run, specs) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--force" in err
    assert (base_run / "result.json").read_bytes() == before


@pytest.mark.parametrize("extra, message", [
    (["--method", "annealing"], "unknown method"),
    (["--network", "no-such-net"], "not a built-in network"),
    (["--area-budget", "-1"], "--area-budget"),
    (["--objective", "speed"], "--objective"),
    (["--pareto", "0"], "--pareto"),
    (["--solver", "no-such-solver"], "unknown solver"),
    (["--model-hook", "no-such-file.py:hook"], "--model-hook"),
    (["--method", "random", "--solver", "pyomo-ipopt"], "does not solve the relaxation"),
])
def test_user_mistakes_are_one_line_exit_2(specs, tmp_path, capsys, extra, message):
    code = optimize(tmp_path / "out", specs, *extra)
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("codesign: error:") and message in err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("value, message", [("inf", "must be finite"), ("-1", "must be >= 0"), ("x", "not a number")])
def test_a_bad_gap_tolerance_is_refused_before_the_search(specs, tmp_path, capsys, monkeypatch, value, message):
    import codesign.cmd_optimize

    def search_started(*_args, **_kwargs):
        raise AssertionError("the search started")

    monkeypatch.setattr(codesign.cmd_optimize, "_search_and_write", search_started)
    code = optimize(tmp_path / "out", specs, "--gap-tolerance", value)
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and f"--gap-tolerance = {value!r}: {message}" in err


def _relaxed_optima(doc) -> list[float]:
    return [s["relaxed_objective"] for s in doc["start_results"]]


def test_pyomo_ipopt_solver_gives_the_same_relaxed_optima_and_design(base_run, specs, tmp_path):
    """--solver swaps the NLP solver of every start: pyomo-ipopt reaches cyipopt's relaxed optima."""
    assert optimize(tmp_path, specs, "--solver", "pyomo-ipopt") == 0
    ours, theirs = load(base_run), load(tmp_path)
    assert _relaxed_optima(theirs) == pytest.approx(_relaxed_optima(ours), rel=1e-3)
    assert theirs["hardware"] == ours["hardware"]


HOOK = """import math

import pyomo.environ as pyo


def small_mesh(model, problem):
    model.small_mesh = pyo.Constraint(expr=model.mesh_x + model.mesh_y <= math.log(16))
"""


def test_a_model_hook_takes_effect_in_optimize(base_run, specs, tmp_path):
    """A constraint added to the Pyomo model constrains every start's relaxation (here: at most 16 PEs)."""
    (tmp_path / "hook.py").write_text(HOOK)
    assert optimize(tmp_path / "out", specs, "--model-hook", f"{tmp_path / 'hook.py'}:small_mesh") == 0
    hooked, free = _relaxed_optima(load(tmp_path / "out")), _relaxed_optima(load(base_run))
    assert all(h > f * (1 + 1e-3) for h, f in zip(hooked, free)), (hooked, free)


def test_no_traceback_from_the_installed_command(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "codesign.cli", "optimize", "--network", "resnet18",
                           "--area-budget", "-2", "--out", str(tmp_path / "o")], capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == ["codesign: error: --area-budget = '-2': must be > 0"]


def test_fixed_hardware_keeps_the_given_architecture(specs, tmp_path):
    assert main(["optimize", "--network", str(specs / "tiny.yaml"), "--arch", str(specs / "case.json"),
                 "--fixed-hardware", "--out", str(tmp_path), *COMMON]) == 0
    given = arch_document(load_arch(specs / "case.json"))
    doc = load(tmp_path)
    assert (doc["hardware"]["mesh_x"], doc["hardware"]["mesh_y"]) == (16, 16)
    assert doc["hardware"]["buffers_words"] == {"GlobalBuffer": 65536, "RegisterFile": 256}
    for entry in doc["layers"]:
        arch = {k: v for k, v in entry["case"]["arch"].items() if k != "name"}
        assert arch == {k: v for k, v in given.items() if k != "name"}
        assert arch_from_dict(entry["case"]["arch"]).levels == load_arch(specs / "case.json").levels


def test_pareto_writes_a_non_dominated_front_and_a_plot(specs, tmp_path):
    assert optimize(tmp_path, specs, "--pareto", "3") == 0
    doc = load(tmp_path)
    front = doc["pareto"]["points"]
    assert len(front) >= 2
    assert len(doc["pareto"]["runs"]) == 5  # min latency, min power, 3 capped
    everything = front + doc["pareto"]["dominated"]
    for p in front:
        assert p["area_mm2"] <= BUDGET
        for q in everything:
            assert not (q["latency_s"] <= p["latency_s"] and q["power_mW"] <= p["power_mW"]
                        and (q["latency_s"] < p["latency_s"] or q["power_mW"] < p["power_mW"]))
    latencies = [p["latency_s"] for p in front]
    assert latencies == sorted(latencies)
    for p in front:
        if p["latency_cap_s"] is not None:
            assert p["latency_s"] <= p["latency_cap_s"] * (1 + 1e-9)
        # the band: no design as fast as this point draws less power than its bound
        assert 0 < p["power_lower_bound_mW"] <= p["power_mW"]
        assert p["power_gap"] == pytest.approx(p["power_mW"] / p["power_lower_bound_mW"] - 1)
    png = tmp_path / "pareto.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000
    # the reported design is the front's best for the objective (EDP) and re-evaluates like any other
    assert doc["totals"]["edp"] == pytest.approx(min(p["edp"] for p in everything), rel=1e-12)
    assert len(read_cases(tmp_path / "layers.jsonl")) == 2


def test_timeloop_folder_per_layer(base_run):
    expected = {"arch.yaml": "architecture", "problem.yaml": "problem", "mapping.yaml": "mapping", "ERT.yaml": "ERT"}
    for layer in ("conv_a", "fc_b"):
        folder = base_run / "timeloop" / layer
        for name, key in expected.items():
            doc = yaml.safe_load((folder / name).read_text())
            assert list(doc) == [key]
    mapping = yaml.safe_load((base_run / "timeloop" / "conv_a" / "mapping.yaml").read_text())["mapping"]
    assert {d["target"] for d in mapping} == {"DRAM", "GlobalBuffer", "RegisterFile"}
    assert not [p for p in base_run.iterdir() if p.name.startswith(".")]  # no temporary files left


def test_interrupt_writes_the_best_so_far_and_exits_130(specs, tmp_path, monkeypatch, capsys):
    """A Ctrl-C after the first start: optimize keeps that start's design, the CLI writes it, exit 130."""
    from dataclasses import replace

    import search.methods

    class InterruptedAfterOne(search.methods.Codesign):
        name = "interrupt-test"

        def run(self, network, template, goal, options, on_start_done=None):
            def tick(result):
                on_start_done(result)
                raise KeyboardInterrupt

            return super().run(network, template, goal, replace(options, jobs=1), tick)

    monkeypatch.setitem(search.methods._REGISTRY, "interrupt-test", InterruptedAfterOne())
    assert optimize(tmp_path, specs, "--method", "interrupt-test") == 130
    assert "interrupted" in capsys.readouterr().err
    doc = load(tmp_path)
    assert doc["status"] == "interrupted"
    assert [s["start"] for s in doc["start_results"]] == [0]
    assert len(read_cases(tmp_path / "layers.jsonl")) == 2
