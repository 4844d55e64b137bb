"""The enumerator on its own: the notes' worked example, dilation holes, TensorFlow SAME,
ceil_mode, position-dependent maps, dependency masks with path counts, and a naive
pure-Python reference that checks the vectorised enumeration on random chains."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import rfsym as R
from rfsym.enumeration import (
    Branches,
    Leaf,
    Sliding,
    dependency_mask,
    dependency_set,
    enumerate_network,
    register_index_map,
)
from rfsym.errors import LayerError, RfsymError, SizeError

TWO = R.Sequential(R.Conv(3, padding=1), R.Conv(3, padding=1))


# --------------------------------------------------------------------------- the notes
def test_worked_example_centre_sees_all_25_pixels():
    """The notes' 5×5 example: after two 3×3 convolutions (stride 1, padding 1) the centre
    output (2, 2) depends on every one of the 25 input pixels."""
    mask = dependency_mask(TWO, 5, (2, 2))
    assert mask.shape == (5, 5) and mask.all()
    assert dependency_mask(TWO, 5, (2, 2), layer=0).sum() == 9  # Conv 1's centre: a 3×3 patch


# the notes' list, section 4 ("Expand the Dependency"): Conv 1 position -> (rows, cols)
NOTES_RANGES = {
    (1, 1): ((0, 2), (0, 2)), (1, 2): ((0, 2), (1, 3)), (1, 3): ((0, 2), (2, 4)),
    (2, 1): ((1, 3), (0, 2)), (2, 2): ((1, 3), (1, 3)), (2, 3): ((1, 3), (2, 4)),
    (3, 1): ((2, 4), (0, 2)), (3, 2): ((2, 4), (1, 3)), (3, 3): ((2, 4), (2, 4)),
}


def test_worked_example_nine_intermediate_positions():
    """Each of the nine Conv 1 positions read by the centre of Conv 2 depends on exactly the
    rows and columns the notes list, and their union is the whole 5×5 input."""
    union = np.zeros((5, 5), dtype=bool)
    for (r, c), ((r0, r1), (c0, c1)) in NOTES_RANGES.items():
        expected = np.zeros((5, 5), dtype=bool)
        expected[r0:r1 + 1, c0:c1 + 1] = True
        got = dependency_mask(TWO, 5, (r, c), layer=0)
        assert (got == expected).all(), (r, c)
        union |= got
    assert union.all()


def test_notes_growth_3_5_7_9():
    """One to four stacked 3×3 convolutions: receptive fields 3, 5, 7, 9; a third layer's centre
    on the 5×5 input reaches a 7-wide range, one pixel into the padding on each side."""
    e = enumerate_network(R.Sequential(*[R.Conv(3, padding=1)] * 4), 5)
    assert [layer.rf for layer in e.layers] == [3, 5, 7, 9]
    three = R.Sequential(*[R.Conv(3, padding=1)] * 3)
    assert dependency_set(three, 5, 2).tolist() == list(range(-1, 6))
    assert dependency_mask(three, 5, (2, 2)).all()


# --------------------------------------------------------------------------- dilation
def test_dilation_leaves_holes():
    """A dilated kernel's dependency set has holes; the receptive field still spans them."""
    e = enumerate_network(R.Conv(3, dilation=2), 9, ndim=1, keep_sets=True)
    assert e.layers[0].positions(0).tolist() == [0, 2, 4]
    assert (e.rf, e.layers[0].per_axis[0].size[0]) == (5, 3)
    net = R.Sequential(R.Conv(2, dilation=4), R.Conv(2))
    assert dependency_set(net, 9, 0, ndim=1).tolist() == [0, 1, 4, 5]
    assert enumerate_network(net, 9, ndim=1).rf == 6


def test_wavenet_stack_has_no_holes():
    """Kernel 2 with dilations 1, 2, 4, ..., 512 (WaveNet): the 1024 positions are all there."""
    net = R.Sequential(*[R.Conv(2, dilation=2**i) for i in range(10)])
    s = dependency_set(net, 2048, 0, ndim=1)
    assert s.tolist() == list(range(1024))


