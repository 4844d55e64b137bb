"""rfsym.from_keras checked against Keras itself (torch backend: ``KERAS_BACKEND=torch``).

* parameters: rfsym's count equals ``model.count_params()`` for the whole model and
  ``layer.count_params()`` for each layer (Keras counts every weight, BatchNormalization's moving
  statistics included);
* sizes and channels: every layer's output equals the shape Keras computed for it;
* receptive fields: the input gradient of one output position of a *linearised* copy of the
  model (activations and position-wise normalisations removed, max pools replaced by average
  pools over the same windows, every kernel positive) computed with torch's autograd. Its
  bounding box on each axis must be rfsym's span ``[start + p·jump, start + p·jump + rf - 1]``
  on every side where that span lies inside the input (outside it the input cannot show the
  span's padding positions); with a global field (jump 0) it must be the whole input;
* every model of ``keras.applications`` (params, shapes; the committed coverage table), a
  representative subset by gradient, and google-research/receptive_field's published Keras figure.
"""

import importlib.util
import json
import os
import sys
from pathlib import Path

import pytest

os.environ.setdefault("KERAS_BACKEND", "torch")
keras = pytest.importorskip("keras")
torch = pytest.importorskip("torch")
np = pytest.importorskip("numpy")

import rfsym  # noqa: E402
from rfsym.cli import main  # noqa: E402

pytestmark = pytest.mark.skipif(keras.backend.backend() != "torch",
                                reason="the gradient checks use the torch backend's autograd")

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("keras_coverage", ROOT / "scripts" / "keras_coverage.py")
coverage = importlib.util.module_from_spec(_spec)
sys.modules.setdefault("keras_coverage", coverage)  # dataclasses look their module up
_spec.loader.exec_module(coverage)
GUIDE = ROOT / "docs" / "guides" / "keras.md"

layers = keras.layers


# --------------------------------------------------------------------------- checks against Keras
def _axes(value, nd):
    return tuple(value) if isinstance(value, tuple) else (value,) * nd


def _all_layers(model):
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            yield from _all_layers(layer)
        else:
            yield layer


def check_params_and_shapes(model, graph, result):
    """Totals, per-layer parameters and every layer's output shape agree with Keras."""
    assert result.params == model.count_params()
    names = {layer.name for layer in result.layers}
    channels_first = keras.config.image_data_format() == "channels_first" or any(
        getattr(layer, "data_format", None) == "channels_first" for layer in _all_layers(model))
    nd = len(model.input_shape) - 2
    for layer in _all_layers(model):
        if type(layer).__name__ == "InputLayer":
            continue
        own = [r for r in result.layers if r.name == layer.name or r.name.startswith(layer.name + "/")]
        assert sum(r.params for r in own) == layer.count_params(), layer.name
        if layer.name not in names:  # position-wise keras.ops calls are nodes; a few layers are not
            continue
        shape = tuple(layer._inbound_nodes[0].output_tensors[0].shape)
        r = result.layer(layer.name)
        if len(shape) == nd + 2:
            sizes = shape[2:] if channels_first else shape[1:-1]
            assert _axes(r.out_size, nd) == tuple(sizes), layer.name
            assert r.out_channels == (shape[1] if channels_first else shape[-1]), layer.name


class _Pass(layers.Layer):
    """The identity (a position-wise layer removed from the linearised copy)."""

    def call(self, x, **kwargs):
        return x


_POSITIONWISE = ("Activation", "ReLU", "LeakyReLU", "ELU", "PReLU", "Softmax", "BatchNormalization",
                 "LayerNormalization", "Rescaling", "Normalization", "Dropout", "LayerScale")


def linearised(model):
    """A copy whose output is a positive linear function of the input with the same dependencies:
    position-wise layers dropped, max pools as average pools, kernels ``1/fan_in``, biases 1."""
    def clone(layer):
        cls = type(layer).__name__
        if isinstance(layer, keras.Model):
            return keras.models.clone_model(layer, clone_function=clone)
        if cls in _POSITIONWISE:
            return _Pass(name=layer.name)
        config = layer.get_config()
        if "Max" in cls and "Pooling" in cls:
            return getattr(layers, cls.replace("Max", "Average")).from_config(config)
        if "activation" in config:
            config["activation"] = "linear"
        return type(layer).from_config(config)

    lin = keras.models.clone_model(model, clone_function=clone)
    for layer in _all_layers(lin):
        for w in layer.weights:
            shape = tuple(w.shape)
            if w.name in ("kernel", "pointwise_kernel"):
                w.assign(np.full(shape, 1.0 / max(1, int(np.prod(shape[:-1]))), w.dtype))
            elif w.name == "depthwise_kernel":
                w.assign(np.full(shape, 1.0 / max(1, int(np.prod(shape[:-2]))), w.dtype))
            elif w.name == "bias":
                w.assign(np.ones(shape, w.dtype))
    return lin


