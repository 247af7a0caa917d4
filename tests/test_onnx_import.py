"""ONNX import (formulation.specs.onnx_import): small models built with onnx.helper, no downloads."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from formulation.specs.catalog import load_network
from formulation.specs.onnx_import import network_from_onnx
from formulation.specs.types import Layer, SpecError


def _weight(name: str, shape: tuple[int, ...]):
    return numpy_helper.from_array(np.zeros(shape, dtype=np.float32), name)


def _save(tmp_path, graph, name: str):
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    path = tmp_path / f"{name}.onnx"
    onnx.save(model, str(path))
    return path


def _input(name: str, shape):
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)


def _conv_net(tmp_path, batch=2):
    """x[2,3,32,32] -> conv 3x3/2 (pad 1) -> relu -> depthwise 3x3 -> 1x1 -> dilated 3x3 (twice, same shape)
    -> global pool -> flatten -> Gemm 32->10."""
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["c1"], name="stem", kernel_shape=[3, 3], strides=[2, 2],
                         pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("Conv", ["r1", "wdw"], ["c2"], name="dw", group=16, kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        helper.make_node("Conv", ["c2", "wpw"], ["c3"], name="pw"),
        helper.make_node("Conv", ["c3", "wd"], ["c4"], name="dil_a", dilations=[2, 2], pads=[2, 2, 2, 2]),
        helper.make_node("Relu", ["c4"], ["r4"]),
        helper.make_node("Conv", ["r4", "wd2"], ["c5"], name="dil_b", dilations=[2, 2], pads=[2, 2, 2, 2]),
        helper.make_node("GlobalAveragePool", ["c5"], ["gp"]),
        helper.make_node("Flatten", ["gp"], ["fl"]),
        helper.make_node("Gemm", ["fl", "wfc", "bfc"], ["y"], name="fc", transB=1),
    ]
    inits = [_weight("w1", (16, 3, 3, 3)), _weight("wdw", (16, 1, 3, 3)), _weight("wpw", (32, 16, 1, 1)),
             _weight("wd", (32, 32, 3, 3)), _weight("wd2", (32, 32, 3, 3)), _weight("wfc", (10, 32)),
             _weight("bfc", (10,))]
    graph = helper.make_graph(nodes, "convnet", [_input("x", [batch, 3, 32, 32])], [_input("y", None)], inits)
    return _save(tmp_path, graph, "convnet")


def _shape(layer: Layer) -> dict:
    return {k: getattr(layer, k) for k in ("N", "C", "K", "P", "Q", "R", "S", "Wstride", "Hstride",
                                           "Wdilation", "Hdilation", "G")}


def test_conv_net_layers_shapes_counts_and_macs(tmp_path):
    net = network_from_onnx(_conv_net(tmp_path))
    assert net.name == "convnet"
    by_name = {e.layer.name: e for e in net.layers}
    assert list(by_name) == ["stem", "dw", "pw", "dil_a", "fc"]
    one = dict(R=1, S=1, Wstride=1, Hstride=1, Wdilation=1, Hdilation=1, G=1)
    expected = {
        "stem": dict(one, N=2, C=3, K=16, P=16, Q=16, R=3, S=3, Wstride=2, Hstride=2),
        "dw": dict(one, N=2, C=16, K=16, P=16, Q=16, R=3, S=3, G=16),
        "pw": dict(one, N=2, C=16, K=32, P=16, Q=16),
        "dil_a": dict(one, N=2, C=32, K=32, P=16, Q=16, R=3, S=3, Wdilation=2, Hdilation=2),
        # Gemm: rows = batch 2 as P, N = 1
        "fc": dict(one, N=1, C=32, K=10, P=2, Q=1),
    }
    for name, shape in expected.items():
        assert _shape(by_name[name].layer) == shape, name
    assert by_name["dil_a"].count == 2  # dil_b has the same shape and was merged into it
    assert all(by_name[n].count == 1 for n in ("stem", "dw", "pw", "fc"))
    dw = by_name["dw"].layer
    assert dw.G == dw.C == dw.K  # depthwise
    macs = (2 * 16 * 16 * 16 * 3 * 3 * 3      # stem
            + 2 * 16 * 16 * 16 * 3 * 3        # depthwise: one input channel per output
            + 2 * 32 * 16 * 16 * 16           # pointwise
            + 2 * (2 * 32 * 16 * 16 * 32 * 9)  # two dilated 3x3
            + 2 * 32 * 10)                     # fc
    assert net.macs == macs


def test_load_network_reads_onnx_paths(tmp_path):
    path = _conv_net(tmp_path)
    assert load_network(path) == network_from_onnx(path)
    assert load_network(str(path)).macs == network_from_onnx(path).macs


def test_symbolic_batch_becomes_one(tmp_path):
    nodes = [helper.make_node("Conv", ["x", "w"], ["y"], name="c", kernel_shape=[3, 3])]
    graph = helper.make_graph(nodes, "g", [_input("x", ["batch", 8, 10, 12])], [_input("y", None)],
                              [_weight("w", (4, 8, 3, 3))])
    (entry,) = network_from_onnx(_save(tmp_path, graph, "symbatch")).layers
    # W = 12 -> P = 10 (width), H = 10 -> Q = 8 (height)
    assert _shape(entry.layer) == dict(N=1, C=8, K=4, P=10, Q=8, R=3, S=3, Wstride=1, Hstride=1, Wdilation=1,
                                       Hdilation=1, G=1)


def test_matmul_only_model(tmp_path):
    """Token projections with a shared 2-D weight, and per-head attention products (weights differ per head)."""
    nodes = [
        helper.make_node("MatMul", ["x", "wq"], ["q"], name="proj_q"),
        helper.make_node("MatMul", ["x", "wk"], ["k"], name="proj_k"),
        helper.make_node("MatMul", ["x", "wup"], ["u"], name="up"),
        helper.make_node("Reshape", ["q", "heads"], ["qh"]),
        helper.make_node("Transpose", ["qh"], ["qt"], perm=[0, 2, 1, 3]),          # [3, 4, 8, 16]
        helper.make_node("Reshape", ["k", "heads"], ["kh"]),
        helper.make_node("Transpose", ["kh"], ["kt"], perm=[0, 2, 3, 1]),          # [3, 4, 16, 8]
        helper.make_node("MatMul", ["qt", "kt"], ["scores"], name="scores"),       # [3, 4, 8, 8]
    ]
    inits = [_weight("wq", (64, 64)), _weight("wk", (64, 64)), _weight("wup", (64, 256)),
             numpy_helper.from_array(np.array([3, 8, 4, 16], dtype=np.int64), "heads")]
    graph = helper.make_graph(nodes, "attn", [_input("x", [3, 8, 64])], [_input("scores", None), _input("u", None)],
                              inits)
    net = network_from_onnx(_save(tmp_path, graph, "attn"))
    entries = {e.layer.name: e for e in net.layers}
    assert list(entries) == ["proj_q", "up", "scores"]
    assert _shape(entries["proj_q"].layer) == _shape(Layer("e", N=3, C=64, K=64, P=8, Q=1))
    assert entries["proj_q"].count == 2  # q and k projections merged
    assert _shape(entries["up"].layer) == _shape(Layer("e", N=3, C=64, K=256, P=8, Q=1))
    # batch dim 3 x 4 heads of independent 8 x 16 x 8 products
    assert _shape(entries["scores"].layer) == _shape(Layer("e", N=1, C=16, K=8, P=8, Q=1))
    assert entries["scores"].count == 12
    assert net.macs == 2 * 3 * 8 * 64 * 64 + 3 * 8 * 64 * 256 + 12 * 8 * 16 * 8


def test_malformed_file_is_one_line_spec_error(tmp_path):
    path = tmp_path / "broken.onnx"
    path.write_bytes(b"this is not a protobuf \x00\xff\x13 at all")
    with pytest.raises(SpecError) as info:
        load_network(path)
    message = str(info.value)
    assert "\n" not in message and "broken.onnx" in message and "not a valid ONNX model" in message


def test_missing_file(tmp_path):
    with pytest.raises(SpecError, match="no such file"):
        load_network(str(tmp_path / "absent.onnx"))


def test_symbolic_non_batch_dimension_is_rejected(tmp_path):
    nodes = [helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")]
    graph = helper.make_graph(nodes, "g", [_input("x", [1, "seq", 32])], [_input("y", None)],
                              [_weight("w", (32, 8))])
    with pytest.raises(SpecError) as info:
        network_from_onnx(_save(tmp_path, graph, "seq"))
    assert "\n" not in str(info.value) and "symbolic" in str(info.value) and "mm" in str(info.value)


def test_unsupported_operator_is_rejected(tmp_path):
    nodes = [helper.make_node("ConvTranspose", ["x", "w"], ["y"], name="up")]
    graph = helper.make_graph(nodes, "g", [_input("x", [1, 4, 8, 8])], [_input("y", None)],
                              [_weight("w", (4, 2, 2, 2))])
    with pytest.raises(SpecError, match=r"node up: operator ConvTranspose .* not supported"):
        network_from_onnx(_save(tmp_path, graph, "deconv"))


def test_model_without_mac_layers_is_rejected(tmp_path):
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g", [_input("x", [1, 4])],
                              [_input("y", None)])
    with pytest.raises(SpecError, match="no Conv, Gemm or MatMul"):
        network_from_onnx(_save(tmp_path, graph, "relu"))
