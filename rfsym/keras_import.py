"""Import a Keras 3 model into an rfsym :class:`~rfsym.layers.Graph` (extra ``keras``).

:func:`from_keras` reads the model's own layer graph (a ``Sequential`` or functional model,
``keras.applications`` models included, nested models expanded in place) and emits one rfsym node
per Keras layer, named as the layer, so ``result.layer("conv2d_85")`` is the output of the Keras
layer ``conv2d_85``. Nothing is run and no backend computation is needed; tested with the torch
backend (``KERAS_BACKEND=torch``).

Conventions:

* ``padding="same"`` is TensorFlow's SAME (it depends on the input size): ``padding="tf_same"``.
  ``padding="causal"`` (``Conv1D``) pads ``dilation·(kernel - 1)`` before the input.
* Parameters are Keras's ``count_params()``: every weight, trainable or not. So a
  ``BatchNormalization`` has ``4C`` (gamma, beta, moving mean, moving variance), a
  ``Normalization`` its mean, variance and count, and the network's total equals
  ``model.count_params()``.
* ``Dense`` on a spatial tensor acts on the channel axis: a 1×1 convolution; after ``Flatten`` or
  a global pool it is a :class:`~rfsym.layers.Linear`. ``SeparableConv2D`` becomes two nodes,
  ``<name>/depthwise`` and ``<name>`` (the pointwise convolution). An activation built into a
  layer (``Conv2D(activation="relu")``) has no spatial effect and no node of its own.
* Both data formats work (``channels_last``, Keras's default, and ``channels_first``): the
  channel axis is the one the layers' ``data_format`` names.
* Any other layer is an error that lists **every** unsupported layer with its class.

>>> import os, pytest; _ = os.environ.setdefault("KERAS_BACKEND", "torch")
>>> keras = pytest.importorskip("keras")
>>> import rfsym
>>> model = keras.Sequential([keras.Input((32, 32, 3)),
...                           keras.layers.Conv2D(8, 3, padding="same", name="c1"),
...                           keras.layers.MaxPooling2D(2, name="p1")])
>>> r = rfsym.analyze(rfsym.from_keras(model), input_size=32)
>>> [(layer.name, layer.type) for layer in r.layers]
[('c1', 'Conv'), ('p1', 'MaxPool')]
>>> r.rf, r.jump, r.out_size, r.params == model.count_params()
(4, 2, 16, True)
"""

from __future__ import annotations

import importlib.util
import os
import re
from dataclasses import dataclass

from . import layers as L
from .backbone import feature_node
from .errors import GraphError, LayerError, RfsymError
from .sharing import SharedCalls

__all__ = ["from_keras", "load"]

#: Keras activation names -> rfsym layers (anything else position-wise is Elementwise)
_ACTIVATIONS = {"relu": L.ReLU, "relu6": L.ReLU6, "leaky_relu": L.LeakyReLU, "gelu": L.GELU, "silu": L.SiLU,
                "swish": L.SiLU, "sigmoid": L.Sigmoid, "tanh": L.Tanh, "hard_swish": L.Hardswish,
                "hard_silu": L.Hardswish, "hard_sigmoid": L.Hardsigmoid, "elu": L.ELU, "softmax": L.Softmax,
                "linear": L.Identity}
#: position-wise Keras layers without parameters (the rfsym layer, Elementwise when rfsym has none)
_ELEMENTWISE_LAYERS = {"ELU": L.ELU, "LeakyReLU": L.LeakyReLU, "Softmax": L.Softmax, "Identity": L.Identity,
                       **dict.fromkeys(("ThresholdedReLU", "GaussianNoise", "GaussianDropout", "AlphaDropout",
                                        "ActivityRegularization", "Masking"), L.Elementwise)}
