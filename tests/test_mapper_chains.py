"""The compiled cheapest-chain recursion equals the least cost over every chain of keepers, enumerated."""

import itertools

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from search.mapper.chains import cheapest_chains


def _brute(table: np.ndarray) -> float:
    n = table.shape[-1]
    best = np.inf
    for k in range(n - 1):
        for middle in itertools.combinations(range(1, n - 1), k):
            chain = (0, *middle, n - 1)
            best = min(best, sum(table[p, c] for p, c in zip(chain, chain[1:])))
    return best


costs = st.floats(0.0, 1e6) | st.just(np.inf)


@settings(max_examples=60, deadline=None)
@given(st.integers(2, 6).flatmap(lambda n: arrays(np.float64, (3, 2, n, n), elements=costs)))
def test_cheapest_chains_equal_every_chain_enumerated(cost):
    got = cheapest_chains(cost)
    assert got.shape == cost.shape[:-2]
    for index in np.ndindex(*cost.shape[:-2]):
        want = _brute(cost[index])
        assert got[index] == want or np.isclose(got[index], want, rtol=1e-12)


def test_cheapest_chains_take_non_contiguous_views():
    rng = np.random.default_rng(0)
    cost = rng.random((4, 5, 5, 5)).transpose(1, 0, 2, 3)
    want = np.array([[_brute(cost[i, j]) for j in range(4)] for i in range(5)])
    assert np.allclose(cheapest_chains(cost), want)


@settings(max_examples=30, deadline=None)
@given(st.integers(3, 6).flatmap(lambda n: st.tuples(arrays(np.float64, (4, n, n), elements=costs),
                                                    arrays(np.float64, (4, n, n), elements=costs),
                                                    st.sets(st.integers(1, n - 1)))))
def test_cheapest_chains_take_the_forced_columns_from_the_full_table(case):
    cost, full, columns = case
    mixed = cost.copy()
    for c in columns:
        mixed[..., c] = full[..., c]
    want = [_brute(mixed[i]) for i in range(len(mixed))]
    assert np.array_equal(cheapest_chains(cost, full, sorted(columns)), np.array(want))
