"""Deep nesting of blocks: every operation on a layer tree works up to the nesting limit
(:data:`rfsym.layers.MAX_NESTING`, 10,000 levels) without raising Python's recursion limit, and a
deeper tree is a LayerError naming the limit.

Each network below has a known nesting depth (``net.depth``) and a known receptive field: every
level adds one 3-wide padded convolution on the path of the output (or adds none), so the rf is
``2·(number of convolutions on the path) + 1``, counted while the network is built.
"""

from __future__ import annotations

import copy
import pickle
import sys

import pytest

import rfsym as R
from rfsym import (
    Concat,
    Conv,
    Graph,
    Identity,
    LayerError,
    Repeat,
    Residual,
    Sequential,
    analyze,
    spec,
    verify,
)
from rfsym.cli import main
from rfsym.layers import MAX_NESTING

K = R.symbols("k")
LEAF = Conv(1)


def nest(kind, depth, kernel=3, padding=1):
    """``(network, convolutions on the output's path)`` of nesting depth ``depth``; its blocks are
    all distinct objects, its leaves one Conv and one 1x1 Conv (built once: building is the slow
    part)."""
    shared = Conv(kernel, padding=padding)
    one = Conv(1)

    def conv(kernel):
        return shared

    x, convs = conv(kernel), 1
    if kind == "repeat":  # a Repeat of 3 copies at the bottom, then Repeats of one
        x, convs = Repeat(x, 3), 3
    for level in range(depth - (kind == "repeat")):
        if kind == "sequential":
            x, convs = Sequential(conv(kernel), x), convs + 1
        elif kind == "residual":
            x = Residual(x)
        elif kind == "repeat":
            x = Repeat(x, 1)
        elif kind == "graph":  # a graph node holding the graph below, behind a conv, with a skip
            x = Graph(("a", conv(kernel), "input"), ("b", x, "a"), ("s", "add", ("b", "a")))
            convs += 1
        elif kind == "mixed":
            step = level % 5
            if step == 0:
                x, convs = Sequential(x, conv(kernel)), convs + 1
            elif step == 1:
                x = Residual(x, shortcut=Identity())
            elif step == 2:
                x = Concat(x, one)
            elif step == 3:
                x = Repeat(x, 1)
            else:
                x = Graph(("g", x, "input"), ("c", conv(kernel), "g"))
                convs += 1
    return x, convs


KINDS = ["sequential", "residual", "repeat", "graph", "mixed"]
DEPTHS = [1000, 5000]


@pytest.fixture(scope="module")
def nets():
    cache = {}

    def get(kind, depth, kernel=3, padding=1):
        if (kind, depth, kernel, padding) not in cache:
            cache[kind, depth, kernel, padding] = nest(kind, depth, kernel, padding)
        return cache[kind, depth, kernel, padding]
    return get


def test_python_recursion_limit_is_the_default():
    # the point of these tests: deep trees work with Python's own limit (no setrecursionlimit)
    assert sys.getrecursionlimit() <= 1000 < DEPTHS[0] + 1


@pytest.mark.parametrize("depth", DEPTHS)
@pytest.mark.parametrize("kind", KINDS)
def test_structure(nets, kind, depth):
    net, _ = nets(kind, depth)
    assert net.depth == depth
    twin, _ = nest(kind, depth)  # built again: equal, not identical
    assert twin is not net and twin == net and hash(twin) == hash(net)
    assert not (twin != net)
    other, _ = nest(kind, depth, kernel=5)
    assert other != net
    text = repr(net)
    assert text == repr(twin) and text.startswith(type(net).__name__ + "(") and len(text) > 10 * depth
    assert net.free_symbols == set() and net.ndim is None
    assert net.subs({K: 3}) is net  # nothing to replace: the same tree
    assert pickle.loads(pickle.dumps(net)) == net
    assert copy.copy(net) is net and copy.deepcopy(net) is net


@pytest.mark.parametrize("depth", DEPTHS)
@pytest.mark.parametrize("kind", KINDS)
def test_analyze(nets, kind, depth):
    net, convs = nets(kind, depth)
    r = analyze(net, input_size=8, ndim=1)
    assert (r.rf, r.jump, r.start, r.out_size) == (2 * convs + 1, 1, -convs, 8)


@pytest.mark.parametrize("depth", DEPTHS)
def test_symbols(nets, depth):
    net, convs = nets("sequential", depth, kernel=K, padding=0)
    assert net.free_symbols == {K}
    assert repr(net).count("Conv(kernel_size=k)") == convs
    three = net.subs({K: 3})
    assert three.free_symbols == set() and three == nest("sequential", depth, 3, padding=0)[0]
    assert analyze(net).rf == convs * (K - 1) + 1
    assert analyze(three).rf == 2 * convs + 1