_DROPOUT_LAYERS = frozenset("Dropout SpatialDropout1D SpatialDropout2D SpatialDropout3D".split())
#: keras.ops operations that act on each element separately (class names, lower case)
_ELEMENTWISE_OPS = frozenset("""
add subtract multiply divide truedivide power maximum minimum negative abs absolute exp log sqrt square
clip tanh sigmoid hardsigmoid relu relu6 silu swish hardsilu hardswish gelu elu selu softplus softsign
leakyrelu cast""".split())
_MERGES = {"Add": "add", "Subtract": "add", "Average": "add", "Maximum": "add", "Minimum": "add",
           "Multiply": "mul", "Concatenate": "concat"}
_CONVS = ("Conv1D", "Conv2D", "Conv3D")
_TRANSPOSED = ("Conv1DTranspose", "Conv2DTranspose", "Conv3DTranspose")
_DEPTHWISE = ("DepthwiseConv1D", "DepthwiseConv2D")
_SEPARABLE = ("SeparableConv1D", "SeparableConv2D")
_POOLS = {f"{kind}Pooling{d}D": kind for kind in ("Max", "Average") for d in (1, 2, 3)}
_GLOBAL_POOLS = {f"Global{kind}Pooling{d}D": kind for kind in ("Max", "Average") for d in (1, 2, 3)}


class _Unsupported(Exception):
    """A layer this importer cannot express (collected, then reported all at once)."""


@dataclass
class _Tensor:
    """A converted Keras tensor: the rfsym node that produces it and its Keras shape."""

    node: str
    shape: tuple


def _import_keras():
    """``keras``, choosing the torch backend when none is set and TensorFlow is absent."""
    if "KERAS_BACKEND" not in os.environ and importlib.util.find_spec("tensorflow") is None \
            and importlib.util.find_spec("torch") is not None:
        os.environ["KERAS_BACKEND"] = "torch"
    try:
        import keras
    except ImportError as err:
        raise RfsymError(f"reading Keras models needs keras 3 (pip install 'rfsym[keras]'): {err}") from None
    return keras


def load(path):
    """Read a saved Keras model (``.keras`` file) for the command line.

    Loads with ``safe_mode=True`` (no deserialisation of Python code) and ``compile=False``.

    Args:
        path: the file.

    Returns:
        ``(graph, input_size, in_channels, ndim)``: the :func:`from_keras` graph, the model's own
        spatial input size (one int when the axes agree, a tuple otherwise, None when unspecified),
        its input channels and its number of spatial axes.

    Raises:
        RfsymError: the file cannot be read as a Keras model (missing, corrupt, unsafe).
        LayerError: the model has layers rfsym cannot express.

    >>> import os, pytest; _ = os.environ.setdefault("KERAS_BACKEND", "torch")
    >>> keras = pytest.importorskip("keras")
    >>> load("missing.keras")
    Traceback (most recent call last):
    ...
    rfsym.errors.RfsymError: missing.keras: cannot read a Keras model: no such file
    """
    if not os.path.isfile(path):
        raise RfsymError(f"{path}: cannot read a Keras model: no such file")
    keras = _import_keras()
    try:
        model = keras.saving.load_model(path, compile=False, safe_mode=True)
    except Exception as err:  # keras raises ValueError, OSError, zipfile/json errors alike
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise RfsymError(f"{path}: cannot read a Keras model: {reason[:300]}") from None
    net = from_keras(model)
    shape = _model_input(model).shape
    nd = len(shape) - 2
    channels_first = _data_format(model, keras) == "channels_first"
    spatial = shape[2:] if channels_first else shape[1:-1]
    channels = shape[1] if channels_first else shape[-1]
    size = None if any(s is None for s in spatial) else \
        (spatial[0] if len(set(spatial)) == 1 and nd == 2 else tuple(spatial))
    return net, size, channels, nd


