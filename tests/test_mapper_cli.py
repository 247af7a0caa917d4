"""``codesign map`` and ``codesign optimize --method exact``: files, certificates, one-line mistakes."""

from __future__ import annotations

import json

import pytest
import yaml

from codesign.cli import main
from formulation.model.exact import evaluate
from formulation.specs.catalog import load_arch
from formulation.specs.loading import layer_from_dict, mapping_from_list
from formulation.model.validation import validate_mapping

LAYER = {"name": "small_pw", "N": 1, "C": 8, "K": 16, "P": 4, "Q": 4}
CERT_KEYS = {"objective", "optimal", "lower_bound", "best", "gap", "mapspace", "evaluated", "pruned", "wall_s"}


@pytest.fixture()
def layer_file(tmp_path):
    path = tmp_path / "small_pw.yaml"
    path.write_text(yaml.safe_dump(LAYER))
    return path


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_map_writes_the_proven_mapping_and_its_certificate(layer_file, tmp_path, capsys):
    out_dir = tmp_path / "out"
    code, out, err = run(capsys, "map", "--layer", layer_file, "--arch", "simple", "--objective", "energy",
                         "--time-limit", "none", "--out", out_dir, "--quiet")
    assert code == 0, err
    assert "PROVEN OPTIMAL" in out
    doc = json.loads((out_dir / "certificate.json").read_text())
    cert = doc["certificate"]
    assert CERT_KEYS <= set(cert) and cert["optimal"] is True and cert["gap"] == 0.0
    assert cert["lower_bound"] == cert["best"]
    assert cert["evaluated"] + sum(cert["pruned"].values()) == cert["mapspace"]
    arch = load_arch("simple")
    layer = layer_from_dict(LAYER)
    mapping = mapping_from_list(yaml.safe_load((out_dir / "mapping.yaml").read_text()), arch)
    validate_mapping(layer, arch, mapping)
    assert evaluate(layer, arch, mapping).energy_pJ[0] == pytest.approx(cert["best"], rel=1e-12)
    code, out, err = run(capsys, "map", "--layer", layer_file, "--arch", "simple", "--out", out_dir, "--quiet")
    assert code == 2 and "--force" in err and len(err.strip().splitlines()) == 1


def test_map_pareto_writes_a_proven_front(layer_file, tmp_path, capsys):
    code, out, err = run(capsys, "map", "--layer", layer_file, "--arch", "simple", "--pareto", "--out",
                         tmp_path / "f", "--quiet")
    assert code == 0, err
    doc = json.loads((tmp_path / "f" / "certificate.json").read_text())
    points = doc["pareto"]["points"]
    assert doc["pareto"]["proven"] is True and points
    cycles = [p["cycles"] for p in points]
    energy = [p["energy_pJ"] for p in points]
    assert cycles == sorted(cycles) and energy == sorted(energy, reverse=True)  # non-dominated
    edp = min(e * c / 1e9 for e, c in zip(energy, cycles))
    assert doc["certificate"]["best"] == pytest.approx(edp, rel=1e-12)


@pytest.mark.parametrize("extra, message", [
    (["--objective", "power"], "--objective"),
    (["--time-limit", "-1"], "--time-limit"),
    (["--arch", "nonexistent-arch"], "nonexistent-arch"),
])
def test_map_mistakes_are_one_line_exit_2(layer_file, tmp_path, capsys, extra, message):
    argv = ["map", "--layer", layer_file, "--arch", "simple", "--out", tmp_path / "o", "--quiet"]
    for i in range(0, len(extra), 2):
        if extra[i] in argv:
            argv[argv.index(extra[i]) + 1] = extra[i + 1]
        else:
            argv += extra[i:i + 2]
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert err.startswith("codesign: error:") and message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()


def test_optimize_exact_puts_a_certificate_under_every_layer(tmp_path, capsys):
    net = {"name": "two", "layers": [LAYER, {"name": "fc", "N": 1, "C": 32, "K": 16, "P": 1, "Q": 1, "count": 2}]}
    path = tmp_path / "two.yaml"
    path.write_text(yaml.safe_dump(net))
    out_dir = tmp_path / "run"
    code, out, err = run(capsys, "optimize", "--network", path, "--arch", "simple", "--fixed-hardware",
                         "--method", "exact", "--objective", "energy", "--time-limit", "120", "--out", out_dir,
                         "--quiet")
    assert code == 0, err
    doc = json.loads((out_dir / "result.json").read_text())
    assert doc["status"] == "optimal"
    for entry in doc["layers"]:
        cert = entry["certificate"]
        assert CERT_KEYS <= set(cert) and cert["optimal"] is True
        assert entry["energy_pJ"] == pytest.approx(cert["best"], rel=1e-12)


def test_optimize_exact_needs_fixed_hardware(tmp_path, capsys):
    code, out, err = run(capsys, "optimize", "--network", "resnet18", "--method", "exact", "--out", tmp_path / "x")
    assert code == 2 and "fixed" in err and len(err.strip().splitlines()) == 1
