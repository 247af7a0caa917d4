"""Loop orders above the chip: what DRAM must read again when the chip cannot keep a tensor between iterations.

Notation as in :mod:`formulation.bound.layer_terms` for one layer with ``G = 1``. This holds for
templates of three levels, DRAM (a read bandwidth ``bw_r`` and a write bandwidth ``bw_w`` in words
per cycle), one shared buffer of ``B`` words, and the fanout into ``M`` PEs each with one register
file of ``F`` words (the box's largest sizes and mesh). A mapping has one temporal loop per
dimension at DRAM (factors ``a_d``) and at the buffer (``b_d``), spatial factors ``s_d`` at the
fanout and register-file factors ``f_d``; a level's tile is the data of its own loops and all
below. Dimensions fall in three groups: ``K`` (irrelevant to inputs), ``X = {N, P, Q}``
(irrelevant to weights) and ``Rd = {C, R, S}`` (irrelevant to outputs); a group is *active* at a
level when the product of its factors there is at least 2.

**Fact** (Timeloop's tiles). During an iteration of the DRAM loops every on-chip level holds only
data of that iteration's tile (the buffer its tile, each register file a part of it; link
transfers move data between register files of the same iteration), and likewise during an
iteration of the buffer's loops the register files hold only data of its tile. So a word a chip
iteration uses that is not in the previous iteration's tile, or that the iteration's first
sub-iteration does not hold, comes from DRAM again (for outputs: a partial sum that leaves the chip
is written to DRAM and read back before its next update). Every weight is used in every iteration
of the ``X`` loops, every input in every iteration of ``K``, and every output is updated in every
iteration of ``Rd``. Tiles of one tensor that differ in a dimension relevant to it are disjoint
(inputs: along ``N`` and ``C``).

**Runs.** If a loop ``u`` with factor at least 2 is irrelevant to a tensor and lies above an
active loop ``v`` relevant to it, every tile of the tensor is current in at least ``a_u``
separate runs (between two iterations of ``u`` the loop ``v`` moves the tile away), so the tensor
leaves DRAM ``a_u >= 2`` times: weights ``2 |W|`` reads (``u`` in ``X``, ``v`` in ``K`` or
``Rd``); outputs ``2 |O|`` updates and ``|O|`` partial-sum reads (``u`` in ``Rd``, ``v`` in
``K`` or ``X``).

**Sweeps.** If ``K`` is active and every active ``X`` loop lies below it, fix the loops above
``K`` (a *context*): each of the ``a_K`` sweeps of the loops below ``K`` uses the same inputs
``U``, and a sweep after the first starts holding at most ``tile(first) ∩ tile(last)`` of them
(the Fact), two tiles that differ in an active ``X`` loop. Along ``N`` they are disjoint; along the
width the second starts at least ``stride f`` columns later (``f`` the tile's ``P`` extent), so
they share at most ``h = max(0, dilation (g_R - 1) + 1 - stride)`` columns of a tile ``g_R`` wide
in ``R``; against the context's used columns (at least those of ``P`` outputs and ``g_R`` filter
columns) and rows (the tile's are within the context's box) that is a fraction at most
``phi`` (:func:`overlap_fraction`, the largest over the filter extents). Every used input is read
once besides, so inputs cost ``|I| + (a_K - 1)(1 - phi)|I|`` reads at least. If no ``X`` loop is
active, a sweep uses every input and starts holding at most the chip's ``C`` words: ``(|I| - C)``
more reads; with only ``Rd`` active, every output is updated in each of ``a_Rd`` iterations and at
most ``C`` partial sums stay: ``(|O| - C)`` more updates and reads.

**Cases** (every mapping is in one; the floor is the least over them, each the cheaper branch a
mapping may take): ``K`` and ``X`` active at DRAM: runs of weights or sweeps of inputs; ``K`` and
``Rd`` (``X`` inactive): runs of outputs, or the active ``Rd`` loops all below ``K``, where a
sweep uses every input: with ``C`` among them its first and last tiles are disjoint (``|I|`` more
reads), with ``R S`` alone every tile holds all of ``N C P Q``, so the buffer keeps it (its least
size within ``B``), or it leaves the chip between sweeps (``phi``), or ``N C P Q`` lie below the
register files (resident with ``rel = N C P Q``), and ``|I| - C`` more reads hold besides; ``X``
and ``Rd``: runs of weights or of outputs. When the group irrelevant to a tensor ``t`` is
active alone at DRAM (``X`` for weights, ``K`` for inputs, ``Rd`` for outputs), every DRAM
iteration uses all of ``t``, so the buffer keeps ``t`` whole (``|t| <= B``: no term), or a loop
relevant to ``t`` active at the buffer makes its first and last register-file tiles disjoint
(outputs, weights) or share at most the ``phi`` of the sweeps (inputs), so ``t`` leaves the chip
between DRAM iterations (the runs' or sweeps' cost), or no loop relevant to ``t`` lies above the
register files (``t`` is *resident*, :func:`resident_floor`); the ``|I| - C`` and ``|O| - C``
terms hold besides. With no active DRAM loop every tile at DRAM is a whole tensor, so the buffer
keeps a tensor only if it fits ``B`` (it then costs nothing more) and the same cases apply to the
buffer's loops with ``C`` the register files' ``F M`` words, ``t``'s group alone (and, for
weights, no active loop at all) making ``t`` resident or fed by DRAM.

**Resident tensors.** With no loop relevant to ``t`` above the register files, ``f_d s_d = D_d``
for the dimensions ``d`` relevant to ``t``: each PE keeps its whole share of ``t`` (its tile at
most ``F``) and the split uses ``S = split_t j`` PEs (``j`` a product of divisors of the other
dimensions, ``S <= M``). The other two tensors need their least tiles (the free extents 1) in
the rest of the file to be kept; one not kept feeds every MAC from the register file's parent,
``MACs / m_u`` words (``m_W = s_N s_P s_Q``, ``m_I <= s_K min(s_P, s_R) min(s_Q, s_S)``, ``m_O =
s_C s_R s_S``, each of the other dimensions' factors at most ``j``) over the parent's bandwidth
(the larger of the buffer's and DRAM's). Cycles are at least ``MACs / S`` and that port time. If
the register files do not keep ``t`` either (only with no active DRAM loop), DRAM feeds every
MAC, ``MACs / m_t`` words over its bandwidth, and the file holds the others only. For resident
weights DRAM also reads the inputs: the buffer keeps them (with ``X`` loops at DRAM its tile, all
of ``C R S``, within ``B``, whose halos are read again, :func:`halo_reads`; with none, whole), or
the register files take them from DRAM, ``MACs nu / M_I`` words at least (:func:`input_step_rate`,
``M_I`` the new fills one parent word serves with links,
:func:`~formulation.bound.layer_terms.multicast_rows`), or ``MACs / m_I`` if they keep none.

DRAM cycles are at least its reads over ``bw_r`` and its updates over ``bw_w`` (the exact model's
throttling), so each branch gives ``max((|W| + |I| + extra reads) / bw_r, (|O| + extra updates) /
bw_w)``. Grouped layers and other templates get no term (0).
"""