def from_keras(model, *, name: str | None = None) -> L.Graph:
    """The rfsym graph of a Keras 3 model.

    Args:
        model: a built ``keras.Sequential`` or functional ``keras.Model`` with one input
            (``keras.applications`` models, with any ``input_shape``, included).
        name: the graph's name, a prefix of its node names (default: none, so that nodes are
            named exactly as the Keras layers).

    Returns:
        A :class:`~rfsym.layers.Graph` whose nodes are named as the Keras layers, with
        ``features`` set to the last spatial feature map before the head (global pooling or
        ``Flatten``) when there is one, and the model's outputs as ``outputs``.

    Raises:
        LayerError: layers rfsym cannot express (all listed, each with its class).
        GraphError: the model is not built, has several inputs, or is not a Keras model.

    >>> import os, pytest; _ = os.environ.setdefault("KERAS_BACKEND", "torch")
    >>> keras = pytest.importorskip("keras")
    >>> import rfsym
    >>> x = keras.Input((None, None, 3))
    >>> y = keras.layers.Conv2D(4, 3, strides=2, padding="same", name="stem")(x)
    >>> z = keras.layers.Add(name="sum")([keras.layers.Conv2D(4, 3, padding="same", name="c")(y), y])
    >>> g = rfsym.from_keras(keras.Model(x, z))
    >>> r = rfsym.analyze(g, input_size=16)
    >>> r.layer("c").rf, r.rf, r.jump, r.out_size
    (7, 7, 2, 8)
    """
    keras = _import_keras()
    if not isinstance(model, keras.Model):
        raise GraphError(f"from_keras reads a keras.Model (Sequential or functional), got "
                         f"{type(model).__name__}")
    conv = _Converter(keras, _data_format(model, keras), len(_model_input(model).shape) - 2)
    source = _model_input(model)
    conv.bound[id(source)] = _Tensor("input", tuple(source.shape))
    outputs = conv.walk(model, list(model.outputs))
    if conv.unsupported:
        err = LayerError(f"{len(conv.unsupported)} unsupported layer(s) in {model.name}: "
                         + "; ".join(conv.unsupported), where="from_keras")
        err.unsupported = list(conv.unsupported)
        raise err
    names = tuple(dict.fromkeys(t.node for t in outputs))
    if names == ("input",):
        raise GraphError(f"from_keras: {model.name} computes nothing from its input")
    return L.Graph(*conv.nodes, outputs=names, name=name, features=feature_node(conv.nodes, names, _is_head_start),
                   shared=conv.shared_calls.pairs(n[0] for n in conv.nodes))


def _is_head_start(label, layer):
    """A global pool or ``Flatten``: where a classifier head starts."""
    return isinstance(layer, (L.GlobalAvgPool, L.Flatten))


def _model_input(model):
    if not getattr(model, "built", False) or not getattr(model, "inputs", None):
        raise GraphError(f"from_keras: {model.name} is not built; give it an Input (keras.Input(shape)) "
                         "or call model.build(input_shape) first")
    if len(model.inputs) != 1:
        raise GraphError(f"from_keras reads models with one input; {model.name} has {len(model.inputs)}")
    shape = tuple(model.inputs[0].shape)
    if len(shape) < 3:
        raise GraphError(f"from_keras: the input of {model.name} has shape {shape}: no spatial axis "
                         "(expected (batch, *spatial, channels))")
    return model.inputs[0]


def _data_format(model, keras):
    """The model's data format: the one its layers name (Keras's default when none does)."""
    formats = {fmt for layer in _all_layers(model) if (fmt := getattr(layer, "data_format", None))}
    if len(formats) > 1:
        raise GraphError(f"from_keras: {model.name} mixes data formats ({', '.join(sorted(formats))})")
    return formats.pop() if formats else keras.config.image_data_format()


def _all_layers(model):
    for layer in model.layers:
        yield layer
        if hasattr(layer, "layers") and hasattr(layer, "outputs"):
            yield from _all_layers(layer)


def _ax(values, nd):
    """Per-axis Keras values as rfsym takes them: one value when a 2-D layer's axes agree."""
    values = tuple(int(v) for v in values)
    if len(values) == 1 and nd != 1:
        values *= nd
    return values[0] if nd == 2 and len(set(values)) == 1 else values


