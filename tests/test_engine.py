"""The derivation engine: per-axis rule, dimensions, padding modes, pooling, global layers,
sizes, channels, parameter and MAC counts, and the two numeric paths (``subs``, ``evaluate``).

Expected values are worked by hand in the comments (Araujo et al.'s recurrences, PyTorch's
output-size rules, the counting conventions of ``shared/REFERENCE.md``) or cite a published table.
"""

import numpy as np
import pytest
import sympy as sp

from rfsym import (
    AdaptiveAvgPool,
    AvgPool,
    BatchNorm,
    Conv,
    Flatten,
    GlobalAvgPool,
    Linear,
    MaxPool,
    ReLU,
    Sequential,
    analyze,
    symbols,
)

k, s, n, p, d, C = symbols("k s n p d C")


def same(a, b):
    """Symbolic equality, proven: the difference simplifies to 0."""
    return sp.simplify(sp.sympify(a) - sp.sympify(b)) == 0


# --------------------------------------------------------------------------- per-axis rule
def test_isotropic_collapses_to_one_value():
    r = analyze(Sequential(Conv(3, stride=2, padding=1), Conv(5)), input_size=32)
    # r = 3 + (5 - 1)·2 = 11, j = 2, u = -1, out: 32 -> 16 -> 12
    assert (r.rf, r.jump, r.start, r.out_size) == (11, 2, -1, 12)
    assert r.axes("rf") == (11, 11) and r.axes("out_size") == (12, 12)
    assert r.axes("start") == (-1, -1) and r.axes("jump") == (2, 2)


def test_anisotropic_2d_gives_tuples():
    # axis 0: k = 3, s = 1, p = (1, 1); axis 1: k = 5, s = 2, p = (2, 2)
    r = analyze(Conv((3, 5), stride=(1, 2), padding=((1, 1), (2, 2))), input_size=(10, 11))
    assert r.rf == (3, 5)
    assert r.jump == (1, 2)
    assert r.start == (-1, -2)
    assert r.effective_padding == (1, 2)
    assert r.center == 0  # both axes centre output 0 on input 0: one value
    assert r.axes("center") == (0, 0)
    # out: floor((10 + 2 - 3)/1) + 1 = 10, floor((11 + 4 - 5)/2) + 1 = 6
    assert r.out_size == (10, 6)
    assert r.axes("rf") == (3, 5)


def test_axes_mixed_per_layer():
    """The rule applies to each quantity separately and to every layer's result."""
    r = analyze(Sequential(Conv((1, 3)), Conv((3, 1))), input_size=(8, 8))
    first, second = r.layers
    assert first.rf == (1, 3) and first.out_size == (8, 6)
    assert second.rf == 3 and second.out_size == 6  # both axes agree again
    assert second.axes("rf") == (3, 3)


def test_asymmetric_padding_pairs():
    # left 0, right 2: the start does not move, the size grows by 2
    r = analyze(Conv(3, padding=((0, 2), (2, 0))), input_size=8)
    assert r.start == (0, -2)
    assert r.out_size == 8
    assert r.center == (1, -1)


def test_one_dimensional():
    r = analyze(Sequential(Conv(3, stride=2), Conv(3)), input_size=(20,))
    # r = 3 + 2·2 = 7, j = 2; out 20 -> 9 -> 7
    assert r.ndim == 1
    assert (r.rf, r.jump, r.out_size) == (7, 2, 7)
    assert r.axes("rf") == (7,)
    one = analyze(Sequential(Conv(3, stride=2), Conv(3)), ndim=1)
    assert one.axes("rf") == (7,) and one.out_size is None
    # parameters use Πk over one axis
    assert analyze(Conv(5, in_channels=2, out_channels=3), ndim=1).params == 2 * 3 * 5 + 3


def test_three_dimensional_anisotropic():
    net = Sequential(Conv((1, 3, 3), padding=(0, 1, 1), in_channels=3, out_channels=8),
                     MaxPool((1, 2, 2)), Conv((3, 3, 3), stride=(1, 2, 2), out_channels=8, bias=False))
    r = analyze(net, input_size=(16, 32, 32))
    assert r.ndim == 3
    # time axis: 1, 1, 1 + 2·1 = 3; space: 3, 3 + 1 = 4, 4 + 2·2 = 8
    assert r.rf == (3, 8, 8)
    assert r.jump == (1, 4, 4)
    # time: 16 -> 16 -> 16 -> 14; space: 32 -> 32 -> 16 -> floor(13/2) + 1 = 7
    assert r.out_size == (14, 7, 7)
    assert r.layers[0].params == 3 * 8 * 9 + 8
    assert r.layers[2].params == 8 * 8 * 27
    # MACs: out positions · c_out · c_in · Πk
    assert r.layers[2].macs == 14 * 7 * 7 * 8 * 8 * 27
    assert r.layers[0].macs == 16 * 32 * 32 * 8 * 3 * 9


