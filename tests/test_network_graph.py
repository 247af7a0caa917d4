"""Networks as graphs: YAML inputs, ONNX edges, shape dedup with counts, topological order, drawing."""

from __future__ import annotations

import networkx as nx
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from codesign.cli import main
from formulation.specs.catalog import load_network, network_names
from formulation.specs.graph import consumers, evaluation_order, network_graph, to_dot
from formulation.specs.loading import network_from_dict
from formulation.specs.types import SpecError

BRANCHY = {"name": "branchy", "layers": [
    {"name": "stem", "N": 1, "C": 3, "K": 8, "P": 8, "Q": 8, "R": 3, "S": 3},
    {"name": "a", "N": 1, "C": 8, "K": 8, "P": 8, "Q": 8, "R": 3, "S": 3},
    {"name": "b", "N": 1, "C": 8, "K": 8, "P": 8, "Q": 8, "R": 3, "S": 3, "inputs": ["stem"]},
    {"name": "join", "N": 1, "C": 16, "K": 4, "P": 8, "Q": 8, "inputs": ["a", "b"]},
    {"name": "tail", "N": 1, "C": 4, "K": 4, "P": 8, "Q": 8, "count": 2},
    {"name": "heads", "N": 1, "C": 4, "K": 8, "P": 8, "Q": 1, "parallel": 3, "inputs": ["stem", "tail#2"]},
]}


def test_yaml_inputs_become_edges_and_equal_shapes_merge():
    net = network_from_dict(BRANCHY)
    g = network_graph(net)
    assert set(g.edges) == {("stem", "a"), ("stem", "b"), ("a", "join"), ("b", "join"), ("join", "tail"),
                            ("tail", "tail#2"), ("stem", "heads"), ("tail#2", "heads")}
    counts = {e.layer.name: e.count for e in net.layers}
    assert counts == {"stem": 1, "a": 2, "join": 1, "tail": 2, "heads": 3}   # b has a's shape
    assert g.nodes["b"]["layer"] == "a" and g.nodes["heads"]["parallel"] == 3
    assert net.macs == sum(g.nodes[n]["macs"] for n in g)
    order = evaluation_order(net)
    assert order == list(nx.topological_sort(g)) or all(order.index(u) < order.index(v) for u, v in g.edges)
    assert consumers(net)["stem"] == ["a", "b", "heads"]


def test_inputs_must_name_earlier_layers():
    bad = {"name": "x", "layers": [{"name": "a", "N": 1, "C": 1, "K": 1, "P": 1, "Q": 1, "inputs": ["b"]},
                                   {"name": "b", "N": 1, "C": 1, "K": 1, "P": 1, "Q": 1}]}
    with pytest.raises(SpecError, match="node a.inputs = 'b': must name an earlier node"):
        network_from_dict(bad)


def test_plain_list_is_a_chain():
    net = load_network("vgg16")
    g = network_graph(net)
    assert nx.is_directed_acyclic_graph(g) and g.number_of_nodes() == 16
    assert all(g.in_degree(n) <= 1 and g.out_degree(n) <= 1 for n in g)
    assert ("conv3_2_3", "conv3_2_3#2") in g.edges


@pytest.mark.parametrize("name", network_names())
def test_builtins_are_dags_whose_nodes_repeat_the_counts(name):
    net = load_network(name)
    g = network_graph(net)
    assert nx.is_directed_acyclic_graph(g) and nx.is_weakly_connected(g)
    per_layer = {}
    for _, data in g.nodes(data=True):
        per_layer[data["layer"]] = per_layer.get(data["layer"], 0) + data["parallel"]
    assert per_layer == {e.layer.name: e.count for e in net.layers}


def test_resnet18_has_its_residual_structure():
    g = network_graph(load_network("resnet18"))
    # block 1.1 reads the sum of block 1.0's second conv and the stem (identity shortcut)
    assert set(g.predecessors("layer1_1_conv1")) == {"layer1_0_conv2", "conv1"}
    # stage 2 starts with a strided conv and the downsample shortcut, both reading stage 1's output
    assert set(g.predecessors("layer2_downsample")) == set(g.predecessors("layer2_3x3_s2"))
    assert set(g.predecessors("layer2_1_conv1")) == {"layer2_3x3", "layer2_downsample"}
    assert sum(1 for n in g if g.in_degree(n) > 1) == 11


def test_bert_branches_and_parallel_heads():
    g = network_graph(load_network("bert-base"))
    assert set(g.predecessors("attn_scores_qk")) == {"attn_qkvo_proj", "l0_k_proj"}
    assert g.nodes["attn_scores_qk"]["parallel"] == 12
    assert set(g.predecessors("l0_k_proj")) == set() and set(g.successors("l0_v_proj")) == {"attn_context_av"}


def _w(name, shape):
    return numpy_helper.from_array(np.zeros(shape, dtype=np.float32), name)


def test_onnx_edges_go_through_adds_and_concats(tmp_path):
    conv = lambda x, w, y, name: helper.make_node("Conv", [x, w], [y], name=name, kernel_shape=[3, 3],
                                                  pads=[1, 1, 1, 1])
    nodes = [conv("x", "w0", "c0", "stem"), helper.make_node("Relu", ["c0"], ["r0"]),
             conv("r0", "w1", "c1", "left"), conv("r0", "w1", "c2", "right"),
             helper.make_node("Add", ["c1", "r0"], ["s"]), helper.make_node("Concat", ["s", "c2"], ["cat"], axis=1),
             conv("cat", "w3", "y", "out")]
    inits = [_w("w0", (8, 3, 3, 3)), _w("w1", (8, 8, 3, 3)), _w("w3", (4, 16, 3, 3))]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
    path = tmp_path / "res.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    net = load_network(str(path))
    g = network_graph(net)
    assert set(g.edges) == {("stem", "left"), ("stem", "right"), ("left", "out"), ("stem", "out"), ("right", "out")}
    assert {e.layer.name: e.count for e in net.layers} == {"stem": 1, "left": 2, "out": 1}


def test_cli_writes_dot_and_png(tmp_path, capsys):
    dot = tmp_path / "g.dot"
    assert main(["network", "resnet18", "--graph", str(dot)]) == 0
    text = dot.read_text()
    assert text == to_dot(load_network("resnet18"))
    assert '"layer1_0_conv2" -> "layer1_1_conv1";' in text and '"conv1" -> "layer1_1_conv1";' in text
    png = tmp_path / "g.png"
    assert main(["network", "resnet18", "--graph", str(png)]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(["network", "resnet18", "--graph", str(tmp_path / "g.txt")]) == 2
    assert "--graph" in capsys.readouterr().err
