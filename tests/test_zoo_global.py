"""Squeeze-and-excitation gates make the receptive field global (REFERENCE.md: "every output sees
the whole input (EfficientNet's SE blocks make its receptive field global)"): jump 0, one field
for every output, checked against the brute-force enumerator."""

import numpy as np
import pytest
import sympy as sp

from rfsym import Conv, Repeat, Residual, RfsymError, Sequential, analyze, symbols, verify, zoo
from rfsym.effective_field import discrete_erf, erf
from rfsym.enumeration import dependency_set, enumerate_network
from rfsym.zoo.blocks import SqueezeExcitation

FIRST_SE = "features.1.0.block.1"  # the gate of EfficientNet-B0's first MBConv block


@pytest.fixture(scope="module")
def b0():
    return zoo.get("efficientnet_b0")


@pytest.fixture(scope="module")
def b0_224(b0):
    return analyze(b0, 224)


def _padded_extent(n):
    """Input positions read by the first SE gate of B0, by hand: the stem (3x3, stride 2,
    padding 1) maps 224 to 112, the depthwise 3x3 (padding 1) keeps 112; the gate reads its
    positions 0..111, i.e. stem outputs -1..112, i.e. input positions 2·(-1) - 1 = -3 up to
    2·112 - 1 + 2 = 225."""
    m = (n + 2 - 3) // 2 + 1
    return -3, 2 * m - 1 + 2


def test_b0_rf_after_first_se_is_the_whole_padded_input(b0_224):
    lo, hi = _padded_extent(224)
    assert (lo, hi) == (-3, 225)
    se = b0_224.layer(FIRST_SE)
    assert se.type == "SqueezeExcitation"
    assert (se.rf, se.start, se.jump) == (hi - lo + 1, lo, 0) == (229, -3, 0)
    before = b0_224.layers[se.index - 1]
    assert (before.rf, before.jump) == (7, 2)  # still local just before the gate
    # every later layer (convolutions, residual merges, the classifier) sees the same field
    for layer in b0_224.layers[se.index:]:
        assert (layer.rf, layer.start, layer.jump) == (229, -3, 0), layer.name
    # every output position, not only output 0
    assert b0_224.layer("features.8.2").span(6) == ((-3, 225), (-3, 225))


def test_b0_first_se_field_enumerated(b0, b0_224):
    """The enumerator counts the same set: every input position from -3 to 225 (the stem and
    depthwise taps together leave no hole)."""
    idx = b0_224.layer(FIRST_SE).index
    for o in (0, 57):
        got = dependency_set(b0, 224, o, layer=idx)
        assert got.tolist() == list(range(-3, 226))


def test_b0_verified_by_enumeration(b0):
    report = verify(b0, 224)
    assert report.ok, str(report)


def test_b0_symbolic_input_size(b0):
    n = symbols("n")
    r = analyze(b0, n)
    f = r.layer("features.8.2")
    assert f.jump == 0 and f.start == -3
    for size in (224, 225, 300, 321):
        lo, hi = _padded_extent(size)
        assert sp.sympify(f.rf).subs(n, size) == hi - lo + 1 == analyze(b0, size).layer("features.8.2").rf
    assert list(r.evaluate({"n": [224, 225, 300]}).layer("features.8.2").rf) == [229, 231, 305]


def test_b0_without_input_size_is_symbolic_in_it(b0):
    # no infinite field: the global layers' field is a closed form in the input size H, W
    r = analyze(b0, in_channels=3)
    f = r.layer("features.8.2")
    assert f.jump == 0 and all(sp.sympify(v).free_symbols for v in r.layer("features.8.2").axes("rf"))
    assert any("input size" in note for note in r.notes)
    at = analyze(b0, 224, in_channels=3).layer("features.8.2")
    assert r.subs({"H": 224, "W": 224}).layer("features.8.2").rf == at.rf == 229
    assert r.params == 5_288_548


def test_compound_scaling_family_still_derives():
    r = zoo.analyze("efficientnet", phi=0)
    assert (r.layer("features.8.2").rf, r.layer("features.8.2").jump) == (229, 0)


def _se_residual(shortcut=None):
    body = Sequential(Conv(3, padding=1), SqueezeExcitation(squeeze_channels=2))
    return Residual(body) if shortcut is None else Residual(body, shortcut)


