"""Bandwidth against capacity: the cycles a level's port needs when small storage below it forces re-fetches.

Notation as in :mod:`formulation.bound.reuse`. Timeloop throttles a level with a bandwidth by its
per-instance words read and written (``cycles >= ceil(compute / slowdown) >= reads / read_bw``
and ``>= writes / write_bw``, where writes are its fills plus its updates; README of the
Timeloop reference, section 7). The candidate rows so far load a level only with what it must
serve at least once (``|t|`` for a tensor kept per PE); this module adds what the PEs' small
storage forces through it.

**The PE level against its parent.** Let ``L`` be the parent of the tensors a row keeps per PE
(a shared level or DRAM, one instance). Every fill of a kept weight comes from a read at ``L``
(weights never link), and one read serves at most ``m_W`` PEs (multicast), so ``L`` reads at
least ``io_W / m_W`` weights; every drain of a kept output is an update at ``L`` after spatial
reduction over at most ``m_O`` PEs, so ``L`` takes at least ``io_O / m_O`` updates. Inputs of
layers with a sliding window may arrive by link transfers, which cost ``L`` nothing, so they are
counted with weight 0 there (``|I|`` reads stay: every used input leaves ``L`` once); inputs of
layers without a window never link and count ``io_I / m_I``. With the row's other reads
``A`` and writes ``B`` at ``L`` (streamed tensors, fills of ``L`` from above) and any
``lambda`` in ``[0, 1]``::

    cycles >= max(R / rbw, W / wbw) >= lambda R / rbw + (1 - lambda) W / wbw
           >= lambda A / rbw + (1 - lambda) B / wbw + sum_t c_t io_t,
    c_W = lambda / (m_W rbw),  c_I = lambda / (m_I rbw) or 0,  c_O = (1 - lambda) / (m_O wbw),

and ``sum_t c_t io_t`` is at least the segment bound of :func:`formulation.bound.segments.segment_floor`
(valid for any non-negative per-word costs) and at least ``sum_t c_t`` times the compulsory
``io_t`` (``m_W |W|``, ``|I|``, ``m_O |O|``). A missing bandwidth is infinite (its term drops).
The best of :data:`LAMBDAS` is kept (any ``lambda`` is valid).

**The chip against DRAM.** The same with the chip as one "PE" (capacity: the shared levels, or
the PEs' storage for tensors kept per PE straight from DRAM; :class:`formulation.bound.reuse.ChipLevel`):
DRAM reads every weight and input the chip takes in and takes an update for every output
leaving it, no multicast and no links across the chip's edge, so ``c_W = c_I = lambda / rbw_DRAM``
and ``c_O = (1 - lambda) / wbw_DRAM`` for the tensors the chip holds, plus the words of tensors
streamed from DRAM straight to the MACs.
"""

from __future__ import annotations

import numpy as np

from formulation.bound.segments import segment_floor

#: The weights ``lambda`` of reads against writes that are tried (module docstring).
LAMBDAS = (1.0, 0.75, 0.5, 0.25)


def _inverse(bw: float | None) -> float:
    return 0.0 if bw is None else 1.0 / bw


def bandwidth_floor(read_words: np.ndarray, write_words: np.ndarray, const_reads: np.ndarray,
                    const_writes: np.ndarray, read_bw: float | None, write_bw: float | None,
                    compulsory: np.ndarray, capacity_words, macs: float, pes: float, rho: float) -> np.ndarray:
    """``max_lambda [lambda A / rbw + (1 - lambda) B / wbw + max(segment bound, compulsory)]`` per row.

    ``read_words[n, 3]`` (``write_words``): the level's reads (writes) per word entering (leaving)
    the storage below, per tensor (0: not counted); ``const_reads[n]``, ``const_writes[n]``: the
    other words ``A``, ``B``; ``compulsory[n, 3]``: the least ``io_t``; ``capacity_words``: the
    storage below (scalar or per row); ``pes``: how many such storages work (module docstring).
    """
    inv_r, inv_w = _inverse(read_bw), _inverse(write_bw)
    best = np.zeros(read_words.shape[0])
    capacity = np.broadcast_to(np.asarray(capacity_words, dtype=np.float64), best.shape)
    for lam in LAMBDAS:
        costs = lam * inv_r * read_words + (1.0 - lam) * inv_w * write_words
        base = lam * inv_r * const_reads + (1.0 - lam) * inv_w * const_writes
        value = base + (costs * compulsory).sum(axis=1)
        counted = costs > 0
        rows = np.flatnonzero(counted.sum(axis=1) >= 2)  # the segment bound needs two costed tensors
        if len(rows):
            seg = segment_floor(costs[rows], counted[rows], capacity[rows], macs, pes, rho, compulsory[rows])
            value[rows] = np.maximum(value[rows], base[rows] + seg)
        best = np.maximum(best, value)
    return best
