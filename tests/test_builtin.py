"""Built-in networks and architectures (formulation/specs/builtin) and the catalog that loads them."""

from __future__ import annotations

import dataclasses
import json
from importlib import resources

import pytest
import yaml

from formulation.axes import TENSORS, Tensor
from formulation.specs.catalog import arch_names, load_arch, load_network, network_names
from formulation.specs.loading import arch_from_dict, layer_from_dict, mapping_from_list
from formulation.specs.types import SpecError, Technology
from formulation.model.validation import validate_mapping

from tests.conftest import CASES_FILE as REFERENCE_CASES


def _bert_base_macs(layers: int = 12, seq: int = 128, hidden: int = 768, heads: int = 12, ffn: int = 3072) -> int:
    """BERT-base encoder GEMM MACs from first principles (Devlin et al. 2019: L=12, H=768, A=12, FFN=4H).

    Per layer: the Q, K, V and output projections are 4 GEMMs seq x hidden x hidden; per head the
    scores Q_h K_h^T are seq x head_dim x seq and the context A V_h is seq x seq x head_dim; the FFN
    is seq x hidden x ffn twice. At seq 128:
    12 * (4*128*768*768 + 12*2*128*128*64 + 2*128*768*3072)
    = 12 * (301,989,888 + 25,165,824 + 603,979,776) = 11,173,625,856 MACs, about 11.2 GMACs.
    """
    head_dim = hidden // heads
    projections = 4 * seq * hidden * hidden
    attention = heads * (seq * head_dim * seq + seq * seq * head_dim)
    feed_forward = 2 * seq * hidden * ffn
    return layers * (projections + attention + feed_forward)


# name: (published total, exact total of the built-in file).
# The published figures count the multiply-accumulates of the conv and FC layers (torchvision's
# "GFLOPS" column counts one multiply-add as one operation). The exact totals were derived
# independently of the YAML files, by propagating a 224x224 input through each network with its
# real padding and pooling.
PUBLISHED_MACS = {
    # torchvision ResNet18_Weights.IMAGENET1K_V1: 1.81 GFLOPS.
    "resnet18": (1.81e9, 1_814_073_344),
    # torchvision ResNet50_Weights.IMAGENET1K_V1 (v1.5, stride in the 3x3): 4.09 GFLOPS.
    "resnet50": (4.09e9, 4_089_184_256),
    # torchvision VGG16_Weights.IMAGENET1K_V1: 15.47 GFLOPS.
    "vgg16": (15.47e9, 15_470_264_320),
    # torchvision AlexNet_Weights.IMAGENET1K_V1: 0.71 GFLOPS.
    "alexnet": (0.71e9, 714_188_480),
    # Sandler et al., CVPR 2018, Table 4: MobileNetV2 (1.0, 224) 300M multiply-adds; torchvision 0.30 GFLOPS.
    "mobilenetv2": (0.300e9, 300_774_272),
    # From first principles, see _bert_base_macs: 11.17 GMACs.
    "bert-base": (_bert_base_macs(), 11_173_625_856),
}

# Parameter counts published by torchvision (the "num_params" of each weights enum). They include
# the biases of VGG/AlexNet layers and of the classifier, and the two affine parameters per channel
# of every BatchNorm (ResNet, MobileNetV2: one after every conv). Matching them exactly checks the
# C, K, R, S and G of every layer, which the MAC totals alone do not pin down.
PUBLISHED_PARAMS = {
    "resnet18": (11_689_512, "batchnorm"),
    "resnet50": (25_557_032, "batchnorm"),
    "mobilenetv2": (3_504_872, "batchnorm"),
    "vgg16": (138_357_544, "bias"),
    "alexnet": (61_100_840, "bias"),
}

# Weighted layers per network, counting repeats (ResNets: + the downsample shortcuts;
# MobileNetV2: 52 convs + classifier; BERT: 12 x (4 projections + 2 x 12 heads + 2 FFN)).
LAYER_COUNTS = {"resnet18": 18 + 3, "resnet50": 50 + 4, "vgg16": 16, "alexnet": 8, "mobilenetv2": 53,
                "bert-base": 12 * (4 + 2 * 12 + 2)}


