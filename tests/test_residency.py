"""Activation residency (--keep-activations) on a small graph whose saving is computed by hand."""

from __future__ import annotations

import json

import pytest
import yaml

from codesign.cli import main
from formulation.model.exact import evaluate
from formulation.model.report import evaluation_record
from formulation.model.residency import activation_residency
from formulation.specs.loading import arch_from_dict, mapping_from_list, network_from_dict

# A (4x4, 2 -> 4 channels) feeds B (4 -> 4) and C; C reads A and B (a residual addition).
NETWORK = {"name": "hand", "layers": [
    {"name": "A", "N": 1, "C": 2, "K": 4, "P": 4, "Q": 4},
    {"name": "B", "N": 1, "C": 4, "K": 4, "P": 4, "Q": 4},
    {"name": "C", "N": 1, "C": 4, "K": 2, "P": 4, "Q": 4, "inputs": ["A", "B"]},
]}


def _arch(buffer_words: int):
    return arch_from_dict({"name": "hand", "levels": [
        {"name": "DRAM", "technology": "DRAM", "block_size": 1, "read_energy": 10, "write_energy": 20},
        {"name": "Buffer", "size": buffer_words, "block_size": 1, "read_energy": 1, "write_energy": 1}],
        "mac": {"instances": 1, "energy": 1}})


def _residency(buffer_words: int):
    net = network_from_dict(NETWORK)
    arch = _arch(buffer_words)
    records = {}
    for entry in net.layers:  # every loop at the buffer: the whole layer sits there, DRAM touches each word once
        lay = entry.layer
        mapping = mapping_from_list([{"target": "DRAM"}, {"target": "Buffer", "temporal": {
            "C": lay.C, "K": lay.K, "P": lay.P, "Q": lay.Q}}], arch)
        records[lay.name] = evaluation_record(evaluate(lay, arch, mapping), arch)
    return net, records, activation_residency(net, arch, records)


def test_working_sets_and_dram_counts_are_what_the_hand_computation_assumes():
    _, records, _ = _residency(10_000)
    # working sets W + I + O: A 8 + 32 + 64, B 16 + 64 + 64, C 8 + 64 + 32
    assert [records[n]["levels"]["Buffer"]["capacity_used_words"] for n in "ABC"] == [104, 144, 104]
    dram = {n: records[n]["levels"]["DRAM"]["tensors"] for n in "ABC"}
    assert [dram[n]["Outputs"]["updates"] for n in "AB"] == [64, 64]
    assert [dram[n]["Inputs"]["reads"] for n in "BC"] == [64, 64]


@pytest.mark.parametrize("size, kept, saved_pJ, words", [
    # A lives from A to C: needs 64 + max(104, 144, 104) = 208 words.
    (207, (), 0.0, 0),
    # A kept: its write (64 x 20 pJ) and B's reads (all of B's producers kept: 64 x 10 pJ); C also reads
    # B, which is not kept, so C's reads stay.
    (208, ("A",), 64 * 20 + 64 * 10, 128),
    # B also kept when 64 (A) + 64 (B) + 144 (B's working set) = 272 fit: B's write and C's reads go too.
    (272, ("A", "B"), 2 * 64 * 20 + 2 * 64 * 10, 256),
    (271, ("A",), 64 * 20 + 64 * 10, 128),
])
def test_saving_computed_by_hand(size, kept, saved_pJ, words):
    _, _, residency = _residency(size)
    assert residency.kept == kept
    assert residency.dram_energy_saved_pJ == pytest.approx(saved_pJ)
    assert residency.dram_words_saved == words
    assert residency.level == "Buffer" and residency.size_words == size


def test_no_bounded_single_level_below_dram_keeps_nothing():
    net, records, _ = _residency(10_000)
    arch = arch_from_dict({"name": "x", "levels": [
        {"name": "DRAM", "technology": "DRAM", "read_energy": 10, "write_energy": 20},
        {"name": "Buffer", "size": 4096, "instances": 4, "read_energy": 1, "write_energy": 1}],
        "mac": {"instances": 4, "energy": 1}})
    residency = activation_residency(net, arch, records)
    assert residency.level is None and residency.kept == () and residency.dram_energy_saved_pJ == 0


def test_optimize_keep_activations_reports_saving_and_buffer(tmp_path, capsys):
    net = {"name": "pair", "layers": [{"name": "a", "N": 1, "C": 16, "K": 16, "P": 14, "Q": 14, "R": 3, "S": 3},
                                      {"name": "b", "N": 1, "C": 16, "K": 16, "P": 14, "Q": 14}]}
    (tmp_path / "pair.yaml").write_text(yaml.safe_dump(net))
    (tmp_path / "t.yaml").write_text(yaml.safe_dump({"arch": "simple", "mesh_x": [2, 8], "mesh_y": [2, 8],
                                                     "sizes": {"GlobalBuffer": [1024, 65536],
                                                               "RegisterFile": [16, 256]}}))
    out = tmp_path / "out"
    assert main(["optimize", "--network", str(tmp_path / "pair.yaml"), "--arch-template", str(tmp_path / "t.yaml"),
                 "--objective", "energy", "--starts", "1", "--jobs", "1", "--time-limit", "60", "--quiet",
                 "--keep-activations", "--out", str(out)]) == 0
    doc = json.loads((out / "result.json").read_text())
    res = doc["activation_residency"]
    assert res["level"] == "GlobalBuffer" and res["size_words"] == doc["hardware"]["buffers_words"]["GlobalBuffer"]
    assert res["kept"] == ["a"] and res["dram_energy_saved_pJ"] > 0
    per_layer = sum(entry["energy_pJ"] * entry["count"] for entry in doc["layers"])
    assert res["energy_pJ_per_layer_sum"] == pytest.approx(per_layer)
    assert doc["totals"]["energy_pJ"] == pytest.approx(per_layer - res["dram_energy_saved_pJ"])
    assert "keep-activations: GlobalBuffer" in capsys.readouterr().out
