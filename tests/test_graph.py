"""Graphs (any DAG), symbolic depth, transposed convolutions and upsampling (rfsym.dag, rfsym.depth).

Every closed form is checked two ways: against hand-computed values, and against the brute-force
enumerator (rfsym.enumeration, which shares no code with the engine) or explicit unrolling.
"""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from rfsym import (
    AvgPool,
    Concat,
    Conv,
    ConvTranspose,
    Crop,
    Graph,
    GraphError,
    Identity,
    LayerError,
    MaxPool,
    ReLU,
    Repeat,
    Residual,
    Sequential,
    SizeError,
    Upsample,
    analyze,
    symbols,
)
from rfsym.enumeration import enumerate_network
from rfsym.verification import verify

n, k, s, x, C = symbols("n k s x C")
i = symbols("i", nonnegative=True)


def _ok(net, size, **kw):
    report = verify(net, size, **kw)
    assert report.ok, str(report)
    return report


# =========================================================================== residual / concat
def test_residual_block_is_the_longest_path():
    """With an identity shortcut the merge's receptive field is the body's (the longest path)."""
    body = Sequential(Conv(3, padding=1), ReLU(), Conv(3, padding=1))
    r = analyze(Residual(body), input_size=16)
    assert (r.rf, r.jump, r.start, r.out_size, r.aligned) == (5, 1, -2, 16, True)
    assert [layer.type for layer in r.layers] == ["Conv", "ReLU", "Conv", "Identity", "Add"]
    assert r.layers[-1].branch_centers == ((0, 0), (0, 0))
    # a 1x1 strided projection shortcut inside a strided body: still the body's field
    down = Residual(Sequential(Conv(3, stride=2, padding=1), Conv(3, padding=1)), Conv(1, stride=2))
    r = analyze(Sequential(down, down), input_size=32)
    assert (r.rf, r.jump, r.out_size) == (19, 4, 8)
    chain = Sequential(Conv(3, stride=2, padding=1), Conv(3, padding=1), Conv(3, stride=2, padding=1),
                       Conv(3, padding=1))
    assert r.rf == analyze(chain).rf
    _ok(Sequential(down, down), 32)


def test_residual_params_macs_sum_over_branches():
    body = Sequential(Conv(3, padding=1, in_channels=C, out_channels=C, bias=False), ReLU(),
                      Conv(3, padding=1, out_channels=C, bias=False))
    r = analyze(Residual(body, Conv(1, out_channels=C, bias=False)), input_size=x, in_channels=C)
    assert sp.expand(r.params - 19 * C**2) == 0
    assert sp.expand(r.macs - 19 * C**2 * x**2) == 0
    assert r.layers[-1].params == 0 and r.layers[-1].macs == 0


def test_inception_like_module():
    """GoogLeNet's inception (3a) shape: 1x1, 1x1->3x3, 1x1->5x5, pool->1x1 concatenated
    (Szegedy et al. 2015, table 1: 64 + 128 + 32 + 32 = 256 output channels on 192 inputs)."""
    c = 192
    module = Concat(
        Conv(1, in_channels=c, out_channels=64),
        Sequential(Conv(1, out_channels=96), Conv(3, padding=1, out_channels=128)),
        Sequential(Conv(1, out_channels=16), Conv(5, padding=2, out_channels=32)),
        Sequential(MaxPool(3, stride=1, padding=1), Conv(1, out_channels=32)),
        name="inception_3a")
    r = analyze(module, input_size=28, in_channels=c)
    assert (r.rf, r.jump, r.start, r.out_size, r.out_channels, r.aligned) == (5, 1, -2, 28, 256, True)
    # weights by hand: 192*64 + 192*96 + 96*128*9 + 192*16 + 16*32*25 + 192*32 = 163,328, plus
    # 368 biases; every branch keeps the 28x28 grid, so MACs = 784 * 163,328 = 128,049,152
    # (GoogLeNet's table 1 lists "128M" ops for inception (3a))
    assert r.params == 163328 + 368
    assert r.macs == 28 * 28 * 163328
    assert [layer.type for layer in r.layers][-1] == "Concat"
    assert r.layers[-1].name == "inception_3a"
    _ok(module, 28, in_channels=c)
    # two stacked modules: the union of unions
    two = Sequential(module, Concat(Conv(1, out_channels=8), Conv(5, padding=2, out_channels=8)))
    assert analyze(two, input_size=28, in_channels=c).rf == 9
    _ok(two, 28, in_channels=c)


def test_misaligned_branches_are_detected():
    """Same jump, different centre: the merge is not aligned in Araujo's sense."""
    shifted = Conv(3, padding=((0, 2), (1, 1)))  # same output size, centre moved right on axis 0
    r = analyze(Residual(shifted), input_size=8)
    assert r.aligned is False
    assert r.layers[-1].aligned is False
    assert r.layers[-1].branch_centers == ((1, 0), (0, 0))
    assert (r.rf, r.start) == (3, (0, -1))
    _ok(Residual(shifted), 8)
    # an even kernel is misaligned by half a pixel against the identity
    assert analyze(Residual(Conv(2, padding=((0, 1), (0, 1)))), input_size=8).aligned is False
    # nested: an aligned outer merge over a misaligned inner one is misaligned overall
    nested = Concat(Residual(shifted), Conv(5, padding=2))
    assert analyze(nested, input_size=8).aligned is False


