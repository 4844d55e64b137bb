"""The fast paths of issue 9 give exactly what the slow paths give.

* Numeric networks (no symbols, numeric input size) are derived on Python ints and Fractions
  (:class:`rfsym.ops.ExactOps`) instead of sympy numbers; every quantity of every layer must be
  the same sympy number as on the sympy path.
* ``Result.evaluate`` of a symbolic ``Repeat`` runs the repeated block on the distinct
  configurations only (:class:`rfsym.ops.Rows`) and spreads the results back; it must agree with
  evaluating every configuration on its own.
"""

import numpy as np
import pytest
import sympy as sp
from hypothesis import given, settings
from strategies import architectures, graph_architectures

import rfsym
from rfsym import BatchNorm, Conv, ReLU, Repeat, Sequential, analyze, zoo
from rfsym.engine import derive
from rfsym.ops import ExactOps, Rows, SymOps

_QUANTITIES = ("rf", "rf_min", "jump", "start", "center", "period", "out_size", "effective_padding",
               "params", "macs", "flops")


def _sympy_path(net, size, ndim=None, in_channels=None):
    """The reference: the same network derived with sympy numbers (no fast path)."""
    r = analyze(net, size, ndim=ndim, in_channels=in_channels)  # for the normalised arguments
    return derive(r.network, r.input_size, ndim=r.ndim, in_channels=r.in_channels, ops=SymOps)


def _same(a, b, what, strict=True):
    """Equal values of the same kind (sympy numbers, tuples of them, None, bools)."""
    if isinstance(a, tuple) or isinstance(b, tuple):
        assert isinstance(a, tuple) and isinstance(b, tuple) and len(a) == len(b), (what, a, b)
        for x, y in zip(a, b):
            _same(x, y, what, strict)
        return
    if strict:
        assert type(a) is type(b), (what, a, b, type(a), type(b))
    assert a == b, (what, a, b)


def _compare(fast, slow):
    assert fast._ops is ExactOps and slow._ops is SymOps
    assert len(fast.layers) == len(slow.layers)
    for q in _QUANTITIES:
        _same(getattr(fast, q), getattr(slow, q), ("output", q))
    _same(fast.out_channels, slow.out_channels, "output channels")
    _same(fast.aligned, slow.aligned, "output aligned")
    for lf, ls in zip(fast.layers, slow.layers):
        where = f"layer {lf.index} ({lf.type})"
        for q in _QUANTITIES + ("in_size",):
            _same(getattr(lf, q), getattr(ls, q), (where, q))
        for q in ("in_channels", "out_channels", "aligned", "branch_centers"):
            _same(getattr(lf, q), getattr(ls, q), (where, q))
        _same(lf.span(0), ls.span(0), (where, "span"), strict=False)  # sympy path: ints at times
        for q in ("rf", "jump", "start", "out_size"):
            _same(lf.input.axes(q), ls.input.axes(q), (where, "input", q))


@settings(max_examples=300)
@given(architectures())
def test_fast_path_equals_sympy_path_on_chains(arch):
    """Every quantity of every layer of a random numeric chain is the same sympy number on both paths."""
    fast = analyze(arch.net, arch.input_size, ndim=arch.ndim, in_channels=arch.in_channels)
    _compare(fast, _sympy_path(arch.net, arch.input_size, arch.ndim, arch.in_channels))


@settings(max_examples=150)
@given(graph_architectures())
def test_fast_path_equals_sympy_path_on_graphs(arch):
    """Residual, concatenation, transposed convolution, upsampling: same numbers on both paths."""
    fast = analyze(arch.net, arch.input_size)  # channels as the layers give them (unknown at times)
    _compare(fast, _sympy_path(arch.net, arch.input_size))


@pytest.mark.parametrize("name", ["resnet50", "inception_v3", "mobilenet_v2", "efficientnet_b0", "unet",
                                  "wavenet", "slim_resnet_v1_50"])
def test_zoo_takes_the_fast_path_and_agrees(name):
    e = zoo.entry(name)
    fast = e.analyze()
    _compare(fast, _sympy_path(e.build(), e.input_size, e.ndim, e.in_channels))


def test_every_zoo_entry_takes_the_fast_path():
    """No zoo entry falls back to sympy numbers (the fallback is silent, so this guards speed)."""
    for name in zoo.names():
        assert zoo.analyze(name)._ops is ExactOps, name


def test_symbols_keep_the_sympy_path():
    k = rfsym.symbols("k")
    assert analyze(Conv(k), 8)._ops is SymOps
    assert analyze(Conv(3), None)._ops is ExactOps  # no size, numeric layers: the fast path too
    assert analyze(Conv(3), rfsym.symbols("n"))._ops is SymOps


def test_errors_come_from_the_sympy_path():
    """A failing numeric network reports the sympy path's message (no 'for some of the given values')."""
    with pytest.raises(rfsym.errors.SizeError, match=r"got -1 on axis 0 \(this layer's input size is 3\)"):
        analyze(Sequential(Conv(5)), 3, ndim=1)


def test_latex_of_a_fast_result():
    net = Sequential(Conv(3, stride=2), Conv(3, padding=1))
    text = analyze(net, 8).to_latex()
    assert "&= 7" in text and text == _sympy_path(net, 8).to_latex()


