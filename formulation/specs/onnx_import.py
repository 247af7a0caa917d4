"""Reading a network from an ONNX model: its convolutions and matrix products as layers.

:func:`network_from_onnx` loads the model with the ``onnx`` package, inlines model-local
functions, gives a symbolic batch (the first dimension of a graph input) the value 1, runs
``onnx.shape_inference.infer_shapes`` and turns every node that does multiply-accumulates into a
:class:`~formulation.specs.types.Layer`:

* ``Conv`` (also ``ConvInteger``, ``QLinearConv``), 1-D or 2-D: input ``X[N][C][H][W]``, weights
  ``W[K][C/G][kH][kW]``, output ``Y[N][K][oH][oW]``. ``groups`` becomes ``G`` (``G = C = K`` is a
  depthwise convolution), ``strides``/``dilations`` become ``Wstride``/``Hstride`` and
  ``Wdilation``/``Hdilation``. Our layers have no padding, so ``P``/``Q`` are the inferred output
  width/height (``pads`` and ``auto_pad`` only show through them) and ``R``/``S`` the kernel
  width/height. A 1-D convolution has ``Q = S = 1``.
* ``Gemm`` (with ``transA``/``transB``): ``A[M][C] x B[C][K]`` is a GEMM layer with ``C`` = in
  features, ``K`` = out features, ``P = M`` rows (tokens or batch), ``N = Q = R = S = 1``.
* ``MatMul`` (also ``MatMulInteger``, ``QLinearMatMul``) with numpy semantics,
  ``A[..., M, C] x B[..., C, K]``. ``C``, ``K`` and ``P = M`` as for ``Gemm``. Leading dimensions
  over which ``B`` is shared (``B`` is 2-D, or has size 1 there) index the inputs and outputs but
  not the weights, so they are the batch ``N`` (their product; 1 when there are none). Leading
  dimensions along which ``B`` changes (attention's per-head ``Q K^T``) are independent GEMMs,
  so they multiply the layer's count, as in the built-in ``bert-base`` (one entry per head shape,
  ``count = heads x layers``).

Every other operator of the default ONNX domain (activations, pooling, normalization, reshapes,
element-wise arithmetic) carries no MACs and is skipped. Operators with MACs that the layer form
cannot express (``ConvTranspose``, 3-D convolutions, recurrent cells, ``Einsum``, ...), operators
of other domains, and control flow raise :class:`~formulation.specs.types.SpecError`, as do unreadable
files and shapes that stay unknown or symbolic after inference (re-export with static shapes).

Every such node is an occurrence of the network's graph; its inputs are the MAC nodes whose
outputs reach it through MAC-free operators (an ``Add`` of a residual connection, a ``Concat`` of
branches, activations, pooling, reshapes), so residual and branch structure is kept
(:func:`_mac_producers`). Occurrences with identical shapes share one distinct layer whose count
is the number of occurrences (:func:`formulation.specs.graph.network_from_occurrences`); it keeps
the name of the first node (the node's name, or ``<op><index>`` when it has none). The network is
named after the file.
"""

from __future__ import annotations

from pathlib import Path

from formulation.specs.graph import network_from_occurrences
from formulation.specs.numbers import (
    MAX_NETWORK_MACS,
    MAX_OCCURRENCES,
    MAX_REPEAT,
    check_int,
    check_layer_limits,
    check_name,
)
from formulation.specs.types import Layer, Network, SpecError

CONV_OPS = {"Conv": (0, 1), "ConvInteger": (0, 1), "QLinearConv": (0, 3)}        # op: (input, weight) indices
MATMUL_OPS = {"MatMul": (0, 1), "MatMulInteger": (0, 1), "QLinearMatMul": (0, 3)}
# Default-domain operators that do multiply-accumulates the layer form does not cover.
UNSUPPORTED_OPS = {
    "ConvTranspose": "transposed convolution", "DeformConv": "deformable convolution", "Einsum": "einsum",
    "LSTM": "recurrent cell", "GRU": "recurrent cell", "RNN": "recurrent cell", "Attention": "fused attention",
}
_DEFAULT_DOMAINS = ("", "ai.onnx")


def _fail(path: str | Path, message: str) -> SpecError:
    return SpecError(f"{path}: {message}")


def _load(path: str | Path):
    import onnx

    p = Path(path)
    if not p.is_file():
        raise SpecError(f"file = {str(path)!r}: no such file")
    try:
        model = onnx.load(str(p))
    except Exception as exc:  # protobuf DecodeError, truncated files, external data errors
        raise _fail(path, f"not a valid ONNX model ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else 'unreadable'})") from None
    if not model.graph.node:
        raise _fail(path, "not a valid ONNX model (its graph has no nodes)")
    return model


def _fix_symbolic_batch(model) -> None:
    """Give a symbolic (or unknown) first dimension of every graph input the value 1."""
    initializers = {t.name for t in model.graph.initializer}
    for value in model.graph.input:
        if value.name in initializers or not value.type.HasField("tensor_type"):
            continue
        shape = value.type.tensor_type.shape
        if shape is not None and len(shape.dim) >= 1 and not shape.dim[0].HasField("dim_value"):
            shape.dim[0].Clear()
            shape.dim[0].dim_value = 1