def test_jump_mismatch_names_the_branches():
    """Merge errors (rfsym.maps.merge and the engine's merge node) name the merge node and the
    inputs with their values."""
    with pytest.raises(GraphError, match=r"Add 'res': branches must have the same jump.*"
                                         r"Residual 'res' body has 2, Residual 'res' shortcut has 1"):
        analyze(Sequential(Conv(3), Residual(Conv(3, stride=2, padding=1), name="res")))
    with pytest.raises(GraphError, match=r"Concat '0': inputs must have the same output size to merge: "
                                         r"Concat branch 0 gives \(8, 8\), Concat branch 1 gives \(6, 6\)"):
        analyze(Concat(Conv(3, padding=1), Conv(3)), input_size=8)
    with pytest.raises(GraphError, match=r"Add '0': inputs must have the same channels to merge: "
                                         r"Residual body gives 4, Residual shortcut gives 3"):
        analyze(Residual(Conv(3, padding=1, out_channels=4)), input_size=8, in_channels=3)
    with pytest.raises(GraphError, match=r"same jump.*body has s, .*shortcut has 1 \(cannot be shown equal\)"):
        analyze(Residual(Conv(3, stride=s, padding=1)))
    # the enumerator refuses the same size mismatch, naming the merge and its inputs
    with pytest.raises(GraphError, match=r"Concat '0': inputs must have the same output size to merge: "
                                         r"Concat branch 0 gives \(8, 8\), Concat branch 1 gives \(6, 6\)"):
        enumerate_network(Concat(Conv(3, padding=1), Conv(3)), 8)


def test_symbolic_merge_keeps_max_and_min():
    p = symbols("p", nonnegative=True)
    r = analyze(Residual(Conv(k, padding=p), Conv(3, padding=1)))
    assert r.start == sp.Min(-1, -p)
    assert r.rf.has(sp.Max) and r.rf.has(sp.Min)
    assert r.aligned is None
    # decided once numbers come in
    assert analyze(Residual(Conv(5, padding=2), Conv(3, padding=1))).rf == 5
    assert r.subs({k: 5, p: 2}).rf == 5 and r.subs({k: 5, p: 2}).aligned is True
    e = r.evaluate({"k": np.array([3, 5, 7]), "p": np.array([1, 2, 0])})
    assert e.rf.tolist() == [3, 5, 8] and e.start.tolist() == [-1, -2, -1]


def test_empty_and_nested_errors():
    with pytest.raises(LayerError, match="Concat: needs at least one branch"):
        Concat()
    with pytest.raises(LayerError, match="body must be an rfsym layer"):
        Residual(3)
    with pytest.raises(LayerError, match="branches disagree on the number of spatial axes"):
        _ = Concat(Conv((3,)), Conv((3, 3))).ndim


# --------------------------------------------------------------------------- random DAGs
def _same_size_conv(draw, stride=1):
    kk = draw(st.integers(1, 5))
    d = draw(st.integers(1, 2))
    total = d * (kk - 1)
    left = draw(st.integers(0, total))
    return Conv(kk, stride=stride, dilation=d, padding=((left, total - left),))


@st.composite
def branchy(draw, depth=0):
    """A random 1-D graph: chains, residuals and concats whose branches share jump and size."""
    items = []
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["conv", "conv", "residual", "concat", "pool", "up"] if depth < 2
                                    else ["conv", "pool"]))
        if kind == "conv":
            items.append(_same_size_conv(draw))
        elif kind == "pool":
            items.append(MaxPool(draw(st.integers(1, 3)), stride=1) if draw(st.booleans())
                         else AvgPool(2, stride=2))
        elif kind == "up":
            items.append(draw(st.sampled_from([Upsample(2), Upsample(2, mode="bilinear"),
                                               ConvTranspose(4, stride=2, padding=1),
                                               ConvTranspose(3, stride=2, padding=1, output_padding=1)])))
        else:
            stride = draw(st.integers(1, 2))
            count = 2 if kind == "residual" else draw(st.integers(2, 3))
            branches = []
            for _ in range(count):
                b = draw(branchy(depth + 1)) if draw(st.booleans()) else Identity()
                # every branch ends in a same-padded conv of the common stride
                branches.append(Sequential(b, _same_size_conv(draw, stride)) if stride > 1 or
                                draw(st.booleans()) else b)
            if stride > 1:
                branches = [b if isinstance(b, Sequential) and isinstance(b.layers[-1], Conv)
                            and b.layers[-1].stride == (stride,) else Sequential(b, Conv(1, stride=stride))
                            for b in branches]
            items.append(Residual(*branches) if kind == "residual" else Concat(*branches))
    return Sequential(*items)


def broadcasts(r):
    """Whether some merge of the analysed network broadcasts an input of size 1 against a larger
    one (the engine's global convention for gates; see test_properties for that case)."""
    def size(u):
        return r.input_size if u == -1 else r.layers[u].axes("out_size")
    return any(len({tuple(size(u)) for u in layer.inputs}) > 1
               for layer in r.layers if layer.type in ("Add", "Mul"))


@settings(max_examples=min(settings().max_examples, 200))  # the general DAG property: test_properties
@given(branchy(), st.integers(4, 24))
def test_random_dags_match_enumeration(net, size):
    """On random small DAGs (residuals, concats, transposed/upsampling layers), every layer's rf,
    rf_min, jump, start, centre, period and out_size equal the enumerator's."""
    try:
        r = analyze(net, input_size=size, ndim=1)
    except (SizeError, GraphError):
        assume(False)
    assume(not broadcasts(r))
    _ok(net, size, ndim=1)


