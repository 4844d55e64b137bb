"""The interval enumeration (``method="intervals"``, the default of :func:`rfsym.verify`) against
the dense one (``method="dense"``, every set a bit row): the same sets, position by position, on
random networks and on hand-picked index maps; deep chains verify in linear time; the work
budgets of both methods refuse with an :class:`rfsym.RfsymError` that says what to reduce.

Speed is measured in ``benchmarks/bench_verify.py`` (``python benchmarks/run.py verify``),
not here; the deep chains below only show that the work stays bounded.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import architectures, dag_architectures, graph_architectures

import rfsym as R
from rfsym import (
    AdaptiveAvgPool,
    Attention,
    AvgPool,
    Concat,
    Conv,
    ConvTranspose,
    Graph,
    MaxPool,
    PixelShuffle,
    PixelUnshuffle,
    Residual,
    Sequential,
    Upsample,
)
from rfsym.enumeration import (
    MAX_INTERVAL_OPS,
    Leaf,
    Taps,
    enumerate_network,
    register_index_map,
)
from rfsym.layers import MAX_NESTING
from rfsym.verification import MAX_POSITIONS

FEWER = max(20, settings.default.max_examples // 5)
QUANTITIES = ("rf", "rf_min", "jump", "start", "center", "period", "out_size")


def same_sets(net, size, ndim=None, positions=R.enumeration.POSITIONS, strict=False):
    """Enumerate ``net`` both ways and compare every node, axis and enumerated output: the
    bounds and sizes of the sets, the sets themselves and every quantity read off them.
    Returns the interval enumeration."""
    kw = dict(ndim=ndim, keep_sets=True, positions=positions, strict=strict)
    fast = enumerate_network(net, size, method="intervals", **kw)
    ref = enumerate_network(net, size, method="dense", **kw)
    assert fast.methods == ("intervals",) * fast.ndim  # not a silent fallback to dense
    assert ref.methods == ("dense",) * ref.ndim
    assert [(x.index, x.type, x.name) for x in fast.layers] == [(y.index, y.type, y.name) for y in ref.layers]
    assert list(fast.outputs) == list(ref.outputs)
    pairs = list(zip(fast.layers, ref.layers)) + [(fast.outputs[k], ref.outputs[k]) for k in fast.outputs]
    for x, y in pairs:
        for axis in range(fast.ndim):
            a, b = x.per_axis[axis], y.per_axis[axis]
            for q in QUANTITIES:
                assert getattr(a, q) == getattr(b, q), (x, axis, q)
            assert np.array_equal(a.size, b.size), (x, axis)
            real = a.size > 0
            assert np.array_equal(a.lo[real], b.lo[real]) and np.array_equal(a.hi[real], b.hi[real]), (x, axis)
            for o in range(len(a.lo)):
                assert a.positions(o).tolist() == b.positions(o).tolist(), (x, axis, o)
    return fast


# --------------------------------------------------------------------------- random networks
@settings(max_examples=FEWER)
@given(architectures(max_layers=6, max_size=40))
def test_random_stacks_intervals_equal_dense(arch):
    """Strided, dilated, padded (every padding mode) convolutions, pools with ceil_mode,
    adaptive and global pools, Linear heads: the same sets both ways."""
    same_sets(arch.net, arch.input_size, positions=12)


@settings(max_examples=FEWER)
@given(graph_architectures(max_items=4, max_size=20))
def test_random_graphs_intervals_equal_dense(arch):
    """Residual blocks, concatenations, upsampling (nearest, bilinear, aligned corners) and
    transposed convolutions (strided, dilated): the same sets both ways, every output phase."""
    same_sets(arch.net, arch.input_size, positions=12)


@settings(max_examples=FEWER)
@given(dag_architectures())
def test_random_dags_intervals_equal_dense(arch):
    """DAGs with fan-out, add/concat/mul merges of two or three inputs, broadcast gates, several
    outputs, pixel shuffles, explicit padding and crops: the same sets both ways."""
    same_sets(arch.net, arch.input_size, positions=12)


@settings(max_examples=FEWER)
@given(st.data())
def test_random_dags_verify_reports_agree(data):
    """:func:`rfsym.verify` gives the same report whichever way it enumerates."""
    arch = data.draw(dag_architectures())
    fast = R.verify(arch.net, arch.input_size)
    ref = R.verify(arch.net, arch.input_size, method="dense")
    assert (fast.ok, fast.checked, fast.mismatches) == (ref.ok, ref.checked, ref.mismatches)


# --------------------------------------------------------------------------- hand-picked maps
CASES = [
    ("dilation holes", Sequential(Conv(3, dilation=2), Conv(3, dilation=3, stride=2), Conv(5, dilation=2)), 50),
    ("stride and padding", Sequential(Conv(3, padding=1), Conv(3, stride=2), MaxPool(3, ceil_mode=True)), 32),
    ("pools", Sequential(MaxPool(3, stride=2, padding=1, ceil_mode=True), AvgPool(2), AdaptiveAvgPool(5)), 23),
    ("tf same", Sequential(Conv(7, stride=2, padding="tf_same"), MaxPool(3, stride=2, padding="tf_same")), 31),
    ("transposed dilated", Sequential(ConvTranspose(2, stride=2, dilation=3), ConvTranspose(2, dilation=2),
                                      MaxPool(2)), 40),
    ("transposed gaps", Sequential(ConvTranspose(2, stride=5), Conv(3, stride=2)), 9),
    ("nearest upsampling", Sequential(Conv(3, stride=2), Upsample(3), Conv(3, stride=2)), 30),
    ("bilinear", Sequential(Conv(3, stride=2), Upsample(2, mode="bilinear"), Conv(3)), 17),
    ("aligned corners", Sequential(Conv(3, stride=2), Upsample(2, mode="bilinear", align_corners=True), Conv(3)), 17),
    ("pixel shuffles", Sequential(PixelUnshuffle(2), Conv(3, padding=1), PixelShuffle(2), Conv(3, dilation=2)), 16),
    ("window attention", Sequential(Conv(3), Attention(window=4, shift=2), Conv(3)), 18),
    ("grid attention", Sequential(Conv(3), Attention(grid=3), Conv(3)), 20),
    ("global attention", Sequential(Conv(3), Attention(), Conv(3)), 18),
    ("linear head", Sequential(Conv(3, stride=2), R.Flatten(), R.Linear(10, 10)), 18),
    ("residual and concat", Sequential(Conv(3, stride=2, padding=1),
                                       Residual(Sequential(Conv(3, padding=1), Conv(3, padding=1)), Conv(1)),
                                       Concat(Conv(1), Conv(3, padding=1)), ConvTranspose(4, stride=2, padding=1)), 37),
    # a merge of branches that grow at different rates (jump 2 and 1): two families of sets
    ("merge of different jumps", Graph(("a", AdaptiveAvgPool(4), "input"), ("b", Conv(5), "input"),
                                       ("m", "add", ("a", "b")), ("c", Conv(3, dilation=2, padding=2), "m")), 8),
    ("stride then upsample merge", Graph(("s", Conv(1, stride=2), "input"), ("u", Upsample(2), "s"),
                                         ("m", "add", ("input", "u")), ("c", Conv(3, dilation=2), "m")), 20),
    ("broadcast gate", Graph(("f", Conv(3, padding=1), "input"), ("g", AdaptiveAvgPool(1), "f"),
                             ("m", "mul", ("f", "g")), ("c", Conv(3, padding=1), "m")), 12),
]


@pytest.mark.parametrize("name, net, size", CASES, ids=[c[0] for c in CASES])
def test_index_maps_intervals_equal_dense(name, net, size):
    same_sets(net, size, ndim=1, positions="all")
    same_sets(net, size, ndim=1, positions=5)


def test_two_axes_and_the_zoo():
    same_sets(Sequential(Conv((3, 5), stride=(1, 2), dilation=(2, 1)), MaxPool(2)), (20, 17))
    same_sets(R.zoo.get("resnet18"), 64, positions=8)
    same_sets(R.zoo.get("unet"), 188, positions=8)


def test_dilation_holes_are_intervals():
    e = enumerate_network(Sequential(Conv(3, dilation=2), Conv(3, dilation=3)), 20, ndim=1, keep_sets=True)
    assert e.methods == ("intervals",)
    # output 0 reads {0, 3, 6}, each of those {x, x + 2, x + 4}: {0 2 4} | {3 5 7} | {6 8 10}, holes at 1 and 9
    assert e.layers[-1].positions(0).tolist() == [0, 2, 3, 4, 5, 6, 7, 8, 10]
    assert e.layers[-1].per_axis[0].size[0] == 9 and e.rf == 11


def test_a_map_whose_period_does_not_hold_is_enumerated_densely():
    """A registered index map claiming period 1 (translation-equivariant) that is not: the
    interval method finds out on the outputs it evaluates and enumerates that axis densely."""

    class Square(R.Elementwise):
        pass

    register_index_map(Square)(lambda layer, sizes, ndim: Leaf((Taps(lambda o: ((o * o)[:, None], None)),) * ndim,
                                                               sizes))
    e = enumerate_network(Sequential(Conv(3), Square()), 12, ndim=1, keep_sets=True)
    assert e.methods == ("dense",)
    assert e.layers[-1].positions(3).tolist() == [9, 10, 11]


# --------------------------------------------------------------------------- depth
def test_ten_thousand_layer_chain_verifies():
    net = Sequential(*[Conv(3, padding=1)] * 10_000)
    report = R.verify(net, 16, ndim=1, positions=4)
    assert report.ok and report.layers == 10_000
    assert report.enumeration.methods == ("intervals",)
    assert (report.result.rf, report.enumeration.rf, report.enumeration.start) == (20_001, 20_001, -10_000)


def test_deep_strided_chain_with_huge_jumps():
    """2,000 stride-2 layers: positions beyond int64 (jump 2**2000), kept exact."""
    net = Sequential(*[Conv(3, stride=2, padding=1)] * 2000)
    report = R.verify(net, 16, ndim=1, positions=2)
    assert report.ok
    assert report.enumeration.jump == 2**2000 and report.enumeration.rf == 2**2001 - 1


def test_deep_nesting_verifies():
    """Blocks nested MAX_NESTING levels deep (a padded conv at every level) verify."""
    shared = Conv(3, padding=1)
    x = shared
    for _ in range(MAX_NESTING):
        x = Sequential(shared, x)
    assert x.depth == MAX_NESTING
    report = R.verify(x, 6, ndim=1, positions=2)  # MAX_NESTING + 1 convolutions
    assert report.ok and report.enumeration.rf == 2 * (MAX_NESTING + 1) + 1


# --------------------------------------------------------------------------- budgets
def test_interval_budget_is_an_rfsym_error_naming_the_layer():
    net = Sequential(*[Conv(3, dilation=2, padding=2)] * 3000)  # a hole between every two positions
    with pytest.raises(R.RfsymError, match=r"layer \d+ \(Conv\) on axis 0 brings the work past 2e\+06 interval "
                                           r"operations.*use fewer layers or smaller dilations"):
        R.verify(net, 64, ndim=1)
    assert MAX_INTERVAL_OPS == 2 * 10**6
    with pytest.raises(R.RfsymError, match="past 1e\\+02 interval operations"):
        enumerate_network(Sequential(*[Conv(3, dilation=2)] * 20), 100, ndim=1, max_interval_ops=100)


def test_position_budget_refuses_before_any_work():
    assert MAX_POSITIONS == 2 * 10**7
    with pytest.raises(R.RfsymError, match=r"would take about 1e\+08 positions \(the limit is 2e\+07\); use a "
                                           "smaller input size"):
        R.verify(Conv(3), 10**8, ndim=1)
    with pytest.raises(R.RfsymError, match="positions"):
        R.verify(Sequential(Conv(3), Conv(3)), 10**7, ndim=1, positions="all")


def test_dense_budget_refuses_deep_chains():
    net = Sequential(*[Conv(3, padding=1)] * 10_000)
    with pytest.raises(R.RfsymError, match=r"array cells \(the limit is 2e\+09\)"):
        R.verify(net, 16, ndim=1, method="dense")
    with pytest.raises(R.RfsymError, match="dense enumeration: the sets on axis 0 would hold"):
        enumerate_network(Sequential(*[Conv(3, padding=1)] * 3000), 16, ndim=1, method="dense")


def test_unknown_method():
    with pytest.raises(R.RfsymError, match="method must be one of 'intervals', 'dense'"):
        R.verify(Conv(3), 8, method="sparse")
