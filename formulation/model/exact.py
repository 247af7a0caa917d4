"""The analytical model: access counts, energy and cycles for a batch of mappings.

:func:`reference_batch` is a pure function of (layer, architecture, mappings as arrays) and returns
a frozen :class:`BatchEvaluation` of NumPy arrays; :func:`reference` does the same for one
:class:`~formulation.specs.types.Mapping`. This NumPy code is the readable statement of the model
and the test oracle; :func:`evaluate_batch` and :func:`evaluate` (what everything else calls) run
the compiled kernel (:mod:`formulation.model.kernel`), which computes the same numbers. The semantics are Timeloop v3.0.3's (default settings):
first-read elision of partial sums, multicast and spatial reduction, sliding-window reuse of input
halos, energy per vector access of ``block_size`` words and bandwidth throttling.
"""

from __future__ import annotations

from dataclasses import fields, replace

import numpy as np

from formulation.axes import REDUCTION_DIMS, N_DIMS, N_TENSORS, Tensor, projection
from formulation.model.compiled import evaluate_batch
from formulation.model.encoding import MappingArrays, encode
from formulation.model.evaluation import BatchEvaluation
from formulation.model.links import link_transfers
from formulation.model.nest import (
    arrivals,
    axis_extents,
    build_nest,
    distinct_children,
    loop_shifts,
    partition_sizes,
    reduction_factor,
)
from formulation.specs.types import Architecture, Layer, Mapping

READ_ONLY = (Tensor.W, Tensor.I)
_REDUCTION_MASK = np.isin(np.arange(N_DIMS), [int(d) for d in REDUCTION_DIMS])


def _child_levels(keep: np.ndarray, levels: int) -> np.ndarray:
    """``child[b, l, t]``: the nearest level below ``l`` that keeps ``t``, or ``levels`` (the MACs)."""
    child = np.full(keep.shape, levels, dtype=np.int64)
    for l in range(levels - 2, -1, -1):
        child[:, l] = np.where(keep[:, l + 1], l + 1, child[:, l + 1])
    return child


