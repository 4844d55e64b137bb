"""Depth: thousands of layers derive, print as LaTeX and evaluate without RecursionError.

The naive closed form of a deep stack is either nested L levels deep (sympy's printers and
``lambdify`` recurse through it and fail past a few hundred levels) or a flat sum of products
that grows quadratically. The engine composes layers in balanced order (expression depth
O(log L)), composes runs of identical layers in closed form, computes per-layer results on access,
and evaluates numerically by running the recurrence itself on numpy arrays.

These tests assert *correctness* at depth: every value is compared with the recurrence of
Araujo et al. (r += (κ - 1)·j, u -= p_left·j, j *= s) computed by a plain Python loop here.
Timings live in ``benchmarks/run.py``, not in tests.
"""

import math
import random

import numpy as np
import pytest
import sympy as sp

from rfsym import Conv, MaxPool, ReLU, Sequential, analyze, symbols


def recurrence(layers):
    """(rf, jump, start) after each layer, for layers given as (kernel, stride, pad_left, dilation),
    with exact Python integers."""
    rf, jump, start, out = 1, 1, 0, []
    for kernel, stride, pad, dilation in layers:
        rf += dilation * (kernel - 1) * jump
        start -= pad * jump
        jump *= stride
        out.append((rf, jump, start))
    return out


# --------------------------------------------------------------------------- 1,000 distinct symbols
L1 = 1000
KS = symbols(f"k1:{L1 + 1}")
SS = symbols(f"s1:{L1 + 1}")
DEEP_SYMBOLIC = Sequential(*[Conv(k, stride=s, padding=1) for k, s in zip(KS, SS)])


@pytest.fixture(scope="module")
def deep():
    """The 1,000-layer analysis, shared by the tests below (each test reads different parts)."""
    return analyze(DEEP_SYMBOLIC)


def _configs(rng, count):
    """``count`` configurations: kernels 1..7; strides 1 except 40 random layers with 2 (so that
    jumps stay below 2**63 for the int64 evaluator)."""
    ks = rng.integers(1, 8, size=(count, L1))
    ss = np.ones((count, L1), dtype=np.int64)
    for c in range(count):
        ss[c, rng.choice(L1, 40, replace=False)] = 2
    return ks, ss


def test_thousand_distinct_symbols_derive_print_and_evaluate(deep):
    r = deep
    rf, jump, start, center = r.rf, r.jump, r.start, r.center
    assert rf.free_symbols == set(KS) | set(SS[:-1])  # the last stride does not reach rf
    assert jump == sp.Mul(*SS)
    # LaTeX of the closed forms, through sympy's own printer
    assert "k_{1000}" in sp.latex(rf) and "k_{1000}" in sp.latex(center)
    assert "s_{1000}" in sp.latex(jump)
    assert "s_{999}" in sp.latex(start)  # start = -Σ_l Π_{j<l} s_j (padding 1 everywhere)
    # numeric evaluation of three configurations at once, against the plain loop
    rng = np.random.default_rng(1)
    ks, ss = _configs(rng, 3)
    values = {**{f"k{i + 1}": ks[:, i] for i in range(L1)}, **{f"s{i + 1}": ss[:, i] for i in range(L1)}}
    e = r.evaluate(values)
    for c in range(3):
        expected = recurrence([(int(ks[c, i]), int(ss[c, i]), 1, 1) for i in range(L1)])
        assert (int(e.rf[c]), int(e.jump[c]), int(e.start[c])) == expected[-1]
        # the middle layer too (per-layer results are computed on access)
        mid = e.layers[499]
        assert (int(mid.rf[c]), int(mid.jump[c]), int(mid.start[c])) == expected[499]
    # exact substitution of the first configuration gives the same integers
    exact = r.subs({**{k: int(ks[0, i]) for i, k in enumerate(KS)}, **{s: int(ss[0, i]) for i, s in enumerate(SS)}})
    expected = recurrence([(int(ks[0, i]), int(ss[0, i]), 1, 1) for i in range(L1)])
    assert (exact.rf, exact.jump, exact.start) == expected[-1]
    assert exact.layers[499].rf == expected[499][0]