# --------------------------------------------------------------------------- TensorFlow SAME
@pytest.mark.parametrize("n, start, out", [(224, -2, 112), (225, -3, 113), (7, -3, 4), (8, -2, 4)])
def test_tf_same_padding_depends_on_input_size(n, start, out):
    """TensorFlow SAME pads max((ceil(n/s) - 1)s + k - n, 0) in total, the smaller half on the
    left: a 7×7 stride-2 convolution starts at -2 for n = 224 and at -3 for n = 225."""
    e = enumerate_network(R.Conv(7, stride=2, padding="SAME"), n, ndim=1)
    assert (e.start, e.out_size) == (start, out)
    assert R.verify(R.Conv(7, stride=2, padding="tf_same"), n, ndim=1).ok


def test_tf_same_no_padding_needed():
    """When the windows already cover the input, TensorFlow SAME pads nothing."""
    e = enumerate_network(R.Conv(1, stride=2, padding="tf_same"), 4, ndim=1)
    assert (e.start, e.out_size) == (0, 2)


# --------------------------------------------------------------------------- ceil_mode
# Expected sizes from PyTorch's pooling_output_shape (aten/src/ATen/native/Pool.h):
# div_rtn(n + 2p - d(k-1) - 1 + (ceil ? s - 1 : 0), s) + 1, minus 1 when the last window
# would start at or beyond n + p.
@pytest.mark.parametrize("n, k, s, p, floor_size, ceil_size", [
    (5, 2, 2, 0, 2, 3),   # the extra window covers the last pixel
    (6, 3, 2, 1, 3, 4),
    (5, 2, 2, 1, 3, 3),   # ceil gives 4, but the 4th window would start in the right padding
    (2, 3, 2, 0, None, 1),  # floor: no window fits; ceil: one window sticking out by one
    (112, 3, 2, 0, 55, 56),  # GoogLeNet/Inception-style pools
])
def test_ceil_mode_sizes(n, k, s, p, floor_size, ceil_size):
    """Pooling's ceil_mode adds the windows that start inside the input or the left padding
    and stick out past the padded end by less than a stride; the engine agrees."""
    ceil = R.MaxPool(k, stride=s, padding=p, ceil_mode=True)
    assert enumerate_network(ceil, n, ndim=1).out_size == ceil_size
    assert R.verify(ceil, n, ndim=1).ok
    floor = R.MaxPool(k, stride=s, padding=p)
    if floor_size is None:
        with pytest.raises(SizeError, match="no output window fits"):
            enumerate_network(floor, n, ndim=1)
    else:
        assert enumerate_network(floor, n, ndim=1).out_size == floor_size


# --------------------------------------------------------------------------- periods
def test_position_dependent_maps():
    """Transposed convolution, upsampling and uneven adaptive pooling have receptive fields that
    depend on the output position: max, min, period and rational jump counted over phases."""
    e = enumerate_network(R.ConvTranspose(3, stride=2), 8, ndim=1)
    assert (e.rf, e.rf_min, e.period, e.jump, e.out_size) == (2, 1, 2, R.enumeration.Fraction(1, 2), 17)
    up = enumerate_network(R.Upsample(3), 4, ndim=1)
    assert (up.rf, up.period, str(up.jump), up.out_size) == (1, 3, "1/3", 12)
    ad = enumerate_network(R.AdaptiveAvgPool(3), 10, ndim=1)
    assert (ad.rf, ad.rf_min, ad.period, str(ad.jump)) == (4, 4, 3, "10/3")
    for net, n in [(R.ConvTranspose(3, stride=2), 8), (R.Upsample(3), 4), (R.AdaptiveAvgPool(3), 10),
                   (R.Sequential(R.Conv(3, stride=2), R.ConvTranspose(4, stride=2, padding=1)), 9)]:
        assert R.verify(net, n, ndim=1).ok


