"""Upsample by a size or a non-integer scale factor: the engine against enumeration, and both
against PyTorch itself (the support of ``F.interpolate``'s input gradient, its output shapes).

PyTorch's CPU kernels compute the source positions in float32; rfsym replicates them at numeric
sizes (see :class:`rfsym.Upsample`), so every expected set here is read off torch's gradients,
never written by hand.
"""

import os
from dataclasses import replace
from fractions import Fraction

import numpy as np
import pytest
import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st

import rfsym
from rfsym import Conv, LayerError, MaxPool, Sequential, SizeError, Upsample, analyze, verify
from rfsym.enumeration import dependency_set, enumerate_network

os.environ.setdefault("KERAS_BACKEND", "torch")  # before Keras is imported (its gradients are torch's)
torch = pytest.importorskip("torch")
F = torch.nn.functional
torch.set_num_threads(1)

#: (rfsym mode, align_corners) -> (torch mode, align_corners keyword)
MODES = {("nearest", False): ("nearest", None), ("nearest-exact", False): ("nearest-exact", None),
         ("bilinear", False): ("linear", False), ("bilinear", True): ("linear", True)}


def _torch_sets(n, mode, corners, size=None, scale_factor=None):
    """Per output position of a 1-d ``F.interpolate``: the input positions with a nonzero
    gradient (the positions it reads), and the output size."""
    tmode, ac = MODES[(mode, corners)]
    x = torch.zeros(1, 1, n, requires_grad=True)
    kw = {} if ac is None else {"align_corners": ac}
    y = F.interpolate(x, size=size, scale_factor=scale_factor, mode=tmode, **kw)
    jac = torch.autograd.functional.jacobian(
        lambda t: F.interpolate(t, size=size, scale_factor=scale_factor, mode=tmode, **kw), x.detach())
    jac = jac.reshape(y.shape[-1], n).numpy()
    return [set(np.flatnonzero(row).tolist()) for row in jac], y.shape[-1]


def _rfsym_sets(layer, n):
    """rfsym's dependency sets of every output, cut to the real input ``0 .. n - 1`` (PyTorch clamps
    where rfsym, like padding, counts positions beyond the border)."""
    out = enumerate_network(layer, n, ndim=1).out_size
    sets = [set(dependency_set(layer, n, o, ndim=1).tolist()) & set(range(n)) for o in range(out)]
    return sets, out


SIZES = [(33, 65), (33, 520), (65, 520), (2, 6), (3, 9), (3, 15), (5, 7), (7, 5), (10, 3), (4, 4), (1, 5),
         (6, 1), (13, 26), (9, 31)]


@pytest.mark.parametrize("mode,corners", list(MODES))
@pytest.mark.parametrize("n,out", SIZES)
def test_size_matches_torch(n, out, mode, corners):
    layer = Upsample(size=out, mode=mode, align_corners=corners)
    want, tsize = _torch_sets(n, mode, corners, size=out)
    got, size = _rfsym_sets(layer, n)
    assert size == tsize == analyze(layer, input_size=n, ndim=1).out_size
    assert got == want
    # the engine's interval per output, cut to the input, is the hull of torch's positions
    r = analyze(layer, input_size=n, ndim=1)
    for o in range(out):
        lo, hi = r.span(o)[0]
        assert (max(int(lo), 0), min(int(hi), n - 1)) == (min(want[o]), max(want[o]))


FACTORS = [2.5, 1.5, 0.5, 0.7, 1.1, 3, 25, 2.2, 4.1, 1 / 3, 1.05]


@pytest.mark.parametrize("mode", ["nearest", "nearest-exact", "bilinear"])
@pytest.mark.parametrize("factor", FACTORS)
@pytest.mark.parametrize("n", [1, 3, 7, 10, 33])
def test_scale_factor_matches_torch(n, factor, mode):
    if int(n * factor) < 1:
        return  # torch refuses an empty output, as rfsym does (test_errors)
    layer = Upsample(factor, mode=mode)
    want, tsize = _torch_sets(n, mode, False, scale_factor=factor)
    got, size = _rfsym_sets(layer, n)
    assert size == tsize
    assert got == want


