"""The numeric fast path of long chains gives exactly what the sympy path gives (issue 19).

Numeric networks are derived on Python ints (:class:`rfsym.ops.ExactOps`) and their chains are
composed in order, from checkpoints, instead of in balanced order as symbolic ones are
(:class:`rfsym.chain.Chain`). Here random long numeric chains — runs of identical layers (the
closed-form groups), mixes of convolutions, pools, dilations and strides, residual blocks
(branch points and merges on a chain's base), periodic layers (upsampling, transposed
convolution: the balanced fallback), with and without an input size — are derived both ways,
and every quantity of every layer must be the same sympy number, whatever order the layers are
read in (the in-order step from the previous layer, or a checkpoint). Chains with channel counts
whose layers are one object, copies or layers built again (the caches of equal configurations),
on sizes that change at every layer, compare the same way; a symbol after numeric layers sends
the analysis to the sympy path.
"""

from __future__ import annotations

import copy
import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import ELEMENTWISE, convs, pools

import rfsym as R
from rfsym import Conv, MaxPool, ReLU, Residual, Sequential, analyze
from rfsym.chain import Chain
from rfsym.engine import derive
from rfsym.ops import ExactOps, SymOps

_LAYER_QUANTITIES = ("rf", "rf_min", "jump", "start", "center", "period", "out_size", "effective_padding",
                     "in_size", "params", "macs", "flops", "in_channels", "out_channels", "aligned",
                     "branch_centers", "name", "type", "index")
_RESULT_QUANTITIES = ("rf", "rf_min", "jump", "start", "center", "period", "out_size", "params", "macs",
                      "out_channels", "aligned", "exact", "notes")


@st.composite
def palette_layer(draw, ndim):
    kind = draw(st.sampled_from(["conv"] * 4 + ["pool"] * 2 + ["elementwise", "batchnorm"]))
    if kind == "conv":
        return draw(convs(ndim))
    if kind == "pool":
        return draw(pools(ndim))
    if kind == "elementwise":
        return draw(st.sampled_from(ELEMENTWISE))()
    return R.BatchNorm(4)


@st.composite
def residual(draw):
    """A residual block of size-preserving layers (a branch point and a merge)."""
    body = [Conv(3, padding=1), Conv(3, padding=2, dilation=2), ReLU(), MaxPool(3, stride=1, padding=1)]
    items = []
    for _ in range(draw(st.integers(1, 3))):
        items += [draw(st.sampled_from(body))] * draw(st.sampled_from([1, 1, 2, 17]))
    return Residual(Sequential(*items))


@st.composite
def long_chains(draw, max_layers=300):
    """``(net, input_size, ndim)``: a numeric chain of up to ``max_layers`` layers drawn from a
    small palette (repeated objects, runs of 16 or more among them), sometimes with residual
    blocks and up to two periodic layers; the input size is None, large (every layer fits) or
    small (some may not)."""
    ndim = draw(st.sampled_from([1, 2]))
    palette = draw(st.lists(palette_layer(ndim), min_size=1, max_size=6))
    layers, target = [], draw(st.integers(1, max_layers))
    while len(layers) < target:
        if draw(st.integers(0, 19)) == 0:
            layers.append(draw(residual()))
        else:
            layers += [draw(st.sampled_from(palette))] * draw(st.sampled_from([1, 1, 1, 2, 3, 16, 20]))
    for _ in range(draw(st.integers(0, 2))):  # periods multiply along a chain: a few periodic layers
        periodic = draw(st.sampled_from([R.Upsample(2), R.ConvTranspose(4, stride=2, padding=1)]))
        layers.insert(draw(st.integers(0, len(layers))), periodic)
    size = draw(st.one_of(st.none(), st.integers(2**60, 2**70), st.integers(1, 40)))
    return Sequential(*layers), size, ndim


def _same(a, b, what):
    """Equal values of the same type (sympy numbers, tuples of them, None, bools, strings)."""
    if isinstance(a, tuple) or isinstance(b, tuple):
        assert isinstance(a, tuple) and isinstance(b, tuple) and len(a) == len(b), (what, a, b)
        for x, y in zip(a, b):
            _same(x, y, what)
        return
    assert type(a) is type(b) and a == b, (what, a, b, type(a), type(b))