def test_builtin_names():
    assert network_names() == sorted(PUBLISHED_MACS)
    assert arch_names() == ["eyeriss-like", "simple"]


def test_package_data_is_found_through_importlib_resources():
    root = resources.files("formulation.specs") / "builtin"
    for name in network_names():
        assert (root / "networks" / f"{name}.yaml").is_file()
    for name in arch_names():
        assert (root / "archs" / f"{name}.yaml").is_file()


@pytest.mark.parametrize("name", sorted(PUBLISHED_MACS))
def test_network_macs_match_published_totals(name):
    published, exact = PUBLISHED_MACS[name]
    net = load_network(name)
    assert net.name == name
    assert net.macs == exact
    assert net.macs == pytest.approx(published, rel=0.01)


@pytest.mark.parametrize("name", sorted(PUBLISHED_PARAMS))
def test_network_parameters_match_torchvision(name):
    published, extra = PUBLISHED_PARAMS[name]
    net = load_network(name)
    classifier = net.layers[-1].layer
    total = 0
    for entry in net.layers:
        layer = entry.layer
        weights = layer.K * (layer.C // layer.G) * layer.R * layer.S
        per_channel = 2 if extra == "batchnorm" and layer is not classifier else 1
        total += (weights + per_channel * layer.K) * entry.count
    assert total == published


@pytest.mark.parametrize("name", sorted(LAYER_COUNTS))
def test_network_layer_counts(name):
    net = load_network(name)
    assert sum(entry.count for entry in net.layers) == LAYER_COUNTS[name]


@pytest.mark.parametrize("name", sorted(PUBLISHED_MACS))
def test_identical_layers_are_collapsed(name):
    net = load_network(name)
    shapes = [tuple(getattr(e.layer, k) for k in ("N", "C", "K", "P", "Q", "R", "S", "Wstride", "Hstride", "G"))
              for e in net.layers]
    assert len(set(shapes)) == len(shapes)
    assert all(e.layer.N == 1 for e in net.layers)


def test_resnet18_matches_the_reference_case_layers():
    net = {e.layer.name: e for e in load_network("resnet18").layers}
    conv1 = net["conv1"].layer
    assert (conv1.C, conv1.K, conv1.P, conv1.Q, conv1.R, conv1.S, conv1.Wstride, conv1.Hstride) == \
        (3, 64, 112, 112, 7, 7, 2, 2)
    assert net["layer1_3x3"].count == 4
    down = net["layer2_downsample"].layer
    assert (down.C, down.K, down.P, down.R, down.Wstride, down.Hstride) == (64, 128, 28, 1, 2, 2)
    fc = net["fc"].layer
    assert (fc.C, fc.K, fc.P, fc.Q, fc.R, fc.S) == (512, 1000, 1, 1, 1, 1)


def test_mobilenetv2_has_real_depthwise_layers():
    net = load_network("mobilenetv2")
    depthwise = [e for e in net.layers if e.layer.G == e.layer.C == e.layer.K > 1]
    # One 3x3 depthwise conv per inverted-residual block: 17 blocks.
    assert sum(e.count for e in depthwise) == 17
    assert all((e.layer.R, e.layer.S) == (3, 3) for e in depthwise)
    assert {e.layer.C for e in depthwise} == {32, 96, 144, 192, 384, 576, 960}
    for e in depthwise:
        assert e.layer.dims[2] == 1 and e.layer.dims[1] == 1  # one input and one output channel per group
        assert e.layer.macs == e.layer.C * e.layer.P * e.layer.Q * 9
    strided = [e.layer for e in depthwise if e.layer.Wstride == 2]
    assert sorted(layer.P for layer in strided) == [7, 14, 28, 56]
    # No grouped conv other than the depthwise ones.
    assert all(e.layer.G == 1 for e in net.layers if e not in depthwise)


def test_bert_base_gemms():
    net = {e.layer.name: e for e in load_network("bert-base").layers}
    for entry in net.values():
        layer = entry.layer
        assert (layer.N, layer.P, layer.Q, layer.R, layer.S, layer.G) == (1, 128, 1, 1, 1, 1)
    assert net["attn_scores_qk"].count == net["attn_context_av"].count == 12 * 12
    assert (net["attn_scores_qk"].layer.C, net["attn_scores_qk"].layer.K) == (64, 128)
    assert (net["attn_context_av"].layer.C, net["attn_context_av"].layer.K) == (128, 64)
    assert net["attn_qkvo_proj"].count == 4 * 12
    assert (net["ffn_up"].layer.C, net["ffn_up"].layer.K) == (768, 3072)
    assert (net["ffn_down"].layer.C, net["ffn_down"].layer.K) == (3072, 768)


def test_simple_arch():
    arch = load_arch("simple")
    assert arch.name == "simple"
    assert [lv.name for lv in arch.levels] == ["DRAM", "GlobalBuffer", "RegisterFile"]
    dram, glb, rf = arch.levels
    assert dram.technology is Technology.DRAM and dram.size_words is None
    assert (dram.block_size, dram.read_energy_pJ, dram.write_energy_pJ, dram.read_bw_words) == (8, 512, 512, 8)
    assert (glb.size_words, glb.block_size, glb.read_energy_pJ, glb.write_energy_pJ, glb.read_bw_words) == \
        (65536, 8, 48, 56, 32)
    assert (rf.size_words, rf.block_size, rf.read_energy_pJ, rf.write_energy_pJ) == (256, 1, 0.5, 0.6)
    assert (rf.instances, rf.mesh_x, rf.mesh_y) == (256, 16, 16)
    assert (arch.mac.instances, arch.mac.mesh_x, arch.mac.mesh_y, arch.mac.energy_pJ) == (256, 16, 16, 1.0)
    assert arch.fanout(1) == (16, 16) and arch.fanout(2) == (1, 1)
    assert all(lv.word_bits == 8 and lv.keeps == frozenset(TENSORS) for lv in arch.levels)


def test_eyeriss_like_arch():
    arch = load_arch("eyeriss-like")
    assert arch.name == "eyeriss-like"
    assert [lv.name for lv in arch.levels] == ["DRAM", "shared_glb", "psum_spad", "weights_spad", "ifmap_spad"]
    keeps = {lv.name: lv.keeps for lv in arch.levels}
    assert keeps == {"DRAM": frozenset(TENSORS), "shared_glb": {Tensor.I, Tensor.O}, "psum_spad": {Tensor.O},
                     "weights_spad": {Tensor.W}, "ifmap_spad": {Tensor.I}}
    assert [lv.size_words for lv in arch.levels] == [None, 55296, 16, 192, 12]
    for lv in arch.levels[2:]:
        assert (lv.instances, lv.mesh_x, lv.mesh_y) == (168, 14, 12)
    assert (arch.mac.instances, arch.mac.mesh_x, arch.mac.mesh_y, arch.mac.energy_pJ) == (168, 14, 12, 2.0)
    assert arch.fanout(1) == (14, 12)
    assert [arch.fanout(i) for i in (2, 3, 4)] == [(1, 1)] * 3
    assert all(lv.word_bits == 16 for lv in arch.levels) and arch.mac.word_bits == 16
    glb = arch.levels[1]
    assert (glb.read_energy_pJ, glb.write_energy_pJ, glb.fill_energy_pJ, glb.update_energy_pJ) == (14, 16, 16, 18)


def _reference_cases() -> list[dict]:
    return [json.loads(line) for line in REFERENCE_CASES.read_text().splitlines() if line.strip()]


@pytest.mark.parametrize("builtin, reference", [("simple", "simple-16x16"), ("eyeriss-like", "eyeriss-like-12x14")])
def test_builtin_arch_mirrors_reference_arch(builtin, reference):
    cases = [c for c in _reference_cases() if c["arch_name"] == reference]
    assert cases
    ours = load_arch(builtin)
    ref = arch_from_dict(cases[0]["arch"])
    assert [lv.name for lv in ours.levels] == [lv.name for lv in ref.levels]
    for mine, theirs in zip(ours.levels, ref.levels):
        # Everything but the keeps lists, which the reference records do not have.
        assert mine == dataclasses.replace(theirs, keeps=mine.keeps)
    assert ours.mac == ref.mac
    # Every reference mapping on that architecture is valid under the built-in keeps lists.
    for case in cases:
        mapping = mapping_from_list(case["mapping"], ours)
        validate_mapping(layer_from_dict(case["layer"]), ours, mapping)


def test_unknown_names_raise_spec_error_listing_builtins():
    with pytest.raises(SpecError) as err:
        load_network("resnet99")
    message = str(err.value)
    assert "resnet99" in message and "\n" not in message
    assert all(name in message for name in network_names())
    with pytest.raises(SpecError) as err:
        load_arch("eyeriss")
    message = str(err.value)
    assert "eyeriss" in message and "\n" not in message
    assert "eyeriss-like" in message and "simple" in message


def test_missing_file_raises_spec_error():
    with pytest.raises(SpecError, match="no such file"):
        load_network("does/not/exist.yaml")
    with pytest.raises(SpecError, match="no such file"):
        load_arch("nowhere.json")


def test_names_are_case_insensitive():
    assert load_network("ResNet18").name == "resnet18"
    assert load_arch("Simple").name == "simple"


def test_network_file_path(tmp_path):
    doc = {"layers": [{"name": "a", "N": 1, "C": 8, "K": 16, "P": 4, "Q": 4, "R": 3, "S": 3, "count": 2},
                      {"name": "b", "N": 1, "C": 16, "K": 4, "P": 4, "Q": 4}]}
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(doc))
    for arg in (path, str(path)):
        net = load_network(arg)
        assert net.name == "tiny"  # no name in the file: the file stem
        assert [e.count for e in net.layers] == [2, 1]
        assert net.macs == 2 * 8 * 16 * 16 * 9 + 16 * 4 * 16


