"""Symbolic input sizes at depth: output sizes are floors merged chunk by chunk, exact everywhere.

A stack of L layers on a symbolic input size ``x`` nests one ``floor`` per strided layer. The
engine merges them (``floor((floor(X/D) + c)/b) = floor((X + c·D)/(D·b))`` for integers) while
the merged numerator stays small, and wraps a new floor around the last one when it would not
(the old one shared, not copied), so sizes are linear in L and nest only once per chunk. These
tests check the values against the size recurrence computed with Python integers, and against
``Result.subs`` and ``Result.evaluate``. Timings live in ``benchmarks/bench_symsize.py``.
"""

import random

import numpy as np
import pytest
import sympy as sp

from rfsym import Conv, MaxPool, Sequential, analyze, symbols
from rfsym.ops import SymOps

x = symbols("x")


def chain(depth, kernels=None):
    """Layer i: Conv(k, padding=1), Conv(k, stride=2), MaxPool(2) for i mod 3 = 0, 1, 2."""
    ks = kernels or (3,) * depth
    return Sequential(*[(Conv(ks[i], padding=1), Conv(ks[i], stride=2), MaxPool(2))[i % 3] for i in range(depth)])


def sizes(depth, n, kernels=None):
    """The output size after each layer of :func:`chain`, by PyTorch's formula on Python ints."""
    ks = kernels or (3,) * depth
    out = []
    for i in range(depth):
        k, s, p = ((ks[i], 1, 1), (ks[i], 2, 0), (2, 2, 0))[i % 3]
        n = (n + 2 * p - k) // s + 1
        assert n >= 1
        out.append(n)
    return out


def floor_depth(expr):
    best, stack = 0, [(expr, 0)]
    while stack:
        e, d = stack.pop()
        d += isinstance(e, (sp.floor, sp.ceiling))
        best = max(best, d)
        stack.extend((a, d) for a in e.args)
    return best


def tree_nodes(expr):
    return sum(1 for _ in sp.preorder_traversal(expr))