def _shapes(model) -> dict[str, tuple]:
    """Every known tensor shape: a tuple of ints, with ``None`` for a symbolic or unknown dimension."""
    out: dict[str, tuple] = {}
    graph = model.graph
    for value in list(graph.input) + list(graph.value_info) + list(graph.output):
        if not value.type.HasField("tensor_type") or not value.type.tensor_type.HasField("shape"):
            continue
        out[value.name] = tuple(d.dim_value if d.HasField("dim_value") else None
                                for d in value.type.tensor_type.shape.dim)
    for tensor in graph.initializer:
        out[tensor.name] = tuple(int(d) for d in tensor.dims)
    for node in graph.node:  # Constant nodes (weights exported as constants) carry their shape
        if node.op_type == "Constant" and node.domain in _DEFAULT_DOMAINS:
            for attr in node.attribute:
                if attr.name == "value":
                    out[node.output[0]] = tuple(int(d) for d in attr.t.dims)
    return out


def _attr(node, name: str, default):
    import onnx

    for attr in node.attribute:
        if attr.name == name:
            return onnx.helper.get_attribute_value(attr)
    return default


class _Reader:
    def __init__(self, path: str | Path, shapes: dict[str, tuple]) -> None:
        self.path = path
        self.shapes = shapes

    def shape(self, node, index: int, what: str, output: bool = False) -> tuple[int, ...]:
        names = node.output if output else node.input
        tensor = names[index] if index < len(names) else ""
        shape = self.shapes.get(tensor)
        where = f"node {node.name or node.op_type} ({node.op_type}): {what} {tensor!r}"
        if shape is None:
            raise _fail(self.path, f"{where} has no shape after shape inference; export the model with static "
                                   f"input shapes")
        if any(d is None for d in shape):
            raise _fail(self.path, f"{where} has shape {list(shape)} with symbolic dimensions (None); export the "
                                   f"model with static input shapes")
        if any(d < 1 for d in shape):
            raise _fail(self.path, f"{where} has shape {list(shape)}: every dimension must be positive")
        return shape

    def conv(self, node, name: str) -> Layer:
        xi, wi = CONV_OPS[node.op_type]
        x = self.shape(node, xi, "input")
        w = self.shape(node, wi, "weight")
        y = self.shape(node, 0, "output", output=True)
        if len(x) not in (3, 4):
            raise _fail(self.path, f"node {name} ({node.op_type}): input rank = {len(x)}: only 1-D and 2-D "
                                   f"convolutions are supported")
        groups = int(_attr(node, "group", 1))
        strides = list(_attr(node, "strides", [1] * (len(x) - 2)))
        dilations = list(_attr(node, "dilations", [1] * (len(x) - 2)))
        if len(x) == 3:  # 1-D (N, C, L): the length is the width, height 1
            x, w, y = x[:2] + (1, x[2]), w[:2] + (1, w[2]), y[:2] + (1, y[2])
            strides, dilations = [1, strides[0]], [1, dilations[0]]
        n, c = x[0], x[1]
        k = w[0]
        if w[1] * groups != c:
            raise _fail(self.path, f"node {name} ({node.op_type}): weight shape {list(w)} with group = {groups} "
                                   f"does not match {c} input channels")
        try:
            return Layer(name=name, N=n, C=c, K=k, P=y[3], Q=y[2], R=w[3], S=w[2],
                         Wstride=int(strides[1]), Hstride=int(strides[0]),
                         Wdilation=int(dilations[1]), Hdilation=int(dilations[0]), G=groups)
        except SpecError as exc:
            raise _fail(self.path, f"node {name} ({node.op_type}): {exc}") from None

    def gemm(self, node, name: str) -> Layer:
        a = self.shape(node, 0, "input A")
        b = self.shape(node, 1, "input B")
        if len(a) != 2 or len(b) != 2:
            raise _fail(self.path, f"node {name} (Gemm): inputs of shapes {list(a)} and {list(b)}: expected 2-D")
        m, c = (a[1], a[0]) if _attr(node, "transA", 0) else a
        c2, k = (b[1], b[0]) if _attr(node, "transB", 0) else b
        if c != c2:
            raise _fail(self.path, f"node {name} (Gemm): shapes {list(a)} and {list(b)} do not agree on the "
                                   f"reduction dimension")
        return Layer(name=name, N=1, C=c, K=k, P=m, Q=1)

    def matmul(self, node, name: str) -> tuple[Layer, int]:
        ai, bi = MATMUL_OPS[node.op_type]
        a = self.shape(node, ai, "input A")
        b = self.shape(node, bi, "input B")
        if len(a) == 1:
            a = (1,) + a
        if len(b) == 1:
            b = b + (1,)
        (m, c), (c2, k) = a[-2:], b[-2:]
        if c != c2:
            raise _fail(self.path, f"node {name} ({node.op_type}): shapes {list(a)} and {list(b)} do not agree on "
                                   f"the reduction dimension")
        batch_a, batch_b = a[:-2], b[:-2]
        rank = max(len(batch_a), len(batch_b))
        batch_a = (1,) * (rank - len(batch_a)) + batch_a
        batch_b = (1,) * (rank - len(batch_b)) + batch_b
        shared = independent = 1  # leading dims over which B is shared (N) / along which B changes (count)
        for da, db in zip(batch_a, batch_b):
            if db == 1:
                shared *= da
            else:
                independent *= max(da, db)
        return Layer(name=name, N=shared, C=c, K=k, P=m, Q=1), independent


