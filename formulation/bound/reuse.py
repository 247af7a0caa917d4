"""Capacity-limited reuse: what a PE's small local storage forces it to re-fetch, for every mapping.

Notation as in :mod:`formulation.bound.layer_terms`. A PE's local storage is its per-PE levels
(``S`` words in all, at the box's largest sizes). For the tensors a mapping keeps there, every
word entering the PE is a *fill* (weights, inputs) and every partial sum leaving it is a *drain*
(outputs: an update at the parent); ``io_t`` counts them over all PEs.

**Dominance (the Loomis-Whitney step).** For a set ``V`` of MACs of one layer, with ``w``, ``i``,
``o`` the weights, used inputs and outputs its MACs touch and ``rho = min(R S, P Q)``::

    |V| <= sqrt(rho w i o),   |V| <= w i,   |V| <= w o,   |V| <= i o.

Proof: for a fixed filter position ``(r, s)`` the map ``(n, k, c, p, q) -> `` (weight ``(k, c)``,
input ``(n, c, p, q)`` (strides and dilations are injective), output ``(n, k, p, q)``) is a
matrix product over ``m = (n, p, q)``, so Loomis-Whitney gives ``|V_rs| <= sqrt(w_rs i_rs o_rs)``
with ``i_rs <= i``, ``o_rs <= o`` and the ``w_rs`` disjoint; Cauchy-Schwarz over the at most
``R S`` positions, ``sum sqrt(w_rs) <= sqrt(R S w)``, gives the first inequality (fixing ``(p,
q)`` instead, the outputs are the disjoint part: ``sqrt(P Q w i o)``). Two tensors' elements
fix a MAC (a weight and an input fix ``p = (h - d r) / s``; an input and an output fix ``r``; a
weight and an output share ``k`` and fix the rest), so ``|V|`` is at most each pairwise product.
Groups ``g`` split all three tensors disjointly and the bounds add up (Cauchy-Schwarz again).

**Segments (the red-blue pebble step, under Timeloop's tiling).** Follow one PE through its
MACs. Timeloop holds one tile of each kept tensor per level at a time (the capacity check is
the tiles' sum), a new tile gets at least its elements that the previous tile did not have as
fills (sliding windows included; a reset on stride change re-fetches more; link transfers are
fills too), and each output element's
partial sum leaves the PE by a drain before its tile moves on. Cut the PE's run into segments
after the word (fill or drain) that brings the running cost ``sum_t c_t io_t`` (``c_t`` a cost
per word below) to ``B``, ``2B``, ...: every segment but the last costs at least ``B``, and each
costs less than ``B + max c``. The words a segment's MACs touch of a kept read-only tensor were
in the PE at its start or filled during it; its outputs were there at the start, or are there
at its end, or were drained during it. So ``x_t <= a_t + io_t`` with ``sum a_t <= S`` at the
start plus ``S`` more for outputs at the end, and ``sum_t c_t x_t <= B + D`` with
``D = (S + 1) max kept c + S c_O [O kept]`` (the ``+ 1``: the word that overshoots ``B``). With
AM-GM, a segment does at most
``F(B) = min(sqrt(rho (B + D)^3 / (27 c_W c_I c_O)), (B + D_ab)^2 / (4 c_a c_b))`` MACs (the
square-root form when all three are kept; the pairwise forms for each kept pair). A PE with
``M_p`` MACs therefore runs at least ``M_p / F(B)`` segments, all but its last one complete, so
its cost is at least ``B (M_p / F(B) - 1)``; over the at most ``U`` working PEs,
``sum_t c_t io_t >= B (MACs / F(B) - U)`` for every ``B > 0``; the best ``B`` is found by
bisection on the derivative (any ``B`` is valid, so inexact search only weakens it).

**Costs per word** (every one a floor at every point of the box: per-access energies at the
box's smallest sizes, capacities at its largest, ``m_t`` the multicast of the spatial triple,
``e_link`` the cheapest per-PE access, which a neighbour's link transfer costs at least, for
inputs of layers with a sliding window; weights and outputs never link, nor do inputs along an
axis one dimension alone indexes (:mod:`formulation.model.links`, "Which rows can link"), so
``e_link`` is infinite for them):

* a fill of a read-only ``t`` from a shared keeper: the cheapest per-PE fill plus
  ``min(read / m_t, e_link)`` (one parent read serves at most ``m_t`` PEs; a link replaces it),
  for inputs at least ``read / M_I`` per new fill (:func:`tensor_states`; a parent word serves at
  most ``M_I`` new fills even with links, :func:`~formulation.bound.layer_terms.multicast_rows`);
* a drain of an output to a shared keeper: ``update / m_O`` (spatial reduction merges at most
  ``m_O`` drains);
* from DRAM instead (the shared levels bypass ``t``), ``q = min(dram / m_t, e_link)`` per word
  but DRAM's compulsory ``|t|`` words are already in the bound, so only ``q (io_t - m_t |t|)``
  counts (a negative offset; DRAM's reads are at least ``|t|`` and each serves ``m_t`` PEs).

Besides the segment bound (and, with one per-PE level, the whole-tile bound of
:mod:`formulation.bound.tiles`), ``io_W >= |W| m_W``, ``io_I >= |I|`` and ``io_O >= |O| m_O`` (every
PE using a word fills it, every PE holding a partial sum drains it), the compulsory traffic; the
cost is the larger of the two. What every kept tensor costs per MAC (a per-PE read, for outputs
an update and a read for all but the first update of each element) is added, and tensors not
kept per PE cost what :func:`formulation.bound.layer_terms.option_floor` says.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from formulation.axes import Tensor
from formulation.bound.segments import segment_floor
from formulation.bound.tiles import tile_floor


@dataclass(frozen=True)
class TensorState:
    """One way a mapping can serve one tensor, over the ``n`` spatial candidates (arrays of length ``n``).

    ``kept``: a per-PE level keeps it; ``per_mac``: energy per MAC besides the words entering or
    leaving the PEs; ``cost``, ``compulsory``, ``offset``: the per-word cost, the least ``io`` and
    the constant of the module docstring ("Costs per word"); ``level``: the level it comes from
    (a shared level or DRAM), whose bandwidth it loads with ``reads`` and ``writes`` words at least.
    """

    kept: bool
    per_mac: np.ndarray
    cost: np.ndarray
    compulsory: np.ndarray
    offset: np.ndarray
    level: int
    reads: np.ndarray
    writes: np.ndarray
    read_bw: float | None
    write_bw: float | None
    #: a second (cost, offset) that is also valid (DRAM parents of weights and outputs), or None
    alternative: tuple[np.ndarray, np.ndarray] | None = None
    #: where the chip holds it ("shared": a shared level keeps it; "pe": per PE, straight from DRAM;
    #: "dram": nowhere, streamed from DRAM) and its per-word cost without DRAM's part
    chip: str = "shared"
    local_cost: np.ndarray | None = None


@dataclass(frozen=True)
class ChipLevel:
    """The whole chip against DRAM: the segment bound with DRAM's per-word energies.

    The chip holds a tensor in its shared levels (``shared_words`` in all, the box's largest;
    every per-PE tile of a tensor a shared level keeps is inside that level's current tile, since
    a parent's tile is the union of its children's), or per PE when no shared level keeps it
    (``per_pe_words``: PEs times per-PE capacity), or streams it from DRAM. DRAM reads of weights
    and inputs and DRAM updates of outputs are the words entering and leaving the chip, so the
    segment bound of the module docstring with one "PE" (the chip), the capacity of the places
    used and costs ``dram_cost`` (pJ per word) bounds DRAM's energy for the tensors the chip
    holds; what exceeds their compulsory ``c_t |t|`` (already in the bound) is added.
    """

    shared_words: float
    per_pe_words: float
    dram_cost: tuple[float, float, float]

    def extra(self, kept: np.ndarray, capacity: np.ndarray, words: dict, macs: int, rho: float) -> np.ndarray:
        """DRAM energy beyond the compulsory traffic, at least, for each row (0 where nothing is known)."""
        costs = np.broadcast_to(np.array(self.dram_cost), kept.shape)
        least = np.broadcast_to(np.array([words[t] for t in (Tensor.W, Tensor.I, Tensor.O)], dtype=np.float64),
                                kept.shape)
        seg = segment_floor(costs, kept, capacity, macs, 1.0, rho, least)
        compulsory = (np.where(kept, costs, 0.0) * least).sum(1)
        return np.maximum(seg - compulsory, 0.0)


def tensor_states(t_index: int, options: dict, m: np.ndarray, words: int, macs: int, e_link: float,
                  stream_floor, linked: np.ndarray | None = None) -> list[TensorState]:
    """The ways a mapping can serve one tensor (``t_index`` 0, 1, 2: weights, inputs, outputs).

    ``options``: the tensor's :class:`~formulation.bound.layer_terms.AccessCosts` by kind
    (``per_pe``, ``shared``, ``dram``); ``m[n]`` its multicast in each spatial candidate;
    ``stream_floor(kind, c, m)`` the per-MAC energy of a shared or DRAM keeper feeding the MACs
    directly (:func:`~formulation.bound.layer_terms.option_floor`). *Streaming* from level ``L``
    (no per-PE level keeps it) reads ``MACs / m`` words at ``L`` (outputs: ``MACs / m`` updates
    and all but ``|O|`` of them read too; the nearest keeper serves every MAC and only multicast
    or spatial reduction merges its accesses); a shared keeper also takes ``|t|`` fills of
    weights and inputs from above. *Keeping* it per PE with parent ``L`` costs the cheapest per-PE
    read per MAC (outputs: update and a read for all but the first update of each element) plus
    the per-word costs of the module docstring, and ``L`` reads every weight and input at least
    once (outputs: takes each one's update).

    Inputs that may link (``e_link`` finite) are also bounded through ``linked[n]``
    (:func:`~formulation.bound.layer_terms.multicast_rows`' ``M_I``): the parent reads at least
    ``io' / M_I`` words, ``io'`` the new fills (words not in the PE's previous tile), which also
    obey the segment bound and ``io' >= |I|``; their energy ``fill io + read io' / M_I`` is at
    least ``(fill + read / M_I) io'`` and, per fill, the cheaper of a parent read over ``m_I`` and
    a link, so the larger of the two per-word costs holds for ``io'``. From DRAM, ``read (io' /
    M_I - |I|)`` is what exceeds the compulsory reads (the other pair is the alternative).
    """
    zero = np.zeros(m.shape)
    output = t_index == 2
    out = []
    for kind in ("shared", "dram"):
        for c in options[kind]:
            fills = 0.0 if kind == "dram" or output else float(words)
            reads = np.maximum(macs / m - words, 0.0) if output else macs / m
            out.append(TensorState(False, stream_floor(kind, c, m), zero, zero, zero, c.level, reads,
                                   (macs / m if output else zero) + fills, c.read_bw, c.write_bw,
                                   chip="dram" if kind == "dram" else "shared", local_cost=zero))
    per_pe = options["per_pe"]
    if not per_pe:
        return out
    if output:
        per_mac = np.minimum.reduce([c.update + c.read * np.maximum(0.0, 1.0 - words / macs * m) for c in per_pe])
        fill, compulsory = 0.0, words * m
    else:
        per_mac = np.full(m.shape, min(c.read for c in per_pe))
        fill = min(c.fill for c in per_pe)
        compulsory = words * m if t_index == 0 else np.full(m.shape, float(words))
    for kind in ("shared", "dram"):
        for c in options[kind]:
            q = np.minimum((c.update if output else c.read) / m, e_link)
            offset = -q * m * words if kind == "dram" else zero
            fills = 0.0 if kind == "dram" or output else float(words)
            alternative = None
            if kind == "dram" and t_index != 1:  # io >= m |t|: any q' <= q gives q' (io - m |t|) <= q (io - m |t|)
                cheap = np.minimum(q, min(min(p.read, p.fill, p.update) for p in per_pe))
                alternative = (fill + cheap, -cheap * m * words)
            elif t_index == 1 and np.isfinite(e_link) and linked is not None:  # the parent's words over M_I
                if kind == "dram":
                    alternative = (fill + q, offset)
                    q, offset = c.read / linked, np.full(m.shape, -c.read * words)
                else:
                    q = np.maximum(q, c.read / linked)
            out.append(TensorState(True, per_mac, fill + q, compulsory, offset, c.level,
                                   np.full(m.shape, 0.0 if output else float(words)),
                                   np.full(m.shape, float(words) if output else fills), c.read_bw, c.write_bw,
                                   alternative, "pe" if kind == "dram" else "shared",
                                   fill + (zero if kind == "dram" else q)))
    return out


@dataclass(frozen=True)
class CandidateTable:
    """Every way to deliver a layer's operands (a row: a spatial candidate and a state per tensor).

    ``per_pe``: the energy floor of a row (pJ) without the chip-level term; ``local``: the same with
    DRAM's part left out of the per-word costs (to which the chip-level term adds, see
    :func:`candidates`); ``cycles``: its cycle floor; ``combo``: its combination of states, whose
    chip-level pattern is ``chip_kept[combo]`` (the tensors the chip holds) and
    ``chip_places[combo]`` (whether a shared level, and whether the PEs straight from DRAM, hold one).
    """

    per_pe: np.ndarray
    local: np.ndarray
    cycles: np.ndarray
    combo: np.ndarray
    chip_kept: np.ndarray
    chip_places: np.ndarray


def candidate_table(options: dict, words: dict, macs: int, quads: np.ndarray, capacity_words: float, pes: float,
                    rho: float, e_link: dict, stream_floor, tile_vectors=None) -> CandidateTable:
    """The floors of every way to deliver the operands (each spatial candidate, each choice of
    :func:`tensor_states` per tensor).

    ``options[t]``, ``words[t]``, ``e_link[t]`` (inf: never linked) per tensor; ``quads[n, 5]`` the
    multicasts ``(m_W, m_I, m_O, M_I)`` with the most PEs each can use
    (:func:`~formulation.bound.layer_terms.multicast_rows`). Energy: ``macs * sum(per-MAC) +
    max(segment floor, sum_t c_t compulsory_t, tile floor) + offsets`` (:func:`segment_floor` for
    the tensors kept per PE; the tile floor, :func:`formulation.bound.tiles.tile_floor`, when
    ``tile_vectors`` (kept pattern -> :func:`formulation.bound.tiles.step_vectors`) is given), the
    larger over the valid cost variants. Cycles: ``MACs / PEs`` of the split
    and, per level with a bandwidth, its reads over its read bandwidth and its writes over its
    write bandwidth (Timeloop throttles a level by both, summed over the tensors). Every legal
    mapping is one of the rows, with at least this energy and these cycles.
    """
    m = quads[:, :3].astype(np.float64)
    linked = quads[:, 3].astype(np.float64)
    states = [tensor_states(j, options[t], m[:, j], words[t], macs, e_link[t],
                            lambda kind, c, mm, t=t: stream_floor(t, kind, c, mm), linked)
              for j, t in enumerate((Tensor.W, Tensor.I, Tensor.O))]
    compute = macs / quads[:, 4].astype(np.float64)
    n = len(compute)
    parts: dict[str, list[np.ndarray]] = {k: [] for k in ("per_mac", "kept", "cycles", "costs", "offset",
                                                            "compulsory", "alt_costs", "alt_offset", "local_costs",
                                                            "local_offset")}
    chip_kept, chip_places = [], []
    for combo in np.ndindex(*(len(s) for s in states)):
        chosen = [states[j][k] for j, k in enumerate(combo)]
        parts["per_mac"].append(np.broadcast_to(macs * sum(c.per_mac for c in chosen), compute.shape))
        parts["kept"].append(np.broadcast_to(np.array([c.kept for c in chosen]), (n, 3)))
        parts["compulsory"].append(np.stack([np.broadcast_to(c.compulsory, compute.shape) for c in chosen], axis=1))
        for key, pick in (("", lambda c: (c.cost, c.offset)),
                          ("alt_", lambda c: c.alternative or (c.cost, c.offset)),
                          ("local_", lambda c: (c.local_cost, np.zeros(compute.shape)))):
            parts[key + "costs"].append(np.stack([pick(c)[0] for c in chosen], axis=1))
            parts[key + "offset"].append(np.broadcast_to(sum(pick(c)[1] for c in chosen), compute.shape))
        parts["cycles"].append(_cycles(chosen, compute))
        chip_kept.append([c.chip != "dram" for c in chosen])
        chip_places.append([any(c.chip == "shared" for c in chosen), any(c.chip == "pe" for c in chosen)])
    flat = {k: np.concatenate(v) for k, v in parts.items()}
    stored = flat["kept"].any(axis=1)
    values = {}
    for key in ("", "alt_", "local_"):
        seg = segment_floor(flat[key + "costs"], flat["kept"], capacity_words, macs, pes, rho, flat["compulsory"])
        compulsory = (flat[key + "costs"] * flat["compulsory"]).sum(axis=1)
        if tile_vectors is not None:
            seg = np.maximum(seg, tile_floor(flat[key + "costs"], flat["kept"], flat["compulsory"], tile_vectors, macs))
        values[key] = flat["per_mac"] + np.where(stored, np.maximum(seg, compulsory), 0.0) + flat[key + "offset"]
    return CandidateTable(np.maximum(values[""], values["alt_"]), values["local_"], flat["cycles"],
                          np.repeat(np.arange(len(chip_kept)), n), np.array(chip_kept), np.array(chip_places))


def candidates(table: CandidateTable, chip: ChipLevel, words: dict, macs: int,
               rho: float) -> tuple[np.ndarray, np.ndarray]:
    """The Pareto pairs ``(energy, cycles)`` of the table's rows with the chip-level term.

    The chip-level segment bound (:class:`ChipLevel`) counts DRAM energy only, so it adds to the
    per-PE bound taken without DRAM's part of the per-word costs (``local``); the larger of that
    and ``per_pe`` is each row's floor. The chip-level term depends only on the combination.
    """
    capacity = chip.shared_words * table.chip_places[:, 0] + chip.per_pe_words * table.chip_places[:, 1]
    extra = chip.extra(table.chip_kept, capacity, words, macs, rho)
    energy = np.maximum(table.per_pe, table.local + extra[table.combo])
    return pareto_pairs(energy, table.cycles)


def _cycles(chosen: list[TensorState], compute: np.ndarray) -> np.ndarray:
    """``max(MACs / PEs, per level: reads / read bandwidth, writes / write bandwidth)`` of one choice per tensor."""
    cyc = compute
    for level in {c.level for c in chosen}:
        at = [c for c in chosen if c.level == level]
        if at[0].read_bw is not None:
            cyc = np.maximum(cyc, sum(c.reads for c in at) / at[0].read_bw)
        if at[0].write_bw is not None:
            cyc = np.maximum(cyc, sum(c.writes for c in at) / at[0].write_bw)
    return cyc


def pareto_pairs(energy: np.ndarray, cycles: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The pairs no other pair beats in both, by cycles ascending (energy then descending)."""
    order = np.lexsort((energy, cycles))
    e, c = energy[order], cycles[order]
    keep = np.ones(len(e), dtype=bool)
    keep[1:] = e[1:] < np.minimum.accumulate(e)[:-1]
    return e[keep], c[keep]
