"""Batch and single-mapping evaluation through the compiled kernel (:mod:`formulation.model.kernel`).

:func:`evaluate_batch` has the signature and results of the NumPy reference
(:func:`formulation.model.exact.reference_batch`); it packs the layer and architecture into a few
constant arrays (cached per object), checks that no count can leave ``int64``
(:func:`count_bound`), runs the kernel and wraps its arrays in a
:class:`~formulation.model.exact.BatchEvaluation`.

Numba caches the compiled kernel (``cache=True``) next to these modules, or, when that directory
is not writable (an installed package), in Numba's per-user cache directory; ``NUMBA_CACHE_DIR``
overrides both. ``make install`` compiles it once (:func:`warm_up`). Numba keys a cached function
by its own source file and bytecode only, not by the functions it calls in other files, so
:func:`_fresh_cache` drops every cached kernel function when any kernel source changed.
"""

from __future__ import annotations

from dataclasses import fields

import numpy as np

from formulation.axes import N_DIMS, projection
from formulation.model.encoding import MappingArrays
from formulation.model.evaluation import BatchEvaluation
from formulation.specs.types import Architecture, Layer, SpecError

INT64_LIMIT = 2 ** 63 - 1
SAFETY = 8


class CountOverflow(SpecError, OverflowError):
    """A layer (or, rarely, a mapping) whose access counts do not fit 64-bit integers."""


def count_bound(layer: Layer) -> int:
    """An upper bound on every count the kernel forms for ``layer`` (totals over instances and groups).

    Every count is at most ``B = G * MACs * (Wstride + Wdilation) * (Hstride + Hdilation)`` (MACs
    of one group): the words reaching all instances of a level are at most (instances) x (steps
    above it) x (tile), and instances x steps x (the tile's extents) is the product of all factors,
    the MACs; an input tile spans at most ``(Wstride + Wdilation) p r`` columns for extents ``p, r``
    (likewise rows), so it is at most that factor times the product of its extents. Reads are at
    most the words reaching the children (multicast only lowers them), updates likewise, link
    words at most the children's arrivals. The kernel forms sums of a few such terms (at most
    :data:`SAFETY` ``B``); the one product of two counts (the bypass rescale of
    :mod:`formulation.model.links`) is checked in the kernel itself.
    """
    return layer.macs * (layer.Wstride + layer.Wdilation) * (layer.Hstride + layer.Hdilation)


def check_range(layer: Layer) -> None:
    """Raise :class:`CountOverflow` naming the layer when its counts could exceed ``int64`` (:func:`count_bound`)."""
    bound = count_bound(layer)
    if SAFETY * bound > INT64_LIMIT:
        raise CountOverflow(f"layer {layer.name}: counts up to {bound:.3e} words do not fit 64-bit integers "
                            f"(limit {INT64_LIMIT // SAFETY:.3e})")


_LAYER_CACHE: dict[tuple[int, int, int, int], tuple[np.ndarray, ...]] = {}
_ARCH_CACHE: dict[int, tuple[Architecture, np.ndarray, np.ndarray, int]] = {}


def layer_constants(layer: Layer) -> tuple[np.ndarray, ...]:
    """The projection :func:`formulation.axes.projection` in the kernel's sparse form.

    Every dimension moves a tensor along at most one axis, so ``A[t, :, d]`` is ``coef[t, d]`` on
    axis ``ax_of[t, d]`` (-1: ``d`` does not index ``t``). Also ``window[t, a]`` (the axis is
    indexed by two or more dimensions), ``win_dims[t, d]`` (``d`` moves ``t`` along window axes
    only: ``_window_dims`` of :mod:`formulation.model.links`) and ``adims[t, a, :an[t, a]]``, the
    dimensions indexing axis ``a``.
    """
    key = (layer.Wstride, layer.Hstride, layer.Wdilation, layer.Hdilation)
    got = _LAYER_CACHE.get(key)
    if got is None:
        proj = projection(*key)
        nonzero = proj != 0
        assert (nonzero.sum(axis=1) <= 1).all(), "a dimension moves a tensor along two axes"
        ax_of = np.where(nonzero.any(axis=1), nonzero.argmax(axis=1), -1).astype(np.int64)
        coef = proj.sum(axis=1).astype(np.int64)
        window = nonzero.sum(axis=2) >= 2
        win_dims = nonzero.any(axis=1) & ~(nonzero & ~window[:, :, None]).any(axis=1)
        an = nonzero.sum(axis=2).astype(np.int64)
        adims = np.zeros((*an.shape, 2), dtype=np.int64)
        for t, a in zip(*np.nonzero(an)):
            dims = np.flatnonzero(nonzero[t, a])
            adims[t, a, :len(dims)] = dims
        got = _LAYER_CACHE[key] = (ax_of, coef, window, win_dims, adims, an)
    return got