# --------------------------------------------------------------------------- masks and counts
def test_mask_counts_centre_and_corner():
    """Path counts of two 3×3 convolutions: the outer product of (1, 2, 3, 2, 1) at the centre;
    at the corner only real positions carry paths unless ``through_padding``."""
    counts = dependency_mask(TWO, 5, (2, 2), counts=True)
    row = np.array([1, 2, 3, 2, 1])
    assert (counts == np.outer(row, row)).all() and counts.sum() == 81
    corner = dependency_mask(TWO, 5, (0, 0), counts=True)
    assert (corner == np.outer([2, 2, 1, 0, 0], [2, 2, 1, 0, 0])).all()
    padded = dependency_mask(TWO, 5, (0, 0), counts=True, through_padding=True)
    assert (padded == np.outer([3, 2, 1, 0, 0], [3, 2, 1, 0, 0])).all()


def test_mask_of_residual_is_union_and_counts_add():
    """A residual block's mask is the union of its branches' masks and its path counts add
    (not a product over axes)."""
    net = R.Residual(R.Conv(3, padding=1))
    counts = dependency_mask(net, 5, (2, 2), counts=True)
    expected = np.outer([0, 1, 1, 1, 0], [0, 1, 1, 1, 0])
    expected[2, 2] += 1
    assert (counts == expected).all()


def test_mask_counts_are_exact_beyond_float():
    """Path counts beyond 2**53 stay exact: forty 3-tap layers give 3**40 paths in all."""
    net = R.Sequential(*[R.Conv(3, padding=1)] * 40)
    counts = dependency_mask(net, 81, 40, counts=True, ndim=1)
    assert sum(int(c) for c in counts) == 3 ** 40
    assert int(counts[40]) == max(int(c) for c in counts)


def test_mask_errors():
    """Bad mask requests name what is wrong."""
    with pytest.raises(RfsymError, match="outside the output"):
        dependency_mask(TWO, 5, (5, 0))
    with pytest.raises(RfsymError, match="has 1 axes but the network has 2"):
        dependency_mask(TWO, 5, (1,))
    with pytest.raises(RfsymError, match="layer 7 does not exist"):
        dependency_mask(TWO, 5, (0, 0), layer=7)
    with pytest.raises(RfsymError, match="needs the input size"):
        dependency_mask(TWO, None, (0, 0))


def test_symbolic_parameters_are_refused():
    """The enumerator needs numbers and says which layer and parameter are symbolic."""
    k = R.symbols("k")
    with pytest.raises(LayerError, match=r"layer 1 \(Conv\): kernel_size is k: enumeration needs numbers"):
        enumerate_network(R.Sequential(R.ReLU(), R.Conv(k)), 8)
    with pytest.raises(LayerError, match="input_size is n"):
        enumerate_network(R.Conv(3), R.symbols("n"))
    with pytest.raises(LayerError, match=r"layer 0 \(Conv\): padding='tf_same' depends on the input size"):
        enumerate_network(R.Conv(3, padding="tf_same"))


def test_registry_accepts_new_layers():
    """A layer class registered with ``register_index_map`` is enumerated through its own map,
    and a block rule unites its branches."""

    class Shift(R.Elementwise):
        pass

    class Twice(R.Elementwise):
        pass

    register_index_map(Shift)(lambda layer, sizes, ndim: Leaf((Sliding(1, -2, 1),) * ndim, sizes))
    class Uneven(R.Elementwise):
        pass

    register_index_map(Twice)(lambda layer, sizes, ndim: Branches(
        (R.Conv(3, padding=1), R.Conv(3, dilation=3, padding=3)), "Add"))
    register_index_map(Uneven)(lambda layer, sizes, ndim: Branches((R.Conv(3), R.Conv(3, dilation=3)), "Add"))
    e = enumerate_network(R.Sequential(Shift(), R.Conv(3)), 8, ndim=1)
    assert (e.start, e.rf) == (2, 3)
    e = enumerate_network(Twice(), 9, ndim=1, keep_sets=True)
    assert [layer.type for layer in e.layers] == ["Conv", "Conv", "Add"]
    assert e.layers[-1].positions(0).tolist() == [-3, -1, 0, 1, 3]
    with pytest.raises(RfsymError, match=r"layer 0 \(Uneven\): branches give different output sizes"):
        enumerate_network(Uneven(), 10, ndim=1)