# --------------------------------------------------------------------------- Rows
def test_rows_distinct_configurations():
    a = np.array([1, 2, 1, 2, 3])
    b = np.array([[5], [5]])  # broadcasts to (2, 5)
    rows = Rows.of([a, b, 7], min_size=1, max_fraction=1)
    assert rows.count == 3 and rows.shape == (2, 5)
    ua, ub, c = rows.columns
    assert c == 7 and sorted(zip(ua.tolist(), ub.tolist())) == [(1, 5), (2, 5), (3, 5)]
    spread = rows.expand(ua * 10)
    assert spread.shape == (2, 5) and (spread == np.broadcast_to(a * 10, (2, 5))).all()
    assert rows.expand(ub) == 5 and isinstance(rows.expand(ub), int)  # constant: one int
    assert rows.expand(None) is None and rows.expand(4) == 4


def test_rows_declines_when_it_would_not_pay():
    assert Rows.of([3, np.int64(4)]) is None  # nothing to compress
    assert Rows.of([np.arange(10_000)]) is None  # every configuration distinct
    big = np.arange(4000) * (1 << 40)  # a huge key range: np.unique instead of a table
    rows = Rows.of([np.concatenate([big, big])], min_size=1, max_fraction=1)
    assert rows.count == 4000 and (rows.expand(rows.columns[0]) == np.concatenate([big, big])).all()


def _repeat_net():
    k, s, d, n = rfsym.symbols("k s d n")
    return Sequential(
        Conv(k, stride=s, dilation=d, padding=d * (k - 1) // 2, in_channels=3, out_channels=8),
        Repeat(Sequential(Conv(k, dilation=d, padding="same", out_channels=8), BatchNorm(), ReLU()), n))


def test_repeat_evaluate_on_distinct_rows_equals_one_by_one():
    """Deduplicated evaluation == evaluating each configuration alone (no deduplication possible)."""
    r = analyze(_repeat_net(), input_size=40)
    rng = np.random.default_rng(3)
    size = 3000
    vals = {"k": rng.integers(1, 6, size), "s": rng.integers(1, 3, size), "d": rng.integers(1, 3, size),
            "n": rng.integers(0, 5, size)}
    e = r.evaluate(vals)
    for i in rng.choice(size, 25, replace=False):
        one = r.evaluate({name: int(v[i]) for name, v in vals.items()})
        for q in ("rf", "jump", "start", "out_size", "params", "macs"):
            assert int(np.broadcast_to(getattr(e, q), (size,))[i]) == int(getattr(one, q)), (q, i)
            exact = r.subs({name: int(v[i]) for name, v in vals.items()})
            assert int(getattr(one, q)) == int(getattr(exact, q)), (q, i)


def test_resnet_family_sweep_matches_subs():
    b = zoo.symbols("b1:5")
    r = zoo.analyze("resnet", blocks=b)
    rng = np.random.default_rng(4)
    size = 20_000
    vals = {f"b{i}": rng.integers(1, 12, size) for i in range(1, 5)}
    e = r.evaluate(vals)
    for i in rng.choice(size, 6, replace=False):
        exact = r.subs({name: int(v[i]) for name, v in vals.items()})
        for q in ("rf", "jump", "start", "out_size", "params", "macs"):
            assert int(np.broadcast_to(getattr(e, q), (size,))[i]) == int(getattr(exact, q)), (q, i)
        last = [lr for lr in exact.layers if lr.name.startswith("layer4")][-1]  # end of the stage
        assert int(np.broadcast_to(e.layer("layer4.rest").rf, (size,))[i]) == int(last.rf)
    assert sp.sympify(r.rf).free_symbols  # the symbolic result itself is untouched


def test_shrinking_repeat_on_rows_equals_without_rows_and_subs():
    """A repeated stride-2 block (sizes change every repetition: no fixed point) evaluated on
    6,000 configurations (deduplicated) equals the same evaluated on 1,000 at a time (too few to
    deduplicate) and, on a sample, exact re-derivation."""
    k, d, n = rfsym.symbols("k d n")
    net = Sequential(Conv(3, padding=1, in_channels=2, out_channels=4),
                     Repeat(Sequential(Conv(k, stride=2, dilation=d, padding=d * (k - 1) // 2, out_channels=4),
                                       ReLU()), n))
    r = analyze(net, 200)
    rng = np.random.default_rng(5)
    size = 6000
    vals = {"k": rng.integers(1, 6, size), "d": rng.integers(1, 3, size), "n": rng.integers(0, 6, size)}
    quantities = ("rf", "jump", "start", "center", "out_size", "params", "macs")
    big = r.evaluate(vals)
    for lo in range(0, size, 1000):
        part = r.evaluate({name: v[lo:lo + 1000] for name, v in vals.items()})
        for q in quantities:
            want = np.broadcast_to(getattr(part, q), (1000,))
            assert np.array_equal(np.broadcast_to(getattr(big, q), (size,))[lo:lo + 1000], want), q
    for i in rng.choice(size, 8, replace=False):
        exact = r.subs({name: int(v[i]) for name, v in vals.items()})
        for q in quantities:
            assert float(np.broadcast_to(getattr(big, q), (size,))[i]) == float(getattr(exact, q)), (q, i)
