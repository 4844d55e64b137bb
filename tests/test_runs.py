"""Runs of identical layers are composed in closed form; the values must equal plain unrolling."""

import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st

import rfsym
from rfsym import Conv, MaxPool, Sequential


def _unrolled(layers):
    """rf, jump, start of every prefix, by the textbook recurrence (Araujo et al. 2019)."""
    r, j, u, out = 1, 1, 0, []
    for k, s, d, p in layers:
        r, u, j = r + d * (k - 1) * j, u - p * j, j * s
        out.append((r, j, u))
    return out


@settings(max_examples=60)
@given(st.integers(1, 3), st.integers(1, 3), st.integers(0, 2), st.integers(16, 40), st.integers(0, 5),
       st.integers(1, 4))
def test_long_runs_equal_unrolled_recurrence(k, s, p, n, before, d):
    """A run of n >= 16 identical convolutions, after a few others, matches the recurrence at every layer."""
    head = [(3, 1, 1, 1)] * before
    spec = head + [(k, s, d, p)] * n + [(2, 2, 1, 0)]
    net = Sequential(*[Conv(a, stride=b, dilation=c, padding=q) for a, b, c, q in spec])
    r = rfsym.analyze(net, ndim=1)
    for layer, (rf, jump, start) in zip(r.layers, _unrolled(spec)):
        assert (layer.rf, layer.jump, layer.start) == (rf, jump, start)


def test_shared_symbols_give_the_geometric_closed_form():
    k, s = rfsym.symbols("k s")
    r = rfsym.analyze(Sequential(*[Conv(k, stride=s)] * 10000))
    g = sp.Piecewise((10000, sp.Eq(s, 1)), ((s**10000 - 1) / (s - 1), True))
    assert sp.simplify(r.rf - (1 + (k - 1) * g)) == 0
    assert r.jump == s**10000
    assert r.subs({k: 3, s: 1}).rf == 20001
    assert r.layers[99].rf.subs({k: 3, s: 2}) == 1 + 2 * (2**100 - 1)
    assert r.subs({k: 3, s: 2}).layers[99].rf == 1 + 2 * (2**100 - 1)


def test_runs_of_pools_with_sizes():
    net = Sequential(*[MaxPool(2, stride=1)] * 20)
    r = rfsym.analyze(net, input_size=64)
    assert [layer.rf for layer in r.layers] == list(range(2, 22))
    assert r.out_size == 44