def _pairs(padding, nd):
    """Keras's padding/cropping amounts as per-axis ``(before, after)`` pairs."""
    if isinstance(padding, int):
        return ((padding, padding),) * nd
    pairs = tuple((int(p), int(p)) if isinstance(p, int) else (int(p[0]), int(p[1])) for p in padding)
    if nd == 1 and len(pairs) == 2 and all(isinstance(p, int) for p in padding):
        pairs = ((int(padding[0]), int(padding[1])),)
    return pairs


def _padding(layer, nd):
    mode = layer.padding.lower()
    if mode == "same":
        return "tf_same"
    if mode == "valid":
        return 0
    if mode == "causal":
        k, d = layer.kernel_size[0], layer.dilation_rate[0]
        return ((d * (k - 1), 0),) * nd
    raise _Unsupported(f"padding={layer.padding!r}")


class _Converter:
    def __init__(self, keras, data_format, nd):
        self.keras = keras
        self.channels_first = data_format == "channels_first"
        self.nd = nd
        self.nodes, self.unsupported = [], []
        self.bound = {}  # id(KerasTensor) -> _Tensor
        self.calls = {}  # layer name -> times called
        self.shared_calls = SharedCalls()  # the nodes of every call of a layer with weights

    # ----------------------------------------------------------------- graph walk
    def walk(self, model, outputs):
        """Convert what ``outputs`` depend on (post-order, iterative: models can be deep)."""
        stack = [(t, False) for t in reversed(outputs)]
        while stack:
            tensor, ready = stack.pop()
            if id(tensor) in self.bound:
                continue
            op, node = self.producer(model, tensor)
            if ready:
                self.visit(op, node)
                continue
            stack.append((tensor, True))
            stack.extend((u, False) for u in reversed(node.input_tensors) if id(u) not in self.bound)
        return [self.bound[id(t)] for t in outputs]

    def producer(self, model, tensor):
        history = getattr(tensor, "_keras_history", None)
        if history is None:
            raise GraphError(f"from_keras: a tensor of {model.name} has no Keras history "
                             "(built outside Keras's functional API)")
        op = history.operation
        if type(op).__name__ == "InputLayer":
            raise GraphError(f"from_keras reads models with one input; {model.name} also reads {op.name!r}")
        return op, op._inbound_nodes[history.node_index]

    def visit(self, op, node):
        ins = [self.bound[id(t)] for t in node.input_tensors]
        outs = list(node.output_tensors)
        if isinstance(op, self.keras.Model):
            self.nested(op, node, ins)
            return
        label = self.label(op.name)
        shape = tuple(outs[0].shape) if outs else ()
        result = None
        try:
            if len(outs) != 1:
                raise _Unsupported(f"{len(outs)} outputs")
            first = len(self.nodes)
            result = self.convert(op, node, ins, shape, label)
            if getattr(op, "weights", None):  # a layer called twice: its weights once
                self.shared_calls.record(id(op), self.nodes[first:])
        except _Unsupported as err:
            what = type(op).__name__ + (f": {err}" if str(err) else "")
            self.unsupported.append(f"{label} ({what})")
        except LayerError as err:
            self.unsupported.append(f"{label} ({type(op).__name__}: {err.detail})")
        if result is None:  # keep walking to list every unsupported layer: a placeholder
            result = ins[0].node if ins else "input"
        for t in outs:
            self.bound[id(t)] = _Tensor(result, tuple(t.shape))

    def nested(self, model, node, ins):
        """A model used as a layer: its graph, in place, reading the outer tensors."""
        inner = list(model.inputs)
        if len(inner) != len(ins):
            raise GraphError(f"from_keras: nested model {model.name!r} takes {len(inner)} inputs, "
                             f"called with {len(ins)}")
        saved = self.bound
        self.bound = dict(saved)  # a model called twice converts its layers twice (names get #2)
        for t, value in zip(inner, ins):
            self.bound[id(t)] = value
        results = self.walk(model, list(model.outputs))
        self.bound = saved
        for t, value in zip(node.output_tensors, results):
            self.bound[id(t)] = _Tensor(value.node, tuple(t.shape))

    def label(self, name):
        n = self.calls.get(name, 0) + 1
        self.calls[name] = n
        return name if n == 1 else f"{name}#{n}"

    def emit(self, label, op, inputs):
        self.nodes.append((label, op, (inputs,) if isinstance(inputs, str) else tuple(inputs)))
        return label

    # ----------------------------------------------------------------- tensors
    def spatial(self, t):
        """Whether a tensor has spatial axes: (batch, *spatial, channels) in the model's format."""
        return len(t.shape) == self.nd + 2

    def channels(self, t):
        c = t.shape[1] if self.channels_first and self.spatial(t) else t.shape[-1]
        if c is None:
            raise _Unsupported("unknown channel count")
        return int(c)

    def channel_axis(self, t):
        rank = len(t.shape)
        return 1 if self.channels_first and self.spatial(t) else rank - 1

    def sizes(self, shape):
        return shape[2:] if self.channels_first else shape[1:-1]

    # ----------------------------------------------------------------- layers
    def convert(self, op, node, ins, shape, label):
        cls = type(op).__name__
        if not isinstance(op, self.keras.layers.Layer):
            return self.operation(op, node, ins, shape, label)
        if cls in _MERGES:
            return self.merge(op, cls, ins, label)
        if cls == "CustomScaleLayer" and type(op).__module__.startswith("keras.src.applications"):
            # InceptionResNetV2's x + scale * residual: an addition
            return self.emit(label, "add", tuple(t.node for t in ins))
        if len(ins) != 1:
            raise _Unsupported(f"{len(ins)} inputs")
        x = ins[0]
        layer, source = self.layer(op, cls, x, shape, label), x.node
        if isinstance(layer, tuple):
            layer, source = layer
        if layer is None:
            raise _Unsupported()
        return self.emit(label, layer, source)

    def layer(self, op, cls, x, shape, label):
        nd = self.nd
        if cls in _CONVS + _DEPTHWISE + _SEPARABLE + _TRANSPOSED + tuple(_POOLS) + tuple(_GLOBAL_POOLS) + (
                "ZeroPadding1D", "ZeroPadding2D", "ZeroPadding3D", "Cropping1D", "Cropping2D", "Cropping3D",
                "UpSampling1D", "UpSampling2D", "UpSampling3D"):
            if not self.spatial(x):
                raise _Unsupported(f"input of shape {x.shape} has no spatial axes")
            rank = int(re.search(r"(\d)D", cls).group(1))
            if rank != nd:
                raise _Unsupported(f"a {rank}-d layer in a {nd}-d network")
        if cls in _CONVS:
            return L.Conv(_ax(op.kernel_size, nd), stride=_ax(op.strides, nd), padding=_padding(op, nd),
                          dilation=_ax(op.dilation_rate, nd), groups=op.groups, bias=op.use_bias,
                          in_channels=self.channels(x), out_channels=op.filters, name=label)
        if cls in _DEPTHWISE:
            c = self.channels(x)
            return L.Conv(_ax(op.kernel_size, nd), stride=_ax(op.strides, nd), padding=_padding(op, nd),
                          dilation=_ax(op.dilation_rate, nd), groups=c, bias=op.use_bias, in_channels=c,
                          out_channels=c * op.depth_multiplier, name=label)
        if cls in _SEPARABLE:
            c = self.channels(x)
            depthwise = self.emit(f"{label}/depthwise", L.Conv(
                _ax(op.kernel_size, nd), stride=_ax(op.strides, nd), padding=_padding(op, nd),
                dilation=_ax(op.dilation_rate, nd), groups=c, bias=False, in_channels=c,
                out_channels=c * op.depth_multiplier, name=f"{label}/depthwise"), x.node)
            return L.Conv(1, bias=op.use_bias, in_channels=c * op.depth_multiplier, out_channels=op.filters,
                          name=label), depthwise  # the pointwise convolution reads the depthwise one
        if cls in _TRANSPOSED:
            return self.transposed(op, x, nd, label)
        if cls in _POOLS:
            kind = L.MaxPool if _POOLS[cls] == "Max" else L.AvgPool
            return kind(_ax(op.pool_size, nd), stride=_ax(op.strides, nd), padding=_padding(op, nd), name=label)
        if cls in _GLOBAL_POOLS:
            return (L.GlobalMaxPool if _GLOBAL_POOLS[cls] == "Max" else L.GlobalAvgPool)(name=label)
        if cls.startswith("ZeroPadding"):
            return L.Pad(_pairs(op.padding, nd), name=label)
        if cls.startswith("Cropping"):
            return L.Crop(_pairs(op.cropping, nd), name=label)
        if cls == "Resizing":  # F.interpolate(size=(height, width)) under the torch backend
            return self.resizing(op, nd, label)
        if cls.startswith("UpSampling"):
            mode = getattr(op, "interpolation", "nearest")
            if mode not in ("nearest", "bilinear"):
                raise _Unsupported(f"interpolation={mode!r}")
            size = op.size if isinstance(op.size, (tuple, list)) else (op.size,)
            return L.Upsample(_ax(size, nd), mode=mode, name=label)
        if cls in ("BatchNormalization", "LayerNormalization", "GroupNormalization", "UnitNormalization"):
            return self.norm(op, cls, x, label)
        if cls == "Dense":
            return self.dense(op, x, label)
        if cls == "EinsumDense" or cls == "Embedding":
            return None
        if cls in ("Rescaling", "Normalization", "PReLU") or (
                cls == "LayerScale" and type(op).__module__.startswith("keras.src.applications")):
            count = op.count_params()
            if count == 0:
                return L.Elementwise(name=label)
            return L.Params(count, kind=cls, name=label)
        if cls == "Activation":
            return self.activation(op.activation, label)
        if cls == "ReLU":
            six = op.max_value is not None and float(op.max_value) == 6.0 and not op.negative_slope
            return (L.ReLU6 if six else L.ReLU)(name=label)
        if cls in _DROPOUT_LAYERS:
            return L.Dropout(name=label)
        if cls in _ELEMENTWISE_LAYERS:
            if op.count_params():
                raise _Unsupported(f"{op.count_params()} parameters")
            return _ELEMENTWISE_LAYERS[cls](name=label)
        if cls == "Flatten":
            return L.Flatten(name=label)
        if cls == "Reshape":
            return self.reshape(x, shape, label)
        return None

    def resizing(self, op, nd, label):
        """``keras.layers.Resizing``: Keras resizes with ``F.interpolate(size=(height, width))``,
        ``"nearest"`` as PyTorch's ``nearest-exact`` and ``"bilinear"`` without aligned corners."""
        if nd != 2:
            raise _Unsupported("Resizing of a network that is not 2-d")
        if op.crop_to_aspect_ratio or op.pad_to_aspect_ratio:
            raise _Unsupported("Resizing with crop_to_aspect_ratio or pad_to_aspect_ratio")
        modes = {"nearest": "nearest-exact", "bilinear": "bilinear"}
        if op.interpolation not in modes:
            raise _Unsupported(f"interpolation={op.interpolation!r}")
        if getattr(op, "antialias", False) and op.interpolation == "bilinear":
            raise _Unsupported("Resizing with antialias=True")
        return L.Upsample(size=(op.height, op.width), mode=modes[op.interpolation], name=label)

    def transposed(self, op, x, nd, label):
        pads, extra = [], []
        outs = op.output_padding if op.output_padding is not None else (None,) * nd
        for k, s, d, o in zip(op.kernel_size, op.strides, op.dilation_rate, outs):
            span = d * (k - 1) + 1
            if op.padding == "valid":
                pads.append((0, 0))
                extra.append(o or 0)
            elif o is None:  # SAME: output n·s; the transpose of a SAME convolution of n·s positions
                total = span - s
                pads.append((total // 2, total - total // 2) if total >= 0 else (0, 0))
                extra.append(0 if total >= 0 else -total)
            else:
                raise _Unsupported("padding='same' with output_padding")
        return L.ConvTranspose(_ax(op.kernel_size, nd), stride=_ax(op.strides, nd),
                               padding=tuple(pads),
                               output_padding=_ax(extra, nd), dilation=_ax(op.dilation_rate, nd),
                               bias=op.use_bias, in_channels=self.channels(x), out_channels=op.filters,
                               name=label)

    def norm(self, op, cls, x, label):
        axes = op.axis if isinstance(op.axis, (list, tuple)) else [op.axis]
        rank = len(x.shape)
        axes = sorted(a + rank if a < 0 else a for a in axes)
        channel = self.channel_axis(x)
        count = op.count_params()
        if cls == "BatchNormalization":
            if axes != [channel]:
                raise _Unsupported(f"axis={op.axis} is not the channel axis")
            return L.Norm(self.channels(x), params=count, kind="BatchNorm", name=label)
        if cls == "GroupNormalization":
            return L.Norm(self.channels(x), params=count, spatial=True, kind="GroupNorm", name=label)
        return L.Norm(self.channels(x), params=count, spatial=axes != [channel] and self.spatial(x),
                    kind=cls.replace("Normalization", "Norm"), name=label)

    def dense(self, op, x, label):
        if self.spatial(x):
            if self.channels_first:
                raise _Unsupported("Dense on a channels_first spatial tensor acts on the last spatial axis")
            return L.Conv(1, bias=op.use_bias, in_channels=self.channels(x), out_channels=op.units, name=label)
        if len(x.shape) != 2:
            raise _Unsupported(f"input of shape {x.shape}")
        return L.Linear(self.channels(x), op.units, bias=op.use_bias, name=label)

    def activation(self, fn, label):
        name = getattr(fn, "__name__", "") or ""
        return _ACTIVATIONS.get(name, L.Elementwise)(name=label)

    def reshape(self, x, shape, label):
        """Reshapes between features and a 1×…×1 spatial map (squeeze-excitation gates, heads)."""
        src, dst = tuple(x.shape[1:]), tuple(shape[1:])

        def ones(s):
            return len(s) == self.nd + 1 and all(v == 1 for v in self.sizes((None,) + s))

        if len(src) == 1 and ones(dst) or ones(src) and len(dst) == 1 or src == dst:
            return L.Identity(name=label)
        raise _Unsupported(f"{x.shape} -> {shape} moves positions")

    def merge(self, op, cls, ins, label):
        if len(ins) < 2:
            raise _Unsupported(f"{len(ins)} input")
        kind = _MERGES[cls]
        if kind == "concat":
            rank = len(ins[0].shape)
            axis = op.axis + rank if op.axis < 0 else op.axis
            if axis != self.channel_axis(ins[0]):
                raise _Unsupported(f"axis={op.axis} is not the channel axis")
        return self.emit(label, kind, tuple(t.node for t in ins))

    def operation(self, op, node, ins, shape, label):
        """A ``keras.ops`` call (MobileNetV3's ``x + 3``, ``x * hard_sigmoid(x)``)."""
        cls = type(op).__name__.lower()
        if cls not in _ELEMENTWISE_OPS:
            raise _Unsupported("operation")
        if len(ins) == 1:
            if tuple(ins[0].shape) != tuple(shape):
                raise _Unsupported(f"{ins[0].shape} -> {shape}")
            return self.emit(label, _ACTIVATIONS.get(cls, L.Elementwise)(name=label), ins[0].node)
        if len(ins) == 2 and cls in ("add", "subtract", "multiply"):
            return self.emit(label, "mul" if cls == "multiply" else "add", tuple(t.node for t in ins))
        raise _Unsupported(f"{len(ins)} tensor inputs")