# --------------------------------------------------------------------------- general DAGs
def _flatten(layer, src, nodes):
    """The nodes of ``Graph`` equivalent to a nested tree of Sequential/Residual/Concat."""
    if isinstance(layer, Sequential):
        for item in layer.layers:
            src = _flatten(item, src, nodes)
        return src
    if isinstance(layer, (Residual, Concat)):
        parts = (layer.body, layer.shortcut) if isinstance(layer, Residual) else layer.branches
        ends = [_flatten(part, src, nodes) for part in parts]
        nodes.append((f"n{len(nodes)}", "add" if isinstance(layer, Residual) else "concat", tuple(ends)))
        return nodes[-1][0]
    nodes.append((f"n{len(nodes)}", layer, src))
    return nodes[-1][0]


@settings(max_examples=min(settings().max_examples, 200))
@given(branchy(), st.integers(4, 24))
def test_graph_form_equals_the_nested_form(net, size):
    """A DAG given node by node analyses exactly like the nested Residual/Concat it describes,
    and agrees with enumeration."""
    try:
        tree = analyze(net, input_size=size, ndim=1)
        tree.rf  # noqa: B018 - the merges are checked lazily
    except (SizeError, GraphError):
        assume(False)
    assume(not broadcasts(tree))
    nodes = []
    _flatten(net, "input", nodes)
    assume(nodes)
    g = analyze(Graph(*nodes), input_size=size, ndim=1)
    for q in ("rf", "rf_min", "jump", "start", "period", "out_size", "aligned"):
        assert getattr(g, q) == getattr(tree, q), q
    assert len(g.layers) == len(tree.layers)
    _ok(Graph(*nodes), size, ndim=1)


def test_graph_dense_and_inception():
    """DenseNet-style: every layer reads the concatenation of all earlier features, so ``cat1``
    feeds both ``c2`` and ``cat2`` (not series-parallel): accepted, each node listed once under its
    own name, parameters counted once, and verified by enumeration."""
    g = Graph(("c1", Conv(3, padding=1, out_channels=4), "input"), ("cat1", "concat", ("input", "c1")),
              ("c2", Conv(3, padding=1, out_channels=4), "cat1"), ("cat2", "concat", ("cat1", "c2")))
    r = analyze(g, input_size=8, in_channels=3)
    assert (r.rf, r.out_channels) == (5, 11)
    # weights by hand: c1 3·4·9 + 4 = 112, c2 (3 + 4)·4·9 + 4 = 256
    assert r.params == 112 + 256
    assert [(layer.name, layer.type, layer.inputs) for layer in r.layers] == [
        ("c1", "Conv", (-1,)), ("cat1", "Concat", (-1, 0)), ("c2", "Conv", (1,)), ("cat2", "Concat", (1, 2))]
    named = analyze(Sequential(Conv(1, name="stem"), Graph(*g.nodes, name="block")), input_size=8, in_channels=3)
    assert [layer.name for layer in named.layers] == ["stem", "block.c1", "block.cat1", "block.c2", "block.cat2"]
    _ok(g, 8, in_channels=3)
    # a three-way add is one merge node over three inputs
    g = Graph(("a", Conv(1), "input"), ("b", Conv(3, padding=1), "input"), ("c", Conv(5, padding=2), "input"),
              ("sum", "add", ("a", "b", "c")))
    r = analyze(g, input_size=8)
    assert r.rf == 5 and [layer.type for layer in r.layers] == ["Conv", "Conv", "Conv", "Add"]
    assert r.layers[-1].inputs == (0, 1, 2)
    _ok(g, 8)


def test_named_graph_block_is_an_alias():
    g = Graph(("c1", Conv(3, padding=1), "input"), ("c2", Conv(3, padding=1), "c1"), name="block")
    r = analyze(Sequential(Conv(1, name="stem"), g), input_size=8)
    assert r.layer("block").name == "block.c2"


def test_graph_node_feeding_two_merges():
    """A node read by two merges (``a`` feeds ``m1`` and ``m2``): accepted and verified; with a
    stride in one path the second merge's field is the bounding box of both paths."""
    g = Graph(("a", Conv(3, padding=1), "input"), ("b", Conv(3, padding=1), "input"),
              ("m1", "add", ("a", "b")), ("m2", "add", ("a", "m1")))
    r = analyze(g, input_size=8)
    assert (r.rf, r.start) == (3, -1)
    assert [layer.inputs for layer in r.layers] == [(-1,), (-1,), (0, 1), (0, 2)]
    _ok(g, 8)
    g = Graph(("a", Conv(3, padding=1), "input"), ("b", Conv(5, padding=2), "a"), ("c", Conv(1), "a"),
              ("m1", "add", ("b", "c")), ("d", Conv(3, padding=1), "m1"), ("m2", "concat", ("a", "d", "m1")))
    r = analyze(g, input_size=9)
    assert (r.rf, r.start) == (9, -4)  # a (3) -> b (+4) -> d (+2)
    _ok(g, 9)