def arch_constants(arch: Architecture) -> tuple[np.ndarray, np.ndarray, int]:
    """``lvl_i [l, (block, size, fan_x, fan_y)]``, ``lvl_f [l, (e_read, e_fill, e_update, bw_read,
    bw_write)]`` (a bandwidth of -1 is unlimited, a size of ``2^63-1`` unbounded) and the most children
    of any fanout."""
    got = _ARCH_CACHE.get(id(arch))
    if got is not None and got[0] is arch:
        return got[1], got[2], got[3]
    rows_i, rows_f = [], []
    most = 1
    for l, lv in enumerate(arch.levels):
        fx, fy = arch.fanout(l)
        most = max(most, fx * fy)
        rows_i.append([lv.block_size, INT64_LIMIT if lv.size_words is None else lv.size_words, fx, fy])
        rows_f.append([lv.read_energy_pJ, lv.fill_energy_pJ, lv.update_energy_pJ,
                       -1.0 if lv.read_bw_words is None else lv.read_bw_words,
                       -1.0 if lv.write_bw_words is None else lv.write_bw_words])
    lvl_i = np.array(rows_i, dtype=np.int64)
    lvl_f = np.array(rows_f, dtype=np.float64)
    if len(_ARCH_CACHE) > 256:
        _ARCH_CACHE.clear()
    _ARCH_CACHE[id(arch)] = (arch, lvl_i, lvl_f, most)
    return lvl_i, lvl_f, most


_CACHE_CHECKED: list[bool] = []
KERNEL_STAMP = "formulation-kernel.sha256"


def _fresh_cache() -> None:
    """Once per process, before the kernel is first used: if the kernel sources (``kernel*.py``) differ
    from those the cached machine code was built from (a digest stored in the cache directory),
    flush the cache of every compiled function in them, so that nothing stale is loaded."""
    if _CACHE_CHECKED:
        return
    import hashlib
    from pathlib import Path

    from numba.core.dispatcher import Dispatcher

    from formulation.model import kernel, kernel_links, kernel_nest

    modules = (kernel_nest, kernel_links, kernel)
    digest = hashlib.sha256(b"".join(Path(m.__file__).read_bytes() for m in modules)).hexdigest()
    dispatchers = [f for m in modules for f in vars(m).values() if isinstance(f, Dispatcher) and f._cache is not None]
    stamp = Path(kernel.evaluate_rows._cache.cache_path) / KERNEL_STAMP
    try:
        old = stamp.read_text()
    except OSError:
        old = None
    if old != digest:
        for f in dispatchers:
            f._cache.flush()
        try:
            stamp.write_text(digest)
        except OSError:
            pass  # an unwritable cache: Numba does not write there either
    _CACHE_CHECKED.append(True)


def _canonical_order(shape: tuple[int, int]) -> np.ndarray:
    return np.ascontiguousarray(np.broadcast_to(np.arange(N_DIMS, dtype=np.int64), (*shape, N_DIMS)))


def _int(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=np.int64)


_LAYER_INFO: dict[int, tuple[Layer, tuple[np.ndarray, ...], int, int]] = {}