def test_result_subs_and_evaluate_at_depth(nets):
    n = R.symbols("n")
    net, convs = nets("sequential", 1000, kernel=K, padding=0)
    assert analyze(net).subs({K: 3}).rf == 2 * convs + 1
    r = analyze(net, input_size=n, ndim=1)
    assert r.subs({K: 1, n: 8}).rf == 1
    assert r.evaluate({K: 3, n: 2 * convs + 1}).out_size == 1


@pytest.mark.parametrize("kind", KINDS)
def test_verify_summary_symbolize(nets, kind):
    net, convs = nets(kind, 1000)
    report = verify(net, 6, ndim=1)
    assert report.ok
    table = R.summary(net, input_size=8, ndim=1)
    assert "total" in str(table)
    sym = R.symbolize(net)
    assert analyze(sym, input_size=8, ndim=1).rf == 2 * convs + 1


def test_summary_at_5000(nets):
    # (verify at depth MAX_NESTING: tests/test_verify_scale.py)
    net, convs = nets("sequential", 5000)
    assert R.summary(net, input_size=8, ndim=1, depth=None).result.rf == 2 * convs + 1


def test_ndim_at_depth():
    x = Conv((3, 3), padding=1)
    for _ in range(5000):
        x = Sequential(Conv(3, padding=1), x)
    assert x.ndim == 2
    bad = Conv((3,), padding=1)
    for _ in range(5000):
        bad = Residual(bad)
    with pytest.raises(LayerError, match="disagree on the number of spatial axes"):
        Sequential(Conv((3, 3)), bad).ndim  # noqa: B018


def test_spec_round_trip_and_cli(capsys):
    text = "res(" * 1000 + "conv(3, p=1)" + ")" * 1000
    parsed = spec.parse_line(text)
    built, _ = nest("residual", 1000)
    assert parsed == built and repr(parsed) == repr(built)
    assert main(["analyze", text, "--input", "8"]) == 0
    out = capsys.readouterr().out
    assert "total" in out
    assert main(["verify", "(conv(3, p=1), " * 1000 + "conv(3, p=1)" + ")" * 1000, "--input", "6"]) == 0
    assert "OK" in capsys.readouterr().out


def test_shared_subtrees_stay_linear():
    # x = Sequential(x, x) doubles the layers at every level: 2^60 leaves, 60 distinct blocks;
    # ==, hash, free_symbols and subs visit each distinct block once
    x = Conv(K)
    for _ in range(60):
        x = Sequential(x, x)
    y = Conv(K)
    for _ in range(60):
        y = Sequential(y, y)
    assert x == y and hash(x) == hash(y) and x.free_symbols == {K}
    s = x.subs({K: 3})  # one substitution keeps the sharing: both halves are one object
    assert s.layers[0].layers[1] is s.layers[0].layers[0]
    assert pickle.loads(pickle.dumps(x)) == x


@pytest.mark.parametrize("block", [
    lambda x: Sequential(x, LEAF),
    lambda x: Residual(x),
    lambda x: Concat(x, LEAF),
    lambda x: Repeat(x, 2),
    lambda x: Graph(("a", x, "input")),
], ids=["Sequential", "Residual", "Concat", "Repeat", "Graph"])
def test_beyond_the_limit_is_a_layer_error(block):
    x = Conv(3)
    with pytest.raises(LayerError, match=f"blocks are nested more than {MAX_NESTING} levels deep"):
        for _ in range(MAX_NESTING + 5):
            x = block(x)


def test_at_the_limit():
    x, convs = nest("sequential", MAX_NESTING)
    assert x.depth == MAX_NESTING and convs == MAX_NESTING + 1
    assert x == Residual(x).body and analyze(x, input_size=8, ndim=1).rf == 2 * convs + 1


def test_solved_repeats_nest_to_their_own_limit():
    from rfsym.depth import MAX_SOLVED_NESTING
    n = R.symbols("n")
    x = Conv(3)
    for _ in range(MAX_SOLVED_NESTING):
        x = Repeat(x, n)
    assert analyze(x).rf == 2 * n**MAX_SOLVED_NESTING + 1
    with pytest.raises(LayerError, match=f"nest more than {MAX_SOLVED_NESTING} levels deep"):
        analyze(Repeat(x, n))