def _layer_values(layer):
    values = {q: getattr(layer, q) for q in _LAYER_QUANTITIES}
    values["span"] = tuple(tuple(int(v) for v in pair) for pair in layer.span(0))  # the sympy path: ints at times
    if layer.period == 1:
        values["span far"] = tuple(tuple(int(v) for v in pair) for pair in layer.span(1000))
    for q in ("rf", "jump", "start", "out_size"):
        values[f"input {q}"] = layer.input.axes(q)
    return values


def _compare(fast, slow, order):
    assert fast._ops is ExactOps and slow._ops is SymOps
    assert len(fast.layers) == len(slow.layers)
    for i in order:  # the fast result read in this order, the reference in its own
        where = f"layer {i} ({slow.layers[i].type})"
        got, want = _layer_values(fast.layers[i]), _layer_values(slow.layers[i])
        for q in want:
            _same(got[q], want[q], (where, q))
    for q in _RESULT_QUANTITIES:
        _same(getattr(fast, q), getattr(slow, q), ("output", q))


def _derive_both(net, size, ndim):
    """(fast result or error, reference result or error): the reference is the sympy path."""
    out = []
    for ops in (None, SymOps):
        try:
            out.append(derive(net, size, ndim=ndim, ops=ops))
        except R.RfsymError as err:
            out.append(err)
    return out


@settings(max_examples=200, deadline=None)
@given(long_chains(), st.randoms(use_true_random=False), st.sampled_from(["in order", "reversed", "shuffled"]))
def test_fast_path_equals_sympy_path_on_long_chains(chain, rng, how):
    net, size, ndim = chain
    fast, slow = _derive_both(net, size, ndim)
    if isinstance(slow, Exception):  # too small an input: the same error, with the sympy path's message
        assert type(fast) is type(slow) and str(fast) == str(slow)
        return
    assert not isinstance(fast, Exception), fast
    order = list(range(len(slow.layers)))
    if how == "reversed":
        order.reverse()
    elif how == "shuffled":
        rng.shuffle(order)
    _compare(fast, slow, order)