def test_single_layer_file_is_a_one_layer_network(tmp_path):
    path = tmp_path / "conv.json"
    path.write_text(json.dumps({"N": 1, "C": 64, "K": 64, "P": 56, "Q": 56, "R": 3, "S": 3}))
    net = load_network(path)
    assert net.name == "conv" and len(net.layers) == 1 and net.layers[0].count == 1
    assert net.macs == 64 * 64 * 56 * 56 * 9


def test_arch_file_path_and_reference_case(tmp_path):
    doc = yaml.safe_load((resources.files("formulation.specs") / "builtin" / "archs" / "simple.yaml").read_text())
    del doc["name"]
    path = tmp_path / "my-arch.yml"
    path.write_text(yaml.safe_dump(doc))
    arch = load_arch(path)
    assert arch.name == "my-arch"
    assert arch.levels == load_arch("simple").levels

    case = {"id": "x", "arch_name": "from-case", "layer_name": "l1",
            "layer": {"N": 1, "C": 4, "K": 4, "P": 4, "Q": 4}, "arch": doc, "mapping": []}
    case_path = tmp_path / "case.json"
    case_path.write_text(json.dumps(case))
    arch = load_arch(case_path)
    assert arch.name == "from-case" and arch.levels == load_arch("simple").levels
    net = load_network(case_path)
    assert net.name == "l1" and net.macs == 4 * 4 * 4 * 4


def test_bad_file_error_names_the_file(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({"layers": [{"name": "a", "N": 1, "C": 0, "K": 1, "P": 1, "Q": 1}]}))
    with pytest.raises(SpecError) as err:
        load_network(path)
    assert str(path) in str(err.value) and "C" in str(err.value) and "\n" not in str(err.value)
