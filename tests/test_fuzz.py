"""Hypothesis fuzz of the public API with random Python values: nested containers, strings
(injection payloads among them), floats (NaN, infinities), huge ints, complex numbers, fractions,
decimals and sympy objects with odd assumptions. Every call either succeeds or raises an
:class:`rfsym.RfsymError`; nothing else escapes, and no payload ever runs.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from decimal import Decimal
from fractions import Fraction

import numpy as np
import pytest
import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st

import rfsym as R
import rfsym.format
import rfsym.spec
from rfsym import (
    AdaptiveAvgPool,
    BatchNorm,
    Conv,
    ConvTranspose,
    Crop,
    Linear,
    MaxPool,
    Repeat,
    Upsample,
    analyze,
    crossover,
    smallest,
)
from rfsym.expr import parse_value
from rfsym.symbols import as_expr

MARK = os.path.join(tempfile.gettempdir(), f"rfsym-fuzz-{os.getpid()}")
PAYLOADS = [f"__import__('os').system('touch {MARK}')", f"__import__('pathlib').Path('{MARK}').touch()",
            f"exec(\"open('{MARK}', 'w')\")", "lambda: 0", "k.__class__", "().__class__.__bases__[0]"]
k, s, n = R.symbols("k s n")
SYMPY = [k, s + 1, 2**k, sp.floor(k / 2), sp.Symbol("k"), sp.Symbol("q", integer=False), sp.Symbol("z", negative=True),
         sp.Symbol("w", integer=True), sp.Rational(5, 2), sp.Rational(6, 2), sp.Float(2.0), sp.Float(2.5), sp.nan,
         sp.oo, -sp.oo, sp.zoo, sp.I, 3 + sp.I, sp.pi, sp.Integer(2) ** 400, sp.Matrix([1]), sp.true,
         sp.Eq(k, 1)]

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-5, 70), st.integers(-(2**300), 2**300),
    st.floats(allow_nan=True, allow_infinity=True), st.complex_numbers(allow_nan=True),
    st.fractions(max_denominator=7), st.decimals(allow_nan=True), st.text(max_size=12),
    st.sampled_from(PAYLOADS + ["3", "k", "2*k+1", "(3, 5)", "same", "1e3", "2^64", "((k", "-" * 50 + "3"]),
    st.sampled_from(SYMPY), st.just(np.int64(3)), st.just(np.float64(2.5)), st.just(np.array([3, 5])),
    st.just(object()), st.just(b"3"), st.just(Decimal("3")), st.just(Fraction(9, 3)),
)
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=3), st.tuples(inner, inner),
                                                       st.dictionaries(st.text(max_size=3), inner, max_size=2)),
                      max_leaves=6)

_R = analyze(Conv(k, stride=s), input_size=n)
ENTRY_POINTS = {
    "Conv.kernel_size": lambda v: Conv(v),
    "Conv.stride": lambda v: Conv(3, stride=v),
    "Conv.padding": lambda v: Conv(3, padding=v),
    "Conv.dilation": lambda v: Conv(3, dilation=v),
    "Conv.groups": lambda v: Conv(3, groups=v),
    "Conv.in_channels": lambda v: Conv(3, in_channels=v),
    "MaxPool.kernel_size": lambda v: MaxPool(v),
    "BatchNorm": lambda v: BatchNorm(v),
    "Linear": lambda v: Linear(v, 3),
    "Repeat.n": lambda v: Repeat(Conv(3), v),
    "Upsample": lambda v: Upsample(v),
    "Crop": lambda v: Crop(v),
    "ConvTranspose.output_padding": lambda v: ConvTranspose(3, stride=2, output_padding=v),
    "AdaptiveAvgPool": lambda v: AdaptiveAvgPool(v),
    "analyze.input_size": lambda v: analyze(Conv(3, padding=1), input_size=v),
    "analyze.in_channels": lambda v: analyze(Conv(3, out_channels=4), in_channels=v),
    "analyze.ndim": lambda v: analyze(Conv(3), ndim=v),
    "Layer.subs": lambda v: Conv(k).subs({k: v}),
    "Result.subs": lambda v: _R.subs({k: v}),
    "Result.evaluate": lambda v: _R.evaluate({k: v, s: 1, n: 16}),
    "smallest.item": lambda v: smallest(v, 10),
    "smallest.target": lambda v: smallest(2 * n + 1, v),
    "crossover": lambda v: crossover(v, 2 * n, upper=64),
    "as_expr": lambda v: as_expr(v, "x", minimum=None),
    "latex": lambda v: R.format.latex(v),
    "format.value": lambda v: R.format.value(v),
    "Result.span": lambda v: _R8.span(v),
    "Result.axes": lambda v: _R8.axes(v),
    "Result.layer": lambda v: _R8.layer(v),
    "analyze.features": lambda v: analyze(Conv(3), features=v),
    "verify.input_size": lambda v: R.verify(Conv(3), v),
    "dependency_mask.output": lambda v: R.dependency_mask(Conv(3), 8, v),
    "erf.radius": lambda v: R.erf(Conv(3)).radius(v),
    "parse_line": lambda v: R.spec.parse_line(v),
}
_R8 = analyze(Conv(3), 8)


def _call(fn, value):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            out = fn(value)
            if isinstance(out, R.Layer):  # a layer that was accepted must also analyse cleanly
                analyze(out, input_size=64)
        except R.RfsymError:
            pass
    assert not os.path.exists(MARK), "a payload was evaluated"


@pytest.mark.parametrize("entry", sorted(ENTRY_POINTS))
@settings(max_examples=max(10, settings.default.max_examples // 20))
@given(value=values)
def test_random_values_raise_only_rfsym_errors(entry, value):
    _call(ENTRY_POINTS[entry], value)


@given(st.one_of(st.text(max_size=40), st.sampled_from(PAYLOADS)))
def test_parse_value_never_evaluates(text):
    try:
        parse_value(text)
    except R.RfsymError:
        pass
    assert not os.path.exists(MARK)


@settings(max_examples=30)
@given(st.integers(1, 2**70), st.integers(1, 40), st.sampled_from([1, 2, 3, 16]))
def test_evaluate_is_exact_and_agrees_with_subs(size, depth, stride):
    """Scalars, arrays and subs agree exactly, also where int64 would overflow."""
    r = analyze(R.Sequential(*[Conv(3, stride=s, padding=1, out_channels=8)] * depth), input_size=n, in_channels=8)
    exact = r.subs({s: stride, n: size})
    one = r.evaluate({s: stride, n: size})
    many = r.evaluate({s: np.array([stride, 1]), n: np.array([size, 5], dtype=object)})
    for q in ("rf", "jump", "start", "out_size", "params", "macs"):
        want = getattr(exact, q)
        assert getattr(one, q) == want, q
        assert int(np.broadcast_to(np.asarray(getattr(many, q)), (2,))[0]) == want, q


_layer = st.one_of(
    st.builds(lambda k, s_, d: ConvTranspose(k, stride=s_, dilation=d), st.integers(1, 4), st.integers(1, 3),
              st.integers(1, 3)),
    st.builds(lambda k, s_, d, p: Conv(k, stride=s_, dilation=d, padding=p), st.integers(1, 4), st.integers(1, 3),
              st.integers(1, 3), st.integers(0, 2)),
    st.builds(lambda s_: MaxPool(2, stride=s_), st.integers(1, 2)))


@settings(max_examples=60)
@given(st.lists(_layer, min_size=1, max_size=4))
def test_result_exact_flags_every_bound(layers):
    """Wherever the engine's values differ from enumeration (a dilated, strided transposed
    convolution upstream), ``Result.exact`` is False: no unflagged wrong number."""
    try:
        report = R.verify(R.Sequential(*layers), 40, ndim=1)
    except R.RfsymError:
        return
    if not report.ok:
        assert report.result.exact is False, report


_local = st.builds(lambda k, p: Conv(k, padding=p), st.integers(1, 3), st.integers(0, 1))


@settings(max_examples=60)
@given(st.lists(_local, min_size=1, max_size=2), st.sampled_from(["mul", "add"]), st.lists(_layer, max_size=2),
       st.integers(6, 12))
def test_result_exact_flags_global_merges(before, op, after, size):
    """A merge of a local path with a broadcast gate (global pooling) is taken as global; wherever
    that makes the engine's values differ from enumeration, ``Result.exact`` is False."""
    nodes = [(f"b{j}", layer, "input" if j == 0 else f"b{j - 1}") for j, layer in enumerate(before)]
    last = nodes[-1][0]
    nodes += [("g", R.GlobalAvgPool(), last), ("m", op, (last, "g"))]
    src = "m"
    for j, layer in enumerate(after):
        nodes.append((f"a{j}", layer, src))
        src = f"a{j}"
    try:
        report = R.verify(R.Graph(*nodes), size, ndim=1)
    except R.RfsymError:
        return
    if not report.ok:
        assert report.result.exact is False, report