def _layer_info(layer: Layer) -> tuple[tuple[np.ndarray, ...], int, int]:
    """``(layer_constants, MACs of one group, MACs)`` of a layer whose counts fit (:func:`check_range`),
    cached by identity: all a batch needs from the layer."""
    got = _LAYER_INFO.get(id(layer))
    if got is not None and got[0] is layer:
        return got[1], got[2], got[3]
    check_range(layer)
    macs = layer.macs
    info = (layer, layer_constants(layer), macs // layer.G, macs)
    if len(_LAYER_INFO) > 256:
        _LAYER_INFO.clear()
    _LAYER_INFO[id(layer)] = info
    return info[1], info[2], info[3]


def evaluate_batch(layer: Layer, arch: Architecture, arrays: MappingArrays) -> BatchEvaluation:
    """Evaluate ``B`` mappings of ``layer`` on ``arch`` with the compiled kernel.

    Same results as :func:`formulation.model.exact.reference_batch` (whose docstrings state the
    semantics), bit for bit. Raises :class:`CountOverflow` (a ``SpecError``) for a layer whose counts
    could leave ``int64``; counts never wrap silently. A mapping whose link-transfer rescale (a
    product of two counts, rounded after a division) would leave ``int64`` inside the kernel is
    evaluated by the reference instead, which computes that step with Python integers: VGG-16's
    ``conv2_2`` on 64x49 PEs has such mappings among its window-family seeds (the rescaled count
    itself fits).
    """
    from formulation.model.kernel import evaluate_rows

    if not _CACHE_CHECKED:
        _fresh_cache()
    lay, group_macs, macs = _layer_info(layer)
    lvl_i, lvl_f, most = arch_constants(arch)
    sorder = arrays.spatial_order
    sorder = _canonical_order(arrays.temporal.shape[:2]) if sorder is None else _int(sorder)
    out = evaluate_rows(_int(arrays.temporal), _int(arrays.spatial_x), _int(arrays.spatial_y), _int(arrays.order),
                        np.ascontiguousarray(arrays.keep, dtype=np.bool_), sorder, *lay, lvl_i, lvl_f, layer.G,
                        group_macs, most)
    i3, i2, i1, fits, energy, throttling, n_overflow = out
    reads, fills, updates, tiles, part = i3
    inst, used, level_cycles = i2
    compute, cycles = i1[0], i1[1]
    mac_energy = np.full(arrays.size, macs * arch.mac.energy_pJ)
    out = BatchEvaluation(
        reads=reads, fills=fills, updates=updates, utilized_instances=inst, utilized_capacity=tiles,
        partition_size=part, capacity_used=used, fits=fits, energy_pJ_by_tensor=energy, mac_energy_pJ=mac_energy,
        energy_pJ=mac_energy + energy.sum(axis=(1, 2)), compute_cycles=compute, level_cycles=level_cycles,
        throttling=throttling, cycles=cycles, macs=macs, mac_instances=arch.mac.instances)
    if n_overflow:
        _replace_rows(out, np.flatnonzero(i1[2]), layer, arch, arrays)
    return out


def _replace_rows(out: BatchEvaluation, rows: np.ndarray, layer: Layer, arch: Architecture,
                  arrays: MappingArrays) -> None:
    """Overwrite ``rows`` of every per-mapping array of ``out`` with the reference's evaluation of them."""
    from formulation.model.exact import reference_batch

    exact = reference_batch(layer, arch, arrays.take(rows))
    for f in fields(BatchEvaluation):
        value = getattr(out, f.name)
        if isinstance(value, np.ndarray):
            value[rows] = getattr(exact, f.name)


def warm_up() -> float:
    """Compile the kernel (or load it from Numba's cache) by evaluating one small mapping; the seconds it took.

    ``make install`` runs this so that the first
    ``codesign`` command after an install loads the cached machine code instead of compiling.
    """
    import time

    from formulation.model.encoding import encode
    from formulation.specs.catalog import builtin_mapping_path, load_arch, load_network
    from formulation.specs.loading import mapping_from_list, read_document

    start = time.perf_counter()
    arch = load_arch("simple")
    layer = next(e.layer for e in load_network("resnet18").layers if e.layer.name == "layer1_3x3")
    mapping = mapping_from_list(read_document(builtin_mapping_path("resnet18_layer1_3x3_simple")), arch)
    evaluate_batch(layer, arch, encode(mapping))
    return time.perf_counter() - start
