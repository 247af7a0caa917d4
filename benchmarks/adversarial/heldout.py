"""A second corpus, written after the fixes and run once before any further change: inputs of the same kinds
that the hardening was not developed against (``python -m benchmarks.adversarial LABEL --heldout``)."""

from __future__ import annotations

import json

from benchmarks.adversarial.corpus import ARCH, LAYER, MAPPING, QUICK, TINY, Entry, _arch_with, _case


def _ev(name, files, argv, expect, checks=("json",), timeout_s=60.0):
    return Entry(f"heldout-{name}", argv, expect, timeout_s, checks, files)


def entries() -> list[Entry]:
    out: list[Entry] = []
    lay = ["--layer", "resnet18:layer1_3x3", "--arch", "simple"]
    m = lambda mapping: {"m.json": mapping}  # noqa: E731
    bad = json.loads(json.dumps(MAPPING))
    bad[1]["spatial"] = {"K": 2 ** 40}
    out.append(_ev("spatial-huge", m(bad), ["evaluate", *lay, "--mapping", "{d}/m.json", "--json"], "error"))
    bad = json.loads(json.dumps(MAPPING))
    bad[1]["keep"] = "Inputs"
    out.append(_ev("keep-string", m(bad), ["evaluate", *lay, "--mapping", "{d}/m.json", "--json"], "error"))
    bad = json.loads(json.dumps(MAPPING))
    bad[1]["bypass"] = [["Weights"]]
    out.append(_ev("bypass-nested", m(bad), ["evaluate", *lay, "--mapping", "{d}/m.json", "--json"], "error"))
    bad = json.loads(json.dumps(MAPPING))
    bad[0]["temporal"] = [4, 14]
    out.append(_ev("temporal-list", m(bad), ["evaluate", *lay, "--mapping", "{d}/m.json", "--json"], "error"))
    bad = json.loads(json.dumps(MAPPING))
    bad[0]["permutation"] = 7
    out.append(_ev("perm-int", m(bad), ["evaluate", *lay, "--mapping", "{d}/m.json", "--json"], "error"))
    bad = json.loads(json.dumps(MAPPING))
    bad[1]["split"] = -1
    out.append(_ev("split-negative", m(bad), ["evaluate", *lay, "--mapping", "{d}/m.json", "--json"], "error"))
    bad = json.loads(json.dumps(MAPPING))
    bad[0]["target"] = ["DRAM"]
    out.append(_ev("target-list", m(bad), ["evaluate", *lay, "--mapping", "{d}/m.json", "--json"], "error"))
    out.append(_ev("mapping-yaml-anchor", {"m.yaml": "- &d {target: DRAM, temporal: {K: 4, Q: 14}, permutation: QKRSPCN}\n"
                                           "- {target: GlobalBuffer, temporal: {P: 56, Q: 4}, permutation: PQRSCKN, "
                                           "spatial: {K: 16, C: 16}, spatial_permutation: KC, split: 1, bypass: [Weights]}\n"
                                           "- {target: RegisterFile, temporal: {R: 3, S: 3, C: 4}, permutation: RSCPQKN}\n"},
                   ["evaluate", *lay, "--mapping", "{d}/m.yaml", "--json"], "ok"))
    out.append(_ev("mapping-merge-key", {"m.yaml": "- {<<: {target: DRAM}, temporal: {K: 4, Q: 14}}\n- {}\n- {}\n"},
                   ["evaluate", *lay, "--mapping", "{d}/m.yaml", "--json"], "error"))
    # layers and networks
    out.append(_ev("layer-key-int", {"l.yaml": "{1: 2, N: 1, C: 64, K: 64, P: 56, Q: 56}\n"},
                   ["network", "{d}/l.yaml", "--json"], "error"))
    out.append(_ev("layer-key-list", {"l.yaml": "{[1, 2]: 3, N: 1}\n"}, ["network", "{d}/l.yaml", "--json"], "error"))
    out.append(_ev("layer-float-exp-huge", {"l.json": '{"N": 1, "C": 1e20, "K": 1, "P": 1, "Q": 1}'},
                   ["network", "{d}/l.json", "--json"], "error"))
    out.append(_ev("layer-negative-zero", {"l.json": '{"N": -0.0, "C": 1, "K": 1, "P": 1, "Q": 1}'},
                   ["network", "{d}/l.json", "--json"], "error"))
    out.append(_ev("layer-int-digits", {"l.json": '{"N": 1' + "0" * 5000 + ', "C": 1, "K": 1, "P": 1, "Q": 1}'},
                   ["network", "{d}/l.json", "--json"], "error"))
    out.append(_ev("layer-yaml-int-digits", {"l.yaml": "{N: 1" + "0" * 5000 + ", C: 1, K: 1, P: 1, Q: 1}\n"},
                   ["network", "{d}/l.yaml", "--json"], "error"))
    out.append(_ev("network-yml-suffix", {"n.yml": "name: n\nlayers:\n  - {name: a, N: 1, C: 8, K: 8, P: 4, Q: 4}\n"},
                   ["network", "{d}/n.yml", "--json"], "ok"))
    out.append(_ev("network-layers-dict", {"n.json": {"name": "n", "layers": {"a": LAYER}}},
                   ["network", "{d}/n.json", "--json"], "error"))
    out.append(_ev("network-repeat-float", {"n.json": {"name": "n", "layers": [{**LAYER, "name": "a", "repeat": 2.0}]}},
                   ["network", "{d}/n.json", "--json"], "ok"))
    out.append(_ev("network-dilation-huge", {"n.json": {"name": "n", "layers": [{**LAYER, "name": "a",
                                                                                  "Wdilation": 2 ** 23, "R": 3}]}},
                   ["network", "{d}/n.json", "--json"], "error"))
    out.append(_ev("network-ansi-name", {"n.json": {"name": "n", "layers": [{**LAYER, "name": "\x1b[2Jx"}]}},
                   ["network", "{d}/n.json"], "error", ()))
    out.append(_ev("network-bidi-name", {"n.json": {"name": "n", "layers": [{**LAYER, "name": "a\u202eb"}]}},
                   ["network", "{d}/n.json", "--json"], "any"))
    out.append(_ev("network-utf16", {"n.json": '{"name": "n"}'.encode("utf-16")}, ["network", "{d}/n.json"], "error", ()))
    out.append(_ev("network-fifo-like", {}, ["network", "/dev/zero"], "error", ()))
    # architectures
    out.append(_ev("arch-yaml-inf-energy", {"a.yaml": _yaml_arch_with_inf(), "m.json": MAPPING},
                   ["evaluate", "--layer", "resnet18:layer1_3x3", "--arch", "{d}/a.yaml", "--mapping", "{d}/m.json",
                    "--json"], "error"))
    out.append(_ev("arch-bw-tiny", {"a.json": _arch_with(0, read_bw=1e-300), "m.json": MAPPING},
                   ["evaluate", "--layer", "resnet18:layer1_3x3", "--arch", "{d}/a.json", "--mapping", "{d}/m.json",
                    "--json"], "error"))
    out.append(_ev("arch-mac-meshx-zero", {"a.json": {**ARCH, "mac": {**ARCH["mac"], "meshX": 0}}, "m.json": MAPPING},
                   ["evaluate", "--layer", "resnet18:layer1_3x3", "--arch", "{d}/a.json", "--mapping", "{d}/m.json",
                    "--json"], "error"))
    out.append(_ev("arch-levels-dict", {"a.json": {**ARCH, "levels": {"a": 1}}, "m.json": MAPPING},
                   ["evaluate", "--layer", "resnet18:layer1_3x3", "--arch", "{d}/a.json", "--mapping", "{d}/m.json",
                    "--json"], "error"))
    out.append(_ev("arch-technology-list", {"a.json": _arch_with(1, technology=["SRAM"]), "m.json": MAPPING},
                   ["evaluate", "--layer", "resnet18:layer1_3x3", "--arch", "{d}/a.json", "--mapping", "{d}/m.json",
                    "--json"], "error"))
    out.append(_ev("arch-clock-large", {"a.json": {**ARCH, "clock_GHz": 5.0}, "m.json": MAPPING},
                   ["evaluate", "--layer", "resnet18:layer1_3x3", "--arch", "{d}/a.json", "--mapping", "{d}/m.json",
                    "--json"], "ok"))
    # cases and export
    out.append(_ev("cases-blank-and-crlf", {"c.jsonl": "\r\n" + json.dumps(_case()) + "\r\n\r\n"},
                   ["evaluate", "--cases", "{d}/c.jsonl"], "ok"))
    out.append(_ev("cases-id-number", {"c.jsonl": json.dumps(_case(id=12)) + "\n"}, ["evaluate", "--cases", "{d}/c.jsonl"],
                   "ok"))
    out.append(_ev("export-same-id-twice", {"c.jsonl": json.dumps(_case(id="a")) + "\n" + json.dumps(_case(id="a")) + "\n"},
                   ["export-timeloop", "--cases", "{d}/c.jsonl", "--out", "{d}/out/e"], "any", ("inside",)))
    out.append(_ev("export-id-dotdot-only", {"c.jsonl": json.dumps(_case(id="..")) + "\n"},
                   ["export-timeloop", "--cases", "{d}/c.jsonl", "--out", "{d}/out/e", "--id", ".."], "ok", ("inside",)))
    out.append(_ev("export-layer-colon", {}, ["export-timeloop", "--layer", "resnet18:", "--arch", "simple", "--mapping",
                                              "x.yaml", "--out", "{d}/out/e"], "error", ("inside",)))
    # optimize and solve
    tiny = {"tiny.json": TINY}
    out.append(_ev("optimize-out-dot", tiny, ["optimize", "--network", "{d}/tiny.json", *QUICK, "--out", "."], "error",
                   ("inside",)))
    out.append(_ev("optimize-out-hostile-name", tiny, ["optimize", "--network", "{d}/tiny.json", *QUICK, "--out",
                                                       "{d}/out/a b..c"], "ok", ("inside",)))
    out.append(_ev("optimize-fixed-no-arch", tiny, ["optimize", "--network", "{d}/tiny.json", *QUICK, "--fixed-hardware",
                                                    "--out", "{d}/out/f"], "error", ("inside",)))
    out.append(_ev("optimize-time-limit-tiny", tiny, ["optimize", "--network", "{d}/tiny.json", "--time-limit", "1e-9",
                                                      "--quiet", "--out", "{d}/out/t"], "no-design", ("inside",)))
    out.append(_ev("optimize-time-limit-huge", tiny, ["optimize", "--network", "{d}/tiny.json", "--time-limit", "1e300",
                                                      "--quiet", "--out", "{d}/out/t"], "error", ("inside",)))
    out.append(_ev("optimize-latency-cap-tiny", tiny, ["optimize", "--network", "{d}/tiny.json", *QUICK, "--latency-cap",
                                                       "1e-300", "--out", "{d}/out/l"], "no-design", ("inside",)))
    out.append(_ev("optimize-weighted-sum-pareto", tiny, ["optimize", "--network", "{d}/tiny.json", *QUICK, "--method",
                                                          "weighted-sum", "--pareto", "2", "--max-evaluations", "200",
                                                          "--out", "{d}/out/w"], "ok", ("inside",), 120.0))
    out.append(_ev("optimize-template-inverted", {**tiny, "t.json": {"arch": "simple", "mesh_x": [16, 4]}},
                   ["optimize", "--network", "{d}/tiny.json", *QUICK, "--arch-template", "{d}/t.json", "--out",
                    "{d}/out/t"], "error", ("inside",)))
    out.append(_ev("optimize-template-unknown-level", {**tiny, "t.json": {"arch": "simple", "sizes": {"L2": [1, 2]}}},
                   ["optimize", "--network", "{d}/tiny.json", *QUICK, "--arch-template", "{d}/t.json", "--out",
                    "{d}/out/t"], "error", ("inside",)))
    out.append(_ev("solve-max-iter-huge", tiny, ["solve", "--network", "{d}/tiny.json", "--max-iter", "1e99", "--json"],
                   "error"))
    out.append(_ev("solve-energy-cap-tiny", tiny, ["solve", "--network", "{d}/tiny.json", "--energy-cap", "1e-30",
                                                   "--json"], "no-design"))
    out.append(_ev("solve-pareto-two", tiny, ["solve", "--network", "{d}/tiny.json", "--pareto", "2", "--json",
                                              "--time-limit", "20"], "ok", ("json",), 120.0))
    return out


def _yaml_arch_with_inf() -> str:
    import yaml

    text = yaml.safe_dump(ARCH, sort_keys=False)
    return text.replace("read_energy: 48.0", "read_energy: .inf")