def test_torch_float32_not_exact_arithmetic():
    """PyTorch's float32 scale 1/3 > 1/3 puts a weight of ~1e-8 on a second input at output 1,
    where exact arithmetic lands on input 0 only: rfsym follows PyTorch at a numeric size and
    the exact periodic map at a symbolic one."""
    want, _ = _torch_sets(2, "bilinear", False, size=6)
    assert want[1] == {0, 1}
    assert _rfsym_sets(Upsample(size=6, mode="bilinear"), 2)[0][1] == {0, 1}
    r = analyze(Upsample(3, mode="bilinear"), ndim=1)  # symbolic size: x = (2o + 1 - 3)/6
    assert (r.rf, r.rf_min, r.period, r.jump) == (2, 1, 3, sp.Rational(1, 3))


@pytest.mark.parametrize("mode,corners", list(MODES))
def test_2d_sizes_match_torch(mode, corners):
    """Each axis samples on its own: the dependency mask of a 2-d output is the product of the
    axes' sets, against torch's 2-d gradient."""
    tmode, ac = MODES[(mode, corners)]
    tmode = "bilinear" if tmode == "linear" else tmode
    kw = {} if ac is None else {"align_corners": ac}
    layer = Upsample(size=(9, 7), mode=mode, align_corners=corners)
    for o in [(0, 0), (4, 3), (8, 6), (5, 1)]:
        x = torch.zeros(1, 1, 4, 5, requires_grad=True)
        y = F.interpolate(x, size=(9, 7), mode=tmode, **kw)
        g, = torch.autograd.grad(y[0, 0, o[0], o[1]], x)
        mask = rfsym.dependency_mask(layer, (4, 5), o)
        assert np.array_equal(mask, g[0, 0].numpy() != 0)


# --------------------------------------------------------------------------- engine vs enumeration
@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 40), out=st.integers(1, 90), mc=st.sampled_from(list(MODES)), after=st.booleans())
def test_size_engine_matches_enumeration(n, out, mc, after):
    mode, corners = mc
    up = Upsample(size=out, mode=mode, align_corners=corners)
    net = Sequential(Conv(3, padding=1), up, *([Conv(3, padding=1), MaxPool(2)] if after and out >= 2 else []))
    report = verify(net, n, ndim=1, positions="all")
    assert report.ok, str(report)


@settings(max_examples=60, deadline=None)
@given(n=st.integers(2, 40), num=st.integers(1, 12), den=st.integers(1, 6), mode=st.sampled_from(
    ["nearest", "nearest-exact", "bilinear"]), as_float=st.booleans())
def test_scale_factor_engine_matches_enumeration(n, num, den, mode, as_float):
    f = num / den if as_float else Fraction(num, den)
    if int(n * f) < 3:
        return
    net = Sequential(Conv(3, stride=2, padding=1), Upsample(f, mode=mode), Conv(3, padding=1))
    report = verify(net, 2 * n, ndim=1)  # the convolution gives n positions
    assert report.ok, str(report)


def test_period_and_jump():
    """scale = p/q in lowest terms: period q, jump p/q; the real-grid map otherwise."""
    r = analyze(Upsample(2.5), ndim=1)
    assert (r.rf, r.period, r.jump, r.start) == (1, 5, sp.Rational(2, 5), 0)
    r = analyze(Upsample(size=65, mode="bilinear"), input_size=33, ndim=1)
    assert (r.rf, r.rf_min, r.period, r.jump, r.start, r.out_size) == (2, 1, 65, sp.Rational(33, 65), -1, 65)
    r = analyze(Upsample(size=520, mode="bilinear"), input_size=65, ndim=1)  # an integer ratio: period 8
    assert (r.period, r.jump) == (8, sp.Rational(1, 8))
    n = sp.Symbol("n", integer=True, positive=True)
    assert analyze(Upsample(Fraction(5, 2)), input_size=n, ndim=1).out_size == sp.floor(5 * n / 2)
    assert analyze(Upsample(2.5), input_size=33, ndim=1).out_size == 82