def _mac_producers(model, mac_names: dict[int, str]) -> dict[int, tuple[str, ...]]:
    """For each MAC node (by index), the MAC nodes whose outputs reach its inputs through MAC-free nodes.

    A tensor made by a MAC node comes from that node; one made by any other node (Add, Concat,
    Relu, pooling, reshapes, ...) comes from the MAC producers of that node's inputs; graph inputs,
    initializers and constants come from no layer. Node order in an ONNX graph is topological.
    """
    made_by = {out: i for i, node in enumerate(model.graph.node) for out in node.output if out}
    memo: dict[str, tuple[str, ...]] = {}

    def producers(tensor: str) -> tuple[str, ...]:
        if tensor in memo:
            return memo[tensor]
        memo[tensor] = ()
        index = made_by.get(tensor)
        if index is None:
            found: tuple[str, ...] = ()
        elif index in mac_names:
            found = (mac_names[index],)
        else:
            found = tuple(dict.fromkeys(p for t in model.graph.node[index].input if t for p in producers(t)))
        memo[tensor] = found
        return found

    return {i: tuple(dict.fromkeys(p for t in model.graph.node[i].input if t for p in producers(t)))
            for i in mac_names}


def _layers(path: str | Path, model) -> list[tuple[Layer, tuple[str, ...], int]]:
    """Every MAC node as ``(layer, inputs, parallel)`` in graph order (see :func:`_mac_producers`)."""
    reader = _Reader(path, _shapes(model))
    out: list[tuple[Layer, int]] = []
    used: set[str] = set()
    indices: list[int] = []
    for index, node in enumerate(model.graph.node):
        op = node.op_type
        label = node.name if _printable_name(node.name) else f"{op}{index}"
        if node.domain not in _DEFAULT_DOMAINS:
            raise _fail(path, f"node {label}: operator {node.domain}.{op} is not supported (only the default "
                              f"ONNX domain)")
        if any(attr.type in (attr.GRAPH, attr.GRAPHS) for attr in node.attribute):
            raise _fail(path, f"node {label}: control flow ({op}) is not supported")
        if op in UNSUPPORTED_OPS:
            raise _fail(path, f"node {label}: operator {op} ({UNSUPPORTED_OPS[op]}) is not supported")
        if op not in CONV_OPS and op != "Gemm" and op not in MATMUL_OPS:
            continue
        name = label if label not in used else f"{label}_{index}"
        used.add(name)
        indices.append(index)
        if op in CONV_OPS:
            out.append((reader.conv(node, name), 1))
        elif op == "Gemm":
            out.append((reader.gemm(node, name), 1))
        else:
            out.append(reader.matmul(node, name))
        try:
            check_layer_limits(out[-1][0], f"node {name}")
            check_int(out[-1][1], f"node {name} count", 1, MAX_REPEAT)
            check_int(len(out), "MAC layers (Conv, Gemm, MatMul nodes)", 1, MAX_OCCURRENCES)
        except SpecError as exc:
            raise _fail(path, str(exc)) from None
    inputs = _mac_producers(model, {i: layer.name for i, (layer, _) in zip(indices, out)})
    return [(layer, inputs[i], parallel) for i, (layer, parallel) in zip(indices, out)]


def _printable_name(name: str) -> bool:
    """A node name usable as a layer name (1 to 256 characters, no control characters); else ``<op><index>``."""
    try:
        check_name(name, "node name")
    except SpecError:
        return False
    return True


def network_from_onnx(path: str | Path) -> Network:
    """The network of an ONNX model file (see the module docstring for what becomes a layer)."""
    import onnx
    import onnx.inliner
    import onnx.shape_inference

    model = _load(path)
    try:
        if model.functions:
            model = onnx.inliner.inline_local_functions(model)
        _fix_symbolic_batch(model)
        model = onnx.shape_inference.infer_shapes(model, strict_mode=True, data_prop=True)
    except Exception as exc:  # InferenceError, ValidationError
        first = str(exc).strip().splitlines()
        raise _fail(path, f"shape inference failed ({type(exc).__name__}: {first[0] if first else 'no message'})") from None
    layers = _layers(path, model)
    if not layers:
        raise _fail(path, "the model has no Conv, Gemm or MatMul node (nothing with multiply-accumulates)")
    network = network_from_occurrences(Path(path).stem, layers)
    if network.macs > MAX_NETWORK_MACS:
        raise _fail(path, f"network MACs = {network.macs:,}: must be at most {MAX_NETWORK_MACS:,} (2^56)")
    return network


__all__ = ["network_from_onnx"]