def test_graph_errors():
    with pytest.raises(GraphError, match="node 'b' reads 'z', which is not a node"):
        Graph(("b", Conv(3), "z"))
    with pytest.raises(GraphError, match="a merge is 'add', 'concat' or 'mul' over two or more inputs, "
                                         "got 'max' over 2"):
        Graph(("m", "max", ("input", "input")))
    with pytest.raises(GraphError, match="a merge is 'add', 'concat' or 'mul' over two or more inputs, "
                                         "got 'add' over 1"):
        Graph(("m", "add", ("input",)))
    with pytest.raises(GraphError, match="a layer reads exactly one input"):
        Graph(("a", Conv(3), ("input", "input")))
    with pytest.raises(GraphError, match="names must be unique"):
        Graph(("a", Conv(3), "input"), ("a", Conv(3), "a"))
    with pytest.raises(GraphError, match="the nodes form a cycle: a -> b -> a"):
        Graph(("a", Conv(3), "b"), ("b", Conv(3), "a"))
    with pytest.raises(GraphError, match="output 'z' is not a node"):
        Graph(("a", Conv(3), "input"), outputs=("a", "z"))


# =========================================================================== repeat
def test_repeat_closed_forms():
    assert analyze(Repeat(Conv(3), n)).rf == 2 * n + 1
    r = analyze(Repeat(Conv(k, stride=s), n))
    g = sp.Piecewise((n, sp.Eq(s, 1)), ((s**n - 1) / (s - 1), True))
    assert sp.simplify(r.rf - (1 + (k - 1) * g)) == 0
    assert r.jump == s**n
    assert r.rf.subs(s, 1) == 1 + (k - 1) * n
    # start: padding p per layer, jump s: -p (s^n - 1)/(s - 1)
    r = analyze(Repeat(Conv(3, stride=2, padding=1), n), input_size=x)
    assert sp.simplify(r.start + (2**n - 1)) == 0
    assert r.out_size == sp.floor((x + 2**n - 1) / 2**n)  # = ceil(x / 2^n)
    assert [layer.type for layer in r.layers] == ["Repeat"]


def test_repeat_listing_integer_n_unrolls():
    r = analyze(Repeat(Sequential(Conv(3), ReLU()), 3, name="stage"))
    assert [layer.name for layer in r.layers] == ["stage.0.0", "stage.0.1", "stage.1.0", "stage.1.1",
                                                 "stage.2.0", "stage.2.1"]
    assert r.rf == 7


