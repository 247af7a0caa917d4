"""The arithmetic of legal tilings: prime factors, divisors, smooth numbers.

A mapping is legal only if every loop bound is the exact product of its tiling factors (temporal at
every level, spatial along the mesh axes), so every tiling of a bound ``n`` is a way of dealing the
prime factors of ``n`` (with multiplicity) out to the slots, and every single factor is a divisor
of ``n``. Sampling (:mod:`search.sampling`), rounding (:mod:`search.rounding`), the local search's
prime moves (:mod:`search.local_search`) and the baselines' genome (:mod:`search.baselines.space`)
all work on these primes. Mesh sides are kept *smooth* (all prime factors in ``{2, 3, 7}``, the
primes of CNN loop bounds such as 224 = 2^5 7 and 3x3 filters), so that a side can be filled exactly.
``prime_factors`` and ``divisors`` themselves live in :mod:`formulation.factors` (the lower bound
uses them too); they are named here with the rest.
"""

from __future__ import annotations

from formulation.axes import DIMS
from formulation.factors import divisors, prime_factors
from formulation.specs.types import Layer

#: The primes of CNN loop bounds; a mesh side made of them can be filled exactly.
SMOOTH_PRIMES = (2, 3, 7)


def layer_primes(layer: Layer) -> list[tuple[int, int]]:
    """``(dimension index, prime)`` for every prime factor of every loop bound of ``layer``, dimension by
    dimension, primes ascending: the items a tiling deals out to its slots."""
    return [(int(d), p) for d in DIMS for p in prime_factors(layer.dims[d])]


def is_smooth(n: int, primes: tuple[int, ...] = SMOOTH_PRIMES) -> bool:
    """True when every prime factor of ``n`` is in ``primes``."""
    return set(prime_factors(n)) <= set(primes)


def smooth_numbers(lo: int, hi: int, primes: tuple[int, ...] = SMOOTH_PRIMES) -> list[int]:
    """The integers in ``[max(1, lo), hi]`` whose prime factors are all in ``primes``, ascending."""
    return [m for m in range(max(1, lo), hi + 1) if is_smooth(m, primes)]


__all__ = ["SMOOTH_PRIMES", "divisors", "is_smooth", "layer_primes", "prime_factors", "smooth_numbers"]
