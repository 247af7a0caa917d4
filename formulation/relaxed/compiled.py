"""The fast rendering of the layer rows: every layer's statement traced once, layers grouped by tape.

A layer's statement (:func:`~formulation.relaxed.formulation.layer_statement`) runs over its
local vector ``u`` (:func:`~formulation.relaxed.formulation.local_size`); ``ext_index[i]`` says
where every entry of ``u`` lives in ``[x, zconst]``, ``zconst`` holding the log sizes of the levels
of fixed size (and 0 for unbounded levels, which have no size term). Layers of the same shape and
structure share one trace; layers whose traces differ only in constants share one
:class:`~formulation.relaxed.tape.Program`. The Jacobian of a layer's rows is sparse with the
structure of its tape's dependencies, fixed for the problem.

The network totals are sums over layers, computed here vectorized:
``E = sum_i n_i E_i`` and ``T = sum_i n_i exp(lc_i) / f_clk`` — the same sums as
:func:`~formulation.relaxed.formulation.network_totals` (a test compares the two).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from formulation.goals import clock_hz
from formulation.relaxed.formulation import LayerStructure, layer_statement, local_size
from formulation.relaxed.layout import RowLayout, VariableLayout
from formulation.relaxed.sensitivity import Smooth
from formulation.relaxed.tape import Program, TraceAlgebra
from formulation.specs.template import ArchTemplate
from formulation.specs.types import Network


@dataclass(frozen=True)
class Group:
    layers: np.ndarray        # layer indices sharing one tape
    program: Program
    rr: np.ndarray            # Jacobian pattern of a layer's nonlinear rows: row within the layer,
    cc: np.ndarray            # and local column
    energy_local: np.ndarray  # local columns the layer energy depends on


@dataclass(frozen=True)
class Compiled:
    zconst: np.ndarray        # constant entries of u, appended to x
    ext_index: np.ndarray     # [layers, local_size] index of every local variable in [x, zconst]
    groups: list
    counts: np.ndarray        # repeats of every layer
    per_layer: int
    lin_rows: np.ndarray      # the linear rows' Jacobian: rows, columns and (constant) values,
    lin_cols: np.ndarray      # layer by layer, each row's columns in the order the statement
    lin_vals: np.ndarray      # writes them


@dataclass(frozen=True)
class LayerEvaluation:
    """The layer rows at one point, and the network totals."""

    rows: np.ndarray           # values of the layer rows (the first layers * per_layer rows)
    jacobian: np.ndarray       # their Jacobian values in the order of :func:`layer_sparsity`
    energy: Smooth             # pJ
    latency: Smooth            # s
    layer_energy: np.ndarray   # pJ per run of each layer


def local_index(variables: VariableLayout, template: ArchTemplate, i: int, const_slot: dict[int, int]) -> np.ndarray:
    """Where layer ``i``'s local vector lives in ``[x, zconst]`` (module docstring)."""
    levels = len(template.base.levels)
    sizes = [variables.size_at[l] if l in variables.size_at else const_slot[l] for l in range(levels)]
    return np.concatenate([variables.xt[i].ravel(), variables.xs[i].ravel(), sizes,
                           [variables.lc[i], variables.mesh_x, variables.mesh_y]]).astype(np.int64)


def constant_slots(variables: VariableLayout, template: ArchTemplate) -> tuple[np.ndarray, dict[int, int]]:
    """``zconst`` and the slot of every level whose size is not a variable."""
    zconst, slot = [], {}
    for l, lv in enumerate(template.base.levels):
        if l not in variables.size_at:
            slot[l] = variables.n + len(zconst)
            zconst.append(math.log(lv.size_words) if lv.size_words is not None else 0.0)
    return np.array(zconst), slot