def test_ndim_from_input_size_tuple_and_argument():
    assert analyze(Conv(3), input_size=(9, 9, 9)).ndim == 3
    assert analyze(Conv(3), ndim=3).axes("rf") == (3, 3, 3)
    assert analyze(Conv(3)).ndim == 2  # the default


# --------------------------------------------------------------------------- padding modes
def test_valid_is_zero_padding():
    a = analyze(Conv(3, padding="valid"), input_size=n)
    b = analyze(Conv(3, padding=0), input_size=n)
    assert (a.start, a.out_size) == (b.start, b.out_size) == (0, n - 2)
    assert analyze(Conv(3, padding="VALID"), input_size=7).out_size == 5  # TensorFlow spelling


@pytest.mark.parametrize(("kernel", "dilation", "left"), [(3, 1, 1), (4, 1, 1), (5, 1, 2), (3, 2, 2), (4, 2, 3)])
def test_pytorch_same(kernel, dilation, left):
    """PyTorch 'same': total d(k - 1), left total // 2, the rest right; out = n."""
    r = analyze(Conv(kernel, dilation=dilation, padding="same"), input_size=n)
    assert r.out_size == n
    assert r.start == -left
    assert r.rf == dilation * (kernel - 1) + 1
    # worked: k = 4 -> total 3, left 1, right 2; k = 4, d = 2 -> total 6, left 3


