"""The compiled evaluate (rfsym.compiled): equal to Result.subs configuration by configuration,
never wrapping around, raising what the engine raises on invalid values."""

from __future__ import annotations

import gc
import pickle
import sys
import threading
import tracemalloc
from fractions import Fraction

import numpy as np
import pytest
import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st

import rfsym as R
from rfsym import zoo
from rfsym.checked import Checked
from rfsym.compiled import BUFFERS, LIMIT, Buffers, Overflow, Program
from rfsym.errors import RfsymError
from rfsym.result import EvaluatedResult

FEW = max(15, settings.default.max_examples // 10)
PER_AXIS = ("rf", "rf_min", "jump", "start", "center", "out_size")


def _exact(v):
    if isinstance(v, (float, np.floating)):
        return Fraction(float(v))
    if getattr(v, "is_Rational", False):
        return Fraction(int(v.p), int(v.q))
    return Fraction(v) if isinstance(v, Fraction) else Fraction(int(v))


def _at(value, i, size):
    return np.broadcast_to(np.asarray(value, dtype=object if isinstance(value, int) else None), (size,))[i]


def _agree(r, values, size, quantities=PER_AXIS, layers=True, checked=None):
    """evaluate(values) went the compiled way and equals subs at every configuration (the
    first ``checked`` ones)."""
    e = r.evaluate(values)
    assert isinstance(e, EvaluatedResult)
    unique = [lr.name for lr in r.layers]
    for i in range(size if checked is None else checked):
        exact = r.subs({s: int(_at(v, i, size)) for s, v in values.items()})
        views = [(e, exact)]
        if layers:
            views += [(e.layers[lr.index], exact.layer(lr.name)) for lr in r.layers if unique.count(lr.name) == 1]
        for got, want in views:
            for q in quantities:
                g, w = got.axes(q) if q in PER_AXIS else (getattr(got, q),), \
                    want.axes(q) if q in PER_AXIS else (getattr(want, q),)
                if w is None:
                    assert g is None
                    continue
                for a, b in zip(g, w):
                    assert _exact(_at(a, i, size)) == _exact(b), (q, i)
    return e


@st.composite
def chains(draw):
    """A chain of convolutions and pools whose kernels, strides, dilations and paddings are
    symbols or numbers, with value arrays for the symbols (valid ones: every size >= 1)."""
    layers, ranges = [], {}

    def param(prefix, lo, hi):
        if draw(st.booleans()):
            return draw(st.integers(lo, hi))
        s = R.symbols(f"{prefix}{len(layers)}", **({"nonnegative": True} if lo == 0 else {}))
        ranges[s] = (lo, hi)
        return s

    for _ in range(draw(st.integers(1, 5))):
        if draw(st.integers(0, 3)):
            layers.append(R.Conv(param("k", 1, 5), stride=param("s", 1, 3), dilation=param("d", 1, 2),
                                 padding=param("p", 0, 2)))
        else:
            layers.append(R.MaxPool(2, stride=param("s", 1, 2), ceil_mode=draw(st.booleans())))
    size = draw(st.integers(2, 6))
    seed = draw(st.integers(0, 2**16))
    rng = np.random.default_rng(seed)
    values = {s: rng.integers(lo, hi + 1, size) for s, (lo, hi) in ranges.items()}
    symbolic_size = draw(st.booleans())
    return R.Sequential(*layers), values, size, symbolic_size, rng


@settings(max_examples=FEW, deadline=None)
@given(chains())
def test_chains_equal_subs(case):
    """Random symbolic chains (numeric or symbolic input size: floors, Piecewise of ceil_mode)."""
    net, values, size, symbolic_size, rng = case
    n = R.symbols("n")
    if symbolic_size:
        values[n] = rng.integers(400, 600, size)
    r = R.analyze(net, input_size=n if symbolic_size else 500, ndim=1)
    if not r.free_symbols:
        return
    values = {s: v for s, v in values.items() if s.name in {f.name for f in r.free_symbols}}
    _agree(r, values, size)


@settings(max_examples=4, deadline=None)
@given(st.lists(st.integers(1, 12), min_size=4, max_size=4), st.integers(2, 5))
def test_resnet_family_every_layer(blocks, size):
    """ResNet with symbolic blocks per stage: every layer's rf, jump, start, out_size, and the
    network's params and macs."""
    r = zoo.analyze("resnet", blocks=zoo.symbols("b1:5"))
    rng = np.random.default_rng(sum(blocks))
    values = {R.symbols(f"b{i + 1}"): rng.integers(1, b + 1, size) for i, b in enumerate(blocks)}
    e = _agree(r, values, size, quantities=("rf", "jump", "start", "center", "out_size"), checked=2)
    for i in range(2):
        exact = r.subs({s: int(v[i]) for s, v in values.items()})
        assert int(_at(e.params, i, size)) == exact.params and int(_at(e.macs, i, size)) == exact.macs


def test_max_and_floor_closed_forms():
    """A concat whose field is a Max of its branches, on a symbolic size (floors)."""
    k, p, n, s = R.symbols("k p n s")
    g = R.Graph(("a", R.Conv(k, stride=s), "input"), ("b", R.Conv(3, padding=p, stride=s), "input"),
                ("m", "concat", ("a", "b")))
    r = R.analyze(g, input_size=n, ndim=1)
    assert r.rf.has(sp.Max) and r.layer("a").out_size.has(sp.floor)
    # equal branch sizes (the concat is valid) where k + 2p = 3
    values = {k: np.array([3, 1, 3, 1]), p: np.array([0, 1, 0, 1]), n: np.array([50, 61, 77, 90]),
              s: np.array([1, 2, 3, 1])}
    _agree(r, values, 4)


@settings(max_examples=FEW, deadline=None)
@given(chains(), st.integers(0, 2**32))
def test_any_values_raise_or_equal_subs(case, seed):
    """Values drawn with no regard for validity (negative, zero, too large for the input):
    evaluate raises exactly when subs refuses some configuration, and otherwise equals it."""
    net, _, size, symbolic_size, _ = case
    n = R.symbols("n")
    r = R.analyze(net, input_size=n if symbolic_size else 12, ndim=1)
    if not r.free_symbols:
        return
    rng = np.random.default_rng(seed)
    values = {s: rng.integers(-1, 6, size) for s in r.free_symbols}
    try:
        e, err = r.evaluate(values), None
    except RfsymError as x:
        e, err = None, x
    refused = []
    for i in range(size):
        try:
            exact = r.subs({s: int(v[i]) for s, v in values.items()})
        except RfsymError as x:
            refused.append(x)
            continue
        if err is None:
            for q in ("rf", "jump", "start", "center", "out_size"):
                assert _exact(_at(getattr(e, q), i, size)) == _exact(getattr(exact, q)), (q, i)
    assert (err is None) == (not refused), (err, refused[:1])


def test_invalid_values_raise_as_before():
    """Values the compiled path cannot accept send evaluate to the engine, which names the layer."""
    k, s, n = R.symbols("k s n")
    r = R.analyze(R.Sequential(R.Conv(3), R.Conv(k, stride=s, name="c")), input_size=n)
    with pytest.raises(R.LayerError, match="stride must be a positive integer"):
        r.evaluate({k: 3, s: np.array([1, 0]), n: 20})
    with pytest.raises(R.SizeError, match="output size must be at least 1"):
        r.evaluate({k: np.array([3, 9]), s: 1, n: 10})
    r2 = R.analyze(R.Sequential(R.Conv(3), R.Conv(k - 2)))
    with pytest.raises(R.LayerError, match="kernel"):
        r2.evaluate({k: np.array([3, 2])})


def test_conditions_inside_symbolic_repeats():
    """A repeated block's own conditions count: sizes it shrinks send evaluate to the engine
    (which raises for the repetition that empties the grid); a size-preserving block stays
    compiled and still checks its kernel."""
    n, k = R.symbols("n k")
    shrinking = R.analyze(R.Repeat(R.Conv(k), n), input_size=10, ndim=1)
    with pytest.raises(R.SizeError, match="output size must be at least 1"):
        shrinking.evaluate({n: np.array([2, 6]), k: 3})
    assert shrinking.evaluate({n: np.array([2, 4]), k: 3}).out_size.tolist() == [6, 2]
    same = R.analyze(R.Repeat(R.Conv(3, padding=1, in_channels=4, out_channels=4), n), input_size=k, ndim=1)
    e = same.evaluate({n: np.array([0, 5]), k: np.array([1, 9])})
    assert isinstance(e, EvaluatedResult) and e.rf.tolist() == [1, 11] and e.macs.tolist() == [0, 5 * 9 * 48]
    with pytest.raises(R.LayerError, match="must be a nonnegative integer"):
        same.evaluate({n: np.array([-1, 5]), k: 3})


def test_overflow_falls_back_exactly():
    """Values near and beyond 2**63: the interval pre-check sends them to the exact path."""
    s = R.symbols("s")
    r = R.analyze(R.Sequential(*[R.Conv(3, stride=s)] * 16), ndim=1)
    big = r.evaluate({s: np.array([16, 2])})
    assert int(big.rf[0]) == r.subs({s: 16}).rf == 2_459_565_876_494_606_883
    beyond = r.evaluate({s: np.array([20, 2])}).rf
    assert beyond.dtype == object and beyond[0] == r.subs({s: 20}).rf > 2**63
    small = r.evaluate({s: np.array([2, 3])})
    assert isinstance(small, EvaluatedResult) and isinstance(small.rf, Checked)
    assert small.rf.tolist() == [r.subs({s: 2}).rf, r.subs({s: 3}).rf]


def test_program_bounds_refuse_overflow():
    x = sp.Symbol("x", integer=True)
    p = Program()
    node, den = p.compile(x**3 + 1)
    lo, hi = p.bounds([node], {"x": (-5, 2**20)}, {})[node]
    assert den == 1 and lo <= -124 and hi == 2**60 + 1 and -lo <= LIMIT  # an enclosure of the values
    with pytest.raises(Overflow):
        p.bounds([node], {"x": (0, 2**21)}, {})
    half, den = p.compile(sp.floor(x / 2) + sp.Rational(1, 2) * x)
    assert den == 2 and p.run([half], {"x": np.array([3, -3])})[0].tolist() == [5, -7]


def test_memory_grows_with_quantities_not_layers():
    """A 400-layer network at 10**5 configurations: the output quantities need a few arrays,
    not one per layer."""
    k, d, x = R.symbols("k d x")
    r = R.analyze(R.Sequential(*[R.Conv(k, dilation=d, padding="same", in_channels=4, out_channels=4)] * 400),
                  input_size=x)
    rng = np.random.default_rng(1)
    values = {k: rng.integers(1, 4, 10**5) * 2 + 1, d: rng.integers(1, 4, 10**5), x: rng.integers(64, 99, 10**5)}
    assert r.evaluate(values).rf is not None  # compiles once
    BUFFERS.clear()  # every array from here on is allocated, and traced
    tracemalloc.start()
    e = r.evaluate(values)
    got = [e.rf, e.out_size, e.macs, e.params]
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 20 * 8 * 10**5  # 20 int64 arrays; one per layer would be 400
    assert int(got[0][7]) == r.subs({s: int(v[7]) for s, v in values.items()}).rf


def test_scalars_and_constants():
    """Scalars give Python ints (exact, the engine path); constant quantities stay numbers."""
    k, s = R.symbols("k s")
    r = R.analyze(R.Sequential(R.Conv(k, stride=2), R.Conv(3)), ndim=1)
    assert r.evaluate({k: 5}).rf == 9 and isinstance(r.evaluate({k: 5}).rf, int)
    e = r.evaluate({k: np.array([3, 5])})
    assert e.jump == 2 and e.rf.tolist() == [7, 9] and e.center.tolist() == [3, 4]
    with pytest.raises(RfsymError, match="unknown per-axis quantity"):
        e.axes("nope")


def test_resnet_layers_share_equal_fields_in_any_order():
    """Every layer's rf of the ResNet family: layers whose closed forms agree get one array
    object (also the intermediate a difference ``poly + c`` keeps for the next layer), in
    layer order or reversed, and each equals ``subs``; the arrays alive are the distinct fields
    and at most one kept intermediate, not one per layer."""
    r = zoo.analyze("resnet", blocks=zoo.symbols("b1:5"))
    size = 50_000  # arrays of 400 kB: the layers' own objects are small beside them
    rng = np.random.default_rng(7)
    values = {f"b{i}": rng.integers(1, 9, size) for i in range(1, 5)}
    exact = r.subs({name: int(v[3]) for name, v in values.items()})
    names = [lr.name for lr in r.layers]
    forms = [sp.sympify(lr.rf) for lr in r.layers]
    distinct = {f for f in forms if f.free_symbols}
    for order in (list(range(len(r.layers))), list(range(len(r.layers)))[::-1]):
        assert r.evaluate(values).rf is not None  # compiled before tracemalloc starts
        BUFFERS.clear()  # every array from here on is allocated, and traced
        tracemalloc.start()
        e = r.evaluate(values)
        rfs = {i: e.layers[i].rf for i in order}
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert peak < (len(distinct) + 3) * 8 * size, (peak, len(distinct))
        for i, lr in enumerate(r.layers):
            if names.count(lr.name) == 1:
                assert int(_at(rfs[i], 3, size)) == exact.layer(lr.name).rf, (order[0], lr.name)
            same = [j for j in range(len(forms)) if forms[j] == forms[i] and forms[i].free_symbols]
            assert all(rfs[j] is rfs[i] for j in same), lr.name


def test_buffers_hand_out_only_unheld_arrays():
    """A pooled array comes back only once nothing refers to it (a view of a view counts);
    beyond the limit arrays are allocated unpooled."""
    def address(x):
        return x.__array_interface__["data"][0]

    pool = Buffers(limit=80)
    a = pool.empty((5,))
    first = address(a)
    view = a[1:][::2]
    del a
    b = pool.empty((5,))
    assert not np.shares_memory(b, view) and pool.nbytes == 80
    c = pool.empty((5,))  # over the limit: a plain array
    assert pool.nbytes == 80 and not np.shares_memory(c, view) and not np.shares_memory(c, b)
    del view
    d = pool.empty((5,))
    assert address(d) == first
    del d
    assert address(pool.empty((5,))) == first and pool.nbytes == 80
    del b
    e = pool.empty((6,))  # 48 bytes: the two free buffers of 40 are dropped to make room
    assert pool.nbytes == 48 and not np.shares_memory(e, c)
    f = pool.empty((5,))  # unpooled: no room beside e, which is held
    assert pool.nbytes == 48 and not np.shares_memory(f, e)
    pool.clear()
    assert pool.nbytes == 0 and pool.empty((6,)) is not e


def test_evaluations_reuse_arrays_nobody_holds():
    """Evaluations of one result reuse the arrays of dropped evaluations (no reference cycle
    keeps them: garbage collection is off) and never overwrite values still held."""
    k, s = R.symbols("k s")
    r = R.analyze(R.Sequential(*[R.Conv(k, stride=s)] * 3), ndim=1)
    rng = np.random.default_rng(3)
    draws = [{k: rng.integers(1, 8, 1000), s: rng.integers(1, 4, 1000)} for _ in range(6)]
    gc.disable()
    try:
        BUFFERS.clear()
        kept = r.evaluate(draws[0])
        held = [kept.rf, kept.layers[1].rf, kept.layers[0].start]
        copies = [np.array(h) for h in held]
        e = r.evaluate(draws[1])
        _ = e.rf, e.layers[1].rf
        del e, _
        pooled = BUFFERS.nbytes
        for values in draws[2:]:
            e = r.evaluate(values)
            got = [e.rf, e.layers[1].rf]
            i = int(rng.integers(1000))
            exact = r.subs({sym: int(v[i]) for sym, v in values.items()})
            assert int(got[0][i]) == exact.rf and int(got[1][i]) == exact.layers[1].rf
            del e, got
            assert BUFFERS.nbytes == pooled  # the dropped evaluation's arrays, reused: no new one
        assert all(np.array_equal(h, c) for h, c in zip(held, copies))
    finally:
        gc.enable()


def test_buffers_pickle_empty():
    """A pickled pool does not carry its arrays."""
    pool = Buffers()
    held = pool.empty((1000,))
    copy = pickle.loads(pickle.dumps(pool))
    assert pool.nbytes == 8000 and copy.nbytes == 0 and copy.limit == pool.limit
    assert not np.shares_memory(copy.empty((1000,)), held)


@pytest.mark.parametrize("pool", [None, Buffers()])
def test_program_divisions_and_powers_with_and_without_a_pool(pool):
    """ceiling and floor by a symbolic divisor with a number or an array on top, a symbolic
    exponent that is 0, and a mod, on numpy's arrays or pooled ones: the exact values."""
    x, n, s = (sp.Symbol(c, integer=True, positive=True) for c in "xns")
    p = Program()
    exprs = [sp.ceiling(7 / s), sp.floor(7 / s), sp.ceiling((x + 3) / s), x**n, sp.Mod(x, 3), x**3]
    nodes = [p.compile(e)[0] for e in exprs]
    xs, ss = np.array([1, 5, 12]), np.array([2, 3, 5])
    for nv in (0, 2):
        got = p.run(nodes, {"x": xs, "n": nv, "s": ss}, pool)
        for e, g in zip(exprs, got):
            want = [int(e.subs({x: int(a), n: nv, s: int(b)})) for a, b in zip(xs, ss)]
            assert np.broadcast_to(g, (3,)).tolist() == want, (e, nv)


def test_buffers_across_threads_never_share_an_array():
    """Threads taking and dropping arrays of one pool at once never hold the same buffer."""
    pool = Buffers()
    clash = []

    def work(tag):
        for _ in range(10000):
            a = pool.empty((8,))
            a[:] = tag
            b = pool.empty((8,))
            b[:] = -tag
            if not (a == tag).all():
                clash.append(tag)
            del a, b

    threads = [threading.Thread(target=work, args=(t,)) for t in range(1, 5)]
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible (without the pool's lock, clashes)
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(interval)
    assert not clash and pool.nbytes <= 8 * 8 * 8