def compile_layers(network: Network, template: ArchTemplate, structures: list[LayerStructure],
                   variables: VariableLayout, rows: RowLayout) -> Compiled:
    """Trace every layer's statement once and group the layers with identical tapes."""
    zconst, slot = constant_slots(variables, template)
    n_local = local_size(len(template.base.levels))
    ext_index = np.array([local_index(variables, template, i, slot) for i in range(len(network.layers))],
                         dtype=np.int64).reshape(len(network.layers), n_local)
    traced: dict[tuple, tuple] = {}  # layers of the same shape and structure share one trace
    groups: dict[tuple, list[int]] = {}
    traces = []
    for i, entry in enumerate(network.layers):
        st = structures[i]
        key = (replace(entry.layer, name=""), st.structure.order.tobytes(), st.structure.keep.tobytes(),
               st.structure.present.tobytes(), st.structure.order.shape, st.x_dims, st.y_dims)
        if key not in traced:
            alg = TraceAlgebra(n_local)
            energy, bodies = layer_statement(alg, np.zeros(n_local), entry.layer, template, st)
            assert len(bodies) == rows.per_layer
            outputs = [energy.id] + [b.id for b in bodies]
            traced[key] = (alg, outputs, alg.signature(outputs))
        alg, outputs, signature = traced[key]
        traces.append((alg, outputs))
        groups.setdefault(signature, []).append(i)
    is_var = ext_index[0] < variables.n
    compiled_groups, linear = [], {}
    for members in groups.values():
        program = Program([traces[i][0] for i in members], traces[members[0]][1])
        rr, cc = [], []
        for r in range(rows.per_layer):
            if 1 + r in program.linear:
                coef = program.linear[1 + r][0]
                for b, i in enumerate(members):
                    cols = [c for c in program.linear_columns[1 + r] if is_var[c]]
                    linear.setdefault(i, []).extend((i * rows.per_layer + r, ext_index[i, c], coef[b, c]) for c in cols)
                continue
            for c in np.flatnonzero(program.output_deps[1 + r] & is_var):
                rr.append(r)
                cc.append(c)
        energy_local = np.flatnonzero(program.output_deps[0] & is_var)
        compiled_groups.append(Group(np.array(members), program, np.array(rr, dtype=np.int64),
                                     np.array(cc, dtype=np.int64), energy_local))
    counts = np.array([float(e.count) for e in network.layers])
    lin = np.array([entry for i in sorted(linear) for entry in linear[i]]).reshape(-1, 3)
    return Compiled(zconst, ext_index, compiled_groups, counts, rows.per_layer, lin[:, 0].astype(np.int64),
                    lin[:, 1].astype(np.int64), lin[:, 2])


def layer_sparsity(c: Compiled) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows and columns of the layer rows' structural nonzeros, and the columns the energy depends on."""
    rows, cols, energy_cols = [c.lin_rows], [c.lin_cols], []
    for g in c.groups:
        rows.append((g.layers[:, None] * c.per_layer + g.rr[None, :]).ravel())
        cols.append(c.ext_index[g.layers][:, g.cc].ravel())
        energy_cols.append(c.ext_index[g.layers][:, g.energy_local].ravel())
    return (np.concatenate(rows).astype(np.int64), np.concatenate(cols).astype(np.int64),
            np.unique(np.concatenate(energy_cols)).astype(np.int64))


def evaluate_layers(c: Compiled, x: np.ndarray, clock_GHz: float) -> LayerEvaluation:
    """The layer rows, their Jacobian values and the network totals at ``x``."""
    n = len(x)
    xe = np.concatenate([x, c.zconst])
    n_layers = len(c.counts)
    g = np.empty(n_layers * c.per_layer)
    jac, e_idx, e_w = [c.lin_vals], [], []
    layer_energy = np.empty(n_layers)
    for grp in c.groups:
        ext = c.ext_index[grp.layers]
        outs = grp.program.run(xe[ext])
        values = np.empty((len(grp.layers), c.per_layer))
        grads = np.zeros((len(grp.layers), c.per_layer, ext.shape[1]))
        for r in range(c.per_layer):
            v, gr = outs[1 + r]
            values[:, r] = v
            if gr is not None:
                grads[:, r] = gr
        g[(grp.layers[:, None] * c.per_layer + np.arange(c.per_layer)[None, :]).ravel()] = values.ravel()
        jac.append(grads[:, grp.rr, grp.cc].ravel())
        ev, eg = outs[0]
        layer_energy[grp.layers] = ev
        if eg is not None and len(grp.energy_local):
            e_idx.append(ext[:, grp.energy_local].ravel())
            e_w.append((eg[:, grp.energy_local] * c.counts[grp.layers][:, None]).ravel())
    energy_grad = (np.bincount(np.concatenate(e_idx), weights=np.concatenate(e_w), minlength=n)
                   if e_idx else np.zeros(n))
    lc = c.ext_index[:, -3]
    cycles_s = np.exp(x[lc]) * (c.counts / clock_hz(clock_GHz))
    latency_grad = np.zeros(n)
    latency_grad[lc] = cycles_s
    energy = Smooth(float(np.sum(layer_energy * c.counts)), energy_grad)
    latency = Smooth(float(np.sum(cycles_s)), latency_grad)
    return LayerEvaluation(g, np.concatenate(jac), energy, latency, layer_energy)
