"""Deep nesting benchmark: time of the operations on a tree of blocks
against its nesting depth, for nested ``Sequential(Conv(3, padding=1), inner)`` and nested
``Residual(inner)``; every operation walks the tree with explicit stacks (no recursion).

* build: constructing the tree (one shared leaf: the blocks alone);
* ``==`` of two trees built separately, ``hash`` (computed once, cached), ``repr``, ``subs``,
  a pickle round trip; ``analyze`` at input size 8 (1-D).
"""

from __future__ import annotations

import pickle

from harness import Table, median_time, section

from rfsym import Conv, Residual, Sequential, analyze, symbols


def _tree(kind, depth, leaf):
    x = leaf
    for _ in range(depth):
        x = Sequential(leaf, x) if kind == "Sequential" else Residual(x)
    return x


@section("nesting", "Nesting: operations on a tree of blocks vs nesting depth", order=15)
def nesting(ctx):
    depths = (1000,) if ctx.quick else (1000, 5000, 10_000)
    table = Table(["block", "depth", "build (s)", "== (s)", "hash (s)", "repr (s)", "subs (s)", "pickle (s)",
                   "analyze (s)", "rf"])
    k = symbols("k")
    for kind in ("Sequential", "Residual"):
        for depth in depths:
            leaf = Conv(3, padding=1)
            t_build, net = median_time(lambda d=depth, kd=kind, lf=leaf: _tree(kd, d, lf), ctx.repeat)
            twin = _tree(kind, depth, Conv(3, padding=1))
            t_eq, same = median_time(lambda a=net, b=twin: a == b, 1)
            assert same
            fresh = _tree(kind, depth, leaf)
            t_hash, _ = median_time(lambda a=fresh: hash(a), 1)  # the first hash: computed
            t_repr, _ = median_time(lambda a=net: repr(a), ctx.repeat)
            t_subs, _ = median_time(lambda a=net: a.subs({k: 3}), ctx.repeat)
            t_pickle, _ = median_time(lambda a=net: pickle.loads(pickle.dumps(a)), ctx.repeat)
            t_an, r = median_time(lambda a=net: analyze(a, input_size=8, ndim=1), ctx.repeat)
            table.add(kind, depth, t_build, t_eq, t_hash, t_repr, t_subs, t_pickle, t_an, r.rf)
    return table
