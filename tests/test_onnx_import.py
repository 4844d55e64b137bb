"""rfsym.from_onnx: operators on tiny hand-built models, torchvision exports against PyTorch, dynamic
sizes, bad input, the CLI, and the coverage table of docs/guides/onnx.md.

Every tiny model is also run by ONNX's reference runtime (``onnx.reference``): the output shape
rfsym derives must be the one ONNX computes.
"""

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

import rfsym
from rfsym.errors import LayerError, RfsymError

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402
from onnx.reference import ReferenceEvaluator  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def _coverage():
    spec = importlib.util.spec_from_file_location("onnx_coverage", ROOT / "scripts" / "onnx_coverage.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("onnx_coverage", module)
    spec.loader.exec_module(module)
    return module


coverage = _coverage()


# --------------------------------------------------------------------------- tiny models
def _w(name, *shape, seed=0):
    rng = np.random.default_rng(seed)
    return numpy_helper.from_array(rng.standard_normal(shape).astype(np.float32), name)


def _model(nodes, shape, inits=(), in_name="x", out="y", opset=18):
    graph = helper.make_graph(nodes, "m", [helper.make_tensor_value_info(in_name, TensorProto.FLOAT, shape)],
                              [helper.make_tensor_value_info(out, TensorProto.FLOAT, None)], list(inits))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def _check_runtime(model, result, shape):
    """The output shape ONNX's reference runtime computes equals rfsym's out_size/out_channels."""
    (y,) = ReferenceEvaluator(model).run(None, {"x": np.zeros(shape, np.float32)})
    if y.ndim == len(shape):
        assert tuple(result.axes("out_size")) == y.shape[2:]
        assert result.out_channels == y.shape[1]
    else:
        assert result.out_channels == y.shape[-1]
    return y.shape


def _run(nodes, shape, inits=(), **kw):
    model = _model(nodes, shape, inits, **kw)
    r = rfsym.analyze(rfsym.from_onnx(model), input_size=tuple(shape[2:]), in_channels=shape[1])
    _check_runtime(model, r, shape)
    return r


def _same(a, b):
    for k in ("rf", "jump", "start", "out_size", "params", "macs", "out_channels"):
        assert getattr(a, k) == getattr(b, k), (k, getattr(a, k), getattr(b, k))


def _ref(net, shape):
    return rfsym.analyze(net, input_size=tuple(shape[2:]), in_channels=shape[1])


def test_conv_group_dilation_pads():
    shape = [1, 4, 17, 19]
    r = _run([helper.make_node("Conv", ["x", "w", "b"], ["y"], name="c", group=2, dilations=[2, 1],
                               strides=[2, 3], pads=[1, 0, 2, 1])], shape, [_w("w", 6, 2, 3, 3), _w("b", 6)])
    _same(r, _ref(rfsym.Conv((3, 3), stride=(2, 3), padding=((1, 2), (0, 1)), dilation=(2, 1), groups=2,
                             in_channels=4, out_channels=6), shape))
    assert r.layer("c").params == 6 * 2 * 9 + 6


@pytest.mark.parametrize("auto_pad", ["SAME_UPPER", "SAME_LOWER", "VALID"])
@pytest.mark.parametrize("n", [10, 11])
def test_conv_auto_pad(auto_pad, n):
    shape = [1, 3, n, n + 3]
    r = _run([helper.make_node("Conv", ["x", "w"], ["y"], strides=[2, 2], auto_pad=auto_pad)], shape,
             [_w("w", 5, 3, 4, 4)])
    if auto_pad == "SAME_UPPER":  # TensorFlow's SAME: the extra padded position at the end
        padding = "tf_same"
    elif auto_pad == "VALID":
        padding = 0
    else:  # SAME_LOWER: the extra one first
        pads = []
        for m in shape[2:]:
            total = max((-(-m // 2) - 1) * 2 + 4 - m, 0)
            pads.append((total - total // 2, total // 2))
        padding = tuple(pads)
    _same(r, _ref(rfsym.Conv(4, stride=2, padding=padding, bias=False, in_channels=3, out_channels=5), shape))


@pytest.mark.parametrize("n", [9, 10])
def test_fields_equal_onnx_runtime_dependencies(n):
    """A 1-D SAME_LOWER strided convolution then a ceil-mode padded average pool: both linear, so
    ONNX's reference runtime on unit inputs gives the exact set of inputs each output reads; it
    must be rfsym's [start + o·jump, start + o·jump + rf) clipped to the input."""
    model = _model([helper.make_node("Conv", ["x", "w"], ["c"], strides=[2], auto_pad="SAME_LOWER"),
                    helper.make_node("AveragePool", ["c"], ["y"], kernel_shape=[3], strides=[2], pads=[1, 1],
                                     ceil_mode=1)], [1, 1, n], [_w("w", 1, 1, 4)])
    run = ReferenceEvaluator(model)
    base = run.run(None, {"x": np.zeros((1, 1, n), np.float32)})[0][0, 0]
    columns = [run.run(None, {"x": np.eye(n, dtype=np.float32)[i].reshape(1, 1, n)})[0][0, 0] - base
               for i in range(n)]
    reads = np.abs(np.stack(columns, axis=1)) > 1e-6  # reads[o, i]: output o depends on input i
    r = rfsym.analyze(rfsym.from_onnx(model), input_size=n, in_channels=1)
    assert r.out_size == reads.shape[0]
    for o, row in enumerate(reads):
        lo = r.start + o * r.jump
        want = [i for i in range(n) if lo <= i < lo + r.rf]
        assert list(np.flatnonzero(row)) == want, o


def test_conv_transpose_output_padding():
    shape = [1, 4, 5, 6]
    r = _run([helper.make_node("ConvTranspose", ["x", "w", "b"], ["y"], strides=[2, 2], pads=[1, 1, 1, 1],
                               output_padding=[1, 1])], shape, [_w("w", 4, 3, 3, 3), _w("b", 3)])
    _same(r, _ref(rfsym.ConvTranspose(3, stride=2, padding=1, output_padding=1, in_channels=4, out_channels=3),
                  shape))


@pytest.mark.parametrize("ceil", [0, 1])
def test_pools_ceil_mode(ceil):
    shape = [1, 2, 12, 13]
    r = _run([helper.make_node("MaxPool", ["x"], ["p"], kernel_shape=[3, 3], strides=[2, 2], ceil_mode=ceil),
              helper.make_node("AveragePool", ["p"], ["y"], kernel_shape=[2, 2], strides=[2, 2], pads=[1, 1, 1, 1],
                               ceil_mode=ceil)], shape)
    _same(r, _ref(rfsym.Sequential(rfsym.MaxPool(3, stride=2, ceil_mode=bool(ceil)),
                                   rfsym.AvgPool(2, stride=2, padding=1, ceil_mode=bool(ceil))), shape))


def test_classifier_head_gemm_and_global_pools():
    shape = [1, 3, 8, 8]
    r = _run([helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
              helper.make_node("GlobalAveragePool", ["c"], ["g"]),
              helper.make_node("Flatten", ["g"], ["f"], axis=1),
              helper.make_node("Gemm", ["f", "fc", "fb"], ["y"], transB=1)], shape,
             [_w("w", 16, 3, 3, 3), _w("fc", 10, 16), _w("fb", 10)])
    _same(r, _ref(rfsym.Sequential(rfsym.Conv(3, padding=1, bias=False, in_channels=3, out_channels=16),
                                   rfsym.GlobalAvgPool(), rfsym.Flatten(), rfsym.Linear(16, 10)), shape))
    assert r.rf == 10  # global: the whole padded input


def test_reduce_mean_over_spatial_axes_is_global_pooling():
    shape = [1, 3, 9, 9]
    r = _run([helper.make_node("Conv", ["x", "w"], ["c"]),
              helper.make_node("ReduceMean", ["c", "axes"], ["y"], keepdims=1)], shape,
             [_w("w", 4, 3, 3, 3), numpy_helper.from_array(np.array([2, 3], np.int64), "axes")])
    _same(r, _ref(rfsym.Sequential(rfsym.Conv(3, bias=False, in_channels=3, out_channels=4),
                                   rfsym.GlobalAvgPool()), shape))


def test_residual_add_and_concat():
    shape = [1, 4, 8, 8]
    r = _run([helper.make_node("Conv", ["x", "w1"], ["a"], pads=[1, 1, 1, 1], name="a"),
              helper.make_node("Relu", ["a"], ["r"], name="relu"),
              helper.make_node("Add", ["r", "x"], ["s"], name="add"),
              helper.make_node("MaxPool", ["x"], ["p"], kernel_shape=[3, 3], pads=[1, 1, 1, 1], name="pool"),
              helper.make_node("Concat", ["s", "p"], ["y"], axis=1, name="cat")], shape, [_w("w1", 4, 4, 3, 3)])
    assert (r.rf, r.out_channels, r.params) == (3, 8, 4 * 4 * 9)
    assert {"a", "relu", "pool"} <= {layer.name.split(".")[-1] for layer in r.layers}


def test_weights_read_twice_are_counted_once():
    """Two convolutions reading the same weight and bias initializers (a module called twice,
    exported): the parameters once, at the first; the MACs of both."""
    shape = [1, 4, 8, 8]
    conv = dict(pads=[1, 1, 1, 1])
    r = _run([helper.make_node("Conv", ["x", "w", "b"], ["a"], name="first", **conv),
              helper.make_node("Relu", ["a"], ["r"], name="relu"),
              helper.make_node("Conv", ["r", "w", "b"], ["c"], name="second", **conv),
              helper.make_node("Conv", ["c", "w2"], ["y"], name="other", **conv)],
             shape, [_w("w", 4, 4, 3, 3), _w("b", 4), _w("w2", 4, 4, 3, 3, seed=1)])
    assert r.params == (4 * 4 * 9 + 4) + 4 * 4 * 9
    assert r.layer("second").params == 0 and r.layer("second").macs == r.layer("first").macs
    assert r.rf == 7
    # equal weights of two modules, merged by the exporter into one initializer read through an
    # Identity node: two modules, each counting its own
    r = _run([helper.make_node("Identity", ["w"], ["w_copy"], name="copy"),
              helper.make_node("Conv", ["x", "w"], ["a"], name="first", **conv),
              helper.make_node("Conv", ["a", "w_copy"], ["y"], name="second", **conv)],
             shape, [_w("w", 4, 4, 3, 3)])
    assert r.params == 2 * 4 * 4 * 9 and r.layer("second").params == 4 * 4 * 9


def test_clip_is_relu6_and_elementwise_constants_are_not_parameters():
    shape = [1, 2, 5, 5]
    consts = [helper.make_node("Constant", [], [n], value=numpy_helper.from_array(np.array(v, np.float32)))
              for n, v in (("lo", 0.0), ("hi", 6.0), ("half", 0.5))]
    r = _run(consts + [helper.make_node("Clip", ["x", "lo", "hi"], ["c"], name="clip"),
                       helper.make_node("Mul", ["c", "half"], ["m"]),
                       helper.make_node("Erf", ["m"], ["y"])], shape)
    assert [layer.type for layer in r.layers] == ["ReLU6", "Elementwise", "Elementwise"]
    assert (r.rf, r.params) == (1, 0)


def test_slice_is_a_crop_and_pad_pads():
    shape = [1, 2, 10, 12]
    ints = [numpy_helper.from_array(np.array(v, np.int64), n) for n, v in
            (("st", [2, 1]), ("en", [-2, 2**63 - 1]), ("ax", [2, 3]), ("pd", [0, 0, 1, 0, 0, 0, 2, 3]))]
    r = _run([helper.make_node("Slice", ["x", "st", "en", "ax"], ["s"]),
              helper.make_node("Pad", ["s", "pd"], ["y"], mode="reflect")], shape, ints)
    _same(r, _ref(rfsym.Sequential(rfsym.Crop(((2, 2), (1, 0))), rfsym.Pad(((1, 2), (0, 3)))), shape))


@pytest.mark.parametrize("mode, ctm, align", [("nearest", "asymmetric", None), ("linear", "half_pixel", False),
                                              ("linear", "align_corners", True)])
def test_resize(mode, ctm, align):
    shape = [1, 2, 4, 5]
    scales = numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), "sc")
    r = _run([helper.make_node("Resize", ["x", "", "sc"], ["y"], mode=mode, coordinate_transformation_mode=ctm,
                               nearest_mode="floor")], shape, [scales])
    up = rfsym.Upsample(2) if align is None else rfsym.Upsample(2, mode="bilinear", align_corners=align)
    _same(r, _ref(up, shape))


@pytest.mark.parametrize("ctm, rounding, f, read", [
    ("asymmetric", "floor", 3, True), ("asymmetric", "round_prefer_floor", 2, True),
    ("asymmetric", "round_prefer_floor", 3, False), ("half_pixel", "round_prefer_floor", 3, True),
    ("half_pixel", "round_prefer_ceil", 4, True), ("half_pixel", "floor", 3, False),
    ("asymmetric", "ceil", 2, False)])
def test_nearest_resize_modes(ctm, rounding, f, read):
    """rfsym reads a nearest resize as output o <- input floor(o/f); ONNX's reference runtime,
    on an input holding its own indices, shows which modes really do that."""
    shape = [1, 1, 5, 7]
    scales = numpy_helper.from_array(np.array([1, 1, f, f], np.float32), "sc")
    model = _model([helper.make_node("Resize", ["x", "", "sc"], ["y"], mode="nearest",
                                     coordinate_transformation_mode=ctm, nearest_mode=rounding)], shape, [scales])
    x = np.arange(35, dtype=np.float32).reshape(shape)
    (y,) = ReferenceEvaluator(model).run(None, {"x": x})
    floor = x[:, :, np.arange(5 * f) // f][:, :, :, np.arange(7 * f) // f]
    assert np.array_equal(y, floor) == read
    if read:
        r = rfsym.analyze(rfsym.from_onnx(model), input_size=(5, 7), in_channels=1)
        _same(r, _ref(rfsym.Upsample(f), [1, 1, 5, 7]))
    else:
        with pytest.raises(LayerError, match="floor"):
            rfsym.from_onnx(model)


def test_resize_to_a_size_computed_from_the_input_shape():
    shape = [1, 2, 8, 8]
    ints = {n: numpy_helper.from_array(np.array(v, np.int64), n) for n, v in
            (("two", [2]), ("four", [4]), ("zero", [0]))}
    r = _run([helper.make_node("MaxPool", ["x"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
              helper.make_node("Shape", ["x"], ["s"]),
              helper.make_node("Slice", ["s", "two", "four", "zero"], ["hw"]),
              helper.make_node("Shape", ["p"], ["ps"]),
              helper.make_node("Slice", ["ps", "zero", "two", "zero"], ["nc"]),
              helper.make_node("Concat", ["nc", "hw"], ["size"], axis=0),
              helper.make_node("Resize", ["p", "", "", "size"], ["y"], mode="nearest",
                               coordinate_transformation_mode="asymmetric", nearest_mode="floor")],
             shape, list(ints.values()))
    _same(r, _ref(rfsym.Sequential(rfsym.MaxPool(2), rfsym.Upsample(2)), shape))


def test_channels_last_layernorm_and_matmul_are_position_wise():
    shape = [1, 8, 6, 6]
    r = _run([helper.make_node("Transpose", ["x"], ["t"], perm=[0, 2, 3, 1]),
              helper.make_node("LayerNormalization", ["t", "g", "b"], ["n"], axis=-1, name="ln"),
              helper.make_node("MatMul", ["n", "wm"], ["m"], name="fc"),
              helper.make_node("Add", ["m", "bm"], ["a"]),
              helper.make_node("Transpose", ["a"], ["y"], perm=[0, 3, 1, 2])], shape,
             [_w("g", 8), _w("b", 8), _w("wm", 8, 16), _w("bm", 16)])
    assert (r.rf, r.jump, r.out_channels) == (1, 1, 16)
    assert r.params == 16 + 8 * 16 + 16
    assert r.macs == 36 * 8 * 16
    assert [layer.type for layer in r.layers] == ["LayerNorm", "Conv"]


def test_group_norm_as_pytorch_exports_it():
    """Reshape to (N, groups, -1), InstanceNormalization with constant scale 1 and bias 0,
    reshape back to the input's shape (computed by Shape), then the affine (C, 1, 1) weights."""
    shape = [1, 8, 6, 5]
    ones = [helper.make_node("Constant", [], [n], value=numpy_helper.from_array(np.full(2, v, np.float32)))
            for n, v in (("one", 1.0), ("zero", 0.0))]
    groups = numpy_helper.from_array(np.array([1, 2, -1], np.int64), "groups")
    r = _run(ones + [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
                     helper.make_node("Reshape", ["c", "groups"], ["g"]),
                     helper.make_node("InstanceNormalization", ["g", "one", "zero"], ["n"], name="gn"),
                     helper.make_node("Shape", ["c"], ["s"]),
                     helper.make_node("Reshape", ["n", "s"], ["b"]),
                     helper.make_node("Mul", ["b", "gamma"], ["m"]),
                     helper.make_node("Add", ["m", "beta"], ["y"])], shape,
             [_w("w", 8, 8, 3, 3), groups, _w("gamma", 8, 1, 1), _w("beta", 8, 1, 1)])
    assert r.params == 8 * 8 * 9 + 2 * 8  # GroupNorm's affine weights: 2C, as PyTorch counts
    assert r.layer("gn").type == "GroupNorm"
    assert r.rf == 3  # position-wise by default (analyze(..., strict=True): global)


def test_channel_shuffle_reshape_is_position_wise():
    shape = [1, 8, 5, 5]
    ints = [numpy_helper.from_array(np.array(v, np.int64), n) for n, v in
            (("s1", [1, 2, 4, 5, 5]), ("s2", [1, 8, 5, 5]))]
    r = _run([helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
              helper.make_node("Reshape", ["c", "s1"], ["r1"]),
              helper.make_node("Transpose", ["r1"], ["t"], perm=[0, 2, 1, 3, 4]),
              helper.make_node("Reshape", ["t", "s2"], ["r2"]),
              helper.make_node("Conv", ["r2", "w2"], ["y"])], shape, ints + [_w("w", 8, 8, 3, 3), _w("w2", 4, 8, 1, 1)])
    assert (r.rf, r.out_channels, r.params) == (3, 4, 8 * 8 * 9 + 32)


def test_squeeze_excitation_gate_is_a_broadcast_mul():
    shape = [1, 4, 7, 7]
    r = _run([helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
              helper.make_node("GlobalAveragePool", ["c"], ["g"]),
              helper.make_node("Conv", ["g", "w2"], ["z"]),
              helper.make_node("Sigmoid", ["z"], ["s"]),
              helper.make_node("Mul", ["c", "s"], ["y"], name="gate")], shape, [_w("w", 4, 4, 3, 3), _w("w2", 4, 4, 1, 1)])
    assert r.params == 4 * 4 * 9 + 16
    assert r.rf == 9  # the gate sees the whole (padded) input


def test_attention_over_tokens_is_one_global_attention_node():
    """Single-head-pair self-attention on the 4x4 positions of a feature map: flatten to tokens,
    q/k/v projections, softmax(q·kᵀ/√d)·v over 2 heads, output projection, back to the map."""
    c, n, heads = 8, 16, 2
    ints = {k: numpy_helper.from_array(np.array(v, np.int64), k) for k, v in
            (("tok", [1, c, n]), ("heads", [1, n, heads, c // heads]), ("tok2", [1, n, c]), ("map", [1, c, 4, 4]))}
    scale = helper.make_node("Constant", [], ["scale"], value=numpy_helper.from_array(np.array(0.5, np.float32)))
    nodes = [scale, helper.make_node("Reshape", ["x", "tok"], ["t0"]),
             helper.make_node("Transpose", ["t0"], ["t"], perm=[0, 2, 1])]
    for p in "qkv":
        nodes += [helper.make_node("MatMul", ["t", f"w{p}"], [f"{p}0"], name=f"{p}_proj"),
                  helper.make_node("Reshape", [f"{p}0", "heads"], [f"{p}1"]),
                  helper.make_node("Transpose", [f"{p}1"], [p], perm=[0, 2, 3, 1] if p == "k" else [0, 2, 1, 3])]
    nodes += [helper.make_node("MatMul", ["q", "k"], ["s0"], name="scores"),
              helper.make_node("Mul", ["s0", "scale"], ["s1"]),
              helper.make_node("Softmax", ["s1"], ["s"], axis=-1),
              helper.make_node("MatMul", ["s", "v"], ["a0"], name="attn"),
              helper.make_node("Transpose", ["a0"], ["a1"], perm=[0, 2, 1, 3]),
              helper.make_node("Reshape", ["a1", "tok2"], ["a2"]),
              helper.make_node("MatMul", ["a2", "wo"], ["o"], name="out_proj"),
              helper.make_node("Transpose", ["o"], ["o1"], perm=[0, 2, 1]),
              helper.make_node("Reshape", ["o1", "map"], ["y"])]
    shape = [1, c, 4, 4]
    r = _run(nodes, shape, list(ints.values()) + [_w(f"w{p}", c, c, seed=i) for i, p in enumerate("qkvo")])
    proj = [(f"{p}_proj", rfsym.Conv(1, in_channels=c, out_channels=c, bias=False), "input") for p in "qkv"]
    ref = rfsym.Graph(*proj, ("attn.qkv", "mul", ("q_proj", "k_proj", "v_proj")),
                      ("attn", rfsym.Attention(embed_dim=c), "attn.qkv"),
                      ("out_proj", rfsym.Conv(1, in_channels=c, out_channels=c, bias=False), "attn"))
    _same(r, _ref(ref, shape))
    assert r.rf == 4 and r.params == 4 * c * c
    assert r.layer("attn").macs == 2 * n * n * c  # q·kᵀ and attention·v


def test_depth_to_space():
    shape = [1, 8, 3, 3]
    r = _run([helper.make_node("DepthToSpace", ["x"], ["d"], blocksize=2, mode="CRD"),
              helper.make_node("SpaceToDepth", ["d"], ["y"], blocksize=2)], shape)
    _same(r, _ref(rfsym.Sequential(rfsym.PixelShuffle(2), rfsym.PixelUnshuffle(2)), shape))


def test_channels_last_input_transposed_first():
    """tf2onnx's layout: an NHWC input transposed to NCHW before the first convolution."""
    model = _model([helper.make_node("Transpose", ["x"], ["t"], perm=[0, 3, 1, 2]),
                    helper.make_node("Conv", ["t", "w"], ["y"], strides=[2, 2], auto_pad="SAME_UPPER")],
                   [1, 15, 20, 3], [_w("w", 4, 3, 3, 3)])
    imported = rfsym.read_onnx(model)
    assert imported.channels_last and (imported.input_size, imported.in_channels) == ((15, 20), 3)
    r = rfsym.analyze(imported.graph, input_size=imported.input_size, in_channels=imported.in_channels)
    _same(r, _ref(rfsym.Conv(3, stride=2, padding="tf_same", bias=False, in_channels=3, out_channels=4),
                  [1, 3, 15, 20]))
    assert r.axes("out_size") == (8, 10)


def test_symbolic_input_dims_become_symbols():
    model = _model([helper.make_node("Conv", ["x", "w"], ["y"], strides=[2, 2], pads=[1, 1, 1, 1])],
                   [1, 3, "H", "W"], [_w("w", 4, 3, 3, 3)])
    imported = rfsym.read_onnx(model)
    H, W = rfsym.symbols("H W")
    assert imported.input_shape == (1, 3, H, W)
    r = rfsym.analyze(imported.graph, input_size=imported.input_size, in_channels=3)
    for h, w in ((8, 9), (31, 2)):
        assert tuple(v.subs({H: h, W: w}) for v in r.out_size) == ((h - 1) // 2 + 1, (w - 1) // 2 + 1)
    assert rfsym.read_onnx(model, input_shape=(1, 3, 9, 11)).input_size == (9, 11)


# --------------------------------------------------------------------------- bad input
def _unknown_op_model():
    return _model([helper.make_node("Conv", ["x", "w"], ["c"], name="conv"),
                   helper.make_node("NonMaxSuppression", ["c"], ["n"], name="nms"),
                   helper.make_node("Relu", ["n"], ["r"], name="relu"),
                   helper.make_node("FancyOp", ["r"], ["y"], name="fancy", domain="custom.ops")],
                  [1, 3, 8, 8], [_w("w", 4, 3, 3, 3)])


def _no_shape_model():
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "m",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, None)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    return helper.make_model(graph)


def test_unsupported_operators_are_listed_together():
    with pytest.raises(LayerError) as err:
        rfsym.from_onnx(_unknown_op_model())
    text = str(err.value)
    assert "nms (NonMaxSuppression)" in text and "fancy (FancyOp)" in text
    assert "relu" not in text  # downstream of an unsupported node: not reported again
    assert err.value.param == "op_type"


def test_bad_files_and_missing_shapes(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x08\x07this is not a protobuf\xff\xff\xff")
    with pytest.raises(RfsymError, match="not a valid ONNX file"):
        rfsym.from_onnx(bad)
    with pytest.raises(RfsymError, match="cannot read the ONNX file"):
        rfsym.from_onnx(tmp_path / "missing.onnx")
    with pytest.raises(RfsymError, match="no shape: pass input_shape"):
        rfsym.from_onnx(_no_shape_model())
    r = rfsym.analyze(rfsym.from_onnx(_no_shape_model(), input_shape=(1, 3, 5, 5)), input_size=5)
    assert r.rf == 1
    with pytest.raises(RfsymError, match="expects an onnx.ModelProto"):
        rfsym.from_onnx(42)
    with pytest.raises(RfsymError, match="has 3 axes"):
        rfsym.from_onnx(_unknown_op_model(), input_shape=(1, 3, 8))


def _cli(args, capsys):
    from rfsym.cli import main

    code = main(args)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_cli_reads_onnx_files_and_fails_cleanly(tmp_path, capsys):
    path = tmp_path / "tiny.onnx"
    onnx.save(_model([helper.make_node("Conv", ["x", "w"], ["y"], strides=[2, 2], name="conv")],
                     [1, 3, "H", "W"], [_w("w", 4, 3, 3, 3)]), path)
    code, out, err = _cli(["analyze", str(path), "--input", "32"], capsys)
    assert code == 0 and "tiny.onnx: input size 32" in out and "conv" in out
    code, out, err = _cli(["analyze", str(path), "--format", "json"], capsys)
    assert code == 0 and '"H"' in out or "floor(H" in out
    for name, model in (("bad.onnx", None), ("unknown.onnx", _unknown_op_model()), ("noshape.onnx", _no_shape_model())):
        target = tmp_path / name
        if model is None:
            target.write_bytes(b"garbage\xff")
        else:
            onnx.save(model, target)
        code, out, err = _cli(["analyze", str(target)], capsys)
        assert code == 2 and err.startswith("rfsym: error: ") and "Traceback" not in err, (name, err)


# --------------------------------------------------------------------------- torchvision exports
@pytest.fixture(scope="session")
def exported(tmp_path_factory):
    """``exported(name, size, dynamic=False)``: (model, path), each export written once per session
    (the last model built is kept for the next call)."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("torchvision")
    torch.set_num_threads(1)  # the machine is shared: one core per test process
    folder = tmp_path_factory.mktemp("onnx_models")
    built, paths = {}, {}

    def get(name, size, dynamic=False):
        if name not in built:
            built.clear()  # one model at a time in memory (the dynamic tests reuse theirs)
            built[name] = coverage.build(name)
        key = (name, size, dynamic)
        if key not in paths:
            tag = f"{name}_{size if isinstance(size, int) else 'x'.join(map(str, size))}{'_dyn' if dynamic else ''}"
            paths[key] = coverage.export(built[name], folder / f"{tag}.onnx", size, dynamic)
        return built[name], paths[key]

    return get


def _published_macs(name):
    """torchvision's published GFLOPS (its "_ops": multiply-accumulates, 3 decimals) of the default
    weights: ``torchvision.models.get_model_weights(name).DEFAULT.meta["_ops"]`` (the GFLOPS
    column of https://pytorch.org/vision/stable/models.html)."""
    from torchvision import models

    return models.get_model_weights(name).DEFAULT.meta["_ops"]


def _torch_params(model):
    return sum(p.numel() for n, p in model.named_parameters() if not n.startswith(coverage.TRAINING_ONLY))


# the models rfsym's zoo describes (rfsym's own hand-written networks)
ZOO = {"alexnet", "vgg11", "resnet18", "resnet50", "mobilenet_v2", "efficientnet_b0", "inception_v3"}


def _agree(r, ours, what):
    for key in ("rf", "jump", "start", "out_size", "params", "macs"):
        assert getattr(r, key) == getattr(ours, key), (what, key, getattr(r, key), getattr(ours, key))


def _committed_rows():
    text = (ROOT / "docs" / "guides" / "onnx.md").read_text(encoding="utf-8")
    text = text[text.find(coverage.MARK_BEGIN):text.find(coverage.MARK_END)]
    return {line.split("`")[1]: line for line in text.splitlines() if line.startswith("| `")}


@pytest.mark.parametrize("name, size", coverage.MODELS, ids=[m for m, _ in coverage.MODELS])
def test_torchvision_export_matches_pytorch(name, size, exported):
    model, path = exported(name, size)
    proto, imported, r = coverage.analyse(path, size)
    assert r.params == _torch_params(model)
    # the output shape PyTorch computed while the exporter traced the model, as the file records it
    out = proto.graph.output[0].type.tensor_type.shape
    y = tuple(d.dim_value for d in out.dim)
    assert r.out_channels == y[1]
    if len(y) == 4:
        assert tuple(r.axes("out_size")) == y[2:]
    if name not in coverage.SEGMENTATION:  # published at 224 (Inception v3: 299), as exported here
        assert round(float(r.macs) / 1e9, 3) == _published_macs(name)
    if name in ZOO:  # rfsym's own description of the model
        _agree(r, rfsym.zoo.entry(name).analyze(), f"{name} (zoo)")
    # rfsym's PyTorch importer on the same module (shapes traced on meta tensors)
    ours = rfsym.analyze(rfsym.from_torch(model, (1, 3, size, size)), input_size=size, in_channels=3)
    _agree(r, ours, f"{name} (from_torch)")
    assert _committed_rows().get(name) == coverage.row_of(name, size, imported, r).markdown(), (
        "docs/guides/onnx.md is stale: run python scripts/onnx_coverage.py --write docs/guides/onnx.md")


def test_coverage_table_lists_every_model_once():
    """The committed table has one row per model, in order (each row is checked by the test
    above), under the header the script writes."""
    import torch

    assert list(_committed_rows()) == [m for m, _ in coverage.MODELS]
    page = (ROOT / "docs" / "guides" / "onnx.md").read_text(encoding="utf-8")
    head = coverage.table([]).strip()
    assert head in page, "docs/guides/onnx.md's table header is stale (another torch version?)"
    assert torch.__version__.split("+")[0] in head


def test_coverage_script_check_and_write(tmp_path, capsys):
    rows = [coverage.Row("m", 224, params=10, macs=2 * 10**9, features="f", rf=7, jump=2),
            coverage.Row("bad", 224, error="2 ONNX node(s) rfsym cannot import")]
    page = tmp_path / "page.md"
    page.write_text(f"# t\n\n{coverage.MARK_BEGIN}\nold\n{coverage.MARK_END}\n", encoding="utf-8")
    assert coverage.main(["--check", str(page)], rows_=rows) == 1
    assert "out of date" in capsys.readouterr().err
    assert coverage.main(["--write", str(page)], rows_=rows) == 0
    assert coverage.main(["--check", str(page)], rows_=rows) == 0
    text = page.read_text(encoding="utf-8")
    assert "| `m` | 224 | yes | 10 | 2.000 | `f` | 7 | 2 |" in text and "| `bad` | 224 | no: 2 ONNX" in text


@pytest.mark.parametrize("name", ["resnet18", "mobilenet_v2"])
def test_dynamic_height_width_give_closed_forms(name, exported):
    _, path = exported(name, (64, 48), dynamic=True)
    imported = rfsym.read_onnx(path)
    H, W = rfsym.symbols("H W")
    assert imported.input_size == (H, W)
    r = rfsym.analyze(imported.graph, input_size=(H, W), in_channels=3)
    assert {H, W} <= set().union(*(v.free_symbols for v in r.axes("rf"))) and {H, W} <= r.macs.free_symbols
    for h, w in ((32, 40), (57, 64), (224, 200)):
        _, static = exported(name, (h, w))
        s = rfsym.analyze(rfsym.from_onnx(static), input_size=(h, w), in_channels=3)
        for key in ("rf", "jump", "start", "out_size", "params", "macs"):
            value, want = (getattr(r, key), getattr(s, key)) if key in ("params", "macs") else \
                (r.axes(key), s.axes(key))
            value = tuple(v.subs({H: h, W: w}) for v in value) if isinstance(value, tuple) else \
                value.subs({H: h, W: w})
            assert value == want, (key, h, w)