def _per_block(count_per_instance: np.ndarray, block: int) -> np.ndarray:
    return -(-count_per_instance // block)


def access_counts(layer: Layer, arch: Architecture, arrays: MappingArrays) -> dict[str, np.ndarray]:
    """Reads, fills and updates per level and tensor (totals over instances), for one group.

    With ``child(l, t)`` the nearest inner level keeping ``t`` (or the MACs, where one MAC's
    "arrivals" are its ``compute`` operand fetches, no operand reuse), ``n_l`` the utilized
    instances, ``a_l`` the arrivals per instance (:func:`formulation.model.nest.arrivals`), ``u_l`` the
    partition per instance, ``X(l, c)`` the distinct children (multicast) and ``Rd(l, c)`` the
    spatial reduction factor between ``l`` and ``c``:

    * read-only ``t``: ``fills_l = n_l a_l`` (0 at the outermost level) and
      ``reads_l = n_l X(l, c) a_c``;
    * Outputs: ``updates_l = n_c a_c / Rd(l, c)`` (``MACs / Rd`` above the MACs),
      ``reads_l = updates_l - n_l u_l`` (the first accumulation into each element reads nothing),
      ``fills_l = n_l (a_l - u_l)`` (the first arrival of each element is a zero, elided).

    Link transfers between neighbouring children then move some reads from a parent to its
    children (:func:`formulation.model.links.link_transfers`).
    """
    levels = len(arch.levels)
    proj = projection(layer.Wstride, layer.Hstride, layer.Wdilation, layer.Hdilation)
    nest = build_nest(arrays)
    spans = axis_extents(nest, proj)
    shifts = loop_shifts(nest, proj)
    b = arrays.size
    keep = arrays.keep
    arrive = np.zeros((b, levels + 1, N_TENSORS), dtype=np.int64)
    part = np.zeros((b, levels, N_TENSORS), dtype=np.int64)
    for l in range(levels):
        arrive[:, l] = arrivals(nest, proj, spans, shifts, l)
        part[:, l] = partition_sizes(nest, proj, spans, shifts, l)
    arrive[:, levels] = nest.compute[:, None]
    tiles = spans[:, :levels].prod(axis=-1) * keep
    inst = nest.instances
    child = _child_levels(keep, levels)
    reads = np.zeros((b, levels, N_TENSORS), dtype=np.int64)
    fills = np.zeros_like(reads)
    updates = np.zeros_like(reads)
    macs = int(np.prod(layer.dims))
    for l in range(levels):
        for c in range(l + 1, levels + 1):
            sel = child[:, l] == c  # [b, t]
            if not sel.any():
                continue
            rows = sel.any(axis=1)
            fan = distinct_children(nest, proj, arrays, l, c)
            a_c = arrive[:, c] * inst[:, c, None]  # all instances of the child
            for t in READ_ONLY:
                reads[:, l, t] = np.where(sel[:, t], inst[:, l] * fan[:, t] * arrive[:, c, t], reads[:, l, t])
            red = reduction_factor(arrays, l, c, _REDUCTION_MASK)
            drained = macs // red if c == levels else a_c[:, Tensor.O] // np.where(rows, red, 1)
            updates[:, l, Tensor.O] = np.where(sel[:, Tensor.O], drained, updates[:, l, Tensor.O])
        fills[:, l] = inst[:, l, None] * arrive[:, l] if l > 0 else 0
    fills[:, :, Tensor.O] = inst[:, :levels] * (arrive[:, :levels, Tensor.O] - part[:, :, Tensor.O])
    reads[:, :, Tensor.O] = updates[:, :, Tensor.O] - inst[:, :levels] * part[:, :, Tensor.O]
    links = link_transfers(layer, arch, arrays, nest, reads, updates=updates, proj=proj, spans=spans, shifts=shifts)
    reads += links.reads
    fills += links.fills
    updates += links.updates
    mask = keep.astype(np.int64)
    return {"reads": reads * mask, "fills": fills * mask, "updates": updates * mask, "tiles": tiles,
            "partition": part * mask, "nest": nest, "instances": inst[:, :levels]}


CHUNK = 4096  # mappings per pass: keeps the [B, loops, tensors, axes] temporaries in cache


def reference_batch(layer: Layer, arch: Architecture, arrays: MappingArrays) -> BatchEvaluation:
    """Evaluate ``B`` mappings of ``layer`` on ``arch`` with NumPy (in chunks of :data:`CHUNK`; see
    :func:`reference_chunk`): the readable reference and test oracle of the compiled kernel."""
    if arrays.size <= CHUNK:
        return reference_chunk(layer, arch, arrays)
    parts = [reference_chunk(layer, arch, arrays.take(slice(i, i + CHUNK))) for i in range(0, arrays.size, CHUNK)]
    merged = {f.name: np.concatenate([getattr(p, f.name) for p in parts])
              for f in fields(BatchEvaluation) if isinstance(getattr(parts[0], f.name), np.ndarray)}
    return replace(parts[0], **merged)


def reference_chunk(layer: Layer, arch: Architecture, arrays: MappingArrays) -> BatchEvaluation:
    """Evaluate ``B`` mappings of ``layer`` on ``arch``.

    Groups (``G``) run one after the other as an outermost loop that every tensor depends on, so
    all counts and the compute cycles scale by ``G``; per-instance counts are scaled before the
    ceilings below.

    Energy of level ``l``, tensor ``t`` with per-instance reads ``r``, fills ``f``, updates ``u``,
    block size ``B_l`` and ``n`` utilized instances (Timeloop's per-vector-access energy)::

        E(l, t) = n (ceil(r / B_l) e_read + ceil(f / B_l) e_fill + ceil(u / B_l) e_update)

    plus ``MACs * e_mac``. Cycles: ``compute = prod_j f_j`` (all temporal factors); a level with a
    bandwidth needs ``rd = sum_t r_t / compute`` read and ``wr = sum_t (f_t + u_t) / compute``
    written words per cycle per instance (IEEE doubles, tensors in the order W, I, O, as
    Timeloop sums them); it slows the run by ``slowdown = min(1, bw_r/rd, bw_w/wr)`` (only the
    terms that exceed their bandwidth) and takes ``ceil(compute / slowdown)`` cycles. The run
    takes the slowest level's cycles.
    """
    counts = access_counts(layer, arch, arrays)
    g = layer.G
    inst = counts["instances"]
    levels = len(arch.levels)
    b = arrays.size
    per_inst = {k: counts[k] * g // np.maximum(inst[:, :, None], 1) for k in ("reads", "fills", "updates")}
    energy = np.zeros((b, levels, N_TENSORS))
    compute = counts["nest"].compute * g
    level_cycles = np.zeros((b, levels), dtype=np.int64)
    throttling = np.ones((b, levels))
    computef = compute.astype(np.float64)
    for l, lv in enumerate(arch.levels):
        blk = lv.block_size
        energy[:, l] = inst[:, l, None] * (_per_block(per_inst["reads"][:, l], blk) * lv.read_energy_pJ
                                           + _per_block(per_inst["fills"][:, l], blk) * lv.fill_energy_pJ
                                           + _per_block(per_inst["updates"][:, l], blk) * lv.update_energy_pJ)
        rd = np.zeros(b)
        wr = np.zeros(b)
        for t in range(N_TENSORS):
            rd = rd + per_inst["reads"][:, l, t].astype(np.float64) / computef
            wr = wr + (per_inst["fills"][:, l, t] + per_inst["updates"][:, l, t]).astype(np.float64) / computef
        slowdown = np.ones(b)
        if lv.read_bw_words is not None:
            slowdown = np.where(rd > lv.read_bw_words, np.minimum(slowdown, lv.read_bw_words / np.where(rd > 0, rd, 1)),
                                slowdown)
        if lv.write_bw_words is not None:
            slowdown = np.where(wr > lv.write_bw_words,
                                np.minimum(slowdown, lv.write_bw_words / np.where(wr > 0, wr, 1)), slowdown)
        throttling[:, l] = slowdown
        level_cycles[:, l] = np.ceil(computef / slowdown).astype(np.int64)
    macs = layer.macs
    mac_energy = np.full(b, macs * arch.mac.energy_pJ)
    tiles = counts["tiles"]
    used = tiles.sum(axis=2)
    sizes = np.array([lv.size_words if lv.size_words is not None else np.iinfo(np.int64).max for lv in arch.levels])
    fits = (used <= sizes[None, :]).all(axis=1)
    cycles = np.maximum(compute, level_cycles.max(axis=1))
    return BatchEvaluation(
        reads=counts["reads"] * g, fills=counts["fills"] * g, updates=counts["updates"] * g,
        utilized_instances=inst, utilized_capacity=tiles, partition_size=counts["partition"] * g,
        capacity_used=used, fits=fits, energy_pJ_by_tensor=energy, mac_energy_pJ=mac_energy,
        energy_pJ=mac_energy + energy.sum(axis=(1, 2)), compute_cycles=compute, level_cycles=level_cycles,
        throttling=throttling, cycles=cycles, macs=macs, mac_instances=arch.mac.instances)


def reference(layer: Layer, arch: Architecture, mapping: Mapping) -> BatchEvaluation:
    """Evaluate one mapping with the NumPy reference; the result is a batch of one."""
    return reference_batch(layer, arch, encode(mapping))


def evaluate(layer: Layer, arch: Architecture, mapping: Mapping) -> BatchEvaluation:
    """Evaluate one mapping with the compiled kernel; the result is a batch of one."""
    return evaluate_batch(layer, arch, encode(mapping))


__all__ = ["BatchEvaluation", "access_counts", "evaluate", "evaluate_batch", "reference", "reference_batch",
           "reference_chunk"]
