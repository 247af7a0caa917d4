"""Limits and checks for every number that enters a spec: finite, in range, of the right type.

The exact model counts accesses, tiles and cycles in ``int64`` (largest 2^63 − 1 ≈ 9.2e18). Its
counts are sums of products of a layer's loop bounds: no count exceeds a small multiple of
``MACs × (levels + 1)`` or of a tensor's word count times the number of tile re-fetches, and the
intermediate products of :mod:`formulation.model.nest` and :mod:`formulation.model.links` stay
below ``(per-layer MACs) × (largest dimension)``. Bounding every dimension by :data:`MAX_DIM` = 2^24
and a layer's MACs and each tensor's word count by :data:`MAX_LAYER_MACS` = 2^40 keeps those
below 2^64 / 2 with room to spare (``tests/test_hardening.py`` evaluates a layer at the limits and
checks that every count is non-negative and utilization at most 1). Real networks are far inside:
VGG-16's largest layer has 1.8e9 MACs (< 2^31), BERT-base's largest GEMM dimension is 3072.

Booleans are not numbers here (YAML's ``true`` is not ``1``); a float with an integer value
(``64.0``, ``6.4e1``) is accepted where an integer is expected.
"""

from __future__ import annotations

import math

from formulation.specs.types import SpecError

#: Largest loop bound, stride, dilation or group count of a layer, and largest mapping factor.
MAX_DIM = 2 ** 24
#: Largest MAC count of one layer (all groups) and largest word count of one of its tensors.
MAX_LAYER_MACS = 2 ** 40
#: Largest repeat count of a layer in a network, and largest MAC count of a whole network.
MAX_REPEAT = 2 ** 20
MAX_NETWORK_MACS = 2 ** 56
#: Most layer occurrences (graph nodes, ``count`` copies included) a network may list: the checks of a
#: network's names and graph take time that grows with them (real networks have at most a few hundred).
MAX_OCCURRENCES = 10_000
#: Largest buffer size (words), number of instances of a level or of MACs, word width and block size.
MAX_SIZE_WORDS = 2 ** 40
MAX_INSTANCES = 2 ** 24
MAX_WORD_BITS = 4096
MAX_BLOCK_SIZE = 2 ** 16
#: Largest PE-mesh side of an architecture template (4096 x 4096 = 2^24 PEs at most).
MAX_MESH_SIDE = 2 ** 12
#: Energies per access (pJ), bandwidths (words/cycle) and clock (GHz): finite and within these ranges.
MAX_ENERGY_PJ = 1e9
BANDWIDTH_RANGE = (1e-6, 1e12)
CLOCK_GHZ_RANGE = (1e-6, 1e6)


def show(value: object) -> str:
    """A repr of ``value`` short enough for a one-line message."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def check_int(value: object, what: str, lo: int = 1, hi: int = MAX_DIM) -> int:
    """``value`` as an int in ``[lo, hi]`` (a float only if it is integral), or a one-line SpecError."""
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise SpecError(f"{what} = {show(value)}: must be an integer"
                        + (" (a boolean is not a number)" if isinstance(value, bool) else ""))
    if value < lo:
        raise SpecError(f"{what} = {show(value)}: must be a positive integer" if lo == 1
                        else f"{what} = {show(value)}: must be at least {lo}")
    if value > hi:
        raise SpecError(f"{what} = {show(value)}: must be at most {hi:,} (2^{hi.bit_length() - 1})"
                        if hi & (hi - 1) == 0 else f"{what} = {show(value)}: must be at most {hi:,}")
    return value


def check_real(value: object, what: str, lo: float = 0.0, hi: float = math.inf, lo_open: bool = False) -> float:
    """``value`` as a finite float in ``[lo, hi]`` (``(lo, hi]`` with ``lo_open``), or a one-line SpecError."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise SpecError(f"{what} = {show(value)}: must be a number"
                        + (" (a boolean is not a number)" if isinstance(value, bool) else ""))
    try:
        number = float(value)
    except OverflowError:
        number = math.inf
    if not math.isfinite(number):
        raise SpecError(f"{what} = {show(value)}: must be a finite number")
    if number < lo or (lo_open and number == lo):
        raise SpecError(f"{what} = {show(value)}: must be {'>' if lo_open else '>='} {lo:g}")
    if number > hi:
        raise SpecError(f"{what} = {show(value)}: must be at most {hi:g}")
    return number