from __future__ import annotations

import itertools
import math
from functools import lru_cache

from formulation.axes import RELEVANCE, Dim, Tensor
from formulation.bound.layer_terms import compulsory_words, used_extent
from formulation.factors import divisors
from formulation.specs.types import Architecture, Layer


def applies(arch: Architecture, array_levels: tuple[int, ...]) -> bool:
    """DRAM, one shared buffer and one per-PE level, with a DRAM bandwidth (the module's setting)."""
    dram = arch.levels[0]
    return (len(arch.levels) == 3 and tuple(array_levels) == (2,)
            and (dram.read_bw_words is not None or dram.write_bw_words is not None))


def _box(bound: int, extent: int, stride: int, dilation: int) -> int:
    return stride * (bound - 1) + dilation * (extent - 1) + 1


def overlap_fraction(layer: Layer) -> float:
    """``phi``: the share of a context's used inputs two tiles of one sweep can have in common (module docstring)."""
    d = layer.dims
    best = 0.0
    axes = ((d[Dim.P], d[Dim.R], layer.Wstride, layer.Wdilation, d[Dim.Q], d[Dim.S], layer.Hstride, layer.Hdilation),
            (d[Dim.Q], d[Dim.S], layer.Hstride, layer.Hdilation, d[Dim.P], d[Dim.R], layer.Wstride, layer.Wdilation))
    for bound, filt, stride, dil, other, other_filt, other_stride, other_dil in axes:
        if bound < 2:
            continue  # no loop of this axis can be active
        for g in divisors(filt):
            shared = max(0, dil * (g - 1) + 1 - stride)
            if not shared:
                continue
            for h in divisors(other_filt):
                best = max(best, shared * _box(other, h, other_stride, other_dil)
                           / (used_extent(bound, g, stride, dil) * used_extent(other, h, other_stride, other_dil)))
    return min(best, 1.0)


