"""The corpus: about 120 malformed, extreme and edge inputs, each with the outcome a careful user expects.

Every entry is ``Entry(id, argv, expect, timeout_s, checks)``: ``argv`` follows ``codesign``; ``expect`` is
``error`` (one line ``codesign: error: ...`` and exit 2), ``ok`` (exit 0), ``no-design`` (exit 1) or
``any`` (either a result or one clear line). ``checks`` are extra properties of the outcome:
``json`` (stdout is strict JSON, no NaN/Infinity), ``inside`` (nothing written outside the scratch's
``out`` folder), ``finite`` (no nan/inf in stdout). Files are written into the scratch folder ``d``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

LAYER = {"N": 1, "C": 64, "K": 64, "P": 56, "Q": 56, "R": 3, "S": 3, "Wstride": 1, "Hstride": 1}
ARCH = {"name": "simple-16x16", "levels": [
    {"name": "DRAM", "technology": "DRAM", "word_bits": 8, "block_size": 8, "read_energy": 512.0,
     "write_energy": 512.0, "read_bw": 8, "write_bw": 8},
    {"name": "GlobalBuffer", "technology": "SRAM", "size": 65536, "word_bits": 8, "block_size": 8, "instances": 1,
     "read_energy": 48.0, "write_energy": 56.0, "read_bw": 32, "write_bw": 32},
    {"name": "RegisterFile", "technology": "SRAM", "size": 256, "word_bits": 8, "block_size": 1, "instances": 256,
     "meshX": 16, "read_energy": 0.5, "write_energy": 0.6}],
    "mac": {"name": "MACC", "instances": 256, "meshX": 16, "word_bits": 8, "energy": 1.0}}
MAPPING = [{"target": "DRAM", "temporal": {"K": 4, "Q": 14}, "permutation": "QKRSPCN"},
           {"target": "GlobalBuffer", "temporal": {"P": 56, "Q": 4}, "permutation": "PQRSCKN",
            "spatial": {"K": 16, "C": 16}, "spatial_permutation": "KC", "split": 1, "bypass": ["Weights"]},
           {"target": "RegisterFile", "temporal": {"R": 3, "S": 3, "C": 4}, "permutation": "RSCPQKN"}]
TINY = {"name": "tiny", "layers": [{"name": "a", "N": 1, "C": 8, "K": 8, "P": 8, "Q": 8, "R": 3, "S": 3}]}
QUICK = ["--time-limit", "6", "--starts", "1", "--jobs", "1", "--quiet"]


@dataclass(frozen=True)
class Entry:
    id: str
    argv: list[str]
    expect: str
    timeout_s: float = 60.0
    checks: tuple[str, ...] = ()
    files: dict[str, object] = field(default_factory=dict)  # name -> document (dict/list: JSON) or str/bytes


def _case(layer=None, arch=None, mapping=None, **extra) -> dict:
    return {"id": extra.pop("id", "c0"), "layer": layer or LAYER, "arch": arch or ARCH, "mapping": mapping or MAPPING,
            **extra}


def _arch_with(level: int, **changes) -> dict:
    arch = json.loads(json.dumps(ARCH))
    arch["levels"][level].update(changes)
    return arch


def _eval_layer(name: str, layer, expect: str, checks=()) -> Entry:
    return Entry(f"evaluate-layer-{name}", ["evaluate", "--layer", "{d}/" + name + ".json", "--arch", "simple",
                                            "--mapping", "{d}/mapping.json", "--json"], expect, checks=("json", *checks),
                 files={name + ".json": layer, "mapping.json": MAPPING})


def _eval_arch(name: str, arch, expect: str) -> Entry:
    return Entry(f"evaluate-arch-{name}", ["evaluate", "--layer", "resnet18:layer1_3x3", "--arch", "{d}/" + name + ".json",
                                           "--mapping", "{d}/mapping.json", "--json"], expect, checks=("json",),
                 files={name + ".json": arch, "mapping.json": MAPPING})


def _eval_cases(name: str, lines: list, expect: str, checks=("json",)) -> Entry:
    text = "".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines)
    return Entry(f"cases-{name}", ["evaluate", "--cases", "{d}/" + name + ".jsonl"], expect, checks=checks,
                 files={name + ".jsonl": text})


def _network(name: str, doc, expect: str, command: str = "network") -> Entry:
    suffix = ".json" if not isinstance(doc, (str, bytes)) else ".yaml"
    argv = (["network", "{d}/" + name + suffix, "--json"] if command == "network" else
            ["optimize", "--network", "{d}/" + name + suffix, *QUICK, "--out", "{d}/out/" + name])
    return Entry(f"{command}-{name}", argv, expect, checks=("json", "inside") if command == "network" else ("inside",),
                 files={name + suffix: doc})


def _tiny_with(**layer) -> dict:
    return {"name": "tiny", "layers": [{**TINY["layers"][0], **layer}]}


def _optimize(name: str, extra: list[str], expect: str, timeout_s: float = 60.0, files=None) -> Entry:
    return Entry(f"optimize-{name}", ["optimize", "--network", "{d}/tiny.json", *QUICK, "--out", "{d}/out/" + name,
                                      *extra], expect, timeout_s, ("inside",), {"tiny.json": TINY, **(files or {})})


def _solve(name: str, extra: list[str], expect: str, timeout_s: float = 60.0) -> Entry:
    return Entry(f"solve-{name}", ["solve", "--network", "{d}/tiny.json", "--json", *extra], expect, timeout_s,
                 ("json",), {"tiny.json": TINY})


def entries() -> list[Entry]:
    out: list[Entry] = []
    # ---- layers: numbers of the wrong type, size or kind ----------------------------------------------
    bad_layer_values = {"bool": True, "zero": 0, "negative": -3, "float-frac": 2.5, "string": "64", "null": None,
                        "list": [64], "huge": 2 ** 70, "inf-float": 1e400}
    for key, value in bad_layer_values.items():
        out.append(_eval_layer(f"C-{key}", {**LAYER, "C": value}, "error"))
    out.append(_eval_layer("P-overflow", {**LAYER, "P": 7 * 2 ** 44}, "error"))
    out.append(_eval_layer("K-2pow40", {**LAYER, "K": 2 ** 40}, "error"))
    out.append(_eval_layer("float-int", {**LAYER, "C": 64.0}, "ok"))
    out.append(_eval_layer("exp-int", {**LAYER, "R": 3e0}, "ok"))
    out.append(_eval_layer("unknown-key", {**LAYER, "X": 1}, "error"))
    out.append(_eval_layer("not-a-dict", [1, 2, 3], "error"))
    out.append(_eval_layer("stride-huge", {**LAYER, "Wstride": 2 ** 62}, "error"))
    out.append(_eval_layer("G-not-dividing", {**LAYER, "G": 3}, "error"))
    # YAML spellings
    yaml_layers = {
        "yaml-exp-float": "{N: 1, C: 64, K: 64, P: 56, Q: 56, R: 3, S: 3, Wstride: 1, Hstride: 1e0}\n",
        "yaml-inf": "{N: 1, C: .inf, K: 64, P: 56, Q: 56, R: 3, S: 3}\n",
        "yaml-nan": "{N: 1, C: .nan, K: 64, P: 56, Q: 56, R: 3, S: 3}\n",
        "yaml-octal11": "{N: 1, C: 0100, K: 64, P: 56, Q: 56, R: 3, S: 3}\n",
        "yaml-yes": "{N: yes, C: 64, K: 64, P: 56, Q: 56, R: 3, S: 3}\n",
        "yaml-sexagesimal": "{N: 1, C: 1:04, K: 64, P: 56, Q: 56, R: 3, S: 3}\n",
        "yaml-underscore": "{N: 1, C: 6_4, K: 64, P: 56, Q: 56, R: 3, S: 3}\n",
        "yaml-dup-key": "{N: 1, C: 64, C: 32, K: 64, P: 56, Q: 56, R: 3, S: 3}\n",
        "yaml-tab": "N: 1\n\tC: 64\n",
        "yaml-bom": "\ufeff{N: 1, C: 64, K: 64, P: 56, Q: 56, R: 3, S: 3}\n",
        "yaml-python-tag": "!!python/object/apply:os.system ['echo pwned']\n",
        "yaml-multi-doc": "{N: 1, C: 64, K: 64, P: 56, Q: 56, R: 3, S: 3}\n---\n{N: 2}\n",
        "yaml-empty": "",
        "yaml-comment-only": "# nothing\n",
    }
    expects = {"yaml-exp-float": "ok", "yaml-bom": "ok", "yaml-underscore": "error"}
    for name, text in yaml_layers.items():
        e = _eval_layer(name, text, expects.get(name, "error"))
        out.append(Entry(e.id, [a.replace(".json", ".yaml") if name in a else a for a in e.argv], e.expect,
                         checks=e.checks, files={name + ".yaml": text, "mapping.json": MAPPING}))
    # bytes and pathological files
    out.append(Entry("layer-random-bytes", ["evaluate", "--layer", "{d}/bytes.yaml", "--arch", "simple", "--mapping",
                                            "{d}/mapping.json"], "error",
                     files={"bytes.yaml": bytes(range(256)) * 4, "mapping.json": MAPPING}))
    out.append(Entry("layer-latin1", ["evaluate", "--layer", "{d}/latin1.yaml", "--arch", "simple", "--mapping",
                                      "{d}/mapping.json"], "error",
                     files={"latin1.yaml": "name: caf\xe9\nN: 1\n".encode("latin-1"), "mapping.json": MAPPING}))
    out.append(Entry("network-nested-lists", ["network", "{d}/nested.yaml"], "error",
                     files={"nested.yaml": "[" * 50000 + "]" * 50000}))
    out.append(Entry("network-nested-json", ["network", "{d}/nested.json"], "error",
                     files={"nested.json": "[" * 50000 + "]" * 50000}))
    out.append(Entry("network-nested-maps", ["network", "{d}/nestedm.yaml"], "error",
                     files={"nestedm.yaml": "{a: " * 3000 + "1" + "}" * 3000}))
    laughs = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 10)}]\n" for i in range(8))
    out.append(Entry("network-billion-laughs", ["network", "{d}/laughs.yaml"], "error", 60.0,
                     files={"laughs.yaml": laughs + "layers: *i\n"}))
    out.append(Entry("network-huge-file", ["network", "{d}/huge.yaml"], "error", 60.0,
                     files={"huge.yaml": "# " + "x" * (300 * 2 ** 20) + "\n"}))
    out.append(Entry("network-directory", ["network", "{d}/adir.yaml"], "error", files={"adir.yaml/keep": "x"}))
    out.append(Entry("network-missing", ["network", "{d}/nope.yaml"], "error"))
    out.append(Entry("network-dev-null", ["network", "/dev/null"], "error"))
    # ---- networks ----------------------------------------------------------------------------------------
    out.append(_network("count-zero", {"name": "n", "layers": [{**LAYER, "name": "a", "count": 0}]}, "error"))
    out.append(_network("count-bool", {"name": "n", "layers": [{**LAYER, "name": "a", "count": True}]}, "error"))
    out.append(_network("count-huge", {"name": "n", "layers": [{**LAYER, "name": "a", "count": 2 ** 62}]}, "error"))
    out.append(_network("empty-layers", {"name": "n", "layers": []}, "error"))
    out.append(_network("dup-names", {"name": "n", "layers": [{**LAYER, "name": "a"}, {**LAYER, "name": "a"}]}, "error"))
    out.append(_network("name-list", {"name": ["x"], "layers": [{**LAYER, "name": "a"}]}, "error"))
    out.append(_network("layer-name-dict", {"name": "n", "layers": [{**LAYER, "name": {"a": 1}}]}, "error"))
    out.append(_network("layer-name-nul", {"name": "n", "layers": [{**LAYER, "name": "a\x00b"}]}, "error"))
    out.append(_network("layer-name-long", {"name": "n", "layers": [{**LAYER, "name": "x" * 5000}]}, "error"))
    out.append(_network("unicode-name", {"name": "n", "layers": [{**LAYER, "name": "couche-\u00e9\u4e2d"}]}, "ok"))
    out.append(_network("total-macs-overflow", {"name": "n", "layers": [
        {"name": "a", "N": 2 ** 20, "C": 2 ** 20, "K": 2 ** 20, "P": 2 ** 10, "Q": 1}]}, "error"))
    out.append(_network("prime-dim", {"name": "n", "layers": [{"name": "a", "N": 1, "C": 1, "K": 2 ** 61 - 1,
                                                                 "P": 1, "Q": 1}]}, "error"))
    out.append(_network("json-exp-float", '{"name": "n", "layers": [{"name": "a", "N": 1, "C": 6.4e1, "K": 64, '
                                          '"P": 5.6e1, "Q": 56}]}', "ok"))
    out.append(_network("json-nan", '{"name": "n", "layers": [{"name": "a", "N": NaN, "C": 64, "K": 64, "P": 56, '
                                    '"Q": 56}]}', "error"))
    # ---- architectures -------------------------------------------------------------------------------------
    out.append(_eval_arch("energy-inf", _arch_with(1, read_energy=1e400), "error"))
    arch_cases = {
        "energy-neg": (_arch_with(1, read_energy=-1.0), "error"),
        "energy-bool": (_arch_with(1, read_energy=True), "error"),
        "energy-string": (_arch_with(1, read_energy="48"), "error"),
        "energy-huge": (_arch_with(1, read_energy=1e300), "error"),
        "bw-zero": (_arch_with(1, read_bw=0), "error"),
        "bw-inf": (_arch_with(1, read_bw=1e400), "error"),
        "size-zero": (_arch_with(1, size=0), "error"),
        "size-huge": (_arch_with(1, size=2 ** 70), "error"),
        "size-float": (_arch_with(1, size=65536.5), "error"),
        "word-bits-huge": (_arch_with(1, word_bits=2 ** 40), "error"),
        "block-huge": (_arch_with(1, block_size=2 ** 40), "error"),
        "meshX-not-dividing": (_arch_with(2, meshX=7), "error"),
        "technology-bad": (_arch_with(1, technology="FLASH"), "error"),
        "keeps-bad": (_arch_with(1, keeps=["Psums"]), "error"),
        "keeps-string": (_arch_with(1, keeps="Weights"), "error"),
        "level-name-int": (_arch_with(1, name=5), "error"),
        "clock-zero": ({**ARCH, "clock_GHz": 0}, "error"),
        "clock-inf": ({**ARCH, "clock_GHz": 1e400}, "error"),
        "clock-tiny": ({**ARCH, "clock_GHz": 1e-300}, "error"),
        "clock-string": ({**ARCH, "clock_GHz": "fast"}, "error"),
        "mac-energy-nan-str": ({**ARCH, "mac": {**ARCH["mac"], "energy": "nan"}}, "error"),
        "mac-instances-huge": ({**ARCH, "mac": {**ARCH["mac"], "instances": 2 ** 62, "meshX": 2 ** 31}}, "error"),
        "levels-empty": ({**ARCH, "levels": []}, "error"),
        "mac-missing": ({k: v for k, v in ARCH.items() if k != "mac"}, "error"),
        "valid-fill-energy": (_arch_with(1, fill_energy=50.0), "ok"),
    }
    for name, (arch, expect) in arch_cases.items():
        out.append(_eval_arch(name, arch, expect))
    # ---- mappings ------------------------------------------------------------------------------------------
    def mapping_entry(name, mapping, expect="error"):
        return Entry(f"evaluate-mapping-{name}", ["evaluate", "--layer", "resnet18:layer1_3x3", "--arch", "simple",
                                                  "--mapping", "{d}/m-" + name + ".json", "--json"], expect,
                     checks=("json",), files={"m-" + name + ".json": mapping})
    m_bad = json.loads(json.dumps(MAPPING))
    m_bad[0]["temporal"]["K"] = True
    out.append(mapping_entry("factor-bool", m_bad))
    m_bad = json.loads(json.dumps(MAPPING))
    m_bad[0]["temporal"]["K"] = 2 ** 70
    out.append(mapping_entry("factor-huge", m_bad))
    m_bad = json.loads(json.dumps(MAPPING))
    m_bad[1]["split"] = True
    out.append(mapping_entry("split-bool", m_bad))
    m_bad = json.loads(json.dumps(MAPPING))
    m_bad[1]["permutation"] = "PQRSCKNN"
    out.append(mapping_entry("perm-dup", m_bad))
    m_bad = json.loads(json.dumps(MAPPING))
    m_bad[1]["spatial"] = {"K": 32, "C": 16}
    out.append(mapping_entry("fanout-exceeds", m_bad))
    out.append(mapping_entry("not-list", {"a": 1}))
    out.append(mapping_entry("too-short", MAPPING[:2]))
    out.append(mapping_entry("entry-null", [None, MAPPING[1], MAPPING[2]]))
    out.append(mapping_entry("valid", MAPPING, "ok"))
    # ---- evaluate --cases -----------------------------------------------------------------------------------
    out.append(_eval_cases("valid", [_case()], "ok"))
    out.append(_eval_cases("overflow", [_case(layer={**LAYER, "P": 7 * 2 ** 44}, mapping=[
        {"target": "DRAM", "temporal": {"K": 4, "Q": 14, "P": 7 * 2 ** 44}, "permutation": "QKRSPCN"},
        {"target": "GlobalBuffer", "temporal": {"Q": 4}, "permutation": "PQRSCKN", "spatial": {"K": 16, "C": 16},
         "spatial_permutation": "KC", "split": 1, "bypass": ["Weights"]}, MAPPING[2]])], "error"))
    out.append(_eval_cases("energy-inf", [_case(arch=_arch_with(0, read_energy=1e400))], "error"))
    out.append(_eval_cases("not-json", ["{not json"], "error"))
    out.append(_eval_cases("nan-literal", ['{"id": "x", "layer": {"N": NaN}}'], "error"))
    out.append(_eval_cases("array-line", ["[1, 2]"], "error"))
    out.append(_eval_cases("deep-line", ["[" * 100000 + "]" * 100000], "error"))
    out.append(_eval_cases("id-list", [_case(id=["a"])], "error"))
    out.append(_eval_cases("empty-file", [], "ok", checks=()))
    out.append(Entry("cases-bytes", ["evaluate", "--cases", "{d}/bytes.jsonl"], "error",
                     files={"bytes.jsonl": b"\xff\xfe\x00garbage\n"}))
    out.append(_eval_cases("reference-nan", [{**_case(), "timeloop": {"cycles": "NaN"}}], "any"))
    out.append(Entry("evaluate-missing-args", ["evaluate", "--arch", "simple"], "error"))
    out.append(Entry("evaluate-layer-unknown-network", ["evaluate", "--layer", "nonet:x", "--arch", "simple",
                                                        "--mapping", "{d}/mapping.json"], "error",
                     files={"mapping.json": MAPPING}))
    # ---- export-timeloop: hostile case ids and layer names ----------------------------------------------------
    hostile = ["../x", "/abs/evil", "a/../../b", "x" * 1000, "\u00e9t\u00e9-\u4e2d", ".", "..",
               "CON", "a b", "dup/1", "dup_1"]
    out.append(Entry("export-hostile-ids", ["export-timeloop", "--cases", "{d}/hostile.jsonl", "--out",
                                            "{d}/out/export"], "ok", checks=("inside",),
                     files={"hostile.jsonl": "".join(json.dumps(_case(id=h)) + "\n" for h in hostile)}))
    for i, h in enumerate(["../escape", "/tmp/abs-escape-codesign", "a/../../b"]):
        out.append(Entry(f"export-hostile-id-{i}", ["export-timeloop", "--cases", "{d}/h%d.jsonl" % i, "--out",
                                                    "{d}/out/export%d" % i], "ok", checks=("inside",),
                         files={"h%d.jsonl" % i: json.dumps(_case(id=h)) + "\n" + json.dumps(_case(id="other")) + "\n"}))
    out.append(Entry("export-out-is-file", ["export-timeloop", "--cases", "{d}/one.jsonl", "--out", "{d}/afile"],
                     "error", files={"one.jsonl": json.dumps(_case()) + "\n", "afile": "x"}))
    # ---- optimize ------------------------------------------------------------------------------------------
    for i, name in enumerate(["../../escaped", "/tmp/codesign-abs-escape", "a/../../b", ".."]):
        out.append(_network(f"hostile-layer-{i}", {"name": "n", "layers": [{**TINY["layers"][0], "name": name}]},
                            "ok", command="optimize"))
    out.append(_optimize("valid", [], "ok"))
    out.append(_optimize("time-limit-zero", ["--time-limit", "0"], "error"))
    out.append(_optimize("time-limit-nan", ["--time-limit", "nan"], "error"))
    out.append(_optimize("time-limit-inf", ["--time-limit", "inf"], "error"))
    out.append(_optimize("starts-zero", ["--starts", "0"], "error"))
    out.append(_optimize("starts-float", ["--starts", "2.5"], "error"))
    out.append(_optimize("starts-huge", ["--starts", "100000000000"], "error"))
    out.append(_optimize("jobs-huge", ["--jobs", "100000"], "error"))
    out.append(_optimize("seed-negative", ["--seed", "-1"], "error"))
    out.append(_optimize("seed-huge", ["--seed", str(2 ** 200)], "error"))
    out.append(_optimize("area-negative", ["--area-budget", "-2"], "error"))
    out.append(_optimize("area-nan", ["--area-budget", "nan"], "error"))
    out.append(_optimize("area-tiny", ["--area-budget", "1e-9"], "no-design"))
    out.append(_optimize("latency-cap-inf", ["--latency-cap", "inf"], "error"))
    out.append(_optimize("objective-bad", ["--objective", "speed"], "error"))
    out.append(_optimize("power-no-cap", ["--objective", "power"], "error"))
    out.append(_optimize("pareto-zero", ["--pareto", "0"], "error"))
    out.append(_optimize("pareto-one", ["--pareto", "1"], "error"))
    out.append(_optimize("pareto-huge", ["--pareto", "1000000000"], "error"))
    out.append(_optimize("method-bad", ["--method", "magic"], "error"))
    out.append(_optimize("backend-bad", ["--backend", "mpi"], "error"))
    out.append(_optimize("out-is-file", [], "error", files={"outfile": "x"}))
    out[-1] = Entry(out[-1].id, [a if a != "{d}/out/out-is-file" else "{d}/outfile" for a in out[-1].argv], "error",
                    checks=out[-1].checks, files=out[-1].files)
    out.append(Entry("optimize-out-unwritable", ["optimize", "--network", "{d}/tiny.json", *QUICK, "--out",
                                                 "/proc/codesign-out"], "error", files={"tiny.json": TINY}))
    out.append(Entry("optimize-out-under-file", ["optimize", "--network", "{d}/tiny.json", *QUICK, "--out",
                                                 "{d}/afile2/sub"], "error", files={"tiny.json": TINY, "afile2": "x"}))
    out.append(_optimize("max-evals-zero", ["--max-evaluations", "0"], "error"))
    out.append(_optimize("max-evals-small", ["--max-evaluations", "200"], "ok"))
    out.append(_optimize("starts-20-limit-5", ["--starts", "20", "--jobs", "2", "--time-limit", "5"], "ok", 20.0))
    out.append(Entry("optimize-prime-dim", ["optimize", "--network", "{d}/prime.json", *QUICK, "--out", "{d}/out/prime"],
                     "error", 30.0, ("inside",), {"prime.json": _tiny_with(K=2 ** 61 - 1)}))
    out.append(Entry("optimize-big-prime-dim", ["optimize", "--network", "{d}/prime2.json", "--time-limit", "5",
                                                "--starts", "1", "--jobs", "1", "--quiet", "--out", "{d}/out/prime2"],
                     "any", 25.0, ("inside",), {"prime2.json": _tiny_with(C=1, K=16777213, P=1, Q=1, R=1, S=1)}))
    huge_template = {"arch": "simple", "mesh_x": [4, 2 ** 40], "mesh_y": [4, 64]}
    out.append(_optimize("template-huge-mesh", ["--arch-template", "{d}/tpl.json", "--time-limit", "5"], "error", 25.0,
                         files={"tpl.json": huge_template}))
    out.append(_optimize("template-huge-size", ["--arch-template", "{d}/tpl2.json"], "error", 25.0,
                         files={"tpl2.json": {"arch": "simple", "sizes": {"GlobalBuffer": [16, 2 ** 62]}}}))
    out.append(_optimize("template-float-range", ["--arch-template", "{d}/tpl3.json"], "error",
                         files={"tpl3.json": {"arch": "simple", "mesh_x": [4.5, 8]}}))
    out.append(_optimize("template-bool-range", ["--arch-template", "{d}/tpl4.json"], "error",
                         files={"tpl4.json": {"arch": "simple", "mesh_x": [True, 8]}}))
    out.append(_optimize("template-sizes-list", ["--arch-template", "{d}/tpl5.json"], "error",
                         files={"tpl5.json": {"arch": "simple", "sizes": [1, 2]}}))
    out.append(_optimize("template-arch-missing", ["--arch-template", "{d}/tpl6.json"], "error",
                         files={"tpl6.json": {"arch": "nonexistent-arch", "mesh_x": [4, 8]}}))
    out.append(_optimize("template-exp-json", ["--arch-template", "{d}/tpl7.json"], "ok",
                         files={"tpl7.json": '{"arch": "simple", "mesh_x": [4, 1.6e1], "mesh_y": [4, 16]}'}))
    out.append(_optimize("ga-small", ["--method", "ga", "--max-evaluations", "300"], "ok"))
    out.append(_optimize("random-small", ["--method", "random", "--max-evaluations", "300"], "ok"))
    out.append(_optimize("exists-no-force", [], "error", files={"out/exists-no-force/result.json": "{}"}))
    out.append(Entry("optimize-network-missing", ["optimize", *QUICK], "error"))
    out.append(Entry("optimize-onnx-garbage", ["optimize", "--network", "{d}/g.onnx", *QUICK, "--out", "{d}/out/g"],
                     "error", files={"g.onnx": b"\x08\x07garbage" * 10}))
    out.append(Entry("network-onnx-empty", ["network", "{d}/e.onnx"], "error", files={"e.onnx": b""}))
    # ---- solve ---------------------------------------------------------------------------------------------
    out.append(_solve("valid", ["--time-limit", "20"], "ok"))
    out.append(_solve("pareto-one", ["--pareto", "1"], "error"))
    out.append(_solve("power-no-cap", ["--objective", "power"], "error"))
    out.append(_solve("max-iter-negative", ["--max-iter", "-5"], "error"))
    out.append(_solve("energy-cap-nan", ["--energy-cap", "nan"], "error"))
    out.append(_solve("solver-bad", ["--solver", "cplex"], "error"))
    out.append(_solve("area-tiny", ["--area-budget", "1e-12"], "no-design"))
    out.append(_solve("time-limit-negative", ["--time-limit", "-1"], "error"))
    out.append(Entry("solve-template-huge-mesh", ["solve", "--network", "{d}/tiny.json", "--arch-template",
                                                  "{d}/tpl.json", "--json"], "error", 30.0, ("json",),
                     {"tiny.json": TINY, "tpl.json": {"arch": "simple", "mesh_x": [4, 2 ** 40]}}))
    # ---- argv oddities ---------------------------------------------------------------------------------------
    out.append(Entry("no-command", [], "error"))
    out.append(Entry("unknown-command", ["frobnicate"], "error"))
    out.append(Entry("network-builtin-unknown", ["network", "resnet1000"], "error"))
    out.append(Entry("network-builtin-ok", ["network", "resnet18", "--json"], "ok", checks=("json",)))
    out.append(Entry("arch-name-traversal", ["evaluate", "--layer", "resnet18:layer1_3x3", "--arch", "../../etc/passwd",
                                             "--mapping", "{d}/mapping.json"], "error", files={"mapping.json": MAPPING}))
    out.append(Entry("arch-etc-passwd", ["evaluate", "--layer", "resnet18:layer1_3x3", "--arch", "/etc/passwd",
                                         "--mapping", "{d}/mapping.json"], "error", files={"mapping.json": MAPPING}))
    return out


def materialize(entry: Entry, d: Path) -> None:
    """Write ``entry.files`` under ``d`` (dict/list as JSON, str as text, bytes as they are)."""
    for name, doc in entry.files.items():
        path = d / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(doc, bytes):
            path.write_bytes(doc)
        elif isinstance(doc, str):
            path.write_text(doc, encoding="utf-8")
        else:
            path.write_text(json.dumps(doc), encoding="utf-8")