def test_numeric_layers_give_one_floor_at_depth():
    """1,000 layers of numbers on a symbolic x: one floor of x plus a constant over 2^666, equal
    to the recurrence, to Result.subs and to Result.evaluate (values beyond int64)."""
    depth = 1000
    r = analyze(chain(depth), input_size=x)
    out = r.out_size
    assert floor_depth(out) == 1 and tree_nodes(out) < 20
    halvings = 2 * ((depth + 1) // 3)
    assert r.jump == 2**halvings
    values = [2 ** (halvings + 2) + v for v in (0, 1, 12345, 2**halvings - 1)]
    for v in values:
        assert out.xreplace({x: sp.Integer(v)}) == sizes(depth, v)[-1]
    assert r.subs({x: values[2]}).out_size == sizes(depth, values[2])[-1]
    ev = r.evaluate({x: np.array(values, dtype=object)}).out_size
    assert [int(e) for e in np.broadcast_to(ev, (len(values),))] == [sizes(depth, v)[-1] for v in values]
    # every layer's size too (the per-layer expressions share the merged floors)
    layer_sizes = [lr.out_size for lr in r.layers]
    expected = sizes(depth, values[1])
    for i in (0, 1, 2, 499, 998, 999):
        assert layer_sizes[i].xreplace({x: sp.Integer(values[1])}) == expected[i], i


def test_symbolic_kernels_nest_in_chunks():
    """A distinct symbolic kernel per layer: the merged numerator would grow by a term per layer;
    the engine nests a new floor per chunk instead, so the closed form is linear in the depth
    and nests a few floors deep, and it is exact."""
    depth = 600
    ks = symbols(f"k1:{depth + 1}")
    r = analyze(chain(depth, ks), input_size=x)
    out = r.out_size
    nest = floor_depth(out)
    assert 1 < nest <= 20
    assert tree_nodes(out) < 5 * depth
    rng = random.Random(7)
    kv = [rng.randint(1, 5) for _ in range(depth)]
    n = 2**450 + rng.randrange(2**40)
    at = {**{k: sp.Integer(v) for k, v in zip(ks, kv)}, x: sp.Integer(n)}
    assert out.xreplace(at) == sizes(depth, n, kv)[-1]
    used = {k: v for i, (k, v) in enumerate(zip(ks, kv)) if i % 3 != 2}  # pools have no kernel symbol
    assert r.free_symbols == set(used) | {x}
    sub = r.subs({**used, x: n})
    assert sub.out_size == sizes(depth, n, kv)[-1]
    ev = r.evaluate({**{k.name: v for k, v in used.items()}, "x": np.array([n, n + 1], dtype=object)})
    assert [int(e) for e in ev.out_size] == [sizes(depth, m, kv)[-1] for m in (n, n + 1)]
    assert sp.latex(out) and str(out)


def test_thousands_of_symbolic_kernels_print():
    """Beyond a few chunks the bound on a chunk doubles, so floors nest O(log L) deep: 3,000
    layers with symbolic kernels still print (sympy's printers recurse once per level)."""
    depth = 3000
    ks = symbols(f"k1:{depth + 1}")
    out = analyze(chain(depth, ks), input_size=x).out_size
    assert floor_depth(out) <= 40
    assert len(str(out)) > depth


@pytest.mark.parametrize("seed", range(6))
def test_floordiv_equals_floor(seed):
    """SymOps.floordiv and ceildiv (merged, chunked or built without sympy's evaluation, with
    numbers beyond 64 bits) equal floor and ceiling at random integer points."""
    rng = random.Random(seed)
    a, b, c = symbols("a b c")
    value = a
    exact = []
    for _ in range(40):
        d = rng.choice([1, 2, 3, 2**70 + 1, 7])
        shift = rng.randint(-9, 9) + rng.choice([0, a, -2 * b, 3 * c - b])
        if rng.random() < 0.3:
            value = SymOps.ceildiv(value + shift, d)
            exact.append(("ceil", d, shift))
        else:
            value = SymOps.floordiv(value + shift, d)
            exact.append(("floor", d, shift))
    for _ in range(5):
        point = {a: rng.randint(1, 2**90), b: rng.randint(1, 50), c: rng.randint(1, 50)}
        v = point[a]
        for kind, d, shift in exact:
            t = v + int(sp.sympify(shift).xreplace({s: sp.Integer(w) for s, w in point.items()}))
            v = t // d if kind == "floor" else -(-t // d)
        assert value.xreplace({s: sp.Integer(w) for s, w in point.items()}) == v


def test_short_chains_keep_sympy_forms():
    """Short networks keep the closed forms sympy itself gives (no unevaluated pieces):
    floor((floor((x - 3)/2) + 1 - 3)/2) + 1 = floor((x - 7)/4) + 1, then the pool
    floor((x - 11)/8) + 1."""
    r = analyze(Sequential(Conv(3, stride=2), Conv(3, stride=2), MaxPool(2)), input_size=x)
    assert r.out_size == sp.floor((x - 11) / 8) + 1
    assert str(r.out_size) == "floor(x/8 - 11/8) + 1"
    k = symbols("k")
    r = analyze(Sequential(Conv(k, stride=2), MaxPool(2)), input_size=x)
    assert r.out_size == sp.floor((x - k - 2) / 4) + 1
    assert str(r.out_size) == "floor(-k/4 + x/4 - 1/2) + 1"


def test_repeated_analyses_give_the_same_expression():
    """Analysing the same symbolic-size network again gives an equal closed form (the merge
    bookkeeping lives on the floors, not in a table shared between analyses)."""
    net = chain(300, symbols("k1:301"))
    first = analyze(net, input_size=x).out_size
    for _ in range(2):
        assert analyze(net, input_size=x).out_size == first
