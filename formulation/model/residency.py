"""Activation residency between layers: outputs that stay on chip instead of going through DRAM.

Timeloop (and the per-layer model) evaluates each layer alone: every layer reads its inputs from
DRAM and writes its outputs back. With ``--keep-activations`` a network is instead evaluated as a
graph (:mod:`formulation.specs.graph`) running its occurrences in evaluation order, and an output
may stay in the **outermost on-chip level** ``L1`` (the level right below DRAM; only when it has a
single instance and a bounded size ``S``) from the layer that makes it until its last consumer.

*Which outputs stay.* Occurrence ``u`` makes ``O_u = N K P Q`` output words (times its parallel
runs). ``WS_w`` is the working set occurrence ``w``'s mapping keeps in ``L1`` (its
``capacity_used_words`` there). Going through the occurrences in evaluation order, ``u`` is kept
when it has at least one consumer and, for every occurrence ``w`` from ``u`` to ``u``'s last
consumer (both included),

    live_w + O_u + WS_w <= S,

``live_w`` being the words of the outputs kept earlier whose lifetimes cover ``w`` (greedy, first
come first kept; an output read through a residual addition is counted on its own, the addition
is not fused, which over-counts what must stay: conservative).

*What is saved* (DRAM energy only, pJ per vector access of the DRAM's block size ``B``, as in the
model). For a kept ``u`` with DRAM output updates ``U`` (per run), its final write of ``O_u`` words
is removed: ``(ceil(U/B) - ceil((U - min(O_u, U))/B)) e_update``; partial-sum spills stay. For a
consumer ``v`` all of whose producers are kept, its whole input is on chip: its DRAM input reads
``R`` are removed, ``ceil(R/B) e_read``. A consumer with some producer not kept keeps its DRAM
reads (a partial saving is not credited: conservative). Everything else -- the ``L1`` fills and
reads that still happen, the cycles (DRAM bandwidth limits are not recomputed), the network's
first input and final outputs -- is unchanged, so the saving is a lower bound on what residency
gives under the same mappings. The per-layer, Timeloop-exact numbers are not touched; the saving
is subtracted from the network total only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from formulation.specs.types import Architecture, Network


@dataclass(frozen=True)
class OccurrenceResidency:
    name: str
    output_words: int
    kept: bool
    write_saved_pJ: float
    reads_saved_pJ: float
    dram_words_saved: int


@dataclass(frozen=True)
class Residency:
    """The outcome of :func:`activation_residency`; ``level`` is None when no level can hold outputs."""

    level: str | None
    size_words: int | None
    occurrences: tuple[OccurrenceResidency, ...]

    @property
    def kept(self) -> tuple[str, ...]:
        return tuple(o.name for o in self.occurrences if o.kept)

    @property
    def dram_energy_saved_pJ(self) -> float:
        return sum(o.write_saved_pJ + o.reads_saved_pJ for o in self.occurrences)

    @property
    def dram_words_saved(self) -> int:
        return sum(o.dram_words_saved for o in self.occurrences)

    def document(self) -> dict:
        return {"level": self.level, "size_words": self.size_words, "kept": list(self.kept),
                "dram_energy_saved_pJ": self.dram_energy_saved_pJ, "dram_words_saved": self.dram_words_saved,
                "occurrences": [o.__dict__ for o in self.occurrences]}


def _blocks(words: float, block: int) -> int:
    return math.ceil(words / block)


def activation_residency(network: Network, arch: Architecture, records: dict[str, dict]) -> Residency:
    """Which outputs stay in ``L1`` and the DRAM energy that saves (module docstring).

    ``records`` maps each distinct layer's name to its evaluation record
    (:func:`formulation.model.report.evaluation_record`) on ``arch``.
    """
    nodes = network.graph_nodes
    if len(arch.levels) < 2 or arch.levels[1].size_words is None or arch.levels[1].instances != 1:
        return Residency(None, None, tuple(OccurrenceResidency(n.name, 0, False, 0.0, 0.0, 0) for n in nodes))
    dram, l1 = arch.levels[0], arch.levels[1]
    layers = {e.layer.name: e.layer for e in network.layers}
    index = {n.name: i for i, n in enumerate(nodes)}
    last = {n.name: i for i, n in enumerate(nodes)}
    for i, n in enumerate(nodes):
        for src in n.inputs:
            last[src] = max(last[src], i)
    out_words = [layers[n.layer].N * layers[n.layer].K * layers[n.layer].P * layers[n.layer].Q * n.repeat
                 for n in nodes]
    ws = [records[n.layer]["levels"][l1.name]["capacity_used_words"] for n in nodes]
    live = [0] * len(nodes)
    kept = [False] * len(nodes)
    for i, n in enumerate(nodes):
        span = range(i, last[n.name] + 1)
        if last[n.name] > i and all(live[w] + out_words[i] + ws[w] <= l1.size_words for w in span):
            kept[i] = True
            for w in span:
                live[w] += out_words[i]
    result = []
    for i, n in enumerate(nodes):
        tensors = records[n.layer]["levels"][dram.name]["tensors"]
        write = words = 0.0
        if kept[i]:
            updates = tensors["Outputs"]["updates"]
            removed = min(out_words[i] // n.repeat, updates)
            write = (_blocks(updates, dram.block_size) - _blocks(updates - removed, dram.block_size)) \
                * dram.update_energy_pJ * n.repeat
            words += removed * n.repeat
        reads = 0.0
        if n.inputs and all(kept[index[src]] for src in n.inputs) and "Inputs" in tensors:
            r = tensors["Inputs"]["reads"]
            reads = _blocks(r, dram.block_size) * dram.read_energy_pJ * n.repeat
            words += r * n.repeat
        result.append(OccurrenceResidency(n.name, out_words[i], kept[i], write, reads, int(words)))
    return Residency(l1.name, l1.size_words, tuple(result))