def test_thousand_distinct_symbols_closed_form_matches_the_formula(deep):
    """rf is the notes' 1 + Σ (k_i - 1) Π_{j<i} s_j: equal after substituting random values
    (a full symbolic expansion would be the quadratic form the engine avoids)."""
    rng = random.Random(5)
    for _ in range(3):
        kv = [rng.randint(1, 7) for _ in KS]
        sv = [rng.choice([1, 1, 1, 2, 3]) for _ in SS]
        formula = 1 + sum((kv[i] - 1) * math.prod(sv[:i]) for i in range(L1))
        at = {**dict(zip(KS, map(sp.Integer, kv))), **dict(zip(SS, map(sp.Integer, sv)))}
        assert deep.rf.xreplace(at) == formula


def test_thousand_distinct_symbols_per_layer_latex(deep):
    for i in (0, 1, 500, 999):
        layer = deep.layers[i]
        assert f"k_{{{i + 1}}}" in sp.latex(layer.rf)
        assert sp.latex(layer.start)


# --------------------------------------------------------------------------- 10,000 numeric layers
def _numeric_stack(seed, count):
    rng = random.Random(seed)
    spec = []
    for _ in range(count):
        kernel, dilation = rng.randint(1, 7), rng.choice([1, 1, 2, 3])
        spec.append((kernel, rng.choice([1, 1, 1, 2, 3]), rng.randint(0, 3), dilation))
    return spec


def test_ten_thousand_numeric_layers():
    spec = _numeric_stack(11, 10_000)
    net = Sequential(*[Conv(kk, stride=st, padding=pad, dilation=dl) for kk, st, pad, dl in spec])
    r = analyze(net)
    expected = recurrence(spec)
    # exact integers far beyond int64 (the jump has thousands of digits)
    assert (r.rf, r.jump, r.start) == expected[-1]
    assert r.jump > 2**1000
    for i in (0, 1, 4999, 9998):
        assert (r.layers[i].rf, r.layers[i].jump, r.layers[i].start) == expected[i]
    assert sp.latex(r.rf) == str(expected[-1][0])


def test_ten_thousand_numeric_layers_with_sizes_and_counts():
    """Stride 1, 'same'-like paddings: sizes stay large; channels give params and MACs."""
    rng = random.Random(3)
    layers, spec, size, sizes = [], [], 10_000, []
    for i in range(10_000):
        kernel = rng.choice([1, 3, 5])
        pad = (kernel - 1) // 2 + rng.choice([0, 0, 1])
        layers.append(Conv(kernel, padding=pad, in_channels=4 if i == 0 else None, out_channels=4, bias=False))
        spec.append((kernel, 1, pad, 1))
        size = size + 2 * pad - kernel + 1
        sizes.append(size)
    r = analyze(Sequential(*layers), input_size=(10_000,))
    expected = recurrence(spec)
    assert (r.rf, r.jump, r.start, r.out_size) == (*expected[-1], sizes[-1])
    assert r.params == sum(16 * kk for kk, _, _, _ in spec)
    assert r.macs == sum(16 * kk * n for (kk, _, _, _), n in zip(spec, sizes))
    # the numeric evaluator agrees (no symbols: one configuration)
    e = r.evaluate({})
    assert (int(e.rf), int(e.start), int(e.out_size), int(e.macs)) == (r.rf, r.start, r.out_size, r.macs)