def test_unknown_layer_is_named():
    """A layer class without an index map is refused with its position and name."""

    class Mystery(R.Layer):
        pass

    with pytest.raises(LayerError, match=r"layer 1 \(Mystery\): the enumerator does not know"):
        enumerate_network(R.Sequential(R.ReLU(), Mystery()), 8)


# --------------------------------------------------------------------------- naive reference
def _naive_chain(layers):
    """Per layer (k, s, d, pl): the taps of one output, by the definition, in pure Python."""
    return [(int(L.kernel_size), int(L.stride), int(getattr(L, "dilation", 1)), int(L.padding))
            for L in layers]


def _naive_set(chain, level, o):
    if level < 0:
        return {o}
    k, s, d, p = chain[level]
    out = set()
    for t in range(k):
        out |= _naive_set(chain, level - 1, o * s - p + t * d)
    return out


def _naive_counts(chain, sizes, level, o, real):
    """Paths from output ``o`` of ``level`` to the input, through real positions if ``real``."""
    if level < 0:
        return Counter({o: 1})
    k, s, d, p = chain[level]
    out = Counter()
    for t in range(k):
        q = o * s - p + t * d
        if real and not 0 <= q < sizes[level]:
            continue
        out.update(_naive_counts(chain, sizes, level - 1, q, real))
    return out


