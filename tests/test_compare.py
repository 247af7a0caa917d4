"""The baselines behind ``codesign optimize --method``, and the comparison benchmark (``python -m benchmarks compare``).

Every run is on a two-layer network and a small template with a budget of a few seconds: what is
checked is the plumbing (the same result.json for every method, per-layer cases that re-evaluate
to the recorded numbers, non-dominated fronts, the benchmark's files and claims), not the quality of the designs.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import yaml

from formulation.specs.loading import read_cases
from codesign.cli import main
from search.methods import METHODS
from search.results import RESULT_KEYS

NETWORK = {"name": "tiny", "layers": [
    {"name": "conv_a", "N": 1, "C": 16, "K": 32, "P": 14, "Q": 14, "R": 3, "S": 3},
    {"name": "fc_b", "N": 1, "C": 64, "K": 48, "P": 1, "Q": 1, "count": 2},
]}
TEMPLATE = {"arch": "simple", "mesh_x": [2, 16], "mesh_y": [2, 16],
            "sizes": {"GlobalBuffer": [1024, 65536], "RegisterFile": [16, 512]}}
BUDGET = 0.1  # mm2: binds on this template (0.02-1.2 mm2)
COMMON = ["--jobs", "1", "--seed", "1", "--quiet"]
# Wall-clock budgets: a few seconds, but above the first model evaluation's warm-up on a loaded machine.
TIME_LIMIT = {"bo": "6"}  # bo fits a GP per hardware point: a few more seconds


def _ipopt() -> bool:
    from formulation.relaxed.solvers import get_backend

    return get_backend("cyipopt").available()


def _torch() -> bool:
    import importlib.util

    return importlib.util.find_spec("torch") is not None and importlib.util.find_spec("botorch") is not None


def _method_params():
    out = []
    for m in ("ga", "random", "weighted-sum", "bo"):
        marks = []
        if m == "weighted-sum" and not _ipopt():
            marks.append(pytest.mark.skip(reason="cyipopt is not installed"))
        if m == "bo" and ("bo" not in METHODS or not _torch()):
            marks.append(pytest.mark.skip(reason="search.baselines.bo or torch/botorch is not installed"))
        out.append(pytest.param(m, marks=marks))
    return out


@pytest.fixture(scope="module")
def specs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("specs")
    (folder / "tiny.yaml").write_text(yaml.safe_dump(NETWORK))
    (folder / "small-template.yaml").write_text(yaml.safe_dump(TEMPLATE))
    return folder


def optimize(out: Path, specs: Path, *extra: str, time_limit: str = "3") -> int:
    return main(["optimize", "--network", str(specs / "tiny.yaml"), "--arch-template",
                 str(specs / "small-template.yaml"), "--area-budget", str(BUDGET), "--out", str(out),
                 "--time-limit", time_limit, *COMMON, *extra])


def load(out: Path) -> dict:
    return json.loads((out / "result.json").read_text())


def assert_dominance_free(front: list[dict], others: list[dict]) -> None:
    for p in front:
        for q in front + others:
            assert not (q["latency_s"] <= p["latency_s"] and q["power_mW"] <= p["power_mW"]
                        and (q["latency_s"] < p["latency_s"] or q["power_mW"] < p["power_mW"])), (p, q)


def test_every_baseline_is_registered():
    assert {"codesign", "ga", "random", "weighted-sum", "bo"} <= set(METHODS)
    assert METHODS["ga"].front and METHODS["weighted-sum"].front and METHODS["codesign"].front
    assert not METHODS["random"].front and not METHODS["bo"].front
    assert all(m.description and m.name == name for name, m in METHODS.items())


@pytest.mark.parametrize("method", _method_params())
def test_method_writes_a_result_whose_cases_re_evaluate(method, specs, tmp_path, capsys):
    if method == "bo":
        pytest.importorskip("botorch")  # imported here, so that its seconds of import do not eat bo's budget
    time_limit = TIME_LIMIT.get(method, "3")
    assert optimize(tmp_path, specs, "--method", method, time_limit=time_limit) == 0
    doc = load(tmp_path)
    assert set(RESULT_KEYS) <= set(doc) and "pareto" not in doc
    assert doc["method"] == method and doc["pipeline"] == method
    assert doc["status"] in ("converged", "time_limit")
    assert doc["time_limit_s"] == float(time_limit) and 0 < doc["wall_s"] < 20 and doc["evaluations"] > 0
    assert doc["evaluations_per_s"] == pytest.approx(doc["evaluations"] / doc["wall_s"])
    totals = doc["totals"]
    assert totals["feasible"] and totals["area_mm2"] <= BUDGET and doc["hardware"]["area_mm2"] <= BUDGET
    assert totals["energy_pJ"] == pytest.approx(sum(e["count"] * e["energy_pJ"] for e in doc["layers"]), rel=1e-12)
    assert totals["latency_s"] == pytest.approx(sum(e["count"] * e["cycles"] for e in doc["layers"]) * 1e-9,
                                                rel=1e-12)
    assert totals["edp"] == pytest.approx(totals["energy_pJ"] * totals["latency_s"], rel=1e-12)
    assert doc["start_results"] and all(s["evaluations"] >= 0 for s in doc["start_results"])
    # the per-layer cases are the design: evaluated again they give exactly the recorded numbers
    capsys.readouterr()
    assert main(["evaluate", "--cases", str(tmp_path / "layers.jsonl")]) == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["id"] for r in records] == ["conv_a", "fc_b"]
    for record, entry in zip(records, doc["layers"]):
        assert record["cycles"] == entry["cycles"] and record["energy_pJ"] == entry["energy_pJ"]
    for case in read_cases(tmp_path / "layers.jsonl"):
        assert case.arch.mac.instances == doc["hardware"]["pes"]
    assert sorted(p.name for p in (tmp_path / "timeloop").iterdir()) == ["conv_a", "fc_b"]


def test_ga_pareto_writes_a_non_dominated_nsga2_front(specs, tmp_path):
    assert optimize(tmp_path, specs, "--method", "ga", "--pareto", "3", "--bound-time", "0") == 0  # the front
    doc = load(tmp_path)
    pareto = doc["pareto"]
    assert pareto["method"] == "nsga2" and doc["pipeline"] == "nsga2"
    front = pareto["points"]
    assert len(front) >= 2
    assert_dominance_free(front, pareto["dominated"])
    assert [p["latency_s"] for p in front] == sorted(p["latency_s"] for p in front)
    assert all(p["area_mm2"] <= BUDGET for p in front)
    assert [r["run"] for r in pareto["runs"]] == ["nsga2"] and pareto["runs"][0]["objective"] is None
    # the reported design is the front's best for the goal (EDP), with its run's start record
    assert doc["totals"]["edp"] == pytest.approx(min(p["edp"] for p in front), rel=1e-12)
    assert len(doc["start_results"]) == 1
    assert (tmp_path / "pareto.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(read_cases(tmp_path / "layers.jsonl")) == 2


def test_polishing_a_front_gives_each_point_a_design_at_most_as_slow_and_as_power_hungry(specs, tmp_path, capsys):
    """--polish-time with --pareto: every front point is polished for power under its own latency; the
    polished designs join the candidates, and the front is taken again."""
    assert optimize(tmp_path, specs, "--method", "ga", "--pareto", "3", "--polish-time", "8", "--bound-nodes", "4") == 0
    out = capsys.readouterr().out
    doc = load(tmp_path)
    pareto, report = doc["pareto"], doc["polish"]
    everything = pareto["points"] + pareto["dominated"]
    assert_dominance_free(pareto["points"], pareto["dominated"])
    assert report["points_before"] >= 2 and 1 <= len(report["front"]) <= report["points_before"]  # as time allows
    assert all(r["objective"] == "power" and r["after"] <= r["before"] and r["error"] is None for r in report["front"])
    polished = [p for p in everything if p["run"].endswith("+polish")]
    lowered = [r for r in report["front"] if r["after"] < r["before"]]
    assert len(polished) == len(lowered) >= 1
    for p in polished:  # its own point, before polishing, is at least as slow and at least as power-hungry
        own = [q for q in everything if q["run"] == p["run"][:-len("+polish")]]
        assert own and any(q["latency_s"] >= p["latency_s"] * (1 - 1e-9) and q["power_mW"] > p["power_mW"]
                           for q in own)
    assert report["points_after"] == len(pareto["points"])
    assert doc["totals"]["edp"] == pytest.approx(min(p["edp"] for p in everything), rel=1e-12)
    assert "front points polished for power" in out
    for p in pareto["points"]:  # the band is computed on the polished points, and none is below it
        assert p["power_lower_bound_mW"] is not None and p["power_lower_bound_mW"] <= p["power_mW"] * (1 + 1e-9)


@pytest.mark.skipif(not _ipopt(), reason="cyipopt is not installed")
def test_weighted_sum_pareto_has_one_candidate_per_weight(specs, tmp_path):
    assert optimize(tmp_path, specs, "--method", "weighted-sum", "--pareto", "3") == 0
    pareto = load(tmp_path)["pareto"]
    assert pareto["method"] == "weighted-sum"
    labels = [p["run"] for p in pareto["points"] + pareto["dominated"]]
    assert set(labels) <= {"w=0", "w=0.5", "w=1"} and len(labels) == len(set(labels)) >= 2
    assert_dominance_free(pareto["points"], pareto["dominated"])


@pytest.mark.parametrize("extra, message", [
    (["--method", "random", "--pareto", "3"], "does not compute fronts"),
    (["--method", "weighted-sum", "--pareto", "1"], "must be >= 2"),  # the --pareto check shared by solve and optimize
])
def test_baseline_mistakes_are_one_line_exit_2(specs, tmp_path, capsys, extra, message):
    assert optimize(tmp_path / "out", specs, *extra) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("codesign: error:") and message in err
    assert not (tmp_path / "out" / "result.json").exists()


# ---- the comparison benchmark ---------------------------------------------------------------------------

def test_hypervolume_of_a_staircase():
    from benchmarks.compare_report import hypervolume

    # in log10 space: points (0, 1) and (1, 0) with reference (2, 2): 2*1 + 1*1 = 3 of the 4 of the box
    pts = [(1.0, 10.0), (10.0, 1.0), (10.0, 10.0)]  # the last is dominated
    assert hypervolume(pts, ideal=(1.0, 1.0), ref=(100.0, 100.0)) == pytest.approx(3 / 4)
    assert hypervolume([], ideal=(1.0, 1.0), ref=(100.0, 100.0)) == 0.0
    assert hypervolume([(200.0, 0.5)], ideal=(1.0, 1.0), ref=(100.0, 100.0)) == 0.0  # beyond the reference


def test_time_to_reach_uses_the_first_history_entry_at_or_below():
    from benchmarks.compare_report import time_to_reach

    history = [(1.0, 10, math.inf), (2.0, 20, 5.0), (4.0, 40, 3.0), (9.0, 90, 3.0)]
    assert time_to_reach(history, 5.0) == 2.0
    assert time_to_reach(history, 3.0) == 4.0
    assert time_to_reach(history, 2.0) is None


def test_compare_runs_every_method_and_writes_the_report(specs, tmp_path):
    from benchmarks.compare import main as compare_main

    methods = ["codesign", "ga", "random"] + (["weighted-sum"] if _ipopt() else [])
    out = tmp_path / "results"
    argv = ["--networks", str(specs / "tiny.yaml"), "--arch-template", str(specs / "small-template.yaml"),
            "--methods", ",".join(methods), "--seeds", "0", "--budget-s", "3", "--area-budget", str(BUDGET),
            "--pareto", "3", "--jobs", "1", "--starts", "1", "--front-starts", "1", "--no-warm-up",
            "--output", str(out / "compare.json"),
            "--report", str(tmp_path / "RESULTS.md"), "--plots-dir", str(out)]
    assert compare_main(argv) == 0
    doc = json.loads((out / "compare.json").read_text())
    singles = [r for r in doc["runs"] if r["kind"] == "single"]
    fronts = [r for r in doc["runs"] if r["kind"] == "front"]
    assert sorted(r["method"] for r in singles) == sorted(methods)
    assert {r["method"] for r in fronts} == {"codesign", "ga"} | ({"weighted-sum"} if _ipopt() else set())
    for r in singles:
        assert r["error"] is None and r["totals"]["area_mm2"] <= BUDGET
        assert r["history"] and all(b >= a for (a, _, _), (b, _, _) in zip(r["history"], r["history"][1:]))
        assert r["history"][-1][2] == pytest.approx(r["totals"]["edp"], rel=1e-12)
    for r in fronts:
        assert r["front"] and 0.0 <= r["hypervolume"] <= 1.0
        assert_dominance_free(r["front"], [])
    report = (tmp_path / "RESULTS.md").read_text()
    assert "| method |" in report and "hypervolume" in report and "EDP ratio" in report
    for png in doc["plots"]:
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # the report is regenerated from the JSON alone
    (tmp_path / "RESULTS.md").unlink()
    assert compare_main(["--report-only", "--output", str(out / "compare.json"),
                         "--report", str(tmp_path / "RESULTS.md"), "--plots-dir", str(out)]) == 0
    assert (tmp_path / "RESULTS.md").read_text() == report
    # --append adds networks, seeds or methods, never runs with other settings
    assert compare_main([*argv, "--append", "--budget-s", "5"]) == 2
    assert json.loads((out / "compare.json").read_text()) == doc
