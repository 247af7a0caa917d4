"""The codesign command line: real outputs, and one clear line (exit 2) for every user mistake."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from codesign.cli import main
from tests.conftest import CASES_FILE


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_evaluate_cases_prints_reference_keyed_json(capsys, tmp_path):
    lines = CASES_FILE.read_text().splitlines()[:5]
    small = tmp_path / "five.jsonl"
    small.write_text("\n".join(lines) + "\n")
    code, out, err = run(capsys, "evaluate", "--cases", str(small), "--check")
    assert code == 0, err
    records = [json.loads(line) for line in out.splitlines()]
    assert [r["id"] for r in records] == [json.loads(line)["id"] for line in lines]
    for record, line in zip(records, lines):
        reference = json.loads(line)["timeloop"]
        assert record["agrees_with_reference"] is True
        assert record["cycles"] == reference["cycles"]
        for level, data in reference["levels"].items():
            assert set(record["levels"][level]["tensors"]) == set(data["tensors"])


def test_check_reports_a_disagreement(capsys, tmp_path):
    doc = json.loads(CASES_FILE.read_text().splitlines()[0])
    doc["timeloop"]["levels"]["DRAM"]["tensors"]["Inputs"]["reads"] += 1
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(doc) + "\n")
    code, out, err = run(capsys, "evaluate", "--cases", str(bad), "--check")
    assert code == 1
    assert json.loads(out)["agrees_with_reference"] is False
    assert "differ" in err


def test_builtin_mapping_evaluates_to_the_timeloop_anchor(capsys):
    from formulation.specs.catalog import builtin_mapping_path

    code, out, _ = run(capsys, "evaluate", "--layer", "resnet18:layer1_3x3", "--arch", "simple",
                       "--mapping", str(builtin_mapping_path("resnet18_layer1_3x3_simple")))
    assert code == 0
    anchor = json.loads(CASES_FILE.read_text().splitlines()[0])["timeloop"]
    assert f"cycles {anchor['cycles']:,}" in out
    assert f"energy {anchor['energy_pJ'] / 1e6:,.3f} uJ" in out


def test_network_lists_layers_and_total(capsys):
    code, out, _ = run(capsys, "network", "resnet18", "--json")
    assert code == 0
    doc = json.loads(out)
    assert doc["total_macs"] == sum(row["macs"] * row["count"] for row in doc["layers"])
    assert {"conv1", "fc"} <= {row["name"] for row in doc["layers"]}


def test_evaluate_single_mapping_from_files(capsys, tmp_path):
    doc = json.loads(CASES_FILE.read_text().splitlines()[1])
    (tmp_path / "layer.json").write_text(json.dumps(doc["layer"]))
    (tmp_path / "arch.json").write_text(json.dumps(doc["arch"]))
    (tmp_path / "mapping.json").write_text(json.dumps(doc["mapping"]))
    code, out, err = run(capsys, "evaluate", "--layer", str(tmp_path / "layer.json"), "--arch",
                         str(tmp_path / "arch.json"), "--mapping", str(tmp_path / "mapping.json"), "--json")
    assert code == 0, err
    record = json.loads(out)
    assert record["energy_pJ"] == pytest.approx(doc["timeloop"]["energy_pJ"], rel=1e-9)


@pytest.mark.parametrize("mutate, needle", [
    (lambda d: d["layer"].update(C=-3), "C = -3"),
    (lambda d: d["layer"].update(K=2.5), "K = 2.5"),
    (lambda d: d["layer"].update(colour=1), "colour"),
    (lambda d: d["mapping"][0]["temporal"].update(K=3), "K"),
    (lambda d: (d["mapping"][0]["temporal"].pop("K"), d["mapping"][1]["spatial"].update(K=64)), "spatial X = 64"),
    (lambda d: d["arch"]["levels"][2].update(size=4), "overflow RegisterFile size 4"),
    (lambda d: d["mapping"][0].update(permutation="QKQ"), "permutation"),
    (lambda d: d["mapping"][1].update(keep=["Bananas"]), "Bananas"),
    (lambda d: d["arch"]["levels"][1].update(read_bw=-1), "read_bw = -1"),
])
def test_bad_case_gets_one_line_naming_field_and_value(capsys, tmp_path, mutate, needle):
    doc = json.loads(CASES_FILE.read_text().splitlines()[0])
    mutate(doc)
    path = tmp_path / "case.jsonl"
    path.write_text(json.dumps(doc) + "\n")
    code, out, err = run(capsys, "evaluate", "--cases", str(path))
    assert code == 2
    record = json.loads(out)
    assert record["line"] == 1 and needle in record["error"] and "\n" not in record["error"]
    assert err.count("\n") == 1 and err.startswith("codesign: error: 1 line(s)")
    assert "Traceback" not in err


def test_bad_lines_do_not_stop_the_others(capsys, tmp_path):
    """Good lines are scored (in input order, across several (layer, arch) groups), each bad one
    prints an error object naming its field and value, and the run exits 2 at the end."""
    lines = CASES_FILE.read_text().splitlines()
    picked = [lines[0], lines[100], lines[1], lines[200]]
    illegal = json.loads(lines[2])
    illegal["mapping"][0]["temporal"]["K"] = 3
    text = [picked[0], "{not json", picked[1], json.dumps(illegal), "", picked[2], picked[3]]
    path = tmp_path / "mixed.jsonl"
    path.write_text("\n".join(text) + "\n")
    code, out, err = run(capsys, "evaluate", "--cases", str(path), "--check")
    assert code == 2
    records = [json.loads(line) for line in out.splitlines()]
    assert len(records) == 6  # the blank line prints nothing
    assert records[1] == {"line": 2, "error": records[1]["error"]} and "'{not json'" in records[1]["error"]
    assert records[3]["line"] == 4 and records[3]["id"] == illegal["id"] and "K" in records[3]["error"]
    good = [records[i] for i in (0, 2, 4, 5)]
    assert [r["id"] for r in good] == [json.loads(line)["id"] for line in picked]
    assert all(r["agrees_with_reference"] for r in good)
    assert "2 line(s)" in err


@pytest.mark.parametrize("argv", [
    ["network", "resnet99"],
    ["evaluate", "--cases", "/nonexistent.jsonl"],
    ["evaluate", "--layer", "resnet18:nope", "--arch", "simple", "--mapping", "x.yaml"],
    ["evaluate", "--layer", "resnet18:conv1"],
])
def test_bad_names_and_files(capsys, argv):
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert err.startswith("codesign: error: ") and err.count("\n") == 1


def test_console_script_exit_status_on_user_error():
    proc = subprocess.run([sys.executable, "-m", "codesign.cli", "network", "no-such-net"],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert "no-such-net" in proc.stderr
