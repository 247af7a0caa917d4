"""search.tiling: prime factors, divisors and smooth numbers, checked against brute force."""

from __future__ import annotations

import math

import pytest

from formulation.specs.types import Layer
from search.tiling import divisors, is_smooth, layer_primes, prime_factors, smooth_numbers


def test_prime_factors():
    assert prime_factors(1) == []
    assert prime_factors(2) == [2]
    assert prime_factors(56) == [2, 2, 2, 7]
    assert prime_factors(64) == [2] * 6
    assert prime_factors(97) == [97]
    assert prime_factors(3 * 3 * 5 * 11 * 11) == [3, 3, 5, 11, 11]
    for n in range(1, 400):
        factors = prime_factors(n)
        assert math.prod(factors) == n
        assert factors == sorted(factors)
        assert all(p > 1 and all(p % q for q in range(2, int(p ** 0.5) + 1)) for p in factors)
    for bad in (0, -3, 2.0, True):
        with pytest.raises(ValueError):
            prime_factors(bad)


def test_divisors_are_every_divisor_once():
    for n in range(1, 500):
        assert divisors(n) == [d for d in range(1, n + 1) if n % d == 0]


def test_smooth_numbers_match_brute_force():
    assert smooth_numbers(1, 30) == [1, 2, 3, 4, 6, 7, 8, 9, 12, 14, 16, 18, 21, 24, 27, 28]
    assert smooth_numbers(45, 45) == [] and not is_smooth(45) and is_smooth(224)
    assert smooth_numbers(0, 10, primes=(2,)) == [1, 2, 4, 8]


def test_layer_primes_multiply_back_to_the_bounds():
    layer = Layer("l", N=1, C=12, K=20, P=14, Q=7, R=3, S=1)
    items = layer_primes(layer)
    for d, bound in enumerate(layer.dims):
        assert math.prod(p for dim, p in items if dim == d) == bound
    assert [d for d, _ in items] == sorted(d for d, _ in items)