def check_name(value: object, what: str, max_chars: int = 256) -> str:
    """A name: a string (a number is turned into one) of 1 to ``max_chars`` characters, no control characters."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise SpecError(f"{what} = {show(value)}: must be a string")
    text = str(value)
    if not text or len(text) > max_chars:
        raise SpecError(f"{what} = {show(text)}: must have 1 to {max_chars} characters")
    bad = next((ch for ch in text if ord(ch) < 32 or ord(ch) == 127), None)
    if bad is not None:
        raise SpecError(f"{what} = {show(text)}: must not contain control characters ({bad!r})")
    return text


def check_layer_limits(layer, what: str) -> None:
    """Every loop bound, stride and dilation of ``layer`` within :data:`MAX_DIM`, then :func:`check_layer_counts`
    (for layers built from other sources than a spec file, e.g. ONNX models)."""
    for key in ("N", "C", "K", "P", "Q", "R", "S", "Wstride", "Hstride", "Wdilation", "Hdilation", "G"):
        check_int(getattr(layer, key), f"{what}.{key}")
    check_layer_counts(layer, what)


def check_layer_counts(layer, what: str) -> None:
    """A layer's MACs and tensor sizes within :data:`MAX_LAYER_MACS` (so the model's int64 counts cannot overflow)."""
    sizes = {"MACs": layer.macs,
             "Weights words": layer.K * (layer.C // layer.G) * layer.R * layer.S,
             "Inputs words": layer.N * layer.C * layer.input_width * layer.input_height,
             "Outputs words": layer.N * layer.K * layer.P * layer.Q}
    for name, count in sizes.items():
        if count > MAX_LAYER_MACS:
            raise SpecError(f"{what} {name} = {count:,}: must be at most {MAX_LAYER_MACS:,} (2^40) so every count "
                            f"fits the model's 64-bit integers")


def check_arch_limits(arch, what: str) -> None:
    """Every number of an :class:`~formulation.specs.types.Architecture` built from another format (Timeloop
    files) within the limits the YAML/JSON loader applies: finite energies up to :data:`MAX_ENERGY_PJ`,
    sizes, instances, word widths, block sizes, bandwidths and the clock in their ranges."""
    for lv in arch.levels:
        where = f"{what} level {lv.name}"
        if lv.size_words is not None:
            check_int(lv.size_words, f"{where}.size", 1, MAX_SIZE_WORDS)
        check_int(lv.instances, f"{where}.instances", 1, MAX_INSTANCES)
        check_int(lv.word_bits, f"{where}.word_bits", 1, MAX_WORD_BITS)
        check_int(lv.block_size, f"{where}.block_size", 1, MAX_BLOCK_SIZE)
        for key in ("read_energy_pJ", "write_energy_pJ", "fill_energy_pJ", "update_energy_pJ"):
            check_real(getattr(lv, key), f"{where}.{key}", 0.0, MAX_ENERGY_PJ)
        for key in ("read_bw_words", "write_bw_words"):
            if getattr(lv, key) is not None:
                check_real(getattr(lv, key), f"{where}.{key}", *BANDWIDTH_RANGE)
    check_int(arch.mac.instances, f"{what} mac.instances", 1, MAX_INSTANCES)
    check_real(arch.mac.energy_pJ, f"{what} mac.energy", 0.0, MAX_ENERGY_PJ)
    check_real(arch.clock_GHz, f"{what} clock_GHz", *CLOCK_GHZ_RANGE)