def test_ten_thousand_numeric_layers_with_pools():
    rng = random.Random(8)
    layers, spec = [], []
    for _ in range(10_000):
        if rng.random() < 0.1:
            kernel = rng.choice([2, 3])
            layers.append(MaxPool(kernel, stride=1, padding=kernel // 2))
            spec.append((kernel, 1, kernel // 2, 1))
        else:
            layers.append(ReLU())
            spec.append((1, 1, 0, 1))
    r = analyze(Sequential(*layers))
    assert (r.rf, r.jump, r.start) == recurrence(spec)[-1]


# --------------------------------------------------------------------------- 10,000 shared symbols
def test_ten_thousand_layers_one_shared_layer():
    """10,000 copies of Conv(k, stride=s): the closed form 1 + (k - 1)(s^L - 1)/(s - 1), with
    the s = 1 case kept as a Piecewise branch."""
    k, s = symbols("k s")
    count = 10_000
    r = analyze(Sequential(*[Conv(k, stride=s, padding=1) for _ in range(count)]))
    assert r.jump == s**count
    assert sp.latex(r.rf) and sp.latex(r.start)
    assert len(sp.latex(r.rf)) < 500  # a closed form, not a 10,000-term sum
    for kv, sv in ((3, 1), (5, 1), (3, 2), (2, 3)):  # the closed forms at values
        at = {k: sp.Integer(kv), s: sp.Integer(sv)}
        assert tuple(x.xreplace(at) for x in (r.rf, r.jump, r.start)) == recurrence([(kv, sv, 1, 1)] * count)[-1]
    sub = r.subs({k: 3, s: 2})  # re-derived with numbers
    assert (sub.rf, sub.jump, sub.start) == recurrence([(3, 2, 1, 1)] * count)[-1]
    # evaluate: stride 1 keeps every value inside int64
    e = r.evaluate({k: np.array([1, 3, 7]), s: 1})
    assert e.rf.tolist() == [1, 2 * count + 1, 6 * count + 1]
    assert np.all(np.asarray(e.start) == -count)  # the same for every k
    assert sub.layers[4_999].rf == recurrence([(3, 2, 1, 1)] * 5_000)[-1][0]
    assert r.layers[4_999].rf.xreplace({k: 3, s: 2}) == sub.layers[4_999].rf


def test_ten_thousand_layers_shared_symbols_in_a_repeating_block():
    """A 3-layer block repeated: no run of identical layers, shared symbols throughout."""
    k, s = symbols("k s")
    block = [Conv(k, stride=s, padding=1), ReLU(), Conv(3, dilation=k)]
    count = 3_333
    r = analyze(Sequential(*(block * count)))
    assert r.rf.free_symbols == {k, s}
    assert sp.latex(r.rf) and sp.latex(r.center)
    spec = []
    for _ in range(count):
        spec += [("k", "s", 1, 1), (1, 1, 0, 1), (3, 1, 0, "k")]
    def concrete(kv, sv):
        return [(kv if a == "k" else a, sv if b == "s" else b, p, kv if dd == "k" else dd) for a, b, p, dd in spec]

    for kv, sv in ((3, 1), (5, 3)):
        at = {k: sp.Integer(kv), s: sp.Integer(sv)}
        assert tuple(x.xreplace(at) for x in (r.rf, r.jump, r.start)) == recurrence(concrete(kv, sv))[-1]
    sub = r.subs({k: 2, s: 2})
    assert (sub.rf, sub.jump, sub.start) == recurrence(concrete(2, 2))[-1]
    e = r.evaluate({k: np.array([1, 2, 3]), s: 1})
    rf, start = np.broadcast_to(e.rf, (3,)), np.broadcast_to(e.start, (3,))
    for c, kv in enumerate((1, 2, 3)):
        expected = recurrence(concrete(kv, 1))[-1]
        assert (int(rf[c]), int(start[c])) == (expected[0], expected[2])


# --------------------------------------------------------------------------- symbolic input size at depth
def test_symbolic_input_size_at_depth():
    """Output sizes on a symbolic input nest one floor per layer; the engine merges them
    (floor((floor(X/D) + c)/s) = floor((X + cD)/(Ds)) for integers) chunk by chunk, so 200 layers
    give a few floors of bounded sums (not 200 nested floors, nor one floor of a sum of 200
    products of up to 200 strides), and the value is exact."""
    depth = 200
    ks, ss, n = symbols(f"k1:{depth + 1}"), symbols(f"s1:{depth + 1}"), symbols("n")
    r = analyze(Sequential(*[Conv(k, stride=s, padding=1) for k, s in zip(ks, ss)]), input_size=n)
    out = r.out_size
    floors = sum(1 for e in sp.preorder_traversal(out) if isinstance(e, sp.floor))
    assert 1 < floors <= depth // 5
    assert sum(1 for _ in sp.preorder_traversal(out)) < 50 * depth  # linear: a flat sum had ~depth**2 / 2
    assert sp.latex(out)
    rng = random.Random(4)
    kv = [rng.randint(1, 5) for _ in range(depth)]
    sv = [1] * depth
    for i in rng.sample(range(depth), 12):
        sv[i] = rng.choice([2, 3])
    size, sizes = 10**7, []
    for kk, st in zip(kv, sv):
        size = (size + 2 - kk) // st + 1
        sizes.append(size)
    at = {**dict(zip(ks, map(sp.Integer, kv))), **dict(zip(ss, map(sp.Integer, sv))), n: sp.Integer(10**7)}
    assert out.xreplace(at) == sizes[-1]
    values = {**{k.name: v for k, v in zip(ks, kv)}, **{s.name: v for s, v in zip(ss, sv)}, "n": 10**7}
    assert int(r.evaluate(values).out_size) == sizes[-1]
