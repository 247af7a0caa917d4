"""search.methods: the registry of search methods, its capability checks, and what the CLI makes of it."""

from __future__ import annotations

import subprocess
import sys

import pytest

import search.methods
from codesign.cli import main
from formulation.specs.types import Layer, Network, NetworkLayer, SpecError
from search.design import Goal
from search.methods import METHODS, Method, RunOptions, get_method, load, register
from search.outcome import OptimizeResult, OptimizeStatus


def test_every_method_is_registered_with_its_capabilities():
    assert set(METHODS) >= {"codesign", "ga", "random", "weighted-sum", "bo"}
    for name, method in METHODS.items():
        assert method.name == name and method.description and method.single
    assert [n for n, m in sorted(METHODS.items()) if m.front] == ["codesign", "ga", "weighted-sum"]
    # every method but the exact mapper repeats exactly under --max-evaluations; the exact mapper refuses it
    assert all(m.evaluation_budget for n, m in METHODS.items() if n != "exact")
    with pytest.raises(SpecError, match="--max-evaluations = 100: method exact has only a time budget"):
        METHODS["exact"].check(RunOptions(max_evaluations=100, fixed_hardware=True))


def test_unknown_method_and_unsupported_options_are_one_line_errors():
    with pytest.raises(SpecError, match=r"--method = 'nope': unknown method \(available: bo, codesign, exact, ga"):
        get_method("nope")
    with pytest.raises(SpecError, match="--pareto = 3: method random does not compute fronts"):
        get_method("random").check(RunOptions(), n_points=3)
    class TimeOnly(Method):
        name, description = "time-only", "a method with a time budget only"

    with pytest.raises(SpecError, match="--max-evaluations = 100: method time-only has only a time budget"):
        TimeOnly().check(RunOptions(max_evaluations=100))
    get_method("ga").check(RunOptions(max_evaluations=100, fixed_hardware=True), n_points=3)  # supported: no error


def test_a_missing_optional_dependency_is_one_line():
    with pytest.raises(SpecError, match=r"^--method = 'x': needs no_such_package_xyz \(pip install it\)$"):
        load("no_such_package_xyz.module", "run", "x", "pip install it")


def test_registering_a_method_makes_it_a_cli_method(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(search.methods, "_REGISTRY", dict(search.methods._REGISTRY))
    calls = []

    @register
    class Nothing(Method):
        name = "nothing-found"
        description = "finds nothing (a test method)"
        fixed_hardware = False

        def run(self, network, template, goal, options, on_start_done=None):
            calls.append((network.name, options.seed, options.time_limit_s))
            return OptimizeResult(OptimizeStatus.INFEASIBLE, self.name, None, (), 0.0, 0, ("nothing to find",))

    assert get_method("nothing-found").name == "nothing-found"
    with pytest.raises(ValueError, match="already registered"):
        register(Nothing)
    args = ["optimize", "--network", "resnet18", "--method", "nothing-found", "--seed", "5", "--time-limit", "7",
            "--bound-time", "0", "--out", str(tmp_path), "--quiet"]  # no 30 s bound: the method is under test
    assert main(args) == 1
    assert calls == [("resnet18", 5, 7.0)]
    out = capsys.readouterr()
    assert "status infeasible" in out.out and "nothing to find" in out.err
    assert "status    no design within the budget and caps was found" in out.out
    assert main(args + ["--force", "--fixed-hardware", "--arch", "simple"]) == 2
    assert "--fixed-hardware = True: method nothing-found always searches the hardware" in capsys.readouterr().err


def test_method_optimize_dispatches_single_and_front_runs():
    class Probe(Method):
        name, description, front = "probe", "records how it was called", True

        def run(self, network, template, goal, options, on_start_done=None):
            return OptimizeResult(OptimizeStatus.CONVERGED, "run", None, (), 0.0, 0)

        def pareto(self, network, template, goal, n_points, options, on_start_done=None):
            return OptimizeResult(OptimizeStatus.CONVERGED, f"pareto {n_points}", None, (), 0.0, 0)

    net = Network("n", (NetworkLayer(Layer("l", N=1, C=4, K=4, P=2, Q=2, R=1, S=1)),))
    assert Probe().optimize(net, None, Goal(), RunOptions()).method == "run"
    assert Probe().optimize(net, None, Goal(), RunOptions(), n_points=4).method == "pareto 4"


def test_the_registry_is_cheap_to_import_and_the_cli_has_no_import_circle():
    code = ("import sys, search.methods, codesign.cmd_optimize; "
            "heavy = [m for m in ('pymoo', 'torch', 'botorch', 'pyomo', 'dask') if m in sys.modules]; "
            "print(heavy, 'codesign.cli' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[] False"


def test_a_missing_pymoo_makes_method_ga_a_one_line_error(tmp_path):
    code = ("import sys; sys.modules['pymoo'] = None\n"  # as if pymoo were not installed
            "from codesign.cli import main\n"
            f"sys.exit(main(['optimize', '--network', 'resnet18', '--method', 'ga', '--out', {str(tmp_path)!r}]))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 2
    assert done.stderr.startswith("codesign: error: --method = 'ga': needs pymoo") and done.stderr.count("\n") == 1
    assert not any(tmp_path.iterdir())  # nothing written


def test_the_exact_method_ticks_its_progress_once_per_layer():
    """The progress bar of ``optimize --method exact`` counts layers: one tick per layer, as it is proven or
    when the run ends, so the bar reaches its total (``progress_units``) exactly."""
    from formulation.goals import Objective
    from formulation.specs.catalog import load_arch
    from search.optimize import fixed_template

    net = Network("n", (NetworkLayer(Layer("a", N=1, C=8, K=16, P=4, Q=4, R=1, S=1)),
                        NetworkLayer(Layer("b", N=1, C=16, K=8, P=2, Q=2, R=3, S=3))))
    options = RunOptions(fixed_hardware=True, time_limit_s=60.0, jobs=1)
    method = get_method("exact")
    ticks = []
    result = method.optimize(net, fixed_template(load_arch("simple")), Goal(objective=Objective.ENERGY), options,
                             on_start_done=ticks.append)
    assert result.status is OptimizeStatus.OPTIMAL
    assert method.progress_units(net, options, 1) == (2, "layer") and ticks == [None, None]
    assert get_method("random").progress_units(net, options, 3) == (options.starts * 3, "start")