@st.composite
def blocks(draw):
    """A random 1-D block: one to three convolutions or floor-mode pools with channels."""
    layers = []
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["conv", "conv", "pool", "relu"]))
        if kind == "conv":
            kk, ss, dd = draw(st.integers(1, 4)), draw(st.integers(1, 3)), draw(st.integers(1, 2))
            pp = draw(st.integers(0, 2))
            layers.append(Conv(kk, stride=ss, dilation=dd, padding=pp, out_channels=C,
                               bias=draw(st.booleans())))
        elif kind == "pool":
            kk = draw(st.integers(1, 3))
            layers.append(MaxPool(kk, stride=draw(st.integers(1, 2)), padding=draw(st.integers(0, kk // 2))))
        else:
            layers.append(ReLU())
    return Sequential(*layers)


def _unroll(block, m, size, c):
    return analyze(Sequential(*[block] * m), input_size=size, ndim=1, in_channels=c)


def _same(a, b):
    a, b = sp.sympify(a), sp.sympify(b)
    return a == b or sp.simplify(a - b) == 0


@settings(max_examples=60)
@given(blocks(), st.integers(1, 3))
def test_symbolic_n_equals_unrolling(block, c):
    """For n = 1..8, the closed forms of Repeat(block, n) equal the explicitly unrolled chain: rf,
    jump, start, params always, out_size at every size where all repetitions are valid; and the
    vectorised evaluate (arrays of n) equals the unrolled chain in everything, macs included."""
    r = analyze(Repeat(block, n), input_size=x, ndim=1, in_channels=C)
    for m in range(1, 9):
        u = analyze(Sequential(*[block] * m), ndim=1, in_channels=C)
        vals = {n: m}
        assert _same(r.rf.subs(vals), u.rf)
        assert _same(r.jump.subs(vals), u.jump)
        assert _same(r.start.subs(vals), u.start)
        assert _same(r.params.subs(vals), u.params)
    valid = []
    for m in range(1, 9):
        for size in (37, 64, 269, 5000):
            try:
                exact = _unroll(block, m, size, c)
            except SizeError:
                continue
            assert r.out_size.subs({n: m, x: size}) == exact.out_size
            if size == 5000:
                valid.append((m, exact.subs({C: c}) if C in exact.free_symbols else exact))
    if not valid:
        return
    names = {sym.name for sym in r.free_symbols}
    values = {key: v for key, v in {"n": np.array([m for m, _ in valid]), "x": 5000, "C": c}.items()
              if key in names}
    ev = r.evaluate(values)
    for j, (_, exact) in enumerate(valid):
        got = [np.asarray(getattr(ev, q)).reshape(-1)[j] if np.ndim(getattr(ev, q)) else getattr(ev, q)
               for q in ("rf", "jump", "start", "out_size", "params", "macs")]
        assert got == [exact.rf, exact.jump, exact.start, exact.out_size, exact.params, exact.macs]


@st.composite
def indexed_blocks(draw):
    """A 1-D block whose parameters change with the repetition index i: dilation a·2^i or a + b·i,
    kernel k or k + i, channels C·2^i -> C·2^(i+1) or constant."""
    layers = []
    for _ in range(draw(st.integers(1, 2))):
        a, b = draw(st.integers(1, 3)), draw(st.integers(0, 2))
        dil = draw(st.sampled_from([a * 2**i, a + b * i, a]))
        kern = draw(st.sampled_from([draw(st.integers(1, 4)), 2 + i]))
        chans = draw(st.sampled_from(["double", "same"]))
        cin, cout = (C * 2**i, C * 2 ** (i + 1)) if chans == "double" else (C, C)
        layers.append(Conv(kern, stride=draw(st.integers(1, 2)), dilation=dil, padding=draw(st.integers(0, 2)),
                           in_channels=cin, out_channels=cout, bias=draw(st.booleans())))
        if chans == "double":
            break  # one channel-doubling layer per block keeps the chain consistent
    return Sequential(*layers)


@settings(max_examples=40)
@given(indexed_blocks())
def test_indexed_repeat_equals_unrolling(block):
    """Geometric and arithmetic index dependence: the summation closed forms of rf, jump, start
    and params equal the unrolled chain (repetition t gets i = t) for n = 1..6."""
    r = analyze(Repeat(block, n, index=i), ndim=1)
    for m in range(1, 7):
        u = analyze(Repeat(block, m, index=i), ndim=1)
        assert len(u.layers) == m * len(block.layers)
        for q in ("rf", "jump", "start", "params"):
            assert _same(getattr(r, q).subs(n, m), getattr(u, q)), q


def test_macs_divisibility_assumption():
    """Halving blocks: macs are exact when the sizes divide as the module docstring states."""
    # 3x3 stride-2 'same' conv rounds up: exact for x divisible by 2^n
    blk = Conv(3, stride=2, padding=1, out_channels=C, bias=False)
    r = analyze(Repeat(blk, n), input_size=x, in_channels=C)
    assert sp.simplify(r.macs - 3 * C**2 * x**2 * (1 - sp.Rational(1, 4)**n)) == 0
    for m in range(1, 6):
        exact = _unroll(blk, m, 2**m * 7, 5)  # 1-D here: compare the 1-D closed form
        r1 = analyze(Repeat(blk, n), input_size=x, ndim=1, in_channels=C)
        assert r1.macs.subs({n: m, x: 2**m * 7, C: 5}) == exact.subs({C: 5}).macs
    # the unpadded U-Net encoder level: exact when x + 4 is divisible by 2^n
    level = Sequential(Conv(3, out_channels=C), ReLU(), Conv(3, out_channels=C), ReLU(), MaxPool(2))
    r = analyze(Repeat(level, n), input_size=x, in_channels=C)
    assert r.out_size == sp.floor((x + 4 - 4 * 2**n) / 2**n)
    assert [r.out_size.subs({n: m, x: 572}) for m in range(1, 5)] == [284, 140, 68, 32]
    for m in range(1, 5):
        exact = analyze(Sequential(*[level] * m), input_size=572, in_channels=64)
        assert r.macs.subs({n: m, x: 572, C: 64}) == exact.subs({C: 64}).macs


def test_evaluate_arrays_of_n():
    """Result.evaluate with arrays for n runs exactly (masked unrolling) and matches subs."""
    blk = Sequential(Conv(k, stride=2, padding=1, out_channels=C), ReLU())
    r = analyze(Repeat(blk, n), input_size=x, in_channels=C)
    ns, ks = np.array([1, 2, 3, 4, 5, 1]), np.array([3, 3, 4, 2, 3, 5])
    e = r.evaluate({"n": ns, "k": ks, "x": 100, "C": 3})
    for j, (m, kk) in enumerate(zip(ns, ks)):
        sub = r.subs({n: int(m), k: int(kk), x: 100, C: 3})
        assert (e.rf[j], e.jump[j], e.start[j], e.out_size[j], e.params[j], e.macs[j]) == \
               (sub.rf, sub.jump, sub.start, sub.out_size, sub.params, sub.macs)


def test_wavenet_dilation_stack():
    """WaveNet (van den Oord et al. 2016, section 2.1): kernel 2, dilations 1, 2, ..., 512 give a
    receptive field of 1024 per stack."""
    stack = Repeat(lambda j: Conv(2, dilation=2**j), 10)
    assert analyze(stack).rf == 1024
    assert analyze(Repeat(lambda j: Conv(2, dilation=2**j), n)).rf == 2**n
    S = symbols("S")
    r = analyze(Repeat(stack, S))
    assert sp.expand(r.rf - (1023 * S + 1)) == 0
    assert analyze(Repeat(stack, 3)).rf == r.rf.subs(S, 3) == 3070
    # causal padding keeps the size; start is -(2^n - 1)
    causal = Repeat(lambda j: Conv(2, dilation=2**j, padding=((2**j, 0),), in_channels=C, out_channels=C), n)
    r = analyze(causal, input_size=x, in_channels=C)
    assert r.out_size == x and sp.simplify(r.start + 2**n - 1) == 0
    assert sp.expand(r.params - n * (2 * C**2 + C)) == 0
    assert sp.expand(r.macs - n * 2 * C**2 * x) == 0
    _ok(Repeat(lambda j: Conv(2, dilation=2**j, padding=((2**j, 0),)), 5), 40, ndim=1)


def test_index_symbol_and_channel_doubling():
    """Channels doubling and sizes halving per stage: closed forms by summation."""
    stage = Repeat(lambda j: Sequential(Conv(3, padding=1, in_channels=C * 2**j, out_channels=C * 2**(j + 1),
                                             bias=False), MaxPool(2)), n)
    r = analyze(stage, input_size=x, in_channels=C)
    assert r.out_channels == 2**n * C
    assert sp.simplify(r.params - 6 * C**2 * (4**n - 1)) == 0
    assert sp.simplify(r.macs - 18 * C**2 * x**2 * n) == 0  # (2^t C)(2^(t+1) C) 9 (x/2^t)^2 per stage
    assert r.out_size == sp.floor(x / 2**n)
    assert r.rf == 3 * 2**n - 2
    for m in range(1, 6):
        u = analyze(stage.subs({n: m, C: 4}), input_size=2**m * 3, in_channels=4)
        assert r.macs.subs({n: m, x: 2**m * 3, C: 4}) == u.macs == 18 * 16 * (2**m * 3)**2 * m
    # explicit index symbol, a repr that round-trips through subs
    rep = Repeat(Conv(3, dilation=i + 1), n, index=i)
    assert analyze(rep).rf == n**2 + n + 1
    assert rep.free_symbols == {n}
    assert analyze(rep.subs({n: 4})).rf == 21
    # strides 1, 2, 3, ...: jump n!, no closed-form sum for the field (kept as a Sum)
    r = analyze(Repeat(Conv(3, stride=i + 1), n, index=i), input_size=x, ndim=1)
    assert r.jump == sp.factorial(n) and r.rf.has(sp.Sum)
    for m in range(1, 5):
        u = analyze(Repeat(Conv(3, stride=i + 1), m, index=i), input_size=200, ndim=1)
        assert (r.rf.subs(n, m).doit(), r.out_size.subs({n: m, x: 200}).doit()) == (u.rf, u.out_size)
    with pytest.raises(LayerError, match="n must not contain the index symbol i"):
        Repeat(Conv(3), i + 1, index=i)


def test_repeat_of_residual_blocks():
    """A ResNet stage with a symbolic number of basic blocks: rf 4n + 1, aligned."""
    basic = Residual(Sequential(Conv(3, padding=1, out_channels=C, bias=False), ReLU(),
                                Conv(3, padding=1, out_channels=C, bias=False)))
    r = analyze(Repeat(basic, n), input_size=x, in_channels=C)
    assert (r.rf, r.out_size, r.aligned) == (4 * n + 1, x, True)
    assert sp.expand(r.params - 18 * C**2 * n) == 0 and sp.expand(r.macs - 18 * C**2 * x**2 * n) == 0
    skew = Residual(Conv(3, padding=((0, 2),)))
    r = analyze(Repeat(skew, n), input_size=x, ndim=1)
    assert r.aligned is False and r.rf == 2 * n + 1
    e = r.evaluate({"n": np.array([1, 2, 3]), "x": 9})
    assert e.aligned is False and e.rf.tolist() == [3, 5, 7] and e.start.tolist() == [0, 0, 0]
    assert np.all(e.out_size == 9)


def test_repeat_of_size_dependent_block_needs_numbers():
    """TensorFlow SAME padding depends on each repetition's input size: symbolic n is refused,
    an integer n unrolls exactly."""
    same = Conv(3, stride=2, padding="tf_same")
    with pytest.raises(LayerError, match="depends on its input size"):
        analyze(Repeat(same, n), input_size=x)
    r = analyze(Repeat(same, 3), input_size=225)
    assert (r.start, r.out_size) == (analyze(Sequential(same, same, same), input_size=225).start, 29)


def test_repeat_errors():
    with pytest.raises(LayerError, match="can only be repeated an integer number of times"):
        analyze(Repeat(Upsample(2), n))
    with pytest.raises(LayerError, match="block must be an rfsym layer or a function"):
        Repeat(3, n)
    assert analyze(Repeat(Upsample(2), 3), input_size=4).out_size == 32


# =========================================================================== transposed / upsample
def test_conv_transpose_every_phase():
    """ConvTranspose(3, stride 2): even outputs read two inputs, odd ones one (hand-computed from
    i·s - p + t·d = o)."""
    r = analyze(ConvTranspose(3, stride=2), input_size=5, ndim=1)
    assert (r.rf, r.rf_min, r.jump, r.period, r.start, r.out_size) == (2, 1, sp.Rational(1, 2), 2, -1, 11)
    # stride divides kernel: every phase reads k/s inputs, also for a symbolic kernel
    m = symbols("m")
    r = analyze(ConvTranspose(2 * m, stride=2), ndim=1)
    assert (r.rf, r.rf_min, r.jump) == (m, m, sp.Rational(1, 2))
    assert r.start == 1 - m
    assert r.subs({m: 3}).rf == 3
    # stride 1 is an ordinary convolution read backwards
    r = analyze(ConvTranspose(k, padding=1), input_size=x, ndim=1)
    assert (r.rf, r.jump, r.start, r.out_size) == (k, 1, 2 - k, x + k - 3)


@settings(max_examples=300)
@given(st.integers(1, 6), st.integers(1, 4), st.integers(0, 3), st.integers(1, 3), st.integers(0, 3),
       st.integers(2, 9), st.sampled_from([None, Conv(3), Conv(2, stride=2), ConvTranspose(2, stride=2),
                                           Conv(2, dilation=2), MaxPool(2, stride=1, dilation=3),
                                           Sequential(Conv(1), Conv(3, dilation=2))]))
def test_conv_transpose_matches_enumeration(kk, ss, pp, dd, op, size, after):
    """Random transposed convolutions (and a layer after, dilated ones reading only some of the
    interleaved phases when dilation > stride): every phase equals the enumerator."""
    import math
    assume(op < max(ss, dd) and math.gcd(ss, dd) == 1 and kk >= ss)
    assume((size - 1) * ss - 2 * pp + dd * (kk - 1) + 1 + op >= 6)
    layers = [ConvTranspose(kk, stride=ss, padding=pp, output_padding=op, dilation=dd)]
    if after is not None:
        layers.append(after)
    _ok(Sequential(*layers), size, ndim=1)


@pytest.mark.parametrize("f", [1, 2, 3, 4])
@pytest.mark.parametrize("mode,corners", [("nearest", False), ("bilinear", False), ("bilinear", True)])
def test_upsample_matches_enumeration(f, mode, corners):
    up = Upsample(f, mode=mode, align_corners=corners)
    for size in (1, 2, 5, 8):
        if size * f >= 3:
            _ok(Sequential(up, Conv(3)), (size, 9))
        _ok(Sequential(Conv(3, padding=1), up, MaxPool(2)), (size + 2, 6))


def test_upsample_values():
    r = analyze(Upsample(2), input_size=4, ndim=1)
    assert (r.rf, r.rf_min, r.jump, r.period, r.start, r.out_size) == (1, 1, sp.Rational(1, 2), 2, 0, 8)
    r = analyze(Upsample(3, mode="bilinear"), ndim=1)
    # x = (o + 1/2)/3 - 1/2: o = 3m + 1 lands on input m exactly (one input), the others read two
    # (in exact arithmetic; at a numeric size rfsym follows PyTorch's float32, see test_upsample.py)
    assert (r.rf, r.rf_min, r.period, r.start) == (2, 1, 3, -1)
    r = analyze(Upsample(2, mode="bilinear", align_corners=True), input_size=3, ndim=1)
    # x = o·2/5: 0, .4, .8, 1.2, 1.6, 2 -> rf 1, 2, 2, 2, 2, 1
    assert (r.rf, r.rf_min, r.start, r.out_size) == (2, 1, 0, 6)
    with pytest.raises(LayerError, match="align_corners=True depends on the input size"):
        analyze(Upsample(2, mode="bilinear", align_corners=True))
    with pytest.raises(LayerError, match="scale_factor must be a positive"):
        Upsample(s)
    with pytest.raises(LayerError, match="mode must be 'nearest'"):
        Upsample(2, mode="bicubic")


def test_conv_transpose_errors():
    with pytest.raises(LayerError, match=r"layer 0 \(ConvTranspose\): outputs o ≡ 1 \(mod 2\) read no input"):
        analyze(ConvTranspose(1, stride=2))
    with pytest.raises(LayerError, match="stride 2 and dilation 2 share a factor"):
        analyze(ConvTranspose(3, stride=2, dilation=2))
    with pytest.raises(LayerError, match="output_padding must be smaller than stride or dilation"):
        ConvTranspose(3, stride=2, output_padding=2)
    with pytest.raises(LayerError, match="stride must be a number here"):
        analyze(ConvTranspose(4, stride=s))
    with pytest.raises(LayerError, match="ConvTranspose takes integer padding"):
        ConvTranspose(3, padding="same")


def test_periodic_branches_merge():
    """Branches with period 2 (upsampling, transposed convolution) merge phase by phase."""
    net = Sequential(Conv(3), Concat(Upsample(2), ConvTranspose(4, stride=2, padding=1),
                                     Sequential(Upsample(2, mode="bilinear"), Conv(3, padding=1))), Conv(3))
    r = analyze(net, input_size=9, ndim=1)
    assert (r.jump, r.out_size) == (sp.Rational(1, 2), 12)
    _ok(net, 9, ndim=1)
    # a transposed convolution whose dilation exceeds its stride interleaves its phases
    _ok(Sequential(ConvTranspose(2, stride=2, dilation=3), Conv(3), MaxPool(2)), 6, ndim=1)


def test_conv_transpose_counts():
    # weights c_in·(c_out/groups)·Πk + c_out; MACs per input position (fvcore's convention)
    r = analyze(ConvTranspose(2, stride=2, in_channels=8, out_channels=4), input_size=5)
    assert r.params == 8 * 4 * 4 + 4 and r.macs == 25 * 8 * 4 * 4
    assert r.out_size == 10 and r.out_channels == 4


# =========================================================================== U-Net
def _double(c_in, c_out):
    return Sequential(Conv(3, in_channels=c_in, out_channels=c_out), ReLU(), Conv(3, out_channels=c_out), ReLU())


def _unet_level(level, c_in, crops, base=64, depth=4):
    c = base * 2 ** (level - 1)
    if level > depth:
        return _double(c_in, c)
    deeper = Sequential(MaxPool(2), _unet_level(level + 1, c, crops, base, depth),
                        ConvTranspose(2, stride=2, out_channels=c))
    return Sequential(_double(c_in, c), Concat(Crop(crops[level]), deeper), _double(2 * c, c))


def unet():
    """The original unpadded U-Net (Ronneberger, Fischer, Brox 2015, fig. 1): crops 88, 40, 16, 4."""
    return Sequential(_unet_level(1, 1, {1: 88, 2: 40, 3: 16, 4: 4}), Conv(1, out_channels=2))


def test_unet_end_to_end():
    """572x572 in, 388x388 out (Ronneberger et al. 2015, fig. 1); every layer agrees with enumeration."""
    net = unet()
    r = analyze(net, input_size=572, in_channels=1)
    assert r.out_size == 388 and r.out_channels == 2
    # intermediate sizes of fig. 1: 568 after the first double conv, 32x32 at the bottom -> 28
    sizes = {layer.name: layer.out_size for layer in r.layers}
    assert 568 in sizes.values() and 28 in sizes.values() and 392 in sizes.values()
    assert r.period == 16 and r.jump == 1  # four stride-2 up-convolutions: 16 output phases
    assert r.aligned is False  # the deep path is centred half a pixel off the skip (even kernels)
    _ok(net, 572, in_channels=1)
    # a symbolic input size: the crop paths' size (the deep paths agree where designed, e.g. 572)
    sym = analyze(net, input_size=x, in_channels=1)
    assert sym.out_size == x - 184 and sym.out_size.subs(x, 572) == 388
    # parameters by hand: ten double 3x3 convolutions, four 2x2 up-convolutions, the 1x1 head
    def double(a, c):
        return 9 * a * c + c + 9 * c * c + c
    by_hand = (sum(double(a, c) for a, c in ((1, 64), (64, 128), (128, 256), (256, 512), (512, 1024)))
               + sum(double(2 * c, c) + 4 * 2 * c * c + c for c in (512, 256, 128, 64)) + 64 * 2 + 2)
    assert sym.params == r.params == by_hand == 31030658


def test_crop():
    r = analyze(Crop(((1, 2),)), input_size=10, ndim=1)
    assert (r.rf, r.start, r.out_size) == (1, 1, 7)
    with pytest.raises(SizeError):
        analyze(Crop(5), input_size=10)
    _ok(Sequential(Conv(3), Crop(((1, 2), 0)), Conv(2)), (10, 10))


def test_symbolic_stride_in_symbolic_repeat_with_numeric_size_finishes():
    # sympy's summation could stall on floor-valued MACs sums; those now stay an unevaluated Sum
    s, n, C = symbols("s n C")
    r = analyze(Repeat(Conv(3, stride=s, padding=1, out_channels=C), n), input_size=64, in_channels=C)
    plain = analyze(Sequential(*[Conv(3, stride=2, padding=1, out_channels=8)] * 3), input_size=64,
                    in_channels=8)
    assert r.subs({s: 2, n: 3, C: 8}).macs == plain.macs
    assert sp.sympify(r.macs.subs({s: 2, C: 8, n: 3})).doit() == plain.macs


def test_undecidable_rounding_keeps_both_mac_assumptions():
    # with a symbolic kernel, whether padding 1 rounds up (0 <= c < S) is undecidable: the MACs of a
    # symbolic Repeat keep both divisibility assumptions as a Piecewise instead of guessing one
    k, n, C = symbols("k n C")
    r = analyze(Repeat(Conv(k, stride=2, padding=1, out_channels=C), n), input_size=64, in_channels=C)
    assert isinstance(r.macs, sp.Piecewise)
    for kk in (3, 4):  # c = 4 - k in [0, 2): 64 is divisible by 2^t, the assumption holds: exact
        plain = analyze(Sequential(*[Conv(kk, stride=2, padding=1, out_channels=8)] * 3), input_size=64,
                        in_channels=8)
        assert sp.sympify(r.macs.subs({k: kk, C: 8, n: 3})).doit() == plain.macs


def test_shared_parameters_counted_once():
    """``shared={node: owner}``: the node's parameters are the owner's, counted there; every
    other quantity is the node's own (the same layer applied twice)."""
    conv = Conv(3, padding=1, in_channels=4, out_channels=4)
    nodes = (("a", conv, "input"), ("act", ReLU(), "a"), ("b", conv, "act"))
    plain, tied = Graph(*nodes), Graph(*nodes, shared={"b": "a"})
    n = symbols("n")
    for size in (16, n):
        p, t = analyze(plain, input_size=size), analyze(tied, input_size=size)
        own = 4 * 4 * 9 + 4
        assert p.params == 2 * own and t.params == own
        assert t.layer("b").params == 0 and t.layer("a").params == own
        assert t.macs == p.macs and t.rf == p.rf == 5
    ev = analyze(tied, input_size=n).evaluate({"n": np.array([8, 16])})
    assert np.all(np.asarray(ev.params) == own)
    assert "shared={'b': 'a'}" in repr(tied) and tied != plain
    # a shared pair survives substitution and nesting under a name
    k = symbols("k")
    sym = Graph(("a", Conv(k, in_channels=4, out_channels=4), "input"),
                ("b", Conv(k, in_channels=4, out_channels=4), "a"), shared=[("b", "a")], name="g")
    r = analyze(Sequential(sym.subs({k: 3}), Conv(1, in_channels=4, out_channels=2)), input_size=8)
    assert r.params == own + 4 * 2 + 2 and r.layer("g.b").params == 0


@pytest.mark.parametrize("shared, message", [
    ({"b": "b"}, "itself"),
    ({"b": "x"}, "'x' is not a layer node"),
    ({"sum": "a"}, "'sum' is not a layer node"),
    ({"act": "a"}, "cannot use the parameters"),
    ([("b",)], "must map node names"),
    (5, "must map node names"),
])
def test_shared_parameters_bad_input(shared, message):
    conv = Conv(3, padding=1, in_channels=4, out_channels=4)
    nodes = (("a", conv, "input"), ("act", ReLU(), "a"), ("b", conv, "act"), ("sum", "add", ("a", "b")))
    with pytest.raises(GraphError, match=message):
        Graph(*nodes, shared=shared)