@pytest.mark.parametrize("n", [5, 10, 70])
def test_residual_with_se_body_is_global_and_enumerated(n):
    net = Sequential(Conv(3, stride=2, padding=1, in_channels=8), _se_residual(), Conv(1))
    r = analyze(net, n)
    merge = next(layer for layer in r.layers if layer.type == "Add")
    m = (n + 2 - 3) // 2 + 1  # the merge's size; the gate's conv reads -1 .. m of it,
    lo, hi = 2 * -1 - 1, 2 * m - 1 + 2  # i.e. input positions -3 .. 2m + 1
    assert (merge.jump, merge.start, merge.rf) == (0, lo, hi - lo + 1)
    assert merge.aligned is False  # a global branch beside a local one
    assert r.jump == 0 and r.rf == merge.rf
    report = verify(net, n)
    assert report.ok, str(report)
    e = enumerate_network(net, n)
    assert (e.layers[merge.index].jump, e.layers[merge.index].rf) == (0, merge.rf)


def test_merge_bounds_every_real_output_when_the_gate_does_not_cover():
    """A 1x1 body with a gate reads positions 0..n-1 only; a 3x3 shortcut reads o-1..o+1. The
    merge takes the local branch at output n-1 too (not only at output 0), so its one field
    -1..n is the smallest interval holding the field of every real output; the enumerator
    (exact, per output) finds fields that differ from output to output, each inside it, and
    together spanning it."""
    net = Residual(Sequential(Conv(1, in_channels=8), SqueezeExcitation(squeeze_channels=2)),
                   Conv(3, padding=1))
    for n in (4, 9):
        r = analyze(net, n, ndim=1)
        assert (r.rf, r.start, r.jump) == (n + 2, -1, 0)
        count = enumerate_network(net, n, ndim=1, positions="all").layers[-1].per_axis[0]
        assert count.lo.min() == -1 and count.hi.max() == n
        assert count.rf < n + 2 and count.jump is None  # position-dependent: not one interval
    n = symbols("n")
    assert analyze(net, n, ndim=1).rf == n + 2


def test_repeat_of_a_global_block_symbolic_count():
    block = _se_residual()
    k = symbols("k")
    net = Sequential(Conv(3, padding=1, in_channels=8), Repeat(block, k))
    r = analyze(net, 10)
    for count in (1, 2, 3):
        unrolled = analyze(Sequential(Conv(3, padding=1, in_channels=8), *[block] * count), 10)
        got = r.subs({k: count})
        assert (got.rf, got.start, got.jump) == (unrolled.rf, unrolled.start, unrolled.jump) == (14, -2, 0)


def test_se_enumeration_needs_the_input_size():
    with pytest.raises(RfsymError, match="squeeze-and-excitation gate reads the whole input"):
        enumerate_network(Sequential(Conv(3), SqueezeExcitation(8, 2)), None, ndim=1)


def test_erf_of_a_global_chain_matches_the_discrete_response():
    """Under the ERF model a global layer spreads uniformly over its input; for a chain the
    closed-form moments agree with the exact discrete response."""
    net = Sequential(Conv(3, padding=1, in_channels=8), SqueezeExcitation(squeeze_channels=2))
    e = erf(net, 10, ndim=1)
    pos, w = discrete_erf(net, 10, ndim=1)[0]
    mean = float((pos * w).sum())
    assert float(e.mean) == pytest.approx(mean)
    assert float(e.variance) == pytest.approx(float(((pos - mean) ** 2 * w).sum()))
    assert np.isclose(w.sum(), 1)


def test_erf_of_efficientnet_equals_the_discrete_response(b0):
    """From the first SE gate on every node's response is global (jump 0), so the residual
    merges mix two global responses: the closed-form moments of EfficientNet-B0 equal the exact
    discrete response's, and the response spans the padded input (rf 69 at 64: -3 .. 65)."""
    e = erf(b0, 64)
    assert e.rf == 69
    for (pos, w), mean, var in zip(discrete_erf(b0, 64), e.axes("mean"), e.axes("variance")):
        m = float((pos * w).sum())
        assert (pos[0], pos[-1]) == (-3, 65) and np.isclose(w.sum(), 1)
        assert float(mean) == pytest.approx(m) and float(var) == pytest.approx(float(((pos - m) ** 2 * w).sum()))
    with pytest.raises(RfsymError, match=r"a global branch \(jump 0"):  # a local input beside a global one
        erf(Sequential(Conv(3, padding=1, in_channels=8), Residual(SqueezeExcitation(squeeze_channels=2))), 10,
            ndim=1)
