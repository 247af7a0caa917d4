"""Fuzzing the loaders and the CLI in-process: random documents, random bytes, extreme numbers and hostile
names give a valid result or one clear line (SpecError / exit 2), never another exception or a hang."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from codesign.cli import main
from formulation.specs.catalog import load_arch
from formulation.specs.loading import (
    LAYER_KEYS,
    arch_from_dict,
    case_from_dict,
    layer_from_dict,
    mapping_from_list,
    network_from_dict,
)
from formulation.specs.numbers import MAX_LAYER_MACS
from formulation.specs.safe_load import parse_json, parse_yaml
from formulation.specs.template import template_from_dict
from formulation.specs.types import SpecError

FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

EXTREME = st.one_of(st.integers(min_value=-2 ** 70, max_value=2 ** 70), st.floats(allow_nan=True, allow_infinity=True),
                    st.booleans(), st.none(), st.sampled_from([0, 1, 2 ** 24, 2 ** 24 + 1, 2 ** 40, 2 ** 63, -1, 0.5,
                                                               1e300, "64", "", "nan", [], {}]))
SCALARS = st.one_of(EXTREME, st.text(max_size=12))
DOCS = st.recursive(SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                     st.dictionaries(st.text(max_size=8), inner, max_size=5)),
                    max_leaves=20)
HOSTILE_NAMES = st.one_of(st.sampled_from(["../x", "/abs", "a/../../b", ".", "..", "", "x" * 3000, "été", "a\x00b"]),
                          st.text(max_size=40))
LAYER = {"N": 1, "C": 64, "K": 64, "P": 56, "Q": 56, "R": 3, "S": 3}


def _clear_or_valid(build, doc):
    try:
        return build(doc)
    except SpecError as exc:
        assert "\n" not in str(exc) and len(str(exc)) < 2000
        return None


@FUZZ
@given(doc=DOCS)
def test_random_documents_through_every_loader(doc):
    arch = load_arch("simple")
    for build in (layer_from_dict, arch_from_dict, network_from_dict, lambda d: mapping_from_list(d, arch),
                  lambda d: template_from_dict(d, arch, "t"), lambda d: case_from_dict(d, 1)):
        _clear_or_valid(build, doc)


@FUZZ
@given(key=st.sampled_from(LAYER_KEYS), value=EXTREME, name=HOSTILE_NAMES)
def test_extreme_layer_numbers_and_names(key, value, name):
    layer = _clear_or_valid(layer_from_dict, {**LAYER, key: value, "name": name})
    if layer is not None:
        assert layer.macs <= MAX_LAYER_MACS and all(isinstance(getattr(layer, k), int) for k in LAYER_KEYS)
        assert not isinstance(value, bool)


@FUZZ
@given(data=st.binary(max_size=300))
def test_random_bytes_parse_or_one_line(data):
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return
    for parse in (parse_yaml, parse_json):
        _clear_or_valid(lambda t: parse(t, "fuzz"), text)


@FUZZ
@given(level=st.integers(min_value=0, max_value=2), key=st.sampled_from(
    ["size", "read_energy", "write_energy", "read_bw", "block_size", "word_bits", "instances", "meshX", "name"]),
    value=EXTREME)
def test_extreme_architecture_numbers(level, key, value):
    from search.results import arch_document

    doc = arch_document(load_arch("simple"))
    doc["levels"][level][key] = value
    arch = _clear_or_valid(arch_from_dict, doc)
    if arch is not None:
        lv = arch.levels[level]
        for energy in (lv.read_energy_pJ, lv.write_energy_pJ):
            assert math.isfinite(energy) and energy >= 0


@FUZZ
@given(doc=DOCS)
def test_cli_network_and_cases_answer_with_json_or_one_line(doc, tmp_path, capsys):
    (tmp_path / "n.json").write_text(json.dumps(doc))
    (tmp_path / "c.jsonl").write_text(json.dumps(doc) + "\n")
    for argv in (["network", str(tmp_path / "n.json"), "--json"], ["evaluate", "--cases", str(tmp_path / "c.jsonl")]):
        code = main(argv)
        out, err = capsys.readouterr()
        assert code in (0, 2), err
        assert "Traceback" not in err
        if code == 2:
            assert err.count("\n") == 1 and err.startswith("codesign: error:")
        else:
            for line in out.splitlines() if argv[0] == "evaluate" else [out]:
                json.loads(line, parse_constant=lambda c: pytest.fail(f"{c} in JSON output"))


@FUZZ
@given(flag=st.sampled_from(["--starts", "--jobs", "--seed", "--time-limit", "--pareto", "--area-budget",
                             "--latency-cap", "--power-cap", "--max-evaluations"]),
       value=st.one_of(st.text(max_size=12), st.sampled_from(["nan", "inf", "-inf", "1e400", "0", "-1", "1e-400",
                                                              str(2 ** 200), "0x10", "1_000", " 5 "])))
def test_cli_optimize_flags_never_trace_back(flag, value, tmp_path, capsys):
    """A bad flag is refused before anything runs; a good one gets as far as the (missing) network file."""
    code = main(["optimize", "--network", str(tmp_path / "missing.yaml"), flag, value, "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert not (tmp_path / "o").exists()