def test_min_input_and_valid_sizes():
    s = rfsym.sizes(Sequential(Upsample(1.5), Conv(3)), ndim=1)
    assert s.min_input == 2 and s.modulus == 2  # floor(3n/2) exact for even n
    assert rfsym.sizes(Sequential(Upsample(size=8), Conv(3)), ndim=1).min_input == 1


# --------------------------------------------------------------------------- errors
@pytest.mark.parametrize("kw,param", [
    (dict(size=0), "size"), (dict(size=-3), "size"), (dict(size="big"), "size"), (dict(size=2.5), "size"),
    (dict(scale_factor=0), "scale_factor"), (dict(scale_factor=-1.5), "scale_factor"),
    (dict(scale_factor=float("nan")), "scale_factor"), (dict(scale_factor="2"), "scale_factor"),
    (dict(scale_factor=2, mode="bicubic"), "mode"), (dict(scale_factor=2, mode="area"), "mode"),
    (dict(scale_factor=2, size=4), "size"), (dict(), "scale_factor"),
    (dict(scale_factor=2, align_corners=1), "align_corners")])
def test_errors(kw, param):
    with pytest.raises(LayerError) as err:
        Upsample(**kw)
    assert err.value.param == param and param in str(err.value)


def test_errors_at_derivation():
    with pytest.raises(LayerError, match="size=8 depends on the input size") as err:
        analyze(Upsample(size=8))
    assert err.value.param == "size"
    with pytest.raises(SizeError, match="output size must be at least 1"):
        analyze(Upsample(0.5), input_size=1, ndim=1)
    with pytest.raises(LayerError, match="output phases"):
        analyze(Upsample(1 / 3), ndim=1)  # 0.3333333333333333 as a decimal: a huge period


# --------------------------------------------------------------------------- PyTorch import
class _Interp(torch.nn.Module):
    def __init__(self, **kw):
        super().__init__()
        self.conv, self.kw = torch.nn.Conv2d(2, 3, 3, padding=1), kw

    def forward(self, x):
        return F.interpolate(self.conv(x), **self.kw)


@pytest.mark.parametrize("kw,layer", [
    (dict(size=(65, 50), mode="bilinear"), Upsample(size=(65, 50), mode="bilinear")),
    (dict(size=65, mode="bilinear", align_corners=True), Upsample(size=65, mode="bilinear", align_corners=True)),
    (dict(scale_factor=2.5), Upsample(Fraction(5, 2))),
    (dict(scale_factor=(1.5, 2.0), mode="nearest-exact"), Upsample((1.5, 2), mode="nearest-exact")),
    (dict(scale_factor=1.7, recompute_scale_factor=True), Upsample(size=56)),
    (dict(size=33, mode="nearest"), None),  # a copy
])
def test_from_torch_interpolate(kw, layer):
    g = rfsym.from_torch(_Interp(**kw), (1, 2, 33, 33))
    r = analyze(g, input_size=(33, 33), in_channels=2)
    ups = [lr.layer for lr in r.layers if lr.type == "Upsample"]
    assert ups == ([] if layer is None else [layer.subs({})])
    y = _Interp(**kw)(torch.zeros(1, 2, 33, 33))
    assert tuple(int(v) for v in r.axes("out_size")) == tuple(y.shape[2:])


