"""Prime factors and divisors of loop bounds: the arithmetic every tiling is made of.

A loop bound ``n`` is tiled by dealing its prime factors (with multiplicity) out to the tiling
slots, so every single factor is a divisor of ``n``. Used by the lower bound
(:mod:`formulation.bound`) and, through :mod:`search.tiling`, by every search.
"""

from __future__ import annotations

import numpy as np


def prime_factors(n: int) -> list[int]:
    """Prime factors of ``n`` with multiplicity, ascending (``prime_factors(1) == []``)."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n = {n!r}: must be a positive integer")
    n = int(n)
    out: list[int] = []
    p = 2
    while p * p <= n:
        while n % p == 0:
            out.append(p)
            n //= p
        p += 1 if p == 2 else 2
    if n > 1:
        out.append(n)
    return out


def divisors(n: int) -> list[int]:
    """Every divisor of ``n``, ascending: the products of the sub-multisets of ``prime_factors(n)``."""
    out = [1]
    factors = prime_factors(n)
    for p in sorted(set(factors)):
        power, powers = 1, []
        for _ in range(factors.count(p)):
            power *= p
            powers.append(power)
        out += [d * q for d in out for q in powers]
    return sorted(out)