def gradient_masks(lin, feature, in_shape, positions, channels_first=False):
    """Per output position, the input pixels with a nonzero gradient (any channel)."""
    sub = keras.Model(lin.inputs, lin.get_layer(feature).output) if feature else lin
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small tensors: one thread is several times faster on a shared machine
    try:
        return _masks(sub, in_shape, positions, channels_first)
    finally:
        torch.set_num_threads(threads)


def _masks(sub, in_shape, positions, channels_first):
    gen = torch.Generator().manual_seed(0)
    x = (0.5 + torch.rand((1,) + tuple(in_shape), generator=gen, dtype=torch.float64)).requires_grad_(True)
    y = sub(x)
    masks = []
    for p in positions:
        x.grad = None
        index = (0, slice(None)) + tuple(p) if channels_first else (0,) + tuple(p) + (slice(None),)
        y[index].sum().backward(retain_graph=True)
        g = x.grad[0] != 0
        masks.append((g.any(dim=0) if channels_first else g.any(dim=-1)).numpy())
    return masks


def _box(mask, axis):
    nd = mask.ndim
    hit = np.nonzero(mask.any(axis=tuple(a for a in range(nd) if a != axis)))[0]
    return (int(hit.min()), int(hit.max())) if len(hit) else None


def check_gradient(model, feature=None, positions=None, informative=True):
    """The bounding box of the linearised copy's input gradient of each output position of
    ``feature`` (default: the output) is rfsym's span ``start + p·jump ... start + p·jump + rf - 1``
    wherever that end lies inside the input, and inside the span elsewhere."""
    graph = rfsym.from_keras(model)
    channels_first = any(getattr(layer, "data_format", None) == "channels_first"
                         for layer in _all_layers(model))
    in_shape = tuple(model.input_shape[1:])
    sizes = tuple(in_shape[1:] if channels_first else in_shape[:-1])
    nd = len(sizes)
    size = sizes[0] if nd == 2 and sizes[0] == sizes[1] else sizes
    result = rfsym.analyze(graph, input_size=size)
    r = result.layer(feature) if feature else result
    rf, jump, start = (_axes(v, nd) for v in (r.rf, r.jump, r.start))
    out = _axes(r.out_size, nd)
    if positions is None and 0 in jump:  # a global field: the corners suffice
        positions = [(0,) * nd, tuple(o - 1 for o in out)]
    if positions is None:
        positions = sorted({tuple(min(q, o - 1) for o in out) for q in (0, 1)}
                           | {tuple(o // 2 for o in out), tuple(o - 1 for o in out)})
    masks = gradient_masks(linearised(model), feature, in_shape, positions, channels_first)
    ends = {(axis, side): set() for axis in range(nd) for side in "lh"}  # positions whose end was seen
    for p, g in zip(positions, masks):
        if not g.any():  # only padding feeds it (rfsym's span, on the unbounded grid, need not say so)
            continue
        for axis in range(nd):
            n, box = sizes[axis], _box(g, axis)
            if jump[axis] == 0:  # a global field: every input position
                assert box == (0, n - 1), (p, axis, box)
                ends[axis, "l"].add(p)
                ends[axis, "h"].add(p)
                continue
            lo = start[axis] + p[axis] * jump[axis]
            hi = lo + rf[axis] - 1
            assert max(0, lo) <= box[0] <= box[1] <= min(n - 1, hi), (p, axis, box, lo, hi)
            if lo >= 0:
                assert box[0] == lo, (p, axis, box, lo)
                ends[axis, "l"].add(p)
            if hi <= n - 1:
                assert box[1] == hi, (p, axis, box, hi)
                ends[axis, "h"].add(p)
    if informative:  # the input is large enough that start, rf and jump were seen, not only clips:
        for axis in range(nd):  # both ends on every axis, one of them at two positions
            lo, hi = ends[axis, "l"], ends[axis, "h"]
            assert lo and hi and len(lo) + len(hi) >= 3, f"the input is too small: axis {axis} {ends}"
    return result


@pytest.fixture
def float64():
    """Models built in float64: a deep network's gradient at the edge of its field is a product of
    many kernel weights (MobileNetV2's reaches 1e-46, below float32's range)."""
    before = keras.config.floatx()
    keras.config.set_floatx("float64")
    yield
    keras.config.set_floatx(before)


# --------------------------------------------------------------------------- small models, every layer
def _stack(shape, *stack, name=None):
    x = keras.Input(shape)
    y = x
    for layer in stack:
        y = layer(y)
    return keras.Model(x, y, name=name)


def model_conv2d():
    return _stack((33, 29, 3),
                  layers.Conv2D(4, 3, strides=2, padding="same", name="stem"),
                  layers.BatchNormalization(name="bn"),
                  layers.ReLU(6.0, name="relu6"),
                  layers.DepthwiseConv2D(3, padding="same", depth_multiplier=2, name="dw"),
                  layers.SeparableConv2D(5, 3, dilation_rate=2, padding="same", name="sep"),
                  layers.ZeroPadding2D(((1, 2), (0, 1)), name="pad"),
                  layers.Conv2D(3, (3, 1), use_bias=False, name="tall"),
                  layers.MaxPooling2D(3, strides=2, padding="same", name="maxpool"),
                  layers.AveragePooling2D(2, strides=1, name="avgpool"),
                  layers.Cropping2D(((1, 0), (0, 1)), name="crop"),
                  layers.LayerNormalization(name="ln"),
                  layers.Dense(6, name="dense_pointwise"),
                  layers.Activation("gelu", name="act"),
                  name="conv2d")


def model_branches():
    x = keras.Input((24, 24, 3))
    a = layers.Conv2D(8, 3, padding="same", activation="relu", name="a")(x)
    b = layers.Conv2D(8, 5, strides=2, padding="same", name="b")(a)
    c = layers.MaxPooling2D(2, name="c")(a)
    cat = layers.Concatenate(name="cat")([b, c])
    d = layers.Conv2D(16, 3, padding="same", name="d")(cat)
    s = layers.Add(name="sum")([d, layers.Conv2D(16, 1, name="proj")(cat)])
    g = layers.GlobalAveragePooling2D(name="gap")(s)
    g = layers.Reshape((1, 1, 16), name="reshape")(g)
    g = layers.Conv2D(16, 1, activation="sigmoid", name="gate")(g)
    m = layers.Multiply(name="se")([s, g])
    return keras.Model(x, m, name="branches")


def model_channels_first():
    x = keras.Input((3, 21, 17))
    a = layers.Conv2D(4, 3, strides=2, padding="same", data_format="channels_first", name="cf_conv")(x)
    b = layers.MaxPooling2D(2, data_format="channels_first", name="cf_pool")(a)
    c = layers.Conv2D(2, 3, padding="same", data_format="channels_first", name="cf_conv2")(b)
    cat = layers.Concatenate(axis=1, name="cf_cat")([b, c])
    n = layers.BatchNormalization(axis=1, name="cf_bn")(cat)
    return keras.Model(x, layers.ZeroPadding2D(1, data_format="channels_first", name="cf_pad")(n),
                       name="channels_first")


def model_conv1d():
    return _stack((50, 2),
                  layers.Conv1D(3, 5, padding="causal", dilation_rate=2, name="causal"),
                  layers.LeakyReLU(name="leaky"),
                  layers.ELU(name="elu"),
                  layers.Conv1D(4, 3, strides=2, padding="same", name="c1"),
                  layers.MaxPooling1D(2, name="p1"),
                  layers.Conv1D(4, 3, padding="valid", groups=2, name="grouped"),
                  name="conv1d")


def model_conv3d():
    return _stack((11, 10, 9, 1),
                  layers.Conv3D(2, 3, strides=2, padding="same", name="c3"),
                  layers.MaxPooling3D(2, strides=1, name="p3"),
                  layers.ZeroPadding3D(((1, 0), (0, 0), (2, 1)), name="pad3"),
                  layers.Conv3D(2, (1, 2, 3), name="c3b"),
                  name="conv3d")


def model_head():
    return keras.Sequential([keras.Input((16, 16, 3)), layers.Rescaling(1 / 255, name="scale"),
                             layers.Conv2D(4, 3, name="conv"), layers.MaxPooling2D(2, name="pool"),
                             layers.Flatten(name="flatten"), layers.Dropout(0.5, name="drop"),
                             layers.Dense(10, name="fc1"), layers.Dense(2, name="fc2")], name="head")


SMALL = [model_conv2d, model_branches, model_channels_first, model_conv1d, model_conv3d]


@pytest.mark.parametrize("build", SMALL + [model_head], ids=lambda f: f.__name__)
def test_small_models_params_and_shapes(build):
    model = build()
    graph = rfsym.from_keras(model)
    assert isinstance(graph, rfsym.Graph)
    channels_first = build is model_channels_first
    sizes = model.input_shape[2:] if channels_first else model.input_shape[1:-1]
    result = rfsym.analyze(graph, input_size=sizes if len(set(sizes)) > 1 or len(sizes) != 2 else sizes[0],
                           in_channels=model.input_shape[1 if channels_first else -1])
    check_params_and_shapes(model, graph, result)


@pytest.mark.parametrize("build", SMALL, ids=lambda f: f.__name__)
def test_small_models_gradient(build, float64):
    check_gradient(build())


def test_layer_names_and_separable_nodes():
    result = rfsym.analyze(rfsym.from_keras(model_conv2d()), input_size=(33, 29))
    assert [r.name for r in result.layers][:6] == ["stem", "bn", "relu6", "dw", "sep/depthwise", "sep"]
    assert result.layer("sep/depthwise").params == 8 * 9  # depthwise: 8 channels, 3x3, no bias
    assert result.layer("sep").params == 8 * 5 + 5


def test_layer_types():
    r = rfsym.analyze(rfsym.from_keras(model_conv1d()), input_size=50, in_channels=2)
    assert [(x.name, x.type) for x in r.layers][:3] == [("causal", "Conv"), ("leaky", "LeakyReLU"),
                                                        ("elu", "ELU")]
    r = rfsym.analyze(rfsym.from_keras(model_conv2d()), input_size=(33, 29), in_channels=3)
    types = {x.name: x.type for x in r.layers}
    assert (types["bn"], types["ln"], types["relu6"], types["act"]) == ("BatchNorm", "LayerNorm", "ReLU6", "GELU")


def test_dense_after_flatten_is_linear_on_spatial_is_pointwise():
    g = rfsym.from_keras(model_head())
    ops = {name: op for name, op, _ in g.nodes}
    assert isinstance(ops["fc1"], rfsym.Linear) and ops["fc1"].in_features == 7 * 7 * 4
    g = rfsym.from_keras(model_conv2d())
    ops = {name: op for name, op, _ in g.nodes}
    assert isinstance(ops["dense_pointwise"], rfsym.Conv) and ops["dense_pointwise"].kernel_size == 1
    assert g.features is None  # fully convolutional: no head


def test_features_is_the_map_before_the_head():
    assert rfsym.from_keras(model_head()).features == "pool"


def test_conv_transpose_and_upsampling_sizes():
    model = _stack((7, 6, 2),
                   layers.Conv2DTranspose(3, 3, strides=2, padding="same", name="t_same"),
                   layers.Conv2DTranspose(2, 4, strides=3, padding="valid", name="t_valid"),
                   layers.Conv2DTranspose(2, 2, strides=2, padding="same", name="t_even"),
                   layers.Conv2DTranspose(2, 3, strides=2, output_padding=1, name="t_output_padding"),
                   layers.UpSampling2D((2, 3), name="up"),
                   layers.UpSampling2D(2, interpolation="bilinear", name="up_bilinear"),
                   name="transposed")
    result = rfsym.analyze(rfsym.from_keras(model), input_size=(7, 6), in_channels=2)
    check_params_and_shapes(model, None, result)


def test_conv_transpose_field_matches_gradient(float64):
    x = keras.Input((9, 9, 1))
    y = layers.Conv2DTranspose(1, 3, strides=2, padding="same", name="t")(x)
    y = layers.Conv2D(1, 4, strides=2, name="c")(y)  # back to an integer jump
    check_gradient(keras.Model(x, y), informative=False)


def test_nested_models_are_expanded_in_place():
    inner = keras.Sequential([layers.Conv2D(4, 3, name="inner_conv"), layers.LayerNormalization(name="inner_ln")],
                             name="block")
    x = keras.Input((12, 12, 3))
    y = layers.Conv2D(4, 1, name="outer")(inner(x))
    model = keras.Model(x, y)
    result = rfsym.analyze(rfsym.from_keras(model), input_size=12, in_channels=3)
    assert [r.name for r in result.layers] == ["inner_conv", "inner_ln", "outer"]
    check_params_and_shapes(model, None, result)


def test_shared_layers_count_their_weights_once():
    """A layer (and a nested model) called twice: Keras's count_params() counts its weights once,
    and so does rfsym; the MACs are those of every call."""
    conv = layers.Conv2D(3, 3, padding="same", name="conv")
    block = keras.Sequential([layers.Conv2D(3, 3, padding="same", name="inner"),
                              layers.BatchNormalization(name="bn")], name="block")
    x = keras.Input((8, 8, 3))
    y = block(conv(layers.ReLU(name="act")(conv(x))))
    y = block(y)
    model = keras.Model(x, y)
    graph = rfsym.from_keras(model)
    assert dict(graph.shared) == {"conv#2": "conv", "inner#2": "inner", "bn#2": "bn"}
    result = rfsym.analyze(graph, input_size=8)
    assert result.params == model.count_params()
    assert result.layer("conv#2").params == 0 and result.layer("conv#2").macs == result.layer("conv").macs
    check_params_and_shapes(model, None, result)


def test_keras_ops_in_the_graph():
    """MobileNetV3's hard-swish written with keras.ops: ``x * relu6(x + 3) / 6``."""
    x = keras.Input((10, 10, 2))
    a = layers.Conv2D(3, 3, name="conv")(x)
    h = a * layers.ReLU(6.0, name="relu6")(a + 3.0) * (1.0 / 6.0)
    result = rfsym.analyze(rfsym.from_keras(keras.Model(x, h)), input_size=10)
    assert result.rf == 3 and result.out_size == 8 and result.params == 3 * 2 * 9 + 3


# --------------------------------------------------------------------------- keras.applications
def test_every_application_params_shapes_and_coverage_table():
    """Every keras.applications model: imported, params == count_params(), every layer's shape as
    Keras's; the committed table in docs/guides/keras.md is what the script generates."""
    rows, failures = [], []

    def check(model, graph, result):
        try:
            check_params_and_shapes(model, graph, result)
        except AssertionError as err:
            failures.append(f"{model.name}: {err}")

    for name in coverage.models():
        row = coverage.row(name, check=check)
        if row.error and row.stage == "import":
            failures.append(f"{name}: {row.error}")
        rows.append(row)
    assert not failures, failures
    built = [r.model for r in rows if not r.error]
    assert {"VGG16", "ResNet50", "ResNet50V2", "InceptionV3", "InceptionResNetV2", "Xception", "MobileNet",
            "MobileNetV2", "MobileNetV3Small", "DenseNet121", "EfficientNetB0", "EfficientNetV2S",
            "NASNetLarge", "ConvNeXtTiny"} <= set(built)
    new = coverage.replaced(GUIDE.read_text(encoding="utf-8"), coverage.table(rows))
    assert GUIDE.read_text(encoding="utf-8") == new, (
        "docs/guides/keras.md is stale: run python scripts/keras_coverage.py --write docs/guides/keras.md")


def test_coverage_script_check_and_write(tmp_path, capsys):
    rows = [coverage.Row("M", 224, params=10, keras_params=10, macs=2 * 10**9, features="f", rf=7, jump=2),
            coverage.Row("Odd", 224, params=10, keras_params=12, macs=0, features="g", rf=(3, 5), jump=0),
            coverage.Row("Gone", error="not on this backend", stage="build")]
    page = tmp_path / "page.md"
    page.write_text(f"# t\n\n{coverage.START}\nold\n{coverage.END}\nafter\n", encoding="utf-8")
    assert coverage.main(["--check", str(page)], rows_=rows) == 1
    assert "out of date" in capsys.readouterr().err
    assert coverage.main(["--write", str(page)], rows_=rows) == 0
    assert coverage.main(["--check", str(page)], rows_=rows) == 0
    text = page.read_text(encoding="utf-8")
    assert "| `M` | 224 | yes | 10 | yes | 2.000 | `f` | 7 | 2 |" in text
    assert "| `Odd` | 224 | yes | 10 | no (12) | 0.000 | `g` | 3×5 | 0 |" in text
    assert "| `Gone` | - | not built by Keras: not on this backend |" in text and text.endswith("after\n")


GRADIENT_SUBSET = [  # (model, keyword arguments, input size): cheap, and inputs large enough to see the ends
    ("MobileNet", {"alpha": 0.25}, 256),
    ("MobileNetV2", {"alpha": 0.35}, 320),
    ("ResNet50", {}, 64),  # residual blocks; its field (hundreds of pixels) is clipped at this size
    ("EfficientNetB0", {}, 64),  # squeeze-excitation: a global field
    ("MobileNetV3Small", {"alpha": 0.75}, 64),  # keras.ops hard-swish, SE gates
]


@pytest.mark.parametrize("name,kwargs,size", GRADIENT_SUBSET, ids=[m for m, _, _ in GRADIENT_SUBSET])
def test_application_field_matches_gradient(name, kwargs, size, float64):
    keras.backend.clear_session()
    with keras.device("meta"):  # no weights allocated: the linearised copy makes its own
        model = getattr(keras.applications, name)(weights=None, include_top=False,
                                                  input_shape=(size, size, 3), **kwargs)
    graph = rfsym.from_keras(model)
    feature = model.layers[-1].name  # the last feature map (include_top=False)
    assert graph.features in (None, feature)
    check_gradient(model, feature, informative=name not in ("ResNet50",))


def test_inception_v3_published_receptive_field():
    """google-research/receptive_field, RF_Keras_Applications.ipynb: tf.keras InceptionV3 on an
    input of unspecified size (``Input([None, None, 3])``), output node ``conv2d_85/Conv2D``:
    receptive field 1183, effective stride 32, effective padding 554 (both axes).
    https://github.com/google-research/receptive_field/blob/master/RF_Keras_Applications.ipynb
    (Keras 3 builds an input of unspecified size only without the classifier, which lies after
    ``conv2d_85``.)"""
    keras.backend.clear_session()  # layer names count from conv2d as in a fresh TensorFlow session
    model = keras.applications.InceptionV3(weights=None, include_top=False, input_shape=(None, None, 3))
    n = rfsym.symbols("n", integer=True, positive=True)
    r = rfsym.analyze(rfsym.from_keras(model), input_size=n).layer("conv2d_85")
    assert (r.rf, r.jump, -r.start) == (1183, 32, 554)


# --------------------------------------------------------------------------- bad input, CLI
def test_unsupported_layers_all_listed():
    class Scale(layers.Layer):
        def call(self, x):
            return 2 * x

    x = keras.Input((8, 8, 3))
    y = layers.Conv2D(4, 3, name="conv")(x)
    y = layers.Permute((2, 1, 3), name="swap")(y)
    y = Scale(name="scale")(y)
    y = layers.Reshape((6 * 6 * 4,), name="flat")(layers.Conv2D(4, 1, name="c2")(y))
    with pytest.raises(rfsym.LayerError) as info:
        rfsym.from_keras(keras.Model(x, y))
    msg = str(info.value)
    assert msg.startswith("from_keras: 3 unsupported layer(s)"), msg
    assert info.value.unsupported[0] == "swap (Permute)"
    assert info.value.unsupported[1] == "scale (Scale)"
    assert info.value.unsupported[2].startswith("flat (Reshape: ")


def test_not_a_model_and_unbuilt():
    with pytest.raises(rfsym.GraphError, match="keras.Model"):
        rfsym.from_keras(layers.Conv2D(2, 3))
    with pytest.raises(rfsym.GraphError, match="not built"):
        rfsym.from_keras(keras.Sequential([layers.Conv2D(2, 3)]))
    a, b = keras.Input((8, 8, 3)), keras.Input((8, 8, 3))
    with pytest.raises(rfsym.GraphError, match="one input"):
        rfsym.from_keras(keras.Model([a, b], layers.Add()([a, b])))


def test_cli_analyze_saved_model(tmp_path, capsys):
    path = tmp_path / "small.keras"
    model_head().save(path)
    assert main(["analyze", str(path)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("small.keras: input size 16,") and "fc2" in out
    assert main(["analyze", str(path), "--input", "20"]) == 2  # Flatten + Dense: only 16x16 fits
    assert "fc1" in capsys.readouterr().err
    conv = tmp_path / "conv.keras"
    model_branches().save(conv)
    assert main(["analyze", str(conv), "--input", "40", "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["input_size"] == 40 and report["layers"][-1]["name"] == "se"


def test_cli_bad_keras_files(tmp_path, capsys):
    bad = tmp_path / "corrupt.keras"
    bad.write_bytes(b"PK\x03\x04 definitely not a zip archive")
    assert main(["analyze", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"rfsym: error: {bad}: cannot read a Keras model") and "Traceback" not in err
    assert main(["analyze", str(tmp_path / "missing.keras")]) == 2
    assert "no such file" in capsys.readouterr().err
    odd = tmp_path / "odd.keras"
    _stack((8, 8, 3), layers.Permute((2, 1, 3), name="swap")).save(odd)
    assert main(["analyze", str(odd)]) == 2
    assert "swap (Permute)" in capsys.readouterr().err