@pytest.mark.parametrize("size", [None, 2**200])
def test_a_thousand_mixed_layers_read_from_the_end(size):
    """The last layer first (checkpoints every Chain.CHECKPOINT groups), then the others."""
    pattern = [Conv(3, padding=1), ReLU(), Conv(3, padding=2, dilation=2), R.BatchNorm(4),
               MaxPool(3, stride=1, padding=1), Conv(2, stride=2)]
    net = Sequential(*(pattern * 170))
    assert len(net.layers) > 10 * Chain.CHECKPOINT
    fast, slow = _derive_both(net, size, 1)
    order = list(range(len(slow.layers)))
    _compare(fast, slow, [order[-1], order[len(order) // 2]] + order)


def test_long_runs_take_the_closed_form():
    """10^5 copies of one layer: the output's field without composing 10^5 maps."""
    n = 100_000
    r = analyze(Sequential(*[Conv(3, padding=1)] * n), 64)
    assert r._ops is ExactOps
    assert (r.rf, r.jump, r.start, r.out_size) == (2 * n + 1, 1, -n, 64)
    i = n // 2
    assert (r.layers[i].rf, r.layers[i].start) == (2 * (i + 1) + 1, -(i + 1))  # a prefix inside the run


def _copies(layer, n, how):
    """``n`` copies of ``layer``: the object itself, shallow copies (the same field objects) or
    layers built again from the same arguments (other field objects where they are not shared)."""
    if how == "same":
        return [layer] * n
    if how == "copy":
        return [copy.copy(layer) for _ in range(n)]
    fields = {f.name: getattr(layer, f.name) for f in dataclasses.fields(layer)}
    return [type(layer)(**fields) for _ in range(n)]


@st.composite
def channel_chains(draw, max_layers=200):
    """``(net, input_size, ndim, in_channels)``: a numeric chain whose convolutions carry channel
    counts (groups, biases, given or inherited input channels), its layers repeated as one object,
    as copies or as layers built again (the caches of equal configurations), on sizes that
    change at every layer or not at all, sometimes too small."""
    ndim = draw(st.sampled_from([1, 2]))
    c0 = channels = draw(st.integers(1, 4))
    layers, target = [], draw(st.integers(1, max_layers))
    while len(layers) < target:
        kind = draw(st.sampled_from(["conv", "conv", "pool", "shrink", "batchnorm", "relu"]))
        if kind == "conv":
            layer = draw(convs(ndim, channels))
            channels = layer.out_channels
        elif kind == "pool":
            layer = draw(pools(ndim))
        elif kind == "shrink":  # the size changes at every layer: every rule runs
            layer = MaxPool(2, stride=1)
        elif kind == "batchnorm":
            layer = R.BatchNorm(channels)
        else:
            layer = ReLU()
        count = draw(st.sampled_from([1, 2, 5, 20]))
        if kind == "conv" and layer.in_channels is not None and layer.out_channels != layer.in_channels:
            count = 1  # (repeated, its input channels would not match: one such error is drawn below)
        layers += _copies(layer, count, draw(st.sampled_from(["same", "copy", "rebuilt"])))
    if draw(st.integers(0, 9)) == 0:  # a channel mismatch: the same error both ways
        layers.insert(draw(st.integers(0, len(layers))), Conv(3, in_channels=7, out_channels=7))
    size = draw(st.one_of(st.none(), st.integers(2**60, 2**70), st.integers(1, 300)))
    return Sequential(*layers), size, ndim, c0


@settings(max_examples=80, deadline=None)
@given(channel_chains())
def test_fast_path_equals_sympy_path_with_channels_and_copies(chain):
    net, size, ndim, c0 = chain
    out = []
    for ops in (None, SymOps):
        try:
            out.append(derive(net, size, ndim=ndim, in_channels=c0, ops=ops))
        except R.RfsymError as err:
            out.append(err)
    fast, slow = out
    if isinstance(slow, Exception):
        assert type(fast) is type(slow) and str(fast) == str(slow)
        return
    assert not isinstance(fast, Exception), fast
    _compare(fast, slow, range(len(slow.layers)))


def test_a_symbol_after_numeric_layers_takes_the_sympy_path():
    """The fast path leaves at the first layer holding a symbol; the result is the sympy one."""
    k = R.symbols("k")
    net = Sequential(*[Conv(3, padding=1)] * 50, Conv(k), *[MaxPool(2, stride=1) for _ in range(5)])
    r = analyze(net, 64)
    assert r._ops is SymOps
    assert r.rf == k + 105 and r.out_size == 60 - k
    assert (r.rf, r.out_size) == (derive(net, 64, ops=SymOps).rf, derive(net, 64, ops=SymOps).out_size)


def test_channel_mismatch_named_on_the_fast_path():
    """A convolution whose in_channels disagree with what reaches it: the layer and the parameter."""
    net = Sequential(*[Conv(3, padding=1, out_channels=8) for _ in range(3)], Conv(3, in_channels=4))
    with pytest.raises(R.LayerError) as err:
        analyze(net, 2**100)
    assert err.value.param == "in_channels" and "layer 3" in str(err.value) and "gives 8" in str(err.value)


def test_sizes_that_change_at_every_layer():
    """10^3 shrinking pools on separately built layers: sizes exact, then too small an input."""
    n = 1000
    r = analyze(Sequential(*[MaxPool(2, stride=1) for _ in range(n)]), 2**120, in_channels=3)
    assert r._ops is ExactOps
    assert (r.rf, r.out_size, r.layers[n // 2].out_size) == (n + 1, 2**120 - n, 2**120 - n // 2 - 1)
    with pytest.raises(R.SizeError, match=r"layer 499 \(MaxPool\).*input size is 1\)"):
        analyze(Sequential(*[MaxPool(2, stride=1)] * n), 500)