def test_from_torch_module_upsample_gradient():
    """nn.Upsample(size=...) in a network: rfsym's dependency mask of one output equals torch's
    input-gradient support (the positions PyTorch reads, clamped at the border)."""
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 1, 3, padding=1, bias=False),
                              torch.nn.Upsample(size=(23, 17), mode="bilinear"),
                              torch.nn.Conv2d(1, 1, 3, bias=False))
    torch.nn.init.constant_(net[0].weight, 1.0)
    torch.nn.init.constant_(net[2].weight, 1.0)
    g = rfsym.from_torch(net, (1, 1, 10, 9))
    for o in [(0, 0), (7, 5), (20, 14)]:
        x = torch.zeros(1, 1, 10, 9, requires_grad=True)
        grad, = torch.autograd.grad(net(x)[0, 0, o[0], o[1]], x)
        mask = rfsym.dependency_mask(g, (10, 9), o)
        assert np.array_equal(mask, grad[0, 0].numpy() != 0)


# --------------------------------------------------------------------------- ONNX import
def _onnx_resize(n, mode, ctm, rounding, scales=None, sizes=None):
    """A 1-channel 2-d Resize model (the last axis of size ``n``, the other 1) and its
    reference-runtime read sets on the last axis (a delta input per position)."""
    pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper
    from onnx.reference import ReferenceEvaluator

    inits, inputs = [], ["x", "", ""]
    if scales is not None:
        inits.append(numpy_helper.from_array(np.array([1, 1, 1, scales], np.float32), "sc"))
        inputs[2] = "sc"
    else:
        inits.append(numpy_helper.from_array(np.array([1, 1, 1, sizes], np.int64), "sz"))
        inputs.append("sz")
    node = helper.make_node("Resize", inputs, ["y"], mode=mode, coordinate_transformation_mode=ctm,
                            nearest_mode=rounding)
    shape = [1, 1, 1, n]
    graph = helper.make_graph([node], "m", [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    ev = ReferenceEvaluator(model)
    cols = [ev.run(None, {"x": np.eye(n, dtype=np.float32)[i].reshape(shape)})[0][0, 0, 0] for i in range(n)]
    reads = np.stack(cols)  # (input, output)
    return model, [set(np.flatnonzero(reads[:, o]).tolist()) for o in range(reads.shape[1])]


@pytest.mark.parametrize("mode,ctm,rounding,kind", [
    ("nearest", "asymmetric", "floor", "nearest"), ("nearest", "half_pixel", "round_prefer_ceil", "nearest-exact"),
    ("linear", "half_pixel", "floor", "bilinear"), ("linear", "align_corners", "floor", "bilinear")])
@pytest.mark.parametrize("n,target", [(5, 7), (7, 5), (33, 65), (3, 8)])
def test_from_onnx_resize_to_sizes(n, target, mode, ctm, rounding, kind):
    model, want = _onnx_resize(n, mode, ctm, rounding, sizes=target)
    g = rfsym.from_onnx(model)
    up = [replace(lr.layer, name=None) for lr in analyze(g, input_size=(1, n), in_channels=1).layers
          if lr.type == "Upsample"]
    assert up == [Upsample(size=(1, target), mode=kind, align_corners=ctm == "align_corners")]
    got = [set(dependency_set(g, (1, n), o, axis=1).tolist()) & set(range(n)) for o in range(target)]
    assert len(want) == target
    assert got == want


@pytest.mark.parametrize("mode,ctm,rounding", [("nearest", "asymmetric", "floor"),
                                               ("nearest", "half_pixel", "round_prefer_ceil"),
                                               ("linear", "half_pixel", "floor")])
@pytest.mark.parametrize("scale", [2.5, 1.5, 0.5, 0.75])
def test_from_onnx_resize_by_fractional_scales(scale, mode, ctm, rounding):
    n = 12
    model, want = _onnx_resize(n, mode, ctm, rounding, scales=scale)
    g = rfsym.from_onnx(model)
    (up,) = [lr.layer for lr in analyze(g, input_size=(1, n), in_channels=1).layers if lr.type == "Upsample"]
    assert up.scale_factor == (1, sp.Rational(Fraction(scale)))
    got = [set(dependency_set(g, (1, n), o, axis=1).tolist()) & set(range(n)) for o in range(len(want))]
    assert got == want


def test_from_onnx_nearest_rounding_that_is_no_pytorch_mode():
    """half-pixel coordinates with floor read input -1 -> 0, 0, 0, 1, ... at scale 1/3 (neither
    of PyTorch's nearest modes): refused, naming the mode."""
    model, _ = _onnx_resize(5, "nearest", "half_pixel", "floor", sizes=8)
    with pytest.raises(LayerError, match="nearest_mode='floor'"):
        rfsym.from_onnx(model)


# --------------------------------------------------------------------------- Keras import
@pytest.mark.parametrize("interpolation", ["nearest", "bilinear"])
def test_from_keras_resizing_and_upsampling(interpolation):
    """keras.layers.Resizing (PyTorch's nearest-exact or bilinear to a size under the torch
    backend) and UpSampling2D: the imported layers, the output shapes, and one output's
    dependency mask against the input gradient Keras computes with torch."""
    keras = pytest.importorskip("keras")
    if keras.backend.backend() != "torch":
        pytest.skip("the gradient check uses the torch backend's autograd")
    layers = keras.layers
    x = keras.Input((11, 9, 1))
    y = layers.Resizing(17, 23, interpolation=interpolation, name="resize")(x)
    y = layers.UpSampling2D((2, 3), interpolation=interpolation, name="up")(y)
    model = keras.Model(x, y)
    g = rfsym.from_keras(model)
    r = analyze(g, input_size=(11, 9))
    ups = {lr.name: replace(lr.layer, name=None) for lr in r.layers if lr.type == "Upsample"}
    mode = "nearest-exact" if interpolation == "nearest" else "bilinear"
    assert ups == {"resize": Upsample(size=(17, 23), mode=mode),
                   "up": Upsample((2, 3), mode="nearest" if interpolation == "nearest" else "bilinear")}
    assert tuple(int(v) for v in r.axes("out_size")) == tuple(model.output_shape[1:3])
    for o in [(0, 0), (20, 31), (33, 68)]:
        t = torch.zeros(1, 11, 9, 1, requires_grad=True)
        grad, = torch.autograd.grad(model(t)[0, o[0], o[1], 0], t)
        assert np.array_equal(rfsym.dependency_mask(g, (11, 9), o), grad[0, :, :, 0].numpy() != 0)


def test_from_keras_resizing_refused_options():
    keras = pytest.importorskip("keras")
    x = keras.Input((8, 8, 1))
    model = keras.Model(x, keras.layers.Resizing(5, 5, crop_to_aspect_ratio=True)(x))
    with pytest.raises(LayerError, match="crop_to_aspect_ratio"):
        rfsym.from_keras(model)


def test_from_onnx_resize_refuses_antialias():
    model, _ = _onnx_resize(8, "linear", "half_pixel", "floor", sizes=5)
    from onnx import helper

    model.graph.node[0].attribute.append(helper.make_attribute("antialias", 1))
    with pytest.raises(LayerError, match="antialias"):
        rfsym.from_onnx(model)


def test_huge_sizes_use_the_exact_map_with_bounded_work():
    """Beyond FLOAT_MAP_LIMIT outputs per axis the float32 map is not evaluated output by output:
    the exact periodic map answers at once (an input of 2^120 would otherwise need 2^121 rows)."""
    from rfsym.layers import FLOAT_MAP_LIMIT

    n = 2 ** 120
    for mode in ("nearest", "nearest-exact", "bilinear"):
        r = rfsym.analyze(rfsym.Upsample(2, mode=mode), input_size=n, ndim=1)
        assert r.out_size == 2 * n and r.jump == sp.Rational(1, 2)
        small = rfsym.analyze(rfsym.Upsample(2, mode=mode), ndim=1)  # the exact map, symbolic size
        assert (r.rf, r.start) == (small.rf, small.start)
    with pytest.raises(rfsym.LayerError, match="align_corners"):
        rfsym.analyze(rfsym.Upsample(size=FLOAT_MAP_LIMIT + 1, mode="bilinear", align_corners=True),
                      input_size=7, ndim=1)