@st.composite
def small_chains(draw):
    layers = []
    for _ in range(draw(st.integers(1, 4))):
        k = draw(st.integers(1, 4))
        if draw(st.booleans()):
            layers.append(R.Conv(k, stride=draw(st.integers(1, 3)), padding=draw(st.integers(0, 2)),
                                 dilation=draw(st.integers(1, 3))))
        else:
            layers.append(R.MaxPool(k, stride=draw(st.integers(1, 3)), padding=draw(st.integers(0, k // 2)),
                                    dilation=draw(st.integers(1, 2))))
    return R.Sequential(*layers), draw(st.integers(12, 40))


@settings(max_examples=max(20, settings.default.max_examples // 5))
@given(small_chains())
def test_vectorised_enumeration_equals_naive_recursion(case):
    """On random 1-D chains, the vectorised dependency sets, masks and path counts equal a naive
    recursion over the index-map definition, for every enumerated output of every layer."""
    net, n = case
    try:
        e = enumerate_network(net, n, ndim=1, keep_sets=True)
    except SizeError:
        return
    chain = _naive_chain(net.layers)
    sizes = [n] + [layer.out_size for layer in e.layers]
    for level, layer in enumerate(e.layers):
        for o in range(len(layer.per_axis[0].lo)):
            assert layer.positions(o).tolist() == sorted(_naive_set(chain, level, o)), (level, o)
        for o in sorted({0, layer.out_size // 2, layer.out_size - 1}):
            for real in (True, False):
                want = _naive_counts(chain, sizes, level, o, real)
                got = dependency_mask(net, n, o, layer=level, counts=True, through_padding=not real, ndim=1)
                assert {i: int(c) for i, c in enumerate(got) if c} == {i: c for i, c in want.items()
                                                                       if 0 <= i < n}, (level, o, real)


def test_graph_limitations():
    """A dilated convolution over a transposed convolution whose dilation exceeds its stride
    reads every other phase of an interleaved (non-monotone) map; the enumerated set is
    {-2, -1} (rf 2), and the engine, which tracks a dilated layer's holes (AxisMap.step), agrees."""
    net = R.Sequential(R.ConvTranspose(2, stride=2, dilation=3), R.Conv(2, dilation=2, padding="same"))
    assert dependency_set(net, 4, 0, ndim=1).tolist() == [-2, -1]
    assert R.verify(net, 4, ndim=1).ok


def _imports(module):
    import ast
    import inspect

    imported = set()
    for node in ast.walk(ast.parse(inspect.getsource(module))):
        if isinstance(node, ast.Import):
            imported |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = "." * node.level + (node.module or "")
            imported |= {base + a.name for a in node.names} if node.module is None else {base}
    return imported


def test_enumerator_is_independent_of_the_engine():
    """The enumerator imports neither sympy nor the engine, its interval maps or its arithmetic
    backends: a wrong formula there cannot leak into the check. It reuses the lowering of a
    network to its DAG (rfsym.dag), which is pure data: it imports no rule, map or backend.
    (rfsym.lazy_numpy is numpy itself, imported on first use.)"""
    import rfsym.dag as D
    import rfsym.enumeration as E

    assert _imports(E) <= {"__future__", "math", "numbers", "collections.abc", "dataclasses", "fractions",
                           "typing", "numpy", ".lazy_numpy", ".layers", ".dag", ".errors"}, _imports(E)
    assert _imports(D) <= {"__future__", "dataclasses", "typing", "sympy", ".layers", ".errors"}, _imports(D)


# --------------------------------------------------------------------------- DAG nodes and new layers
def test_new_layer_index_maps_by_hand():
    """The index maps of Pad, PixelShuffle/Unshuffle, Attention (global and shifted windows,
    clipped to the real input as Swin's mask does) and strict norms, read off dependency sets."""
    pad = R.Sequential(R.Pad(((2, 1),)), R.Conv(3))
    assert dependency_set(pad, 6, 0, ndim=1).tolist() == [-2, -1, 0]
    assert enumerate_network(pad, 6, ndim=1).out_size == 7  # 6 + 2 + 1 - 2
    shuffle = R.PixelShuffle(2)
    assert [dependency_set(shuffle, 4, o, ndim=1).tolist() for o in range(4)] == [[0], [0], [1], [1]]
    unshuffle = R.PixelUnshuffle(3)
    assert dependency_set(unshuffle, 9, 1, ndim=1).tolist() == [3, 4, 5]
    assert enumerate_network(unshuffle, 9, ndim=1).out_size == 3
    with pytest.raises(LayerError, match="space to depth by 3 needs sizes divisible by 3, got 8"):
        enumerate_network(unshuffle, 8, ndim=1)
    window = R.Attention(window=3, shift=1)  # windows [-2, 0], [1, 3], [4, 6], [7, 9] clipped to 0..8
    assert [dependency_set(window, 9, o, ndim=1).tolist() for o in (0, 1, 3, 4, 8)] == [
        [0], [1, 2, 3], [1, 2, 3], [4, 5, 6], [7, 8]]
    assert dependency_set(R.Attention(window=16), 9, 5, ndim=1).tolist() == list(range(9))  # global
    glob = enumerate_network(R.Attention(), 9, ndim=1)
    assert (glob.rf, glob.jump, glob.start) == (9, 0, 0)
    norm = R.Norm(spatial=True, kind="GroupNorm")
    assert enumerate_network(norm, 9, ndim=1).rf == 1
    assert enumerate_network(norm, 9, ndim=1, strict=True).rf == 9
    assert enumerate_network(R.Norm(), 9, ndim=1, strict=True).rf == 1  # not spatial: position-wise
    for layer in (R.Pointwise(out_channels=2, params=5), R.Params(7), R.Norm(4)):
        assert enumerate_network(layer, 9, ndim=1).rf == 1
    with pytest.raises(LayerError, match="Attention reads the whole input: enumeration needs the input size"):
        enumerate_network(R.Attention())


def test_fan_out_fan_in_sets_and_outputs():
    """A node read by two merges: each merge unites its inputs' sets; several outputs are
    enumerated each under its own name; masks follow every path (counts add)."""
    g = R.Graph(("a", R.Conv(3, padding=1), "input"), ("b", R.Conv(3, dilation=3, padding=3), "a"),
                ("m1", "add", ("a", "b")), ("c", R.Conv(1, stride=2), "m1"), ("m2", "concat", ("a", "m1")),
                outputs=("m2", "c"))
    e = enumerate_network(g, 12, ndim=1, keep_sets=True)
    assert [layer.name for layer in e.layers] == ["a", "b", "m1", "c", "m2"]
    assert e.layer("m1").positions(0).tolist() == [-4, -3, -2, -1, 0, 1, 2, 3, 4]
    assert list(e.outputs) == ["m2", "c"]
    assert (e.outputs["c"].jump, e.outputs["c"].out_size, e.rf) == (2, 6, 9)
    counts = dependency_mask(g, 12, 5, layer="m1", counts=True, ndim=1)
    # m1[5] = a[5] + b[5]; a[5] reads 4, 5, 6; b[5] reads a[2], a[5], a[8], which read 1 .. 9
    assert counts.tolist() == [0, 1, 1, 1, 2, 2, 2, 1, 1, 1, 0, 0]
    assert R.verify(g, 12, ndim=1).ok


def test_broadcast_gate_reads_one_position():
    """A squeeze-and-excitation gate: the pooled gate (size 1) is broadcast, so every output of
    the product reads the gate's one position, i.e. the whole input; engine and enumeration agree
    when nothing reads the product's padding."""
    se = R.Graph(("c", R.Conv(3, padding=1), "input"), ("pool", R.GlobalAvgPool(), "c"),
                 ("fc", R.Conv(1), "pool"), ("gate", R.Sigmoid(), "fc"), ("x", "mul", ("c", "gate")),
                 ("proj", R.Conv(1), "x"))
    e = enumerate_network(se, (8, 6), keep_sets=True)
    assert e.layer("x").positions(3, axis=1).tolist() == list(range(-1, 7))
    assert dependency_mask(se, (8, 6), (2, 2)).all()
    assert R.verify(se, (8, 6)).ok
    with pytest.raises(R.GraphError, match=r"Add 'm': inputs must have the same output size to merge: "
                                           r"node 'input' gives \(8,\), node 's' gives \(4,\)"):
        enumerate_network(R.Graph(("s", R.Conv(1, stride=2), "input"), ("m", "add", ("input", "s"))), 8, ndim=1)


def test_engine_broadcast_merge_then_padded_conv():
    """A squeeze-excitation-like product of a local path with a size-1 global branch is taken as
    global (jump 0, one interval for every output): exact on the product's real outputs. A padded
    conv after it reads the product's padding position -1, whose true field is the hull of the
    gate's [-1, 8] and the local branch's extension [-2, 0]: output 0 reads [-2, 8], output 7
    [-1, 9], the others [-1, 8], which no interval map with a jump describes. The engine gives the
    global map's [-1, 8] and flags the result as not exact (Result.exact False)."""
    gate = [("c", R.Conv(3, padding=1), "input"), ("g", R.GlobalAvgPool(), "c"), ("m", "mul", ("c", "g"))]
    report = R.verify(R.Graph(*gate, ("d", R.Conv(3, padding=1), "m")), 8, ndim=1)
    assert not report.ok and report.result.exact is False
    e = report.enumeration.layers[-1]
    assert (e.rf, e.rf_min, e.start, e.jump) == (11, 10, -2, None)
    # what reads only the product's real positions stays exact, and is flagged so
    for tail in ([], [("d", R.Conv(1), "m")], [("d", R.ReLU(), "m"), ("e", R.Conv(1, out_channels=4), "d")]):
        report = R.verify(R.Graph(*gate, *tail), 8, ndim=1)
        assert report.ok and report.result.exact is True, (tail, str(report))
    # a second global merge whose global field does not cover its local branch: flagged too
    report = R.verify(R.Graph(*gate, ("d", R.Conv(3, padding=1), "c"), ("e", "add", ("m", "d"))), 8, ndim=1)
    assert not report.ok and report.result.exact is False
    # a global body (squeeze-and-excitation) added to the identity: the same at the border
    from rfsym.zoo.blocks import SqueezeExcitation
    se = R.Sequential(R.Conv(3, padding=1, in_channels=4), R.Residual(SqueezeExcitation(squeeze_channels=2)))
    assert R.verify(se, 8, ndim=1).ok and R.analyze(se, 8, ndim=1).exact is True
    report = R.verify(R.Sequential(se, R.Conv(3, padding=1)), 8, ndim=1)
    assert report.result.exact is False


def test_engine_global_token_mixing():
    # every output of a global attention reads the same n positions (jump 0, rf n)
    assert R.verify(R.Sequential(R.Attention(), R.Conv(3, padding=1)), 8, ndim=1).ok  # engine rf 24


@pytest.mark.parametrize("window, shift, n", [(3, 1, 9), (3, 2, 9), (4, 2, 13), (3, 0, 10), (7, 3, 28),
                                              (5, 4, 7), (2, 1, 2)])
def test_engine_shifted_window_attention(window, shift, n):
    """Swin's shifted windows are clipped to the feature map (the first window is 0 .. shift - 1,
    the last ends at n - 1): the engine's period-n map agrees with enumeration, alone and between
    convolutions (what a later layer reads of the attention's padding included)."""
    att = R.Attention(window=window, shift=shift)
    assert R.verify(att, n, ndim=1, positions="all").ok
    assert R.verify(R.Sequential(R.Conv(3, padding=1), att, R.Conv(3, padding=1), att), n, ndim=1,
                    positions="all").ok
    r = R.analyze(att, n, ndim=1)
    assert r.start == 0 and r.rf <= window  # no window reaches outside 0 .. n - 1


def test_engine_shifted_window_attention_2d_and_blocks():
    """Per-axis windows and shifts; a Swin block pattern (windows, then shifted windows, each in
    a residual) and a patch merging (space to depth) between two stages."""
    assert R.verify(R.Attention(window=(3, 4), shift=(1, 2)), (9, 10)).ok
    block = R.Sequential(R.Residual(R.Attention(window=3)), R.Residual(R.Attention(window=3, shift=1)))
    net = R.Sequential(R.Conv(2, stride=2), block, R.PixelUnshuffle(2), block)
    assert R.verify(net, 24, ndim=1, positions="all").ok
    assert R.analyze(net, 24, ndim=1).start == 0  # no window reaches outside the feature map


def test_grid_attention_index_map_by_hand():
    """MaxViT's grid attention, grid g: output o reads o mod (n/g) + t·(n/g), t = 0 .. g - 1."""
    grid = R.Attention(grid=3)
    assert [dependency_set(grid, 12, o, ndim=1).tolist() for o in (0, 1, 5, 11)] == [
        [0, 4, 8], [1, 5, 9], [1, 5, 9], [3, 7, 11]]
    e = enumerate_network(grid, 12, ndim=1)
    assert (e.rf, e.rf_min, e.start) == (9, 9, 0)  # n - n/g + 1
    assert dependency_set(R.Attention(grid=12), 12, 4, ndim=1).tolist() == list(range(12))  # cells of 1
    r = R.analyze(grid, 12, ndim=1, in_channels=4)
    assert (r.rf, r.start, r.macs) == (9, 0, 12 * 3 * (4 + 4))  # each query attends its 3 positions
    with pytest.raises(LayerError, match="grid=5 needs sizes divisible by 5, got 12"):
        enumerate_network(R.Attention(grid=5), 12, ndim=1)
    with pytest.raises(LayerError, match="grid=5 needs sizes divisible by 5, got 12"):
        R.analyze(R.Attention(grid=5), 12, ndim=1)


@pytest.mark.parametrize("net", [
    R.Attention(grid=3),
    R.Sequential(R.Conv(3, padding=1), R.Attention(grid=4), R.Conv(3, padding=1)),
    R.Residual(R.Attention(grid=3)),
    # a MaxViT block: windows, then the grid, each in a residual
    R.Sequential(R.Residual(R.Attention(window=3)), R.Residual(R.Attention(grid=4)), R.Conv(3, stride=2, padding=1)),
], ids=["grid", "between convs", "residual", "maxvit block"])
def test_engine_grid_attention(net):
    assert R.verify(net, 12, ndim=1, positions="all").ok
    assert R.verify(net, (12, 12), positions="all").ok


def test_engine_attention_with_queries_of_its_own():
    """LeViT's attention downsampling: keys and values on the full grid, queries from a stride-2
    subsample; the output is on the queries' grid and reads every position of the source."""
    g = R.Graph(("conv", R.Conv(3, padding=1, out_channels=8), "input"),
                ("kv", R.Conv(1, out_channels=16), "conv"),
                ("sub", R.AvgPool(1, stride=2), "conv"),
                ("q", R.Conv(1, out_channels=4), "sub"),
                ("attn", R.Attention(embed_dim=4), ("kv", "q")),
                ("proj", R.Conv(1, out_channels=8), "attn"))
    for size in (14, 13, (14, 9)):
        assert R.verify(g, size, ndim=None if isinstance(size, tuple) else 1, positions="all").ok
    e = enumerate_network(g, 13, ndim=1, keep_sets=True)
    assert e.layer("attn").positions(3).tolist() == list(range(-1, 14))  # conv's padding included
    r = R.analyze(g, 14, ndim=1, in_channels=3)
    att = r.layer("attn")
    assert (att.out_size, att.jump, att.rf, att.out_channels) == (7, 0, 16, 16)
    assert att.macs == 7 * 14 * (4 + 16)  # 7 queries · 14 keys · (q·kᵀ over 4 + attention·v over 16)
    assert att.inputs == (1, 3)


def test_attention_partition_errors():
    with pytest.raises(LayerError, match="give window= or grid=, not both"):
        R.Attention(window=3, grid=2)
    with pytest.raises(LayerError, match="shift= applies to windows, not to grid attention"):
        R.Attention(grid=2, shift=1)
    with pytest.raises(LayerError, match="shifted windows .shift 1. are clipped to the feature map"):
        R.analyze(R.Attention(window=3, shift=1), ndim=1)
    with pytest.raises(LayerError, match="grid attention needs the input size as a number"):
        R.analyze(R.Attention(grid=3), ndim=1)
    g = R.Graph(("q", R.AvgPool(1, stride=2), "input"), ("a", R.Attention(window=2), ("input", "q")))
    for run in (lambda: R.analyze(g, 8, ndim=1), lambda: enumerate_network(g, 8, ndim=1)):
        with pytest.raises(LayerError, match="queries of its own .two inputs. attends every position"):
            run()
    with pytest.raises(R.GraphError, match="a layer reads exactly one input .an Attention one or two"):
        R.Graph(("a", R.Conv(1), ("input", "input")))


def test_engine_grid_holes_kept_through_grids():
    """A grid reads every (n/g)-th position: its holes survive a second grid (the composite reads
    o mod 4 and o mod 4 + 4 only, not the positions in between)."""
    for depth in (2, 3):
        net = R.Sequential(*[R.Attention(grid=2)] * depth)
        assert R.verify(net, 8, ndim=1, positions="all").ok
        assert R.analyze(net, 8, ndim=1).rf == 5


@pytest.mark.xfail(strict=True, reason="engine: a grid's holes are lost once a layer reads neighbouring "
                                        "positions (PixelUnshuffle: o mod 4, o mod 4 + 1, + 4, + 5 as one "
                                        "interval), so a position-dependent map below reads the positions "
                                        "in between: rf 8 instead of 6")
def test_engine_grid_holes_partly_filled():
    net = R.Sequential(R.Attention(grid=2), R.Attention(grid=2), R.PixelUnshuffle(2))
    assert R.verify(net, 8, ndim=1, positions="all").ok


def test_enumeration_of_stacked_windows_stays_bounded():
    """Clipped windows repeat every n outputs (output o + n reads o's positions shifted by n): on
    a grid that repeats every b the output repeats every lcm(b, n), so a stack of shifted windows
    enumerates 2·lcm + 2 outputs, not 2·n^depth + 2."""
    swin = R.Sequential(*[R.Residual(R.Attention(window=3, shift=s)) for s in (0, 1, 0, 2, 0, 1)])
    assert R.verify(swin, 18, ndim=1, positions="all").ok
