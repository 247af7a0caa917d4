"""Timeloop problems as a :class:`~formulation.specs.types.Layer`: the 7-D CNN layer and its projections.

A Timeloop problem names its loop dimensions and, per data-space, a projection: a list of axes,
each a sum of terms ``[dim]`` or ``[dim, coefficient]``. The model has one shape, the CNN layer
``Weights[K][C][S][R]``, ``Inputs[N][C][Q*Hs+S*Hd][P*Ws+R*Wd]``, ``Outputs[N][K][Q][P]`` (with groups
``G``); a problem maps onto it when each of its dimensions plays one of those roles. Roles are read
from the projections, not from the names, so any naming works:

* the **read-write** data-space is ``Outputs``; of the two read-only ones, the one with a sliding
  window (an axis of two terms) is ``Inputs``; without one, the names decide (``Weights``,
  ``Filter``, ``B`` ... are weights; ``Inputs``, ``Ifmap``, ``A`` ... are inputs), else the first
  read-only data-space is ``Weights`` (Timeloop's own ordering);
* a dimension in all three data-spaces is the group dimension ``G`` (depthwise: ``C = K = G``);
  in weights and outputs only, ``K``; in weights and inputs, ``C`` when it is a plain axis of the
  inputs, or ``R``/``S`` when it is the filter term of a sliding axis; in inputs and outputs,
  ``P``/``Q`` when it is the output term of a sliding axis, else a **batch-like** dimension;
* sliding axes are ``out*stride + filter*dilation``: the first gives ``(P, R, Wstride, Wdilation)``,
  the second ``(Q, S, Hstride, Hdilation)``;
* batch-like dimensions take ``N``, then the free ones of ``P``, ``Q`` (with unit stride a
  ``P`` whose ``R`` is 1 indexes inputs and outputs exactly like a batch); without any sliding
  axis (a GEMM) they take ``P`` first, as the ONNX import does (rows are ``P``); a second
  reduction dimension likewise takes a free ``R`` or ``S``.

So **conv1d** (``Weights[R]``, ``Inputs[R+P]``, ``Outputs[P]``) is ``P, R`` with everything else 1;
a **GEMM** ``Z[m][n] = A[m][k] B[k][n]`` is ``P = m``, ``K = n``, ``C = k`` (a batched GEMM's
second batch-like dimension goes to ``N``); a **depthwise** convolution (``C`` in every data-space)
is ``G = C = K`` with one channel per group. A dimension of extent 1 that fits no role is
dropped. Anything else -- a dimension in one data-space only, a third sliding axis, an axis of three
terms, a coefficient on a plain axis, sparse ``densities`` -- is a custom shape the model cannot
express, and is rejected with one line naming it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from formulation.axes import Dim, Tensor
from formulation.specs.types import Layer, SpecError

WEIGHT_NAMES = ("weights", "weight", "filter", "filters", "kernel", "w", "b")
INPUT_NAMES = ("inputs", "input", "ifmap", "ifmaps", "activations", "i", "a", "x")
GROUP = "G"


@dataclass(frozen=True)
class ProblemMap:
    """A Timeloop problem read as a layer, with the name maps back to the problem's own names.

    ``dims`` maps each problem dimension to a :class:`Dim`, or to ``"G"`` for the group dimension;
    ``tensors`` maps each data-space name to a :class:`Tensor`.
    """

    layer: Layer
    dims: tuple[tuple[str, Dim | str], ...]
    tensors: tuple[tuple[str, Tensor], ...]

    def dim(self, name: str) -> Dim | str | None:
        return dict(self.dims).get(name)

    def tensor(self, name: str) -> Tensor | None:
        return dict(self.tensors).get(name)

    def tensor_name(self, tensor: Tensor) -> str:
        return next(n for n, t in self.tensors if t is tensor)


def _cnn_shape() -> dict:
    from formulation.specs.timeloop_export import cnn_layer_shape

    return cnn_layer_shape()


def _axes(ds: dict, dims: list[str], coefficient, where: str) -> list[list[tuple[str, int]]]:
    """A data-space's projection as axes of ``(dim, coefficient value)`` terms."""
    proj = ds.get("projection")
    if isinstance(proj, str):  # v0.4 string form "[ N, C, Q*Hstride + S*Hdilation ]"
        proj = [a.strip() for a in proj.strip().strip("[]").split(",") if a.strip()]
    if not isinstance(proj, list) or not proj:
        raise SpecError(f"{where}.projection = {str(proj)[:40]!r}: expected a list of axes")
    axes = []
    for axis in proj:
        if isinstance(axis, str):
            axis = [[f.strip() for f in term.split("*")] for term in axis.split("+")]
        if not isinstance(axis, list):
            axis = [[axis]]
        terms = []
        for term in axis:
            term = term if isinstance(term, list) else [term]
            names = [t for t in term if isinstance(t, str) and t in dims]
            if len(names) != 1 or len(term) > 2:
                raise SpecError(f"{where}.projection term = {term!r}: expected [dimension] or [dimension, coefficient]")
            coef = [t for t in term if t is not names[0]]
            terms.append((names[0], coefficient(coef[0], where) if coef else 1))
        axes.append(terms)
    return axes