def _room(factors, mesh: tuple[int, int]) -> int:
    """The most PEs left for other dimensions once ``factors`` are put on the mesh, each on one axis
    (``max (mx // x)(my // y)`` over the ways that fit; 0 if none fits)."""
    reach = {(1, 1)}
    for v in factors:
        if v > 1:
            reach = {(x * v, y) for x, y in reach if x * v <= mesh[0]} | {(x, y * v) for x, y in reach
                                                                         if y * v <= mesh[1]}
    return max(((mesh[0] // x) * (mesh[1] // y) for x, y in reach), default=0)


def _products(layer: Layer, dims, most: int) -> list[int]:
    """Every product of divisors of ``dims``' bounds that is at most ``most``, ascending."""
    out = {1}
    for dim in dims:
        out = {x * v for x in out for v in divisors(layer.dims[dim]) if x * v <= most}
    return sorted(out)


def _tiles(layer: Layer, f: dict) -> dict:
    """The least tile of each tensor when the dimensions in ``f`` have those register-file extents (others 1)."""
    g = {d: f.get(d, 1) for d in Dim}
    e_w = _box(g[Dim.P], g[Dim.R], layer.Wstride, layer.Wdilation)
    e_h = _box(g[Dim.Q], g[Dim.S], layer.Hstride, layer.Hdilation)
    return {Tensor.W: g[Dim.K] * g[Dim.C] * g[Dim.R] * g[Dim.S], Tensor.I: g[Dim.N] * g[Dim.C] * e_w * e_h,
            Tensor.O: g[Dim.N] * g[Dim.K] * g[Dim.P] * g[Dim.Q]}


@lru_cache(maxsize=1024)
def buffer_tilings(layer: Layer, buffer_words: int) -> tuple[tuple[int, int, float], ...]:
    """``(input tile, output tile, extra input reads)`` of every buffer tiling under ``X`` loops at DRAM.

    With only ``N P Q`` loops active at DRAM (factors ``a = D / g``, ``a_X >= 2``) the buffer's tiles
    hold all of ``K C R S``: ``g_N C e_w e_h`` inputs and ``g_N K g_P g_Q`` outputs, each at most
    ``B`` (the tilings where neither fits are left out). With ``Q`` outside ``P``,
    consecutive tiles along ``P`` share at most ``h_w = dilation (R - 1) + 1 - stride`` columns and
    tiles across a ``Q`` step at most ``h_h`` rows of a tile's width, so DRAM reads the inputs at
    least ``sum |tile| - sum overlaps = N C (H W + (a_Q - 1) h_h (W - e_w))`` times (``W``, ``H``
    the input box; ``N`` outermost overlaps most), the other order likewise; the extra is counted
    only where every input of the box is used and the windows overlap (else 0).
    """
    d = layer.dims
    w_box = _box(d[Dim.P], d[Dim.R], layer.Wstride, layer.Wdilation)
    h_box = _box(d[Dim.Q], d[Dim.S], layer.Hstride, layer.Hdilation)
    h_w = layer.Wdilation * (d[Dim.R] - 1) + 1 - layer.Wstride
    h_h = layer.Hdilation * (d[Dim.S] - 1) + 1 - layer.Hstride
    exact = (h_w >= 0 and h_h >= 0 and w_box == used_extent(d[Dim.P], d[Dim.R], layer.Wstride, layer.Wdilation)
             and h_box == used_extent(d[Dim.Q], d[Dim.S], layer.Hstride, layer.Hdilation))
    out = []
    for gn in divisors(d[Dim.N]):
        for gp in divisors(d[Dim.P]):
            for gq in divisors(d[Dim.Q]):
                if gn * gp * gq == d[Dim.N] * d[Dim.P] * d[Dim.Q]:
                    continue  # X is active at DRAM
                e_w = _box(gp, d[Dim.R], layer.Wstride, layer.Wdilation)
                e_h = _box(gq, d[Dim.S], layer.Hstride, layer.Hdilation)
                tile_i, tile_o = gn * d[Dim.C] * e_w * e_h, gn * d[Dim.K] * gp * gq
                if min(tile_i, tile_o) > buffer_words:
                    continue
                a_p, a_q = d[Dim.P] // gp, d[Dim.Q] // gq
                extra = d[Dim.N] * d[Dim.C] * min((a_q - 1) * h_h * (w_box - e_w),
                                                   (a_p - 1) * h_w * (h_box - e_h)) if exact else 0.0
                out.append((tile_i, tile_o, float(extra)))
    return tuple(out)


def halo_reads(layer: Layer, buffer_words: int) -> float:
    """The fewest extra input reads of the :func:`buffer_tilings` whose input tile fits ``B`` (inf if none)."""
    return min((extra for tile_i, _, extra in buffer_tilings(layer, buffer_words) if tile_i <= buffer_words),
               default=math.inf)


def input_step_rate(layer: Layer, f: dict, room: int, output_words_per_pq: int | None) -> float:
    """The fewest new input words per MAC a register file takes when no weight loop is above it.

    ``f``: its extents in ``K C R S`` (fixed); its ``N P Q`` extents are free divisors. Its input
    tile ``f_N f_C e_w e_h`` (and, if ``output_words_per_pq`` is given, an output tile of that many
    words per ``f_N f_P f_Q``) must fit ``room`` words. Only ``N P Q`` loops lie above it, so a
    step moves the tile along the width (at least ``min(stride f_P, e_w)`` new columns), the height,
    both (the larger slab) or ``N`` (a whole tile) (:mod:`formulation.bound.tiles`), over
    ``b = prod f`` MACs; a single iteration takes the whole tile. inf if no tile fits.
    """
    d = layer.dims
    best = math.inf
    w = f[Dim.K] * f[Dim.C] * f[Dim.R] * f[Dim.S]
    for fn in divisors(d[Dim.N]):
        for fp in divisors(d[Dim.P]):
            for fq in divisors(d[Dim.Q]):
                e_w = _box(fp, f[Dim.R], layer.Wstride, layer.Wdilation)
                e_h = _box(fq, f[Dim.S], layer.Hstride, layer.Hdilation)
                tile = fn * f[Dim.C] * e_w * e_h
                if tile + (0 if output_words_per_pq is None else output_words_per_pq * fn * fp * fq) > room:
                    continue
                cols = min(layer.Wstride * fp, e_w) * tile / e_w
                rows = min(layer.Hstride * fq, e_h) * tile / e_h
                best = min(best, min(cols, rows) / (w * fn * fp * fq))
    return best


@lru_cache(maxsize=4096)
def resident_floor(layer: Layer, t: Tensor, rf_words: int, mesh: tuple[int, int], rf_keeps: frozenset,
                   read_bw: float | None, write_bw: float | None, dram_bw: float | None = None,
                   inputs_at: tuple | None = None, rel: tuple | None = None) -> float:
    """The fewest cycles of a mapping with no loop relevant to ``t`` above the register files (module docstring).

    Then ``f_d s_d = D_d`` for the dimensions relevant to ``t``, so the register files keep ``t``
    whole (its tile ``<= F``), or, with ``dram_bw`` (the bandwidth of the channel ``t`` uses at
    DRAM), leave it to DRAM, which feeds every MAC (``MACs / m_t`` words). inf if neither can be.

    ``rel`` narrows the dimensions whose loops are all below the register files (inputs with
    filter loops at DRAM: ``N C P Q``; the others' extents are then free, the least tiles taken).
    ``inputs_at`` (weights only) also charges DRAM's
    reads of inputs: the buffer keeps them (a tile within ``B`` under ``X`` loops at DRAM,
    :func:`halo_reads`; or whole, ``|I| <= B``) or the register files take them from DRAM, at
    least ``MACs nu / M_I`` words (``nu`` from :func:`input_step_rate`, ``M_I`` the new fills one
    DRAM word serves, :func:`~formulation.bound.layer_terms.multicast_rows`) or ``MACs / m_I`` if
    they keep none.
    """
    d = layer.dims
    macs = layer.macs
    rel = [dim for dim in Dim if RELEVANCE[t, dim]] if rel is None else list(rel)
    rest = [dim for dim in Dim if dim not in rel]
    words = compulsory_words(layer) if inputs_at is not None else None
    pes = mesh[0] * mesh[1]
    products = _products(layer, rest, pes)
    best = math.inf
    for combo in itertools.product(*(divisors(d[dim]) for dim in rel)):
        split = math.prod(combo)
        room = _room(combo, mesh)
        if not room:
            continue
        j = max(v for v in products if v <= room)
        s = dict(zip(rel, combo))
        s.update({dim: min(j, d[dim]) for dim in rest})  # each at most j and its bound: multicasts only grow
        f = {dim: d[dim] // s[dim] for dim in rel}
        tiles = _tiles(layer, f)
        m = {Tensor.W: s[Dim.N] * s[Dim.P] * s[Dim.Q] if t is not Tensor.W else min(j, s[Dim.N] * s[Dim.P] * s[Dim.Q]),
             Tensor.I: s[Dim.K] * min(s[Dim.P], s[Dim.R]) * min(s[Dim.Q], s[Dim.S]),
             Tensor.O: s[Dim.C] * s[Dim.R] * s[Dim.S] if t is not Tensor.O else min(j, s[Dim.C] * s[Dim.R] * s[Dim.S])}
        bw = {Tensor.W: read_bw, Tensor.I: read_bw, Tensor.O: write_bw}
        port = {u: 0.0 if bw[u] is None else macs / (m[u] * bw[u]) for u in Tensor}
        own = []
        if t in rf_keeps and tiles[t] <= rf_words:
            own.append((tiles[t], 0.0))
        if dram_bw is not None:
            own.append((0, macs / (m[t] * dram_bw)))
        others = [u for u in Tensor if u is not t]
        for used, own_port in own:
            for keep in itertools.product((False, True), repeat=2):
                kept = [u for u, k in zip(others, keep) if k]
                if any(u not in rf_keeps for u in kept) or used + sum(tiles[u] for u in kept) > rf_words:
                    continue
                streamed = max((port[u] for u, k in zip(others, keep) if not k), default=0.0)
                value = max(macs / (split * j), own_port, streamed)
                if inputs_at is not None and value < best:
                    value = max(value, _chip_io_cycles(layer, words, s, f, used, rf_words, Tensor.I in kept,
                                                       Tensor.O in kept, m, inputs_at))
                best = min(best, value)
    return best


def _chip_io_cycles(layer: Layer, words: dict, s: dict, f: dict, used: int, rf_words: int, keep_i: bool,
                    keep_o: bool, m: dict, inputs_at: tuple) -> float:
    """The least DRAM and buffer port cycles of one resident-weights split (:func:`resident_floor`'s
    ``inputs_at``; ``words`` the layer's compulsory words): ``|W|`` weight reads, and the inputs and outputs through the buffer or straight
    between DRAM and the register files.

    A tensor the register files keep crosses their parent's port ``|O|`` times (outputs: no reduction
    loop lies above them) or ``MACs nu / M_I`` times (inputs, :func:`input_step_rate`); one they do
    not keep ``MACs / m_t`` times, and the parent reads all but ``|O|`` of the outputs' updates
    back. Through the buffer it costs the buffer's port and a buffer tile: under ``X`` loops at DRAM the tilings of :func:`buffer_tilings` (both tiles within ``B``, the
    inputs read ``|I|`` plus the tiling's halo times from DRAM), with no DRAM loop the whole tensor
    (within ``B``, read once). Straight from DRAM it costs DRAM's port.
    """
    dram_r, dram_w, gb_r, gb_w, buffer_words, x_at_dram, buffer_keeps = inputs_at
    d = layer.dims
    words_w, words_i, words_o = (float(words[t]) for t in (Tensor.W, Tensor.I, Tensor.O))
    macs = layer.macs
    if keep_i:
        linked = s[Dim.K] * s[Dim.P] * s[Dim.R] * s[Dim.Q] * s[Dim.S] / min(s[Dim.P] + s[Dim.R] - 1,
                                                                        s[Dim.Q] + s[Dim.S] - 1)
        rate = input_step_rate(layer, f, rf_words - used, d[Dim.K] // s[Dim.K] if keep_o else None)
        cross_i = max(words_i, macs * rate / max(m[Tensor.I], linked))
    else:
        cross_i = max(words_i, macs / m[Tensor.I])
    cross_o = words_o if keep_o else max(words_o, macs / m[Tensor.O])
    plans = buffer_tilings(layer, buffer_words) if x_at_dram else ((words_i, words_o, 0.0),)

    def ratio(words_, bw):
        return 0.0 if bw is None else words_ / bw

    best = math.inf
    for via_i in (False, True) if Tensor.I in buffer_keeps else (False,):
        for via_o in (False, True) if Tensor.O in buffer_keeps else (False,):
            fits = [(ti, to, extra) for ti, to, extra in plans
                    if (via_i or via_o) and via_i * ti + via_o * to <= buffer_words]
            if (via_i or via_o) and not fits:
                continue
            extra = min((e for _, _, e in fits), default=0.0) if via_i else 0.0
            back = cross_o - words_o  # partial sums read back for all but the first update of each output
            reads = words_w + (words_i + extra if via_i else cross_i) + (0.0 if via_o else back)
            updates = words_o if via_o else cross_o
            value = max(ratio(reads, dram_r), ratio(updates, dram_w),
                        ratio((cross_i if via_i else 0.0) + (back if via_o else 0.0), gb_r),
                        ratio(cross_o if via_o else 0.0, gb_w))
            best = min(best, value)
    return best


@lru_cache(maxsize=8192)
def order_floor(layer: Layer, arch: Architecture, mesh: tuple[int, int]) -> float:
    """The module's cycle floor for ``layer`` on ``arch`` (capacities as given) on a mesh of at most
    ``mesh`` PEs (0: no term)."""
    if layer.G != 1:
        return 0.0
    dram, buffer, rf = arch.levels
    words = compulsory_words(layer)
    w, i, o = (float(words[t]) for t in (Tensor.W, Tensor.I, Tensor.O))
    pes = mesh[0] * mesh[1]
    chip_rf = float(rf.size_words) * pes
    chip = float(buffer.size_words) + chip_rf
    phi = overlap_fraction(layer)

    def cycles(reads: float, updates: float) -> float:
        out = 0.0
        if dram.read_bw_words is not None:
            out = max(out, (w + i + reads) / dram.read_bw_words)
        if dram.write_bw_words is not None:
            out = max(out, (o + updates) / dram.write_bw_words)
        return out

    base = cycles(0.0, 0.0)
    weights, inputs, outputs = cycles(w, 0.0), cycles((1 - phi) * i, 0.0), cycles(o, o)

    def inputs_beyond(cap: float) -> float:
        return cycles(max(0.0, i - cap), 0.0)

    def outputs_beyond(cap: float) -> float:
        return cycles(max(0.0, o - cap), max(0.0, o - cap))

    d = layer.dims
    can_k, can_x = d[Dim.K] > 1, d[Dim.N] * d[Dim.P] * d[Dim.Q] > 1
    can_rd = d[Dim.C] * d[Dim.R] * d[Dim.S] > 1
    reads_bw = (dram.read_bw_words, buffer.read_bw_words)
    writes_bw = (dram.write_bw_words, buffer.write_bw_words)
    ports = (int(rf.size_words), tuple(mesh), rf.keeps, None if None in reads_bw else max(reads_bw),
             None if None in writes_bw else max(writes_bw))
    dram_bw = {Tensor.W: dram.read_bw_words, Tensor.I: dram.read_bw_words, Tensor.O: dram.write_bw_words}

    def resident(t: Tensor, streamed: bool, rel: tuple | None = None) -> float:
        """:func:`resident_floor` of ``t`` (with DRAM feeding it per MAC if ``streamed``, i.e. with no
        active DRAM loop; else under ``X`` loops at DRAM), at least the base."""
        bw = (math.inf if dram_bw[t] is None else dram_bw[t]) if streamed else None
        inputs_at = None
        if t is Tensor.W:
            inputs_at = (dram.read_bw_words, dram.write_bw_words, buffer.read_bw_words, buffer.write_bw_words,
                         int(buffer.size_words), not streamed, buffer.keeps)
        return max(base, resident_floor(layer, t, *ports, dram_bw=bw, inputs_at=inputs_at, rel=rel))

    fits = {t: t in buffer.keeps and words[t] <= buffer.size_words for t in Tensor}

    def cases(cap: float, held: dict, at_dram: bool) -> list[float]:
        """The cases at one level of loops (DRAM, or the buffer when DRAM has none); ``held``: the
        tensors the level below may keep whole (their branches give nothing)."""
        wb = base if held[Tensor.W] else weights
        ib = base if held[Tensor.I] else inputs
        ob = base if held[Tensor.O] else outputs
        icap = base if held[Tensor.I] else inputs_beyond(cap)
        out = []
        if can_k and can_x:
            out.append(min(wb, ib))
        if can_k and can_rd:  # runs of outputs, or the Rd loops below K: with C among them, or R S alone
            out.append(min(ob, base if held[Tensor.I] else cycles(i, 0.0),
                           max(icap, filters_below_k(None if at_dram else held))))
        if can_x and can_rd:
            out.append(min(wb, ob))
        return out

    def filters_below_k(held: dict | None) -> float:
        """``K`` above active ``R S`` loops only (``X`` and ``C`` inactive), at DRAM (``held`` None) or at
        the buffer: every tile holds all of ``N C P Q``, so the buffer keeps it (its least size within
        ``B``), or it leaves the chip between iterations (sweeps), or ``N C P Q`` lie below the
        register files (:func:`resident_floor` with ``rel = N C P Q``)."""
        if held is not None:
            return base if held[Tensor.I] else resident(Tensor.I, True, (Dim.N, Dim.C, Dim.P, Dim.Q))
        least = d[Dim.N] * d[Dim.C] * _box(d[Dim.P], 1, layer.Wstride, 1) * _box(d[Dim.Q], 1, layer.Hstride, 1)
        if Tensor.I in buffer.keeps and least <= buffer.size_words:
            return base
        return min(inputs, resident(Tensor.I, False, (Dim.N, Dim.C, Dim.P, Dim.Q)))

    dram_level = cases(chip, {t: False for t in Tensor}, True)
    buffer_level = cases(chip_rf, fits, False)  # no active DRAM loop: the buffer's loops
    carried = {Tensor.W: lambda cap: base, Tensor.I: inputs_beyond, Tensor.O: outputs_beyond}
    for t, carry_free, possible in ((Tensor.W, weights, can_x), (Tensor.I, inputs, can_k),
                                    (Tensor.O, outputs, can_rd)):
        # the group irrelevant to t alone at DRAM: the buffer keeps t whole, or t leaves the chip
        # between iterations, or it stays in the register files (and at most the chip's words
        # stay); alone at the buffer (or, for weights, nothing active anywhere): kept whole, or
        # resident in the register files or fed by DRAM (and at most the register files' words stay)
        if possible:
            dram_level.append(max(carried[t](chip), base if fits[t] else min(carry_free, resident(t, False))))
        if possible or t is Tensor.W:
            buffer_level.append(base if fits[t] else max(carried[t](chip_rf) if possible else base,
                                                         resident(t, True)))
    return min(dram_level + buffer_level)