def test_tensorflow_same_output_size_is_ceil():
    r = analyze(Conv(3, stride=2, padding="tf_same"), input_size=n)
    assert same(r.out_size, sp.ceiling(n / 2))
    for size in (7, 8, 224, 225):
        assert r.subs({n: size}).out_size == -(-size // 2)


def test_tensorflow_same_padding_depends_on_input_size():
    """Total padding max((ceil(n/s) - 1)s + κ - n, 0), left = total // 2.

    3×3, stride 2: n = 224 -> out 112, total = 111·2 + 3 - 224 = 1, left 0;
                   n = 225 -> out 113, total = 112·2 + 3 - 225 = 2, left 1.
    """
    r = analyze(Conv(3, stride=2, padding="tf_same"), input_size=n)
    assert r.subs({n: 224}).effective_padding == 0
    assert r.subs({n: 225}).effective_padding == 1
    assert analyze(Conv(3, stride=2, padding="SAME"), input_size=225).start == -1  # alias


# inception_v2's stem in TF-Slim: Conv2d_1a_7x7 (7×7/2 SAME), MaxPool_2a_3x3 (3×3/2 SAME),
# Conv2d_2b_1x1, Conv2d_2c_3x3 (3×3/1 SAME), MaxPool_3a_3x3 (3×3/2 SAME).
INCEPTION_V2_STEM = Sequential(
    Conv(7, stride=2, padding="tf_same", name="Conv2d_1a_7x7"),
    MaxPool(3, stride=2, padding="tf_same", name="MaxPool_2a_3x3"),
    Conv(1, padding="tf_same", name="Conv2d_2b_1x1"),
    Conv(3, padding="tf_same", name="Conv2d_2c_3x3"),
    MaxPool(3, stride=2, padding="tf_same", name="MaxPool_3a_3x3"),
)


@pytest.mark.parametrize(("size", "padding"), [(224, [2, 2, 2, 6, 6]), (321, [3, 5, 5, 9, 13])])
def test_araujo_effective_padding_depends_on_input_size(size, padding):
    """Araujo et al.'s observation with TensorFlow SAME padding: the effective padding depends on
    the input resolution. Published values (RF, effective stride, effective padding) for
    inception_v2 at 224 and 321: google-research/receptive_field,
    receptive_field/RECEPTIVE_FIELD_TABLE.md. Worked at 321: 7×7/2 on 321 -> out 161,
    total 160·2 + 7 - 321 = 6, left 3; 3×3/2 on 161 -> out 81, total 2, left 1, u = -3 - 1·2 = -5;
    3×3/1 on 81: left 1, u = -5 - 1·4 = -9; 3×3/2 on 81 -> out 41, total 2, left 1, u = -9 - 4 = -13.
    """
    r = analyze(INCEPTION_V2_STEM, input_size=size)
    assert [layer.rf for layer in r.layers] == [7, 11, 11, 19, 27]
    assert [layer.jump for layer in r.layers] == [2, 4, 4, 4, 8]
    assert [layer.effective_padding for layer in r.layers] == padding


def test_araujo_symbolic_input_size_covers_both():
    """One symbolic derivation gives both published rows after substitution."""
    r = analyze(INCEPTION_V2_STEM, input_size=n)
    assert r.rf == 27 and r.jump == 8
    assert r.subs({n: 224}).effective_padding == 6
    assert r.subs({n: 321}).effective_padding == 13


# --------------------------------------------------------------------------- pooling
def test_pool_stride_defaults_to_kernel():
    r = analyze(MaxPool(3), input_size=9)
    assert (r.rf, r.jump, r.out_size) == (3, 3, 3)


@pytest.mark.parametrize(("size", "kernel", "stride", "pad", "floor_out", "ceil_out"), [
    # floor((6 - 3)/2) + 1 = 2;  ceil(3/2) + 1 = 3, last window starts at 4 < 6: kept
    (6, 3, 2, 0, 2, 3),
    # floor((5 + 2 - 2)/2) + 1 = 3;  ceil(5/2) + 1 = 4, but the last window would start at
    # 3·2 - 1 = 5 = n (in the right padding): dropped (PyTorch's rule), so 3
    (5, 2, 2, 1, 3, 3),
    # floor((7 + 2 - 3)/2) + 1 = 4 = ceil(6/2) + 1: both agree
    (7, 3, 2, 1, 4, 4),
    # floor((10 - 3)/3) + 1 = 3;  ceil(7/3) + 1 = 4, last window starts at 9 < 10: kept
    (10, 3, 3, 0, 3, 4),
])
def test_ceil_mode(size, kernel, stride, pad, floor_out, ceil_out):
    floor_r = analyze(MaxPool(kernel, stride, padding=pad), input_size=size)
    ceil_r = analyze(MaxPool(kernel, stride, padding=pad, ceil_mode=True), input_size=size)
    assert floor_r.out_size == floor_out
    assert ceil_r.out_size == ceil_out
    # ceil_mode changes sizes only, never rf, jump or start
    assert (ceil_r.rf, ceil_r.jump, ceil_r.start) == (floor_r.rf, floor_r.jump, floor_r.start)


def test_ceil_mode_symbolic_matches_numbers():
    r = analyze(AvgPool(3, stride=2, padding=1, ceil_mode=True), input_size=n)
    for size in range(2, 30):
        c = -(-(size + 2 - 3) // 2) + 1
        expected = c - 1 if (c - 1) * 2 >= size + 1 else c
        assert r.subs({n: size}).out_size == expected
        assert analyze(AvgPool(3, stride=2, padding=1, ceil_mode=True), input_size=size).out_size == expected


def test_adaptive_pool_even():
    # 8 -> 4: windows [0, 2), [2, 4), ...: an ordinary pool of size 2, stride 2
    r = analyze(Sequential(Conv(3, padding=1), AdaptiveAvgPool(4)), input_size=8)
    assert (r.rf, r.rf_min, r.jump, r.start, r.period, r.out_size) == (4, 4, 2, -1, 1, 4)


def test_adaptive_pool_uneven_windows():
    """PyTorch: output i covers [floor(i·n/m), ceil((i + 1)·n/m)). For n = 8, m = 3:
    [0, 3), [2, 6), [5, 8): sizes 3, 4, 3, so rf depends on the output position."""
    r = analyze(AdaptiveAvgPool(3), input_size=8)
    assert r.out_size == 3
    assert (r.rf, r.rf_min) == (4, 3)
    assert [r.span(i)[0] for i in range(3)] == [(0, 2), (2, 5), (5, 7)]


def test_adaptive_pool_symbolic_divisible_size():
    m = symbols("m")
    r = analyze(AdaptiveAvgPool(2), input_size=2 * m)
    assert (r.rf, r.jump, r.out_size) == (m, m, 2)


def test_global_pool_sees_everything():
    r = analyze(Sequential(Conv(3, padding=1), Conv(3), GlobalAvgPool()), input_size=n)
    # conv1: rf 3 from -1; conv2 (no padding): rf 5 from -1, n - 2 positions;
    # the pool reads all of them: 5 + (n - 3)·1 = n + 2 positions from -1, i.e. [-1, n]
    assert same(r.rf, n + 2)
    assert r.start == -1
    assert r.out_size == 1
    assert r.subs({n: 10}).rf == 12


def test_linear_after_flatten_is_global():
    net = Sequential(Conv(3, padding=1, in_channels=2, out_channels=4), ReLU(), Flatten(), Linear(4 * 64, 10))
    r = analyze(net, input_size=8)
    # every output reads all 8 positions of the conv output, each with rf 3 from -1:
    # [-1, 8], i.e. the whole input plus the padding
    assert (r.start, r.rf) == (-1, 10)
    assert r.out_size == 1
    assert r.layers[-1].params == 256 * 10 + 10


# --------------------------------------------------------------------------- sizes
def test_symbolic_output_size():
    r = analyze(Conv(k, stride=s, padding=p, dilation=d), input_size=n)
    assert same(r.out_size, sp.floor((n + 2 * p - d * (k - 1) - 1) / s) + 1)
    assert r.subs({k: 3, s: 2, p: 1, d: 1, n: 224}).out_size == 112


def test_in_size_and_out_size_per_layer():
    r = analyze(Sequential(Conv(3, stride=2), MaxPool(2), Conv(1)), input_size=n)
    assert r.layers[0].in_size == n
    assert same(r.layers[0].out_size, sp.floor((n - 3) / 2) + 1)
    assert same(r.layers[1].in_size, r.layers[0].out_size)
    assert r.subs({n: 33}).layers[2].out_size == 8  # 33 -> 16 -> 8 -> 8


def test_no_input_size_means_no_sizes():
    r = analyze(Conv(3, in_channels=3, out_channels=4))
    assert r.out_size is None and r.macs is None and r.flops is None
    assert r.params == 3 * 4 * 9 + 4


# --------------------------------------------------------------------------- channels, params, MACs
def test_channels_are_inferred():
    net = Sequential(Conv(3, in_channels=3, out_channels=16), BatchNorm(), ReLU(), Conv(3, out_channels=32),
                     BatchNorm())
    r = analyze(net)
    assert [lr.in_channels for lr in r.layers] == [3, 16, 16, 16, 32]
    assert [lr.out_channels for lr in r.layers] == [16, 16, 16, 32, 32]
    assert [lr.params for lr in r.layers] == [3 * 16 * 9 + 16, 32, 0, 16 * 32 * 9 + 32, 64]
    assert r.params == sum(lr.params for lr in r.layers)
    # the input's channels may come from analyze instead of the first layer
    r2 = analyze(Sequential(Conv(3, out_channels=8)), in_channels=C)
    assert same(r2.params, 9 * 8 * C + 8)


def test_unknown_channels_give_no_params():
    r = analyze(Sequential(Conv(3, out_channels=8), Conv(3, out_channels=8)))
    assert r.layers[0].params is None and r.params is None
    assert r.layers[1].params == 8 * 8 * 9 + 8


def test_grouped_convolution_counts():
    # (c_in/groups)·c_out·Πk + c_out = 8·64·9 + 64; MACs = 16·16 positions · 64 · 8 · 9
    r = analyze(Conv(3, padding=1, groups=4, in_channels=32, out_channels=64), input_size=16)
    assert r.params == 8 * 64 * 9 + 64 == 4672
    assert r.macs == 16 * 16 * 64 * 8 * 9
    assert r.flops == 2 * r.macs


def test_depthwise_separable_counts_symbolically():
    # MobileNet's block: depthwise 3×3 (groups = C) then pointwise 1×1, no biases
    net = Sequential(Conv(3, padding=1, groups=C, in_channels=C, out_channels=C, bias=False),
                     BatchNorm(), ReLU(), Conv(1, out_channels=2 * C, bias=False), BatchNorm())
    r = analyze(net, input_size=n)
    dw, bn1, _, pw, bn2 = r.layers
    assert same(dw.params, 9 * C) and same(dw.macs, n**2 * C * 9)
    assert same(bn1.params, 2 * C) and bn1.macs == 0
    assert same(pw.params, 2 * C**2) and same(pw.macs, n**2 * 2 * C * C)
    assert same(bn2.params, 4 * C)
    assert same(r.params, 9 * C + 2 * C + 2 * C**2 + 4 * C)
    assert same(r.macs, 9 * C * n**2 + 2 * C**2 * n**2)
    assert same(r.flops, 2 * r.macs)


def test_linear_counts():
    r = analyze(Sequential(Flatten(), Linear(512, 10)), input_size=1, in_channels=512)
    assert (r.params, r.macs, r.flops) == (512 * 10 + 10, 5120, 10240)
    no_bias = analyze(Sequential(Flatten(), Linear(C, 10, bias=False)), input_size=1, in_channels=C)
    assert same(no_bias.params, 10 * C) and same(no_bias.macs, 10 * C)


def test_pools_and_activations_cost_nothing():
    r = analyze(Sequential(MaxPool(2), AvgPool(2), ReLU(), GlobalAvgPool()), input_size=16, in_channels=3)
    assert r.params == 0 and r.macs == 0 and r.flops == 0


def test_macs_with_symbolic_size_and_stride():
    r = analyze(Conv(3, stride=s, in_channels=C, out_channels=C, bias=False), input_size=n)
    positions = (sp.floor((n - 3) / s) + 1) ** 2
    assert same(r.macs, positions * C * C * 9)
    assert r.subs({n: 9, s: 2, C: 4}).macs == 16 * 4 * 4 * 9


# --------------------------------------------------------------------------- subs: exact integers
def test_subs_gives_exact_integers():
    net = Sequential(*[Conv(k, stride=s) for _ in range(100)])
    r = analyze(net)
    v = r.subs({k: 3, s: 2})
    assert isinstance(v.jump, sp.Integer) and isinstance(v.rf, sp.Integer)
    assert v.jump == 2**100  # beyond int64, exact
    assert v.rf == 1 + 2 * (2**100 - 1)  # 1 + Σ 2·2^i
    assert v.start == 0


def test_subs_partial_stays_symbolic():
    r = analyze(Sequential(Conv(k, stride=s), Conv(k, stride=s)), input_size=n)
    half = r.subs({s: 1})
    assert same(half.rf, 2 * k - 1)
    assert same(half.out_size, n - 2 * k + 2)
    assert half.subs({k: 3, n: 10}).out_size == 6


def test_subs_by_name_and_symbol_agree():
    r = analyze(Sequential(Conv(k, stride=s, padding=p)), input_size=n)
    a = r.subs({"k": 5, "s": 2, "p": 2, "n": 32})
    b = r.subs({k: 5, s: 2, p: 2, n: 32})
    assert (a.rf, a.jump, a.start, a.out_size) == (b.rf, b.jump, b.start, b.out_size) == (5, 2, -2, 16)


# --------------------------------------------------------------------------- evaluate: vectorised
EVAL_NET = Sequential(
    Conv(k, stride=s, padding=1, in_channels=3, out_channels=16), ReLU(),
    MaxPool(3, stride=2, ceil_mode=True),
    Conv(k, stride=s, dilation=2, padding="tf_same", out_channels=32), BatchNorm(),
    Conv(3, padding="same", out_channels=8),
    GlobalAvgPool(), Flatten(), Linear(8, 10),
)
QUANTITIES = ("rf", "rf_min", "jump", "start", "center", "out_size", "params", "macs", "flops")


def _agree(exact, array_value, i):
    """An exact sympy value equals element i of an evaluate() result (ints exactly, centres,
    which may be half-integers, as exact binary floats)."""
    v = array_value[i] if np.ndim(array_value) else array_value
    if isinstance(v, (float, np.floating)):
        return sp.Rational(exact) == sp.Rational(float(v))
    return int(exact) == int(v)


def test_evaluate_a_million_configurations_matches_subs():
    rng = np.random.default_rng(2026)
    size = 10**6
    ks = rng.integers(1, 8, size)
    ss = rng.integers(1, 4, size)
    ns = rng.integers(64, 513, size)
    r = analyze(EVAL_NET, input_size=n)
    e = r.evaluate({k: ks, s: ss, "n": ns})
    for q in ("rf", "jump", "start", "params", "macs", "flops"):
        value = getattr(e, q)
        assert isinstance(value, np.ndarray) and value.dtype == np.int64 and value.shape == (size,), q
    assert e.center.shape == (size,)
    # a sample, plus the extreme configurations
    sample = list(rng.choice(size, 12, replace=False))
    for extreme in (np.argmin(ks * 1000 + ns), np.argmax(ks * ss * 1000 + ns), np.argmin(ns), np.argmax(ss)):
        sample.append(int(extreme))
    for i in sample:
        exact = r.subs({k: int(ks[i]), s: int(ss[i]), n: int(ns[i])})
        for q in QUANTITIES:
            assert _agree(getattr(exact, q), getattr(e, q), i), (q, i)
        for layer in (0, 2, 3, 5):
            for q in ("rf", "jump", "start", "out_size", "params", "macs"):
                assert _agree(getattr(exact.layers[layer], q), getattr(e.layers[layer], q), i), (layer, q, i)


def test_evaluate_scalars_and_broadcasting():
    r = analyze(Sequential(Conv(k, stride=s)), input_size=n)
    one = r.evaluate({k: 3, s: 2, n: 11})
    assert (one.rf, one.jump, one.out_size) == (3, 2, 5)
    grid = r.evaluate({k: np.array([[3], [5]]), s: np.array([1, 2, 3]), n: 11})
    assert grid.out_size.shape == (2, 3)
    assert grid.out_size.tolist() == [[9, 5, 3], [7, 4, 3]]


def test_evaluate_accepts_integral_floats_and_names():
    r = analyze(Sequential(Conv(k, stride=s)), input_size=n)
    a = r.evaluate({"k": [3.0, 5.0], "s": 2, "n": np.array([11, 12], dtype=np.int32)})
    assert a.out_size.tolist() == [5, 4]
    assert a.out_size.dtype == np.int64


@pytest.mark.parametrize("net", [
    Sequential(Conv(3, stride=2), Conv(3, stride=2), MaxPool(2)),
    Sequential(Conv(5, stride=3, padding=2), MaxPool(3, stride=2, padding=1), Conv(1, stride=2)),
    Sequential(Conv(3, stride=2, padding="tf_same"), Conv(3, stride=2, padding="tf_same"), Conv(2, stride=3)),
    Sequential(Conv(7, stride=2, padding=3), MaxPool(3, stride=2, padding=1), *[Conv(3, stride=2, padding=1)] * 4),
], ids=["two-strided", "pool-in-between", "tf_same", "resnet-like"])
def test_symbolic_output_size_of_a_chain_matches_numbers(net):
    """The symbolic out_size of a chain (nested floors merged into one) equals the size derived
    with each number, for every input size large enough."""
    r = analyze(net, input_size=n)
    for size in range(40, 140):
        assert r.out_size.subs(n, size) == analyze(net, input_size=size).out_size, size


def test_layers_passing_their_input_through_keep_its_values_and_a_rule_of_their_own_runs():
    """Identity, activations and dropout are recorded with their input's sizes, channels and
    field (no rule run after the first of a class); a subclass with a rule of its own runs it."""
    import dataclasses

    from rfsym import Dropout, Identity
    from rfsym.layers import Elementwise
    from rfsym.maps import AxisMap
    from rfsym.rules import LeafOut, State, register_layer

    net = Sequential(Conv(3, stride=2, in_channels=3, out_channels=8), ReLU(), Identity(), Dropout(), ReLU(),
                     Conv(3, padding=1), Identity())
    for size in (17, n):
        r = analyze(net, input_size=size)
        for a, b in zip(r.layers[1:5], r.layers[:4]):
            assert (a.rf, a.jump, a.start, a.out_size, a.out_channels, a.params, a.macs) == \
                (b.rf, b.jump, b.start, b.out_size, b.out_channels, 0, 0)
        assert r.layers[6].rf == r.layers[5].rf == 7

    @dataclasses.dataclass(frozen=True, repr=False)
    class Widen(Elementwise):
        """An elementwise layer whose own rule reads one more position on each side."""

    @register_layer(Widen)
    def _widen(layer, state, ctx):
        return LeafOut((AxisMap.affine(-1, 1, 3),) * ctx.ndim, State(state.sizes, state.channels))

    r = analyze(Sequential(Conv(3), ReLU(), Widen(), Widen(), ReLU()), input_size=17)
    assert [x.rf for x in r.layers] == [3, 3, 5, 7, 7]