def _coefficients(shape: dict, instance: dict, where: str):
    values = {}
    for c in shape.get("coefficients") or []:
        if not isinstance(c, dict) or "name" not in c:
            raise SpecError(f"{where}.coefficients = {c!r}: each needs a name (and a default)")
        values[c["name"]] = c.get("default", 1)
    values.update({k: v for k, v in instance.items() if k in values})

    def coefficient(token: Any, at: str) -> int:
        value = values.get(token, token)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise SpecError(f"{at} coefficient = {token!r}: must be a coefficient name or a positive integer")
        return value

    return coefficient


def _read_only_roles(spaces: list[tuple[str, list]], where: str) -> tuple[str, str]:
    """(weights, inputs) names among the two read-only data-spaces."""
    (a, a_axes), (b, b_axes) = spaces
    slide = [name for name, axes in spaces if any(len(ax) > 1 for ax in axes)]
    if len(slide) == 2:
        raise SpecError(f"{where}.data-spaces = {a}, {b}: both have sliding windows (custom shape)")
    if slide:
        return (b, a) if slide[0] == a else (a, b)
    if a.lower() in INPUT_NAMES or b.lower() in WEIGHT_NAMES:
        return b, a
    return a, b


def problem_from_timeloop(doc: Any, name: str = "timeloop") -> ProblemMap:
    """Read a ``problem:`` document (module docstring) into a layer and its name maps."""
    where = "problem"
    if not isinstance(doc, dict):
        raise SpecError(f"problem = {str(doc)[:40]!r}: expected shape and instance")
    shape = doc.get("shape")
    instance = doc.get("instance") or {}
    if isinstance(shape, str):
        if shape.lower().replace("_", "-") not in ("cnn-layer", "cnn"):
            raise SpecError(f"problem.shape = {shape!r}: a named shape file; write the shape inline (or cnn-layer)")
        shape = _cnn_shape()
    if not isinstance(shape, dict) or not isinstance(instance, dict):
        raise SpecError(f"problem.shape = {str(shape)[:40]!r}: expected dimensions and data-spaces")
    for key in ("densities", "density"):
        if key in instance:
            raise SpecError(f"problem.instance.{key} = {str(instance[key])[:40]!r}: sparse tensors are not supported")
    dims = [str(d) for d in shape.get("dimensions") or []]
    spaces = shape.get("data-spaces", shape.get("data_spaces"))
    if not dims or not isinstance(spaces, list):
        raise SpecError(f"problem.shape = {shape.get('name', '?')!r}: needs dimensions and data-spaces")
    coefficient = _coefficients(shape, instance, where)
    size = {}
    for d in dims:
        value = instance.get(d, 1)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise SpecError(f"problem.instance.{d} = {value!r}: must be a positive integer")
        size[d] = value
    parsed, rw = [], []
    for ds in spaces:
        if not isinstance(ds, dict) or "name" not in ds:
            raise SpecError(f"problem.data-spaces = {str(ds)[:40]!r}: each needs a name and a projection")
        axes = _axes(ds, dims, coefficient, f"problem.{ds['name']}")
        (rw if ds.get("read-write", ds.get("read_write", False)) else parsed).append((str(ds["name"]), axes))
    if len(rw) != 1 or len(parsed) != 2:
        raise SpecError(f"problem.data-spaces = {[n for n, _ in parsed + rw]!r}: the CNN layer has two read-only "
                        f"data-spaces and one read-write (custom shape)")
    w_name, i_name = _read_only_roles(parsed, where)
    axes_of = dict(parsed + rw)
    o_name = rw[0][0]
    roles = _roles(dims, size, axes_of[w_name], axes_of[i_name], axes_of[o_name], (w_name, i_name, o_name))
    layer = _layer(roles, size, name)
    dim_map = tuple((d, roles["dims"][d]) for d in dims if d in roles["dims"])
    tensors = ((w_name, Tensor.W), (i_name, Tensor.I), (o_name, Tensor.O))
    return ProblemMap(layer=layer, dims=dim_map, tensors=tensors)


def _roles(dims, size, w_axes, i_axes, o_axes, names) -> dict:
    """Assign every problem dimension a role (module docstring); returns dims and the sliding coefficients."""
    def members(axes):
        return {name for axis in axes for name, _ in axis}

    in_w, in_i, in_o = members(w_axes), members(i_axes), members(o_axes)
    for tensor_name, axes in zip(names[::2], (w_axes, o_axes)):
        for axis in axes:
            if len(axis) > 1 or axis[0][1] != 1:
                raise SpecError(f"problem.{tensor_name}.projection axis = {axis!r}: only the inputs may have "
                                f"a sliding window (custom shape)")
    sliding = [axis for axis in i_axes if len(axis) > 1]
    if len(sliding) > 2:
        raise SpecError(f"problem.{names[1]}.projection = {len(sliding)} sliding axes: the CNN layer has two")
    out: dict[str, Dim | str] = {}
    coeffs = {}
    for k, axis in enumerate(sliding):
        out_dims = [(d, c) for d, c in axis if d in in_o and d not in in_w]
        filt_dims = [(d, c) for d, c in axis if d in in_w and d not in in_o]
        if len(axis) != 2 or len(out_dims) != 1 or len(filt_dims) != 1:
            raise SpecError(f"problem.{names[1]}.projection axis = {axis!r}: expected output*stride + "
                            f"filter*dilation (custom shape)")
        (o, stride), (f, dil) = out_dims[0], filt_dims[0]
        out[o], out[f] = (Dim.P, Dim.R) if k == 0 else (Dim.Q, Dim.S)
        coeffs["Wstride" if k == 0 else "Hstride"] = stride
        coeffs["Wdilation" if k == 0 else "Hdilation"] = dil
    free = [pair for pair in ((Dim.P, Dim.R), (Dim.Q, Dim.S)) if pair[0] not in out.values()]
    batch_slots = ([Dim.P, Dim.N, Dim.Q] if not sliding else [Dim.N]) + [p for p, _ in free if p is not Dim.P or sliding]
    batch_slots = list(dict.fromkeys(batch_slots))
    reduce_slots = [Dim.C] + [r for _, r in free]
    slots = {(1, 1, 1): [GROUP], (1, 0, 1): [Dim.K], (1, 1, 0): reduce_slots, (0, 1, 1): batch_slots}
    for d in dims:
        if d in out:
            continue
        key = (int(d in in_w), int(d in in_i), int(d in in_o))
        options = [s for s in slots.get(key, []) if s not in out.values()]
        if key == (0, 1, 1) or key == (1, 1, 0):
            # a batch-like dim in a P/Q slot needs that pair's filter free, a reduction in R/S its output free
            pair = {Dim.P: Dim.R, Dim.Q: Dim.S, Dim.R: Dim.P, Dim.S: Dim.Q}
            options = [s for s in options if s not in pair or pair[s] not in out.values()]
        if options:
            out[d] = options[0]
        elif size[d] != 1:
            where = [n for n, m in zip(names, (in_w, in_i, in_o)) if d in m]
            raise SpecError(f"problem dimension {d} = indexes {', '.join(where) or 'no data-space'}: the CNN layer "
                            f"has no free loop for it (custom shape)")
    return {"dims": out, "coefficients": coeffs}


def _layer(roles: dict, size: dict, name: str) -> Layer:
    extent = {role: size[d] for d, role in roles["dims"].items()}
    g = extent.get(GROUP, 1)
    values = {d.name: extent.get(d, 1) for d in Dim}
    values["C"] *= g
    values["K"] *= g
    return Layer(name=name, G=g, **values, **roles["coefficients"])
